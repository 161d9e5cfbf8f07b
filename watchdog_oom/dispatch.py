"""Notifications from decision to delivery: routing, grouping into outbox rows, sending.

`Outbox` decides, inside the caller's transaction, which channels hear of a kill or an
alert and writes their outbox rows (kills arriving within `group_wait` join one row).
`Dispatcher` (sending.py) sends due rows through the channels, retries transient failures
with exponential backoff and jitter (honouring Retry-After), and records every outcome.
`Senders` (sending.py) runs it with one thread per channel, so an endpoint that hangs
until its timeout, or fails, delays no other channel. `Direct` sends what the outbox cannot
carry while the database is down.
"""

from __future__ import annotations

import fnmatch
import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from watchdog_oom.model import Alert, Notification, severity_rank
from watchdog_oom.notify import Channel, ChannelError, redact
from watchdog_oom.store import Tx, kill_record, mute_matches
from watchdog_oom.stored import AlertEpisode, StoredKill
from watchdog_oom.valueclass import valueclass

log = logging.getLogger(__name__)

# sending.py's names (the Dispatcher, the Senders), imported on first use (PEP 562): the
# daemon loads them when a row first falls due (daemon/sender.py), not at start.
_SENDING_NAMES = ("Dispatcher", "RETRY_SOON", "Senders", "UNCONFIGURED", "to_notification")


def __getattr__(name: str) -> Any:
    if name in _SENDING_NAMES:
        from watchdog_oom import sending

        return getattr(sending, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


KILL_GROUP = "oom.kill"
GAP_GROUP = "kernel_log.gap"
UNREADABLE_GROUP = "kill.unreadable"
UNSTORED = "kill.unstored"
# A grouped notification lists this many kills in full; the rest are counted.
MAX_KILLS_LISTED = 50
BACKOFF_BASE = 5.0
BACKOFF_CAP = 900.0


def kill_severity(row: StoredKill) -> str:
    """A global OOM is critical; a cgroup hitting its own limit is a warning."""
    return "warning" if row.cgroup_oom else "critical"


def describe_kill(record: Mapping[str, Any]) -> str:
    """One line about one kill, in an operator's words."""
    rss = record.get("anon_rss_kb")
    size = f", {rss / 1024:.0f} MiB anon-rss" if rss is not None else ""
    where = (f" in cgroup {record['task_memcg']}" if record.get("task_memcg") else "")
    scope = "memory cgroup limit" if record.get("cgroup_oom") else "system out of memory"
    killer = record.get("killer") or "kernel"
    by = "" if killer == "kernel" else f" by {killer}"
    what = f"pid {record['pid']}{size}" if record.get("pid") is not None else f"cgroup{size}"
    return f"{record['process']} ({what}) killed{by}{where} ({scope})"


def kills_summary(records: Sequence[Mapping[str, Any]]) -> str:
    if len(records) == 1:
        return f"OOM kill: {describe_kill(records[0])}"
    counts = Counter(r["process"] for r in records)
    names = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in counts.most_common(5))
    more = "" if len(counts) <= 5 else f" and {len(counts) - 5} more"
    return f"{len(records)} OOM kills: {names}{more}"


@valueclass(slots=False)
class Route:
    """What one channel wants to hear: the routing part of its config."""

    name: str
    min_severity: str = "warning"
    kinds: tuple[str, ...] = ()
    match_process: str | None = None
    match_cgroup: str | None = None
    exclude_process: str | None = None
    exclude_cgroup: str | None = None

    @classmethod
    def of(cls, channel_config: Any) -> Route:
        return cls(
            name=channel_config.name, min_severity=channel_config.min_severity, kinds=tuple(channel_config.kinds),
            match_process=channel_config.match_process, match_cgroup=channel_config.match_cgroup,
            exclude_process=channel_config.exclude_process, exclude_cgroup=channel_config.exclude_cgroup,
        )

    def wants(self, kind: str, severity: str, process: str | None = None, cgroup: str | None = None) -> bool:
        """Whether this channel hears of a new kill or alert."""
        if severity_rank(severity) < severity_rank(self.min_severity):
            return False
        if self.kinds and not any(fnmatch.fnmatchcase(kind, k) for k in self.kinds):
            return False
        if self.match_process and not (process and fnmatch.fnmatchcase(process, self.match_process)):
            return False
        if self.match_cgroup and not (cgroup and fnmatch.fnmatchcase(cgroup, self.match_cgroup)):
            return False
        if self.exclude_process and process and fnmatch.fnmatchcase(process, self.exclude_process):
            return False
        return not (self.exclude_cgroup and cgroup and fnmatch.fnmatchcase(cgroup, self.exclude_cgroup))


class Outbox:
    """Writes notification rows for kills and alerts inside the caller's transaction."""

    def __init__(self, routes: Sequence[Route], group_wait: float) -> None:
        self.routes = list(routes)
        self.group_wait = timedelta(seconds=group_wait)

    def kill(self, tx: Tx, row: StoredKill, now: datetime) -> int:
        """Queue a stored kill for every channel that wants it; returns rows touched."""
        record = kill_record(row)
        severity = kill_severity(row)
        cgroup = row.task_memcg or row.memcg
        touched = 0
        for route in self.routes:
            if not route.wants(KILL_GROUP, severity, row.process, cgroup):
                continue
            mute = tx.active_mute(now, KILL_GROUP, row.process, cgroup)
            if mute is not None:
                tx.enqueue(channel=route.name, kind=KILL_GROUP, severity=severity, reason="first",
                           summary=kills_summary([record]), data={"kills": [record], "count": 1},
                           now=now, mute=mute)
            else:
                self._group_kill(tx, route.name, record, severity, now)
            touched += 1
        return touched

    def kills(self, tx: Tx, rows: Sequence[StoredKill], now: datetime) -> int:
        """Queue many stored kills (a burst) at once: per channel, the kills it wants join its
        collecting notification in one update, instead of one update per kill."""
        if len(rows) == 1:
            return self.kill(tx, rows[0], now)
        mutes = tx.active_mutes(now)
        records = [kill_record(row) for row in rows]
        touched = 0
        for route in self.routes:
            grouped: list[tuple[dict[str, Any], str]] = []
            for row, record in zip(rows, records, strict=True):
                severity, cgroup = kill_severity(row), row.task_memcg or row.memcg
                if not route.wants(KILL_GROUP, severity, row.process, cgroup):
                    continue
                mute = next((m for m in mutes if mute_matches(m, KILL_GROUP, row.process, cgroup)), None)
                if mute is not None:
                    tx.enqueue(channel=route.name, kind=KILL_GROUP, severity=severity, reason="first",
                               summary=kills_summary([record]), data={"kills": [record], "count": 1},
                               now=now, mute=mute)
                else:
                    grouped.append((record, severity))
                touched += 1
            if grouped:
                self._group_kills(tx, route.name, grouped, now)
        return touched

    def _group_kills(self, tx: Tx, channel: str, items: list[tuple[dict[str, Any], str]], now: datetime) -> None:
        """Add kills to the channel's collecting notification (or a new one): one write."""
        group = tx.open_group(channel, KILL_GROUP, now)
        if group is not None:
            data, summary, worst = _merged(dict(group.data or {}), group.severity, items)
            if tx.extend_group(group, summary, data, worst):
                return
        # None collecting, or a sender claimed it meanwhile: these kills start a new one.
        data, summary, worst = _merged({}, None, items)
        tx.enqueue(channel=channel, kind=KILL_GROUP, severity=worst, reason="first", summary=summary, data=data,
                   now=now, due_at=now + self.group_wait, group_key=KILL_GROUP)

    def _group_kill(self, tx: Tx, channel: str, record: dict[str, Any], severity: str, now: datetime) -> None:
        group = tx.open_group(channel, KILL_GROUP, now)
        if group is not None:
            data = dict(group.data or {})
            kills = list(data.get("kills", []))
            count = int(data.get("count", len(kills))) + 1
            if len(kills) < MAX_KILLS_LISTED:
                kills.append(record)
            counts: Counter[str] = Counter(data.get("by_process", {}))
            counts[record["process"]] += 1
            data.update(kills=kills, count=count, by_process=dict(counts))
            summary = kills_summary(kills) if count == len(kills) else \
                f"{count} OOM kills: " + ", ".join(f"{n} ×{c}" for n, c in counts.most_common(5))
            worst = "critical" if "critical" in (group.severity, severity) else severity
            if tx.extend_group(group, summary, data, worst):
                return
        tx.enqueue(channel=channel, kind=KILL_GROUP, severity=severity, reason="first",
                   summary=kills_summary([record]),
                   data={"kills": [record], "count": 1, "by_process": {record["process"]: 1}},
                   now=now, due_at=now + self.group_wait, group_key=KILL_GROUP)

    def unstored(self, tx: Tx, row: Any, now: datetime) -> None:
        """Queue word of a kill the database would not store (kill.unstored), once per kill;
        several within `group_wait` make one message."""
        entry = {"id": row.id, "process": row.process, "time": row.time.isoformat() if row.time else None,
                 "source": row.source, "error": row.error[:500]}
        for route in self.routes:
            if not route.wants(UNSTORED, "critical", row.process, None):
                continue
            group = tx.open_group(route.name, UNSTORED, now)
            if group is not None:
                data = dict(group.data or {})
                entries = list(data.get("quarantined", []))[:MAX_KILLS_LISTED - 1] + [entry]
                data.update(quarantined=entries, count=int(data.get("count", 1)) + 1)
                if tx.extend_group(group, _unstored_summary(data["count"]), data, "critical"):
                    continue
            tx.enqueue(channel=route.name, kind=UNSTORED, severity="critical", reason="first",
                       summary=_unstored_summary(1), data={"quarantined": [entry], "count": 1}, now=now,
                       due_at=now + self.group_wait, group_key=UNSTORED,
                       mute=tx.active_mute(now, UNSTORED, row.process, None))

    def backlog_summary(self, tx: Tx, rows: Sequence[StoredKill], now: datetime) -> None:
        """On a first start, the kills already in the kernel's buffer: one summary, not one each."""
        if not rows:
            return
        records = [kill_record(r) for r in rows]
        summary = (f"watchdog-oom started and found {len(rows)} earlier OOM kill"
                   f"{'s' if len(rows) != 1 else ''} in the kernel log: "
                   + ", ".join(f"{n} ×{c}" for n, c in Counter(r['process'] for r in records).most_common(5)))
        for route in self.routes:
            if route.wants(KILL_GROUP, "warning"):
                tx.enqueue(channel=route.name, kind=KILL_GROUP, severity="warning", reason="first",
                           summary=summary, data={"kills": records[:MAX_KILLS_LISTED], "count": len(records),
                                                  "backlog": True}, now=now)

    def alert(self, tx: Tx, alert: Alert, row: AlertEpisode, reason: str, now: datetime,
              extra: dict[str, Any] | None = None) -> int:
        """Queue an alert event (first, new, repeat or resolved) for the channels that want it."""
        process = (alert.data or {}).get("process")
        cgroup = (alert.data or {}).get("cgroup")
        # The episode's identity travels with every message about it, resolved ones too,
        # so receivers that track alerts (Alertmanager's) can match them up.
        data = {**(alert.data or {}), **(extra or {}), "alert_id": row.id, "key": alert.key,
                "started_at": row.started_at.isoformat(), "alert_kind": row.kind, "alert_severity": row.severity}
        touched = 0
        for route in self.routes:
            # A resolved message goes exactly where the alert itself went, whatever its
            # (info) severity or the (now empty) figures it carries.
            if alert.resolved:
                if not _was_sent(tx, row.id, route.name):
                    continue
            elif not route.wants(alert.kind, alert.severity, process, cgroup):
                continue
            mute = tx.active_mute(now, alert.kind, process, cgroup)
            tx.enqueue(channel=route.name, kind=alert.kind, severity=alert.severity, reason=reason,
                       summary=alert.summary, data=data, now=now, alert_id=row.id, mute=mute)
            touched += 1
        tx.mark_alert_notified(row.id, now)
        return touched

    def gap(self, tx: Tx, source: str, missed: int | None, message: str, now: datetime) -> None:
        """Queue word of lost kernel log records; gaps within `group_wait` add up in one row."""
        for route in self.routes:
            if not route.wants(GAP_GROUP, "warning"):
                continue
            group = tx.open_group(route.name, GAP_GROUP, now)
            if group is not None:
                data = dict(group.data or {})
                data["gaps"] = int(data.get("gaps", 1)) + 1
                data["missed"] = int(data.get("missed") or 0) + (missed or 0)
                summary = (f"Kernel log records lost: {data['missed']} in {data['gaps']} gaps on {source}; "
                           "OOM kills among them are counted from /proc/vmstat")
                if tx.extend_group(group, summary, data, "warning"):
                    continue
            tx.enqueue(channel=route.name, kind=GAP_GROUP, severity="warning", reason="first",
                       summary=f"Kernel log records lost: {message}",
                       data={"source": source, "missed": missed or 0, "gaps": 1}, now=now,
                       due_at=now + self.group_wait, group_key=GAP_GROUP,
                       mute=tx.active_mute(now, GAP_GROUP, None, None))


def unreadable(outbox: Outbox, tx: Tx, source: str, text: str, reason: str, now: datetime) -> None:
    """Queue word of a kernel log line that holds a kill's words but could not be read (its
    text redacted and cut by the caller); lines within `group_wait` add up in one row."""
    for route in outbox.routes:
        if not route.wants(UNREADABLE_GROUP, "warning"):
            continue
        group = tx.open_group(route.name, UNREADABLE_GROUP, now)
        if group is not None:
            data = dict(group.data or {})
            data["count"] = int(data.get("count", 1)) + 1
            lines = list(data.get("lines") or [])
            if len(lines) < 5:
                data["lines"] = [*lines, text]
            summary = f"{data['count']} kernel log lines on {source} hold a kill's words but could not be read"
            if tx.extend_group(group, summary, data, "warning"):
                continue
        tx.enqueue(channel=route.name, kind=UNREADABLE_GROUP, severity="warning", reason="first",
                   summary=f"A kernel log line on {source} holds a kill's words but could not be read: {text}",
                   data={"source": source, "count": 1, "lines": [text], "why": reason}, now=now,
                   due_at=now + outbox.group_wait, group_key=UNREADABLE_GROUP,
                   mute=tx.active_mute(now, UNREADABLE_GROUP, None, None))


def _unstored_summary(count: int) -> str:
    what = "An OOM kill" if count == 1 else f"{count} OOM kills"
    return (f"{what} could not be stored in the history and {'is' if count == 1 else 'are'} quarantined "
            "with the raw log text; see `watchdog-oom history quarantined`")


def _merged(data: dict[str, Any], severity: str | None,
            items: Sequence[tuple[dict[str, Any], str]]) -> tuple[dict[str, Any], str, str]:
    """A kill group's data, summary and severity with `items` (record, severity) added."""
    kills = list(data.get("kills", []))
    count = int(data.get("count", len(kills)))
    counts = Counter(data.get("by_process", {}))
    for record, _ in items:
        count += 1
        if len(kills) < MAX_KILLS_LISTED:
            kills.append(record)
        counts[record["process"]] += 1
    data = {**data, "kills": kills, "count": count, "by_process": dict(counts)}
    summary = kills_summary(kills) if count == len(kills) else \
        f"{count} OOM kills: " + ", ".join(f"{n} ×{c}" for n, c in counts.most_common(5))
    worst = "critical" if "critical" in {severity, *(sev for _, sev in items)} else "warning"
    return data, summary, worst


def _was_sent(tx: Tx, alert_id: int, channel: str) -> bool:
    """A resolved message only makes sense where the alert itself was announced."""
    return tx.was_announced(alert_id, channel)


def backoff(attempts: int, rng: random.Random, initial: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds before retry number `attempts`: exponential, capped, with ±50% jitter so
    many hosts recovering together do not hammer an endpoint in step."""
    delay = min(initial * (2 ** min(max(attempts - 1, 0), 32)), cap)
    return delay * rng.uniform(0.5, 1.5)


class Direct:
    """Notifications sent straight through every channel, bypassing the outbox.

    For what the outbox cannot carry because it lives in the database that is down
    (`database.down`, `database.resolved`). Each channel has its own thread and queue, so
    its messages keep their order (a resolution never overtakes its alert) and a hung
    channel holds up no other. A transient failure is retried with backoff until it is
    delivered, fails for good, is `max_age` old, or the daemon stops. The outcomes are
    logged, and kept in `outcomes` for the history once the database is back.
    """

    def __init__(self, channels: Mapping[str, Channel], stop: threading.Event, *, max_age: float = 3600.0,
                 retry_initial: float = 2.0, retry_max: float = 60.0, secrets: Sequence[str] = (),
                 rng: random.Random | None = None) -> None:
        self.channels = dict(channels)
        self.stop = stop
        self.max_age = max_age
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.secrets = list(secrets)
        self.rng = rng or random.Random()
        self._queues: dict[str, queue.SimpleQueue[Notification]] = {}
        self._lock = threading.Lock()
        self.outcomes: list[tuple[str, Notification, str, str]] = []  # channel, notification, status, detail

    def send(self, n: Notification) -> None:
        """Queue `n` for every channel; returns at once."""
        with self._lock:
            for name in self.channels:
                if name not in self._queues:
                    self._queues[name] = queue.SimpleQueue()
                    threading.Thread(target=self._worker, args=(name,), name=f"direct:{name}", daemon=True).start()
                self._queues[name].put(n)

    def _worker(self, name: str) -> None:
        channel, inbox = self.channels[name], self._queues[name]
        while True:
            n = inbox.get()  # blocks while there is nothing to send (a daemon thread: gone at exit)
            if self.stop.is_set():
                return
            status, detail = self._deliver(channel, n)
            with self._lock:
                self.outcomes.append((name, n, status, detail))

    def _deliver(self, channel: Channel, n: Notification) -> tuple[str, str]:
        began, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            try:
                detail = channel.send(n) or ""
            except ChannelError as exc:
                message = redact(str(exc), self.secrets)
                if exc.permanent or time.monotonic() - began > self.max_age:
                    log.error("%s via %s (direct) failed after %d attempt(s): %s", n.kind, channel.name, attempts,
                              message)
                    return "failed", message
                delay = backoff(attempts, self.rng, self.retry_initial, self.retry_max)
                if exc.retry_after is not None:
                    delay = max(delay, min(float(exc.retry_after), self.retry_max))
                log.warning("%s via %s (direct) failed (attempt %d), retry in %.0fs: %s", n.kind, channel.name,
                            attempts, delay, message)
                if self.stop.wait(delay):
                    return "pending", message
                continue
            except Exception as exc:  # a channel bug must not end the worker
                log.exception("%s via %s (direct): unexpected error", n.kind, channel.name)
                return "failed", f"unexpected error: {type(exc).__name__}: {exc}"
            log.info("%s sent directly via %s: %s", n.kind, channel.name, detail)
            return "sent", detail

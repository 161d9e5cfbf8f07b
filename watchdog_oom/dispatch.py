"""Notifications from decision to delivery: routing, grouping into outbox rows, sending.

`Outbox` decides, inside the caller's transaction, which channels hear of a kill or an
alert and writes their outbox rows (kills arriving within `group_wait` join one row).
So does it for the only word the channels get of some kills: a kill the database would not
store (`kill.unstored`) and, on a first start, the kills already in the kernel's buffer (one
summary). The rows of records lost and of lines that could not be read are notices.py's,
loaded at the first of them.
`Dispatcher` (sending.py) sends due rows through the channels, retries transient failures
with exponential backoff and jitter (honouring Retry-After), and records every outcome.
`Senders` (sending.py) runs it with one thread per channel, so an endpoint that hangs
until its timeout, or fails, delays no other channel. `Direct` (sending.py) sends what the
outbox cannot carry while the database is down.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from watchdog_oom.forward import forward
from watchdog_oom.model import Alert, severity_rank
from watchdog_oom.store import Tx, kill_record, mute_matches
from watchdog_oom.stored import AlertEpisode, StoredKill
from watchdog_oom.valueclass import valueclass

# sending.py's names (the Dispatcher, the Senders, Direct and their backoff), imported on
# first use (PEP 562): the daemon loads them when a row first falls due (daemon/sender.py),
# or when the database goes down (Direct), not at start.
_SENDING_NAMES = ("BACKOFF_BASE", "BACKOFF_CAP", "Direct", "Dispatcher", "RETRY_SOON", "Senders", "UNCONFIGURED",
                  "backoff", "to_notification")


# notices.py's (kernel_log.gap, kill.unreadable), loaded at the first of them.
_NOTICES_NAMES = ("GAP_GROUP", "UNREADABLE_GROUP", "unreadable")


__getattr__ = forward(__name__, {"watchdog_oom.sending": _SENDING_NAMES, "watchdog_oom.notices": _NOTICES_NAMES})


KILL_GROUP = "oom.kill"
UNSTORED = "kill.unstored"
# A grouped notification lists this many kills in full; the rest are counted.
MAX_KILLS_LISTED = 50


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
                self._group_kills(tx, route.name, [(record, severity)], now)
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

    def unstored(self, tx: Tx, row: Any, now: datetime) -> None:
        """Queue word of a kill the database would not store (kill.unstored), once per kill;
        several within `group_wait` make one message. The only word the channels get of it:
        loaded at start with the kill writer (review R8)."""
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
        """On a first start, the kills already in the kernel's buffer: one summary, not one each
        (their only notification: loaded at start with the kill writer, review R8)."""
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


def _unstored_summary(count: int) -> str:
    what = "An OOM kill" if count == 1 else f"{count} OOM kills"
    return (f"{what} could not be stored in the history and {'is' if count == 1 else 'are'} quarantined "
            "with the raw log text; see `watchdog-oom history quarantined`")


def _was_sent(tx: Tx, alert_id: int, channel: str) -> bool:
    """A resolved message only makes sense where the alert itself was announced."""
    return tx.was_announced(alert_id, channel)

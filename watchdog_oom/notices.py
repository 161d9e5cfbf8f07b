"""The outbox rows for what the kernel log says besides a kill: records it lost
(`kernel_log.gap`), lines holding a kill's words that no recogniser read
(`kill.unreadable`), a kill the database would not store (`kill.unstored`), and on a
first start one summary of the kills already in the kernel's buffer.

Split from dispatch.py, whose `Outbox` writes the rows of a kill and of an alert and stays
loaded (the kill path, loaded at start). These notices are rare, so the kill writer
(daemon/writer.py) imports this module at its first notice, not at start. If it cannot
(the package being upgraded, memory short), the writer says so in the log and writes
what it was writing without the notice: a kill is stored, or quarantined, all the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from watchdog_oom.dispatch import KILL_GROUP, MAX_KILLS_LISTED, Outbox
from watchdog_oom.store import Tx, kill_record
from watchdog_oom.stored import StoredKill

GAP_GROUP = "kernel_log.gap"
UNREADABLE_GROUP = "kill.unreadable"
UNSTORED = "kill.unstored"


def unstored(outbox: Outbox, tx: Tx, row: Any, now: datetime) -> None:
    """Queue word of a kill the database would not store (kill.unstored), once per kill;
    several within `group_wait` make one message."""
    entry = {"id": row.id, "process": row.process, "time": row.time.isoformat() if row.time else None,
             "source": row.source, "error": row.error[:500]}
    for route in outbox.routes:
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
                   due_at=now + outbox.group_wait, group_key=UNSTORED,
                   mute=tx.active_mute(now, UNSTORED, row.process, None))


def _unstored_summary(count: int) -> str:
    what = "An OOM kill" if count == 1 else f"{count} OOM kills"
    return (f"{what} could not be stored in the history and {'is' if count == 1 else 'are'} quarantined "
            "with the raw log text; see `watchdog-oom history quarantined`")


def backlog_summary(outbox: Outbox, tx: Tx, rows: Sequence[StoredKill], now: datetime) -> None:
    """On a first start, the kills already in the kernel's buffer: one summary, not one each."""
    if not rows:
        return
    records = [kill_record(r) for r in rows]
    summary = (f"watchdog-oom started and found {len(rows)} earlier OOM kill"
               f"{'s' if len(rows) != 1 else ''} in the kernel log: "
               + ", ".join(f"{n} ×{c}" for n, c in Counter(r['process'] for r in records).most_common(5)))
    for route in outbox.routes:
        if route.wants(KILL_GROUP, "warning"):
            tx.enqueue(channel=route.name, kind=KILL_GROUP, severity="warning", reason="first",
                       summary=summary, data={"kills": records[:MAX_KILLS_LISTED], "count": len(records),
                                              "backlog": True}, now=now)


def gap(outbox: Outbox, tx: Tx, source: str, missed: int | None, message: str, now: datetime) -> None:
    """Queue word of lost kernel log records; gaps within `group_wait` add up in one row."""
    for route in outbox.routes:
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
                   due_at=now + outbox.group_wait, group_key=GAP_GROUP,
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

"""The outbox rows for what the kernel log says besides a kill: records it lost
(`kernel_log.gap`) and lines holding a kill's words that no recogniser read
(`kill.unreadable`).

Split from dispatch.py, whose `Outbox` writes the rows of a kill, of an alert, of a kill
the database would not store and of a first start's backlog (the only word the channels get
of those kills), and stays loaded (the kill path, loaded at start). These two notices are
rare, so the kill writer (daemon/writer.py) imports this module at its first notice, not at
start. If it cannot (the package being upgraded, memory short), the writer says so in the
log (the line's text, or the gap, is in that log already) and writes what it was writing
without the notice: the cursor moves past a gap all the same.
"""

from __future__ import annotations

from datetime import datetime

from watchdog_oom.dispatch import Outbox
from watchdog_oom.store import Tx

GAP_GROUP = "kernel_log.gap"
UNREADABLE_GROUP = "kill.unreadable"


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

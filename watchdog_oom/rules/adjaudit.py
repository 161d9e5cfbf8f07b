"""The oom_score_adj audit, pure: who changed a process's chance to be OOM-killed, and what that deserves.

Every write to ``/proc/PID/oom_score_adj`` reaches the daemon through the
``oom/oom_score_adj_update`` tracepoint with the target and the new value; the writer is
the task that made the write. The old value is what the daemon last knew (its process
scan, or the previous write it saw). This module decides, with ``now`` and everything
else passed in:

* a change to a critical process (``processes.critical``) is a ``process.adj_changed``
  alert: **critical** when the new value makes the process likelier to be killed than
  before (a higher oom_score_adj) or takes away a protection watchdog-oom set
  (``processes.protect``), a **warning** otherwise (it was made safer, but by someone);
* the daemon's own writes (protecting) are never alerted, and are labelled as its own;
* every change, critical or not, is kept in history (``history adjustments``).

A write of the value a process already had changes nothing and alerts nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watchdog_oom.model import Alert
from watchdog_oom.valueclass import valueclass

KIND = "process.adj_changed"
# A process's oom_score_adj before anybody wrote it: the kernel's default.
DEFAULT_ADJ = 0


@valueclass
class Writer:
    """The process that wrote. ``exited``: gone before /proc could be read, so only the
    kernel's name for it (the trace line's) and its thread id are known. ``unknown``: why
    nothing is known of it (its event was lost; tid 0 and process ``?`` then)."""

    tid: int
    process: str
    pid: int | None = None
    cmdline: str | None = None
    unit: str | None = None
    uid: int | None = None
    exited: bool = False
    unknown: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"pid": self.pid, "tid": self.tid, "process": self.process, "cmdline": self.cmdline,
                "unit": self.unit, "uid": self.uid, "exited": self.exited, "unknown": self.unknown}

    def describe(self) -> str:
        """``name (pid N[, unit U])``: the writer in one phrase."""
        if self.unknown is not None:
            return f"an unknown writer ({self.unknown})"
        pid = self.pid if self.pid is not None else self.tid
        where = f", {self.unit}" if self.unit else ""
        gone = ", exited" if self.exited else ""
        return f"{self.process} (pid {pid}{where}{gone})"


@valueclass
class Adjustment:
    """One write to a process's oom_score_adj, with what was known around it."""

    time: datetime
    pid: int
    process: str
    old_adj: int | None
    new_adj: int
    writer: Writer
    cmdline: str | None = None
    unit: str | None = None
    critical: bool = False
    by_watchdog: bool = False
    protected_to: int | None = None  # the value watchdog-oom set on this process, if it did
    mono_usec: int | None = None
    # "tracepoint": its event was read; "resync": found by re-reading /proc after events were lost.
    found_by: str = "tracepoint"

    @property
    def changed(self) -> bool:
        """False for a write of the value the process already had."""
        return self.old_adj is None or self.old_adj != self.new_adj

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, as notifications and ``history adjustments --format json`` give them."""
        return {"time": self.time.isoformat(), "pid": self.pid, "process": self.process, "cmdline": self.cmdline,
                "unit": self.unit, "old_adj": self.old_adj, "new_adj": self.new_adj, "critical": self.critical,
                "by_watchdog": self.by_watchdog, "protected_to": self.protected_to,
                "writer": self.writer.to_dict(), "found_by": self.found_by}


def likelier_to_die(old_adj: int | None, new_adj: int) -> bool:
    """Whether ``new_adj`` raises the badness the OOM killer adds (oom_badness() adds
    oom_score_adj x totalpages / 1000), against the old value or the kernel's default."""
    return new_adj > (DEFAULT_ADJ if old_adj is None else old_adj)


def severity(adj: Adjustment) -> str | None:
    """The alert a change deserves: None (history only), ``warning`` or ``critical``."""
    if not adj.critical or adj.by_watchdog or not adj.changed:
        return None
    if removes_protection(adj) or likelier_to_die(adj.old_adj, adj.new_adj):
        return "critical"
    return "warning"


def removes_protection(adj: Adjustment) -> bool:
    """The watchdog had lowered this process's value and the write raises it above that."""
    return adj.protected_to is not None and not adj.by_watchdog and adj.new_adj > adj.protected_to


def summary(adj: Adjustment) -> str:
    """One sentence naming the process, the values and the writer."""
    old = "unknown" if adj.old_adj is None else str(adj.old_adj)
    text = (f"oom_score_adj of {adj.process} (pid {adj.pid}) changed from {old} to {adj.new_adj} "
            f"by {adj.writer.describe()}")
    if removes_protection(adj):
        text += f": the protection watchdog-oom set ({adj.protected_to}) is gone"
    elif likelier_to_die(adj.old_adj, adj.new_adj):
        text += ": it is now likelier to be killed"
        if adj.new_adj >= 1000:
            text += " (1000: the OOM killer's first choice)"
    return text


def alert(adj: Adjustment) -> Alert | None:
    """The ``process.adj_changed`` alert of a change, or None when it only goes to history."""
    level = severity(adj)
    if level is None:
        return None
    return Alert(key=f"{KIND}:{adj.process}:{adj.pid}", kind=KIND, severity=level, summary=summary(adj),
                 time=adj.time, data={"process": adj.process, "pid": adj.pid, "adjustment": adj.to_dict()})


class AdjMemory:
    """What the daemon last knew of each process's oom_score_adj, to give a write its old value.

    Fed by process scans (``seen``) and by the writes themselves (``written``); bounded,
    oldest forgotten first. A scan replaces what it covers, except values written after
    the scan began (the scan read them before the write). ``when`` is any monotonic
    clock, in seconds, the same for both.
    """

    def __init__(self, max_entries: int = 65536) -> None:
        self.max_entries = max_entries
        self._values: dict[int, tuple[int, float]] = {}

    def seen(self, values: dict[int, int], scan_began: float) -> None:
        """A process scan's values (pid -> oom_score_adj), read from ``scan_began`` on."""
        newer = {pid: known for pid, known in self._values.items() if known[1] > scan_began}
        merged = {pid: (value, scan_began) for pid, value in values.items()}
        merged.update(newer)
        self._values = dict(list(merged.items())[-self.max_entries:])

    def written(self, pid: int, value: int, when: float) -> int | None:
        """Record a write; returns the value before it (None when unknown)."""
        old = self._values.pop(pid, None)
        self._values[pid] = (value, when)
        while len(self._values) > self.max_entries:
            self._values.pop(next(iter(self._values)))
        # A value read by a scan that began after this write (the event handled late, behind
        # others) may be the write's own result, not what it replaced: unknown, not "unchanged".
        return None if old is None or old[1] > when else old[0]

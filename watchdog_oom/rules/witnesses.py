"""One kill, several witnesses: the oom/mark_victim tracepoint, the kernel log, the oom_kill counter.

The tracepoint is written by the kernel at the moment of the kill into a buffer only
root can enable, so nobody can forge it; the log passes through printk (rate-limited),
the ring buffer (overwritten) and maybe a syslog daemon (dropped, or written by any
user with ``logger -t kernel``). Each disagreement is an ``oom.unlogged`` alert whose
``data.disagreed`` names the witness that did not see what the others saw:

* ``log``: the tracepoint saw a kill the log never showed (rate-limited printk, an
  overwritten buffer, a syslog daemon that dropped it). The kill is recorded anyway.
* ``tracepoint``: a log line reports a kernel kill the tracepoint did not see while it
  was running: the line is suspect (in a syslog file, possibly written by a user).

(The counter's disagreement with the recorded kills is ``rules.crosscheck``.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from watchdog_oom.model import Alert
from watchdog_oom.valueclass import valueclass

UNLOGGED = "oom.unlogged"
TRACEPOINT = "tracepoint"
# How long a kill waits for its other witness before their disagreement is called: the
# journal and syslog files may lag the kernel by seconds (kernel_log.witness_wait).
WITNESS_WAIT = timedelta(seconds=10)
# A kill dated this close to the tracepoint's start, or to events it lost, is not held against it.
MARGIN = timedelta(seconds=5)


@valueclass
class Witnessed:
    """A stored kernel kill as the sweep sees it."""

    id: int
    pid: int | None
    process: str
    time: datetime | None
    source: str | None
    recorded_at: datetime
    witnesses: tuple[str, ...]
    flagged: bool  # a disagreement about it was reported already


@valueclass
class TraceWindow:
    """When the tracepoint was watching: since ``since``, except around ``lost`` (times the
    ring buffer overflowed)."""

    since: datetime
    lost: tuple[datetime, ...] = ()

    def covers(self, when: datetime) -> bool:
        """Whether a kill at ``when`` must have reached the tracepoint."""
        if when < self.since + MARGIN:
            return False
        # Around a loss of the ring buffer's events (not the log's lag, kernel_log.witness_wait):
        # the kernel reports the loss at the next read, within seconds of the events lost.
        return all(abs(when - at) > WITNESS_WAIT + MARGIN for at in self.lost)


def unlogged(kill: Witnessed, log_source: str | None, now: datetime, wait: timedelta = WITNESS_WAIT) -> Alert | None:
    """The alert for a kill only the tracepoint saw, once the log had `wait` to show it.

    None while waiting, when no log is read (``kernel_log.source: none``: nobody to
    disagree), or when the log showed it after all.
    """
    if log_source is None or kill.flagged or kill.source != TRACEPOINT or now - kill.recorded_at < wait:
        return None
    summary = (f"OOM kill of {kill.process} (pid {kill.pid}) seen by the kernel's tracepoint but not in the "
               f"kernel log ({log_source}): rate-limited printk, an overwritten buffer or a dropped log line")
    return _alert(kill, "log", "warning", summary, now)


def suspect(kill: Witnessed, window: TraceWindow | None, now: datetime,
            wait: timedelta = WITNESS_WAIT) -> Alert | None:
    """The alert for a log kill the tracepoint, watching at the time, never saw (after `wait`); None otherwise."""
    if window is None or kill.flagged or kill.time is None or TRACEPOINT in kill.witnesses:
        return None
    if kill.source == TRACEPOINT or now - kill.recorded_at < wait or not window.covers(kill.time):
        return None
    forged = " in a log file any local user can write to (logger -t kernel)" if (kill.source or "").startswith(
        "file:") else ""
    summary = (f"The kernel log ({kill.source}) reports an OOM kill of {kill.process} (pid {kill.pid}) that the "
               f"kernel's tracepoint did not see: the record is suspect, possibly forged{forged}")
    return _alert(kill, TRACEPOINT, "warning", summary, now)


def _alert(kill: Witnessed, disagreed: str, severity: str, summary: str, now: datetime) -> Alert:
    data: dict[str, Any] = {"disagreed": disagreed, "kill_id": kill.id, "pid": kill.pid, "process": kill.process,
                            "source": kill.source, "witnesses": list(kill.witnesses),
                            "time": kill.time.isoformat() if kill.time else None}
    return Alert(f"{UNLOGGED}:{disagreed}:{kill.id}", UNLOGGED, severity, summary, now, False, data)

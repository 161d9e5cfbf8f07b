"""Judges processes as the OOM killer sees them: ranking, critical rules, risk and protection.

Everything here works on ProcScore values and does no I/O (the oom_adj conversion is
procfs's). ProcessCache is the bounded memory that lets a kill record name its victim's
command line and unit after the victim is gone; it is told the time, it reads no clock.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from watchdog_oom.model import CriticalRule, ProcScore
from watchdog_oom.procfs import OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN, adj_from_legacy

# TASK_COMM_LEN is 16 (include/linux/sched.h): comm, and every process name the kernel
# prints, holds at most 15 characters.
COMM_MAX = 15


def _effective_adj(proc: ProcScore) -> int | None:
    """oom_score_adj, or the legacy oom_adj mapped onto its scale (kernels before 2.6.36)."""
    if proc.oom_score_adj is not None:
        return proc.oom_score_adj
    return adj_from_legacy(proc.oom_adj) if proc.oom_adj is not None else None


def is_protected(proc: ProcScore) -> bool:
    """True when the OOM killer will never pick this process (oom_score_adj -1000, oom_adj -17)."""
    adj = _effective_adj(proc)
    return adj is not None and adj <= OOM_SCORE_ADJ_MIN


def rank(procs: Iterable[ProcScore]) -> list[ProcScore]:
    """Processes in the order the OOM killer would pick them: oom_score, then rss, then pid."""
    return sorted(procs, key=lambda p: (-p.oom_score, -(p.rss_kb or 0), p.pid))


def _same_comm(a: str, b: str) -> bool:
    return a[:COMM_MAX] == b[:COMM_MAX]


# The highest uid of a system account (Debian's and Fedora's SYS_UID_MAX in login.defs).
SYSTEM_UID_MAX = 999


def owned_as_required(proc: ProcScore, rule: CriticalRule, system_uid_max: int = SYSTEM_UID_MAX) -> bool:
    """The rule's owner check: its `uid` if it names one, else a system account.

    Names and command lines are chosen by whoever starts a process, so without this an
    unprivileged user could run a memory hog called "sshd" and have it flagged, or even
    shielded from the OOM killer by `protect`, at everybody else's expense.
    """
    if proc.uid is None:
        return False
    return proc.uid == rule.uid if rule.uid is not None else proc.uid <= system_uid_max


def matches(proc: ProcScore, rule: CriticalRule, system_uid_max: int = SYSTEM_UID_MAX) -> bool:
    """True when the process has the owner the rule requires and any field it sets matches.

    name: exact comm (a name longer than the kernel's 15 characters matches its
    truncation); cmdline: regular expression searched in the command line; unit and
    cgroup: shell globs on the whole value.
    """
    if not owned_as_required(proc, rule, system_uid_max):
        return False
    if rule.name is not None and proc.process in (rule.name, rule.name[:COMM_MAX]):
        return True
    if rule.cmdline is not None and proc.cmdline and re.search(rule.cmdline, proc.cmdline):
        return True
    if rule.unit is not None and proc.unit and fnmatch.fnmatchcase(proc.unit, rule.unit):
        return True
    return bool(rule.cgroup is not None and proc.cgroup and fnmatch.fnmatchcase(proc.cgroup, rule.cgroup))


def mark_critical(procs: Iterable[ProcScore], rules: Sequence[CriticalRule],
                  system_uid_max: int = SYSTEM_UID_MAX) -> list[ProcScore]:
    """The processes, those matching any rule with critical=True."""
    return [
        p.replace(critical=True) if not p.critical and any(matches(p, r, system_uid_max) for r in rules) else p
        for p in procs
    ]


def at_risk(ranked: Sequence[ProcScore], top_n: int) -> list[tuple[ProcScore, str]]:
    """Critical processes the OOM killer may pick, each with the reason in an operator's words.

    `ranked` is rank()'s output. A critical process is at risk when it is among the first
    top_n likely victims, or when it sits at oom_score_adj >= 0 while other processes are
    shielded by a negative one. A protected process (oom_score_adj -1000 or legacy
    oom_adj -17) is never at risk.
    """
    shielded = [p for p in ranked if (_effective_adj(p) or 0) < 0]
    result: list[tuple[ProcScore, str]] = []
    for position, proc in enumerate(ranked, start=1):
        if not proc.critical or is_protected(proc):
            continue
        label = f"{proc.process} (pid {proc.pid})"
        adj = _effective_adj(proc)
        if position <= top_n:
            result.append((
                proc,
                f"{label} is #{position} of the OOM killer's likely victims"
                f" (oom_score {proc.oom_score}); protect it with oom_score_adj",
            ))
            continue
        others = [p for p in shielded if p.pid != proc.pid]
        if adj is not None and adj >= 0 and others:
            examples = ", ".join(sorted({p.process for p in others})[:3])
            result.append((
                proc,
                f"{label} has oom_score_adj {adj} while {len(others)} other"
                f" process{'es' if len(others) != 1 else ''} ({examples}) are shielded by a"
                " negative one; protect it with oom_score_adj",
            ))
    return result


def protection_plan(procs: Iterable[ProcScore], protect_adj: int) -> list[tuple[ProcScore, int, int]]:
    """(process, from_adj, to_adj) for each critical process whose oom_score_adj is above protect_adj.

    Only lowers: a critical process already at or below protect_adj, a process that is
    not critical, and a process whose adj is unknown are left alone.
    """
    if not OOM_SCORE_ADJ_MIN <= protect_adj <= OOM_SCORE_ADJ_MAX:
        raise ValueError(f"protect_adj must be within -1000..1000, not {protect_adj}")
    plan: list[tuple[ProcScore, int, int]] = []
    for proc in procs:
        adj = _effective_adj(proc)
        if proc.critical and adj is not None and adj > protect_adj:
            plan.append((proc, adj, protect_adj))
    return plan


class ProcessCache:
    """A bounded memory of recently seen processes, so a kill record can name its victim's cmdline.

    Entries are keyed by (pid, start_time), which tells a reused pid apart, and evicted
    least recently seen first once there are more than max_entries, or when they were
    last seen longer than max_age ago.
    """

    def __init__(self, max_entries: int = 4096, max_age: timedelta | None = None) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.max_entries = max_entries
        self.max_age = max_age
        # The daemon's scan thread remembers while its kernel-log thread looks up.
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[int, int | None], tuple[ProcScore, datetime]] = OrderedDict()
        # pid -> start_times seen for it, oldest first (an insertion-ordered set).
        self._by_pid: dict[int, dict[int | None, None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def resize(self, max_entries: int) -> None:
        """Keep at most `max_entries` from now on (the least recently seen go first)."""
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        with self._lock:
            self.max_entries = max_entries
            while len(self._entries) > self.max_entries:
                self._evict_oldest()

    def remember(self, procs: Iterable[ProcScore], now: datetime) -> None:
        """Record the processes of one scan as seen at `now`."""
        with self._lock:
            self._remember(procs, now)

    def _remember(self, procs: Iterable[ProcScore], now: datetime) -> None:
        for proc in procs:
            key = (proc.pid, proc.start_time)
            self._entries[key] = (proc, now)
            self._entries.move_to_end(key)
            starts = self._by_pid.setdefault(proc.pid, {})
            starts.pop(proc.start_time, None)
            starts[proc.start_time] = None
        while len(self._entries) > self.max_entries:
            self._evict_oldest()
        if self.max_age is not None:
            cutoff = now - self.max_age
            while self._entries and next(iter(self._entries.values()))[1] < cutoff:
                self._evict_oldest()

    def _evict_oldest(self) -> None:
        (pid, start_time), _ = self._entries.popitem(last=False)
        starts = self._by_pid[pid]
        del starts[start_time]
        if not starts:
            del self._by_pid[pid]

    def lookup(self, pid: int, process_name: str | None = None) -> ProcScore | None:
        """The most recently seen process with this pid (and this name, when given).

        The kernel prints at most 15 characters of a name, so names are compared on that
        prefix; a reused pid that now runs another program is not returned.
        """
        with self._lock:
            for start_time in reversed(self._by_pid.get(pid, {})):
                proc = self._entries[(pid, start_time)][0]
                if process_name is None or _same_comm(proc.process, process_name):
                    return proc
        return None

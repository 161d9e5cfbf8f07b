"""The shared vocabulary of watchdog-oom: plain frozen values that flow between modules.

This module imports nothing from the package but the value-class decorator (which imports
nothing), so every other module may import it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from datetime import datetime
from typing import Any

from watchdog_oom.valueclass import valueclass

SEVERITIES = ("info", "warning", "critical")
KILLERS = ("kernel", "systemd-oomd", "earlyoom", "nohang")


def severity_rank(severity: str) -> int:
    """Order of a severity name: info 0, warning 1, critical 2 (unknown: -1)."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return -1


@valueclass
class KernelLine:
    """One kernel log message as a source delivers it, wrapper already removed where known.

    `text` is the message. `time` is wall-clock time when the source knows it.
    `mono_usec` is the kernel's timestamp (microseconds since boot) when known:
    the kmsg record's usec field or dmesg's `[ 1234.567890]` prefix.
    `cursor` is the opaque position to persist once this line (and everything before it)
    has been processed; `None` for sources that cannot resume.
    """

    text: str
    source: str
    time: datetime | None = None
    mono_usec: int | None = None
    seq: int | None = None
    prio: int | None = None
    cursor: str | None = None
    boot_id: str | None = None
    # True when `text` still carries its log wrapper (syslog header, dmesg prefix,
    # journalctl short output); the parser removes it.
    wrapped: bool = False


@valueclass
class SourceGap:
    """A source lost records (kmsg overwrote them: EPIPE; a log file was truncated)."""

    source: str
    missed: int | None
    message: str
    cursor: str | None = None


@valueclass
class CaughtUp:
    """A source has delivered everything that was already there when it opened."""

    source: str


@valueclass(compiled_init=True)  # one a task-table row parsed: import builds them by the thousand
class TaskRow:
    """One row of the kernel's task table printed with an OOM report (memory in kB)."""

    pid: int
    uid: int | None
    tgid: int | None
    total_vm_kb: int | None
    rss_kb: int | None
    pgtables_kb: int | None
    swapents: int | None
    oom_score_adj: int | None
    name: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@valueclass(fast_init=True)  # one a kill parsed: import builds 100,000 (valueclass.py)
class OomKill:
    """One process killed by the OOM killer (the kernel's or a user-space one).

    Field names follow the kill record of INTERFACE.md. A field the log does not carry
    is None, never a guess.
    """

    pid: int | None  # None when the killer names a cgroup, not a process (systemd-oomd)
    process: str
    time: datetime | None = None
    mono_usec: int | None = None
    uid: int | None = None
    total_vm_kb: int | None = None
    anon_rss_kb: int | None = None
    file_rss_kb: int | None = None
    shmem_rss_kb: int | None = None
    pgtables_kb: int | None = None
    oom_score_adj: int | None = None
    score: int | None = None
    constraint: str | None = None
    memcg: str | None = None
    task_memcg: str | None = None
    cgroup_oom: bool = False
    invoker: str | None = None
    invoker_pid: int | None = None
    gfp_mask: str | None = None
    order: int | None = None
    killer: str = "kernel"
    source: str | None = None
    host: str | None = None
    boot_id: str | None = None
    cmdline: str | None = None
    unit: str | None = None
    # The biggest entries of the kernel's task table (by rss), for `show`.
    task_table: tuple[TaskRow, ...] = ()
    # Memory state lines the kernel printed with the report (Mem-Info, memcg usage).
    memory_info: tuple[str, ...] = ()
    # Free-form extras: reaper figures, user-space killer details, raw kill line.
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> OomKill:
        return dataclasses.replace(self, **changes)


# The fields of a kill record (INTERFACE.md), in the order JSON and CSV show them.
KILL_FIELDS = (
    "id", "host", "boot_id", "time", "pid", "process", "uid",
    "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb", "pgtables_kb", "oom_score_adj",
    "constraint", "memcg", "task_memcg", "cgroup_oom",
    "invoker", "invoker_pid", "gfp_mask", "order", "killer", "source", "cmdline", "unit",
)


def kill_record_from_value(kill: OomKill, kill_id: int | None = None) -> dict[str, Any]:
    """The kill record of a parsed (not necessarily stored) kill, JSON-ready."""
    record = {name: getattr(kill, name, None) for name in KILL_FIELDS if name not in ("id", "time")}
    record["id"] = kill_id
    record["time"] = kill.time.isoformat() if kill.time is not None else None
    return {name: record[name] for name in KILL_FIELDS}


def with_local_time(kill: OomKill) -> OomKill:
    """Syslog and `dmesg -T` stamps carry no offset: they are this host's local time."""
    if kill.time is not None and kill.time.tzinfo is None:
        return kill.replace(time=kill.time.astimezone())
    return kill


@valueclass
class MemorySample:
    """What /proc said about memory at one moment (kB unless named otherwise)."""

    time: datetime
    mem_total_kb: int
    mem_available_kb: int | None
    mem_free_kb: int | None
    swap_total_kb: int
    swap_free_kb: int
    committed_as_kb: int
    commit_limit_kb: int
    overcommit_memory: int | None
    overcommit_ratio: int | None
    overcommit_kbytes: int | None
    psi_some_avg10: float | None = None
    psi_full_avg10: float | None = None
    psi_full_total_us: int | None = None
    oom_kill_count: int | None = None  # /proc/vmstat oom_kill (4.13+)

    @property
    def commit_percent(self) -> float:
        """sar -r %commit: Committed_AS / (MemTotal + SwapTotal) x 100."""
        total = self.mem_total_kb + self.swap_total_kb
        return round(self.committed_as_kb * 100.0 / total, 2) if total else 0.0

    @property
    def commit_limit_percent(self) -> float | None:
        """Committed_AS / CommitLimit x 100."""
        if not self.commit_limit_kb:
            return None
        return round(self.committed_as_kb * 100.0 / self.commit_limit_kb, 2)

    @property
    def mem_available_percent(self) -> float | None:
        if self.mem_available_kb is None or not self.mem_total_kb:
            return None
        return round(self.mem_available_kb * 100.0 / self.mem_total_kb, 2)


@valueclass
class ProcScore:
    """One process as the OOM killer would rank it."""

    pid: int
    process: str
    oom_score: int
    oom_score_adj: int | None
    uid: int | None = None
    rss_kb: int | None = None
    cmdline: str | None = None
    cgroup: str | None = None
    unit: str | None = None
    oom_adj: int | None = None  # legacy /proc/PID/oom_adj, -17..15
    start_time: int | None = None  # /proc/PID/stat starttime, to tell pid reuse apart
    critical: bool = False

    def replace(self, **changes: Any) -> ProcScore:
        return dataclasses.replace(self, **changes)


@valueclass
class CriticalRule:
    """A process that must not be the OOM killer's victim. Any one field set matches.

    `name`: exact comm; `cmdline`: regular expression searched in the command line;
    `unit`: glob on the systemd unit or container; `cgroup`: glob on the cgroup path.
    `uid`: the owner the process must have. Without it only processes of system accounts
    match, because any local user can name a process "sshd" or give it any command line.
    """

    name: str | None = None
    cmdline: str | None = None
    unit: str | None = None
    cgroup: str | None = None
    uid: int | None = None


@valueclass
class Alert:
    """A condition a rule raised or resolved.

    `key` identifies the condition across evaluations (e.g. "commit", "memory.available",
    "process.at_risk:mysqld"); `kind` is the notification type ("commit.warning", …).
    """

    key: str
    kind: str
    severity: str
    summary: str
    time: datetime
    resolved: bool = False
    data: dict[str, Any] = field(default_factory=dict)


@valueclass
class Notification:
    """A message to deliver through one channel, rendered by each channel its own way.

    `id` is stable across retries (the webhook-id). `kind` is the type of INTERFACE.md
    ("oom.kill", "commit.warning", "test", …); for "oom.kill", `data["kills"]` lists
    kill records as JSON-ready dicts.
    """

    id: str
    kind: str
    time: datetime
    host: str
    severity: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    reason: str = "first"  # first | new | repeat | resolved | test


@valueclass
class CgroupSample:
    """One memory cgroup with a limit of its own, as its files said at one moment (bytes).

    `path` is the cgroup as the kernel prints it in an OOM report (`oom_memcg=`,
    `task_memcg=`): relative to the root of its hierarchy. `working_set_bytes` is usage
    minus inactive file pages, floored at 0: the figure the kubelet evicts on and
    cAdvisor exports as container_memory_working_set_bytes, because inactive page cache is
    reclaimed before the OOM killer runs. `oom_kill` counts the kills of processes in this
    cgroup and its descendants. A file this kernel or version does not have is None.
    """

    path: str
    version: int  # 1 or 2
    time: datetime
    limit_bytes: int | None  # memory.max (v2), memory.limit_in_bytes (v1); None: no limit of its own
    usage_bytes: int
    working_set_bytes: int
    high_bytes: int | None = None  # memory.high (v2)
    inactive_file_bytes: int | None = None
    swap_bytes: int | None = None
    swap_limit_bytes: int | None = None  # memory.swap.max (v2), memsw limit minus memory limit (v1)
    failcnt: int | None = None  # memory.failcnt (v1): times usage hit the limit
    events: dict[str, int] = field(default_factory=dict)  # memory.events (v2): low high max oom oom_kill
    oom_kill: int | None = None
    under_oom: bool | None = None  # memory.oom_control under_oom (v1)
    oom_group: bool | None = None  # memory.oom.group (v2): a kill takes every process of the cgroup
    psi_some_avg10: float | None = None  # memory.pressure (v2, 4.20+)
    psi_full_avg10: float | None = None
    name: str | None = None  # for people: "web (docker)", "default/api-7f9/app", "mysqld.service"
    kind: str = "cgroup"  # container | pod | service | scope | slice | cgroup
    # runtime, container_id, container, pod, namespace, pod_uid: what the path and runtime state say
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def percent(self) -> float | None:
        """Working set in percent of the limit, to two decimals; None without a limit."""
        if not self.limit_bytes:
            return None
        return round(self.working_set_bytes * 100.0 / self.limit_bytes, 2)

    @property
    def headroom_bytes(self) -> int | None:
        """How far the working set is from the limit (negative past it); None without a limit."""
        return None if self.limit_bytes is None else self.limit_bytes - self.working_set_bytes

    def replace(self, **changes: Any) -> CgroupSample:
        return dataclasses.replace(self, **changes)


@valueclass
class CgroupTask:
    """One process of a memory cgroup, with the figures the kernel's oom_badness() adds up.

    rss, swap and page tables in kB (/proc/PID/status VmRSS, VmSwap, VmPTE).
    """

    pid: int
    process: str
    oom_score_adj: int
    rss_kb: int
    swap_kb: int = 0
    pgtables_kb: int = 0
    uid: int | None = None
    cmdline: str | None = None
    cgroup: str | None = None

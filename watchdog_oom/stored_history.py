"""The history's values that only its readers use (`history`, `show`, `report`, the charts):
memory samples, protections and oom_score_adj writes as stored, a chart's points and marks.

Apart from watchdog_oom.stored so that the daemon, which never reads them back, does not
load their classes (about 6 kB traced each). watchdog_oom.stored still names them (PEP 562).
"""

from __future__ import annotations

from datetime import datetime

from watchdog_oom.valueclass import valueclass


@valueclass
class StoredSample:
    """A memory reading as kept: `resolution` 0 for a raw sample, else the seconds it averages."""

    id: int
    host: str
    time: datetime
    resolution: int
    mem_total_kb: int
    swap_total_kb: int
    swap_free_kb: int
    committed_as_kb: int
    commit_limit_kb: int
    commit_percent: float
    mem_available_kb: int | None = None
    commit_limit_percent: float | None = None
    mem_available_percent: float | None = None
    psi_some_avg10: float | None = None
    psi_full_avg10: float | None = None
    overcommit_memory: int | None = None

@valueclass
class ProtectionRecord:
    """A change the daemon made to a process's oom_score_adj (processes.protect)."""

    id: int
    host: str
    time: datetime
    pid: int
    process: str
    to_adj: int
    cmdline: str | None = None
    from_adj: int | None = None
    error: str | None = None

@valueclass
class AdjustmentRecord:
    """A write to a process's oom_score_adj the tracepoint saw, and who made it."""

    id: int
    host: str
    time: datetime
    pid: int
    process: str
    new_adj: int
    writer_tid: int
    writer_process: str
    boot_id: str | None = None
    cmdline: str | None = None
    unit: str | None = None
    old_adj: int | None = None
    critical: bool = False
    by_watchdog: bool = False
    severity: str | None = None  # the alert it raised, if any
    writer_pid: int | None = None
    writer_cmdline: str | None = None
    writer_unit: str | None = None
    writer_uid: int | None = None
    writer_exited: bool = False
    writer_unknown: str | None = None  # why the writer is not known (its event was lost)
    found_by: str = "tracepoint"  # or "resync": found by re-reading /proc after events were lost

@valueclass
class SeriesPoint:
    """A sample as a chart draws it: its time, the percents drawn, and what it averages."""

    time: datetime
    commit_percent: float
    commit_limit_percent: float | None
    mem_available_percent: float | None
    resolution: int

@valueclass
class SeriesSlice:
    """A slice of a chart's period, reduced in the database: its first sample's time, the worst
    of each percent (highest commit and limit, lowest available), the longest resolution,
    and how many samples it holds."""

    time: datetime
    commit_percent: float | None
    commit_limit_percent: float | None
    mem_available_percent: float | None
    resolution: int
    samples: int

@valueclass
class KillMark:
    """A kill as a chart marks it."""

    time: datetime
    pid: int | None
    process: str
    killer: str
    anon_rss_kb: int | None
    task_memcg: str | None
    memcg: str | None

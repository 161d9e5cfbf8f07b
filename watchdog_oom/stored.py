"""The history's values: what the store returns, one frozen dataclass per kind of row.

The shared vocabulary of model.py, as stored: each carries its id and the bookkeeping the
database adds (when it was recorded, an episode's status, an outbox row's attempts).
Field names are the columns' names, so a caller reads `kill.process` or `row.attempts`
whichever engine answered, and never holds a database session. Imports nothing from
the package, like model.py.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from dataclasses import field
from datetime import datetime
from typing import Any

from watchdog_oom.valueclass import valueclass


@valueclass
class StoredKill:
    """A recorded kill: the kill record of INTERFACE.md plus what `show` adds."""

    id: int
    host: str
    process: str
    recorded_at: datetime
    boot_id: str | None = None
    time: datetime | None = None
    mono_usec: int | None = None
    pid: int | None = None
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
    alloc_order: int | None = None
    killer: str = "kernel"
    source: str | None = None
    cmdline: str | None = None
    unit: str | None = None
    # task_table, memory_info, extra, and the memory state sampled before the kill
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def order(self) -> int | None:
        """The allocation order, under the kill record's name for it."""
        return self.alloc_order


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
class AlertEpisode:
    """One episode of a condition, from when it fired to when it resolved."""

    id: int
    host: str
    key: str
    kind: str
    severity: str
    status: str  # firing | resolved
    summary: str
    started_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


@valueclass
class OutboxRow:
    """One notification for one channel, as the outbox keeps it: what to send and how it went."""

    id: int
    host: str
    uuid: str  # the webhook-id, the same on every retry
    channel: str
    kind: str
    severity: str
    reason: str  # first | new | repeat | resolved | test
    summary: str
    status: str  # pending | sending | sent | failed | given_up | muted
    created_at: datetime
    due_at: datetime
    attempts: int = 0
    group_key: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    alert_id: int | None = None
    mute_id: int | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    detail: str | None = None
    sent_at: datetime | None = None


@valueclass
class MuteRule:
    """Silences matching notifications until `until`; `host` None mutes the whole fleet."""

    id: int
    created_at: datetime
    until: datetime
    host: str | None = None
    kind: str | None = None
    process: str | None = None
    cgroup: str | None = None
    reason: str | None = None


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
class QuarantinedRecord:
    """A kill the database would not store, kept with the text it was read from and the error."""

    id: int
    host: str
    recorded_at: datetime
    raw: str  # the kill as read: its raw line, else its fields as JSON
    error: str
    time: datetime | None = None
    source: str | None = None
    process: str | None = None


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


def from_row(cls: type[Any], mapping: Any) -> Any:
    """A value of `cls` from a database row's mapping, ignoring columns it does not name."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return cls(**{k: v for k, v in mapping.items() if k in names})


def row_maker(cls: type[Any], columns: Sequence[str]) -> Callable[[Sequence[Any]], Any]:
    """A function making a value of `cls` from a row's tuple whose columns are `columns`,
    ignoring columns it does not name: the column order is worked out once, not per row."""
    fields = [f.name for f in dataclasses.fields(cls)]
    index = {name: i for i, name in enumerate(columns)}
    if all(name in index for name in fields):  # every field a column: positional arguments
        positions = [index[name] for name in fields]
        if len(positions) == 1:
            only = positions[0]
            return lambda row: cls(row[only])
        pick = operator.itemgetter(*positions)
        return lambda row: cls(*pick(row))
    named = [(name, index[name]) for name in fields if name in index]
    return lambda row: cls(**{name: row[i] for name, i in named})


_NAMES: dict[type[Any], frozenset[str]] = {}  # each value class's field names

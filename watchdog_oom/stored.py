"""The history's values: what the store returns, one frozen dataclass per kind of row.

The shared vocabulary of model.py, as stored: each carries its id and the bookkeeping the
database adds (when it was recorded, an episode's status, an outbox row's attempts).
Field names are the columns' names, so a caller reads `kill.process` or `row.attempts`
whichever engine answered, and never holds a database session. Imports nothing from
the package, like model.py. Here, what the daemon writes or reads back (kills, alert
episodes, outbox rows, mutes, quarantined kills); what only the history's readers build
(samples, protections, adjustments, a chart's points) is in watchdog_oom.stored_history,
named here too.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Sequence
from dataclasses import field
from datetime import datetime
from typing import Any

from watchdog_oom.forward import forward
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


_HISTORY = frozenset({"StoredSample", "ProtectionRecord", "AdjustmentRecord", "SeriesPoint", "SeriesSlice", "KillMark"})


# The history-only values, loaded when first named here.
__getattr__ = forward(__name__, {"watchdog_oom.stored_history": _HISTORY})

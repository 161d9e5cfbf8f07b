"""A new kills row as a plain tuple of its column values, free of any database.

`import` builds the rows where it reads the logs (a forked child that has not loaded
SQLAlchemy), sends them through a pipe as they are (tuples of plain values pickle
cheaply), and store/batch.py writes them with no object per kill in between; its own
burst path (Tx.add_kills) builds them from kills the same way. A row holds every column
of the kills table but `id`, in the table's order (a test holds COLUMNS equal to the
table's); `details` is the JSON column's value (a dict) and `time` an offset-aware
datetime, as SQLAlchemy would bind them.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from datetime import datetime, timezone
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from watchdog_oom.model import OomKill, TaskRow

# The kills table's columns but id, in its order (tables.kills).
COLUMNS = ("host", "boot_id", "time", "mono_usec", "pid", "process", "uid", "total_vm_kb", "anon_rss_kb",
           "file_rss_kb", "shmem_rss_kb", "pgtables_kb", "oom_score_adj", "score", "constraint", "memcg",
           "task_memcg", "cgroup_oom", "invoker", "invoker_pid", "gfp_mask", "alloc_order", "killer", "source",
           "cmdline", "unit", "details", "recorded_at")
HOST, TIME, MONO_USEC, PID, PROCESS, SOURCE, DETAILS, RECORDED_AT = (
    COLUMNS.index(name) for name in ("host", "time", "mono_usec", "pid", "process", "source", "details", "recorded_at"))
Row = tuple[Any, ...]

_TASK_FIELDS = tuple(field.name for field in dataclasses.fields(TaskRow))
_task_values = operator.attrgetter(*_TASK_FIELDS)


def row_values(kill: OomKill, host: str, now: datetime | None = None,
               details: dict[str, Any] | None = None) -> list[Any]:
    """The column values of a new kills row for `kill`, in COLUMNS' order, as a list
    (`host`: the kill's when it names none; `now`: when it is recorded, None until then).
    records.kill_values's values (a test holds them equal): a dict of 28 keys per kill cost
    a third of its insert."""
    # TaskRow.to_dict (dataclasses.asdict) copies field by field, deeply: its fields are
    # scalars, so one attrgetter gives the same dict, several times faster (300 rows a report).
    tasks = [dict(zip(_TASK_FIELDS, _task_values(t), strict=True)) for t in kill.task_table] if kill.task_table else []
    values = list(_kill_columns(kill))  # one C call for the 26 columns that are the kill's fields
    if not values[HOST]:
        values[HOST] = host
    values += ({"task_table": tasks, "memory_info": list(kill.memory_info), "extra": kill.extra, **(details or {})},
               now)
    return values


# The kill's fields behind the columns up to details (alloc_order is the kill's order).
_kill_columns = operator.attrgetter(*("order" if name == "alloc_order" else name for name in COLUMNS[:DETAILS]))


def kill_row(kill: OomKill, host: str, now: datetime | None = None, details: dict[str, Any] | None = None) -> Row:
    """row_values as a tuple: the row to store for `kill`."""
    return tuple(row_values(kill, host, now, details))


def kill_from_row(row: Row) -> OomKill:
    """The kill a row was made of (its details beyond the task table, the memory state and
    the extras left out): what matching a sighting with the stored ones reads."""
    details = row[DETAILS] or {}
    values = dict(zip(COLUMNS, row, strict=True))
    return OomKill(
        pid=row[PID], process=row[PROCESS], time=row[TIME], mono_usec=row[MONO_USEC], uid=values["uid"],
        total_vm_kb=values["total_vm_kb"], anon_rss_kb=values["anon_rss_kb"], file_rss_kb=values["file_rss_kb"],
        shmem_rss_kb=values["shmem_rss_kb"], pgtables_kb=values["pgtables_kb"],
        oom_score_adj=values["oom_score_adj"], score=values["score"], constraint=values["constraint"],
        memcg=values["memcg"], task_memcg=values["task_memcg"], cgroup_oom=values["cgroup_oom"],
        invoker=values["invoker"], invoker_pid=values["invoker_pid"], gfp_mask=values["gfp_mask"],
        order=values["alloc_order"], killer=values["killer"], source=values["source"], host=row[HOST],
        boot_id=values["boot_id"], cmdline=values["cmdline"], unit=values["unit"],
        task_table=tuple(TaskRow(**task) for task in details.get("task_table") or ()),
        memory_info=tuple(details.get("memory_info") or ()), extra=details.get("extra") or {})


# The columns whose values SQLite's bind processors convert (the others go as they are):
# prepared_params converts them as those processors do, where the default ones are in use.
CGROUP_OOM = COLUMNS.index("cgroup_oom")


def json_dumps(value: Any) -> str:
    """json.dumps(value), the JSON column's default serializer: the same text, by one C
    encoder made once (json.dumps makes one a call, a third of its time on a kill's details).
    No check for cycles: a value that holds itself fails with RecursionError, not ValueError."""
    return "".join(_ENCODE(value, 0))


def _json_encoder() -> Any:
    if c_make_encoder is None:  # no C accelerator (another Python): json.dumps as it is
        return lambda value, _level: (json.dumps(value),)
    defaults = json.JSONEncoder()
    return c_make_encoder(None, defaults.default, encode_basestring_ascii, None, defaults.key_separator,
                          defaults.item_separator, defaults.sort_keys, defaults.skipkeys, defaults.allow_nan)


_ENCODE = _json_encoder()


def time_text(value: datetime) -> str:
    """An offset-aware time as SQLite's column stores it (tables.UtcDateTime, then SQLite's
    DATETIME: UTC, no offset, microseconds always), in one C call instead of four Python ones."""
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")

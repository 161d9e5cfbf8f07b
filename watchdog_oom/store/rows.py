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
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from watchdog_oom.bounds import KILL_TEXT_CAPS, MEMORY_INFO_MAX, PROCESS_MAX, TEXT_MAX, cap_kill, too_long
from watchdog_oom.model import KILL_FIELDS, OomKill, TaskRow

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


def capped(rows: Sequence[Row]) -> list[Row]:
    """The rows as bounds.cap_kill leaves their kills: every text within its cap. Checked a
    column at a time, and a row's extras once per distinct nested value (the rows of a log
    share their evidence); a row that may hold too long a text is made a kill again,
    capped, and a row again (its details beyond the task table, the memory state and the
    extras left out: an import's rows hold no others)."""
    if not rows:
        return []
    columns = list(zip(*rows, strict=True))
    suspects: set[int] = set()
    for name, limit in KILL_TEXT_CAPS:
        values = columns[COLUMNS.index(name)]
        try:
            fit = max(map(len, filter(None, values)), default=0) <= limit
        except TypeError:  # not text: looked at row by row
            fit = False
        if not fit:
            suspects.update(at for at, value in enumerate(values) if isinstance(value, str) and len(value) > limit)
    checked: dict[int, Any] = {}  # id() of a nested extra found within the caps -> it (kept: its id stays its own)
    for at, details in enumerate(columns[DETAILS]):
        if at not in suspects and _details_too_long(details or {}, checked):
            suspects.add(at)
    if not suspects:
        return list(rows)
    return [kill_row(cap_kill(kill_from_row(row)), row[HOST], row[RECORDED_AT]) if at in suspects else row
            for at, row in enumerate(rows)]


def _details_too_long(details: dict[str, Any], checked: dict[int, Any]) -> bool:
    """Whether cap_kill would cut a task's name, the memory state or the extras of a row's details."""
    tasks, lines, extra = details.get("task_table"), details.get("memory_info"), details.get("extra")
    if tasks and max(len(task["name"]) for task in tasks) > PROCESS_MAX:
        return True
    if lines and (len(lines) > MEMORY_INFO_MAX or max(map(len, lines)) > TEXT_MAX):
        return True
    if not extra:
        return False
    if type(extra) is not dict:
        return too_long(extra)
    if max(map(len, map(str, extra))) > 256:
        return True
    for value in extra.values():
        if isinstance(value, str):
            if len(value) > TEXT_MAX:
                return True
        elif id(value) not in checked and isinstance(value, (dict, list, tuple)):
            if too_long(value):
                return True
            checked[id(value)] = value
    return False


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


# The row's value behind each field of the kill record but id (`order` is alloc_order).
_RECORD_COLUMNS = tuple(COLUMNS.index("alloc_order" if name == "order" else name) for name in KILL_FIELDS[1:])
_RECORD_VALUES = operator.itemgetter(*_RECORD_COLUMNS)
_RECORD_TIME = KILL_FIELDS.index("time")


def record_values(kill_id: int | None, row: Row) -> list[Any]:
    """The values of row_record, in KILL_FIELDS' order (a list of them costs less than a dict)."""
    values = [kill_id, *_RECORD_VALUES(row)]
    when = values[_RECORD_TIME]
    if when is not None:
        values[_RECORD_TIME] = when.isoformat()
    return values


def record_columns(ids: Sequence[int | None], rows: Sequence[Row]) -> list[Sequence[Any]]:
    """The records of rows stored under `ids` (None: not stored), column by column in
    KILL_FIELDS' order: row_record's values, a batch's at once (its rows transposed in
    one call, each time made text in one pass)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    records: list[Sequence[Any]] = [ids, *(columns[i] for i in _RECORD_COLUMNS)]
    records[_RECORD_TIME] = [when if when is None else when.isoformat() for when in records[_RECORD_TIME]]
    return records


def row_record(kill_id: int | None, row: Row) -> dict[str, Any]:
    """The INTERFACE.md kill record of a row stored under `kill_id` (None: not stored):
    records.kill_record's of the stored kill."""
    return dict(zip(KILL_FIELDS, record_values(kill_id, row), strict=True))


def row_evidence(row: Row) -> Any:
    """What the kill of a row was read from (details.extra.evidence), or None."""
    extra = (row[DETAILS] or {}).get("extra")
    return extra.get("evidence") if isinstance(extra, dict) else None


# The columns whose values SQLite's bind processors convert (the others go as they are):
# prepared_params converts them as those processors do, where the default ones are in use.
CGROUP_OOM = COLUMNS.index("cgroup_oom")


def prepared_params(rows: Sequence[Row]) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """The columns to insert (recorded_at aside) and the rows' values of them, as SQLite's
    default bind processors make them, free of SQLAlchemy (a reading process prepares them,
    the recording one checks its processors agree: store.batch.import_prepared); None
    where a value needs a processor's own work (a time without an offset, a flag not a
    bool). Columns no row has a value for are left out (NULL all the same)."""
    if not rows:
        return None
    columns: list[Any] = list(zip(*rows, strict=True))  # per column, its values
    times = columns[TIME]
    try:
        columns[TIME] = [when if when is None else time_text(when) for when in times]
        columns[CGROUP_OOM] = [FLAGS[flag] for flag in columns[CGROUP_OOM]]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None
    if any(when is not None and when.tzinfo is None for when in times):
        return None
    last: list[Any] = []  # the batch's last nested value encoded, and its text
    columns[DETAILS] = [_details_json(details, last) for details in columns[DETAILS]]
    kept = [i for i, values in enumerate(columns) if i != RECORDED_AT and values.count(None) != len(rows)]
    return [COLUMNS[i] for i in kept], list(zip(*(columns[i] for i in kept), strict=True))


FLAGS = {True: 1, False: 0}

def params_rows(names: Sequence[str], params: Sequence[tuple[Any, ...]], suffixes: Sequence[str | None]) -> list[Row]:
    """The rows of which `params` are the prepared_params (recorded_at None), as a stored
    kill reads back: the details made a dict again from their JSON text, each time the
    UTC one stored given again the offset isoformat() ended it with (`suffixes`: one a
    row; None where there is no time), the flag a bool."""
    count = len(params)
    columns: list[Any] = [(None,) * count] * len(COLUMNS)
    for name, values in zip(names, zip(*params, strict=True), strict=False):
        columns[_INDEX[name]] = values
    columns[TIME] = [None if text is None else _offset_time(text, suffix)
                     for text, suffix in zip(columns[TIME], suffixes, strict=True)]
    if "cgroup_oom" in names:
        columns[CGROUP_OOM] = [None if flag is None else bool(flag) for flag in columns[CGROUP_OOM]]
    columns[DETAILS] = [None if text is None else json.loads(text) for text in columns[DETAILS]]
    return list(zip(*columns, strict=True))


def _offset_time(text: str, suffix: str | None) -> datetime:
    """A time stored as `text` (UTC) in the offset isoformat() writes as `suffix`."""
    zone = _ZONES.get(suffix)
    if zone is None:
        zone = _ZONES[suffix] = timezone(datetime.fromisoformat(f"2000-01-01T00:00:00{suffix or '+00:00'}").utcoffset()
                                         or timedelta(0))
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).astimezone(zone)


_INDEX = {name: at for at, name in enumerate(COLUMNS)}
_ZONES: dict[str | None, timezone] = {}  # an offset's isoformat() text -> the offset
  # (1 and 0 are keys too: they equal True and False; anything else fails)


def json_dumps(value: Any) -> str:
    """json.dumps(value), the JSON column's default serializer: the same text, by one C
    encoder made once (json.dumps makes one a call, a third of its time on a kill's details).
    No check for cycles: a value that holds itself fails with RecursionError, not ValueError."""
    return "".join(_ENCODE(value, 0))


def _details_json(details: Any, last: list[Any]) -> str:
    """json_dumps(details), a dict of a kill's details: its values and those of a dict in it
    (the extras) encoded one by one, a nested dict or list (the evidence, which the kills
    of a log share: import_logs._Interned) once for as long as it comes again (`last`:
    the last one and its text, kept by the caller for a batch of rows built at once)."""
    if type(details) is not dict:
        return json_dumps(details)
    parts = []
    for key, value in details.items():
        if type(key) is not str:  # json.dumps writes other keys its own way
            return json_dumps(details)
        if type(value) is dict:
            inner = []
            for name, item in value.items():
                if type(name) is not str:
                    return json_dumps(details)
                inner.append(f"{_QUOTE(name)}: {_QUOTE(item) if type(item) is str else _nested_json(item, last)}")
            parts.append(f"{_QUOTE(key)}: {{{', '.join(inner)}}}")
        else:
            parts.append(f"{_QUOTE(key)}: {'[]' if value == [] and type(value) is list else _nested_json(value, last)}")
    return f"{{{', '.join(parts)}}}"


def _nested_json(value: Any, last: list[Any]) -> str:
    """json_dumps(value); a dict or list that is `last`'s (the one before) its text again."""
    if type(value) is dict or type(value) is list:
        if last and last[0] is value:
            return str(last[1])
        text = json_dumps(value)
        last[:] = [value, text]  # held: its id is not reused while it is compared by identity
        return text
    return json_dumps(value)


_QUOTE = encode_basestring_ascii


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

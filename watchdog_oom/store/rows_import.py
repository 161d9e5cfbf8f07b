"""The kills rows as the `import` command handles them, free of any database: cut to the
caps of bounds.py (`capped`), prepared as SQLite's parameters where they are read
(`prepared_params`) and made rows again (`params_rows`), and made the records `import`
prints (`record_columns`, `row_record`, `row_evidence`).

Split from store/rows.py, whose rows the daemon's kill writer builds and stores too:
the daemon never runs any of this, and its code objects were some 40 KiB (traced) of
the idle daemon's. Like rows.py, it loads no SQLAlchemy (a reading child imports it).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring_ascii
from typing import Any

from watchdog_oom.bounds import KILL_TEXT_CAPS, MEMORY_INFO_MAX, PROCESS_MAX, TEXT_MAX, cap_kill, too_long
from watchdog_oom.model import KILL_FIELDS
from watchdog_oom.store.rows import (
    CGROUP_OOM,
    COLUMNS,
    DETAILS,
    HOST,
    RECORDED_AT,
    TIME,
    Row,
    json_dumps,
    kill_from_row,
    kill_row,
    time_text,
)


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


def prepared_params(rows: Sequence[Row]) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """The columns to insert (recorded_at aside) and the rows' values of them, as SQLite's
    default bind processors make them, free of SQLAlchemy (a reading process prepares them,
    the recording one checks its processors agree: store.batch_import.import_prepared); None
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


FLAGS = {True: 1, False: 0}  # (1 and 0 are keys too: they equal True and False; anything else fails)


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

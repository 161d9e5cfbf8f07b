"""The `import` command's batches of kills rows: `import_rows` (record_rows in a
transaction of its own) and, where a batch is all new kills, `import_columns`: the
values as the reading process prepared them (store/rows_import.py), inserted as they
came, a few hundred rows a statement.

Split from store/batch.py, whose record_rows the daemon's kill writer runs too: the
daemon never runs any of this, and its code objects were some 30 KiB (traced) of the
idle daemon's.
"""

from __future__ import annotations

import itertools
import json
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from watchdog_oom.store.batch import (
    IN_LIST,
    Recorded,
    _insert_head,
    _insert_sql,
    _padded,
    _processors,
    _time_text_agrees,
    record_rows,
    table,
)
from watchdog_oom.store.rows import CGROUP_OOM, DETAILS, RECORDED_AT, TIME, Row, json_dumps
from watchdog_oom.store.rows_import import capped
from watchdog_oom.store.serial import writing_kills


def import_rows(store: Any, rows: Sequence[Row], now: datetime) -> list[Recorded]:
    """Record one batch of rows (store.rows) as read, cut to the caps of bounds.py, in a
    transaction of its own: record_rows."""
    rows = capped(rows)
    with store.engine.begin() as conn:
        return record_rows(conn, store.host, rows, now)


def import_prepared(store: Any, names: Sequence[str], params: Sequence[tuple[Any, ...]],
                    now: datetime) -> list[int] | None:
    """import_columns of a batch given row by row (rows_import.prepared_params of capped rows)."""
    count = len(params)
    columns = [_shared(list(values)) for values in zip(*params, strict=True)] if count else [[] for _ in names]
    return import_columns(store, names, columns, count, now)


def _shared(values: list[Any]) -> Any:
    """A column's values, or a 1-tuple of the value all share (of one type: 1 equals True
    and 1.0, which SQLite stores otherwise)."""
    first, count = values[0], len(values)
    if values.count(first) == count and list(map(type, values)).count(type(first)) == count:
        return (first,)
    return values


def import_columns(store: Any, names: Sequence[str], columns: Sequence[Sequence[Any]], count: int,
                   now: datetime) -> list[int] | None:
    """Record a batch prepared where it was read when all its kills are new, in a
    transaction of its own: their ids, in order. `columns`: per name, its `count` values
    (rows_import.prepared_params' of capped rows, column by column), or a 1-tuple of the value all
    share (import_wire.Packed's). None, with nothing written, where it needs import_rows:
    another database than SQLite, bind processors not the default ones, a kill without
    host or pid, two kills of one (host, pid), or a stored kill with a pid of the batch
    (what record_rows would look at).

    The same rows as import_rows stores, at a fraction of the recording process's work:
    the dedupe is one indexed query per host that finds nothing (the pids written into
    it: integers), and the values go to the driver as they came (_insert_columns)."""
    dialect = store.engine.dialect
    if dialect.name != "sqlite" or not _default_processors(dialect) or "pid" not in names or names[0] != "host":
        return None
    if not count:
        return []
    by_host = _pids_by_host(_spread(columns[0], count), _spread(columns[names.index("pid")], count))
    if by_host is None or sum(map(len, by_host.values())) != count:  # two kills of one (host, pid) too:
        return None  # record_rows matches them
    recorded_at = (_processors(dialect)[RECORDED_AT](now),)
    with store.engine.begin() as conn:
        writing_kills(conn, by_host)  # before the look-up: no other writer inserts these kills meanwhile
        for host, pids in by_host.items():
            for chunk in _padded(sorted(pids)):
                if conn.exec_driver_sql(_ANY_STORED, (host, *chunk)).first() is not None:
                    return None
        _insert_columns(conn, [*names, "recorded_at"], [*columns, recorded_at], count)
        # SQLite gives each new row the largest id + 1, and the write lock taken above keeps
        # every other writer out until the commit: the batch's ids are the last `count`.
        last_id = conn.execute(select(func.max(table.c.id))).scalar_one()
    return list(range(last_id - count + 1, last_id + 1))


def _spread(values: Sequence[Any], count: int) -> Sequence[Any]:
    """A column's `count` values (a 1-tuple: the value all share)."""
    return values * count if type(values) is tuple else values


# Bound parameters a statement of _insert_columns takes at most (its rows: this over the
# columns that vary): the statement is prepared once for all the batches of its shape,
# and SQLite's driver keeps its last 128 statements prepared, each some 30 bytes a value.
ROWS_PARAMS, ROWS_MOST = 2000, 500


def _insert_columns(conn: Connection, names: Sequence[str], columns: Sequence[Sequence[Any]], count: int) -> None:
    """Insert `count` rows given column by column (a 1-tuple: the value all rows share).

    A statement a few hundred rows: INSERT … SELECT ?, column1, … FROM (VALUES (…), …),
    each value the rows share bound once (most of a log's kills have the same host,
    source, killer, memcg, evidence) and each of the others once a row: executemany binds
    every value of every row and steps the statement once a row, which took a third more
    of SQLite's and the driver's time (100,000 minimal kills: 0.98 s against 0.74). SQLite
    reads a VALUES list in its order, and inserts the rows so (their ids follow it). The
    rows short of a whole statement go in by executemany (one shape of statement a
    batch's columns, not one a batch's length: see ROWS_PARAMS)."""
    varying = [at for at, values in enumerate(columns) if type(values) is not tuple]
    if not varying:  # (one row, or rows alike: the pid at least varies, but be general)
        varying = [0]
        columns = [_spread(columns[0], count), *columns[1:]]
    shared = [values[0] for values in columns if type(values) is tuple]
    limit = _variable_limit(conn)
    rows = max(1, min(ROWS_MOST, min(ROWS_PARAMS, limit - len(shared)) // len(varying)))
    whole = count - count % rows if rows > 1 else 0
    if whole:
        picked = iter(range(1, len(varying) + 1))
        chosen = ", ".join("?" if type(values) is tuple else f"column{next(picked)}" for values in columns)
        row = "(" + ", ".join("?" * len(varying)) + ")"
        statement = (f"{_insert_head(conn.dialect, names)} SELECT {chosen} FROM (VALUES "
                     f"{', '.join(itertools.repeat(row, rows))})")
        by_row = list(zip(*(columns[at] for at in varying), strict=True))
        for start in range(0, whole, rows):
            conn.exec_driver_sql(statement, (*shared, *itertools.chain.from_iterable(by_row[start:start + rows])))
    if whole < count:
        rest = [values if type(values) is tuple else values[whole:] for values in columns]
        conn.exec_driver_sql(_insert_sql(conn.dialect, names),
                             list(zip(*(_spread(values, count - whole) for values in rest), strict=True)))


def _variable_limit(conn: Connection) -> int:
    """The most bound parameters a statement of SQLite's may take (999 before 3.32)."""
    import sqlite3

    try:
        return int(conn.connection.dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))  # type: ignore[union-attr]
    except (AttributeError, sqlite3.Error):
        return 999


def _pids_by_host(hosts: Sequence[Any], pids: Sequence[Any]) -> dict[str, set[int]] | None:
    """The pids of each host (one pid a host, in order), or None where a pid is not an int
    or a host not a name. In C calls: a batch is thousands."""
    count = len(pids)
    if list(map(type, pids)).count(int) != count or list(map(type, hosts)).count(str) != count or "" in hosts:
        return None
    if hosts.count(hosts[0]) == count:  # (most batches: one host)
        return {hosts[0]: set(pids)}
    by_host: dict[str, set[int]] = {}
    for host, pid in zip(hosts, pids, strict=True):
        by_host.setdefault(host, set()).add(pid)
    return by_host


# Whether a host's kills hold one of IN_LIST pids (padded: one statement; see _BY_PIDS).
_ANY_STORED = f"SELECT 1 FROM {table.name} WHERE host = ? AND pid IN ({', '.join('?' * IN_LIST)}) LIMIT 1"


def _default_processors(dialect: Any) -> bool:
    """Whether SQLite's bind processors of the kills columns are those rows_import.prepared_params
    stands for: none but the times', the flag's and the details' (json.dumps)."""
    agrees = _AGREES.get(dialect)
    if agrees is None:
        processors = _processors(dialect)
        agrees = (all(process is None for i, process in enumerate(processors)
                      if i not in (TIME, CGROUP_OOM, DETAILS, RECORDED_AT))
                  and _time_text_agrees(processors[TIME]) and dialect._json_serializer in (None, json.dumps)
                  and processors[CGROUP_OOM](True) == 1 and processors[CGROUP_OOM](False) == 0
                  and processors[DETAILS]({"a": ["é"]}) == json_dumps({"a": ["é"]}))
        _AGREES[dialect] = agrees
    return agrees


_AGREES: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()  # a dialect -> _default_processors

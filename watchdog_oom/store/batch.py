"""Kills recorded in batches: one query finds those already stored, one INSERT writes the rest.

A burst on the live path and an import of old logs both hand over many kills at once.
Looking each one up and flushing it alone costs a round trip per kill (an import of
100,000 kills took 138 s that way); here a batch costs one SELECT of the candidates (the
host's kills in the batch's time range, give or take the window two sightings of one kill
may differ by), the matching in Python with the very rules of `Tx.find_same_kill`, and
one insert of the new rows: `INSERT … RETURNING` on PostgreSQL (SQLAlchemy's
insertmanyvalues), the driver's executemany on SQLite. Duplicates within the batch are
caught too; a later sighting that knows more (a boot id, a command line) fills the stored
record's gaps with one UPDATE, or the new row's values before it is inserted.

An import sends every kill of its logs through here (the benchmark: 100,000), as the rows
of store/rows.py built where the logs are read: a new row goes to the database as it
came, its parameters converted by the columns' processors only where no shorter way
writes the same text, and only a row whose host and pid a stored kill or an earlier row
of the batch has is looked at as a kill.
"""

from __future__ import annotations

import itertools
import json
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from watchdog_oom.model import OomKill, with_local_time
from watchdog_oom.store.records import SAME_KILL_WINDOW, fill_missing, same_kill
from watchdog_oom.store.rows import (
    CGROUP_OOM,
    COLUMNS,
    DETAILS,
    HOST,
    PID,
    RECORDED_AT,
    TIME,
    Row,
    capped,
    json_dumps,
    kill_from_row,
    kill_row,
    time_text,
)
from watchdog_oom.store.serial import writing_kills
from watchdog_oom.store.tables import full
from watchdog_oom.store.tables import kills as table
from watchdog_oom.stored import StoredKill, row_maker

# Bound parameters per IN (…) list where the values are bound (kills_by_id): well under
# SQLite's limit (999 before SQLite 3.32).
IN_LIST = 500
# The stored kills with one of up to IN_LIST pids: a query per IN_LIST of a batch's pids
# (one list a query, not several ORed, so that SQLite looks each pid up in the (host, pid)
# index: with an OR of lists it read all the host's kills, every batch), each list padded
# to IN_LIST with its first pid, so that every query is one statement. The pids written
# into the text (as this did) made each batch's statement a new one, and SQLite's driver
# keeps its last 128 statements prepared, each with its list: the recording process grew
# by some 16 MiB for each 100,000 kills imported, up to 256,000.
_BY_PIDS = select(table).where(table.c.host == bindparam("host"), table.c.pid.in_(bindparam("pids", expanding=True)))
# systemd-oomd kills a cgroup again and again: only the same moment is the same kill.
CGROUP_KILL_WINDOW = timedelta(seconds=1)

Item = tuple[OomKill, dict[str, Any] | None]  # a kill and extra details to store with it
# Per row recorded: its kill's id, whether it is new, and its row as stored now.
Recorded = tuple[int, bool, Row]


def record_kills(conn: Connection, host: str, items: Sequence[Item], now: datetime) -> list[tuple[StoredKill, bool]]:
    """Store the kills of `items` not stored yet, in the caller's transaction; returns, per
    item and in order, its stored record and whether it is new (False: seen before)."""
    rows = [kill_row(with_local_time(kill), host, now, details) for kill, details in items]
    return [(_stored_kill((kill_id, *row)), new) for kill_id, new, row in record_rows(conn, host, rows, now)]


def import_rows(store: Any, rows: Sequence[Row], now: datetime) -> list[Recorded]:
    """Record one batch of rows (store.rows) as read, cut to the caps of bounds.py, in a
    transaction of its own: record_rows."""
    rows = capped(rows)
    with store.engine.begin() as conn:
        return record_rows(conn, store.host, rows, now)


def import_prepared(store: Any, names: Sequence[str], params: Sequence[tuple[Any, ...]],
                    now: datetime) -> list[int] | None:
    """import_columns of a batch given row by row (rows.prepared_params of capped rows)."""
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
    (rows.prepared_params' of capped rows, column by column), or a 1-tuple of the value all
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


def _padded(pids: list[int]) -> list[list[int]]:
    """`pids` in lists of IN_LIST, the last padded with its first (see _BY_PIDS)."""
    chunks = [pids[at:at + IN_LIST] for at in range(0, len(pids), IN_LIST)]
    return [chunk + [chunk[0]] * (IN_LIST - len(chunk)) for chunk in chunks]


def _default_processors(dialect: Any) -> bool:
    """Whether SQLite's bind processors of the kills columns are those rows.prepared_params
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


def record_rows(conn: Connection, host: str, rows: Sequence[Row], now: datetime) -> list[Recorded]:
    """Store the rows (store.rows.kill_row, offset-aware times) of kills not stored yet, in
    the caller's transaction, recorded at `now`; returns per row, in order, its kill's id,
    whether it is new, and its row as stored now: the very tuple given where that is so
    (its recorded_at as given), else the stored kill's (or the batch's first sighting's,
    which a later one filled) values."""
    # Locked before the look-up: no other writer inserts the same kills meanwhile.
    writing_kills(conn, {row[HOST] or host for row in rows})
    known = _candidates(conn, host, rows)
    # A new row stands for itself among the candidates as its index in `fresh`, and is made
    # a _Row (attributes: what same_kill and fill_missing read) only when a later sighting
    # in this batch has its host and pid: the one case where its values are read, or changed.
    fresh: list[Any] = []  # per new row: its tuple, or its _Row once a later sighting looked at it
    slot: dict[int, int] = {}  # id() of a new row's _Row -> its index in fresh
    results: list[tuple[Any, bool]] = []  # (index in fresh, new) or (a stored row, False)
    for row in rows:
        where = (row[HOST] or host, row[PID])
        candidates = known.get(where)
        if candidates is None:
            known[where] = [len(fresh)]
            results.append((len(fresh), True))
            fresh.append(row)
            continue
        kill = kill_from_row(row)
        _materialise(fresh, candidates, slot)
        same = next((entry for entry in candidates if _within(entry, kill) and same_kill(entry, kill)), None)
        if same is None:
            candidates.append(len(fresh))
            results.append((len(fresh), True))
            fresh.append(row)
            continue
        index = slot.get(id(same))
        if index is not None:  # a new row of this batch: it gets the values when it is inserted
            fill_missing(same, kill)
            results.append((index, False))
            continue
        before = dict(vars(same))
        fill_missing(same, kill)
        changed = {k: v for k, v in vars(same).items() if before.get(k) != v}
        if changed:
            conn.execute(update(table).where(table.c.id == same.id).values(**changed))
        results.append((same, False))
    ids = _insert(conn, now, fresh) if fresh else []
    stored = [entry if type(entry) is tuple else _values(entry) for entry in fresh]
    return [(ids[ref], new, stored[ref]) if type(ref) is int else (ref.id, False, _values(ref))
            for ref, new in results]


def _materialise(fresh: list[Any], candidates: list[Any], slot: dict[int, int]) -> None:
    """Make each new row among `candidates` (an index in fresh) a _Row, in its place in
    `fresh` and among the candidates."""
    for at, entry in enumerate(candidates):
        if type(entry) is int:
            row = fresh[entry]
            if type(row) is not _Row:
                row = fresh[entry] = _Row(dict(zip(COLUMNS, row, strict=True)))
                slot[id(row)] = entry
            candidates[at] = row


class _Row:
    """A kills row's values as attributes (what same_kill and fill_missing read), over
    its values' own dict: SimpleNamespace would copy every one of them."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__ = values


def _values(row: Any) -> Row:
    """A row's values as attributes (_Row, a stored row's namespace) in COLUMNS' order."""
    values = vars(row)
    return tuple(values[name] for name in COLUMNS)


_stored_kill = row_maker(StoredKill, ("id", *COLUMNS))


def _insert(conn: Connection, now: datetime, fresh: list[Any]) -> list[int]:
    """Insert the new rows of `fresh` (a tuple or a _Row each), recorded at `now`; returns
    their ids, in order.

    PostgreSQL: one INSERT … RETURNING (SQLAlchemy's insertmanyvalues keeps the order).
    SQLite: SQLAlchemy would fall back to one statement per row to keep RETURNING in
    order, so the rows go in with executemany instead, and their ids follow from the
    largest one: a new rowid is the largest plus one, and this transaction holds SQLite's
    write lock, so the batch's ids are consecutive.
    """
    rows = [entry if type(entry) is tuple else _values(entry) for entry in fresh]
    if conn.dialect.name != "sqlite":
        # The schema's Table (made at start, Database): the order of the ids RETURNING
        # gives is kept by insertmanyvalues through the table's autoincrement key.
        kills = full("kills")
        statement = insert(kills).returning(kills.c.id, sort_by_parameter_order=True)
        params = [{**dict(zip(COLUMNS, row, strict=True)), "recorded_at": now} for row in rows]
        return list(conn.execute(statement, params).scalars())
    names, params = _sqlite_params(conn.dialect, rows, now)
    conn.exec_driver_sql(_insert_sql(conn.dialect, names), params)
    last_id = conn.execute(select(func.max(table.c.id))).scalar_one()
    return list(range(last_id - len(rows) + 1, last_id + 1))


def _insert_sql(dialect: Any, names: Sequence[str]) -> str:
    return f"{_insert_head(dialect, names)} VALUES ({', '.join('?' * len(names))})"


def _insert_head(dialect: Any, names: Sequence[str]) -> str:
    return f"INSERT INTO {table.name} ({', '.join(dialect.identifier_preparer.quote(name) for name in names)})"


def _sqlite_params(dialect: Any, rows: list[Row], now: datetime) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns to insert and the rows' values of them as the driver's parameters.

    Each column's own bind processing (SQLAlchemy's executemany builds a parameter dict
    per row, which costs more than SQLite's insert), a column at a time; a batch shares
    its recorded_at, converted once; an offset-aware time and the details take the
    processors' short ways (same text; see rows.time_text). A column no row of the batch has
    a value for is left out (NULL all the same: no kills column has a default in the
    database), each bound NULL being work for SQLite (most kills lack a third of them)."""
    processors = _processors(dialect)
    columns: list[Any] = list(zip(*rows, strict=True))  # per column, its values
    time_processor, boolean = processors[TIME], processors[CGROUP_OOM]
    fast_time = time_text if _time_text_agrees(time_processor) else time_processor
    columns[TIME] = [when if when is None else fast_time(when) if when.tzinfo is not None else time_processor(when)
                     for when in columns[TIME]]
    columns[CGROUP_OOM] = [int(flag) if type(flag) is bool else boolean(flag) for flag in columns[CGROUP_OOM]]
    columns[DETAILS] = list(map(dialect._json_serializer or json_dumps, columns[DETAILS]))
    columns[RECORDED_AT] = [processors[RECORDED_AT](now)] * len(rows)
    for i, process in enumerate(processors):
        if process is not None and i not in (TIME, CGROUP_OOM, DETAILS, RECORDED_AT):
            columns[i] = [value if value is None else process(value) for value in columns[i]]
    kept = [i for i, values in enumerate(columns) if values.count(None) != len(rows)]
    return [COLUMNS[i] for i in kept], list(zip(*(columns[i] for i in kept), strict=True))


def _processors(dialect: Any) -> list[Any]:
    """Each of COLUMNS' bind processor on `dialect` (None: the value goes as it is; SQLAlchemy
    keeps them per dialect)."""
    return [table.c[name].type._cached_bind_processor(dialect) for name in COLUMNS]


def _time_text_agrees(processor: Any) -> bool:
    """Whether rows.time_text writes what the column's processor writes (its storage format is the default)."""
    probe = datetime(987, 6, 5, 4, 3, 2, 1, tzinfo=timezone(timedelta(hours=-7)))
    return bool(processor(probe) == time_text(probe) and processor(probe.replace(microsecond=0)) ==
                time_text(probe.replace(microsecond=0)))


def _candidates(conn: Connection, host: str, rows: Sequence[Row]) -> dict[tuple[str, int | None], list[Any]]:
    """The stored kills that may be one of `rows`', by (host, pid): a query or two per host."""
    found: dict[tuple[str, int | None], list[Any]] = {}
    by_host: dict[str, list[Row]] = {}
    for row in rows:
        by_host.setdefault(row[HOST] or host, []).append(row)
    for name, group in by_host.items():
        # The same kill has the same pid (find_same_kill asks for it): the (host, pid) index
        # answers a batch in a few lookups, whatever the times and boots.
        pids = sorted({row[PID] for row in group if row[PID] is not None})
        results = [conn.execute(_BY_PIDS, {"host": name, "pids": chunk}) for chunk in _padded(pids)]
        cgroup_kills = [row for row in group if row[PID] is None]
        if cgroup_kills:  # systemd-oomd's: no pid, only the moment tells
            times = [row[TIME] for row in cgroup_kills if row[TIME] is not None]
            results.append(conn.execute(select(table).where(table.c.host == name, table.c.pid.is_(None), or_(
                table.c.time.is_(None),
                *([table.c.time.between(min(times) - SAME_KILL_WINDOW, max(times) + SAME_KILL_WINDOW)]
                  if times else []),
                *([table.c.mono_usec.is_not(None)] if len(times) < len(cgroup_kills) else [])))))
        for result in results:
            for row in result:
                found.setdefault((row.host, row.pid), []).append(SimpleNamespace(**row._mapping))
    return found


def _within(row: Any, kill: OomKill) -> bool:
    """The time condition of Tx.find_same_kill, in Python."""
    window = CGROUP_KILL_WINDOW if kill.pid is None else SAME_KILL_WINDOW
    if kill.time is not None and row.time is not None and abs(row.time - kill.time) <= window:
        return True
    if kill.mono_usec is not None and row.mono_usec == kill.mono_usec:
        return True
    return kill.time is None and kill.mono_usec is None and row.time is None and row.mono_usec is None

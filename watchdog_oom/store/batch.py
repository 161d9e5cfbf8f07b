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
    json_dumps,
    kill_from_row,
    kill_row,
    time_text,
)
from watchdog_oom.store.serial import writing_kills
from watchdog_oom.store.tables import keyed
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


def _padded(pids: list[int]) -> list[list[int]]:
    """`pids` in lists of IN_LIST, the last padded with its first (see _BY_PIDS)."""
    chunks = [pids[at:at + IN_LIST] for at in range(0, len(pids), IN_LIST)]
    return [chunk + [chunk[0]] * (IN_LIST - len(chunk)) for chunk in chunks]


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
        # The kills Table with its key (made at the first batch, tables.keyed): the order of
        # the ids RETURNING gives is kept by insertmanyvalues through its autoincrement key.
        kills = keyed("kills")
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

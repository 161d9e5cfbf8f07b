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

An import sends every kill of its logs through here (the benchmark: 100,000), so a new
row is a list of its values built in one expression, its parameters are converted by
the columns' processors only where no shorter way writes the same text, and nothing is
built twice.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from watchdog_oom.model import OomKill, TaskRow, with_local_time
from watchdog_oom.store.records import SAME_KILL_WINDOW, fill_missing, same_kill
from watchdog_oom.store.tables import kills as table
from watchdog_oom.stored import StoredKill, from_row, row_maker

# Bound parameters per IN (…) list where the values are bound (kills_by_id): well under
# SQLite's limit (999 before SQLite 3.32).
IN_LIST = 500
# The stored kills with one of a batch's pids: one IN list, the pids (integers) written
# into the statement when it runs, so no count of bound parameters can reach a limit
# (SQLite's was 999), and one list, not several ORed, so that SQLite looks each pid up in
# the (host, pid) index: with an OR of lists it read all the host's kills, every batch.
_BY_PIDS = select(table).where(table.c.host == bindparam("host"),
                               table.c.pid.in_(bindparam("pids", expanding=True, literal_execute=True)))
# systemd-oomd kills a cgroup again and again: only the same moment is the same kill.
CGROUP_KILL_WINDOW = timedelta(seconds=1)

Item = tuple[OomKill, dict[str, Any] | None]  # a kill and extra details to store with it


def record_kills(conn: Connection, host: str, items: Sequence[Item], now: datetime) -> list[tuple[StoredKill, bool]]:
    """Store the kills of `items` not stored yet, in the caller's transaction; returns, per
    item and in order, its stored record and whether it is new (False: seen before)."""
    kills = [(with_local_time(kill), details) for kill, details in items]
    known: dict[tuple[str, int | None], list[Any]] = _candidates(conn, host, [kill for kill, _ in kills])
    # A new kill stands for its own row among the candidates (same_kill and _within read
    # the same attributes of both), and its row's values are built when it is inserted:
    # only a later sighting of it in this batch, which may fill its gaps, needs them before.
    fresh: list[Any] = []  # per new row: (kill, details), or its _Row once a later sighting changed it
    slot: dict[int, int] = {}  # id() of a new row's stand-in among the candidates -> its index in fresh
    results: list[tuple[Any, bool]] = []  # (index in fresh, new) or (a stored row, False)
    for kill, details in kills:
        where = (kill.host or host, kill.pid)
        candidates = known.get(where)
        same = None
        if candidates:
            same = next((row for row in candidates if _within(row, kill) and same_kill(row, kill)), None)
        if same is None:
            slot[id(kill)] = len(fresh)
            results.append((len(fresh), True))
            fresh.append((kill, details))
            if candidates is None:
                known[where] = [kill]
            else:
                candidates.append(kill)
            continue
        index = slot.get(id(same))
        if index is not None:  # a new row of this batch: it gets the values when it is inserted
            if type(same) is OomKill:
                same = _materialise(fresh, index, host, now, candidates or [], slot)
            fill_missing(same, kill)
            results.append((index, False))
            continue
        before = dict(vars(same))
        fill_missing(same, kill)
        changed = {k: v for k, v in vars(same).items() if before.get(k) != v}
        if changed:
            conn.execute(update(table).where(table.c.id == same.id).values(**changed))
        results.append((same, False))
    stored = _insert(conn, host, now, fresh) if fresh else []
    return [(stored[ref], new) if type(ref) is int else (from_row(StoredKill, vars(ref)), False)
            for ref, new in results]


def _materialise(fresh: list[Any], index: int, host: str, now: datetime, candidates: list[Any],
                 slot: dict[int, int]) -> _Row:
    """The row of the new kill fresh[index] as attributes (fill_missing changes them), in
    its place in `fresh` and among the candidates."""
    kill, details = fresh[index]
    row = fresh[index] = _Row(dict(zip(COLUMNS, _new_values(kill, details, host, now), strict=True)))
    candidates[:] = [row if entry is kill else entry for entry in candidates]
    slot[id(row)] = index
    return row


class _Row:
    """A new kills row's values as attributes (what same_kill and fill_missing read), over
    its values' own dict: SimpleNamespace would copy every one of them."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__ = values


# A new row's columns, in the table's order (its id comes from the database).
COLUMNS = tuple(column.name for column in table.columns if column.name != "id")
_HOST, _TIME, _CGROUP_OOM, _DETAILS, _RECORDED_AT = (
    COLUMNS.index(name) for name in ("host", "time", "cgroup_oom", "details", "recorded_at"))
_TASK_FIELDS = tuple(field.name for field in dataclasses.fields(TaskRow))
_task_values = operator.attrgetter(*_TASK_FIELDS)
_stored_kill = row_maker(StoredKill, ("id", *COLUMNS))


def _new_values(kill: OomKill, details: dict[str, Any] | None, host: str, now: datetime) -> list[Any]:
    """The column values of a new kills row, in COLUMNS' order: records.kill_values's (a
    test holds them equal), as a list (a dict of 29 keywords per kill cost a third of its insert)."""
    # TaskRow.to_dict (dataclasses.asdict) copies field by field, deeply: its fields are
    # scalars, so one attrgetter gives the same dict, several times faster (300 rows a report).
    tasks = [dict(zip(_TASK_FIELDS, _task_values(t), strict=True)) for t in kill.task_table] if kill.task_table else []
    return [
        kill.host or host, kill.boot_id, kill.time, kill.mono_usec, kill.pid, kill.process, kill.uid,
        kill.total_vm_kb, kill.anon_rss_kb, kill.file_rss_kb, kill.shmem_rss_kb, kill.pgtables_kb, kill.oom_score_adj,
        kill.score, kill.constraint, kill.memcg, kill.task_memcg, kill.cgroup_oom, kill.invoker, kill.invoker_pid,
        kill.gfp_mask, kill.order, kill.killer, kill.source, kill.cmdline, kill.unit,
        {"task_table": tasks, "memory_info": list(kill.memory_info), "extra": kill.extra, **(details or {})},
        now,
    ]


def _insert(conn: Connection, host: str, now: datetime, fresh: list[Any]) -> list[StoredKill]:
    """Insert the new rows of `fresh` ((kill, details) or a _Row each); returns their
    records, in order.

    PostgreSQL: one INSERT … RETURNING (SQLAlchemy's insertmanyvalues keeps the order).
    SQLite: SQLAlchemy would fall back to one statement per row to keep RETURNING in
    order, so the rows go in with executemany instead, and their ids follow from the
    largest one: a new rowid is the largest plus one, and this transaction holds SQLite's
    write lock, so the batch's ids are consecutive.
    """
    rows = [_new_values(*entry, host, now) if type(entry) is tuple else [entry.__dict__[name] for name in COLUMNS]
            for entry in fresh]
    if conn.dialect.name != "sqlite":
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        ids = list(conn.execute(statement, [dict(zip(COLUMNS, row, strict=True)) for row in rows]).scalars())
    else:
        conn.exec_driver_sql(_insert_sql(conn.dialect), _sqlite_params(conn.dialect, rows, now))
        last_id = conn.execute(select(func.max(table.c.id))).scalar_one()
        ids = list(range(last_id - len(rows) + 1, last_id + 1))
    return [_stored_kill((kill_id, *row)) for kill_id, row in zip(ids, rows, strict=True)]


def _insert_sql(dialect: Any) -> str:
    names = ", ".join(dialect.identifier_preparer.quote(name) for name in COLUMNS)
    return f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' * len(COLUMNS))})"


def _sqlite_params(dialect: Any, rows: list[list[Any]], now: datetime) -> list[tuple[Any, ...]]:
    """The rows as the driver's parameters: each column's own bind processing (SQLAlchemy's
    executemany builds a parameter dict per row, which costs more than SQLite's insert).
    A batch shares its recorded_at, converted once; an offset-aware time and the details
    take the processors' short ways (same text; see _time_text)."""
    processors = _processors(dialect)
    convert = [(i, process) for i, process in enumerate(processors) if process is not None
               and i not in (_TIME, _CGROUP_OOM, _DETAILS, _RECORDED_AT)]
    time_processor, boolean = processors[_TIME], processors[_CGROUP_OOM]
    fast_time = _time_text if _time_text_agrees(time_processor) else time_processor
    serialize = dialect._json_serializer or _json_dumps
    recorded_at = processors[_RECORDED_AT](now)
    params = []
    for row in rows:
        values = row.copy()  # the row's own values make its record
        for i, process in convert:
            if values[i] is not None:
                values[i] = process(values[i])
        when = values[_TIME]
        if when is not None:
            values[_TIME] = fast_time(when) if when.tzinfo is not None else time_processor(when)
        flag = values[_CGROUP_OOM]
        values[_CGROUP_OOM] = int(flag) if type(flag) is bool else boolean(flag)
        values[_DETAILS] = serialize(values[_DETAILS])
        values[_RECORDED_AT] = recorded_at
        params.append(tuple(values))
    return params


def _json_dumps(value: Any) -> str:
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


def _processors(dialect: Any) -> list[Any]:
    """Each of COLUMNS' bind processor on `dialect` (None: the value goes as it is; SQLAlchemy
    keeps them per dialect)."""
    return [table.c[name].type._cached_bind_processor(dialect) for name in COLUMNS]


def _time_text(value: datetime) -> str:
    """An offset-aware time as SQLite's column stores it (tables.UtcDateTime, then SQLite's
    DATETIME: UTC, no offset, microseconds always), in one C call instead of four Python ones."""
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")


def _time_text_agrees(processor: Any) -> bool:
    """Whether _time_text writes what the column's processor writes (its storage format is the default)."""
    probe = datetime(987, 6, 5, 4, 3, 2, 1, tzinfo=timezone(timedelta(hours=-7)))
    return bool(processor(probe) == _time_text(probe) and processor(probe.replace(microsecond=0)) ==
                _time_text(probe.replace(microsecond=0)))


def _candidates(conn: Connection, host: str, kills: Sequence[OomKill]) -> dict[tuple[str, int | None], list[Any]]:
    """The stored kills that may be one of `kills`, by (host, pid): a query or two per host."""
    found: dict[tuple[str, int | None], list[Any]] = {}
    by_host: dict[str, list[OomKill]] = {}
    for kill in kills:
        by_host.setdefault(kill.host or host, []).append(kill)
    for name, group in by_host.items():
        # The same kill has the same pid (find_same_kill asks for it): the (host, pid) index
        # answers a batch in a few lookups, whatever the times and boots.
        pids = sorted({k.pid for k in group if k.pid is not None})
        results = [conn.execute(_BY_PIDS, {"host": name, "pids": pids})] if pids else []
        cgroup_kills = [k for k in group if k.pid is None]
        if cgroup_kills:  # systemd-oomd's: no pid, only the moment tells
            times = [k.time for k in cgroup_kills if k.time is not None]
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

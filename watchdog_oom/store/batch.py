"""Kills recorded in batches: one query finds those already stored, one INSERT writes the rest.

A burst on the live path and an import of old logs both hand over many kills at once.
Looking each one up and flushing it alone costs a round trip per kill (an import of
100,000 kills took 138 s that way); here a batch costs one SELECT of the candidates (the
host's kills in the batch's time range, give or take the window two sightings of one kill
may differ by), the matching in Python with the very rules of `Tx.find_same_kill`, and
one `INSERT … RETURNING` (SQLAlchemy's insertmanyvalues, on SQLite and PostgreSQL).
Duplicates within the batch are caught too; a later sighting that knows more (a boot id,
a command line) fills the stored record's gaps with one UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from watchdog_oom.model import OomKill, with_local_time
from watchdog_oom.store.tables import kills as table
from watchdog_oom.stored import StoredKill, from_row

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
    from watchdog_oom.store import history

    kills = [(with_local_time(kill), details) for kill, details in items]
    known = _candidates(conn, host, [kill for kill, _ in kills])
    results: list[tuple[Any, bool]] = []
    fresh: list[_Row] = []
    for kill, details in kills:
        where = (kill.host or host, kill.pid)
        same = next((row for row in known.get(where, ()) if _within(row, kill) and history.same_kill(row, kill)), None)
        if same is None:
            row = _Row(history.kill_values(kill, host, now, details))
            known.setdefault(where, []).append(row)
            fresh.append(row)
            results.append((row, True))
            continue
        before = dict(vars(same))
        history.fill_missing(same, kill)
        changed = {k: v for k, v in vars(same).items() if before.get(k) != v}
        if changed and same.id is not None:  # a row of this batch gets the values when it is inserted
            conn.execute(update(table).where(table.c.id == same.id).values(**changed))
        results.append((same, False))
    if fresh:
        for row, kill_id in zip(fresh, _insert(conn, [vars(row) for row in fresh]), strict=True):
            row.id = kill_id
    # A new row holds exactly the record's fields; a stored one may hold more columns.
    return [(StoredKill(**vars(row)) if new else from_row(StoredKill, vars(row)), new) for row, new in results]


class _Row:
    """A new kills row's values as attributes (what same_kill and fill_missing read), over
    its values' own dict: SimpleNamespace would copy every one of them."""

    def __init__(self, values: dict[str, Any]) -> None:
        values["id"] = None
        self.__dict__ = values


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new kills rows; returns their ids, in order.

    PostgreSQL: one INSERT … RETURNING (SQLAlchemy's insertmanyvalues keeps the order).
    SQLite: SQLAlchemy would fall back to one statement per row to keep RETURNING in
    order, so the rows go in with executemany instead, and their ids follow from the
    largest one: a new rowid is the largest plus one, and this transaction holds SQLite's
    write lock, so the batch's ids are consecutive.
    """
    if conn.dialect.name != "sqlite":
        values = [{k: v for k, v in row.items() if k != "id"} for row in rows]
        return list(conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), values).scalars())
    # The columns' own bind processing (UTC times, JSON), then the driver's executemany:
    # SQLAlchemy's executemany builds a parameter dict per row, which costs more than
    # SQLite's insert itself.
    names = [name for name in rows[0] if name != "id"]
    processors = [(i, table.c[name].type._cached_bind_processor(conn.dialect)) for i, name in enumerate(names)]
    convert = [(i, process) for i, process in processors if process is not None]
    sql = (f"INSERT INTO {table.name} ({', '.join(conn.dialect.identifier_preparer.quote(n) for n in names)}) "
           f"VALUES ({', '.join('?' * len(names))})")
    params = []
    done: dict[int, tuple[Any, Any]] = {}  # per column, the last value converted and what it became
    for row in rows:
        values = [row[name] for name in names]
        for i, process in convert:
            value = values[i]
            if value is None:
                continue
            last = done.get(i)
            # a batch's rows share their recorded_at (and often host, killer, source)
            values[i] = last[1] if last is not None and last[0] is value else process(value)
            done[i] = (value, values[i])
        params.append(tuple(values))
    conn.exec_driver_sql(sql, params)
    last_id = conn.execute(select(func.max(table.c.id))).scalar_one()
    return list(range(last_id - len(rows) + 1, last_id + 1))


def _candidates(conn: Connection, host: str, kills: Sequence[OomKill]) -> dict[tuple[str, int | None], list[Any]]:
    """The stored kills that may be one of `kills`, by (host, pid): a query or two per host."""
    from watchdog_oom.store.history import SAME_KILL_WINDOW

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
    from watchdog_oom.store.history import SAME_KILL_WINDOW

    window = CGROUP_KILL_WINDOW if kill.pid is None else SAME_KILL_WINDOW
    if kill.time is not None and row.time is not None and abs(row.time - kill.time) <= window:
        return True
    if kill.mono_usec is not None and row.mono_usec == kill.mono_usec:
        return True
    return kill.time is None and kill.mono_usec is None and row.time is None and row.mono_usec is None

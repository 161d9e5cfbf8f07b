"""The history store: `Store`, the facade the commands use (see the package docstring):
the daemon's `Recorder` (recorder.py: transactions, the outbox, retention) and the read
side. Its parts live beside it, one concern each: engine.py (the engine, its hooks,
repairs and the schema's revision), outbox.py (claiming and finishing notifications),
queries.py (the read side), charts.py (the report's samples reduced to what a chart
draws), writes.py (`Tx`, the write side), records.py (what a kill record is and when
two are one)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update

from watchdog_oom.bounds import cap_kill
from watchdog_oom.model import KILL_FIELDS, OomKill, with_local_time
from watchdog_oom.store import StoreError
from watchdog_oom.store.charts import ChartQueries
from watchdog_oom.store.engine import SCHEMA_HEAD, _answers, db_error, insert_id, make_engine
from watchdog_oom.store.outbox import CLAIM_LEASE
from watchdog_oom.store.queries import HistoryQueries
from watchdog_oom.store.recorder import Recorder
from watchdog_oom.store.records import (
    SAME_KILL_WINDOW,
    TRACEPOINT,
    UNKNOWN_NAME,
    fill_missing,
    kill_record,
    kill_values,
    mute_matches,
    same_kill,
)
from watchdog_oom.store.tables import mutes
from watchdog_oom.store.upkeep import alembic_config, migrations_dir
from watchdog_oom.stored import MuteRule, StoredKill

__all__ = [
    "CLAIM_LEASE",
    "KILL_FIELDS",
    "SAME_KILL_WINDOW",
    "SCHEMA_HEAD",
    "TRACEPOINT",
    "UNKNOWN_NAME",
    "Recorder",
    "Store",
    "StoreError",
    "_answers",
    "alembic_config",
    "db_error",
    "fill_missing",
    "kill_record",
    "kill_values",
    "make_engine",
    "migrations_dir",
    "mute_matches",
    "same_kill",
    "with_local_time",
]

# Kills per transaction of an import: one SELECT and one INSERT each.
IMPORT_BATCH = 2000


class Store(Recorder, HistoryQueries, ChartQueries):
    """The history database of one host (or of a fleet, each row carrying its host): what
    the daemon records, and the history read back."""

    def revision(self) -> str | None:
        """The schema revision the database is at (None: not migrated)."""
        from watchdog_oom.store.upkeep import revision

        return revision(self)

    def import_kills(self, kills: Iterable[OomKill], now: datetime,
                     batch_size: int = IMPORT_BATCH) -> Iterator[tuple[StoredKill, bool]]:
        """Record kills read from old logs, `batch_size` at a time, each batch its own
        transaction (a long import never holds the database for long, and memory stays
        flat); yields, per kill in order, its record and whether it is new."""
        from watchdog_oom.store import batch

        pending = iter(kills)
        while chunk := list(itertools.islice(pending, batch_size)):
            with self.engine.begin() as conn:
                recorded = batch.record_kills(conn, self.host, [(cap_kill(kill), None) for kill in chunk], now)
            yield from recorded

    # -- mutes --------------------------------------------------------------------------

    def add_mute(self, until: datetime, now: datetime, kind: str | None = None,
                 process: str | None = None, cgroup: str | None = None, reason: str | None = None,
                 all_hosts: bool = False) -> MuteRule:
        """Record a mute; returns it with its id."""
        values: dict[str, Any] = dict(host=None if all_hosts else self.host, created_at=now, until=until,
                      kind=kind, process=process, cgroup=cgroup, reason=reason)
        with self.engine.begin() as conn:
            mute_id = insert_id(conn, mutes, values)
        return MuteRule(id=mute_id, **values)

    def mutes(self, now: datetime, active_only: bool = True) -> list[MuteRule]:
        """This host's mutes and the fleet's, the active ones unless asked otherwise."""
        m = mutes.c
        query = select(mutes).where(or_(m.host.is_(None), m.host == self.host))
        if active_only:
            query = query.where(m.until > now)
        return self._values(query.order_by(m.id), MuteRule)

    def end_mute(self, mute_id: int, now: datetime) -> bool:
        """End a mute now; False when there is no active mute with that id."""
        m = mutes.c
        with self._connection() as conn, conn.begin():
            return bool(conn.execute(update(mutes).where(m.id == mute_id, m.until > now).values(until=now)).rowcount)

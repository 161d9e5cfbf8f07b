"""The kills part of a transaction (`Tx` is made of it): record a kill unless one of its
sightings is stored already (or quarantine it), edit a stored one, count them. Core
statements on the transaction's connection; every answer is a value of
watchdog_oom.stored. The tracer's own writes (a second witness joined to a stored kill,
findings noted on one) are store/tracing.py's."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.engine import Connection

from watchdog_oom.bounds import PROCESS_MAX, TEXT_MAX, cap, cap_kill, no_nul
from watchdog_oom.model import KILL_FIELDS, OomKill, with_local_time
from watchdog_oom.store import batch
from watchdog_oom.store.engine import UNCACHED, insert_id
from watchdog_oom.store.records import SAME_KILL_WINDOW, fill_missing, kill_values, same_kill
from watchdog_oom.store.serial import writing_kills
from watchdog_oom.store.tables import kills, quarantined_kills
from watchdog_oom.stored import QuarantinedRecord, StoredKill, from_row

k = kills.c



class KillWrites:
    """Writes and reads of kills inside one transaction (a part of `Tx`)."""

    conn: Connection
    host: str

    def find_same_kill(self, kill: OomKill) -> StoredKill | None:
        """The stored record of this very kill, if any (seen before through any source)."""
        host = kill.host or self.host
        # systemd-oomd kills a cgroup, not a pid: a unit crash-looping under pressure is
        # killed again and again, so only the same moment is the same kill.
        window = timedelta(seconds=1) if kill.pid is None else SAME_KILL_WINDOW
        conditions: list[ColumnElement[bool]] = []
        if kill.time is not None:
            conditions.append(k.time.between(kill.time - window, kill.time + window))
        if kill.mono_usec is not None:
            conditions.append(k.mono_usec == kill.mono_usec)
        if not conditions:
            conditions.append(and_(k.time.is_(None), k.mono_usec.is_(None)))
        candidates = self.conn.execute(
            select(kills).where(k.host == host, k.pid.is_(None) if kill.pid is None else k.pid == kill.pid,
                                k.killer == kill.killer, or_(*conditions))
        ).all()
        return next((from_row(StoredKill, row._mapping) for row in candidates if same_kill(row, kill)), None)

    def add_kills(self, items: Sequence[tuple[OomKill, dict[str, Any] | None]],
                  now: datetime) -> list[StoredKill | None]:
        """Store many kills at once (a burst): per item, its new record, or None for a kill
        stored already (or earlier in `items`), as `add_kill` answers. One SELECT and one
        INSERT for the lot (see store/batch.py), in this transaction."""
        items = [(cap_kill(kill), details) for kill, details in items]  # within the caps of bounds.py
        recorded = batch.record_kills(self.conn, self.host, items, now)
        return [row if new else None for row, new in recorded]

    def add_kill(self, kill: OomKill, now: datetime, details: dict[str, Any] | None = None) -> StoredKill | None:
        """Store a kill unless it is stored already; returns the new record, or None for a
        duplicate (whose record takes what this sighting knows more). Text fields are
        stored within the caps of `watchdog_oom.bounds`."""
        kill = cap_kill(with_local_time(kill))
        writing_kills(self.conn, [kill.host or self.host])  # before the look-up: no other writer inserts it meanwhile
        existing = self.find_same_kill(kill)
        if existing is not None:
            self.edit_kill(existing.id, lambda row: fill_missing(row, kill))
            return None
        values = kill_values(kill, self.host, now, details)
        kill_id = insert_id(self.conn, kills, values)
        return StoredKill(id=kill_id, **values)

    def quarantine_kill(self, kill: OomKill, error: str, now: datetime) -> QuarantinedRecord:
        """Keep a kill the database refused, with the text it was read from and the error."""
        raw = (kill.extra.get("raw") or kill.extra.get("kill_line")) if isinstance(kill.extra, dict) else None
        if not isinstance(raw, str):
            fields = {name: getattr(kill, name, None) for name in KILL_FIELDS if hasattr(kill, name)}
            raw = json.dumps(fields, default=str, ensure_ascii=False)
        when = kill.time
        if when is not None and when.tzinfo is None:
            when = with_local_time(kill).time
        values: dict[str, Any] = dict(host=no_nul(kill.host or self.host), time=when, recorded_at=now,
                                      source=no_nul(kill.source),
                                      process=cap(no_nul(kill.process), PROCESS_MAX) if kill.process else None,
                                      raw=cap(no_nul(raw), TEXT_MAX), error=cap(no_nul(error), TEXT_MAX))
        row_id = insert_id(self.conn, quarantined_kills, values)
        return QuarantinedRecord(id=row_id, **values)

    def kills_by_id(self, ids: Sequence[int]) -> list[StoredKill]:
        """The stored kills of these ids, in the order asked (those that are gone left out)."""
        found: dict[int, StoredKill] = {}
        for start in range(0, len(ids), batch.IN_LIST):
            query = select(kills).where(k.id.in_(list(ids[start:start + batch.IN_LIST])))
            found.update((row.id, from_row(StoredKill, row._mapping)) for row in self.conn.execute(query))
        return [found[i] for i in ids if i in found]

    def count_kills(self, host: str | None = None, boot_id: str | None = None, killer: str = "kernel") -> int:
        """How many kills of `killer` are recorded for `host` (this one by default), of one boot if named."""
        query = select(func.count()).select_from(kills).where(k.host == (host or self.host), k.killer == killer)
        if boot_id is not None:
            query = query.where(k.boot_id == boot_id)
        return self.conn.scalar(query, execution_options=UNCACHED) or 0  # asked on a clock (the checks)

    def kills_by_cgroup(self, boot_id: str | None) -> dict[str, int]:
        """The kernel's kills of this boot recorded per victim cgroup (task_memcg)."""
        query = (select(k.task_memcg, func.count())
                 .where(k.host == self.host, k.killer == "kernel", k.boot_id == boot_id, k.task_memcg.is_not(None))
                 .group_by(k.task_memcg))
        return {str(path): int(n) for path, n in self.conn.execute(query, execution_options=UNCACHED)}  # on a clock

    def edit_kill(self, kill_id: int, edit: Any) -> StoredKill | None:
        """Read a stored kill in this transaction, let `edit` change its fields in place, and
        write back the columns it changed (one UPDATE, none if nothing changed)."""
        found = self.conn.execute(select(kills).where(k.id == kill_id)).first()
        if found is None:
            return None
        row = SimpleNamespace(**found._mapping)
        before = dict(vars(row))
        edit(row)
        changed = {name: value for name, value in vars(row).items() if before.get(name) != value}
        if changed:
            self.conn.execute(update(kills).where(k.id == kill_id).values(**changed))
        return from_row(StoredKill, vars(row))

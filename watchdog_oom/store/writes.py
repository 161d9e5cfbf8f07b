"""The write side: `Tx`, the writes of one transaction on one Core connection (cursors,
samples, alert episodes, outbox rows, protections; kills in kills.py; the tracer's own,
oom_score_adj writes among them, in tracing.py). Obtain one through `Store.tx()`:
everything it does commits together."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.engine import Connection

from watchdog_oom.model import Alert, CgroupSample, MemorySample
from watchdog_oom.store.engine import UNCACHED, insert_id
from watchdog_oom.store.kills import KillWrites
from watchdog_oom.store.records import mute_matches
from watchdog_oom.store.tables import (
    alerts,
    cgroup_samples,
    cursors,
    mutes,
    notifications,
    protections,
    samples,
)
from watchdog_oom.stored import AlertEpisode, MuteRule, OutboxRow, from_row
from watchdog_oom.valueclass import valueclass

a, n, c = alerts.c, notifications.c, cursors.c


@valueclass(frozen=False, slots=False)
class Tx(KillWrites):
    """The writes of one transaction. Obtain through `Store.tx()`."""

    conn: Connection
    host: str
    # The cursors this transaction set: the store remembers them once it commits.
    cursors_set: dict[str, str] = field(default_factory=dict)

    # -- cursors ------------------------------------------------------------------------

    def get_cursor(self, source: str) -> str | None:
        """Where `source` was last read on this host (None: never). Read on a clock (the
        checks' states): compiled at each run (UNCACHED)."""
        return self.conn.scalar(select(c.cursor).where(c.host == self.host, c.source == source),
                                execution_options=UNCACHED)

    def cursors(self) -> dict[str, str]:
        """Every stored cursor of this host, by source name."""
        return {source: cursor for source, cursor in
                self.conn.execute(select(c.source, c.cursor).where(c.host == self.host), execution_options=UNCACHED)}

    def set_cursor(self, source: str, cursor: str, now: datetime, *, cached: bool = True) -> None:
        """Record where `source` was read up to, with the rows read from it (this transaction).
        Not `cached`: a write on a clock (a check's state), compiled at each run (UNCACHED);
        the kill writer's stays cached."""
        self.cursors_set[source] = cursor
        values = dict(host=self.host, source=source, cursor=cursor, updated_at=now)
        options = {} if cached else UNCACHED
        upsert = _upsert_for(self.conn.dialect)
        if upsert is not None:  # one statement: INSERT … ON CONFLICT (host, source) DO UPDATE
            self.conn.execute(upsert(cursors).values(values).on_conflict_do_update(
                index_elements=[c.host, c.source], set_=dict(cursor=cursor, updated_at=now)),
                execution_options=options)
            return
        moved = self.conn.execute(update(cursors).where(c.host == self.host, c.source == source)
                                  .values(cursor=cursor, updated_at=now), execution_options=options).rowcount
        if not moved:
            self.conn.execute(insert(cursors).values(values), execution_options=options)

    # -- samples ------------------------------------------------------------------------

    def add_sample(self, sample: MemorySample) -> None:
        """Record one memory reading of this host."""
        self.conn.execute(insert(samples).values(
            host=self.host, time=sample.time, resolution=0,
            mem_total_kb=sample.mem_total_kb, mem_available_kb=sample.mem_available_kb,
            swap_total_kb=sample.swap_total_kb, swap_free_kb=sample.swap_free_kb,
            committed_as_kb=sample.committed_as_kb, commit_limit_kb=sample.commit_limit_kb,
            commit_percent=sample.commit_percent, commit_limit_percent=sample.commit_limit_percent,
            mem_available_percent=sample.mem_available_percent,
            psi_some_avg10=sample.psi_some_avg10, psi_full_avg10=sample.psi_full_avg10,
            overcommit_memory=sample.overcommit_memory,
        ), execution_options=UNCACHED)

    def add_cgroup_samples(self, readings: Sequence[CgroupSample]) -> None:
        """One reading of the cgroups worth keeping, in one statement (executemany)."""
        if not readings:
            return
        self.conn.execute(insert(cgroup_samples), [{
            "host": self.host, "time": x.time, "resolution": 0, "path": x.path, "name": x.name, "kind": x.kind,
            "limit_bytes": x.limit_bytes, "high_bytes": x.high_bytes, "usage_bytes": x.usage_bytes,
            "working_set_bytes": x.working_set_bytes, "working_set_percent": x.percent, "oom_kill": x.oom_kill,
        } for x in readings], execution_options=UNCACHED)

    # -- alerts -------------------------------------------------------------------------

    def firing_alerts(self) -> list[AlertEpisode]:
        """This host's alert episodes still firing, oldest first."""
        query = select(alerts).where(a.host == self.host, a.status == "firing").order_by(a.id)
        return [from_row(AlertEpisode, row._mapping) for row in self.conn.execute(query, execution_options=UNCACHED)]

    def fire_alert(self, alert: Alert) -> tuple[AlertEpisode, str | None]:
        """Open or update the episode of `alert.key`; returns it and why to notify (or None).

        The reason follows Alertmanager's dedup stage: `first` for a new episode, `new`
        when its severity changed, None when nothing a person needs to hear changed.
        """
        row = self._firing(alert.key)
        if row is None:
            values: dict[str, Any] = dict(
                host=self.host, key=alert.key, kind=alert.kind, severity=alert.severity, status="firing",
                summary=alert.summary, started_at=alert.time, updated_at=alert.time, data=alert.data)
            alert_id = insert_id(self.conn, alerts, values)
            return AlertEpisode(id=alert_id, **values), "first"
        reason = "new" if row.severity != alert.severity else None
        changes = dict(kind=alert.kind, severity=alert.severity, summary=alert.summary, updated_at=alert.time,
                       data=alert.data)
        self.conn.execute(update(alerts).where(a.id == row.id).values(changes))
        return from_row(AlertEpisode, {**row._mapping, **changes}), reason

    def resolve_alert(self, alert: Alert) -> AlertEpisode | None:
        """Close the firing episode of `alert.key`, if any; returns it as closed."""
        row = self._firing(alert.key)
        if row is None:
            return None
        changes = dict(status="resolved", resolved_at=alert.time, updated_at=alert.time,
                       data={**(row.data or {}), "resolved": alert.data})
        self.conn.execute(update(alerts).where(a.id == row.id).values(changes))
        return from_row(AlertEpisode, {**row._mapping, **changes})

    def _firing(self, key: str) -> Any:
        return self.conn.execute(
            select(alerts).where(a.host == self.host, a.key == key, a.status == "firing").order_by(a.id).limit(1)
        ).first()

    def mark_alert_notified(self, alert_id: int, now: datetime) -> None:
        """Remember when the channels were last told of an episode (for repeats)."""
        self.conn.execute(update(alerts).where(a.id == alert_id).values(last_notified_at=now))

    # -- notifications ------------------------------------------------------------------

    def active_mute(self, now: datetime, kind: str, process: str | None, cgroup: str | None) -> MuteRule | None:
        """The first mute in force now that silences this notification, if any."""
        return next((m for m in self.active_mutes(now) if mute_matches(m, kind, process, cgroup)), None)

    def active_mutes(self, now: datetime) -> list[MuteRule]:
        """The mutes in force now for this host (match them with `mute_matches`)."""
        m = mutes.c
        query = select(mutes).where(m.until > now, or_(m.host.is_(None), m.host == self.host))
        return [from_row(MuteRule, row._mapping) for row in self.conn.execute(query)]

    def enqueue(self, *, channel: str, kind: str, severity: str, reason: str, summary: str,
                data: dict[str, Any], now: datetime, due_at: datetime | None = None,
                alert_id: int | None = None, mute: MuteRule | None = None,
                group_key: str | None = None) -> OutboxRow:
        """Write one outbox row; a muted one is recorded with status `muted` and never sent."""
        values: dict[str, Any] = dict(
            host=self.host, uuid=f"msg_{uuid.uuid4().hex}", channel=channel, kind=kind, severity=severity,
            reason=reason, summary=summary, status="muted" if mute else "pending", group_key=group_key,
            data=data, alert_id=alert_id, mute_id=mute.id if mute else None,
            created_at=now, due_at=due_at or now, attempts=0,
        )
        row_id = insert_id(self.conn, notifications, values)
        return OutboxRow(id=row_id, **values)

    def open_group(self, channel: str, group_key: str, now: datetime) -> OutboxRow | None:
        """The pending notification still collecting for `group_key` (its group_wait not over)."""
        row = self.conn.execute(
            select(notifications).where(
                n.host == self.host, n.channel == channel, n.group_key == group_key, n.status == "pending",
                n.due_at > now, n.attempts == 0,
            ).order_by(n.id.desc()).limit(1)
        ).first()
        return None if row is None else from_row(OutboxRow, row._mapping)

    def extend_group(self, row: OutboxRow, summary: str, data: dict[str, Any], severity: str) -> bool:
        """Replace a collecting notification's content; False if a sender claimed it meanwhile."""
        return bool(self.conn.execute(
            update(notifications).where(n.id == row.id, n.status == "pending")
            .values(summary=summary, data=data, severity=severity)
        ).rowcount)

    def was_announced(self, alert_id: int, channel: str) -> bool:
        """Whether `channel` was told of the alert episode (anything but its resolution)."""
        return self.conn.scalar(
            select(n.id).where(n.alert_id == alert_id, n.channel == channel, n.reason != "resolved").limit(1)
        ) is not None

    # -- protections --------------------------------------------------------------------

    def add_protection(self, *, time: datetime, pid: int, process: str, cmdline: str | None,
                       from_adj: int | None, to_adj: int, error: str | None = None) -> None:
        """Record a change this daemon made to a process's oom_score_adj (or its failure)."""
        self.conn.execute(insert(protections).values(host=self.host, time=time, pid=pid, process=process,
                                                     cmdline=cmdline, from_adj=from_adj, to_adj=to_adj, error=error))


def _upsert_for(dialect: Any) -> Any:
    """The dialect's INSERT with ON CONFLICT (SQLite 3.24+ and PostgreSQL 9.5+ have it), None
    elsewhere. Imported for the dialect in use only: the other's module costs start-up."""
    if dialect.name == "sqlite" and (dialect.server_version_info or (0,)) >= (3, 24):
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    return None

"""The write side: `Tx`, the writes of one transaction (kills and their witnesses, samples,
cursors, alert episodes, outbox rows, protections, oom_score_adj writes)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from watchdog_oom.bounds import PROCESS_MAX, TEXT_MAX, cap, cap_kill
from watchdog_oom.model import KILL_FIELDS, Alert, CgroupSample, MemorySample, OomKill, with_local_time
from watchdog_oom.store import batch
from watchdog_oom.store.records import (
    SAME_KILL_WINDOW,
    UNKNOWN_NAME,
    _mute_matches,
    fill_missing,
    kill_values,
    same_kill,
)
from watchdog_oom.store.tables import (
    Adjustment,
    AlertRow,
    CgroupSampleRow,
    Cursor,
    Kill,
    Mute,
    NotificationRow,
    Protection,
    QuarantinedKill,
    Sample,
)


@dataclass
class Tx:
    """The writes of one transaction. Obtain through `Store.tx()`."""

    session: Session
    host: str
    # The cursors this transaction set: the store remembers them once it commits.
    cursors_set: dict[str, str] = field(default_factory=dict)

    # -- cursors ------------------------------------------------------------------------

    def get_cursor(self, source: str) -> str | None:
        row = self.session.get(Cursor, (self.host, source))
        return row.cursor if row else None

    def cursors(self) -> dict[str, str]:
        """Every stored cursor of this host, by source name."""
        return {row.source: row.cursor for row in self.session.scalars(select(Cursor).where(Cursor.host == self.host))}

    def set_cursor(self, source: str, cursor: str, now: datetime) -> None:
        self.cursors_set[source] = cursor
        row = self.session.get(Cursor, (self.host, source))
        if row is None:
            self.session.add(Cursor(host=self.host, source=source, cursor=cursor, updated_at=now))
        else:
            row.cursor, row.updated_at = cursor, now

    # -- samples ------------------------------------------------------------------------

    def add_sample(self, sample: MemorySample) -> None:
        self.session.add(Sample(
            host=self.host, time=sample.time, resolution=0,
            mem_total_kb=sample.mem_total_kb, mem_available_kb=sample.mem_available_kb,
            swap_total_kb=sample.swap_total_kb, swap_free_kb=sample.swap_free_kb,
            committed_as_kb=sample.committed_as_kb, commit_limit_kb=sample.commit_limit_kb,
            commit_percent=sample.commit_percent, commit_limit_percent=sample.commit_limit_percent,
            mem_available_percent=sample.mem_available_percent,
            psi_some_avg10=sample.psi_some_avg10, psi_full_avg10=sample.psi_full_avg10,
            overcommit_memory=sample.overcommit_memory,
        ))

    def add_cgroup_samples(self, samples: Sequence[CgroupSample]) -> None:
        """One reading of the cgroups worth keeping, in one statement."""
        if not samples:
            return
        self.session.execute(insert(CgroupSampleRow), [{
            "host": self.host, "time": x.time, "resolution": 0, "path": x.path, "name": x.name, "kind": x.kind,
            "limit_bytes": x.limit_bytes, "high_bytes": x.high_bytes, "usage_bytes": x.usage_bytes,
            "working_set_bytes": x.working_set_bytes, "working_set_percent": x.percent, "oom_kill": x.oom_kill,
        } for x in samples])

    # -- kills --------------------------------------------------------------------------

    def find_same_kill(self, kill: OomKill) -> Kill | None:
        """The stored record of this very kill, if any (seen before through any source)."""
        host = kill.host or self.host
        # systemd-oomd kills a cgroup, not a pid: a unit crash-looping under pressure is
        # killed again and again, so only the same moment is the same kill.
        window = timedelta(seconds=1) if kill.pid is None else SAME_KILL_WINDOW
        conditions = []
        if kill.time is not None:
            conditions.append(Kill.time.between(kill.time - window, kill.time + window))
        if kill.mono_usec is not None:
            conditions.append(Kill.mono_usec == kill.mono_usec)
        if not conditions:
            conditions.append(and_(Kill.time.is_(None), Kill.mono_usec.is_(None)))
        candidates = self.session.scalars(
            select(Kill).where(Kill.host == host, Kill.pid.is_(None) if kill.pid is None else Kill.pid == kill.pid,
                               Kill.killer == kill.killer, or_(*conditions))
        ).all()
        return next((row for row in candidates if same_kill(row, kill)), None)

    def add_kills(self, items: Sequence[tuple[OomKill, dict[str, Any] | None]], now: datetime) -> list[Any]:
        """Store many kills at once (a burst): per item, its new record, or None for a kill
        stored already (or earlier in `items`), as `add_kill` answers. One SELECT and one
        INSERT for the lot (see store/batch.py), in this transaction."""
        self.session.flush()
        items = [(cap_kill(kill), details) for kill, details in items]  # within the caps of bounds.py
        recorded = batch.record_kills(self.session.connection(), self.host, items, now)
        return [row if new else None for row, new in recorded]

    def add_kill(self, kill: OomKill, now: datetime, details: dict[str, Any] | None = None) -> Kill | None:
        """Store a kill unless it is stored already; returns the new row, or None for a duplicate.
        Text fields are stored within the caps of `watchdog_oom.bounds`."""
        kill = cap_kill(with_local_time(kill))
        existing = self.find_same_kill(kill)
        if existing is not None:
            fill_missing(existing, kill)
            return None
        row = Kill(**kill_values(kill, self.host, now, details))
        self.session.add(row)
        self.session.flush()
        return row

    def quarantine_kill(self, kill: OomKill, error: str, now: datetime) -> QuarantinedKill:
        """Keep a kill the database refused, with the text it was read from and the error."""
        raw = (kill.extra.get("raw") or kill.extra.get("kill_line")) if isinstance(kill.extra, dict) else None
        if not isinstance(raw, str):
            fields = {name: getattr(kill, name, None) for name in KILL_FIELDS if hasattr(kill, name)}
            raw = json.dumps(fields, default=str, ensure_ascii=False)
        when = kill.time
        if when is not None and when.tzinfo is None:
            when = with_local_time(kill).time
        row = QuarantinedKill(host=kill.host or self.host, time=when, recorded_at=now, source=kill.source,
                              process=cap(kill.process, PROCESS_MAX) if kill.process else None,
                              raw=cap(raw, TEXT_MAX), error=cap(error, TEXT_MAX))
        self.session.add(row)
        self.session.flush()
        return row

    def find_kernel_kill(self, pid: int, boot_id: str | None, around: datetime,
                         window: timedelta) -> Kill | None:
        """This host's kernel kill of `pid` recorded within `window` of `around` (and of this boot when known)."""
        query = select(Kill).where(Kill.host == self.host, Kill.pid == pid, Kill.killer == "kernel",
                                   Kill.time.between(around - window, around + window))
        for row in self.session.scalars(query.order_by(Kill.id)).all():
            if not (row.boot_id and boot_id and row.boot_id != boot_id):
                return row
        return None

    def add_witness(self, row: Kill, kill: OomKill, fields: Sequence[str], witness: str,
                    evidence: dict[str, Any]) -> None:
        """Another witness of a stored kill: its values of `fields` (those it has) replace the
        row's, and it joins the record's witnesses with its evidence under details.extra[witness]."""
        for name in fields:
            value = getattr(kill, name)
            if value is not None and not (name == "process" and value == UNKNOWN_NAME):
                setattr(row, name, value)
        details = dict(row.details or {})
        extra = dict(details.get("extra") or {})
        known = extra.get("witnesses") or ([row.source] if row.source else [])
        extra["witnesses"] = list(dict.fromkeys([*known, witness]))
        extra[witness] = evidence
        details["extra"] = extra
        row.details = details

    def recent_kernel_kills(self, boot_id: str | None, since: datetime) -> list[Kill]:
        """This host's kernel kills of this boot dated from `since` on, oldest first."""
        query = select(Kill).where(Kill.host == self.host, Kill.killer == "kernel", Kill.time >= since)
        if boot_id is not None:
            query = query.where(Kill.boot_id == boot_id)
        return list(self.session.scalars(query.order_by(Kill.time, Kill.id)).all())

    def note_on_kill(self, row: Kill, key: str, value: Any) -> None:
        """Set details[key] of a stored kill (a finding about it, such as `suspect`)."""
        row.details = {**(row.details or {}), key: value}

    def last_protection(self, pid: int, since: datetime) -> int | None:
        """The oom_score_adj this daemon last set on `pid` since `since`, None if it set none."""
        return self.session.scalar(
            select(Protection.to_adj).where(Protection.host == self.host, Protection.pid == pid,
                                            Protection.error.is_(None), Protection.time >= since)
            .order_by(Protection.time.desc(), Protection.id.desc()).limit(1))

    def count_kills(self, host: str | None = None, boot_id: str | None = None, killer: str = "kernel") -> int:
        query = select(func.count()).select_from(Kill).where(Kill.host == (host or self.host), Kill.killer == killer)
        if boot_id is not None:
            query = query.where(Kill.boot_id == boot_id)
        return self.session.scalar(query) or 0

    def kills_by_cgroup(self, boot_id: str | None) -> dict[str, int]:
        """The kernel's kills of this boot recorded per victim cgroup (task_memcg)."""
        query = (select(Kill.task_memcg, func.count()).where(
            Kill.host == self.host, Kill.killer == "kernel", Kill.boot_id == boot_id, Kill.task_memcg.is_not(None))
            .group_by(Kill.task_memcg))
        return {str(path): int(n) for path, n in self.session.execute(query)}

    # -- alerts -------------------------------------------------------------------------

    def firing_alerts(self) -> list[AlertRow]:
        return list(self.session.scalars(
            select(AlertRow).where(AlertRow.host == self.host, AlertRow.status == "firing").order_by(AlertRow.id)
        ).all())

    def fire_alert(self, alert: Alert) -> tuple[AlertRow, str | None]:
        """Open or update the episode of `alert.key`; returns it and why to notify (or None).

        The reason follows Alertmanager's dedup stage: `first` for a new episode, `new`
        when its severity changed, None when nothing a person needs to hear changed.
        """
        row = self.session.scalars(
            select(AlertRow).where(AlertRow.host == self.host, AlertRow.key == alert.key, AlertRow.status == "firing")
        ).first()
        if row is None:
            row = AlertRow(host=self.host, key=alert.key, kind=alert.kind, severity=alert.severity, status="firing",
                           summary=alert.summary, started_at=alert.time, updated_at=alert.time, data=alert.data)
            self.session.add(row)
            self.session.flush()
            return row, "first"
        reason = "new" if row.severity != alert.severity else None
        row.kind, row.severity, row.summary, row.updated_at, row.data = (
            alert.kind, alert.severity, alert.summary, alert.time, alert.data)
        return row, reason

    def resolve_alert(self, alert: Alert) -> AlertRow | None:
        row = self.session.scalars(
            select(AlertRow).where(AlertRow.host == self.host, AlertRow.key == alert.key, AlertRow.status == "firing")
        ).first()
        if row is None:
            return None
        row.status, row.resolved_at, row.updated_at = "resolved", alert.time, alert.time
        row.data = {**(row.data or {}), "resolved": alert.data}
        return row

    # -- notifications ------------------------------------------------------------------

    def active_mute(self, now: datetime, kind: str, process: str | None, cgroup: str | None) -> Mute | None:
        return next((m for m in self.active_mutes(now) if _mute_matches(m, kind, process, cgroup)), None)

    def active_mutes(self, now: datetime) -> list[Mute]:
        """The mutes in force now for this host (match them with `mute_matches`)."""
        return list(self.session.scalars(
            select(Mute).where(Mute.until > now, or_(Mute.host.is_(None), Mute.host == self.host))
        ).all())

    def enqueue(self, *, channel: str, kind: str, severity: str, reason: str, summary: str,
                data: dict[str, Any], now: datetime, due_at: datetime | None = None,
                alert_id: int | None = None, mute: Mute | None = None,
                group_key: str | None = None) -> NotificationRow:
        """Write one outbox row; a muted one is recorded with status `muted` and never sent."""
        row = NotificationRow(
            host=self.host, uuid=f"msg_{uuid.uuid4().hex}", channel=channel, kind=kind, severity=severity,
            reason=reason, summary=summary, status="muted" if mute else "pending", group_key=group_key,
            data=data, alert_id=alert_id, mute_id=mute.id if mute else None,
            created_at=now, due_at=due_at or now, attempts=0,
        )
        self.session.add(row)
        self.session.flush()
        return row

    def open_group(self, channel: str, group_key: str, now: datetime) -> NotificationRow | None:
        """The pending notification still collecting for `group_key` (its group_wait not over)."""
        return self.session.scalars(
            select(NotificationRow).where(
                NotificationRow.host == self.host, NotificationRow.channel == channel,
                NotificationRow.group_key == group_key, NotificationRow.status == "pending",
                NotificationRow.due_at > now, NotificationRow.attempts == 0,
            ).order_by(NotificationRow.id.desc())
        ).first()

    def extend_group(self, row: NotificationRow, summary: str, data: dict[str, Any], severity: str) -> bool:
        """Replace a collecting notification's content; False if a sender claimed it meanwhile."""
        return bool(self.session.execute(
            update(NotificationRow)
            .where(NotificationRow.id == row.id, NotificationRow.status == "pending")
            .values(summary=summary, data=data, severity=severity)
            .execution_options(synchronize_session=False)
        ).rowcount)

    def was_announced(self, alert_id: int, channel: str) -> bool:
        """Whether `channel` was told of the alert episode (anything but its resolution)."""
        return self.session.scalar(
            select(NotificationRow.id).where(NotificationRow.alert_id == alert_id, NotificationRow.channel == channel,
                                             NotificationRow.reason != "resolved").limit(1)
        ) is not None

    def mark_alert_notified(self, alert_id: int, now: datetime) -> None:
        self.session.execute(update(AlertRow).where(AlertRow.id == alert_id).values(last_notified_at=now))

    # -- oom_score_adj audit ------------------------------------------------------------

    def add_adjustment(self, *, time: datetime, boot_id: str | None, pid: int, process: str, cmdline: str | None,
                       unit: str | None, old_adj: int | None, new_adj: int, critical: bool, by_watchdog: bool,
                       severity: str | None, writer: dict[str, Any]) -> None:
        """Record one write to a process's oom_score_adj and who made it (`writer`: pid, tid,
        process, cmdline, unit, uid, exited)."""
        self.session.execute(insert(Adjustment).values(
            host=self.host, boot_id=boot_id, time=time, pid=pid, process=process, cmdline=cmdline, unit=unit,
            old_adj=old_adj, new_adj=new_adj, critical=critical, by_watchdog=by_watchdog, severity=severity,
            writer_pid=writer.get("pid"), writer_tid=writer["tid"], writer_process=writer["process"],
            writer_cmdline=writer.get("cmdline"), writer_unit=writer.get("unit"), writer_uid=writer.get("uid"),
            writer_exited=bool(writer.get("exited")),
        ))

    # -- protections --------------------------------------------------------------------

    def add_protection(self, *, time: datetime, pid: int, process: str, cmdline: str | None,
                       from_adj: int | None, to_adj: int, error: str | None = None) -> None:
        self.session.add(Protection(host=self.host, time=time, pid=pid, process=process, cmdline=cmdline,
                                    from_adj=from_adj, to_adj=to_adj, error=error))

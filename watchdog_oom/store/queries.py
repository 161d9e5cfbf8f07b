"""The history's read side: kills, samples, alerts, notifications and the rest as values,
filtered and ordered as the `history`, `report` and `/metrics` commands ask."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import String, and_, case, func, or_, select

from watchdog_oom.model import CgroupSample
from watchdog_oom.store.engine import Database, _answers
from watchdog_oom.store.records import cgroup_sample
from watchdog_oom.store.tables import (
    Adjustment,
    AlertRow,
    CgroupSampleRow,
    Kill,
    NotificationRow,
    Protection,
    QuarantinedKill,
    Sample,
)
from watchdog_oom.stored import (
    AlertEpisode,
    MuteRule,
    OutboxRow,
    ProtectionRecord,
    StoredKill,
    StoredSample,
)


class HistoryQueries(Database):
    """The store's history queries (a part of `Store`)."""

    def kills(self, **filters: Any) -> list[Kill]:
        """Stored kills, newest first; filters: since, until, process, host, limit."""
        query = select(Kill)
        query = _time_filters(query, Kill.time, filters)
        if filters.get("process"):
            query = query.where(_glob(Kill.process, filters["process"], self._ranged))
        if filters.get("host"):
            query = query.where(Kill.host == filters["host"])
        query = query.order_by(Kill.time.desc().nulls_last(), Kill.id.desc())
        return self._all(query, filters)

    def kill_counts(self, **filters: Any) -> list[tuple[str, str | None, int]]:
        """(by, value, kills) rows: kills per process, per cgroup and per day, most first.

        A kill whose cgroup or time the log did not give counts under None (unknown), never
        under a made-up value such as the root cgroup."""
        where = _time_filters(select(Kill.id), Kill.time, filters).whereclause
        if filters.get("process"):
            where = and_(*(c for c in (where, _glob(Kill.process, filters["process"], self._ranged))
                           if c is not None))
        if filters.get("host"):
            where = and_(*(c for c in (where, Kill.host == filters["host"]) if c is not None))
        cgroup = func.coalesce(Kill.task_memcg, Kill.memcg)
        # Days in UTC, so every backend agrees.
        day = func.substr(func.cast(Kill.time, String), 1, 10)
        rows: list[tuple[str, str | None, int]] = []
        with self._sessions() as session:
            for by, column in (("process", Kill.process), ("cgroup", cgroup), ("day", day)):
                query = select(column, func.count()).group_by(column)
                if where is not None:
                    query = query.where(where)
                counted = session.execute(query).all()
                rows += sorted(((by, None if v is None else str(v), n) for v, n in counted),
                               key=lambda r: (-r[2], r[1] is None, r[1] or ""))
        return rows

    def series(self, host: str, since: datetime, until: datetime) -> list[Any]:
        """The samples of `host` in [since, until], oldest first: only the columns a chart draws."""
        query = (
            select(Sample.time, Sample.commit_percent, Sample.commit_limit_percent,
                   Sample.mem_available_percent, Sample.resolution)
            .where(Sample.host == host, Sample.time >= since, Sample.time <= until)
            .order_by(Sample.time)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def sample_before(self, host: str, when: datetime, within: timedelta) -> StoredSample | None:
        """The last sample of `host` at or before `when`, if it is no older than `within`."""
        query = (select(Sample.__table__).where(Sample.host == host, Sample.time <= when, Sample.time >= when - within)
                 .order_by(Sample.time.desc()).limit(1))
        return next(iter(self._values(query, StoredSample)), None)

    def recent_cgroup_samples(self, host: str, paths: Collection[str], seconds: float,
                              now: datetime | None = None) -> dict[str, list[CgroupSample]]:
        """Each of these cgroups' raw samples of the last `seconds`, oldest first."""
        since = (now or datetime.now(timezone.utc)) - timedelta(seconds=seconds)
        wanted = set(paths)
        out: dict[str, list[CgroupSample]] = {}
        query = (select(CgroupSampleRow).where(CgroupSampleRow.host == host, CgroupSampleRow.time >= since,
                                               CgroupSampleRow.resolution == 0)
                 .order_by(CgroupSampleRow.time, CgroupSampleRow.id))
        with self._sessions() as session:
            for row in session.scalars(query):
                if row.path in wanted:
                    out.setdefault(row.path, []).append(cgroup_sample(row))
        return out

    def cgroup_series(self, host: str, since: datetime, until: datetime, limit: int = 10) -> dict[str, list[Any]]:
        """The working set in percent of the limit over the period, for the `limit` cgroups
        that came closest to theirs: {path: [(time, percent, name)]}, oldest first."""
        period = (CgroupSampleRow.host == host, CgroupSampleRow.time >= since, CgroupSampleRow.time <= until)
        worst = (select(CgroupSampleRow.path).where(*period, CgroupSampleRow.working_set_percent.is_not(None))
                 .group_by(CgroupSampleRow.path)
                 .order_by(func.max(CgroupSampleRow.working_set_percent).desc()).limit(limit))
        query = (select(CgroupSampleRow.path, CgroupSampleRow.time, CgroupSampleRow.working_set_percent,
                        CgroupSampleRow.name)
                 .where(*period, CgroupSampleRow.path.in_(worst)).order_by(CgroupSampleRow.time))
        out: dict[str, list[Any]] = {}
        with self.engine.connect() as conn:
            for path, time, percent, name in conn.execute(query):
                out.setdefault(path, []).append((time, percent, name))
        return out

    def kill_marks(self, host: str, since: datetime, until: datetime) -> list[Any]:
        """Every kill of the period, oldest first, with what a chart marker names."""
        query = (
            select(Kill.time, Kill.pid, Kill.process, Kill.killer, Kill.anon_rss_kb, Kill.task_memcg, Kill.memcg)
            .where(Kill.host == host, Kill.time >= since, Kill.time <= until)
            .order_by(Kill.time, Kill.id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def alerts_overlapping(self, host: str, since: datetime, until: datetime,
                           limit: int) -> tuple[list[AlertEpisode], int]:
        """The newest `limit` alert episodes that overlap the period (also those begun
        before it), and how many there are in all."""
        overlap = (AlertRow.host == host, AlertRow.started_at <= until,
                   or_(AlertRow.resolved_at.is_(None), AlertRow.resolved_at >= since))
        rows = self._values(select(AlertRow.__table__).where(*overlap)
                            .order_by(AlertRow.started_at.desc(), AlertRow.id.desc()).limit(limit), AlertEpisode)
        if len(rows) < limit:
            return rows, len(rows)
        with self.engine.connect() as conn:
            return rows, conn.execute(select(func.count()).select_from(AlertRow).where(*overlap)).scalar() or 0

    @_answers
    def kill_totals(self, host: str, recorded_since: datetime | None = None) -> list[tuple[str, str | None, int]]:
        """(killer, constraint, count) of the kills of `host` recorded since a moment."""
        query = select(Kill.killer, Kill.constraint, func.count()).where(Kill.host == host)
        if recorded_since is not None:
            query = query.where(Kill.recorded_at >= recorded_since)
        query = query.group_by(Kill.killer, Kill.constraint).order_by(Kill.killer, Kill.constraint)
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    @_answers
    def alert_counts(self, host: str) -> list[tuple[str, str, int]]:
        """(kind, severity, firing now) for every kind of alert `host` has had."""
        firing = func.sum(case((AlertRow.status == "firing", 1), else_=0))
        query = (select(AlertRow.kind, AlertRow.severity, firing).where(AlertRow.host == host)
                 .group_by(AlertRow.kind, AlertRow.severity).order_by(AlertRow.kind, AlertRow.severity))
        with self.engine.connect() as conn:
            return [(kind, severity, int(n or 0)) for kind, severity, n in conn.execute(query)]

    def quarantined(self, **filters: Any) -> list[QuarantinedKill]:
        """Kills the database would not store (newest first), with their raw text and error."""
        return self._history(QuarantinedKill, QuarantinedKill.recorded_at, filters,
                             process=lambda pattern: _glob(QuarantinedKill.process, pattern))

    def kill(self, kill_id: int) -> StoredKill | None:
        """One stored kill by its id."""
        return next(iter(self._values(select(Kill.__table__).where(Kill.id == kill_id), StoredKill)), None)

    def alerts(self, **filters: Any) -> list[AlertRow]:
        """Alert episodes, newest first; `process` searches their summaries."""
        return self._history(AlertRow, AlertRow.started_at, filters,
                             process=lambda p: _glob(AlertRow.summary, f"*{p}*"))

    def samples(self, **filters: Any) -> list[Sample]:
        """Samples, newest first (oldest first with ascending=True)."""
        order = (Sample.time.asc(), Sample.id) if filters.get("ascending") else None
        return self._history(Sample, Sample.time, filters, order=order)

    def notifications(self, **filters: Any) -> list[NotificationRow]:
        """Outbox rows, newest first; `process` searches their summaries."""
        return self._history(NotificationRow, NotificationRow.created_at, filters,
                             process=lambda p: _glob(NotificationRow.summary, f"*{p}*"))

    def protections(self, **filters: Any) -> list[Protection]:
        """Changes made to oom_score_adj, newest first."""
        return self._history(Protection, Protection.time, filters,
                             process=lambda p: _glob(Protection.process, p, self._ranged))

    def adjustments(self, **filters: Any) -> list[Adjustment]:
        """Writes to oom_score_adj the tracepoint saw, newest first; `process` globs the target or the writer."""
        return self._history(Adjustment, Adjustment.time, filters,
                             process=lambda p: or_(_glob(Adjustment.process, p), _glob(Adjustment.writer_process, p)))

    def _history(self, table: Any, when: Any, filters: dict[str, Any], *,
                 process: Callable[[str], Any] | None = None, order: tuple[Any, ...] | None = None) -> list[Any]:
        """Rows of `table` filtered by since/until on `when`, host, process and status."""
        query = _time_filters(select(table), when, filters)
        if filters.get("host"):
            query = query.where(table.host == filters["host"])
        if filters.get("process") and process is not None:
            query = query.where(process(filters["process"]))
        if filters.get("status"):
            query = query.where(table.status == filters["status"])
        return self._all(query.order_by(*(order or (when.desc(), table.id.desc()))), filters)

    def _all(self, query: Any, filters: dict[str, Any]) -> list[Any]:
        """The rows of an ORM-style select of one table, as that table's values."""
        if filters.get("limit"):
            query = query.limit(int(filters["limit"]))
        table = query.column_descriptions[0]["entity"]
        value = _VALUES.get(table.__name__)
        if value is None:  # a table of another part's without a value of its own yet
            with self._sessions() as session:
                return list(session.scalars(query).all())
        return self._values(query.with_only_columns(*table.__table__.columns), value)



# The value each table's rows come back as.
_VALUES: dict[str, type[Any]] = {"Kill": StoredKill, "Sample": StoredSample, "AlertRow": AlertEpisode,
                                 "NotificationRow": OutboxRow, "Mute": MuteRule, "Protection": ProtectionRecord}



def _glob(column: Any, pattern: str, ranged: bool = False) -> Any:
    """A shell-style glob as SQL LIKE (escaping LIKE's own wildcards); plain text matches exactly.

    With `ranged`, a literal prefix also becomes a range (`'java*'`: `>= 'java' AND < 'javb'`)
    that an index on the column answers; only valid where strings compare byte by byte
    (SQLite's BINARY collation; PostgreSQL derives the range itself under the C collation).
    The range also makes the prefix case-sensitive on SQLite, whose LIKE is not.
    """
    if not any(ch in pattern for ch in "*?"):
        return column == pattern
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = column.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")
    prefix = pattern[:min(i for i in (pattern.find("*"), pattern.find("?")) if i >= 0)]
    if not ranged or not prefix or prefix[-1] == chr(0x10FFFF):
        return like
    return and_(column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1), like)


def _time_filters(query: Any, column: Any, filters: dict[str, Any]) -> Any:
    if filters.get("since") is not None:
        query = query.where(column >= filters["since"])
    if filters.get("until") is not None:
        query = query.where(column <= filters["until"])
    return query



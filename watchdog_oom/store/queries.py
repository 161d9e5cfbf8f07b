"""The history's read side: kills, samples, alerts, notifications and the rest as the values
of watchdog_oom.stored, filtered and ordered as the `history`, `show` and `report`
commands ask. Core statements on one connection each; nothing here writes. A part of
`Store`, never loaded by the daemon (whose `Recorder` has the metrics endpoint's counts)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Select, String, TableClause, and_, func, or_, select, type_coerce

from watchdog_oom.model import KILL_FIELDS, CgroupSample
from watchdog_oom.store.engine import Database
from watchdog_oom.store.records import SAMPLE_FIELDS, cgroup_sample
from watchdog_oom.store.tables import (
    UtcDateTime,
    adjustments,
    alerts,
    cgroup_samples,
    kills,
    notifications,
    protections,
    quarantined_kills,
    samples,
)
from watchdog_oom.stored import AlertEpisode, OutboxRow, QuarantinedRecord, StoredKill, row_maker
from watchdog_oom.stored_history import AdjustmentRecord, KillMark, ProtectionRecord, SeriesPoint, StoredSample

Filters = dict[str, Any]  # since, until, host, process, status, limit (what a command was given)


class HistoryQueries(Database):
    """The store's history queries (a part of `Store`)."""

    def _values(self, query: Any, value: type[Any]) -> list[Any]:
        """Rows of a Core select as values of `value` (a dataclass of watchdog_oom.stored)."""
        with self.engine.connect() as conn:
            result = conn.execute(query)
            make = row_maker(value, list(result.keys()))
            return [make(row) for row in result]

    def kills(self, **filters: Any) -> list[StoredKill]:
        """Stored kills, newest first; filters: since, until, process, host, limit."""
        return self._values(self._kills_query(select(kills), filters), StoredKill)

    def kill_records(self, fields: Sequence[str] = KILL_FIELDS, **filters: Any) -> list[dict[str, Any]]:
        """The kill records of INTERFACE.md (JSON-ready) of the kills `kills` would return,
        in its order, holding `fields` (the record's, by default): read as those columns
        alone, without each kill's details (its task table and memory state, most of a row's
        bytes and of the time to decode it)."""
        chosen = select(*(kills.c["alloc_order" if name == "order" else name] for name in fields))
        return self._records(self._kills_query(chosen, filters), fields)

    def _kills_query(self, chosen: Select[Any], filters: Filters) -> Select[Any]:
        """`chosen` (a select of kills' columns) filtered and ordered as `history kills` is."""
        k = kills.c
        where = _time_terms(k.time, filters)
        if filters.get("process"):
            where.append(_glob(k.process, filters["process"], self._ranged))
        if filters.get("host"):
            where.append(k.host == filters["host"])
        newest = (k.time.desc().nulls_last(), k.id.desc())
        if filters.get("limit"):
            # The newest ids first, from an index alone, then only those rows: ordering whole
            # rows (each carries its task table) read every kill of a common process to keep 50.
            ids = _limited(select(k.id).where(*where).order_by(*newest), filters)
            return chosen.where(k.id.in_(ids)).order_by(*newest)
        return chosen.where(*where).order_by(*newest)

    def kill_counts(self, **filters: Any) -> list[tuple[str, str | None, int]]:
        """(by, value, kills) rows: kills per process, per cgroup and per day, most first.

        A kill whose cgroup or time the log did not give counts under None (unknown), never
        under a made-up value such as the root cgroup."""
        k = kills.c
        where = _time_terms(k.time, filters)
        if filters.get("process"):
            where.append(_glob(k.process, filters["process"], self._ranged))
        if filters.get("host"):
            where.append(k.host == filters["host"])
        cgroup = func.coalesce(k.task_memcg, k.memcg)
        # Days in UTC, so every backend agrees.
        day = func.substr(func.cast(k.time, String), 1, 10)
        rows: list[tuple[str, str | None, int]] = []
        with self._connection() as conn:
            for by, column in (("process", k.process), ("cgroup", cgroup), ("day", day)):
                counted = conn.execute(select(column, func.count()).where(*where).group_by(column)).all()
                rows += sorted(((by, None if v is None else str(v), n) for v, n in counted),
                               key=lambda r: (-r[2], r[1] is None, r[1] or ""))
        return rows

    def series(self, host: str, since: datetime, until: datetime) -> list[SeriesPoint]:
        """The samples of `host` in [since, until], oldest first: only the columns a chart draws."""
        s = samples.c
        query = (select(s.time, s.commit_percent, s.commit_limit_percent, s.mem_available_percent, s.resolution)
                 .where(s.host == host, s.time >= since, s.time <= until).order_by(s.time))
        with self.engine.connect() as conn:
            return [SeriesPoint(*row) for row in conn.execute(query)]

    def sample_before(self, host: str, when: datetime, within: timedelta) -> StoredSample | None:
        """The last sample of `host` at or before `when`, if it is no older than `within`."""
        s = samples.c
        query = (select(samples).where(s.host == host, s.time <= when, s.time >= when - within)
                 .order_by(s.time.desc()).limit(1))
        return next(iter(self._values(query, StoredSample)), None)

    def recent_cgroup_samples(self, host: str, paths: Collection[str], seconds: float,
                              now: datetime | None = None) -> dict[str, list[CgroupSample]]:
        """Each of these cgroups' raw samples of the last `seconds`, oldest first."""
        c = cgroup_samples.c
        since = (now or datetime.now(timezone.utc)) - timedelta(seconds=seconds)
        wanted = set(paths)
        out: dict[str, list[CgroupSample]] = {}
        query = (select(cgroup_samples).where(c.host == host, c.time >= since, c.resolution == 0)
                 .order_by(c.time, c.id))
        with self._connection() as conn:
            for row in conn.execute(query):
                if row.path in wanted:
                    out.setdefault(row.path, []).append(cgroup_sample(row))
        return out

    def kill_marks(self, host: str, since: datetime, until: datetime) -> list[KillMark]:
        """Every kill of the period, oldest first, with what a chart marker names."""
        k = kills.c
        query = (select(k.time, k.pid, k.process, k.killer, k.anon_rss_kb, k.task_memcg, k.memcg)
                 .where(k.host == host, k.time >= since, k.time <= until).order_by(k.time, k.id))
        with self.engine.connect() as conn:
            return [KillMark(*row) for row in conn.execute(query)]

    def alerts_overlapping(self, host: str, since: datetime, until: datetime,
                           limit: int) -> tuple[list[AlertEpisode], int]:
        """The newest `limit` alert episodes that overlap the period (also those begun
        before it), and how many there are in all."""
        a = alerts.c
        overlap = (a.host == host, a.started_at <= until, or_(a.resolved_at.is_(None), a.resolved_at >= since))
        rows = self._values(select(alerts).where(*overlap).order_by(a.started_at.desc(), a.id.desc()).limit(limit),
                            AlertEpisode)
        if len(rows) < limit:
            return rows, len(rows)
        with self.engine.connect() as conn:
            return rows, conn.execute(select(func.count()).select_from(alerts).where(*overlap)).scalar() or 0

    def kill(self, kill_id: int) -> StoredKill | None:
        """One stored kill by its id."""
        return next(iter(self._values(select(kills).where(kills.c.id == kill_id), StoredKill)), None)

    def quarantined(self, **filters: Any) -> list[QuarantinedRecord]:
        """Kills the database would not store (newest first), with their raw text and error."""
        q = quarantined_kills.c
        return self._history(quarantined_kills, q.recorded_at, filters, QuarantinedRecord,
                             process=lambda pattern: _glob(q.process, pattern))

    def alerts(self, **filters: Any) -> list[AlertEpisode]:
        """Alert episodes, newest first; `process` searches their summaries."""
        return self._history(alerts, alerts.c.started_at, filters, AlertEpisode,
                             process=lambda p: _glob(alerts.c.summary, f"*{p}*"))

    def samples(self, **filters: Any) -> list[StoredSample]:
        """Samples, newest first (oldest first with ascending=True)."""
        s = samples.c
        order = (s.time.asc(), s.id) if filters.get("ascending") else None
        return self._history(samples, s.time, filters, StoredSample, order=order)

    def sample_records(self, fields: Sequence[str] = SAMPLE_FIELDS, **filters: Any) -> list[dict[str, Any]]:
        """The samples `samples` would return as `history samples` prints them: JSON-ready
        records of `fields` (SAMPLE_FIELDS by default), the time in ISO 8601."""
        s = samples.c
        query = self._filtered(select(*(s[name] for name in fields)), samples, s.time, filters)
        return self._records(_limited(query.order_by(s.time.desc(), s.id.desc()), filters), fields)

    def notifications(self, **filters: Any) -> list[OutboxRow]:
        """Outbox rows, newest first; `process` searches their summaries."""
        return self._history(notifications, notifications.c.created_at, filters, OutboxRow,
                             process=lambda p: _glob(notifications.c.summary, f"*{p}*"))

    def protections(self, **filters: Any) -> list[ProtectionRecord]:
        """Changes made to oom_score_adj, newest first."""
        return self._history(protections, protections.c.time, filters, ProtectionRecord,
                             process=lambda p: _glob(protections.c.process, p, self._ranged))

    def adjustments(self, **filters: Any) -> list[AdjustmentRecord]:
        """Writes to oom_score_adj the tracepoint saw, newest first; `process` globs the target or the writer."""
        j = adjustments.c
        return self._history(adjustments, j.time, filters, AdjustmentRecord,
                             process=lambda p: or_(_glob(j.process, p), _glob(j.writer_process, p)))

    def _history(self, table: TableClause, when: Any, filters: Filters, value: type[Any], *,
                 process: Callable[[str], Any] | None = None, order: tuple[Any, ...] | None = None) -> list[Any]:
        """Rows of `table` filtered by since/until on `when`, host, process and status, as `value`s."""
        query = self._filtered(select(table), table, when, filters, process)
        query = query.order_by(*(order or (when.desc(), table.c.id.desc())))
        return self._values(_limited(query, filters), value)

    @staticmethod
    def _filtered(query: Select[Any], table: TableClause, when: Any, filters: Filters,
                  process: Callable[[str], Any] | None = None) -> Select[Any]:
        """`query` on `table` with the WHERE terms of the filters: since/until on `when`, host,
        process (where `process` says how to match it) and status."""
        query = query.where(*_time_terms(when, filters))
        if filters.get("host"):
            query = query.where(table.c.host == filters["host"])
        if filters.get("process") and process is not None:
            query = query.where(process(filters["process"]))
        if filters.get("status"):
            query = query.where(table.c.status == filters["status"])
        return query

    def _records(self, query: Select[Any], fields: Sequence[str]) -> list[dict[str, Any]]:
        """The rows of `query`, whose columns are `fields` in order, as dicts of those fields,
        times (the UtcDateTime columns) in ISO 8601 as `datetime.isoformat` of the UTC time
        writes them. A history lists thousands of rows: each column is converted in one pass."""
        times = [i for i, column in enumerate(query.selected_columns) if isinstance(column.type, UtcDateTime)]
        # The times as the driver gives them (SQLite: naive UTC; PostgreSQL: aware), without
        # UtcDateTime's Python call per value; _iso_utc makes them what it would have.
        query = query.with_only_columns(
            *(type_coerce(column, _DRIVER_TIME).label(column.name) if i in times else column
              for i, column in enumerate(query.selected_columns)), maintain_column_froms=True)
        with self._connection() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return []
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        for i in times:
            columns[i] = _iso_utc(columns[i])
        return [dict(zip(fields, row, strict=True)) for row in zip(*columns, strict=True)]


_DRIVER_TIME = DateTime(timezone=True)  # UtcDateTime's own storage type


def _iso_utc(values: Sequence[datetime | None]) -> list[str | None]:
    """Times as the driver read them (naive UTC, or aware) in ISO 8601 with the UTC offset,
    the text `value.astimezone(timezone.utc).isoformat()` gives; None stays None."""
    known: Sequence[datetime] = [v for v in values if v is not None] if None in values else values  # type: ignore[assignment]
    texts: Iterator[str]
    if not any(map(_TZINFO, known)):  # SQLite's: naive, and UTC
        texts = map("{}+00:00".format, map(datetime.isoformat, known))
    else:
        texts = map(datetime.isoformat, [(v if v.tzinfo else v.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
                                         for v in known])
    if len(known) == len(values):
        return list(texts)
    return [None if value is None else next(texts) for value in values]


_TZINFO = operator.attrgetter("tzinfo")


def _limited(query: Select[Any], filters: Filters) -> Select[Any]:
    return query.limit(int(filters["limit"])) if filters.get("limit") else query


def _glob(column: Any, pattern: str, ranged: bool = False) -> ColumnElement[bool]:
    """A shell-style glob as SQL LIKE (escaping LIKE's own wildcards); plain text matches exactly.

    With `ranged`, a literal prefix also becomes a range (`'java*'`: `>= 'java' AND < 'javb'`)
    that an index on the column answers; only valid where strings compare byte by byte
    (SQLite's BINARY collation). PostgreSQL derives the range from LIKE itself, on an index
    of the pattern operator class whatever the collation (kills: migration 0008), or on a
    plain one under the C collation. The range also makes the prefix case-sensitive on
    SQLite, whose LIKE is not.
    """
    if not any(ch in pattern for ch in "*?"):
        return column == pattern
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = column.like(escaped.replace("*", "%").replace("?", "_"), escape="\\")
    prefix = pattern[:min(i for i in (pattern.find("*"), pattern.find("?")) if i >= 0)]
    if not ranged or not prefix or prefix[-1] == chr(0x10FFFF):
        return like
    return and_(column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1), like)


def _time_terms(column: Any, filters: Filters) -> list[Any]:
    """The WHERE terms of a command's --since and --until on `column`."""
    terms = []
    if filters.get("since") is not None:
        terms.append(column >= filters["since"])
    if filters.get("until") is not None:
        terms.append(column <= filters["until"])
    return terms


__all__ = ["HistoryQueries"]

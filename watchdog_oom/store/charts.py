"""The report's reads: a period's samples and cgroup readings reduced, in the database, to
the slices of time a chart draws.

A week of 10-second samples is 60,480 rows per host (and as many per cgroup kept); a chart
1,200 pixels wide draws at most a few thousand points. Each query groups the rows by their
slice of the period and keeps, per slice, the worst of every series (the highest commit,
the lowest MemAvailable, the highest working set), so a spike of a single sample survives
the reduction as it survives the store's retention.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, cast, extract, func, literal_column, select

from watchdog_oom.store.engine import Database
from watchdog_oom.store.tables import cgroup_samples, samples
from watchdog_oom.stored_history import SeriesSlice


class ChartQueries(Database):
    """The report's reductions (a part of `Store`)."""

    def series_slices(self, host: str, since: datetime, until: datetime, slices: int) -> list[SeriesSlice]:
        """The samples of `host` in [since, until] as at most `slices` equal slices of time,
        oldest first: per slice its first time, the highest commit and limit percents, the
        lowest available percent, the longest resolution and how many samples it holds."""
        s = samples.c
        slice_ = slice_of(self.engine.dialect.name, s.time, since, until, slices)
        query = (
            select(func.min(s.time), func.max(s.commit_percent), func.max(s.commit_limit_percent),
                   func.min(s.mem_available_percent), func.max(s.resolution), func.count())
            .where(s.host == host, s.time >= since, s.time <= until)
            .group_by(slice_).order_by(slice_)
        )
        return [SeriesSlice(*row) for row in self._rows(query)]

    def cgroup_slices(self, host: str, since: datetime, until: datetime, slices: int,
                      limit: int = 10) -> dict[str, list[tuple[datetime, float | None, str | None]]]:
        """The working set in percent of the limit over the period of the `limit` cgroups
        that came closest to theirs, as at most `slices` slices of time each (at its first
        time, its highest value): {path: [(time, percent, name)]}, oldest first, ending
        with the cgroup's last reading as it was (its value and name)."""
        t = cgroup_samples.c
        period = (t.host == host, t.time >= since, t.time <= until)
        worst = [path for (path,) in self._rows(
            select(t.path).where(*period, t.working_set_percent.is_not(None))
            .group_by(t.path).order_by(func.max(t.working_set_percent).desc(), t.path).limit(limit))]
        if not worst:
            return {}
        slice_ = slice_of(self.engine.dialect.name, t.time, since, until, slices)
        sliced = (select(t.path, func.min(t.time), func.max(t.working_set_percent), func.max(t.time))
                  .where(*period, t.path.in_(worst)).group_by(t.path, slice_).order_by(t.path, slice_))
        out: dict[str, list[tuple[datetime, float | None, str | None]]] = {}
        newest: dict[str, datetime] = {}
        for path, first, percent, last in self._rows(sliced):
            out.setdefault(path, []).append((first, percent, None))
            newest[path] = last
        # Each cgroup's newest reading, found by its (host, time) in the index.
        final = (select(t.path, t.time, t.working_set_percent, t.name)
                 .where(t.host == host, t.time.in_(sorted(set(newest.values()))), t.path.in_(worst)).order_by(t.id))
        for path, time, percent, name in self._rows(final):
            if newest.get(path) != time:
                continue
            points = out[path]
            if points[-1][0] == time:  # the last slice's only reading
                points[-1] = (time, points[-1][1], name)
            else:
                points.append((time, percent, name))
        return out

    def _rows(self, query: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))


def slice_of(dialect: str, column: Any, since: datetime, until: datetime, slices: int) -> Any:
    """Which of `slices` equal slices of [since, until] a stored time falls in (0 first), as SQL.

    The figures are written into the statement, not bound, so PostgreSQL sees the very
    same expression in the select list, GROUP BY and ORDER BY.
    """
    start = int(since.timestamp())
    span = max(int(until.timestamp()) - start, 0) + 1  # every second of the period, until's included

    def number(n: int) -> Any:
        return literal_column(str(int(n)), Integer)

    if dialect == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: strftime('%s') reads it as Unix seconds.
        seconds = cast(func.strftime("%s", column), Integer) - number(start)
        return seconds * number(slices) // number(span)
    seconds = extract("epoch", column) - number(start)
    return cast(func.floor(seconds * number(slices) / number(span)), BigInteger)

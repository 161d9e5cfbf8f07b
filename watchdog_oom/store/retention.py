"""Retention: set-based downsampling and pruning of one host's history.

Aging samples are consolidated in the database, as RRDtool's archives are: per tier one
`INSERT … SELECT … GROUP BY bucket` writes the means (percents keep their worst value)
and one `DELETE` removes what they replace. Both work through bounded time ranges
(`CHUNK`), each its own short transaction, so a month of backlog neither holds the
database for long nor builds one statement with a parameter per row (the old way failed
with "too many SQL variables" past SQLite's limit).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import BigInteger, Integer, cast, delete, extract, func, insert, literal_column, select
from sqlalchemy.engine import Connection, Engine

from watchdog_oom.store.tables import adjustments, alerts, cgroup_samples, kills, mutes, notifications, samples
from watchdog_oom.valueclass import valueclass

# One transaction covers at most this much time: a day of 10-second samples of one
# host is 8,640 rows, well under a second of work on either engine.
CHUNK = timedelta(days=1)
# Outbox rows that will not be sent again; only these age out.
FINISHED = ("sent", "failed", "given_up", "muted")
MUTES_KEPT = timedelta(days=30)


@valueclass
class RetentionPolicy:
    """How long each kind of row is kept, in seconds (config `retention:`)."""

    samples: float = 30 * 86400.0
    kills: float = 400 * 86400.0
    alerts: float = 400 * 86400.0
    notifications: float = 90 * 86400.0
    raw_samples: float = 2 * 86400.0
    adjustments: float = 400 * 86400.0


def _epoch(ts: datetime) -> int:
    return int(ts.timestamp())


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def _bucket_of(dialect: str, seconds: int, column: Any = samples.c.time) -> tuple[Any, Any]:
    """(the bucket's start in Unix seconds, that start as a stored time) for samples.time.

    Each is an SQL expression; the width is written into the statement, not bound, so
    PostgreSQL sees the very same expression in the select list and in GROUP BY.
    """
    width = literal_column(str(int(seconds)), Integer)
    if dialect == "sqlite":
        # Times are stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (SQLAlchemy's format);
        # strftime('%s') reads that as Unix seconds, and writes it back the same way.
        start = cast(func.strftime("%s", column), Integer) // width * width
        return start, func.strftime("%Y-%m-%d %H:%M:%S.000000", start, "unixepoch")
    start = cast(func.floor(extract("epoch", column) / width), BigInteger) * width
    return start, func.to_timestamp(start)


def _first_time(conn: Connection, *where: Any) -> datetime | None:
    return conn.execute(select(func.min(samples.c.time)).where(*where)).scalar()


def downsample_tier(engine: Engine, host: str, older_than: datetime, from_resolution: int,
                    to_resolution: int, chunk: timedelta = CHUNK) -> int:
    """Replace `host`'s samples of `from_resolution` older than `older_than` by means over
    `to_resolution` seconds; returns how many rows fewer there are.

    Only whole buckets are consolidated: a cut inside one would average it in two parts,
    hours apart, leaving two partial means at the same time.
    """
    edge = _epoch(older_than) // to_resolution * to_resolution
    step = max(int(chunk.total_seconds()) // to_resolution, 1) * to_resolution
    start, stored_start = _bucket_of(engine.dialect.name, to_resolution)
    mean = lambda column: cast(func.round(func.avg(column)), BigInteger)  # noqa: E731
    removed, low = 0, None
    while True:
        tier = (samples.c.host == host, samples.c.resolution == from_resolution)
        with engine.begin() as conn:
            first = _first_time(conn, *tier, samples.c.time < _at(edge),
                                *([samples.c.time >= _at(low)] if low is not None else []))
            if first is None:
                return removed
            low = _epoch(first) // to_resolution * to_resolution
            high = min(low + step, edge)
            # One upper bound only: given two, SQLite may range-scan up to the looser one.
            in_chunk = (*tier, samples.c.time >= _at(low), samples.c.time < _at(high))
            means = (
                select(samples.c.host, stored_start, literal_column(str(int(to_resolution))),
                       mean(samples.c.mem_total_kb), mean(samples.c.mem_available_kb), mean(samples.c.swap_total_kb),
                       mean(samples.c.swap_free_kb), mean(samples.c.committed_as_kb), mean(samples.c.commit_limit_kb),
                       # The mean of a spike would hide it: percents keep their worst value.
                       func.max(samples.c.commit_percent), func.max(samples.c.commit_limit_percent),
                       func.min(samples.c.mem_available_percent), func.max(samples.c.psi_some_avg10),
                       func.max(samples.c.psi_full_avg10), func.max(samples.c.overcommit_memory))
                .where(*in_chunk)
                .group_by(samples.c.host, start)
            )
            # RETURNING, not rowcount: psycopg under SQLAlchemy reports -1 for INSERT … SELECT.
            # A chunk holds at most a day of buckets, so the ids are few.
            add = insert(samples).from_select(
                ["host", "time", "resolution", "mem_total_kb", "mem_available_kb", "swap_total_kb",
                 "swap_free_kb", "committed_as_kb", "commit_limit_kb", "commit_percent", "commit_limit_percent",
                 "mem_available_percent", "psi_some_avg10", "psi_full_avg10", "overcommit_memory"],
                means)
            # SQLite before 3.35 has no RETURNING; its rowcount of INSERT … SELECT is right.
            added = (len(conn.execute(add.returning(samples.c.id)).all()) if conn.dialect.insert_returning
                     else conn.execute(add).rowcount)
            gone = conn.execute(delete(samples).where(*in_chunk)).rowcount
        removed += gone - added
        low = high


def downsample(engine: Engine, host: str, now: datetime, raw_samples: float, chunk: timedelta = CHUNK) -> int:
    """Raw samples older than `raw_samples` become 5-minute means, and 5-minute means
    older than a week (or `raw_samples`, if longer) hourly means. Returns rows removed."""
    removed = downsample_tier(engine, host, now - timedelta(seconds=raw_samples), 0, 300, chunk)
    week = max(raw_samples, 7 * 86400)
    return removed + downsample_tier(engine, host, now - timedelta(seconds=week), 300, 3600, chunk)


def delete_samples_before(engine: Engine, host: str, cutoff: datetime, chunk: timedelta = CHUNK) -> int:
    """Delete `host`'s samples older than `cutoff`, a bounded time range per transaction."""
    deleted = 0
    while True:
        with engine.begin() as conn:
            first = _first_time(conn, samples.c.host == host, samples.c.time < cutoff)
            if first is None:
                return deleted
            high = min(first + chunk, cutoff)
            deleted += conn.execute(delete(samples).where(samples.c.host == host, samples.c.time < high)).rowcount


def downsample_cgroup_tier(engine: Engine, host: str, older_than: datetime, from_resolution: int,
                           to_resolution: int, chunk: timedelta = CHUNK) -> int:
    """downsample_tier() for the cgroup samples: means per cgroup path and bucket, the
    working-set percent keeping its worst value and the kill counter its last."""
    t = cgroup_samples.c
    edge = _epoch(older_than) // to_resolution * to_resolution
    step = max(int(chunk.total_seconds()) // to_resolution, 1) * to_resolution
    start, stored_start = _bucket_of(engine.dialect.name, to_resolution, t.time)
    mean = lambda column: cast(func.round(func.avg(column)), BigInteger)  # noqa: E731
    removed, low = 0, None
    while True:
        tier = (t.host == host, t.resolution == from_resolution)
        with engine.begin() as conn:
            first = conn.execute(select(func.min(t.time)).where(
                *tier, t.time < _at(edge), *([t.time >= _at(low)] if low is not None else []))).scalar()
            if first is None:
                return removed
            low = _epoch(first) // to_resolution * to_resolution
            high = min(low + step, edge)
            in_chunk = (*tier, t.time >= _at(low), t.time < _at(high))
            means = (select(t.host, stored_start, literal_column(str(int(to_resolution))), t.path,
                            func.max(t.name), func.max(t.kind), func.max(t.limit_bytes), func.max(t.high_bytes),
                            mean(t.usage_bytes), mean(t.working_set_bytes), func.max(t.working_set_percent),
                            func.max(t.oom_kill))
                     .where(*in_chunk).group_by(t.host, t.path, start))
            added = conn.execute(insert(cgroup_samples).from_select(
                ["host", "time", "resolution", "path", "name", "kind", "limit_bytes", "high_bytes", "usage_bytes",
                 "working_set_bytes", "working_set_percent", "oom_kill"], means)).rowcount
            gone = conn.execute(delete(cgroup_samples).where(*in_chunk)).rowcount
        removed += gone - added
        low = high


def prune_cgroup_samples(engine: Engine, host: str, now: datetime, policy: RetentionPolicy,
                         chunk: timedelta = CHUNK) -> int:
    """The cgroup samples' retention, with the same tiers as the host's samples: deleted past
    `samples`, 5-minute means after `raw_samples`, hourly means after a week. Rows fewer."""
    t = cgroup_samples.c
    cutoff = now - timedelta(seconds=policy.samples)
    removed = 0
    while True:
        with engine.begin() as conn:
            first = conn.execute(select(func.min(t.time)).where(t.host == host, t.time < cutoff)).scalar()
            if first is None:
                break
            until = min(first + chunk, cutoff)
            removed += conn.execute(delete(cgroup_samples).where(t.host == host, t.time < until)).rowcount
    removed += downsample_cgroup_tier(engine, host, now - timedelta(seconds=policy.raw_samples), 0, 300, chunk)
    week = max(policy.raw_samples, 7 * 86400)
    return removed + downsample_cgroup_tier(engine, host, now - timedelta(seconds=week), 300, 3600, chunk)


def prune(engine: Engine, host: str, now: datetime, policy: RetentionPolicy,
          chunk: timedelta = CHUNK) -> dict[str, int]:
    """Delete `host`'s rows past their retention, then downsample what ages; counts per kind.

    Expired samples go first, so nothing is averaged only to be deleted.
    """
    counts = {"samples": delete_samples_before(engine, host, now - timedelta(seconds=policy.samples), chunk)}
    with engine.begin() as conn:
        for name, table, column, seconds, extra in (
            ("kills", kills, kills.c.recorded_at, policy.kills, None),
            ("alerts", alerts, alerts.c.started_at, policy.alerts, alerts.c.status == "resolved"),
            ("notifications", notifications, notifications.c.created_at, policy.notifications,
             notifications.c.status.in_(FINISHED)),
            ("adjustments", adjustments, adjustments.c.time, policy.adjustments, None),
        ):
            where = [table.c.host == host, column < now - timedelta(seconds=seconds)]
            if extra is not None:
                where.append(extra)
            counts[name] = conn.execute(delete(table).where(*where)).rowcount
        conn.execute(delete(mutes).where(mutes.c.until < now - MUTES_KEPT))
    counts["downsampled"] = downsample(engine, host, now, policy.raw_samples, chunk)
    counts["cgroup_samples"] = prune_cgroup_samples(engine, host, now, policy, chunk)
    return counts

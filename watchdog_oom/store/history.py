"""The history store's implementation: see the package docstring."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import itertools
import json
import os
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import String, and_, case, create_engine, event, func, insert, or_, select, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from watchdog_oom.bounds import PROCESS_MAX, TEXT_MAX, cap, cap_kill
from watchdog_oom.model import KILL_FIELDS, Alert, CgroupSample, MemorySample, OomKill, with_local_time
from watchdog_oom.store import StoreError, batch, retention
from watchdog_oom.store.retention import RetentionPolicy
from watchdog_oom.store.tables import (
    Adjustment,
    AlertRow,
    Base,
    CgroupSampleRow,
    Cursor,
    Kill,
    Mute,
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
    from_row,
)

__all__ = [
    "AlertRow",
    "Base",
    "Kill",
    "Mute",
    "NotificationRow",
    "Sample",
    "Store",
    "StoreError",
    "Tx",
    "kill_record",
]

# Two records of one kill (seen through kmsg and syslog, or imported again) are the same
# kill when host, pid and name agree and their times lie this close: syslog stamps
# whole seconds in local time, and a log read late may lag the kernel's clock.
SAME_KILL_WINDOW = timedelta(seconds=90)
# The source of a kill only the oom/mark_victim tracepoint saw, and the name it has when the
# kernel's event carries only the pid (before 6.9) and nobody knew the process.
TRACEPOINT = "tracepoint"
UNKNOWN_NAME = "?"
# The newest migration in migrations/versions; a test keeps it equal to Alembic's head.
# 0005 (cgroup samples) landed after 0006 and revises it, and 0004 (quarantined kills)
# landed after 0005 and revises it, so the chain stays one line.
SCHEMA_HEAD = "0004"
# Kills per transaction of an import: one SELECT and one INSERT each.
IMPORT_BATCH = 2000
# How long a claimed notification may stay `sending` before it is due again: longer
# than any channel's timeout (SMTP and HTTP default to 10 s).
CLAIM_LEASE = timedelta(minutes=5)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def kill_record(row: Kill) -> dict[str, Any]:
    """The INTERFACE.md kill record of a stored kill, JSON-ready."""
    record = {name: getattr(row, name) for name in KILL_FIELDS if name not in ("order", "time")}
    record["time"] = _iso(row.time)
    record["order"] = row.alloc_order
    return {name: record[name] for name in KILL_FIELDS}


def _answers(method: Callable[..., Any]) -> Callable[..., Any]:
    """A store method whose database failures come out as StoreError, said in one line:
    callers outside the store never see SQLAlchemy."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as exc:
            raise StoreError(f"database: {db_error(exc)}") from exc
    return wrapper


def db_error(exc: BaseException) -> str:
    """What the database said, on one bounded line: without the statement and its
    parameters, which SQLAlchemy appends (thousands of them for a bulk statement)."""
    said = getattr(exc, "orig", None) or exc
    text_ = " ".join(str(said).split()) or type(said).__name__
    return text_ if len(text_) <= 500 else text_[:499] + "…"


def _sqlite_path(url: str) -> str | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def _prepare_sqlite_file(path: str) -> None:
    """Create the state directory and database file readable only by their owner.

    The database holds command lines, which may name internal hosts and users.
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    if not os.path.exists(path):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        return
    if os.stat(path).st_mode & 0o077:
        try:
            os.chmod(path, 0o600)
        except OSError:
            pass  # not ours, or a read-only file system: reading it is still fine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the CLI read while the daemon writes; busy_timeout waits out a writer
    # instead of failing with "database is locked"; SQLite leaves foreign keys off
    # unless asked on every connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_postgresql_connect(dbapi_connection: Any, _record: Any) -> None:
    # Sessions in UTC: a date computed in SQL (history summary per day) is then the
    # same on every host of the fleet, whatever the server's own TimeZone setting.
    cursor = dbapi_connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    dbapi_connection.commit()


def make_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL, with SQLite's file and pragmas set up."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database: not a valid SQLAlchemy URL: {exc}") from None
    path = _sqlite_path(url)
    if path is not None:
        try:
            _prepare_sqlite_file(path)
        except OSError as exc:
            raise StoreError(f"database: cannot create or open {path}: {exc.strerror}") from None
    try:
        engine = create_engine(parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite")
    except Exception as exc:  # a missing DBAPI driver, for instance
        raise StoreError(f"database: cannot open {parsed.render_as_string(hide_password=True)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
    elif parsed.get_backend_name() == "postgresql":
        event.listen(engine, "connect", _on_postgresql_connect)
    return engine


def migrations_dir() -> str:
    """Where the Alembic migrations are: inside an installed package (setup.py ships the
    top-level migrations/ there), else at the top of this source tree."""
    shipped = resources.files("watchdog_oom") / "migrations"
    if (shipped / "env.py").is_file():
        return str(shipped)
    return str(Path(__file__).resolve().parents[2] / "migrations")


def alembic_config(engine_url: str | None = None) -> Any:
    """An Alembic Config pointing at the migrations (see migrations_dir)."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", migrations_dir())
    if engine_url:
        cfg.set_main_option("sqlalchemy.url", engine_url.replace("%", "%%"))
    return cfg


class Store:
    """The history database of one host (or of a fleet, each row carrying its host)."""

    def __init__(self, url: str, host: str) -> None:
        self.url = url
        self.host = host
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        # Every session passes this gate, which a repair closes while it swaps the database
        # file under the daemon (restore_unlinked, reopen).
        self._gate = _Gate()
        # The newest cursor committed per source by this process: what a database that was
        # deleted or replaced under the daemon gets back, so nothing is read twice.
        self.cursors_committed: dict[str, str] = {}
        # A glob's literal prefix as an index range: where text compares byte by byte.
        self._ranged = self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        self.engine.dispose()

    def _sessions(self) -> contextlib.AbstractContextManager[Session]:
        """A session, once no repair is swapping the database (see `_Gate`)."""
        return self._gate.session(lambda: self._factory())

    def reopen(self, meanwhile: Callable[[], Any] | None = None) -> Any:
        """Close every connection, run `meanwhile` (move the file aside, say), and open the
        URL again (the file at the path may be new); returns what `meanwhile` returned."""
        with self._gate.exclusive():
            self.engine.dispose()
            result = meanwhile() if meanwhile is not None else None
            self.engine = make_engine(self.url)
            self._factory = sessionmaker(self.engine, expire_on_commit=False)
        return result

    def restore_unlinked(self) -> bool:
        """The SQLite file was deleted while open: put the open copy back at its path.

        SQLite keeps writing to an unlinked file (its inode lives while a connection has
        it open), so the daemon's pooled connection still sees everything. VACUUM INTO
        (SQLite 3.27+) writes it whole to a new file beside the path; then every
        connection closes (the last one folds the old WAL into the old inode and removes
        it by name), and the copy takes the path. False when no connection had it open
        any more or SQLite could not: the caller starts a new database instead.
        """
        path = _sqlite_path(self.url)
        if path is None:
            return False
        with self._gate.exclusive():
            return self._restore_unlinked(path)

    def _restore_unlinked(self, path: str) -> bool:
        staging = f"{path}.restoring-{os.getpid()}"
        for leftover in (staging, staging + "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        copied = False
        try:
            connection = self.engine.pool.connect()  # a pooled connection, never a new one
            try:
                if connection.dbapi_connection is not None and _still_open(connection.dbapi_connection):
                    connection.dbapi_connection.execute("VACUUM INTO ?", (staging,))
                    copied = True
            finally:
                connection.close()
        except Exception:
            copied = False
        # No session is open (the gate is shut): closing every connection now lets the last
        # one fold the old WAL into the unlinked inode and remove it by name, before a new
        # file takes the name (a WAL left at PATH-wal would be replayed into the new file).
        self.engine.dispose()
        for suffix in ("-wal", "-shm"):
            # SQLite leaves the WAL of a database file that was unlinked (it does not remove
            # what may belong to a file of that name now). Its frames are in the copy; the
            # new file must never meet them, or they would be replayed into it.
            with contextlib.suppress(FileNotFoundError):
                if copied:
                    os.unlink(path + suffix)
                else:
                    os.rename(path + suffix, f"{path}.deleted-{os.getpid()}{suffix}")
        if copied and not os.path.exists(path):
            os.chmod(staging, 0o600)
            os.rename(staging, path)
        elif copied:
            os.rename(staging, f"{staging}.kept")  # a new file took the path meanwhile: keep ours beside it
            copied = False
        self.engine = make_engine(self.url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        return copied
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("VACUUM INTO ?", (path,))
            return True
        except SQLAlchemyError:
            return False


    # -- schema -------------------------------------------------------------------------

    def upgrade(self) -> str:
        """Migrate the schema to the newest revision; returns that revision."""
        from alembic import command

        cfg = alembic_config()
        try:
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"database: migration failed: {exc}") from exc
        return self.revision() or ""

    def at_head(self) -> bool:
        """Whether the schema is the newest, asked with one query and without loading
        Alembic (a tenth of a second every command would pay)."""
        try:
            with self.engine.connect() as connection:
                return connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
        except SQLAlchemyError:
            return False  # no version table yet: an empty database

    def revision(self) -> str | None:
        """The schema revision the database is at (None: not migrated)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    # -- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def tx(self) -> Iterator["Tx"]:
        """One transaction: everything done through the Tx commits together or not at all."""
        with self._sessions() as session, session.begin():
            tx = Tx(session, self.host)
            yield tx
        self.cursors_committed.update(tx.cursors_set)

    def import_kills(self, kills: Iterable[OomKill], now: datetime,
                     batch_size: int = IMPORT_BATCH) -> Iterator[tuple[StoredKill, bool]]:
        """Record kills read from old logs, `batch_size` at a time, each batch its own
        transaction (a long import never holds the database for long, and memory stays
        flat); yields, per kill in order, its record and whether it is new."""
        pending = iter(kills)
        while chunk := list(itertools.islice(pending, batch_size)):
            with self.engine.begin() as conn:
                recorded = batch.record_kills(conn, self.host, [(cap_kill(kill), None) for kill in chunk], now)
            yield from recorded

    # -- the outbox ---------------------------------------------------------------------

    def claim_due(self, now: datetime, limit: int = 20, channel: str | None = None,
                  other_than: Collection[str] | None = None) -> list[OutboxRow]:
        """Take due notifications of this host for sending (status → sending): of one
        `channel`, of channels `other_than` those named, or of all.

        A claim is a lease: a row left `sending` longer than CLAIM_LEASE (its sender died,
        or could not record the outcome) is due again, so nothing stays stuck until a
        restart. Delivery is therefore at least once; the stable `webhook-id` lets a
        receiver drop the rare repeat.
        """
        expired = now - CLAIM_LEASE
        due = or_(
            and_(NotificationRow.status == "pending", NotificationRow.due_at <= now),
            and_(NotificationRow.status == "sending", NotificationRow.last_attempt_at < expired),
        )
        claimed: list[OutboxRow] = []
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(NotificationRow.__table__)
                .where(NotificationRow.host == self.host, due, *_channel_filter(channel, other_than))
                .order_by(NotificationRow.due_at, NotificationRow.id)
                .limit(limit)
                # PostgreSQL: two claimers take different rows instead of queueing on
                # the same ones; SQLite has no row locks and serialises writers anyway.
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                # Conditional update: a concurrent grouper may not append to a claimed row,
                # and a concurrent claimer may not take it twice.
                taken = conn.execute(
                    update(NotificationRow)
                    .where(NotificationRow.id == row.id, NotificationRow.status == row.status,
                           NotificationRow.attempts == row.attempts)
                    .values(status="sending", last_attempt_at=now, attempts=NotificationRow.attempts + 1)
                ).rowcount
                if taken:
                    claimed.append(from_row(OutboxRow, {**row._mapping, "status": "sending", "last_attempt_at": now,
                                                        "attempts": row.attempts + 1}))
        return claimed

    def next_due(self, channel: str | None = None, other_than: Collection[str] | None = None) -> datetime | None:
        """When the earliest notification of this host (of `channel`, or of channels
        `other_than` those named) falls due; a lease expiring counts."""
        which = (NotificationRow.host == self.host, *_channel_filter(channel, other_than))
        with self._sessions() as session:
            pending = session.scalar(
                select(func.min(NotificationRow.due_at)).where(*which, NotificationRow.status == "pending"))
            leased = session.scalar(
                select(func.min(NotificationRow.last_attempt_at)).where(*which, NotificationRow.status == "sending"))
        candidates = [t for t in (pending, leased + CLAIM_LEASE if leased else None) if t is not None]
        return min(candidates) if candidates else None

    def mark_sent(self, row: NotificationRow, detail: str, now: datetime) -> bool:
        return self._finish(row, status="sent", sent_at=now, detail=detail[:2000], last_error=None)

    def mark_retry(self, row: NotificationRow, error: str, due_at: datetime) -> bool:
        return self._finish(row, status="pending", due_at=due_at, last_error=error[:2000])

    def release(self, row: NotificationRow, due_at: datetime) -> bool:
        """Hand back a claimed notification unsent (its channel asked us to wait): it is
        due again at `due_at`, and the claim does not count as an attempt."""
        return self._finish(row, status="pending", due_at=due_at, attempts=NotificationRow.attempts - 1)

    def mark_failed(self, row: NotificationRow, error: str, status: str = "failed") -> bool:
        """Give up on a notification: `failed` (permanent error) or `given_up` (too old)."""
        return self._finish(row, status=status, last_error=error[:2000])

    def _finish(self, row: NotificationRow, **values: Any) -> bool:
        """Record the outcome of a claim, unless the claim is stale: its lease ran out and
        another sender claimed the row since (a later attempt). False then."""
        with self._sessions() as session, session.begin():
            return bool(session.execute(
                update(NotificationRow)
                .where(NotificationRow.id == row.id, NotificationRow.status == "sending",
                       NotificationRow.attempts == row.attempts)
                .values(**values)
            ).rowcount)

    def requeue_inflight(self) -> int:
        """Put back notifications a previous run claimed but never finished (it died mid-send)."""
        with self._sessions() as session, session.begin():
            return session.execute(
                update(NotificationRow)
                .where(NotificationRow.host == self.host, NotificationRow.status == "sending")
                .values(status="pending")
            ).rowcount

    @_answers
    def outbox_backlog(self) -> int:
        with self._sessions() as session:
            return session.scalar(
                select(func.count()).select_from(NotificationRow).where(
                    NotificationRow.host == self.host, NotificationRow.status.in_(("pending", "sending"))
                )
            ) or 0

    # -- history queries ----------------------------------------------------------------

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
                    out.setdefault(row.path, []).append(_cgroup_sample(row))
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

    def _values(self, query: Any, value: type[Any]) -> list[Any]:
        """Rows of a Core select as values of `value` (a dataclass of watchdog_oom.stored)."""
        with self.engine.connect() as conn:
            return [from_row(value, row._mapping) for row in conn.execute(query)]

    # -- mutes --------------------------------------------------------------------------

    def add_mute(self, until: datetime, now: datetime, kind: str | None = None,
                 process: str | None = None, cgroup: str | None = None, reason: str | None = None,
                 all_hosts: bool = False) -> MuteRule:
        """Record a mute; returns it with its id."""
        values = dict(host=None if all_hosts else self.host, created_at=now, until=until,
                      kind=kind, process=process, cgroup=cgroup, reason=reason)
        with self.engine.begin() as conn:
            mute_id = conn.execute(insert(Mute.__table__).returning(Mute.id), values).scalar_one()
        return MuteRule(id=mute_id, **values)

    def mutes(self, now: datetime, active_only: bool = True) -> list[MuteRule]:
        """This host's mutes and the fleet's, the active ones unless asked otherwise."""
        query = select(Mute.__table__).where(or_(Mute.host.is_(None), Mute.host == self.host))
        if active_only:
            query = query.where(Mute.until > now)
        return self._values(query.order_by(Mute.id), MuteRule)

    def end_mute(self, mute_id: int, now: datetime) -> bool:
        """End a mute now; False when there is no active mute with that id."""
        with self._sessions() as session, session.begin():
            return bool(session.execute(
                update(Mute).where(Mute.id == mute_id, Mute.until > now).values(until=now)
            ).rowcount)

    # -- retention ----------------------------------------------------------------------

    def prune(self, now: datetime, *, samples: float, kills: float, alerts: float,
              notifications: float, raw_samples: float,
              adjustments: float = 400 * 86400.0) -> dict[str, int]:
        """Delete rows past their retention and downsample aging samples; counts per kind."""
        policy = RetentionPolicy(samples=samples, kills=kills, alerts=alerts, notifications=notifications,
                                 raw_samples=raw_samples, adjustments=adjustments)
        try:
            return retention.prune(self.engine, self.host, now, policy)
        except SQLAlchemyError as exc:
            raise StoreError(f"retention: {db_error(exc)}") from exc

    def downsample(self, now: datetime, raw_samples: float) -> int:
        """Replace raw samples older than `raw_samples` by 5-minute means, and 5-minute
        means older than a week by hourly means. Returns the number of rows removed."""
        return retention.downsample(self.engine, self.host, now, raw_samples)


# The value each table's rows come back as.
_VALUES: dict[str, type[Any]] = {"Kill": StoredKill, "Sample": StoredSample, "AlertRow": AlertEpisode,
                                 "NotificationRow": OutboxRow, "Mute": MuteRule, "Protection": ProtectionRecord}


def _channel_filter(channel: str | None, other_than: Collection[str] | None) -> list[Any]:
    """The WHERE terms choosing one channel's notifications, or those of other channels."""
    terms: list[Any] = []
    if channel is not None:
        terms.append(NotificationRow.channel == channel)
    if other_than is not None:
        terms.append(NotificationRow.channel.not_in(list(other_than)))
    return terms


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


def mute_matches(mute: Mute, kind: str, process: str | None, cgroup: str | None) -> bool:
    """Whether `mute` silences a notification of `kind` about `process` in `cgroup`."""
    return _mute_matches(mute, kind, process, cgroup)


class _Gate:
    """Sessions pass freely, except while a repair holds it shut: then new sessions wait,
    and the repair waits for the open ones to end (a swap never happens under a session)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._active = 0
        self._shut = False

    @contextlib.contextmanager
    def session(self, factory: Callable[[], Session]) -> Iterator[Session]:
        with self._changed:
            self._changed.wait_for(lambda: not self._shut)
            self._active += 1
        try:
            with factory() as session:
                yield session
        finally:
            with self._changed:
                self._active -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def exclusive(self, timeout: float = 30.0) -> Iterator[None]:
        with self._changed:
            self._shut = True
            self._changed.wait_for(lambda: self._active == 0, timeout)
        try:
            yield
        finally:
            with self._changed:
                self._shut = False
                self._changed.notify_all()


def _still_open(dbapi_connection: Any) -> bool:
    """Whether a pooled SQLite connection has a database open with tables in it (a
    connection opened after the file was deleted would see a new, empty one)."""
    try:
        return bool(dbapi_connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    except Exception:
        return False


def _mute_matches(mute: Mute, kind: str, process: str | None, cgroup: str | None) -> bool:
    if mute.kind and not fnmatch.fnmatchcase(kind, mute.kind):
        return False
    if mute.process and not (process and fnmatch.fnmatchcase(process, mute.process)):
        return False
    if mute.cgroup and not (cgroup and fnmatch.fnmatchcase(cgroup, mute.cgroup)):
        return False
    return True


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


def same_kill(row: Any, kill: OomKill) -> bool:
    """Whether a stored kill of the same host, pid and time window is this very kill."""
    if row.killer != kill.killer:
        return False
    # "?": the tracepoint of a pre-6.9 kernel gave only the pid and nobody knew the name.
    if row.process[:15] != kill.process[:15] and UNKNOWN_NAME not in (row.process, kill.process):
        return False
    # Two boots can reuse a pid at the same uptime: trust boot ids when both have one.
    if row.boot_id and kill.boot_id and row.boot_id != kill.boot_id:
        return False
    return not (row.mono_usec is not None and kill.mono_usec is not None and row.boot_id and kill.boot_id
                and abs(row.mono_usec - kill.mono_usec) > 1000)


def kill_values(kill: OomKill, host: str, now: datetime, details: dict[str, Any] | None) -> dict[str, Any]:
    """The column values of a new kills row (`host`: where a kill that names none happened)."""
    return dict(
        host=kill.host or host, boot_id=kill.boot_id, time=kill.time, mono_usec=kill.mono_usec,
        pid=kill.pid, process=kill.process, uid=kill.uid,
        total_vm_kb=kill.total_vm_kb, anon_rss_kb=kill.anon_rss_kb, file_rss_kb=kill.file_rss_kb,
        shmem_rss_kb=kill.shmem_rss_kb, pgtables_kb=kill.pgtables_kb, oom_score_adj=kill.oom_score_adj,
        score=kill.score, constraint=kill.constraint, memcg=kill.memcg, task_memcg=kill.task_memcg,
        cgroup_oom=kill.cgroup_oom, invoker=kill.invoker, invoker_pid=kill.invoker_pid,
        gfp_mask=kill.gfp_mask, alloc_order=kill.order, killer=kill.killer, source=kill.source,
        cmdline=kill.cmdline, unit=kill.unit,
        details={
            "task_table": [t.to_dict() for t in kill.task_table],
            "memory_info": list(kill.memory_info),
            "extra": kill.extra,
            **(details or {}),
        },
        recorded_at=now,
    )


def fill_missing(row: Any, kill: OomKill) -> None:
    """A second sighting of a stored kill may know more (a syslog line carries no boot id,
    kmsg no wall clock of its own): fill fields the first record lacked, never overwrite."""
    for attr, value in (
        ("boot_id", kill.boot_id), ("mono_usec", kill.mono_usec), ("uid", kill.uid),
        ("constraint", kill.constraint), ("memcg", kill.memcg), ("task_memcg", kill.task_memcg),
        ("invoker", kill.invoker), ("invoker_pid", kill.invoker_pid), ("gfp_mask", kill.gfp_mask),
        ("cmdline", kill.cmdline), ("unit", kill.unit), ("shmem_rss_kb", kill.shmem_rss_kb),
        ("pgtables_kb", kill.pgtables_kb), ("oom_score_adj", kill.oom_score_adj),
        ("total_vm_kb", kill.total_vm_kb), ("anon_rss_kb", kill.anon_rss_kb), ("file_rss_kb", kill.file_rss_kb),
        ("score", kill.score),
    ):
        if getattr(row, attr) is None and value is not None:
            setattr(row, attr, value)
    if row.alloc_order is None and kill.order is not None:
        row.alloc_order = kill.order
    if kill.cgroup_oom and not row.cgroup_oom:
        row.cgroup_oom = True
    if row.process == UNKNOWN_NAME and kill.process != UNKNOWN_NAME:
        row.process = kill.process
    if row.source == TRACEPOINT and kill.source not in (None, TRACEPOINT):
        _log_witnessed(row, kill)


def _log_witnessed(row: Kill, kill: OomKill) -> None:
    """The log's account of a kill the tracepoint recorded first: the record takes the log's
    task table and memory state, names the log as its source, and keeps both witnesses."""
    details = dict(row.details or {})
    extra = dict(details.get("extra") or {})
    witnesses = list(dict.fromkeys([*extra.get("witnesses", [TRACEPOINT]), kill.source]))
    details["extra"] = {**kill.extra, **extra, "witnesses": witnesses}
    if not details.get("task_table"):
        details["task_table"] = [t.to_dict() for t in kill.task_table]
    if not details.get("memory_info"):
        details["memory_info"] = list(kill.memory_info)
    row.details = details
    row.source = kill.source


def _cgroup_sample(row: CgroupSampleRow) -> CgroupSample:
    """A stored cgroup reading as the rules take it (the figures a forecast needs)."""
    return CgroupSample(path=row.path, version=0, time=row.time, limit_bytes=row.limit_bytes,
                        usage_bytes=row.usage_bytes, working_set_bytes=row.working_set_bytes,
                        high_bytes=row.high_bytes, oom_kill=row.oom_kill, name=row.name, kind=row.kind or "cgroup")

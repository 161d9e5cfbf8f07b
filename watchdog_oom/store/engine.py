"""The connection to the history database: the engine, its connect hooks, the SQLite
file's preparation, and `Database`, the base the store's parts share (the engine of one
URL, the gate a repair closes while it swaps the file, whether the schema is at its head)."""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.expression import TableClause

from watchdog_oom.store import StoreError

# The newest migration in migrations/versions; a test keeps it equal to Alembic's head.
# 0005 (cgroup samples) landed after 0006 and revises it, and 0004 (quarantined kills)
# landed after 0005 and revises it, so the chain stays one line; 0007 follows 0004, 0008 0007, 0009 0008.
SCHEMA_HEAD = "0009"

T = TypeVar("T")

# The execution options of a statement the daemon runs on a clock, idle or not (a sample,
# the outbox's looks, the database watch's read) or once at start: compiled at each run
# instead of kept in SQLAlchemy's compiled cache (an LRU of 500 per engine), where the
# idle daemon held twelve such statements, some 24 kB each (0.29 MiB of its peak RSS).
# Compiling one again costs about 0.7 ms (0.7-1.7 ms measured on a loaded machine, review
# R4). At the defaults the idle daemon compiles about 30 a minute: a sample every 10 s for
# commit, memory and cgroups, the firing alerts' look, and per channel the outbox's claim
# and two looks every IDLE_WAIT (60 s): some 20-50 ms of CPU a minute, under 0.1 % of a
# core, against 0.29 MiB held for good. Statements that answer an event (a kill, an
# alert, a trace event) stay cached: a burst runs them many times.
UNCACHED: dict[str, Any] = {"compiled_cache": None}

# How long a thread of the daemon waits for the SQLite connection its threads share, in
# seconds. SQLite lets one writer at a time in anyway (a second one waits out
# busy_timeout), and every other connection would keep its own copy of the parsed schema,
# its prepared statements and a page cache of up to 2 MiB (PRAGMA cache_size): the idle
# daemon held two or three of them. The threads take it in turn (OneConnectionPool), so
# the wait is for the transactions asked for before, one of retention's chunks at most.
SHARED_CONNECTION_WAIT = 60.0
# How long a SQLite connection waits for a lock another connection holds (PRAGMA
# busy_timeout), in milliseconds. A thread of the daemon that queued for the one
# connection gets what is left of it after its wait in the queue, at least LEAST_BUSY_MS
# (OneConnectionPool): no thread waits for a locked database much longer than this in all.
BUSY_TIMEOUT_MS = 10000
LEAST_BUSY_MS = 100
# The page cache of the daemon's one SQLite connection, in KiB (PRAGMA cache_size=-N).
# SQLite's default, 2,000 KiB, fills as the history is read and written and stays: on a
# month of history (a 4.4 MB file), seven retention runs in a row took the idle daemon's
# peak RSS up 2.4-3.8 MiB, the first alone 1.6; with 256 KiB, 1.1-2.3 MiB, the first 0.4.
# What the daemon reads on a clock is small (the ends of the indexes it appends to, an
# hour of samples, the outbox), and a page missed is read from the kernel's page cache.
# The commands keep the default: a `history` over 100,000 kills reads much more.
DAEMON_CACHE_KIB = 256
# The statements the daemon's one SQLite connection keeps prepared (sqlite3's
# cached_statements; 128 by default). Each holds SQLite's compiled program, some 4 KiB: the
# idle daemon's connection held a dozen, 40 KiB of SQLite's memory (sqlite3_memory_used
# 157-161 -> 117 KiB). Preparing one again costs some 20-100 us, at each run: some 30 a
# minute at idle, a few per transaction of kills, against the millisecond a statement's
# compilation by SQLAlchemy takes (UNCACHED). The commands keep the default.
DAEMON_PREPARED = 0


class _Turns:
    """A lock granted in the order it was asked for: released, it goes to the longest
    waiter directly, so a thread that releases and asks again at once (a loop of
    transactions, such as retention's chunks) queues behind those already waiting."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._mutex = threading.Lock()
        self._waiting: collections.deque[threading.Lock] = collections.deque()
        self._held = False
        self.clock = clock  # seconds, for how long a turn was waited for

    def take(self, timeout: float) -> float | None:
        """Wait for the turn, at most `timeout` seconds: None when it did not come, else
        how long it was waited for (0.0: free at once)."""
        with self._mutex:
            if not self._held:
                self._held = True
                return 0.0
            mine = threading.Lock()
            mine.acquire()
            self._waiting.append(mine)
            asked = self.clock()
        if not mine.acquire(timeout=timeout):
            with self._mutex:
                if mine in self._waiting:
                    self._waiting.remove(mine)
                    return None
            # handed over between the timeout and the mutex
        return max(0.0, self.clock() - asked)

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()  # the turn passes on; still held
            else:
                self._held = False


class OneConnectionPool(QueuePool):
    """SQLAlchemy's QueuePool of one connection, handed to the threads in the order they ask.

    QueuePool alone is not fair: a thread that returns the connection and asks again at once
    gets it back before the waiting thread wakes, so retention's back-to-back chunk
    transactions kept the kill writer, the checks and the database probe waiting for
    seconds (the reviewer measured up to 8.8 s over a million samples). `_Turns` queues them.

    While another process holds the database locked, a thread whose statement waits out
    busy_timeout holds the one connection meanwhile, and the threads queued behind it
    wait too. On its turn, a thread's connection waits for a lock only what is left of
    BUSY_TIMEOUT_MS after its wait in the queue (at least LEAST_BUSY_MS): each thread waits
    about busy_timeout in all, as it would with a connection of its own, instead of the
    queue's threads waiting it out one after the other (30 s for three).
    """

    def __init__(self, creator: Any, **kw: Any) -> None:
        super().__init__(creator, **kw)
        self._turns = _Turns()
        self._hurried = False  # this turn's connection waits less than BUSY_TIMEOUT_MS for a lock

    def _do_get(self) -> Any:
        waited = self._turns.take(self._timeout)
        if waited is None:
            # QueuePool's own words: store/health.py classifies them (a busy database).
            raise PoolTimeoutError(f"QueuePool limit of size {self.size()} overflow {self.overflow()} reached, "
                                   f"connection timed out, timeout {self._timeout:.2f}")
        try:
            record = super()._do_get()
        except BaseException:
            self._turns.release()
            raise
        left = max(LEAST_BUSY_MS, BUSY_TIMEOUT_MS - round(waited * 1000))
        self._hurried = left < BUSY_TIMEOUT_MS and _busy_timeout(record, left)
        return record

    def _do_return_conn(self, record: Any) -> None:
        try:
            if self._hurried:
                self._hurried = False
                _busy_timeout(record, BUSY_TIMEOUT_MS)
            super()._do_return_conn(record)
        finally:
            self._turns.release()


def _busy_timeout(record: Any, milliseconds: int) -> bool:
    """Set a pooled SQLite connection's busy_timeout; False when it has none open now (a
    new one gets BUSY_TIMEOUT_MS from _on_sqlite_connect)."""
    if record.dbapi_connection is None:
        return False
    try:
        record.dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")
    except Exception:
        return False  # a closed connection: its next user opens a new one
    return True


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
        with contextlib.suppress(OSError):  # not ours, or a read-only file system: reading it is still fine
            os.chmod(path, 0o600)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the CLI read while the daemon writes; busy_timeout waits out a writer
    # instead of failing with "database is locked"; SQLite leaves foreign keys off
    # unless asked on every connection.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_daemon_sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    _on_sqlite_connect(dbapi_connection, record)
    dbapi_connection.execute(f"PRAGMA cache_size=-{DAEMON_CACHE_KIB}")


def _on_postgresql_connect(dbapi_connection: Any, _record: Any) -> None:
    # Sessions in UTC: a date computed in SQL (history summary per day) is then the
    # same on every host of the fleet, whatever the server's own TimeZone setting.
    cursor = dbapi_connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    dbapi_connection.commit()


def make_engine(url: str, one_connection: bool = False) -> Engine:
    """An engine for any SQLAlchemy URL, with SQLite's file and pragmas set up; with
    `one_connection`, a SQLite file's engine holds one connection that its threads take
    in turn (see SHARED_CONNECTION_WAIT), with a page cache of DAEMON_CACHE_KIB and no
    statement kept prepared (DAEMON_PREPARED)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database: not a valid SQLAlchemy URL: {exc}") from None
    path = _sqlite_path(url)
    if path is not None:
        try:
            _prepare_sqlite_file(path)
        except OSError as exc:
            # makedirs says "File exists" of a directory on the way that is a file: say which.
            why = f"{exc.filename} is not a directory" if isinstance(exc, (FileExistsError, NotADirectoryError)) \
                and exc.filename and not os.path.isdir(exc.filename) else exc.strerror
            raise StoreError(f"database: cannot create or open {path}: {why}") from None
    try:
        pooling: dict[str, Any] = {}
        if one_connection and path is not None:
            pooling = {"poolclass": OneConnectionPool, "pool_size": 1, "max_overflow": 0,
                       "pool_timeout": SHARED_CONNECTION_WAIT, "connect_args": {"cached_statements": DAEMON_PREPARED}}
        engine = create_engine(parsed, pool_pre_ping=parsed.get_backend_name() != "sqlite", **pooling)
    except Exception as exc:  # a missing DBAPI driver, for instance
        raise StoreError(f"database: cannot open {parsed.render_as_string(hide_password=True)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _on_daemon_sqlite_connect if pooling else _on_sqlite_connect)
    elif parsed.get_backend_name() == "postgresql":
        event.listen(engine, "connect", _on_postgresql_connect)
    return engine


def insert_id(conn: Connection, table: TableClause, values: dict[str, Any]) -> int:
    """Insert one row of `values` into `table`; returns the new row's id: the cursor's
    lastrowid where the driver has it (SQLite), else RETURNING id (PostgreSQL), as
    SQLAlchemy's inserted_primary_key does with a Table that declares its key."""
    statement = insert(table).values(values)
    if conn.dialect.postfetch_lastrowid:  # type: ignore[attr-defined]  # DefaultDialect's
        key: Any = conn.execute(statement).lastrowid
    else:
        key = conn.execute(statement.returning(table.c.id)).scalar()
    if key is None:  # pragma: no cover - every table inserted this way has an id
        raise StoreError(f"database: no id for the new {table.name} row")
    return int(key)


class Database:
    """The engine of one URL, shared by the store's parts; a repair swaps it whole."""

    def __init__(self, url: str, host: str, one_connection: bool = False) -> None:
        self.url = url
        self.host = host
        # A SQLite file through one connection, which the threads take in turn (make_engine).
        self.one_connection = one_connection
        self.engine = make_engine(url, one_connection)
        # Every transaction passes this gate, which a repair (store/upkeep.py: restore_unlinked,
        # reopen) closes while it swaps the database file under the daemon.
        self.gate = _Gate()
        # A glob's literal prefix as an index range: where text compares byte by byte.
        self._ranged = self.engine.dialect.name == "sqlite"

    def close(self) -> None:
        self.engine.dispose()

    def _connection(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection, once no repair is swapping the database (see `_Gate`)."""
        return self.gate.enter(lambda: self.engine.connect())

    # -- schema -------------------------------------------------------------------------

    def upgrade(self) -> str:
        """Migrate the schema to the newest revision; returns that revision (store/upkeep.py,
        with Alembic: the daemon migrates in a child process, store/migrate.py)."""
        from watchdog_oom.store.upkeep import upgrade

        return upgrade(self)

    def at_head(self) -> bool:
        """Whether the schema is the newest, asked with one query and without loading
        Alembic (a tenth of a second every command would pay)."""
        try:
            with self.engine.connect() as connection:
                return connection.execute(text("SELECT version_num FROM alembic_version"),
                                          execution_options=UNCACHED).scalar() == SCHEMA_HEAD
        except SQLAlchemyError:
            return False  # no version table yet: an empty database


class _Gate:
    """Connections pass freely, except while a repair holds it shut: then new ones wait,
    and the repair waits for the open ones to end (a swap never happens under a transaction)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._active = 0
        self._shut = False

    @contextlib.contextmanager
    def enter(self, factory: Callable[[], contextlib.AbstractContextManager[T]]) -> Iterator[T]:
        """What `factory` opens, once the gate is open; the repair waits until it is closed."""
        with self._changed:
            self._changed.wait_for(lambda: not self._shut)
            self._active += 1
        try:
            with factory() as opened:
                yield opened
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

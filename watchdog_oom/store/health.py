"""The history database watched: is it there, is it the one we opened, is it whole, does it write.

Checks, cheapest first:

* at start, `check_at_start(url)`: on SQLite `PRAGMA quick_check` (every page read, the
  b-trees' structure verified, without the index-content cross-check of
  `integrity_check`), on PostgreSQL a connection and the schema revision;
* while running, `SqliteFile.check()`: the path still names the file opened (same
  device and inode: not deleted, not replaced), and a read through the daemon's own
  connections works; at start, the header must read "SQLite format 3\\0"
  (https://www.sqlite.org/fileformat.html, 1.3 "The Database Header").

`classify(exc)` names what a failed statement says about the database (corrupt, full,
read-only, locked, unreachable). The repairs are store/upkeep.py's: `move_aside(path)`
keeps a corrupt file (with its -wal and -shm) under a new name, never overwriting
anything, so nothing already stored is destroyed; `salvage_cursors(path)` reads the
source cursors out of such a file when its pages still allow, so a new database resumes
the kernel log where the old one was.

SQLite writes to a file that was unlinked without complaint (the inode lives while it is
open), so a deleted database is only seen by looking at the path.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from watchdog_oom.valueclass import valueclass

SQLITE_MAGIC = b"SQLite format 3\x00"
# The page cache of quick_check's connection, in KiB (PRAGMA cache_size=-N). quick_check
# reads every page once: with SQLite's default cache (2,000 KiB) a month of history (a
# 4.4 MB file) took SQLite's memory up 2.2 MiB at the daemon's start, and its peak RSS with
# it, for good; with 64 KiB, 0.25 MiB, and the check takes no longer (22-30 ms against
# 30-40: the pages come from the kernel's page cache).
CHECK_CACHE_KIB = 64

# What SQLite's messages say, mapped to what an operator must do about it.
_KINDS = (
    ("malformed", "corrupt"),               # SQLITE_CORRUPT: "database disk image is malformed"
    ("file is not a database", "corrupt"),  # SQLITE_NOTADB
    ("file is encrypted", "corrupt"),
    ("database or disk is full", "full"),   # SQLITE_FULL
    ("no space left", "full"),              # ENOSPC through an OS error
    ("disk quota exceeded", "full"),
    ("readonly database", "read-only"),     # SQLITE_READONLY
    ("read-only file system", "read-only"),
    ("database is locked", "locked"),       # SQLITE_BUSY after busy_timeout
    ("database table is locked", "locked"),
    # The daemon's threads share one SQLite connection (store/engine.py SHARED_CONNECTION_WAIT):
    # one that waited that long for it (sqlalchemy.exc.TimeoutError) met a busy database too.
    ("queuepool limit", "locked"),
    ("unable to open database file", "unreachable"),  # SQLITE_CANTOPEN
    ("disk i/o error", "io"),               # SQLITE_IOERR
    ("no such table", "schema"),
    ("undefinedtable", "schema"),            # PostgreSQL: relation "..." does not exist (SQLSTATE 42P01)
    ("could not connect", "unreachable"),   # PostgreSQL (psycopg)
    ("connection refused", "unreachable"),
    ("server closed the connection", "unreachable"),
    ("connection timeout", "unreachable"),
    ("terminating connection", "unreachable"),
    ("the database system is starting up", "unreachable"),  # PostgreSQL, SQLSTATE 57P03
    ("the database system is shutting down", "unreachable"),
    ("no route to host", "unreachable"),    # EHOSTUNREACH through libpq
    ("network is unreachable", "unreachable"),  # ENETUNREACH
)


@valueclass
class Health:
    """The state of the database: `ok`, else `kind` (corrupt, deleted, replaced, full,
    read-only, locked, unreachable, io, schema, unknown) and a message for people."""

    ok: bool
    kind: str | None = None
    problem: str | None = None

    @classmethod
    def good(cls) -> Health:
        return cls(True)

    @classmethod
    def bad(cls, kind: str, problem: str) -> Health:
        return cls(False, kind, problem)


def classify(exc: BaseException) -> str:
    """What a failed database statement says about the database (see `_KINDS`), else "unknown"."""
    text = " ".join(str(e).lower() for e in _chain(exc))
    for needle, kind in _KINDS:
        if needle in text:
            return kind
    return "unknown"


def database_failure(exc: BaseException) -> bool:
    """Whether a failed write says the database cannot be used now (hold the kills and
    retry), rather than that one record is bad (a value the database cannot take)."""
    if classify(exc) != "unknown":
        return True
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    return isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, OSError, sqlite3.OperationalError))


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    orig = getattr(exc, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
    if isinstance(orig, BaseException):
        seen.append(orig)
    return seen


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (None for other databases and in-memory ones), read
    without SQLAlchemy so that `check` stays quick to start."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] != "sqlite" or not rest.startswith("/"):
        return None
    database = rest[1:].split("?", 1)[0]
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def quick_check(path: str, timeout: float = 10.0) -> Health:
    """`PRAGMA quick_check` of a SQLite file, read-only; a missing file is `deleted`."""
    if not os.path.exists(path):
        return Health.bad("deleted", f"{path} does not exist")
    try:
        with open(path, "rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError as exc:
        return Health.bad("unreachable", f"cannot read {path}: {exc.strerror}")
    if head and head != SQLITE_MAGIC:
        return Health.bad("corrupt", f"{path} is not a SQLite database (its header is damaged)")
    if not head:
        return Health.good()  # created empty, not migrated yet
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
        try:
            connection.execute(f"PRAGMA cache_size=-{CHECK_CACHE_KIB}")
            rows = [r[0] for r in connection.execute("PRAGMA quick_check(5)").fetchall()]
        finally:
            connection.close()
    except sqlite3.Error as exc:
        kind = classify(exc)
        return Health.bad(kind if kind != "unknown" else "corrupt", f"{path}: {exc}")
    if rows == ["ok"]:
        return Health.good()
    return Health.bad("corrupt", f"{path} is damaged: PRAGMA quick_check says " + "; ".join(map(str, rows)))


def check_at_start(url: str, engine: Any = None, timeout: float = 10.0) -> Health:
    """The check before the daemon relies on the database: quick_check on SQLite, a
    connection and the schema revision elsewhere (PostgreSQL)."""
    path = sqlite_path(url)
    if path is not None:
        return quick_check(path, timeout)
    if engine is None:
        return Health.good()
    from sqlalchemy import text

    try:
        with engine.connect() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:  # the driver's errors differ; classify reads their text
        kind = classify(exc)
        if kind == "schema":
            return Health.good()  # not migrated yet: the migration creates it
        return Health.bad(kind if kind != "unknown" else "unreachable", f"database: {_one_line(exc)}")
    if revision is None:
        return Health.bad("schema", "database: alembic_version is empty")
    return Health.good()


class SqliteFile:
    """The SQLite file the store opened, and whether the path still names it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.identity = _identity(path)

    def reopened(self) -> None:
        """The store opened the path again (a new file): watch that one."""
        self.identity = _identity(self.path)

    def check(self) -> Health:
        """Cheap (one stat): deleted or replaced; else ok.

        The file is never opened here: in the process whose SQLite connections hold it,
        closing any other descriptor of it drops their POSIX locks, after which another
        process may take its WAL for unused and delete it ("How To Corrupt An SQLite
        Database File", 2.2). Whether it still reads is asked through those connections.
        """
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return Health.bad("deleted", f"{self.path} was deleted while open; writes to it would be lost")
        except OSError as exc:
            return Health.bad("unreachable", f"cannot stat {self.path}: {exc.strerror}")
        if self.identity is not None and (status.st_dev, status.st_ino) != self.identity:
            return Health.bad("replaced", f"{self.path} was replaced by another file while open")
        return Health.good()


def _identity(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def failure_text(exc: BaseException, limit: int = 300) -> str:
    """What the database's driver said, on one line, for a log line: SQLAlchemy's wrapper
    adds the statement and notes (an autoflush hint, say) that bury it."""
    orig = getattr(exc, "orig", None)
    return _one_line(orig if isinstance(orig, BaseException) else exc)[:limit]


def _one_line(exc: BaseException) -> str:
    text = str(exc).split("(Background on this error", 1)[0]
    return " ".join(text.split())

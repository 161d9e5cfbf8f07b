"""What the store does seldom: migrate the schema (`upgrade`, Alembic's configuration
`alembic_config`; the revision it is at, `revision`), and the repairs of a SQLite file:
open it anew while no transaction runs (`reopen`), write a deleted one back from the
connection that still has it open (`restore_unlinked`), set a damaged one aside
(`move_aside`) and read the source cursors out of it (`salvage_cursors`).

Split from engine.py and health.py: the daemon migrates in a child process (store/migrate.py),
which alone loads this for that, and repairs only when its database fails; its code
objects were some 20 KiB (traced) of the idle daemon's. The database watch loads it at
its first repair (daemon/database.py): a repair that fails, this module unreadable
included, is said and tried again at the watch's next look, the kills held or written to
the open file meanwhile; a start that finds the file damaged fails with the reason.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from watchdog_oom.store import StoreError
from watchdog_oom.store.engine import _sqlite_path, make_engine
from watchdog_oom.store.serial import migrating

if TYPE_CHECKING:
    from watchdog_oom.store.engine import Database


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


def upgrade(database: Database) -> str:
    """Migrate the schema of `database` to the newest revision; returns that revision
    (Database.upgrade)."""
    from alembic import command


    cfg = alembic_config()
    try:
        with database.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            _foreign_keys(connection, sqlite, on=False)
            try:
                with connection.begin():
                    migrating(connection)  # one at a time: a second reads the first's revision
                    broken_before = _broken_links(connection) if sqlite else set()
                    cfg.attributes["connection"] = connection
                    command.upgrade(cfg, "head")
                    if sqlite:
                        _no_new_broken_links(connection, broken_before)
            finally:
                try:
                    _foreign_keys(connection, sqlite, on=True)
                except SQLAlchemyError:  # its keys may be off: never used again
                    connection.invalidate()
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"database: migration failed: {exc}") from exc
    return revision(database) or ""


def revision(database: Database) -> str | None:
    """The schema revision `database` is at (None: not migrated), as Alembic reads it."""
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _foreign_keys(connection: Connection, sqlite: bool, on: bool) -> None:
    """SQLite's foreign keys off for a migration, on again after; outside its transaction,
    where alone SQLite heeds the pragma. Alembic's batch mode recreates a table (copy,
    DROP, rename) to alter it, and with the keys on, the DROP would run the ON DELETE
    actions of the rows referring to it (notifications' alert_id and mute_id: SET NULL)."""
    if sqlite:
        connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        connection.commit()  # SQLAlchemy's autobegun transaction: pysqlite began none


def _broken_links(connection: Connection) -> set[tuple[Any, ...]]:
    """The rows referring to none (table, rowid, parent, key): PRAGMA foreign_key_check."""
    return {tuple(row) for row in connection.exec_driver_sql("PRAGMA foreign_key_check")}


def _no_new_broken_links(connection: Connection, before: set[tuple[Any, ...]]) -> None:
    """Fail the migration (before its commit) if it left a row referring to none that did
    not before (one deleted by hand with the sqlite3 shell, whose keys are off, is no
    migration's doing, and must not stop every later one)."""
    broken = sorted(_broken_links(connection) - before, key=str)
    if broken:
        raise StoreError("database: migration failed: it would leave rows referring to none "
                         "(table, rowid, parent): " + "; ".join(str(row[:3]) for row in broken[:5]))


def reopen(database: Database, meanwhile: Callable[[], Any] | None = None) -> Any:
    """Close every connection of `database`, run `meanwhile` (move the file aside, say), and
    open its URL again (the file at the path may be new), no transaction running meanwhile
    (its gate shut); returns what `meanwhile` returned."""
    with database.gate.exclusive():
        database.engine.dispose()
        result = meanwhile() if meanwhile is not None else None
        database.engine = make_engine(database.url, database.one_connection)
        return result


def restore_unlinked(database: Database) -> bool:
    """The SQLite file of `database` was deleted while open: put the open copy back at its
    path (`_write_back`, no transaction running meanwhile). False when it is no SQLite
    file, when no connection had it open any more or SQLite could not: the caller starts a
    new database instead."""
    path = _sqlite_path(database.url)
    if path is None:
        return False
    with database.gate.exclusive():
        return _write_back(database, path)


def _write_back(database: Database, path: str) -> bool:
    """The SQLite file at `path` was deleted while `database` had it open: put the open
    copy back at the path.

    SQLite keeps writing to an unlinked file (its inode lives while a connection has
    it open), so the daemon's pooled connection still sees everything. VACUUM INTO
    (SQLite 3.27+) writes it whole to a new file beside the path; then every
    connection closes (the last one folds the old WAL into the old inode and removes
    it by name), and the copy takes the path. False when no connection had it open
    any more or SQLite could not: the caller starts a new database instead.
    """
    staging = f"{path}.restoring-{os.getpid()}"
    for leftover in (staging, staging + "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(leftover)
    copied = False
    try:
        connection = database.engine.pool.connect()  # a pooled connection, never a new one
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
    database.engine.dispose()
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
    database.engine = make_engine(database.url, database.one_connection)
    return copied


def _still_open(dbapi_connection: Any) -> bool:
    """Whether a pooled SQLite connection has a database open with tables in it (a
    connection opened after the file was deleted would see a new, empty one)."""
    try:
        return bool(dbapi_connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
    except Exception:
        return False


def move_aside(path: str, now: datetime | None = None) -> str:
    """Rename a damaged database (and its -wal and -shm) to PATH.corrupt-STAMP, never over
    an existing file; returns the new name. Raises StoreError when it cannot."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        target = f"{path}.corrupt-{stamp}" + (f".{n}" if n else "")
        if not any(os.path.lexists(target + suffix) for suffix in ("", "-wal", "-shm")):
            break
    else:
        raise StoreError(f"database: no free name to move {path} aside")
    try:
        # link + unlink: unlike rename, link never replaces an existing file.
        os.link(path, target)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.link(path + suffix, target + suffix)
        for suffix in ("-wal", "-shm", ""):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
    except OSError as exc:
        raise StoreError(f"database: cannot move {path} aside to {target}: {exc.strerror}") from None
    return target


def salvage_cursors(path: str, host: str) -> dict[str, str]:
    """The source cursors of `host` stored in a (damaged) database, as far as they can be read."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return {}
    try:
        rows = connection.execute("SELECT source, cursor FROM cursors WHERE host = ?", (host,)).fetchall()
        return {str(source): str(cursor) for source, cursor in rows}
    except sqlite3.Error:
        return {}
    finally:
        connection.close()

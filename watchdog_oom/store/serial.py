"""One writer of a host's kills at a time, one migration of a database at a time: the
lock taken before looking (for a kill's sightings, for the schema's revision).

A kill is recorded once: its sightings are looked up (`Tx.find_same_kill`,
`batch.record_rows`) and only the new ones inserted. Two processes doing that at the same
moment (two `watchdog-oom import`s of one log, an import while the daemon records the
kill it is reading, two daemons of one host on a fleet database) would each find nothing
and each insert, unless the look-up already holds the write lock:

* SQLite: pysqlite begins a transaction only before the first INSERT/UPDATE/DELETE, so a
  look-up runs outside any write lock. `BEGIN IMMEDIATE` takes SQLite's RESERVED lock
  first (waiting up to the connection's busy_timeout, as any write does): other writers
  wait until this transaction ends, readers go on. In WAL mode it also saves a deferred
  transaction from SQLITE_BUSY_SNAPSHOT when it would turn from reader into writer after
  another process wrote. Where a write already ran in the transaction, it holds the lock.
* PostgreSQL (READ COMMITTED): a transaction-scoped advisory lock per host whose kills
  are written (`pg_advisory_xact_lock`), so other hosts' writers never wait on this one;
  each later statement's snapshot then sees what the previous holder committed. The
  hosts' locks are taken in one order, so two writers of the same hosts cannot deadlock.

Migrations likewise: two commands (or daemons of a fleet) that find one fresh database
would both create its tables, and the second fail ("table alerts already exists"). Under
the lock, the second reads the revision the first committed and has nothing to do. On
SQLite the lock also makes the migration one transaction (pysqlite runs DDL outside any
transaction otherwise): a migration cut short leaves the schema as it was, not half done.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

# PostgreSQL's advisory locks here take two keys: what is locked, and which one.
KILLS_LOCK_CLASS = 0x4F4F4D  # a host's kills ("OOM"); the second key: the host name's crc32
MIGRATIONS_LOCK_CLASS = 0x4F4F4E  # the schema's migrations; the second key: 0


def migrating(conn: Connection) -> None:
    """Hold the database's migration lock until the transaction of `conn` ends."""
    _lock(conn, MIGRATIONS_LOCK_CLASS, [0])


def writing_kills(conn: Connection, hosts: Iterable[str]) -> None:
    """Hold the lock on the kills of `hosts` until the transaction of `conn` ends (see above)."""
    # crc32 is stable across processes and versions (hash() is salted per process). Two
    # hosts may share a key: their writers then wait on each other, which is only slower.
    _lock(conn, KILLS_LOCK_CLASS, [zlib.crc32(host.encode("utf-8", "surrogateescape")) for host in hosts])


def _lock(conn: Connection, kind: int, keys: Iterable[int]) -> None:
    """SQLite: BEGIN IMMEDIATE unless a write began the transaction already; PostgreSQL:
    the advisory locks (kind, key) of each key, in one order, as signed 32-bit keys."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        driver = conn.connection.dbapi_connection
        if driver is not None and not driver.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        for key in sorted(set(keys)):
            conn.execute(text("SELECT pg_advisory_xact_lock(:kind, :key)"),
                         {"kind": kind, "key": key - (1 << 32) if key >= 1 << 31 else key})

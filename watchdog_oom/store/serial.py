"""One writer of a host's kills at a time: the lock taken before looking for duplicates.

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
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

# The advisory lock's first key: watchdog-oom's kills (the second is the host's).
KILLS_LOCK_CLASS = 0x4F4F4D  # "OOM"


def writing_kills(conn: Connection, hosts: Iterable[str]) -> None:
    """Hold the lock on the kills of `hosts` until the transaction of `conn` ends (see above)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        driver = conn.connection.dbapi_connection
        if driver is not None and not driver.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        # crc32 is stable across processes and versions (hash() is salted per process);
        # as a signed 32-bit key, as the two-key form takes. Two hosts may share a key:
        # their writers then wait on each other, which is only slower.
        keys = sorted({zlib.crc32(host.encode("utf-8", "surrogateescape")) for host in hosts})
        for key in keys:
            conn.execute(text("SELECT pg_advisory_xact_lock(:kind, :host)"),
                         {"kind": KILLS_LOCK_CLASS, "host": key - (1 << 32) if key >= 1 << 31 else key})

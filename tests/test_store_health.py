"""The database watch, against real SQLite files: corrupted, deleted, replaced, full, locked, read-only."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from watchdog_oom.model import OomKill
from watchdog_oom.store import Store
from watchdog_oom.store.health import (
    SqliteFile,
    check_at_start,
    classify,
    sqlite_path,
)
from watchdog_oom.store.upkeep import move_aside, salvage_cursors


def fill(store: Store, t0, n: int = 300) -> None:
    """Enough kills for the file to span a few hundred pages."""
    with store.tx() as tx:
        for i in range(n):
            tx.add_kill(OomKill(pid=10_000 + i, process="worker", time=t0 + timedelta(minutes=i), source="kmsg",
                                cmdline="worker --job " + "x" * 4000), t0)
        tx.set_cursor("kmsg", "boot:12345", t0)


def corrupt_middle(path: str) -> None:
    """Bytes written over a page in the middle of the file, as a bad disk or a stray dd would."""
    size = os.path.getsize(path)
    with open(path, "r+b") as file:
        file.seek(size // 2 // 4096 * 4096)
        file.write(b"\xde\xad\xbe\xef" * 1024)


@pytest.fixture
def store(db_url: str):
    """These checks are of SQLite files: a migrated one (not each engine in turn)."""
    s = Store(db_url, "web-01")
    s.upgrade()
    yield s
    s.close()


@pytest.fixture
def db_path(db_url: str) -> str:
    path = sqlite_path(db_url)
    assert path is not None
    return path


def test_a_sound_database_passes_the_start_check(store, db_url, t0):
    fill(store, t0, 100)
    assert check_at_start(db_url).ok


def test_bytes_written_in_the_middle_are_found_at_start_and_the_file_is_moved_aside_whole(store, db_url, db_path, t0):
    fill(store, t0)
    store.close()
    with sqlite3.connect(db_path) as connection:  # everything into the main file
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    corrupt_middle(db_path)
    health = check_at_start(db_url)
    assert not health.ok and health.kind == "corrupt" and db_path in health.problem
    before = Path(db_path).read_bytes()
    aside = move_aside(db_path)
    assert not os.path.exists(db_path) and Path(aside).read_bytes() == before
    assert salvage_cursors(aside, "web-01") == {"kmsg": "boot:12345"}


def test_a_damaged_header_is_corrupt(store, db_url, db_path):
    with open(db_path, "r+b") as file:
        file.write(b"GARBAGE GARBAGE!")
    assert check_at_start(db_url).kind == "corrupt"


def test_moving_aside_never_overwrites(tmp_path, t0):
    path = tmp_path / "history.db"
    path.write_bytes(b"damaged")
    Path(str(path) + "-wal").write_bytes(b"wal")
    stamp = t0
    first = move_aside(str(path), stamp)
    path.write_bytes(b"damaged again")
    second = move_aside(str(path), stamp)
    assert first != second
    assert Path(first).read_bytes() == b"damaged" and Path(first + "-wal").read_bytes() == b"wal"
    assert Path(second).read_bytes() == b"damaged again" and not os.path.exists(str(path) + "-wal")


def test_a_deleted_or_replaced_file_is_seen_by_its_inode(store, db_path, t0):
    watch = SqliteFile(db_path)
    assert watch.check().ok
    os.unlink(db_path)
    assert watch.check().kind == "deleted"
    # Writes to the unlinked file still succeed: only the path tells.
    fill(store, t0, 1)
    Path(db_path).write_bytes(b"")
    assert watch.check().kind == "replaced"
    watch.reopened()
    assert watch.check().ok


def test_a_full_file_system_is_named(tmp_path, t0):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        store = Store(f"sqlite:///{mnt / 'history.db'}", "web-01")
        store.upgrade()
        with pytest.raises(Exception) as failure:
            fill(store, t0, 500)
        assert classify(failure.value) == "full"
        store.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_a_database_locked_by_another_process_is_named(store, db_path, t0):
    # Another process holds the write lock longer than busy_timeout (shortened here).
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({db_path!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        connection = sqlite3.connect(db_path, timeout=0.1)
        with pytest.raises(sqlite3.OperationalError) as failure:
            connection.execute("INSERT INTO cursors (host, source, cursor, updated_at) VALUES ('h', 's', 'c', '')")
        connection.close()
        assert classify(failure.value) == "locked"
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


def test_read_only_and_unknown_errors_are_named():
    assert classify(sqlite3.OperationalError("attempt to write a readonly database")) == "read-only"
    assert classify(sqlite3.DatabaseError("database disk image is malformed")) == "corrupt"
    assert classify(OverflowError("Python int too large to convert to SQLite INTEGER")) == "unknown"


def test_check_reports_a_damaged_history_as_critical(store, db_url, db_path, t0, tmp_path):
    import io
    import json

    from watchdog_oom.cli import main

    fill(store, t0)
    store.close()
    with sqlite3.connect(db_path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    corrupt_middle(db_path)
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {db_url}\n")
    out, err = io.StringIO(), io.StringIO()
    code = main(["-c", str(config), "check", "--json"], stdout=out, stderr=err)
    doc = json.loads(out.getvalue())
    assert code == 2 and doc["status"] == "CRITICAL"
    (finding,) = [f for f in doc["findings"] if f["kind"] == "database.down"]
    assert finding["severity"] == "critical" and "corrupt" in finding["summary"]


def test_the_start_check_reads_the_file_through_a_small_page_cache(tmp_path):
    # quick_check reads every page once: with SQLite's default page cache (2,000 KiB) a month
    # of history took SQLite's memory, and the daemon's peak RSS with it, up 2.2 MiB at its start.
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("no libsqlite3 to ask for SQLite's memory")
    lib = ctypes.CDLL(name)
    lib.sqlite3_memory_used.restype = lib.sqlite3_memory_highwater.restype = ctypes.c_int64
    path = tmp_path / "history.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 4000)  # 4 MB
    conn.close()

    def peak(read) -> int:
        lib.sqlite3_memory_highwater(1)
        before = lib.sqlite3_memory_used()
        read()
        return lib.sqlite3_memory_highwater(0) - before

    def read_all() -> None:
        plain = sqlite3.connect(path)  # SQLite's default page cache
        plain.execute("SELECT count(*) FROM t WHERE x != ''").fetchall()
        plain.close()

    if peak(read_all) < 3 << 19:
        pytest.skip("this Python's sqlite3 is not the libsqlite3 ctypes finds: its memory cannot be seen")
    assert peak(lambda: check_at_start(f"sqlite:///{path}")) < 1 << 19

"""Two writers of the same kill at the same moment record it once, and two migrations of
one database at once migrate it once, on both engines.

Two `watchdog-oom import`s of one log, an import while the daemon records the kill it
reads, two daemons of a host on a fleet database: each looks for the kill's sightings
and inserts it when it finds none (store/serial.py). The second writer here asks while
the first holds its transaction with the kill inserted and not yet committed; the first
commits only once the second is waiting (SQLite: its thread asleep in SQLite's busy
handler; PostgreSQL: its lock not granted in pg_locks) or has finished. Had the second
looked before taking the lock, it would have found nothing and inserted the kill again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from watchdog_oom.model import OomKill
from watchdog_oom.store import Store
from watchdog_oom.store.batch_import import import_prepared
from watchdog_oom.store.rows import kill_row
from watchdog_oom.store.rows_import import prepared_params
from watchdog_oom.store.tables import kills

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
# Syscalls a thread sleeps in while SQLite's busy handler waits (usleep): x86_64, aarch64.
SLEEPS = {"x86_64": {"35", "230"}, "aarch64": {"101", "115"}}
WAIT = 60.0  # seconds: the bound on waiting for the second writer to be waiting


def _kill(pid: int) -> OomKill:
    return OomKill(pid=pid, process="java", time=T0, mono_usec=None, boot_id=None, source="kmsg",
                   anon_rss_kb=65152, constraint="CONSTRAINT_NONE")


def _sleeping(thread_id: int) -> bool:
    """Whether the thread is in a sleep syscall (SQLite's busy handler between tries)."""
    try:
        number = Path(f"/proc/self/task/{thread_id}/syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    return number in SLEEPS.get(os.uname().machine, set())


def _waiting_on_a_lock(url: str) -> bool:
    """Whether a PostgreSQL session waits for a lock not granted yet."""
    probe = Store(url, "probe")
    try:
        with probe.engine.connect() as conn:
            return bool(conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar())
    finally:
        probe.close()


def _second_waits_or_ends(url: str, second: Callable[[], None]) -> threading.Thread:
    """Run `second` in a thread; return once it waits for the first writer or has ended."""
    done = threading.Event()

    def run() -> None:
        try:
            second()
        finally:
            done.set()

    postgres = url.startswith("postgresql")
    if not postgres and os.uname().machine not in SLEEPS:
        pytest.skip(f"no known sleep syscall on {os.uname().machine} to see SQLite's busy wait by")
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    waited = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if done.is_set() or (_waiting_on_a_lock(url) if postgres else _sleeping(thread.native_id or 0)):
            break
        waited.wait(0.01)  # a poll of the other thread's state, not a wait for time to pass
    else:
        pytest.fail(f"the second writer neither waited nor ended in {WAIT:.0f} s")
    return thread


@pytest.mark.parametrize("how", ["add_kill", "add_kills", "import_prepared"])
def test_a_kill_written_by_two_writers_at_once_is_recorded_once(store_url: str, how: str) -> None:
    first, second = Store(store_url, "web-01"), Store(store_url, "web-01")
    answers: list[object] = []

    def write_again() -> None:
        with second.tx() as tx:
            if how == "add_kill":
                answers.append(tx.add_kill(_kill(4242), T0))
            elif how == "import_prepared":  # import's batch as its reader prepared it (None: the rows' way)
                answers.append(import_prepared(second, *prepared_params([kill_row(_kill(4242), "web-01")]), T0))
            else:
                answers.extend(tx.add_kills([(_kill(4242), None), (_kill(4343), None)], T0))

    try:
        with first.tx() as tx:
            assert tx.add_kill(_kill(4242), T0) is not None
            thread = _second_waits_or_ends(store_url, write_again)
        thread.join(WAIT)
        assert not thread.is_alive()
        with first.engine.connect() as conn:
            pids = conn.execute(select(kills.c.pid, func.count()).group_by(kills.c.pid)).all()
        assert sorted(pids) == ([(4242, 1), (4343, 1)] if how == "add_kills" else [(4242, 1)])
        assert answers[0] is None  # the second found the first's kill: a duplicate
    finally:
        first.close()
        second.close()


def _minimal(second: int, pid: int) -> str:
    stamp = (T0.replace(tzinfo=None) + timedelta(seconds=second)).strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
    return (f"{stamp} web-01 kernel: [{second}.000000] java invoked oom-killer: "
            "gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0\n"
            f"{stamp} web-01 kernel: [{second}.000001] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),"
            f"cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/app.service,task=java,pid={pid},uid=1000\n"
            f"{stamp} web-01 kernel: [{second}.000002] Out of memory: Killed process {pid} (java) "
            "total-vm:8806332kB, anon-rss:6848016kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:14360kB "
            "oom_score_adj:0\n")


@pytest.mark.parametrize("fmt", ["table", "json"])  # json: on SQLite, batches inserted as their reader prepared them
def test_two_imports_of_one_log_at_once_record_each_kill_once(store_url: str, tmp_path: Path, fmt: str) -> None:
    """The real command twice at once on one log of several batches: each kill once."""
    kills_in_log = 5000  # three batches of the import's 2,000
    log = tmp_path / "kern.log"
    log.write_text("".join(_minimal(i, 10_000 + i) for i in range(kills_in_log)))
    config = tmp_path / "watchdog-oom.yaml"
    config.write_text(f"host: web-01\ndatabase: {store_url}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "watchdog_oom", "-c", str(config), "import", "--year", "2026", "--format", fmt,
            str(log)]
    runs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    store = Store(store_url, "web-01")
    try:
        with store.engine.connect() as conn:
            total, distinct = conn.execute(select(func.count(), func.count(kills.c.pid.distinct()))).one()
    finally:
        store.close()
    assert (total, distinct) == (kills_in_log, kills_in_log), outputs


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, db_url: str) -> Iterator[str]:
    """An empty database, never migrated, on each engine in turn."""
    if request.param == "sqlite":
        yield db_url
        return
    yield request.getfixturevalue("pg_url")


def test_three_upgrades_of_one_fresh_database_at_once_all_end_at_the_head(fresh_url: str, tmp_path: Path) -> None:
    """Three `db upgrade`s (or daemons starting) on one empty database: one migrates it,
    the others find it at the head; none fails with a table that exists already."""
    config = tmp_path / "watchdog-oom.yaml"
    config.write_text(f"host: web-01\ndatabase: {fresh_url}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "watchdog_oom", "-c", str(config), "db", "upgrade"]
    runs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    store = Store(fresh_url, "web-01")
    try:
        assert store.at_head()
    finally:
        store.close()


RECREATE_ALERTS = '''"""A later migration, as one would write it: alerts altered in batch mode (recreated)."""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    {body}


def downgrade():
    pass
'''
BODIES = {
    # Alembic's batch mode on SQLite: copy, DROP, rename; the DROP must not fire the
    # notifications' ON DELETE SET NULL.
    "recreate": 'with op.batch_alter_table("alerts", recreate="always") as batch:\n'
                '        batch.alter_column("summary", existing_type=sa.Text(), nullable=False)',
    # A migration that would leave a notification pointing at no alert: refused, rolled back.
    "orphan": 'op.execute("DELETE FROM alerts")',
    # One that touches no link: the link broken before it (by hand) does not stop it (R14).
    "index": 'op.create_index("ix_later", "kills", ["process"])',
}
UPGRADE = """import sys
from sqlalchemy import text
from watchdog_oom.store import Store, StoreError
store = Store(sys.argv[1], "web-01")
try:
    print(store.upgrade())
except StoreError as exc:
    print("refused:", exc)
with store.engine.connect() as conn:
    print("foreign_keys", conn.execute(text("PRAGMA foreign_keys")).scalar())
store.close()
"""


@pytest.mark.parametrize("migration", sorted(BODIES))
def test_a_migration_recreating_a_table_keeps_the_links_to_it(sqlite_store: Store, db_url: str, tmp_path: Path,
                                                               migration: str) -> None:
    """SQLite: the migrations run in one transaction (above), with the foreign keys off
    (SQLite ignores the pragma inside one) and checked before the commit."""
    import shutil
    import sqlite3

    sqlite_store.close()
    tree = tmp_path / "tree"
    for part in ("watchdog_oom", "migrations"):
        shutil.copytree(ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "migrations" / "versions" / "0010_later.py").write_text(RECREATE_ALERTS.format(body=BODIES[migration]))
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO alerts (id, host, key, kind, severity, status, summary, started_at, updated_at, data) "
                   "VALUES (7, 'web-01', 'oom.kill', 'oom.kill', 'critical', 'firing', 's', '2026-01-01', "
                   "'2026-01-01', '{}')")
        db.execute("INSERT INTO notifications (host, uuid, channel, kind, severity, reason, summary, status, data, "
                   "alert_id, created_at, due_at, attempts) VALUES ('web-01', 'u1', 'ops', 'oom.kill', 'critical', "
                   "'first', 's', 'sent', '{}', 7, '2026-01-01', '2026-01-01', 1)")
        # A link broken before any migration: alert 99 deleted with the sqlite3 shell (keys off).
        db.execute("INSERT INTO notifications (host, uuid, channel, kind, severity, reason, summary, status, data, "
                   "alert_id, created_at, due_at, attempts) VALUES ('web-01', 'u2', 'ops', 'oom.kill', 'critical', "
                   "'first', 's', 'sent', '{}', 99, '2026-01-01', '2026-01-01', 1)")
    db.close()
    run = subprocess.run([sys.executable, "-c", UPGRADE, db_url], env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "foreign_keys 1"  # on again for whatever uses the connection next
    with sqlite3.connect(path) as db:
        revision = db.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        links = db.execute("SELECT alert_id FROM notifications ORDER BY id").fetchall()
        alerts = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
    db.close()
    if migration != "orphan":
        assert (lines[0], revision, links, alerts) == ("0010", "0010", [(7,), (99,)], 1)
    else:
        assert lines[0] == ("refused: database: migration failed: it would leave rows referring to none "
                            "(table, rowid, parent): ('notifications', 1, 'alerts')")
        assert (revision, links, alerts) == ("0009", [(7,), (99,)], 1)

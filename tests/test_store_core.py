"""The store is SQLAlchemy Core only: no process of watchdog-oom loads the ORM.

The ORM (sqlalchemy.orm, its declarative machinery and mappers) costs the daemon about
7 MiB of memory and a read-only command a good part of its start-up. Each check runs
the real thing in a fresh interpreter and asks it, as it exits, which modules it loaded:
the daemon up to READY=1, the store's whole write path (kills, notifications, alerts,
cursors, the outbox, retention), and `history kills` on a migrated SQLite file. Alembic
runs only in a child process when the schema is behind, so it is allowed to load there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from watchdog_oom.model import OomKill
from watchdog_oom.store import Store

ROOT = Path(__file__).resolve().parent.parent

# Runs `python -m watchdog_oom ARGS…` and, as the interpreter exits, writes the ORM modules
# it loaded to the file named by $ORM_REPORT (one line; empty: none).
GUARDED = """
import atexit, os, runpy, sys

def report():
    loaded = sorted(m for m in sys.modules if m == "sqlalchemy.orm" or m.startswith("sqlalchemy.orm."))
    with open(os.environ["ORM_REPORT"], "w") as out:
        out.write(" ".join(loaded) + "\\n" + ("sqlalchemy" in sys.modules and "core" or "none"))

atexit.register(report)
sys.argv = ["watchdog-oom", *sys.argv[1:]]
runpy.run_module("watchdog_oom", run_name="__main__", alter_sys=True)
"""

# The store's write path end to end, in a process of its own.
WRITES = """
import sys
from datetime import datetime, timedelta, timezone
from watchdog_oom.model import Alert, MemorySample, OomKill
from watchdog_oom.store import Store
from watchdog_oom.store import claims, tracing

store = Store(sys.argv[1], "web-01")
now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
with store.tx() as tx:
    tx.add_sample(MemorySample(time=now, mem_total_kb=16_000_000, mem_available_kb=4_000_000, mem_free_kb=1,
                               swap_total_kb=0, swap_free_kb=0, committed_as_kb=9_000_000, commit_limit_kb=8_000_000,
                               overcommit_memory=0, overcommit_ratio=50, overcommit_kbytes=0))
    kill = tx.add_kill(OomKill(pid=4242, process="java", time=now, source="kmsg"), now)
    tx.add_kills([(OomKill(pid=4243, process="java", time=now, source="kmsg"), None)], now)
    tracing.add_witness(tx, kill, OomKill(pid=4242, process="java", time=now, source="tracepoint"), ["uid"],
                        "tracepoint", {})
    episode, _ = tx.fire_alert(Alert(key="commit", kind="commit.warning", severity="warning", summary="93%", time=now))
    tx.enqueue(channel="ops", kind="oom.kill", severity="critical", reason="first", summary="java", data={}, now=now,
               alert_id=episode.id, mute=tx.active_mute(now, "oom.kill", "java", None))
    tx.set_cursor("kmsg", "b1:1", now)
for row in claims.claim_due(store, now):
    claims.mark_sent(store, row, "HTTP 200", now)
store.add_mute(now + timedelta(hours=1), now, kind="oom.*")
store.prune(now + timedelta(days=800), samples=86400, kills=86400, alerts=86400, notifications=86400,
            raw_samples=3600)
store.close()
"""


def loaded_orm(report: Path) -> str:
    text = report.read_text()
    assert text.endswith("core"), "the process never loaded SQLAlchemy: the check checks nothing"
    return text.splitlines()[0]


def migrated(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/history.db"
    store = Store(url, "web-01")
    store.upgrade()
    now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    with store.tx() as tx:
        for i in range(8):
            tx.add_kill(OomKill(pid=100 + i, process="java", time=now - timedelta(minutes=i), source="kmsg"), now)
    store.close()
    return url


def env_for(report: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORM_REPORT": str(report)}
    env.pop("WATCHDOG_OOM_CONFIG", None)
    return env


def test_history_kills_loads_no_orm(tmp_path):
    url = migrated(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(f"host: web-01\ndatabase: {url}\n")
    report = tmp_path / "orm"
    out = subprocess.run([sys.executable, "-c", GUARDED, "-c", str(config), "history", "kills", "--limit", "5"],
                         env=env_for(report), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("java") == 5
    assert loaded_orm(report) == ""


def test_the_stores_write_path_loads_no_orm(tmp_path):
    url = migrated(tmp_path)
    probe = WRITES + "\nimport sys\nassert not [m for m in sys.modules if m.startswith('sqlalchemy.orm')], " \
                     "sorted(m for m in sys.modules if m.startswith('sqlalchemy.orm'))\n"
    out = subprocess.run([sys.executable, "-c", probe, url], env=env_for(tmp_path / "unused"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_daemon_starts_without_the_orm(tmp_path):
    """`run` up to READY=1 on a new database (migrated by Alembic in a child process), then
    SIGTERM: the daemon's own process never loaded the ORM."""
    log = tmp_path / "kern.log"
    log.write_text("")
    config = tmp_path / "config.yaml"
    config.write_text(f"host: web-01\ndatabase: sqlite:///{tmp_path}/history.db\n"
                      f"kernel_log:\n  source: file\n  path: {log}\n  vmstat_check: false\n"
                      "notifications:\n  channels:\n"
                      "    - name: hook\n      type: webhook\n      url: http://127.0.0.1:9/hook\n"
                      "    - name: chat\n      type: slack\n      webhook_url: http://127.0.0.1:9/services/T0/B0/x\n")
    sock_path = str(tmp_path / "notify")
    report = tmp_path / "orm"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(sock_path)
        sock.settimeout(60)
        env = {**env_for(report), "NOTIFY_SOCKET": sock_path}
        with open(tmp_path / "daemon.log", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", GUARDED, "-c", str(config), "run"], env=env, stderr=err)
            try:
                while b"READY=1" not in sock.recv(4096):
                    pass
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0, (tmp_path / "daemon.log").read_text()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    assert loaded_orm(report) == ""


# The daemon's migration child, as its start runs it (no other thread: forked) and as a
# repair from the database watch's thread runs it (a new interpreter): the same revision,
# the same one-line error, and Alembic loaded by neither's parent. argv: a new database, a
# file that is no database.
MIGRATE_BOTH_WAYS = """
import sys, threading
from watchdog_oom.store import SCHEMA_HEAD, StoreError
from watchdog_oom.store.migrate import migrate_in_child

def both(url):
    said = []
    for threads in (1, 2):
        other, waiting = threading.Event(), None
        if threads == 2:
            waiting = threading.Thread(target=other.wait)
            waiting.start()
        assert threading.active_count() == threads
        try:
            said.append(migrate_in_child(url) == SCHEMA_HEAD)
        except StoreError as exc:
            said.append(str(exc))
        other.set()
        if waiting is not None:
            waiting.join()
    return said

print(both(sys.argv[1]), both(sys.argv[2]), "alembic" in sys.modules)
"""


def test_the_migration_child_forked_or_new_says_the_same_and_alembic_stays_out_of_the_parent(tmp_path):
    (tmp_path / "not-a-database.db").write_bytes(b"garbage " * 1000)
    run = subprocess.run([sys.executable, "-c", MIGRATE_BOTH_WAYS, f"sqlite:///{tmp_path}/new.db",
                          f"sqlite:///{tmp_path}/not-a-database.db"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert run.returncode == 0, run.stderr
    wrong = "database: migration failed: (sqlite3.DatabaseError) file is not a database"
    assert run.stdout.strip() == f"[True, True] [{wrong!r}, {wrong!r}] False"

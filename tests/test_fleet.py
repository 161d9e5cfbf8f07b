"""A fleet sharing one PostgreSQL history: a real throwaway server, real concurrent writers.

The session starts its own PostgreSQL (Debian's /usr/lib/postgresql/*/bin) on 127.0.0.1
with trust authentication, as the `postgres` user when run as root since the server
refuses to run as root, and every test gets a fresh database on it. Set
WATCHDOG_OOM_TEST_PG_URL (a user allowed to CREATE DATABASE) to use a server of your own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL driver is the postgres extra: "
                                                "pip install 'psycopg[binary]'")

from alembic.autogenerate import compare_metadata  # noqa: E402
from alembic.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402

from watchdog_oom.model import MemorySample, OomKill  # noqa: E402
from watchdog_oom.store import Store, alembic_config, claims, counts  # noqa: E402
from watchdog_oom.store.schema import include_object, metadata  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# One host's writes, run as its own OS process: `python -c WRITER URL HOST COUNT`.
WRITER = """
import sys
from datetime import datetime, timedelta, timezone
from watchdog_oom.model import Alert, MemorySample, OomKill
from watchdog_oom.store import Store

url, host, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store(url, host)
t0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
for i in range(count):
    now = t0 + timedelta(seconds=10 * i)
    with store.tx() as tx:
        tx.add_sample(MemorySample(time=now, mem_total_kb=16_000_000, mem_available_kb=4_000_000, mem_free_kb=1,
                                   swap_total_kb=0, swap_free_kb=0, committed_as_kb=9_000_000 + i,
                                   commit_limit_kb=8_000_000, overcommit_memory=0, overcommit_ratio=50,
                                   overcommit_kbytes=0))
        tx.add_kill(OomKill(pid=10_000 + i, process=f"{host}-worker", time=now, source="kmsg"), now)
        tx.fire_alert(Alert(key=f"process.at_risk:{i % 7}", kind="process.at_risk", severity="warning",
                            summary=f"{host} {i}", time=now))
        if i == count - 1:
            tx.resolve_alert(Alert(key="process.at_risk:0", kind="process.at_risk", severity="warning",
                                   summary="resolved", time=now, resolved=True))
        tx.enqueue(channel="ops", kind="oom.kill", severity="critical", reason="first",
                   summary=f"{host} kill {i}", data={"i": i}, now=now)
store.close()
"""


@pytest.fixture
def fleet(pg_url: str) -> Iterator[tuple[Store, Store]]:
    """Two hosts' stores on one migrated PostgreSQL database."""
    web, db = Store(pg_url, "web-01"), Store(pg_url, "db-07")
    web.upgrade()
    yield web, db
    web.close()
    db.close()


T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def _kill(process: str, pid: int, time: datetime = T0) -> OomKill:
    return OomKill(pid=pid, process=process, time=time, source="kmsg", constraint="CONSTRAINT_NONE")


def test_empty_postgresql_database_migrates_to_head(pg_url):
    store = Store(pg_url, "web-01")
    assert store.revision() is None
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert store.upgrade() == head
    assert store.upgrade() == head  # a second host starting finds it done
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True,
                                                                       "include_object": include_object}),
                                metadata) == []
    store.close()


def test_two_hosts_writing_at_once_from_two_processes_lose_nothing(fleet, pg_url):
    count = 60
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, host, str(count)], env=env,
                                stderr=subprocess.PIPE, text=True)
               for host in ("web-01", "db-07")]
    for writer in writers:
        _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    web, db = fleet
    for store in (web, db):
        host = store.host
        kills = store.kills(host=host)
        assert len(kills) == count
        assert {k.host for k in kills} == {host}
        assert {k.process for k in kills} == {f"{host}-worker"}
        assert len(store.samples(host=host)) == count
        assert len(store.notifications(host=host)) == count
        alerts = store.alerts(host=host)
        assert {a.host for a in alerts} == {host}
        # Seven episodes, updated over and over; the last write resolved one of them.
        assert sorted(a.status for a in alerts) == ["firing"] * 6 + ["resolved"]
    assert len(web.kills()) == 2 * count


def test_outbox_hands_each_host_its_own_rows_once_under_concurrent_claims(fleet, pg_url):
    web, db = fleet
    with web.tx() as tx:
        mine = {tx.enqueue(channel="ops", kind="oom.kill", severity="critical", reason="first",
                           summary=f"web {i}", data={}, now=T0).id for i in range(150)}
    with db.tx() as tx:
        theirs = {tx.enqueue(channel="ops", kind="oom.kill", severity="critical", reason="first",
                             summary=f"db {i}", data={}, now=T0).id for i in range(30)}
    claimers = [Store(pg_url, "web-01") for _ in range(2)]
    for claimer in claimers:
        claimer.next_due()  # connected before the race starts
    claimed: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def claim(n: int) -> None:
        start.wait()
        # Until nothing is pending: a batch can come back empty when the other claimer
        # took every row this one had selected.
        now = T0 + timedelta(seconds=1)
        while (due := claimers[n].next_due()) is not None and due <= now:  # later: only leases left
            claimed[n].extend(row.id for row in claims.claim_due(claimers[n], now, limit=7))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    everything = claimed[0] + claimed[1]
    assert len(everything) == len(set(everything)), "a notification was claimed twice"
    assert set(everything) == mine
    assert not set(everything) & theirs
    assert counts.outbox_backlog(web) == len(mine)  # all of them `sending` now
    assert [n.id for n in claims.claim_due(db, T0)] != [] and counts.outbox_backlog(db) == len(theirs)
    for store in claimers:
        store.close()


def test_times_come_back_timezone_aware_and_exact(fleet):
    web, _ = fleet
    india = timezone(timedelta(hours=5, minutes=30))
    when = datetime(2026, 11, 20, 17, 31, 2, 123456, tzinfo=india)
    with web.tx() as tx:
        tx.add_kill(_kill("java", 1, when), when)
        tx.add_sample(MemorySample(time=when, mem_total_kb=1, mem_available_kb=1, mem_free_kb=1, swap_total_kb=0,
                                   swap_free_kb=0, committed_as_kb=1, commit_limit_kb=1, overcommit_memory=0,
                                   overcommit_ratio=50, overcommit_kbytes=0))
    (kill,) = web.kills()
    (sample,) = web.samples()
    for value in (kill.time, kill.recorded_at, sample.time):
        assert value == when
        assert value.utcoffset() == timedelta(0)
    assert kill.time.microsecond == 123456
    # Filters compare instants, whatever offset they are given in.
    assert web.kills(since=when - timedelta(microseconds=1), until=when.astimezone(timezone.utc)) != []
    assert web.kills(since=when + timedelta(microseconds=1)) == []


def test_process_glob_filter_works_on_postgresql(fleet):
    web, db = fleet
    with web.tx() as tx:
        for pid, name in enumerate(("java", "javac", "python3", "my_app", "my%app", "myXapp", "JAVA")):
            tx.add_kill(_kill(name, pid), T0)
    with db.tx() as tx:
        tx.add_kill(_kill("java", 99), T0)

    def names(**filters) -> list[str]:
        return sorted(k.process for k in web.kills(**filters))

    assert names(process="java*", host="web-01") == ["java", "javac"]  # case-sensitive, like the kernel's comm
    assert names(process="java") == ["java", "java"]  # both hosts, unless --host
    assert names(process="my_app") == ["my_app"]  # LIKE's own wildcards are literal
    assert names(process="my%app") == ["my%app"]
    assert names(process="my?app") == ["my%app", "myXapp", "my_app"]
    assert names(process="*3") == ["python3"]


def test_summary_counts_per_process_cgroup_and_utc_day_on_postgresql(fleet):
    web, db = fleet
    late = datetime(2026, 11, 20, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30 UTC on the 21st
    with web.tx() as tx:
        tx.add_kill(_kill("java", 1), T0)
        tx.add_kill(_kill("java", 2, late), T0)
        tx.add_kill(_kill("python3", 3), T0)
    with db.tx() as tx:
        tx.add_kill(_kill("java", 4), T0)
    counts = web.kill_counts(host="web-01")
    assert [(v, n) for by, v, n in counts if by == "process"] == [("java", 2), ("python3", 1)]
    assert sorted((v, n) for by, v, n in counts if by == "day") == [("2026-11-20", 2), ("2026-11-21", 1)]


# One host's retention and import at once, as its own OS process: `python -c WORKER URL HOST`.
WORKER = """
import sys, threading
from datetime import datetime, timedelta, timezone
from sqlalchemy import insert
from watchdog_oom.model import OomKill
from watchdog_oom.store import Store
from watchdog_oom.store.tables import samples

url, host = sys.argv[1], sys.argv[2]
now = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
store = Store(url, host)
start = now - timedelta(days=5)
with store.engine.begin() as conn:  # five days of raw samples: three of them to downsample
    conn.execute(insert(samples), [dict(host=host, time=start + timedelta(seconds=60 * i), resolution=0,
                                       mem_total_kb=16_000_000, mem_available_kb=4_000_000 + i, swap_total_kb=0,
                                       swap_free_kb=0, committed_as_kb=9_000_000, commit_limit_kb=8_000_000,
                                       commit_percent=50.0 + (i % 100) / 10) for i in range(5 * 1440)])
print("ready", flush=True)
sys.stdin.readline()  # every host starts at once
kills = [OomKill(pid=20_000 + i, process=f"{host}-job", time=now - timedelta(hours=1, seconds=i),
                 source=f"import:/var/log/{host}.log", host=host) for i in range(3000)]
imported = []
importer = threading.Thread(target=lambda: imported.extend(store.import_kills(kills, now, batch_size=500)))
importer.start()
store.prune(now, samples=30 * 86400.0, kills=400 * 86400.0, alerts=400 * 86400.0, notifications=90 * 86400.0,
            raw_samples=2 * 86400.0)
importer.join()
with store.tx() as tx:
    tx.set_cursor("import", host, now)
assert sum(new for _, new in imported) == 3000, sum(new for _, new in imported)
store.close()
"""


def test_hosts_running_retention_and_import_at_once_touch_only_their_own_rows(fleet, pg_url):
    hosts = ["web-01", "db-07", "cache-3"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, pg_url, host], env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for host in hosts]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    for worker in workers:  # go
        worker.stdin.write("\n")
        worker.stdin.flush()
    for worker in workers:
        _, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
    web, _ = fleet
    from sqlalchemy import text

    with web.engine.connect() as conn:
        by_host = {host: dict(conn.execute(text(
            "SELECT resolution, count(*) FROM samples WHERE host = :h GROUP BY resolution"), {"h": host}).all())
            for host in hosts}
        kills = dict(conn.execute(text("SELECT host, count(*) FROM kills GROUP BY host")).all())
        cursors = dict(conn.execute(text("SELECT host, cursor FROM cursors WHERE source = 'import'")).all())
    for host in hosts:
        # The last two days raw, the days before as 5-minute means: each host's own, whole.
        assert by_host[host] == {0: 2 * 1440, 300: 3 * 288}
        assert kills[host] == 3000
        assert cursors[host] == host
        assert {k.process for k in web.kills(host=host, limit=5)} == {f"{host}-job"}

"""Retention: set-based downsampling and pruning on a real migrated database (SQLite and
PostgreSQL), and the
daemon's retention job alerting when a run fails."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

from sqlalchemy import insert, text

from watchdog_oom.daemon.retention import RetentionJob
from watchdog_oom.dispatch import Outbox, Route
from watchdog_oom.store import retention
from watchdog_oom.store.retention import RetentionPolicy
from watchdog_oom.store.tables import samples

DAY = 86400.0


def _row(host, t, i=0, **kw):
    row = dict(host=host, time=t, resolution=0, mem_total_kb=16_000_000, mem_available_kb=8_000_000 + i,
               swap_total_kb=0, swap_free_kb=0, committed_as_kb=10_000_000 + i, commit_limit_kb=8_000_000,
               commit_percent=50.0 + i / 100, commit_limit_percent=None, mem_available_percent=50.0 - i / 100,
               psi_some_avg10=None, psi_full_avg10=0.1 * (i % 7), overcommit_memory=0)
    row.update(kw)
    return row


def _insert(store, rows):
    rows = iter(rows)
    with store.engine.begin() as conn:
        while chunk := list(itertools.islice(rows, 10_000)):
            conn.execute(insert(samples), chunk)


def _half_up(value):
    return int(value + 0.5)  # SQL's ROUND: halves away from zero (Python's round() goes to even)


def _samples(store, host):
    return [(s.time, s.resolution, s.mem_available_kb, s.committed_as_kb, s.commit_percent,
             s.mem_available_percent, s.psi_full_avg10, s.commit_limit_percent)
            for s in store.samples(host=host, ascending=True)]


def test_means_keep_the_worst_percent_of_each_bucket(store, t0):
    start = t0 - timedelta(days=3)  # t0 is on a whole hour: buckets start with it
    _insert(store, (_row("web-01", start + timedelta(seconds=10 * i), i) for i in range(60)))
    removed = store.downsample(t0, raw_samples=2 * DAY)
    rows = _samples(store, "web-01")
    assert removed == 58 and [r[1] for r in rows] == [300, 300]
    for n, (when, _, available, committed, commit_pct, available_pct, psi_full, limit_pct) in enumerate(rows):
        members = range(30 * n, 30 * n + 30)
        assert when == start + timedelta(minutes=5 * n)
        assert available == _half_up(sum(8_000_000 + i for i in members) / 30)
        assert committed == _half_up(sum(10_000_000 + i for i in members) / 30)
        assert commit_pct == max(50.0 + i / 100 for i in members)  # the spike survives
        assert available_pct == min(50.0 - i / 100 for i in members)  # so does the low
        assert psi_full == max(0.1 * (i % 7) for i in members)
        assert limit_pct is None  # a figure no sample had stays unknown


def test_a_month_of_raw_samples_beyond_sqlites_variable_limit_is_downsampled(store, t0):
    # 40,000 ids would not fit in one `id IN (…)` (SQLite allows 32,766 variables).
    start = t0 - timedelta(days=10)
    _insert(store, (_row("web-01", start + timedelta(seconds=10 * i), i % 50) for i in range(40_000)))
    _insert(store, [_row("db-07", start + timedelta(seconds=10 * i), i) for i in range(100)])
    counts = store.prune(t0, samples=30 * DAY, kills=400 * DAY, alerts=400 * DAY, notifications=90 * DAY,
                         raw_samples=2 * DAY)
    with store.engine.connect() as conn:
        by = dict(conn.execute(text("SELECT resolution, count(*) FROM samples WHERE host = 'web-01' "
                                    "GROUP BY resolution")).all())
    # 40,000 × 10 s = 4 days 15 h 6 m 40 s: all of it older than the week's edge? No: it
    # ends 5 d 8 h ago, so 5-minute means up to the week's edge, hourly means before it.
    assert by.get(0, 0) == 0
    assert counts["downsampled"] == 40_000 - sum(by.values())
    assert by[3600] > 0 and by[300] > 0
    assert len(store.samples(host="db-07")) == 100  # another host's rows are its own business


def test_the_chunk_size_changes_nothing_but_the_transactions(store, t0):
    start = t0 - timedelta(days=12, minutes=7)
    rows = [_row("web-01", start + timedelta(seconds=150 * i), i % 97) for i in range(8_000)]
    _insert(store, rows)
    retention.downsample(store.engine, "web-01", t0, 2 * DAY, chunk=timedelta(days=30))
    whole = _samples(store, "web-01")
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM samples"))
    _insert(store, rows)
    retention.downsample(store.engine, "web-01", t0, 2 * DAY, chunk=timedelta(minutes=50))  # one bucket each
    assert _samples(store, "web-01") == whole


def test_expired_samples_go_before_anything_is_averaged(store, t0):
    _insert(store, (_row("web-01", t0 - timedelta(days=40) + timedelta(seconds=10 * i)) for i in range(3000)))
    counts = retention.prune(store.engine, "web-01", t0, RetentionPolicy(), chunk=timedelta(hours=1))
    assert counts["samples"] == 3000 and counts["downsampled"] == 0
    assert store.samples() == []


def _failing_retention(store) -> None:
    """A real failure inside the database: every delete from samples is refused."""
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "sqlite":
            conn.execute(text("CREATE TRIGGER refuse BEFORE DELETE ON samples "
                              "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"))
        else:
            conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                              "$$ BEGIN RAISE EXCEPTION 'database or disk is full'; END $$"))
            conn.execute(text("CREATE TRIGGER refuse BEFORE DELETE ON samples "
                              "FOR EACH ROW EXECUTE FUNCTION refuse()"))


def _repair(store) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse" + ("" if store.engine.dialect.name == "sqlite" else " ON samples")))


def test_a_failed_retention_run_alerts_and_the_next_good_run_resolves_it(store, t0):
    _insert(store, (_row("web-01", t0 - timedelta(days=3) + timedelta(seconds=10 * i)) for i in range(100)))
    _failing_retention(store)
    woken = []
    clock = iter([t0, t0 + timedelta(hours=1), t0 + timedelta(hours=2)])
    job = RetentionJob(store, Outbox([Route("ops", min_severity="info")], group_wait=0), RetentionPolicy,
                       lambda: next(clock), wakeup=lambda: woken.append(True))
    assert job.run() is None
    assert job.run() is None  # still failing: still one episode, not a message an hour
    (alert,) = store.alerts()
    assert alert.kind == "retention.failed" and alert.status == "firing"
    assert "database or disk is full" in alert.summary and "[SQL" not in alert.summary
    (note,) = store.notifications()
    assert note.kind == "retention.failed" and note.severity == "warning" and note.status == "pending"
    _repair(store)
    counts = job.run()
    assert counts is not None and counts["downsampled"] > 0
    (alert,) = store.alerts()
    assert alert.status == "resolved"
    assert [n.kind for n in store.notifications(ascending=True)][0] == "retention.resolved"
    assert woken == [True, True]


def test_a_good_run_with_nothing_firing_queues_nothing(store, t0):
    job = RetentionJob(store, Outbox([Route("ops", min_severity="info")], group_wait=0), RetentionPolicy,
                       lambda: t0)
    assert job.run() == {"samples": 0, "kills": 0, "alerts": 0, "notifications": 0, "adjustments": 0,
                         "downsampled": 0, "cgroup_samples": 0}
    assert store.notifications() == [] and store.alerts() == []


def test_cgroup_samples_age_through_the_same_tiers(store, t0):
    from watchdog_oom.model import CgroupSample
    from watchdog_oom.store.tables import cgroup_samples

    def reading(seconds: int, path: str, ws: int) -> CgroupSample:
        return CgroupSample(path=path, version=2, time=t0 - timedelta(seconds=seconds), limit_bytes=1000,
                            usage_bytes=ws + 10, working_set_bytes=ws, oom_kill=seconds // 3600)

    # Ten days of readings every minute of two cgroups, one of them close to its limit at one moment.
    with store.tx() as tx:
        tx.add_cgroup_samples([r for minute in range(10 * 24 * 60)
                               for r in (reading(minute * 60, "/a", 500),
                                         reading(minute * 60, "/b", 990 if minute == 4000 else 100))])
    counts = store.prune(t0, samples=9 * 86400, kills=400 * 86400, alerts=400 * 86400,
                         notifications=90 * 86400, raw_samples=2 * 86400)
    assert counts["cgroup_samples"] > 0
    with store.tx() as tx:
        rows = tx.conn.execute(cgroup_samples.select()).all()
    by_res = {}
    for row in rows:
        by_res.setdefault(row.resolution, []).append(row)
    oldest = min(r.time for r in rows)
    assert oldest >= t0 - timedelta(days=9, hours=1)
    assert set(by_res) == {0, 300, 3600}
    assert all(r.time >= t0 - timedelta(days=2, minutes=5) for r in by_res[0])
    # The worst moment survives the means: 99 % at minute 4000 (2.8 days back, a 5-minute mean).
    assert max(r.working_set_percent for r in rows if r.path == "/b") == 99.0
    assert {r.working_set_bytes for r in rows if r.path == "/a"} == {500}


def test_a_retention_run_on_the_daemons_one_connection_lets_another_threads_transactions_in(sqlite_store, t0):
    # The daemon's threads share one SQLite connection (Recorder(one_connection=True)).
    # Retention's chunks are transactions back to back; a kill to store meanwhile must not
    # wait for the whole run: the connection goes to the threads in the order they asked.
    from sqlalchemy import event

    from watchdog_oom.store import Recorder

    _insert(sqlite_store, [_row("web-01", t0 - timedelta(days=400 + d)) for d in range(300)])
    recorder = Recorder(sqlite_store.url, "web-01", one_connection=True)
    began: list[str] = []
    event.listen(recorder.engine, "begin", lambda conn: began.append(threading.current_thread().name))
    done = threading.Event()

    def prune():
        try:
            recorder.prune(t0, samples=30 * DAY, kills=400 * DAY, alerts=400 * DAY, notifications=400 * DAY,
                           raw_samples=7 * DAY)
        finally:
            done.set()

    pruning = threading.Thread(target=prune, name="retention")
    pruning.start()
    while not done.is_set():  # the kill writer, the checks, the database probe: a transaction after another
        with recorder.tx() as tx:
            tx.cursors()
    pruning.join()
    recorder.close()
    first, last = began.index("retention"), len(began) - 1 - began[::-1].index("retention")
    chunks = began.count("retention")
    others = began[first:last].count(threading.current_thread().name)
    assert chunks >= 300  # a day a chunk
    # Taking turns: the other thread's transactions come between the chunks, not after them.
    assert others >= chunks // 3, (chunks, others)
    assert sqlite_store.samples(host="web-01") == []


def test_a_thread_that_waited_out_its_turn_for_the_one_connection_reads_as_a_busy_database(sqlite_store):
    # The daemon waits SHARED_CONNECTION_WAIT (60 s); here a pool of the same kind waits 0.1 s.
    # What the waiter gets is what SQLite's own "database is locked" is to the daemon: the
    # kill writer holds its kills, the database watch alerts (store/health.py).
    from sqlalchemy import create_engine, text

    from watchdog_oom.store.engine import OneConnectionPool
    from watchdog_oom.store.health import classify, database_failure

    engine = create_engine(sqlite_store.url, poolclass=OneConnectionPool, pool_size=1, max_overflow=0,
                           pool_timeout=0.1)
    failed: list[BaseException] = []

    def ask():
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            failed.append(exc)

    with engine.connect() as held:
        held.execute(text("SELECT 1"))
        waiter = threading.Thread(target=ask)
        waiter.start()
        waiter.join()
    (exc,) = failed
    assert classify(exc) == "locked" and database_failure(exc)
    ask()  # the turn came back: the connection is free again
    assert len(failed) == 1
    engine.dispose()


def test_the_one_connections_turn_goes_to_the_thread_that_waited_not_to_the_one_asking_again():
    # The order itself, without timing: A holds the turn, B asks and waits; A gives it back
    # and asks again at once (retention's next chunk). Fair, B has it and A's ask fails at
    # once; QueuePool's unfair lock gave it back to A (so the run above starved the writer).
    from watchdog_oom.store.engine import _Turns

    turns = _Turns()
    assert turns.take(0) is not None
    got, release_b = threading.Event(), threading.Event()

    def b():
        assert turns.take(60) is not None
        got.set()
        release_b.wait(60)
        turns.release()

    waiter = threading.Thread(target=b)
    waiter.start()
    for _ in range(6000):  # polled until B's ask is queued (a lock of its own in the queue)
        with turns._mutex:
            if turns._waiting:
                break
        threading.Event().wait(0.01)
    turns.release()
    assert got.wait(60)
    assert turns.take(0) is None  # A asks again at once: B holds it
    release_b.set()
    waiter.join(60)
    assert turns.take(0) is not None  # free again once B gave it back
    turns.release()


def test_threads_queued_behind_a_busy_wait_on_the_one_connection_wait_what_is_left_of_it(tmp_path):
    # Another process holds the database locked: the thread whose write waits out busy_timeout
    # holds the one connection meanwhile, and the threads queued behind it wait too. On its
    # turn a thread's connection waits for the lock what is left of BUSY_TIMEOUT_MS after its
    # wait in the queue, at least LEAST_BUSY_MS; a thread that did not wait gets it all. Told
    # by the busy_timeout each connection had, on the pool's clock (a fake one here, moved
    # while A holds the connection); A's own wait is shortened to 0.3 s to stand for 10 s.
    import sqlite3

    from watchdog_oom.store.engine import BUSY_TIMEOUT_MS, LEAST_BUSY_MS, make_engine
    from watchdog_oom.store.health import classify

    db = tmp_path / "history.db"
    engine = make_engine(f"sqlite:///{db}", one_connection=True)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(db, isolation_level=None)  # as another process would, a lock of its own
    holder.execute("BEGIN EXCLUSIVE")
    turns = engine.pool._turns
    now = [1000.0]
    turns.clock = lambda: now[0]
    seen: dict[str, object] = {}
    a_has_it, release_a = threading.Event(), threading.Event()

    def write(name: str, shorten: bool = False) -> None:
        with engine.connect() as conn:
            if shorten:
                conn.exec_driver_sql("PRAGMA busy_timeout=300")
                a_has_it.set()
                assert release_a.wait(60)
            seen[name + " waits"] = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            seen[name + " reads"] = conn.execute(text("SELECT count(*) FROM t")).scalar()
            try:
                conn.execute(text("INSERT INTO t VALUES (1)"))
                conn.commit()
                seen[name] = "written"
            except Exception as exc:
                seen[name] = classify(exc)

    def queued(count: int) -> None:
        for _ in range(6000):
            with turns._mutex:
                if len(turns._waiting) == count:
                    return
            threading.Event().wait(0.01)  # a poll of the other threads' state
        raise AssertionError(f"{count} threads never queued")

    a = threading.Thread(target=write, args=("A", True))
    a.start()
    assert a_has_it.wait(60)
    b = threading.Thread(target=write, args=("B",))
    b.start()
    queued(1)  # B asked at 1000.0
    now[0] += 0.3
    c = threading.Thread(target=write, args=("C",))
    c.start()
    queued(2)  # C asked at 1000.3
    now[0] += 9.7  # A's busy wait ends at 1010.0: B waited 10 s (and more would be), C 9.7 s
    release_a.set()
    for thread in (a, b, c):
        thread.join(60)
    assert seen == {"A waits": 300, "A reads": 0, "A": "locked",
                    "B waits": LEAST_BUSY_MS, "B reads": 0, "B": "locked",
                    "C waits": BUSY_TIMEOUT_MS - 9700, "C reads": 0, "C": "locked"}
    now[0] += 60
    with engine.connect() as conn:  # asked after, free at once: the whole busy_timeout (restored)
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
    holder.execute("ROLLBACK")
    write("E")
    assert seen["E waits"] == BUSY_TIMEOUT_MS and seen["E"] == "written"
    holder.close()
    engine.dispose()

"""The history store on a real database migrated by Alembic: each test on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text

from watchdog_oom.model import MemorySample, OomKill, TaskRow
from watchdog_oom.store import SCHEMA_HEAD, Recorder, Store, alembic_config, claims, counts, kill_record
from watchdog_oom.store.schema import include_object, metadata


def _kill(t0, **kw):
    base = dict(pid=1772, process="python3", time=t0, mono_usec=41357569, boot_id="b1", source="kmsg",
                anon_rss_kb=65152, constraint="CONSTRAINT_MEMCG", cgroup_oom=True, task_memcg="/wdtest1")
    base.update(kw)
    return OomKill(**base)


def _sample(t, committed=10_000_000):
    return MemorySample(time=t, mem_total_kb=16_000_000, mem_available_kb=8_000_000, mem_free_kb=1,
                        swap_total_kb=0, swap_free_kb=0, committed_as_kb=committed, commit_limit_kb=8_000_000,
                        overcommit_memory=0, overcommit_ratio=50, overcommit_kbytes=0)


def test_empty_database_migrates_to_head(db_url):
    s = Store(db_url, "h")
    assert s.revision() is None
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert s.upgrade() == head
    assert s.upgrade() == head  # idempotent


def test_migrations_match_the_tables(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={
            "compare_type": True, "include_object": include_object}), metadata)
    assert diff == []


def test_database_file_is_private(db_url, sqlite_store):
    path = db_url.removeprefix("sqlite:///")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_store):
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000


def test_the_daemons_one_connection_keeps_a_small_page_cache_and_commands_the_default(db_url, sqlite_store):
    from watchdog_oom.store.engine import DAEMON_CACHE_KIB

    daemons = Recorder(db_url, "web-01", one_connection=True)  # as the daemon opens it
    try:
        with daemons.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -DAEMON_CACHE_KIB
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        daemons.close()
    with sqlite_store.engine.connect() as conn:  # a command's: SQLite's default, 2,000 KiB
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000


def _prepared(engine) -> list[str]:
    """The statements a SQLite connection of `engine` holds prepared (the sqlite_stmt table,
    SQLITE_ENABLE_STMTVTAB: Debian's SQLite has it) but the asking one."""
    from sqlalchemy.exc import OperationalError

    with engine.connect() as conn:
        try:
            rows = conn.exec_driver_sql("SELECT sql FROM sqlite_stmt").scalars().all()
        except OperationalError:
            pytest.skip("this SQLite has no sqlite_stmt table (SQLITE_ENABLE_STMTVTAB)")
    return [sql for sql in rows if "sqlite_stmt" not in sql]


def test_the_daemons_one_connection_keeps_no_statement_prepared_and_commands_keep_theirs(db_url, sqlite_store, t0):
    daemons = Recorder(db_url, "web-01", one_connection=True)  # as the daemon opens it
    try:
        for recorder in (daemons, sqlite_store):
            with recorder.tx() as tx:
                tx.set_cursor("kmsg", "b1:1", t0)
                assert tx.cursors() == {"kmsg": "b1:1"} and tx.get_cursor("kmsg") == "b1:1"
        assert _prepared(daemons.engine) == []
        assert any("cursors" in sql for sql in _prepared(sqlite_store.engine))
    finally:
        daemons.close()


def test_kill_seen_through_two_sources_is_one_row(store, t0):
    with store.tx() as tx:
        assert tx.add_kill(_kill(t0), t0) is not None
    # The same kill read back from syslog: whole-second local time, no boot id or usec.
    from_syslog = _kill(t0.replace(microsecond=0) + timedelta(seconds=1), boot_id=None, mono_usec=None,
                        source="file:/var/log/kern.log", uid=0)
    with store.tx() as tx:
        assert tx.add_kill(from_syslog, t0) is None
    rows = store.kills()
    assert len(rows) == 1
    assert rows[0].uid == 0  # the second sighting filled what the first lacked


def test_same_pid_killed_again_later_is_a_new_kill(store, t0):
    with store.tx() as tx:
        tx.add_kill(_kill(t0), t0)
        assert tx.add_kill(_kill(t0 + timedelta(minutes=10), mono_usec=641357569), t0) is not None
    assert len(store.kills()) == 2


def test_kill_record_has_every_interface_field(store, t0):
    with store.tx() as tx:
        row = tx.add_kill(_kill(t0, order=0, gfp_mask="0xcc0(GFP_KERNEL)"), t0)
    record = kill_record(store.kill(row.id))
    assert record["order"] == 0 and record["gfp_mask"] == "0xcc0(GFP_KERNEL)"
    assert record["time"] == t0.isoformat()
    assert {"id", "host", "boot_id", "cgroup_oom", "killer", "cmdline", "unit", "shmem_rss_kb"} <= set(record)


def test_times_come_back_aware_and_equal(store, t0):
    with store.tx() as tx:
        tx.add_sample(_sample(t0))
    (row,) = store.samples()
    assert row.time == t0 and row.time.tzinfo is not None


def test_cursor_commits_with_rows_or_not_at_all(store, t0):
    try:
        with store.tx() as tx:
            tx.add_kill(_kill(t0), t0)
            tx.set_cursor("kmsg", "b1:423", t0)
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    with store.tx() as tx:
        assert tx.get_cursor("kmsg") is None
    assert store.kills() == []


def test_outbox_claim_retry_and_send(store, t0):
    with store.tx() as tx:
        row = tx.enqueue(channel="hook", kind="oom.kill", severity="critical", reason="first",
                         summary="s", data={}, now=t0)
    assert claims.claim_due(store, t0 - timedelta(seconds=1)) == []
    (claimed,) = claims.claim_due(store, t0)
    assert claimed.attempts == 1 and claimed.status == "sending"
    assert claims.claim_due(store, t0) == []  # claimed rows are not handed out twice
    claims.mark_retry(store, claimed, "HTTP 503", t0 + timedelta(seconds=10))
    assert claims.claim_due(store, t0 + timedelta(seconds=5)) == []
    (again,) = claims.claim_due(store, t0 + timedelta(seconds=10))
    assert again.uuid == row.uuid and again.attempts == 2
    claims.mark_sent(store, again, "HTTP 200", t0)
    (done,) = store.notifications()
    assert done.status == "sent" and done.detail == "HTTP 200"


def test_a_group_claimed_while_kills_join_it_is_sent_with_them(store, t0):
    # A burst's kills join the notification still collecting (group_wait) while a sender
    # claims it as it falls due. On SQLite the sender read the row, waited for the kills'
    # transaction to release the write lock, then claimed the row it had read: the message
    # went out without the kills that had just joined, and the row said they were sent
    # (seen in a full run: 424 of 10,000 burst kills never notified).
    due = t0 + timedelta(seconds=3)
    with store.tx() as tx:
        tx.enqueue(channel="hook", kind="oom.kill", severity="critical", reason="first", summary="1 kill",
                   data={"count": 1}, now=t0, due_at=due, group_key="oom.kill")
    claimed: list = []
    about_to_claim = threading.Event()

    def claim() -> None:
        try:
            claimed.extend(claims.claim_due(store, due))
        finally:
            about_to_claim.set()

    claimer = threading.Thread(target=claim)

    def before_execute(conn, cursor, statement, *args) -> None:
        if threading.current_thread() is claimer and statement.lstrip().upper().startswith("UPDATE"):
            about_to_claim.set()  # it has read the row; its write waits for ours

    event.listen(store.engine, "before_cursor_execute", before_execute)
    try:
        with store.tx() as tx:
            group = tx.open_group("hook", "oom.kill", t0 + timedelta(seconds=1))
            assert tx.extend_group(group, "2 kills", {"count": 2}, "critical")
            claimer.start()
            assert about_to_claim.wait(30)
        claimer.join(30)
    finally:
        event.remove(store.engine, "before_cursor_execute", before_execute)
    claimed += claims.claim_due(store, due)  # PostgreSQL's claimer skipped the row we had locked
    (row,) = claimed
    assert row.data == {"count": 2} and row.summary == "2 kills"


def test_inflight_rows_are_requeued_after_a_crash(store, t0):
    with store.tx() as tx:
        tx.enqueue(channel="hook", kind="test", severity="info", reason="test", summary="s", data={}, now=t0)
    claims.claim_due(store, t0)
    assert store.requeue_inflight() == 1
    assert len(claims.claim_due(store, t0)) == 1


def test_raw_samples_are_downsampled_as_they_age(store, t0):
    with store.tx() as tx:
        for i in range(60):  # ten minutes of 10-second samples, three days ago
            tx.add_sample(_sample(t0 - timedelta(days=3) + timedelta(seconds=10 * i), committed=10_000_000 + i))
        tx.add_sample(_sample(t0))
    removed = store.downsample(t0, raw_samples=2 * 86400)
    rows = store.samples(ascending=True)
    assert removed == 60 - len(rows) + 1
    assert [r.resolution for r in rows] == [300] * (len(rows) - 1) + [0]
    assert len(rows) in (3, 4)  # two or three 5-minute buckets, plus the fresh raw sample
    # A spike must survive downsampling: percents keep the maximum.
    assert max(r.commit_percent for r in rows[:-1]) == _sample(t0, 10_000_059).commit_percent


def test_prune_deletes_past_retention(store, t0):
    with store.tx() as tx:
        tx.add_sample(_sample(t0 - timedelta(days=40)))
        tx.add_sample(_sample(t0))
        tx.add_kill(_kill(t0 - timedelta(days=500)), t0 - timedelta(days=500))
    counts = store.prune(t0, samples=30 * 86400, kills=400 * 86400, alerts=400 * 86400,
                         notifications=90 * 86400, raw_samples=2 * 86400)
    assert counts["samples"] == 1 and counts["kills"] == 1
    assert len(store.samples()) == 1 and store.kills() == []


def test_history_filters_by_process_glob_and_host(store, t0):
    with store.tx() as tx:
        tx.add_kill(_kill(t0, pid=1, process="java"), t0)
        tx.add_kill(_kill(t0, pid=2, process="javac"), t0)
        tx.add_kill(_kill(t0, pid=3, process="mysqld", host="db-01"), t0)
    assert [k.process for k in store.kills(process="java")] == ["java"]
    assert sorted(k.process for k in store.kills(process="java*")) == ["java", "javac"]
    assert [k.process for k in store.kills(host="db-01")] == ["mysqld"]
    assert [k.pid for k in store.kills(limit=1)] in ([1], [2], [3])


def test_process_filter_treats_like_wildcards_literally(store, t0):
    with store.tx() as tx:
        tx.add_kill(_kill(t0, pid=1, process="a_b"), t0)
        tx.add_kill(_kill(t0, pid=2, process="axb"), t0)
    assert [k.process for k in store.kills(process="a_b*")] == ["a_b"]


def test_kill_counts_group_by_process_cgroup_and_utc_day(store, t0):
    with store.tx() as tx:
        tx.add_kill(_kill(t0, pid=1, process="java", task_memcg="/a"), t0)
        tx.add_kill(_kill(t0 + timedelta(hours=13), pid=2, process="java", task_memcg="/a"), t0)
        tx.add_kill(_kill(t0, pid=3, process="redis", task_memcg=None, memcg=None), t0)
    counts = store.kill_counts()
    assert [(v, n) for by, v, n in counts if by == "process"] == [("java", 2), ("redis", 1)]
    assert [(v, n) for by, v, n in counts if by == "cgroup"] == [("/a", 2), (None, 1)]  # unknown, never "/"
    assert [(v, n) for by, v, n in counts if by == "day"] == [("2026-11-20", 2), ("2026-11-21", 1)]
    assert [(v, n) for by, v, n in store.kill_counts(process="red*") if by == "process"] == [("redis", 1)]


def test_a_claim_left_sending_is_due_again_after_its_lease(store, t0):
    from watchdog_oom.store import CLAIM_LEASE

    with store.tx() as tx:
        tx.enqueue(channel="hook", kind="test", severity="info", reason="test", summary="s", data={}, now=t0)
    (row,) = claims.claim_due(store, t0)  # the sender dies before recording the outcome
    assert claims.claim_due(store, t0 + CLAIM_LEASE - timedelta(seconds=1)) == []
    assert store.next_due() == t0 + CLAIM_LEASE
    (again,) = claims.claim_due(store, t0 + CLAIM_LEASE + timedelta(seconds=1))
    assert again.uuid == row.uuid and again.attempts == 2


def test_systemd_oomd_killing_a_unit_again_is_a_new_kill(store, t0):
    oomd = OomKill(pid=None, process="batch.service", time=t0, killer="systemd-oomd", source="journal",
                   task_memcg="/system.slice/batch.service")
    with store.tx() as tx:
        assert tx.add_kill(oomd, t0) is not None
        assert tx.add_kill(oomd.replace(time=t0 + timedelta(seconds=40)), t0) is not None
        assert tx.add_kill(oomd, t0) is None  # the same line read again


def test_downsampling_an_hour_apart_never_splits_a_bucket(store, t0):
    with store.tx() as tx:
        for i in range(30):  # one 5-minute bucket of 10-second samples, three days ago
            tx.add_sample(_sample(t0 - timedelta(days=3) + timedelta(seconds=10 * i), committed=10_000_000 + i))
    cut = t0 - timedelta(days=3) + timedelta(seconds=150)  # a cutoff in the middle of the bucket
    store.downsample(cut + timedelta(days=2), raw_samples=2 * 86400)
    store.downsample(cut + timedelta(days=2, hours=1), raw_samples=2 * 86400)
    times = [r.time for r in store.samples(ascending=True)]
    assert len(times) == len(set(times)) == 1


def test_migration_0002_turns_old_oomd_pid_0_into_null_and_back(db_url, t0):
    from alembic import command
    from sqlalchemy import text

    store = Store(db_url, "web-01")
    cfg = alembic_config(db_url)
    command.upgrade(cfg, "0001")
    with store.engine.begin() as conn:  # a row as revision 0001 stored an oomd kill
        conn.execute(text("INSERT INTO kills (host, pid, process, cgroup_oom, killer, details, recorded_at) "
                          "VALUES ('web-01', 0, 'batch.service', 0, 'systemd-oomd', '{}', '2026-11-20 12:00:00')"))
    command.upgrade(cfg, "0002")
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT pid FROM kills")).scalar() is None
    assert store.revision() == "0002"
    command.downgrade(cfg, "0001")
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT pid FROM kills")).scalar() == 0


def test_schema_head_constant_is_alembics_head(db_url):
    from watchdog_oom.store import SCHEMA_HEAD

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD
    store = Store(db_url, "h")
    assert not store.at_head()
    store.upgrade()
    assert store.at_head()


def test_a_stale_claim_cannot_overwrite_a_later_senders_outcome(store, t0):
    from watchdog_oom.store import CLAIM_LEASE

    with store.tx() as tx:
        tx.enqueue(channel="hook", kind="test", severity="info", reason="test", summary="s", data={}, now=t0)
    (first,) = claims.claim_due(store, t0)
    (second,) = claims.claim_due(store, t0 + CLAIM_LEASE + timedelta(seconds=1))  # the first sender's lease ran out
    assert claims.mark_sent(store, second, "HTTP 200", t0)
    assert not claims.mark_retry(store, first, "HTTP 503", t0)  # too late: its claim is stale
    (row,) = store.notifications()
    assert row.status == "sent"


def _plans(store, call) -> list[str]:
    """SQLite's plan of every SELECT `call` runs, one line each."""
    from statements import selects_run

    selects = selects_run(store, call)
    with store.engine.connect() as conn:
        return [" / ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
                for statement, params in selects]


def test_the_newest_kills_of_a_filter_are_the_first_of_its_whole_list(store, t0):
    """--limit takes the newest ids from an index, then their rows: the same kills, in the
    same order (newest first, undated last, ties by id), as the first of the whole list."""
    with store.tx() as tx:
        for i in range(12):
            when = None if i % 5 == 4 else t0 - timedelta(minutes=i % 3)  # ties, and kills without a time
            tx.add_kill(_kill(when, pid=100 + i, process="java" if i % 2 else "javac", mono_usec=None,
                              boot_id=None), t0)
    for filters in ({}, {"process": "java*"}, {"process": "java"}, {"host": "web-01"}, {"since": t0}):
        whole = [k.id for k in store.kills(**filters)]
        for limit in (1, 3, 7, 50):
            assert [k.id for k in store.kills(**filters, limit=limit)] == whole[:limit], (filters, limit)


def _cgroup_reading(store: Store, t: datetime) -> None:
    """One cgroup reading an hour after `t`, written without a SELECT (the plans stay the query's own)."""
    from watchdog_oom.model import CgroupSample

    with store.tx() as tx:
        tx.add_cgroup_samples([CgroupSample(path="/docker/a", version=2, time=t + timedelta(hours=1),
                                            limit_bytes=100, usage_bytes=90, working_set_bytes=90)])


@pytest.mark.parametrize(("name", "call", "index"), [
    ("kills", lambda s, t: s.kills(limit=50), "ix_kills_time"),
    ("kills of a host", lambda s, t: s.kills(host="web-01", since=t, limit=50), "ix_kills_host_time"),
    ("kills of a process", lambda s, t: s.kills(process="java", since=t), "ix_kills_process_time"),
    ("kills of a glob", lambda s, t: s.kills(process="java*", limit=50),
     "ix_kills_process_time (process>? AND process<?)"),
    ("samples", lambda s, t: s.samples(since=t, limit=50), "ix_samples_time"),
    ("alerts", lambda s, t: s.alerts(limit=50), "ix_alerts_started"),
    ("notifications", lambda s, t: s.notifications(limit=50), "ix_notifications_created"),
    ("protections", lambda s, t: s.protections(limit=50), "ix_protections_time"),
    ("metrics' kill counts", lambda s, t: counts.kill_totals(s, "web-01", t), "ix_kills_host_recorded"),
    ("a chart", lambda s, t: s.series("web-01", t, t), "ix_samples_host_time"),
    ("summary", lambda s, t: s.kill_counts(), "COVERING INDEX ix_kills_cgroup"),
    ("a chart's slices", lambda s, t: s.series_slices("web-01", t, t + timedelta(days=7), 2000),
     "ix_samples_host_time"),
    ("a report's cgroups", lambda s, t: (_cgroup_reading(s, t), s.cgroup_slices("web-01", t, t + timedelta(days=7),
                                                                                  240)),
     "ix_cgroup_samples_host_time (host=? AND time=?)"),
])
def test_history_queries_use_an_index(sqlite_store, t0, name, call, index):
    plans = _plans(sqlite_store, lambda: call(sqlite_store, t0))
    assert plans and all("USING" in plan or "SEARCH" in plan for plan in plans), plans
    assert any(index in plan for plan in plans), plans


def test_a_glob_prefix_is_case_sensitive_on_every_engine(store, t0):
    with store.tx() as tx:
        tx.add_kill(_kill(t0, pid=1, process="java"), t0)
        tx.add_kill(_kill(t0, pid=2, process="JAVA"), t0)
    assert [k.process for k in store.kills(process="java*")] == ["java"]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_history_of_the_first_released_schema_upgrades_with_nothing_lost(request, engine, t0):
    from alembic import command
    from sqlalchemy import insert, select

    url = request.getfixturevalue("db_url" if engine == "sqlite" else "pg_url")
    store = Store(url, "web-01")
    command.upgrade(alembic_config(url), "0001")  # the schema of the first release, 0.1.0
    tables = {name: metadata.tables[name] for name in
              ("samples", "kills", "alerts", "mutes", "notifications", "cursors", "protections")}
    s = _sample(t0)
    rows = {
        "samples": [dict(host="web-01", time=t0 - timedelta(minutes=i), resolution=0, mem_total_kb=s.mem_total_kb,
                         mem_available_kb=s.mem_available_kb, swap_total_kb=0, swap_free_kb=0,
                         committed_as_kb=s.committed_as_kb, commit_limit_kb=s.commit_limit_kb,
                         commit_percent=s.commit_percent, commit_limit_percent=s.commit_limit_percent,
                         mem_available_percent=50.0, psi_some_avg10=None, psi_full_avg10=0.5, overcommit_memory=0)
                    for i in range(3)],
        "kills": [dict(host="web-01", boot_id="b1", time=t0, mono_usec=41357569, pid=1772, process="python3", uid=0,
                       anon_rss_kb=65152, constraint="CONSTRAINT_MEMCG", cgroup_oom=True, task_memcg="/wdtest1",
                       killer="kernel", source="kmsg", cmdline="python3 -c x", details={"task_table": [{"pid": 1}]},
                       recorded_at=t0),
                  dict(host="web-01", time=t0, pid=0, process="batch.service", cgroup_oom=True, killer="systemd-oomd",
                       source="journal", details={}, recorded_at=t0)],
        "alerts": [dict(host="web-01", key="commit", kind="commit.warning", severity="warning", status="firing",
                        summary="%commit 93%", started_at=t0, updated_at=t0, data={"commit_percent": 93.1})],
        "mutes": [dict(host=None, created_at=t0, until=t0 + timedelta(hours=2), kind="oom.kill", reason="load test")],
        "notifications": [dict(host="web-01", uuid="msg_1", channel="ops", kind="commit.warning", severity="warning",
                               reason="first", summary="%commit 93%", status="sent", data={"a": 1}, alert_id=1,
                               created_at=t0, due_at=t0, attempts=1, sent_at=t0, detail="HTTP 200"),
                          dict(host="web-01", uuid="msg_2", channel="ops", kind="oom.kill", severity="critical",
                               reason="first", summary="muted", status="muted", data={}, mute_id=1, created_at=t0,
                               due_at=t0, attempts=0)],
        "cursors": [dict(host="web-01", source="kmsg", cursor="b1:423", updated_at=t0)],
        "protections": [dict(host="web-01", time=t0, pid=812, process="sshd", cmdline="sshd -D", from_adj=0,
                             to_adj=-900)],
    }
    with store.engine.begin() as conn:
        for name, values in rows.items():
            for value in values:
                conn.execute(insert(tables[name]), value)

    def everything() -> dict[str, list[tuple]]:
        with store.engine.connect() as conn:
            return {name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
                    for name, table in tables.items()}

    before = everything()
    assert store.upgrade() == SCHEMA_HEAD
    after = everything()
    oomd = before["kills"][1]
    pid = list(tables["kills"].columns.keys()).index("pid")
    before["kills"][1] = oomd[:pid] + (None,) + oomd[pid + 1:]  # 0002: an oomd kill names no pid
    assert after == before
    assert sum(len(v) for v in after.values()) == 11
    (kill, oomd_kill) = sorted(store.kills(), key=lambda k: k.id)
    assert kill_record(kill)["cmdline"] == "python3 -c x" and oomd_kill.pid is None
    store.close()


def test_a_burst_is_stored_in_one_batch_with_duplicates_caught(store, t0):
    with store.tx() as tx:
        first = tx.add_kill(_kill(t0, pid=100, process="java"), t0)
    burst = [(_kill(t0 + timedelta(seconds=i), pid=200 + i, mono_usec=50_000_000 + i), {"n": i}) for i in range(50)]
    from_syslog = _kill(t0.replace(microsecond=0) + timedelta(seconds=1), pid=100, process="java", boot_id=None,
                        mono_usec=None, source="file:/var/log/kern.log", uid=1000)
    with store.tx() as tx:
        rows = tx.add_kills([*burst, (from_syslog, None), burst[3]], t0)
    assert [r is None for r in rows] == [False] * 50 + [True, True]  # seen before, and twice in the batch
    assert [r.details["n"] for r in rows[:50]] == list(range(50))
    assert len({r.id for r in rows[:50]}) == 50 and first.id not in {r.id for r in rows[:50]}
    assert len(store.kills()) == 51
    assert store.kill(first.id).uid == 1000  # the later sighting filled what the first lacked


def test_an_import_records_in_bounded_batches_and_knows_what_it_had(store, t0):
    kills = [_kill(t0 + timedelta(minutes=i), pid=1000 + i, mono_usec=None, boot_id=None, source="import:/k.log")
             for i in range(25)]
    first = list(store.import_kills(kills[:10], t0, batch_size=4))
    assert [new for _, new in first] == [True] * 10
    again = list(store.import_kills(kills, t0, batch_size=7))
    assert [new for _, new in again] == [False] * 10 + [True] * 15
    assert [r.id for r, _ in again[:10]] == [r.id for r, _ in first]
    assert len(store.kills()) == 25


def test_an_import_batch_of_thousands_of_pids_finds_each_one_recorded_before(store, t0):
    # More pids than SQLite once allowed bound parameters (999): the batch's lookup writes
    # them into one IN list, which the (host, pid) index answers.
    kills = [_kill(t0 + timedelta(seconds=i), pid=10_000 + i, mono_usec=None, boot_id=None, source="import:/k.log")
             for i in range(2500)]
    assert all(new for _, new in store.import_kills(kills[::2], t0, batch_size=2500))
    again = list(store.import_kills(kills, t0, batch_size=2500))
    assert [new for _, new in again] == [i % 2 == 1 for i in range(2500)]
    assert len(store.kills(limit=5000)) == 2500


def test_a_batch_of_systemd_oomd_kills_tells_them_apart_by_the_moment(store, t0):
    oomd = OomKill(pid=None, process="batch.service", time=t0, killer="systemd-oomd", source="journal",
                   task_memcg="/system.slice/batch.service")
    with store.tx() as tx:
        rows = tx.add_kills([(oomd, None), (oomd.replace(time=t0 + timedelta(seconds=40)), None), (oomd, None)], t0)
    assert [r is None for r in rows] == [False, False, True]
    with store.tx() as tx:
        assert tx.add_kills([(oomd, None)], t0) == [None]  # the same line read again later


def test_a_batch_stores_each_column_as_a_kill_recorded_alone_does(store, t0):
    # add_kills builds its rows its own way (a list per row, the SQLite driver's
    # executemany): every column must come out as add_kill's, read back from the database.
    tasks = (TaskRow(pid=1772, uid=0, tgid=1772, total_vm_kb=9000, rss_kb=65000, pgtables_kb=300, swapents=0,
                     oom_score_adj=-17, name="python3"),)
    local = datetime(2024, 6, 3, 10, 0, 1, 250)  # a syslog stamp: no offset, this host's time
    full = _kill(t0, uid=1000, total_vm_kb=9000, file_rss_kb=4, shmem_rss_kb=0, pgtables_kb=300, oom_score_adj=-17,
                 score=900, memcg="/wdtest1", invoker="stress", invoker_pid=1771, gfp_mask="0xcc0(GFP_KERNEL)",
                 order=0, cmdline="python3 -c x", unit="x.service", host="web-07", task_table=tasks,
                 memory_info=("Mem-Info:", "active_anon:1"), extra={"kill_line": "Killed process 1772", "é": [1.5]})
    sparse = OomKill(pid=1800, process="java", time=local, source="import:/var/log/syslog")
    with store.tx() as tx:
        alone = [tx.add_kill(full, t0, {"memory_before": {"mem_available_kb": 1}}), tx.add_kill(sparse, t0)]
    with store.tx() as tx:
        batched = tx.add_kills([(full.replace(host="web-08"), {"memory_before": {"mem_available_kb": 1}}),
                                (sparse.replace(host="web-08"), None)], t0)
    assert all(alone) and all(batched)
    for one, other in zip(alone, batched, strict=True):
        assert store.kill(other.id) == other  # what the batch answered is what it stored
        stored_alone = {**vars_of(store.kill(one.id)), "id": None, "host": None}
        assert {**vars_of(store.kill(other.id)), "id": None, "host": None} == stored_alone
    assert store.kill(batched[1].id).time == local.astimezone()
    with store.engine.connect() as conn:  # the very text: json.dumps's (SQLite's TEXT, PostgreSQL's json)
        texts = {i: conn.execute(text("SELECT CAST(details AS TEXT) FROM kills WHERE id = :i"), {"i": i}).scalar_one()
                 for i in (one.id for one in [*alone, *batched])}
    assert [texts[one.id] for one in batched] == [texts[one.id] for one in alone]
    assert json.loads(texts[batched[0].id]) == batched[0].details and "\\u00e9" in texts[batched[0].id]


def test_a_later_sighting_in_the_same_batch_fills_the_new_record(store, t0):
    first = _kill(t0, pid=300, boot_id=None, uid=None, mono_usec=None, source="import:/k.log")
    later = _kill(t0 + timedelta(seconds=1), pid=300, uid=1000, cmdline="python3 -c y", source="kmsg")
    with store.tx() as tx:
        rows = tx.add_kills([(first, None), (later, None), (first, None)], t0)
    assert [r is None for r in rows] == [False, True, True]
    (stored,) = store.kills()
    assert (stored.id, stored.uid, stored.boot_id, stored.cmdline) == (rows[0].id, 1000, "b1", "python3 -c y")
    assert rows[0] == stored  # the record answered holds what the later sighting filled
    assert [new for _, new in store.import_kills([first, later, first], t0)] == [False, False, False]


def vars_of(row):
    return {name: getattr(row, name) for name in row.__slots__}


_FIRST_BATCH = r"""
import sys, threading
from datetime import datetime, timezone
from watchdog_oom.model import OomKill
from watchdog_oom.store import Recorder
from watchdog_oom.store import tables

recorder = Recorder(sys.argv[1], "web-01")
with recorder.tx():
    pass
schema_made = lambda: int("watchdog_oom.store.schema" in sys.modules)  # the whole schema's module, never loaded
opened = (schema_made(), sorted(tables._keyed))
t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
barrier = threading.Barrier(2)
ids = []

def write(first):
    barrier.wait(timeout=30)
    with recorder.tx() as tx:
        rows = tx.add_kills([(OomKill(pid=first + i, process=f"p{first + i}", time=t, boot_id="b", source="kmsg"),
                              None) for i in range(20)], t)
        ids.extend(row.id for row in rows if row is not None)

threads = [threading.Thread(target=write, args=(first,)) for first in (100, 200)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
made = tables._keyed.get("kills")
print(opened, schema_made(), sorted(tables._keyed), len(ids), len(set(ids)),
      made is not None and len(made.indexes), made is not None and len(made.metadata.tables))
"""


def test_a_store_makes_the_kills_table_alone_at_its_first_batch_and_once(store_url: str) -> None:
    # Review R24: a PostgreSQL store built the whole schema (10 Tables, 141 Columns, 22
    # indexes) at open for its ordered RETURNING; it now makes the kills Table alone, without
    # its indexes, at its first batch, once though two writers write their first batch at once
    # (SQLite's batches need none). A fresh process: this one may have made the schema.
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _FIRST_BATCH, store_url], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout
    postgres = store_url.startswith("postgresql")
    expected = "(0, []) 0 ['kills'] 40 40 0 1" if postgres else "(0, []) 0 [] 40 40 False False"
    assert out.strip() == expected

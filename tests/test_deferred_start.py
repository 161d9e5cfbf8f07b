"""A daemon started while its PostgreSQL server could not be reached finishes its start
once the server answers, whatever else is then wrong with the database: it waits only
while the server is unreachable, and says any other problem (the start's own lines),
rather than waiting in silence for a server that answers already."""

from __future__ import annotations

from history_of import history_of
from servers import HttpSink
from test_faults import append, config, kill_line, log, pg_rows, wait_for_kind  # noqa: F401 (log: a fixture)
from test_service import Daemon, reap_daemons, wait_until  # noqa: F401 (reap_daemons: autouse fixture)


def test_a_server_back_with_an_empty_alembic_version_table_gets_the_deferred_start_finished(
        tmp_path, log, own_pg):  # noqa: F811
    import psycopg

    # A database whose alembic_version table is there but empty (a migration tool's start
    # cut short, a partial restore): the start check says so, and the migration fills it.
    with psycopg.connect(own_pg.url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    own_pg.stop()
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url, url=own_pg.url))
        daemon.wait_message("READY=1")
        wait_for_kind(sink, "database.down")
        own_pg.start()
        wait_for_kind(sink, "database.resolved", timeout=30)
        append(log, kill_line(601))
        assert wait_until(lambda: pg_rows(own_pg.url, "SELECT pid FROM kills") == [(601,)]), \
            daemon.log_text()[-3000:]
        assert daemon.stop() == 0
    assert "alembic_version is empty" in daemon.log_text()  # said, not waited on in silence


def test_while_the_start_waits_for_postgresql_the_jobs_and_the_outbox_skip_quietly_and_resume_after(
        tmp_path, own_pg, caplog):
    # Before: the jobs and the outbox senders ran against the unreachable server at every
    # interval, each saying once that it was refused (one database.down said it already),
    # retention logged two errors at each run ("retention failed; the history keeps growing"),
    # and once the server answered they wrote before the start had checked the schema and
    # restored the alert state. Now they wait for the start, and resume when it is done.
    import logging

    from test_service_checks import overcommitted

    from watchdog_oom.config import parse_config
    from watchdog_oom.daemon import Daemon

    tree = overcommitted(tmp_path, 64262056)  # the commit alert fires
    with HttpSink() as sink:
        cfg = parse_config(f"""
host: web-01
database: {own_pg.url}
procfs: {tree.root}
kernel_log: {{source: none}}
commit: {{for: 0s}}
notifications:
  group_wait: 0s
  channels:
    - {{name: hook, type: webhook, url: "{sink.url}", kinds: ["commit*"]}}
""", env={})
        before = Daemon(cfg)  # the last run: the alert fired, its notification not sent yet
        before.store.upgrade()
        before.jobs.run_now("memory")
        before.store.close()
        own_pg.stop()

        def commit_notes() -> list[dict]:
            return [b for b in (r.json() for r in sink.requests) if b["type"].startswith("commit")]

        daemon = Daemon(cfg)
        caplog.clear()
        try:
            with caplog.at_level(logging.INFO, logger="watchdog_oom"):
                daemon.start()  # deferred: the server does not answer
                assert not daemon.database.ready()
                for job in ("memory", "processes", "retention", "memory"):
                    daemon.jobs.run_now(job)
                assert daemon.shared.host.last_check is not None  # the check ran (systemd's watchdog)
                said = [r.getMessage() for r in caplog.records
                        if r.levelno >= logging.WARNING and "oom_score_adj" not in r.getMessage()]
                assert len(said) == 1 and said[0].startswith("database.down (unreachable)"), said
                own_pg.start()
                assert wait_until(daemon.database.ready, timeout=30), caplog.text
                # The last run's notification is sent: the senders start with the start's end.
                assert wait_until(commit_notes, timeout=30), caplog.text
                stored = len(history_of(daemon).samples())  # the last run's (and the scheduler's since)
                daemon.jobs.run_now("memory")
                assert len(history_of(daemon).samples()) > stored
        finally:
            daemon.stop_event.set()
            daemon.shutdown()
    assert len(commit_notes()) == 1  # the alert state restored by the start: not fired again
    for noise in ("refuses this job's results", "the outbox waits", "retention failed", "Traceback"):
        assert noise not in caplog.text, caplog.text

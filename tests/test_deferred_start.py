"""A daemon started while its PostgreSQL server could not be reached finishes its start
once the server answers, whatever else is then wrong with the database: it waits only
while the server is unreachable, and says any other problem (the start's own lines),
rather than waiting in silence for a server that answers already."""

from __future__ import annotations

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
        assert wait_until(lambda: pg_rows(own_pg.url, "SELECT pid FROM kills") == [(601,)], timeout=20), \
            daemon.log_text()[-3000:]
        assert daemon.stop() == 0
    assert "alembic_version is empty" in daemon.log_text()  # said, not waited on in silence

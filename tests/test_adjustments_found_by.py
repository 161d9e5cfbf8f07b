"""How each change of oom_score_adj was found, kept in the history (migration 0009): read
from its tracepoint event, or by a re-read of /proc after events were lost, and then why
its writer is not known; and a history of revision 0008 upgraded with nothing lost."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import select, text
from test_cli import run, write_config

from watchdog_oom.rules.adjaudit import Writer
from watchdog_oom.store import SCHEMA_HEAD, Store, alembic_config, tracing
from watchdog_oom.store.tables import adjustments

EVENT_WRITER = Writer(tid=4242, process="evil", pid=4242, cmdline="evil --make-it-die", unit="cron.service", uid=1000)
# What adjwatch gives a change found by re-reading /proc after the trace buffer overflowed.
LOST = "its event was lost: 7344 trace events lost"
RESYNC_WRITER = Writer(tid=0, process="?", unknown=LOST)


def _record(store: Store, t0, writer: Writer, found_by: str | None, minutes: int = 0) -> None:
    how = {} if found_by is None else {"found_by": found_by}
    with store.tx() as tx:
        tracing.add_adjustment(tx, time=t0 + timedelta(minutes=minutes), boot_id="b", pid=77, process="postgres",
                               cmdline="postgres -D /data", unit="postgresql.service", old_adj=0, new_adj=1000,
                               critical=True, by_watchdog=False, severity="critical", writer=writer.to_dict(), **how)


def test_a_change_found_by_a_resync_is_kept_as_such_with_why_its_writer_is_unknown(store, t0):
    _record(store, t0, EVENT_WRITER, None)  # the default: read from its event
    _record(store, t0, RESYNC_WRITER, "resync", minutes=1)
    resync, event = store.adjustments()
    assert (resync.found_by, resync.writer_unknown, resync.writer_pid, resync.writer_tid) == ("resync", LOST, None, 0)
    assert (event.found_by, event.writer_unknown, event.writer_pid) == ("tracepoint", None, 4242)


def test_history_adjustments_shows_how_each_change_was_found(tmp_path, store, t0):
    cfg = write_config(tmp_path, f"database: {store.engine.url.render_as_string(hide_password=False)}\nhost: web-01\n")
    _record(store, t0, EVENT_WRITER, "tracepoint")
    _record(store, t0, RESYNC_WRITER, "resync", minutes=1)
    code, out, err = run("history", "adjustments", "--format", "json", "--since", "3000d", config=cfg)
    assert code == 0, err
    resync, event = json.loads(out)
    assert (resync["found_by"], resync["writer_unknown"], resync["by"]) == ("resync", LOST, f"unknown ({LOST})")
    assert (event["found_by"], event["writer_unknown"], event["by"]) == ("tracepoint", None, "evil (pid 4242)")
    # every key the rows had before is still there
    assert {"time", "host", "pid", "process", "cmdline", "unit", "old_adj", "new_adj", "critical", "by_watchdog",
            "severity", "writer_pid", "writer_tid", "writer_process", "writer_cmdline", "writer_unit", "writer_uid",
            "writer_exited", "by"} < resync.keys()
    code, out, _ = run("history", "adjustments", "--since", "3000d", config=cfg)
    heading, first, second = out.splitlines()
    assert heading.split()[-1] == "FOUND_BY" and first.endswith(" resync") and second.endswith(" tracepoint")
    assert f"unknown ({LOST})" in first
    code, out, _ = run("history", "adjustments", "--format", "csv", "--since", "3000d", config=cfg)
    table = list(csv.DictReader(io.StringIO(out)))
    assert [(r["found_by"], r["writer_unknown"]) for r in table] == [("resync", LOST), ("tracepoint", "")]


# The adjustments table's columns at revision 0008, and two rows as that revision stored them.
OLD_COLUMNS = ("host", "boot_id", "time", "pid", "process", "cmdline", "unit", "old_adj", "new_adj", "critical",
               "by_watchdog", "severity", "writer_pid", "writer_tid", "writer_process", "writer_cmdline",
               "writer_unit", "writer_uid", "writer_exited")
OLD_ROWS = [
    dict(host="web-01", boot_id="b1", time="2026-11-20 12:00:00+00:00", pid=77, process="postgres",
         cmdline="postgres -D /data", unit="postgresql.service", old_adj=-900, new_adj=1000, critical=True,
         by_watchdog=False, severity="critical", writer_pid=4242, writer_tid=4243, writer_process="evil",
         writer_cmdline="evil --x", writer_unit="cron.service", writer_uid=1000, writer_exited=False),
    dict(host="web-01", boot_id=None, time="2026-11-20 12:01:00+00:00", pid=78, process="sshd", cmdline=None,
         unit=None, old_adj=None, new_adj=-900, critical=True, by_watchdog=True, severity=None, writer_pid=None,
         writer_tid=99, writer_process="watchdog-oom", writer_cmdline=None, writer_unit=None, writer_uid=None,
         writer_exited=True),
]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_history_of_revision_0008_upgrades_with_every_adjustment_kept(request, engine, t0):
    url = request.getfixturevalue("db_url" if engine == "sqlite" else "pg_url")
    store = Store(url, "web-01")
    cfg = alembic_config(url)
    command.upgrade(cfg, "0008")
    insert = text(f"INSERT INTO adjustments ({', '.join(OLD_COLUMNS)}) "
                  f"VALUES ({', '.join(':' + name for name in OLD_COLUMNS)})")
    with store.engine.begin() as conn:
        conn.execute(insert, OLD_ROWS)

    def old_columns() -> list[tuple]:
        with store.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(*(adjustments.c[name] for name in ("id", *OLD_COLUMNS))).order_by(adjustments.c.id))]

    before = old_columns()
    assert len(before) == 2
    assert store.upgrade() == SCHEMA_HEAD == "0009"
    assert old_columns() == before
    assert [(a.found_by, a.writer_unknown) for a in store.adjustments()] == [("tracepoint", None)] * 2
    # a row of the new revision, then back to 0008 and up again: the old columns stay
    _record(store, t0, RESYNC_WRITER, "resync", minutes=5)
    kept = old_columns()
    command.downgrade(cfg, "0008")
    assert old_columns() == kept
    with store.engine.connect() as conn:
        names = {row[0] for row in conn.execute(text(
            "SELECT name FROM pragma_table_info('adjustments')" if engine == "sqlite" else
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'adjustments'"))}
    assert names.isdisjoint({"found_by", "writer_unknown"}) and set(OLD_COLUMNS) < names
    assert store.upgrade() == "0009"
    assert [a.found_by for a in store.adjustments()] == ["tracepoint"] * 3  # what the downgrade could not keep
    store.close()

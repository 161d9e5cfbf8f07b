"""The live path against bad records and bursts: a kill the database refuses is quarantined and
the others are stored; a burst is stored in a few transactions, exactly once, in a few messages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from proctree import ProcTree

from tests.history_of import history_of
from watchdog_oom.clock import FakeClock
from watchdog_oom.config import parse_config
from watchdog_oom.daemon import Daemon
from watchdog_oom.daemon.pipeline import Pipeline
from watchdog_oom.model import OomKill


def make_daemon(tmp_path: Path, t0, database: str | None = None) -> Daemon:
    cfg = parse_config(f"""
host: web-01
database: {database or f"sqlite:///{tmp_path}/history.db"}
procfs: {ProcTree(tmp_path).root}
kernel_log: {{source: none}}
notifications:
  group_wait: 5s
  channels:
    - {{name: hook, type: webhook, url: "http://127.0.0.1:9/x", min_severity: info}}
    - {{name: chat, type: slack, webhook_url: "http://127.0.0.1:9/services/T/B/x"}}
""", env={})
    daemon = Daemon(cfg, clock=FakeClock(t0))
    daemon.store.upgrade()
    return daemon


def kill(t0, pid: int, **fields) -> OomKill:
    return OomKill(pid=pid, process=fields.pop("process", "worker"), time=t0 + timedelta(seconds=pid % 1000),
                   mono_usec=pid, boot_id="b", source="kmsg", **fields)


def test_a_kill_the_database_cannot_take_is_quarantined_and_the_others_are_stored(tmp_path, t0):
    daemon = make_daemon(tmp_path, t0)
    pipeline = Pipeline(daemon.shared, "kmsg", first_start=False)
    poison = kill(t0, 5, total_vm_kb=2 ** 80, extra={"raw": "Out of memory: Killed process 5 (worker) total-vm:"
                                                            "1208925819614629174706176kB"})
    pipeline.record([kill(t0, 1), poison, kill(t0, 9)])
    assert pipeline.unsaved == []
    assert sorted(k.pid for k in history_of(daemon).kills()) == [1, 9]
    (quarantined,) = history_of(daemon).quarantined()
    assert "1208925819614629174706176" in quarantined.raw and "Overflow" in quarantined.error
    # Later kills are not held behind it, and it is not retried.
    pipeline.record([kill(t0, 12)])
    assert sorted(k.pid for k in history_of(daemon).kills()) == [1, 9, 12]
    unstored = [n for n in history_of(daemon).notifications() if n.kind == "kill.unstored"]
    assert sorted(n.channel for n in unstored) == ["chat", "hook"]
    assert all(n.data["count"] == 1 and n.severity == "critical" for n in unstored)


def test_a_burst_is_stored_once_in_few_transactions_and_few_messages(tmp_path, t0):
    daemon = make_daemon(tmp_path, t0)
    pipeline = Pipeline(daemon.shared, "kmsg", first_start=False)
    kills = [kill(t0, 1000 + i) for i in range(3000)]
    for k in kills:
        pipeline.record([k], force=False)
    pipeline.record(kills[:50])  # the same kills read again (a second source): no new rows
    pipeline.handle(None)
    stored = history_of(daemon).kills(limit=10_000)
    assert len(stored) == 3000 and len({k.pid for k in stored}) == 3000
    per_channel = {}
    for n in history_of(daemon).notifications():
        per_channel.setdefault(n.channel, []).append(n.data["count"])
    assert {c: sum(v) for c, v in per_channel.items()} == {"hook": 3000, "chat": 3000}
    assert all(len(v) <= 3 for v in per_channel.values()), per_channel


def test_import_stores_the_good_kills_and_reports_the_one_it_quarantined(store, t0):
    import io

    from watchdog_oom.cli.import_logs import _import_batch
    from watchdog_oom.store.rows import PID, kill_row

    good = [kill_row(kill(t0, 1), "web-01"), kill_row(kill(t0, 2), "web-01")]
    bad = kill_row(kill(t0, 3, anon_rss_kb=2 ** 70, process="x(1)\n y"), "web-01")
    err = io.StringIO()
    recorded, unstored = _import_batch(store, [good[0], bad, good[1]], t0, err)
    assert unstored == 1 and [row[PID] for _, new, row in recorded if new] == [1, 2]
    assert sorted(k.pid for k in store.kills()) == [1, 2]
    (quarantined,) = store.quarantined()
    assert "1180591620717411303424" in quarantined.raw
    assert "quarantined" in err.getvalue() and "\n y" not in err.getvalue()
    # Imported again: nothing new, nothing doubled.
    recorded, unstored = _import_batch(store, good, t0, err)
    assert unstored == 0 and not any(new for _, new, _ in recorded) and len(store.kills()) == 2


def test_a_nul_in_a_kills_text_never_stops_the_import(store, t0):
    """A NUL read from a damaged log (a kill line's name): SQLite stores it; PostgreSQL's text
    columns refuse it, so the kill is quarantined, and the quarantine (which keeps the same
    texts) must take it, not fail in turn and end the import with the kills after it."""
    import io

    from watchdog_oom.cli.import_logs import _import_batch
    from watchdog_oom.store.rows import PID, kill_row

    line = "Out of memory: Killed process 3 (a\x00b) total-vm:1kB, anon-rss:1kB, file-rss:0kB"
    bad = kill_row(kill(t0, 3, process="a\x00b", extra={"kill_line": line}), "web-01")
    good = kill_row(kill(t0, 4), "web-01")
    err = io.StringIO()
    recorded, unstored = _import_batch(store, [bad, good], t0, err)
    assert 4 in [row[PID] for _, new, row in recorded if new]
    assert sorted(k.pid for k in store.kills()) + [q.process for q in store.quarantined()] in (
        [3, 4], [4, "a\\x00b"])
    for quarantined in store.quarantined():
        assert "a\\x00b" in quarantined.raw and "\x00" not in quarantined.raw + quarantined.error


def test_a_line_with_a_nul_that_could_not_be_read_is_still_noticed(store_url, tmp_path, t0):
    """The notice of a line holding a kill's words that no recogniser read keeps its text;
    a NUL in it (a damaged log) must not lose the notice on PostgreSQL, whose text columns
    cannot hold one."""
    from watchdog_oom.model import KernelLine

    daemon = make_daemon(tmp_path, t0, store_url)
    pipeline = Pipeline(daemon.shared, "syslog", first_start=False)
    pipeline.handle(KernelLine(text="Jun  3 10:00:00 web-01 kernel: Killed process 8 (b\x00c", source="syslog",
                               wrapped=True))
    notices = [n for n in history_of(daemon).notifications() if n.kind == "kill.unreadable"]
    assert sorted(n.channel for n in notices) == ["chat", "hook"], notices
    assert all("\x00" not in n.summary for n in notices)

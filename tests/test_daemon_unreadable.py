"""The daemon tells a person about a kernel log line that holds a kill's words but could not
be read: one notification (grouped), the text redacted and cut, nothing else stopped."""

from __future__ import annotations

import sys
from pathlib import Path

from proctree import ProcTree

import watchdog_oom
from tests.history_of import history_of
from watchdog_oom.clock import FakeClock
from watchdog_oom.config import parse_config
from watchdog_oom.daemon import Daemon
from watchdog_oom.daemon.pipeline import Pipeline
from watchdog_oom.model import KernelLine, SourceGap

FIGURES = "total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB"


def _daemon(tmp_path: Path, t0) -> Daemon:
    cfg = parse_config(f"""
host: web-01
database: sqlite:///{tmp_path}/history.db
procfs: {ProcTree(tmp_path).root}
kernel_log:
  source: none
notifications:
  group_wait: 5s
  channels:
    - name: hook
      type: webhook
      url: http://127.0.0.1:9/never
      min_severity: info
""", env={})
    daemon = Daemon(cfg, clock=FakeClock(t0))
    daemon.store.upgrade()
    return daemon


def test_an_unreadable_kill_line_is_notified_once_and_good_kills_still_stored(tmp_path, t0) -> None:
    daemon = _daemon(tmp_path, t0)
    pipeline = Pipeline(daemon.shared, "kmsg", first_start=False)
    for text in ["Out of memory: Killed process 8 (b", "Killed process 9 (c) --password=hunter2 total-vm:x",
                 f"Out of memory: Killed process 10 (d) {FIGURES}"]:
        pipeline.handle(KernelLine(text=text, source="kmsg", time=t0))
    assert [k.pid for k in history_of(daemon).kills()] == [10]
    (row,) = [n for n in history_of(daemon).notifications() if n.kind == "kill.unreadable"]
    assert row.data["count"] == 2 and row.data["lines"][0] == "Out of memory: Killed process 8 (b"
    assert "hunter2" not in str(row.data) and "hunter2" not in row.summary


def test_a_notice_whose_code_cannot_be_loaded_is_said_in_the_log_and_nothing_else_is_lost(
        tmp_path, t0, monkeypatch, caplog) -> None:
    # As if the package on disk could not be imported from (being upgraded) at the first notice:
    # the rarer notices' code (notices.py) is loaded then, not at start.
    daemon = _daemon(tmp_path, t0)
    pipeline = Pipeline(daemon.shared, "kmsg", first_start=False)
    monkeypatch.setitem(sys.modules, "watchdog_oom.notices", None)
    monkeypatch.delattr(watchdog_oom, "notices", raising=False)  # as in a process that never loaded it
    pipeline.handle(KernelLine(text="Out of memory: Killed process 8 (b", source="kmsg", time=t0))
    pipeline.handle(SourceGap(source="kmsg", missed=3, message="3 records overwritten", cursor="boot:42"))
    pipeline.handle(KernelLine(text=f"Out of memory: Killed process 10 (d) {FIGURES}", source="kmsg", time=t0))
    assert [k.pid for k in history_of(daemon).kills()] == [10]
    with daemon.store.tx() as tx:
        assert tx.cursors()["kmsg"] == "boot:42"  # the gap's cursor is saved all the same
    assert {n.kind for n in history_of(daemon).notifications()} == {"oom.kill"}
    for notice in ("kill.unreadable", "kernel_log.gap"):
        assert f"{notice} is not notified: its code (watchdog_oom.notices) cannot be loaded: ModuleNotFoundError" \
            in caplog.text


def test_without_the_rarer_notices_code_a_kill_unstored_and_a_first_starts_backlog_are_still_told(
        tmp_path, t0, monkeypatch) -> None:
    # Review R33: kill.unstored and the backlog's summary are the only word the channels get of
    # those kills, so they are written by dispatch.Outbox, loaded at start, never by notices.py.
    from datetime import timedelta

    from watchdog_oom.model import CaughtUp, OomKill

    daemon = _daemon(tmp_path, t0)
    monkeypatch.setitem(sys.modules, "watchdog_oom.notices", None)
    monkeypatch.delattr(watchdog_oom, "notices", raising=False)
    first = Pipeline(daemon.shared, "kmsg", first_start=True)
    for pid in (20, 21):
        first.handle(KernelLine(text=f"Out of memory: Killed process {pid} (java) {FIGURES}", source="kmsg",
                                time=t0, cursor=f"c{pid}"))
    first.handle(CaughtUp("kmsg"))
    poison = OomKill(pid=5, process="worker", time=t0 + timedelta(seconds=5), mono_usec=5, boot_id="b",
                     source="kmsg", total_vm_kb=2 ** 80,
                     extra={"raw": "Out of memory: Killed process 5 (worker) total-vm:1208925819614629174706176kB"})
    Pipeline(daemon.shared, "kmsg", first_start=False).record([poison])
    assert ["1208925819614629174706176" in q.raw for q in history_of(daemon).quarantined()] == [True]
    rows = history_of(daemon).notifications()
    (backlog,) = [n for n in rows if n.kind == "oom.kill" and n.data.get("backlog")]
    assert sorted(k["pid"] for k in backlog.data["kills"]) == [20, 21]
    (unstored,) = [n for n in rows if n.kind == "kill.unstored"]
    assert unstored.data["quarantined"][0]["process"] == "worker" and unstored.severity == "critical"
    assert "watchdog_oom.notices" not in {m for m in sys.modules if sys.modules[m] is not None}

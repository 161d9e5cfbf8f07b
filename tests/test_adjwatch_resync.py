"""The re-read after lost trace events (daemon/adjwatch.py) against a process scan that lands
between the re-read and its settling: the change the re-read found is still alerted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from proctree import ProcTree

from tests.history_of import history_of
from watchdog_oom import processes, procfs
from watchdog_oom.clock import FakeClock
from watchdog_oom.config import parse_config
from watchdog_oom.daemon import Daemon
from watchdog_oom.daemon.adjwatch import AdjWatch
from watchdog_oom.trace_events import AdjWritten

READ_USEC = 5_000_000  # the trace clock (µs) when the re-read was made


def _critical_postgres_at_1000(tmp_path: Path, t0) -> tuple[Daemon, AdjWatch, Callable[[], None]]:
    """A daemon watching critical postgres processes, a /proc where pid 4242 (postgres) is at
    oom_score_adj 1000, the watch of its adjustments (the trace clock at READ_USEC), and what
    publishes a process scan of that /proc as the process check does."""
    tree = ProcTree(tmp_path).process(4242, "postgres", oom_score=1500, oom_score_adj=1000, start_time=777)
    cfg = parse_config(f"""
host: web-01
database: sqlite:///{tmp_path}/history.db
procfs: {tree.root}
kernel_log:
  source: none
processes:
  critical:
    - name: postgres
""", env={})
    daemon = Daemon(cfg, clock=FakeClock(t0))
    daemon.store.upgrade()
    watch = AdjWatch(daemon.shared)
    watch.mono_usec = lambda: READ_USEC

    def publish_scan() -> None:
        scanned = processes.mark_critical(procfs.scan_processes(str(tree.root)), cfg.processes.critical,
                                          cfg.processes.system_uid_max)
        with daemon.shared.lock:
            daemon.shared.host.ranking, daemon.shared.host.ranking_time = scanned, t0

    return daemon, watch, publish_scan


def test_a_scan_between_the_reread_and_its_settling_does_not_hide_a_lost_write(tmp_path: Path, t0) -> None:
    # A critical process the daemon had not seen yet was written 1000 while the trace buffer
    # overflowed (its event lost). The re-read finds 1000; before the events stamped earlier
    # are all handled, the process check's next scan (another thread) lists the process with
    # that same 1000. Taken as "known", the scan's value made the re-read look unchanged,
    # and the write to 1000 went unalerted (the real-kernel overflow test failed so, now and
    # then, under load).
    daemon, watch, publish_scan = _critical_postgres_at_1000(tmp_path, t0)
    watch.events_lost(5000)  # the re-read: 4242, never seen, is 1000
    assert watch.waiting
    publish_scan()  # what the process check publishes after its scan
    # An event stamped before the re-read, then none left: the re-read is settled.
    watch.before(READ_USEC - 10)
    watch.written(AdjWritten(pid=99, process="flood", oom_score_adj=501, mono_usec=READ_USEC - 10, time=t0,
                             writer="flood", writer_tid=99))
    watch.before(None)
    history = history_of(daemon)
    (alert,) = [a for a in history.alerts() if a.kind == "process.adj_changed"]
    assert alert.severity == "critical" and "pid 4242" in alert.summary and "unknown writer" in alert.summary
    (found,) = [a for a in history.adjustments() if a.pid == 4242]
    assert (found.new_adj, found.found_by, found.writer_pid) == (1000, "resync", None)
    assert found.writer_unknown == "its event was lost: 5000 trace events lost"


def test_a_scan_made_after_a_lost_write_but_read_before_the_loss_does_not_hide_it(tmp_path: Path, t0) -> None:
    # The same lost write, the scan landing earlier: after the flood (it lists 4242 at 1000)
    # but while the events from before the loss are still being read, so before the loss is
    # known. Adopted then as known, the scan's 1000 made the re-read after the loss look
    # unchanged (the real-kernel overflow test failed so with CPU burners running).
    daemon, watch, publish_scan = _critical_postgres_at_1000(tmp_path, t0)
    publish_scan()  # the process check's scan, made after the flood
    # An event from before the flood is read (the buffer's oldest page), then the loss.
    watch.before(READ_USEC - 10)
    watch.written(AdjWritten(pid=99, process="flood", oom_score_adj=501, mono_usec=READ_USEC - 10, time=t0,
                             writer="flood", writer_tid=99))
    watch.events_lost(5000)  # the re-read: 4242 is 1000
    watch.before(None)  # none left: settled
    history = history_of(daemon)
    (alert,) = [a for a in history.alerts() if a.kind == "process.adj_changed"]
    assert alert.severity == "critical" and "pid 4242" in alert.summary and "unknown writer" in alert.summary
    (found,) = [a for a in history.adjustments() if a.pid == 4242]
    assert (found.new_adj, found.found_by, found.writer_pid) == (1000, "resync", None)
    # Once every event is read and none lost, the scan's value is the known one: nothing new.
    watch.before(None)
    assert watch.watched[4242] == (777, 1000)
    assert len([a for a in history_of(daemon).alerts() if a.kind == "process.adj_changed"]) == 1

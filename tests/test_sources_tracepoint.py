"""The tracepoint source against the real kernel: a tracefs mounted by the test, an
instance of its own, real oom_score_adj writes and a real OOM kill in a memory cgroup."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from test_real_oom import hog, oom_cgroup  # noqa: F401 (fixture)
from tracefs import private_tracefs, unique_instance

from watchdog_oom.sources import SourceError
from watchdog_oom.sources.tracepoint import (
    TracepointSource,
    find_tracefs,
    read_oom_kill,
    unusable,
)
from watchdog_oom.trace_events import AdjWritten, VictimMarked, classify_marks


@pytest.fixture
def tracefs():
    with private_tracefs() as path:
        yield path


def collect(source: TracepointSource, want, timeout: float = 60.0) -> list:
    """Events until `want(events)` is true (or the deadline), read on another thread."""
    got: list = []
    done = threading.Event()

    def read() -> None:
        for event in source.events(idle_timeout=0.1):
            if event is not None:
                got.append(event)
            if want(got) or done.is_set():
                done.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    done.wait(timeout)
    done.set()
    reader.join(5)
    return got


def test_instance_is_ours_and_removed_at_close(tracefs):
    top = Path(tracefs, "events/oom/mark_victim/enable").read_text()
    source = TracepointSource(tracefs, unique_instance())
    path = Path(source.path)
    assert path.is_dir() and source.clock == "mono"
    assert "[mono]" in (path / "trace_clock").read_text()
    assert (path / "events/oom/mark_victim/enable").read_text().strip() == "1"
    assert (path / "events/oom/oom_score_adj_update/enable").read_text().strip() == "1"
    assert source.enabled == ["oom/mark_victim", "oom/oom_score_adj_update"]
    source.close()
    assert not path.exists()
    assert Path(tracefs, "events/oom/mark_victim/enable").read_text() == top  # the top level untouched


def test_a_write_by_another_process_names_target_and_writer(tracefs):
    source = TracepointSource(tracefs, unique_instance())
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        writer = subprocess.Popen([sys.executable, "-c",
                                   f"open('/proc/{target.pid}/oom_score_adj', 'w').write('1000')"])
        writer.wait(10)
        got = collect(source, lambda evs: any(isinstance(e, AdjWritten) and e.pid == target.pid for e in evs))
    finally:
        source.close()
        target.kill()
        target.wait()
    (write,) = [e for e in got if isinstance(e, AdjWritten) and e.pid == target.pid]
    assert write.oom_score_adj == 1000 and write.writer_tid == writer.pid
    assert write.process == Path(sys.executable).name[:15] and write.writer == write.process
    assert abs(time.time() - write.time.timestamp()) < 10


def test_a_leftover_instance_is_replaced_and_a_busy_one_left_alone(tracefs):
    name = unique_instance()
    leftover = Path(tracefs, "instances", name)
    leftover.mkdir()
    source = TracepointSource(tracefs, name)
    assert source.path == str(leftover)
    try:
        # Another reader holds it open: the kernel refuses rmdir, so a second daemon takes NAME-PID.
        with open(leftover / "trace", "rb"):  # trace_pipe itself admits one reader
            second = TracepointSource(tracefs, name)
            assert second.instance == f"{name}-{os.getpid()}"
            assert leftover.is_dir()
            second.close()
            assert not Path(second.path).exists()
    finally:
        source.close()
    assert not leftover.exists()


def test_fallback_instances_of_dead_daemons_are_removed_at_start(tracefs):
    # A daemon SIGKILLed while on its NAME-PID fallback leaves that instance (and its ring
    # buffer) behind, and no later daemon has its PID: at start, ours whose PID is gone go.
    name = unique_instance()
    instances = Path(tracefs, "instances")
    dead_pid, held_pid = (int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                                             capture_output=True, text=True, check=True).stdout) for _ in range(2))
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead, held, alive = (instances / f"{name}-{dead_pid}", instances / f"{name}-{held_pid}",
                         instances / f"{name}-{live.pid}")
    others = [instances / f"{name}-x{dead_pid}", instances / f"{name}x-{dead_pid}", instances / f"{name}-0"]
    for path in (dead, held, alive, *others):
        path.mkdir()
    try:
        # In use by a reader this PID namespace cannot see (here: held open by the test).
        with open(held / "trace", "rb"):
            source = TracepointSource(tracefs, name)
            source.close()
            assert held.is_dir()
        assert not dead.exists()
        assert alive.is_dir() and all(p.is_dir() for p in others)  # alive, or not a fallback of ours
    finally:
        live.kill()
        live.wait()
        for path in (dead, held, alive, *others):
            if path.exists():
                path.rmdir()


def test_a_leftover_fallback_with_this_daemons_pid_is_no_obstacle(tracefs):
    # In a container the daemon often gets the same PID at every start: the fallback a killed
    # one left under that PID is a leftover, not this live process's.
    name = unique_instance()
    mine = Path(tracefs, "instances", f"{name}-{os.getpid()}")
    mine.mkdir()
    first = TracepointSource(tracefs, name)
    try:
        with open(Path(first.path, "trace"), "rb"):  # busy: a second reader falls back to NAME-PID
            second = TracepointSource(tracefs, name)
            assert second.path == str(mine)
            second.close()
        assert not mine.exists()
    finally:
        first.close()
        if mine.exists():  # instances are the kernel's, not the mount's: none may outlive the test
            mine.rmdir()


def test_where_tracing_is_not_possible_it_says_why(tmp_path):
    assert find_tracefs([str(tmp_path)]) is None
    assert "mark_victim" in unusable(str(tmp_path))
    with pytest.raises(SourceError, match="trace instance"):
        TracepointSource(str(tmp_path / "nowhere"), "x")


def test_close_from_another_thread_ends_events_promptly(tracefs):
    source = TracepointSource(tracefs, unique_instance())
    timer = threading.Timer(0.2, source.close)
    timer.start()
    assert all(e is None or isinstance(e, (AdjWritten, VictimMarked)) for e in source.events(idle_timeout=30))
    assert not Path(source.path).exists()


@pytest.mark.realoom
def test_a_real_memcg_kill_is_marked_with_the_kernels_figures(tracefs, oom_cgroup):  # noqa: F811
    cg, _ = oom_cgroup
    source = TracepointSource(tracefs, unique_instance())
    try:
        child = hog(cg, uuid.uuid4().hex)
        assert child.wait(timeout=60) == -9
        got = collect(source, lambda evs: any(isinstance(e, VictimMarked) and e.pid == child.pid for e in evs))
    finally:
        source.close()
    marks = [e for e in got if isinstance(e, VictimMarked)]
    (victim,) = [m for m in marks if m.pid == child.pid]
    assert victim.marker_tid == child.pid  # it invoked the OOM killer itself, by allocating
    assert victim.figures["process"] == Path(sys.executable).name[:15]
    assert victim.figures["anon_rss_kb"] > 30 * 1024 and victim.figures["uid"] == os.getuid()
    assert victim.oom_kill_count is not None and victim.oom_kill_count > source.oom_kill_at_start - 1
    kills, _ = classify_marks(marks, source.oom_kill_at_start)
    assert victim in kills
    assert read_oom_kill("/proc/vmstat") >= victim.oom_kill_count

"""A real OOM kill on this machine's kernel, inside a memory cgroup of the test's own.

The daemon reads the real /dev/kmsg. A child that lived through a process scan allocates
past its cgroup's limit; the kernel kills it; the daemon must record it once, with the
kernel's figures and the command line it saw before the kill, as it reads the report. A kill
while the daemon is down is recorded and notified when it comes back.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from servers import HttpSink
from test_service import Daemon, outbox_settled, reap_daemons, stored_as_read, wait_until  # noqa: F401 (reap_daemons: autouse fixture)

pytestmark = pytest.mark.realoom

LIMIT = 48 * 1024 * 1024


def own_memory_cgroup() -> tuple[Path, str, str]:
    """Where this process may make a child memory cgroup: (dir, limit file, kernel-visible path)."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory" + path), "memory.limit_in_bytes", path
    for line in lines:
        if line.startswith("0::"):
            path = line[3:]
            return Path("/sys/fs/cgroup" + path), "memory.max", path
    raise OSError("no memory cgroup found in /proc/self/cgroup")


@pytest.fixture
def oom_cgroup():
    if os.geteuid() != 0:
        pytest.skip("a real OOM kill needs root to make a memory cgroup")
    if not os.access("/dev/kmsg", os.R_OK):
        pytest.skip("/dev/kmsg is not readable here")
    try:
        parent, limit_file, kernel_path = own_memory_cgroup()
        name = f"wdoom-{uuid.uuid4().hex[:8]}"
        cg = parent / name
        cg.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot make a memory cgroup of our own: {exc}")
    try:
        (cg / limit_file).write_text(str(LIMIT))
    except OSError as exc:
        cg.rmdir()
        pytest.skip(f"cannot set a memory limit on {cg}: {exc}")
    yield cg, f"{kernel_path.rstrip('/')}/{name}"
    for _ in range(50):
        try:
            cg.rmdir()
            break
        except OSError:
            time.sleep(0.1)


def hog(cg: Path, marker: str, gated: bool = False) -> subprocess.Popen:
    """A child that joins the cgroup and allocates until killed; `gated`: only once its stdin
    is closed (the test lets it go when a process scan has seen it)."""
    code = ("import sys; sys.stdin.read(); a=[]\n"
            "while True: a.append(bytearray(1 << 20))")
    procs = cg / "cgroup.procs"

    def join() -> None:
        procs.write_text(str(os.getpid()))

    return subprocess.Popen([sys.executable, "-c", code, f"--marker={marker}", "--password=hunter2"],
                            stdin=subprocess.PIPE if gated else subprocess.DEVNULL, preexec_fn=join)


def process_scans(daemon: Daemon) -> int:
    """How many process scans the daemon has logged (at debug level) so far."""
    return len(re.findall(r"processes: \d+ ranked", daemon.log_text()))


def config(tmp: Path, url: str) -> str:
    return f"""
host: oom-host
database: sqlite:///{tmp}/history.db
kernel_log:
  source: kmsg
processes:
  interval: 1s
notifications:
  group_wait: 0s
  channels:
    - name: hook
      type: webhook
      url: {url}
      min_severity: info
      kinds: ["oom.kill"]
"""


def kills(db: Path, marker_pid: int) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM kills WHERE pid = ?", (marker_pid,)).fetchall()


def kill_notifications(sink: HttpSink, pid: int) -> list[dict]:
    out = []
    for r in sink.requests:
        body = json.loads(r.body)
        if any(k["pid"] == pid for k in body["data"].get("kills", [])) and not body["data"].get("backlog"):
            out.append(body)
    return out


def test_real_oom_kill_is_recorded_once_as_the_kernel_logs_it(tmp_path, oom_cgroup):
    cg, kernel_path = oom_cgroup
    marker = uuid.uuid4().hex
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, sink.url))
        try:
            daemon.wait_message("READY=1")
            child = hog(cg, marker, gated=True)
            # A process scan begun after the child started has remembered its command line
            # (the second scan logged from now), then it may fill its cgroup.
            scans = process_scans(daemon)
            assert wait_until(lambda: process_scans(daemon) >= scans + 2, timeout=30), daemon.log_text()
            assert child.stdin is not None
            child.stdin.close()
            assert child.wait(timeout=60) == -9, "the kernel did not kill the child"
            # Stored by the running daemon's kernel-log thread as it read the kernel's report
            # (no restart, no reopening after a failure, not held for the database).
            rows = wait_until(lambda: kills(tmp_path / "history.db", child.pid), timeout=30)
            as_read = stored_as_read(daemon)
            # Stop only once the notification is out: stopping ends the outbox thread.
            wait_until(lambda: kill_notifications(sink, child.pid))
        finally:
            assert daemon.stop() == 0
    assert len(rows) == 1, daemon.log_text()
    kill = rows[0]
    assert as_read, daemon.log_text()
    assert kill["process"] == Path(sys.executable).name[:15]
    assert kill["uid"] == os.getuid()
    assert kill["constraint"] == "CONSTRAINT_MEMCG" and kill["cgroup_oom"] == 1
    assert kill["memcg"] == kernel_path and kill["task_memcg"] == kernel_path
    assert kill["anon_rss_kb"] > 30 * 1024 and kill["total_vm_kb"] > kill["anon_rss_kb"]
    assert kill["invoker"] == kill["process"] and kill["gfp_mask"]
    assert kill["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert kill["source"] == "kmsg" and kill["killer"] == "kernel"
    # Seen by a scan before it died: the full command line, with its secret redacted.
    assert f"--marker={marker}" in kill["cmdline"]
    assert "hunter2" not in kill["cmdline"]
    # `show` has what the host looked like just before: the last commit sample.
    state = json.loads(kill["details"])["commit_state"]
    assert state["commit_percent"] > 0 and state["mem_available_kb"] > 0
    (note,) = kill_notifications(sink, child.pid)
    assert note["type"] == "oom.kill" and note["data"]["kills"][0]["cmdline"] == kill["cmdline"]


def test_kill_while_the_daemon_is_down_is_recorded_and_notified_on_return(tmp_path, oom_cgroup):
    cg, _ = oom_cgroup
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, sink.url))
        daemon.wait_message("READY=1")
        # Caught up with the kernel buffer, its cursor stored in the same step.
        assert wait_until(lambda: "kernel log kmsg: caught up" in daemon.log_text())
        assert daemon.stop() == 0
        child = hog(cg, uuid.uuid4().hex)
        assert child.wait(timeout=60) == -9
        daemon = Daemon(tmp_path, config(tmp_path, sink.url))
        try:
            daemon.wait_message("READY=1")
            assert wait_until(lambda: kills(tmp_path / "history.db", child.pid)), daemon.log_text()
            assert wait_until(lambda: kill_notifications(sink, child.pid))
        finally:
            assert daemon.stop() == 0
        # A third start repeats nothing.
        daemon = Daemon(tmp_path, config(tmp_path, sink.url))
        daemon.wait_message("READY=1")
        assert wait_until(lambda: "kernel log kmsg: caught up" in daemon.log_text())
        assert wait_until(lambda: outbox_settled(tmp_path / "history.db"))
        assert daemon.stop() == 0
    assert len(kills(tmp_path / "history.db", child.pid)) == 1
    assert len(kill_notifications(sink, child.pid)) == 1

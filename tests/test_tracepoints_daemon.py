"""The daemon with the kernel's oom tracepoints, on this machine's kernel: a real memcg kill
recorded from the tracepoint alone and through kmsg and the tracepoint as one record, and
a real write to a critical process's oom_score_adj reaching a real local webhook.

Each test mounts a tracefs of its own and names a trace instance of its own, so nothing
of /sys/kernel/tracing or of another run is touched. An instance records every event of
the system, other tests' kills included: the tests look only at their own pids.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from servers import HttpSink
from test_real_oom import hog, oom_cgroup  # noqa: F401 (fixture)
from test_service import Daemon, reap_daemons, wait_until  # noqa: F401 (reap_daemons: autouse fixture)
from tracefs import private_tracefs, unique_instance


@pytest.fixture
def tracefs():
    with private_tracefs() as path:
        yield path


def config(tmp: Path, url: str, tracefs: str, instance: str, source: str, kinds: str, extra: str = "") -> str:
    return f"""
host: trace-host
database: sqlite:///{tmp}/history.db
kernel_log:
  source: {source}
  tracepoints: on
  tracefs: {tracefs}
  trace_instance: {instance}
processes:
  interval: 1s
{extra}
notifications:
  group_wait: 0s
  channels:
    - name: hook
      type: webhook
      url: {url}
      min_severity: info
      kinds: {kinds}
"""


def rows(db: Path, sql: str, *args) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()


def bodies(sink: HttpSink, kind: str) -> list[dict]:
    return [b for b in (json.loads(r.body) for r in sink.requests) if b["type"] == kind]


def kill_bodies(sink: HttpSink, pid: int) -> list[dict]:
    return [b for b in bodies(sink, "oom.kill") if any(k["pid"] == pid for k in b["data"].get("kills", []))]


@pytest.mark.realoom
def test_a_real_kill_is_recorded_and_notified_from_the_tracepoint_alone(tmp_path, tracefs,
                                                                        oom_cgroup):  # noqa: F811
    cg, _ = oom_cgroup
    instance = unique_instance()
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, sink.url, tracefs, instance, "none", '["oom.kill"]'))
        try:
            daemon.wait_message("READY=1")
            assert wait_until(lambda: Path(tracefs, "instances", instance).is_dir())
            child = hog(cg, uuid.uuid4().hex)
            assert child.wait(timeout=60) == -9
            # No kernel log is read (source: none): the kill can only come from the tracepoint.
            stored = wait_until(lambda: rows(tmp_path / "history.db", "SELECT * FROM kills WHERE pid = ?", child.pid),
                                timeout=30)
            notes = wait_until(lambda: kill_bodies(sink, child.pid), timeout=30)
        finally:
            assert daemon.stop() == 0
    assert not Path(tracefs, "instances", instance).exists(), "the instance outlived the daemon"
    assert stored and notes, daemon.log_text()
    (kill,) = stored
    # Stored as the event was read: the trace reader neither failed and reopened (a retry
    # seconds later) nor held the kill for the database.
    assert not re.search(r"tracepoints( stopped|: reopened|: unexpected failure|: failed to handle"
                         r"|: cannot store the kill)", daemon.log_text()), daemon.log_text()
    assert kill["source"] == "tracepoint" and kill["killer"] == "kernel"
    assert kill["process"] == Path(sys.executable).name[:15] and kill["uid"] == os.getuid()
    assert kill["anon_rss_kb"] > 30 * 1024 and kill["total_vm_kb"] > kill["anon_rss_kb"]
    assert kill["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert kill["constraint"] is None  # only the log says; never a guess
    extra = json.loads(kill["details"])["extra"]
    assert extra["witnesses"] == ["tracepoint"] and extra["tracepoint"]["oom_kill_count"] > 0
    (note,) = notes
    assert note["data"]["kills"][0]["source"] == "tracepoint"


@pytest.mark.realoom
def test_the_same_real_kill_through_kmsg_and_the_tracepoint_is_one_record_with_both(tmp_path, tracefs,
                                                                                     oom_cgroup):  # noqa: F811
    cg, kernel_path = oom_cgroup
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, sink.url, tracefs, unique_instance(), "kmsg", '["oom.kill"]'))
        try:
            daemon.wait_message("READY=1")
            child = hog(cg, uuid.uuid4().hex)
            assert child.wait(timeout=60) == -9

            def confirmed():
                found = rows(tmp_path / "history.db", "SELECT * FROM kills WHERE pid = ?", child.pid)
                return found if found and "tracepoint" in json.loads(found[0]["details"])["extra"].get(
                    "witnesses", []) and found[0]["constraint"] else None

            stored = wait_until(confirmed)
            notes = wait_until(lambda: kill_bodies(sink, child.pid))
        finally:
            assert daemon.stop() == 0
    assert stored, daemon.log_text()
    (kill,) = rows(tmp_path / "history.db", "SELECT * FROM kills WHERE pid = ?", child.pid)
    details = json.loads(kill["details"])
    # The log's fields ...
    assert kill["constraint"] == "CONSTRAINT_MEMCG" and kill["memcg"] == kernel_path and kill["invoker"]
    assert details["task_table"] and kill["gfp_mask"]
    # ... and the tracepoint's exact time, its figures, and both witnesses named.
    assert details["extra"]["witnesses"] == ["kmsg", "tracepoint"] or details["extra"]["witnesses"] == [
        "tracepoint", "kmsg"]
    assert kill["anon_rss_kb"] > 30 * 1024 and details["extra"]["tracepoint"]["mono_usec"] > 0
    assert len(notes) == 1 and len(kill_bodies(sink, child.pid)) == 1
    assert not rows(tmp_path / "history.db", "SELECT * FROM alerts WHERE kind = 'oom.unlogged' AND data LIKE ?",
                    f'%"pid": {child.pid},%')


CRITICAL = """  critical:
    - cmdline: '{marker}'
"""


def test_a_write_of_1000_to_a_critical_process_reaches_the_webhook_naming_both(tmp_path, tracefs):
    marker = f"critical-{uuid.uuid4().hex}"
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
    writer = None
    try:
        with HttpSink() as sink:
            daemon = Daemon(tmp_path, config(tmp_path, sink.url, tracefs, unique_instance(), "none",
                                             '["process.adj_changed"]', CRITICAL.format(marker=marker)))
            try:
                daemon.wait_message("READY=1")
                code = (f"import sys, time; open('/proc/{target.pid}/oom_score_adj', 'w').write('1000'); "
                        "sys.stdout.write('done\\n'); sys.stdout.flush(); time.sleep(120)")
                writer = subprocess.Popen([sys.executable, "-c", code, "--token=hunter2"], stdout=subprocess.PIPE)
                assert writer.stdout.readline() == b"done\n"
                notes = wait_until(lambda: bodies(sink, "process.adj_changed"))
            finally:
                assert daemon.stop() == 0
    finally:
        for proc in (target, writer):
            if proc is not None:
                proc.kill()
                proc.wait()
    assert notes, daemon.log_text()
    (note,) = [n for n in notes if n["data"]["adjustment"]["pid"] == target.pid]
    adj = note["data"]["adjustment"]
    assert note["severity"] == "critical"
    assert adj["new_adj"] == 1000 and adj["old_adj"] in (0, None) and adj["critical"]
    assert marker in adj["cmdline"]
    assert adj["writer"]["pid"] == writer.pid and adj["writer"]["process"] == Path(sys.executable).name[:15]
    assert "--token=" in adj["writer"]["cmdline"] and "hunter2" not in adj["writer"]["cmdline"]
    assert f"(pid {target.pid})" in note["summary"] and f"(pid {writer.pid}" in note["summary"]
    (row,) = rows(tmp_path / "history.db", "SELECT * FROM adjustments WHERE pid = ?", target.pid)
    assert row["writer_pid"] == writer.pid and row["severity"] == "critical"


@pytest.mark.realoom
def test_a_real_kill_the_log_never_shows_is_recorded_and_called_unlogged(tmp_path, tracefs, oom_cgroup):  # noqa: F811
    cg, _ = oom_cgroup
    quiet_log = tmp_path / "kern.log"  # a syslog file that, like a daemon dropping lines, never gets the kill
    quiet_log.write_text("")
    with HttpSink() as sink:
        text = config(tmp_path, sink.url, tracefs, unique_instance(), "file", '["oom.kill"]')
        # The log is given a second to show the kill (kernel_log.witness_wait, 10 s by default).
        daemon = Daemon(tmp_path, text.replace("  source: file\n", f"  source: file\n  path: {quiet_log}\n"
                                                                  "  witness_wait: 1s\n"))
        try:
            daemon.wait_message("READY=1")
            child = hog(cg, uuid.uuid4().hex)
            assert child.wait(timeout=60) == -9
            db = tmp_path / "history.db"
            alerts = wait_until(lambda: rows(db, "SELECT * FROM alerts WHERE kind = 'oom.unlogged' AND data LIKE ?",
                                             f'%"pid": {child.pid},%'), timeout=30)
        finally:
            assert daemon.stop() == 0
    assert alerts, daemon.log_text()
    (alert,) = alerts
    data = json.loads(alert["data"])
    assert data["disagreed"] == "log" and data["witnesses"] == ["tracepoint"] and data["source"] == "tracepoint"
    assert f"pid {child.pid}" in alert["summary"] and f"file:{quiet_log}" in alert["summary"]
    (kill,) = rows(db, "SELECT * FROM kills WHERE pid = ?", child.pid)
    assert kill["source"] == "tracepoint" and json.loads(kill["details"])["disagreed"] == "log"


def test_a_daemon_that_fails_to_start_removes_its_trace_instance(tmp_path, tracefs):
    # The tracepoints open before the metrics server binds: with the address taken, start()
    # raised after the instance was made and enabled, and the instance stayed in the kernel.
    instance = unique_instance()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(tmp_path, config(tmp_path, "http://127.0.0.1:9/", tracefs, instance, "none", '["oom.kill"]',
                                         f"metrics:\n  listen: 127.0.0.1:{port}\n"))
        assert daemon.proc.wait(timeout=30) != 0
        daemon.stop()
    assert "tracing oom/mark_victim" in daemon.log_text(), daemon.log_text()
    assert not Path(tracefs, "instances", instance).exists(), "the instance outlived the failed start"


def test_a_flood_of_writes_to_a_process_that_is_not_critical_is_not_all_kept(tmp_path, tracefs):
    # Any user may write its own oom_score_adj as fast as it likes; each write kept was a
    # transaction, so a flood grew the history without bound and held the tracepoint thread.
    marker = f"critical-{uuid.uuid4().hex}"
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
    try:
        with HttpSink() as sink:
            daemon = Daemon(tmp_path, config(tmp_path, sink.url, tracefs, unique_instance(), "none",
                                             '["process.adj_changed"]', CRITICAL.format(marker=marker)))
            try:
                daemon.wait_message("READY=1")
                flood = ("import os\nfd = os.open('/proc/self/oom_score_adj', os.O_WRONLY)\n"
                         "for i in range(20000):\n    os.pwrite(fd, b'501' if i % 2 else b'500', 0)\n"
                         f"open('/proc/{target.pid}/oom_score_adj', 'w').write('1000')\n")
                flooder = subprocess.run([sys.executable, "-c", flood], check=True)
                assert flooder.returncode == 0
                # Events are handled in order: once the critical write is notified, the flood was read.
                notes = wait_until(lambda: bodies(sink, "process.adj_changed"), timeout=60)
            finally:
                assert daemon.stop() == 0
    finally:
        target.kill()
        target.wait()
    assert notes, daemon.log_text()
    kept = rows(tmp_path / "history.db", "SELECT COUNT(*) AS n FROM adjustments WHERE pid != ?", target.pid)[0]["n"]
    assert kept < 2000, kept
    # Under load (other runs flooding too: every instance sees every write) the buffer may
    # overflow: the critical write is then found by the re-read, and fewer writes reach the
    # limit than were made.
    lost = "events lost" in daemon.log_text()
    assert lost or (kept > 0 and "not kept in history" in daemon.log_text()), daemon.log_text()
    (row,) = rows(tmp_path / "history.db", "SELECT * FROM adjustments WHERE pid = ?", target.pid)
    assert row["new_adj"] == 1000 and row["severity"] == "critical"
    (note,) = [n for n in notes if n["data"]["adjustment"]["pid"] == target.pid]
    assert note["data"]["adjustment"]["found_by"] in (("tracepoint", "resync") if lost else ("tracepoint",))


def test_a_critical_write_lost_in_an_overflow_is_still_notified_with_its_writer_unknown(tmp_path, tracefs):
    # The trace buffer keeps what was not read yet and overwrites the oldest of it: a flood
    # of writes right after a write to a critical process pushes that write's event out.
    # The daemon is stopped (SIGSTOP) while it happens, so the overflow is certain.
    marker = f"critical-{uuid.uuid4().hex}"
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
    instance = unique_instance()
    db = tmp_path / "history.db"
    later = None
    try:
        with HttpSink() as sink:
            daemon = Daemon(tmp_path, config(tmp_path, sink.url, tracefs, instance, "none",
                                             '["process.adj_changed"]', CRITICAL.format(marker=marker)))
            try:
                daemon.wait_message("READY=1")
                # A small buffer (two pages per CPU) makes a short flood enough.
                Path(tracefs, "instances", instance, "buffer_size_kb").write_text("8")
                # A write the daemon sees: from then on it knows the target's value (5).
                Path(f"/proc/{target.pid}/oom_score_adj").write_text("5")
                assert wait_until(lambda: bodies(sink, "process.adj_changed")), daemon.log_text()
                # And one no scan may have seen yet: what was it before? Nothing known, but 1000 is news.
                later = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
                cpu = min(os.sched_getaffinity(0))
                # All on one CPU, so into one CPU's buffer. The writes before the critical one fill
                # the page the reader holds (the kernel never overwrites that one).
                flood = (f"import os\nos.sched_setaffinity(0, {{{cpu}}})\n"
                         "fd = os.open('/proc/self/oom_score_adj', os.O_WRONLY)\n"
                         "def flood(n):\n    for i in range(n):\n"
                         "        os.pwrite(fd, b'501' if i % 2 else b'500', 0)\n"
                         f"flood(1000)\nopen('/proc/{target.pid}/oom_score_adj', 'w').write('1000')\n"
                         f"open('/proc/{later.pid}/oom_score_adj', 'w').write('1000')\nflood(5000)\n")
                os.kill(daemon.proc.pid, signal.SIGSTOP)
                try:
                    subprocess.run([sys.executable, "-c", flood], check=True)
                finally:
                    os.kill(daemon.proc.pid, signal.SIGCONT)

                def missed():
                    found = [b for b in bodies(sink, "process.adj_changed")
                             if b["data"]["adjustment"]["new_adj"] == 1000]
                    return found if len(found) == 2 else None

                notes = wait_until(missed, timeout=30)
            finally:
                assert daemon.stop() == 0
    finally:
        for proc in (target, later):
            if proc is not None:
                proc.kill()
                proc.wait()
    assert notes, daemon.log_text()
    assert re.search(r"trace buffer of CPU \d+ overflowed; \d+ events lost", daemon.log_text())
    (note,) = [n for n in notes if n["data"]["adjustment"]["pid"] == target.pid]
    (other,) = [n for n in notes if n["data"]["adjustment"]["pid"] == later.pid]
    assert other["severity"] == "critical" and other["data"]["adjustment"]["old_adj"] in (0, None)
    assert other["data"]["adjustment"]["found_by"] == "resync"
    adj = note["data"]["adjustment"]
    assert note["severity"] == "critical" and adj["pid"] == target.pid and marker in adj["cmdline"]
    assert adj["old_adj"] == 5 and adj["new_adj"] == 1000 and adj["critical"] and adj["found_by"] == "resync"
    assert adj["writer"]["pid"] is None and adj["writer"]["unknown"].startswith("its event was lost")
    assert "unknown writer" in note["summary"] and "first choice" in note["summary"]
    # Every key the notification had before is still there.
    assert {"time", "pid", "process", "cmdline", "unit", "old_adj", "new_adj", "critical", "by_watchdog",
            "protected_to", "writer"} <= adj.keys()
    assert {"pid", "tid", "process", "cmdline", "unit", "uid", "exited"} <= adj["writer"].keys()
    found = rows(db, "SELECT * FROM adjustments WHERE pid = ? ORDER BY id", target.pid)
    assert [(r["new_adj"], r["severity"]) for r in found] == [(5, "critical"), (1000, "critical")]
    assert found[0]["old_adj"] in (0, None) and found[1]["old_adj"] == 5 and found[1]["writer_pid"] is None
    # how each was found is kept (migration 0009): its event, then the re-read after the loss
    assert [(r["found_by"], r["writer_unknown"]) for r in found] == [("tracepoint", None),
                                                                    ("resync", adj["writer"]["unknown"])]


@pytest.mark.realoom
def test_a_cgroup_kill_recorded_from_the_tracepoint_alone_is_not_called_unlogged(tmp_path, tracefs,
                                                                                  oom_cgroup):  # noqa: F811
    # kernel_log.source none: the tracepoint records the kill without its cgroup, so the
    # cgroup's oom_kill counter stayed above the kills recorded in it, and the cgroup check
    # raised a critical oom.unlogged ("the kernel log showed fewer kills there") for a kill on record.
    cg, kernel_path = oom_cgroup
    extra = f"cgroups:\n  interval: 1s\n  include: ['{kernel_path}']\n"
    db = tmp_path / "history.db"

    def baseline() -> list | None:
        found = rows(db, "SELECT cursor FROM cursors WHERE source = 'cgroups:oom_kill'") if db.exists() else []
        state = json.loads(found[0]["cursor"]) if found else {}
        return state.get("cgroups", {}).get(kernel_path)

    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, sink.url, tracefs, unique_instance(), "none", '["oom.kill"]', extra))
        try:
            daemon.wait_message("READY=1")
            assert wait_until(baseline), daemon.log_text()
            child = hog(cg, uuid.uuid4().hex)
            assert child.wait(timeout=60) == -9
            assert wait_until(lambda: rows(db, "SELECT * FROM kills WHERE pid = ?", child.pid))
            # A shortfall is settled on the check's second reading of it (state: counter and
            # recorded at the baseline, reported, suspect), in the transaction that would alert.
            settled = wait_until(lambda: (b := baseline()) is not None and b[2] >= 1 and b[3] == 0)
        finally:
            assert daemon.stop() == 0
    assert settled, daemon.log_text()
    assert not rows(db, "SELECT * FROM alerts WHERE kind = 'oom.unlogged' AND data LIKE ?", f'%{kernel_path}%'), \
        daemon.log_text()

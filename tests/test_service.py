"""The daemon as a real process: sd_notify, signals, reload, and kills fed through a FIFO."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import HttpSink

from watchdog_oom.notify.webhook import verify_signature

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
SECRET = "whsec_" + base64.b64encode(b"service-test-secret-0123456789ab").decode()
BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
CAP_SYS_RESOURCE = 24


def has_cap(bit: int) -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return False


class Daemon:
    """`python -m watchdog_oom run` with a NOTIFY_SOCKET the test listens on."""

    started: list[Daemon] = []  # reaped after each test, even a failed one

    def __init__(self, tmp: Path, config: str) -> None:
        Daemon.started.append(self)
        self.tmp = tmp
        self.config = tmp / "config.yaml"
        self.config.write_text(config)
        self.sock_path = str(tmp / f"notify-{time.monotonic_ns()}")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.messages: list[str] = []
        env = {**os.environ, "NOTIFY_SOCKET": self.sock_path, "PYTHONPATH": str(ROOT)}
        env.pop("WATCHDOG_OOM_CONFIG", None)
        self.log = open(tmp / "daemon.log", "ab")  # noqa: SIM115 (the daemon's stderr until stop() closes it)
        self.proc = subprocess.Popen([sys.executable, "-m", "watchdog_oom", "-c", str(self.config), "run",
                                      "--log-level", "debug"], env=env, stderr=self.log)

    def wait_message(self, word: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages:
                if word in m:
                    self.messages.remove(m)
                    return m
            try:
                self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                break
        raise AssertionError(f"no {word} from the daemon; log:\n{self.log_text()}")

    def log_text(self) -> str:
        return (self.tmp / "daemon.log").read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self.sock.close()
        self.log.close()
        return code


CAPTURE_LINES = len((DATA / "kmsg_6.18_memcg_v1_python3.kmsg").read_text().splitlines())


@pytest.fixture(autouse=True)
def reap_daemons():
    """No daemon outlives its test: a failed assertion must not leave one running."""
    yield
    while Daemon.started:
        daemon = Daemon.started.pop()
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(timeout=10)


def kmsg_records(first_seq: int, usec: int, pid: int, name: str = "python3") -> bytes:
    """The real 6.18 capture, renumbered so each use is a new kill."""
    lines = (DATA / "kmsg_6.18_memcg_v1_python3.kmsg").read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        head, msg = line.split(";", 1)
        prio, _seq, _usec, flags = head.split(",")[:4]
        msg = msg.replace("1772", str(pid)).replace("python3", name)
        out.append(f"{prio},{first_seq + i},{usec + i},{flags};{msg}")
    return ("\n".join(out) + "\n").encode()


def config_text(tmp: Path, fifo: Path, hook_url: str, extra: str = "") -> str:
    return f"""
host: test-host
database: sqlite:///{tmp}/history.db
kernel_log:
  source: kmsg
  path: {fifo}
  # The host's /proc/vmstat counts real kills of other programs (other suites' real OOM
  # tests): their oom.unlogged notifications would be counted as these tests' own.
  vmstat_check: false
commit:
  interval: 1s
processes:
  interval: 1s
notifications:
  group_wait: 0.2s
  retry_initial: 0.5s
  channels:
    - name: hook
      type: webhook
      url: {hook_url}
      secret: {SECRET}
      min_severity: info
      kinds: ["oom.*"]
{extra}
"""


def kills_in(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT pid, process, uid, constraint_, anon_rss_kb, task_memcg, invoker, cgroup_oom "
                            "FROM (SELECT *, \"constraint\" AS constraint_ FROM kills) ORDER BY id").fetchall()


def samples_in(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM samples WHERE host='test-host'").fetchone()[0]


def outbox_settled(db: Path, channel: str | None = None) -> bool:
    """Every notification queued so far (for `channel`) has had its outcome: none is waiting or being sent."""
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM notifications WHERE status IN ('pending', 'sending')"
                            " AND channel = coalesce(?, channel)", (channel,)).fetchone()[0] == 0


def wait_until(predicate, timeout: float = 60.0, step: float = 0.02):
    """`predicate()`'s first true value, polled until it comes; its last value after `timeout`
    seconds. The bound only matters when the product is broken: a loaded machine is slow."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "kmsg.fifo"
    os.mkfifo(path)
    return path


# What the daemon logs when the kernel-log thread did not store a kill as it read it: the
# source ended or failed and was reopened (a retry, a second or more later), a line failed
# to be handled, or the kill was held for the database and stored later.
NOT_AS_READ = re.compile(r"kernel log \S+ (ended|stopped)|kernel log: (reopened|unexpected failure)"
                         r"|failed to handle an event|held kill\(s\) are stored now")


def stored_as_read(daemon: Daemon) -> bool:
    """Whether the kernel-log thread stored what it read in its first reading (see NOT_AS_READ)."""
    return NOT_AS_READ.search(daemon.log_text()) is None


def test_daemon_records_a_kill_from_its_own_lines_and_notifies_once_across_restart(tmp_path, fifo):
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config_text(tmp_path, fifo, sink.url + "/hook"))
        writer = os.open(fifo, os.O_WRONLY)  # blocks until the daemon opened its end
        daemon.wait_message("READY=1")
        os.write(writer, kmsg_records(5000, 41355073, pid=1772))
        # The report's lines and nothing after them: the writer stays open (no end of the
        # log) and writes no later line, so the kill is stored by the kernel-log thread on
        # its own, at the quiet moment after the report, in the reading that read it.
        rows = wait_until(lambda: kills_in(tmp_path / "history.db"))
        assert rows == [(1772, "python3", 0, "CONSTRAINT_MEMCG", 65152,
                         "/process_api/f1e9a1faa6d3eccf0ba6c3ef6fa3b313/wdtest1", "python3", 1)]
        assert stored_as_read(daemon), daemon.log_text()
        (request,) = sink.wait_for(1)
        assert verify_signature(SECRET, request.headers, request.body)
        body = json.loads(request.body)
        assert body["type"] == "oom.kill" and body["data"]["kills"][0]["pid"] == 1772
        os.close(writer)
        assert daemon.stop() == 0

        # Restart: the same records again (the kernel buffer still holds them) and a new kill.
        daemon = Daemon(tmp_path, config_text(tmp_path, fifo, sink.url + "/hook"))
        writer = os.open(fifo, os.O_WRONLY)
        daemon.wait_message("READY=1")
        os.write(writer, kmsg_records(5000, 41355073, pid=1772) + kmsg_records(6000, 51355073, pid=2001))
        assert wait_until(lambda: len(kills_in(tmp_path / "history.db")) == 2)
        requests = sink.wait_for(2)
        assert wait_until(lambda: outbox_settled(tmp_path / "history.db"))
        os.close(writer)
        assert daemon.stop() == 0
    assert [r[0] for r in kills_in(tmp_path / "history.db")] == [1772, 2001]
    assert len(sink.requests) == 2, "the restart repeated a notification"
    assert json.loads(requests[1].body)["data"]["kills"][0]["pid"] == 2001


def open_files(pid: int, path: Path) -> int:
    """How many file descriptors process `pid` has open on `path`."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(fd) == str(path)
    return count


def test_the_daemons_threads_share_one_sqlite_connection(tmp_path, fifo):
    # Every connection keeps its own parsed schema, prepared statements and page cache;
    # SQLite lets one writer in at a time anyway. Here the kernel-log thread stores a kill,
    # the sender records its delivery, the scheduler's checks store a sample a second and
    # the database watch reads: each SQLite connection holds the file open once.
    db = tmp_path / "history.db"
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config_text(tmp_path, fifo, sink.url + "/hook"))
        writer = os.open(fifo, os.O_WRONLY)
        daemon.wait_message("READY=1")
        os.write(writer, kmsg_records(5000, 41355073, pid=1772))
        sink.wait_for(1)
        assert wait_until(lambda: outbox_settled(db))
        samples = samples_in(db)
        assert wait_until(lambda: samples_in(db) > samples + 1)
        assert open_files(daemon.proc.pid, db) == 1
        os.close(writer)
        assert daemon.stop() == 0
    assert [r[0] for r in kills_in(db)] == [1772]


def test_sd_notify_signals_and_reload(tmp_path, fifo):
    with HttpSink() as sink:
        good = config_text(tmp_path, fifo, sink.url)
        daemon = Daemon(tmp_path, good)
        writer = os.open(fifo, os.O_WRONLY)
        daemon.wait_message("READY=1")
        adj = int(Path(f"/proc/{daemon.proc.pid}/oom_score_adj").read_text())
        if has_cap(CAP_SYS_RESOURCE):
            assert adj == -900
        else:
            assert "oom_score_adj" in daemon.log_text()  # said why it could not lower it

        # Wrong values, a control character YAML refuses, bytes that are not UTF-8, no file:
        # each is refused with the file and line, and the daemon goes on with the old config.
        bad = [good.replace("interval: 1s", "interval: ten seconds", 1).encode(),
               good.replace("host: test-host", "host: bad\x01name").encode(),
               good.replace("host: test-host", "host: bad\xffname").encode().replace(b"\xc3\xbf", b"\xff"),
               None]
        for count, text in enumerate(bad, 1):
            if text is None:
                daemon.config.unlink()
            else:
                daemon.config.write_bytes(text)
            daemon.proc.send_signal(signal.SIGHUP)
            assert wait_until(lambda n=count: daemon.log_text().count("new configuration is refused") == n)
            assert daemon.proc.poll() is None, "a bad config on SIGHUP stopped the daemon"
        assert f"{daemon.config} line 2: not valid YAML: the character U+0001" in daemon.log_text()
        assert f"{daemon.config} line 2: not UTF-8 text" in daemon.log_text()
        assert f"{daemon.config}: cannot read the configuration: No such file or directory" in daemon.log_text()

        daemon.config.write_text(good.replace("interval: 1s", "interval: 2s", 1))
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_message("RELOADING=1")
        assert wait_until(lambda: "configuration reloaded" in daemon.log_text())
        # After the reload a kill is still recorded and notified: the reload's new senders wait,
        # running no query, until the kill's transaction rings the doorbell.
        os.write(writer, kmsg_records(5000, 41355073, pid=1772))
        assert wait_until(lambda: [r[0] for r in kills_in(tmp_path / "history.db")] == [1772])
        assert wait_until(lambda: any(json.loads(r.body)["data"].get("kills", [{}])[0].get("pid") == 1772
                                      for r in sink.requests))
        os.close(writer)
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.wait_message("STOPPING=1")
        assert daemon.stop() == 0
    assert "Traceback" not in daemon.log_text()


def test_sigint_stops_cleanly_and_samples_are_stored(tmp_path, fifo):
    daemon = Daemon(tmp_path, config_text(tmp_path, fifo, "http://127.0.0.1:9/unused"))
    writer = os.open(fifo, os.O_WRONLY)
    daemon.wait_message("READY=1")
    assert wait_until(lambda: samples_in(tmp_path / "history.db") >= 1)
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.proc.wait(timeout=20) == 0
    os.close(writer)
    daemon.stop()
    assert samples_in(tmp_path / "history.db") >= 1


def test_bad_config_exits_2_naming_the_key(tmp_path):
    (tmp_path / "bad.yaml").write_text("commit:\n  warn_percnt: 80\n")
    proc = subprocess.run([sys.executable, "-m", "watchdog_oom", "-c", str(tmp_path / "bad.yaml"), "run"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 2
    assert "warn_percnt" in proc.stderr and "warn_percent" in proc.stderr


def test_kill_during_an_outage_is_delivered_once_after_restart_with_one_webhook_id(tmp_path, fifo):
    with HttpSink([(503, {}, "down")] * 3) as sink:
        # Only kills reach the hook: real OOM kills elsewhere on the machine (other tests'
        # cgroups) would raise oom.unlogged from /proc/vmstat and take one of the 503s.
        config = config_text(tmp_path, fifo, sink.url + "/hook").replace('kinds: ["oom.*"]', 'kinds: ["oom.kill"]')
        daemon = Daemon(tmp_path, config)
        writer = os.open(fifo, os.O_WRONLY)
        daemon.wait_message("READY=1")
        os.write(writer, kmsg_records(7000, 61355073, pid=3003))
        sink.wait_for(1)  # the first attempt met the outage
        os.close(writer)
        assert daemon.stop() == 0
        with sqlite3.connect(tmp_path / "history.db") as conn:
            status, attempts = conn.execute("SELECT status, attempts FROM notifications").fetchone()
        assert status == "pending" and attempts >= 1

        daemon = Daemon(tmp_path, config)
        writer = os.open(fifo, os.O_WRONLY)
        daemon.wait_message("READY=1")
        # Retries wait 0.5 s, doubling, with jitter; the endpoint recovers after three 503s.
        assert wait_until(lambda: any(r for r in sink.requests[3:])), daemon.log_text()
        assert wait_until(lambda: outbox_settled(tmp_path / "history.db"))
        os.close(writer)
        assert daemon.stop() == 0
        requests = sink.requests
    assert len(requests) == 4, [r.headers.get("webhook-id") for r in requests]
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert verify_signature(SECRET, requests[-1].headers, requests[-1].body)
    with sqlite3.connect(tmp_path / "history.db") as conn:
        assert conn.execute("SELECT status, attempts FROM notifications").fetchall() == [("sent", 4)]


def chat_groups(db: Path) -> list[tuple[str, int]]:
    """The Slack channel's notification rows: (status, kills counted), oldest first."""
    with sqlite3.connect(db) as conn:
        return [(status, json.loads(data)["count"]) for status, data in conn.execute(
            "SELECT status, data FROM notifications WHERE channel='chat' ORDER BY id")]


def test_hostile_process_name_reaches_slack_escaped_and_a_burst_is_grouped(tmp_path, fifo):
    with HttpSink() as slack:
        cfg = config_text(tmp_path, fifo, "http://127.0.0.1:9/unused").replace("group_wait: 0.2s",
                                                                               "group_wait: 1s")
        cfg += f"""    - name: chat
      type: slack
      webhook_url: {slack.url}/services/T0/B0/secret
      min_severity: warning
      kinds: ["oom.kill"]
"""
        daemon = Daemon(tmp_path, cfg)
        writer = os.open(fifo, os.O_WRONLY)
        daemon.wait_message("READY=1")
        burst = b"".join(kmsg_records(10_000 + CAPTURE_LINES * i, 71355073 + 1000 * i, pid=4000 + i,
                                      name="<!channel>" if i == 0 else "worker")
                         for i in range(100))
        os.write(writer, burst)
        db = tmp_path / "history.db"
        assert wait_until(lambda: len(kills_in(db)) == 100, timeout=60), daemon.log_text()
        # Grouped: the burst's later kills join rows that wait out group_wait before sending.
        assert wait_until(lambda: outbox_settled(db, "chat"), timeout=60), chat_groups(db)
        groups = chat_groups(db)
        slack.wait_for(len(groups))
        os.close(writer)
        assert daemon.stop() == 0
        requests = slack.requests
    # Every kill counted once, one message per group, none lost or repeated. How many groups
    # a burst makes depends on how fast the kills are stored: a kill joins the group still
    # collecting when it is stored, so a loaded machine that takes several group_waits to
    # store 100 kills rightly sends several messages (the grouping rule itself is tested
    # with a clock in test_dispatch).
    assert sum(count for _, count in groups) == 100 and all(status == "sent" for status, _ in groups), groups
    assert len(requests) == len(groups) < 100, f"the burst was not grouped: {groups}"
    assert groups[0][1] > 1, f"the first group collected no other kill: {groups}"
    bodies = [r.body.decode() for r in requests]
    assert not any("<!channel>" in b for b in bodies)
    assert any("&lt;!channel&gt;" in b for b in bodies)


def test_watchdog_pings_while_checks_run(tmp_path, fifo):
    daemon_env = os.environ.copy()
    os.environ["WATCHDOG_USEC"] = "2000000"
    try:
        daemon = Daemon(tmp_path, config_text(tmp_path, fifo, "http://127.0.0.1:9/unused"))
    finally:
        os.environ.clear()
        os.environ.update(daemon_env)
    writer = os.open(fifo, os.O_WRONLY)
    daemon.wait_message("READY=1")
    daemon.wait_message("WATCHDOG=1")
    os.close(writer)
    assert daemon.stop() == 0


def test_unusable_database_stops_the_daemon_with_a_clear_error(tmp_path):
    (tmp_path / "c.yaml").write_text("database: postgresql+nosuchdriver://u@127.0.0.1/x\nkernel_log: {source: none}\n")
    proc = subprocess.run([sys.executable, "-m", "watchdog_oom", "-c", str(tmp_path / "c.yaml"), "run"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 1
    assert "database" in proc.stderr and "Traceback" not in proc.stderr


def test_first_start_records_old_kills_with_one_summary(tmp_path):
    old = tmp_path / "kmsg-buffer"
    old.write_bytes(b"".join(kmsg_records(100 + CAPTURE_LINES * i, 1_000_000 + 1000 * i, pid=500 + i)
                             for i in range(3)))
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config_text(tmp_path, old, sink.url))
        daemon.wait_message("READY=1")
        assert wait_until(lambda: len(kills_in(tmp_path / "history.db")) == 3)
        (request,) = sink.wait_for(1)
        assert wait_until(lambda: outbox_settled(tmp_path / "history.db"))
        assert daemon.stop() == 0
        assert len(sink.requests) == 1
    body = json.loads(request.body)
    assert body["data"]["backlog"] is True and body["data"]["count"] == 3
    assert "found 3 earlier OOM kills" in body["summary"]


def test_the_catch_up_log_line_counts_the_kills_it_recorded(tmp_path):
    buffer = tmp_path / "kmsg-buffer"
    buffer.write_bytes(b"".join(kmsg_records(100 + CAPTURE_LINES * i, 1_000_000 + 1000 * i, pid=500 + i)
                                for i in range(3)))
    daemon = Daemon(tmp_path, config_text(tmp_path, buffer, "http://127.0.0.1:9/unused"))
    daemon.wait_message("READY=1")
    assert wait_until(lambda: "caught up, 3 earlier kills recorded (one summary" in daemon.log_text())
    assert daemon.stop() == 0
    # Two kills while it was down: a restart (not a first start) catches up on those two.
    with buffer.open("ab") as f:
        f.write(b"".join(kmsg_records(100 + CAPTURE_LINES * i, 1_000_000 + 1000 * i, pid=500 + i)
                         for i in range(3, 5)))
    (tmp_path / "daemon.log").write_bytes(b"")
    daemon = Daemon(tmp_path, config_text(tmp_path, buffer, "http://127.0.0.1:9/unused"))
    daemon.wait_message("READY=1")
    assert wait_until(lambda: "caught up, 2 earlier kills recorded" in daemon.log_text()), \
        daemon.log_text()
    assert daemon.stop() == 0
    assert len(kills_in(tmp_path / "history.db")) == 5


def test_heartbeat_pings_the_dead_mans_switch(tmp_path, fifo):
    with HttpSink() as switch:
        cfg = config_text(tmp_path, fifo, "http://127.0.0.1:9/unused").replace(
            "notifications:\n", f"notifications:\n  heartbeat:\n    url: {switch.url}/ping/abc123\n    interval: 1s\n")
        daemon = Daemon(tmp_path, cfg)
        writer = os.open(fifo, os.O_WRONLY)
        daemon.wait_message("READY=1")
        pings = switch.wait_for(2)
        os.close(writer)
        assert daemon.stop() == 0
    assert all(p.path == "/ping/abc123" for p in pings)


def test_metrics_are_served_while_the_daemon_runs(tmp_path, fifo):
    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = config_text(tmp_path, fifo, "http://127.0.0.1:9/unused") + f"metrics:\n  listen: 127.0.0.1:{port}\n"
    daemon = Daemon(tmp_path, cfg)
    writer = os.open(fifo, os.O_WRONLY)
    daemon.wait_message("READY=1")
    os.write(writer, kmsg_records(9000, 91355073, pid=6006))
    assert wait_until(lambda: kills_in(tmp_path / "history.db"))
    body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=60).text
    os.close(writer)
    assert daemon.stop() == 0
    assert "watchdog_oom_commit_percent " in body
    assert 'watchdog_oom_kills_total{constraint="CONSTRAINT_MEMCG",killer="kernel"} 1.0' in body
    assert "watchdog_oom_up 1.0" in body


def test_a_metrics_address_taken_is_one_line_and_exit_1(tmp_path, fifo):
    # Another process holds the port: the daemon says so in one line, without a traceback.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = config_text(tmp_path, fifo, "http://127.0.0.1:9/unused") + f"metrics:\n  listen: 127.0.0.1:{port}\n"
        daemon = Daemon(tmp_path, cfg)
        writer = os.open(fifo, os.O_WRONLY)
        code = daemon.proc.wait(timeout=30)
        os.close(writer)
        daemon.stop()
    said = daemon.log_text()
    assert code == 1, said
    assert f"metrics.listen 127.0.0.1:{port}: cannot listen there (Address already in use)" in said
    assert "Traceback" not in said


FAKE_JOURNALCTL = r'''#!/usr/bin/env python3
import json, os, sys, time
if "--lines=1" in sys.argv:  # the question for the newest entry: none yet
    sys.exit(0)
state = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs")
runs = int(open(state).read()) if os.path.exists(state) else 0
open(state, "w").write(str(runs + 1))
def entry(n, msg):
    return json.dumps({"__CURSOR": f"c{n}", "MESSAGE": msg, "_TRANSPORT": "kernel", "PRIORITY": "3",
                       "__REALTIME_TIMESTAMP": str(int(time.time() * 1e6)), "_SOURCE_MONOTONIC_TIMESTAMP": str(n)})
if runs == 0:
    print(entry(1, "hello"), flush=True)
    print("Failed to get journal fd: Too many open files", file=sys.stderr)
    sys.exit(1)
print(entry(2, "Out of memory: Killed process 4321 (java) total-vm:100kB, anon-rss:50kB, file-rss:0kB, "
               "shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0"), flush=True)
time.sleep(60)
'''


def test_a_failed_kernel_log_is_alerted_reopened_and_resolved(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "journalctl"
    fake.write_text(FAKE_JOURNALCTL)
    fake.chmod(0o755)
    with HttpSink() as sink:
        cfg = f"""
database: sqlite:///{tmp_path}/history.db
kernel_log: {{source: journal}}
notifications:
  group_wait: 0s
  channels:
    - name: hook
      type: webhook
      url: {sink.url}
      min_severity: info
"""
        path = os.environ["PATH"]
        os.environ["PATH"] = f"{bin_dir}:{path}"
        try:
            daemon = Daemon(tmp_path, cfg)
        finally:
            os.environ["PATH"] = path
        daemon.wait_message("READY=1")
        assert wait_until(lambda: len(kills_in(tmp_path / "history.db")) == 1), daemon.log_text()
        types = wait_until(lambda: {json.loads(r.body)["type"] for r in sink.requests} >=
                           {"kernel_log.down", "kernel_log.resolved", "oom.kill"} and
                           [json.loads(r.body)["type"] for r in sink.requests])
        assert daemon.stop() == 0
    assert types.index("kernel_log.down") < types.index("kernel_log.resolved")
    assert "Too many open files" in daemon.log_text()


def test_the_daemon_does_not_load_an_http_client_before_it_needs_one():
    # requests and the codecs it pulls in cost about 7 MB of the daemon's small budget.
    code = "import sys, watchdog_oom.daemon; print('requests' in sys.modules, 'prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    assert out == ["False", "False"]

"""The real daemon against bad luck and attackers: a database deleted, corrupted, full or locked
under it, a log file that does not exist, a burst, and hostile lines between good kills.

Each test follows a real syslog file, keeps its history in a real SQLite file and tells a
real local HTTP endpoint; each asserts that nothing is lost, nothing is doubled, and that
someone was told.
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from pgserver import free_port
from servers import HttpSink
from test_cli_options import read_only_dir  # noqa: F401 (a fixture)
from test_service import Daemon, reap_daemons, wait_until  # noqa: F401 (reap_daemons: autouse fixture)


def kill_line(pid: int, name: str = "worker", when: float | None = None) -> str:
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(when if when is not None else time.time()))
    return (f"{stamp} web-01 kernel: [{pid}.000000] Out of memory: Killed process {pid} ({name}) "
            f"total-vm:1579488kB, anon-rss:1048132kB, file-rss:12kB, shmem-rss:0kB, UID:1000 pgtables:2100kB "
            f"oom_score_adj:0\n")


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as file:
        file.write(text.encode() if isinstance(text, str) else text)


def config(tmp: Path, log: Path, hook: str, db: Path | None = None, extra: str = "", url: str | None = None) -> str:
    return f"""
host: web-01
database: {url or f"sqlite:///{db or tmp / 'history.db'}"}
kernel_log: {{source: file, path: {log}}}
commit: {{interval: 1s}}
notifications:
  group_wait: 0.2s
  retry_initial: 0.5s
  channels:
    - {{name: hook, type: webhook, url: "{hook}", min_severity: info}}
{extra}
"""


def pids_in(db: Path) -> list[int]:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return [r[0] for r in conn.execute("SELECT pid FROM kills ORDER BY pid")]
    except sqlite3.Error:
        return []


def bodies(sink: HttpSink, kind: str | None = None) -> list[dict]:
    found = [r.json() for r in sink.requests]
    return [b for b in found if kind is None or b["type"] == kind]


def notified_pids(sink: HttpSink) -> list[int]:
    """Every pid any oom.kill notification named (a first start's summary included)."""
    return sorted(k["pid"] for b in bodies(sink, "oom.kill") for k in b["data"]["kills"])


def notified_count(sink: HttpSink) -> int:
    """How many kills the oom.kill notifications told of (a group lists 50 and counts the rest)."""
    return sum(b["data"]["count"] for b in bodies(sink, "oom.kill"))


def wait_for_kind(sink: HttpSink, kind: str, n: int = 1, timeout: float = 30) -> list[dict]:
    assert wait_until(lambda: len(bodies(sink, kind)) >= n, timeout=timeout), \
        f"no {kind}; got {[b['type'] for b in bodies(sink)]}"
    return bodies(sink, kind)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "kern.log"
    path.write_text("")
    return path


def test_a_database_deleted_under_the_daemon_is_written_back_and_nothing_is_read_twice(tmp_path, log):
    db = tmp_path / "history.db"
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url))
        daemon.wait_message("READY=1")
        append(log, "".join(kill_line(p) for p in (101, 102, 103)))
        assert wait_until(lambda: pids_in(db) == [101, 102, 103])
        wait_until(lambda: notified_pids(sink) == [101, 102, 103])
        os.unlink(db)
        down = wait_for_kind(sink, "database.down")
        assert down[0]["severity"] == "critical" and "deleted" in down[0]["summary"]
        wait_for_kind(sink, "database.resolved")
        append(log, kill_line(104))
        assert wait_until(lambda: pids_in(db) == [101, 102, 103, 104]), daemon.log_text()
        assert wait_until(lambda: notified_pids(sink) == [101, 102, 103, 104])
        assert daemon.stop() == 0
        # A restart reads on from where it was: nothing read or notified twice.
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url))
        daemon.wait_message("READY=1")
        append(log, kill_line(105))
        assert wait_until(lambda: pids_in(db) == [101, 102, 103, 104, 105])
        assert wait_until(lambda: notified_pids(sink) == [101, 102, 103, 104, 105])
        assert daemon.stop() == 0
    assert notified_pids(sink) == [101, 102, 103, 104, 105]


def test_a_corrupted_database_is_moved_aside_whole_and_a_new_one_resumes_the_log(tmp_path, log):
    db = tmp_path / "history.db"
    first = list(range(1000, 1300))
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url))
        daemon.wait_message("READY=1")
        append(log, "".join(kill_line(p, "x" * 200) for p in first))
        assert wait_until(lambda: len(pids_in(db)) == len(first), timeout=30), daemon.log_text()[-2000:]
        assert wait_until(lambda: notified_count(sink) == len(first))
        assert daemon.stop() == 0
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.stat().st_size
        with open(db, "r+b") as file:  # bytes written over a page in its middle
            file.seek(size // 2 // 4096 * 4096)
            file.write(b"\xde\xad\xbe\xef" * 1024)
        damaged = db.read_bytes()
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url))
        daemon.wait_message("READY=1")
        (down,) = wait_for_kind(sink, "database.down")
        assert "damaged" in down["summary"] and "moved aside" in down["summary"]
        wait_for_kind(sink, "database.resolved")
        append(log, kill_line(2000))
        assert wait_until(lambda: pids_in(db) == [2000]), daemon.log_text()
        assert wait_until(lambda: notified_count(sink) == len(first) + 1)
        assert daemon.stop() == 0
    (aside,) = tmp_path.glob("history.db.corrupt-*[0-9]Z")
    assert aside.read_bytes() == damaged  # kept as it was, never overwritten
    assert notified_count(sink) == len(first) + 1  # the old kills were not notified again


def test_a_full_file_system_holds_the_kills_tells_directly_and_stores_them_once_there_is_room(tmp_path, log):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs of our own needs root")
    try:
        db = mnt / "history.db"
        with HttpSink() as sink:
            daemon = Daemon(tmp_path, config(tmp_path, log, sink.url, db=db))
            daemon.wait_message("READY=1")
            append(log, kill_line(301))
            assert wait_until(lambda: pids_in(db) == [301])
            filler = mnt / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)  # until full
            append(log, "".join(kill_line(p, "y" * 200) for p in range(302, 402)))
            down = wait_for_kind(sink, "database.down")
            assert "full" in down[0]["summary"]
            filler.unlink()
            wait_for_kind(sink, "database.resolved", timeout=40)
            assert wait_until(lambda: pids_in(db) == list(range(301, 402)), timeout=30), daemon.log_text()
            assert wait_until(lambda: notified_count(sink) == 101, timeout=30)
            assert daemon.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_a_database_locked_by_another_process_holds_the_kills_until_it_is_free(tmp_path, log):
    db = tmp_path / "history.db"
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url))
        daemon.wait_message("READY=1")
        append(log, kill_line(501))
        assert wait_until(lambda: pids_in(db) == [501])
        holder = subprocess.Popen([sys.executable, "-c", (
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            append(log, kill_line(502) + kill_line(503))
            down = wait_for_kind(sink, "database.down", timeout=40)  # after SQLite's busy_timeout (10 s)
            assert "locked" in down[0]["summary"]
        finally:
            holder.stdin.close()
            holder.wait(timeout=10)
        wait_for_kind(sink, "database.resolved", timeout=30)
        assert wait_until(lambda: pids_in(db) == [501, 502, 503])
        assert wait_until(lambda: notified_pids(sink) == [501, 502, 503])
        assert daemon.stop() == 0


def pg_rows(url: str, query: str) -> list[tuple] | None:
    """The rows of a query on the server, None while it is down."""
    import psycopg

    try:
        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=5) as conn:
            return conn.execute(query).fetchall()
    except psycopg.Error:
        return None


def metric(address: str, name: str) -> float | None:
    """One gauge of the daemon's /metrics (None while it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")), None)


def test_postgresql_stopped_under_the_daemon_holds_the_kills_and_stores_each_once_when_back(tmp_path, log, own_pg):
    pids = "SELECT pid FROM kills ORDER BY pid"
    metrics = f"127.0.0.1:{free_port()}"
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url, url=own_pg.url,
                                         extra=f"metrics: {{listen: '{metrics}'}}"))
        daemon.wait_message("READY=1")
        append(log, "".join(kill_line(p) for p in (101, 102, 103)))
        assert wait_until(lambda: pg_rows(own_pg.url, pids) == [(101,), (102,), (103,)]), \
            daemon.log_text()[-3000:]
        assert wait_until(lambda: notified_pids(sink) == [101, 102, 103])
        own_pg.stop()  # the fleet's database goes away, its connections cut
        append(log, "".join(kill_line(p) for p in (104, 105, 106)))
        (down,) = wait_for_kind(sink, "database.down")  # straight through the channel: no outbox now
        assert down["severity"] == "critical" and "unreachable" in down["summary"], down
        assert wait_until(lambda: metric(metrics, "watchdog_oom_kills_held") == 3), \
            daemon.log_text()[-3000:]
        # The checks go on running (so systemd's watchdog is fed, see test_service_checks), and
        # say once, in a line, that the database refuses their results: no traceback a second.
        checked = metric(metrics, "watchdog_oom_last_check_timestamp_seconds")
        assert wait_until(lambda: metric(metrics, "watchdog_oom_last_check_timestamp_seconds") >= checked + 2)
        assert daemon.log_text().count("memory: the history database refuses this job's results") == 1
        assert notified_pids(sink) == [101, 102, 103]
        own_pg.start()
        wait_for_kind(sink, "database.resolved", timeout=30)
        assert wait_until(lambda: pg_rows(own_pg.url, pids) == [(p,) for p in range(101, 107)], timeout=30), \
            daemon.log_text()[-3000:]
        assert wait_until(lambda: notified_pids(sink) == list(range(101, 107)), timeout=30)
        assert metric(metrics, "watchdog_oom_kills_held") == 0
        append(log, kill_line(107))  # and on it goes
        assert wait_until(lambda: pg_rows(own_pg.url, pids) == [(p,) for p in range(101, 108)])
        assert wait_until(lambda: notified_pids(sink) == list(range(101, 108)))
        assert daemon.stop() == 0
    assert notified_pids(sink) == list(range(101, 108))  # each kill told once
    assert len(bodies(sink, "database.down")) == 1 and len(bodies(sink, "database.resolved")) == 1
    text = daemon.log_text()
    assert "Traceback" not in text, text[text.index("Traceback") - 300:][:3000]
    assert "alembic_version" not in text  # a new, empty database is no error


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=60) as answer:
        return answer.read().decode()


def test_a_daemon_started_while_postgresql_is_down_runs_alerts_and_starts_reading_once_it_is_back(
        tmp_path, log, own_pg):
    from watchdog_oom.store import SCHEMA_HEAD

    pids = "SELECT pid FROM kills ORDER BY pid"
    metrics = f"127.0.0.1:{free_port()}"
    append(log, "".join(kill_line(p) for p in (201, 202)))  # before the start: the backlog
    own_pg.stop()
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url, url=own_pg.url,
                                         extra=f"metrics: {{listen: '{metrics}'}}"))
        ready = daemon.wait_message("READY=1")  # started, not exited 1 for systemd to restart
        assert "STATUS=history database down (unreachable)" in ready, ready
        (down,) = wait_for_kind(sink, "database.down")  # straight through the channel: no outbox now
        assert down["severity"] == "critical" and "cannot be reached at start" in down["summary"], down
        assert 'watchdog_oom_database_down{kind="unreachable"} 1.0' in scrape(metrics)
        checked = metric(metrics, "watchdog_oom_last_check_timestamp_seconds")  # the checks run
        assert wait_until(lambda: metric(metrics, "watchdog_oom_last_check_timestamp_seconds") >= checked + 2)
        append(log, kill_line(203))  # a kill during the outage: held in memory
        assert wait_until(lambda: metric(metrics, "watchdog_oom_kills_held") == 1), \
            daemon.log_text()[-3000:]
        assert daemon.proc.poll() is None and notified_pids(sink) == []
        own_pg.start()
        (up,) = wait_for_kind(sink, "database.resolved", timeout=30)
        assert "the history database answers" in up["summary"], up
        # Migrated once it could be, then the log read from its start (no cursor: a first start).
        assert pg_rows(own_pg.url, "SELECT version_num FROM alembic_version") == [(SCHEMA_HEAD,)]
        assert wait_until(lambda: pg_rows(own_pg.url, pids) == [(201,), (202,), (203,)], timeout=30), \
            daemon.log_text()[-3000:]
        assert wait_until(lambda: notified_pids(sink) == [201, 202, 203], timeout=30)
        assert 'watchdog_oom_database_down{kind=""} 0.0' in scrape(metrics)
        append(log, kill_line(204))  # and on it goes
        assert wait_until(lambda: pg_rows(own_pg.url, pids) == [(p,) for p in range(201, 205)])
        assert wait_until(lambda: notified_pids(sink) == [201, 202, 203, 204])
        # The checks' results are stored again (they were skipped while the start waited).
        assert wait_until(lambda: pg_rows(own_pg.url, "SELECT count(*) FROM samples") != [(0,)])
        assert daemon.stop() == 0
    assert len(bodies(sink, "database.down")) == 1 and len(bodies(sink, "database.resolved")) == 1
    text = daemon.log_text()
    assert "Traceback" not in text, text[text.index("Traceback") - 300:][:3000]
    assert text.count("metrics: the history database does not answer") <= 1
    # database.down said the outage once: the jobs and the outbox did not say it again.
    assert "refuses this job's results" not in text and "the outbox waits" not in text, text[-3000:]


def test_a_restart_while_postgresql_is_down_holds_new_kills_and_reads_on_from_the_stored_cursor(
        tmp_path, log, own_pg):
    pids = "SELECT pid FROM kills ORDER BY pid"
    metrics = f"127.0.0.1:{free_port()}"
    cfg = config(tmp_path, log, "{hook}", url=own_pg.url, extra=f"metrics: {{listen: '{metrics}'}}")
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, cfg.replace("{hook}", sink.url))
        daemon.wait_message("READY=1")
        append(log, "".join(kill_line(p) for p in (301, 302)))
        assert wait_until(lambda: notified_pids(sink) == [301, 302]), daemon.log_text()[-3000:]
        assert daemon.stop() == 0
        append(log, kill_line(303))  # while no daemon runs: after the stored cursor
        own_pg.stop()
        daemon = Daemon(tmp_path, cfg.replace("{hook}", sink.url))
        daemon.wait_message("READY=1")
        wait_for_kind(sink, "database.down")
        # The log is read on from its end meanwhile, once the follower has caught up (after
        # READY=1 and database.down): a line before that is backlog, read from the stored
        # cursor once the database answers, not held.
        assert wait_until(lambda: "caught up; its backlog is read from the stored cursor" in daemon.log_text())
        append(log, kill_line(304))  # during the outage: held in memory (303, read before, is not)
        assert wait_until(lambda: metric(metrics, "watchdog_oom_kills_held") == 1), \
            daemon.log_text()[-3000:]
        own_pg.start()
        wait_for_kind(sink, "database.resolved", timeout=30)
        assert wait_until(lambda: pg_rows(own_pg.url, pids) == [(p,) for p in range(301, 305)], timeout=30), \
            daemon.log_text()[-3000:]
        assert wait_until(lambda: notified_pids(sink) == [301, 302, 303, 304], timeout=30)
        append(log, kill_line(305))
        assert wait_until(lambda: notified_pids(sink) == [301, 302, 303, 304, 305])
        assert metric(metrics, "watchdog_oom_kills_held") == 0
        assert daemon.stop() == 0
    # Each kill stored and told once: the ones before the stored cursor were not read as new,
    # the held one was not stored again when the log was read on from that cursor.
    assert pg_rows(own_pg.url, pids) == [(p,) for p in range(301, 306)]
    assert notified_pids(sink) == [301, 302, 303, 304, 305]
    assert not any(b["data"].get("backlog") for b in bodies(sink, "oom.kill"))  # no first-start summary
    assert len(bodies(sink, "database.down")) == 1 and len(bodies(sink, "database.resolved")) == 1
    text = daemon.log_text()
    assert "Traceback" not in text, text[text.index("Traceback") - 300:][:3000]


def _run_to_its_end(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """`watchdog-oom run` on this config as a process of its own, for a start expected to end."""
    (tmp_path / "config.yaml").write_text(text)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    env.pop("WATCHDOG_OOM_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "watchdog_oom", "-c", str(tmp_path / "config.yaml"), "run"],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(params=["under a file", "read-only mount"])
def unopenable(request, tmp_path: Path) -> Path:
    """A SQLite path that can never be opened: below a regular file, or on a read-only mount."""
    if request.param == "under a file":
        (tmp_path / "plain").write_text("")
        return tmp_path / "plain" / "history.db"
    return request.getfixturevalue("read_only_dir") / "history.db"


def test_a_sqlite_database_that_can_never_open_ends_the_start_with_one_line(tmp_path, log, unopenable):
    with HttpSink() as sink:
        proc = _run_to_its_end(tmp_path, config(tmp_path, log, sink.url, db=unopenable))
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"watchdog-oom run: the history database {unopenable}"), proc.stderr
    assert "Traceback" not in proc.stderr and "database.down" not in proc.stderr, proc.stderr
    if unopenable.parent.is_file():  # says which part of the path is in the way
        assert f"{unopenable.parent} is not a directory" in last, last
    assert sink.requests == []  # not waited for: nothing to tell of a daemon that never ran


def test_a_postgresql_database_that_does_not_exist_is_not_waited_for(tmp_path, log, own_pg):
    # The server answers and says no: waiting would not change that (unlike a server that is down).
    missing = own_pg.url.rsplit("/", 1)[0] + "/no_such_database"
    proc = _run_to_its_end(tmp_path, config(tmp_path, log, "http://127.0.0.1:9/hook", url=missing))
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("watchdog-oom run: the history database postgresql at 127.0.0.1:"), proc.stderr
    assert "no_such_database" in last and "does not exist" in last, last
    assert "Traceback" not in proc.stderr and "database.down" not in proc.stderr, proc.stderr


def test_a_log_file_that_does_not_exist_is_warned_alerted_and_read_once_it_appears(tmp_path):
    log = tmp_path / "not-yet" / "kern.log"
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url))
        daemon.wait_message("READY=1")
        assert "does not exist" in daemon.log_text()
        (down,) = wait_for_kind(sink, "kernel_log.down", timeout=30)
        assert str(log) in down["summary"]
        log.parent.mkdir()
        log.write_text(kill_line(601))
        assert wait_until(lambda: pids_in(tmp_path / "history.db") == [601])
        wait_for_kind(sink, "kernel_log.resolved", timeout=20)
        assert daemon.stop() == 0


def adversarial_lines(rng: random.Random) -> list[bytes]:
    """Lines a local user can write with `logger -t kernel`, or a corrupted log holds."""
    stamp = time.strftime("%b %d %H:%M:%S").encode()
    head = stamp + b" web-01 kernel: "
    return [
        head + b"Out of memory: Killed process 1180591620717411303424 (x) total-vm:1kB, anon-rss:1kB, "
               b"file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:0kB oom_score_adj:0",
        head + b"Out of memory: Killed process 7 (y) total-vm:99999999999999999999999999kB, anon-rss:"
               b"18446744073709551616kB, file-rss:0kB, shmem-rss:0kB, UID:99999999999999 pgtables:0kB "
               b"oom_score_adj:-99999",
        head + b"Out of memory: Killed process 8 (" + b"A" * (1024 * 1024) + b") total-vm:1kB, anon-rss:1kB",
        head + b"Killed process 9 (evil#012Jan  1 00:00:00 web-01 kernel: Out of memory: Killed process 10 (z)) "
               b"total-vm:1kB, anon-rss:1kB, file-rss:0kB",
        head + b"Out of memory: Killed process 11 (a(b)c) (d)) total-vm:1kB, anon-rss:1kB, file-rss:0kB",
        head + b"Out of memory: Killed process 12 (nul\x00name) total-vm:1kB, anon-rss:1kB, file-rss:0kB",
        head + b"Out of memory: Killed process -5 () total-vm:-1kB, anon-rss:kB, file-rss:",
        head + b"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
               b"task_memcg=/" + b"../" * 5000 + b",task=x,pid=99999999999999999999,uid=0",
        head + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))).replace(b"\n", b" "),
        b"\x00" * 1000,
        head + b"x" * (1024 * 1024),
    ]


def test_fuzzed_lines_between_good_kills_never_keep_a_good_kill_from_being_stored(tmp_path, log):
    rng = random.Random(16)
    good = list(range(700, 740))
    chunks = []
    for pid in good:
        chunks.append(kill_line(pid).encode())
        for line in rng.sample(adversarial_lines(rng), 3):
            chunks.append(line + b"\n")
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url))
        daemon.wait_message("READY=1")
        append(log, b"".join(chunks))
        db = tmp_path / "history.db"
        assert wait_until(lambda: set(good) <= set(pids_in(db)), timeout=60), daemon.log_text()[-3000:]
        assert wait_until(lambda: notified_count(sink) >= len(good), timeout=30)
        assert daemon.proc.poll() is None, "the daemon died"
        assert daemon.stop() == 0
    stored = pids_in(db)
    assert len([p for p in stored if p in good]) == len(good), "a good kill was stored twice"
    with sqlite3.connect(db) as conn:
        longest = conn.execute("SELECT max(length(process)), max(length(coalesce(task_memcg, ''))) "
                               "FROM kills").fetchone()
    assert longest[0] <= 255 and longest[1] <= 4096
    assert max(len(line) for line in daemon.log_text().splitlines()) < 9000
    assert all(len(json.dumps(b)) < 256 * 1024 for b in bodies(sink))


def test_a_burst_of_ten_thousand_kills_is_stored_once_in_a_few_messages(tmp_path, log):
    with HttpSink() as sink:
        daemon = Daemon(tmp_path, config(tmp_path, log, sink.url, extra="").replace("group_wait: 0.2s",
                                                                                      "group_wait: 3s"))
        daemon.wait_message("READY=1")
        now = time.time()
        append(log, "".join(kill_line(100_000 + k, f"w{k % 7}", now - 10_000 + k) for k in range(10_000)))
        db = tmp_path / "history.db"
        assert wait_until(lambda: len(pids_in(db)) == 10_000, timeout=60)
        assert wait_until(lambda: notified_count(sink) == 10_000, timeout=90), daemon.log_text()[-3000:]
        assert daemon.stop() == 0
    assert len(set(pids_in(db))) == 10_000
    # Kills stored within group_wait (3 s) of a message's first kill join that message, so
    # the count of messages is bounded by how long the daemon took to store the burst: at
    # most 5 on an idle machine (a few seconds), a few more where a loaded machine stretched
    # the storing over more windows. One message per batch, or per kill, would break both.
    with sqlite3.connect(db) as conn:
        span = conn.execute("SELECT julianday(max(recorded_at)) - julianday(min(recorded_at)) FROM kills")
        seconds = span.fetchone()[0] * 86_400
    assert len(bodies(sink, "oom.kill")) <= max(5, math.floor(seconds / 3) + 1), seconds


def test_a_hung_endpoint_delays_no_other_channel_of_the_running_daemon(tmp_path, log):
    from servers import HANG

    # The webhook holds every request (a peer that accepts and never answers, until its
    # timeout); the second channel must hear of the kill meanwhile, not after that timeout.
    with HttpSink([HANG] * 10) as hung, HttpSink() as other:
        extra = (f'    - {{name: other, type: webhook, url: "{other.url}/other", min_severity: info, '
                 f'kinds: ["oom.kill"]}}\n')
        cfg = config(tmp_path, log, hung.url + "/hung", extra=extra).replace(
            "min_severity: info}", "min_severity: info, timeout: 60s, kinds: [\"oom.kill\"]}", 1)
        daemon = Daemon(tmp_path, cfg)
        daemon.wait_message("READY=1")
        append(log, kill_line(4321, "java"))
        hung.wait_for(1, timeout=30)  # the hung channel has taken the kill and is stuck on it
        (request,) = other.wait_for(1, timeout=30)
        assert [r.path for r in hung.requests] == ["/hung"]  # still held: no answer, no retry yet
        assert [k["pid"] for k in request.json()["data"]["kills"]] == [4321]
        hung.release()  # the held request now ends; its outcome is recorded, nothing is sent twice
        assert wait_until(lambda: _statuses(tmp_path / "history.db") == {"hook": "sent", "other": "sent"},
                          timeout=30), _statuses(tmp_path / "history.db")
        assert daemon.stop() == 0
    assert len(other.requests) == 1


def _statuses(db: Path) -> dict[str, str]:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return dict(conn.execute("SELECT channel, status FROM notifications WHERE kind = 'oom.kill'"))
    except sqlite3.Error:
        return {}


def test_an_outage_whose_sending_code_cannot_be_loaded_is_said_in_the_log(tmp_path, monkeypatch, caplog):
    # database.down goes straight through the channels (sending.Direct), whose code is loaded at
    # the first outage: as if the package on disk could not be imported from then (being upgraded).
    import watchdog_oom
    from watchdog_oom.config import parse_config
    from watchdog_oom.daemon import Daemon as Watchdog

    cfg = parse_config(config(tmp_path, tmp_path / "kern.log", "http://127.0.0.1:9/never"), env={})
    daemon = Watchdog(cfg)
    monkeypatch.setitem(sys.modules, "watchdog_oom.sending", None)
    monkeypatch.delattr(watchdog_oom, "sending", raising=False)  # as in a process that never loaded it
    daemon.database.outage.down("full", "database or disk is full")
    assert daemon.database.state.kind == "full"  # STATUS= and /metrics say it all the same
    assert ("database.down is not sent through the channels: the sending code (watchdog_oom.sending) cannot be "
            "loaded: ModuleNotFoundError") in caplog.text
    assert daemon.direct is None  # made at the next outage's notice, once its code loads
    daemon.store.close()


def test_a_reload_whose_code_cannot_be_loaded_keeps_the_configuration_in_force(tmp_path, monkeypatch, caplog):
    # What SIGHUP runs (daemon/reload.py) is loaded at the first one: as if the package on
    # disk could not be imported from then (being upgraded).
    from watchdog_oom.config import parse_config
    from watchdog_oom.daemon import Daemon as Watchdog

    cfg = parse_config(config(tmp_path, tmp_path / "kern.log", "http://127.0.0.1:9/never"), env={})
    daemon = Watchdog(cfg)
    monkeypatch.setitem(sys.modules, "watchdog_oom.daemon.reload", None)
    assert daemon.reload() is False
    assert daemon.cfg is cfg
    assert ("SIGHUP: the configuration is not reloaded, keeping the old one: its code (watchdog_oom.daemon.reload) "
            "cannot be loaded: ModuleNotFoundError") in caplog.text
    daemon.store.close()

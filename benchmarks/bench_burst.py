"""Benchmark of the live path under a burst: N kills written to the kernel log in one go.

Starts the real daemon (`python -m watchdog_oom run`) with a fresh SQLite history,
following a syslog file (the default: N kernel "Out of memory: Killed process" lines
appended in one write, as in issue 16) or a FIFO standing in for /dev/kmsg (`--kmsg`:
N full kernel OOM reports, the real 6.18 capture of tests/data renumbered, 79 records
each), and times how long from the write until all N are stored. The reference beside
it is the floor for the same rows: a plain sqlite3 `executemany` of N rows into a table
of the same columns, in one transaction, in WAL mode. Prints seconds (median of --runs),
the ratio, and the notifications the burst caused per channel (they must stay a handful).

    python3 benchmarks/bench_burst.py                   # 10,000 kills, 3 runs
    python3 benchmarks/bench_burst.py --kmsg --kills 2000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "tests" / "data" / "kmsg_6.18_memcg_v1_python3.kmsg"


def syslog_lines(n: int) -> bytes:
    """N kill lines as rsyslog writes the kernel's to /var/log/kern.log, a second apart."""
    out = []
    for k in range(n):
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime(time.time() - n + k))
        out.append(f"{stamp} web-01 kernel: [{1000 + k}.000000] Out of memory: Killed process {100_000 + k} "
                   f"(worker{k % 7}) total-vm:1579488kB, anon-rss:1048132kB, file-rss:12kB, shmem-rss:0kB, "
                   f"UID:1000 pgtables:2100kB oom_score_adj:0")
    return ("\n".join(out) + "\n").encode()


def reports(n: int) -> bytes:
    """N renumbered copies of a real kernel OOM report, as /dev/kmsg records."""
    lines = CAPTURE.read_text().splitlines()
    out = []
    for k in range(n):
        pid, seq0, usec0 = 100_000 + k, 10_000 + k * len(lines), 71_355_073 + 1000 * k
        for i, line in enumerate(lines):
            head, msg = line.split(";", 1)
            prio, _seq, _usec, flags = head.split(",")[:4]
            out.append(f"{prio},{seq0 + i},{usec0 + i},{flags};{msg.replace('1772', str(pid))}")
    return ("\n".join(out) + "\n").encode()


def count(db: Path, sql: str) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0


def run_daemon(n: int, payload: bytes, tmp: Path, kmsg: bool) -> tuple[float, dict[str, int]]:
    """Seconds from the write until N kills are stored; notifications per channel."""
    log_path = tmp / ("kmsg" if kmsg else "kern.log")
    if kmsg:
        os.mkfifo(log_path)
    else:
        log_path.write_bytes(b"")
    db = tmp / "history.db"
    source = "kmsg" if kmsg else "file"
    (tmp / "config.yaml").write_text(f"""
host: bench
database: sqlite:///{db}
kernel_log: {{source: {source}, path: {log_path}}}
notifications:
  group_wait: 5s
  channels:
    - {{name: hook, type: webhook, url: "http://127.0.0.1:9/x", min_severity: info}}
    - {{name: chat, type: slack, webhook_url: "http://127.0.0.1:9/services/T/B/x"}}
""")
    notify = tmp / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(60)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify), "PYTHONPATH": str(ROOT)}
    with open(tmp / "daemon.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "watchdog_oom", "-c", str(tmp / "config.yaml"), "run"],
                                env=env, stderr=log)
        try:
            writer = os.open(log_path, os.O_WRONLY | (0 if kmsg else os.O_APPEND))
            while b"READY=1" not in sock.recv(4096):
                pass
            began = time.monotonic()
            view = memoryview(payload)
            while view:
                view = view[os.write(writer, view):]
            while count(db, "SELECT count(*) FROM kills") < n:
                time.sleep(0.02)
            took = time.monotonic() - began
            os.close(writer)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            sock.close()
    with sqlite3.connect(db) as conn:
        per_channel = dict(conn.execute("SELECT channel, count(*) FROM notifications GROUP BY channel").fetchall())
    return took, per_channel


def run_reference(n: int, tmp: Path) -> float:
    """The same number of rows inserted by plain sqlite3: the floor."""
    db = tmp / "reference.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE kills (id INTEGER PRIMARY KEY, host TEXT, time TEXT, pid INTEGER, process TEXT, "
                 "anon_rss_kb INTEGER, task_memcg TEXT, details TEXT)")
    rows = [("bench", "2026-11-20T12:00:00", 100_000 + k, "python3", 65152, "/process_api/x/wdtest1", "{}")
            for k in range(n)]
    began = time.monotonic()
    with conn:
        conn.executemany("INSERT INTO kills (host, time, pid, process, anon_rss_kb, task_memcg, details) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    took = time.monotonic() - began
    conn.close()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kmsg", action="store_true", help="full kernel reports through a kmsg FIFO")
    args = parser.parse_args()
    payload = reports(args.kills) if args.kmsg else syslog_lines(args.kills)
    daemon_times, reference_times, channels = [], [], {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            took, channels = run_daemon(args.kills, payload, Path(tmp), args.kmsg)
            daemon_times.append(took)
            reference_times.append(run_reference(args.kills, Path(tmp)))
    daemon, reference = statistics.median(daemon_times), statistics.median(reference_times)
    what = "kmsg records, full reports" if args.kmsg else "syslog kill lines"
    print(f"burst of {args.kills} kills ({len(payload) / 1e6:.1f} MB of {what}), median of {args.runs}:")
    print(f"  daemon, write to all stored   {daemon:8.2f} s   {args.kills / daemon:8.0f} kills/s")
    print(f"  plain sqlite3 executemany     {reference:8.3f} s   ratio {daemon / reference:.0f}x")
    print(f"  notifications per channel: {channels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The idle daemon's footprint and the cost of one check cycle.

Starts `watchdog-oom run` on built-in defaults (its own temporary database, the kernel
log source open), waits for READY=1, then watches it for --seconds: peak RSS (VmHWM),
CPU share of one core, and its own oom_score_adj. Then times one check cycle in-process
(read /proc, judge commit and memory, rank processes) against `free -k` and
`ps -eo pid,rss,comm` run in the same moment, median of --runs.

    python3 benchmarks/bench_check.py [--seconds 60] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from watchdog_oom import cli, config  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def idle_daemon(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sock_path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": sock_path, "STATE_DIRECTORY": tmp, "PYTHONPATH": str(ROOT)}
        env.pop("WATCHDOG_OOM_CONFIG", None)
        proc = subprocess.Popen([sys.executable, "-m", "watchdog_oom", "run"], env=env,
                                stderr=subprocess.PIPE, text=True)
        try:
            t_start = time.monotonic()
            while b"READY=1" not in sock.recv(4096):
                pass
            print(f"ready after {time.monotonic() - t_start:.2f}s")
            time.sleep(5)  # let the first scans settle
            cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, wall1 = cpu_seconds(proc.pid), time.monotonic()
            share = (cpu1 - cpu0) / (wall1 - wall0) * 100
            hwm = status_kb(proc.pid, "VmHWM")
            rss = status_kb(proc.pid, "VmRSS")
            adj = int(Path(f"/proc/{proc.pid}/oom_score_adj").read_text())
            print(f"idle daemon over {wall1 - wall0:.0f}s: CPU {share:.3f}% of one core, "
                  f"peak RSS {hwm / 1024:.1f} MiB (now {rss / 1024:.1f} MiB), oom_score_adj {adj}")
            print(f"  limits: CPU < 1%: {'ok' if share < 1 else 'EXCEEDED'}; "
                  f"peak RSS < 64 MB: {'ok' if hwm * 1024 < 64e6 else 'EXCEEDED'}")
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
            sock.close()
        print(f"daemon exit status {proc.returncode}; kernel log source: "
              + next((line.split("kernel log: ", 1)[1] for line in err.splitlines() if "kernel log: " in line), "?"))


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def check_cycle(runs: int) -> None:
    cfg = config.load_config(None, {})
    nprocs = sum(1 for d in os.listdir("/proc") if d.isdigit())
    ours = median_time(lambda: cli.evaluate_now(cfg, datetime.now(timezone.utc)), runs)
    free = median_time(lambda: subprocess.run(["free", "-k"], stdout=subprocess.DEVNULL, check=True), runs)
    ps = median_time(lambda: subprocess.run(["ps", "-eo", "pid,rss,comm"], stdout=subprocess.DEVNULL,
                                            check=True), runs)
    print(f"one check cycle over {nprocs} processes, median of {runs}:")
    print(f"  watchdog-oom check (in-process): {ours * 1000:8.2f} ms")
    print(f"  free -k (subprocess):            {free * 1000:8.2f} ms")
    print(f"  ps -eo pid,rss,comm (subprocess):{ps * 1000:8.2f} ms")
    print(f"  ratio check / (free + ps): {ours / (free + ps):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    check_cycle(args.runs)
    idle_daemon(args.seconds)


if __name__ == "__main__":
    main()

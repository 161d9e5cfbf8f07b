"""The idle daemon's CPU with the oom tracepoints on, against the same daemon with them off.

Each run starts `watchdog-oom run` with its own temporary database and the kernel log
read from /dev/kmsg, waits for READY=1 and a few seconds more, then counts the CPU time
(all threads, from schedstat) it spends over --seconds doing nothing but its periodic checks. Runs
alternate off/on so that drift in the machine's load falls on both; the medians of
--runs runs each are printed side by side with their ratio. With tracepoints on the
daemon reads a tracefs the benchmark mounts on a temporary directory (root needed).

    sudo python3 benchmarks/bench_tracepoints.py [--seconds 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTLE = 5.0  # seconds after READY=1: the first scans and the kernel buffer's backlog


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid`, in seconds, to the nanosecond: /proc/PID/task/*/schedstat's
    first field (utime + stime in /proc/PID/stat count 10 ms ticks: too coarse for an idle daemon)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def idle_cpu(tmp: str, tracefs: str | None, seconds: float) -> float:
    """CPU seconds per second of one idle daemon."""
    with tempfile.TemporaryDirectory(dir=tmp) as run_dir:
        tracing = (f"  tracepoints: on\n  tracefs: {tracefs}\n  trace_instance: wdoom-bench-{uuid.uuid4().hex[:8]}\n"
                   if tracefs else "  tracepoints: off\n")
        config = Path(run_dir, "config.yaml")
        config.write_text(f"database: sqlite:///{run_dir}/history.db\nkernel_log:\n  source: kmsg\n{tracing}")
        sock_path = os.path.join(run_dir, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(60)
        env = {**os.environ, "NOTIFY_SOCKET": sock_path, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "watchdog_oom", "-c", str(config), "run"], env=env,
                                stderr=subprocess.DEVNULL)
        try:
            while b"READY=1" not in sock.recv(4096):
                pass
            time.sleep(SETTLE)
            cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, wall1 = cpu_seconds(proc.pid), time.monotonic()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            sock.close()
        return (cpu1 - cpu0) / (wall1 - wall0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wdoom-bench-") as tmp:
        mount_point = os.path.join(tmp, "tracefs")
        os.mkdir(mount_point)
        subprocess.run(["mount", "-t", "tracefs", "nodev", mount_point], check=True)
        try:
            off: list[float] = []
            on: list[float] = []
            for _ in range(args.runs):
                off.append(idle_cpu(tmp, None, args.seconds))
                on.append(idle_cpu(tmp, mount_point, args.seconds))
        finally:
            subprocess.run(["umount", mount_point], check=False)
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(f"idle daemon CPU, % of one core, median of {args.runs} runs of {args.seconds:.0f} s each:")
    print(f"  tracepoints off (reference): {m_off * 100:7.3f}%   runs: {', '.join(f'{x * 100:.3f}' for x in off)}")
    print(f"  tracepoints on:              {m_on * 100:7.3f}%   runs: {', '.join(f'{x * 100:.3f}' for x in on)}")
    print(f"  ratio on / off: {m_on / m_off:.2f}" if m_off else "  ratio: reference used no measurable CPU")


if __name__ == "__main__":
    main()

"""The idle daemon's memory and CPU against the floor of its three runtime libraries.

Starts `watchdog-oom run` with a webhook and a Slack channel configured (nothing to
send while idle), its own SQLite database and the metrics endpoint off, following an
empty kernel log file (with --source kmsg, /dev/kmsg, the channels taking memory alerts
only: the kills already in the buffer are recorded at start, not sent while idle). Waits
for READY=1 and a settling moment, then watches it for --seconds: peak RSS (VmHWM) and
CPU share of one core. In the same run, the floor: a Python that only imports pyyaml,
SQLAlchemy Core and APScheduler's background scheduler, peak RSS measured the same
way. Medians of --runs each.

    python3 benchmarks/bench_footprint.py [--seconds 30] [--runs 3] [--source file|kmsg]

Targets (issue 12): daemon within 6 MB of the floor, idle CPU at most 0.2 % of a core.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ("import yaml, sqlalchemy, apscheduler.schedulers.background\n"
         "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))")

CONFIG = """\
database: sqlite:///{tmp}/history.db
kernel_log:
  source: {source}
  path: {path}
notifications:
  channels:
    - name: hook
      type: webhook
      url: http://127.0.0.1:9/hook{kinds}
    - name: chat
      type: slack
      webhook_url: http://127.0.0.1:9/services/T0/B0/x{kinds}
"""
# With /dev/kmsg the first start records the kills already in the kernel's buffer (other
# programs' on a test machine): the channels then take only memory alerts, so that the
# backlog's summary is not sent (and retried against the closed port) while idle.
KMSG_KINDS = '\n      kinds: ["commit.*", "memory.*"]'



def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid`, in nanoseconds from /proc/PID/task/*/schedstat
    (utime and stime count 10 ms ticks: too coarse for an idle daemon over a minute)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def compile_package() -> None:
    """Byte-compile the package, as pip does when it installs it: a daemon importing from
    source (a fresh checkout, PYTHONDONTWRITEBYTECODE) peaks megabytes higher compiling."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "watchdog_oom")], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def floor_kb() -> int:
    """Peak RSS of a Python that imports pyyaml, SQLAlchemy Core and APScheduler, nothing else."""
    out = subprocess.run([sys.executable, "-c", FLOOR], capture_output=True, text=True, check=True)
    return int(out.stdout)


def idle_daemon(seconds: float, settle: float, source: str) -> tuple[int, float, list[str]]:
    """Peak RSS (kB) and CPU share (% of a core) of the idle daemon, and what it logged."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "config.yaml")
        path = "/dev/kmsg" if source == "kmsg" else Path(tmp, "kern.log")
        if source == "file":
            Path(path).write_text("")
        kinds = KMSG_KINDS if source == "kmsg" else ""
        config.write_text(CONFIG.format(tmp=tmp, source=source, path=path, kinds=kinds))
        sock_path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(60)
        env = {**os.environ, "NOTIFY_SOCKET": sock_path, "PYTHONPATH": str(ROOT)}
        env.pop("WATCHDOG_OOM_CONFIG", None)
        proc = subprocess.Popen([sys.executable, "-m", "watchdog_oom", "-c", str(config), "run"], env=env,
                                stderr=subprocess.PIPE, text=True)
        try:
            while b"READY=1" not in sock.recv(4096):
                pass
            time.sleep(settle)  # the first process scan and sample, as every interval will do
            cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, wall1 = cpu_seconds(proc.pid), time.monotonic()
            hwm = status_kb(proc.pid, "VmHWM")
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
            sock.close()
    return hwm, (cpu1 - cpu0) / (wall1 - wall0) * 100, err.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="idle time watched per run")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after READY=1 before watching")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", choices=("file", "kmsg"), default="file", help="the kernel log followed")
    args = parser.parse_args()

    compile_package()
    floors, peaks, cpus = [], [], []
    log: list[str] = []
    for _ in range(args.runs):
        floors.append(floor_kb())
        peak, cpu, log = idle_daemon(args.seconds, args.settle, args.source)
        peaks.append(peak)
        cpus.append(cpu)
    floor, peak, cpu = statistics.median(floors), statistics.median(peaks), statistics.median(cpus)
    source = next((line.split("kernel log: ", 1)[1] for line in log if "kernel log: " in line), "?")
    tracing = next((line.split("INFO watchdog_oom: ", 1)[-1] for line in log if "tracepoint" in line), "?")
    print(f"kernel log source: {source}; {tracing}")
    print(f"{'':34}{'peak RSS':>12}")
    print(f"{'floor (pyyaml+SQLAlchemy+APSch.)':34}{floor / 1024:>9.1f} MiB")
    print(f"{'daemon, idle, webhook + Slack':34}{peak / 1024:>9.1f} MiB   "
          f"over the floor: {(peak - floor) / 1024:+.1f} MiB ({peak / floor:.2f}x)")
    print(f"idle CPU: {cpu:.3f} % of one core (median of {args.runs} x {args.seconds:.0f} s)")
    print(f"  targets: within 6 MB of the floor: {'ok' if (peak - floor) * 1024 <= 6e6 else 'EXCEEDED'}; "
          f"CPU <= 0.2 %: {'ok' if cpu <= 0.2 else 'EXCEEDED'}")


if __name__ == "__main__":
    main()

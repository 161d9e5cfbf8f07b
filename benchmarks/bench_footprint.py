"""The idle daemon's memory and CPU against the floor of its three runtime libraries.

Starts `watchdog-oom run` with a webhook and a Slack channel configured (nothing to
send while idle), its own SQLite database and the metrics endpoint off, following an
empty kernel log file (with --source kmsg, /dev/kmsg, the channels taking memory alerts
only: the kills already in the buffer are recorded at start, not sent while idle). Waits
for READY=1 and a settling moment, then watches it for --seconds: peak RSS (VmHWM), CPU
share of one core (the process's own utime+stime from /proc/PID/stat, and the finer
per-thread schedstat), and wake-ups a second (voluntary context switches of all its
threads). In the same run, the floor: a Python that only imports pyyaml, SQLAlchemy Core
and APScheduler's background scheduler, peak RSS measured the same way. Medians of
--runs each; the load average is printed, as other processes' load inflates CPU figures.
--threads prints each thread's wake-ups and CPU of the last run, by thread id (the kernel
knows them by name from Python 3.14 on; the wake-up hunt). --breakdown splits the last
run's resident memory, floor and daemon side by side, by mapping (/proc/PID/smaps): the
anonymous mappings where Python's allocator keeps objects of up to 512 bytes, the brk heap
(malloc: larger objects such as code, and SQLite's own memory), and each shared library's
pages; where the megabytes above the floor are, before anything is cut. --unit-environment
runs the daemon with the shipped systemd unit's Environment= settings (MALLOC_ARENA_MAX),
as `install-service` runs it; without it, as `watchdog-oom run` from a shell.

With --source file, after the idle watch one ordinary kernel line is appended to the log
and the peak read again ("after one kernel line"): the daemon as it is once it has parsed
anything (what a module loaded at the first line, or a line's own work, would add).

With --history, the database holds a month of memory samples before the daemon starts, as
a month-old install's does once retention has run (raw samples for the last 2 days and an
hour, 5-minute means back to a week, hourly means beyond it: 19,632 rows, 4.4 MB): with
--seconds 60 or more, the first retention run (a minute after the start) has an hour of raw
samples to downsample, and reads what an hourly run reads; the peak is the daemon's as it
is once every job ran, which an empty database does not show (SQLite's page cache fills
with what is read).

The idle daemon still works: every interval it samples /proc (memory, processes, cgroups)
and stores a sample. On a host where other programs cause OOM kills meanwhile, the
vmstat cross-check alerts them and the channels (a closed port here) are retried: that
is work, not idleness, and the log lines counted at the end say so; --no-vmstat-check
turns the cross-check off (kernel_log.vmstat_check: false) to measure idleness there.

    python3 benchmarks/bench_footprint.py [--seconds 60] [--runs 3] [--source file|kmsg] [--threads]
                                          [--no-vmstat-check] [--breakdown] [--unit-environment] [--history]

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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ("import yaml, sqlalchemy, apscheduler.schedulers.background\n"
         "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))\n"
         "print(open('/proc/self/smaps').read())")

CONFIG = """\
host: bench
database: sqlite:///{tmp}/history.db
kernel_log:
  source: {source}
  path: {path}
  vmstat_check: {vmstat_check}
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



# Fills the database of sys.argv[1] for host sys.argv[2] with a month of samples as
# retention leaves them (see --history), through the store, migrated by Alembic.
HISTORY = """
import sys
from datetime import datetime, timedelta, timezone
from sqlalchemy import insert
from watchdog_oom.store import Recorder
from watchdog_oom.store.tables import samples
store = Recorder(sys.argv[1], sys.argv[2])
store.upgrade()
now = datetime.now(timezone.utc)
ages = ([(10 * i, 0) for i in range((2 * 86400 + 3600) // 10)]
        + [(2 * 86400 + 3600 + 300 * i, 300) for i in range(1440)]
        + [(7 * 86400 + 3600 * i, 3600) for i in range(23 * 24)])
figures = dict(mem_total_kb=16 << 20, mem_available_kb=8 << 20, swap_total_kb=0, swap_free_kb=0,
               committed_as_kb=4 << 20, commit_limit_kb=16 << 20, commit_percent=25.0, commit_limit_percent=25.0,
               mem_available_percent=50.0, psi_some_avg10=0.0, psi_full_avg10=0.0, overcommit_memory=0)
with store.engine.begin() as conn:
    conn.execute(insert(samples), [dict(host=sys.argv[2], time=now - timedelta(seconds=age), resolution=resolution,
                                        **figures) for age, resolution in ages])
store.close()
"""


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid`, in nanoseconds from /proc/PID/task/*/schedstat."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def stat_seconds(pid: int) -> float:
    """The process's utime + stime from /proc/PID/stat (every thread's, ended ones included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> dict[str, tuple[str, int, float]]:
    """Each thread's name, voluntary context switches (its wake-ups) and CPU seconds."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):
            status = (task / "status").read_text()
            switches = int(next(line.split()[1] for line in status.splitlines()
                                if line.startswith("voluntary_ctxt_switches:")))
            cpu = int((task / "schedstat").read_text().split()[0]) / 1e9
            out[task.name] = ((task / "comm").read_text().strip(), switches, cpu)
    return out


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def mappings(smaps: str) -> dict[str, int]:
    """Resident kB by mapping from /proc/PID/smaps: a library's path, [heap] (malloc's brk
    heap), [stack], or "anonymous" (pymalloc's arenas, thread stacks, large mallocs)."""
    rss: dict[str, int] = {}
    name = "anonymous"
    for line in smaps.splitlines():
        fields = line.split()
        if fields and not fields[0].endswith(":"):  # a mapping's header: range perms offset dev inode [path]
            name = fields[5] if len(fields) > 5 else "anonymous"
        elif fields[:1] == ["Rss:"]:
            rss[name] = rss.get(name, 0) + int(fields[1])
    return rss


def breakdown(floor: dict[str, int], daemon: dict[str, int], rows: int = 8) -> list[str]:
    """The floor's and the daemon's resident memory side by side: anonymous, brk heap,
    file-backed, and the libraries that differ most."""
    def kind(name: str) -> str:
        return name if name in ("anonymous", "[heap]") else "file-backed" if name.startswith("/") else "other"

    def mib(kb: float) -> str:
        return f"{kb / 1024:8.1f}"

    out = [f"{'resident memory (MiB), last run':52}{'floor':>8}{'daemon':>8}{'over':>8}"]
    for k in ("anonymous", "[heap]", "file-backed", "other"):
        f = sum(v for n, v in floor.items() if kind(n) == k)
        d = sum(v for n, v in daemon.items() if kind(n) == k)
        out.append(f"  {k:50}{mib(f)}{mib(d)}{(d - f) / 1024:+8.1f}")
    files = {n for n in floor.keys() | daemon.keys() if kind(n) == "file-backed"}
    for n in sorted(files, key=lambda n: -abs(daemon.get(n, 0) - floor.get(n, 0)))[:rows]:
        f, d = floor.get(n, 0), daemon.get(n, 0)
        out.append(f"    {os.path.basename(n)[:48]:48}{mib(f)}{mib(d)}{(d - f) / 1024:+8.1f}")
    return out


def compile_package() -> None:
    """Byte-compile the package, as pip does when it installs it: a daemon importing from
    source (a fresh checkout, PYTHONDONTWRITEBYTECODE) peaks megabytes higher compiling."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "watchdog_oom")], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def floor_kb() -> tuple[int, dict[str, int]]:
    """Peak RSS of a Python that imports pyyaml, SQLAlchemy Core and APScheduler, nothing
    else, and its resident memory by mapping."""
    out = subprocess.run([sys.executable, "-c", FLOOR], capture_output=True, text=True, check=True)
    hwm, _, smaps = out.stdout.partition("\n")
    return int(hwm), mappings(smaps)


@dataclass
class Idle:
    """What one idle run measured."""

    hwm_kb: int
    cpu_percent: float  # schedstat
    stat_percent: float  # utime + stime
    wakeups: float  # a second, all threads
    threads: list[str]
    log: list[str]
    busy: int  # warnings and errors logged while watched: work, not idleness
    resident: dict[str, int]  # kB by mapping at the end
    hwm_after_line_kb: int | None  # peak RSS once one kernel line was read (file source)


def unit_environment() -> dict[str, str]:
    """The Environment= settings of the shipped systemd unit: what the daemon runs with
    when installed as a service (install-service)."""
    unit = (ROOT / "watchdog_oom" / "data" / "watchdog-oom.service").read_text()
    pairs = (line.split("=", 1)[1].partition("=") for line in unit.splitlines() if line.startswith("Environment="))
    return {name: value for name, _, value in pairs}


def idle_daemon(seconds: float, settle: float, source: str, vmstat_check: bool = True,
                extra_env: dict[str, str] | None = None, history: bool = False) -> Idle:
    """Peak RSS, CPU share (% of a core) and wake-ups of the idle daemon, and what it logged."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "config.yaml")
        path = "/dev/kmsg" if source == "kmsg" else Path(tmp, "kern.log")
        if source == "file":
            Path(path).write_text("")
        kinds = KMSG_KINDS if source == "kmsg" else ""
        config.write_text(CONFIG.format(tmp=tmp, source=source, path=path, kinds=kinds,
                                        vmstat_check=str(vmstat_check).lower()))
        sock_path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(60)
        env = {**os.environ, **(extra_env or {}), "NOTIFY_SOCKET": sock_path, "PYTHONPATH": str(ROOT)}
        env.pop("WATCHDOG_OOM_CONFIG", None)
        if history:
            subprocess.run([sys.executable, "-c", HISTORY, f"sqlite:///{tmp}/history.db", "bench"], env=env,
                           check=True, cwd=ROOT)
        # cwd: `-m` puts the working directory first on sys.path, before PYTHONPATH.
        proc = subprocess.Popen([sys.executable, "-m", "watchdog_oom", "-c", str(config), "run"], env=env,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            while b"READY=1" not in sock.recv(4096):
                pass
            time.sleep(settle)  # the first process scan and sample, as every interval will do
            cpu0, stat0, before, wall0 = cpu_seconds(proc.pid), stat_seconds(proc.pid), threads(proc.pid), \
                time.monotonic()
            began = time.strftime("%Y-%m-%d %H:%M:%S")  # the daemon's log stamps (asctime), local time
            time.sleep(seconds)
            cpu1, stat1, after, wall1 = cpu_seconds(proc.pid), stat_seconds(proc.pid), threads(proc.pid), \
                time.monotonic()
            hwm = status_kb(proc.pid, "VmHWM")
            resident = mappings(Path(f"/proc/{proc.pid}/smaps").read_text())
            ended = time.strftime("%Y-%m-%d %H:%M:%S")
            after_line = None
            if source == "file":  # the peak once a line was parsed
                with open(path, "a") as log:
                    log.write(f"{time.strftime('%b %d %H:%M:%S')} bench kernel: [ 1.000000] eth0: link up\n")
                time.sleep(2)
                after_line = status_kb(proc.pid, "VmHWM")
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
            sock.close()
    wall = wall1 - wall0
    rows = [f"  {tid:>7} {name:<16}{(switches - before[tid][1]) / wall:8.2f}/s {(cpu - before[tid][2]) * 1e3:9.1f} ms"
            for tid, (name, switches, cpu) in sorted(after.items()) if tid in before]
    woke = sum(switches - before[tid][1] for tid, (_, switches, _) in after.items() if tid in before)
    lines = err.splitlines()
    busy = sum(began <= line[:19] <= ended and (" WARNING " in line or " ERROR " in line) for line in lines)
    return Idle(hwm, (cpu1 - cpu0) / wall * 100, (stat1 - stat0) / wall * 100, woke / wall, rows, lines, busy,
                resident, after_line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="idle time watched per run")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after READY=1 before watching")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", choices=("file", "kmsg"), default="file", help="the kernel log followed")
    parser.add_argument("--threads", action="store_true", help="each thread's wake-ups and CPU (last run)")
    parser.add_argument("--no-vmstat-check", dest="vmstat_check", action="store_false",
                        help="kernel_log.vmstat_check: false (other programs' OOM kills are then not alerted)")
    parser.add_argument("--unit-environment", action="store_true",
                        help="run the daemon with the shipped systemd unit's Environment= settings, as installed")
    parser.add_argument("--history", action="store_true",
                        help="a month of samples in the database (with --seconds 60 or more: after retention ran)")
    parser.add_argument("--breakdown", action="store_true",
                        help="the last run's resident memory by mapping, floor and daemon side by side")
    args = parser.parse_args()

    extra_env = unit_environment() if args.unit_environment else {}
    compile_package()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    floors: list[int] = []
    runs: list[Idle] = []
    floor_resident: dict[str, int] = {}
    for _ in range(args.runs):
        hwm, floor_resident = floor_kb()
        floors.append(hwm)
        runs.append(idle_daemon(args.seconds, args.settle, args.source, args.vmstat_check, extra_env, args.history))
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    floor = statistics.median(floors)
    peak = statistics.median(r.hwm_kb for r in runs)
    cpu = statistics.median(r.cpu_percent for r in runs)
    stat_cpu = statistics.median(r.stat_percent for r in runs)
    wakeups = statistics.median(r.wakeups for r in runs)
    log = runs[-1].log
    source = next((line.split("kernel log: ", 1)[1] for line in log if "kernel log: " in line), "?")
    tracing = next((line.split("INFO watchdog_oom: ", 1)[-1] for line in log if "tracepoint" in line), "?")
    work = sum(r.busy for r in runs)
    print(f"kernel log source: {source}; {tracing}")
    if extra_env:
        print("the daemon with the unit's environment: " + " ".join(f"{k}={v}" for k, v in extra_env.items()))
    print(f"load average: {' '.join(load_before)} before, {' '.join(load_after)} after")
    print(f"{'':34}{'peak RSS':>12}")
    print(f"{'floor (pyyaml+SQLAlchemy+APSch.)':34}{floor / 1024:>9.1f} MiB")
    print(f"{'daemon, idle, webhook + Slack':34}{peak / 1024:>9.1f} MiB   "
          f"over the floor: {(peak - floor) / 1024:+.2f} MiB ({peak / floor:.2f}x; the target, 6 MB: +5.72)")
    if all(r.hwm_after_line_kb for r in runs):
        line_peak = statistics.median(r.hwm_after_line_kb or 0 for r in runs)
        print(f"{'  after one kernel line':34}{line_peak / 1024:>9.1f} MiB   "
              f"over the floor: {(line_peak - floor) / 1024:+.2f} MiB")
    print(f"idle CPU: {stat_cpu:.3f} % of one core by utime+stime, {cpu:.3f} % by schedstat; "
          f"{wakeups:.1f} wake-ups/s (medians of {args.runs} x {args.seconds:.0f} s)")
    if work:
        print(f"  not idle: {work} warning/error lines logged meanwhile (OOM kills elsewhere, failed sends?)")
    if args.threads:
        print("thread            wake-ups      CPU (last run)")
        print("\n".join(runs[-1].threads))
    if args.breakdown:
        print("\n".join(breakdown(floor_resident, runs[-1].resident)))
    print(f"  targets: within 6 MB of the floor: {'ok' if (peak - floor) * 1024 <= 6e6 else 'EXCEEDED'}; "
          f"CPU <= 0.2 %: {'ok' if stat_cpu <= 0.2 else 'EXCEEDED'}")


if __name__ == "__main__":
    main()

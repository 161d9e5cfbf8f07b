"""Times procfs.scan_processes on the live /proc against `ps -eo pid,rss,comm` over the same processes.

    python3 benchmarks/bench_scan.py [--procs 1000] [--runs 7]

Starts --procs extra sleeping processes (killed again at the end) so the scan has
thousands of processes to read, then times each contender --runs times and prints the
medians, the cost per process and the ratio to ps. The goal: a scan costs at most twice
what ps costs per process. ps is timed as a whole command, its start-up included, which
is what an operator's alternative would cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watchdog_oom import procfs  # noqa: E402


def median_seconds(run: Callable[[], int], runs: int) -> tuple[float, int]:
    """Median wall time of `run` over `runs` calls, and the process count of the last call."""
    times = []
    count = 0
    for _ in range(runs):
        start = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def ps_count() -> int:
    out = subprocess.run(["ps", "-eo", "pid,rss,comm"], capture_output=True, check=True).stdout
    return out.count(b"\n") - 1  # the header line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, default=1000, help="extra sleeping processes (default 1000)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per contender (default 7)")
    parser.add_argument("--root", default="/proc", help="procfs root (default /proc)")
    args = parser.parse_args(argv)

    sleepers: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(args.procs):
            sleepers.append(subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL))
        # One warm-up of each, so dentries and page cache are as hot for all of them.
        procfs.scan_processes(args.root)
        ps_count()

        contenders = {
            "scan_processes": lambda: len(procfs.scan_processes(args.root)),
            "scan_processes(with_cmdline=False)": lambda: len(
                procfs.scan_processes(args.root, with_cmdline=False)
            ),
            "ps -eo pid,rss,comm": ps_count,
        }
        results = {name: median_seconds(run, args.runs) for name, run in contenders.items()}
    finally:
        for child in sleepers:
            child.kill()
        for child in sleepers:
            child.wait()

    ps_median, ps_procs = results["ps -eo pid,rss,comm"]
    ps_per_proc = ps_median / ps_procs
    print(f"{args.runs} runs each, {args.procs} extra sleeping processes, CPUs: {os.cpu_count()}")
    print(f"{'contender':<38}{'processes':>10}{'median ms':>11}{'us/process':>12}{'vs ps':>8}")
    for name, (median, count) in results.items():
        per_proc = median / count
        print(f"{name:<38}{count:>10}{median * 1e3:>11.2f}{per_proc * 1e6:>12.2f}{per_proc / ps_per_proc:>8.2f}")
    print("(ps lists kernel threads too; the scan skips them, so per-process cost is per process read)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Kill lines run together on one line against the same lines apart: linear, not quadratic.

    python3 benchmarks/bench_run_together.py [--runs 7] [--counts 30,300,1000]

Review R22b: a log shipper or a paste that lost the line breaks can leave hundreds of kernel kill
lines on one line, joined by other text. Each must be read (tests/test_parse_run_together.py), and
the line must cost about what the same kills cost on lines of their own: the line is searched once
for the kill messages' openings, not once per kill from its start. For each count of kills, times
parse_text (the import's line path) and iter_kills (its scanner) on the joined line and on the lines
apart, side by side in the same run (medians of --runs, CPU time), and prints the CPU per kill and
the ratio joined/apart. Linear: the per-kill cost stays flat as the count grows, and the ratio near
1 (a line over 65,536 characters is cut there by design, and counted: its kills past the cut are
not read, so the largest count is kept under it).

--prefix gives each kill the prefix of its own log record (review R27: each is read with its own
time, uptime and host), on the joined line and on the lines apart alike: `dmesg` "[ 1234.567890] ",
`syslog` "Jun 29 15:57:11 web-01 kernel: [ 1234.567890] ", `iso` "2025-06-29T15:57:11+00:00 web-01
kernel: ", `dmesg-T` "[Sun Jun 29 15:57:11 2025] "; `none` (the default) joins them with " [x] ".
With a prefix, keep --counts at 300 or under (the line's 65,536 characters).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from watchdog_oom.parse import iter_kills, parse_text  # noqa: E402

KILL = ("Out of memory: Killed process {pid} (v{n}) total-vm:{vm}kB, anon-rss:{anon}kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:1000 pgtables:400kB oom_score_adj:0")
JOINER = " [x] "
PREFIXES = {
    "none": "",
    "dmesg": "[ {s}.500000] ",
    "syslog": "Jun 29 15:{m:02d}:{c:02d} web-{h:02d} kernel: [ {s}.500000] ",
    "iso": "2025-06-29T15:{m:02d}:{c:02d}+00:00 web-{h:02d} kernel: ",
    "dmesg-T": "[Sun Jun 29 15:{m:02d}:{c:02d} 2025] ",
}


def record(n: int, prefix: str) -> str:
    """The `n`th kill line, in its record's prefix."""
    return prefix.format(s=1000 + n, m=n // 60 % 60, c=n % 60, h=n % 100) + KILL.format(
        pid=1000 + n, n=n, vm=400000 + n, anon=200000 + n)


def cpu(read: Callable[[str], int], text: str, runs: int) -> tuple[float, int]:
    """Median CPU seconds of `read(text)` over `runs` calls, and the kills its last call read."""
    times, found = [], 0
    for _ in range(runs):
        start = time.process_time()
        found = read(text)
        times.append(time.process_time() - start)
    return statistics.median(times), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--counts", default="30,100,300,400", help="kills per line, comma-separated")
    parser.add_argument("--prefix", choices=PREFIXES, default="none", help="each kill's own record prefix")
    args = parser.parse_args()
    prefix = PREFIXES[args.prefix]
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}; prefix: {args.prefix}")
    print(f"{'kills':>6} {'path':<11}{'joined µs/kill':>16}{'apart µs/kill':>15}{'ratio':>8}  found")
    for count in (int(c) for c in args.counts.split(",")):
        kills = [record(n, prefix) for n in range(count)]
        joined, apart = (" " if prefix else JOINER).join(kills) + "\n", "\n".join(kills) + "\n"
        paths = {"parse_text": lambda text: len(parse_text(text, year=2025)),
                 "iter_kills": lambda text: sum(1 for _ in iter_kills(io.BytesIO(text.encode()), "bench", year=2025))}
        for name, read in paths.items():
            together, found_joined = cpu(read, joined, args.runs)
            separate, found_apart = cpu(read, apart, args.runs)
            print(f"{count:>6} {name:<11}{together / count * 1e6:>16.1f}{separate / count * 1e6:>15.1f}"
                  f"{together / separate:>8.2f}  {found_joined}/{found_apart}")


if __name__ == "__main__":
    main()

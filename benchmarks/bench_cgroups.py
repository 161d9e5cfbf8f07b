"""The cost of reading 5,000 memory cgroups, against `cat` of the same files.

As root (with a memory cgroup of our own: cgroup v1 or v2), makes --count real cgroups
under our own cgroup, laid out as a Kubernetes node is (a limited pod holding a limited
container), and removes them afterwards. Elsewhere (--synthetic, or when not permitted)
the same tree is built of plain files in a temporary directory, v2 layout.

Each run times one `CgroupReader.scan()` over the tree in-process and `xargs cat` of
exactly the files that scan read (one list, given to as few cat processes as ARG_MAX
allows), both with a warm dentry cache; medians of --runs.

    python3 benchmarks/bench_cgroups.py [--count 5000] [--runs 7] [--synthetic]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from watchdog_oom.cgroups import CgroupReader, hierarchies  # noqa: E402

V1_FILES = ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat", "memory.oom_control",
            "memory.failcnt")
V2_FILES = ("memory.max", "memory.high", "memory.current", "memory.stat", "memory.events",
            "memory.pressure", "memory.swap.max", "memory.oom.group", "memory.swap.current")
HOST = 1 << 40


def own_memory_cgroup() -> tuple[str, int, str] | None:
    """(hierarchy root, version, our cgroup path) where we may make children, or None."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return "/sys/fs/cgroup/memory", 1, path
    for h in hierarchies("/sys/fs/cgroup"):
        if h.version == 2:
            path = Path("/proc/self/cgroup").read_text().split("0::", 1)[1].split("\n", 1)[0]
            return h.root, 2, path
    return None


def layout(count: int) -> list[tuple[str, int]]:
    """(relative path, limit) of `count` cgroups: pods of 512 MiB holding a 384 MiB container."""
    out = []
    for i in range(count // 2):
        out.append((f"pod{i:05d}", 512 << 20))
        out.append((f"pod{i:05d}/ctr", 384 << 20))
    return out


def make_real(base: Path, version: int, count: int) -> None:
    limit_file = "memory.limit_in_bytes" if version == 1 else "memory.max"
    base.mkdir()
    if version == 2:
        (base / "cgroup.subtree_control").write_text("+memory")
    for rel, limit in layout(count):
        (base / rel).mkdir()
        if version == 2 and rel.startswith("pod") and "/" not in rel:
            (base / rel / "cgroup.subtree_control").write_text("+memory")
        (base / rel / limit_file).write_text(str(limit))


def remove_real(base: Path) -> None:
    for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda t: -t[0].count("/")):
        os.rmdir(dirpath)


def make_synthetic(base: Path, count: int) -> None:
    stat = "".join(f"{k} {i * 4096}\n" for i, k in enumerate(
        ("anon", "file", "kernel", "kernel_stack", "pagetables", "percpu", "sock", "shmem", "file_mapped",
         "file_dirty", "file_writeback", "swapcached", "anon_thp", "inactive_anon", "active_anon",
         "inactive_file", "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable", "slab",
         "workingset_refault_anon", "workingset_refault_file", "pgfault", "pgmajfault")))
    base.mkdir(parents=True)
    (base / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    files = {"memory.high": "max\n", "memory.current": "104857600\n", "memory.stat": stat,
             "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
             "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
             "memory.swap.max": "max\n", "memory.swap.current": "0\n", "memory.oom.group": "0\n"}
    for rel, limit in layout(count):
        d = base / rel
        d.mkdir()
        (d / "memory.max").write_text(f"{limit}\n")
        for name, text in files.items():
            (d / name).write_text(text)


def file_list(root: str, version: int, count: int) -> list[str]:
    names = V1_FILES if version == 1 else V2_FILES
    return [os.path.join(root, rel, n) for rel, _ in layout(count) for n in names]


def time_cat(files: list[str]) -> float:
    data = "\0".join(files).encode()
    t = time.perf_counter()
    subprocess.run(["xargs", "-0", "cat"], input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return time.perf_counter() - t


def time_scan(reader: CgroupReader) -> tuple[float, int]:
    t = time.perf_counter()
    scan = reader.scan(datetime.now(timezone.utc), HOST)
    return time.perf_counter() - t, len(scan.samples)


def measure(tree_root: str, version: int, count: int, runs: int) -> None:
    # The reader walks the hierarchy from its root: point it at a directory whose
    # "memory" (v1) or own cgroup.controllers (v2) holds just the benchmark tree.
    reader = CgroupReader(tree_root, state_root=None, max_cgroups=count * 2 + 10)
    hier = hierarchies(tree_root)[0]
    files = file_list(hier.root, version, count)
    time_scan(reader)
    time_cat(files)  # warm both
    scans, cats = [], []
    for _ in range(runs):
        elapsed, found = time_scan(reader)
        scans.append(elapsed)
        cats.append(time_cat(files))
    scan, cat = statistics.median(scans), statistics.median(cats)
    print(f"{count} cgroups ({found} limited), {len(files)} files, median of {runs}:")
    print(f"  watchdog_oom.cgroups scan  {scan * 1000:8.1f} ms  {scan / count * 1e6:6.1f} us/cgroup")
    print(f"  xargs cat, same files      {cat * 1000:8.1f} ms  {cat / count * 1e6:6.1f} us/cgroup")
    print(f"  ratio scan/cat             {scan / cat:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--synthetic", action="store_true", help="plain files, not real cgroups")
    args = parser.parse_args()
    own = None if args.synthetic or os.geteuid() != 0 else own_memory_cgroup()
    if own is not None:
        hroot, version, path = own
        base = Path(hroot) / path.lstrip("/") / f"bench-cgroups-{os.getpid()}"
        t = time.perf_counter()
        try:
            make_real(base, version, args.count)
        except OSError as exc:
            print(f"cannot make real cgroups under {base.parent} ({exc}); using plain files")
            if base.exists():
                remove_real(base)
            own = None
        else:
            print(f"real cgroup v{version} tree under {base} (made in {time.perf_counter() - t:.1f}s)")
            # A directory that looks like a cgroup mount root holding only this tree.
            with tempfile.TemporaryDirectory() as tmp:
                link = Path(tmp) / ("memory" if version == 1 else "unified")
                link.symlink_to(base)
                try:
                    measure(tmp if version == 1 else str(base), version, args.count, args.runs)
                finally:
                    remove_real(base)
            return
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        base = Path(tmp) / "cg"
        make_synthetic(base, args.count)
        print(f"synthetic v2 tree of plain files under {base}")
        measure(str(base), 2, args.count, args.runs)
        shutil.rmtree(base)


if __name__ == "__main__":
    main()

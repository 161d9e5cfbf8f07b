"""Copies the memory files of a cgroup tree into a test capture: `capture.py SRC DEST`.

SRC is a memory hierarchy (/sys/fs/cgroup on v2, /sys/fs/cgroup/memory on v1) or a
subtree of one; DEST receives the same directories holding only the files
watchdog_oom.cgroups reads, so a capture stays small and holds nothing else of the host.
The captures beside this script were made with it (v1 on Linux 6.18) or written by hand
from Documentation/admin-guide/cgroup-v2.rst where no v2 memory controller was at hand;
each has an expected_cgroups.json beside it (not expected.json: that name is the
expectation of the kernel-log captures, which test_parse walks).
"""

from __future__ import annotations

import os
import shutil
import sys

FILES = {
    # v1
    "memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat", "memory.failcnt",
    "memory.oom_control", "memory.memsw.limit_in_bytes", "memory.memsw.usage_in_bytes",
    # v2
    "cgroup.controllers", "memory.max", "memory.high", "memory.current", "memory.events",
    "memory.swap.current", "memory.swap.max", "memory.pressure", "memory.oom.group",
    # both
    "cgroup.procs",
}


def capture(src: str, dest: str) -> int:
    """Copy the memory files of every cgroup under src; returns the number of cgroups."""
    count = 0
    for dirpath, _dirs, files in os.walk(src):
        target = os.path.join(dest, os.path.relpath(dirpath, src))
        os.makedirs(target, exist_ok=True)
        count += 1
        for name in sorted(set(files) & FILES):
            try:
                with open(os.path.join(dirpath, name), "rb") as f:
                    data = f.read()
            except OSError:
                continue  # a cgroup removed meanwhile, or a file the kernel refuses to show
            with open(os.path.join(target, name), "wb") as out:
                out.write(data)
    return count


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    if os.path.exists(sys.argv[2]):
        shutil.rmtree(sys.argv[2])
    print(f"{capture(sys.argv[1], sys.argv[2])} cgroups captured")

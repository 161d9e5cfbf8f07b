"""Builds fake /proc trees of real files for tests: meminfo, overcommit sysctls, PSI, processes.

    root = (ProcTree(tmp_path)
            .meminfo(MemTotal=16_000_000, Committed_AS=30_000_000)
            .overcommit(2, 90)
            .pressure(some=1.5, full=0.5)
            .process(4242, "mysqld", oom_score=1100, oom_score_adj=0, rss_kb=8_000_000,
                     cmdline=["/usr/sbin/mysqld", "--user=mysql"],
                     cgroup="/system.slice/mysqld.service")
            .root)

Every method writes its files at once and returns the builder; `root` is the path to
pass as procfs root. The tree starts with a default meminfo, vmstat, overcommit
settings, uptime and boot_id, so a test sets only what it is about.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
PF_KTHREAD = 0x00200000
# Flags of an ordinary user-space task in stat field 9 (PF_RANDOMIZE | PF_SUPERPRIV).
PF_USER = 0x00400100

DEFAULT_MEMINFO = {
    "MemTotal": 16_384_000,
    "MemFree": 2_048_000,
    "MemAvailable": 8_192_000,
    "Buffers": 102_400,
    "Cached": 4_096_000,
    "SwapTotal": 4_096_000,
    "SwapFree": 4_000_000,
    "CommitLimit": 12_288_000,
    "Committed_AS": 10_240_000,
    "HugePages_Total": 0,
}


class ProcTree:
    """A procfs root under `base`/proc, filled by chained calls."""

    def __init__(self, base: Path | str, *, defaults: bool = True) -> None:
        self.root = Path(base) / "proc"
        self.root.mkdir(parents=True, exist_ok=True)
        if defaults:
            self.meminfo()
            self.vmstat(oom_kill=0, pgfault=123456)
            self.overcommit(0, 50, 0)
            self.uptime(3600.5)
            self.boot_id("0b5f4a59-3f0e-4c4a-9b64-1f6c1c3f8d21")

    def _write(self, relative: str, content: str | bytes) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        return path

    def remove(self, relative: str) -> ProcTree:
        """Delete a file, as a kernel without it would show."""
        (self.root / relative).unlink()
        return self

    def meminfo(self, *, replace: bool = False, **fields: int) -> ProcTree:
        """/proc/meminfo: the defaults updated with `fields` (all of it replaced if `replace`)."""
        values = dict(fields) if replace else {**DEFAULT_MEMINFO, **fields}
        lines = []
        for key, value in values.items():
            unit = "" if key.startswith("HugePages_") else " kB"
            lines.append(f"{key + ':':<16}{value:>8}{unit}\n")
        self._write("meminfo", "".join(lines))
        return self

    def vmstat(self, **counters: int) -> ProcTree:
        self._write("vmstat", "".join(f"{k} {v}\n" for k, v in counters.items()))
        return self

    def overcommit(self, memory: int, ratio: int, kbytes: int | None = 0) -> ProcTree:
        """vm.overcommit_memory, _ratio and _kbytes (None: a kernel before 3.14 without it)."""
        self._write("sys/vm/overcommit_memory", f"{memory}\n")
        self._write("sys/vm/overcommit_ratio", f"{ratio}\n")
        if kbytes is not None:
            self._write("sys/vm/overcommit_kbytes", f"{kbytes}\n")
        return self

    def pressure(self, some: float, full: float, *, full_total: int = 123456) -> ProcTree:
        """/proc/pressure/memory with these avg10 values (avg60/avg300 derived)."""
        self._write(
            "pressure/memory",
            f"some avg10={some:.2f} avg60={some / 2:.2f} avg300={some / 4:.2f} total={full_total * 2}\n"
            f"full avg10={full:.2f} avg60={full / 2:.2f} avg300={full / 4:.2f} total={full_total}\n",
        )
        return self

    def uptime(self, seconds: float) -> ProcTree:
        self._write("uptime", f"{seconds:.2f} {seconds * 1.9:.2f}\n")
        return self

    def boot_id(self, value: str) -> ProcTree:
        self._write("sys/kernel/random/boot_id", value + "\n")
        return self

    def process(
        self,
        pid: int,
        name: str,
        oom_score: int,
        oom_score_adj: int | None = 0,
        *,
        uid: int = 0,
        rss_kb: int = 4096,
        cmdline: str | Sequence[str] | None = None,
        cgroup: str | None = "/",
        ppid: int = 1,
        start_time: int = 1000,
        state: str = "S",
        kernel_thread: bool = False,
        oom_adj: int | None = None,
        swap_kb: int | None = None,
        pte_kb: int | None = None,
    ) -> ProcTree:
        """/proc/PID with stat, status, statm, cmdline, cgroup, oom_score and oom_score_adj.

        cmdline: a list of arguments (NUL-joined), a string (split on spaces), or None
        (empty, as for a kernel thread; the default is the name). cgroup: a path written as
        the v2 "0::" line, or whole file text when it contains ":" (v1 or hybrid).
        oom_score_adj None with oom_adj set: a kernel before 2.6.36 (oom_adj only).
        """
        d = f"{pid}"
        rss_pages = rss_kb // PAGE_KB
        flags = PF_KTHREAD if kernel_thread else PF_USER
        # proc(5) stat: fields 3.. after "pid (comm)"; 52 fields on current kernels.
        after = [state, ppid, pid, pid, 0, -1, flags, 100, 0, 0, 0, 5, 3, 0, 0, 20, 0, 1, 0,
                 start_time, rss_kb * 4 * 1024, rss_pages] + [0] * 28
        self._write(f"{d}/stat", f"{pid} ({name}) " + " ".join(map(str, after)) + "\n")
        self._write(f"{d}/statm", f"{rss_pages * 4} {rss_pages} 0 1 0 {rss_pages} 0\n")
        status = [
            f"Name:\t{name}", "Umask:\t0022", f"State:\t{state} (sleeping)", f"Tgid:\t{pid}",
            "Ngid:\t0", f"Pid:\t{pid}", f"PPid:\t{ppid}", "TracerPid:\t0",
            f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}", f"Gid:\t{uid}\t{uid}\t{uid}\t{uid}",
        ]
        if not kernel_thread:
            status.append(f"VmRSS:\t{rss_kb:>8} kB")
            if pte_kb is not None:
                status.append(f"VmPTE:\t{pte_kb:>8} kB")
            if swap_kb is not None:
                status.append(f"VmSwap:\t{swap_kb:>8} kB")
        status.append("Threads:\t1")
        self._write(f"{d}/status", "\n".join(status) + "\n")
        if kernel_thread:
            raw = b""
        elif cmdline is None:
            raw = name.encode() + b"\0"
        else:
            args = cmdline.split(" ") if isinstance(cmdline, str) else list(cmdline)
            raw = b"".join(a.encode() + b"\0" for a in args)
        self._write(f"{d}/cmdline", raw)
        if cgroup is not None:
            self._write(f"{d}/cgroup", cgroup if ":" in cgroup else f"0::{cgroup}\n")
        self._write(f"{d}/oom_score", f"{oom_score}\n")
        if oom_score_adj is not None:
            self._write(f"{d}/oom_score_adj", f"{oom_score_adj}\n")
        if oom_adj is not None:
            self._write(f"{d}/oom_adj", f"{oom_adj}\n")
        return self

    def self_process(self, pid: int) -> ProcTree:
        """Make `self` point at /proc/PID, as the live /proc does for the reader."""
        link = self.root / "self"
        if link.is_symlink():
            link.unlink()
        link.symlink_to(str(pid))
        return self

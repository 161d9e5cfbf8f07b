"""Reads the proc filesystem: memory counters, overcommit settings, and every process's OOM score.

Every function takes `root`, the procfs mount to read ("/proc" on a live host, a directory
tree built by a test otherwise). Reading is tolerant in the way of psutil's `_pslinux.py`:
a process that exits between the listing and the read is skipped, a file an older kernel
does not have gives None, and a process the caller may not inspect is skipped.

This module is the only place, besides `sources/`, that touches kernel files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from datetime import datetime

from watchdog_oom.model import MemorySample, ProcScore
from watchdog_oom.valueclass import valueclass

OOM_SCORE_ADJ_MIN = -1000
OOM_SCORE_ADJ_MAX = 1000
# The legacy /proc/PID/oom_adj range (include/uapi/linux/oom.h): -17 disables the OOM
# killer for the task, -16..15 scale it.
OOM_DISABLE = -17
OOM_ADJUST_MAX = 15

# Longest command line kept per process. The kernel allows up to ARG_MAX (2 MiB), and the
# daemon remembers thousands of processes, so the tail of a huge argv is dropped.
CMDLINE_MAX_BYTES = 4096

# PF_KTHREAD in include/linux/sched.h: the task is a kernel thread (stat field 9, flags).
_PF_KTHREAD = 0x00200000
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# Container runtimes as they name a container's cgroup, with the 64-hex container id:
# docker (cgroupfs driver: /docker/ID; systemd driver: docker-ID.scope), containerd's CRI
# plugin (cri-containerd-ID.scope), cri-o (crio-ID.scope), podman (libpod-ID.scope), and a
# bare ID component, which the kubelet's cgroupfs driver uses under kubepods/.
_CONTAINER = re.compile(
    r"(?:(?P<runtime>docker|cri-containerd|crio|libpod)-(?P<scoped>[0-9a-f]{64})\.scope"
    r"|(?:^|/)(?P<bare>[0-9a-f]{64})(?:/|$))"
)
_RUNTIME_NAMES = {
    "docker": "docker",
    "cri-containerd": "containerd",
    "crio": "cri-o",
    "libpod": "podman",
}
# The kubelet names a pod's cgroup pod<UID> (cgroupfs driver) or
# kubepods-<qos>-pod<UID with _ for ->.slice (systemd driver).
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


@valueclass
class OomScoreScale:
    """How /proc/PID/oom_score is scaled on the running kernel.

    Ranking by the raw score is right on every kernel; only a comparison of a score with a
    fixed number needs the scale:

    - 2.6.36 to 5.8 (commit a63d83f427fb "oom: badness heuristic rewrite"): the score is
      memory use in permille of RAM + swap, plus oom_score_adj; an idle process scores 0,
      one that uses all memory 1000, and a positive oom_score_adj pushes it up to 2000
      (the cap at 1000 went in 2012 with "mm, oom: normalize oom scores to
      oom_score_adj scale only for userspace").
    - 5.9 on (commit 9066e5cfb73c "mm, oom: make the calculation of oom badness more
      accurate", also carried into some stable trees): score = (1000 + badness) * 2 / 3,
      badness being the permille of memory plus oom_score_adj, so an idle process with
      oom_score_adj 0 scores 666 and the range stays 0..2000. Only unkillable tasks
      (oom_score_adj -1000, init, kernel threads) read 0.
    - before 2.6.36 the score is the old unbounded badness(): `maximum` is None.
    """

    baseline: int
    maximum: int | None

    def memory_permille(self, oom_score: int, oom_score_adj: int | None) -> int | None:
        """The memory share (permille of RAM + swap) a score stands for, adj taken out."""
        if self.maximum is None:
            return None
        adj = oom_score_adj or 0
        if self.baseline:
            return max(0, oom_score * 3 // 2 - 1000 - adj)
        return max(0, oom_score - adj)


SCALE_SINCE_5_9 = OomScoreScale(baseline=666, maximum=2000)
SCALE_2_6_36 = OomScoreScale(baseline=0, maximum=2000)
SCALE_LEGACY = OomScoreScale(baseline=0, maximum=None)


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _read_optional(path: str) -> str | None:
    """A file's text, or None when this kernel (or this configuration) does not have it."""
    try:
        return _read(path)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    except OSError as e:
        # EOPNOTSUPP: PSI compiled in but disabled (psi=0 or CONFIG_PSI_DEFAULT_DISABLED);
        # psi_show() refuses the read while the files still exist.
        if e.errno == errno.EOPNOTSUPP:
            return None
        raise


def _read_int(path: str) -> int | None:
    text = _read_optional(path)
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (IndexError, ValueError):
        return None


def read_meminfo(root: str = "/proc") -> dict[str, int]:
    """/proc/meminfo as {field: value}; sizes in kB, HugePages_* counts as they are."""
    result: dict[str, int] = {}
    for line in _read(os.path.join(root, "meminfo")).splitlines():
        key, sep, rest = line.partition(":")
        fields = rest.split()
        if sep and fields:
            try:
                result[key] = int(fields[0])
            except ValueError:
                continue
    return result


def read_vmstat(root: str = "/proc") -> dict[str, int]:
    """/proc/vmstat as {counter: value}."""
    result: dict[str, int] = {}
    text = _read_optional(os.path.join(root, "vmstat"))
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) == 2:
            try:
                result[fields[0]] = int(fields[1])
            except ValueError:
                continue
    return result


def read_pressure(root: str = "/proc") -> dict[str, dict[str, float | int]] | None:
    """/proc/pressure/memory as {"some": {...}, "full": {...}}; None without PSI.

    Each line holds avg10, avg60, avg300 (percent, floats) and total (microseconds).
    PSI exists since 4.20 with CONFIG_PSI; it can be off at boot (psi=0), and then the
    file is absent or its read fails with EOPNOTSUPP.
    """
    text = _read_optional(os.path.join(root, "pressure", "memory"))
    if text is None:
        return None
    result: dict[str, dict[str, float | int]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        kind, *pairs = line.split()
        values: dict[str, float | int] = {}
        for pair in pairs:
            name, _, value = pair.partition("=")
            try:
                values[name] = int(value) if name == "total" else float(value)
            except ValueError:
                continue
        result[kind] = values
    return result or None


def read_overcommit(root: str = "/proc") -> tuple[int | None, int | None, int | None]:
    """(vm.overcommit_memory, vm.overcommit_ratio, vm.overcommit_kbytes); kbytes is 3.14+."""
    vm = os.path.join(root, "sys", "vm")
    return (
        _read_int(os.path.join(vm, "overcommit_memory")),
        _read_int(os.path.join(vm, "overcommit_ratio")),
        _read_int(os.path.join(vm, "overcommit_kbytes")),
    )


def read_boot_id(root: str = "/proc") -> str | None:
    """This boot's random id (/proc/sys/kernel/random/boot_id), None when unreadable."""
    text = _read_optional(os.path.join(root, "sys", "kernel", "random", "boot_id"))
    if text is None:
        return None
    return text.strip() or None


def read_uptime(root: str = "/proc") -> float | None:
    """Seconds since boot (/proc/uptime, first field)."""
    text = _read_optional(os.path.join(root, "uptime"))
    try:
        return float(text.split()[0]) if text else None
    except (IndexError, ValueError):
        return None


def sample(root: str, now: datetime) -> MemorySample:
    """One MemorySample: meminfo, overcommit settings, PSI and the vmstat oom_kill counter."""
    meminfo = read_meminfo(root)

    def required(key: str) -> int:
        # MemTotal, SwapTotal/SwapFree, CommitLimit and Committed_AS exist since 2.6.
        try:
            return meminfo[key]
        except KeyError:
            raise ValueError(f"{os.path.join(root, 'meminfo')} has no {key} line") from None

    overcommit_memory, overcommit_ratio, overcommit_kbytes = read_overcommit(root)
    pressure = read_pressure(root) or {}
    some, full = pressure.get("some", {}), pressure.get("full", {})
    full_total = full.get("total")
    return MemorySample(
        time=now,
        mem_total_kb=required("MemTotal"),
        # MemAvailable is 3.14+ (commit 34e431b0ae39). Older kernels get None rather than
        # an estimate: the rules then say "unknown" instead of guessing.
        mem_available_kb=meminfo.get("MemAvailable"),
        mem_free_kb=meminfo.get("MemFree"),
        swap_total_kb=required("SwapTotal"),
        swap_free_kb=required("SwapFree"),
        committed_as_kb=required("Committed_AS"),
        commit_limit_kb=required("CommitLimit"),
        overcommit_memory=overcommit_memory,
        overcommit_ratio=overcommit_ratio,
        overcommit_kbytes=overcommit_kbytes,
        psi_some_avg10=some.get("avg10"),
        psi_full_avg10=full.get("avg10"),
        psi_full_total_us=int(full_total) if full_total is not None else None,
        # The oom_kill counter is 4.13+ (commit 8e675f7af507).
        oom_kill_count=read_vmstat(root).get("oom_kill"),
    )


def oom_score_scale(root: str = "/proc") -> OomScoreScale:
    """The scale of /proc/PID/oom_score here, found by asking the kernel rather than its version.

    The 5.9 rescaling was backported to stable trees, so the release number cannot tell.
    The reading process itself is the probe: with oom_score_adj A and a small memory share,
    it scores at least (1000 + A) * 2 / 3 on the new scale, but about its permille of
    memory + A on the old one; the two overlap only for a probe holding some two thirds of
    RAM + swap (with A = 0). Without a readable `self` (a test tree), the current scale
    is assumed.
    """
    self_dir = os.path.join(root, "self")
    adj = _read_int(os.path.join(self_dir, "oom_score_adj"))
    score = _read_int(os.path.join(self_dir, "oom_score"))
    if score is None:
        return SCALE_SINCE_5_9
    if adj is None:
        return SCALE_LEGACY
    if adj <= OOM_SCORE_ADJ_MIN:
        # A fully protected probe scores 0 on every scale and cannot tell them apart.
        return SCALE_SINCE_5_9
    return SCALE_SINCE_5_9 if score >= (1000 + adj) * 2 // 3 else SCALE_2_6_36


def adj_from_legacy(oom_adj: int) -> int:
    """oom_score_adj for a legacy oom_adj value, as fs/proc/base.c oom_adj_write converts it."""
    if oom_adj <= OOM_DISABLE:
        return OOM_SCORE_ADJ_MIN
    if oom_adj >= OOM_ADJUST_MAX:
        return OOM_SCORE_ADJ_MAX
    return int(oom_adj * OOM_SCORE_ADJ_MAX / -OOM_DISABLE)  # C division truncates toward 0


def legacy_from_adj(oom_score_adj: int) -> int:
    """Legacy oom_adj for an oom_score_adj value, as fs/proc/base.c oom_adj_read converts it."""
    if oom_score_adj <= OOM_SCORE_ADJ_MIN:
        return OOM_DISABLE
    if oom_score_adj >= OOM_SCORE_ADJ_MAX:
        return OOM_ADJUST_MAX
    return int(oom_score_adj * -OOM_DISABLE / OOM_SCORE_ADJ_MAX)  # C division truncates toward 0


def container_from_cgroup(cgroup: str | None) -> tuple[str, str] | None:
    """(runtime, 64-hex container id) named by a cgroup path, None when it names no container.

    The runtime is "docker", "containerd", "cri-o" or "podman" where the scope's prefix
    says it; a bare id is "docker" under a docker/ parent, else "container" (the kubelet's
    cgroupfs driver does not say which runtime made it).
    """
    if not cgroup:
        return None
    match = _CONTAINER.search(cgroup)
    if match is None:
        return None
    if match["scoped"]:
        return _RUNTIME_NAMES[match["runtime"]], match["scoped"]
    parent = cgroup[: match.start("bare")].rstrip("/").rpartition("/")[2]
    return ("docker" if parent == "docker" else "container"), match["bare"]


def pod_uid_from_cgroup(cgroup: str | None) -> str | None:
    """The Kubernetes pod UID a cgroup path belongs to (dashes restored), None outside kubepods."""
    if not cgroup or "kubepods" not in cgroup:
        return None
    pod = _POD.search(cgroup)
    return pod[1].replace("_", "-") if pod else None


def unit_from_cgroup(cgroup: str | None) -> str | None:
    """The systemd unit or container a cgroup path belongs to, e.g. "mysqld.service".

    Containers win over the systemd scope that holds them: "docker:<12 hex>",
    "containerd:…", "cri-o:…", "podman:…"; a Kubernetes pod is "pod:<uid>/<container>".
    Otherwise the innermost *.service or *.scope component; None when there is neither.
    """
    if not cgroup:
        return None
    found = container_from_cgroup(cgroup)
    container = f"{found[0]}:{found[1][:12]}" if found else None
    pod_uid = pod_uid_from_cgroup(cgroup)
    if pod_uid:
        return f"pod:{pod_uid}/{container}" if container else f"pod:{pod_uid}"
    if container:
        return container
    for component in reversed(cgroup.split("/")):
        if component.endswith((".service", ".scope")):
            return component
    return None


def _cgroup_path(text: str) -> str | None:
    """The cgroup that governs a process's memory, from /proc/PID/cgroup.

    Each line is "hierarchy-ID:controllers:path". On a pure cgroup v2 host only the
    "0::" line exists. On a v1 or hybrid host the memory controller's line is the one
    whose limit the OOM killer enforces and whose path the kernel prints as task_memcg,
    so it is taken before the (controller-less) "0::" line.
    """
    unified: str | None = None
    for line in text.splitlines():
        controllers, _, path = line.partition(":")[2].partition(":")
        if not path:
            continue
        if controllers == "":
            unified = path
        elif "memory" in controllers.split(","):
            return path
    return unified


def _read_at(name: str, dir_fd: int, limit: int = 65536) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _scan_one(
    pid: int, dir_fd: int, with_cmdline: bool, units: dict[str | None, str | None]
) -> ProcScore | None:
    stat = _read_at("stat", dir_fd)
    # comm may itself hold spaces and parentheses: it runs from the first "(" to the last ")".
    open_paren = stat.find(b"(")
    close_paren = stat.rfind(b")")
    name = stat[open_paren + 1 : close_paren].decode("utf-8", "replace")
    # Fields from 3 (state) on; index i here is stat field i + 3 in proc(5).
    fields = stat[close_paren + 2 :].split()
    if int(fields[6]) & _PF_KTHREAD:
        # Kernel threads own no memory the OOM killer could free: never its victims.
        return None
    start_time = int(fields[19])  # field 22: starttime, clock ticks after boot
    rss_kb = int(fields[21]) * _PAGE_KB  # field 24: rss pages, the same get_mm_rss() as statm

    oom_score = int(_read_at("oom_score", dir_fd))
    if oom_score == 0 and fields[0] in (b"Z", b"X"):
        # A zombie without memory. A zombie group leader whose threads still run keeps a
        # score (oom_badness() looks at every thread's mm) and stays in the list.
        return None
    oom_adj: int | None = None
    try:
        oom_score_adj: int | None = int(_read_at("oom_score_adj", dir_fd))
    except FileNotFoundError:
        # Before 2.6.36 only the legacy oom_adj (-17..15) exists.
        oom_score_adj = None
        oom_adj = int(_read_at("oom_adj", dir_fd))

    uid: int | None = None
    status = _read_at("status", dir_fd)
    at = status.find(b"\nUid:")
    if at >= 0:
        uid = int(status[at + 5 : status.find(b"\n", at + 5)].split()[0])  # real uid first

    cgroup: str | None = None
    with contextlib.suppress(FileNotFoundError):  # kernels without CONFIG_CGROUPS
        cgroup = _cgroup_path(_read_at("cgroup", dir_fd).decode("utf-8", "replace"))
    if cgroup not in units:
        units[cgroup] = unit_from_cgroup(cgroup)

    cmdline: str | None = None
    if with_cmdline:
        try:
            raw = _read_at("cmdline", dir_fd, CMDLINE_MAX_BYTES)
        except PermissionError:
            raw = b""
        # Arguments are NUL-separated; a process that rewrote its argv (postgres,
        # sshd) may use spaces instead. Empty for a zombie.
        cmdline = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace") or None

    return ProcScore(
        pid=pid,
        process=name,
        oom_score=oom_score,
        oom_score_adj=oom_score_adj,
        uid=uid,
        rss_kb=rss_kb,
        cmdline=cmdline,
        cgroup=cgroup,
        unit=units[cgroup],
        oom_adj=oom_adj,
        start_time=start_time,
    )


def scan_processes(root: str = "/proc", *, with_cmdline: bool = True) -> list[ProcScore]:
    """Every user-space process with its OOM score, in /proc order.

    Kernel threads and dead zombies are left out (the OOM killer never picks them). A process
    that exits during the scan, or that the caller may not inspect (hidepid), is skipped.
    Per process this opens the pid directory once and reads stat, oom_score,
    oom_score_adj, status, cgroup and (with_cmdline) cmdline relative to it: about 20
    syscalls and no path walks; kernel threads stop after stat.
    """
    result: list[ProcScore] = []
    # Unit names derived per cgroup path, for this scan only: most processes share a few.
    units: dict[str | None, str | None] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                dir_fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except (FileNotFoundError, PermissionError, NotADirectoryError):
                continue
            try:
                proc = _scan_one(int(entry.name), dir_fd, with_cmdline, units)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                # ProcessLookupError (ESRCH): the process exited after the directory was
                # opened; reads of its files now fail.
                continue
            except (ValueError, IndexError):
                # A file read empty or half-written as the process was torn down.
                continue
            finally:
                os.close(dir_fd)
            if proc is not None:
                result.append(proc)
    return result


def read_process(root: str, pid: int, *, with_cmdline: bool = True) -> ProcScore | None:
    """One process as scan_processes() sees it; None when it is gone, a kernel thread, or hidden.

    ``pid`` may be a thread id: /proc/TID is there too (unlisted), describing that thread.
    """
    try:
        dir_fd = os.open(os.path.join(root, str(pid)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, PermissionError, NotADirectoryError):
        return None
    try:
        return _scan_one(pid, dir_fd, with_cmdline, {})
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError, IndexError):
        return None
    finally:
        os.close(dir_fd)


def read_tgid(root: str, tid: int) -> int | None:
    """The process (thread group) a thread id belongs to, from /proc/TID/status; None when gone."""
    try:
        with open(os.path.join(root, str(tid), "status"), "rb") as file:
            for line in file:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _write_adj_file(path: str, value: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def set_oom_score_adj(root: str, pid: int, value: int) -> int:
    """Set /proc/PID/oom_score_adj to value and return the previous value.

    On kernels before 2.6.36 the legacy oom_adj is written instead, the value mapped to
    -17..15 as the kernel maps it, and the previous value is returned in oom_score_adj
    units. Lowering the value below the process's oom_score_adj_min needs
    CAP_SYS_RESOURCE. Raises ValueError for a value outside -1000..1000,
    ProcessLookupError when the process is gone, PermissionError when not permitted.
    """
    if not OOM_SCORE_ADJ_MIN <= value <= OOM_SCORE_ADJ_MAX:
        raise ValueError(f"oom_score_adj must be within -1000..1000, not {value}")
    pid_dir = os.path.join(root, str(pid))
    path = os.path.join(pid_dir, "oom_score_adj")
    legacy = not os.path.exists(path) and os.path.exists(os.path.join(pid_dir, "oom_adj"))
    if legacy:
        path = os.path.join(pid_dir, "oom_adj")
    try:
        previous = int(_read(path))
        _write_adj_file(path, legacy_from_adj(value) if legacy else value)
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessLookupError(errno.ESRCH, f"process {pid} does not exist (it may have exited)") from None
    except PermissionError as e:
        raise PermissionError(
            e.errno,
            f"not permitted to set oom_score_adj of process {pid} to {value}"
            " (lowering it needs CAP_SYS_RESOURCE, which this process lacks)",
        ) from None
    return adj_from_legacy(previous) if legacy else previous


def lower_own_oom_score_adj(value: int, root: str = "/proc") -> tuple[bool, str]:
    """Lower this process's oom_score_adj to value, never raising it; (ok, what happened)."""
    pid = os.getpid()
    try:
        current = int(_read(os.path.join(root, str(pid), "oom_score_adj")))
    except OSError as e:
        return False, f"cannot read own oom_score_adj: {e.strerror or e}"
    if current <= value:
        return True, f"oom_score_adj is already {current} (at or below {value}); left as it is"
    try:
        previous = set_oom_score_adj(root, pid, value)
    except (PermissionError, ProcessLookupError, ValueError) as e:
        return False, f"{e.strerror if isinstance(e, OSError) else e}; oom_score_adj stays {current}"
    return True, f"oom_score_adj lowered from {previous} to {value}"

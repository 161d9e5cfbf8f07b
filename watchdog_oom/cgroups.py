"""Reads memory cgroups (v1 and v2): which have a limit of their own, how close each is to it.

The cgroup mount root ("/sys/fs/cgroup" on a live host, a directory tree in a test) and the
root under which container runtimes keep their state ("/") are passed in, like procfs's
root. Reading is tolerant in the way of procfs: a cgroup removed between the listing and
the read (a container that stopped) is skipped, and a file this kernel or this hierarchy
does not have is None.

Where the memory controller lives:
- cgroup v2 (unified): one tree at the mount root, limits in memory.max and memory.high.
- cgroup v1: its own hierarchy at <root>/memory, limits in memory.limit_in_bytes.
- hybrid (systemd's default for years): v1 hierarchies plus a cgroup2 tree at
  <root>/unified that usually holds no controller; memory is wherever cgroup.controllers
  (v2) or the memory.* files (v1) say it is.

Cost: one pass over the tree reads one file per cgroup on v1 (memory.limit_in_bytes) and
two on v2 (memory.max, memory.high), and the rest only for the cgroups that have a limit
below the host's memory. Every read is relative to an open directory descriptor, so no
path is walked twice. `max_cgroups` bounds a pass on a host with runaway cgroups.

What is read of a cgroup that has a limit (its figures, the names of its container and pod,
its processes) is cgroup_limits.py's, loaded when a pass first finds one: a host whose
cgroups have no limit below its memory never reads more than the limits themselves.
"""

from __future__ import annotations

import errno
import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import field
from datetime import datetime
from typing import TYPE_CHECKING

from watchdog_oom.model import CgroupSample
from watchdog_oom.valueclass import valueclass

if TYPE_CHECKING:  # loaded at the first cgroup with a limit (see CgroupReader._visit)
    from watchdog_oom.cgroup_limits import RuntimeNames


@valueclass
class Hierarchy:
    """A mounted cgroup hierarchy that holds the memory controller."""

    version: int  # 1 or 2
    root: str  # its mount point: /sys/fs/cgroup (v2), /sys/fs/cgroup/memory (v1)


@valueclass(frozen=False)
class Scan:
    """One pass over the memory hierarchies."""

    samples: list[CgroupSample]
    visited: int = 0  # cgroup directories looked at
    vanished: int = 0  # removed while being read
    truncated: bool = False  # max_cgroups reached: the rest of the tree was not read
    hierarchies: list[Hierarchy] = field(default_factory=list)


# -- reading files ------------------------------------------------------------------------

def _read_at(name: str, dir_fd: int, limit: int = 65536) -> bytes | None:
    """A cgroup file's bytes, or None when this kernel or hierarchy does not have it."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    except (FileNotFoundError, PermissionError):
        return None
    try:
        return os.read(fd, limit)
    except OSError as e:
        # EOPNOTSUPP: memory.pressure with PSI disabled at boot (psi=0).
        if e.errno in (errno.EOPNOTSUPP, errno.ENODEV, errno.EINVAL):
            return None
        raise
    finally:
        os.close(fd)


def _int(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.split(None, 1)[0])
    except (IndexError, ValueError):
        return None  # "max" (v2, no limit) and empty files


def hierarchies(root: str = "/sys/fs/cgroup") -> list[Hierarchy]:
    """The hierarchies under a cgroup mount root that hold the memory controller."""
    def controllers(path: str) -> list[str]:
        try:
            with open(os.path.join(path, "cgroup.controllers"), "rb") as f:
                return f.read().decode().split()
        except OSError:
            return []

    if "memory" in controllers(root):
        return [Hierarchy(2, root)]  # pure v2: the mount root is the unified tree
    found = []
    v1 = os.path.join(root, "memory")  # also a symlink to a co-mount such as "cpu,memory"
    if os.path.exists(os.path.join(v1, "memory.limit_in_bytes")):
        found.append(Hierarchy(1, os.path.realpath(v1)))
    unified = os.path.join(root, "unified")
    if "memory" in controllers(unified):
        found.append(Hierarchy(2, unified))
    return found


# -- the scan -----------------------------------------------------------------------------

@valueclass(frozen=False)
class _Node:
    rel: str  # path as the kernel prints it
    depth: int
    limited_above: tuple[int, ...]  # indices (in found) of limited ancestors, nearest last


class CgroupReader:
    """Walks the memory hierarchies and reads every cgroup that has a limit of its own.

    `include` and `exclude` are shell globs on the cgroup path (as the kernel prints it);
    excluded cgroups are not read beyond their limit. Container names found in runtime
    state are remembered between scans (bounded).
    """

    def __init__(self, root: str = "/sys/fs/cgroup", state_root: str | None = "/", *,
                 include: Sequence[str] = ("*",), exclude: Sequence[str] = (),
                 max_cgroups: int = 20000, max_depth: int = 32) -> None:
        self.root = root
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.max_cgroups = max_cgroups
        self.max_depth = max_depth
        self.state_root = state_root  # None: containers are not named
        self.names: RuntimeNames | None = None  # made at the first cgroup with a limit (cgroup_limits.py)

    def wanted(self, path: str) -> bool:
        """Whether the include/exclude globs let this cgroup path be reported."""
        if not any(fnmatch.fnmatchcase(path, g) for g in self.include):
            return False
        return not any(fnmatch.fnmatchcase(path, g) for g in self.exclude)

    def scan(self, now: datetime, host_memory_bytes: int) -> Scan:
        """Every wanted cgroup with a memory limit (or v2 memory.high) below `host_memory_bytes`."""
        result = Scan(samples=[], hierarchies=hierarchies(self.root))
        for hierarchy in result.hierarchies:
            if result.truncated:
                break
            self._walk(hierarchy, now, host_memory_bytes, result)
        if self.state_root is not None and result.samples:
            from watchdog_oom.cgroup_limits import name_pods

            result.samples = name_pods(result.samples)
        return result

    def _walk(self, h: Hierarchy, now: datetime, host_memory: int, result: Scan) -> None:
        found: list[dict] = []  # limited cgroups of this hierarchy, as mutable records
        stack = [_Node("/", 0, ())]
        while stack:
            if result.visited >= self.max_cgroups:
                result.truncated = True
                break
            node = stack.pop()
            try:
                fd = os.open(os.path.join(h.root, node.rel.lstrip("/")), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                result.vanished += 1
                continue
            result.visited += 1
            try:
                index = self._visit(h, node, fd, now, host_memory, found)
                if node.depth < self.max_depth:
                    above = node.limited_above + ((index,) if index is not None else ())
                    with os.scandir(fd) as entries:
                        children = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
                    base = node.rel.rstrip("/")
                    stack.extend(_Node(f"{base}/{name}", node.depth + 1, above) for name in reversed(children))
            except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
                # ENOENT / ENODEV on files of a cgroup being removed.
                result.vanished += 1
            except OSError as e:
                if e.errno != errno.ENODEV:
                    raise
                result.vanished += 1
            finally:
                os.close(fd)
        for record in found:
            if record.pop("report"):
                result.samples.append(CgroupSample(**record))

    def _visit(self, h: Hierarchy, node: _Node, fd: int, now: datetime, host_memory: int,
               found: list[dict]) -> int | None:
        """Read one cgroup; returns its index in `found` when it has a limit of its own."""
        if node.rel == "/":
            return None  # the root has no limit: its figures are the host's
        if h.version == 1:
            limit = _int(_read_at("memory.limit_in_bytes", fd))
            high = None
        else:
            limit = _int(_read_at("memory.max", fd))
            high = _int(_read_at("memory.high", fd))
        limit = limit if limit is not None and limit < host_memory else None
        high = high if high is not None and high < host_memory else None
        if limit is None and high is None:
            if h.version == 1 and node.limited_above:
                # v1 counts a kill only in the victim's own cgroup (memory.oom_control
                # oom_kill is not hierarchical there): add it to every limited ancestor.
                from watchdog_oom.cgroup_limits import keyed  # (loaded with that ancestor)

                kills = keyed(_read_at("memory.oom_control", fd), b"oom_kill").get(b"oom_kill")
                for i in node.limited_above:
                    if kills and found[i]["oom_kill"] is not None:
                        found[i]["oom_kill"] += kills
            return None
        # A cgroup with a limit of its own: what is read of it, and its name, are cgroup_limits.py's
        # (loaded at the first such cgroup: the daemon of a host without one never holds them).
        from watchdog_oom import cgroup_limits as limited

        wanted = self.wanted(node.rel)
        record = limited.read_v1(fd, limit) if h.version == 1 else limited.read_v2(fd, limit, high)
        if record is None:
            return None
        if h.version == 1 and record["oom_kill"]:
            for i in node.limited_above:
                if found[i]["oom_kill"] is not None:
                    found[i]["oom_kill"] += record["oom_kill"]
        if wanted and self.names is None and self.state_root is not None:
            self.names = limited.RuntimeNames(self.state_root)
        labels = limited.labels(node.rel, self.names, now) if wanted else {}
        name, kind = limited.identify(node.rel, labels)
        record.update(path=node.rel, version=h.version, time=now, name=name, kind=kind, labels=labels, report=wanted)
        found.append(record)
        return len(found) - 1

def hierarchy_of(scan_hierarchies: Iterable[Hierarchy], version: int) -> Hierarchy | None:
    """The hierarchy of a sample's version among those a scan read."""
    return next((h for h in scan_hierarchies if h.version == version), None)

"""What is read of a memory cgroup that has a limit of its own: its figures (v1, v2), the names
of its container and pod (the container runtimes' state), its processes and their badness.

Loaded when a pass of cgroups.CgroupReader first finds a cgroup with a limit below the host's
memory (or a v2 memory.high), not at start: on a host without one the daemon reads the limits
alone. Nothing here is the kill path: a kill's unit and cgroup come from its own lines and
procfs (rules/enrich.py); the names here are a cgroup alert's and the `cgroups` command's.
Reading is tolerant as cgroups.py's is: a file this kernel does not have is None.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from datetime import datetime, timedelta

from watchdog_oom.cgroups import _int, _read_at
from watchdog_oom.model import CgroupSample, CgroupTask
from watchdog_oom.procfs import CMDLINE_MAX_BYTES, container_from_cgroup, pod_uid_from_cgroup

# Longest name taken from a runtime's state file: names come from whoever may start containers.
NAME_MAX = 128
# Largest runtime state file read (an OCI config.json is a few kB; podman's containers.json
# lists every container).
STATE_MAX_BYTES = 8 << 20
# Processes read per cgroup when naming its likely victim.
TASKS_MAX = 4096
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# -- the figures --------------------------------------------------------------------------

def read_v1(fd: int, limit: int | None) -> dict | None:
    """The figures of a v1 cgroup with a limit (None: it is gone)."""
    usage = _int(_read_at("memory.usage_in_bytes", fd))
    if usage is None:
        return None
    # total_* are hierarchical, like usage_in_bytes: cAdvisor subtracts total_inactive_file.
    # hierarchical_memsw_limit (memory + swap) is there with swap accounting only
    # (swapaccount=1); it saves reading memory.memsw.limit_in_bytes.
    stat = keyed(_read_at("memory.stat", fd), b"total_inactive_file", b"total_swap",
                  b"hierarchical_memsw_limit")
    inactive = stat.get(b"total_inactive_file")
    oom = keyed(_read_at("memory.oom_control", fd), b"under_oom", b"oom_kill")
    memsw = stat.get(b"hierarchical_memsw_limit")
    swap_limit = memsw - limit if memsw is not None and limit is not None and memsw - limit < (1 << 50) else None
    return dict(limit_bytes=limit, usage_bytes=usage, working_set_bytes=max(usage - (inactive or 0), 0),
                inactive_file_bytes=inactive, swap_bytes=stat.get(b"total_swap"), swap_limit_bytes=swap_limit,
                failcnt=_int(_read_at("memory.failcnt", fd)),
                # oom_kill is 4.13+ (commit 8e675f7af507 "mm/oom_kill: count global and
                # memory cgroup oom kills").
                oom_kill=oom.get(b"oom_kill"), under_oom=bool(oom[b"under_oom"]) if b"under_oom" in oom else None)

def read_v2(fd: int, limit: int | None, high: int | None) -> dict | None:
    """The figures of a v2 cgroup with a limit or memory.high (None: it is gone)."""
    usage = _int(_read_at("memory.current", fd))
    if usage is None:
        return None
    inactive = keyed(_read_at("memory.stat", fd), b"inactive_file").get(b"inactive_file")
    # memory.events is hierarchical (kills in descendants count here too), unless the
    # hierarchy is mounted with memory_localevents.
    events = {k.decode(): v for k, v in keyed(_read_at("memory.events", fd), b"low", b"high", b"max",
                                                b"oom", b"oom_kill", b"oom_group_kill").items()}
    some, full = _pressure(_read_at("memory.pressure", fd))
    swap_max = _int(_read_at("memory.swap.max", fd))
    group = _int(_read_at("memory.oom.group", fd))
    return dict(limit_bytes=limit, high_bytes=high, usage_bytes=usage,
                working_set_bytes=max(usage - (inactive or 0), 0), inactive_file_bytes=inactive,
                swap_bytes=_int(_read_at("memory.swap.current", fd)), swap_limit_bytes=swap_max,
                events=events, oom_kill=events.get("oom_kill"),
                oom_group=bool(group) if group is not None else None,
                psi_some_avg10=some, psi_full_avg10=full)


def keyed(raw: bytes | None, *keys: bytes) -> dict[bytes, int]:
    """Values of `keys` in a flat-keyed file ("key value" lines: memory.stat, memory.events)."""
    out: dict[bytes, int] = {}
    if not raw:
        return out
    text = b"\n" + raw
    for key in keys:
        at = text.find(b"\n" + key + b" ")
        if at < 0:
            continue
        start = at + len(key) + 2
        end = text.find(b"\n", start)
        try:
            out[key] = int(text[start:end if end >= 0 else len(text)])
        except ValueError:
            continue
    return out


def _pressure(raw: bytes | None) -> tuple[float | None, float | None]:
    """(some avg10, full avg10) of a PSI file."""
    some = full = None
    for line in (raw or b"").splitlines():
        kind, _, rest = line.partition(b" ")
        at = rest.find(b"avg10=")
        if at < 0:
            continue
        try:
            value = float(rest[at + 6:].split(None, 1)[0])
        except (IndexError, ValueError):
            continue
        if kind == b"some":
            some = value
        elif kind == b"full":
            full = value
    return some, full


# -- names --------------------------------------------------------------------------------

def _clean(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _CONTROL.sub("?", value)[:NAME_MAX]


def _json_file(path: str) -> object | None:
    try:
        with open(path, "rb") as f:
            raw = f.read(STATE_MAX_BYTES + 1)
    except OSError:
        return None
    if len(raw) > STATE_MAX_BYTES:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


class RuntimeNames:
    """Container and pod names from the container runtimes' own state files, cached by id.

    Docker keeps each container's config in /var/lib/docker/containers/ID/config.v2.json
    ("Name": "/web", and the kubelet's labels under dockershim); containerd's runtime v2
    shim keeps the OCI bundle at /run/containerd/io.containerd.runtime.v2.task/NS/ID/, whose
    config.json carries the CRI plugin's annotations (io.kubernetes.cri.container-name,
    sandbox-name, sandbox-namespace); CRI-O writes the kubelet's names as annotations
    (io.kubernetes.container.name, io.kubernetes.pod.name, io.kubernetes.pod.namespace) in
    /run/containers/storage/overlay-containers/ID/userdata/config.json; Podman lists its
    containers with their names in /var/lib/containers/storage/overlay-containers/containers.json.
    """

    def __init__(self, state_root: str = "/", max_entries: int = 8192, retry: timedelta = timedelta(minutes=1)):
        self.state_root = state_root
        self.max_entries = max_entries
        self.retry = retry
        self._cache: OrderedDict[str, tuple[dict[str, str], datetime]] = OrderedDict()
        self._podman: tuple[float, dict[str, str]] | None = None

    def _path(self, *parts: str) -> str:
        return os.path.join(self.state_root, *parts)

    def lookup(self, runtime: str, container_id: str, now: datetime) -> dict[str, str]:
        """{"container", "pod", "namespace"} as far as the runtime's state says; {} when it does not."""
        cached = self._cache.get(container_id)
        if cached is not None and (cached[0] or now - cached[1] < self.retry):
            self._cache.move_to_end(container_id)
            return cached[0]
        found: dict[str, str] = {}
        for reader in self._readers(runtime):
            found = reader(container_id)
            if found:
                break
        self._cache[container_id] = (found, now)
        self._cache.move_to_end(container_id)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return found

    def _readers(self, runtime: str) -> list:
        order = {"docker": [self._docker, self._containerd], "containerd": [self._containerd],
                 "cri-o": [self._crio], "podman": [self._podman_names, self._crio]}
        return order.get(runtime, [self._containerd, self._crio, self._docker])

    def _docker(self, cid: str) -> dict[str, str]:
        doc = _json_file(self._path("var/lib/docker/containers", cid, "config.v2.json"))
        if not isinstance(doc, dict):
            return {}
        labels = (doc.get("Config") or {}).get("Labels") or {}
        out = {"container": _clean(labels.get("io.kubernetes.container.name"))
               or _clean(str(doc.get("Name") or "").lstrip("/")),
               "pod": _clean(labels.get("io.kubernetes.pod.name")),
               "namespace": _clean(labels.get("io.kubernetes.pod.namespace"))}
        return {k: v for k, v in out.items() if v}

    def _annotations(self, path: str) -> dict[str, str]:
        doc = _json_file(path)
        notes = doc.get("annotations") if isinstance(doc, dict) else None
        return notes if isinstance(notes, dict) else {}

    def _containerd(self, cid: str) -> dict[str, str]:
        base = self._path("run/containerd/io.containerd.runtime.v2.task")
        try:
            namespaces = sorted(os.listdir(base))
        except OSError:
            return {}
        for ns in namespaces:
            notes = self._annotations(os.path.join(base, ns, cid, "config.json"))
            if not notes:
                continue
            sandbox = notes.get("io.kubernetes.cri.container-type") == "sandbox"
            out = {"container": "POD" if sandbox else _clean(notes.get("io.kubernetes.cri.container-name"))
                   or _clean(notes.get("nerdctl/name")),
                   "pod": _clean(notes.get("io.kubernetes.cri.sandbox-name")),
                   "namespace": _clean(notes.get("io.kubernetes.cri.sandbox-namespace"))}
            return {k: v for k, v in out.items() if v}
        return {}

    def _crio(self, cid: str) -> dict[str, str]:
        for base in ("run/containers/storage", "var/lib/containers/storage"):
            notes = self._annotations(self._path(base, "overlay-containers", cid, "userdata", "config.json"))
            if notes:
                out = {"container": _clean(notes.get("io.kubernetes.container.name")),
                       "pod": _clean(notes.get("io.kubernetes.pod.name")),
                       "namespace": _clean(notes.get("io.kubernetes.pod.namespace"))}
                return {k: v for k, v in out.items() if v}
        return {}

    def _podman_names(self, cid: str) -> dict[str, str]:
        path = self._path("var/lib/containers/storage/overlay-containers/containers.json")
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return {}
        if self._podman is None or self._podman[0] != mtime:
            doc = _json_file(path)
            names: dict[str, str] = {}
            for entry in doc if isinstance(doc, list) else []:
                if isinstance(entry, dict) and isinstance(entry.get("names"), list) and entry["names"]:
                    name = _clean(entry["names"][0])
                    if name and isinstance(entry.get("id"), str):
                        names[entry["id"]] = name
            self._podman = (mtime, names)
        name = self._podman[1].get(cid)
        return {"container": name} if name else {}


def identify(path: str, labels: dict[str, str]) -> tuple[str, str]:
    """(name for people, kind) of a cgroup path: container, pod, service, scope, slice or cgroup."""
    container = container_from_cgroup(path)
    pod_uid = pod_uid_from_cgroup(path)
    pod = f"{labels['namespace']}/{labels['pod']}" if labels.get("pod") and labels.get("namespace") else None
    if container:
        runtime, cid = container
        if labels.get("container"):
            return (f"{pod}/{labels['container']}" if pod else f"{labels['container']} ({runtime})"), "container"
        short = f"{runtime}:{cid[:12]}"
        return (f"pod:{pod_uid}/{short}" if pod_uid else short), "container"
    last = path.rstrip("/").rpartition("/")[2] or "/"
    if pod_uid and (last.replace("_", "-").endswith(f"pod{pod_uid}.slice") or last == f"pod{pod_uid}"):
        return (pod or f"pod:{pod_uid}"), "pod"
    for suffix, kind in ((".service", "service"), (".scope", "scope"), (".slice", "slice")):
        if last.endswith(suffix):
            return last, kind
    return path, "cgroup"


def labels(path: str, names: RuntimeNames | None, now: datetime) -> dict[str, str]:
    labels: dict[str, str] = {}
    container = container_from_cgroup(path)
    if container:
        labels["runtime"], labels["container_id"] = container
        if names is not None:
            labels.update(names.lookup(container[0], container[1], now))
    pod_uid = pod_uid_from_cgroup(path)
    if pod_uid:
        labels["pod_uid"] = pod_uid
    return labels


def name_pods(samples: list[CgroupSample]) -> list[CgroupSample]:
    """A pod's cgroup takes its name from what the runtime said about any of its containers."""
    pods: dict[str, dict[str, str]] = {}
    for s in samples:
        uid = s.labels.get("pod_uid")
        if uid and s.labels.get("pod") and s.labels.get("namespace"):
            pods.setdefault(uid, {"pod": s.labels["pod"], "namespace": s.labels["namespace"]})
    out = []
    for s in samples:
        uid = s.labels.get("pod_uid")
        if s.kind == "pod" and uid in pods and "pod" not in s.labels:
            labels = {**s.labels, **pods[uid]}
            s = s.replace(labels=labels, name=f"{labels['namespace']}/{labels['pod']}")
        out.append(s)
    return out


# -- the processes of one cgroup ----------------------------------------------------------

def cgroup_pids(hierarchy_root: str, path: str, limit: int = TASKS_MAX) -> list[tuple[int, str]]:
    """(pid, cgroup path) of every process in the cgroup and its descendants, at most `limit`."""
    out: list[tuple[int, str]] = []
    base = os.path.join(hierarchy_root, path.lstrip("/"))
    for dirpath, dirnames, _files in os.walk(base):
        relative = os.path.relpath(dirpath, hierarchy_root)
        rel = "/" if relative == "." else "/" + relative
        try:
            with open(os.path.join(dirpath, "cgroup.procs"), "rb") as f:
                pids = f.read().split()
        except OSError:
            continue  # removed while walking
        for pid in pids:
            out.append((int(pid), rel))
            if len(out) >= limit:
                return out
        dirnames.sort()
    return out


def _status_kb(status: bytes, key: bytes) -> int | None:
    at = status.find(b"\n" + key + b":")
    if at < 0:
        return None
    try:
        return int(status[at + len(key) + 2:status.find(b"\n", at + 1)].split()[0])
    except (IndexError, ValueError):
        return None


def read_task(procfs_root: str, pid: int, cgroup: str | None = None) -> CgroupTask | None:
    """One process's badness figures from /proc/PID/status, oom_score_adj and cmdline; None when gone."""
    try:
        dir_fd = os.open(os.path.join(procfs_root, str(pid)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, PermissionError, NotADirectoryError):
        return None
    try:
        status = _read_at("status", dir_fd)
        adj = _int(_read_at("oom_score_adj", dir_fd))
        raw = _read_at("cmdline", dir_fd, CMDLINE_MAX_BYTES) or b""
    except (ProcessLookupError, FileNotFoundError):
        return None
    finally:
        os.close(dir_fd)
    if not status:
        return None
    status = b"\n" + status
    rss = _status_kb(status, b"VmRSS")
    if rss is None:
        return None  # a kernel thread or a zombie: no memory to free
    name_at = status.find(b"\nName:")
    name = "?"
    if name_at >= 0:
        name = status[name_at + 6:status.find(b"\n", name_at + 1)].strip().decode("utf-8", "replace")
    uid = _status_kb(status, b"Uid")
    cmdline = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace") or None
    return CgroupTask(pid=pid, process=name, oom_score_adj=adj if adj is not None else 0, rss_kb=rss,
                      swap_kb=_status_kb(status, b"VmSwap") or 0, pgtables_kb=_status_kb(status, b"VmPTE") or 0,
                      uid=uid, cmdline=cmdline, cgroup=cgroup)


def read_tasks(hierarchy_root: str, path: str, procfs_root: str = "/proc",
               limit: int = TASKS_MAX) -> list[CgroupTask]:
    """The processes of a cgroup and its descendants with their badness figures."""
    tasks = (read_task(procfs_root, pid, cg) for pid, cg in cgroup_pids(hierarchy_root, path, limit))
    return [t for t in tasks if t is not None]

"""What a stored record is made of and matched by, free of any database: the kill record
of INTERFACE.md, when two sightings are one kill, what a second sighting may add, what a
new kills row holds, and what a mute silences."""

from __future__ import annotations

import fnmatch
import operator
from datetime import datetime, timedelta
from typing import Any

from watchdog_oom.model import KILL_FIELDS, CgroupSample, OomKill

# Two records of one kill (seen through kmsg and syslog, or imported again) are the same
# kill when host, pid and name agree and their times lie this close: syslog stamps
# whole seconds in local time, and a log read late may lag the kernel's clock.
SAME_KILL_WINDOW = timedelta(seconds=90)
# The source of a kill only the oom/mark_victim tracepoint saw, and the name it has when the
# kernel's event carries only the pid (before 6.9) and nobody knew the process.
TRACEPOINT = "tracepoint"
UNKNOWN_NAME = "?"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def kill_record(row: Any) -> dict[str, Any]:
    """The INTERFACE.md kill record of a stored kill, JSON-ready."""
    values = list(_RECORD_ATTRIBUTES(row))  # one C call for all the fields (history lists thousands)
    values[_TIME] = _iso(values[_TIME])
    return dict(zip(KILL_FIELDS, values, strict=True))


# A sample as `history samples` gives it (JSON, CSV): these fields, in this order.
SAMPLE_FIELDS = ("time", "host", "resolution", "commit_percent", "commit_limit_percent", "committed_as_kb",
                 "commit_limit_kb", "mem_available_kb", "mem_available_percent", "swap_total_kb", "swap_free_kb",
                 "psi_some_avg10", "psi_full_avg10", "overcommit_memory")

# The stored kill's attribute behind each field of the record: the column `order` is alloc_order.
_RECORD_ATTRIBUTES = operator.attrgetter(*("alloc_order" if name == "order" else name for name in KILL_FIELDS))
_TIME = KILL_FIELDS.index("time")


def same_kill(row: Any, kill: OomKill) -> bool:
    """Whether a stored kill of the same host, pid and time window is this very kill."""
    if row.killer != kill.killer:
        return False
    # "?": the tracepoint of a pre-6.9 kernel gave only the pid and nobody knew the name.
    if row.process[:15] != kill.process[:15] and UNKNOWN_NAME not in (row.process, kill.process):
        return False
    # Two boots can reuse a pid at the same uptime: trust boot ids when both have one.
    if row.boot_id and kill.boot_id and row.boot_id != kill.boot_id:
        return False
    return not (row.mono_usec is not None and kill.mono_usec is not None and row.boot_id and kill.boot_id
                and abs(row.mono_usec - kill.mono_usec) > 1000)


def kill_values(kill: OomKill, host: str, now: datetime, details: dict[str, Any] | None) -> dict[str, Any]:
    """The column values of a new kills row (`host`: where a kill that names none happened)."""
    return dict(
        host=kill.host or host, boot_id=kill.boot_id, time=kill.time, mono_usec=kill.mono_usec,
        pid=kill.pid, process=kill.process, uid=kill.uid,
        total_vm_kb=kill.total_vm_kb, anon_rss_kb=kill.anon_rss_kb, file_rss_kb=kill.file_rss_kb,
        shmem_rss_kb=kill.shmem_rss_kb, pgtables_kb=kill.pgtables_kb, oom_score_adj=kill.oom_score_adj,
        score=kill.score, constraint=kill.constraint, memcg=kill.memcg, task_memcg=kill.task_memcg,
        cgroup_oom=kill.cgroup_oom, invoker=kill.invoker, invoker_pid=kill.invoker_pid,
        gfp_mask=kill.gfp_mask, alloc_order=kill.order, killer=kill.killer, source=kill.source,
        cmdline=kill.cmdline, unit=kill.unit,
        details={
            "task_table": [t.to_dict() for t in kill.task_table],
            "memory_info": list(kill.memory_info),
            "extra": kill.extra,
            **(details or {}),
        },
        recorded_at=now,
    )


def fill_missing(row: Any, kill: OomKill) -> None:
    """A second sighting of a stored kill may know more (a syslog line carries no boot id,
    kmsg no wall clock of its own): fill fields the first record lacked, never overwrite."""
    for attr, value in (
        ("boot_id", kill.boot_id), ("mono_usec", kill.mono_usec), ("uid", kill.uid),
        ("constraint", kill.constraint), ("memcg", kill.memcg), ("task_memcg", kill.task_memcg),
        ("invoker", kill.invoker), ("invoker_pid", kill.invoker_pid), ("gfp_mask", kill.gfp_mask),
        ("cmdline", kill.cmdline), ("unit", kill.unit), ("shmem_rss_kb", kill.shmem_rss_kb),
        ("pgtables_kb", kill.pgtables_kb), ("oom_score_adj", kill.oom_score_adj),
        ("total_vm_kb", kill.total_vm_kb), ("anon_rss_kb", kill.anon_rss_kb), ("file_rss_kb", kill.file_rss_kb),
        ("score", kill.score),
    ):
        if getattr(row, attr) is None and value is not None:
            setattr(row, attr, value)
    if row.alloc_order is None and kill.order is not None:
        row.alloc_order = kill.order
    if kill.cgroup_oom and not row.cgroup_oom:
        row.cgroup_oom = True
    if row.process == UNKNOWN_NAME and kill.process != UNKNOWN_NAME:
        row.process = kill.process
    if row.source == TRACEPOINT and kill.source not in (None, TRACEPOINT):
        _log_witnessed(row, kill)


def _log_witnessed(row: Any, kill: OomKill) -> None:
    """The log's account of a kill the tracepoint recorded first: the record takes the log's
    task table and memory state, names the log as its source, and keeps both witnesses."""
    details = dict(row.details or {})
    extra = dict(details.get("extra") or {})
    witnesses = list(dict.fromkeys([*extra.get("witnesses", [TRACEPOINT]), kill.source]))
    details["extra"] = {**kill.extra, **extra, "witnesses": witnesses}
    if not details.get("task_table"):
        details["task_table"] = [t.to_dict() for t in kill.task_table]
    if not details.get("memory_info"):
        details["memory_info"] = list(kill.memory_info)
    row.details = details
    row.source = kill.source


def cgroup_sample(row: Any) -> CgroupSample:
    """A stored cgroup reading as the rules take it (the figures a forecast needs)."""
    return CgroupSample(path=row.path, version=0, time=row.time, limit_bytes=row.limit_bytes,
                        usage_bytes=row.usage_bytes, working_set_bytes=row.working_set_bytes,
                        high_bytes=row.high_bytes, oom_kill=row.oom_kill, name=row.name, kind=row.kind or "cgroup")



def mute_matches(mute: Any, kind: str, process: str | None, cgroup: str | None) -> bool:
    """Whether `mute` silences a notification of `kind` about `process` in `cgroup`."""
    return _mute_matches(mute, kind, process, cgroup)


def _mute_matches(mute: Any, kind: str, process: str | None, cgroup: str | None) -> bool:
    if mute.kind and not fnmatch.fnmatchcase(kind, mute.kind):
        return False
    if mute.process and not (process and fnmatch.fnmatchcase(process, mute.process)):
        return False
    return not (mute.cgroup and not (cgroup and fnmatch.fnmatchcase(cgroup, mute.cgroup)))


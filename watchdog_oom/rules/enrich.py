"""A kill completed from what was known before it: the victim's command line and unit
remembered from the last process scan, this boot's id, the host's memory just before."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from watchdog_oom import detect
from watchdog_oom.model import MemorySample, OomKill, ProcScore, with_local_time
from watchdog_oom.procfs import unit_from_cgroup

# A log file's kill stamped this long before the boot still counts for it: the two
# clocks (syslog's and /proc/uptime's) are read at different moments.
BOOT_SLACK = timedelta(seconds=2)


def enrich_kill(kill: OomKill, *, host: str, boot_id: str | None, known: ProcScore | None,
                booted_at: datetime | None, redact: Callable[[str], str]) -> OomKill:
    """The kill with this host, this boot's id when it happened during it, and the command
    line and unit of the victim as the last scan saw them (the kernel prints neither)."""
    changes: dict[str, Any] = {"host": host}
    if kill.boot_id is None and happened_this_boot(kill, booted_at):
        changes["boot_id"] = boot_id
    if known is not None:
        if kill.cmdline is None and known.cmdline:
            changes["cmdline"] = redact(known.cmdline)
        if kill.unit is None and known.unit:
            changes["unit"] = known.unit
    if kill.unit is None and "unit" not in changes and kill.task_memcg:
        changes["unit"] = unit_from_cgroup(kill.task_memcg)
    return kill.replace(**changes)


def happened_this_boot(kill: OomKill, booted_at: datetime | None) -> bool:
    """Whether a kill the source delivers happened during this boot: always for kmsg and
    the journal (they read this boot), for a log file when it is dated after the boot."""
    if kill.source in ("kmsg", "journal"):
        return True
    when = with_local_time(kill).time
    return when is not None and booted_at is not None and when >= booted_at - BOOT_SLACK


def state_before(kill: OomKill, last: MemorySample | None, interval: float) -> dict[str, Any]:
    """What the host looked like just before the kill: the last sample when it is recent
    (within two sampling intervals and 5 s), else nothing."""
    kill = with_local_time(kill)  # a log file's stamps are local time without an offset
    if last is None or kill.time is None:
        return {}
    if abs((kill.time - last.time).total_seconds()) > 2 * interval + 5:
        return {}  # an old kill (read from the buffer at start): that sample says nothing of it
    return {"commit_state": {**detect.commit_figures(last), "mem_available_kb": last.mem_available_kb,
                             "time": last.time.isoformat()}}

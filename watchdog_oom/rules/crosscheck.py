"""The kernel's /proc/vmstat oom_kill counter (Linux 4.13+) against the kills recorded.

The kernel's printk is rate-limited and a log can be lost; the counter is not. The
state kept between checks (stored as a JSON cursor) is a baseline per boot: the counter
and the number of kills recorded when it was taken, and how many unlogged kills were
reported since. A shortfall seen on two checks in a row (the log may lag the counter by
a moment) is reported once.

A kill in a memory cgroup also raises that cgroup's oom_kill counter, which the per-cgroup
cross-check (`rules.cgroups.cross_check`) compares with the kills recorded there: it is
that check's to report, in one alert naming the cgroup. The host reports the kills no
cgroup accounts for, and confirms a shortfall only once the cgroups have been looked at
since it appeared (otherwise one lost kill would be two alerts, the host's first).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watchdog_oom.model import Alert

UNLOGGED = "oom.unlogged"


def cross_check(state: dict[str, Any], boot_id: str | None, counter: int, recorded: int,
                now: datetime, tracing: bool = False, in_cgroups: int = 0,
                cgroups_seen: datetime | None = None) -> tuple[dict[str, Any], Alert | None]:
    """The next state, and the alert for kills the log never showed (None: nothing new).

    ``tracing``: the oom/mark_victim tracepoint was being read too, so the kills recorded
    include those only it saw, and a shortfall is one neither witness showed.
    ``in_cgroups``: the kills of this boot the per-cgroup cross-check has found missing
    (reported, or waiting to be confirmed), which are its to report. ``cgroups_seen``: when
    that check last looked (None: cgroups are not watched, or their check has stalled).
    """
    state = dict(state)
    if state.get("boot_id") != boot_id or counter < state.get("counter0", 0):
        state = {"boot_id": boot_id, "counter0": counter, "recorded0": recorded, "reported": 0}
    missing = (counter - state["counter0"]) - (recorded - state["recorded0"]) - state["reported"]
    if missing < 0:
        # More kills recorded than counted since the baseline: kills from before it
        # (the kernel buffer read at start) arrived after it. Absorb them, or they
        # would hide as many truly unlogged kills later.
        state["recorded0"] -= missing
        missing = 0
    missing = max(missing - in_cgroups, 0)
    if missing > 0 and state.get("suspect") != missing:
        state["suspect_since"] = now.isoformat()
    looked = cgroups_seen is None or "suspect_since" not in state \
        or cgroups_seen >= datetime.fromisoformat(state["suspect_since"])
    if missing > 0 and state.get("suspect") == missing and looked:
        state["reported"] += missing
        state.pop("suspect", None)
        state.pop("suspect_since", None)
        witnesses = "neither the kernel log nor the tracepoint showed them" if tracing else \
            "the kernel log showed fewer kills (rate-limited printk or a lost log)"
        summary = (f"{missing} OOM kill{'s' if missing != 1 else ''} with no log record: /proc/vmstat oom_kill "
                   f"rose to {counter} but {witnesses}")
        return state, Alert(UNLOGGED, UNLOGGED, "critical", summary, now, False,
                            {"missing": missing, "oom_kill": counter,
                             "disagreed": "log and tracepoint" if tracing else "log"})
    if missing > 0:
        state["suspect"] = missing
    else:
        state.pop("suspect", None)
        state.pop("suspect_since", None)
    return state, None

"""The rules of a memory cgroup with a limit of its own: how close it is to the limit, its
memory.high throttling, how soon it gets there, which of its processes the kernel would
kill; and what a kill's record keeps of the warning before it.

Loaded when the first cgroup with a limit is read (rules.cgroups.conditions(), the cgroups
check naming a victim, an alert's link), not at start: a host whose cgroups have no limit
(no container or service with a MemoryMax) never needs them. What a kill's record needs
from a warning that came before it (rules.cgroups.preceding_alert()) stays loaded at start;
an alert_link() is only ever made here, after a warning fired. The alert keys are
rules/cgroups.py's. Nothing here reads a file, a clock or a database.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from watchdog_oom.detect import Condition, _duration, _fit, level_high
from watchdog_oom.model import Alert, CgroupSample, CgroupTask
from watchdog_oom.rules.cgroups import FORECAST, HIGH, LEVEL, key_of, mib

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
OOM_SCORE_ADJ_MIN = -1000


# -- what an alert says of a cgroup -----------------------------------------------------

def figures(sample: CgroupSample) -> dict[str, Any]:
    """The figures an alert about this cgroup carries (and routes on: `cgroup`)."""
    data: dict[str, Any] = {
        "cgroup": sample.path, "name": sample.name, "cgroup_kind": sample.kind,
        "limit_bytes": sample.limit_bytes, "high_bytes": sample.high_bytes, "usage_bytes": sample.usage_bytes,
        "working_set_bytes": sample.working_set_bytes, "working_set_percent": sample.percent,
    }
    if sample.labels:
        data["labels"] = dict(sample.labels)
    return {k: v for k, v in data.items() if v is not None}


def _what(sample: CgroupSample) -> str:
    kind = {"container": "Container", "pod": "Pod", "service": "Service", "scope": "Scope", "slice": "Slice"}
    label = kind.get(sample.kind, "Cgroup")
    return f"{label} {sample.name}" if sample.name and sample.name != sample.path else f"{label} {sample.path}"


# -- levels -----------------------------------------------------------------------------

def level_condition(sample: CgroupSample, cfg: Any, current: str | None = None) -> Condition | None:
    """Working set against the cgroup's limit; None for a cgroup without one (memory.high only)."""
    percent = sample.percent
    if percent is None or sample.limit_bytes is None:
        return None
    severity = level_high(percent, cfg.warn_percent, cfg.crit_percent, cfg.hysteresis, current)
    what = (f"{_what(sample)} is at {percent:.1f}% of its memory limit ({mib(sample.working_set_bytes)} working set "
            f"of {mib(sample.limit_bytes)})")
    summary = (f"{what}: at the limit the kernel's OOM killer picks a process inside it" if severity
               else f"{what}.")
    return Condition(key_of(LEVEL, sample.path), "cgroup", severity, summary, figures(sample), cfg.for_)


def high_condition(sample: CgroupSample, previous: CgroupSample | None, cfg: Any,
                   current: str | None = None) -> Condition | None:
    """memory.high throttling (v2): the `high` event count rose since the previous sample.

    Past memory.high the kernel does not kill: it reclaims the cgroup's memory hard and
    slows its allocations down (mem_cgroup_handle_over_high), which shows as latency,
    not as errors. The `high` counter in memory.events counts those overruns.
    """
    if sample.version != 2 or sample.high_bytes is None:
        return None
    if previous is None or "high" not in previous.events or "high" not in sample.events:
        return None
    rose = sample.events["high"] - previous.events["high"]
    seconds = max((sample.time - previous.time).total_seconds(), 1.0)
    pressure = sample.psi_some_avg10
    severity = "warning" if rose > 0 else None
    what = (f"{_what(sample)} is throttled at memory.high ({mib(sample.high_bytes)}): "
            f"{rose} overrun{'s' if rose != 1 else ''} in {_duration(seconds)}, working set "
            f"{mib(sample.working_set_bytes)}")
    if pressure is not None:
        what += f", its tasks stalled on memory {pressure:.1f}% of the last 10 s"
    summary = (f"{what}; the kernel reclaims and slows it down rather than killing" if severity
               else f"{_what(sample)} is no longer throttled at memory.high.")
    data = {**figures(sample), "high_events": sample.events["high"], "high_events_delta": rose,
            "psi_some_avg10": pressure}
    return Condition(key_of(HIGH, sample.path), "cgroup", severity, summary, data, cfg.for_,
                     "cgroup.warning" if severity else None)


# -- forecast ---------------------------------------------------------------------------

def _recent(history: Sequence[CgroupSample], sample: CgroupSample, window: float) -> tuple[list[CgroupSample], bool]:
    """The samples of the window up to `sample`, and whether they were cut.

    A single big drop of the working set (more than a tenth of the limit: a kill, a
    restart) ends the story before it, so the fit starts after it. Several drops are a
    sawtooth (a garbage collector, a batch job): the whole window is fitted, and its
    poor fit keeps the forecast quiet.
    """
    points = [s for s in history if 0 <= (sample.time - s.time).total_seconds() <= window and s is not sample]
    points.append(sample)
    drop = 0.1 * (sample.limit_bytes or 0)
    drops = [i for i in range(1, len(points)) if points[i - 1].working_set_bytes - points[i].working_set_bytes > drop]
    if len(drops) == 1:
        return points[drops[0]:], True
    return points, False


def forecast(history: Sequence[CgroupSample], sample: CgroupSample) -> tuple[float, float, float | None] | None:
    """(growth in bytes/s, r², seconds until the working set reaches the limit) from the
    least-squares slope over `history` (oldest first, ending with `sample`); the seconds are
    None when it does not grow. None with fewer than three samples to fit."""
    if len(history) < 3 or sample.limit_bytes is None:
        return None
    t0 = history[0].time
    xs = [(s.time - t0).total_seconds() for s in history]
    ys = [float(s.working_set_bytes) for s in history]
    slope, r2 = _fit(xs, ys)
    if slope <= 0:
        return slope, r2, None
    return slope, r2, max(sample.limit_bytes - sample.working_set_bytes, 0) / slope


def forecast_condition(history: Sequence[CgroupSample], sample: CgroupSample, cfg: Any,
                       current: str | None = None) -> Condition | None:
    """The limit reached within `cfg.horizon` at the recent rate of growth.

    The rate is the least-squares slope of the working set over the last `cfg.window`
    seconds (as the host's commit trend); it must be steady (r² ≥ 0.6, 0.4 to keep firing).
    Quiet when the working set is flat or falling. A firing forecast holds until the
    limit is more than 1.5 horizons away, so a rate that wavers does not flap. Returns
    None while there is too little history to judge.
    """
    if sample.limit_bytes is None or cfg.horizon <= 0:
        return None
    points, cut = _recent(history, sample, cfg.window)
    fit = forecast(points, sample)
    if fit is None:
        if cut:  # the working set just fell a long way: whatever was forecast is over
            return Condition(key_of(FORECAST, sample.path), "cgroup", None,
                             f"{_what(sample)}: its working set fell to {mib(sample.working_set_bytes)}.",
                             figures(sample), 0.0)
        return None
    slope, r2, eta = fit
    horizon = cfg.horizon * 1.5 if current else cfg.horizon
    # Three or four readings must lie almost on a line (r² ≥ 0.9): so few say little,
    # and the first tooth of a sawtooth looks like growth too.
    steady = r2 >= (0.4 if current else 0.6 if len(points) >= 5 else 0.9)
    if not current and steady:
        # A burst that is over (a process starting, a cache filling once) fits a steep line
        # too: the growth must still go on at half the fitted rate or more, or the forecast
        # waits for the next reading.
        last, before = points[-1], points[-2]
        seconds = (last.time - before.time).total_seconds()
        steady = seconds > 0 and (last.working_set_bytes - before.working_set_bytes) / seconds >= slope / 2
    severity = None
    if eta is not None and steady and eta <= horizon:
        # Critical when the limit comes before the next two readings.
        severity = "critical" if eta <= 2 * cfg.interval else "warning"
    data = {**figures(sample), "growth_bytes_per_second": round(slope), "r2": round(r2, 3),
            "window_seconds": round((points[-1].time - points[0].time).total_seconds())}
    if eta is not None:
        data["seconds_to_limit"] = round(eta)
    if severity:
        summary = (f"{_what(sample)} reaches its memory limit in about {_eta(eta)} at the current rate "
                   f"(+{mib(slope * 60)}/min, {mib(sample.working_set_bytes)} of {mib(sample.limit_bytes)})")
    else:
        summary = f"{_what(sample)}: no memory limit in sight at the current rate."
    return Condition(key_of(FORECAST, sample.path), "cgroup", severity, summary, data, 0.0,
                     "cgroup.forecast" if severity else None)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{max(int(seconds), 1)} s"
    return _duration(seconds)


# -- the likely victim ------------------------------------------------------------------

def memcg_totalpages(sample: CgroupSample, swap_total_bytes: int = 0) -> int:
    """The `totalpages` the kernel scales oom_score_adj by in a memcg OOM: mem_cgroup_get_max().

    That is the memory limit in pages plus the swap the cgroup may use (its swap limit,
    at most the host's swap); `oom_kill.c` constrained_alloc() sets oc->totalpages to it,
    or to 1 when it is 0.
    """
    limit = sample.limit_bytes or 0
    swap = min(sample.swap_limit_bytes or 0, swap_total_bytes) if swap_total_bytes else 0
    return max((limit + swap) // PAGE_SIZE, 1)


def oom_badness(task: CgroupTask, totalpages: int) -> int | None:
    """mm/oom_kill.c oom_badness(): the points the OOM killer ranks a task by; None if it is never chosen.

    points = rss + swap entries + page tables (in pages), plus oom_score_adj scaled to
    `totalpages / 1000` per unit, so an adj of +500 adds half of the limit. A task at
    oom_score_adj -1000 (OOM_SCORE_ADJ_MIN) is skipped. The kernel does this for every
    task of the cgroup whose limit was hit and its descendants (mem_cgroup_scan_tasks)
    and kills the one with the most points.
    """
    if task.oom_score_adj <= OOM_SCORE_ADJ_MIN:
        return None
    page_kb = PAGE_SIZE // 1024
    points = (task.rss_kb + task.swap_kb) // page_kb + task.pgtables_kb // page_kb
    return points + task.oom_score_adj * (totalpages // 1000)


def rank_victims(tasks: Iterable[CgroupTask], totalpages: int) -> list[tuple[CgroupTask, int]]:
    """The cgroup's processes in the order its OOM killer would pick them, with their points.

    The kernel keeps the last of equal scores in its walk, an order user space cannot
    see; ties here go to the larger RSS, then the higher (younger) pid.
    """
    scored = [(t, oom_badness(t, totalpages)) for t in tasks]
    ranked = [(t, p) for t, p in scored if p is not None]
    ranked.sort(key=lambda tp: (-tp[1], -tp[0].rss_kb, -tp[0].pid))
    return ranked


def victim_record(task: CgroupTask, points: int, totalpages: int) -> dict[str, Any]:
    """A likely victim as warnings carry it (the fields of detect.victims, plus its points)."""
    return {"pid": task.pid, "process": task.process, "cmdline": task.cmdline, "rss_kb": task.rss_kb,
            "swap_kb": task.swap_kb, "oom_score_adj": task.oom_score_adj, "uid": task.uid,
            "badness": points, "badness_permille": round(points * 1000 / totalpages) if totalpages else None,
            "cgroup": task.cgroup}


def name_victim(cond: Condition, sample: CgroupSample, tasks: Sequence[CgroupTask],
                swap_total_bytes: int = 0, n: int = 3) -> Condition:
    """The condition naming the process the kernel would kill inside the cgroup (and the next ones)."""
    if cond.severity is None:
        return cond
    totalpages = memcg_totalpages(sample, swap_total_bytes)
    ranked = rank_victims(tasks, totalpages)
    data = dict(cond.data)
    data["victims"] = [victim_record(t, p, totalpages) for t, p in ranked[:n]]
    if not ranked:
        return replace(cond, data=data)
    top, _ = ranked[0]
    if sample.oom_group:
        tail = (f"; memory.oom.group is set, so all {len(ranked)} of its processes would be killed together "
                f"(largest: {top.process}, pid {top.pid})")
    else:
        tail = f"; likely victim: {top.process} (pid {top.pid}, {mib(top.rss_kb * 1024)} RSS)"
    return replace(cond, summary=cond.summary.rstrip(".") + tail + ".", data=data)


# -- a kill linked to the warning before it ---------------------------------------------

def alert_link(alert: Alert, alert_id: int, earlier: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a kill record keeps of the cgroup alert before it: when it first warned, and
    the latest figures (percent, time left, the victim it named)."""
    data = alert.data
    victim = (data.get("victims") or [None])[0]
    link = {"alert_id": alert_id, "kind": alert.kind, "severity": alert.severity, "time": alert.time.isoformat(),
            "first_time": alert.time.isoformat(), "summary": alert.summary, "cgroup": data.get("cgroup"),
            "working_set_percent": data.get("working_set_percent"), "seconds_to_limit": data.get("seconds_to_limit"),
            "victim": {"pid": victim.get("pid"), "process": victim.get("process")} if victim else None}
    link["first"] = {k: link[k] for k in ("time", "working_set_percent", "seconds_to_limit")}
    if earlier and earlier.get("first"):
        link["first"] = dict(earlier["first"])
        link["first_time"] = earlier["first"]["time"]
    return link


def describe_link(link: Mapping[str, Any]) -> str:
    """`show`'s line for the alert before a kill: "cgroup.forecast #7 first at 14:02 (85.0 % of
    the limit, 4m left), last at 14:05 (99.1 %, 2 s left); victim java pid 812"."""
    def figures(at: Mapping[str, Any]) -> str:
        facts = []
        if at.get("working_set_percent") is not None:
            facts.append(f"{at['working_set_percent']:.1f} % of the limit")
        if at.get("seconds_to_limit") is not None:
            facts.append(f"{_eta(at['seconds_to_limit'])} left")
        return f" ({', '.join(facts)})" if facts else ""

    first = link.get("first") or link
    text = f"{link.get('kind')} #{link.get('alert_id')} first at {first.get('time')}{figures(first)}"
    if link.get("time") != first.get("time"):
        text += f", last at {link.get('time')}{figures(link)}"
    victim = link.get("victim") or {}
    if victim.get("process"):
        text += f"; victim {victim['process']} pid {victim.get('pid')}"
    return text

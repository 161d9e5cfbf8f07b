"""Pure rules: memory readings and process rankings in, alerts out, `now` passed in.

Two layers. Condition functions (`commit_conditions`, `memory_conditions`, `trend_condition`,
`process_conditions`) look at one moment and say how bad it is, applying hysteresis
against the severity already firing. `Rules` remembers, per condition key, since when
a condition holds, and turns conditions into `Alert` events once they held for their
`for` duration, and into resolved events once they clear. Nothing here reads a file,
a clock or a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import field, replace
from datetime import datetime, timedelta
from typing import Any

from watchdog_oom.model import Alert, MemorySample, ProcScore, severity_rank
from watchdog_oom.valueclass import valueclass


@valueclass
class Condition:
    """How one watched quantity stands at one moment. severity None means fine."""

    key: str
    family: str  # commit | memory | process: the prefix of the notification kind
    severity: str | None
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    for_seconds: float = 0.0
    kind: str | None = None  # overrides "<family>.<severity>" (e.g. process.at_risk)

    @property
    def alert_kind(self) -> str:
        return self.kind or f"{self.family}.{self.severity}"


def _gib(kb: int | float | None) -> str:
    if kb is None:
        return "?"
    return f"{kb / 1048576:.1f} GiB"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 3600:
        return f"{max(seconds // 60, 1)}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"


def level_high(value: float | None, warn: float, crit: float, hysteresis: float, current: str | None) -> str | None:
    """Severity of a value where higher is worse; a firing level holds until the value
    falls `hysteresis` points below its threshold, so a value hovering at the line
    does not flap."""
    if value is None:
        return None
    crit_line = crit - hysteresis if current == "critical" else crit
    warn_line = warn - hysteresis if current in ("warning", "critical") else warn
    if value >= crit_line:
        return "critical"
    if value >= warn_line:
        return "warning"
    return None


def level_low(value: float | None, warn: float, crit: float, hysteresis: float, current: str | None) -> str | None:
    """Severity of a value where lower is worse (available memory)."""
    if value is None:
        return None
    return level_high(-value, -warn, -crit, hysteresis, current)


def commit_basis(sample: MemorySample, basis: str) -> str:
    """Which figure the commit thresholds apply to.

    In mode 2 (strict) the kernel refuses allocations beyond CommitLimit, so that is the
    line that matters. In modes 0 and 1 nothing fails at CommitLimit; what matters is
    how far commitments exceed what RAM and swap could ever back: sar's %commit.
    """
    if basis == "auto":
        return "commit_limit" if sample.overcommit_memory == 2 else "sar"
    return basis


def commit_figures(sample: MemorySample) -> dict[str, Any]:
    return {
        "committed_as_kb": sample.committed_as_kb,
        "commit_limit_kb": sample.commit_limit_kb,
        "mem_total_kb": sample.mem_total_kb,
        "swap_total_kb": sample.swap_total_kb,
        "commit_percent": sample.commit_percent,
        "commit_limit_percent": sample.commit_limit_percent,
        "overcommit_memory": sample.overcommit_memory,
        "overcommit_ratio": sample.overcommit_ratio,
    }


def commit_conditions(sample: MemorySample, cfg: Any, current: str | None = None) -> Condition:
    """The commit condition of `sample` under CommitConfig `cfg`."""
    basis = commit_basis(sample, cfg.basis)
    value = sample.commit_limit_percent if basis == "commit_limit" else sample.commit_percent
    severity = level_high(value, cfg.warn_percent, cfg.crit_percent, cfg.hysteresis, current)
    data = {**commit_figures(sample), "basis": basis, "value": value}
    mode = sample.overcommit_memory
    if basis == "commit_limit":
        what = (f"Committed memory is {value:.2f}% of CommitLimit "
                f"({_gib(sample.committed_as_kb)} of {_gib(sample.commit_limit_kb)})")
        if mode == 2:
            meaning = ("vm.overcommit_memory=2: allocations start failing with ENOMEM at 100%, "
                       "so programs will see out-of-memory errors rather than an OOM kill")
        else:
            meaning = (f"vm.overcommit_memory={mode}: nothing fails at CommitLimit; "
                       "the OOM killer acts when RAM and swap are really used up")
    else:
        what = (f"Committed memory is {value:.2f}% of RAM+swap "
                f"({_gib(sample.committed_as_kb)} committed, {_gib(sample.mem_total_kb + sample.swap_total_kb)} "
                f"of RAM+swap; sar %commit)")
        if mode == 2:
            meaning = "vm.overcommit_memory=2: allocations fail at CommitLimit"
        else:
            meaning = (f"vm.overcommit_memory={mode}: allocations will not fail, so if processes touch "
                       "what they committed the OOM killer will pick a victim")
    summary = f"{what}. {meaning}." if severity else f"{what}: within limits."
    return Condition("commit", "commit", severity, summary, data, cfg.for_)


def memory_conditions(sample: MemorySample, cfg: Any, current: dict[str, str | None] | None = None) -> list[Condition]:
    """Conditions on MemAvailable, swap use and memory pressure under MemoryConfig `cfg`."""
    current = current or {}
    out: list[Condition] = []
    figures = {
        "mem_available_kb": sample.mem_available_kb, "mem_available_percent": sample.mem_available_percent,
        "mem_total_kb": sample.mem_total_kb, "swap_total_kb": sample.swap_total_kb,
        "swap_free_kb": sample.swap_free_kb, "psi_some_avg10": sample.psi_some_avg10,
        "psi_full_avg10": sample.psi_full_avg10,
    }
    avail = sample.mem_available_percent
    if avail is not None:
        sev = level_low(avail, cfg.available_warn_percent, cfg.available_crit_percent, cfg.hysteresis,
                        current.get("memory.available"))
        text = (f"Only {avail:.1f}% of memory is available ({_gib(sample.mem_available_kb)} of "
                f"{_gib(sample.mem_total_kb)} MemAvailable): the kernel is close to reclaiming hard "
                "and then to the OOM killer" if sev else f"{avail:.1f}% of memory is available.")
        out.append(Condition("memory.available", "memory", sev, text, figures, cfg.for_))
    if sample.swap_total_kb:
        used = round((sample.swap_total_kb - sample.swap_free_kb) * 100.0 / sample.swap_total_kb, 2)
        sev = level_high(used, cfg.swap_used_warn_percent, cfg.swap_used_crit_percent, cfg.hysteresis,
                         current.get("memory.swap"))
        text = (f"Swap is {used:.1f}% used ({_gib(sample.swap_total_kb - sample.swap_free_kb)} of "
                f"{_gib(sample.swap_total_kb)}): when it runs out, the OOM killer is next"
                if sev else f"Swap is {used:.1f}% used.")
        out.append(Condition("memory.swap", "memory", sev, text, {**figures, "swap_used_percent": used}, cfg.for_))
    if sample.psi_full_avg10 is not None:
        sev = level_high(sample.psi_full_avg10, cfg.psi_full_warn, cfg.psi_full_crit, cfg.hysteresis,
                         current.get("memory.pressure"))
        text = (f"Memory pressure: all non-idle tasks were stalled on memory {sample.psi_full_avg10:.1f}% "
                "of the last 10 seconds (/proc/pressure/memory full avg10): the host is thrashing"
                if sev else f"Memory pressure full avg10 is {sample.psi_full_avg10:.1f}%.")
        out.append(Condition("memory.pressure", "memory", sev, text, figures, cfg.for_))
    return out


def trend_condition(history: Sequence[MemorySample], sample: MemorySample, cfg: Any, now: datetime,
                    current: str | None = None) -> Condition | None:
    """A sustained rise of Committed_AS over `cfg.trend_window`, before any threshold is crossed.

    The rise is the least-squares slope over the window's samples, in points of the
    basis percent; it must be steady (r² ≥ 0.6) and the window mostly covered by samples.
    Returns None when there is not enough history to judge.
    """
    if not cfg.trend_rise_percent or cfg.trend_window <= 0:
        return None
    start = now - timedelta(seconds=cfg.trend_window)
    points = [s for s in history if s.time >= start] + ([sample] if not history or history[-1] is not sample else [])
    if len(points) < 5:
        return None
    if (points[-1].time - points[0].time).total_seconds() < 0.8 * cfg.trend_window:
        return None
    basis = commit_basis(sample, cfg.basis)

    def pct(s: MemorySample) -> float:
        return (s.commit_limit_percent or 0.0) if basis == "commit_limit" else s.commit_percent

    t0 = points[0].time
    xs = [(p.time - t0).total_seconds() for p in points]
    ys = [pct(p) for p in points]
    kbs = [p.committed_as_kb for p in points]
    slope, r2 = _fit(xs, ys)
    kb_slope, _ = _fit(xs, kbs)
    rise = slope * cfg.trend_window
    threshold = cfg.trend_rise_percent / 2 if current else cfg.trend_rise_percent
    severity = "warning" if rise >= threshold and r2 >= 0.6 else None
    data = {**commit_figures(sample), "basis": basis, "rise_percent": round(rise, 2),
            "window_seconds": cfg.trend_window, "growth_kb_per_hour": round(kb_slope * 3600), "r2": round(r2, 3)}
    summary = (f"Committed memory keeps growing: +{rise:.1f} points of "
               f"{'CommitLimit' if basis == 'commit_limit' else 'RAM+swap'} in the last "
               f"{_duration(cfg.trend_window)} (+{_gib(kb_slope * 3600)}/h, now {pct(sample):.1f}%)")
    if severity:
        limit_kb = sample.commit_limit_kb if sample.overcommit_memory == 2 else None
        if limit_kb and kb_slope > 0 and sample.committed_as_kb < limit_kb:
            eta = (limit_kb - sample.committed_as_kb) / kb_slope
            data["seconds_to_limit"] = round(eta)
            summary += (f"; at this rate it reaches CommitLimit in {_duration(eta)}, "
                        "where allocations start to fail")
        elif sample.overcommit_memory == 2:
            summary += "; CommitLimit is already reached: allocations are failing"
        else:
            summary += ("; no limit stops it in overcommit mode "
                        f"{sample.overcommit_memory}: check for a leak before the OOM killer acts")
    return Condition("commit.trend", "commit", severity, summary + ".", data, 0.0, "commit.trend" if severity else None)


def _fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope of ys over xs and the fit's r²."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    if sxx == 0:
        return 0.0, 0.0
    slope = sxy / sxx
    r2 = (sxy * sxy) / (sxx * syy) if syy else 0.0
    return slope, r2


def process_conditions(at_risk: Iterable[tuple[ProcScore, str]], for_seconds: float = 0.0) -> list[Condition]:
    """One condition per critical process at risk, keyed by name so a restart keeps the episode."""
    out = []
    for proc, reason in at_risk:
        data = {"pid": proc.pid, "process": proc.process, "cmdline": proc.cmdline, "uid": proc.uid,
                "oom_score": proc.oom_score, "oom_score_adj": proc.oom_score_adj, "rss_kb": proc.rss_kb,
                "unit": proc.unit, "cgroup": proc.cgroup}
        out.append(Condition(f"process.at_risk:{proc.process}", "process", "warning", reason, data,
                             for_seconds, "process.at_risk"))
    return out


def victims(ranked: Sequence[ProcScore], n: int = 5) -> list[dict[str, Any]]:
    """The likely victims at this moment, as warnings carry them."""
    return [{"pid": p.pid, "process": p.process, "rss_kb": p.rss_kb, "oom_score": p.oom_score,
             "oom_score_adj": p.oom_score_adj, "critical": p.critical, "cmdline": p.cmdline}
            for p in ranked[:n]]


def worst(severities: Iterable[str | None]) -> str | None:
    """The most severe of the given severities (None when all are fine)."""
    best: str | None = None
    for sev in severities:
        if sev is not None and severity_rank(sev) > severity_rank(best or ""):
            best = sev
    return best


@valueclass
class KeyState:
    since: datetime | None = None  # when the current not-yet-firing condition began
    firing: str | None = None  # the severity firing, if any
    kind: str | None = None


class Rules:
    """Turns conditions into firing and resolved alerts with `for` and hysteresis.

    State is per condition key and lives in memory; `restore` seeds it from the alerts
    the store says are still firing, so a restart neither re-announces nor forgets them.
    """

    def __init__(self) -> None:
        self._state: dict[str, KeyState] = {}

    def firing(self, key: str) -> str | None:
        state = self._state.get(key)
        return state.firing if state else None

    def firing_map(self) -> dict[str, str | None]:
        return {key: state.firing for key, state in self._state.items()}

    def restore(self, key: str, severity: str, kind: str) -> None:
        self._state[key] = KeyState(firing=severity, kind=kind)

    def snapshot(self) -> dict[str, KeyState]:
        """The state of every key now (a copy), for `put_back`."""
        return dict(self._state)

    def put_back(self, before: Mapping[str, KeyState], events: Iterable[Alert]) -> None:
        """The events could not be stored (the database refused): their keys go back to
        their state in `before`, so the next evaluation decides them again. Otherwise an
        alert that fired while the database was down would be taken for one already
        announced, and never be."""
        for key in {e.key for e in events}:
            if key in before:
                self._state[key] = before[key]
            else:
                self._state.pop(key, None)

    def evaluate(self, conditions: Iterable[Condition], now: datetime, family: str | tuple[str, ...] = (),
                 keep: Iterable[str] = ()) -> list[Alert]:
        """Advance every key. Firing keys of `family` (a prefix, or several) that are absent
        from `conditions` clear: the thing they watched went away (swap turned off, PSI
        gone, the process no longer at risk). Keys in `keep` are left as they are: their
        rule cannot judge yet (not enough history)."""
        events: list[Alert] = []
        seen: set[str] = set(keep)
        for cond in conditions:
            seen.add(cond.key)
            event = self._step(cond, now)
            if event is not None:
                events.append(event)
        prefixes = (family,) if isinstance(family, str) else family
        if prefixes:
            for key, state in list(self._state.items()):
                if key not in seen and state.firing and key.startswith(prefixes):
                    events.append(self._resolve(key, state, "The condition no longer applies.", {}, now))
        return events

    def _step(self, cond: Condition, now: datetime) -> Alert | None:
        state = self._state.get(cond.key, KeyState())
        if cond.severity is None:
            if state.firing:
                return self._resolve(cond.key, state, cond.summary, cond.data, now)
            self._state[cond.key] = KeyState()
            return None
        if state.firing:
            self._state[cond.key] = replace(state, firing=cond.severity, kind=cond.alert_kind)
            return Alert(cond.key, cond.alert_kind, cond.severity, cond.summary, now, False, cond.data)
        since = state.since or now
        if (now - since).total_seconds() >= cond.for_seconds:
            self._state[cond.key] = KeyState(firing=cond.severity, kind=cond.alert_kind)
            return Alert(cond.key, cond.alert_kind, cond.severity, cond.summary, now, False, cond.data)
        self._state[cond.key] = KeyState(since=since)
        return None

    def _resolve(self, key: str, state: KeyState, summary: str, data: dict[str, Any], now: datetime) -> Alert:
        self._state[key] = KeyState()
        family = (state.kind or key).split(".")[0]
        return Alert(key, f"{family}.resolved", "info", f"Resolved: {summary}", now, True, data)

"""Pure rules for memory cgroups: how close each is to its own limit, how soon it gets
there, which of its processes the kernel would kill, and whether every kill was logged.

Conditions are `detect.Condition` values, so the same `detect.Rules` machinery turns them
into alerts with `for`, hysteresis and resolution. Keys carry the cgroup path:
`cgroup:PATH` (working set against the limit: cgroup.warning / cgroup.critical),
`cgroup.high:PATH` (memory.high throttling, v2: cgroup.warning), `cgroup.forecast:PATH`
(the limit reached within the horizon at the current rate: cgroup.forecast); each
resolves as cgroup.resolved. `cfg` is the `cgroups:` section (config.CgroupsConfig).
Nothing here reads a file, a clock or a database.

Here: the alert keys, what every run of the cgroups check does whatever it found (the
counters' cross-check, which readings to keep), and the link from a kill to the warning
before it (a kill's record, loaded at start). The rules of a cgroup with a limit (its level,
memory.high, the forecast, the likely victim) are rules/cgroup_limits.py, loaded when the
first such cgroup is read: a host without one never needs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from watchdog_oom.detect import Condition
from watchdog_oom.model import Alert, CgroupSample, OomKill

LEVEL = "cgroup:"
HIGH = "cgroup.high:"
FORECAST = "cgroup.forecast:"
UNLOGGED = "oom.unlogged"
FAMILY_PREFIXES = (LEVEL, HIGH, FORECAST)


KEY_MAX = 255  # alerts.key is VARCHAR(255)


def key_of(prefix: str, path: str) -> str:
    """The alert key of a cgroup's condition: prefix and path, the path shortened with a
    digest past the column's 255 characters (the path itself travels in data["cgroup"])."""
    key = prefix + path
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{key[:KEY_MAX - 18]}~{digest}"


def mib(value: int | float | None) -> str:
    """Bytes for people: "234 MiB", "1.5 GiB"."""
    if value is None:
        return "?"
    if abs(value) >= 1 << 30:
        return f"{value / (1 << 30):.1f} GiB"
    return f"{value / (1 << 20):.0f} MiB"


# -- every cgroup kill accounted for ------------------------------------------------------

def subtree_counts(kills_by_cgroup: Mapping[str, int], paths: Iterable[str]) -> dict[str, int]:
    """Recorded kills per cgroup path, counting the kills of its descendants too (as the
    kernel's counters do), from recorded kills per victim cgroup (task_memcg)."""
    out = {}
    for path in paths:
        prefix = path.rstrip("/") + "/"
        out[path] = sum(n for cg, n in kills_by_cgroup.items() if cg == path or cg.startswith(prefix))
    return out


def cross_check(state: Mapping[str, Any], boot_id: str | None, counters: Mapping[str, int],
                recorded: Mapping[str, int], now: datetime) -> tuple[dict[str, Any], list[Alert]]:
    """Each cgroup's oom_kill counter against the kills recorded in it; the next state and
    an `oom.unlogged` alert per cgroup with kills the log never showed.

    Per cgroup the state is a baseline, as for the host's /proc/vmstat counter: the
    counter and the recorded kills when first seen, and the unlogged kills reported
    since; a shortfall seen on two checks in a row is reported once (the log may lag the
    counter by a moment). A counter that went down is a new cgroup with the same path
    (a restarted service): a new baseline. The counters are hierarchical, so a kill
    missing in a container is missing in its pod too: it is reported for the innermost
    cgroup only. Cgroups that are gone leave the state.

    The state also says how many kills this boot the cgroups account for, which the host's
    /proc/vmstat cross-check leaves to them: `unlogged`, reported so far (kept when their
    cgroups are gone), and `pending`, seen missing and waiting for the next look.
    """
    old = state.get("cgroups", {}) if state.get("boot_id") == boot_id else {}
    cgroups: dict[str, list[int]] = {}
    shortfalls: dict[str, tuple[int, bool]] = {}
    for path, counter in counters.items():
        have = recorded.get(path, 0)
        counter0, recorded0, reported, suspect = old.get(path, (counter, have, 0, 0))
        if counter < counter0:
            counter0, recorded0, reported, suspect = counter, have, 0, 0
        missing = (counter - counter0) - (have - recorded0) - reported
        if missing < 0:
            recorded0 += missing  # kills from before the baseline, recorded after it
            missing = 0
        confirmed = missing > 0 and suspect == missing
        cgroups[path] = [counter0, recorded0, reported + (missing if confirmed else 0), 0 if confirmed else missing]
        if missing:
            shortfalls[path] = (missing, confirmed)
    alerts = []
    # Innermost first: what a descendant reports is not reported again by its ancestors.
    claimed: dict[str, int] = {}
    for path in sorted(shortfalls, key=lambda p: -p.count("/")):
        missing, confirmed = shortfalls[path]
        prefix = path.rstrip("/") + "/"
        inner = sum(n for p, n in claimed.items() if p.startswith(prefix))
        claimed[path] = missing
        own = missing - inner
        if confirmed and own > 0:
            summary = (f"{own} OOM kill{'s' if own != 1 else ''} in cgroup {path} with no log record: its oom_kill "
                       f"counter rose to {counters[path]} but the kernel log showed fewer kills there "
                       "(rate-limited printk or a lost log)")
            alerts.append(Alert(key_of(UNLOGGED + ":", path), UNLOGGED, "critical", summary, now, False,
                                {"cgroup": path, "missing": own, "oom_kill": counters[path]}))
    # Counted at the outermost cgroups short of kills: the counters include their descendants'.
    outermost = [p for p in shortfalls if not any(q != p and p.startswith(q.rstrip("/") + "/") for q in shortfalls)]
    unlogged = (state.get("unlogged", 0) if state.get("boot_id") == boot_id else 0) \
        + sum(shortfalls[p][0] for p in outermost if shortfalls[p][1])
    pending = sum(shortfalls[p][0] for p in outermost if not shortfalls[p][1])
    return {"boot_id": boot_id, "cgroups": cgroups, "unlogged": unlogged, "pending": pending}, alerts


# -- one evaluation -----------------------------------------------------------------------

def conditions(samples: Sequence[CgroupSample], history: Mapping[str, Sequence[CgroupSample]], cfg: Any,
               firing: Mapping[str, str | None]) -> list[Condition]:
    """Every condition of this scan: levels, memory.high throttling and forecasts.

    `history` holds each cgroup's earlier samples, oldest first (without this scan's).
    """
    if not samples:  # no cgroup with a limit: its rules are not needed (nor loaded)
        return []
    from watchdog_oom.rules.cgroup_limits import forecast_condition, high_condition, level_condition

    out: list[Condition] = []
    for sample in samples:
        past = history.get(sample.path, ())
        for cond in (level_condition(sample, cfg, firing.get(key_of(LEVEL, sample.path))),
                     high_condition(sample, past[-1] if past else None, cfg, firing.get(key_of(HIGH, sample.path))),
                     forecast_condition([*past, sample], sample, cfg, firing.get(key_of(FORECAST, sample.path)))):
            if cond is not None:
                out.append(cond)
    return out


def keep_keys(samples: Sequence[CgroupSample], found: Sequence[Condition]) -> list[str]:
    """Keys whose rule could not judge this time (too little history), so a firing one is kept."""
    judged = {c.key for c in found}
    keep = []
    for sample in samples:
        for prefix in FAMILY_PREFIXES:
            if key_of(prefix, sample.path) not in judged:
                keep.append(key_of(prefix, sample.path))
    return keep


def worth_keeping(samples: Sequence[CgroupSample], cfg: Any, firing: Iterable[str] = ()) -> list[CgroupSample]:
    """The cgroups whose samples go to history and /metrics: those at or above the warn
    level, those with a firing alert, and the `cfg.top` with the least headroom."""
    firing_keys = set(firing)
    ordered = by_headroom(samples)
    chosen = {s.path for s in ordered[:cfg.top]}
    chosen |= {s.path for s in samples if (s.percent or 0) >= cfg.warn_percent
               or any(key_of(prefix, s.path) in firing_keys for prefix in FAMILY_PREFIXES)}
    return [s for s in ordered if s.path in chosen]


def by_headroom(samples: Iterable[CgroupSample]) -> list[CgroupSample]:
    """Least headroom first: highest working-set percent of the limit; then the cgroups with
    only memory.high (throttled, never killed by it), by their percent of it."""
    def key(s: CgroupSample) -> tuple[int, float, str]:
        if s.percent is not None:
            return (0, -s.percent, s.path)
        if s.high_bytes:
            return (1, -(s.working_set_bytes * 100.0 / s.high_bytes), s.path)
        return (2, 0.0, s.path)
    return sorted(samples, key=key)


# -- a kill linked to the warning before it -----------------------------------------------

def preceding_alert(kill: OomKill, links: Mapping[str, Mapping[str, Mapping[str, Any]]],
                    within: timedelta) -> dict[str, Any] | None:
    """The first alert of the cgroup whose limit the kill hit (`memcg`), else of the innermost
    cgroup above the victim's that alerted, if it was still current at most `within` before
    the kill. `links` holds per cgroup path the alert_link() of each of its alert keys
    (rules/cgroup_limits.py)."""
    if not kill.cgroup_oom:
        return None
    candidates = [kill.memcg] if kill.memcg else []
    path = kill.task_memcg or ""
    while path and path != "/":
        candidates.append(path)
        path = path.rpartition("/")[0]
    for path in candidates:
        recent = [link for link in links.get(path or "", {}).values() if _current(link, kill, within)]
        if recent:
            first: Mapping[str, Any] = min(recent, key=lambda link: link.get("first_time") or link["time"])
            return dict(first)
    return None


def _current(link: Mapping[str, Any], kill: OomKill, within: timedelta) -> bool:
    if kill.time is None:
        return True
    age = (kill.time - datetime.fromisoformat(link["time"])).total_seconds()
    return -60 <= age <= within.total_seconds()

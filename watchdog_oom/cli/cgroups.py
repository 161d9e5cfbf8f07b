"""`cgroups`: the memory cgroups with a limit (containers, pods, services), least headroom first."""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from typing import Any, TextIO

from watchdog_oom import config as config_mod
from watchdog_oom import procfs
from watchdog_oom.cli import EXIT_OK, Command
from watchdog_oom.cli.common import positive_int, utcnow
from watchdog_oom.cli.options import add_format
from watchdog_oom.model import CgroupSample
from watchdog_oom.textout import table, to_json

COLUMNS = [("name", "NAME"), ("kind", "KIND"), ("limit", "LIMIT"), ("working_set", "WORKING_SET"),
           ("percent", "%"), ("usage", "USAGE"), ("forecast", "TO_LIMIT"), ("oom_kill", "KILLS"),
           ("victim", "LIKELY_VICTIM"), ("path", "PATH")]


def scan_now(cfg: config_mod.Config, now: datetime) -> tuple[list[CgroupSample], Any, int]:
    """One reading of the cgroups the configuration watches: (samples, scan, host swap bytes)."""
    from watchdog_oom.cgroups import CgroupReader

    c = cfg.cgroups
    meminfo = procfs.read_meminfo(cfg.procfs)
    scan = CgroupReader(c.root_for(cfg.procfs), c.state_root_for(cfg.procfs), include=c.include, exclude=c.exclude,
                        max_cgroups=c.max_cgroups).scan(now, meminfo.get("MemTotal", 0) * 1024)
    return scan.samples, scan, meminfo.get("SwapTotal", 0) * 1024


def victim_of(cfg: config_mod.Config, scan: Any, sample: CgroupSample, swap_total: int) -> dict[str, Any] | None:
    """The process the kernel would kill in this cgroup now, as warnings name it."""
    from watchdog_oom.cgroup_limits import read_tasks
    from watchdog_oom.cgroups import hierarchy_of
    from watchdog_oom.redact import Redactor
    from watchdog_oom.rules.cgroup_limits import memcg_totalpages, rank_victims, victim_record

    hierarchy = hierarchy_of(scan.hierarchies, sample.version)
    if hierarchy is None:
        return None
    tasks = read_tasks(hierarchy.root, sample.path, cfg.procfs)
    totalpages = memcg_totalpages(sample, swap_total)
    ranked = rank_victims(tasks, totalpages)
    if not ranked:
        return None
    record = victim_record(ranked[0][0], ranked[0][1], totalpages)
    if record["cmdline"]:
        record["cmdline"] = Redactor(cfg.processes.redact).redact(record["cmdline"])
    return record


def forecasts(cfg: config_mod.Config, samples: list[CgroupSample]) -> dict[str, float | None]:
    """Seconds to the limit per cgroup from the daemon's stored samples and this reading
    (nothing when the history holds none: one reading says nothing of a rate)."""
    from watchdog_oom.rules.cgroup_limits import forecast

    if cfg.database.startswith("sqlite:///") and not os.path.exists(cfg.database[len("sqlite:///"):]):
        return {}  # no history yet; opening it would create it
    try:
        from watchdog_oom.store import Store

        store = Store(cfg.database, cfg.host)
        try:
            history = store.recent_cgroup_samples(cfg.host, [s.path for s in samples], cfg.cgroups.window)
        finally:
            store.close()
    except Exception:
        return {}  # no database yet, or one this command may not read: no forecast
    out: dict[str, float | None] = {}
    for s in samples:
        points = [p for p in history.get(s.path, []) if p.time < s.time] + [s]
        fit = forecast(points, s)
        if fit is not None and fit[2] is not None and fit[1] >= 0.6:
            out[s.path] = fit[2]
    return out


def document(cfg: config_mod.Config, now: datetime, top: int | None) -> dict[str, Any]:
    """The `cgroups --format json` document: least headroom first."""
    from watchdog_oom.rules.cgroups import by_headroom

    samples, scan, swap_total = scan_now(cfg, now)
    shown = by_headroom(samples)[:top] if top else by_headroom(samples)
    eta = forecasts(cfg, shown)
    rows = []
    for s in shown:
        seconds = eta.get(s.path)
        rows.append({
            "path": s.path, "name": s.name, "kind": s.kind, "version": s.version,
            "limit_bytes": s.limit_bytes, "high_bytes": s.high_bytes, "usage_bytes": s.usage_bytes,
            "working_set_bytes": s.working_set_bytes, "working_set_percent": s.percent,
            "headroom_bytes": s.headroom_bytes, "swap_bytes": s.swap_bytes, "swap_limit_bytes": s.swap_limit_bytes,
            "failcnt": s.failcnt, "events": s.events or None, "oom_kill": s.oom_kill,
            "psi_some_avg10": s.psi_some_avg10, "psi_full_avg10": s.psi_full_avg10,
            "seconds_to_limit": None if seconds is None else round(seconds),
            "victim": victim_of(cfg, scan, s, swap_total), "labels": s.labels,
        })
    return {"host": cfg.host, "time": now.isoformat(), "hierarchies": [
        {"version": h.version, "root": h.root} for h in scan.hierarchies], "truncated": scan.truncated,
        "cgroups": rows}


def _size(value: int | None) -> str:
    from watchdog_oom.rules.cgroups import mib

    return "-" if value is None else mib(value)


def _table_row(r: dict[str, Any]) -> dict[str, Any]:
    from watchdog_oom.rules.cgroup_limits import _eta

    victim = r["victim"]
    limit = _size(r["limit_bytes"]) if r["limit_bytes"] is not None else f"high {_size(r['high_bytes'])}"
    return {"name": r["name"], "kind": r["kind"], "limit": limit, "working_set": _size(r["working_set_bytes"]),
            "percent": "-" if r["working_set_percent"] is None else f"{r['working_set_percent']:.1f}",
            "usage": _size(r["usage_bytes"]),
            "forecast": "-" if r["seconds_to_limit"] is None else _eta(r["seconds_to_limit"]),
            "oom_kill": "-" if r["oom_kill"] is None else r["oom_kill"],
            "victim": f"{victim['process']} ({victim['pid']})" if victim else "-", "path": r["path"]}


def cmd_cgroups(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Print the memory cgroups with a limit, least headroom first."""
    doc = document(cfg, utcnow(), args.top)
    if args.format == "json":
        print(to_json(doc), file=out)
        return EXIT_OK
    if not doc["hierarchies"]:
        print(f"no memory cgroup hierarchy under {cfg.cgroups.root_for(cfg.procfs)}", file=out)
        return EXIT_OK
    if not doc["cgroups"]:
        print("no memory cgroup with a limit of its own (below the host's memory)", file=out)
        return EXIT_OK
    print(table([_table_row(r) for r in doc["cgroups"]], COLUMNS, widths={"name": 40, "path": 90}), file=out)
    return EXIT_OK


def _cgroups_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top", type=positive_int, metavar="N",
                   help="only the N with the least headroom (default: every cgroup with a limit)")
    add_format(p, "table", "json")


COMMANDS = (
    Command("cgroups", "the memory cgroups with a limit (containers, pods, services), least headroom first",
            _cgroups_arguments, cmd_cgroups),
)

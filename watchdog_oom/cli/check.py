"""`check` (one evaluation now, with Nagios exit codes) and `processes` (the likely next victims)."""

from __future__ import annotations

import argparse
import os
from datetime import datetime
from typing import Any, TextIO

from watchdog_oom import config as config_mod
from watchdog_oom import detect, processes, procfs
from watchdog_oom.cli import EXIT_CRITICAL, EXIT_OK, EXIT_UNKNOWN, EXIT_WARNING, Command
from watchdog_oom.cli.common import positive_int, utcnow
from watchdog_oom.cli.options import add_format, print_rows
from watchdog_oom.store.health import quick_check, sqlite_path
from watchdog_oom.textout import safe, table, to_json

NAGIOS = {None: ("OK", EXIT_OK), "info": ("OK", EXIT_OK), "warning": ("WARNING", EXIT_WARNING),
          "critical": ("CRITICAL", EXIT_CRITICAL)}


def _ranking(cfg: config_mod.Config) -> list[Any]:
    from watchdog_oom.redact import Redactor

    redactor = Redactor(cfg.processes.redact)
    procs = procfs.scan_processes(cfg.procfs)
    procs = [p.replace(cmdline=redactor.redact(p.cmdline)) if p.cmdline else p for p in procs]
    return processes.rank(processes.mark_critical(procs, cfg.processes.critical, cfg.processes.system_uid_max))


def _proc_json(p: Any) -> dict[str, Any]:
    return {"pid": p.pid, "process": p.process, "cmdline": p.cmdline, "uid": p.uid, "oom_score": p.oom_score,
            "oom_score_adj": p.oom_score_adj, "rss_kb": p.rss_kb, "critical": p.critical, "unit": p.unit}


def evaluate_now(cfg: config_mod.Config, now: datetime) -> dict[str, Any]:
    """The `check --json` document: one instantaneous evaluation, nothing stored."""
    sample = procfs.sample(cfg.procfs, now)
    commit = detect.commit_conditions(sample, cfg.commit)
    memory = detect.memory_conditions(sample, cfg.memory)
    ranked = _ranking(cfg)
    risky = processes.at_risk(ranked, cfg.processes.at_risk_top)
    cgroup_conditions, cgroups_doc = _cgroups_now(cfg, now)
    conditions = [commit, *memory, *detect.process_conditions(risky), *cgroup_conditions]
    findings = [{"kind": c.alert_kind, "severity": c.severity, "summary": c.summary}
                for c in conditions if c.severity]
    status = NAGIOS[detect.worst(c.severity for c in conditions)][0]
    database = database_finding(cfg.database)
    if database is not None:  # a damaged history is CRITICAL; one that cannot be read, UNKNOWN unless worse
        findings.append(database)
        if database["severity"] == "critical":
            status = "CRITICAL"
        elif status == "OK":
            status = "UNKNOWN"
    return {
        "status": status,
        "host": cfg.host,
        "time": now.isoformat(),
        "commit": {
            "committed_as_kb": sample.committed_as_kb, "commit_limit_kb": sample.commit_limit_kb,
            "mem_total_kb": sample.mem_total_kb, "swap_total_kb": sample.swap_total_kb,
            # sar's %commit is undefined without memory; the model says 0.0, JSON says null.
            "commit_percent": sample.commit_percent if sample.mem_total_kb + sample.swap_total_kb else None,
            "commit_limit_percent": sample.commit_limit_percent,
            "overcommit_memory": sample.overcommit_memory, "overcommit_ratio": sample.overcommit_ratio,
            "basis": detect.commit_basis(sample, cfg.commit.basis),
            "status": NAGIOS[commit.severity][0],
        },
        "memory": {
            "mem_available_kb": sample.mem_available_kb, "mem_available_percent": sample.mem_available_percent,
            "swap_total_kb": sample.swap_total_kb, "swap_free_kb": sample.swap_free_kb,
            "psi_some_avg10": sample.psi_some_avg10, "psi_full_avg10": sample.psi_full_avg10,
            "status": NAGIOS[detect.worst(c.severity for c in memory)][0],
        },
        "processes": [_proc_json(p) for p in ranked[: cfg.processes.top]],
        "cgroups": cgroups_doc,
        "findings": findings,
    }


def _cgroups_now(cfg: config_mod.Config, now: datetime) -> tuple[list[Any], dict[str, Any] | None]:
    """The memory cgroups' level and throttling conditions of one reading, and `check --json`'s
    "cgroups" object (null when cgroups are off or unreadable). One reading has no rate, so
    no forecast: that is the daemon's."""
    if not cfg.cgroups.enabled:
        return [], None
    from watchdog_oom.cli.cgroups import scan_now
    from watchdog_oom.rules import cgroups as cgroup_rules
    from watchdog_oom.rules.cgroup_limits import level_condition

    try:
        samples, scan, _ = scan_now(cfg, now)
    except OSError:
        return [], None
    conditions = [c for c in (level_condition(s, cfg.cgroups) for s in samples) if c is not None]
    tightest = cgroup_rules.by_headroom(samples)[:3]
    return conditions, {
        "watched": len(samples), "status": NAGIOS[detect.worst(c.severity for c in conditions)][0],
        "least_headroom": [{"path": s.path, "name": s.name, "limit_bytes": s.limit_bytes,
                            "working_set_bytes": s.working_set_bytes, "working_set_percent": s.percent}
                           for s in tightest],
    }


def report_unknown(message: str, as_json: bool, host: str, out: TextIO) -> int:
    """`check`'s answer when it cannot judge: UNKNOWN, in the same schema as every other answer."""
    if as_json:
        print(to_json({"status": "UNKNOWN", "host": host, "time": utcnow().isoformat(), "commit": None,
                       "memory": None, "processes": [], "findings": [], "error": message}), file=out)
    else:
        print(f"UNKNOWN: {message}", file=out)
    return EXIT_UNKNOWN


def cmd_check(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    try:
        doc = evaluate_now(cfg, utcnow())
    except (OSError, KeyError, ValueError) as exc:
        return report_unknown(f"cannot read memory figures from {cfg.procfs}: {exc}", args.format == "json",
                              cfg.host, out)
    code = {"OK": EXIT_OK, "WARNING": EXIT_WARNING, "CRITICAL": EXIT_CRITICAL, "UNKNOWN": EXIT_UNKNOWN}[doc["status"]]
    if args.format == "json":
        print(to_json(doc), file=out)
        return code
    c, m = doc["commit"], doc["memory"]
    lines = [
        f"{doc['status']}: {doc['host']} at {doc['time']}",
        f"commit   {c['status']:<8} %commit {_percent(c['commit_percent'])}% of RAM+swap, "
        f"{_percent(c['commit_limit_percent'])}% of CommitLimit "
        f"(Committed_AS {c['committed_as_kb']} kB, CommitLimit {c['commit_limit_kb']} kB, "
        f"vm.overcommit_memory={safe(c['overcommit_memory'])}, ratio {safe(c['overcommit_ratio'])}; "
        f"thresholds on {c['basis']})",
        f"memory   {m['status']:<8} MemAvailable {safe(m['mem_available_kb'])} kB "
        f"({safe(m['mem_available_percent'])}%), swap free {m['swap_free_kb']} of {m['swap_total_kb']} kB, "
        f"PSI full avg10 {safe(m['psi_full_avg10'])}",
    ]
    g = doc.get("cgroups")
    if g:
        tight = g["least_headroom"][0] if g["least_headroom"] else None
        lines.append(f"cgroups  {g['status']:<8} {g['watched']} with a limit"
                     + (f"; least headroom: {safe(tight['name'])} at {_percent(tight['working_set_percent'])}% "
                        "of its limit" if tight else ""))
    for f in doc["findings"]:
        lines.append(f"{f['severity'].upper():<8} {f['kind']}: {safe(f['summary'])}")
    lines.append("")
    lines.append(_process_table(doc["processes"]))
    print("\n".join(lines), file=out)
    return code


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


PROCESS_COLUMNS = [("pid", "PID"), ("oom_score", "SCORE"), ("oom_score_adj", "ADJ"), ("rss_kb", "RSS_KB"),
                   ("uid", "UID"), ("process", "NAME"), ("critical", "CRIT"), ("cmdline", "CMDLINE")]


def _process_table(rows: list[dict[str, Any]]) -> str:
    shown = [{**r, "critical": "CRITICAL" if r["critical"] else ""} for r in rows]
    return table(shown, PROCESS_COLUMNS, widths={"cmdline": 80})


def cmd_processes(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    try:
        ranked = _ranking(cfg)[: args.top or cfg.processes.top]
    except OSError as exc:
        print(f"watchdog-oom processes: cannot read processes from {cfg.procfs}: {exc.strerror or exc}", file=err)
        return 1
    rows = [_proc_json(p) for p in ranked]
    if args.format == "table":
        print(_process_table(rows), file=out)
    else:
        print_rows(out, args.format, rows, PROCESS_COLUMNS, "", lambda rows: {"processes": rows})
    return EXIT_OK



def _check_arguments(p: argparse.ArgumentParser) -> None:
    add_format(p, "table", "json")


def _processes_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--top", type=positive_int, metavar="N",
                   help="how many processes, highest oom_score first (default: processes.top, 10)")
    add_format(p, "table", "json", "csv")


COMMANDS = (
    Command("check", "one evaluation now; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (Nagios)",
            _check_arguments, cmd_check),
    Command("processes", "the processes most likely to be killed next", _processes_arguments, cmd_processes),
)


def database_finding(url: str) -> dict[str, str] | None:
    """What `check` says of the history database: None when it is sound (or not there yet,
    or not SQLite), else a finding: critical when damaged, unknown when it cannot tell."""
    path = sqlite_path(url)
    if path is None or not os.path.exists(path):
        return None
    health = quick_check(path, timeout=2.0)
    if health.ok:
        return None
    severity = "unknown" if health.kind in ("unreachable", "locked") else "critical"
    return {"kind": "database.down", "severity": severity, "summary": f"history database {health.kind}: "
            f"{health.problem}"}

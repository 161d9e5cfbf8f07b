"""The command line: `watchdog-oom COMMAND …` over the same pieces the daemon uses."""

from __future__ import annotations

import argparse
import fnmatch
import logging
import lzma
import os
import signal
import socket
import sys
import traceback
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NoReturn, TextIO

from watchdog_oom import __version__, detect, procfs, processes
from watchdog_oom import config as config_mod
from watchdog_oom.model import OomKill, kill_record_from_value, with_local_time
from watchdog_oom import store as store_mod
from watchdog_oom.store import StoreError
from watchdog_oom.notify import secrets_of_config
from watchdog_oom.textout import safe, table, to_csv, to_json

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3
EXIT_BAD_CONFIG = 2
NAGIOS = {None: ("OK", EXIT_OK), "info": ("OK", EXIT_OK), "warning": ("WARNING", EXIT_WARNING),
          "critical": ("CRITICAL", EXIT_CRITICAL)}
NOTIFICATION_KINDS = ("oom.kill", "oom.unlogged", "kernel_log.gap", "kernel_log.down", "kernel_log.resolved",
                      "commit.warning", "commit.critical",
                      "commit.resolved", "commit.trend", "memory.warning", "memory.critical", "memory.resolved",
                      "process.at_risk", "process.resolved", "test")
MAX_DURATION = timedelta(days=36525)  # 100 years: longer is a typing error, and overflows datetime
MAX_ID = 2**63 - 1  # the largest integer SQLite and PostgreSQL's bigint hold


class UsageError(Exception):
    """Bad input on the command line; printed with exit status 2."""


class _BadArguments(Exception):
    """What argparse found wrong with the command line; `text` is what argparse would print."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


class _ArgumentParser(argparse.ArgumentParser):
    """Raises _BadArguments instead of exiting 2, so that `check` can answer UNKNOWN (3)."""

    def error(self, message: str) -> NoReturn:
        raise _BadArguments(message, f"{self.format_usage()}{self.prog}: error: {message}\n")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_when(text: str, now: datetime) -> datetime:
    """A WHEN: a duration back from now (30m, 24h, 7d) or an ISO 8601 time; in UTC."""
    try:
        seconds = config_mod.parse_duration(text)
    except ValueError:
        return _parse_time(text)
    return now - _bounded_duration(seconds, text)


def _bounded_duration(seconds: float, text: str) -> timedelta:
    if seconds > MAX_DURATION.total_seconds():
        raise UsageError(f"{text!r} is longer than 100 years")
    return timedelta(seconds=seconds)


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is neither a duration like 30m, 24h, 7d nor an ISO 8601 time") from None
    try:
        utc = (value if value.tzinfo else value.astimezone()).astimezone(timezone.utc)
    except (OverflowError, ValueError):  # past year 9999 or before year 1 in UTC
        utc = None
    if utc is None or utc.year < 1970:
        raise UsageError(f"{text!r} is out of range: give a time from 1970 to 9999 (in UTC)")
    return utc


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 < value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to {MAX_ID}, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="watchdog-oom",
        description="Watch memory commit and pressure, rank the OOM killer's next victims, record every OOM kill.")
    parser.add_argument("-c", "--config", metavar="PATH",
                        help="config file (default: $WATCHDOG_OOM_CONFIG, else /etc/watchdog-oom/config.yaml "
                             "if it exists, else built-in defaults)")
    parser.add_argument("--version", action="version", version=f"watchdog-oom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("run", help="run the daemon in the foreground")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))

    p = sub.add_parser("check", help="one evaluation now (Nagios exit codes)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("processes", help="the processes most likely to be killed next")
    p.add_argument("--top", type=_positive_int)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("history", help="stored history, newest first")
    p.add_argument("kind", nargs="?", default="kills", choices=("kills", "alerts", "samples", "notifications",
                                                                "protections", "summary"))
    _history_filters(p)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")

    p = sub.add_parser("show", help="one kill incident, whole")
    p.add_argument("kill_id", type=_positive_int, metavar="KILL_ID")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = sub.add_parser("import", help="record the kills found in old kernel logs")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a log file (plain or .gz), or - for stdin")
    p.add_argument("--dry-run", action="store_true", help="find and print the kills, record nothing")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = sub.add_parser("report", help="one self-contained HTML page: commit and memory over time, kills, alerts")
    p.add_argument("--since", metavar="WHEN", default="7d")
    p.add_argument("--host", metavar="HOST")
    p.add_argument("--output", metavar="FILE.html", required=True, help="the file to write, or - for stdout")

    p = sub.add_parser("mute", help="silence matching notifications for a while")
    p.add_argument("--kind", help="notification kind or glob, e.g. oom.kill, commit.*")
    p.add_argument("--process", help="process name or glob")
    p.add_argument("--cgroup", help="cgroup path glob")
    p.add_argument("--for", dest="duration", metavar="DURATION")
    p.add_argument("--reason")
    p.add_argument("--all-hosts", action="store_true", help="mute for every host sharing the database")
    p.add_argument("--list", action="store_true", help="list the active mutes")

    p = sub.add_parser("unmute", help="end a mute")
    p.add_argument("mute_id", type=_positive_int, metavar="ID")

    p = sub.add_parser("notify-test", help="send a test notification through every channel (or one)")
    p.add_argument("--channel")

    p = sub.add_parser("db", help="database maintenance")
    p.add_argument("action", choices=("upgrade",))

    p = sub.add_parser("config", help="configuration")
    p.add_argument("action", choices=("check",))

    sub.add_parser("systemd-unit", help="print the systemd unit for this installation")
    return parser


def _history_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", metavar="WHEN")
    p.add_argument("--until", metavar="WHEN")
    p.add_argument("--process", metavar="NAME")
    p.add_argument("--host", metavar="HOST")
    p.add_argument("--limit", type=_positive_int, default=None)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except _BadArguments as exc:
        err.write(exc.text)
        if _command_in(argv) == "check":
            return _report_unknown(f"usage error: {exc}", "--json" in argv, socket.gethostname(), out)
        return 2
    try:
        cfg = config_mod.load_config(args.config, os.environ)
    except config_mod.ConfigError as exc:
        if args.command == "check":
            return _report_unknown(f"configuration error: {exc}", args.json, socket.gethostname(), out)
        print(f"watchdog-oom: configuration error: {exc}", file=err)
        return EXIT_BAD_CONFIG
    return _dispatch(args, cfg, out, err)


def _command_in(argv: Sequence[str]) -> str | None:
    """The command word of a command line argparse rejected: the first word not an option."""
    words = iter(argv)
    for word in words:
        if word in ("-c", "--config"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _dispatch(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    try:
        return COMMANDS[args.command](args, cfg, out, err)
    except UsageError as exc:
        print(f"watchdog-oom {args.command}: {exc}", file=err)
        return 2
    except BrokenPipeError:  # `… | head`: the reader has what it wanted
        return 0
    except Exception as exc:
        if not isinstance(exc, StoreError) and not _is_database_error(exc):
            raise
        print(f"watchdog-oom {args.command}: {_first_line(exc)}", file=err)
        return EXIT_UNKNOWN if args.command == "check" else 1


def _is_database_error(exc: Exception) -> bool:
    """An error SQLAlchemy raised (imported only if a command opened the database)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def _first_line(exc: Exception) -> str:
    """The line of an error message that says what went wrong; SQLAlchemy's go on with SQL and a link."""
    return next(iter(str(exc).strip().splitlines()), type(exc).__name__)


def _store(cfg: config_mod.Config) -> store_mod.Store:
    """The store, migrated first if it is behind: a database at the newest schema can be read-only."""
    store = store_mod.Store(cfg.database, cfg.host)
    if not store.at_head():
        store.upgrade()
    return store


def _setup_logging(level: str, stream: TextIO) -> None:
    handler = logging.StreamHandler(stream)
    # Under systemd the journal stamps time and pid itself; the level is what it lacks.
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        handler.setFormatter(SafeFormatter("<%(levelno_sd)s>%(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_SdLevel())
    else:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # urllib3 logs request lines at debug level, and a webhook URL's path is its secret.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


class SafeFormatter(logging.Formatter):
    """Log messages with control and bidi characters made visible: process names and
    cgroup paths in them come from any local user, and must not forge log lines (a
    newline) or drive the operator's terminal (an escape sequence). Tracebacks, which
    follow the message, keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = safe(record.message)
        return super().formatMessage(record)


class _SdLevel(logging.Filter):
    """Prefix records with the syslog level systemd-journald reads from stderr (sd-daemon.h)."""

    LEVELS = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno_sd = self.LEVELS.get(record.levelno, 6)
        return True


# -- run ---------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    from watchdog_oom.service import Service

    _setup_logging(args.log_level or cfg.daemon.log_level, err)
    path = config_mod.config_path(args.config, os.environ)
    return Service(cfg, config_path=path).run()


# -- check and processes -----------------------------------------------------------------

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
    conditions = [commit, *memory, *detect.process_conditions(risky)]
    findings = [{"kind": c.alert_kind, "severity": c.severity, "summary": c.summary}
                for c in conditions if c.severity]
    status = NAGIOS[detect.worst(c.severity for c in conditions)][0]
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
        "findings": findings,
    }


def _report_unknown(message: str, as_json: bool, host: str, out: TextIO) -> int:
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
        return _report_unknown(f"cannot read memory figures from {cfg.procfs}: {exc}", args.json, cfg.host, out)
    code = {"OK": EXIT_OK, "WARNING": EXIT_WARNING, "CRITICAL": EXIT_CRITICAL}[doc["status"]]
    if args.json:
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
    for f in doc["findings"]:
        lines.append(f"{f['severity'].upper():<8} {f['kind']}: {safe(f['summary'])}")
    lines.append("")
    lines.append(_process_table(doc["processes"]))
    print("\n".join(lines), file=out)
    return code


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _process_table(rows: list[dict[str, Any]]) -> str:
    shown = [{**r, "critical": "CRITICAL" if r["critical"] else ""} for r in rows]
    return table(shown, [("pid", "PID"), ("oom_score", "SCORE"), ("oom_score_adj", "ADJ"), ("rss_kb", "RSS_KB"),
                         ("uid", "UID"), ("process", "NAME"), ("critical", "CRIT"), ("cmdline", "CMDLINE")],
                 widths={"cmdline": 80})


def cmd_processes(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    try:
        ranked = _ranking(cfg)[: args.top or cfg.processes.top]
    except OSError as exc:
        print(f"watchdog-oom processes: cannot read processes from {cfg.procfs}: {exc.strerror or exc}", file=err)
        return 1
    rows = [_proc_json(p) for p in ranked]
    print(to_json({"processes": rows}) if args.json else _process_table(rows), file=out)
    return EXIT_OK


# -- history and show --------------------------------------------------------------------

KILL_COLUMNS = [("id", "ID"), ("time", "TIME"), ("host", "HOST"), ("pid", "PID"), ("process", "PROCESS"),
                ("uid", "UID"), ("anon_rss_kb", "ANON_RSS_KB"), ("constraint", "CONSTRAINT"),
                ("task_memcg", "CGROUP"), ("killer", "KILLER"), ("invoker", "INVOKER")]


def _filters(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    since = parse_when(args.since, now) if args.since is not None else None
    until = parse_when(args.until, now) if args.until is not None else None
    if since and until and since > until:
        raise UsageError("--since is later than --until")
    return {"since": since, "until": until, "process": args.process, "host": args.host, "limit": args.limit}


def history_rows(store: store_mod.Store, kind: str, filters: dict[str, Any],
                 secrets: Sequence[str] = ()) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Rows and table columns of one kind of history; `secrets` are masked in error texts."""
    if kind == "kills":
        return [store_mod.kill_record(k) for k in store.kills(**filters)], KILL_COLUMNS
    if kind == "alerts":
        rows = [{"id": a.id, "host": a.host, "key": a.key, "kind": a.kind, "severity": a.severity,
                 "status": a.status, "started_at": a.started_at.isoformat(),
                 "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None, "summary": a.summary}
                for a in store.alerts(**filters)]
        return rows, [("id", "ID"), ("started_at", "STARTED"), ("resolved_at", "RESOLVED"), ("host", "HOST"),
                      ("kind", "KIND"), ("severity", "SEVERITY"), ("status", "STATUS"), ("summary", "SUMMARY")]
    if kind == "samples":
        rows = [{"time": s.time.isoformat(), "host": s.host, "resolution": s.resolution,
                 "commit_percent": s.commit_percent, "commit_limit_percent": s.commit_limit_percent,
                 "committed_as_kb": s.committed_as_kb, "commit_limit_kb": s.commit_limit_kb,
                 "mem_available_kb": s.mem_available_kb, "mem_available_percent": s.mem_available_percent,
                 "swap_total_kb": s.swap_total_kb, "swap_free_kb": s.swap_free_kb,
                 "psi_some_avg10": s.psi_some_avg10, "psi_full_avg10": s.psi_full_avg10,
                 "overcommit_memory": s.overcommit_memory}
                for s in store.samples(**filters)]
        return rows, [("time", "TIME"), ("host", "HOST"), ("commit_percent", "%COMMIT"),
                      ("commit_limit_percent", "%LIMIT"), ("mem_available_percent", "%AVAIL"),
                      ("psi_full_avg10", "PSI_FULL"), ("resolution", "RES_S")]
    if kind == "notifications":
        from watchdog_oom.notify import redact

        rows = [{"id": n.id, "webhook_id": n.uuid, "host": n.host, "created_at": n.created_at.isoformat(),
                 "channel": n.channel, "kind": n.kind, "severity": n.severity, "reason": n.reason,
                 "status": n.status, "attempts": n.attempts,
                 "last_error": redact(n.last_error, secrets) if n.last_error else None,
                 "sent_at": n.sent_at.isoformat() if n.sent_at else None, "summary": n.summary}
                for n in store.notifications(**filters)]
        return rows, [("id", "ID"), ("created_at", "CREATED"), ("channel", "CHANNEL"), ("kind", "KIND"),
                      ("reason", "REASON"), ("status", "STATUS"), ("attempts", "TRIES"),
                      ("last_error", "LAST_ERROR"), ("summary", "SUMMARY")]
    if kind == "protections":
        rows = [{"time": p.time.isoformat(), "host": p.host, "pid": p.pid, "process": p.process,
                 "from_adj": p.from_adj, "to_adj": p.to_adj, "error": p.error, "cmdline": p.cmdline}
                for p in store.protections(**filters)]
        return rows, [("time", "TIME"), ("host", "HOST"), ("pid", "PID"), ("process", "PROCESS"),
                      ("from_adj", "FROM"), ("to_adj", "TO"), ("error", "ERROR")]
    raise UsageError(f"unknown history kind {kind!r}")


def summary_rows(store: store_mod.Store, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Kills per process, per cgroup and per day."""
    return [{"by": by, "value": value, "kills": n} for by, value, n in store.kill_counts(**filters)]


def cmd_history(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    filters = _filters(args, utcnow())
    store = _store(cfg)
    if args.kind == "summary":
        rows, columns = summary_rows(store, filters), [("by", "BY"), ("value", "VALUE"), ("kills", "KILLS")]
    else:
        rows, columns = history_rows(store, args.kind, filters, secrets_of_config(cfg))
    if args.format == "json":
        print(to_json(rows), file=out)
    elif args.format == "csv":
        out.write(to_csv(rows, list(rows[0].keys()) if rows else [c for c, _ in columns]))
    else:
        print(table(rows, columns) if rows else f"no {args.kind} recorded" + _filter_note(filters), file=out)
    return EXIT_OK


def _filter_note(filters: dict[str, Any]) -> str:
    parts = [f"{k} {v.isoformat() if isinstance(v, datetime) else v}" for k, v in filters.items()
             if v is not None and k != "limit"]
    return f" ({', '.join(parts)})" if parts else ""


# How old the last sample before a kill may be to stand for the memory state at the kill.
SHOW_SAMPLE_WITHIN = timedelta(minutes=10)


def cmd_show(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    store = _store(cfg)
    row = store.kill(args.kill_id)
    if row is None:
        print(f"watchdog-oom show: no kill with id {args.kill_id}", file=err)
        return 1
    doc = {**store_mod.kill_record(row), "score": row.score, "mono_usec": row.mono_usec,
           "recorded_at": row.recorded_at.isoformat(), **(row.details or {})}
    if "commit_state" not in doc and row.time is not None:
        # A kill imported from an old log: the history may still hold the host's sample.
        sample = store.sample_before(row.host, row.time, SHOW_SAMPLE_WITHIN)
        if sample is not None:
            doc["commit_state"] = {
                "time": sample.time.isoformat(), "commit_percent": sample.commit_percent,
                "commit_limit_percent": sample.commit_limit_percent, "committed_as_kb": sample.committed_as_kb,
                "commit_limit_kb": sample.commit_limit_kb, "mem_available_kb": sample.mem_available_kb,
            }
    if args.format == "json":
        print(to_json(doc), file=out)
        return EXIT_OK
    print(render_incident(doc), file=out)
    return EXIT_OK


def render_incident(doc: dict[str, Any]) -> str:
    """`show` as text: the victim, how it died, what the host looked like."""
    def kb(v: Any) -> str:
        return "-" if v is None else f"{v} kB ({v / 1024:.1f} MiB)"

    lines = [
        f"OOM kill #{doc['id']} on {safe(doc['host'])} at {safe(doc['time'])}"
        + (f" (boot {doc['boot_id']})" if doc.get("boot_id") else ""),
        "",
        "Victim",
        f"  process        {safe(doc['process'])} (pid {safe(doc['pid'])}, uid {safe(doc['uid'])})",
        f"  command line   {safe(doc.get('cmdline'))}",
        f"  unit           {safe(doc.get('unit'))}",
        f"  total-vm       {kb(doc['total_vm_kb'])}",
        f"  anon-rss       {kb(doc['anon_rss_kb'])}",
        f"  file-rss       {kb(doc['file_rss_kb'])}",
        f"  shmem-rss      {kb(doc['shmem_rss_kb'])}",
        f"  pgtables       {kb(doc['pgtables_kb'])}",
        f"  oom_score_adj  {safe(doc['oom_score_adj'])}",
        "",
        "How",
        f"  killer         {safe(doc['killer'])}",
        f"  invoker        {safe(doc['invoker'])}" + (f" (pid {doc['invoker_pid']})" if doc.get("invoker_pid") else ""),
        f"  allocation     gfp_mask={safe(doc['gfp_mask'])}, order={safe(doc['order'])}",
        f"  constraint     {safe(doc['constraint'])}" + ("  (a cgroup limit, not the whole machine)"
                                                         if doc.get("cgroup_oom") else ""),
        f"  memcg          {safe(doc['memcg'])}",
        f"  task cgroup    {safe(doc['task_memcg'])}",
        f"  source         {safe(doc['source'])}",
    ]
    state = doc.get("commit_state")
    if state:
        lines += ["", f"Memory just before (sample at {safe(state.get('time'))})",
                  f"  %commit {state.get('commit_percent')}% of RAM+swap, "
                  f"{state.get('commit_limit_percent')}% of CommitLimit, MemAvailable {kb(state.get('mem_available_kb'))}"]
    if doc.get("memory_info"):
        lines += ["", "Memory state printed by the kernel"] + [f"  {safe(x)}" for x in doc["memory_info"]]
    tasks = doc.get("task_table") or []
    if tasks:
        lines += ["", "Biggest tasks in the kernel's task table",
                  "  " + table(tasks, [("pid", "PID"), ("uid", "UID"), ("rss_kb", "RSS_KB"),
                                       ("total_vm_kb", "TOTAL_VM_KB"), ("oom_score_adj", "ADJ"),
                                       ("name", "NAME")]).replace("\n", "\n  ")]
    return "\n".join(lines)


# -- import ------------------------------------------------------------------------------

class _Progress:
    """Counts bytes read from a binary stream and shows progress on a terminal."""

    def __init__(self, raw: Any, total: int | None, label: str, err: TextIO) -> None:
        self.raw, self.total, self.label, self.err = raw, total, label, err
        self.done = 0
        self.shown = -1
        self.live = err.isatty()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self._advance(len(data))
        return data

    def readinto(self, b: Any) -> int:
        # Straight into the caller's buffer: a copy of every chunk would cost more than
        # the whole scan of a big log.
        count = self.raw.readinto(b) or 0
        self._advance(count)
        return count

    def _advance(self, count: int) -> None:
        self.done += count
        if self.live and self.total:
            percent = int(self.done * 100 / self.total)
            if percent != self.shown:
                self.shown = percent
                self.err.write(f"\r{self.label}: {percent}%")
                self.err.flush()

    def finish(self) -> None:
        if self.live and self.shown >= 0:
            self.err.write("\r" + " " * (len(self.label) + 8) + "\r")
            self.err.flush()


def cmd_import(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    if args.dry_run:
        store, read = None, _read_all(args.paths, cfg.host, err)
    elif hasattr(os, "fork") and _has_fd(err):
        read, store = _read_beside(args.paths, cfg.host, err, lambda: _store(cfg))
    else:
        store, read = _store(cfg), _read_all(args.paths, cfg.host, err)
    records: list[dict[str, Any]] = []
    failed = False
    for path, kills in read:
        if kills is None:
            failed = True
            continue
        found = len(kills)
        if store is None:
            records += [kill_record_from_value(k) for k in kills]
            note = ""
        else:
            recorded, new = _record(store, kills, utcnow())
            records += recorded
            note = f", {new} new, {found - new} already recorded"
        print(f"{path}: {found} kill{'s' if found != 1 else ''} found{note}", file=err)
    if args.format == "json":
        print(to_json(records), file=out)
    elif records:
        print(table(records, KILL_COLUMNS), file=out)
    return 1 if failed else EXIT_OK


ReadLogs = list[tuple[str, list[OomKill] | None]]  # per path, its kills or None when unreadable


def _read_all(paths: Sequence[str], host: str, err: TextIO) -> ReadLogs:
    read: ReadLogs = []
    for path in paths:
        try:
            read.append((path, _read_kills(path, host, err)))
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
            print(f"watchdog-oom import: {_read_error(path, exc)}", file=err)
            read.append((path, None))
    return read


def _has_fd(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _read_beside(paths: Sequence[str], host: str, err: TextIO, work: Callable[[], Any]) -> tuple[ReadLogs, Any]:
    """Read the logs in a forked child while `work()` (opening the database) runs here.

    Loading SQLAlchemy takes a fifth of a second, a big log's scan several tenths; a
    thread would not overlap them, as the two would fight for the GIL around every
    memmem call of the scan, but two processes on two cores do. The child sends the
    kills back pickled through a pipe. Forked before SQLAlchemy is loaded, and before
    this process has threads.
    """
    import pickle

    readable, writable = os.pipe()
    err.flush()
    parent = os.getpid()
    child = os.fork()
    if child == 0:  # the child: read, send, leave without running the parent's cleanup
        status = 1
        try:
            _die_with_parent(parent)
            os.close(readable)
            with os.fdopen(writable, "wb") as pipe:
                pipe.write(pickle.dumps(_read_all(paths, host, err)))
            status = 0
        except (KeyboardInterrupt, BrokenPipeError):
            pass  # the parent was interrupted too, and says so itself
        except BaseException:
            traceback.print_exc(file=err)
        finally:
            try:
                err.flush()
            finally:
                os._exit(status)
    os.close(writable)
    try:
        result = work()
    except BaseException:
        os.kill(child, signal.SIGKILL)  # no history to record into: stop reading at once
        os.close(readable)
        os.waitpid(child, 0)
        raise
    with os.fdopen(readable, "rb") as pipe:
        sent = pipe.read()
    _, status = os.waitpid(child, 0)
    if status != 0 or not sent:
        raise UsageError("reading the logs failed (the reading process ended abnormally)")
    return pickle.loads(sent), result


def _die_with_parent(parent: int) -> None:
    """Have the kernel end this child when its parent ends (Linux PR_SET_PDEATHSIG), so a
    killed `import` leaves no orphan reading on; without prctl, a check of the parent."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass
    if os.getppid() != parent:  # the parent ended before prctl took effect
        os._exit(1)


def _read_kills(path: str, host: str, err: TextIO) -> list[OomKill]:
    """The kills in one log (`-`: stdin), as imported from it; raises what opening or reading it raises."""
    from watchdog_oom.parse import iter_kills, undo_future_year
    from watchdog_oom.sources.logfile import open_log

    stream = open_log(path)
    size, reference = _size_and_mtime(path)
    progress = _Progress(stream, size, path, err)
    label = "stdin" if path == "-" else os.path.abspath(path)
    try:
        # Syslog dates carry no year: take the year the file was last written.
        return [with_local_time(undo_future_year(k, reference)).replace(host=host, source=f"import:{label}")
                for k in iter_kills(progress, f"import:{label}", year=reference.year)]
    finally:
        progress.finish()
        if path != "-":
            stream.close()


def _size_and_mtime(path: str) -> tuple[int | None, datetime]:
    """A log's size (None: unknown) and when it was last written (now for stdin), in local time."""
    if path != "-":
        try:
            st = os.stat(path)
            return st.st_size, datetime.fromtimestamp(st.st_mtime)
        except OSError:
            pass
    return None, datetime.now()


def _read_error(path: str, exc: Exception) -> str:
    from watchdog_oom.sources import SourceError

    if isinstance(exc, SourceError):
        return str(exc)  # it names the path
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{path}: {exc.strerror}"
    # zlib.error, lzma.LZMAError, EOFError (cut short), ValueError, bz2's and gzip's OSError without errno
    return f"{path}: corrupt or unreadable compressed data ({exc})"


def _record(store: store_mod.Store, kills: Sequence[OomKill], now: datetime) -> tuple[list[dict[str, Any]], int]:
    """Records the kills not recorded yet; returns every kill's record, with its id, and how many were new."""
    records = []
    new = 0
    with store.tx() as tx:
        for kill in kills:
            row = tx.add_kill(kill, now)
            if row is None:
                row = tx.find_same_kill(kill)  # recorded before; _read_kills gave `kill` the local time add_kill does
            else:
                new += 1
            records.append(store_mod.kill_record(row))
    return records, new


# -- report ------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    from watchdog_oom.report import render_report

    now = utcnow()
    since = parse_when(args.since, now)
    page = render_report(_store(cfg), since, now, args.host, commit=cfg.commit, memory=cfg.memory)
    if args.output == "-":
        out.write(page)
        return EXIT_OK
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"report of {safe(args.host or cfg.host)} since {since.isoformat()} written to {args.output}", file=out)
    return EXIT_OK


# -- mute --------------------------------------------------------------------------------

def cmd_mute(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    if args.list:
        return _list_mutes(_store(cfg), utcnow(), out)
    duration = _mute_duration(args.duration)
    if not (args.kind or args.process or args.cgroup):
        print("watchdog-oom mute: no --kind, --process or --cgroup given: muting every notification", file=err)
    elif args.kind and not any(fnmatch.fnmatchcase(kind, args.kind) for kind in NOTIFICATION_KINDS):
        print(f"watchdog-oom mute: warning: --kind {args.kind!r} matches no notification kind "
              f"({', '.join(NOTIFICATION_KINDS)})", file=err)
    now = utcnow()
    mute = _store(cfg).add_mute(now + duration, now, kind=args.kind, process=args.process,
                                cgroup=args.cgroup, reason=args.reason, all_hosts=args.all_hosts)
    print(f"mute {mute.id} active until {mute.until.isoformat()}", file=out)
    return EXIT_OK


def _mute_duration(text: str | None) -> timedelta:
    if not text:
        raise UsageError("--for DURATION is required (e.g. --for 2h)")
    try:
        seconds = config_mod.parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--for: {exc}") from None
    if seconds <= 0:
        raise UsageError("--for must be a positive duration")
    return _bounded_duration(seconds, text)


def _list_mutes(store: store_mod.Store, now: datetime, out: TextIO) -> int:
    rows = [{"id": m.id, "until": m.until.isoformat(), "kind": m.kind, "process": m.process,
             "cgroup": m.cgroup, "host": m.host or "(all)", "reason": m.reason} for m in store.mutes(now)]
    print(table(rows, [("id", "ID"), ("until", "UNTIL"), ("host", "HOST"), ("kind", "KIND"),
                       ("process", "PROCESS"), ("cgroup", "CGROUP"), ("reason", "REASON")])
          if rows else "no active mutes", file=out)
    return EXIT_OK


def cmd_unmute(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    store = _store(cfg)
    if not store.end_mute(args.mute_id, utcnow()):
        print(f"watchdog-oom unmute: no active mute with id {args.mute_id}", file=err)
        return 1
    print(f"mute {args.mute_id} ended", file=out)
    return EXIT_OK


# -- notify-test -------------------------------------------------------------------------

def cmd_notify_test(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    import uuid

    from watchdog_oom.model import Notification
    from watchdog_oom.notify import ChannelError, build_channel

    configured = cfg.notifications.channels
    channels = [c for c in configured if not args.channel or c.name == args.channel]
    if not configured:
        print("watchdog-oom notify-test: no notification channels configured (notifications.channels)", file=err)
        return 1
    if not channels:
        print(f"watchdog-oom notify-test: no channel named {args.channel} "
              f"(configured: {', '.join(c.name for c in configured)})", file=err)
        return 1
    ok = True
    for c in channels:
        n = Notification(id=f"msg_{uuid.uuid4().hex}", kind="test", time=utcnow(), host=cfg.host, severity="info",
                         summary="Test notification from watchdog-oom: this channel works.",
                         data={"channel": c.name}, reason="test")
        try:
            detail = build_channel(c.type, c.name, **c.options()).send(n)
            print(f"{c.name} ({c.type}): delivered: {safe(detail)}", file=out)
        except ChannelError as exc:
            ok = False
            kind = "permanent" if exc.permanent else "transient"
            print(f"{c.name} ({c.type}): FAILED ({kind}): {safe(str(exc))}", file=out)
    return EXIT_OK if ok else 1


# -- db and config -----------------------------------------------------------------------

def cmd_db(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    store = store_mod.Store(cfg.database, cfg.host)
    before = store.revision()
    after = store.upgrade()
    print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"), file=out)
    return EXIT_OK


def cmd_config(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    origin = cfg.origin or "built-in defaults"
    print(f"# configuration valid: {origin}", file=out)
    print(config_mod.display(cfg), file=out)
    return EXIT_OK


def systemd_unit() -> str:
    """The shipped unit file, its ExecStart pointing at this installation."""
    import shlex
    import shutil
    from importlib import resources

    text = (resources.files("watchdog_oom") / "data" / "watchdog-oom.service").read_text()
    script = shutil.which("watchdog-oom")
    exec_start = script if script else f"{shlex.quote(sys.executable)} -m watchdog_oom"
    return text.replace("@EXEC@", exec_start)


def cmd_systemd_unit(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    out.write(systemd_unit())
    return EXIT_OK


COMMANDS = {
    "run": cmd_run,
    "check": cmd_check,
    "processes": cmd_processes,
    "history": cmd_history,
    "show": cmd_show,
    "import": cmd_import,
    "report": cmd_report,
    "mute": cmd_mute,
    "unmute": cmd_unmute,
    "notify-test": cmd_notify_test,
    "db": cmd_db,
    "config": cmd_config,
    "systemd-unit": cmd_systemd_unit,
}


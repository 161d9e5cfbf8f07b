"""`history`, `show` and `report`: what the database holds, as tables, JSON, CSV, one incident or a page."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TextIO

from watchdog_oom import config as config_mod
from watchdog_oom import store as store_mod
from watchdog_oom.cli import EXIT_OK, Command, UsageError
from watchdog_oom.cli.common import open_store, parse_when, positive_int, utcnow
from watchdog_oom.cli.options import (
    add_format,
    add_history_filters,
    add_host,
    add_since,
    add_until,
    filters_from,
    print_rows,
)
from watchdog_oom.textout import safe, table, to_json

HISTORY_KINDS = ("kills", "alerts", "samples", "notifications", "protections", "adjustments", "quarantined",
                 "summary")

KILL_COLUMNS = [("id", "ID"), ("time", "TIME"), ("host", "HOST"), ("pid", "PID"), ("process", "PROCESS"),
                ("uid", "UID"), ("anon_rss_kb", "ANON_RSS_KB"), ("constraint", "CONSTRAINT"),
                ("task_memcg", "CGROUP"), ("killer", "KILLER"), ("invoker", "INVOKER")]
SAMPLE_COLUMNS = [("time", "TIME"), ("host", "HOST"), ("commit_percent", "%COMMIT"),
                  ("commit_limit_percent", "%LIMIT"), ("mem_available_percent", "%AVAIL"),
                  ("psi_full_avg10", "PSI_FULL"), ("resolution", "RES_S")]


def history_rows(store: store_mod.Store, kind: str, filters: dict[str, Any], secrets: Sequence[str] = (),
                 table_only: bool = False) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Rows and table columns of one kind of history; `secrets` are masked in error texts.
    With `table_only`, kills and samples (thousands of rows) hold only the table's columns."""
    if kind == "kills":
        return store.kill_records(*_fields(KILL_COLUMNS, table_only), **filters), KILL_COLUMNS
    if kind == "alerts":
        rows = [{"id": a.id, "host": a.host, "key": a.key, "kind": a.kind, "severity": a.severity,
                 "status": a.status, "started_at": a.started_at.isoformat(),
                 "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None, "summary": a.summary}
                for a in store.alerts(**filters)]
        return rows, [("id", "ID"), ("started_at", "STARTED"), ("resolved_at", "RESOLVED"), ("host", "HOST"),
                      ("kind", "KIND"), ("severity", "SEVERITY"), ("status", "STATUS"), ("summary", "SUMMARY")]
    if kind == "samples":
        return store.sample_records(*_fields(SAMPLE_COLUMNS, table_only), **filters), SAMPLE_COLUMNS
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
    if kind == "adjustments":
        return adjustment_rows(store, filters)
    if kind == "quarantined":
        rows = [{"id": q.id, "host": q.host, "time": q.time.isoformat() if q.time else None,
                 "recorded_at": q.recorded_at.isoformat(), "source": q.source, "process": q.process,
                 "error": q.error, "raw": q.raw}
                for q in store.quarantined(**filters)]
        return rows, [("id", "ID"), ("recorded_at", "RECORDED"), ("host", "HOST"), ("process", "PROCESS"),
                      ("error", "ERROR"), ("raw", "RAW")]
    raise UsageError(f"unknown history kind {kind!r}")


def _fields(columns: list[tuple[str, str]], table_only: bool) -> tuple[list[str], ...]:
    """The fields a history's records are read with: the table's columns alone, or all (none given)."""
    return ([key for key, _ in columns],) if table_only else ()


def adjustment_rows(store: store_mod.Store,
                    filters: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Writes to oom_score_adj (the tracepoint audit) with their writers; `--process` matches either side."""
    rows = [{"time": a.time.isoformat(), "host": a.host, "pid": a.pid, "process": a.process, "cmdline": a.cmdline,
             "unit": a.unit, "old_adj": a.old_adj, "new_adj": a.new_adj, "critical": a.critical,
             "by_watchdog": a.by_watchdog, "severity": a.severity,
             "writer_pid": a.writer_pid, "writer_tid": a.writer_tid, "writer_process": a.writer_process,
             "writer_cmdline": a.writer_cmdline, "writer_unit": a.writer_unit, "writer_uid": a.writer_uid,
             "writer_exited": a.writer_exited, "writer_unknown": a.writer_unknown, "found_by": a.found_by}
            for a in store.adjustments(**filters)]
    for row in rows:  # the writer in one phrase, for the table
        row["by"] = _writer_phrase(row)
    return rows, [("time", "TIME"), ("host", "HOST"), ("pid", "PID"), ("process", "PROCESS"), ("old_adj", "OLD"),
                  ("new_adj", "NEW"), ("severity", "ALERT"), ("by", "WRITER"), ("unit", "UNIT"),
                  ("found_by", "FOUND_BY")]


def _writer_phrase(row: dict[str, Any]) -> str:
    """Who wrote, in one phrase: watchdog-oom, ``name (pid N[, exited])``, or why nobody can be named."""
    if row["by_watchdog"]:
        return "watchdog-oom"
    if row["writer_unknown"] is not None:  # found by a re-read after its event was lost
        return f"unknown ({row['writer_unknown']})"
    pid = row["writer_pid"] if row["writer_pid"] is not None else row["writer_tid"]
    return f"{row['writer_process']} (pid {pid}{', exited' if row['writer_exited'] else ''})"


def summary_rows(store: store_mod.Store, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Kills per process, per cgroup and per day."""
    return [{"by": by, "value": value, "kills": n} for by, value, n in store.kill_counts(**filters)]


@contextlib.contextmanager
def _collector_idle() -> Iterator[None]:
    """CPython's cyclic garbage collector kept off what is already loaded, and paused.

    It runs every 700 new container objects and, every so often, walks every object the
    process holds (SQLAlchemy's alone are hundreds of thousands): reading a history of
    thousands of rows, tuples and dicts that form no cycle, set off dozens of runs and a
    whole walk, a fifth of the command's own time. What a command lists is freed by
    reference counts. Called once the libraries are loaded (their objects are frozen out
    of every collection), and undone after: main() also runs inside other processes.
    """
    was_enabled, freezes = gc.isenabled(), gc.get_freeze_count() == 0  # a caller's own freeze stays its own
    if freezes:
        gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        if freezes:
            gc.unfreeze()


def cmd_history(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Print one kind of history, newest first."""
    filters = filters_from(args, utcnow())
    store = open_store(cfg)
    with _collector_idle():
        if args.kind == "summary":
            rows, columns = summary_rows(store, filters), [("by", "BY"), ("value", "VALUE"), ("kills", "KILLS")]
        elif args.kind == "notifications":  # their errors may quote a channel's secret: masked
            from watchdog_oom.notify import secrets_of_config

            rows, columns = history_rows(store, args.kind, filters, secrets_of_config(cfg))
        else:
            rows, columns = history_rows(store, args.kind, filters, table_only=args.format == "table")
        print_rows(out, args.format, rows, columns, f"no {args.kind} recorded" + _filter_note(filters))
    if args.kind == "kills":
        unstored = len(store.quarantined(**{**filters, "limit": 1000}))
        if unstored:
            # Said on stderr: the table, JSON or CSV on stdout stays what scripts expect.
            print(f"watchdog-oom: {unstored}{'+' if unstored >= 1000 else ''} kill(s) could not be stored and "
                  "are quarantined with their raw log text: watchdog-oom history quarantined", file=err)
    return EXIT_OK


def _filter_note(filters: dict[str, Any]) -> str:
    parts = [f"{k} {v.isoformat() if isinstance(v, datetime) else v}" for k, v in filters.items()
             if v is not None and k != "limit"]
    return f" ({', '.join(parts)})" if parts else ""


# How old the last sample before a kill may be to stand for the memory state at the kill.
SHOW_SAMPLE_WITHIN = timedelta(minutes=10)


def cmd_show(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Print one kill incident, whole."""
    store = open_store(cfg)
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
    lines += _witness_lines(doc)
    link = doc.get("cgroup_alert")
    if link:
        from watchdog_oom.rules.cgroup_limits import describe_link

        lines += ["", "Warned before", f"  {safe(describe_link(link))}", f"  {safe(link.get('summary'))}"]
    state = doc.get("commit_state")
    if state:
        lines += ["", f"Memory just before (sample at {safe(state.get('time'))})",
                  f"  %commit {state.get('commit_percent')}% of RAM+swap, "
                  f"{state.get('commit_limit_percent')}% of CommitLimit, "
                  f"MemAvailable {kb(state.get('mem_available_kb'))}"]
    if doc.get("memory_info"):
        lines += ["", "Memory state printed by the kernel"] + [f"  {safe(x)}" for x in doc["memory_info"]]
    tasks = doc.get("task_table") or []
    if tasks:
        lines += ["", "Biggest tasks in the kernel's task table",
                  "  " + table(tasks, [("pid", "PID"), ("uid", "UID"), ("rss_kb", "RSS_KB"),
                                       ("total_vm_kb", "TOTAL_VM_KB"), ("oom_score_adj", "ADJ"),
                                       ("name", "NAME")]).replace("\n", "\n  ")]
    return "\n".join(lines)



def _witness_lines(doc: dict[str, Any]) -> list[str]:
    """Who saw the kill (the kernel's tracepoint, a log) and what disagreed, for `show`."""
    extra = doc.get("extra") or {}
    witnesses = extra.get("witnesses") or []
    lines = [f"  witnesses      {safe(', '.join(witnesses))}"] if witnesses else []
    traced = extra.get("tracepoint") or {}
    if traced.get("marker"):
        lines.append(f"  marked by      {safe(traced['marker'])} (tid {safe(traced.get('marker_tid'))}), "
                     f"oom_kill counter {safe(traced.get('oom_kill_count'))}")
    disagreed = doc.get("disagreed")
    if disagreed == "tracepoint":
        lines.append("  SUSPECT        the kernel's tracepoint, watching at the time, did not see this kill")
    elif disagreed == "log":
        lines.append("  unlogged       only the kernel's tracepoint saw this kill; the log never showed it")
    return lines


def cmd_report(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Write the HTML report of the host from --since to --until."""
    from watchdog_oom.report import render_report

    now = utcnow()
    since = parse_when(args.since, now)
    until = parse_when(args.until, now) if args.until else now
    if since >= until:
        raise UsageError("--since is not earlier than --until")
    page = render_report(open_store(cfg), since, until, args.host, commit=cfg.commit, memory=cfg.memory)
    if args.output == "-":
        out.write(page)
        return EXIT_OK
    try:
        write_private(args.output, page)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"report of {safe(args.host or cfg.host)} from {since.isoformat()} to {until.isoformat()} "
          f"written to {args.output}", file=out)
    return EXIT_OK


def write_private(path: str, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600, stricter if the umask says so).

    A report holds command lines, as the database does, and is kept as private as it.
    An existing file is truncated and made as private too.
    """
    umask = os.umask(0)
    os.umask(umask)
    mode = 0o600 & ~umask
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        if os.fstat(fd).st_mode & 0o777 & ~mode:
            os.fchmod(fd, mode)
        f.write(text)


def _history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", default="kills", choices=HISTORY_KINDS,
                   help="what to list (default: kills); summary counts kills per process, cgroup and day")
    add_history_filters(p)
    add_format(p, "table", "json", "csv")


def _show_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kill_id", type=positive_int, metavar="KILL_ID", help="the kill's id, as history shows it")
    add_format(p, "table", "json")


def _report_arguments(p: argparse.ArgumentParser) -> None:
    add_since(p, default="7d")
    add_until(p)
    add_host(p, default="this host, the config's host")
    p.add_argument("--output", metavar="FILE.html", required=True,
                   help="the file to write (created 0600: it holds command lines), or - for stdout")


COMMANDS = (
    Command("history", "stored history, newest first", _history_arguments, cmd_history),
    Command("show", "one kill incident, whole", _show_arguments, cmd_show),
    Command("report", "one self-contained HTML page: commit and memory over time, kills, alerts",
            _report_arguments, cmd_report),
)

"""`mute` and `unmute`: silence matching notifications for a while, list and end mutes."""

from __future__ import annotations

import argparse
import fnmatch
from datetime import datetime, timedelta
from typing import TextIO

from watchdog_oom import config as config_mod
from watchdog_oom import store as store_mod
from watchdog_oom.cli import EXIT_OK, Command, UsageError
from watchdog_oom.cli.common import bounded_duration, open_store, positive_int, utcnow
from watchdog_oom.cli.options import add_format, print_rows

NOTIFICATION_KINDS = ("oom.kill", "oom.unlogged", "kill.unreadable", "kernel_log.gap", "kernel_log.down",
                      "kernel_log.resolved",
                      "commit.warning", "commit.critical",
                      "commit.resolved", "commit.trend", "memory.warning", "memory.critical", "memory.resolved",
                      "process.at_risk", "process.resolved", "process.adj_changed", "retention.failed",
                      "retention.resolved", "cgroup.warning", "cgroup.critical", "cgroup.resolved", "cgroup.forecast",
                      "test")


def cmd_mute(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Add a mute, or with --list print the active ones."""
    if args.list:
        return _list_mutes(open_store(cfg), utcnow(), args.format, out)
    duration = _mute_duration(args.duration)
    if not (args.kind or args.process or args.cgroup):
        print("watchdog-oom mute: no --kind, --process or --cgroup given: muting every notification", file=err)
    elif args.kind and not any(fnmatch.fnmatchcase(kind, args.kind) for kind in NOTIFICATION_KINDS):
        print(f"watchdog-oom mute: warning: --kind {args.kind!r} matches no notification kind "
              f"({', '.join(NOTIFICATION_KINDS)})", file=err)
    now = utcnow()
    mute = open_store(cfg).add_mute(now + duration, now, kind=args.kind, process=args.process,
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
    return bounded_duration(seconds, text)


def _list_mutes(store: store_mod.Store, now: datetime, fmt: str, out: TextIO) -> int:
    # In JSON and CSV a mute for every host has host null, as the database says.
    rows = [{"id": m.id, "until": m.until.isoformat(), "kind": m.kind, "process": m.process,
             "cgroup": m.cgroup, "host": m.host if fmt != "table" else m.host or "(all)", "reason": m.reason}
            for m in store.mutes(now)]
    print_rows(out, fmt, rows, [("id", "ID"), ("until", "UNTIL"), ("host", "HOST"), ("kind", "KIND"),
                                ("process", "PROCESS"), ("cgroup", "CGROUP"), ("reason", "REASON")], "no active mutes")
    return EXIT_OK


def cmd_unmute(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """End the mute given by id."""
    store = open_store(cfg)
    if not store.end_mute(args.mute_id, utcnow()):
        print(f"watchdog-oom unmute: no active mute with id {args.mute_id}", file=err)
        return 1
    print(f"mute {args.mute_id} ended", file=out)
    return EXIT_OK



def _mute_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kind", help="notification kind or glob, e.g. oom.kill, commit.* (default: every kind)")
    p.add_argument("--process", metavar="NAME", help="process name or glob (default: every process)")
    p.add_argument("--cgroup", metavar="GLOB", help="cgroup path glob, e.g. '/kubepods/*' (default: every cgroup)")
    p.add_argument("--for", dest="duration", metavar="DURATION",
                   help="how long, e.g. 30m, 2h, 1d (required unless --list)")
    p.add_argument("--reason", metavar="TEXT", help="why, shown by mute --list (default: none)")
    p.add_argument("--all-hosts", action="store_true",
                   help="mute for every host sharing the database (default: this host only)")
    p.add_argument("--list", action="store_true", help="list the active mutes instead of adding one")
    add_format(p, "table", "json", "csv")


def _unmute_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("mute_id", type=positive_int, metavar="ID", help="the mute's id, as mute --list shows it")


COMMANDS = (
    Command("mute", "silence matching notifications for a while", _mute_arguments, cmd_mute),
    Command("unmute", "end a mute", _unmute_arguments, cmd_unmute),
)

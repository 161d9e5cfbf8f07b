"""The options several commands share, each declared once so every command offers it the same way,
and the parser they are added to."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn, TextIO

from watchdog_oom.cli.common import BadArguments, UsageError, parse_when, positive_int
from watchdog_oom.textout import table, to_csv, to_json


class ArgumentParser(argparse.ArgumentParser):
    """Raises BadArguments instead of exiting 2, so that `check` can answer UNKNOWN (3)."""

    def error(self, message: str) -> NoReturn:
        raise BadArguments(message, f"{self.format_usage()}{self.prog}: error: {message}\n")


FORMATS = {"table": "aligned columns", "json": "one JSON document", "csv": "RFC 4180 rows with a header"}


def add_format(p: argparse.ArgumentParser, *choices: str) -> None:
    """--format from `choices` (the first is the default), and --json as its synonym."""
    described = "; ".join(f"{c}: {FORMATS[c]}" for c in choices)
    p.add_argument("--format", choices=choices, default=choices[0],
                   help=f"output format ({described}; default: {choices[0]})")
    p.add_argument("--json", dest="format", action="store_const", const="json",
                   help="the same as --format json")


def print_rows(out: TextIO, fmt: str, rows: list[dict[str, Any]], columns: list[tuple[str, str]],
               empty: str, document: Callable[[list[dict[str, Any]]], Any] = lambda rows: rows) -> None:
    """Rows in the chosen --format: a table (or `empty` when there are none), JSON, or CSV."""
    if fmt == "json":
        print(to_json(document(rows)), file=out)
    elif fmt == "csv":
        out.write(to_csv(rows, list(rows[0].keys()) if rows else [c for c, _ in columns]))
    else:
        print(table(rows, columns) if rows else empty, file=out)


WHEN_HELP = "a duration back from now (30m, 24h, 7d) or an ISO 8601 time"


def add_since(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """--since WHEN: a duration back from now (30m, 24h, 7d) or an ISO 8601 time."""
    p.add_argument("--since", metavar="WHEN", default=default,
                   help=f"from WHEN: {WHEN_HELP} (default: {default or 'the beginning'})")


def add_until(p: argparse.ArgumentParser) -> None:
    """--until WHEN, read as --since is."""
    p.add_argument("--until", metavar="WHEN", help=f"up to WHEN: {WHEN_HELP} (default: now)")


def add_host(p: argparse.ArgumentParser, default: str = "every host") -> None:
    """--host HOST: one host of those sharing the database."""
    p.add_argument("--host", metavar="HOST",
                   help=f"only this host's records, of those sharing the database (default: {default})")


def add_history_filters(p: argparse.ArgumentParser) -> None:
    """--since, --until, --process, --host and --limit: what the history queries filter on."""
    add_since(p)
    add_until(p)
    p.add_argument("--process", metavar="NAME",
                   help="only this process name; shell globs (java*, *sql?) match (default: every process)")
    add_host(p)
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="at most N rows, the newest (default: all)")


def filters_from(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """The history filters given on the command line, times resolved against `now`."""
    since = parse_when(args.since, now) if args.since is not None else None
    until = parse_when(args.until, now) if args.until is not None else None
    if since and until and since > until:
        raise UsageError("--since is later than --until")
    return {"since": since, "until": until, "process": args.process, "host": args.host, "limit": args.limit}

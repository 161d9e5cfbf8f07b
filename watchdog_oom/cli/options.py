"""The options several commands share, each declared once so every command offers it the same way."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from watchdog_oom.cli.common import UsageError, parse_when, positive_int


def add_format(p: argparse.ArgumentParser, *choices: str) -> None:
    """--format, from `choices` (the first is the default)."""
    p.add_argument("--format", choices=choices, default=choices[0])


def add_json(p: argparse.ArgumentParser) -> None:
    """--json: the answer as one JSON document."""
    p.add_argument("--json", action="store_true")


def add_since(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """--since WHEN: a duration back from now (30m, 24h, 7d) or an ISO 8601 time."""
    p.add_argument("--since", metavar="WHEN", default=default)


def add_until(p: argparse.ArgumentParser) -> None:
    """--until WHEN, read as --since is."""
    p.add_argument("--until", metavar="WHEN")


def add_host(p: argparse.ArgumentParser) -> None:
    """--host HOST: one host of those sharing the database."""
    p.add_argument("--host", metavar="HOST")


def add_history_filters(p: argparse.ArgumentParser) -> None:
    """--since, --until, --process, --host and --limit: what the history queries filter on."""
    add_since(p)
    add_until(p)
    p.add_argument("--process", metavar="NAME")
    add_host(p)
    p.add_argument("--limit", type=positive_int, default=None)


def filters_from(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """The history filters given on the command line, times resolved against `now`."""
    since = parse_when(args.since, now) if args.since is not None else None
    until = parse_when(args.until, now) if args.until is not None else None
    if since and until and since > until:
        raise UsageError("--since is later than --until")
    return {"since": since, "until": until, "process": args.process, "host": args.host, "limit": args.limit}

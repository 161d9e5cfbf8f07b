"""The command line as argparse reads it: the parser (`build_parser`, the whole one or one
command's), and the options several commands share, each declared once so every command
offers it the same way. The daemon's plain `run` line is read without it (cli._plain_run),
so the daemon never loads argparse nor this module."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn, TextIO

from watchdog_oom import __version__
from watchdog_oom.cli import MODULES, ORDER, BadArguments, UsageError, _report_unknown, command
from watchdog_oom.cli.common import parse_when, positive_int
from watchdog_oom.textout import table, to_csv, to_json


class ArgumentParser(argparse.ArgumentParser):
    """Raises BadArguments instead of exiting 2, so that `check` can answer UNKNOWN (3)."""

    def error(self, message: str) -> NoReturn:
        raise BadArguments(message, f"{self.format_usage()}{self.prog}: error: {message}\n")


EPILOG = """\
WHEN (--since, --until) is a duration back from now (30m, 24h, 7d) or an ISO 8601 time
(2026-03-01, 2026-03-01T14:05:00+01:00; local time without a zone).

exit status:
  0  success (check: OK)
  1  check: WARNING; other commands: a failure they name (unreadable input, no such id,
     a channel that did not deliver, the database unusable)
  2  usage error or invalid configuration (check: CRITICAL)
  3  check: UNKNOWN (it could not judge: bad usage, config or figures)

'watchdog-oom COMMAND --help' tells a command's options and their defaults.
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line's parser; with `only`, a parser for that one command,
    which imports nothing the others need (what `main` uses to run a command)."""
    parser = ArgumentParser(
        prog="watchdog-oom",
        description="Watch memory commit and pressure, rank the OOM killer's next victims, record every OOM kill.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", metavar="PATH",
                        help="config file (default: $WATCHDOG_OOM_CONFIG, else /etc/watchdog-oom/config.yaml "
                             "if it exists, else built-in defaults)")
    parser.add_argument("--version", action="version", version=f"watchdog-oom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in ORDER if only is None else (only,):
        cmd = command(name)
        cmd.arguments(sub.add_parser(name, help=cmd.help))
    return parser


def parse_command_line(argv: Sequence[str], word: str | None, out: TextIO, err: TextIO) -> argparse.Namespace | int:
    """A command line other than the daemon's plain one: for a known command `word`, only
    its parser is built (and its module imported); anything else (--help, --version, a typo)
    gets the whole parser, which lists every command. What argparse refuses is said on
    `err`, and the exit status returned (2; `check`'s UNKNOWN, 3, in its format)."""
    try:
        only = word if word in MODULES and not _asks_help_before(argv, word) else None
        return build_parser(only).parse_args(argv)
    except BadArguments as exc:
        err.write(exc.text)
        if word == "check":
            return _report_unknown(f"usage error: {exc}", _asks_json(argv), out)
        return 2


def _asks_help_before(argv: Sequence[str], word: str) -> bool:
    """Whether -h/--help or --version comes before the command word (the top level's, then)."""
    words = list(argv)
    return any(w in ("-h", "--help", "--version") for w in words[:words.index(word)])


def _asks_json(argv: Sequence[str]) -> bool:
    """Whether a command line argparse rejected asked for JSON (--json, --format json, --format=json)."""
    words = list(argv)
    return "--json" in words or "--format=json" in words or any(
        a == "--format" and b == "json" for a, b in zip(words, words[1:], strict=False))


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

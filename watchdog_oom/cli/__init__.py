"""The command line: `watchdog-oom COMMAND …` over the same pieces the daemon uses.

One module per command group, each listing its `Command`s: run (the daemon), check
(check, processes), cgroups, history (history, show, report), import_logs (import), mute (mute,
unmute), notify_test, admin (db, config), systemd. The options several commands share
are declared once in options.py; exit codes, usage errors and times in common.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import import_module
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TextIO

from watchdog_oom import __version__
from watchdog_oom import config as config_mod
from watchdog_oom.cli.common import EXIT_BAD_CONFIG, EXIT_UNKNOWN, BadArguments, Command, UsageError

if TYPE_CHECKING:
    import argparse

__all__ = ["COMMANDS", "SafeFormatter", "UsageError", "build_parser", "evaluate_now", "main"]

# Each command and the module that declares it, in the order `--help` lists them. Only
# the module of the command being run is imported: `history` does not load the daemon,
# nor `run` the report renderer, and neither pays for the other commands' imports.
MODULES: dict[str, str] = {
    "run": "run", "check": "check", "processes": "check", "cgroups": "cgroups", "history": "history",
    "show": "history", "import": "import_logs", "report": "history", "mute": "mute", "unmute": "mute",
    "notify-test": "notify_test", "db": "admin", "config": "admin", "systemd-unit": "systemd",
    "install-service": "systemd", "completion": "systemd", "manpage": "systemd",
}
ORDER = tuple(MODULES)

# The commands that use the notification channels and the daemon's settings: they need
# every ${VAR} in the config. The others only warn about one unset in those sections.
NEED_EVERY_SECRET = ("run", "notify-test", "config")
# Further top-level keys a command never reads, where an unset ${VAR} only warns too.
UNUSED_KEYS = {"check": ("database",), "processes": ("database",)}


def command(name: str) -> Command:
    """The command called `name`, importing only the module that declares it."""
    module = import_module(f"watchdog_oom.cli.{MODULES[name]}")
    return next(c for c in module.COMMANDS if c.name == name)


def __getattr__(name: str) -> Any:
    """`COMMANDS` (every command, importing every command module) and the names other
    modules import from here, loaded on first use (PEP 562)."""
    if name == "COMMANDS":
        return {n: command(n) for n in ORDER}
    if name == "SafeFormatter":
        from watchdog_oom.cli.run import SafeFormatter

        return SafeFormatter
    if name == "evaluate_now":
        from watchdog_oom.cli.check import evaluate_now

        return evaluate_now
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    import argparse

    from watchdog_oom.cli.options import ArgumentParser

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


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one command line; its exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    word = _command_in(argv)
    try:
        # The daemon's plain command line needs no parser; otherwise, for a known command
        # word, only its parser is built (and its module imported). Anything else (--help,
        # --version, a typo) gets the whole parser, which lists every command.
        args = _plain_run(argv) if word == "run" else None
        if args is None:
            only = word if word in MODULES and not _asks_help_before(argv, word) else None
            args = build_parser(only).parse_args(argv)
    except BadArguments as exc:
        err.write(exc.text)
        if word == "check":
            return _report_unknown(f"usage error: {exc}", _asks_json(argv), out)
        return 2
    if args.command == "config" and args.action != "check":  # the example and the keys need no file
        return _dispatch(args, config_mod.Config(), out, err)
    try:
        cfg = config_mod.load_config(args.config, os.environ, strict_env=args.command in NEED_EVERY_SECRET,
                                     unused=UNUSED_KEYS.get(args.command, ()))
    except config_mod.ConfigError as exc:
        if args.command == "check":
            return _report_unknown(f"configuration error: {exc}", args.format == "json", out)
        print(f"watchdog-oom: configuration error: {exc}", file=err)
        return EXIT_BAD_CONFIG
    for warning in cfg.warnings:
        print(f"watchdog-oom: warning: {warning}", file=err)
    return _dispatch(args, cfg, out, err)


# The options of `run`'s plain command line, by where they may stand: before the command
# word (the top level's) or after it (run's own).
_PLAIN_RUN_OPTIONS = {("top", "-c"): "config", ("top", "--config"): "config", ("run", "--log-level"): "log_level"}


def _plain_run(argv: Sequence[str]) -> argparse.Namespace | None:
    """`run`'s command line in its plain forms (-c/--config PATH, run, --log-level LEVEL, each
    value also after `=`), read as argparse reads them but without it: the daemon then never
    loads argparse (nor gettext), some 0.4 MiB held for as long as it runs. None for anything
    else (help, an abbreviation, a mistake): argparse reads that, and says what is wrong."""
    found: dict[str, str | None] = {"config": None, "log_level": None}
    place = "top"
    words = iter(argv)
    for word in words:
        if place == "top" and word == "run":
            place = "run"
            continue
        option, equals, value = word.partition("=")
        dest = _PLAIN_RUN_OPTIONS.get((place, option))
        if dest is None:
            return None
        if not equals:
            value = next(words, "")
        if not value or value.startswith("-"):  # missing, or one argparse may read otherwise
            return None
        if dest == "log_level" and value not in config_mod.LOG_LEVELS:
            return None  # argparse refuses each value not a choice, even one a later one replaces
        found[dest] = value
    if place != "run":
        return None
    return SimpleNamespace(command="run", **found)  # type: ignore[return-value]  # what run reads of a Namespace


def _report_unknown(message: str, as_json: bool, out: TextIO) -> int:
    """`check`'s UNKNOWN answer (3) to a command line or config it could not use."""
    import socket

    from watchdog_oom.cli.check import report_unknown

    return report_unknown(message, as_json, socket.gethostname(), out)


def _asks_help_before(argv: Sequence[str], word: str) -> bool:
    """Whether -h/--help or --version comes before the command word (the top level's, then)."""
    words = list(argv)
    return any(w in ("-h", "--help", "--version") for w in words[:words.index(word)])


def _asks_json(argv: Sequence[str]) -> bool:
    """Whether a command line argparse rejected asked for JSON (--json, --format json, --format=json)."""
    words = list(argv)
    return "--json" in words or "--format=json" in words or any(
        a == "--format" and b == "json" for a, b in zip(words, words[1:], strict=False))


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
        return command(args.command).run(args, cfg, out, err)
    except UsageError as exc:
        print(f"watchdog-oom {args.command}: {exc}", file=err)
        return 2
    except BrokenPipeError:  # `… | head`: the reader has what it wanted
        return 0
    except Exception as exc:
        from watchdog_oom.store import StoreError

        if not isinstance(exc, StoreError) and not _is_database_error(exc):
            raise
        from watchdog_oom.store.explain import explain

        print(f"watchdog-oom {args.command}: {explain(_first_line(exc), cfg.database)}", file=err)
        return EXIT_UNKNOWN if args.command == "check" else 1


def _is_database_error(exc: Exception) -> bool:
    """An error SQLAlchemy raised (imported only if a command opened the database)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def _first_line(exc: Exception) -> str:
    """The line of an error message that says what went wrong; SQLAlchemy's go on with SQL and a link."""
    return next(iter(str(exc).strip().splitlines()), type(exc).__name__)

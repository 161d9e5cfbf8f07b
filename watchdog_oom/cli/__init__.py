"""The command line: `watchdog-oom COMMAND …` over the same pieces the daemon uses.

One module per command group, each listing its `Command`s: run (the daemon), check
(check, processes), cgroups, history (history, show, report), import_logs (import), mute (mute,
unmute), notify_test, admin (db, config), systemd. What a command is (`Command`), the exit
codes and the usage errors are declared here, beside `main`: the daemon's `run` needs no
more of the command line. The parser and the options several commands share are
options.py's (loaded with argparse, which `run` does without); times, numbers and the
store as the commands open them, common.py's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TextIO

from watchdog_oom import config as config_mod
from watchdog_oom.valueclass import valueclass

if TYPE_CHECKING:
    import argparse

__all__ = ["COMMANDS", "SafeFormatter", "UsageError", "build_parser", "evaluate_now", "main"]

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3
EXIT_BAD_CONFIG = 2

Handler = Callable[["argparse.Namespace", config_mod.Config, TextIO, TextIO], int]


@valueclass(slots=False)
class Command:
    """One subcommand: its name and help, the arguments it adds to its parser, what runs it."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Handler


class UsageError(Exception):
    """Bad input on the command line; printed with exit status 2."""


class BadArguments(Exception):
    """What argparse found wrong with the command line; `text` is what argparse would print."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.text = text


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
    if name == "build_parser":
        from watchdog_oom.cli.options import build_parser

        return build_parser
    if name == "SafeFormatter":
        from watchdog_oom.cli.run import SafeFormatter

        return SafeFormatter
    if name == "evaluate_now":
        from watchdog_oom.cli.check import evaluate_now

        return evaluate_now
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run one command line; its exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    argv = sys.argv[1:] if argv is None else list(argv)
    word = _command_in(argv)
    # The daemon's plain command line needs no parser; anything else is argparse's (options.py).
    args = _plain_run(argv) if word == "run" else None
    if args is None:
        from watchdog_oom.cli.options import parse_command_line

        parsed = parse_command_line(argv, word, out, err)
        if isinstance(parsed, int):  # a usage error, said
            return parsed
        args = parsed
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

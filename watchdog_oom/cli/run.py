"""`run`: the daemon in the foreground, with the log format systemd's journal reads."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, TextIO

from watchdog_oom import config as config_mod
from watchdog_oom.bounds import LOG_MESSAGE_MAX, cap
from watchdog_oom.cli import Command
from watchdog_oom.visible import safe

if TYPE_CHECKING:  # the daemon's command line is read without argparse (see cli.main)
    import argparse


def cmd_run(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Run the daemon until it is stopped; its exit status."""
    from watchdog_oom.daemon import Daemon
    from watchdog_oom.daemon.daemon import StartError

    setup_logging(args.log_level or cfg.daemon.log_level, err)
    path = config_mod.config_path(args.config, os.environ)
    try:
        return Daemon(cfg, config_path=path).run()
    except StartError as exc:  # the parts that started were stopped; no traceback for this
        logging.getLogger("watchdog_oom").error("%s", exc)
        return 1


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-level", choices=config_mod.LOG_LEVELS,
                   help="how much the daemon logs to stderr (default: daemon.log_level, info)")


COMMANDS = (Command("run", "run the daemon in the foreground until SIGTERM or Ctrl-C; SIGHUP reloads the config",
                    _arguments, cmd_run),)


def setup_logging(level: str, stream: TextIO) -> None:
    """Log to `stream` at `level`, in the journal's format under systemd."""
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
    follow the message, keep their lines. A message longer than LOG_MESSAGE_MAX characters
    (a megabyte process name) is cut there, with a marker."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = cap(safe(cap(record.message, LOG_MESSAGE_MAX)), LOG_MESSAGE_MAX)
        return super().formatMessage(record)


class _SdLevel(logging.Filter):
    """Prefix records with the syslog level systemd-journald reads from stderr (sd-daemon.h)."""

    LEVELS = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno_sd = self.LEVELS.get(record.levelno, 6)
        return True


"""`systemd-unit`: the shipped unit file, pointed at this installation."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from watchdog_oom import config as config_mod
from watchdog_oom.cli.common import EXIT_OK, Command


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
    """Print the unit file."""
    out.write(systemd_unit())
    return EXIT_OK


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


COMMANDS = (Command("systemd-unit", "print the systemd unit for this installation", _no_arguments, cmd_systemd_unit),)

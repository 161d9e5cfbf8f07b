"""Installing: `systemd-unit` and `install-service` (the shipped unit, pointed at this
installation), `completion` and `manpage` (the shipped shell completions and man page)."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from watchdog_oom import config as config_mod
from watchdog_oom.cli import EXIT_OK, Command

UNIT_NAME = "watchdog-oom.service"
UNIT_DIR = "/etc/systemd/system"
# sd_booted(3): systemd is the init system exactly when this directory exists.
SYSTEMD_RUN_DIR = "/run/systemd/system"
# ProtectHome=yes in the unit hides these from the service.
HIDDEN_BY_UNIT = ("/home/", "/root/", "/run/user/")


def systemd_unit(config: str | None = None) -> str:
    """The shipped unit file, its ExecStart pointing at this installation (and at `config`, if given)."""
    from importlib import resources

    text = (resources.files("watchdog_oom") / "data" / UNIT_NAME).read_text()
    return text.replace("@EXEC@", " ".join(_exec_start(config)))


def _exec_start(config: str | None) -> list[str]:
    script = shutil.which("watchdog-oom")
    words = [script] if script else [sys.executable, "-m", "watchdog_oom"]
    if config:
        words += ["-c", os.path.abspath(config)]
    return [shlex.quote(w) for w in words]


def cmd_systemd_unit(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Print the unit file."""
    out.write(systemd_unit(args.config))
    return EXIT_OK


class InstallError(Exception):
    """install-service cannot go on; the message says why and what to do."""


def install_service(unit_dir: str, run_dir: str, systemctl: str, config: str | None, start: bool,
                    out: TextIO) -> None:
    """Write the unit into `unit_dir`, reload systemd, enable the unit (and start it with `start`)."""
    if not os.path.isdir(run_dir):
        raise InstallError(f"systemd is not the init system here ({run_dir} does not exist): run "
                           "'watchdog-oom run' under this machine's own service manager instead")
    tool = shutil.which(systemctl)
    if tool is None:
        raise InstallError(f"{systemctl} is not installed, though systemd seems to be running")
    unit = systemd_unit(config)
    for hidden in HIDDEN_BY_UNIT:
        if any(word.startswith(hidden) for word in shlex.split(_exec_line(unit))):
            out.write(f"warning: the unit hides {hidden} from the service (ProtectHome=yes), and the command or "
                      f"config lives there; install as root with ./install.sh, or edit the unit\n")
    path = Path(unit_dir) / UNIT_NAME
    _write_atomically(path, unit)
    out.write(f"wrote {path}\n")
    _systemctl(tool, "daemon-reload")
    _systemctl(tool, "enable", *(["--now"] if start else []), UNIT_NAME)
    out.write(f"enabled{' and started' if start else ''} {UNIT_NAME}: "
              f"'systemctl status watchdog-oom' and 'journalctl -u watchdog-oom' show how it runs\n")


def _exec_line(unit: str) -> str:
    return next(line for line in unit.splitlines() if line.startswith("ExecStart=")).split("=", 1)[1]


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # a unit file holds no secret; systemd and operators read it
        os.replace(tmp, path)
    except PermissionError:
        raise InstallError(f"cannot write {path}: permission denied (run install-service as root)") from None
    except OSError as exc:
        raise InstallError(f"cannot write {path}: {exc.strerror}") from None


def _systemctl(tool: str, *words: str) -> None:
    proc = subprocess.run([tool, *words], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise InstallError(f"systemctl {' '.join(words)} failed (exit {proc.returncode}): {detail}")


def cmd_install_service(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Install the unit, reload systemd, enable and start it."""
    try:
        install_service(args.unit_dir, SYSTEMD_RUN_DIR, "systemctl", args.config, not args.no_start, out)
    except InstallError as exc:
        print(f"watchdog-oom install-service: {exc}", file=err)
        return 1
    return EXIT_OK


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


def _shipped(*parts: str) -> str:
    from importlib import resources

    return (resources.files("watchdog_oom").joinpath("data", *parts)).read_text()


def cmd_completion(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Print the shell's completion script."""
    out.write(_shipped("completion", {"bash": "watchdog-oom.bash", "zsh": "_watchdog-oom"}[args.shell]))
    return EXIT_OK


def cmd_manpage(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Print the man page (roff)."""
    out.write(_shipped("watchdog-oom.1"))
    return EXIT_OK


def _completion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=("bash", "zsh"),
                   help="bash: save as /usr/local/share/bash-completion/completions/watchdog-oom; "
                        "zsh: as _watchdog-oom in a directory of $fpath (install.sh does both as root)")


def _install_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unit-dir", default=UNIT_DIR, metavar="DIR",
                   help=f"where the unit file is written (default: {UNIT_DIR})")
    p.add_argument("--no-start", action="store_true",
                   help="enable the unit for the next boot without starting it now")


COMMANDS = (
    Command("systemd-unit", "print the systemd unit for this installation (with -c, pointed at that config)",
            _no_arguments, cmd_systemd_unit),
    Command("install-service", "write the systemd unit, reload systemd, enable and start it "
            "(exit 1 where systemd is not the init system)", _install_arguments, cmd_install_service),
    Command("completion", "print the shell completion script for bash or zsh", _completion_arguments,
            cmd_completion),
    Command("manpage", "print the man page (man -l <(watchdog-oom manpage))", _no_arguments, cmd_manpage),
)

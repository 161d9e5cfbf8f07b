"""The README's Quick start as a new user runs it: a fresh clone, install.sh, then `run`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    """The shell commands in the README's Quick start block, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```sh\n")[1:]
    return [block.split("```", 1)[0].strip() for block in blocks]


def test_the_quick_start_names_install_sh_for_the_service_and_the_tests():
    service, tests = quick_start_commands()[:2]
    assert service.startswith("./install.sh") and "watchdog-oom run" in service
    assert tests.startswith("./install.sh --test")


def test_a_fresh_clone_installs_with_install_sh_and_the_service_starts(installed, tmp_path):
    # Nothing of this machine's: the prefix, the command and the state all live in a temporary
    # directory (the conftest's `installed`: the clone and install.sh, shared with the test below).
    proc, env, command, share = installed["proc"], installed["env"], installed["command"], installed["share"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"command: {command}" in proc.stdout
    assert (share / "man" / "man1" / "watchdog-oom.1").read_text().startswith(".TH WATCHDOG")
    assert "watchdog-oom" in (share / "bash-completion" / "completions" / "watchdog-oom").read_text()
    assert (share / "zsh" / "site-functions" / "_watchdog-oom").read_text().startswith("#compdef watchdog-oom")

    # `watchdog-oom run` on built-in defaults (no config file), until it says it is ready.
    sock_path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(60)
    daemon = subprocess.Popen([str(command), "run"], cwd=tmp_path, env={**env, "NOTIFY_SOCKET": sock_path},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        messages = ""
        while "READY=1" not in messages:
            messages += sock.recv(4096).decode()
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, err
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)
        sock.close()
    assert (installed["state"] / "history.db").exists()


def test_console_script_upgrades_the_database_from_the_installed_package(installed, tmp_path):
    # The console script install.sh installed: its own environment's package, away from this
    # source tree, finds the migrations it ships.
    from test_cli import write_config

    assert installed["proc"].returncode == 0, installed["proc"].stdout + installed["proc"].stderr
    config = write_config(tmp_path, f"database: sqlite:///{tmp_path}/up.db\n")
    proc = subprocess.run([str(installed["command"]), "db", "upgrade"], capture_output=True, text=True,
                          env={**installed["env"], "WATCHDOG_OOM_CONFIG": str(config)}, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    from alembic.script import ScriptDirectory

    from watchdog_oom.store import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert proc.stdout.startswith(f"database at revision {head}")


def fake_systemctl(tmp_path: Path, exit_code: int = 0) -> tuple[str, Path]:
    """A stand-in for systemctl (there is no running systemd here): it records its arguments."""
    calls = tmp_path / "systemctl-calls"
    script = tmp_path / "systemctl"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\necho 'Failed to enable unit: denied' >&2\n"
                      f"exit {exit_code}\n")
    script.chmod(0o755)
    return str(script), calls


def test_install_service_writes_the_unit_reloads_and_enables_it(tmp_path):
    from io import StringIO

    from watchdog_oom.cli.systemd import install_service

    (tmp_path / "run").mkdir()
    systemctl, calls = fake_systemctl(tmp_path)
    config = tmp_path / "config.yaml"
    out = StringIO()
    install_service(str(tmp_path / "units"), str(tmp_path / "run"), systemctl, str(config), True, out)
    unit = tmp_path / "units" / "watchdog-oom.service"
    assert unit.stat().st_mode & 0o777 == 0o644
    exec_start = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    assert exec_start.endswith(f" -c {config} run")
    assert calls.read_text().splitlines() == ["daemon-reload", "enable --now watchdog-oom.service"]
    assert f"wrote {unit}" in out.getvalue()


def test_install_service_refuses_where_systemd_is_not_the_init_system(tmp_path):
    from watchdog_oom.cli.systemd import InstallError, install_service

    systemctl, calls = fake_systemctl(tmp_path)
    with open(os.devnull, "w") as out, pytest.raises(InstallError, match="systemd is not the init system here"):
        install_service(str(tmp_path / "units"), str(tmp_path / "no-such-run-dir"), systemctl, None, True, out)
    assert not (tmp_path / "units").exists() and not calls.exists()


def test_install_service_says_what_systemctl_answered_when_it_fails(tmp_path):
    from watchdog_oom.cli.systemd import InstallError, install_service

    (tmp_path / "run").mkdir()
    systemctl, _ = fake_systemctl(tmp_path, exit_code=1)
    denied = r"systemctl daemon-reload failed \(exit 1\): Failed to enable unit: denied"
    with open(os.devnull, "w") as out, pytest.raises(InstallError, match=denied):
        install_service(str(tmp_path / "units"), str(tmp_path / "run"), systemctl, None, False, out)


def test_install_service_command_exits_1_with_the_reason_on_this_machine(tmp_path):
    from io import StringIO

    from watchdog_oom.cli import main

    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd is the init system here; the command would really install the unit")
    err = StringIO()
    code = main(["install-service", "--unit-dir", str(tmp_path)], stdout=StringIO(), stderr=err)
    assert code == 1 and "systemd is not the init system here" in err.getvalue()
    assert list(tmp_path.iterdir()) == []

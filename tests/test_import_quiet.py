"""`import --quiet`: a big archive's import prints no kill, only each log's counts, and
records exactly what a printing import records (on both engines, through the forked
reader as the command runs it)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from test_import_packing import KINDS, _generated, _stored, berlin, two_histories  # noqa: F401 (fixtures)

from watchdog_oom.cli import import_logs, main


def _import(tmp_path: Path, url: str, log: Path, *options: str) -> tuple[str, str]:
    """The command's output and what it said (stderr a file: the reader is forked, as from a shell)."""
    config = tmp_path / "config.yaml"
    config.write_text(f"host: local-host\ndatabase: {url}\n")
    out = io.StringIO()
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as err:
        assert main(["-c", str(config), "import", *options, str(log)], stdout=out, stderr=err) == 0
        err.seek(0)
        return out.getvalue(), err.read()


def test_a_quiet_import_records_what_a_printing_one_does_and_prints_no_kill(
        berlin: None, two_histories: tuple[str, str], tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "syslog"
    log.write_text(_generated([KINDS[n % len(KINDS)] for n in range(60)], 5))
    monkeypatch.setattr(import_logs, "BATCH", 7)  # batches mixing kinds
    printing, quiet = two_histories
    out, said = _import(tmp_path, printing, log, "--format", "json")
    assert out.count('"pid"') > 40
    for options in (("-q",), ("--quiet", "--format", "json")):
        out, said_quietly = _import(tmp_path, quiet, log, *options)
        assert out == ""
        assert said_quietly == said if options == ("-q",) else ", 0 new, " in said_quietly
    assert _stored(quiet) == _stored(printing)


def test_a_quiet_dry_run_counts_the_kills_and_records_nothing(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_text(_generated(["minimal"] * 12 + ["capture"], 2))
    out, said = _import(tmp_path, f"sqlite:///{tmp_path / 'history.db'}", log, "--dry-run", "-q")
    assert out == "" and " kills found" in said and " new" not in said
    assert not (tmp_path / "history.db").exists() or _stored(f"sqlite:///{tmp_path / 'history.db'}") == []

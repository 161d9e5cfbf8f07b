"""One command-line convention: --format everywhere data is printed, --json its synonym,
every option explained with its default, WHEN never guessed, private files."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest
from test_cli import cfg, import_fixtures, run, sar_host  # noqa: F401  (fixtures)

from watchdog_oom.cli import build_parser


@pytest.mark.parametrize("argv", [["check"], ["processes"], ["history"], ["mute", "--list"]])
def test_format_json_and_json_give_the_same_document(cfg, argv):  # noqa: F811
    code_a, by_format, _ = run(*argv, "--format", "json", config=cfg)
    code_b, by_flag, _ = run(*argv, "--json", config=cfg)
    assert code_a == code_b and code_a in (0, 1, 2)
    a, b = json.loads(by_format), json.loads(by_flag)
    if isinstance(a, dict):  # check's time is read twice; everything else must agree
        a.pop("time", None)
        b.pop("time", None)
    assert a == b


def test_processes_as_csv_has_a_header_and_a_row_per_process(cfg):  # noqa: F811
    code, out, _ = run("processes", "--top", "3", "--format", "csv", config=cfg)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["process"] for r in rows] == ["java", "mysqld", "chrome"]


def test_check_format_json_keeps_the_unknown_schema_on_a_usage_error(cfg):  # noqa: F811
    code, out, _ = run("check", "--format", "json", "--bogus", config=cfg)
    assert code == 3 and json.loads(out)["status"] == "UNKNOWN"


def _every_option(parser: argparse.ArgumentParser, path: str = "watchdog-oom"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _every_option(sub, f"{path} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


def test_every_option_and_argument_says_what_it_does():
    missing = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in _every_option(build_parser())
               if not (a.help or "").strip()]
    assert missing == []


def test_every_option_with_a_default_states_it():
    unstated = [f"{path} {'/'.join(a.option_strings)}" for path, a in _every_option(build_parser())
                if a.option_strings and a.default not in (None, False, argparse.SUPPRESS)
                and "default" not in (a.help or "")]
    assert unstated == []


def test_top_level_help_lists_the_exit_codes_and_when():
    text = build_parser().format_help()
    assert "exit status:" in text and "3  check: UNKNOWN" in text and "ISO 8601" in text


@pytest.mark.parametrize("when", ["30", "7.5"])
def test_a_bare_number_as_when_is_refused_rather_than_read_as_seconds(cfg, when):  # noqa: F811
    code, _, err = run("history", "--since", when, config=cfg)
    assert code == 2 and "has no unit" in err and f"{when}m" in err


def test_report_takes_until_and_refuses_an_empty_window(cfg, tmp_path):  # noqa: F811
    import_fixtures(cfg, "20_docker-host_syslog_four-kills-paren-name.log")
    page = tmp_path / "r.html"
    code, out, _ = run("report", "--since", "3650d", "--until", "1d", "--output", str(page), config=cfg)
    assert code == 0 and " to " in out and page.read_text().startswith("<!DOCTYPE html>")
    code, _, err = run("report", "--since", "1d", "--until", "2d", "--output", str(page), config=cfg)
    assert code == 2 and "not earlier than --until" in err


@pytest.mark.parametrize(("umask", "existing", "expected"), [
    (0o022, None, 0o600),
    (0o077, None, 0o600),
    (0o277, None, 0o400),  # a stricter umask is honoured
    (0o022, 0o644, 0o600),  # an existing, more open file is made private too
])
def test_report_file_is_as_private_as_the_database(cfg, tmp_path, umask, existing, expected):  # noqa: F811
    page = tmp_path / "r.html"
    if existing is not None:
        page.write_text("old")
        page.chmod(existing)
    old = os.umask(umask)
    try:
        code, _, err = run("report", "--output", str(page), config=cfg)
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(page.stat().st_mode) == expected
    if expected & 0o400:
        assert Path(page).read_text().startswith("<!DOCTYPE html>")


def test_the_shipped_completions_and_man_page_are_current():
    from watchdog_oom.cli import docs

    stale = [str(docs.FILES[name]) for name, text in docs.generate().items()
             if not docs.FILES[name].exists() or docs.FILES[name].read_text() != text]
    assert stale == [], "out of date; regenerate them with: python -m watchdog_oom.cli.docs"


@pytest.mark.parametrize(("argv", "start"), [(["completion", "bash"], "# AUTOMATICALLY GENERATED"),
                                             (["completion", "zsh"], "#compdef watchdog-oom"),
                                             (["manpage"], ".TH WATCHDOG")])
def test_completions_and_man_page_are_printed(argv, start):
    code, out, _ = run(*argv)
    assert code == 0 and out.startswith(start)


def test_summary_counts_a_kill_of_unknown_cgroup_and_time_as_unknown_not_as_root(cfg, tmp_path):  # noqa: F811
    log = tmp_path / "bare.log"
    log.write_text("Out of memory: Killed process 4242 (java) total-vm:1000kB, anon-rss:900kB, file-rss:0kB\n")
    assert run("import", str(log), config=cfg)[0] == 0
    _, out, _ = run("history", "summary", "--format", "json", config=cfg)
    rows = json.loads(out)
    assert {"by": "cgroup", "value": None, "kills": 1} in rows
    assert {"by": "day", "value": None, "kills": 1} in rows
    assert not any(r["value"] in ("/", "unknown") for r in rows)
    _, table, _ = run("history", "summary", config=cfg)
    assert any(line.split()[:2] == ["cgroup", "-"] for line in table.splitlines())


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may write in: a read-only tmpfs as root, else a mode-0500 directory."""
    import subprocess

    place = tmp_path / "ro"
    place.mkdir()
    if os.geteuid() != 0:
        place.chmod(0o500)
        yield place
        return
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "watchdog-oom-test", str(place)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {proc.stderr.strip()}")
    try:
        yield place
    finally:
        subprocess.run(["umount", str(place)], check=True)


def test_a_database_on_a_read_only_place_is_explained_with_its_path(tmp_path, read_only_dir):
    from test_cli import write_config

    config = write_config(tmp_path, f"database: sqlite:///{read_only_dir}/history.db\n")
    code, _, err = run("history", config=config)
    assert code == 1, err
    assert err.startswith(f"watchdog-oom history: the history database {read_only_dir}/history.db "), err
    assert "read-only" in err or "check the path and its permissions" in err


@pytest.mark.parametrize(("driver", "words"), [
    ("(sqlite3.OperationalError) attempt to write a readonly database", "is read-only"),
    ("database: migration failed: (sqlite3.OperationalError) unable to open database file", "cannot be opened"),
    ("(sqlite3.OperationalError) database or disk is full", "the disk holding it is full"),
    ("(sqlite3.OperationalError) database is locked", "locked by another process"),
])
def test_database_errors_name_the_file_the_cause_and_the_remedy(driver, words):
    from watchdog_oom.store.explain import explain

    text = explain(driver, "sqlite:////var/lib/watchdog-oom/history.db")
    assert text.startswith("the history database /var/lib/watchdog-oom/history.db ") and words in text
    assert driver in text  # the driver's own words stay, to search for


def test_a_server_database_is_named_without_its_password():
    from watchdog_oom.store.explain import explain

    text = explain("connection refused", "postgresql+psycopg://wd:s3cret@db.example:5433/watchdog")
    assert "postgresql at db.example:5433/watchdog" in text and "s3cret" not in text

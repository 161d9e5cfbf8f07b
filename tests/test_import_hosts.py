"""Imports keep the host each log line names: a fleet's collected logs file each machine's
kills under that machine, --host forces one, --year sets the year syslog dates lack."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest
from test_cli import run, write_config

from watchdog_oom.parse.wrappers import line_host

KILL = ("Out of memory: Killed process {pid} ({name}) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:1000 pgtables:12kB oom_score_adj:0")


@pytest.mark.parametrize(("line", "host"), [
    ("Jun 29 15:57:11 build-07 kernel: {kill}", "build-07"),
    ("2025-06-29T15:57:11.123456+02:00 web-01.example.org kernel: {kill}", "web-01.example.org"),
    ("<3>1 2025-06-29T15:57:11.000000+00:00 rfc-host kernel - - - {kill}", "rfc-host"),
    ("Mon 2024-06-03 10:00:00 CEST full-host kernel: {kill}", "full-host"),
    ("1717408800.123456 unix-host kernel: {kill}", "unix-host"),
    ("/var/log/kern.log:12:Jun 29 15:57:11 grepped kernel: [ 12.5] {kill}", "grepped"),
    ("     3\tJun 29 15:57:11 numbered kernel: {kill}", "numbered"),
    ("> Jun 29 15:57:11 quoted earlyoom[412]: sending SIGTERM to process 5 uid 0 \"x\"", "quoted"),
    ("[ 1234.567890] {kill}", None),
    ("6,1234,5678,-;{kill}", None),
    ("{kill}", None),
    ("2025-06-29T15:57:11+00:00 kernel: oom_reaper: reaped process 1 (x)", None),
])
def test_the_host_a_line_names_is_read_from_its_prefix(line, host):
    assert line_host(line.format(kill=KILL.format(pid=1, name="x"))) == host


@pytest.fixture
def cfg(tmp_path):
    return write_config(tmp_path, f"host: collector\ndatabase: sqlite:///{tmp_path}/h.db\n")


def fleet_log(tmp_path):
    log = tmp_path / "fleet.log"
    log.write_text("\n".join([
        "Jun 29 15:57:11 build-07 kernel: " + KILL.format(pid=4242, name="java"),
        "Jun 29 16:01:02 db-03 kernel: " + KILL.format(pid=777, name="mysqld"),
        "[ 123.456000] " + KILL.format(pid=99, name="bare"),
    ]) + "\n")
    return log


def test_imports_from_two_hosts_are_filed_under_each_and_the_rest_under_the_local_one(cfg, tmp_path):
    code, out, err = run("import", "--format", "json", str(fleet_log(tmp_path)), config=cfg)
    assert code == 0, err
    assert {(k["pid"], k["host"]) for k in json.loads(out)} == {(4242, "build-07"), (777, "db-03"), (99, "collector")}
    assert "filed under build-07 (1), db-03 (1), collector (1)" in err
    _, out, _ = run("history", "--host", "db-03", "--format", "json", config=cfg)
    assert [k["pid"] for k in json.loads(out)] == [777]


def test_import_host_forces_one_host_for_every_kill(cfg, tmp_path):
    code, out, err = run("import", "--host", "box-9", "--format", "json", str(fleet_log(tmp_path)), config=cfg)
    assert code == 0 and {k["host"] for k in json.loads(out)} == {"box-9"}
    assert "filed under box-9 (3)" in err


def test_import_year_sets_the_year_of_syslog_dates_and_says_what_it_assumed_otherwise(cfg, tmp_path):
    log = fleet_log(tmp_path)
    _, out, err = run("import", "--dry-run", "--year", "2019", "--format", "json", str(log), config=cfg)
    assert {k["time"][:4] for k in json.loads(out) if k["time"]} == {"2019"}
    assert "is assumed" not in err
    _, out, err = run("import", "--dry-run", "--format", "json", str(log), config=cfg)
    assert "is assumed" in err and "--year YYYY sets it" in err


@pytest.mark.parametrize("year", ["19", "abc", "10000"])
def test_import_refuses_a_year_that_is_not_one(cfg, tmp_path, year):
    code, _, err = run("import", "--year", year, str(fleet_log(tmp_path)), config=cfg)
    assert code == 2 and "year" in err


DATED = {  # a date that carries its year, in each format that writes one (local time, no offset)
    "dmesg -T": "[Thu Jun  3 10:00:00 2021] ",
    "journalctl short-full": "Thu 2021-06-03 10:00:00 CEST build-07 kernel: ",
    "logread": "Thu Jun  3 10:00:00 2021 kern.warn kernel: [ 1.0] ",
    "ISO 8601": "2021-06-03T10:00:00 build-07 kernel: ",
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["stored", "dry-run"])
@pytest.mark.parametrize("form", sorted(DATED))
def test_a_date_that_carries_its_year_keeps_it_even_past_the_file_s_time(cfg, tmp_path, form, dry_run):
    # The log was last written in January 2021: a classic syslog date of June is then taken
    # as the June before (a December line read in January), but a date that says 2021 is
    # 2021's (a clock set wrong is not a year's difference), and no year was "assumed" for it.
    log = tmp_path / "dated.log"
    log.write_text(DATED[form] + KILL.format(pid=4242, name="dated") + "\n"
                   + "Jun  3 11:00:00 build-07 kernel: " + KILL.format(pid=777, name="yearless") + "\n")
    january = datetime(2021, 1, 10, 12, 0).timestamp()
    os.utime(log, (january, january))
    code, out, err = run("import", *(["--dry-run"] if dry_run else []), "--format", "json", str(log), config=cfg)
    assert code == 0, err
    times = {k["pid"]: k["time"][:19] for k in json.loads(out)}
    assert times == {4242: "2021-06-03T10:00:00", 777: "2020-06-03T11:00:00"}
    assert "is assumed" in err  # (the syslog line's)
    if not dry_run:
        _, out, _ = run("history", "--format", "json", config=cfg)
        assert {k["pid"]: k["time"][:19] for k in json.loads(out)} == times
    only = tmp_path / "dated-only.log"
    only.write_text(DATED[form] + KILL.format(pid=4243, name="dated") + "\n")
    os.utime(only, (january, january))
    code, out, err = run("import", "--dry-run", "--format", "json", str(only), config=cfg)
    assert code == 0 and [k["time"][:19] for k in json.loads(out)] == ["2021-06-03T10:00:00"]
    assert "is assumed" not in err, err

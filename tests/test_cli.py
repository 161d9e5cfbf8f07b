"""The command line, run as users run it, on fake /proc trees and a real migrated database."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from proctree import ProcTree
from servers import HttpSink, SmtpSink

from watchdog_oom.cli import main

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "data" / "oom_logs"


def run(*argv: str, config: Path | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = (["-c", str(config)] if config else []) + list(argv)
    code = main(args, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def write_config(tmp: Path, text: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def sar_host(tmp_path: Path) -> Path:
    """The host of the published `sar -r` report, with a few processes."""
    root = (ProcTree(tmp_path)
            .meminfo(MemTotal=24258840, MemFree=1000000, MemAvailable=6000000, SwapTotal=8396200,
                     SwapFree=8000000, CommitLimit=30229156, Committed_AS=64262056)
            .overcommit(1, 90)
            .process(101, "java", 1350, 0, uid=1000, rss_kb=9_000_000,
                     cmdline=["java", "-Xmx8g", "-Ddb.password=s3cret", "-jar", "app.jar"])
            .process(202, "mysqld", 1100, 0, uid=27, rss_kb=6_000_000,
                     cmdline=["/usr/sbin/mysqld", "--user=mysql"], cgroup="/system.slice/mysqld.service")
            .process(303, "chrome", 800, 0, uid=1000, rss_kb=3_000_000, cmdline=["/opt/chrome/chrome"])
            .process(404, "bash", 667, 0, uid=1000, rss_kb=5_000)
            .process(505, "sshd", 0, -1000, uid=0, rss_kb=8_000, cmdline=["sshd: /usr/sbin/sshd -D"],
                     cgroup="/system.slice/ssh.service")
            .root)
    return root


@pytest.fixture
def cfg(tmp_path: Path, sar_host: Path) -> Path:
    return write_config(tmp_path, f"""
host: web-01
database: sqlite:///{tmp_path}/db/history.db
procfs: {sar_host}
processes:
  critical:
    - name: mysqld
    - name: sshd
""")


def test_check_json_gives_sar_figures_of_the_published_host(cfg):
    code, out, _ = run("check", "--json", config=cfg)
    doc = json.loads(out)
    assert doc["commit"]["commit_percent"] == 196.79
    assert doc["commit"]["commit_limit_percent"] == 212.58
    assert doc["commit"]["overcommit_memory"] == 1 and doc["commit"]["overcommit_ratio"] == 90
    # Mode 1 judges by sar %commit: 196.79 is past crit_percent 100.
    assert doc["commit"]["status"] == "CRITICAL" and doc["status"] == "CRITICAL" and code == 2
    assert [p["process"] for p in doc["processes"][:3]] == ["java", "mysqld", "chrome"]
    assert doc["time"].endswith("+00:00")


def test_check_warns_about_mysqld_not_sshd(cfg):
    _, out, _ = run("check", "--json", config=cfg)
    findings = json.loads(out)["findings"]
    at_risk = [f for f in findings if f["kind"] == "process.at_risk"]
    assert len(at_risk) == 1 and "mysqld" in at_risk[0]["summary"]
    assert not any("sshd" in f["summary"] for f in findings)


def test_check_exit_codes_follow_nagios(tmp_path):
    fine = ProcTree(tmp_path).root  # default tree: 10 GB committed of 20 GB RAM+swap
    cfg = write_config(tmp_path, f"procfs: {fine}\ndatabase: sqlite:///{tmp_path}/h.db\n")
    assert run("check", config=cfg)[0] == 0
    broken = write_config(tmp_path, f"procfs: {tmp_path}/nowhere\ndatabase: sqlite:///{tmp_path}/h.db\n")
    code, out, _ = run("check", config=broken)
    assert code == 3 and out.startswith("UNKNOWN")


def test_check_table_is_readable(cfg):
    code, out, _ = run("check", config=cfg)
    assert out.startswith("CRITICAL: web-01")
    assert "196.79%" in out and "mysqld" in out


def test_processes_top_3(cfg):
    code, out, _ = run("processes", "--top", "3", "--json", config=cfg)
    rows = json.loads(out)["processes"]
    assert code == 0
    assert [(p["process"], p["rss_kb"], p["uid"], p["critical"]) for p in rows] == [
        ("java", 9_000_000, 1000, False), ("mysqld", 6_000_000, 27, True), ("chrome", 3_000_000, 1000, False)]
    assert rows[0]["cmdline"] == "java -Xmx8g -Ddb.password=*** -jar app.jar"


def test_processes_table_escapes_terminal_control_characters(tmp_path):
    root = ProcTree(tmp_path).process(7, "evil", 900, cmdline=["evil", "\x1b[2Jgotcha"]).root
    cfg = write_config(tmp_path, f"procfs: {root}\ndatabase: sqlite:///{tmp_path}/h.db\n")
    _, out, _ = run("processes", config=cfg)
    assert "\x1b" not in out and "\\x1b[2Jgotcha" in out


def test_misspelt_key_exits_2_with_its_name(tmp_path):
    cfg = write_config(tmp_path, "commit:\n  warn_percnt: 80\n")
    code, _, err = run("config", "check", config=cfg)
    assert code == 2 and "warn_percnt" in err and "line 2" in err


def test_config_check_masks_secrets(tmp_path):
    cfg = write_config(tmp_path, """
notifications:
  channels:
    - name: chat
      type: slack
      webhook_url: https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX
    - name: mail
      type: email
      host: smtp.example.com
      username: watchdog
      password: ${SMTP_PW}
      from: w@example.com
      to: [ops@example.com]
""")
    os.environ["SMTP_PW"] = "pa55w0rd-very-secret"
    try:
        code, out, _ = run("config", "check", config=cfg)
    finally:
        del os.environ["SMTP_PW"]
    assert code == 0 and "smtp.example.com" in out
    assert "XXXXsecretXXXX" not in out and "pa55w0rd-very-secret" not in out


def import_fixtures(cfg: Path, *names: str) -> list[dict]:
    """Import fixtures as this host's own logs (--host): the report and history tests read them back."""
    code, out, err = run("import", "--host", "web-01", "--format", "json", *[str(FIXTURES / n) for n in names],
                         config=cfg)
    assert code == 0, err
    return json.loads(out)


def test_import_records_each_kill_once(cfg):
    first = import_fixtures(cfg, "20_docker-host_syslog_four-kills-paren-name.log")
    assert [k["pid"] for k in first] == [15784, 15925, 15783, 15934]
    assert all(isinstance(k["id"], int) for k in first)
    # Syslog dates have no year: the file's modification year stands in, with an offset.
    assert all(datetime.fromisoformat(k["time"]).tzinfo is not None for k in first)
    log = FIXTURES / "20_docker-host_syslog_four-kills-paren-name.log"
    code, out, err = run("import", "--host", "web-01", "--format", "json", str(log), config=cfg)
    again = json.loads(out)
    assert code == 0 and "4 kills found, 0 new, 4 already recorded" in err
    assert [(k["id"], k["pid"]) for k in again] == [(k["id"], k["pid"]) for k in first]
    _, out, _ = run("history", "--format", "json", config=cfg)
    assert len(json.loads(out)) == 4


def test_import_dry_run_records_nothing(cfg):
    code, out, err = run("import", "--dry-run", "--format", "json",
                         str(FIXTURES / "06_aws-6.8_dmesg-T_docker-redis-global-oom.log"), config=cfg)
    (kill,) = json.loads(out)
    assert kill["id"] is None and kill["process"] == "redis-server" and kill["invoker"] == "node"
    assert datetime.fromisoformat(kill["time"]).tzinfo is not None  # JSON times carry an offset
    _, out, _ = run("history", "--format", "json", config=cfg)
    assert json.loads(out) == []


def test_import_reads_gzip_and_stdin(cfg, tmp_path, monkeypatch):
    src = (FIXTURES / "14_rhel8-4.18_messages_rsyslog-012-escapes.log").read_bytes()
    gz = tmp_path / "messages.1.gz"
    gz.write_bytes(gzip.compress(src))
    (kill,) = import_fixtures(cfg, str(gz))
    assert kill["process"] == "cache-main" and kill["invoker"] == "in:imjournal"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(
        (FIXTURES / "06_aws-6.8_dmesg-T_docker-redis-global-oom.log").read_bytes())))
    code, out, _ = run("import", "--format", "json", "-", config=cfg)
    assert code == 0 and json.loads(out)[0]["source"] == "import:stdin"


def test_import_of_a_missing_file_exits_1_naming_it(cfg, tmp_path):
    code, _, err = run("import", str(tmp_path / "nope.log"), config=cfg)
    assert code == 1 and "nope.log" in err


def test_history_filters_and_formats(cfg):
    import_fixtures(cfg, "20_docker-host_syslog_four-kills-paren-name.log",
                    "06_aws-6.8_dmesg-T_docker-redis-global-oom.log")
    _, out, _ = run("history", "kills", "--process", "(resolved)", "--format", "json", config=cfg)
    assert sorted(k["pid"] for k in json.loads(out)) == [15925, 15934]
    _, out, _ = run("history", "kills", "--format", "csv", "--limit", "2", config=cfg)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:3] == ["id", "host", "boot_id"] and len(rows) == 3
    assert out.endswith("\r\n")
    _, out, _ = run("history", "kills", "--host", "elsewhere", config=cfg)
    assert out.startswith("no kills recorded")
    _, out, _ = run("history", "summary", "--format", "json", config=cfg)
    by_process = {r["value"]: r["kills"] for r in json.loads(out) if r["by"] == "process"}
    assert by_process == {"(resolved)": 2, "python3": 2, "redis-server": 1}


def test_history_rejects_a_bad_when(cfg):
    code, _, err = run("history", "--since", "yesterday-ish", config=cfg)
    assert code == 2 and "yesterday-ish" in err


def test_show_gives_the_whole_incident(cfg):
    (kill,) = import_fixtures(cfg, "12_rhel6-2.6.32_messages_full-event-oom_adj.log")
    code, out, _ = run("show", str(kill["id"]), "--format", "json", config=cfg)
    doc = json.loads(out)
    assert code == 0 and doc["process"] == "mysqld" and doc["uid"] == 27 and doc["invoker"] == "php-fpm"
    assert doc["task_table"] and doc["task_table"][0]["rss_kb"] >= doc["task_table"][-1]["rss_kb"]
    code, out, _ = run("show", str(kill["id"]), config=cfg)
    assert "Victim" in out and "php-fpm" in out and "Biggest tasks" in out
    assert run("show", "999999", config=cfg)[0] == 1


def test_mute_list_and_unmute(cfg):
    code, out, _ = run("mute", "--kind", "oom.kill", "--cgroup", "/kubepods/*", "--for", "2h",
                       "--reason", "load test", config=cfg)
    assert code == 0 and out.startswith("mute 1 active until")
    _, out, _ = run("mute", "--list", config=cfg)
    assert "/kubepods/*" in out and "load test" in out
    assert run("unmute", "1", config=cfg)[0] == 0
    assert run("mute", "--list", config=cfg)[1].startswith("no active mutes")
    assert run("unmute", "1", config=cfg)[0] == 1
    assert run("mute", "--kind", "oom.kill", config=cfg)[0] == 2  # --for is required


def test_notify_test_reports_each_channel(tmp_path):
    with HttpSink([(500, {}, "boom")]) as bad, HttpSink() as good, SmtpSink() as smtp:
        cfg = write_config(tmp_path, f"""
database: sqlite:///{tmp_path}/h.db
notifications:
  channels:
    - name: broken
      type: webhook
      url: {bad.url}/x
    - name: fine
      type: webhook
      url: {good.url}/y
    - name: mail
      type: email
      host: 127.0.0.1
      port: {smtp.port}
      security: none
      from: w@example.com
      to: [ops@example.com]
""")
        code, out, _ = run("notify-test", config=cfg)
        assert code == 1
        assert "broken (webhook): FAILED (transient)" in out and "500" in out
        assert "fine (webhook): delivered: HTTP 200" in out
        assert "mail (email): delivered: 250" in out
        (msg,) = smtp.wait_for(1)
        assert str(msg.message["Subject"]).strip().startswith("[watchdog-oom] ")
        code, out, _ = run("notify-test", "--channel", "fine", config=cfg)
        assert code == 0 and "broken" not in out
        code, _, err = run("notify-test", "--channel", "nope", config=cfg)
        assert code == 1 and "no channel named nope (configured: broken, fine, mail)" in err


def test_python_m_entry_point_and_systemd_unit(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "watchdog_oom", "systemd-unit"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    unit = proc.stdout
    assert proc.returncode == 0
    # MALLOC_ARENA_MAX: glibc's malloc arenas, one per thread otherwise (bench_footprint --unit-environment)
    for directive in ("Type=notify", "WatchdogSec=", "OOMScoreAdjust=-900", "StateDirectory=watchdog-oom",
                      "Environment=MALLOC_ARENA_MAX=2"):
        assert f"\n{directive}" in unit
    for forbidden in ("ProtectKernelLogs=yes", "PrivateDevices=yes", "ProcSubset=pid"):
        assert f"\n{forbidden}" not in unit
    assert "@EXEC@" not in unit and " run\n" in unit
    analyze = shutil.which("systemd-analyze")
    if analyze:
        path = tmp_path / "watchdog-oom.service"
        path.write_text(unit)
        check = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
        assert "watchdog-oom.service:" not in check.stderr, check.stderr


def test_the_systemd_unit_runs_unprivileged_and_rates_at_most_2_5(tmp_path):
    from watchdog_oom.cli.systemd import systemd_unit

    unit = systemd_unit()
    for directive in ("DynamicUser=yes", "Restart=always", "SystemCallFilter=@system-service", "MemoryMax=",
                      "TasksMax=", "NoNewPrivileges=yes", "DeviceAllow=/dev/kmsg r"):
        assert f"\n{directive}" in unit
    caps = re.search(r"\nCapabilityBoundingSet=(.*)", unit).group(1).split()
    assert sorted(caps) == ["CAP_DAC_OVERRIDE", "CAP_SYSLOG", "CAP_SYS_RESOURCE"]
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd brings it)")
    path = tmp_path / "watchdog-oom.service"
    path.write_text(unit)
    proc = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(path)],
                          capture_output=True, text=True, timeout=60)
    if "--offline" in proc.stderr or "unrecognized option" in proc.stderr:
        pytest.skip(f"this systemd-analyze has no offline security mode: {proc.stderr.strip()}")
    level = re.search(r"Overall exposure level for watchdog-oom.service: ([0-9.]+)", proc.stdout)
    assert level, proc.stdout + proc.stderr
    assert float(level.group(1)) <= 2.5, proc.stdout


@pytest.mark.parametrize(("channel", "error", "secret"), [
    ("type: slack\n      webhook_url: https://hooks.example.com/services/T0/B0/abcdefSECRETtoken123",
     "HTTP 503 from https://hooks.example.com/services/T0/B0/abcdefSECRETtoken123", "abcdefSECRETtoken123"),
    ("type: webhook\n      url: https://hooks.example.com/oom\n      headers:\n"
     "        Authorization: Bearer hdrSECRETtoken42",
     "HTTP 401: Bearer hdrSECRETtoken42 rejected", "hdrSECRETtoken42"),
])
def test_history_notifications_shows_attempts_and_errors_with_secrets_masked(tmp_path, channel, error, secret):
    from watchdog_oom.store import Store, claims

    cfg = write_config(tmp_path, f"""
database: sqlite:///{tmp_path}/h.db
notifications:
  channels:
    - name: out
      {channel}
""")
    store = Store(f"sqlite:///{tmp_path}/h.db", "web-01")
    store.upgrade()
    now = datetime.now(timezone.utc)
    with store.tx() as tx:
        tx.enqueue(channel="out", kind="oom.kill", severity="critical", reason="first",
                   summary="OOM kill: java", data={}, now=now)
    (claimed,) = claims.claim_due(store, now)
    claims.mark_retry(store, claimed, error, now)
    code, out, _ = run("history", "notifications", "--format", "json", config=cfg)
    (shown,) = json.loads(out)
    assert code == 0 and (shown["status"], shown["attempts"], shown["reason"]) == ("pending", 1, "first")
    assert error.split()[1] in shown["last_error"] and secret not in out


def test_report_writes_one_self_contained_page(cfg, tmp_path):
    import_fixtures(cfg, "20_docker-host_syslog_four-kills-paren-name.log")
    out_file = tmp_path / "report.html"
    code, out, _ = run("report", "--since", "3650d", "--output", str(out_file), config=cfg)
    page = out_file.read_text()
    assert code == 0 and "written to" in out
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "(resolved)" in page and "15925" in page
    assert "src=\"http" not in page and "href=\"http" not in page
    code, _, err = run("report", "--output", str(tmp_path / "no" / "such" / "dir.html"), config=cfg)
    assert code == 2 and "cannot write" in err


def test_import_of_corrupt_compressed_logs_names_each_and_goes_on(cfg, tmp_path):
    import bz2
    import lzma

    src = (FIXTURES / "20_docker-host_syslog_four-kills-paren-name.log").read_bytes() * 20
    bad_gz = tmp_path / "messages.1.gz"
    bad_gz.write_bytes(gzip.compress(src)[:10] + b"\xff" * 100)  # deflate data: zlib.error
    corrupt = {}
    for suffix, compress in ((".xz", lzma.compress), (".bz2", bz2.compress)):
        data = bytearray(compress(src))
        data[len(data) // 2] ^= 0xFF
        corrupt[suffix] = tmp_path / f"messages.1{suffix}"
        corrupt[suffix].write_bytes(data)
    good = FIXTURES / "06_aws-6.8_dmesg-T_docker-redis-global-oom.log"
    paths = [str(bad_gz), str(corrupt[".xz"]), str(good), str(corrupt[".bz2"])]
    code, out, err = run("import", "--format", "json", *paths, config=cfg)
    assert code == 1
    for path in (bad_gz, corrupt[".xz"], corrupt[".bz2"]):
        assert f"watchdog-oom import: {path}: corrupt or unreadable compressed data (" in err
    assert [k["process"] for k in json.loads(out)] == ["redis-server"]


def test_an_internal_error_reading_a_log_is_not_blamed_on_compression():
    # A ValueError out of the parser once read "corrupt or unreadable compressed data" for a
    # plain text file (found by the review): the reading errors that are the file's say so,
    # one of ours says it is ours, and the kills read before it are kept.
    import lzma
    import zlib

    from watchdog_oom.cli.import_logs import _read_error

    for exc in (zlib.error("invalid block type"), lzma.LZMAError("Corrupt input data"), EOFError("cut short"),
                gzip.BadGzipFile("Not a gzipped file")):
        assert _read_error("/var/log/x.gz", exc).startswith("/var/log/x.gz: corrupt or unreadable compressed data")
    assert _read_error("/var/log/x", FileNotFoundError(2, "No such file or directory")) == \
        "/var/log/x: No such file or directory"
    said = _read_error("/var/log/messages", ValueError("x" * 1000))
    assert "compressed" not in said
    assert said.startswith("/var/log/messages: reading stopped by an internal error (ValueError: xxx")
    assert len(said) < 400 and "please report" in said


@pytest.mark.parametrize("option, value", [
    ("--since", "99999999999d"), ("--since", "10000000000000000000000"), ("--since", "0001-01-01"),
    ("--until", "9999-12-31T23:59:59-05:00"), ("--since", ""),
])
def test_history_rejects_a_when_out_of_range_naming_it(cfg, option, value):
    code, _, err = run("history", option, value, config=cfg)
    assert code == 2 and repr(value) in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv", [
    ("history", "--limit", str(2**63)), ("show", str(2**63)), ("unmute", str(2**63)),
    ("processes", "--top", str(2**63)),
])
def test_integer_arguments_beyond_sqlite_are_usage_errors(cfg, argv):
    code, _, err = run(*argv, config=cfg)
    assert code == 2 and f"expected a number from 1 to {2**63 - 1}, got {2**63}" in err


def test_mute_rejects_an_overlong_duration_and_warns_about_an_unknown_kind(cfg):
    code, _, err = run("mute", "--kind", "oom.kill", "--for", "999999999d", config=cfg)
    assert code == 2 and "'999999999d' is longer than 100 years" in err
    code, out, err = run("mute", "--kind", "comit.*", "--for", "1h", config=cfg)
    assert code == 0 and out.startswith("mute 1 active")
    assert "--kind 'comit.*' matches no notification kind" in err
    code, _, err = run("mute", "--kind", "commit.*", "--for", "1h", config=cfg)
    assert code == 0 and err == ""


def test_processes_without_a_procfs_exits_1_naming_it(tmp_path):
    cfg = write_config(tmp_path, f"procfs: {tmp_path}/nowhere\ndatabase: sqlite:///{tmp_path}/h.db\n")
    code, _, err = run("processes", config=cfg)
    assert code == 1 and err.startswith(f"watchdog-oom processes: cannot read processes from {tmp_path}/nowhere: ")


@pytest.fixture
def random_bytes_db(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(4096))
    return write_config(tmp_path, f"database: sqlite:///{path}\nkernel_log:\n  source: none\n")


@pytest.mark.parametrize("argv", [("db", "upgrade"), ("history",), ("mute", "--list")])
def test_a_corrupt_database_is_a_one_line_error(random_bytes_db, argv):
    code, out, err = run(*argv, config=random_bytes_db)
    assert code == 1 and out == ""
    assert err.startswith(f"watchdog-oom {argv[0]}: ") and "file is not a database" in err
    assert len(err.splitlines()) == 1 and "Background" not in err


def test_run_on_a_corrupt_database_moves_it_aside_whole_and_starts_anew(random_bytes_db, tmp_path):
    # Issue 16: the daemon keeps recording; the damaged file is kept, never overwritten.
    damaged = (tmp_path / "garbage.db").read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "watchdog_oom", "-c", str(random_bytes_db), "run"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    killer = threading.Timer(60, proc.kill)  # a daemon that never says it must not hang the suite
    killer.start()
    try:
        said = next((line for line in proc.stderr if "moved aside" in line), "")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        killer.cancel()
    assert "damaged" in said and "a new one is started" in said, said
    (aside,) = tmp_path.glob("garbage.db.corrupt-*[0-9]Z")
    assert aside.read_bytes() == damaged


CHECK_DOC_KEYS = {"status", "host", "time", "commit", "memory", "processes", "findings"}


@pytest.mark.parametrize("config_text", [None, "commit: [unclosed\n", "commit:\n  warn_percent: lots\n"])
def test_check_answers_unknown_on_a_configuration_error(tmp_path, config_text):
    path = write_config(tmp_path, config_text) if config_text else tmp_path / "nonexistent.yaml"
    code, out, _ = run("check", config=path)
    assert code == 3 and out.startswith("UNKNOWN: configuration error: ")
    code, out, _ = run("check", "--json", config=path)
    doc = json.loads(out)
    assert code == 3 and doc["status"] == "UNKNOWN" and "configuration error" in doc["error"]
    assert doc.keys() >= CHECK_DOC_KEYS and (doc["commit"], doc["memory"], doc["processes"]) == (None, None, [])
    code, _, err = run("config", "check", config=path)
    assert code == 2 and "configuration error" in err


def test_check_answers_unknown_on_a_usage_error(cfg):
    code, out, err = run("check", "--bogus", config=cfg)
    assert code == 3 and out.startswith("UNKNOWN: usage error: unrecognized arguments: --bogus")
    assert "usage: watchdog-oom" in err
    code, out, _ = run("check", "--json", "--bogus", config=cfg)
    assert code == 3 and json.loads(out)["status"] == "UNKNOWN"
    assert run("history", "--bogus", config=cfg)[0] == 2


def test_check_json_without_a_procfs_keeps_the_schema(tmp_path):
    cfg = write_config(tmp_path, f"procfs: {tmp_path}/nowhere\ndatabase: sqlite:///{tmp_path}/h.db\n")
    code, out, _ = run("check", "--json", config=cfg)
    doc = json.loads(out)
    assert code == 3 and doc.keys() >= CHECK_DOC_KEYS and doc["processes"] == [] and doc["memory"] is None
    assert "cannot read memory figures" in doc["error"]


def test_check_without_overcommit_sysctls_or_memory_says_so(tmp_path):
    root = (ProcTree(tmp_path).meminfo(MemTotal=0, SwapTotal=0, SwapFree=0)
            .remove("sys/vm/overcommit_memory").remove("sys/vm/overcommit_ratio").root)
    cfg = write_config(tmp_path, f"procfs: {root}\ndatabase: sqlite:///{tmp_path}/h.db\n")
    _, out, _ = run("check", config=cfg)
    assert "vm.overcommit_memory=-, ratio -" in out and "None" not in out
    _, out, _ = run("check", "--json", config=cfg)
    assert json.loads(out)["commit"]["commit_percent"] is None


def test_report_to_stdout(cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run("report", "--output", "-", config=cfg)
    assert code == 0 and out.startswith("<!DOCTYPE html>") and not (tmp_path / "-").exists()


def test_notify_test_without_channels_says_where_they_go(tmp_path):
    cfg = write_config(tmp_path, f"database: sqlite:///{tmp_path}/h.db\n")
    code, _, err = run("notify-test", config=cfg)
    assert code == 1
    assert err == "watchdog-oom notify-test: no notification channels configured (notifications.channels)\n"


def test_reading_commands_leave_a_database_at_the_newest_schema_alone(cfg, monkeypatch):
    from watchdog_oom.store import Store

    import_fixtures(cfg, "06_aws-6.8_dmesg-T_docker-redis-global-oom.log")  # migrates

    def no_upgrade(self: Store) -> str:
        raise AssertionError("upgrade() of a database at the newest schema")

    monkeypatch.setattr(Store, "upgrade", no_upgrade)
    for argv in (("history",), ("show", "1"), ("mute", "--list")):
        code, _, err = run(*argv, config=cfg)
        assert code == 0, err


def test_history_reads_a_read_only_database(cfg, tmp_path):
    import_fixtures(cfg, "06_aws-6.8_dmesg-T_docker-redis-global-oom.log")
    ro = write_config(tmp_path / "db", f"database: sqlite:///file:{tmp_path}/db/history.db?mode=ro&uri=true\n")
    code, out, err = run("history", "--format", "json", config=ro)
    assert code == 0, err
    assert [k["process"] for k in json.loads(out)] == ["redis-server"]


def test_daemon_log_lines_cannot_be_forged_or_drive_the_terminal():
    import logging

    from watchdog_oom.cli import SafeFormatter

    record = logging.LogRecord("watchdog_oom", logging.WARNING, __file__, 1, "OOM kill recorded: %s pid %d",
                               ("\x1b[2Jevil\nWARNING watchdog_oom: forged\u202e", 42), None)
    line = SafeFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert line == ("WARNING watchdog_oom: OOM kill recorded: \\x1b[2Jevil\\x0aWARNING watchdog_oom: "
                    "forged\\u202e pid 42")


def test_a_systemd_oomd_kill_has_no_pid_rather_than_a_made_up_one(cfg):
    capture = Path(__file__).parent / "data" / "captures" / "systemd-oomd-252_journal-short-iso_pressure-and-swap.log"
    code, out, _ = run("import", "--format", "json", str(capture), config=cfg)
    kills = json.loads(out)
    assert code == 0 and kills and all(k["pid"] is None and k["killer"] == "systemd-oomd" for k in kills)
    code, out, _ = run("show", str(kills[0]["id"]), config=cfg)
    assert "(pid -," in out


def test_show_of_an_imported_kill_finds_the_memory_state_in_the_history(cfg, tmp_path):
    from watchdog_oom.model import MemorySample
    from watchdog_oom.store import Store

    (kill,) = import_fixtures(cfg, "06_aws-6.8_dmesg-T_docker-redis-global-oom.log")
    when = datetime.fromisoformat(kill["time"])
    store = Store(f"sqlite:///{tmp_path}/db/history.db", "web-01")
    with store.tx() as tx:
        tx.add_sample(MemorySample(time=when - timedelta(seconds=20), mem_total_kb=16_000_000,
                                   mem_available_kb=300_000, mem_free_kb=1, swap_total_kb=0, swap_free_kb=0,
                                   committed_as_kb=30_000_000, commit_limit_kb=8_000_000, overcommit_memory=0,
                                   overcommit_ratio=50, overcommit_kbytes=0))
    _, out, _ = run("show", str(kill["id"]), "--format", "json", config=cfg)
    assert json.loads(out)["commit_state"]["commit_percent"] == 187.5


def test_commands_that_store_nothing_do_not_load_the_database_layer(cfg):
    # Nagios runs `check` every minute on every host: SQLAlchemy would be most of its start-up.
    code = ("import sys; from watchdog_oom.cli import main; rc = main(['-c', sys.argv[1], 'check', '--json'], "
            "stdout=open('/dev/null', 'w')); print('sqlalchemy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False", out.stderr


def test_import_as_a_process_reads_logs_beside_opening_the_database(cfg, tmp_path):
    # With a real stderr the logs are read in a forked child while the parent opens the
    # history: the kills must arrive whole, and an unreadable file still be reported.
    argv = [sys.executable, "-m", "watchdog_oom", "-c", str(cfg), "import", "--format", "json",
            str(FIXTURES / "20_docker-host_syslog_four-kills-paren-name.log"), str(tmp_path / "missing.log"),
            str(FIXTURES / "12_rhel6-2.6.32_messages_full-event-oom_adj.log")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 1 and "missing.log" in first.stderr
    kills = json.loads(first.stdout)
    assert [k["pid"] for k in kills] == [15784, 15925, 15783, 15934, 40738]
    assert kills[4]["uid"] == 27 and all(isinstance(k["id"], int) for k in kills)
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert [k["id"] for k in json.loads(again.stdout)] == [k["id"] for k in kills]
    assert "0 new, 4 already recorded" in again.stderr


def test_import_as_a_process_with_an_unusable_database_fails_fast_and_clearly(tmp_path):
    bad = tmp_path / "not-a-db"
    bad.write_bytes(os.urandom(4096))
    cfg = write_config(tmp_path, f"database: sqlite:///{bad}\n")
    proc = subprocess.run([sys.executable, "-m", "watchdog_oom", "-c", str(cfg), "import",
                           str(FIXTURES / "06_aws-6.8_dmesg-T_docker-redis-global-oom.log")],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "not a database" in proc.stderr

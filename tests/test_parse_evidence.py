"""`import` says per kill what it was read from (issue 11 item 6): the kernel's whole report
or a lone line, the killer and its wording, the log format, the wrappers undone, and the
tag the line carried; journalctl -o json entries keep their _HOSTNAME and time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import run, write_config
from wrapping import WRAPPERS

from watchdog_oom.parse import parse_text
from watchdog_oom.parse.evidence import summary

DATA = Path(__file__).parent / "data"
CENTOS = DATA / "captures" / "centos7-3.10_messages_sacrifice-child-with-table.log"
EARLYOOM = DATA / "captures" / "earlyoom-1.x_journal_sigterm-then-sigkill.log"
KILL = ("Out of memory: Killed process 4242 (mysqld) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:27 pgtables:12kB oom_score_adj:0")


def evidence(text: str) -> list[dict]:
    return [kill.extra["evidence"] for kill in parse_text(text)]


def test_a_whole_report_in_syslog_names_its_parts_and_the_kernel_tag():
    (found,) = evidence(CENTOS.read_text())
    assert found["read_from"] == "kernel report"
    assert {"header", "task table", "selection", "kill line"} <= set(found["lines"])
    assert found["format"] == "syslog" and found["tag"] == "kernel" and found["wrappers"] == []
    assert "or sacrifice child" not in found["wording"] and found["wording"].startswith("kernel: Killed process")


@pytest.mark.parametrize(("text", "read_from", "fmt", "tag"), [
    ("[ 1234.567890] " + KILL, "kernel kill line alone", "dmesg", None),
    ("Jun 29 15:57:11 db-07 kernel: " + KILL, "kernel kill line alone", "syslog", "kernel"),
    ("> Mar  9 18:14:14 web-0 kernel: [295692.212175] " + KILL, "kernel kill line alone", "syslog", "kernel"),
    ("Jun 29 15:57:11 db-07 kernel: Out of memory: Kill process 4242 (mysqld) score 901 or sacrifice child",
     "kernel selection line alone", "syslog", "kernel"),
    ("<3>1 2025-06-29T15:57:11.000000+00:00 rfc-host kernel - - - " + KILL, "kernel kill line alone",
     "RFC 5424 syslog", "kernel"),
    (KILL, "kernel kill line alone", None, None),
    ('Jun 29 15:57:11 laptop earlyoom[1308]: sending SIGTERM to process 4242 uid 1000 "firefox": oom_score 823, '
     'VmRSS 79 MiB', "earlyoom", "syslog", "earlyoom"),
])
def test_a_lone_line_says_so_with_its_format_and_tag(text, read_from, fmt, tag):
    (found,) = evidence(text + "\n")
    assert (found["read_from"], found["format"], found["tag"]) == (read_from, fmt, tag)


def test_a_user_space_killer_is_named_with_its_wording():
    found = evidence(EARLYOOM.read_text())
    assert {e["read_from"] for e in found} == {"earlyoom"}
    assert all(e["wording"].startswith("earlyoom 1.") for e in found)
    assert summary(found[0]).startswith("earlyoom 1.")


# The wrapper each generated text has, as the evidence names it.
_NAMED = {"grep-Hn": "grep -Hn", "cat-n": "line numbers (cat -n, nl)", "nl": "line numbers (cat -n, nl)",
          "journal-json": None, "k8s-events": "JSON", "markdown-bullets": "markdown bullet", "color": "ANSI colours",
          "quoted-printable": "quoted-printable", "mail-quoted-twice": "mail quote",
          "rsyslog-012": "rsyslog #012", "terminal-60": "rejoined"}


@pytest.mark.parametrize("wrapper", sorted(_NAMED))
def test_the_evidence_names_the_wrapper_that_was_undone(wrapper):
    """Each wrapper of the matrix, around a whole kernel report."""
    text = WRAPPERS[wrapper](CENTOS.read_text().splitlines())
    (found,) = evidence(text)
    named = _NAMED[wrapper]
    if named is None:
        assert found["format"] == "journalctl -o json"
    else:
        assert any(w.startswith(named) for w in found["wrappers"]), found


def test_html_entities_are_named_where_the_kill_line_held_one():
    found = evidence(WRAPPERS["html-entities"](EARLYOOM.read_text().splitlines()))
    assert any("HTML entities" in e["wrappers"] for e in found)


def journal_json(tmp_path: Path) -> Path:
    log = tmp_path / "journal.json"
    entries = [
        {"__REALTIME_TIMESTAMP": "1751212631000000", "_TRANSPORT": "kernel", "_HOSTNAME": "db-07", "MESSAGE": KILL},
        {"__REALTIME_TIMESTAMP": "1751212700000000", "_TRANSPORT": "kernel", "_HOSTNAME": "web-01",
         "MESSAGE": KILL.replace("4242 (mysqld)", "77 (nginx)")},
    ]
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return log


def test_journal_json_kills_keep_the_entry_host_and_time(tmp_path):
    kills = parse_text(journal_json(tmp_path).read_text())
    assert [(k.pid, k.host, k.time.isoformat()) for k in kills] == [
        (4242, "db-07", "2025-06-29T15:57:11+00:00"), (77, "web-01", "2025-06-29T15:58:20+00:00")]


def test_import_shows_the_evidence_and_host_forces_one(tmp_path):
    cfg = write_config(tmp_path, f"host: collector\ndatabase: sqlite:///{tmp_path}/h.db\n")
    code, out, err = run("import", "--format", "json", str(journal_json(tmp_path)), config=cfg)
    assert code == 0, err
    kills = json.loads(out)
    assert [(k["host"], k["evidence"]["format"], k["evidence"]["tag"]) for k in kills] == [
        ("db-07", "journalctl -o json", "kernel"), ("web-01", "journalctl -o json", "kernel")]
    code, out, err = run("import", "--dry-run", "--host", "box-9", str(journal_json(tmp_path)), config=cfg)
    assert code == 0 and "EVIDENCE" in out.splitlines()[0]
    assert "kernel kill line alone; journalctl -o json; tag kernel" in out and "filed under box-9 (2)" in err


def test_a_stored_kill_keeps_its_evidence_for_import_to_show(store):
    """import shows a stored row's evidence where a batch had a kill quarantined."""
    import io
    from datetime import UTC, datetime

    from watchdog_oom.cli.import_logs import _import_batch
    from watchdog_oom.store.rows import kill_row
    from watchdog_oom.store.rows_import import row_evidence

    (kill,) = parse_text("Jun 29 15:57:11 db-07 kernel: " + KILL + "\n", year=2025)
    kill = kill.replace(time=kill.time.astimezone())
    bad = kill.replace(pid=7, anon_rss_kb=2 ** 70)
    rows = [kill_row(kill, "db-07"), kill_row(bad, "db-07")]
    recorded, unstored = _import_batch(store, rows, datetime(2025, 7, 1, tzinfo=UTC), io.StringIO())
    assert unstored == 1
    ((kill_id, new, row),) = recorded
    assert new and row_evidence(row) == kill.extra["evidence"]
    assert store.kill(kill_id).details["extra"]["evidence"] == kill.extra["evidence"]

"""A kernel kill that nobody but the kernel wrote is read nowhere (review R38, R37, R36).

Text another party writes reaches the kernel's log lines and the syslog files the daemon follows:
a cgroup's name (any user names the cgroups of a delegated subtree as they like, and the kernel
prints the path in its own OOM report), a victim's command line (earlyoom's kill line ends with it),
a program's syslog message (`logger -t alice …`). Written to hold a record separator (rsyslog's
"#012", a newline, a glued dmesg record "x[ 102.500000] ", a priority "<4>") and a kill line after
it, it must not become a kernel kill of pid 1 "sshd" on any path: the daemon's strict parser (kmsg's
bare messages, a followed syslog file, the running daemon), the import's parse_text and its byte
scanner iter_kills, and `watchdog-oom import` into a fresh database. Each such line that holds a
kill's words and is not read is counted unread (INTERFACE), and the real kill beside it still read.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from test_faults import append, pids_in
from test_service import Daemon, reap_daemons, wait_until  # noqa: F401 (reap_daemons: autouse fixture)

from watchdog_oom.cli import main
from watchdog_oom.model import KernelLine, OomKill
from watchdog_oom.parse import OomParser, Unread, iter_kills, parse_text

FORGED = ("Out of memory: Killed process 1 (sshd) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, "
          "UID:0 pgtables:4kB oom_score_adj:0")
REAL = ("Memory cgroup out of memory: Killed process 4242 (stress) total-vm:20000kB, anon-rss:10000kB, "
        "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:60kB oom_score_adj:0")
SYSLOG = "Jun 29 15:57:01 web-02 kernel: [  100.000000] "

# What a cgroup's name may hold before the kill line (no "/": a name of one directory).
NAME_SEPARATORS = {"glued uptime": "x[ 102.500000] ", "glued priority and uptime": "x<4>[ 102.500000] ",
                   "#012": "x#012", "glued uptime, no blank": "x[  102.500000] "}
_CGROUP = "/user.slice/user-1000.slice/user@1000.service/"
# The kernel's lines that print a cgroup's path, {} the path (v2 and v1 reports, oom.group).
PATH_LINES = {
    "stats": "Memory cgroup stats for {}:",
    "summary": "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg={},"
               "task_memcg={},task=stress,pid=4242,uid=1000",
    "v1 Task in": "Task in {} killed as a result of limit of {}",
    "oom.group": "Tasks in {} are going to be killed due to memory.oom.group set",
    "cpuset": "stress cpuset={} mems_allowed=0",
}


def _path_line(line: str, separator: str) -> str:
    path = _CGROUP + separator + FORGED
    return line.format(path, path)


def _strict(lines: list[str], *, wrapped: bool, unread: Unread | None = None) -> list[OomKill]:
    """The daemon's parser: kmsg's (journald's) bare messages, or a followed syslog file's lines."""
    parser = OomParser(year=2025, unread=unread)
    kills: list[OomKill] = []
    for text in lines:
        kills += parser.feed(KernelLine(text=text, source="test", wrapped=wrapped, mono_usec=1))
    return kills + parser.flush()


def _imported(text: str) -> tuple[dict[str, list[OomKill]], dict[str, int]]:
    """The kills the import's two readers find in `text`, and the lines each counts unread."""
    unread, scanned = Unread(), Unread()
    kills = {"parse_text": parse_text(text, year=2025, unread=unread),
             "iter_kills": list(iter_kills(io.BytesIO(text.encode()), "import", year=2025, unread=scanned))}
    return kills, {"parse_text": unread.count, "iter_kills": scanned.count}


def _pids(kills: list[OomKill]) -> list[tuple[int | None, str]]:
    return [(k.pid, k.killer) for k in kills]


@pytest.mark.parametrize("separator", NAME_SEPARATORS.values(), ids=NAME_SEPARATORS.keys())
@pytest.mark.parametrize("line", PATH_LINES.values(), ids=PATH_LINES.keys())
def test_a_cgroup_name_holding_a_record_separator_and_a_kill_line_forges_no_kill(line: str, separator: str) -> None:
    # Review R38: pieces() cut every kernel line at a glued "[ uptime] " or "#012" and read the
    # rest as a kernel record of its own; a cgroup's path is its owner's words to the line's end.
    lines = [_path_line(line, separator), REAL]
    unread = Unread()
    assert _pids(_strict(lines, wrapped=False, unread=unread)) == [(4242, "kernel")], "kmsg"
    assert unread.count == 1, "kmsg"
    unread = Unread()
    assert _pids(_strict([SYSLOG + text for text in lines], wrapped=True, unread=unread)) == [(4242, "kernel")]
    assert unread.count == 1, "syslog file"
    kills, unread_counts = _imported("".join(f"{SYSLOG}{text}\n" for text in lines))
    for path, found in kills.items():
        assert _pids(found) == [(4242, "kernel")], path
    assert unread_counts == {"parse_text": 1, "iter_kills": 1}


@pytest.mark.parametrize("separator", ["\n", "#012", "x[ 102.500000] "], ids=["newline", "#012", "glued uptime"])
def test_a_live_sources_bare_message_is_one_record(separator: str) -> None:
    # Review R38: kmsg escapes a newline in a record itself (the source undoes it), journald keeps
    # a record whole: what a bare message holds after a separator is that record's, never another's.
    for message in (f"Memory cgroup stats for /a{separator}{FORGED}:", f"hello{separator}{FORGED}"):
        assert _pids(_strict([message, REAL], wrapped=False)) == [(4242, "kernel")], message


def test_a_whole_v2_report_with_a_forging_cgroup_name_gives_its_one_kill_on_every_path(tmp_path: Path) -> None:
    path = _CGROUP + NAME_SEPARATORS["glued uptime"] + FORGED
    report = ["stress invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
              "memory: usage 10240kB, limit 10240kB, failcnt 12",
              f"Memory cgroup stats for {path}:", "anon 10000000",
              PATH_LINES["summary"].format(path, path), REAL]
    (kill,) = _strict(report, wrapped=False)
    assert (kill.pid, kill.process, kill.killer) == (4242, "stress", "kernel")
    (kill,) = _strict([SYSLOG + text for text in report], wrapped=True)
    assert (kill.pid, kill.process) == (4242, "stress")
    text = "".join(f"{SYSLOG}{line}\n" for line in report)
    kills, _ = _imported(text)
    assert {path: _pids(found) for path, found in kills.items()} == {
        "parse_text": [(4242, "kernel")], "iter_kills": [(4242, "kernel")]}
    assert _imported_into_a_fresh_db(tmp_path, text) == [(4242, "stress", "kernel")]


def _imported_into_a_fresh_db(tmp_path: Path, text: str) -> list[tuple]:
    """`watchdog-oom import` of a log holding `text` into a fresh SQLite database: its kills."""
    log = tmp_path / "messages"
    log.write_text(text)
    config = tmp_path / "c.yaml"
    config.write_text(f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(config), "import", "--year", "2025", str(log)], stdout=out, stderr=err) == 0, err.getvalue()
    out = io.StringIO()
    assert main(["-c", str(config), "history", "kills", "--format", "json"], stdout=out, stderr=err) == 0
    return sorted((k["pid"], k["process"], k["killer"]) for k in json.loads(out.getvalue()))


def test_the_running_daemon_following_a_syslog_file_records_no_kill_from_a_cgroup_name(tmp_path: Path) -> None:
    log = tmp_path / "messages"
    log.write_text("")
    db = tmp_path / "history.db"
    daemon = Daemon(tmp_path, f"host: web-02\ndatabase: sqlite:///{db}\nkernel_log: {{source: file, path: {log}}}\n"
                              "commit: {interval: 1s}\n")
    daemon.wait_message("READY=1")
    forging = [_path_line(line, separator) for line in PATH_LINES.values() for separator in NAME_SEPARATORS.values()]
    append(log, "".join(f"{SYSLOG}{text}\n" for text in [*forging, REAL]))
    assert wait_until(lambda: 4242 in pids_in(db)), daemon.log_text()[-3000:]
    assert daemon.stop() == 0
    with sqlite3.connect(db) as conn:
        assert list(conn.execute("SELECT pid, process, killer FROM kills")) == [(4242, "stress", "kernel")]
    assert daemon.log_text().count("a line holds a kill's words but could not be read") >= 1

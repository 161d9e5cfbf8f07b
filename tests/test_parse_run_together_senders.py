"""A kill run on after another record on one line has the sender of the last record header
before it, whatever text follows that header, as on a line of its own (review R29).

A local user's syslog line (`logger -t alice "note a b c … Out of memory: Killed process 1
(sshd) …"`) is refused on its own line: kernel words from 'alice'. Run on after a real kernel
kill line (a paste or a shipper that lost the line breaks), it was recorded as the kernel's kill
of pid 1 wherever a word stood between alice's header and the kernel's words. Here: syslog, ISO
and RFC 5424 records, 0 to 300 characters between header and kill, on the import's line parser
(parse_text), its scanner (iter_kills), the daemon's strict parser and `watchdog-oom import` into a
fresh SQLite database; and a property: a run-together line never yields a kernel kill whose
record, on its own line, is refused.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_parse_run_together import _daemon
from watchdog_oom.cli import main
from watchdog_oom.parse import Unread, iter_kills, parse_text

KILL = ("Out of memory: Killed process {pid} ({name}) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0")
REAL, FORGED = KILL.format(pid=4242, name="java"), KILL.format(pid=1, name="sshd")
HEADERS = {
    "syslog": "Jun 29 15:5{n}:11 web-0{n} {tag}: ",
    "ISO": "2025-06-29T15:5{n}:11+00:00 web-0{n} {tag}: ",
    "RFC 5424": "<13>1 2025-06-29T15:5{n}:11.000000+00:00 web-0{n} {tag} 77 - - ",
}
PADDING = {"no padding": "", "8 words": "a b c d e f g h ", "20 words": "w " * 20, "300 chars": "x" * 300 + " ",
           "5 words + 260 chars": "a b c d e " + "y" * 260 + " "}
REFUSED = "kernel words from 'alice', not from kernel"


def _read(text: str) -> dict[str, tuple[list[int], list[str]]]:
    """Each path's kills (pids) and unread reasons."""
    lines, scanned = Unread(keep=10), Unread(keep=10)
    return {
        "parse_text": ([k.pid for k in parse_text(text, year=2025, unread=lines)], [u.reason for u in lines.first]),
        "iter_kills": ([k.pid for k in iter_kills(io.BytesIO(text.encode()), "import", year=2025, unread=scanned)],
                       [u.reason for u in scanned.first]),
        "daemon": ([k.pid for k in _daemon(text, True)], []),
    }


@pytest.mark.parametrize("padding", PADDING.values(), ids=PADDING.keys())
@pytest.mark.parametrize("header", HEADERS.values(), ids=HEADERS.keys())
def test_the_kernels_words_after_a_users_header_and_text_are_refused_run_together_as_apart(header: str,
                                                                                          padding: str) -> None:
    records = [header.format(n=1, tag="kernel") + REAL, header.format(n=2, tag="alice") + padding + FORGED]
    apart, joined = _read("\n".join(records) + "\n"), _read(" ".join(records) + "\n")
    for path in ("parse_text", "iter_kills", "daemon"):
        assert apart[path][0] == [4242], path
        assert joined[path][0] == [4242], path
    for path in ("parse_text", "iter_kills"):  # the forged kill counted unread, as apart
        assert joined[path][1] == apart[path][1] == [REFUSED], path


@pytest.mark.parametrize("header", HEADERS.values(), ids=HEADERS.keys())
def test_a_later_kernel_record_after_a_users_text_is_read(header: str) -> None:
    # alice's record between two of the kernel's: the kernel's header after hers names the third kill's sender
    records = [header.format(n=1, tag="kernel") + REAL, header.format(n=2, tag="alice") + "note a b c " + FORGED,
               header.format(n=3, tag="kernel") + KILL.format(pid=77, name="mysqld")]
    joined = _read(" ".join(records) + "\n")
    for path in ("parse_text", "iter_kills", "daemon"):
        assert joined[path][0] == [4242, 77], path
    assert joined["parse_text"][1] == [REFUSED]


def test_a_users_record_after_a_kernel_record_that_is_no_kill_is_refused() -> None:
    # the first kill of the line: what stands before it holds alice's header (the Locator's sender)
    line = f"Jun 29 15:51:11 web-01 kernel: hello Jun 29 15:52:11 web-02 alice: note a b c {FORGED}\n"
    read = _read(line)
    assert read["parse_text"] == ([], [REFUSED]) and read["iter_kills"] == ([], [REFUSED])
    assert read["daemon"][0] == []


@pytest.mark.parametrize("padding", ["", "note a b c d e f g "], ids=["no padding", "8 words"])
def test_import_into_a_fresh_database_records_the_kernels_kill_not_the_forged_one(tmp_path: Path,
                                                                                  padding: str) -> None:
    log = tmp_path / "joined.log"
    log.write_text(f"Jun 29 15:51:11 web-01 kernel: {REAL} Jun 29 15:52:11 web-01 alice: {padding}{FORGED}\n")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"host: here\ndatabase: sqlite:///{tmp_path}/history.db\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(cfg), "import", "--year", "2025", "-q", str(log)], stdout=out, stderr=err) == 0
    said = err.getvalue()
    assert f"{log}: 1 kill found, 1 new" in said and REFUSED in said
    out = io.StringIO()
    assert main(["-c", str(cfg), "history", "--format", "json"], stdout=out, stderr=io.StringIO()) == 0
    assert [(k["pid"], k["process"], k["host"]) for k in json.loads(out.getvalue())] == [(4242, "java", "web-01")]


# The property: records of any format with any tag and text, run together; every kernel kill read
# from the joined line is one whose record is read on its own line.
_TAGS = st.sampled_from(["kernel", "kernel", "alice", "alice[77]", "sshd[812]", "earlyoom", "systemd-oomd", "cron"])
_WORDS = st.lists(st.sampled_from(["a", "note", "x" * 40, "kernel:", "alice:", "[ 12.500000]", "15:52:11", "Jun 29",
                                   "2025-06-29T15:52:11+00:00", "<13>1", "web-02", "-", "|", '"', "Killed", "process"]),
                  max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(HEADERS.values())), _TAGS, _WORDS, st.integers(1, 9999),
                          st.booleans()), min_size=2, max_size=5))
def test_a_run_together_line_yields_no_kernel_kill_its_own_line_refuses(records: list) -> None:
    texts, accepted = [], set()
    for n, (header, tag, words, pid, killing) in enumerate(records, 1):
        text = header.format(n=n, tag=tag) + " ".join(words) + (" " if words else "") + (
            KILL.format(pid=pid, name=f"v{pid}") if killing else "")
        texts.append(text)
        accepted |= {k.pid for k in parse_text(text + "\n", year=2025)}
    joined = " ".join(texts) + "\n"
    for path, (pids, _) in _read(joined).items():
        assert set(pids) <= accepted, (path, joined)

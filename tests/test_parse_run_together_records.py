"""Kill lines run together on one line, each in its own log record, keep their records' time,
uptime, host and sender (review R27).

A paste or a shipper that lost the line breaks of a log leaves each record's prefix (a syslog
header, a dmesg uptime, an ISO or `dmesg -T` date) right before its kill line: each kill is read
as its record reads on a line of its own, on every path (the import's line parser, its byte
scanner, the daemon's parser of a followed log file), into the history (`watchdog-oom import`, the
daemon's pipeline). A kill with no prefix of its own stands in the record before it (the line's,
for the first). Only a prefix that stands right before a kill's opening counts: a date in a name
or in the junk between two kills is no record's. A program's header before the kernel's words
is that program's line: refused, as it is on a line of its own.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proctree import ProcTree
from test_cli import run, write_config

from tests.history_of import history_of
from tests.test_parse_run_together import KILL, _every_path, _kill_text
from watchdog_oom.clock import FakeClock
from watchdog_oom.config import parse_config
from watchdog_oom.daemon import Daemon
from watchdog_oom.daemon.pipeline import Pipeline
from watchdog_oom.model import CaughtUp, KernelLine, OomKill
from watchdog_oom.parse import OomParser, Unread, iter_kills, parse_text
from watchdog_oom.sources.logfile import LogFileSource

# A record's prefix in each log format that writes one before the kernel's message ({n}: the
# record's number, 1-9, in its time, uptime and host).
RECORDS = {
    "syslog": "Jun 29 15:5{n}:11 web-0{n} kernel: ",
    "syslog with uptime": "Jun 29 15:5{n}:11 web-0{n} kernel: [ 10{n}.500000] ",
    "dmesg": "[ 10{n}.500000] ",
    "ISO (rsyslog)": "2025-06-29T15:5{n}:11+00:00 web-0{n} kernel: ",
    "ISO with uptime": "2025-06-29T15:5{n}:11.123456+02:00 web-0{n} kernel: [ 10{n}.500000] ",
    "dmesg -T": "[Sun Jun 29 15:5{n}:11 2025] ",
    "journalctl short-precise": "Jun 29 15:5{n}:11.12345{n} web-0{n} kernel: ",
    "journalctl short-full": "Sun 2025-06-29 15:5{n}:11 UTC web-0{n} kernel: ",
    "journalctl short-unix": "175121{n}111.000000 web-0{n} kernel: ",
    "RFC 5424": "<6>1 2025-06-29T15:5{n}:11.000000+00:00 web-0{n} kernel - - - ",
    "kmsg record": "6,{n},10{n}500000,-;",
    "priority and uptime": "<4>[ 10{n}.500000] ",
    "logread (OpenWrt)": "Sun Jun 29 15:5{n}:11 2025 kern.warn kernel: [ 10{n}.500000] ",
    "grep -Hn of syslog": "kern.log:{n}:Jun 29 15:5{n}:11 web-0{n} kernel: ",
}


def _record(prefix: str, n: int, name: str | None = None) -> str:
    return prefix.format(n=n) + _kill_text(KILL, n, name)


def _stamps(kills: list[OomKill]) -> list[tuple]:
    """Each kill's pid and what its record said of it: time, uptime, host, and the evidence's tag and format."""
    return [(k.pid, k.time, k.mono_usec, k.host, k.extra["evidence"]["tag"], k.extra["evidence"]["format"])
            for k in kills]


def _when(n: int, tz: timezone | None = None) -> datetime:
    return datetime(2025, 6, 29, 15, 50 + n, 11, tzinfo=tz)


@pytest.mark.parametrize("prefix", RECORDS.values(), ids=RECORDS.keys())
def test_kills_run_together_each_in_its_record_read_as_the_records_on_their_own_lines(prefix: str) -> None:
    records = [_record(prefix, n) for n in (1, 2, 3)]
    apart = _every_path("\n".join(records) + "\n", bare=False)
    joined = _every_path(" ".join(records) + "\n", bare=False)
    for path, kills in joined.items():
        assert _stamps(kills) == _stamps(apart[path]), path
        if prefix.startswith("kern.log") and path.startswith("daemon"):
            continue  # (the daemon reads a log's own lines: no grep output, apart or joined)
        assert [k.pid for k in kills] == [1001, 1002, 1003], path
        assert len({(k.time, k.mono_usec) for k in kills}) == 3, path  # each its own


# The review's reproducer (review-notes/s10_r22b_times.py): the kills at 15:51, 15:52 and 15:53,
# or 101.5, 102.5 and 103.5 s after boot, not all three at the first's.
REPRODUCER = {
    "syslog headers": ("syslog", [(_when(n), None) for n in (1, 2, 3)]),
    "dmesg uptimes": ("dmesg", [(None, 100_500_000 + n * 1_000_000) for n in (1, 2, 3)]),
    "ISO (rsyslog)": ("ISO (rsyslog)", [(_when(n, UTC), None) for n in (1, 2, 3)]),
    "dmesg -T": ("dmesg -T", [(_when(n), None) for n in (1, 2, 3)]),
}


@pytest.mark.parametrize(("shape", "expected"), REPRODUCER.values(), ids=REPRODUCER.keys())
def test_the_reviews_three_kills_on_one_line_are_each_at_its_own_time(shape: str, expected: list) -> None:
    line = " ".join(_record(RECORDS[shape], n) for n in (1, 2, 3)) + "\n"
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.time, k.mono_usec) for k in kills] == expected, path


def test_each_kill_is_filed_under_the_host_its_own_header_names() -> None:
    line = " ".join(_record(RECORDS["syslog"], n) for n in (1, 2, 3)) + "\n"
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.pid, k.host, k.time) for k in kills] == [
            (1001, "web-01", _when(1)), (1002, "web-02", _when(2)), (1003, "web-03", _when(3))], path


def test_a_kill_with_no_prefix_of_its_own_stands_in_the_record_before_it() -> None:
    # "plain" kills: run on after the record before them (the line's, for the first), whose
    # time, uptime and host they keep; a kill after a header of its own takes that one's.
    syslog, dmesg = RECORDS["syslog with uptime"], RECORDS["dmesg"]
    line = " ".join([_record(syslog, 1), _kill_text(KILL, 2), _record(syslog, 3), _kill_text(KILL, 4)]) + "\n"
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == [
            (1001, _when(1), 101_500_000, "web-01"), (1002, _when(1), 101_500_000, "web-01"),
            (1003, _when(3), 103_500_000, "web-03"), (1004, _when(3), 103_500_000, "web-03")], path
    line = " ".join([_kill_text(KILL, 1), _record(dmesg, 2), _kill_text(KILL, 3)]) + "\n"
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.pid, k.mono_usec) for k in kills] == [(1001, None), (1002, 102_500_000), (1003, 102_500_000)], path


def test_the_kernels_own_stamp_within_a_syslog_record_keeps_the_records_host_and_time() -> None:
    # One syslog record holding two kernel messages, each with its uptime: the second's uptime
    # is its own, its host and date the record's; a dmesg -T date is its time, and no uptime.
    line = ("Jun 29 15:51:11 web-01 kernel: [ 101.500000] " + _kill_text(KILL, 1) + " [ 102.500000] "
            + _kill_text(KILL, 2) + " [Sun Jun 29 15:53:11 2025] " + _kill_text(KILL, 3) + "\n")
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == [
            (1001, _when(1), 101_500_000, "web-01"), (1002, _when(1), 102_500_000, "web-01"),
            (1003, _when(3), None, "web-01")], path


def test_a_record_with_no_host_or_uptime_of_its_own_gives_none_not_the_line_firsts() -> None:
    # `dmesg --time-format=iso` after a syslog record: its date, and no host nor uptime (null, not a guess)
    line = (RECORDS["syslog with uptime"].format(n=1) + _kill_text(KILL, 1) + " 2025-06-29T15:52:11,123456+00:00 "
            + _kill_text(KILL, 2) + "\n")
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == [
            (1001, _when(1), 101_500_000, "web-01"),
            (1002, datetime(2025, 6, 29, 15, 52, 11, 123456, tzinfo=UTC), None, None)], path


def test_yearless_records_in_a_dated_wrapper_keep_the_wrappers_time_as_the_first_does() -> None:
    # a syslog date without its year gives no time: the one around it (a dmesg -T date, an export
    # entry's) stands for each kill, the first's and the rest's alike; the same victim twice is one kill
    records = " ".join(f"Jul 19 05:19:24 asl131 kernel: {_kill_text(KILL, n)}" for n in (1, 1, 2))
    for wrapped in (f"[Sun Jun 29 15:57:01 2025] {records}\n",
                    json.dumps({"__REALTIME_TIMESTAMP": "1751212621000000", "_TRANSPORT": "kernel",
                                "MESSAGE": records}) + "\n"):
        kills = parse_text(wrapped)
        assert [k.pid for k in kills] == [1001, 1002], wrapped
        assert len({k.time for k in kills}) == 1 and kills[0].time is not None, wrapped
        assert {k.host for k in kills} == {"asl131"}, wrapped


# Names a comm can hold that look like a record's prefix, and text between two kills that holds a
# date but not right before the second kill: no record's prefix, so no kill takes its time or host.
LOOKALIKE_NAMES = ["[ 999.500000]", "Jun 29 15:59:59", "[ 999.5] x", "web-09 kernel:", "<6>1 2099-01-01"]


@pytest.mark.parametrize("name", LOOKALIKE_NAMES)
def test_a_name_that_looks_like_a_prefix_gives_no_kill_its_time(name: str) -> None:
    line = " ".join(_record(RECORDS["dmesg"], n, name) for n in (1, 2, 3)) + "\n"
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.process, k.mono_usec) for k in kills] == [
            (name, 101_500_000), (name, 102_500_000), (name, 103_500_000)], path
    line = " ".join([_record(RECORDS["syslog"], 1, name), _kill_text(KILL, 2, name)]) + "\n"
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.process, k.time, k.host) for k in kills] == [(name, _when(1), "web-01")] * 2, path


@pytest.mark.parametrize("between", [
    " (seen 2025-06-29T15:59:59+00:00 on web-09) ",
    " [ 999.500000] and then ",
    "x [ 999.500000]x ",
])
def test_a_date_in_the_text_between_two_kills_is_no_prefix_unless_right_before_the_second(between: str) -> None:
    line = _record(RECORDS["syslog with uptime"], 1) + between + _kill_text(KILL, 2) + "\n"
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == [
            (1001, _when(1), 101_500_000, "web-01"), (1002, _when(1), 101_500_000, "web-01")], path


def test_a_record_header_in_the_text_between_two_kills_is_the_seconds_whatever_follows_it() -> None:
    # Review R29: the last record header before a kill names its sender and gives its time and
    # host, as on a line of its own (there: 15:59:59 on web-09, no uptime); a program's makes the
    # kernel's words that program's, refused
    first = _record(RECORDS["syslog with uptime"], 1)
    kernels = first + " 2025-06-29T15:59:59+00:00 web-09 kernel: note that " + _kill_text(KILL, 2) + "\n"
    for path, kills in _every_path(kernels, bare=False).items():
        assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == [
            (1001, _when(1), 101_500_000, "web-01"),
            (1002, datetime(2025, 6, 29, 15, 59, 59, tzinfo=UTC), None, "web-09")], path
    sshds = first + " Jun 29 15:59:59 web-09 sshd[812]: Accepted " + _kill_text(KILL, 2) + "\n"
    for path, kills in _every_path(sshds, bare=False, unread_too=True).items():
        assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == [
            (1001, _when(1), 101_500_000, "web-01")], path


def test_the_kernels_words_under_a_programs_header_are_refused_as_on_their_own_line() -> None:
    # "host alice: Out of memory: Killed process …" is alice's line (logger -t alice), not the kernel's
    forged = "Jun 29 15:52:11 web-02 alice: " + _kill_text(KILL, 2)
    for between in (forged, forged.replace("alice: ", "alice[77]: [ 102.500000] ")):
        line = " ".join([_record(RECORDS["syslog"], 1), between, _record(RECORDS["syslog"], 3)]) + "\n"
        for path, kills in _every_path(line, bare=False, unread_too=True).items():
            assert [(k.pid, k.host) for k in kills] == [(1001, "web-01"), (1003, "web-03")], path
        for alone in (between + "\n", line):
            unread = Unread(keep=5)
            parse_text(alone, year=2025, unread=unread)
            assert [u.reason for u in unread.first] == ["kernel words from 'alice', not from kernel"], alone


def test_fifty_kills_each_with_its_header_keep_its_time_and_host_on_the_import_scanner() -> None:
    # iter_kills over the bytes of a file, as `watchdog-oom import` reads one: 50 records on one line
    line = "".join(f"Jun 29 15:{n:02d}:07 host-{n:02d} kernel: [ {n}.25] {_kill_text(KILL, n)} " for n in range(50))
    kills = list(iter_kills(io.BytesIO((line + "\n").encode()), "import", year=2025))
    assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == [
        (1000 + n, datetime(2025, 6, 29, 15, n, 7), n * 1_000_000 + 250_000, f"host-{n:02d}") for n in range(50)]


def test_watchdog_oom_import_files_each_kill_under_its_headers_host_at_its_time(tmp_path: Path) -> None:
    log = tmp_path / "fleet.log"
    log.write_text(" ".join(_record(RECORDS["ISO with uptime"], n) for n in (1, 2, 3)) + "\n"
                   + " ".join(_record(RECORDS["ISO (rsyslog)"], n) for n in (4, 5)) + "\n")
    cfg = write_config(tmp_path, f"host: collector\ndatabase: sqlite:///{tmp_path}/h.db\n")
    code, out, err = run("import", "--format", "json", str(log), config=cfg)
    assert code == 0, err
    plus_two = timezone(timedelta(hours=2))
    assert [(k["pid"], k["host"], datetime.fromisoformat(k["time"])) for k in json.loads(out)] == [
        (1000 + n, f"web-0{n}", _when(n, plus_two).replace(microsecond=123456)) for n in (1, 2, 3)] + [
        (1000 + n, f"web-0{n}", _when(n, UTC)) for n in (4, 5)]
    assert "filed under web-01 (1), web-02 (1), web-03 (1), web-04 (1), web-05 (1)" in err
    _, out, _ = run("history", "--host", "web-02", "--format", "json", config=cfg)
    assert [k["pid"] for k in json.loads(out)] == [1002]


def test_the_daemon_following_a_log_file_records_each_kill_at_its_records_time(tmp_path: Path, t0: datetime) -> None:
    log = tmp_path / "kern.log"
    log.write_text(" ".join(f"2026-11-20T11:5{n}:11+00:00 web-0{n} kernel: [ 10{n}.500000] " + _kill_text(KILL, n)
                            for n in (1, 2, 3)) + "\n")
    cfg = parse_config(f"host: follower\ndatabase: sqlite:///{tmp_path}/history.db\n"
                       f"procfs: {ProcTree(tmp_path).root}\nkernel_log:\n  source: none\n", env={})
    daemon = Daemon(cfg, clock=FakeClock(t0))
    daemon.store.upgrade()
    pipeline = Pipeline(daemon.shared, "file:kern.log", first_start=False)
    source = LogFileSource(str(log), None, True, stat_interval=0.01)
    for event in source.events():
        pipeline.handle(event)
        if isinstance(event, CaughtUp):
            break
    source.close()
    # (the daemon files every kill under its own host, the machine it watches: rules/enrich.py)
    kills = sorted(history_of(daemon).kills(), key=lambda k: k.pid)
    assert [(k.pid, k.host, k.time, k.mono_usec) for k in kills] == [
        (1000 + n, "follower", datetime(2026, 11, 20, 11, 50 + n, 11, tzinfo=UTC), 100_500_000 + n * 1_000_000)
        for n in (1, 2, 3)]


# The outer log's records mix freely (each names its date and host, a kill with none stands in the one
# before); the kernel's own stamps are compared within one format (an uptime within a -T date's record
# would keep that date, which its line alone does not have).
OUTER = ["syslog", "syslog with uptime", "ISO (rsyslog)", "ISO with uptime", "RFC 5424", "journalctl short-unix"]
JOINERS = [" ", " [x] ", '", "', "\x00", "  \t "]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([*OUTER, None]), min_size=1, max_size=8), st.sampled_from(JOINERS),
       st.sampled_from(OUTER))
def test_mixed_records_run_together_read_as_their_records_alone(kinds: list, joiner: str, first: str) -> None:
    kinds[0] = kinds[0] or first
    records = [_record(RECORDS[kind], n) if kind else _kill_text(KILL, n) for n, kind in enumerate(kinds, 1)]
    expected, before = [], None
    for kind, record in zip(kinds, records, strict=True):
        (kill,) = parse_text(record + "\n", year=2025)
        if kind is not None:
            before = (kill.time, kill.mono_usec, kill.host)
        expected.append((kill.pid, *before))  # (one with no prefix: in the record before it)
    for path, kills in _every_path(joiner.join(records) + "\n", bare=False).items():
        assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == expected, path


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["dmesg", "dmesg -T", "kmsg record", "priority and uptime"]),
       st.lists(st.booleans(), min_size=1, max_size=8), st.sampled_from(JOINERS))
def test_kernel_stamped_records_run_together_read_as_alone(kind: str, own: list, joiner: str) -> None:
    own[0] = True
    records = [_record(RECORDS[kind], n) if mine else _kill_text(KILL, n) for n, mine in enumerate(own, 1)]
    expected, before = [], None
    for mine, record in zip(own, records, strict=True):
        (kill,) = parse_text(record + "\n", year=2025)
        if mine:
            before = (kill.time, kill.mono_usec, kill.host)
        expected.append((kill.pid, *before))
    for path, kills in _every_path(joiner.join(records) + "\n", bare=False).items():
        assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == expected, path


def test_a_records_time_takes_its_zone_and_fraction() -> None:
    (_, kill) = parse_text(" ".join(_record(RECORDS["ISO with uptime"], n) for n in (1, 2)) + "\n", year=2025)
    assert kill.time == datetime(2025, 6, 29, 15, 52, 11, 123456, tzinfo=timezone(timedelta(hours=2)))


def test_a_live_sources_bare_message_holds_no_logs_prefix() -> None:
    # kmsg and the journal deliver the kernel's message with its record's own stamp: what its text
    # holds is the message's (a kernel kill message holds no second one), never a record's prefix
    line = _record(RECORDS["dmesg"], 1).removeprefix("[ 101.500000] ") + " " + _record(RECORDS["syslog"], 2)
    kills = OomParser(year=2025).feed(KernelLine(text=line, source="kmsg", mono_usec=5_000_000))
    assert [(k.pid, k.time, k.mono_usec, k.host) for k in kills] == [(1001, None, 5_000_000, None),
                                                                      (1002, None, 5_000_000, None)]


_GAP_TOKENS = [" ", "Jun", "29", "15:52:11", "web-02", "kernel:", "[", "]", "102.500000", "2025-06-29T15:52:11+00:00",
               "<6>1", "-", ":", "\x00", '"', "x", "alice[7]:", "6,2,102500000,-;", "Sun", "2025]", "(", ")", "#",
               "1751211111.5", "UTC", "kern.log:4:", "é"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_GAP_TOKENS), max_size=30))
def test_whatever_stands_between_two_kills_every_path_reads_them_alike(tokens: list[str]) -> None:
    first = _record(RECORDS["syslog with uptime"], 1)
    line = first + " " + "".join(tokens) + _kill_text(KILL, 2) + "\n"
    read = {path: [(k.pid, k.time, k.mono_usec, k.host) for k in kills]
            for path, kills in _every_path(line, bare=False, unread_too=True).items()}
    assert read["lines"][:1] == [(1001, _when(1), 101_500_000, "web-01")], line
    assert all(kills == read["lines"] for kills in read.values()), (line, read)

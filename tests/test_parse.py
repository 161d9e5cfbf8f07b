"""parse.py against real kernel text: every capture in tests/data with the kills it must give.

Each directory under tests/data may hold an expected.json listing its captures and, per
capture, the kills with the fields a person labelled (fixtures/README.md rules). Adding a
format is adding a capture and its entry.
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from watchdog_oom.model import KernelLine
from watchdog_oom.parse import (
    REPORT_LINES,
    TASK_TABLE_ROWS,
    OomParser,
    Unread,
    _libc_finder,
    iter_kills,
    parse_text,
    strip_wrapper,
)

DATA = Path(__file__).parent / "data"


def _entries() -> list[tuple[Path, dict]]:
    return [
        (listing.parent / entry["file"], entry)
        for listing in sorted(DATA.rglob("expected.json"))
        for entry in json.loads(listing.read_text(encoding="utf-8"))
    ]


ENTRIES = _entries()
CAPTURES = [path for path, _ in ENTRIES]


def _labels(entry: dict) -> list[dict]:
    kernel = [{"killer": "kernel", **kill} for kill in entry["kills"]]
    return kernel + entry.get("userspace_kills", [])


def _field(kill, name: str):
    value = getattr(kill, name)
    return value.isoformat() if isinstance(value, datetime) else value


FIGURES = "total-vm:4kB, anon-rss:0kB, file-rss:0kB"


def _kernel_line(text: str, **fields) -> KernelLine:
    return KernelLine(text=text, source="test", wrapped=True, **fields)


def _xfail(entry: dict) -> list:
    """An entry's optional "xfail" (why the parser misreads it) marks it strictly: fixing it fails the test."""
    return [pytest.mark.xfail(strict=True, reason=entry["xfail"])] if "xfail" in entry else []


@pytest.mark.parametrize(("path", "entry"), [pytest.param(p, e, marks=_xfail(e), id=p.name) for p, e in ENTRIES])
def test_capture_gives_its_labelled_kills(path: Path, entry: dict) -> None:
    kills = parse_text(path.read_text(encoding="utf-8"), source="import", year=entry.get("year"))
    got = [{name: _field(kill, name) for name in label} for kill, label in zip(kills, _labels(entry), strict=False)]
    assert got == _labels(entry)
    assert len(kills) == len(_labels(entry))


@pytest.mark.parametrize("chunk_size", [61, 4096, 16 << 20])
@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_bulk_import_gives_what_feeding_every_line_gives(path: Path, chunk_size: int) -> None:
    raw = path.read_bytes()
    bulk = list(iter_kills(io.BytesIO(raw), "import", chunk_size=chunk_size))
    assert bulk == parse_text(raw.decode("utf-8"), source="import")


def test_bulk_import_finds_reports_among_noise_and_across_chunks() -> None:
    noise = b"".join(b"Jun  3 10:00:%02d web-01 sshd[%d]: Accepted publickey for root\n" % (i % 60, i)
                     for i in range(3000))
    report = (DATA / "oom_logs" / "12_rhel6-2.6.32_messages_full-event-oom_adj.log").read_bytes()
    earlyoom = (DATA / "captures" / "earlyoom-1.x_journal_sigterm-then-sigkill.log").read_bytes()
    log = noise + report + noise + earlyoom + noise + report.rstrip(b"\n")
    expected = parse_text(log.decode("utf-8"))
    assert [k.killer for k in expected] == ["kernel"] + ["earlyoom"] * 3 + ["kernel"]
    for chunk_size in (1000, 65536):
        assert list(iter_kills(io.BytesIO(log), "import", chunk_size=chunk_size)) == expected
    with io.BytesIO(gzip.compress(log)) as packed, gzip.GzipFile(fileobj=packed) as stream:
        assert list(iter_kills(stream, "import")) == expected


def test_bulk_import_takes_a_line_longer_than_a_chunk() -> None:
    log = f"{'x' * 5000}\n[ 1.000000] Out of memory: Killed process 7 (a) {FIGURES}\n".encode()
    assert [k.pid for k in iter_kills(io.BytesIO(log), "import", chunk_size=64)] == [7]


@pytest.mark.parametrize(("start", "end"), [(0, 64), (3, 64), (0, 10), (40, 44), (43, 44), (10, 5)])
def test_libc_search_finds_what_bytearray_find_finds(start: int, end: int) -> None:
    buffer = bytearray(b"x Kill y SIG z Kill w SIGKILL Killed process " * 2)
    find = _libc_finder()
    for needle in (b"Kill", b" SIG", b"Killed process", b"absent"):
        assert find(buffer, needle, start, end) == buffer.find(needle, start, end)


def test_kill_is_handed_on_by_its_killed_process_line() -> None:
    lines = (DATA / "kmsg_6.18_memcg_v1_python3.kmsg").read_text().splitlines()
    parser = OomParser()
    handed = [parser.feed(_kernel_line(text)) for text in lines]
    assert [i for i, kills in enumerate(handed) if kills] == [len(lines) - 1]
    assert not parser.pending and parser.flush() == []


def test_selection_without_killed_line_is_handed_on_by_flush() -> None:
    parser = OomParser()
    selection = "[ 9.1] Out of memory: Kill process 812 (mysqld) score 901 or sacrifice child"
    assert parser.feed(_kernel_line(selection)) == []
    assert parser.pending
    (kill,) = parser.flush()
    assert (kill.pid, kill.process, kill.score, kill.mono_usec) == (812, "mysqld", 901, 9_100_000)
    assert not parser.pending


def test_selection_followed_by_a_child_kill_is_one_kill_of_the_child() -> None:
    path = DATA / "captures" / "centos7-3.10_messages_sacrifice-child-with-table.log"
    (kill,) = parse_text(path.read_text(), year=2024)
    assert (kill.pid, kill.score) == (2050, None)
    assert kill.extra["selected"] == {"pid": 2001, "process": "run-batch.sh", "score": 812}
    assert [row.pid for row in kill.task_table][:2] == [2050, 2177]
    assert kill.task_table[0].rss_kb == 1712004 * 4 and kill.task_table[0].pgtables_kb == 3590 * 4


def test_unwrapped_line_keeps_the_sources_times() -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    line = KernelLine(text="Out of memory: Killed process 5 (a) total-vm:8kB, anon-rss:4kB, file-rss:0kB",
                      source="kmsg", time=when, mono_usec=42, boot_id="b-1")
    (kill,) = OomParser().feed(line)
    assert (kill.time, kill.mono_usec, kill.source, kill.boot_id) == (when, 42, "kmsg", "b-1")


def test_rsyslog_flattened_record_holding_the_kill_line_gives_the_kill() -> None:
    record = ("Sep 29 08:12:34 h kernel: Mem-Info:#012active_anon:1 inactive_anon:2#012"
              "Out of memory: Killed process 9 (x y) total-vm:8kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB")
    (kill,) = parse_text(record)
    assert (kill.pid, kill.process) == (9, "x y")


def test_a_flattened_record_is_not_cut_past_a_cgroups_path_and_is_said_unread() -> None:
    """A cgroup's name is its owner's: a "#012" after the path opened may be in it (review R38)."""
    record = ("Sep 29 08:12:34 h kernel: oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
              "mems_allowed=0,global_oom,task_memcg=/a.service,task=x y,pid=9,uid=7#012"
              "Out of memory: Killed process 9 (x y) total-vm:8kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB")
    unread = Unread()
    assert parse_text(record, unread=unread) == []
    assert unread.count == 1


def test_task_table_keeps_only_the_biggest_rows() -> None:
    rows = [f"[{pid:7d}]  1000 {pid:6d}    90000 {pid:8d}   40960        0             0 w {pid}"
            for pid in range(1, 5001)]
    text = "\n".join(["a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
                      "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
                      *rows, f"Out of memory: Killed process 5000 (w 5000) {FIGURES}"])
    (kill,) = parse_text(text)
    assert [row.pid for row in kill.task_table] == list(range(5000, 5000 - TASK_TABLE_ROWS, -1))
    assert kill.task_table[0].name == "w 5000" and kill.task_table[0].pgtables_kb == 40


def test_report_without_its_kill_is_abandoned() -> None:
    text = "\n".join(["a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
                      *["noise"] * (REPORT_LINES + 1),
                      f"Out of memory: Killed process 3 (b) {FIGURES}"])
    (kill,) = parse_text(text)
    assert kill.invoker is None and kill.gfp_mask is None


def test_earlyoom_0x_killing_line_needs_its_banner() -> None:
    assert parse_text("Killing process 8230 sudo") == []
    (kill,) = parse_text("Out of memory! avail: 0 MiB < min: 587 MiB\nKilling process 8230 sudo")
    assert (kill.pid, kill.process, kill.killer) == (8230, "sudo", "earlyoom")


@pytest.mark.parametrize(
    ("raw", "message", "time", "mono"),
    [
        ("6,423,41357569,-;Killed", "Killed", None, 41357569),
        ("<4>[ 123.456789] msg", "msg", None, 123_456_789),
        ("[Mon Jun  3 10:00:00 2024] msg", "msg", datetime(2024, 6, 3, 10), None),
        ("[lun. juin  3 10:00:00 2024] msg", "msg", datetime(2024, 6, 3, 10), None),
        ("[一 6月  3 10:00:00 2024] msg", "msg", datetime(2024, 6, 3, 10), None),
        ("[Xyz Qrs  3 10:00:00 2024] msg", "msg", None, None),
        ("Jun  3 10:00:00 host kernel: [  12.5] msg", "msg", datetime(2024, 6, 3, 10), 12_500_000),
        ("Jun 03 10:00:00.250000 host kernel: msg", "msg", datetime(2024, 6, 3, 10, 0, 0, 250000), None),
        ("мая 26 23:02:22 box nohang[530]: msg", "nohang[530]: msg",
         datetime(2024, 5, 26, 23, 2, 22), None),
        ("2024-06-03T10:00:00.123456+02:00 host kernel: msg", "msg",
         datetime(2024, 6, 3, 10, 0, 0, 123456, timezone(timedelta(hours=2))), None),
        ("2024-06-03T10:00:00,5+00:00 msg", "msg",
         datetime(2024, 6, 3, 10, 0, 0, 500000, timezone.utc), None),
        ("Mon 2024-06-03 10:00:00 CEST host kernel: msg", "msg", datetime(2024, 6, 3, 10), None),
        ("1717408800.5 host kernel: msg", "msg", datetime(2024, 6, 3, 10, 0, 0, 500000, timezone.utc), None),
        ("[    5.123456] host kernel: msg", "msg", None, 5_123_456),
        ("> > [ 1.000000] msg", "msg", None, 1_000_000),
        ("            java.lang.OutOfMemoryError", "java.lang.OutOfMemoryError", None, None),
        ("[  +0.000082] msg", "msg", None, None),  # dmesg --reltime
        ("[Oct28 16:58] msg", "msg", None, None),
        ("`990x kernel: [ 5835.426265] msg`", "msg`", None, 5_835_426_265),  # markdown inline code
        ("    kernel: msg", "msg", None, None),  # a syslog line wrapped after its host
        ("Jun 12 06:39:16: msg", "msg", datetime(2024, 6, 12, 6, 39, 16), None),
        ("Sep 29 08:12:34 h kernel: Mem-Info:#012active_anon:1#011x", "Mem-Info:\nactive_anon:1\tx",
         datetime(2024, 9, 29, 8, 12, 34), None),
    ],
)
def test_wrapper_is_stripped(raw: str, message: str, time: datetime | None, mono: int | None) -> None:
    assert strip_wrapper(raw, year=2024) == (message, time, mono)


def test_syslog_date_without_a_year_gives_no_time() -> None:
    assert strip_wrapper("Jun  3 10:00:00 host kernel: msg") == ("msg", None, None)


def test_a_syslog_date_past_the_reference_belongs_to_the_year_before():
    from watchdog_oom.parse import undo_future_year

    (kill,) = parse_text("Dec 31 23:59:58 h kernel: Out of memory: Killed process 42 (java) "
                         "total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB\n", year=2027)
    fixed = undo_future_year(kill, datetime(2027, 1, 2, 8, 0))
    assert fixed.time == datetime(2026, 12, 31, 23, 59, 58)
    assert undo_future_year(kill, datetime(2027, 12, 31, 23, 59, 59)).time == kill.time


@pytest.mark.parametrize("stamp", ["[Fri Dec 31 23:59:58 2027] ", "Fri 2027-12-31 23:59:58 CET h kernel: ",
                                   "Fri Dec 31 23:59:58 2027 kern.warn kernel: ", "2027-12-31T23:59:58 h kernel: "])
def test_a_date_that_carries_its_year_stays_in_it_even_past_the_reference(stamp):
    from watchdog_oom.parse import undo_future_year

    (kill,) = parse_text(stamp + "Out of memory: Killed process 42 (java) "
                         "total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB\n", year=2027)
    assert kill.time == datetime(2027, 12, 31, 23, 59, 58)
    assert undo_future_year(kill, datetime(2027, 1, 2, 8, 0)) is kill

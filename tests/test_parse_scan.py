"""The import scanner (parse/scan.py) over real files: mapped where they lie, searched by
one process or two, it gives what feeding every line gives."""

from __future__ import annotations

import functools
import io
import json
import os
from pathlib import Path

import pytest

from watchdog_oom.parse import Unread, iter_kills, line_numbers, parse_text

DATA = Path(__file__).parent / "data"
CAPTURES = sorted({listing.parent / entry["file"]
                   for listing in DATA.rglob("expected.json")
                   for entry in json.loads(listing.read_text(encoding="utf-8"))})


def _noise(lines: int, second: int) -> bytes:
    """Syslog lines that hold the scanner's needles without being kills."""
    out = []
    for i in range(lines):
        stamp = f"Jun  3 10:{(second + i) // 60 % 60:02d}:{(second + i) % 60:02d}"
        if i % 97 == 0:
            out.append(f"{stamp} web-01 systemd[1]: session-{i}.scope: Killing process {i} (sleep) "
                       "with signal SIGKILL.")
        elif i % 89 == 0:
            out.append(f"{stamp} web-01 rsyslogd[{i}]: imuxsock: Received SIGHUP, reopening files")
        else:
            out.append(f"{stamp} web-01 sshd[{i}]: Accepted publickey for deploy from 10.0.0.{i % 250} port {i}")
    return ("\n".join(out) + "\n").encode()


@pytest.fixture(scope="module")
def corpus_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """Every capture of tests/data, each between stretches of noise: a file of over 2 MB,
    big enough to be mapped and cut into many segments."""
    parts = []
    for n, capture in enumerate(CAPTURES):
        parts += [_noise(300, n * 400), capture.read_bytes().rstrip(b"\n") + b"\n"]
    parts.append(_noise(300, 0))
    data = b"".join(parts)
    assert len(data) > 2 << 20
    path = tmp_path_factory.mktemp("scan") / "corpus.log"
    path.write_bytes(data)
    return path, data


@pytest.fixture(scope="module")
def fed_line_by_line(corpus_log: tuple[Path, bytes]) -> list:
    return parse_text(corpus_log[1].decode("utf-8"), source="import")


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("segment", [4096, 300_000, 32 << 20])
def test_a_mapped_file_gives_what_feeding_every_line_gives(corpus_log, fed_line_by_line, segment: int,
                                                           workers: int) -> None:
    path, _ = corpus_log
    with path.open("rb") as stream:
        kills = list(iter_kills(stream, "import", chunk_size=segment, workers=workers))
    assert len(kills) > 100
    assert kills == fed_line_by_line


def test_a_stream_and_a_mapped_file_count_the_same_unread_lines_at_the_same_lines(corpus_log) -> None:
    path, data = corpus_log
    bad = b"Jun  3 11:00:00 web-01 kernel: [ 9.000000] Killed process 8 (b\n"
    path = path.with_name("unreadable.log")
    path.write_bytes(data + bad + data[:100_000])
    found = []
    for mapped in (True, False):
        unread = Unread()
        with path.open("rb") as stream:
            source = stream if mapped else io.BytesIO(stream.read())
            list(iter_kills(source, "import", unread=unread, chunk_size=65536, workers=2))
        with path.open("rb") as again:
            line_numbers(again, unread)
        found.append([(u.line, u.offset, u.text) for u in unread.first])
    assert found[0] == found[1]
    assert (data.count(b"\n") + 1, len(data)) in [(line, offset) for line, offset, _ in found[0]]


def test_progress_counts_every_byte_of_a_mapped_file_and_of_a_stream(corpus_log) -> None:
    path, data = corpus_log
    for open_stream in (lambda: path.open("rb"), lambda: io.BytesIO(data)):
        steps: list[int] = []
        with open_stream() as stream:
            list(iter_kills(stream, "import", chunk_size=1 << 20, progress=steps.append, workers=2))
        assert sum(steps) == len(data) and len(steps) > 1


def test_a_mapped_file_is_read_from_the_streams_position(corpus_log, tmp_path: Path) -> None:
    _, data = corpus_log
    head = b"Jun  3 09:00:00 web-01 kernel: [ 1.000000] Out of memory: Killed process 99 (skipped) " \
           b"total-vm:4kB, anon-rss:0kB, file-rss:0kB\n"
    path = tmp_path / "offset.log"
    path.write_bytes(head + data)
    with path.open("rb") as stream:
        stream.readline()
        kills = list(iter_kills(stream, "import", chunk_size=65536, workers=2))
    assert 99 not in [k.pid for k in kills]
    assert kills == parse_text(data.decode("utf-8"), source="import")


def _children() -> set[str]:
    return set(Path(f"/proc/self/task/{os.getpid()}/children").read_text().split())


@pytest.mark.skipif(not Path(f"/proc/self/task/{os.getpid()}/children").exists(),
                    reason="no /proc/PID/task/TID/children to list this process's children")
def test_the_second_process_searches_and_stopping_early_leaves_it_not_behind(corpus_log) -> None:
    path, _ = corpus_log
    before = _children()
    with path.open("rb") as stream:
        kills = iter_kills(stream, "import", chunk_size=4096, workers=2)
        next(kills)
        assert len(_children() - before) == 1  # the searcher of the file's second half
        kills.close()
    assert _children() == before


@pytest.mark.parametrize("text", [
    b"x Kill y SIG z Kill w SIGKILL Killed process kill\n" * 3,
    b"\0\0\0 Kill\0 SIG \0kill\n\0",  # NULs, where strstr would stop: memmem searches instead
    b"Kill",
    b"",
])
def test_a_stretch_is_searched_as_bytes_find_searches_it_and_left_as_it_was(text: bytes) -> None:
    from watchdog_oom.parse.scan import _searcher

    for padding in (b"", b"tail Kill after the stretch"):
        buffer = bytearray(text + padding)
        before = bytes(buffer)
        for low in range(0, len(text) + 1, 3):
            with _searcher(buffer) as search, search.stretch(low, len(text)) as find:
                for needle in (b"Kill", b" SIG", b"kill", b"absent"):
                    for start in range(low, len(text) + 1, 5):
                        assert find(needle, start) == buffer.find(needle, start, len(text)), (needle, start)
        assert buffer == before


def test_the_zeros_a_copytruncate_leaves_in_a_log_do_not_hide_the_kills_after_them(corpus_log, tmp_path) -> None:
    _, data = corpus_log
    half = data.index(b"\n", len(data) // 2) + 1
    # logrotate's copytruncate while the writer kept its offset: a run of zeros, then lines
    text = data[:half] + b"\0" * 300_000 + data[half:]
    path = tmp_path / "zeros.log"
    path.write_bytes(text)
    expected = parse_text(text.decode("utf-8"), source="import")
    assert len(expected) > 100
    for workers in (1, 2):
        with path.open("rb") as stream:
            assert list(iter_kills(stream, "import", chunk_size=65536, workers=workers)) == expected
    assert list(iter_kills(io.BytesIO(text), "import", chunk_size=65536)) == expected


def _dense(reports: int, first: int) -> bytes:
    """Minimal 5.x reports back to back (each runs into the next: its kill line is held until
    the next header), with now and then a line longer than a window holding every needle."""
    out = []
    for n in range(first, first + reports):
        prefix = f"Jun  3 10:{n // 60 % 60:02d}:{n % 60:02d} web-01 kernel: [{n:>8}.000100] "
        out += [f"{prefix}java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
                f"{prefix}oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
                f"task_memcg=/system.slice/app.service,task=java,pid={n + 1},uid=1000",
                f"{prefix}Out of memory: Killed process {n + 1} (java) total-vm:8806332kB, anon-rss:6848016kB, "
                "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:14360kB oom_score_adj:0"]
        if n % 7 == 3:
            out.append(f"{prefix}x" * (n % 5 + 1) + " oom-killer kill Kill SIG Killed process" + " pad" * 90)
    return ("\n".join(out) + "\n").encode()


@pytest.mark.parametrize(("block", "window"), [(512, 100), (4096, 700), (64 << 10, 16 << 10)])
def test_kill_lines_looked_for_a_block_at_a_time_from_where_the_feeds_reached_give_every_kill(
        corpus_log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, window: int) -> None:
    # _feed_found() looks for kill lines a block at a time from where the feeds reached, and
    # _needle_lines() reads a hit's window in a copy: with blocks and windows of every size
    # (lines longer than a window, needles across a window's end), a log dense with kills
    # (each report running into the next), sparse stretches and every capture give, mapped
    # (one process or two, small segments or one) or streamed, what feeding every line gives,
    # with the same unread lines at the same offsets.
    from watchdog_oom.parse import scan

    monkeypatch.setattr(scan, "_BLOCK", block)
    monkeypatch.setattr(scan, "_WINDOW", window)
    _, corpus = corpus_log
    data = _dense(400, 0) + corpus[:400_000] + _dense(50, 400) + _noise(900, 0) + _dense(300, 450)
    data += b"Jun  3 11:00:00 web-01 kernel: [ 9.000000] Killed process 8 (b\n" + _dense(3, 750)
    path = tmp_path / "dense.log"
    path.write_bytes(data)
    unread = Unread()
    expected = parse_text(data.decode("utf-8"), source="import", unread=unread)
    assert len(expected) > 700 and unread.count
    runs = [(lambda: path.open("rb"), chunk, workers) for chunk in (4096, 32 << 20) for workers in (1, 2)]
    runs += [(lambda: io.BytesIO(data), chunk, 1) for chunk in (4096, 65536)]
    for open_stream, chunk, workers in runs:
        found = Unread()
        with open_stream() as stream:
            assert list(iter_kills(stream, "import", chunk_size=chunk, workers=workers, unread=found)) == expected
        with path.open("rb") as again:
            line_numbers(again, found)
        assert [(u.line, u.text) for u in found.first] == [(u.line, u.text) for u in unread.first]


def test_a_huge_line_holding_every_needle_is_not_copied_to_be_looked_at(tmp_path: Path) -> None:
    # review R19: a line of any length holding the kill words (a blob, a minified document, an
    # export read as it is) is looked at where it lies, never copied whole: reading a mapped
    # log with a 10 MB such line between two reports allocates a few hundred kilobytes (the
    # parser reads a line's first _LINE_BYTES), and gives what feeding every line gives.
    import tracemalloc

    report = _dense(2, 1)
    data = report + b"Jun  3 10:00:09 web-01 app: " + b"x Kill kill SIGKILL " * 500_000 + b"\n" + _dense(2, 5)
    path = tmp_path / "huge.log"
    path.write_bytes(data)
    expected = parse_text(data.decode("utf-8"), source="import")
    assert len(expected) == 4
    tracemalloc.start()
    try:
        with path.open("rb") as stream:
            kills = list(iter_kills(stream, "import", workers=1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert kills == expected
    assert peak < 3 << 20, peak


def _find_before(buffer: bytearray, high: int, needle: bytes, start: int) -> int:
    return buffer.find(needle, start, high)


def test_the_lines_holding_a_needle_are_found_in_windows_as_a_plain_search_finds_them() -> None:
    # _needle_lines() reads the hits after a hit in a copy of the window from its line's
    # start: with windows of every size (needles across a window's end, lines longer than
    # a window, a last line without a newline) it gives each line holding the needle once,
    # in order, with where the needle first stands in it, as a search line by line does.
    import random

    from watchdog_oom.parse import scan

    rng = random.Random(13)
    pieces = [b"Kill", b"kill", b" SIG", b"\n", b"x", b"oom-", b"Ki", b"ll", b"\n\n", b"abcdefgh"]
    for trial in range(300):
        buffer = bytearray(b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))))
        starts = [0] + [n + 1 for n, byte in enumerate(buffer) if byte == 0x0A]
        low = rng.choice(starts)
        high = rng.choice([at for at in starts if at >= low] + [len(buffer)])
        for needle in (b"Kill", b"kill", b" SIG"):
            expected, at = [], low
            while at < high:
                end = buffer.find(b"\n", at, high) + 1 or high
                first = buffer.find(needle, at, end)
                if first >= 0:
                    expected.append((at, bytes(buffer[at:end]), first - at))
                at = end
            for window in range(1, 40):
                scan._WINDOW = window
                try:
                    found = [(line_start, bytes(data[start:end]), at - start)
                             for line_start, data, start, end, at in scan._needle_lines(
                                 buffer, functools.partial(_find_before, buffer, high), needle, low, high)]
                finally:
                    scan._WINDOW = 16 << 10
                assert found == expected, (trial, needle, window, bytes(buffer), low, high)


def test_a_line_is_a_kill_line_as_the_whole_expression_says(corpus_log) -> None:
    # _is_kill_line tries each way of _KILL_LINE only where the text it needs is in the
    # line: on every line of the corpus and the test data, and on lines made to hold each
    # way's text without it matching, it says what _KILL_LINE.search says.
    from watchdog_oom.parse.scan import _KILL_LINE, _KILL_LINE_WAYS, _is_kill_line

    assert all(needed in pattern for needed, pattern in _KILL_LINE_WAYS)
    made = [b"systemd[1]: Killing process 12 (sleep) with signal SIGKILL.", b"Sending SIGTERM to 12 (x)",
            b"send SIGKILL", b"Marked /system.slice/a.service for killing", b"Marked x", b"killing process 12 \"a\"",
            b"killing process 12 a", b"systemd-oomd killed 3 processes", b"oomd killed x", b"run the command: kill",
            b"oom-killer oom-kill: kill", b"Kill", b"Killed /user.slice", b"Killing process 'x'"]
    lines = made + corpus_log[1].split(b"\n")
    lines += [line for path in sorted(Path(__file__).parent.joinpath("data").rglob("*")) if path.is_file()
              for line in path.read_bytes().split(b"\n")]
    assert len(lines) > 10_000
    for line in lines:
        buffer = bytearray(b"\n" + line + b"\n")
        assert _is_kill_line(buffer, 1, len(buffer)) == bool(_KILL_LINE.search(buffer, 1, len(buffer))), line


def test_a_line_left_out_for_its_oom_kill_words_is_no_kill_line_or_found_by_another_word(corpus_log) -> None:
    # _kill_lines leaves out a line whose lowercase kill words are all the kernel's
    # "oom-killer" / "oom-kill:": on every line of the corpus and the test data, and on
    # lines made to hold those words beside each way's own text, such a line is no kill
    # line, or holds "Kill" or " SIG" (found by those words' own passes).
    from watchdog_oom.parse.scan import _KILL_LINE, _oom_kill_only

    skipped = [b"java invoked oom-killer: gfp_mask=0x0", b"oom-kill:constraint=CONSTRAINT_NONE,task=java",
               b"oom-kill:", b"oom-killer", b"oom-killer Killed process 1 (a)", b"oom-kill: Send SIGTERM to 1"]
    kept = [b"oom-kill:constraint=CONSTRAINT_NONE,task=killer", b"oom-killer Marked /a.slice",
            b"oom-kill: the command: x", b"oom-killing process 12 \"a\"", b"oom-kill:x killing process 1 \"a\""]
    lines = skipped + kept + corpus_log[1].split(b"\n")
    lines += [line for path in sorted(Path(__file__).parent.joinpath("data").rglob("*")) if path.is_file()
              for line in path.read_bytes().split(b"\n")]
    left_out = 0
    for line in lines:
        buffer = bytearray(b"\n" + line + b"\n")
        at = buffer.find(b"kill")
        out = at >= 0 and _oom_kill_only(buffer, at, 1, len(buffer))
        assert out == (line in skipped) or line not in skipped + kept, line
        if out:
            left_out += 1
            assert not _KILL_LINE.search(buffer, 1, len(buffer)) or b"Kill" in line or b" SIG" in line, line
    assert left_out > 100


def _memcg_report(unit: str, comm: str) -> str:
    prefix = "Jun  3 10:00:00 web-01 kernel: [    5.000100] "
    lines = [f"{comm} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
             f"CPU: 1 PID: 7 Comm: {comm} Not tainted 6.1.0 #1", "Call Trace:", " <TASK>",
             " dump_stack_lvl+0x44/0x5c", "memory: usage 524288kB, limit 524288kB, failcnt 100",
             f"Memory cgroup stats for /system.slice/{unit}:", "Tasks state (memory values in pages):",
             "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
             "[      6]  1000     6   100000    31000    300000        0             0 oom-killer",
             f"[      7]  1000     7   300000   131000   1100000        0             0 {comm}",
             "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
             f"oom_memcg=/system.slice/{unit},task_memcg=/system.slice/{unit},task={comm},pid=7,uid=1000",
             f"Memory cgroup out of memory: Killed process 7 ({comm}) total-vm:1200000kB, anon-rss:524000kB, "
             "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:1100kB oom_score_adj:0"]
    return "".join(prefix + line + "\n" for line in lines)


@pytest.mark.parametrize(("unit", "comm"), [("app.service", "stress"), ("oom-killer-test.service", "stress"),
                                            ("app.service", "oom-killer"), ("oom-killer.service", "oom-killer")])
def test_a_task_or_cgroup_named_oom_killer_does_not_cut_the_report_the_scanner_reads(unit: str, comm: str) -> None:
    # Review R12: the scanner took the latest "oom-killer" before a kill line for the report's
    # header, so a process or unit so named (after the header: in the task table, the
    # oom-kill: line) lost the kill's invoker, gfp_mask, order and task table to `import`.
    text = _memcg_report(unit, comm)
    fed = parse_text(text, "import", year=2024)
    scanned = list(iter_kills(io.BytesIO(text.encode()), "import", year=2024))
    assert scanned == fed and len(fed) == 1
    kill = fed[0]
    assert (kill.pid, kill.process, kill.invoker, kill.gfp_mask, kill.order) == (7, comm, comm,
                                                                                  "0xcc0(GFP_KERNEL)", 0)
    assert sorted(row.name for row in kill.task_table) == sorted(["oom-killer", comm])

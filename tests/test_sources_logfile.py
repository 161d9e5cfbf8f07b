"""The log-file source, against files the tests write and rotate; and open_log."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from watchdog_oom.model import CaughtUp, KernelLine, SourceGap
from watchdog_oom.sources.base import SourceError
from watchdog_oom.sources.logfile import LogFileSource, open_log

KILL = b"Nov 26 20:36:27 web-01 kernel: [   41.357569] Memory cgroup out of memory: Killed process 1772 (python3)\n"


def line(n: int) -> bytes:
    return b"Nov 26 20:36:%02d web-01 kernel: [   %d.000000] line %d\n" % (n, n, n)


def text(n: int) -> str:
    return line(n).decode().rstrip("\n")


def follow(
    path: Path, cursor: str | None = None, from_start: bool = True, *, rotate_grace: float = 0.02
) -> LogFileSource:
    # A grace shorter than the tests' idle_timeout: a rotation is over within one idle wait.
    return LogFileSource(str(path), cursor, from_start, stat_interval=0.01, rotate_grace=rotate_grace)


def until_idle(events) -> list:
    """What the source delivers until it has nothing more for a moment."""
    got = []
    for event in events:
        if event is None:
            return got
        got.append(event)
    return got


def until_lines(events, count: int, timeout: float = 60.0) -> list:
    """What the source delivers until ``count`` lines came (or ``timeout`` passed)."""
    got: list = []
    deadline = time.monotonic() + timeout
    for event in events:
        if event is not None:
            got.append(event)
        if len(texts(got)) >= count or time.monotonic() > deadline:
            return got
    return got


def during(events, seconds: float) -> list:
    """What the source delivers in ``seconds`` (its idle Nones keep the clock looked at)."""
    got: list = []
    deadline = time.monotonic() + seconds
    for event in events:
        if event is not None:
            got.append(event)
        if time.monotonic() >= deadline:
            return got
    return got


def texts(events: list) -> list[str]:
    return [event.text for event in events if isinstance(event, KernelLine)]


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


def test_lines_are_delivered_wrapped_with_a_cursor(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(KILL + line(1))
    source = follow(log)
    events = until_idle(source.events(idle_timeout=0.05))
    first, second, caught_up = events
    assert first == KernelLine(
        text=KILL.decode().rstrip("\n"), source=f"file:{log}", cursor=first.cursor, wrapped=True
    )
    assert first.cursor.endswith(f":{len(KILL)}") and second.cursor.endswith(f":{len(KILL + line(1))}")
    assert caught_up == CaughtUp(f"file:{log}")
    source.close()


def test_appended_lines_are_followed(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1))
    source = follow(log)
    events = source.events(idle_timeout=0.05)
    assert texts(until_idle(events)) == [text(1)]
    append(log, line(2) + line(3))
    assert texts(until_idle(events)) == [text(2), text(3)]
    source.close()


def test_a_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1) + b"Nov 26 half")
    source = follow(log)
    events = source.events(idle_timeout=0.05)
    assert texts(until_idle(events)) == [text(1)]
    append(log, b" a line\n")
    assert texts(until_idle(events)) == ["Nov 26 half a line"]
    source.close()


def test_rename_and_create_rotation_reads_the_old_file_to_its_end(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1))
    source = follow(log)
    events = source.events(idle_timeout=0.05)
    assert texts(until_idle(events)) == [text(1)]
    with open(log, "ab") as writer:  # the syslog daemon's open file
        log.rename(tmp_path / "kern.log.1")
        writer.write(line(2) + b"cut short")  # written before it reopens
    log.write_bytes(line(3))
    assert texts(until_idle(events)) == [text(2), "cut short", text(3)]
    append(log, line(4))
    assert texts(until_idle(events)) == [text(4)]
    source.close()


def test_lines_the_writer_adds_to_the_renamed_file_before_reopening_are_read(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1))
    source = follow(log, rotate_grace=0.5)
    events = source.events(idle_timeout=0.05)
    assert texts(until_idle(events)) == [text(1)]
    kill = b"Nov 26 20:36:02 web-01 kernel: [    2.000000] line 2 Killed process 4242 (java)\n"
    with open(log, "ab") as writer:  # the syslog daemon's open file
        log.rename(tmp_path / "kern.log.1")
        log.write_bytes(b"")  # logrotate's create
        # The source sees the new file and reaches the old one's end before the writer
        # is told to reopen PATH ...
        assert texts(until_idle(events)) == []
        writer.write(kill)  # ... which it has not done yet
    append(log, line(3))
    got = until_lines(events, 2)
    assert texts(got) == [kill.decode().rstrip("\n"), text(3)]
    assert not any(isinstance(event, SourceGap) for event in got)
    source.close()

    # Each cursor names the line it came with: resuming repeats nothing, and resuming
    # from the line in the renamed file gives only what followed it.
    old_cursor, last_cursor = (event.cursor for event in got if isinstance(event, KernelLine))
    resumed = follow(log, last_cursor)
    assert texts(until_idle(resumed.events(idle_timeout=0.05))) == []
    resumed.close()
    resumed = follow(log, old_cursor)
    assert texts(until_idle(resumed.events(idle_timeout=0.05))) == [text(3)]
    resumed.close()


def test_the_grace_starts_again_whenever_the_renamed_file_grows(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1))
    source = follow(log, rotate_grace=0.6)
    events = source.events(idle_timeout=0.05)
    assert texts(until_idle(events)) == [text(1)]
    with open(log, "ab", buffering=0) as writer:
        log.rename(tmp_path / "kern.log.1")
        log.write_bytes(b"")
        got = during(events, 0.35)  # the rotation is noticed at once
        writer.write(line(2))
        got += during(events, 0.45)  # past the grace since the rotation, not since line 2
        writer.write(line(3))
    append(log, line(4))
    got += until_lines(events, 2)
    assert texts(got) == [text(2), text(3), text(4)]
    source.close()


def test_copytruncate_reads_what_was_written_before_the_copy(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1))
    source = follow(log)
    events = source.events(idle_timeout=0.05)
    assert texts(until_idle(events)) == [text(1)]
    append(log, line(2))
    shutil.copyfile(log, tmp_path / "kern.log.1")
    os.truncate(log, 0)
    append(log, line(3))
    got = until_idle(events)
    assert texts(got) == [text(2), text(3)]
    assert not any(isinstance(event, SourceGap) for event in got)
    source.close()


def test_truncation_without_a_copy_is_a_gap(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1) + line(2))
    source = follow(log)
    events = source.events(idle_timeout=0.05)
    assert texts(until_idle(events)) == [text(1), text(2)]
    os.truncate(log, 0)
    append(log, line(3))
    got = until_idle(events)
    assert isinstance(got[0], SourceGap) and "truncated" in got[0].message
    assert texts(got) == [text(3)]
    source.close()


def test_a_file_rewritten_in_place_past_the_offset_is_noticed(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1))
    source = follow(log)
    events = source.events(idle_timeout=0.05)
    assert texts(until_idle(events)) == [text(1)]
    with open(log, "r+b") as file:  # truncated and refilled between two looks
        file.write(line(7) + line(8))
    got = until_idle(events)
    assert isinstance(got[0], SourceGap)
    assert texts(got) == [text(7), text(8)]
    source.close()


def test_resume_continues_after_the_cursor(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1) + line(2))
    source = follow(log)
    cursor = until_idle(source.events(idle_timeout=0.05))[0].cursor
    source.close()
    append(log, line(3))
    resumed = follow(log, cursor)
    assert texts(until_idle(resumed.events(idle_timeout=0.05))) == [text(2), text(3)]
    resumed.close()


def test_resume_finishes_the_rotated_file_first(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1))
    source = follow(log)
    cursor = until_idle(source.events(idle_timeout=0.05))[0].cursor
    source.close()
    append(log, line(2))
    log.rename(tmp_path / "kern.log.1")
    log.write_bytes(line(3))
    resumed = follow(log, cursor)
    got = until_idle(resumed.events(idle_timeout=0.05))
    assert texts(got) == [text(2), text(3)]
    assert not any(isinstance(event, SourceGap) for event in got)
    assert got[-1] == CaughtUp(f"file:{log}")  # the new file was there at open too
    resumed.close()


def test_resume_after_copytruncate_finishes_the_copy_first(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1) + line(2))
    source = follow(log)
    cursor = until_idle(source.events(idle_timeout=0.05))[1].cursor
    source.close()
    append(log, line(3))
    shutil.copyfile(log, tmp_path / "kern.log.1")
    log.write_bytes(line(4))
    resumed = follow(log, cursor)
    assert texts(until_idle(resumed.events(idle_timeout=0.05))) == [text(3), text(4)]
    resumed.close()


def test_resume_in_a_file_no_longer_there_is_a_gap_then_the_start(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(5))
    source = follow(log, cursor="0123456789abcdef:4096")
    got = until_idle(source.events(idle_timeout=0.05))
    assert isinstance(got[0], SourceGap) and got[0].missed is None
    assert texts(got) == [text(5)]
    source.close()


def test_without_from_start_only_appended_lines_are_read(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1))
    source = follow(log, from_start=False)
    events = source.events(idle_timeout=0.05)
    assert until_idle(events) == [CaughtUp(f"file:{log}")]
    append(log, line(2))
    assert texts(until_idle(events)) == [text(2)]
    source.close()


def test_a_file_not_there_yet_is_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    source = follow(log)
    events = source.events(idle_timeout=0.05)
    assert until_idle(events) == [CaughtUp(f"file:{log}")]
    log.write_bytes(line(1))
    assert texts(until_idle(events)) == [text(1)]
    source.close()


def test_close_from_another_thread_ends_events_promptly(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(line(1))
    source = follow(log)
    events = source.events(idle_timeout=300)
    assert texts([next(events)]) == [text(1)]
    rest: list = []
    reader = threading.Thread(target=lambda: rest.extend(events))  # now waiting for more
    reader.start()
    source.close()
    reader.join(timeout=30)  # without close() it would wait out the 300 s idle timeout
    assert not reader.is_alive() and texts(rest) == []


def test_an_unreadable_log_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=f"cannot read {tmp_path}: Is a directory"):
        LogFileSource(str(tmp_path))


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress], ids=["gz", "bz2", "xz"])
def test_compressed_logs_are_recognised_by_their_content(tmp_path: Path, compress) -> None:
    old = tmp_path / "kern.log.2"  # no telling extension
    old.write_bytes(compress(KILL + line(1)))
    with open_log(str(old)) as file:
        assert file.read() == KILL + line(1)


def test_a_plain_log_is_read_as_it_is(tmp_path: Path) -> None:
    old = tmp_path / "kern.log.gz"  # a misleading extension
    old.write_bytes(KILL)
    with open_log(str(old)) as file:
        assert file.read() == KILL


@pytest.mark.parametrize("data", [KILL, gzip.compress(KILL)], ids=["plain", "gz"])
def test_dash_reads_standard_input(data: bytes) -> None:
    program = ("import sys; from watchdog_oom.sources.logfile import open_log; "
               "sys.stdout.buffer.write(open_log('-').read())")
    done = subprocess.run([sys.executable, "-c", program], input=data, capture_output=True, check=True)
    assert done.stdout == KILL


def test_a_missing_log_is_an_io_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=f"^cannot read {tmp_path}/kern.log.9: No such file or directory$") as raised:
        open_log(str(tmp_path / "kern.log.9"))
    assert isinstance(raised.value, SourceError)


def test_a_line_of_megabytes_is_delivered_cut_and_the_cursor_stays_exact(tmp_path):
    from watchdog_oom.sources.logfile import MAX_LINE_BYTES

    path = tmp_path / "kern.log"
    huge = b"Nov 26 20:36:20 web-01 kernel: " + b"A" * (3 * 1024 * 1024)
    path.write_bytes(line(1) + huge + b"\n" + KILL)
    source = follow(path)
    try:
        got = [e for e in until_lines(source.events(idle_timeout=0.2), 3) if isinstance(e, KernelLine)]
    finally:
        source.close()
    assert [g.text for g in (got[0], got[2])] == [text(1), KILL.decode().rstrip("\n")]
    assert len(got[1].text) < MAX_LINE_BYTES + 100 and got[1].text.endswith(f"[truncated: {len(huge)} bytes]")
    assert got[2].cursor.endswith(f":{path.stat().st_size}")
    # Resuming from the cut line's cursor reads the next line whole.
    source = follow(path, got[1].cursor)
    try:
        resumed = [e for e in until_lines(source.events(idle_timeout=0.2), 1) if isinstance(e, KernelLine)]
    finally:
        source.close()
    assert [r.text for r in resumed] == [KILL.decode().rstrip("\n")]


def test_a_missing_file_is_a_problem_until_it_appears(tmp_path):
    path = tmp_path / "kern.log"
    source = follow(path)
    try:
        assert source.problem() == f"{path} does not exist"
        events = source.events(idle_timeout=0.05)
        path.write_bytes(KILL)
        until_lines(events, 1)
        assert source.problem() is None
    finally:
        source.close()


def test_an_appended_line_is_read_at_the_next_look(tmp_path):
    # The source looks every stat_interval (no inotify); no idle events are asked for.
    path = tmp_path / "kern.log"
    path.write_bytes(line(1))
    source = LogFileSource(str(path), stat_interval=0.01)
    events = source.events(idle_timeout=None)
    try:
        assert texts([next(events), next(events)]) == [text(1)]  # the line, then CaughtUp
        with open(path, "ab") as file:
            file.write(line(2))
        assert texts([next(events)]) == [text(2)]
    finally:
        source.close()
        events.close()


def test_a_log_file_created_after_the_source_opened_is_found_by_a_look(tmp_path):
    path = tmp_path / "kern.log"
    source = LogFileSource(str(path), stat_interval=0.01)
    events = source.events(idle_timeout=None)
    try:
        assert isinstance(next(events), CaughtUp)  # nothing there yet
        path.write_bytes(line(1))
        assert texts([next(events)]) == [text(1)]
    finally:
        source.close()
        events.close()


def test_close_ends_the_sleep_between_looks_at_once(tmp_path):
    # A look an hour away: close() from another thread ends events() through the stop pipe.
    path = tmp_path / "kern.log"
    path.write_bytes(line(1))
    source = LogFileSource(str(path), stat_interval=3600)
    events = source.events(idle_timeout=None)
    assert texts([next(events), next(events)]) == [text(1)]
    ended = threading.Event()

    def drain() -> None:
        for _ in events:
            pass
        ended.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    source.close()
    assert ended.wait(60)


@pytest.mark.parametrize("zeros", [1000, 100_000, 300_000])
def test_a_line_after_the_zeros_of_a_copytruncate_is_read_whole(tmp_path: Path, zeros: int) -> None:
    # copytruncate while the writer kept its offset: the file is a run of zeros as long as
    # it was, then the writer's next line, with no newline between. The zeros are no part
    # of that line: they may not take its place when they are longer than a line is kept.
    log = tmp_path / "kern.log"
    log.write_bytes(b"\0" * zeros + KILL + line(1))
    source = follow(log)
    got = [event for event in until_idle(source.events(idle_timeout=0.05)) if isinstance(event, KernelLine)]
    source.close()
    assert [event.text.lstrip("\0") for event in got] == [KILL.decode().rstrip("\n"), text(1)]
    assert got[0].cursor.endswith(f":{zeros + len(KILL)}") and got[1].cursor.endswith(f":{log.stat().st_size}")

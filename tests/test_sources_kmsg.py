"""The /dev/kmsg source: record parsing, gaps, resuming, and reading the real /dev/kmsg."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from watchdog_oom.model import CaughtUp, KernelLine, SourceGap
from watchdog_oom.sources.base import SourceError
from watchdog_oom.sources.kmsg import KmsgSource, gap, parse_record, read_boot_id

DATA = Path(__file__).parent / "data"
BOOT = "0b5e3a4c-1111-4222-8333-944455566677"


def records(*seqs: int) -> bytes:
    return b"".join(b"6,%d,%d,-;record %d\n" % (seq, 1000 + seq, seq) for seq in seqs)


def read_all(source: KmsgSource) -> list:
    return [event for event in source.events(idle_timeout=0.1) if event is not None]


def kmsg_file(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "kmsg"
    path.write_bytes(data)
    return str(path)


def test_record_fields_come_from_the_header() -> None:
    record = parse_record(b"12,345,41355073,-;python3 invoked oom-killer: order=0\n")
    assert record is not None
    assert (record.facility, record.level, record.seq, record.usec, record.flags) == (1, 4, 345, 41355073, "-")
    assert record.text == "python3 invoked oom-killer: order=0"


def test_escaped_bytes_in_the_message_are_unescaped() -> None:
    record = parse_record(b"4,1,2,-;tab\\x09back\\x5cslash caf\\xc3\\xa9 bad\\xff\\x0anext")
    assert record is not None
    assert record.text == "tab\tback\\slash caf\u00e9 bad\ufffd\nnext"


def test_leading_space_of_a_message_is_kept() -> None:
    record = parse_record(b"4,348,41355598,-; <TASK>")
    assert record is not None and record.text == " <TASK>"


def test_caller_field_after_the_flags_is_accepted() -> None:
    record = parse_record(b"6,7,8,-,caller=T1772;Killed process 1772 (python3)")
    assert record is not None and (record.seq, record.text) == (7, "Killed process 1772 (python3)")


def test_dictionary_lines_are_not_records() -> None:
    assert parse_record(b" SUBSYSTEM=acpi") is None
    assert parse_record(b" DEVICE=+acpi:LNXSYSTM:00\n") is None


def test_a_line_that_is_not_a_record_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a kmsg record"):
        parse_record(b"[   41.357569] Memory cgroup out of memory")


def test_gap_counts_the_records_skipped() -> None:
    lost = gap(10, 15, BOOT, overrun=True)
    assert lost == SourceGap(source="kmsg", missed=5, message=lost.message, cursor=f"{BOOT}:14")
    assert "overrun" in lost.message and "10..14" in lost.message
    stopped = gap(0, 3, BOOT, overrun=False)
    assert stopped is not None and stopped.missed == 3 and "not reading" in stopped.message


def test_no_gap_when_the_expected_record_comes() -> None:
    assert gap(10, 10, BOOT, overrun=False) is None
    assert gap(None, 99, BOOT, overrun=True) is None


def test_dictionary_lines_in_a_stream_belong_to_their_record(tmp_path: Path) -> None:
    data = b"6,1,10,-;usb 1-1: new device\n SUBSYSTEM=usb\n DEVICE=c189:1\n6,2,20,-;next\n"
    events = read_all(KmsgSource(kmsg_file(tmp_path, data), boot_id=BOOT))
    assert [event.text for event in events if isinstance(event, KernelLine)] == ["usb 1-1: new device", "next"]


def test_line_carries_kernel_timestamp_level_cursor_and_boot(tmp_path: Path) -> None:
    source = KmsgSource(kmsg_file(tmp_path, b"3,7,2500000,-;boom\n"), boot_id=BOOT)
    line = read_all(source)[0]
    assert (line.text, line.source, line.seq, line.prio, line.mono_usec) == ("boom", "kmsg", 7, 3, 2500000)
    assert (line.cursor, line.boot_id, line.wrapped) == (f"{BOOT}:7", BOOT, False)
    boot_time = datetime.now(timezone.utc) - timedelta(seconds=time.clock_gettime(time.CLOCK_MONOTONIC))
    assert abs(line.time - (boot_time + timedelta(seconds=2.5))) < timedelta(seconds=1)


def test_caught_up_comes_after_the_records_already_there(tmp_path: Path) -> None:
    events = read_all(KmsgSource(kmsg_file(tmp_path, records(0, 1, 2)), boot_id=BOOT))
    assert [getattr(event, "seq", None) for event in events] == [0, 1, 2, None]
    assert events[-1] == CaughtUp("kmsg")


def test_the_whole_captured_oom_report_is_read(tmp_path: Path) -> None:
    capture = DATA / "kmsg_6.18_memcg_v1_python3.kmsg"
    lines = [e for e in read_all(KmsgSource(str(capture), boot_id=BOOT)) if isinstance(e, KernelLine)]
    assert len(lines) == sum(1 for raw in capture.read_bytes().splitlines() if raw and raw[:1] != b" ")
    assert [line.seq for line in lines] == list(range(lines[0].seq, lines[0].seq + len(lines)))
    assert any("Killed process 1772 (python3)" in line.text for line in lines)


def test_resume_on_the_same_boot_skips_what_was_delivered(tmp_path: Path) -> None:
    source = KmsgSource(kmsg_file(tmp_path, records(0, 1, 2, 3)), cursor=f"{BOOT}:1", boot_id=BOOT)
    assert [getattr(e, "seq", e) for e in read_all(source)] == [2, 3, CaughtUp("kmsg")]


def test_resume_after_a_reboot_reads_from_the_start(tmp_path: Path) -> None:
    source = KmsgSource(kmsg_file(tmp_path, records(0, 1, 2)), cursor="old-boot:1", boot_id=BOOT)
    assert [getattr(e, "seq", e) for e in read_all(source)] == [0, 1, 2, CaughtUp("kmsg")]


def test_records_overwritten_while_stopped_are_a_gap(tmp_path: Path) -> None:
    source = KmsgSource(kmsg_file(tmp_path, records(5, 6)), cursor=f"{BOOT}:1", boot_id=BOOT)
    events = read_all(source)
    assert isinstance(events[0], SourceGap) and events[0].missed == 3
    assert [e.seq for e in events[1:3]] == [5, 6]


def test_an_unreadable_cursor_reads_everything(tmp_path: Path) -> None:
    source = KmsgSource(kmsg_file(tmp_path, records(0, 1)), cursor="garbage", boot_id=BOOT)
    assert [getattr(e, "seq", e) for e in read_all(source)] == [0, 1, CaughtUp("kmsg")]


def test_a_record_split_across_writes_is_delivered_whole(tmp_path: Path) -> None:
    fifo = tmp_path / "kmsg.fifo"
    os.mkfifo(fifo)
    source = KmsgSource(str(fifo), boot_id=BOOT)
    writer = os.open(fifo, os.O_WRONLY)
    try:
        events = source.events(idle_timeout=0.05)
        os.write(writer, b"6,0,1,-;first\n6,1,2,-;sec")
        assert next(events).text == "first"
        assert next(events) == CaughtUp("kmsg")
        assert next(events) is None
        os.write(writer, b"ond\n SUBSYSTEM=x\n")
        line = next(events)
        assert (line.seq, line.text) == (1, "second")
    finally:
        os.close(writer)
    assert [e for e in events if e is not None] == []


def test_close_from_another_thread_ends_events_promptly(tmp_path: Path) -> None:
    fifo = tmp_path / "kmsg.fifo"
    os.mkfifo(fifo)
    source = KmsgSource(str(fifo), boot_id=BOOT)
    writer = os.open(fifo, os.O_WRONLY)
    try:
        events = source.events(idle_timeout=300)
        assert next(events) == CaughtUp("kmsg")
        rest: list = []
        reader = threading.Thread(target=lambda: rest.extend(events))  # now waiting in poll()
        reader.start()
        source.close()
        reader.join(timeout=30)  # without close() it would wait out the 300 s idle timeout
        assert not reader.is_alive() and rest == []
    finally:
        os.close(writer)
    assert list(source.events()) == []


def test_missing_device_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=f"cannot open {tmp_path}/nope"):
        KmsgSource(str(tmp_path / "nope"), boot_id=BOOT)


def real_kmsg() -> KmsgSource:
    try:
        source = KmsgSource()
        with open("/dev/kmsg", "w"):
            pass
    except (SourceError, OSError) as exc:
        pytest.skip(f"/dev/kmsg cannot be read and written here: {exc}")
    return source


def write_marker() -> str:
    marker = f"watchdog-oom-test {uuid.uuid4()}"
    # A fresh open per message: /dev/kmsg rate-limits writes per open file.
    with open("/dev/kmsg", "w") as kmsg:
        kmsg.write(f"<4>{marker}\n")
    return marker


def wait_for(events, marker: str, within: float = 30.0) -> KernelLine:
    deadline = time.monotonic() + within
    for event in events:
        if isinstance(event, KernelLine) and event.text == marker:
            return event
        assert time.monotonic() < deadline, f"{marker!r} not read from /dev/kmsg within {within:g} s"
    raise AssertionError("events() ended")


def test_real_kmsg_delivers_a_written_message() -> None:
    source = real_kmsg()
    events = source.events(idle_timeout=0.05)
    try:
        while next(events) != CaughtUp("kmsg"):
            pass
        marker = write_marker()
        line = wait_for(events, marker)
        assert (line.prio, line.boot_id) == (4, read_boot_id())
        assert abs(line.time - datetime.now(timezone.utc)) < timedelta(seconds=5)
    finally:
        source.close()


def test_real_kmsg_resume_does_not_repeat_delivered_records() -> None:
    first = real_kmsg()
    try:
        # Read from the start of the kernel's buffer: its backlog (thousands of records on a
        # machine where other tests cause OOM kills) comes first. What is tested here is
        # that nothing repeats, not the speed of reading a backlog on a loaded machine.
        delivered = wait_for(first.events(idle_timeout=0.05), write_marker())
    finally:
        first.close()
    later = write_marker()
    resumed = KmsgSource(cursor=delivered.cursor)
    try:
        seqs = []
        deadline = time.monotonic() + 30
        for event in resumed.events(idle_timeout=0.05):
            if isinstance(event, KernelLine):
                seqs.append(event.seq)
                if event.text == later:
                    break
            assert time.monotonic() < deadline, f"{later!r} not read from /dev/kmsg after resuming"
        assert seqs[0] == delivered.seq + 1
    finally:
        resumed.close()

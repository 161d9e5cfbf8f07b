"""The journald source, against a real subprocess that prints journal JSON like journalctl."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from watchdog_oom.model import CaughtUp, KernelLine
from watchdog_oom.sources.base import SourceError
from watchdog_oom.sources.journal import JournalSource, field_text, journal_argv

# Entries as journalctl -o json prints them (systemd 252), shortened cursors.
KILL = {
    "__CURSOR": "s=9f1c;i=1a2b;b=12f4807fd2ac400a91bef992bff3c290;m=277c8e1;t=5f0a;x=77",
    "__REALTIME_TIMESTAMP": "1700000000123456",
    "__MONOTONIC_TIMESTAMP": "41357600",
    "_BOOT_ID": "12f4807fd2ac400a91bef992bff3c290",
    "_TRANSPORT": "kernel",
    "PRIORITY": "3",
    "SYSLOG_FACILITY": "0",
    "SYSLOG_IDENTIFIER": "kernel",
    "_SOURCE_MONOTONIC_TIMESTAMP": "41357569",
    "MESSAGE": "Memory cgroup out of memory: Killed process 1772 (python3) total-vm:75160kB",
}
BINARY = {
    "__CURSOR": "s=9f1c;i=1a2c",
    "_TRANSPORT": "kernel",
    "PRIORITY": "6",
    "MESSAGE": list(b"Killed process 9 (caf\xe9\x01)"),
}
EARLYOOM = {
    "__CURSOR": "s=9f1c;i=1a2d",
    "__REALTIME_TIMESTAMP": "1700000001000000",
    "_BOOT_ID": "12f4807fd2ac400a91bef992bff3c290",
    "_TRANSPORT": "stdout",
    "PRIORITY": "4",
    "SYSLOG_IDENTIFIER": "earlyoom",
    "_PID": "812",
    "_UID": "0",
    "_SYSTEMD_UNIT": "earlyoom.service",
    "MESSAGE": 'sending SIGTERM to process 4242 uid 1000 "chrome": badness 900, VmRSS 2048 MiB',
}
# What `logger -t earlyoom …` run by a user gives: the identifier it chose, journald's
# own fields say who it is.
FORGED = {
    "__CURSOR": "s=9f1c;i=1a2e",
    "_TRANSPORT": "syslog",
    "PRIORITY": "3",
    "SYSLOG_IDENTIFIER": "earlyoom",
    "SYSLOG_PID": "812",
    "_PID": "31337",
    "_UID": "1000",
    "_COMM": "logger",
    "_SYSTEMD_UNIT": "user@1000.service",
    "MESSAGE": 'sending SIGKILL to process 1 uid 0 "sshd": badness 900, VmRSS 2048 MiB',
}

# Records its arguments, prints the entries (and those logged since: later.jsonl), then
# does what its first argument says. Asked for the newest entry (--lines=1), it prints
# the last of entries.jsonl: what the journal held when the source started.
FAKE_JOURNALCTL = """\
import json, os, sys, time, pathlib
here = pathlib.Path(__file__).parent
then, args = sys.argv[1], sys.argv[2:]
entries = (here / "entries.jsonl").read_text()
if "--lines=1" in args:
    sys.stdout.write(([line + "\\n" for line in entries.splitlines() if line.strip()] or [""])[-1])
    sys.exit(0)
(here / "pid").write_text(str(os.getpid()))
(here / "argv.json").write_text(json.dumps(args))
later = here / "later.jsonl"
sys.stdout.write(entries + (later.read_text() if later.exists() else ""))
sys.stdout.flush()
(here / "flushed").write_text("")
if then == "fail":
    sys.stderr.write("Failed to seek to cursor: Invalid argument\\n")
    sys.exit(1)
if then == "follow":
    time.sleep(30)
"""


def fake_journalctl(tmp_path: Path, entries: list, then: str = "exit", raw: str = "") -> list[str]:
    (tmp_path / "fake_journalctl.py").write_text(FAKE_JOURNALCTL)
    (tmp_path / "entries.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries) + raw)
    return [sys.executable, str(tmp_path / "fake_journalctl.py"), then]


def wait_flushed(tmp_path: Path, timeout: float = 30.0) -> None:
    """Wait until the fake journalctl has written all it prints before following."""
    deadline = time.monotonic() + timeout
    while not (tmp_path / "flushed").exists():
        assert time.monotonic() < deadline, "the fake journalctl never printed its entries"
        time.sleep(0.01)


def passed_args(tmp_path: Path) -> list[str]:
    return json.loads((tmp_path / "argv.json").read_text())


def lines(source: JournalSource) -> list[KernelLine]:
    return [event for event in source.events(idle_timeout=0.2) if isinstance(event, KernelLine)]


def test_kernel_entry_becomes_a_kernel_line(tmp_path: Path) -> None:
    [line] = lines(JournalSource(argv=fake_journalctl(tmp_path, [KILL])))
    assert line == KernelLine(
        text=KILL["MESSAGE"],
        source="journal",
        time=datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=timezone.utc),
        mono_usec=41357569,
        prio=3,
        cursor=KILL["__CURSOR"],
        boot_id="12f4807f-d2ac-400a-91be-f992bff3c290",
        wrapped=False,
    )


def test_binary_message_given_as_byte_values_is_decoded(tmp_path: Path) -> None:
    [line] = lines(JournalSource(argv=fake_journalctl(tmp_path, [BINARY])))
    assert line.text == "Killed process 9 (caf\ufffd\x01)"


def test_a_field_repeated_in_one_entry_gives_its_first_value() -> None:
    assert field_text(["first", "second"]) == "first"
    assert field_text(None) is None


def test_userspace_killer_message_is_prefixed_with_identifier_and_pid(tmp_path: Path) -> None:
    [line] = lines(JournalSource(argv=fake_journalctl(tmp_path, [EARLYOOM])))
    assert line.text == "earlyoom[812]: " + EARLYOOM["MESSAGE"]
    assert (line.wrapped, line.mono_usec, line.prio) == (False, None, 4)


def test_without_cursor_this_boot_is_read_from_its_start(tmp_path: Path) -> None:
    lines(JournalSource(argv=fake_journalctl(tmp_path, [])))
    args = passed_args(tmp_path)
    assert "--boot" in args and "--no-tail" in args and "--follow" in args
    assert not any(arg.startswith("--after-cursor") for arg in args)


def test_cursor_is_passed_as_after_cursor_across_boots(tmp_path: Path) -> None:
    lines(JournalSource(KILL["__CURSOR"], argv=fake_journalctl(tmp_path, [])))
    args = passed_args(tmp_path)
    assert f"--after-cursor={KILL['__CURSOR']}" in args
    assert "--boot" not in args


def test_killer_units_are_ored_with_the_kernel_transport() -> None:
    argv = journal_argv(None, identifiers=("earlyoom", "nohang"))
    assert argv[-4:] == ["_TRANSPORT=kernel", "+", "_SYSTEMD_UNIT=earlyoom.service", "_SYSTEMD_UNIT=nohang.service"]
    assert "-k" not in argv and "--dmesg" not in argv
    assert journal_argv(None, identifiers=())[-1] == "_TRANSPORT=kernel"


def test_by_default_the_killers_units_are_matched_never_their_syslog_identifier(tmp_path: Path) -> None:
    lines(JournalSource(argv=fake_journalctl(tmp_path, [])))
    args = passed_args(tmp_path)
    assert args[args.index("_TRANSPORT=kernel") :] == [
        "_TRANSPORT=kernel",
        "+",
        "_SYSTEMD_UNIT=systemd-oomd.service",
        "_SYSTEMD_UNIT=earlyoom.service",
        "_SYSTEMD_UNIT=nohang.service",
        "_SYSTEMD_UNIT=nohang-desktop.service",
    ]
    assert not any(arg.startswith("SYSLOG_IDENTIFIER") for arg in args)


def test_a_killer_message_logged_by_anyone_else_is_dropped(tmp_path: Path) -> None:
    # journalctl is asked for the units only; this one prints the forged entry anyway.
    argv = fake_journalctl(tmp_path, [FORGED, {**FORGED, "_TRANSPORT": "stdout", "_SYSTEMD_UNIT": None}, KILL])
    assert [line.text for line in lines(JournalSource(argv=argv))] == [KILL["MESSAGE"]]


def test_a_message_from_the_killers_unit_is_kept_and_named_after_the_unit(tmp_path: Path) -> None:
    from_unit = {**FORGED, "_TRANSPORT": "syslog", "_UID": "0", "_SYSTEMD_UNIT": "earlyoom.service"}
    from_desktop = {**from_unit, "SYSLOG_IDENTIFIER": "nohang", "_SYSTEMD_UNIT": "nohang-desktop.service"}
    found = lines(JournalSource(argv=fake_journalctl(tmp_path, [from_unit, from_desktop])))
    # The prefix comes from journald's fields: the unit and _PID, not SYSLOG_PID.
    assert [line.text for line in found] == [
        "earlyoom[31337]: " + FORGED["MESSAGE"],
        "nohang-desktop[31337]: " + FORGED["MESSAGE"],
    ]


def test_the_units_followed_are_those_named_in_identifiers(tmp_path: Path) -> None:
    custom = {**EARLYOOM, "_SYSTEMD_UNIT": "earlyoom-custom.service"}
    argv = fake_journalctl(tmp_path, [EARLYOOM, custom])
    [line] = lines(JournalSource(argv=argv, identifiers=("earlyoom-custom",)))
    assert line.text == "earlyoom-custom[812]: " + EARLYOOM["MESSAGE"]
    assert passed_args(tmp_path)[-1] == "_SYSTEMD_UNIT=earlyoom-custom.service"


def test_caught_up_after_the_backlog_then_idle(tmp_path: Path) -> None:
    source = JournalSource(argv=fake_journalctl(tmp_path, [KILL, EARLYOOM], then="follow"))
    wait_flushed(tmp_path)  # the backlog is in the pipe: the first silence comes after it
    events = source.events(idle_timeout=0.2)
    try:
        assert [type(next(events)) for _ in range(4)] == [KernelLine, KernelLine, CaughtUp, type(None)]
        assert next(events) is None
    finally:
        source.close()


def test_output_that_ends_mid_line_still_delivers_the_line(tmp_path: Path) -> None:
    argv = fake_journalctl(tmp_path, [KILL], raw=json.dumps(EARLYOOM))
    assert [line.cursor for line in lines(JournalSource(argv=argv))] == [KILL["__CURSOR"], EARLYOOM["__CURSOR"]]


def test_journalctl_failing_is_an_error_with_what_it_said(tmp_path: Path) -> None:
    source = JournalSource("s=bad", argv=fake_journalctl(tmp_path, [KILL], then="fail"))
    with pytest.raises(SourceError, match="exited with status 1: Failed to seek to cursor: Invalid argument"):
        lines(source)


def test_output_that_is_not_json_is_an_error(tmp_path: Path) -> None:
    source = JournalSource(argv=fake_journalctl(tmp_path, [], raw="-- No entries --\n"))
    with pytest.raises(SourceError, match="not a JSON journal entry"):
        lines(source)


def test_missing_journalctl_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found: install systemd or set kernel_log.source to kmsg or file"):
        JournalSource(argv=[str(tmp_path / "journalctl")])


def test_close_from_another_thread_stops_journalctl(tmp_path: Path) -> None:
    source = JournalSource(argv=fake_journalctl(tmp_path, [], then="follow"))
    wait_flushed(tmp_path)  # running, its pid written
    events = source.events(idle_timeout=300)
    assert next(events) == CaughtUp("journal")  # an empty journal: nothing old
    rest: list = []
    reader = threading.Thread(target=lambda: rest.extend(events))  # now waiting in poll()
    reader.start()
    source.close()
    reader.join(timeout=30)  # without close() it would wait out the 300 s idle timeout
    assert not reader.is_alive() and rest == []
    with pytest.raises(ProcessLookupError):
        os.kill(int((tmp_path / "pid").read_text()), 0)


@pytest.mark.skipif(shutil.which("journalctl") is None, reason="journalctl is not installed here")
def test_real_journalctl_accepts_the_command_line() -> None:
    source = JournalSource(argv=["journalctl"])
    try:
        for event in source.events(idle_timeout=0.3):
            if isinstance(event, CaughtUp):
                break
    finally:
        source.close()


def test_caught_up_comes_right_after_the_newest_entry_there_was_at_start(tmp_path: Path) -> None:
    # A new kill follows the backlog without a pause: it must still count as new.
    argv = fake_journalctl(tmp_path, [KILL, EARLYOOM], then="follow")
    (tmp_path / "later.jsonl").write_text(json.dumps({**KILL, "__CURSOR": "s=new;i=99"}) + "\n")
    source = JournalSource(argv=argv)
    events = source.events(idle_timeout=5)
    try:
        got = [next(events) for _ in range(4)]
    finally:
        source.close()
    assert [type(e).__name__ for e in got] == ["KernelLine", "KernelLine", "CaughtUp", "KernelLine"]
    assert got[3].cursor == "s=new;i=99"


def test_an_empty_journal_is_caught_up_at_once(tmp_path: Path) -> None:
    source = JournalSource(argv=fake_journalctl(tmp_path, [], then="follow"))
    events = source.events(idle_timeout=5)
    try:
        assert isinstance(next(events), CaughtUp)
    finally:
        source.close()

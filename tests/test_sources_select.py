"""select_source: kernel_log.source and kernel_log.path to an open source, and why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from watchdog_oom.model import KernelLine
from watchdog_oom.sources import JournalSource, KmsgSource, LogFileSource, SourceError, select_source

# Prints nothing and stays, like journalctl --follow on an empty journal.
# Follows quietly; asked for the newest entry (--lines=1), answers "none" at once.
QUIET_JOURNALCTL = [sys.executable, "-c", "import sys, time; '--lines=1' in sys.argv or time.sleep(30)"]


def test_none_reads_no_kernel_log() -> None:
    assert select_source("none") == (None, "kernel log not read (kernel_log.source: none)")


def test_kmsg_reads_the_path_given(tmp_path: Path) -> None:
    capture = tmp_path / "kmsg"
    capture.write_bytes(b"6,0,1,-;hello\n")
    source, reason = select_source("kmsg", str(capture))
    assert isinstance(source, KmsgSource) and reason == f"reading {capture}"
    source.close()


def test_file_follows_the_path_with_its_stored_cursor(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(b"first\nsecond\n")
    opened, _ = select_source("file", str(log))
    cursor = next(opened.events(idle_timeout=0.05)).cursor
    opened.close()
    source, reason = select_source("file", str(log), cursors={f"file:{log}": cursor})
    assert isinstance(source, LogFileSource) and reason == f"following {log}"
    assert next(source.events(idle_timeout=0.05)) == KernelLine(
        text="second", source=f"file:{log}", cursor=cursor[: -len(":6")] + ":13", wrapped=True
    )
    source.close()


def test_file_without_a_path_is_an_error() -> None:
    with pytest.raises(SourceError, match="kernel_log.path is not set"):
        select_source("file")


def test_an_unknown_kind_is_an_error() -> None:
    with pytest.raises(SourceError, match="unknown source 'dmesg'; expected one of auto, kmsg, journal, file, none"):
        select_source("dmesg")


def test_journal_runs_the_given_journalctl() -> None:
    source, reason = select_source("journal", journal_argv=QUIET_JOURNALCTL)
    assert isinstance(source, JournalSource) and reason == f"following the journal with {sys.executable}"
    source.close()


def test_auto_prefers_kmsg_when_it_can_be_read() -> None:
    try:
        source, reason = select_source("auto", journal_argv=QUIET_JOURNALCTL)
    except SourceError as exc:
        pytest.skip(f"no readable /dev/kmsg here: {exc}")
    assert isinstance(source, KmsgSource) and reason == "reading /dev/kmsg (auto)"
    source.close()


def test_auto_falls_back_to_the_journal(tmp_path: Path) -> None:
    source, reason = select_source("auto", str(tmp_path / "kmsg"), journal_argv=QUIET_JOURNALCTL)
    assert isinstance(source, JournalSource)
    assert reason.startswith(f"following the journal with {sys.executable} (auto: cannot open {tmp_path}/kmsg")
    source.close()


def test_auto_falls_back_to_the_first_log_file_there(tmp_path: Path) -> None:
    (tmp_path / "messages").write_text("")
    source, reason = select_source(
        "auto",
        str(tmp_path / "kmsg"),
        journal_argv=[str(tmp_path / "journalctl")],
        log_files=[str(tmp_path / "kern.log"), str(tmp_path / "messages"), str(tmp_path / "syslog")],
    )
    assert isinstance(source, LogFileSource) and source.name == f"file:{tmp_path}/messages"
    assert reason.startswith(f"following {tmp_path}/messages (auto: ")
    source.close()


def test_auto_with_nothing_to_read_says_what_it_tried(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as raised:
        select_source(
            "auto",
            str(tmp_path / "kmsg"),
            journal_argv=[str(tmp_path / "journalctl")],
            log_files=[str(tmp_path / "kern.log")],
        )
    message = str(raised.value)
    assert f"cannot open {tmp_path}/kmsg" in message
    assert f"{tmp_path}/journalctl not found" in message and f"{tmp_path}/kern.log" in message
    assert "kernel_log.source" in message

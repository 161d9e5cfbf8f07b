"""Kernel log sources: where KernelLines come from (/dev/kmsg, journald, a log file), one protocol for all.

``select_source`` turns ``kernel_log.source`` and ``kernel_log.path`` into an open
source and says why it chose it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from watchdog_oom.model import CaughtUp, KernelLine, SourceGap
from watchdog_oom.sources.base import SourceError
from watchdog_oom.sources.journal import USERSPACE_KILLERS, JournalSource
from watchdog_oom.sources.kmsg import DEFAULT_PATH as KMSG_PATH
from watchdog_oom.sources.kmsg import KmsgSource
from watchdog_oom.sources.logfile import LogFileSource, open_log

__all__ = [
    "KINDS",
    "LOG_FILES",
    "JournalSource",
    "KmsgSource",
    "LogFileSource",
    "Source",
    "SourceError",
    "open_log",
    "select_source",
]

KINDS = ("auto", "kmsg", "journal", "file", "none")
# Where syslog daemons write kernel messages: Debian/Ubuntu, then RHEL/SUSE, then the rest.
LOG_FILES = ("/var/log/kern.log", "/var/log/messages", "/var/log/syslog")


class Source(Protocol):
    """A kernel log, read from where a cursor left off, for one consumer thread.

    A source is opened by its constructor, which takes where to read (a path or an
    argv: the test seams) and ``cursor``, a ``KernelLine.cursor`` from an earlier run:
    reading resumes right after that line. Errors opening it are a ``SourceError``.
    """

    name: str
    """``kmsg``, ``journal`` or ``file:PATH``: the key the cursor is stored under."""

    def events(self, idle_timeout: float = 1.0) -> Iterator[KernelLine | SourceGap | CaughtUp | None]:
        """What the log says, as it says it; to be iterated once (the source is closed after).

        Blocks on the log (poll, not a sleep loop) and yields:

        * ``KernelLine``: one message, whose ``cursor`` the consumer stores in the same
          transaction as the rows it produced;
        * ``SourceGap``: messages were lost (overwritten, truncated) before this point;
        * ``CaughtUp``: once, when everything already there at open has been delivered
          (so a first start can record old kills without a notification for each);
        * ``None``: nothing arrived for ``idle_timeout`` seconds (time to flush the parser
          and look at the clock).

        Ends after ``close()``; raises ``SourceError`` when the log cannot be read any more.
        """
        ...

    def close(self) -> None:
        """Make ``events()`` end promptly and release the log; safe from any thread, idempotent."""
        ...


def select_source(
    kind: str,
    path: str | None = None,
    *,
    cursors: Mapping[str, str] | None = None,
    journal_argv: Sequence[str] = ("journalctl",),
    identifiers: Sequence[str] = USERSPACE_KILLERS,
    log_files: Sequence[str] = LOG_FILES,
) -> tuple[Source | None, str]:
    """Open the source ``kernel_log.source`` names; returns it (None for ``none``) and why.

    ``path`` is the device for ``kmsg`` (and ``auto``), the file for ``file``; ``cursors``
    maps source names to their stored cursors. ``auto`` takes /dev/kmsg (or ``path``)
    when it can be opened, else the journal when journalctl exists, else the first of
    ``log_files`` that exists. Raises SourceError when the source cannot be opened.
    """
    cursors = cursors or {}
    if kind == "none":
        return None, "kernel log not read (kernel_log.source: none)"
    if kind == "kmsg":
        kmsg_path = path or KMSG_PATH
        return KmsgSource(kmsg_path, cursors.get("kmsg")), f"reading {kmsg_path}"
    if kind == "journal":
        source = JournalSource(cursors.get("journal"), argv=journal_argv, identifiers=identifiers)
        return source, f"following the journal with {journal_argv[0]}"
    if kind == "file":
        if not path:
            raise SourceError("kernel_log.source is file but kernel_log.path is not set")
        return LogFileSource(path, cursors.get(f"file:{path}")), f"following {path}"
    if kind != "auto":
        raise SourceError(f"kernel_log.source: unknown source {kind!r}; expected one of {', '.join(KINDS)}")

    kmsg_path = path or KMSG_PATH
    try:
        return KmsgSource(kmsg_path, cursors.get("kmsg")), f"reading {kmsg_path} (auto)"
    except SourceError as exc:
        why_not_kmsg = str(exc)
    if shutil.which(journal_argv[0]):
        source = JournalSource(cursors.get("journal"), argv=journal_argv, identifiers=identifiers)
        return source, f"following the journal with {journal_argv[0]} (auto: {why_not_kmsg})"
    for log_file in log_files:
        if os.path.exists(log_file):
            file_source = LogFileSource(log_file, cursors.get(f"file:{log_file}"))
            return file_source, f"following {log_file} (auto: {why_not_kmsg}; {journal_argv[0]} not found)"
    raise SourceError(
        f"no kernel log to read: {why_not_kmsg}; {journal_argv[0]} not found; none of "
        f"{', '.join(log_files)} exists. Set kernel_log.source and kernel_log.path, "
        "or kernel_log.source: none"
    )

"""Kernel log sources: where KernelLines come from (/dev/kmsg, journald, a log file), one protocol for all.

``select_source`` turns ``kernel_log.source`` and ``kernel_log.path`` into an open
source and says why it chose it. Each kind's module is imported only when that kind is
opened: the daemon holds the code of the one source it reads (a log file's reader also
brings gzip, bz2 and lzma; the journal's, subprocess).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

from watchdog_oom.model import CaughtUp, KernelLine, SourceGap
from watchdog_oom.sources.base import SourceError

if TYPE_CHECKING:
    from watchdog_oom.sources.journal import JournalSource
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
KMSG_PATH = "/dev/kmsg"  # kmsg.DEFAULT_PATH
# Where each source's names live, imported on first use (PEP 562).
_LAZY = {"JournalSource": "journal", "USERSPACE_KILLERS": "journal", "KmsgSource": "kmsg",
         "LogFileSource": "logfile", "open_log": "logfile"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"watchdog_oom.sources.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

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

    idle_timeout: float | None
    """Seconds of quiet before ``events()`` yields None; None: never. Set by ``events()``."""

    def events(self, idle_timeout: float = 1.0) -> Iterator[KernelLine | SourceGap | CaughtUp | None]:
        """What the log says, as it says it; to be iterated once (the source is closed after).

        Blocks on the log (poll, not a sleep loop) and yields:

        * ``KernelLine``: one message, whose ``cursor`` the consumer stores in the same
          transaction as the rows it produced;
        * ``SourceGap``: messages were lost (overwritten, truncated) before this point;
        * ``CaughtUp``: once, when everything already there at open has been delivered
          (so a first start can record old kills without a notification for each);
        * ``None``: nothing arrived for ``idle_timeout`` seconds (time to flush the parser
          and look at the clock). The reader may set the source's ``idle_timeout``
          attribute between events: None asks for no idle events at all, so that a
          reader with nothing to flush sleeps until the log says something.

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
    identifiers: Sequence[str] | None = None,
    log_files: Sequence[str] = LOG_FILES,
) -> tuple[Source | None, str]:
    """Open the source ``kernel_log.source`` names; returns it (None for ``none``) and why.

    ``path`` is the device for ``kmsg`` (and ``auto``), the file for ``file``; ``cursors``
    maps source names to their stored cursors; ``identifiers`` are the user-space killers
    the journal is read for (journal.USERSPACE_KILLERS by default). ``auto`` takes /dev/kmsg (or ``path``)
    when it can be opened, else the journal when journalctl exists, else the first of
    ``log_files`` that exists. Raises SourceError when the source cannot be opened.
    """
    cursors = cursors or {}
    kinds = _Kinds(journal_argv, identifiers)
    if kind == "none":
        return None, "kernel log not read (kernel_log.source: none)"
    if kind == "kmsg":
        kmsg_path = path or KMSG_PATH
        return kinds.kmsg(kmsg_path, cursors.get("kmsg")), f"reading {kmsg_path}"
    if kind == "journal":
        return kinds.journal(cursors.get("journal")), f"following the journal with {journal_argv[0]}"
    if kind == "file":
        if not path:
            raise SourceError("kernel_log.source is file but kernel_log.path is not set")
        return kinds.file(path, cursors.get(f"file:{path}")), f"following {path}"
    if kind != "auto":
        raise SourceError(f"kernel_log.source: unknown source {kind!r}; expected one of {', '.join(KINDS)}")

    kmsg_path = path or KMSG_PATH
    try:
        return kinds.kmsg(kmsg_path, cursors.get("kmsg")), f"reading {kmsg_path} (auto)"
    except SourceError as exc:
        why_not_kmsg = str(exc)
    if shutil.which(journal_argv[0]):
        source = kinds.journal(cursors.get("journal"))
        return source, f"following the journal with {journal_argv[0]} (auto: {why_not_kmsg})"
    for log_file in log_files:
        if os.path.exists(log_file):
            file_source = kinds.file(log_file, cursors.get(f"file:{log_file}"))
            return file_source, f"following {log_file} (auto: {why_not_kmsg}; {journal_argv[0]} not found)"
    raise SourceError(
        f"no kernel log to read: {why_not_kmsg}; {journal_argv[0]} not found; none of "
        f"{', '.join(log_files)} exists. Set kernel_log.source and kernel_log.path, "
        "or kernel_log.source: none"
    )


class _Kinds:
    """Opens each kind of source, importing its module only then."""

    def __init__(self, journal_argv: Sequence[str], identifiers: Sequence[str] | None) -> None:
        self.journal_argv = journal_argv
        self.identifiers = identifiers

    def kmsg(self, path: str, cursor: str | None) -> Source:
        from watchdog_oom.sources.kmsg import KmsgSource

        return KmsgSource(path, cursor)

    def journal(self, cursor: str | None) -> Source:
        from watchdog_oom.sources.journal import USERSPACE_KILLERS, JournalSource

        identifiers = USERSPACE_KILLERS if self.identifiers is None else self.identifiers
        return JournalSource(cursor, argv=self.journal_argv, identifiers=identifiers)

    def file(self, path: str, cursor: str | None) -> Source:
        from watchdog_oom.sources.logfile import LogFileSource

        return LogFileSource(path, cursor)

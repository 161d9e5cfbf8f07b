"""The log-file source: follows a syslog file (kern.log, messages) across rotation; and
``open_log``, which opens old logs, compressed or not, for ``import``.

A log file is known by its fingerprint, a hash of its first line (at most 1 KiB): a
syslog line starts with a timestamp, so the fingerprint survives a rename and tells the
rotated file from its successor. The cursor is ``FINGERPRINT:OFFSET``, the byte offset
just after the last line delivered.

logrotate rotates a file in one of two ways (logrotate(8)):

* rename and create: PATH becomes PATH.1 and a new PATH is created. The writer keeps
  appending to the renamed file until it reopens PATH (rsyslog on HUP, sent by the
  postrotate script, after the rename), so the end of the old file is no sign that it
  is done with: the old file is read alone until nothing was added to it for
  ``rotate_grace`` seconds (5 by default), and only then the new one from its start.
  Meanwhile the new file is held open and what it gets waits, delayed but not lost, and
  every cursor names the old file, up to the line just delivered.
* copytruncate: PATH is copied to PATH.1, then truncated in place. Lines written after
  the last read and before the copy are read from the copy, which nobody writes to:
  the new file follows at the copy's end. Lines written between the copy and the
  truncation are lost, as logrotate(8) warns, and no copy means a gap.

A cursor resumes in PATH, or in PATH.1 when it names that file (rotated since, by
either way, and then waited on like a renamed file: which way it was is not known).

Regular files are always readable to poll(), so at the end of the file this source
sleeps, and looks again every ``stat_interval`` seconds (STAT_INTERVAL, 0.5 by default),
as tail -F and filebeat do where they use no inotify: a line waits at most that long to be
read (a kill is still stored and its notification queued within a second), and the look
(a read at the offset, an fstat, a stat of PATH and a hash of the first KiB) costs some
tens of microseconds, two wake-ups a second. inotify would wake it at once, but Python's
standard library has no inotify: calling it through ctypes (ctypes and libffi, loaded for
it alone) held 0.2-0.4 MiB of the idle daemon's 6 MB budget (issue 12), for a wake-up a
second less. A look also works where inotify sees nothing (another host's writes on a
network filesystem). ``close()`` ends the sleep at once (the Stopper's pipe).

A syslog file is trusted as written, and who can write to it differs. Any local user
can put a ``kernel:`` line, a forged kill, into /var/log/syslog or /var/log/messages
with logger(1): those take every facility, and the "kernel" tag is the sender's to
choose. /var/log/kern.log normally receives the kernel facility only, which user space
cannot log under: glibc's syslog() turns LOG_KERN into LOG_USER. So kern.log is
preferred where it exists (``select_source`` tries it first), and /dev/kmsg or the
journal, which say who wrote a line, before any file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import select
import sys
import time
from collections.abc import Callable, Generator, Iterator
from importlib import import_module
from typing import Any, BinaryIO

from watchdog_oom.model import CaughtUp, KernelLine, SourceGap
from watchdog_oom.sources.base import SourceError, Stopper
from watchdog_oom.valueclass import valueclass

log = logging.getLogger("watchdog_oom")

# Seconds between looks at the followed file once it is read to its end: the longest a
# line waits to be read.
STAT_INTERVAL = 0.5
# How long the renamed file of a rotation must stay unchanged before it is left for the
# new one: time for the writer to be told to reopen PATH, and to do it.
ROTATE_GRACE = 5.0
FINGERPRINT_BYTES = 1024
ROTATED_SUFFIX = ".1"
READ_SIZE = 65536
# The longest line delivered: a kernel message is under 1 KiB (PRINTKRB_RECORD_MAX),
# journald cuts at 48 KiB (LineMax=). Anything longer is kept to its start, so that a
# line of gigabytes without a newline cannot make the daemon hold it all.
MAX_LINE_BYTES = 64 * 1024

# Compressed logs are recognised by their first bytes, not by their names. Each module is
# imported when a log needs it: a daemon following a file reads no compressed log.
_COMPRESSED: tuple[tuple[bytes, str], ...] = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "lzma"))


def _opener(module: str) -> Callable[..., Any]:
    """The open() of the decompressing module named."""
    opener: Callable[..., Any] = import_module(module).open
    return opener


def open_log(path: str) -> BinaryIO:
    """Open a log to read: ``-`` is stdin; gzip, bzip2 and xz are decompressed."""
    if path == "-":
        stdin = sys.stdin.buffer
        head = stdin.peek(6)[:6] if isinstance(stdin, io.BufferedReader) else b""
        for magic, module in _COMPRESSED:
            if head.startswith(magic):
                return _opener(module)(stdin)
        return stdin
    try:
        with open(path, "rb") as file:
            head = file.read(6)
        for magic, module in _COMPRESSED:
            if head.startswith(magic):
                return _opener(module)(path)
        return open(path, "rb")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc


def fingerprint(head: bytes) -> str | None:
    """The identity of a log file from its first bytes; None until its first line is whole."""
    end = head.find(b"\n", 0, FINGERPRINT_BYTES)
    if end >= 0:
        head = head[: end + 1]
    elif len(head) >= FINGERPRINT_BYTES:
        head = head[:FINGERPRINT_BYTES]
    else:
        return None
    return hashlib.sha256(head).hexdigest()[:16]


def parse_cursor(cursor: str | None) -> tuple[str, int] | None:
    """``FINGERPRINT:OFFSET`` as a pair; None when there is no readable cursor."""
    if cursor is None:
        return None
    fingerprint_, _, offset = cursor.rpartition(":")
    if not fingerprint_ or not offset.isdigit():
        return None
    return fingerprint_, int(offset)


@valueclass(frozen=False, slots=False, eq=False)
class _OpenFile:
    """One log file being read: ``offset`` is just after the last whole line delivered."""

    file: io.FileIO
    inode: tuple[int, int]
    fingerprint: str | None
    offset: int = 0
    # The old file of a rotation: read it to its end, then move on to the next one.
    rotated: bool = False
    # A copy (copytruncate) has no writer: it is left at its end at once. Other rotated
    # files are left once unchanged for rotate_grace seconds since ``changed``, the last
    # time (time.monotonic()) they were found rotated or grown.
    copy: bool = False
    changed: float = 0.0

    def size(self) -> int:
        return os.fstat(self.file.fileno()).st_size

    def current_fingerprint(self) -> str | None:
        return fingerprint(os.pread(self.file.fileno(), FINGERPRINT_BYTES, 0))

    def seek(self, offset: int) -> None:
        self.file.seek(offset)
        self.offset = offset


def _open(path: str) -> _OpenFile | None:
    try:
        file = open(path, "rb", buffering=0)  # noqa: SIM115 (followed until rotated away; _OpenFile closes it)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
    status = os.fstat(file.fileno())
    opened = _OpenFile(file=file, inode=(status.st_dev, status.st_ino), fingerprint=None)
    opened.fingerprint = opened.current_fingerprint()
    return opened


class LogFileSource:
    """Lines of a syslog file, followed across rotation, for the parser to unwrap.

    ``cursor`` resumes after the line it was taken from, in PATH or in PATH.1 if PATH
    was rotated since. Without a cursor, ``from_start`` reads the file from its start,
    else only what is appended. A file that does not exist yet is waited for. After a
    rename-and-create rotation the old file is read until it has been unchanged for
    ``rotate_grace`` seconds, then the new one.
    """

    def __init__(
        self,
        path: str,
        cursor: str | None = None,
        from_start: bool = True,
        *,
        stat_interval: float = STAT_INTERVAL,
        rotate_grace: float = ROTATE_GRACE,
    ) -> None:
        self.path = path
        self.name = f"file:{path}"
        self._stat_interval = stat_interval
        self._rotate_grace = rotate_grace
        self._partial = b""
        # Bytes of the line being read that were dropped beyond MAX_LINE_BYTES, or before it:
        # `_zeros` of them, the zeros a copytruncate or a crash left (no part of the line).
        self._skipped = 0
        self._zeros = 0
        self._pending: list[SourceGap] = []
        self._current = _open(path)
        self._next: _OpenFile | None = None
        position = parse_cursor(cursor)
        if position is not None:
            self._resume(*position)
        elif not from_start and self._current is not None:
            self._current.seek(self._current.size())
        self._stopper = Stopper(self._close_files)
        self.idle_timeout: float | None = 1.0  # set by events(); the reader may change it

    def events(self, idle_timeout: float = 1.0) -> Iterator[KernelLine | SourceGap | CaughtUp | None]:
        """Lines as KernelLines (wrapped), gaps, CaughtUp at the first end of file, None when
        idle (``idle_timeout``, which the reader may change between events; None: never)."""
        self.idle_timeout = idle_timeout
        if not self._stopper.begin():
            return
        try:
            stop = select.poll()
            stop.register(self._stopper.fileno(), select.POLLIN)
            yield from self._pending
            self._pending.clear()
            caught_up = False
            last_line = time.monotonic()
            while not self._stopper.stopped:
                yield from self._check_truncated()
                if (yield from self._read_to_end()):
                    last_line = time.monotonic()
                if (yield from self._next_file()):
                    continue
                # Not before the file after a rotated one is read: it was there at open too.
                if not caught_up and (self._current is None or not self._current.rotated):
                    caught_up = True
                    yield CaughtUp(self.name)
                if self.idle_timeout is not None and time.monotonic() - last_line >= self.idle_timeout:
                    last_line = time.monotonic()
                    yield None
                # Until the next look, an idle event due, or close().
                wait = self._stat_interval
                if self.idle_timeout is not None:
                    wait = min(wait, max(0.0, self.idle_timeout - (time.monotonic() - last_line)))
                stop.poll(wait * 1000)
        finally:
            self._stopper.end()

    def close(self) -> None:
        """Make events() end promptly; safe from any thread."""
        self._stopper.stop()

    def problem(self) -> str | None:
        """Why nothing can be read although the source is open (the file does not exist,
        and is being waited for), or None. The daemon warns, then alerts if it lasts."""
        if self._current is None and self._next is None:
            return f"{self.path} does not exist"
        return None

    def _resume(self, cursor_fingerprint: str, offset: int) -> None:
        current = self._current
        if current is not None and current.fingerprint == cursor_fingerprint and offset <= current.size():
            current.seek(offset)
            return
        rotated = _open(self.path + ROTATED_SUFFIX)
        if rotated is not None and rotated.fingerprint == cursor_fingerprint and offset <= rotated.size():
            rotated.seek(offset)
            rotated.rotated = True
            rotated.changed = time.monotonic()
            self._current, self._next = rotated, current
            return
        if rotated is not None:
            rotated.file.close()
        self._pending.append(
            SourceGap(
                source=self.name,
                missed=None,
                message=(
                    f"the file {self.path} was read from last time is neither {self.path} nor "
                    f"{self.path}{ROTATED_SUFFIX} any more; reading {self.path} from its start, "
                    "lines logged in between may be lost"
                ),
            )
        )

    def _read_to_end(self) -> Generator[KernelLine, None, bool]:
        """Deliver the whole lines up to the end of the current file; returns whether any."""
        current = self._current
        delivered = False
        while current is not None and not self._stopper.stopped:
            data = current.file.read(READ_SIZE)
            if not data:
                break
            current.changed = time.monotonic()
            lines = (self._partial + data).split(b"\n")
            self._partial = lines.pop()
            if lines and current.fingerprint is None:
                current.fingerprint = current.current_fingerprint()
            for i, line in enumerate(lines):
                (skipped, zeros), self._skipped, self._zeros = (self._skipped, self._zeros) if i == 0 else (0, 0), 0, 0
                yield self._line(current, line, skipped=skipped, zeros=zeros)
                delivered = True
            if self._partial[:1] == b"\0" and self._skipped == self._zeros:
                # zeros before the line (a copytruncate while its writer kept its offset, a
                # crash before the blocks were written): dropped, not kept in place of the line
                line_start = self._partial.lstrip(b"\0")
                dropped = len(self._partial) - len(line_start)
                self._partial, self._skipped, self._zeros = line_start, self._skipped + dropped, self._zeros + dropped
            if len(self._partial) > MAX_LINE_BYTES:
                self._skipped += len(self._partial) - MAX_LINE_BYTES
                self._partial = self._partial[:MAX_LINE_BYTES]
        return delivered

    def _check_truncated(self) -> Iterator[KernelLine | SourceGap]:
        """Notice the file cut back (or rewritten from its start) under the reader."""
        current = self._current
        if current is None or current.rotated:
            return
        end = current.offset + len(self._partial) + self._skipped
        # Rewritten past the offset between two looks: only the first line tells.
        replaced = current.fingerprint is not None and current.current_fingerprint() != current.fingerprint
        if current.size() < end or replaced:
            yield from self._truncated(current, end)

    def _next_file(self) -> Generator[KernelLine, None, bool]:
        """At the end of the current file: move to the next one if there is one.

        Returns whether it moved (the new file is to be read at once).
        """
        current = self._current
        if current is not None and current.rotated:
            if not current.copy and time.monotonic() - current.changed < self._rotate_grace:
                return False  # its writer may not have reopened PATH yet
            # The old file's writer is done with it: its last line is whole even
            # without a newline.
            yield from self._flush_partial()
            current.file.close()
            self._current, self._next = self._next, None
            return True
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            # Renamed and not created again yet: the writer may still append to the old
            # file (and a file that never existed is waited for).
            return False
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror}") from exc
        if current is None:
            self._current = _open(self.path)
            return self._current is not None
        if (status.st_dev, status.st_ino) != current.inode:
            # Rename and create: read the old file until its writer has left it, then
            # the new file, opened now, from its start.
            current.rotated = True
            current.changed = time.monotonic()
            self._next = _open(self.path)
            return True
        return False

    def _truncated(self, current: _OpenFile, end: int) -> Iterator[KernelLine | SourceGap]:
        copy = _open(self.path + ROTATED_SUFFIX)
        if copy is not None and copy.fingerprint == current.fingerprint and copy.size() >= end:
            # copytruncate: what was written before the copy is in PATH.1 after `end`.
            copy.seek(end)
            copy.offset = current.offset
            copy.rotated = True
            copy.copy = True
            self._current, self._next = copy, current
        else:
            if copy is not None:
                copy.file.close()
            yield from self._flush_partial()
            yield SourceGap(
                source=self.name,
                missed=None,
                message=(
                    f"{self.path} was truncated or replaced in place (copytruncate?) and no copy "
                    f"of it is at {self.path}{ROTATED_SUFFIX}; lines logged since the last read "
                    "may be lost"
                ),
            )
        current.seek(0)
        current.fingerprint = None

    def _flush_partial(self) -> Iterator[KernelLine]:
        if (self._partial or self._skipped) and self._current is not None:
            line, skipped, zeros = self._partial, self._skipped, self._zeros
            self._partial, self._skipped, self._zeros = b"", 0, 0
            yield self._line(self._current, line, newline=False, skipped=skipped, zeros=zeros)
        self._partial, self._skipped, self._zeros = b"", 0, 0

    def _line(self, current: _OpenFile, line: bytes, *, newline: bool = True, skipped: int = 0,
              zeros: int = 0) -> KernelLine:
        """The KernelLine of one line of the file (`skipped` bytes of it already dropped,
        `zeros` of them the zeros before it)."""
        current.offset += len(line) + skipped + newline
        # A file whose only line has no newline yet has no fingerprint: no cursor either.
        cursor = f"{current.fingerprint}:{current.offset}" if current.fingerprint else None
        text = line[:MAX_LINE_BYTES].decode("utf-8", "replace")
        if skipped > zeros or len(line) > MAX_LINE_BYTES:
            text += f"…[truncated: {len(line) + skipped - zeros} bytes]"
        return KernelLine(text=text, source=self.name, cursor=cursor, wrapped=True)

    def _close_files(self) -> None:
        for opened in (self._current, self._next):
            if opened is not None:
                opened.file.close()

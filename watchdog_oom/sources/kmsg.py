"""The /dev/kmsg source: the kernel's log buffer, record by record, resumable by sequence number.

/dev/kmsg (Linux 3.5+, Documentation/ABI/testing/dev-kmsg) gives every reader its own
position in the kernel's ring buffer, starting at the oldest record still there. Each
``read()`` returns exactly one record::

    prio,seq,usec,flags[,more...];message\\n
     KEY=value\\n                      (optional dictionary lines, e.g. SUBSYSTEM=, DEVICE=)

``prio`` is ``facility << 3 | level``; ``seq`` counts records from 0 at every boot;
``usec`` is the kernel's timestamp (``local_clock()``, microseconds since boot, the
``[ 41.355073]`` of dmesg); ``flags`` is ``-`` (``c``/``+`` marked continuation
fragments on 3.5–4.8 kernels; they are delivered as they come). Since 5.1 a ``caller=``
field may follow. Bytes of the message below 0x20, from 0x7f, and the backslash are
escaped as ``\\xHH``, so a record is always one line.

When the kernel overwrites records a reader has not read yet, that reader's next
``read()`` fails with EPIPE and its position jumps to the oldest record left: the
records in between are lost, and the next record's ``seq`` tells how many.

For tests the same records can come from a FIFO or a regular file, where one read
may return several lines or half of one.
"""

from __future__ import annotations

import os
import re
import select
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from watchdog_oom.model import CaughtUp, KernelLine, SourceGap
from watchdog_oom.sources.base import SourceError, Stopper
from watchdog_oom.valueclass import valueclass

DEFAULT_PATH = "/dev/kmsg"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
# A read() into a buffer smaller than the record fails with EINVAL; a formatted
# record is at most CONSOLE_EXT_LOG_MAX (8192) bytes.
READ_SIZE = 16384

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


@valueclass
class KmsgRecord:
    """One /dev/kmsg record, its message unescaped."""

    facility: int
    level: int
    seq: int
    usec: int
    flags: str
    text: str


def parse_record(line: bytes) -> KmsgRecord | None:
    """One kmsg line to its record; None for a dictionary line (`` KEY=value``) or a blank.

    Raises ValueError when the line is not a kmsg record.
    """
    line = line.rstrip(b"\n")
    if not line or line.startswith(b" "):
        return None
    header, separator, message = line.partition(b";")
    fields = header.split(b",")
    if not separator or len(fields) < 4:
        raise ValueError(f"not a kmsg record: {line[:120]!r}")
    try:
        prio, seq, usec = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        raise ValueError(f"not a kmsg record: {line[:120]!r}") from None
    return KmsgRecord(
        facility=prio >> 3,
        level=prio & 7,
        seq=seq,
        usec=usec,
        flags=fields[3].decode("ascii", "replace"),
        text=unescape(message),
    )


def unescape(message: bytes) -> str:
    """Undo the kernel's ``\\xHH`` escapes, then decode UTF-8 (invalid bytes replaced)."""
    raw = _ESCAPE.sub(lambda match: bytes((int(match.group(1), 16),)), message)
    return raw.decode("utf-8", "replace")


def gap(expected: int | None, got: int, boot_id: str, *, overrun: bool) -> SourceGap | None:
    """The SourceGap when record ``got`` arrives where ``expected`` was due, else None.

    ``overrun``: the read before failed with EPIPE (the reader fell behind while running);
    otherwise the records were overwritten while nobody was reading (resume after a stop).
    """
    if expected is None or got <= expected:
        return None
    missed = got - expected
    if overrun:
        message = (
            f"kernel log buffer overrun: {missed} records (seq {expected}..{got - 1}) "
            "were overwritten before they could be read; an OOM kill among them is lost"
        )
    else:
        message = (
            f"{missed} kernel log records (seq {expected}..{got - 1}) were overwritten "
            "while watchdog-oom was not reading; an OOM kill among them is lost"
        )
    return SourceGap(source="kmsg", missed=missed, message=message, cursor=f"{boot_id}:{got - 1}")


def read_boot_id(path: str = BOOT_ID_PATH) -> str:
    """This boot's id (a random UUID the kernel makes at every boot)."""
    try:
        with open(path, encoding="ascii") as file:
            return file.read().strip()
    except OSError as exc:
        raise SourceError(f"cannot read the boot id from {path}: {exc.strerror}") from exc


def first_seq_after(cursor: str | None, boot_id: str) -> int | None:
    """The first seq still to deliver after ``cursor`` (``"BOOT_ID:SEQ"``).

    None when there is no position to hold to (no cursor, or one that cannot be read):
    the whole buffer is delivered. After a reboot it is 0, the first seq of every boot,
    so records of this boot that were overwritten before the start are reported as a gap.
    """
    if cursor is None:
        return None
    cursor_boot, _, seq = cursor.rpartition(":")
    if not cursor_boot or not seq.isdigit():
        return None
    return int(seq) + 1 if cursor_boot == boot_id else 0


def _boot_wall_time() -> float:
    # usec is local_clock(), which like CLOCK_MONOTONIC stops during suspend; measuring
    # the offset at each record keeps fresh records right after a suspend too.
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


class KmsgSource:
    """Kernel log records from /dev/kmsg (or a FIFO or file of them), from the oldest kept.

    ``cursor`` is a KernelLine.cursor from an earlier run: on the same boot the records
    up to it are skipped; after a reboot the whole buffer is read. ``boot_id`` defaults
    to this boot's (a test seam).
    """

    def __init__(
        self, path: str = DEFAULT_PATH, cursor: str | None = None, *, boot_id: str | None = None
    ) -> None:
        self.name = "kmsg"
        self.path = path
        self.boot_id = read_boot_id() if boot_id is None else boot_id
        self._expected = first_seq_after(cursor, self.boot_id)
        self._overrun = False
        self._partial = b""
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise SourceError(f"cannot open {path}: {exc.strerror}") from exc
        self._stopper = Stopper(lambda: os.close(self._fd))
        self.idle_timeout: float | None = 1.0  # set by events(); the reader may change it

    def events(self, idle_timeout: float = 1.0) -> Iterator[KernelLine | SourceGap | CaughtUp | None]:
        """Records as KernelLines, gaps, CaughtUp at the first EAGAIN, None when idle
        (``idle_timeout``, which the reader may change between events; None: never).

        Ends when close() is called, or at the end of a regular file or FIFO (all
        writers gone; open the writing end before iterating).
        """
        self.idle_timeout = idle_timeout
        if not self._stopper.begin():
            return
        try:
            poller = select.poll()
            poller.register(self._fd, select.POLLIN)
            poller.register(self._stopper.fileno(), select.POLLIN)
            caught_up = False
            while not self._stopper.stopped:
                try:
                    data = os.read(self._fd, READ_SIZE)
                except BlockingIOError:
                    # EAGAIN: every record there is has been read.
                    if not caught_up:
                        caught_up = True
                        yield CaughtUp(self.name)
                    if not poller.poll(_milliseconds(self.idle_timeout)):
                        yield None
                    continue
                except BrokenPipeError:
                    # EPIPE: records were overwritten; the next read returns the oldest
                    # one left, and its seq tells how many were lost.
                    self._overrun = True
                    continue
                except OSError as exc:
                    raise SourceError(f"cannot read {self.path}: {exc.strerror}") from exc
                if not data:
                    if self._partial:
                        yield from self._feed(b"\n")
                    if not caught_up:
                        yield CaughtUp(self.name)
                    return
                yield from self._feed(data)
        finally:
            self._stopper.end()

    def close(self) -> None:
        """Make events() end promptly; safe from any thread."""
        self._stopper.stop()

    def _feed(self, data: bytes) -> Iterator[KernelLine | SourceGap]:
        # /dev/kmsg returns whole records; a FIFO or file may return several or a part.
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            try:
                record = parse_record(line)
            except ValueError as exc:
                raise SourceError(f"{self.path}: {exc}") from None
            if record is None:
                continue
            if self._expected is not None and record.seq < self._expected:
                continue  # delivered before the cursor
            lost = gap(self._expected, record.seq, self.boot_id, overrun=self._overrun)
            if lost is not None:
                yield lost
            self._overrun = False
            self._expected = record.seq + 1
            boot_time = datetime.fromtimestamp(_boot_wall_time(), timezone.utc)
            yield KernelLine(
                text=record.text,
                source=self.name,
                time=boot_time + timedelta(microseconds=record.usec),
                mono_usec=record.usec,
                seq=record.seq,
                prio=record.level,
                cursor=f"{self.boot_id}:{record.seq}",
                boot_id=self.boot_id,
            )


def _milliseconds(timeout: float | None) -> int | None:
    """poll()'s timeout for `timeout` seconds; None waits for as long as it takes."""
    return None if timeout is None else int(timeout * 1000)

"""`import`'s two readers of one big log: the reading child parses the first half and a
process it forks parses the second, at once, one per core.

The second (from parse.scan.split_point, a line's start near the middle) packs its
kills (import_wire.Packer) and writes its events, pickled as the first sends its own to the recording
parent, into an unlinked spool file (its memory stays bounded, and it never waits for the
first). It tells the first, through a pipe, where it was idle (parse.scan.Idle) and how
far its spool is written. The first reads its half, goes on past the split as one reader
would, and hands over at the first point where its parser is in the state the second's
was in at the same offset (OomParser.resumable: nothing held but a report its last line
opened, the same last victim, the user-space killers' last 32): from there the two read
alike. (Not compared: the rejoiner's count of line widths, by which it tells a terminal's
width; a log wrapped at a terminal's width may have a kill line past the handover
rejoined otherwise than one reader would.) It then sends the second's spooled events
from that point on to the parent as they are (sendfile: no copy through Python, nothing
unpickled), so the parent receives one stream in the file's order. A kill is the first's
when its report is fed before that point and the second's after it: none is lost or given
twice at the split. Unread lines are counted by the reader that fed them (the second's
count from the handover point on is added to the first's). Should the two never agree
within the second's first IDLE_MARKS such points, the first reads the whole log itself.

A log truncated while mapped kills the reader that touches a page past its end (SIGBUS);
the second dying so, or finding the file shorter, is seen by the first, which reads on
with read() from the last point the parent holds as final (see import_logs.shrank_events).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import pickle
import signal
import struct
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TextIO

from watchdog_oom.model import OomKill
from watchdog_oom.textout import safe
from watchdog_oom.valueclass import valueclass

# Exit statuses of the second reader: read to the end; failed (said in a line); found the
# file shorter (LogShrank); stopped, its spool at its cap or its filesystem nearly full.
_DONE, _FAILED, _SHRANK, _STOPPED = 0, 1, 3, 4
# The second reader's spool (in $TMPDIR) is bounded: the second stops where it would
# grow past _SPOOL_CAP bytes or leave its filesystem less than _FREE_LEFT bytes free (a
# twentieth of a smaller filesystem), and the first reads the rest (SecondStopped).
_SPOOL_CAP = 256 << 20
_FREE_LEFT = 64 << 20
_CONTROL_PIPE = 1 << 20  # the pipe's size asked for (F_SETPIPE_SZ): the second never waits on it


@valueclass
class Parts:
    """How `import` reads a big log in two processes: `at`, the byte offset where the
    second part starts (a line's start; None: split_point's)."""

    at: int | None = None


@valueclass
class Forward:
    """Spool bytes [start, end) to send on as they are: whole pickled events of the
    second reader (or `data`, pickled events to send instead). `mark`: the last point of
    the log the parent may read on from once they are sent (offset, size, kills given
    since), or None: the one before stands, with `kills` more kills given since."""

    fd: int
    start: int
    end: int
    kills: int
    mark: tuple[int, int | None, int] | None
    data: bytes | None = None


@valueclass(frozen=False, slots=False)
class _State:
    """How far the second reader had got at one point: its spool's length, its kills (the
    `pending` last of them not yet spooled: the first kills of the next event), and since
    its start its unread lines (count, kept, cut) and its yearless times; `mark`: its last
    at event (the spool's length after it, the log offset, the log's size, the kills given
    since)."""

    spool: int = 0
    kills: int = 0
    unread: tuple[int, int, int] = (0, 0, 0)
    yearless: int = 0
    mark: tuple[int, int, int | None, int] | None = None
    pending: int = 0


# What the second reader's part is: its kills, Reached and Idle marks, and a callable
# giving its counts so far (unread: count, kept, cut; yearless times; the unread lines kept).
Part = tuple[Iterator[Any], Callable[[], tuple[tuple[int, int, int], int, list[Any]]]]


class TwoReaders:
    """The first reader's side: forks the second, hands over, forwards its events."""

    def __init__(self, path: str, split: int, second: Callable[[Callable[[int], object]], Part],
                 batch: int, err: TextIO, pack: Callable[[list[Any]], Any] | None = None) -> None:
        """`second(progress)`: the second part (run in the forked process, which reports the
        bytes it got through to `progress`); `batch`: kills per event; `pack`: what a batch
        of kills is spooled as (import_wire.Packer; None: the list as it is)."""
        self.path, self.split = path, split
        self.spool = tempfile.TemporaryFile(prefix="watchdog-oom-import-")  # noqa: SIM115 -- closed by close()
        self.counter = mmap.mmap(-1, 8)  # shared with the second: the bytes it got through
        self.candidates: dict[tuple[int, Any], _State] = {}  # (offset, key) of an Idle mark -> the state there
        self.highest = -1  # the last Idle offset heard of
        self.idle_over = False  # no more Idle marks will come
        self.latest = _State()
        self.ended = False  # the second's end was heard, or its pipe closed
        self.status: int | None = None  # its exit status (minus a signal's number)
        self.chosen: _State | None = None
        self.kept: list[Any] | None = None  # its unread lines kept, once it ended
        try:
            readable, writable = os.pipe()
        except OSError:
            self.spool.close()
            self.counter.close()
            raise
        with contextlib.suppress(AttributeError, OSError):  # Linux 2.6.35+
            import fcntl

            fcntl.fcntl(writable, fcntl.F_SETPIPE_SZ, _CONTROL_PIPE)
        err.flush()
        try:
            self.child = os.fork()
        except OSError:
            for end in (readable, writable):
                os.close(end)
            self.spool.close()
            self.counter.close()
            raise
        if self.child == 0:
            os.close(readable)
            os._exit(_second_main(path, second(self._count), self.spool, writable, (batch, pack), err))
        os.close(writable)
        self.control: BinaryIO | None = os.fdopen(readable, "rb")

    def _count(self, count: int) -> None:
        """In the second: `count` more bytes got through (shown by the first's progress)."""
        struct.pack_into("q", self.counter, 0, self.second_done() + count)

    def second_done(self) -> int:
        """The bytes the second reader has got through so far."""
        return int(struct.unpack_from("q", self.counter)[0])

    def handoff(self, mark: Any) -> bool:
        """Whether the first reader hands over at its Idle `mark` (parse.iter_part)."""
        offset = int(mark)
        while not self.idle_over and self.highest <= offset:
            self._receive()
        chosen = self.candidates.get((offset, mark.key))
        if chosen is None:
            return False
        self.chosen = chosen
        return True

    def _receive(self) -> None:
        """Read one of the second's messages; at its end (or death), say so."""
        try:
            message = pickle.load(self.control)  # type: ignore[arg-type]
        except (EOFError, OSError, pickle.UnpicklingError):
            self.idle_over = self.ended = True
            self._wait()
            return
        kind = message[0]
        if kind == "idle":  # offset, key, state
            self.highest = message[1]
            self.candidates[message[1], message[2]] = message[3]
        elif kind == "idle-over":
            self.idle_over = True
        elif kind == "spooled":
            self.latest = message[1]
        else:  # "end"
            self.latest, self.kept = message[1], message[2]
            self.idle_over = self.ended = True

    def forward(self) -> Iterator[Forward]:
        """After a handover, the second's events from that point on as they are spooled;
        raises LogShrank if the second found the log shrinking (or died of it)."""
        from watchdog_oom.parse.scan import LogShrank

        chosen = self.chosen
        if chosen is None:  # the first read it all
            return
        spool, kills, skip = chosen.spool, chosen.kills, chosen.pending
        while True:
            latest = self.latest
            if latest.spool > spool:
                mark = latest.mark
                given = (mark[1], mark[2], mark[3]) if mark is not None and mark[0] > chosen.spool else None
                if skip:  # the handover fell within the batch spooled next: its kills after it
                    forward, spool = self._rest_of_batch(spool, skip)
                    skip = 0
                    if forward is not None:
                        yield forward
                        kills += forward.kills
                    continue
                yield Forward(self.spool.fileno(), spool, latest.spool, latest.kills - kills, given)
                spool, kills = latest.spool, latest.kills
            if self.ended:
                break
            self._receive()
        if self.kept is None:  # it ended without saying so
            if self.status in (_SHRANK, -signal.SIGBUS):
                raise LogShrank(5, "the log shrank while its second half was read")
            raise SecondStopped(self.status)

    def _rest_of_batch(self, start: int, skip: int) -> tuple[Forward | None, int]:
        """The batch event spooled at `start` without its first `skip` kills, pickled again
        (None: no row is left), and where the next event starts."""
        stream = _Spooled(self.spool.fileno(), start)  # read where it lies: the second writes on at its offset
        kind, path, rows = pickle.load(stream)
        after = stream.at
        rows = rows[skip:] if type(rows) is list else rows.after(skip)  # a list, or a Packed
        if not len(rows):
            return None, after
        data = pickle.dumps((kind, path, rows), protocol=pickle.HIGHEST_PROTOCOL)
        return Forward(self.spool.fileno(), start, after, len(rows), None, data), after

    def merge_counts(self, unread: Any, yearless: int) -> int:
        """Add the second's unread lines after the handover to the first's `unread`, and
        return the yearless times of both (`yearless`: the first's)."""
        if self.chosen is None or self.kept is None:
            return yearless
        count, kept, cut = self.chosen.unread
        final_count, _, final_cut = self.latest.unread
        unread.count += final_count - count
        unread.cut += final_cut - cut
        unread.first += self.kept[kept:][:max(0, unread.keep - len(unread.first))]
        return yearless + self.latest.yearless - self.chosen.yearless

    def _wait(self) -> None:
        if self.status is None:
            _, status = os.waitpid(self.child, 0)
            self.status = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def close(self) -> None:
        """End the second (if it still reads) and let go of its pipe and spool."""
        if self.status is None:
            if self.kept is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.child, signal.SIGKILL)  # its work is not needed, or the first failed
            self._wait()
        if self.control is not None:
            self.control.close()
            self.control = None
        self.spool.close()
        self.counter.close()


class _Spooled:
    """The spool read from `at` on with pread(2): the file offset (shared with the second
    reader, which writes at it) is left alone."""

    def __init__(self, fd: int, at: int) -> None:
        self.fd, self.at = fd, at

    def read(self, count: int) -> bytes:
        data = os.pread(self.fd, count, self.at)
        self.at += len(data)
        return data

    def readline(self) -> bytes:  # (pickle asks for it; the events are of protocol 5, which needs none)
        raise pickle.UnpicklingError("the spool holds no line-based pickles")


class SecondStopped(ValueError):
    """The second reader stopped before the end of the log after the handover (its spool
    at its cap, or an error of its own, which it said): the first reads on from the last
    point the parent holds as final (import_logs._path_events), as for a log that shrank."""

    def __init__(self, status: int | None) -> None:
        super().__init__(f"the second reading process stopped (status {status})")


class _SpoolFull(Exception):
    """The second reader's spool reached its cap, or its filesystem is nearly full."""


def _second_main(path: str, part: Part, spool: Any, control_fd: int,
                 batch: tuple[int, Callable[[list[Any]], Any] | None], err: TextIO) -> int:
    """The second reader: its part's events into the spool, how far it got to the first."""
    from watchdog_oom.parse.scan import Idle, LogShrank, Reached

    status = _FAILED
    with contextlib.suppress(AttributeError, OSError):  # Linux: end with the first (PR_SET_PDEATHSIG)
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    with contextlib.suppress(AttributeError, ValueError):  # a SIGBUS ends it quietly: the first says why
        signal.signal(signal.SIGBUS, signal.SIG_DFL)
    items, counts = part
    try:
        with os.fdopen(control_fd, "wb") as control, \
                os.fdopen(spool.fileno(), "wb", closefd=False, buffering=1 << 20) as out:
            writer = _Spooler(path, out, control, batch, counts)
            for item in items:
                kind = type(item)
                if kind is OomKill:
                    writer.add(item)
                elif kind is Idle:
                    writer.idle(item)
                elif kind is Reached:
                    writer.reached(item)
            writer.end()
        status = _DONE
    except LogShrank:
        status = _SHRANK
    except _SpoolFull:
        status = _STOPPED
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    except Exception as exc:  # noqa: BLE001 -- said in a line; the first reads on without it
        said = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError, ValueError):
            print(f"watchdog-oom import: {safe(path)}: a second reading process stopped ({safe(said[:300])}); "
                  "the first reads on", file=err)
    with contextlib.suppress(OSError, ValueError):
        err.flush()
    return status


class _Spooler:
    """The second reader's events (as import_logs._path_events gives them) into the spool,
    and how far it got to the first."""

    def __init__(self, path: str, out: Any, control: Any, batch: tuple[int, Callable[[list[Any]], Any] | None],
                 counts: Callable[[], tuple[tuple[int, int, int], int, list[Any]]]) -> None:
        self.path, self.out, self.control, self.counts = path, out, control, counts
        self.size, self.pack = batch
        self.batch: list[Any] = []
        self.state = _State()
        self.marks = 0
        self.whole: int | None = None

    def add(self, row: Any) -> None:
        self.batch.append(row)
        if len(self.batch) >= self.size:
            self._write_batch()
            self._send("spooled", self._now())

    def idle(self, mark: Any) -> None:
        from watchdog_oom.parse.scan import IDLE_MARKS

        state = self._now()  # (the batch is not cut here: the first cuts the one it hands over in)
        state.kills += len(self.batch)
        state.pending = len(self.batch)
        self._send("idle", int(mark), mark.key, state)
        self.marks += 1
        if self.marks == IDLE_MARKS:
            self._send("idle-over")

    def reached(self, mark: Any) -> None:
        self._write_batch()
        if mark.size is not None:
            self.whole = mark.size
        self._dump(("at", self.path, (int(mark), self.whole)))
        self.out.flush()
        self.state.mark = (self.out.tell(), int(mark), self.whole, 0)
        self._send("spooled", self._now())

    def end(self) -> None:
        self._write_batch()
        state = self._now()
        self._send("end", state, self.counts()[2])

    def _write_batch(self) -> None:
        if self.batch:
            self._bounded()
            self._dump(("kills", self.path, self.batch if self.pack is None else self.pack(self.batch)))
            self.state.kills += len(self.batch)
            if self.state.mark is not None:
                after, at, size, given = self.state.mark
                self.state.mark = (after, at, size, given + len(self.batch))
            self.batch = []

    def _bounded(self) -> None:
        """Raise _SpoolFull where the spool is at its cap or its filesystem nearly full."""
        if self.out.tell() >= _SPOOL_CAP:
            raise _SpoolFull
        fs = os.fstatvfs(self.out.fileno())
        if fs.f_bavail * fs.f_frsize < min(_FREE_LEFT, fs.f_blocks * fs.f_frsize // 20):
            raise _SpoolFull

    def _dump(self, event: Any) -> None:
        pickle.dump(event, self.out, protocol=pickle.HIGHEST_PROTOCOL)

    def _now(self) -> _State:
        """The state now, the spool flushed to it (a copy: it is sent)."""
        self.out.flush()
        state = self.state
        state.spool = self.out.tell()
        state.unread, state.yearless, _ = self.counts()
        return _State(state.spool, state.kills, state.unread, state.yearless, state.mark, 0)

    def _send(self, *message: Any) -> None:
        pickle.dump(message, self.control, protocol=pickle.HIGHEST_PROTOCOL)
        self.control.flush()


def send_spooled(pipe: int, forward: Forward) -> None:
    """Send spooled bytes down the pipe to the parent as they are (sendfile(2))."""
    if forward.data is not None:
        with memoryview(forward.data) as left:
            while left:
                left = left[os.write(pipe, left):]
        return
    at, end = forward.start, forward.end
    while at < end:
        sent = os.sendfile(pipe, forward.fd, at, end - at)
        if sent == 0:
            raise EOFError("the spool of the second reader ended early")
        at += sent


def unspooled(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """The events with the second reader's spooled ones read back, a batch of kills as its
    rows (Packed.rows), for a reader of them in this process (the tests)."""
    for kind, path, payload in _unspooled(events):
        yield kind, path, payload.rows() if kind == "kills" and type(payload) is not list else payload


def _unspooled(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """The events with the second reader's spooled ones read back."""
    import io

    for kind, path, payload in events:
        if kind != "raw":
            yield kind, path, payload
            continue
        data = payload.data if payload.data is not None else os.pread(payload.fd, payload.end - payload.start,
                                                                     payload.start)
        stream = io.BytesIO(data)
        size = len(data)
        while stream.tell() < size:
            spooled, where, batch = pickle.load(stream)
            yield spooled, where, batch

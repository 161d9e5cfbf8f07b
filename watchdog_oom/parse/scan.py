"""The byte scanner behind `import`: the kills in a log of any size, at the speed of grep.

It finds the lines holding a kill word with a plain substring search (glibc memmem where
there is one) and feeds the parser only the reports around them, giving the same kills as
feeding every line (for reports that span less than `_LOOKBACK` bytes).
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import dataclasses
import errno
import io
import mmap
import os
import re
import signal
import stat
from collections.abc import Callable, Generator, Iterator
from typing import Any, BinaryIO

from watchdog_oom.model import KernelLine, OomKill
from watchdog_oom.parse.exports import export_in_time_order
from watchdog_oom.parse.kernel import OomParser, Unread
from watchdog_oom.parse.values import undo_future_year as undo_future_year  # moved; imported from here too
from watchdog_oom.parse.wrappers import LINE_CHARS

# Every kill line holds one of these: "Kill" (kernel "Killed process" / "Kill process",
# earlyoom 0.x-1.1 "Killing process", systemd-oomd "Killed /…"), " SIG" (earlyoom
# "sending SIGTERM", nohang "Send(ing) SIGTERM") or "kill" (systemd-oomd 254+ "Marked /…
# for killing", earlyoom 1.2 "killing process", PID 1's "systemd-oomd killed N
# process(es)"). Each needle is one memmem pass over the input, and a pass costs about
# the input's length over the needle's: three, no more, keep the scan near grep's
# speed; _KILL_LINE then says which hits are worth reading. Every recogniser's needles
# hold one of these (a test checks it).
KILL_NEEDLES = (b"Kill", b" SIG", b"kill")
_KILL_NEEDLES = KILL_NEEDLES
# What a line with one of them must hold to be worth reading: systemd's "Killing process
# N (x) with signal SIGKILL" and "Received SIGHUP" are common and are not kills. The
# lookahead is bounded (a comm is 15 bytes), so a line of repeated words stays linear.
# Each way of reading as a kill line comes with the text it cannot match without: a line is
# tried against a way only where that text is in it (bytes.find, in C). The whole regular
# expression on every line hit tried each of its ways at each "k", "o", "s", "t" of the
# line: two thirds of the search's time in a log dense with kills.
_KILL_LINE_WAYS = (
    (b"Kill", rb"Kill(?:ed process|ed (?:/|\xe2\x80\xa6|\.\.\.)| process"
              rb"|ing process (?:'|&#x27;|&#39;|\d+ (?!.{0,80}? with signal SIG)))"),
    (b" SIG", rb"[Ss]end(?:ing)? SIG"),
    (b"Marked ", rb"Marked (?:/|\xe2\x80\xa6|\.\.\.)"),
    (b"killing process ", rb"killing process \d+ (?:\"|&quot;|\\\")"),
    (b"oomd killed ", rb"oomd killed \d"),
    (b"the command: ", rb"the command: "),  # nohang's victim handled by a configured command ("kill -TERM 12297")
)
_KILL_LINE = re.compile(b"|".join(pattern for _, pattern in _KILL_LINE_WAYS))
_KILL_LINE_TRIED = tuple((needed, re.compile(pattern)) for needed, pattern in _KILL_LINE_WAYS)
_ANSI_BYTES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]")
# Lines that open a report or a user-space killer's description, looked for only in the
# stretch before a kill line: the latest kernel header (_reads_as_header), else the
# earliest other opener.
_HEADER_NEEDLE = b"oom-killer"
_OPENER_NEEDLES = (b"Task in ", b"Tasks in ", b"oom-kill:", b"uid  tgid", b"emory! ",
                   b"Victim status", b"highest badness")
_CHUNK = 32 << 20  # bytes read at a time
# Of a mapped file, bytes searched at a time: the pages of one segment are resident
# until it is read (the process's RSS), and progress is shown a segment at a time.
_SEGMENT = 8 << 20
_MAP_AT_LEAST = 1 << 20  # a smaller file is read: mapping it would save nothing
_SPLIT_AT_LEAST = 2 << 20  # a smaller mapped file is read by one process (iter_part)
_LOOKBACK = 4 << 20  # how far before a kill line its report may begin (~30 000 tasks)
_LINE_BYTES = 4 * LINE_CHARS + 1  # the bytes of a line given to the parser at most
_ZEROS = re.compile(rb"\0+")
_set_text = vars(KernelLine)["text"].__set__  # the slot's own setter (see _Scanner.line)
_BLOCK = 64 << 10  # bytes searched for kill lines at a time from where the feeds reached (_feed_found)
_RUN = 4096  # bytes of whole lines decoded at once to be fed (_Scanner._feed_from)
_WINDOW = 1024  # bytes after a hit line's start searched for the next hits in a copy (_needle_lines)


def parse_text(text: str, source: str = "import", *, year: int | None = None,
               unread: Unread | None = None) -> list[OomKill]:
    """All kills in a log held in a string, feeding every line (for small inputs and tests).

    Text pasted from anywhere is read (Decoder); `unread`, when given, collects the lines
    holding a kill's words that could not be read, with their line numbers."""
    parser = OomParser(year=year, lenient=True, unread=unread)
    kills: list[OomKill] = []
    text = export_in_time_order(text) or text  # an export listed newest first, put back in time order
    for number, raw in enumerate(text.splitlines(), 1):
        kills += parser.feed(KernelLine(text=raw, source=source, wrapped=True), line_no=number)
    return kills + parser.flush()


def iter_kills(stream: BinaryIO, source: str, *, year: int | None = None,
               chunk_size: int = _CHUNK, unread: Unread | None = None,
               progress: Callable[[int], object] | None = None, workers: int = 1) -> Iterator[OomKill]:
    """The kills in a binary log stream of any size, reading only the reports around kills.

    Gives what feeding every line would (for reports that start less than 4 MB before
    their kill line): lines without a kill word are skipped unless they belong to a report
    that leads to one. A regular file is searched where it lies (mapped, no copy); any
    other stream is read `chunk_size` bytes at a time (a file is searched 8 MB at a time
    at most). `progress`, when given, is called
    with the count of bytes each step got through. `workers=2` searches the second half of
    a mapped file in a forked process while this one searches the first half and reads
    every report, in order (the same kills; one process per core). `unread`, when given,
    collects the lines holding a kill's words that could not be read, with their byte
    offsets (line_numbers() turns them into line numbers by reading the input again).
    Raises LogShrank when a mapped file is found shorter than it was mapped.
    """
    for item in iter_kills_marked(stream, source, year=year, chunk_size=chunk_size, unread=unread,
                                  progress=progress, workers=workers):
        if not isinstance(item, Reached):
            yield item


class Reached(int):
    """A byte offset of the input before which every kill was given, the parser idle there:
    reading may resume at it with a fresh parser. `size`: a mapped file's size when mapped."""

    size: int | None = None


class Idle(int):
    """A byte offset where a reader of a part of the log (iter_part) had fed its parser
    through the line before it and left it resumable (OomParser.resumable: holding
    nothing, or only a report that line opened); `key`: what the parser remembers and
    the kill line the feed still has to reach. Two readers at one offset with equal keys
    read on alike from there."""

    key: Any = None


class LogShrank(OSError):
    """A mapped log is shorter than when it was mapped (truncated while read: logrotate's
    copytruncate); the kills given since the last Reached may be incomplete."""


def iter_kills_marked(stream: BinaryIO, source: str, *, year: int | None = None,
                      chunk_size: int = _CHUNK, unread: Unread | None = None,
                      progress: Callable[[int], object] | None = None, workers: int = 1,
                      map_file: bool = True, at: int = 0) -> Iterator[OomKill | Reached]:
    """iter_kills, with a Reached offset wherever the parser is idle (after each stretch):
    where a reader killed by a shrinking file can go on from. `map_file=False` reads a
    regular file with read() too (which a truncation only cuts short, never kills); `at`:
    the input's byte offset of the stream's position (read on from there), for offsets."""
    scanner = _Scanner(OomParser(year=year, lenient=True, unread=unread), source, progress)
    mapped = _map(stream) if map_file else None
    if mapped is None:
        scanner.base = at
        yield from scanner.run(stream, chunk_size)
        return
    view, start = mapped
    try:
        yield from scanner.run_mapped(view, start, min(chunk_size, _SEGMENT), workers)
    finally:
        view.close()


def map_log(stream: BinaryIO) -> tuple[mmap.mmap, int] | None:
    """A regular log's map from the stream's position, and that position (None: not
    mapped, read it with iter_kills_marked): two readers forked after it share it."""
    return _map(stream)


def split_point(view: mmap.mmap, start: int, share: float = 0.5) -> int | None:
    """Where a second reader of a mapped log starts (iter_part): the start of the line at
    `share` of [start, end) (the first part's), or None for a log too small to be worth a
    second process."""
    size = len(view)
    if size - start < _SPLIT_AT_LEAST:
        return None
    cut = view.find(b"\n", start + int((size - start) * share))
    return cut + 1 if 0 <= cut < size - 1 else None


def iter_part(view: mmap.mmap, start: int, split: int, source: str, *, year: int | None = None,
              unread: Unread | None = None, progress: Callable[[int], object] | None = None,
              handoff: Callable[[Idle], bool] | None = None) -> Iterator[OomKill | Reached | Idle]:
    """The kills of one of two parts of a mapped log, which two processes read at once.

    The second part (handoff None) is read from `split` (a line's start) to the end, with
    an Idle mark at each of its first IDLE_MARKS resumable points. The first is read from
    `start`; past `split` it goes on as one reader would and asks handoff(mark) at each
    Idle mark of its own: True ends it there, and the second's kills after its mark equal
    to that one (offset and key) are the rest of the log's (the two read on alike from it).
    No kill is lost or given twice at the split, whatever straddles it, and a report
    begun before it is read whole by the first. Without a handoff the first reads to the
    end. `progress` counts the bytes of this part only (before `split`, or from it)."""
    scanner = _Scanner(OomParser(year=year, lenient=True, unread=unread), source, progress)
    yield from scanner.run_part(view, start, split, handoff)


# The Idle marks the second reader gives (points the first may hand over at): the two
# agree once both read a report from its start and the second has seen what the first
# remembers that can still matter (the user-space killers' last 32), within some tens of
# kills past the split.
IDLE_MARKS = 512


def line_numbers(stream: BinaryIO, unread: Unread) -> None:
    """Give the unread lines found by byte offset their line numbers, reading `stream` (the
    same input, from its start) only as far as the last of them."""
    wanted = sorted({u.offset for u in unread.first if u.offset is not None and u.line is None})
    if not wanted:
        return
    numbers: dict[int, int] = {}
    seen, lines, block = 0, 0, 1 << 20
    for offset in wanted:
        while seen < offset:
            data = stream.read(min(block, offset - seen))
            if not data:
                break
            lines += data.count(b"\n")
            seen += len(data)
        numbers[offset] = lines + 1
    unread.first = [dataclasses.replace(u, line=numbers.get(u.offset, u.line)) if u.offset is not None else u
                    for u in unread.first]


Buffer = bytearray | mmap.mmap
Line = bytes | bytearray  # a line copied out of a Buffer (a bytearray's slice is one)


class _Scanner:
    """Finds kill lines a stretch at a time and feeds the parser the reports around them."""

    def __init__(self, parser: OomParser, source: str, progress: Callable[[int], object] | None) -> None:
        self.parser = parser
        self.source = source
        self.progress = progress
        self.buffer: Buffer = bytearray()
        self.base = 0  # the input's byte offset of buffer[0]
        self.position = 0  # everything before it was fed to the parser, or cannot matter
        self.released = 0  # of a mapped file: the pages before it were let go
        self.marking = False  # Idle marks wanted (iter_part)
        # One KernelLine for every line fed, its text set in place (through its slot: the
        # class is frozen). The parser copies what it keeps of a line (source, times) into a
        # Stamp and keeps no line; a new KernelLine a line (nine slots, each set through the
        # frozen class's __setattr__) cost a microsecond: 4% of reading a log dense with kills.
        self.line = KernelLine(text="", source=source, wrapped=True)

    def _reached(self, offset: int, size: int | None = None) -> Iterator[Reached]:
        """A Reached mark at `offset` if the parser holds nothing there."""
        if not self.parser.collecting and not self.parser.pending:
            mark = Reached(offset)
            mark.size = size
            yield mark

    def run(self, stream: BinaryIO, chunk_size: int) -> Iterator[OomKill | Reached]:
        """Read a stream chunk by chunk, keeping up to _LOOKBACK bytes before each chunk."""
        buffer = self.buffer = bytearray(_LOOKBACK + chunk_size)
        kept = 0  # bytes at the front of the buffer carried over from the last chunk
        scanned = 0  # within them, where the search for kill lines resumes
        while True:
            if len(buffer) < kept + chunk_size:  # a line longer than a chunk
                buffer.extend(bytes(kept + chunk_size - len(buffer)))
            read = _read_into(stream, buffer, kept, chunk_size)
            if self.progress is not None and read:
                self.progress(read)
            size = kept + read
            end = buffer.rfind(b"\n", 0, size) + 1 if read else size
            with _searcher(buffer) as search:  # (the buffer is resized only at the loop's top)
                yield from self._feed_found(search, max(scanned, self.position), end)
            if not read:
                break
            yield from self._reached(self.base + end)
            # Carry the unfinished last line, and up to _LOOKBACK bytes of whole lines
            # before it where the next chunk's first kill may find its report's beginning.
            low = end - _LOOKBACK
            start = max(self.position, buffer.find(b"\n", low - 1, end) + 1 if low > 0 else 0)
            kept, scanned, self.position = size - start, end - start, 0
            buffer[:kept] = buffer[start:size]
            self.base += start
        yield from self.parser.flush()

    def run_mapped(self, view: mmap.mmap, start: int, segment: int, workers: int) -> Iterator[OomKill | Reached]:
        """Search a mapped file `segment` bytes at a time (in two processes with workers=2)."""
        self.buffer, self.base, self.position, self.released = view, -start, start, 0
        bounds = _segments(view, start, segment)
        yield from self._reached(start, len(view))
        with contextlib.closing(_segment_kill_lines(view, bounds, workers)) as segments, _searcher(view) as search:
            for low, high, lines in segments:
                _check_size(view, high)
                if lines is None:  # this process's own to search
                    yield from self._feed_found(search, low, high)
                else:
                    yield from self._feed_lines(lines, high)
                yield from self._reached(high)
                if self.progress is not None:
                    self.progress(high - low)
                # Pages searched are let go (they stay in the page cache) once no later
                # kill line's report can start in them: resident size stays bounded.
                self.released = _release(view, self.released, high - _LOOKBACK)
        yield from self.parser.flush()

    def run_part(self, view: mmap.mmap, start: int, split: int,
                 handoff: Callable[[Idle], bool] | None) -> Iterator[OomKill | Reached | Idle]:
        """iter_part: the first part (with a handoff) or the second, `_SEGMENT` bytes at a
        time on the one grid both parts cut (split is a cut)."""
        first = handoff is not None
        begin = start if first else split
        self.buffer, self.base, self.position, self.released = view, -start, begin, 0
        yield from self._reached(begin, len(view))
        marks = 0 if first else IDLE_MARKS
        if not first:
            self.marking = True
            yield self._idle(begin, None)
        with _searcher(view) as search:
            for low, high in [b for b in _segments(view, start, _SEGMENT, split) if b[0] >= begin]:
                _check_size(view, high)
                self.marking = (low >= split) if first else marks > 0
                for item in self._feed_found(search, low, high):
                    if type(item) is not Idle:
                        yield item
                    elif first:
                        if handoff(item):  # type: ignore[misc]  # (first: a handoff)
                            return  # nothing pending to flush: it was resumable there
                    elif marks > 0:
                        marks -= 1
                        self.marking = marks > 0
                        yield item
                yield from self._reached(high)
                if self.progress is not None and (low < split) == first:
                    self.progress(high - low)
                self.released = _release(view, self.released, high - _LOOKBACK)
        yield from self.parser.flush()

    def _idle(self, offset: int, reach: int | None) -> Idle:
        """An Idle mark at `offset` (with what the parser remembers, and the kill line a
        feed still has to reach)."""
        mark = Idle(offset)
        # hashed: the same in both readers (one forked from the other: one hash seed)
        mark.key = hash((self.parser.resumable(), reach if reach is not None and reach >= offset else None))
        return mark

    def _feed_lines(self, lines: list[int], end: int) -> Iterator[Any]:
        """Feed the parser the kill lines starting at `lines` (before `end`), each with
        the report leading to it, and a report running on from the previous stretch.
        While `marking`, an Idle mark wherever a feed left the parser resumable."""
        yield from self._feed_on(end)
        yield from self._feed_kill_lines(lines, end)

    def _feed_found(self, search: _Search, low: int, high: int) -> Iterator[Any]:
        """_feed_lines() of the kill lines in [low, high) (whole lines), looked for a block at
        a time from where the feeds reached: a line a feed went past is not looked for. In a
        log dense with kills each report runs into the next (a kill line is held until the
        line after it), the parser collects from one segment's start to its end, and all but
        the first block go unsearched; where kills are sparse the blocks grow to the segment."""
        yield from self._feed_on(high)
        at, size = max(low, self.position), _BLOCK
        while at < high:
            stop = high if high - at <= size else self.buffer.find(b"\n", at + size - 1, high) + 1 or high
            lines = _kill_lines(self.buffer, search, at, stop)
            yield from self._feed_kill_lines(lines, high)
            at, size = max(stop, self.position), _BLOCK if lines else min(2 * size, _SEGMENT)

    def _feed_on(self, end: int) -> Iterator[Any]:
        """Feed a report running on from the previous stretch (up to `end`)."""
        if self.parser.collecting:
            yield from self._feed_from(self.position, end)
            if self.marking and self.parser.resumable() is not None:
                yield self._idle(self.position, None)

    def _feed_kill_lines(self, lines: list[int], end: int) -> Iterator[Any]:
        """Feed the kill lines starting at `lines` not fed yet, each with the report leading to it."""
        for line_start in lines:
            if line_start < self.position:  # read already, with the report before it
                continue
            start = self._report_start(max(self.position, line_start - _LOOKBACK), line_start)
            yield from self._feed_from(start, end, must_reach=line_start)
            if self.marking and self.parser.resumable() is not None:
                yield self._idle(self.position, None)

    def _report_start(self, low: int, line_start: int) -> int:
        """Where the report (or description) that a kill line ends begins."""
        buffer = self.buffer
        header = latest = buffer.rfind(_HEADER_NEEDLE, low, line_start)
        # "oom-killer" in a task row's name or a cgroup's path ("oom-killer-test.service")
        # comes after the report's own header: the latest that reads as one is taken,
        # else (a header in a form not foreseen here) the latest of all, as before.
        while header >= 0 and not _reads_as_header(buffer, header):
            header = buffer.rfind(_HEADER_NEEDLE, low, header)
        header = latest if header < 0 else header
        if header >= 0:
            return buffer.rfind(b"\n", 0, header) + 1
        openers = [at for at in (buffer.find(n, low, line_start) for n in _OPENER_NEEDLES) if at >= 0]
        return buffer.rfind(b"\n", 0, min(openers)) + 1 if openers else line_start

    def _feed_from(self, start: int, end: int, must_reach: int = 0) -> Iterator[OomKill | Idle]:
        """Feed lines from start: through the one at must_reach, then while they matter.

        Lines are decoded a run of whole lines at a time (_RUN bytes at most) where the run is
        ASCII and holds no zero (most logs): one decode and one split, where each line alone
        cost a search of the mapped file, a slice and a decode. Any other run is fed a line
        at a time."""
        parser, at = self.parser, start
        while at < end and (at <= must_reach or parser.collecting):
            run_end = self.buffer.rfind(b"\n", at, min(end, at + _RUN)) + 1
            run = self.buffer[at:run_end] if run_end > at else b""
            if run and run.isascii() and run.find(b"\0") < 0:
                at = yield from self._feed_run(at, run.decode("ascii").split("\n"), must_reach)
            else:
                at = yield from self._feed_each(at, max(run_end, at + 1), end, must_reach)
        self.position = at

    def _feed_run(self, at: int, texts: list[str], must_reach: int) -> Generator[Any, None, int]:
        """Feed the lines of an ASCII run (`texts`: it split at its newlines, the last piece
        empty) from offset `at` while they matter; the offset reached."""
        parser, feed, line, base = self.parser, self.parser.feed, self.line, self.base
        texts.pop()  # (the run ends with a newline)
        n, count = 0, len(texts)
        while n < count:
            text = texts[n]
            stop = at + len(text) + 1
            _set_text(line, text + "\n")  # (shorter than the run, so than _LINE_BYTES: read whole)
            kills = feed(line, offset=base + at)
            if kills:
                yield from self._given(kills, stop, must_reach)
            at, n = stop, n + 1
            if not (at <= must_reach or parser.collecting):
                break
            if parser.row_after is not None and n < count:
                # rows of a task table after a row: taken in one call (the parser collects on through them)
                rows, width = parser.feed_rows(texts, n, base + at)
                n, at = n + rows, at + width
        return at

    def _given(self, kills: list[Any], stop: int, must_reach: int) -> Iterator[Any]:
        """The kills a line (ending at `stop`) gave, then an Idle mark where a report's header
        gave the last one (nothing of it is left to resume: the reader may be handed over)."""
        yield from kills
        if self.marking and self.parser.resumable() is not None:
            self.position = stop
            yield self._idle(stop, must_reach)

    def _feed_each(self, at: int, limit: int, end: int, must_reach: int) -> Generator[Any, None, int]:
        """Feed the lines from offset `at` one at a time, the first one and then those that
        start before `limit` while they matter; the offset reached."""
        buffer, parser, feed, line, base = self.buffer, self.parser, self.parser.feed, self.line, self.base
        while True:
            stop = buffer.find(b"\n", at, end)
            stop = end if stop < 0 else stop + 1
            if buffer[at] == 0:  # the zeros a copytruncate or a crash left: no part of the line after them
                at = _ZEROS.match(buffer, at, stop).end()  # type: ignore[union-attr]  # (one zero at least)
            # a line is read up to LINE_CHARS characters (4 bytes each at most); the Decoder cuts and counts
            raw = buffer[at:min(stop, at + _LINE_BYTES)].decode("utf-8", "replace")
            _set_text(line, raw)
            kills = feed(line, offset=base + at)
            if kills:
                yield from self._given(kills, stop, must_reach)
            at = stop
            if at >= limit or at >= end or not (at <= must_reach or parser.collecting):
                return at


def _reads_as_header(buffer: Buffer, at: int) -> bool:
    """Whether the "oom-killer" at `at` is a report header's: "X invoked oom-killer" (a
    task's name, 15 bytes at most, cannot hold the words; a unit's name holds no space)
    or "oom-killer: gfp_mask" (2.6 kernels began so)."""
    return buffer[at - 9:at] == b" invoked " or buffer[at + 10:at + 20] == b": gfp_mask"


def _kill_lines(buffer: Buffer, search: _Search, low: int, high: int) -> list[int]:
    """The starts of the lines in [low, high) (whole lines) that are worth reading as kill
    lines, in order: one search pass per needle, then _KILL_LINE on each line hit."""
    hit: dict[int, tuple[Line | Buffer, int, int]] = {}  # a hit line's start -> where it lies (_needle_lines)
    with search.stretch(low, high) as find:
        for needle in _KILL_NEEDLES:
            lowercase = needle == b"kill"
            for line_start, data, start, end, at in _needle_lines(buffer, find, needle, low, high):
                if line_start not in hit and not (lowercase and _oom_kill_only(data, at, start, end)):
                    hit[line_start] = (data, start, end)
    return [line_start for line_start, line in sorted(hit.items())
            if _is_kill_line(*line) or _coloured_kill_line(*line)]


def _needle_lines(buffer: Buffer, find: Callable[[bytes, int], int], needle: bytes, low: int,
                  high: int) -> Iterator[tuple[int, Line | Buffer, int, int, int]]:
    """Each line in [low, high) holding `needle`, in order: its start, then where it lies
    (bytes holding it, and its start and end in them, its newline included) and where in
    them the needle first stands in it.

    A hit's line and the _WINDOW bytes from its start are copied out at once, and the hits
    that follow are looked for in that copy first (where kills are close, the next ones are
    in it): a method of the mapped file, or a call into the C library, costs a microsecond
    or so before it reads a byte, one of bytes a fraction of that. Past the window `find`
    goes on. (The window is small: where hits are far apart, searching it is time lost.) A
    line running past its window is given in `buffer` itself: a line may be of any length,
    and no more than a window is ever copied (review R19)."""
    at = find(needle, low)
    while at >= 0:
        start = buffer.rfind(b"\n", low, at) + 1 or low
        stop = min(high, start + _WINDOW)
        window = buffer[start:stop]
        line_start, at = 0, at - start
        while True:
            line_end = window.find(b"\n", at) + 1
            if not line_end:  # the line runs to the window's end
                if stop < high:
                    line_end = buffer.find(b"\n", start + at, high) + 1 or high  # (on past the window)
                    yield start + line_start, buffer, start + line_start, line_end, start + at
                    at = find(needle, line_end) if line_end < high else -1
                else:
                    yield start + line_start, window, line_start, len(window), at
                    at = -1
                break
            yield start + line_start, window, line_start, line_end, at
            at = window.find(needle, line_end)
            if at < 0:  # none left in the window (one may straddle its end)
                at = find(needle, max(start + line_end, stop - len(needle) + 1)) if stop < high else -1
                break
            line_start = window.rfind(b"\n", line_end, at) + 1 or line_end


def _oom_kill_only(data: Line | Buffer, at: int, start: int, end: int) -> bool:
    """Whether the lowercase kill word at `at` in the line [start, end) of `data`, and each
    after it, is the kernel's "oom-killer" or "oom-kill:" (a report's header, its constraint
    line), and the line holds neither of the texts by which a way of _KILL_LINE_WAYS matches
    without a kill word of its own ("Marked ", "the command: "): no way can then match by
    these words, and the line is not looked at for them (a log dense with kills has two such
    lines a kill). One with "Kill" or " SIG" is found by their own passes."""
    while at >= 0:
        if at - 4 < start or data[at - 4:at] != b"oom-" or (
                data[at + 4:at + 5] != b":" and data[at + 4:at + 6] != b"er"):
            return False
        at = data.find(b"kill", at + 4, end)
    return data.find(b"Marked ", start, end) < 0 and data.find(b"the command: ", start, end) < 0


def _is_kill_line(data: Line | Buffer, start: int, end: int) -> bool:
    """Whether _KILL_LINE matches in [start, end) of `data`: each of its ways tried only where
    the text it needs is there. (`bytes in bytes` first tries the needle as an int: an
    exception made and dropped; find() is asked.)"""
    for needed, way in _KILL_LINE_TRIED:  # noqa: SIM110 -- (any() of a generator: a frame resumed per way)
        if data.find(needed, start, end) >= 0 and way.search(data, start, end) is not None:
            return True
    return False


def _segments(view: mmap.mmap, start: int, segment: int, split: int | None = None) -> list[tuple[int, int]]:
    """[low, high) stretches of about `segment` bytes from `start` to the end, cut after a
    newline (and at `split`, a line's start, where given)."""
    bounds, low, size = [], start, len(view)
    while low < size:
        cut = view.find(b"\n", min(low + segment, size) - 1)
        high = size if cut < 0 else cut + 1
        if split is not None and low < split < high:
            high = split
        bounds.append((low, high))
        low = high
    return bounds


def _segment_kill_lines(view: mmap.mmap, bounds: list[tuple[int, int]],
                        workers: int) -> Generator[tuple[int, int, list[int] | None], None, None]:
    """Per segment in order, its bounds and its kill lines (_kill_lines), or None for the
    caller to search. With workers=2 a forked process searches the second half of the
    segments and sends its findings through a pipe as this process, having read the first
    half, reaches them."""
    half = (len(bounds) + 1) // 2
    if workers < 2 or len(bounds) < 2 or not hasattr(os, "fork"):
        for low, high in bounds:
            yield low, high, None  # searched by the caller as it feeds (_Scanner._feed_found)
        return
    readable, writable = os.pipe()
    child = os.fork()
    if child == 0:  # search the second half, send each segment's findings, leave at once
        os.close(readable)
        os._exit(_search_for_parent(view, bounds[half:], writable))
    os.close(writable)
    try:
        for low, high in bounds[:half]:
            yield low, high, None
        with os.fdopen(readable, "rb") as pipe:
            for low, high in bounds[half:]:
                yield low, high, _received_lines(pipe)
    finally:
        with contextlib.suppress(OSError):
            os.close(readable)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)  # gone already when all was received; else not needed now
        os.waitpid(child, 0)


def _search_for_parent(view: mmap.mmap, bounds: list[tuple[int, int]], pipe: int) -> int:
    """In the forked searcher: each segment's kill lines to the pipe, a count and the offsets."""
    status = 1
    try:
        with contextlib.suppress(AttributeError, OSError):  # Linux: end with the parent (PR_SET_PDEATHSIG)
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)
        released = 0
        with _searcher(view) as search:
            for low, high in bounds:
                _check_size(view, high)
                found = array.array("q", _kill_lines(view, search, low, high))
                data = array.array("q", [len(found)]).tobytes() + found.tobytes()
                with memoryview(data) as left:
                    while left:
                        left = left[os.write(pipe, left):]
                released = _release(view, released, high)
        status = 0
    except BaseException:  # noqa: BLE001 -- the parent sees the pipe end early and says so
        pass
    return status


def _received_lines(pipe: BinaryIO) -> list[int]:
    """One segment's kill lines as _search_for_parent sent them."""
    head = pipe.read(8)
    count = array.array("q", head)[0] if len(head) == 8 else -1
    data = pipe.read(8 * count) if count > 0 else b""
    if count < 0 or len(data) != 8 * count:
        # The searching process died: the file shrank under the mapping (SIGBUS), or it was killed.
        raise LogShrank(errno.EIO, "the log could not be searched to its end (did it shrink while it was read?)")
    return array.array("q", data).tolist()


# A test's hook, called after each size check (to truncate the file where a check cannot see it).
_after_size_check: Callable[[int], object] | None = None


def _check_size(view: mmap.mmap, high: int) -> None:
    """Raise LogShrank if the mapped file now ends before `high`: touching a mapped page
    past a file's end raises SIGBUS, which kills the process. (A truncation after this
    check still does: the caller reads in a child, and goes on with read() if it dies.)"""
    try:
        size = view.size()  # fstat(2) of the mapped file
    except OSError:
        size = -1
    if size < high:
        raise LogShrank(errno.EIO, f"the log shrank to {max(size, 0)} bytes while it was read")
    if _after_size_check is not None:
        _after_size_check(high)


def _map(stream: BinaryIO) -> tuple[mmap.mmap, int] | None:
    """A regular file's map from the stream's position, or None (a pipe, a decompressor,
    an empty or small rest): searching it where it lies saves copying every byte."""
    if not isinstance(stream, (io.BufferedReader, io.FileIO)):
        return None
    try:
        info = os.fstat(stream.fileno())
        start = stream.tell()
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size - start < _MAP_AT_LEAST:
        return None
    try:
        # Copy-on-write and never written: memmem needs a writable buffer's address.
        view = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_COPY)
    except (OSError, ValueError):
        return None
    with contextlib.suppress(AttributeError, OSError):
        view.madvise(mmap.MADV_SEQUENTIAL)
    return view, start


def _release(view: mmap.mmap, released: int, below: int) -> int:
    """Let go of the mapped pages from `released` to `below` (they stay in the page
    cache, and read again from it if touched); returns the new mark."""
    below -= below % mmap.PAGESIZE
    if below <= released:
        return released
    with contextlib.suppress(AttributeError, OSError, ValueError):
        view.madvise(mmap.MADV_DONTNEED, released, below - released)
    return below


def _coloured_kill_line(data: Line | Buffer, start: int, end: int) -> bool:
    """A kill line that grep --color or dmesg --color cut with colour escapes."""
    if data.find(b"\x1b", start, end) < 0:
        return False
    return _KILL_LINE.search(_ANSI_BYTES.sub(b"", bytes(data[start:end]))) is not None


def _python_find(buffer: Buffer, needle: bytes, start: int, end: int) -> int:
    return buffer.find(needle, start, end)


def _libc_functions() -> tuple[Any, Any, Any] | None:
    """The C library's memmem(3), strstr(3) and memchr(3), or None where there are none."""
    try:
        libc = ctypes.CDLL(None)  # the process's C library, no file lookup
        memmem, strstr, memchr = libc.memmem, libc.strstr, libc.memchr
    except (AttributeError, OSError, TypeError):  # no such function, or no C library to ask
        return None
    memmem.restype = strstr.restype = memchr.restype = ctypes.c_void_p
    memmem.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)
    strstr.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
    memchr.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
    return memmem, strstr, memchr


_LIBC = _libc_functions()


def _libc_finder() -> Callable[[Buffer, bytes, int, int], int]:
    """bytearray.find through the C library's memmem(3) where there is one.

    CPython's own search scans about 1.5 GB/s for needles as short as "Kill"; glibc's
    memmem about 4 GB/s. Same answers (the first occurrence in [start, end));
    bytearray.find where libc has none.
    """
    if _LIBC is None:
        return _python_find

    def find(buffer: Buffer, needle: bytes, start: int, end: int) -> int:
        with _searcher(buffer) as search:
            return search.find(needle, start, end)

    return find


class _Search:
    """Searches one buffer, pinned (it cannot move or be resized) while this lives: the
    address is taken once, not per search."""

    def __init__(self, buffer: Buffer) -> None:
        self.buffer = buffer
        self.libc = _LIBC if len(buffer) else None  # an empty buffer has no address
        self.pinned = ctypes.c_char.from_buffer(buffer) if self.libc is not None else None
        self.base = ctypes.addressof(self.pinned) if self.pinned is not None else 0

    def find(self, needle: bytes, start: int, end: int) -> int:
        """The first occurrence of needle in [start, end), or -1 (memmem)."""
        if self.libc is None:
            return self.buffer.find(needle, start, end)
        if end - start < len(needle):
            return -1
        at = self.libc[0](self.base + start, end - start, needle, len(needle))
        return at - self.base if at else -1

    @contextlib.contextmanager
    def stretch(self, low: int, high: int) -> Iterator[Callable[[bytes, int], int]]:
        """find(needle, start): the first occurrence in [start, high), for starts from `low`.

        glibc's strstr(3) compares 16 bytes at a time (SSE2) and scans about four times
        as fast as its memmem for needles as short as ours, but stops at a NUL byte: it
        is used where [low, high) holds none, with a NUL written at `high` for the while
        (the buffer is a private copy-on-write map or our own bytearray, never written
        back) and the byte put back after; elsewhere memmem, e.g. on the zeros a
        copytruncate leaves at the head of a log.
        """
        buffer = self.buffer
        libc = self.libc
        if libc is None or high >= len(buffer) or libc[2](self.base + low, 0, high - low):
            yield lambda needle, start: self.find(needle, start, high)
            return
        strstr, base = libc[1], self.base

        def find(needle: bytes, start: int) -> int:
            at = strstr(base + start, needle)
            return at - base if at else -1

        saved = buffer[high]
        buffer[high] = 0
        try:
            yield find
        finally:
            buffer[high] = saved

    def close(self) -> None:
        self.pinned = None  # the buffer's export ends here


@contextlib.contextmanager
def _searcher(buffer: Buffer) -> Iterator[_Search]:
    """A _Search of `buffer` for the block's while."""
    search = _Search(buffer)
    try:
        yield search
    finally:
        search.close()


_find = _libc_finder()


def _read_into(stream: BinaryIO, buffer: bytearray, start: int, count: int) -> int:
    """Read up to count bytes into buffer at start; fewer only at the end of the stream."""
    total = 0
    with memoryview(buffer) as view:
        while total < count:
            got = stream.readinto(view[start + total:start + count])  # type: ignore[attr-defined]
            if not got:
                break
            total += got
    return total

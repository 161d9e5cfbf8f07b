"""The byte scanner behind `import`: the kills in a log of any size, at the speed of grep.

It finds the lines holding a kill word with a plain substring search (glibc memmem where
there is one) and feeds the parser only the reports around them, giving the same kills as
feeding every line (for reports that span less than `_LOOKBACK` bytes).
"""

from __future__ import annotations

import ctypes
import dataclasses
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import BinaryIO

from watchdog_oom.model import KernelLine, OomKill
from watchdog_oom.parse.kernel import OomParser, Unread
from watchdog_oom.parse.wrappers import LINE_CHARS

# Every kill line holds one of these: "Kill" (kernel "Killed process" / "Kill process",
# earlyoom 0.x-1.1 "Killing process", systemd-oomd "Killed /…"), " SIG" (earlyoom
# "sending SIGTERM", nohang "Send(ing) SIGTERM") or "kill" (systemd-oomd 254+ "Marked /…
# for killing", earlyoom 1.2 "killing process", PID 1's "systemd-oomd killed N
# process(es)"). Each needle is one memmem pass over the input: three, no more, keep the
# scan near grep's speed; _KILL_LINE then says which hits are worth reading.
# Every recogniser's needles hold one of these (a test checks it).
KILL_NEEDLES = (b"Kill", b" SIG", b"kill")
_KILL_NEEDLES = KILL_NEEDLES
# What a line with one of them must hold to be worth reading: systemd's "Killing process
# N (x) with signal SIGKILL" and "Received SIGHUP" are common and are not kills. The
# lookahead is bounded (a comm is 15 bytes), so a line of repeated words stays linear.
_KILL_LINE = re.compile(
    rb"Kill(?:ed process|ed (?:/|\xe2\x80\xa6|\.\.\.)| process"
    rb"|ing process (?:'|&#x27;|&#39;|\d+ (?!.{0,80}? with signal SIG)))"
    rb"|[Ss]end(?:ing)? SIG|Marked (?:/|\xe2\x80\xa6|\.\.\.)|killing process \d+ (?:\"|&quot;|\\\")|oomd killed \d"
)
_ANSI_BYTES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]")
# Lines that open a report or a user-space killer's description, looked for only in the
# stretch before a kill line: the latest kernel header, else the earliest other opener.
_HEADER_NEEDLE = b"oom-killer"
_OPENER_NEEDLES = (b"Task in ", b"Tasks in ", b"oom-kill:", b"uid  tgid", b"emory! ",
                   b"Victim status", b"highest badness")
_CHUNK = 32 << 20
_LOOKBACK = 4 << 20  # how far before a kill line its report may begin (~30 000 tasks)


def undo_future_year(kill: OomKill, reference: datetime) -> OomKill:
    """A syslog date has no year, so the caller guessed `reference`'s year; a kill that
    would then lie in the future was logged the year before (a December line read in
    January). `reference` is naive local time, like the syslog date."""
    if kill.time is not None and kill.time.tzinfo is None and kill.time > reference + timedelta(days=1):
        try:
            return kill.replace(time=kill.time.replace(year=kill.time.year - 1))
        except ValueError:  # 29 February
            return kill.replace(time=kill.time.replace(year=kill.time.year - 1, day=28))
    return kill


def parse_text(text: str, source: str = "import", *, year: int | None = None,
               unread: Unread | None = None) -> list[OomKill]:
    """All kills in a log held in a string, feeding every line (for small inputs and tests).

    Text pasted from anywhere is read (Decoder); `unread`, when given, collects the lines
    holding a kill's words that could not be read, with their line numbers."""
    parser = OomParser(year=year, lenient=True, unread=unread)
    kills: list[OomKill] = []
    for number, raw in enumerate(text.splitlines(), 1):
        kills += parser.feed(KernelLine(text=raw, source=source, wrapped=True), line_no=number)
    return kills + parser.flush()


def iter_kills(stream: BinaryIO, source: str, *, year: int | None = None,
               chunk_size: int = _CHUNK, unread: Unread | None = None) -> Iterator[OomKill]:
    """The kills in a binary log stream of any size, reading only the reports around kills.

    Gives what feeding every line would (for reports that start less than 4 MB before
    their kill line) in about twice the time `grep -c` takes: lines without a kill word
    are skipped unless they belong to a report that leads to one. `unread`, when given,
    collects the lines holding a kill's words that could not be read, with their byte
    offsets (line_numbers() turns them into line numbers by reading the input again).
    """
    scanner = _Scanner(OomParser(year=year, lenient=True, unread=unread), source, chunk_size)
    yield from scanner.run(stream)


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


class _Scanner:
    """Finds kill lines in big chunks and feeds the parser the reports around them."""

    def __init__(self, parser: OomParser, source: str, chunk_size: int) -> None:
        self.parser = parser
        self.source = source
        self.chunk_size = chunk_size
        self.buffer = bytearray(_LOOKBACK + chunk_size)
        self.base = 0  # the input's byte offset of buffer[0]

    def run(self, stream: BinaryIO) -> Iterator[OomKill]:
        kept = 0  # bytes at the front of the buffer carried over from the last chunk
        scanned = 0  # within them, where the search for kill lines resumes
        self.position = 0  # everything before it was fed to the parser, or cannot matter
        while True:
            if len(self.buffer) < kept + self.chunk_size:  # a line longer than a chunk
                self.buffer.extend(bytes(kept + self.chunk_size - len(self.buffer)))
            read = _read_into(stream, self.buffer, kept, self.chunk_size)
            size = kept + read
            end = self.buffer.rfind(b"\n", 0, size) + 1 if read else size
            yield from self._scan(scanned, end)
            if not read:
                break
            # Carry the unfinished last line, and up to _LOOKBACK bytes of whole lines
            # before it where the next chunk's first kill may find its report's beginning.
            low = end - _LOOKBACK
            start = max(self.position, self.buffer.find(b"\n", low - 1, end) + 1 if low > 0 else 0)
            kept, scanned, self.position = size - start, end - start, 0
            self.buffer[:kept] = self.buffer[start:size]
            self.base += start
        yield from self.parser.flush()

    def _scan(self, scanned: int, end: int) -> Iterator[OomKill]:
        """Feed the parser the kill lines in [scanned, end) and the reports leading to them."""
        buffer = self.buffer
        if self.parser.collecting:  # a report runs on from the previous chunk
            yield from self._feed_from(self.position, end)
        cursor = max(scanned, self.position)  # where the search for kill words resumes
        found = {needle: _find(buffer, needle, cursor, end) for needle in _KILL_NEEDLES}
        while True:
            for needle, at in found.items():
                if 0 <= at < cursor:
                    found[needle] = _find(buffer, needle, cursor, end)
            hits = [at for at in found.values() if at >= 0]
            if not hits:
                return
            line_start = buffer.rfind(b"\n", 0, min(hits)) + 1
            line_end = buffer.find(b"\n", line_start, end)
            cursor = end if line_end < 0 else line_end + 1
            if _KILL_LINE.search(buffer, line_start, cursor) or _coloured_kill_line(buffer, line_start, cursor):
                start = self._report_start(max(self.position, line_start - _LOOKBACK), line_start)
                yield from self._feed_from(start, end, must_reach=line_start)
                cursor = max(cursor, self.position)

    def _report_start(self, low: int, line_start: int) -> int:
        """Where the report (or description) that a kill line ends begins."""
        buffer = self.buffer
        header = buffer.rfind(_HEADER_NEEDLE, low, line_start)
        if header >= 0:
            return buffer.rfind(b"\n", 0, header) + 1
        openers = [at for at in (buffer.find(n, low, line_start) for n in _OPENER_NEEDLES) if at >= 0]
        return buffer.rfind(b"\n", 0, min(openers)) + 1 if openers else line_start

    def _feed_from(self, start: int, end: int, must_reach: int = 0) -> Iterator[OomKill]:
        """Feed lines from start: through the one at must_reach, then while they matter."""
        buffer, parser, at = self.buffer, self.parser, start
        while at < end and (at <= must_reach or parser.collecting):
            stop = buffer.find(b"\n", at, end)
            stop = end if stop < 0 else stop + 1
            # a line is read up to LINE_CHARS characters (4 bytes each at most); the Decoder cuts and counts
            raw = buffer[at:min(stop, at + 4 * LINE_CHARS + 1)].decode("utf-8", "replace")
            yield from parser.feed(KernelLine(text=raw, source=self.source, wrapped=True), offset=self.base + at)
            at = stop
        self.position = at


def _coloured_kill_line(buffer: bytearray, start: int, end: int) -> bool:
    """A kill line that grep --color or dmesg --color cut with colour escapes."""
    if buffer.find(b"\x1b", start, end) < 0:
        return False
    return _KILL_LINE.search(_ANSI_BYTES.sub(b"", bytes(buffer[start:end]))) is not None


def _python_find(buffer: bytearray, needle: bytes, start: int, end: int) -> int:
    return buffer.find(needle, start, end)


def _libc_finder() -> Callable[[bytearray, bytes, int, int], int]:
    """bytearray.find through the C library's memmem(3) where there is one.

    CPython's own search scans about 2 GB/s for needles as short as "Kill"; glibc's
    memmem about 6 GB/s, which is what keeps a 1 GB import near the speed of grep. Same
    answers (the first occurrence in [start, end)); bytearray.find where libc has none.
    """
    try:
        memmem = ctypes.CDLL(None).memmem  # the process's C library, no file lookup
    except (AttributeError, OSError, TypeError):  # no memmem, or no C library to ask
        return _python_find
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)

    def find(buffer: bytearray, needle: bytes, start: int, end: int) -> int:
        if end - start < len(needle):
            return -1
        pinned = ctypes.c_char.from_buffer(buffer)  # the buffer cannot move while held
        base = ctypes.addressof(pinned)
        at = memmem(base + start, end - start, needle, len(needle))
        return at - base if at else -1

    return find


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

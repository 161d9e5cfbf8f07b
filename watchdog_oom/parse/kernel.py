"""Kernel log lines in, OomKill records out: the parser's front, OomParser.

A line is decoded (wrappers.py: JSON, quoted-printable, rsyslog escapes, mail quotes),
cut into messages, located and rejoined where a wrap cut a kill line (rejoin.py), then
each message goes to the reader that knows it: the kernel's OOM report (report.py) or a
user-space killer (userspace.py). A line holding a kill's words that none of them reads
is counted (unread.py). Where messages start and whether they read whole: anchors.py.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING

from watchdog_oom.model import KernelLine, OomKill
from watchdog_oom.parse.anchors import (
    ANCHOR_START,
    RECOGNISERS,
    counted_unread,
    may_anchor,
    refusal,
)
from watchdog_oom.parse.rejoin import Rejoiner, Where
from watchdog_oom.parse.report import (
    MEMORY_INFO_LINE_CHARS,
    MEMORY_INFO_LINES,
    PAGE_KB,
    REPORT_LINES,
    TASK_TABLE_ROWS,
    ReportReader,
)
from watchdog_oom.parse.shapes import LineUnwrapper, Unwrapped
from watchdog_oom.parse.unread import UNREAD_CHARS, Unread, UnreadLine
from watchdog_oom.parse.userspace import UserspaceKillers
from watchdog_oom.parse.values import as_int
from watchdog_oom.parse.wrappers import LINE_CHARS, Decoder, Stamp, pieces

if TYPE_CHECKING:  # the lane is loaded by the lenient parser that takes it (import), not by the daemon's
    from watchdog_oom.parse.express import Express
    from watchdog_oom.parse.lane import FastLane

__all__ = [
    "MEMORY_INFO_LINES",
    "MEMORY_INFO_LINE_CHARS",
    "PAGE_KB",
    "RECOGNISERS",
    "REPORT_LINES",
    "TASK_TABLE_ROWS",
    "UNREAD_CHARS",
    "OomParser",
    "Unread",
    "UnreadLine",
]


def _uptime_usec(stamp: str) -> int | None:
    """Microseconds of a dmesg uptime "[ 1234.567890] "."""
    seconds, _, fraction = stamp.strip("[] ").partition(".")
    return as_int(seconds + fraction[:6].ljust(6, "0")) if seconds.isdigit() and fraction.isdigit() else None


def _record_pieces(line: KernelLine, text: str) -> list[tuple[str, str]]:
    """wrappers.pieces() of a line's message. A live source's bare message (kmsg, journald) is one
    record as the kernel or journald delivered it: kmsg escapes a newline itself ("\x0a"), journald
    keeps a record whole, so a "\n", "#012" or glued "[ uptime] " in it is text of that record (a
    cgroup's name, a victim's command line), never the start of another (review R38)."""
    return pieces(text) if line.wrapped else [(text, "")]


def _fast_lane(parser: OomParser, year: int | None) -> FastLane:
    """The lenient parser's fast lane (import's), its module loaded when the first is made: the
    live sources' strict parser never takes the lane, so the daemon holds none of its code."""
    from watchdog_oom.parse.lane import FastLane

    return FastLane(parser, year)


class OomParser:
    """Joins kernel log lines into OomKill records, one feed() at a time.

    A kill is returned by the feed() of its `Killed process` line (or of the user-space
    killer's line). A `Kill process … or sacrifice child` selection that no `Killed
    process` line follows is returned when the next report starts or by flush(), which a
    caller should invoke when its source has been quiet for a moment.
    """

    def __init__(self, *, year: int | None = None, lenient: bool = False,
                 unread: Unread | None = None, fast: bool = True) -> None:
        self._year = year
        # fast=False: every line's wrapper found anew (no shape remembered from the line before),
        # the reference the differential tests compare the fast paths with (tests/test_parse_shapes.py)
        self._fast = fast
        self._unwrapper = LineUnwrapper(year=year, fast=fast)
        self._reports = ReportReader()
        self._users = UserspaceKillers()
        # lenient: text pasted from anywhere (import): decode enclosures, find the kernel's
        # words wherever they start in a line, join lines wrapped after them. Strict (the
        # live sources): a message is read only where its source put it.
        self._lenient = lenient
        self._decoder = Decoder()
        self._joiner = Rejoiner(self._take_checked, lenient=lenient, year=year)
        self.unread = unread if unread is not None else Unread()
        self._lane = _fast_lane(self, year) if fast and lenient else None
        # set where the express has read a task-table row: feed() asks it of the next line first,
        # and the scanner hands it the lines that follow in one call (feed_rows())
        self.row_after: Express | None = None

    @property
    def pending(self) -> bool:
        """True when flush() would return a kill (a selection still awaiting its victim)."""
        return self._joiner.holding or self._reports.selecting or self._users.pending

    def resumable(self) -> tuple | None:
        """None unless the parser holds nothing, or nothing but a report its last line
        opened; then what it remembers beyond that (import's two readers, parse/scan.py,
        hand over where theirs are equal: from there they read on alike)."""
        if self._joiner.holding or self._decoder.holding or self._users.collecting or self._users.pending:
            return None
        reports = self._reports.resumable()
        # (not compared: the rejoiner's count of line widths, a terminal's width once one
        # dominates; it sees far more lines than kills, and what one half showed of it
        # rarely decides a line of the other)
        return None if reports is None else (reports, self._users.memory())

    @property
    def collecting(self) -> bool:
        """True while a report or a user-space killer's description is being assembled."""
        report = self._reports._report  # (the scanner asks it after every line: ReportReader.collecting inlined)
        return (report is not None and not report.killed) or bool(
            self._users.collecting
            or self._joiner.holding
            or self._decoder.holding
        )

    def feed(self, line: KernelLine, *, line_no: int | None = None, offset: int | None = None) -> list[OomKill]:
        """Take one log line; return the kills it completes (usually none). `line_no` or
        `offset` say where it was, for the list of lines that could not be read."""
        joiner = self._joiner
        joiner.where = (line_no, offset)
        text = line.text
        next_row = self.row_after
        if next_row is not None:  # the line after a task-table row the express read (express.py)
            if line.wrapped and next_row.next_row(text):
                return []
            self.row_after = None
        if text[:1] == "\x00":  # zeros a copytruncate or a crash left, then the line: no part of it
            text = text.lstrip("\x00")
            line = dataclasses.replace(line, text=text)
        if not line.wrapped and not self._lenient and not joiner.holding and len(text) <= LINE_CHARS and (
                "\n" not in text and "#01" not in text and text.find("[", 1) < 0):
            # The live sources' common case: one kernel message, as the source delivered it.
            kills = joiner.hold_or_take(text.lstrip(), Stamp(line, line.time, line.mono_usec), None, len(text))
            return kills + joiner.release() if joiner.holding else kills
        if line.wrapped and self._lenient:
            return self._pasted(line)
        kills = self._logical(line, line.text[:LINE_CHARS], None, len(line.text))
        if not self._lenient and joiner.holding:
            kills += joiner.release()  # live: a kill is handed on by its own line
        return kills

    def feed_rows(self, texts: list[str], start: int, offset: int) -> tuple[int, int]:
        """Of texts[start:] (the lines from byte `offset` on, each without its newline and
        shorter than LINE_CHARS), the task-table rows that follow a row the express read, each
        taken as feed() takes it (a wrapped line; Express.next_row()), in one call: how many,
        and their bytes (newlines included). The first line that is no such row is left as it
        was, for feed(): it asks the same question of it, then reads it the general way."""
        if self.row_after is None:
            return 0, 0
        count, width, last = self.row_after.next_rows(texts, start, offset)
        if count:
            self._joiner.where = (None, last)  # as feed() left it, at the last row
        return count, width

    def _pasted(self, line: KernelLine) -> list[OomKill]:
        """A physical line of text pasted from anywhere: its enclosures undone, each of its
        logical lines read. A line in no enclosure (Decoder.plain) goes to the lane's express
        (express.py), then the fast lane (lane.py); one they do not read is unwrapped once
        here, and read directly where it is one message (_direct)."""
        decoder, width = self._decoder, len(line.text)
        raw = decoder.plain(line.text) if self._fast else None
        if raw is None:
            logical = decoder.lines(line.text)
            self.unread.cut = decoder.cut
            self._joiner.saw_width(width)
            kills = self._break() if decoder.backwards else []
            for n, (text, sender) in enumerate(logical):
                kills += self._logical(line, text, sender, width, decoder.notes, decoder.entry_of(n))
            return kills
        self.unread.cut = decoder.cut
        if width >= 40:  # Rejoiner.saw_width(), inlined (most lines come this way)
            widths = self._joiner._widths
            widths[width] = widths.get(width, 0) + 1
        lane = self._lane
        read = lane.express.read(line, raw) if lane is not None else None
        if read is None and lane is not None:
            read = lane.read(line, raw)
        if read is not None:
            return read
        unwrapped = self._unwrapper.unwrap(raw)
        direct = self._direct(line, raw, unwrapped)
        return direct if direct is not None else self._logical(line, raw, None, width, unwrapped=unwrapped)

    def _direct(self, line: KernelLine, raw: str, unwrapped: Unwrapped) -> list[OomKill] | None:
        """A line that is one message, read without the steps of _logical() that would hand
        it on unchanged; None: read it the general way. A quiet line (no word that opens, holds
        or continues a message, anchors.may_anchor: task-table rows, memory state, call traces)
        goes to _take() (nothing to locate, hold or refuse: no sender); a line opening with an
        anchor to the rejoiner's hold_or_take() (located where it starts). A kill line held
        before it is taken first if this line has a header of its own (`fresh`: it continues
        nothing) and no outer wrapper (grep -n, a bullet) is to be taken off this one."""
        text, wall, mono, fresh = unwrapped
        if "\n" in text or "#01" in text or text.find("[", 1) >= 0:
            return None  # pieces() would split it
        joiner = self._joiner
        if joiner.holding and not (fresh and joiner.held_outer is None):
            return None
        body = text.lstrip()
        words = may_anchor(body)
        if words and ANCHOR_START.match(body) is None:
            return None  # its anchor stands further in: the Locator learns the wrapper before it
        kills = joiner.release() if joiner.holding else []
        stamp = Stamp(line, wall or line.time, mono if mono is not None else line.mono_usec, raw)
        return kills + self.read_direct(line, raw, body, words, stamp)

    def read_direct(self, line: KernelLine, raw: str, body: str, words: bool, stamp: Stamp) -> list[OomKill]:
        """_direct() once a held line is released: `body` (an anchor opens it where `words`)
        read at `stamp`."""
        joiner = self._joiner
        locator = joiner.locator
        locator.prefix = ""
        if words:
            return joiner.hold_or_take(body, stamp, None, len(line.text))
        body = body[locator.shape_end(body):]
        reports = self._reports  # a task-table row, as _take() would take it first
        if not self._users.pending and reports.collecting and reports.task_row(body.strip()):
            return []
        return self._take(body, stamp)  # (a row refused above has ended the table: not asked again)

    def _logical(self, line: KernelLine, raw: str, sender: str | None, width: int,
                 notes: tuple[str, ...] = (), entry: tuple[str | None, datetime | None] | None = None,
                 unwrapped: Unwrapped | None = None) -> list[OomKill]:
        """One logical line (decoded): its wrapper taken off (or `unwrapped` already), its
        messages read. `notes` say what enclosed it; `entry` is the host and time of the
        journal entry it came in."""
        if unwrapped is not None:
            text, wall, mono, fresh = unwrapped
        elif line.wrapped:
            text, wall, mono, fresh = self._unwrapper.unwrap(raw)
        else:
            text, wall, mono, fresh = raw, None, None, True
        host = None
        if entry is not None:  # an exported entry's host, and its time where the message's has no zone
            host = entry[0]
            if entry[1] is not None and (wall is None or wall.tzinfo is None):
                wall = entry[1]
        stamp = Stamp(line, wall or line.time, mono if mono is not None else line.mono_usec,
                      raw if line.wrapped else None, notes, host)
        kills: list[OomKill] = []
        for n, (piece, separator) in enumerate(_record_pieces(line, text)):
            glued = separator.startswith("[")
            if glued:  # a dmesg record glued to the one before: a new record, with its own uptime
                mono = _uptime_usec(separator)
                stamp = stamp.with_times(stamp.time, mono if mono is not None else stamp.mono_usec)
            kills += self._joiner.piece(piece, stamp, sender, fresh=(fresh and n == 0) or glued,
                                        separator=separator if n and not glued else None, width=width,
                                        spaced=n == 0 and raw[:1] in (" ", "\t"))
        return kills

    def _break(self) -> list[OomKill]:
        """End what is being read before an export's entry earlier than the last one: a held
        kill line is taken, an open report given up (its selection stands as a kill), so
        that no header, summary or table of a later report joins an earlier kill."""
        kills = self._joiner.release() if self._joiner.holding else []
        return kills + self._reports.abandon()

    def flush(self) -> list[OomKill]:
        """Return what is pending: a held kill line, a selected victim whose `Killed process`
        never came."""
        self.row_after = None
        kills: list[OomKill] = []
        for raw, sender in self._decoder.flush():
            kills += self._logical(KernelLine(text=raw, source="", wrapped=True), raw, sender, 0)
        if self._joiner.holding:
            kills += self._joiner.release()
        return kills + self._reports.flush_selection() + self._users.flush()

    def _take_checked(self, body: str, stamp: Stamp, sender: str | None, where: Where) -> list[OomKill]:
        """Take one message unless its sender cannot have written it; a line holding a
        kill's words that no recogniser read is counted (Unread) at `where`."""
        refused = refusal(body, sender)
        if refused is not None:
            self.unread.add(where, body, refused)
            return []
        if sender is None and not ("ill" in body or "SIG" in body or "oom" in body):
            return self._take(body, stamp)  # no kill's words: nothing to count
        if sender is not None and stamp.sender != sender:
            stamp = stamp.with_sender(sender)  # the kill's evidence names its sender
        kills = self._take(body, stamp)
        if counted_unread(body, bool(kills)):
            self.unread.add(where, body, "no recogniser read this line")
        return kills

    def _take(self, text: str, stamp: Stamp) -> list[OomKill]:
        """One message: it joins the open report, starts one, completes a kill, or is a
        user-space killer's."""
        text = text.strip()
        if self._users.pending:  # an earlyoom kill whose command line this may be
            settled, used = self._users.settle(text)
            return settled if used else settled + self._take(text, stamp)
        reports = self._reports
        if reports.collecting:
            if reports.task_row(text):
                return []
            if reports.overlong():
                return reports.abandon() + self._take(text, stamp)
        if "Kill" in text or "kill process" in text:
            kills = reports.kill_line(text, stamp)
            if kills is not None:
                self._users.interrupt()
                return kills
        kills = self._users.take(text, stamp)
        if kills is not None:
            return kills
        return reports.structure(text)

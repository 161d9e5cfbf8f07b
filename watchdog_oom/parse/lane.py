"""The common line of a pasted log read in one step: OomParser's fast lane for `import`.

Most lines of a log share the wrapper of the line before and carry one kernel message
that opens with the kernel's own words, or none of them (a task-table row, the memory
state, a call trace). OomParser reads a line through layers (decoder, unwrapper, locator,
rejoiner, checks, readers) that each ask again what the one before knew. The lane takes
such a line in one function: the remembered shape (shapes.py) takes the wrapper off, the
message's first words pick the one step that reads it, and the state the layers would
have changed is changed alike:

* a message opening with "[" while a task table is read is matched as its row at once
  (the figures hold no word may_anchor() looks for: only the name is asked);
* a quiet message (anchors.may_anchor: no word that opens, holds or continues a message)
  is a row of the open report's task table, a line of its memory state, or nothing;
* a report's header (`X invoked oom-killer: …`) and constraint summary (`oom-kill:…`),
  whole (not cut by a wrap, so nothing is held) and holding no user-space killer's
  words, open or shape the report;
* a message an anchor opens (ANCHOR_START) goes to the rejoiner as OomParser._direct
  hands it on (a kill line is held there for its possible continuation);
* a message with a report's words but no anchor anywhere (`out_of_memory+0x…` in a call
  trace) goes to the rejoiner as OomParser._logical would hand it on.

Anything else (a line in another wrapper, an enclosure, an anchor further in, a held line
this one may continue) returns None before any state is touched, and OomParser reads it
the general way. OomParser(fast=False) never takes the lane; tests/test_parse_shapes.py
reads every capture, in every wrapper and mixed, both ways, and compares every field;
tests/test_parse_lane.py interleaves captures, reads every message after every message,
rows after rows, and random lines in sticky or changing wrappers, both ways.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from watchdog_oom.model import KernelLine, OomKill
from watchdog_oom.parse.anchors import (
    _ANCHOR_HINTS,
    _HEADER_TAIL,
    _SUMMARY_TAIL,
    ANCHOR,
    ANCHOR_START,
    KILL_START,
    counted_unread,
    may_anchor,
)
from watchdog_oom.parse.express import Express
from watchdog_oom.parse.report import HEADER
from watchdog_oom.parse.shapes import _first_class
from watchdog_oom.parse.userspace import no_killer_words
from watchdog_oom.parse.wrappers import JOIN_CHARS, Stamp

if TYPE_CHECKING:
    from watchdog_oom.parse.kernel import OomParser
    from watchdog_oom.parse.shapes import _Shape

# The first characters a kill line (KILL_START) can open with: a message opening otherwise
# is no kill line, and the rejoiner would not ask whether it holds one.
_KILL_FIRST = frozenset("OMKkesnS")


def whole_header(text: str) -> re.Match | None:
    """HEADER's match where `text` (a message, stripped) is a report's header that the
    rejoiner takes at once and _take() hands to ReportReader.structure() alone: an anchor
    opens it (an invoker of 1-16 characters, or none), it is no kill line, no wrap cut it
    (anchors.incomplete), and it holds no word that a killer's reader looks for."""
    if len(text) >= JOIN_CHARS or "oom-killer: gfp_mask=" not in text or text.startswith(("oom-kill:", "Task")):
        return None
    header = HEADER.match(text)
    if header is None or (header.group(1) is not None and not 0 < len(header.group(1)) <= 16):
        return None
    if (text[0] in _KILL_FIRST and KILL_START.match(text)) or _HEADER_TAIL.search(text) is None:
        return None
    return header if "kill process" not in text and no_killer_words(text) else None


def whole_summary(text: str) -> bool:
    """True where `text` (a message, stripped) is dump_oom_summary()'s line that the rejoiner
    takes at once (no wrap cut it) and _take() hands to ReportReader.structure() alone (no
    header's words, no killer's)."""
    return (len(text) < JOIN_CHARS and text.startswith("oom-kill:constraint=") and "oom-killer" not in text
            and _SUMMARY_TAIL.search(text) is not None and "kill process" not in text and no_killer_words(text))


class FastLane:
    """Reads a plain line in the wrapper of the line before, or says it cannot (None)."""

    def __init__(self, parser: OomParser, year: int | None) -> None:
        # the parser's own parts: the lane changes them as the parser's layers would
        self._parser = parser
        self._year = year
        self._unwrapper = parser._unwrapper
        self._joiner = parser._joiner
        self._reports = parser._reports
        self._users = parser._users
        self._header: re.Match | None = None  # the header _structure_of() found, for _structure()
        self.express = Express(self)  # the commonest lines, read in one match (express.py): tried first

    def read(self, line: KernelLine, raw: str) -> list[OomKill] | None:
        """The kills of `raw` (line.text as Decoder.plain() gave it); None: not read, and
        nothing changed."""
        shape = self._unwrapper.last
        text = raw.lstrip()  # (Decoder.plain() took "\r\n" off its end)
        if shape is None or not text or shape.first != _first_class(text):
            return None
        match = shape.match(text)
        if match is None:
            return None
        end = match.end()
        message = text[end:]
        if "\n" in message or "#01" in message or message.find("[", 1) >= 0:
            return None  # pieces() would split it
        joiner = self._joiner
        holding = joiner.holding
        if holding and not (end != 0 and joiner.held_outer is None):
            return None  # it may continue the held line: the rejoiner decides
        if not holding and message[:1] == "[" and self._row(message):
            return []
        body = message.lstrip()
        if not may_anchor(body):
            read = self._quiet
        elif "oom-kill" in body and self._structure_of(body.rstrip()):  # (a header and a summary hold it)
            read = self._structure
        elif ANCHOR_START.match(body) is not None:
            read = self._anchored
        else:
            start = joiner.locator.shape_end(body)
            if (start > 0 and ANCHOR_START.match(body, start) is not None) or ANCHOR.search(body) is not None:
                return None  # an anchor further in: the Locator learns the wrapper before it
            read = self._wordy
        if holding:
            return joiner.release() + read(line, raw, body, shape, match)
        return read(line, raw, body, shape, match)

    def _anchored(self, line: KernelLine, raw: str, body: str, shape: _Shape, match: re.Match) -> list[OomKill]:
        """A message an anchor opens: to the rejoiner, as _direct() hands it on."""
        return self._parser.read_direct(line, raw, body, True, self._stamp(line, raw, shape, match))

    def _wordy(self, line: KernelLine, raw: str, body: str, shape: _Shape, match: re.Match) -> list[OomKill]:
        """A message with a report's words but no anchor anywhere (`out_of_memory+0x…` in a call
        trace): what _logical() -> Rejoiner.piece() -> Locator.locate() make of it: the learned
        wrapper taken off, no sender, nothing before the message, then to the rejoiner."""
        locator = self._joiner.locator
        start = locator.shape_end(body)
        locator.prefix = ""
        return self._joiner.hold_or_take(body[start:], self._stamp(line, raw, shape, match), None, len(line.text))

    def _stamp(self, line: KernelLine, raw: str, shape: _Shape, match: re.Match) -> Stamp:
        """The Stamp _direct() makes for the line, with what its shape knows of its evidence."""
        wall, mono = shape.times(match, self._year)
        text = raw.lstrip()
        return Stamp(line, wall or line.time, mono if mono is not None else line.mono_usec, raw,
                     host=shape.host(match, text, len(raw) - len(text)), form=shape.form)

    def _row(self, message: str) -> bool:
        """Whether `message` (opening with "[") was a row of the task table being read, and
        taken as the steps below would take it (read() has refused a newline, "#01" and a
        second "["): a row holds no word may_anchor() looks for outside its name, so the name
        alone is asked; it is quiet, and OomParser.read_direct() hands a row to the table
        first unless an earlyoom kill awaits its command line (a description a user-space
        killer collects is no matter)."""
        table = self._reports.reading_table()
        if table is None or self._users.pending or self._joiner.locator.shape_end(message):
            return False
        row = table.row(message.rstrip())
        if row is None:
            return False
        name = row.group(row.lastindex or 0)
        if _ANCHOR_HINTS.search(name) is not None:
            return False
        self._joiner.locator.prefix = ""
        table.add(row)
        return True

    def _quiet(self, line: KernelLine, raw: str, body: str, shape: _Shape, match: re.Match) -> list[OomKill]:
        """A message with no word that opens, holds or continues one: no user-space killer's
        either (anchors._ANCHOR_HINTS holds theirs), so only the open report may take it."""
        if self._users.collecting:  # an earlyoom or nohang description may take it
            return self._parser.read_direct(line, raw, body, False, self._stamp(line, raw, shape, match))
        locator = self._joiner.locator
        locator.prefix = ""
        body = body[locator.shape_end(body):]
        if self._reports.quiet_line(body.strip()):
            return []
        # the report ran past REPORT_LINES: the general way abandons it
        return self._parser._take(body, self._stamp(line, raw, shape, match))

    def _structure_of(self, text: str) -> bool:
        """Whether `text` is a whole header (its match kept for _structure()) or summary."""
        self._header = whole_header(text)
        return self._header is not None or whole_summary(text)

    def _structure(self, line: KernelLine, raw: str, body: str, shape: _Shape, match: re.Match) -> list[OomKill]:
        """A whole header or summary line: what Rejoiner.hold_or_take() -> _take_checked() ->
        _take() -> ReportReader.structure() do with it, without the questions whose answers
        whole_header() and whole_summary() know."""
        header = self._header
        if self._users.collecting:
            return self._parser.read_direct(line, raw, body, True, self._stamp(line, raw, shape, match))
        self._joiner.locator.prefix = ""
        text, reports = body.strip(), self._reports
        if reports.collecting and reports.task_row(text):
            return []
        if reports.collecting and reports.overlong():
            kills = reports.abandon() + self._parser._take(text, self._stamp(line, raw, shape, match))
        elif header is not None:
            return reports.open_report(header)  # (a header is recognised: never counted unread)
        else:
            kills = reports.summary_line(text)
        if counted_unread(body, bool(kills)):  # as _take_checked() counts it
            self._parser.unread.add(self._joiner.where, body, "no recogniser read this line")
        return kills

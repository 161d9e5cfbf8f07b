"""The lane's express: a line of a common kind, its wrapper off and its fields read in one match.

The fast lane (lane.py) takes a line's wrapper off with the shape of the line before, then
asks the message's first words which step reads it, and that step reads it again with its own
patterns. For the lines most of a log's OOM reports are made of, Express does all of it in one
match of one pattern per shape: the shape's own pattern, then one alternative per kind of
message, each a strict form of what the kernel prints, its fields as named groups:

* a report's header, `java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE),
  order=0, oom_score_adj=0` (dump_header(), 2.6.2x-6.x; the invoker a comm without blanks);
* dump_oom_summary()'s `oom-kill:constraint=…,nodemask=…,cpuset=…,mems_allowed=…,
  global_oom|oom_memcg=…,task_memcg=…,task=…,pid=…,uid=…` (4.19+), no field holding a comma;
* the kill line `[Out of memory: |Memory cgroup out of memory: ]Killed process N (name)
  total-vm:…kB, anon-rss:…kB, file-rss:…kB[, shmem-rss:…kB][, UID:… pgtables:…kB
  oom_score_adj:…]` (__oom_kill_process(), 4.x-6.x), its figures as report._figures() reads
  them in one match;
* a row of the task table being read (`[  pid]` …), and a quiet line (no word an anchor may
  hold: memory state, a call trace).

No strict form holds a newline, "#" or a "[" past its first character (what pieces() would
cut at), a blank at either end, or more than JOIN_CHARS characters. A line is read here only
where the parser is in the state every step of the lane would read it in: no user-space
killer's description open, no line held but the kill line this class held itself, the
locator with no wrapper learned. What the kind's steps would ask beyond the pattern (a
killer's words in a header, a second kill in a name) is asked here as they ask it; anything
else returns None before any state is touched, and the lane reads the line as before.

The kill line is held as Rejoiner.hold_or_take() holds it (the next line may continue it),
with its fields kept: when the next line is read here, the held kill is taken as
OomParser._take_checked() would take it, from the fields, without reading it again. Where
anything else releases it (a line read the general way, flush()), it is the same _Held.

tests/test_parse_lane.py reads every capture, interleaved captures, random lines in sticky
and changing wrappers, and near misses of every strict form, with and without the lanes.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from watchdog_oom.model import KernelLine, OomKill
from watchdog_oom.parse.anchors import _ANCHOR_HINTS, counted_unread
from watchdog_oom.parse.rejoin import _Held
from watchdog_oom.parse.report import NAME_CHARS, REPORT_LINES, TaskTable
from watchdog_oom.parse.shapes import _SHAPES, _first_class, _wall
from watchdog_oom.parse.userspace import no_killer_words
from watchdog_oom.parse.wrappers import (
    _HOSTNAME,
    _JSON_STRUCTURE,
    HOST_SEARCH_CHARS,
    JOIN_CHARS,
    LINE_CHARS,
    Stamp,
    _datetime,
    _fraction_usec,
    _mono_usec,
    _month,
)

if TYPE_CHECKING:
    from watchdog_oom.parse.lane import FastLane
    from watchdog_oom.parse.shapes import _Shape

# A field of the summary: no comma (each field is found by its ",name=" as summary_line()
# finds it). The classes are ASCII ("[0-9]", not "\d": a Unicode class is asked per character,
# several times slower); what pieces() cuts at (a newline, "#01", a "[" past the first
# character) is looked for in the line before its kinds are read (Express.read()).
_FIELD = r"[^,]*"
_KINDS = (
    # dump_header(): the invoker (a comm of 1-15 characters, no blank, colon or bracket: HEADER's
    # lazy "(.*?) invoked " reads it whole), gfp_mask with its flags, nodemask (4.x), order, adj
    r"(?:(?P<header>(?!Task|oom-kill:)(?P<invoker>[^\s:\[\]#()]{1,15}) invoked oom-killer: "
    r"gfp_mask=(?P<gfp>0x[0-9a-fA-F]+(?:\([A-Z0-9_|]*\))?),(?: nodemask=[^,\s]*,)? order=(?P<order>-?[0-9]+)"
    r"(?:, oom_score_adj=-?[0-9]+|, oomkilladj=-?[0-9]+|, oom_adj=-?[0-9]+, oom_score_adj=-?[0-9]+)?)"
    # dump_oom_summary() (4.19+): global_oom or the memcg that hit its limit
    r"|(?P<summary>oom-kill:constraint=(?P<constraint>[A-Z_]+),nodemask=" + _FIELD + r",cpuset=" + _FIELD
    + r",mems_allowed=" + _FIELD + r",(?:global_oom|oom_memcg=(?P<memcg>" + _FIELD + r")),task_memcg=(?P<task_memcg>"
    + _FIELD + r"),task=" + _FIELD + r",pid=(?P<spid>[0-9]+),uid=(?P<suid>[0-9]+))"
    # __oom_kill_process(): the name between the first "(" and the last ")" (no figure holds one:
    # the first ") total-vm:" the figures follow to the end is the last ")"), at most NAME_CHARS
    # characters as report.KILLED reads it, the figures of 4.x-6.x
    r"|(?P<kill>(?:(?P<reason>Out of memory|Memory cgroup out of memory): )?Killed process (?P<pid>[0-9]+) "
    rf"\((?P<name>.{{0,{NAME_CHARS}}}?)\) total-vm:(?P<vm>[0-9]{{1,18}})kB, "
    r"anon-rss:(?P<anon>[0-9]{1,18})kB, "
    r"file-rss:(?P<file>[0-9]{1,18})kB(?:, shmem-rss:(?P<shmem>[0-9]{1,18})kB)?"
    r"(?:, UID:(?P<uid>[0-9]{1,9}) pgtables:(?P<pgtables>[0-9]{1,18})kB oom_score_adj:(?P<adj>-?[0-9]{1,4}))?)"
    # a task-table row (dump_tasks()), read by the table's own pattern; any other line (quiet
    # where no word an anchor holds is in it: anchors.may_anchor)
    r"|(?P<row>\[.*)|(?P<quiet>.*))\Z"
)
# The kernel's uptime "[ 1234.567890] " as _UPTIME reads it (one blank after it taken, as its
# "\s?" takes one), in ASCII.
_UPTIME_ASCII = r"\[ *(?P<seconds>[0-9]+)\.(?P<fraction>[0-9]{1,9})\](?: |(?!\s))"
# The commonest wrapper, rsyslog's "Jun  3 10:00:00 host kernel: [ 1234.567890] ", in ASCII:
# where this matches, the "syslog" shape matches with the same date, host, uptime and end (its
# _BSD date, then "(?P<host>\S++)\s+kernel:\s?", then the uptime), provided no "kernel:"
# follows (the shape would take a "host kernel: " after the uptime; Express.read() asks) and,
# with no uptime, none opens the message (the shape would take it).
_SYSLOG = (r"(?P<date>(?P<month>[A-Z][a-z]{2}) +(?P<day>[0-9]{1,2}) (?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):"
           r"(?P<second>[0-9]{2}) )(?P<host>[A-Za-z0-9._-]+) (?P<tag>kernel): (?:" + _UPTIME_ASCII
           + r"|(?!\[\s*\d+\.\d{1,9}\]))")
# dmesg's "[ 1234.567890] ": the "dmesg" shape's uptime (no -T date, no -H time before it).
_ASCII = {"syslog": _SYSLOG, "dmesg": _UPTIME_ASCII}


def express_ascii(shape: _Shape) -> bool:
    """Whether the shape's express pattern is in ASCII (read() then asks no first class)."""
    express = _PATTERNS.get(shape)
    return express is not None and express[2]


def _express(shape: _Shape) -> tuple[re.Pattern, int, bool] | None:
    """The pattern of a line in the shape, then the kinds, to the line's end; the group of its
    uptime's seconds (its fraction follows); whether it is in ASCII (its first character is
    of the shape's class). None for a shape with no date or uptime of its own (its line may be
    the rest of another) or two patterns."""
    wrapper = _wrapper(shape)
    if wrapper is None:
        return None
    pattern = re.compile(wrapper + _KINDS)
    if shape.name in _ASCII:
        return pattern, pattern.groupindex["seconds"], True
    return pattern, shape.uptime, False


def _wrapper(shape: _Shape) -> str | None:
    """The pattern of the wrapper of a line in the shape (see _express)."""
    if shape.name in _ASCII:
        return _ASCII[shape.name]
    if shape.tagged is not shape.pattern or shape.date is None:
        return None
    return f"(?>{shape.pattern.pattern})"


_SECONDS = {f"{second:02d}": timedelta(seconds=second) for second in range(60)}  # a date's seconds as printed
_PATTERNS = {shape: _express(shape) for shapes in _SHAPES.values() for shape in shapes}
# Of each shape's express pattern: whether it reads an ASCII syslog date ("month") and a tag
# ("tag"), which Express._stamp() asks of every line it stamps (Pattern.groupindex makes a new
# mapping; a Pattern hashes its whole program: keyed by the shape, hashed by identity).
_NAMES = {shape: ("month" in express[0].groupindex, "tag" in express[0].groupindex)
          for shape, express in _PATTERNS.items() if express is not None}
# Of each shape's express pattern, the numbers of the kill line's groups Express._released() reads
# (match.group() by number: by name, each is looked up in the pattern's table first).
_KILL_GROUPS = {shape: tuple(express[0].groupindex[name] for name in (
    "vm", "anon", "file", "shmem", "uid", "pgtables", "adj", "pid", "name", "reason"))
    for shape, express in _PATTERNS.items() if express is not None}


@lru_cache(maxsize=32)
def _row_in(shape: _Shape, columns: int) -> tuple[re.Pattern, int]:
    """A line in the shape holding a row of a task table of `columns` numeric columns, and the
    group before the row's own: report._row_pattern() ("\\[\\s*(\\d{1,7})\\]", "\\s+(-?\\d{1,19})"
    per column, "\\s+(.*)" for the name) in ASCII, as the table reads the message stripped at
    its end: where this matches, that matches with the same groups (the same steps over ASCII
    blanks and digits), its name (from a non-blank to the last non-blank, then blanks to the
    end: greedy, a lazy name tried the end at each of its characters) what "(.*)" takes of the
    stripped message, which never ends in a blank."""
    pattern = re.compile(f"{_wrapper(shape)}(?P<row>\\[ *([0-9]{{1,7}})\\]{' +(-?[0-9]{1,19})' * columns}"
                         " +(\\S(?:.*\\S)?))\\s*\\Z")
    return pattern, pattern.groupindex["row"]


@lru_cache(maxsize=32)
def _row_after(shape: _Shape, columns: int) -> tuple[re.Pattern, int]:
    """_row_in() for a line that does not end in a blank (Express.next_row()), and its group
    before the row's own: the wrapper's named groups not captured (none is referred to), the
    name taken to the line's end (where the line ends in no blank, "\\S(?:.*\\S)?\\s*\\Z" takes
    what "\\S.*\\Z" takes, as "." takes all but a newline, which no row holds). Its quantifiers are
    possessive, which changes no match: each is followed by what it cannot take (a blank by a
    digit, "-" or a name's non-blank, a digit by "]" or a blank), so giving back never helped;
    the engine then keeps no way back (a sixth fewer instructions a row)."""
    wrapper = _NAMED.sub("(?:", _wrapper(shape) or "")
    pattern = re.compile(f"{wrapper}(?P<row>\\[ *+([0-9]{{1,7}}+)\\]{' ++(-?+[0-9]{1,19}+)' * columns} ++(\\S.*))\\Z")
    return pattern, pattern.groupindex["row"]


_NAMES_KEPT = 1024  # the most task names Express._hinted holds (about 100 kB)
_NAMED = re.compile(r"(?<!\\)\(\?P<\w+>")  # a named group's opening (not an escaped parenthesis)


@lru_cache(maxsize=64)
def _host_name(host: str) -> bool:
    """Whether `host` reads as a host name (wrappers._HOSTNAME): asked once per host, not per line."""
    return _HOSTNAME.fullmatch(host) is not None


class _Stamper:
    """Express._stamp(): a line's Stamp from its express match, the dates read last kept."""

    def __init__(self, year: int | None) -> None:
        self._year = year
        self._date: tuple[tuple[str, str] | None, datetime | None] = (None, None)  # the last date read, its time
        self._minute: tuple[str | None, datetime | None] = (None, None)  # the last syslog minute read, its time

    def stamp(self, line: KernelLine, raw: str, shape: _Shape, match: re.Match, uptime: int) -> Stamp:
        """FastLane._stamp() of the line (no blank before it), its date read once for the lines
        that share it; `uptime`: the group of the uptime's seconds."""
        named = _NAMES[shape]
        if shape.date is None:
            wall = None
        elif named[0]:  # an ASCII syslog date
            wall = self._syslog_wall(match)
        elif (shape.date, match["date"]) == self._date[0]:
            wall = self._date[1]
        else:
            wall = self._wall(shape, match)
            self._date = ((shape.date, match["date"]), wall)
        seconds, fraction = match.group(uptime, uptime + 1)
        mono = None
        if seconds is not None and len(seconds) < 13:  # (far within _mono_usec()'s bound: one int() of it all)
            mono = int(seconds + (fraction or "0")[:6].ljust(6, "0"))
        elif seconds is not None:
            usec = _mono_usec(seconds, 1_000_000)
            mono = None if usec is None else usec + _fraction_usec(fraction)
        # _Shape.host(): a host name the wrapper names in the first HOST_SEARCH_CHARS characters
        host = match["host"] if shape.hosted else None
        kind = match.lastgroup
        start = match.start(kind or 0)
        if host is not None and (start > HOST_SEARCH_CHARS or not raw[0].isalnum() or not _host_name(host)):
            host = None
        stamp = Stamp(line, wall or line.time, mono if mono is not None else line.mono_usec, raw, (), host, shape.form)
        if kind == "kill" and named[1] and match.start("tag") >= start - 80 and (
                raw.find(raw[start:start + 24]) == start and "<" not in raw[:HOST_SEARCH_CHARS]):
            # evidence._tag(): the tag before the kill line is the "kernel" of "host kernel: ",
            # where it stands whole in the 80 characters wrappers.line_tag() looks at before it
            stamp.sender = "kernel"
        return stamp

    def _wall(self, shape: _Shape, match: re.Match) -> datetime | None:
        """The time of the line's date, as shapes._wall() reads it."""
        return _wall(shape.date, match["date"], self._year)

    def _syslog_wall(self, match: re.Match) -> datetime | None:
        """The time of an ASCII syslog date, as wrappers._bsd_datetime() reads its fields (no
        fraction of a second), from the time of its minute, read once for the lines of that
        minute (naive: adding 0-59 s is what the datetime of that second is; a second of 60-99
        is no time, as datetime() refuses it)."""
        date, minute = match["date"], self._minute
        if minute[0] != date[:-4]:  # "Jun  3 10:00:00 " without ":00 "
            minute = self._minute = (date[:-4], _datetime(self._year, _month(match["month"]), match["day"],
                                                          match["hour"], match["minute"], "00"))
        second = _SECONDS.get(match["second"])  # ("[0-9]{2}"; 60-99: None)
        return None if minute[1] is None or second is None else minute[1] + second


class Express:
    """Reads a line of a common kind in the wrapper of the line before, or says it cannot (None)."""

    def __init__(self, lane: FastLane) -> None:
        self._lane = lane
        self._parser = lane._parser
        self._unwrapper = lane._unwrapper
        self._joiner = lane._joiner
        self._reports = lane._reports
        self._users = lane._users
        self._held: _Held | None = None  # the kill line this class held, and its fields
        self._kill: re.Match | None = None
        self._kill_groups: tuple[int, ...] = ()  # _KILL_GROUPS of its shape
        self._stamp = _Stamper(lane._year).stamp
        # what next_row() reads the line after a row with: the row pattern and its group before the
        # row's own, the table, whether the shape's pattern is in ASCII, the shape's first class
        self._rows: tuple[re.Pattern, int, TaskTable, bool, str | None] | None = None
        self._widths = self._joiner._widths  # the rejoiner's count of line widths (next_row())
        self._hinted: dict[str, bool] = {}  # task names next_row() read: whether a word of an anchor is in each

    def read(self, line: KernelLine, raw: str) -> list[OomKill] | None:
        """The kills of `raw` (line.text as Decoder.plain() gave it); None: not read here, and
        nothing changed."""
        shape = self._unwrapper.last
        express = _PATTERNS.get(shape) if shape is not None else None
        users = self._users  # (UserspaceKillers.collecting, inlined: asked of every line)
        if express is None or len(raw) >= JOIN_CHARS or users._earlyoom_banner or users._nohang is not None or (
                users._awaiting_cmdline is not None) or (
                not express[2] and shape.first != _first_class(raw)) or (  # type: ignore[union-attr]
                self._joiner.locator._shape is not None):
            return None
        report, joiner = self._reports._report, self._joiner
        if report is not None and not report.killed and report.table.columns is not None and joiner._held is None:
            read = self._row(raw, shape, report.table)  # type: ignore[arg-type]
            if read is not None:
                return read
        match = express[0].match(raw)
        if match is None:
            return None
        kind = match.lastgroup or ""
        start = match.start(kind)
        if start == 0 or "\n" in raw:
            return None
        body = raw[start:]  # (`in` of the message: str.find() with a start parses its arguments)
        if "#01" in body or "kernel:" in body or ("[" in body and (body[0] != "[" or "[" in body[1:])):
            return None  # pieces() would cut it (a "[" past its first character); a "host kernel: " the shape may take
        if joiner._held is not None and (joiner._held is not self._held or kind == "row"):
            return None  # the rejoiner decides what the line is to the line it holds
        if kind == "kill":
            name = match["name"]
            # (no kill line reads as a whole header or summary: whole_header() wants at most 16
            # characters before " invoked", and "Killed process N (" has more; another record's
            # "host kernel: " run into it is refused above)
            if " process " in name:
                return None  # a second kill in it: the rejoiner splits the line
            kills = self._released() if self._held is not None else []
            return kills + self._hold(line, raw, shape, match, express[1])  # type: ignore[arg-type]
        if kind == "row":
            return None  # no row of a table being read: the lane asks more of it
        if kind == "quiet":
            if _ANCHOR_HINTS.search(body) is not None:
                return None  # a message the lane asks more of
            kills = self._released() if self._held is not None else []
            return kills + self._quiet(line, raw, shape, match, express[1], body)  # type: ignore[arg-type]
        if not no_killer_words(body) or (kind == "summary" and ("oom-killer" in body or "kill process" in body)):
            return None
        kills = self._released() if self._held is not None else []  # (None: _released() changes nothing)
        return kills + self._structure(line, raw, shape, match, kind, body)  # type: ignore[arg-type]

    def _row(self, raw: str, shape: _Shape, table: TaskTable) -> list[OomKill] | None:
        """FastLane._row() of a line in the shape, read in one match with its wrapper, the table
        alone asked (no killer's kill awaits a line, no line is held, no wrapper is learned);
        None: no row, nothing changed."""
        if table._row is None or table.columns is None:
            return None
        pattern, base = _row_in(shape, len(table.columns))
        row = pattern.match(raw)
        if row is None:
            return None
        start = row.start(base)
        after = raw[start + 1:]  # (the row opens with "["; `in` of it: str.find() with a start parses its arguments)
        if start == 0 or "[" in after or "#01" in after or "\n" in raw or (
                _ANCHOR_HINTS.search(row.group(pattern.groups)) is not None):
            return None  # cut by pieces(), or a name the lane asks about
        self._joiner.locator.prefix = ""
        table.add(row, base)
        self._rows = (*_row_after(shape, len(table.columns)), table, express_ascii(shape), shape.first)
        self._parser.row_after = self  # the next line is asked next_row() first
        return []

    def next_rows(self, texts: list[str], start: int, offset: int) -> tuple[int, int, int]:
        """OomParser.feed_rows(): of texts[start:] (lines from byte `offset` on, without their
        newlines), the rows next_row() takes one after the other: how many, their bytes with
        their newlines, and the offset of the last."""
        at = last = offset
        for count in range(start, len(texts)):
            text = texts[count]
            if not self.next_row(text + "\n"):
                return count - start, at - offset, last
            last, at = at, at + len(text) + 1
        return len(texts) - start, at - offset, last

    def next_row(self, text: str) -> bool:
        """Whether `text` (the physical line after a row _row() read, zeros and all) was the
        next row of the same table in the same wrapper, and taken in one step.

        OomParser.feed() asks this first, only of the line right after such a row: every
        question feed() -> _pasted() -> Decoder.plain() -> read() -> _row() asked of the state
        (no enclosure held, the shape of the line before, no killer's description open, no
        line held, no wrapper learned, the table read) has the same answer, as a row read
        changes nothing but its table, so only the questions they ask of the line itself
        are asked again, in their order, and what they change is changed alike: the width
        counted, the row added. False: not such a row, nothing changed."""
        raw = text.rstrip("\r\n")
        # Decoder.plain(): a line of an enclosure (quoted-printable, ANSI colours, HTML
        # entities, JSON, a bare CR); read(): a line no kind's form may have; pieces(): a newline
        if (len(text) > LINE_CHARS or len(raw) >= JOIN_CHARS or text[:1] == "\x00" or raw.endswith("=")
                or "=3D" in raw or "\x1b" in raw or "&" in raw or '"' in raw or "\r" in raw or "\n" in raw
                or (not raw[:1].isalnum() and _JSON_STRUCTURE.match(raw)) or raw[-1:].isspace()):
            return False  # (a name then blanks: the pattern of _row() reads it, the general way)
        pattern, base, table, ascii_shape, first = self._rows  # type: ignore[misc]  # (set with row_after)
        if not ascii_shape and first != _first_class(raw):
            return False
        row = pattern.match(raw)
        if row is None:
            return False
        start = row.start(base)
        after = raw[start + 1:]  # (as _row() asks it)
        if start == 0 or "[" in after or "#01" in after:
            return False
        name = row.group(pattern.groups)
        hinted = self._hinted.get(name)  # a table's names repeat (workers, forks): each is searched once
        if hinted is None:
            if len(self._hinted) >= _NAMES_KEPT:
                self._hinted.clear()
            hinted = self._hinted[name] = _ANCHOR_HINTS.search(name) is not None
        if hinted:
            return False
        width = len(text)
        if width >= 40:  # Rejoiner.saw_width(), inlined (a row a line)
            widths = self._widths
            widths[width] = widths.get(width, 0) + 1
        table.add(row, base)
        return True

    def _hold(self, line: KernelLine, raw: str, shape: _Shape, match: re.Match, uptime: int) -> list[OomKill]:
        """The kill line, held as read_direct() -> Rejoiner.hold_or_take() hold it (lenient:
        a kill line that opens as one is held for its continuation), its fields kept."""
        joiner = self._joiner
        joiner.locator.prefix = ""
        held = _Held(raw[match.start("kill"):], self._stamp(line, raw, shape, match, uptime), None, len(line.text),
                     joiner.where)
        joiner._held = self._held = held
        self._kill, self._kill_groups = match, _KILL_GROUPS[shape]
        return []

    def _released(self) -> list[OomKill]:
        """The kill line held here, taken as Rejoiner.release() -> OomParser._take_checked() ->
        _take() -> ReportReader.kill_line() take it, from its fields; [] where none is held."""
        held = self._held
        if held is None or self._joiner._held is not held:
            self._held = None
            return []
        report = self._reports._report
        if report is not None and not report.killed and report.lines >= REPORT_LINES:
            return self._joiner.release()  # the report is abandoned: the general way
        self._joiner._held = self._held = None
        if report is not None and not report.killed:
            report.table.columns = None  # _take(): no task-table row; the table ends
            report.lines += 1
        match = self._kill
        assert match is not None
        vm, anon, file, shmem, uid, pgtables, adj, pid_text, name, reason = match.group(*self._kill_groups)
        figures: dict = {"total_vm_kb": int(vm), "anon_rss_kb": int(anon), "file_rss_kb": int(file)}
        if shmem is not None:
            figures["shmem_rss_kb"] = int(shmem)
        if uid is not None:
            score_adj = int(adj)
            figures["uid"], figures["pgtables_kb"] = int(uid), int(pgtables)
            figures["oom_score_adj"] = score_adj if -1000 <= score_adj <= 1000 else None
        pid = int(pid_text) if len(pid_text) <= 20 else None
        kills = self._reports.victim(pid if pid is not None and 1 <= pid <= 4_194_304 else None, name,
                                     reason, figures, held.text, held.stamp)
        self._users.interrupt()
        return kills

    def _structure(self, line: KernelLine, raw: str, shape: _Shape, match: re.Match, kind: str,
                   body: str) -> list[OomKill]:
        """A header or a summary: what FastLane._structure() does with it."""
        reports = self._reports
        report = reports._report
        if report is not None and not report.killed:
            if report.lines >= REPORT_LINES:  # the report runs past its bound: the lane's way
                return self._lane_read(line, raw, shape, body)
            report.table.columns = None  # ReportReader.task_row(): no row; the table ends
            report.lines += 1
        self._joiner.locator.prefix = ""
        if kind == "header":
            return reports.open_with(match["invoker"], match["gfp"], match["order"])
        kills = reports.summary_with(match["constraint"], match["memcg"], match["task_memcg"], match["spid"],
                                     match["suid"])
        if counted_unread(body, bool(kills)):  # as _take_checked() counts it
            self._parser.unread.add(self._joiner.where, body, "no recogniser read this line")
        return kills

    def _lane_read(self, line: KernelLine, raw: str, shape: _Shape, body: str) -> list[OomKill]:
        """FastLane._structure() itself, for a report that ran past REPORT_LINES."""
        lane = self._lane
        lane._structure_of(body)
        return lane._structure(line, raw, body, shape, shape.match(raw))  # type: ignore[arg-type]

    def _quiet(self, line: KernelLine, raw: str, shape: _Shape, match: re.Match, uptime: int,
               body: str) -> list[OomKill]:
        """A quiet message: what FastLane._quiet() does with it."""
        self._joiner.locator.prefix = ""
        if self._reports.quiet_line(body.strip()):
            return []
        return self._parser._take(body.lstrip(), self._stamp(line, raw, shape, match, uptime))

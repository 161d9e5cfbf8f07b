"""Finding a message in a line of pasted text, and rejoining a kill line a wrap cut.

Locator finds where a message starts in a line: at the kernel's (or a killer's) own words,
wherever they stand; what precedes them is the line's wrapper, learned for the report's
lines that carry no such words (task-table rows, memory state). Rejoiner holds a kill
line that may continue on the next line (a mail client or a terminal wrapped it, a pager
cut it) and joins the continuation before the message is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from watchdog_oom.lazy_regex import compile_on_first_use
from watchdog_oom.model import OomKill
from watchdog_oom.parse.anchors import ANCHOR, ANCHOR_START, HOLDABLE, KILL_START, incomplete, may_anchor, reading
from watchdog_oom.parse.report import _NAME, KILL_OPENING, NAME_CHAR, NAME_CHARS
from watchdog_oom.parse.wrappers import (
    JOIN_CHARS,
    Stamp,
    line_host,
    owned,
    prefix_sender,
    prefix_time,
    shape,
    tag_before,
    unwrap,
)
from watchdog_oom.valueclass import valueclass

Where = tuple[int | None, int | None]  # a line's number or its byte offset in the input
# How a message is read once located: (body, stamp, sender, where) -> the kills it completes.
Take = Callable[[str, Stamp, str | None, Where], list[OomKill]]

MAX_JOINS = 4  # a kill line wrapped at 60 columns spans 3-4 lines
# The start of a kill line's figures cut off onto the next line.
_FIGURE_CONTINUES = re.compile(r",?\s*(?:total-vm|anon-rss|file-rss|shmem-rss|UID|pgtables|oom_score_adj)[:\s]|\d*kB\b")
# A cgroup path a terminal wrapped ("… limit of /kubepo" + "ds/pod951f…/0249…"): the held line
# ends in a path and the next line is nothing but the rest of one.
_PATH_TAIL = re.compile(r" /\S*$")
_PATH_REST = re.compile(r"[\w.@+=-]*/[\w./@:+=-]*|[\w.@+=-]{16,}")
# Outer wrappers that the continuation of a wrapped line carries as well: cat -n / nl line
# numbers, grep -n / -Hn "file:N:", markdown bullets and quotes.
# A numbered one is only taken off a continuation that carries the next number; a number of
# more than 18 digits is none (no file has that many lines, and int() refuses over 4,300 digits:
# a hostile line once stopped the import, review R32).
_OUTERS = (re.compile(r"(?P<n>\d{1,18}+)(?:\t|  )\s*"), re.compile(r"[^\s:]+:(?P<n>\d{1,18}+)[:-]"),
           re.compile(r"(?P<n>\d{1,18}+)[:-](?!\d)"), re.compile(r"[-*+>]\s+"))
# Where another kernel kill message opens in a kill line (a log shipper or a paste ran the
# lines together): its victim's pid and the "(" before its name (report.KILL_OPENING), which no
# comm holds (15 bytes; "kill process 1 (" has 16), so no name the kernel printed is cut here.
_NEXT_KILL = re.compile(
    r"(?:(?:Out of [Mm]emory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): )?" + KILL_OPENING)
# What may stand between a killer's message and the next run together in one line besides blanks:
# the punctuation of a JSON array of strings (Loki's [ns, line] pairs: `"], ["1717…", "`), a pipe,
# a semicolon. Possessive, a quoted number tried first: one way to read each run, no backtracking.
_JOINER_TAIL = re.compile(r"""(?:"\d+"|[\s"'\[\]{},;|])*+$""")
# A syslog header (BSD date, host, kernel tag, and the kernel's uptime where it printed one) that
# another record run into this one opened with: tried where a run of blanks starts (a long run is
# not tried again from each of its blanks).
_EMBEDDED_HEADER = re.compile(
    r"(?<!\s)\s++[^\W\d_]{3} +\d{1,2} \d\d:\d\d:\d\d \S+ kernel: (?:\[ *+\d++\.\d++\] ?)?+")
# Messages of a report that hold a cgroup's path, which any user names as they like in a
# delegated subtree (dump_oom_summary()'s task_memcg, memcg's "Task in", oom.group's "Tasks in").
_PATH_OPENING = re.compile(r"oom-kill:constraint=|Tasks? in /")
# A killer's line that holds no text its victim's owner wrote (nohang's "Send SIGTERM to the
# victim"): every other killer's kill line names its victim in the owner's words right after its
# opening (earlyoom's name and 1.8's cmdline "…", systemd-oomd's unit path), and a command line
# holds what it likes, kill lines and all (review R26): past its opening nothing is cut.
_OWNERLESS_KILLER = re.compile(r"(?:nohang(?:-desktop)?(?:\[\d+\])?: )?\s*Send(?:ing)? SIG\w+ to(?: the)? victim")
# A kernel kill message whole, from its opening to the end of its figures (report.KILLED's
# forms: the RHEL 6/7 UID, 2.4's closing ".", the kB figures and 5.1+'s UID, pgtables and
# oom_score_adj), or a selection to its last words (report.SELECTION's): what of a message
# that another one followed on its line is the message, whatever stood between them.
_KILL_MESSAGE = re.compile(
    r"(?:(?:Out of [Mm]emory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): )?"
    r"(?:Killed process \d+(?:, UID \d+,)? \(" + _NAME + r"\)(?:, UID \d+,)?"
    r"(?:\.|(?:,?\s+(?:total-vm|vsz|anon-rss|file-rss|shmem-rss|UID|pgtables|oom_score_adj):-?\d+(?:kB)?)+)"
    r"|[Kk]ill process \d+ \(" + _NAME + r"\) score -?\d+ (?:or sacrifice child|or a child|and children\.?))",
    re.DOTALL)
# 2.6.2x's kill line, its name and nothing after it ("Killed process 1234 (x)"): to the first ")".
_BARE_KILL_MESSAGE = re.compile(
    r"(?:(?:Out of [Mm]emory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): )?"
    rf"Killed process \d+(?:, UID \d+,)? \({NAME_CHAR}{{0,{NAME_CHARS}}}?\)", re.DOTALL)
# Where a record's prefix may start in what stands between two messages run together: a word
# character, "[" or "<" at its start or after anything but a word's or a name's characters
# (a blank, a NUL, a quote mark, a bracket, grep -Hn's "kern.log:4:").
_PREFIX_START = re.compile(r"(?<![\w.@/+-])[\w\[<]")
PREFIX_CHARS = 256  # a prefix ends right before its message: it is looked for in this much before it
_PREFIX_STARTS = 16  # the places tried (the last ones): a syslog header with its uptime has 9
_DIGIT = re.compile(r"\d")
# What unwrap() leaves of a syslog header whose tag is a program's ("host alice[7]: "): the tag.
_TAG_LEFT = re.compile(r"[\w.@/()-]{1,64}+(?:\[\d+\])?:\s*+(?:\[ *+\d++\.\d++\] ?)?+")
# A log record's header anywhere in a line (review R29): a syslog or journalctl date (BSD "Jun 29
# 15:52:11", ISO 8601, short-unix, short-full, logread's ctime), the host where one is written,
# then ANY tag and its colon; or RFC 5424's up to its MSGID (before its structured data), APP-NAME
# its tag. Its names are bounded (a host
# 255, a tag 64 characters) and possessive: each place of a text is tried once, at a bounded cost.
# Only a line that holds more than its first message, or its message further in, is searched.
_RECORD_HEADER = compile_on_first_use(
    r"<\d{1,3}>1 (?:-|\d{4}-\d\d-\d\dT\S{1,40}+) \S{1,255}+ (?P<app>\S{1,48}+) \S{1,128}+ \S{1,32}+ (?=-|\[)"
    r"|(?:\d{9,10}\.\d{1,9}+ +(?:\S{1,255}+ +)?"
    r"|(?:[^\W\d_]{2,12}+\.?|\d{1,2}月) +\d{1,2} \d{1,2}:\d\d:\d\d(?:\.\d{1,9}+)?:? +(?:\S{1,255}+ +)?"
    r"|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9}+)?(?:Z|[+-]\d\d:?\d\d)? +(?:\S{1,255}+ +)?"
    r"|[^\W\d_]{2,12}+\.? \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,9}+)? [A-Za-z+\-\d]{1,16}+ +(?:\S{1,255}+ +)?"
    r"|[^\W\d_]{2,12}+\.? +(?:[^\W\d_]{2,12}+\.?|\d{1,2}月) +\d{1,2} \d{1,2}:\d\d:\d\d \d{4} "
    r"(?:[a-z]{1,12}+\.[a-z]{1,12}+ )?)"
    r"(?P<tag>[\w.@/()-]{1,64}+)(?:\[\d{1,20}+\])?:(?=[\s\[]|$)")
HEADER_CHARS = 1024  # what of a header and the text after it is unwrapped for its time and host
_UPTIME_AFTER = compile_on_first_use(r"\s*+\[ *+\d++\.\d++\]")  # the kernel's uptime after its header


@valueclass(fast_init=True)  # one a kill line read (valueclass.py)
class _Held:
    """A kill line waiting for the next line, which may be its continuation."""

    text: str
    stamp: Stamp
    sender: str | None
    width: int  # the physical line's length: a terminal cuts every long line at one width
    where: Where = (None, None)  # its line number or byte offset
    joins: int = 0  # continuations joined so far (a wrapped kill line spans a few lines)
    outer: re.Pattern | None = None  # an outer wrapper (cat -n, grep -n, a bullet) continuations carry too
    number: int = 0  # the line number in that outer wrapper


def _outer(prefix: str) -> re.Pattern | None:
    """The outer wrapper a located message's prefix opens with, if one of _OUTERS."""
    if not prefix:  # each of them opens with a character
        return None
    return next((pattern for pattern in _OUTERS if pattern.match(prefix)), None)


def _outer_end(held: _Held, piece: str) -> int:
    """Where the held line's outer wrapper ends on its continuation (0: it is not there)."""
    if held.outer is None:
        return 0
    match = held.outer.match(piece)
    if match is None:
        return 0
    number = match.groupdict().get("n")
    if number is not None and int(number) != held.number + held.joins + 1:
        return 0
    return match.end()


def _path_continues(text: str, piece: str) -> bool:
    """Whether `piece` is the rest of a cgroup path that `text` (a "Task in …" line) ends in."""
    return text.startswith("Task in /") and _PATH_TAIL.search(text) is not None and (
        _PATH_REST.fullmatch(piece.strip()) is not None)


def _without_joiner(text: str) -> str:
    """`text` less what joined it to the next message (_JOINER_TAIL), looked for in its last
    64 characters only (a run of them is tried from each place: bounded)."""
    found = _JOINER_TAIL.search(text, max(0, len(text) - 64))
    return text[:found.start()] if found is not None else text


def _run_together(body: str, started: bool) -> list[tuple[int, int]] | None:
    """Where the messages of a kill line that holds more than one start and end (review R22b):
    each kernel kill message opening after its first, each message after a syslog header
    another record opened with; None when it holds one. `started`: whether `body` opens as a
    kill line does (KILL_START, looked for once). A kernel kill message but the last is the
    message alone (_KILL_MESSAGE), without what joined it to the next; a killer's line is cut
    only where it reads whole, as is, and only if it holds no text its victim's owner wrote
    (_OWNERLESS_KILLER, review R26). Past a message that holds a cgroup's path (a summary,
    "Tasks in /…": any user names a cgroup of a delegated subtree as they like, kill lines
    and all) or a message after a header that is no kill line, nothing more is cut: the rest
    is one message. One search of the line for each kind of opening: linear in the line,
    however many messages it holds."""
    if not started:
        return None
    own = _NEXT_KILL.match(body)
    after = own.end() if own else 1
    # each holds its literal (" process ", " kernel: "): where that is absent, nothing is searched
    if body.find(" process ", after) < 0 and body.find(" kernel: ", after) < 0:
        return None
    starts = [(found.start(), found.start()) for found in _NEXT_KILL.finditer(body, after)]
    if body.find(" kernel: ", after) >= 0:
        starts += [(found.start(), found.end()) for found in _EMBEDDED_HEADER.finditer(body, after)]
    path = _PATH_OPENING.search(body, after) if "in /" in body or "oom-kill:" in body else None
    if path is not None:
        starts = [start for start in starts if start[0] < path.start()] + [(path.start(), -1)]
    starts.sort()
    spans: list[tuple[int, int]] = []
    begin = 0
    for end, resume in starts:
        if end <= begin:
            continue  # a kill opening inside the header just read past
        if _NEXT_KILL.match(body, begin) is not None:  # a kernel kill message: cut where it ends
            whole = _KILL_MESSAGE.match(body, begin, end) or _BARE_KILL_MESSAGE.match(body, begin, end)
            stop = whole.end() if whole is not None else begin + len(body[begin:end].rstrip())
        elif spans and KILL_START.match(body, begin) is None:
            break  # after a header, a message that is no kill line: read whole from there
        elif _OWNERLESS_KILLER.match(body, begin) is None:
            break  # a killer's line that names its victim in its owner's words: read whole from there
        else:  # a killer's line: cut only where it reads whole (without what joined it to the next)
            first = body[begin:end].rstrip()
            if incomplete(first) and incomplete(_without_joiner(first)):
                break
            stop = begin + len(first)
        if stop > begin:
            spans.append((begin, stop))
        if resume < 0:  # a cgroup's path: the rest is one message
            begin = end
            break
        begin = resume
    if not spans:
        return None
    spans.append((begin, len(body)))
    return spans


def last_header(text: str) -> tuple[int, int, str] | None:
    """Where the last log record's header in `text` starts and ends (_RECORD_HEADER), and its tag."""
    if ":" not in text and ">1 " not in text:  # a date's clock, RFC 5424's version
        return None
    last = None
    for found in _RECORD_HEADER.finditer(text):
        last = found
    if last is None:
        return None
    return last.start(), last.end(), last["app"] or last["tag"]


def _sender_after(header: tuple[int, int, str], text: str) -> str | None:
    """Who sent a message that `text` stands before, `header` the last record header in it: a
    program's header names its program, whatever follows it (the kernel's words in its text are
    that program's); after the kernel's, as on its line alone (prefix_sender() of what follows
    the header and the kernel's uptime: a killer's line the kernel carried, a user's text)."""
    start, end, tag = header
    if tag != "kernel":
        return tag
    uptime = _UPTIME_AFTER.match(text, end)
    return prefix_sender(text[uptime.end() if uptime is not None else end:], headed=True)


def sender_in(prefix: str, headed: bool) -> str | None:
    """Who sent the message that `prefix` stands before in its line: as the last record header
    in it says (_sender_after; review R29), else as prefix_sender() does."""
    header = last_header(prefix)
    return prefix_sender(prefix, headed=headed) if header is None else _sender_after(header, prefix)


def record_stamp(gap: str, stamp: Stamp, sender: str | None,
                 year: int | None) -> tuple[Stamp, str | None] | None:
    """The stamp and sender of a message that another ran into on its line, from `gap`, what
    stands between them (reviews R27, R29); None where it says nothing of them. The last record
    header in the gap (any tag, _RECORD_HEADER) names the sender whatever text follows it, as on
    a line of its own (_sender_after): a program's header before the kernel's words makes them
    the program's, refused. The stamp is that of the prefix that ends the gap where one does
    (_prefix_stamp) and holds that header, else the header's: its time and host, and the uptime
    of a prefix after it. (A record's prefix with its date and host that ends the gap after it
    is a header of its own, the last: one of a format _RECORD_HEADER does not know.)"""
    header = last_header(gap)
    found = _prefix_stamp(gap, stamp, sender, year)
    if header is None:
        return None if found is None else (found[0], found[1])
    start, _, tag = header
    if found is not None and found[2] > start and found[3] and found[0].host is not None:
        return found[0], found[1]  # a record's header (a date, a host) after it, right before the message
    named = _sender_after(header, gap)
    if found is not None and found[2] <= start:
        return found[0], named or found[1]
    text = gap[start:start + HEADER_CHARS]
    _, wall, _, _ = unwrap(text + "x", year=year)
    # the kernel's uptime where a prefix after the header (in its text) holds one
    own = stamp.with_times(stamp.time if wall is None else wall, None if found is None else found[0].mono_usec)
    own.raw, own.host, own.form, own.sender = text, line_host(text), None, None
    return own, named or tag


def _prefix_stamp(gap: str, stamp: Stamp, sender: str | None,
                  year: int | None) -> tuple[Stamp, str | None, int, bool] | None:
    """The stamp and sender of a message where the prefix of a log record ends `gap` (review R27),
    where that prefix starts and whether it is a record of the outer log; None where none ends
    it. The prefix gives its times; a record
    of the outer log (a date: syslog, ISO, journalctl) also its host and tag, and what it does not
    hold is null, not the record's before it (but a date whose year is not known leaves the time
    it had, as the first message's does: the time of a dmesg -T date, a logread line or an
    export's entry around yearless syslog lines); the kernel's own stamp (an uptime, a dmesg -T
    date, a kmsg header) stands within the record (`stamp`, `sender`: a syslog line's host and
    tag are its messages'). A prefix is found as the Locator finds the first message's: from
    each place one may start (_PREFIX_START) in the last PREFIX_CHARS characters, the outermost
    first, what unwrap() takes off whole up to the message (a program's tag may be left: the
    sender it names), holding a time or naming a host. What only looks like one (a date in
    junk, or in a name: the message before it is not in `gap`) does not stand right before the
    message, and is no prefix."""
    tail = max(0, len(gap) - PREFIX_CHARS)  # (searched from there, _PREFIX_START still looks behind it)
    if _DIGIT.search(gap, tail) is None:  # every prefix holds a date or an uptime
        return None
    for found in [m.start() for m in _PREFIX_START.finditer(gap, tail)][-_PREFIX_STARTS:]:
        prefix = gap[found:]
        text, wall, mono, fresh = unwrap(prefix + "x", year=year)
        if not fresh or (len(text) > 1 and _TAG_LEFT.fullmatch(text, 0, len(text) - 1) is None):
            continue
        host = line_host(prefix) if prefix[0] != "[" else None
        if wall is None and host is None:
            if mono is None:
                continue  # holds nothing of its own ("host kernel: " alone, dmesg -H's delta)
        elif prefix[0] != "[":  # a record of the outer log (a date it holds but gives no time of: its year unknown)
            own = stamp.with_times(stamp.time if wall is None else wall, mono)
            own.raw, own.host, own.form, own.sender = prefix, host, None, None
            return own, tag_before(prefix), found, True
        return (stamp.with_times(wall or stamp.time, stamp.mono_usec if mono is None and wall is None else mono),
                sender, found, False)
    return None


class Locator:
    """Finds the message in a piece of a line, learning the wrapper of a report's lines."""

    def __init__(self, *, lenient: bool) -> None:
        # lenient: text pasted from anywhere (import): find the kernel's words wherever they
        # start in a line. Strict (the live sources): a message is read where its source put it.
        self.lenient = lenient
        self.prefix = ""  # what stood before the last message located
        self._shape: re.Pattern | None = None  # the wrapper learned from the last anchor line

    def locate(self, piece: str, sender: str | None, fresh: bool) -> tuple[str, str | None]:
        """The message in a piece of a line, and who sent it. Lenient: a message starts at the
        kernel's (or a killer's) own words wherever they stand; what precedes them is the
        line's wrapper, learned for the report's lines that carry no such words."""
        text = piece.lstrip()  # blanks at its end tell a wrap's gap (see Rejoiner._gap)
        self.prefix = ""
        if not self.lenient or not text:
            return text, sender
        words = may_anchor(text)
        if words and ANCHOR_START.match(text):
            return text, sender
        end = self.shape_end(text)
        if end > 0 and words and ANCHOR_START.match(text, end):
            self.prefix = text[:end]
            return text[end:], sender or sender_in(text[:end], fresh)
        anchor = ANCHOR.search(text) if words else None  # most report lines (task rows) hold no anchor
        if anchor is not None and anchor.start() > owned(text):
            anchor = None  # in a cgroup's name ("stress cpuset=<name> mems_allowed=0"): its owner's (review R38)
        if anchor is None:
            return text[end:], sender
        start = anchor.start()
        if text.startswith(" invoked", start):  # the invoker's name is the word before
            start = text.rfind(" ", 0, start) + 1
        prefix = self.prefix = text[:start]
        self._shape = shape(prefix)
        return text[start:], sender or sender_in(prefix, fresh)

    def shape_end(self, text: str) -> int:
        """Where the wrapper learned from the report's anchor lines ends in `text` (0: none)."""
        if self._shape is None:
            return 0
        match = self._shape.match(text, 0, 256)
        return match.end() if match is not None else 0


class Rejoiner:
    """Hands each message to `take`, first joining a kill line with its continuation.

    A kill line that may continue (cut in a name or its figures, or a pasted line wrapped
    after them) is held until the next piece shows whether it is the rest of it.
    """

    def __init__(self, take: Take, *, lenient: bool, year: int | None) -> None:
        self._take = take
        self._lenient = lenient
        self._year = year
        self.locator = Locator(lenient=lenient)
        self.where: Where = (None, None)  # where the line being read was
        self._held: _Held | None = None  # a kill line that the next line may continue
        self._widths: dict[int, int] = {}  # how often each long physical width was seen
        self._held_where: Where = (None, None)
        self._held_outer: tuple[re.Pattern | None, int] = (None, 0)

    @property
    def holding(self) -> bool:
        """True while a kill line waits for its possible continuation."""
        return self._held is not None

    @property
    def held_outer(self) -> re.Pattern | None:
        """The outer wrapper (cat -n, grep -n, a bullet) the held line's continuation would carry."""
        return self._held.outer if self._held is not None else None

    def saw_width(self, width: int) -> None:
        """Count a physical line's length (a terminal cuts every long line at one width)."""
        if width >= 40:
            self._widths[width] = self._widths.get(width, 0) + 1

    def piece(self, piece: str, stamp: Stamp, sender: str | None, *, fresh: bool,
              separator: str | None, width: int, spaced: bool = False) -> list[OomKill]:
        """One message as cut from a line: it continues a held kill line, or is located."""
        kills: list[OomKill] = []
        held = self._held
        if held is not None:
            self._held = None
            if separator is None:
                piece = piece[_outer_end(held, piece):]
            if self._continues(held, piece, fresh, separator):
                return self._join(held, piece, separator, spaced)
            kills = self._take_held(held)
        body, sender = self.locator.locate(piece, sender, fresh)
        prefix = self.locator.prefix
        if prefix and stamp.mono_usec is None:
            wall, mono = prefix_time(prefix, self._year)  # "  1 [57539.949044] " (nl), "kern.log:3:Jun …"
            if mono is not None or (wall is not None and stamp.time is None):
                stamp = stamp.with_times(stamp.time or wall, mono)
        return kills + self.hold_or_take(body, stamp, sender, width)

    def _join(self, held: _Held, piece: str, separator: str | None, spaced: bool) -> list[OomKill]:
        """The held line with its continuation, held again or taken."""
        if separator is not None:
            joined = held.text + separator + piece
        elif _path_continues(held.text, piece):
            joined = held.text + piece.strip()  # a path is cut mid-word: nothing was taken out
        else:
            gap = " " if spaced else self._gap(held, piece)
            joined = held.text + gap + piece.lstrip()
            if incomplete(joined.strip()):  # the other reading, where it reads better
                other = held.text + (" " if gap == "" else "") + piece.lstrip()
                if reading(other.strip()) > reading(joined.strip()):
                    joined = other
        self._held_where, self._held_outer = held.where, (held.outer, held.number)
        stamp = held.stamp.noted("rejoined") if separator is None else held.stamp  # a wrap, not a #012
        return self.hold_or_take(joined[:JOIN_CHARS], stamp, held.sender, held.width, joins=held.joins + 1)

    def hold_or_take(self, body: str, stamp: Stamp, sender: str | None, width: int,
                     joins: int = 0) -> list[OomKill]:
        """Hold a kill line the next line may continue (cut in a name or its figures, or a
        pasted line wrapped after them); take anything else now."""
        # whether it opens as a kill line does: asked once, for _run_together and _holds (strict:
        # only a kernel kill line, where its source put it, is asked whether another follows it)
        if self._lenient:
            opens = KILL_START.match(body) is not None
            started: bool | None = opens and len(body) <= JOIN_CHARS
        else:
            opens, started = " process " in body and _NEXT_KILL.match(body) is not None, None
        split = _run_together(body, opens) if opens else None
        if split is not None:  # messages run together on one line (a web page lost the line breaks)
            return self._apart(body, split, stamp, sender, width, joins)
        holds = self._holds(body, sender, joins, started)
        if not holds and not joins:
            return self._take(body, stamp, sender, self.where)  # the common case: a line read at once
        if joins:
            outer, number = self._held_outer
        else:
            prefix = self.locator.prefix
            outer = _outer(prefix)
            found = outer.match(prefix) if outer is not None else None
            number = int(found["n"]) if found is not None and found.groupdict().get("n") else 0
        held = _Held(body.rstrip("\r\n"), stamp, sender, width, self._held_where if joins else self.where, joins,
                     outer, number)
        if holds:
            self._held = held
            return []
        return self._take_held(held)

    def _apart(self, body: str, split: list[tuple[int, int]], stamp: Stamp, sender: str | None, width: int,
               joins: int) -> list[OomKill]:
        """The messages of a line that holds more than one (_run_together), each taken with the
        stamp and sender of the record it stands in (review R27): the prefix right before it
        says them (record_stamp), else they are the message's before it; the first's are the
        line's. (A live source's bare message, no `raw`, holds no log's prefix.)"""
        where = self._held_where if joins else self.where
        kills: list[OomKill] = []
        ended = 0  # where the message before ended
        for n, (begin, end) in enumerate(split):
            if n and stamp.raw is not None:
                stamp, sender = record_stamp(body[ended:begin], stamp, sender, self._year) or (stamp, sender)
            if n == len(split) - 1:
                break
            kills += self._take_held(_Held(body[begin:end], stamp, sender, width, where))
            ended = end
        return kills + self.hold_or_take(body[split[-1][0]:], stamp, sender, width)

    def _holds(self, body: str, sender: str | None, joins: int, started: bool | None = None) -> bool:
        """Whether `body` is a line the next line may continue (`started`: whether it opens
        as a kill line does, where already known)."""
        holds = False
        if len(body) < JOIN_CHARS and joins < MAX_JOINS:  # substring tests first: most lines hold none
            if "ill" in body or "SIG" in body or "Send" in body:
                if started is None:
                    started = KILL_START.match(body) is not None
                holds = started and (self._lenient or incomplete(body))
            if not holds and ("oom-kill" in body or "Task" in body):
                holds = HOLDABLE.match(body) is not None and incomplete(body)
            if not holds and sender == "systemd-oomd":
                holds = body.rstrip() in ("Killed", "Marked")
            if not holds and self._lenient and body.startswith("Task in /"):
                holds = _PATH_TAIL.search(body) is not None  # its limit's path may go on on the next line
        return holds

    def release(self) -> list[OomKill]:
        """Take the held line, if any, as read so far."""
        held, self._held = self._held, None
        return self._take_held(held) if held else []

    def _take_held(self, held: _Held) -> list[OomKill]:
        """Take a held line as read so far, counted (if unread) where it began."""
        return self._take(held.text, held.stamp, held.sender, held.where)

    def _continues(self, held: _Held, piece: str, fresh: bool, separator: str | None) -> bool:
        """Whether `piece` is the rest of the held kill line rather than a message of its own."""
        stripped = piece.strip()
        if fresh or not stripped or ANCHOR_START.match(stripped):
            return False
        if separator is None and self.locator.shape_end(piece.lstrip()) > 0:
            return False
        if separator is None and unwrap(stripped)[3]:
            return False  # it opens with a record's own header (a date, an uptime): a line of its own
        if _FIGURE_CONTINUES.match(stripped) or _path_continues(held.text, stripped):
            return True
        return incomplete(held.text.strip())

    def _gap(self, held: _Held, piece: str) -> str:
        """What a wrap took out between a line and its continuation: nothing when a
        terminal cut the line at its width (or mid-number), a blank when a mail client
        broke it at a blank."""
        text = held.text
        if text.endswith((" ", "\t")) or piece.startswith((" ", "\t")):
            return ""
        if text.endswith(","):
            return " "
        if self._terminal_width(held.width):
            return ""
        if text[-1].isdigit() and (piece[:1].isdigit() or piece.startswith("kB")):
            return ""
        return " "

    def _terminal_width(self, width: int) -> bool:
        """True when `width` is the one at which a terminal cut the long lines: the most
        common physical width, shared by at least a fifth of the long lines."""
        count = self._widths.get(width, 0)
        if width < 40 or count < 3 or count * 5 < sum(self._widths.values()):
            return False
        return count == max(self._widths.values())

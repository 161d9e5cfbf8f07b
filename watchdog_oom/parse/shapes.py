"""The wrapper of the line before, tried first: unwrap() in one regular expression per line.

A log's consecutive lines almost always share one wrapper ("Jun  3 10:00:00 host kernel:
[ 123.456789] " line after line), yet wrappers.unwrap() finds it anew for every line by
trying the formats in turn: a dozen pattern matches and as many Python calls. LineUnwrapper
remembers the shape the last line had and tries first one precompiled pattern for exactly
that shape; when it does not match, unwrap() runs as before (nothing is lost) and the shape
of that line is remembered for the next.

Why a shape's match gives exactly what unwrap() gives: a shape is the path unwrap() takes
through its alternatives, written as one pattern in which

* every step unwrap() takes is an atomic group `(?>…)` holding that step's own pattern, so
  it matches exactly what the step's `.match()` matches and is never reconsidered: the
  steps' pieces join end to end as unwrap()'s slices do;
* every alternative unwrap() tries before the step it takes is a negative lookahead
  `(?!…)` holding that alternative's pattern: the shape matches only where it fails;
* an if/elif chain of optional steps (the host and tag after a date) is an atomic
  alternation ending in an empty alternative: the first that matches, or none;
* the tests unwrap() makes with string methods (a first character that is a digit, "[",
  "<", a quote mark) pick which shapes may be tried at all (_first_class).

A shape's date is read by the same function unwrap() uses, from the date's own text
(cached: the lines of one report share a few dates). OomParser(fast=False) turns this off;
tests/test_parse_shapes.py reads every capture, wrapper and mixed-format file both ways.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from watchdog_oom.lazy_regex import compile_on_first_use
from watchdog_oom.parse.wrappers import (
    _BARE_KERNEL_TAG,
    _BSD,
    _CTIME,
    _DMESG_RELTIME,
    _DMESG_T,
    _EPOCH_STAMP,
    _FORMATS,
    _HOST_KERNEL,
    _HOST_TAG,
    _HOSTNAME,
    _ISO,
    _KMSG,
    _SHORT_FULL,
    _UPTIME,
    HOST_SEARCH_CHARS,
    _bsd_datetime,
    _ctime_date,
    _datetime,
    _epoch_date,
    _fraction_usec,
    _iso_date,
    _mono_usec,
    _month,
    _short_full_date,
    unwrap,
)

Unwrapped = tuple[str, datetime | None, int | None, bool]


def _step(pattern: re.Pattern) -> str:
    return f"(?>{pattern.pattern})"


def _not(*patterns: re.Pattern) -> str:
    return "".join(f"(?!{pattern.pattern})" for pattern in patterns)


# _strip_host(): "host kernel: ", else "host " before "prog[pid]: ", else a bare "kernel: ", else nothing.
# The host before "kernel:" is named (group "host"): line_host() reads the same (_Shape.host()).
_NAMED_HOST_KERNEL = _HOST_KERNEL.pattern.replace(r"\S++", r"(?P<host>\S++)", 1)
assert _NAMED_HOST_KERNEL.startswith("(?P<host>")
_HOSTS = f"(?>{_NAMED_HOST_KERNEL}|{_HOST_TAG.pattern}|{_BARE_KERNEL_TAG.pattern}|)"
# After the date: the kernel's uptime "[ 1234.567890] " and the "host kernel: " that
# journalctl -o short-monotonic puts after it. Its two groups are the pattern's last.
_UPTIME_TAIL = f"(?>(?:{_step(_UPTIME)}{_step(_HOST_KERNEL)}?)?)"


def _dmesg_t(stamp: str, year: int | None) -> datetime | None:
    match = _DMESG_T.match(stamp)
    if match is None:  # never: the stamp is what _DMESG_T matched
        return None
    mon, day, hh, mm, ss, yyyy = match.groups()
    return _datetime(yyyy, _month(mon), day, hh, mm, ss)


# How unwrap() reads each kind of date from its text (the year matters to a syslog date only).
_READERS: dict[str, Callable[[str, int | None], datetime | None]] = {
    "iso": lambda stamp, year: _found(_iso_date(stamp)),
    "epoch": lambda stamp, year: _found(_epoch_date(stamp)),
    "short-full": lambda stamp, year: _found(_short_full_date(stamp)),
    "ctime": lambda stamp, year: _found(_ctime_date(stamp)),
    # the stamp is what _BSD matched: _bsd_date() would match it again only to call this
    "bsd": lambda stamp, year: _bsd_datetime(stamp, year),
    "dmesg-t": _dmesg_t,
}


def _found(date: tuple[int, datetime | None] | None) -> datetime | None:
    return date[1] if date is not None else None


@lru_cache(maxsize=256)
def _wall(kind: str, stamp: str, year: int | None) -> datetime | None:
    """The time of a date of `kind` whose text is `stamp`, as unwrap() reads it."""
    return _READERS[kind](stamp, year)


class _Shape:
    """One path through unwrap(): which first characters it is tried on, its pattern, and
    the kind of date it holds (None: no date, as dmesg's uptime alone). `tagged`, where
    given, is the pattern for a line holding "kernel:" in its first 80 characters (a line
    with no date: unwrap() looks for the kernel tag only there); it has the pattern's groups.

    A log file is written in one of these shapes: the patterns of the two that rsyslog writes
    by default (BSD syslog dates, RSYSLOG_FileFormat's ISO 8601) are compiled at start (`at_start`),
    as every line of such a file goes through one; the others at their first use (lazy_regex.py),
    as a log in that shape comes (or a paste into `import`). The kmsg and journal sources take
    none: their records come without a wrapper."""

    __slots__ = ("date", "first", "form", "hosted", "name", "pattern", "tagged")

    def __init__(self, name: str, first: str, date: str | None, pattern: str, tagged: str | None = None,
                 form: str | None = None, *, at_start: bool = False) -> None:
        self.name, self.first, self.date = name, first, date
        # wrappers.line_format()'s name for every line this shape reads, where one name fits
        # them all (a date at the line's start); None: ask line_format()
        self.form = form
        compile_ = re.compile if at_start else compile_on_first_use
        self.pattern = compile_(pattern)
        self.tagged = compile_(tagged) if tagged is not None else self.pattern
        self.hosted = "(?P<host>" in pattern  # a dated shape: "host kernel:" named (_NAMED_HOST_KERNEL)

    @property
    def uptime(self) -> int:
        """The group of the uptime's seconds (its fraction follows): the pattern's last two."""
        return self.pattern.groups - 1

    def match(self, text: str) -> re.Match | None:
        """This shape's match at the start of `text` (stripped as unwrap strips it), or None."""
        pattern = self.pattern
        if self.tagged is not pattern and "kernel:" in text[:80]:
            pattern = self.tagged
        return pattern.match(text)

    def times(self, match: re.Match, year: int | None) -> tuple[datetime | None, int | None]:
        """The wall time and kernel usec of a line this shape matched, as unwrap() reads them."""
        wall = _wall(self.date, match["date"], year) if self.date is not None else None
        last = match.re.groups  # the uptime's seconds and fraction are the last two groups
        seconds, fraction = match.group(last - 1, last)
        if seconds is None:
            return wall, None
        usec = _mono_usec(seconds, 1_000_000)
        return wall, None if usec is None else usec + _fraction_usec(fraction)

    def host(self, match: re.Match, text: str, lead: int) -> str | None:
        """wrappers.line_host() of the line this shape matched as `text` (its blanks before,
        `lead` of them, stripped), where its wrapper says it; None: ask line_host().

        line_host() reads the host from the first HOST_SEARCH_CHARS characters: a date
        opening the line (the first of _strip_date's dates that matches, which is this
        shape's: its lookaheads refuse the ones tried before), then "host kernel:" (tried
        first after a date, as here). Where this whole wrapper lies in those characters, the
        line opens with a letter or digit and the host is a host name, it is this one."""
        host = match["host"] if self.hosted else None
        if host is None or lead + match.end() > HOST_SEARCH_CHARS or not text[0].isalnum():
            return None
        return host if _HOSTNAME.fullmatch(host) else None

    def read(self, text: str, year: int | None) -> Unwrapped | None:
        """What unwrap() gives for `text` (stripped as unwrap strips it); None: not this shape."""
        match = self.match(text)
        if match is None:
            return None
        end = match.end()
        return (text[end:], *self.times(match, year), end != 0)


def _dated(name: str, first: str, kind: str, date: re.Pattern, before: tuple[re.Pattern, ...],
           at_start: bool = False) -> _Shape:
    """A syslog-like shape: a date (after the alternatives tried before it), the host and tag."""
    return _Shape(name, first, kind, f"{_not(*before)}(?>(?P<date>{date.pattern})){_HOSTS}{_UPTIME_TAIL}",
                  form=_FORMAT_OF[date], at_start=at_start)


# line_format() names a line by the first of its formats that matches at the start: a line a
# dated shape reads opens with that shape's date, and no format line_format() tries before it
# matches there (those open with a digit, "<" or "[" where this date does not, or are what the
# shape's lookaheads refuse; test_parse_shapes checks it on near misses of every date).
_FORMAT_OF = {pattern: name for pattern, name in _FORMATS}


# unwrap() on a line whose first character is not a digit, "[", "<" or a quote mark tries
# _strip_date's named dates: journalctl short-full, ctime (logread), then BSD syslog.
# On a digit it tries a kmsg record header, then ISO 8601, an epoch stamp, BSD ("6月 3 …").
# On "[" dmesg -T's date, else dmesg -H's, then the uptime.
_SHAPES: dict[str, tuple[_Shape, ...]] = {
    "word": (
        # A BSD date never reads as the two after it, so they need not be tried (the commonest
        # shape, kept lean, and tried first: a syslog file's first line compiles neither of the
        # others): after the same month word and blanks, short-full wants one blank and a
        # four-digit year with "-", ctime a second word or "N月"; BSD wants one or two digits and
        # a blank. Nor does either of them read as BSD, which unwrap() tries after them: the
        # order of the three changes no line's reading (test_parse_shapes reads each line both ways).
        _dated("syslog", "word", "bsd", _BSD, (), at_start=True),
        _dated("journalctl short-full", "word", "short-full", _SHORT_FULL, ()),
        _dated("logread", "word", "ctime", _CTIME, (_SHORT_FULL,)),
        # No date (dmesg without times, a bare paste): _strip_kernel_tag(), then the uptime.
        _Shape("no date", "word", None, f"{_not(_SHORT_FULL, _CTIME, _BSD)}{_UPTIME_TAIL}",
               f"{_not(_SHORT_FULL, _CTIME, _BSD)}(?>{_BARE_KERNEL_TAG.pattern}|{_HOST_KERNEL.pattern}|)"
               f"{_UPTIME_TAIL}"),
    ),
    "digit": (
        _dated("ISO 8601", "digit", "iso", _ISO, (_KMSG,), at_start=True),
        _dated("short-unix", "digit", "epoch", _EPOCH_STAMP, (_KMSG, _ISO)),
        _dated("syslog, numeric month", "digit", "bsd", _BSD, (_KMSG, _ISO, _EPOCH_STAMP)),
    ),
    "bracket": (
        _Shape("dmesg -T", "bracket", "dmesg-t", f"(?>(?P<date>{_DMESG_T.pattern})){_UPTIME_TAIL}",
               form=_FORMAT_OF[_DMESG_T]),
        _Shape("dmesg", "bracket", None, f"{_not(_DMESG_T)}(?>{_DMESG_RELTIME.pattern}|){_UPTIME_TAIL}"),
    ),
}


def _first_class(text: str) -> str | None:
    """Which shapes may read `text`, as unwrap() decides by its first character: None for an
    empty line, a quote mark (">", "`": a paste) or a syslog priority ("<4>")."""
    if not text:
        return None
    first = text[0]
    if first == "[":
        return "bracket"
    if first.isdigit():
        return "digit"
    return None if first in "<>`" else "word"


class LineUnwrapper:
    """wrappers.unwrap() for a stream of lines, trying first the shape of the line before."""

    def __init__(self, *, year: int | None, fast: bool = True) -> None:
        self._year = year
        self._fast = fast  # False: every line through unwrap() (the differential tests' reference)
        self.last: _Shape | None = None  # the shape of the line before

    def unwrap(self, raw: str) -> Unwrapped:
        """unwrap(raw, year=…): the message, wall time, kernel usec, and whether a header was found."""
        if not self._fast:
            return unwrap(raw, year=self._year)
        text = raw.rstrip("\r\n").lstrip()
        first = _first_class(text)
        last = self.last
        if last is not None and last.first == first:
            read = last.read(text, self._year)
            if read is not None:
                return read
        if first is not None:  # learn this line's shape for the next (most lines share it)
            for shape in _SHAPES[first]:
                read = shape.read(text, self._year)
                if read is not None:
                    self.last = shape
                    return read
        return unwrap(raw, year=self._year)

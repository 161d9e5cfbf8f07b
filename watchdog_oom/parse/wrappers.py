"""What a log writer put around a kernel message, and taking it off.

Owns the wrappers of one log line: the kmsg record header, dmesg uptime or `-T` date in any
locale, syslog / journalctl / ISO 8601 prefixes with their host and tag, rsyslog `#012`
escapes, quote marks of a paste; and the Stamp (where and when a line was logged) that the
recognisers copy onto the kills a line completes.

The patterns that only text pasted into `import` or a rare wrapper reaches are compiled at
their first use (lazy_regex.py), not held by the daemon: a paste's quote marks, outer
wrappers and learned prefixes (_QUOTE, _OUTER_NAMES, _TAG_AT_*, _CLOCK, _WORD_GAP,
_STRUCTURAL, _RUNS), JSON (_JSON_STRUCTURE), rsyslog escapes (strip_wrapper's), a syslog
priority and RFC 5424 (a line opening with "<"), the tests' reference _TAG_BEFORE; and a kill's
evidence, read once a kill is (its line's format, host and tag: line_format(), line_host(),
line_tag()). The dates of each format a followed log file may be written in stay compiled:
every line goes through one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import MAXYEAR, MINYEAR, UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING

from watchdog_oom.lazy_regex import compile_on_first_use
from watchdog_oom.model import KernelLine

if TYPE_CHECKING:
    from watchdog_oom.parse.enclosures import CsvColumns, Where

# --------------------------------------------------------------------------- wrappers

# /dev/kmsg record (3.5+): "prio,seq,usec,flags[,…];message".
_KMSG = re.compile(r"(\d+),(\d+),(\d+),[^;]*;")
# syslog(2) / `dmesg -r` priority prefix "<4>".
_PRIORITY = compile_on_first_use(r"<\d{1,3}>")
# dmesg uptime "[ 1234.567890] " (also journalctl -o short-monotonic).
_UPTIME = re.compile(r"\[\s*(\d+)\.(\d{1,9})\]\s?")
# dmesg -T "[Mon Jun  3 10:00:00 2024] " in any locale: weekday and month are names of
# the locale (or "6月"), so only their positions are relied on.
_DMESG_T = re.compile(
    r"\[(?:[^\]\d\s]+\s+)?([^\]\s]+)\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})\s+(\d{4})\]\s?"
)
# dmesg -H / --reltime (util-linux 2.23+): "[Oct28 16:58] " opens a minute, "[  +0.000082] "
# is the delta to the record before; neither says which year or boot, so both are dropped.
_DMESG_RELTIME = re.compile(r"\[(?:\s*\+\d+\.\d+|[^\W\d_]{3}\s?\d{1,2} \d{2}:\d{2}(?::\d{2})?)\]\s?")
# ISO 8601 (rsyslog RFC3339 template, journalctl short-iso[-precise], dmesg --time-format=iso).
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?\s+"
)
# journalctl short-full "Mon 2024-06-03 10:00:00 CEST host …" (zone name, no offset).
_SHORT_FULL = re.compile(
    r"[^\d\s]+ (\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? [A-Za-z+\-\d]+\s+"
)
# journalctl short-unix "1717408800.123456 host …".
_EPOCH_STAMP = re.compile(r"(\d{9,10})\.(\d{1,9})\s+")
# BSD syslog / journalctl short(-precise) "Jun  3 10:00:00[.123456] " (a colon after the
# time where a tool such as earlyoom's own log file writes one): the month is a
# name of the locale ("мая 26", "juin 3") or "6月".
_BSD = re.compile(r"([^\W\d_]{2,}\.?|\d{1,2}月)\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?:?\s+")
# After a syslog date: "host kernel: " is removed; "host prog[pid]: " keeps "prog[pid]: "
# so that user-space killers stay recognisable (as journal.py prefixes them too).
# The host is a whole run of non-blanks (a blank must follow it): possessive "\S++" never gives
# characters back to look for one (a 200-character run would cost 200 steps).
_HOST_KERNEL = re.compile(r"\S++\s+kernel:\s?")
_HOST_TAG = re.compile(r"\S++\s+(?=[\w.@/-]+(?:\[\d+\])?:(?:\s|$))")
_BARE_KERNEL_TAG = re.compile(r"kernel:\s?")
# A paste: "> " quote marks (e-mail, markdown), a markdown inline-code "`", leading blanks.
_QUOTE = compile_on_first_use(r"(?:[>`]\s*)+")
# rsyslog escapes control characters as "#ooo" octal: "#012" is a newline, "#011" a tab.
_RSYSLOG_ESCAPE = compile_on_first_use(r"#0(1[12])")

# Month names (first letters, lower case) of the locales a server log is likely in.
_MONTHS = {
    **dict.fromkeys(("jan", "ene", "gen", "sty", "янв", "led"), 1),
    **dict.fromkeys(("feb", "fév", "fev", "lut", "фев", "úno"), 2),
    **dict.fromkeys(("mar", "mär", "mrt", "мар", "bře"), 3),
    **dict.fromkeys(("apr", "avr", "abr", "kwi", "апр", "dub"), 4),
    **dict.fromkeys(("may", "mai", "mag", "mei", "maj", "мая", "май", "kvě"), 5),
    **dict.fromkeys(("jun", "juin", "giu", "cze", "июн", "čer"), 6),
    **dict.fromkeys(("jul", "juil", "lug", "lip", "июл", "čvc"), 7),
    **dict.fromkeys(("aug", "aoû", "ago", "sie", "авг", "srp"), 8),
    **dict.fromkeys(("sep", "set", "wrz", "сен", "zář"), 9),
    **dict.fromkeys(("oct", "okt", "ott", "out", "paź", "окт", "říj"), 10),
    **dict.fromkeys(("nov", "lis", "ноя", "noi"), 11),
    **dict.fromkeys(("dec", "dez", "dic", "déc", "gru", "дек", "pro"), 12),
}


def _month(name: str) -> int | None:
    """Month number of a locale's month name or abbreviation; None when unknown."""
    name = name.lower().rstrip(".")
    if name.endswith("月"):
        return int(name[:-1]) if name[:-1].isdigit() else None
    # French needs four letters to tell "juin" from "juil".
    return _MONTHS.get(name[:4]) or _MONTHS.get(name[:3])


def _fraction_usec(digits: str | None) -> int:
    return int((digits or "0")[:6].ljust(6, "0"))


def _offset(text: str | None) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _datetime(year: str | int | None, month: int | None, day: str, hour: str, minute: str,
              second: str, usec: int = 0, tz: timezone | None = None) -> datetime | None:
    """A datetime from printed fields; None when they name no real date."""
    if year is None or month is None:
        return None
    if not MINYEAR < int(year) < MAXYEAR:  # no clock's: and an offset, or the local zone, takes it past them
        return None
    try:
        return datetime(int(year), month, int(day), int(hour), int(minute), int(second), usec, tz)
    except ValueError:
        return None


def strip_wrapper(raw: str, *, year: int | None = None) -> tuple[str, datetime | None, int | None]:
    """The kernel message inside one log line, the wall time and the kernel usec it carries.

    Times without an offset (syslog, dmesg -T) are naive: local time of the machine that
    wrote the log. A syslog date has no year: pass `year`, else the time is None. A
    `#012`-flattened rsyslog record comes back with its lines joined by newlines.
    """
    text, wall, mono, _ = unwrap(raw, year=year)
    if "#01" in text:
        text = _RSYSLOG_ESCAPE.sub(lambda m: "\n" if m.group(1) == "12" else "\t", text)
    return text, wall, mono


def unwrap(raw: str, *, year: int | None = None) -> tuple[str, datetime | None, int | None, bool]:
    """strip_wrapper without undoing rsyslog escapes, and whether a record header (a kmsg
    header, a date, an uptime or a kernel tag) was found: a line without one may continue
    the line before it."""
    text = raw.rstrip("\r\n").lstrip()
    quote = _QUOTE.match(text) if text.startswith((">", "`")) else None
    if quote is not None:
        text = text[quote.end():]
    mono: int | None = None

    kmsg = _KMSG.match(text)
    if kmsg:
        return text[kmsg.end():], None, _mono_usec(kmsg.group(3)), True
    if text.startswith("<"):
        priority = _PRIORITY.match(text)
        text = text[priority.end():] if priority else text
        rfc5424 = _RFC5424.match(text) if priority else None
        if rfc5424:
            return (*_rfc5424(text, rfc5424), None, True)

    length = len(text)
    text, wall = _strip_date(text, year)
    uptime = _UPTIME.match(text) if text.startswith("[") else None
    if uptime:
        seconds = _mono_usec(uptime.group(1), 1_000_000)
        mono = None if seconds is None else seconds + _fraction_usec(uptime.group(2))
        text = text[uptime.end():]
        # journalctl -o short-monotonic puts "host kernel: " after the uptime.
        host = _HOST_KERNEL.match(text)
        if host:
            text = text[host.end():]
    return text, wall, mono, len(text) != length


def _mono_usec(digits: str, unit: int = 1) -> int | None:
    """`digits` × `unit` microseconds since boot; None where no kernel's clock reads that far
    (a signed 64-bit count: the history's column). A pasted log may hold thousands of digits,
    which int() refuses (ValueError past 4300 since Python 3.11): such a line is still read."""
    if len(digits) > 19:
        return None
    value = int(digits) * unit
    return value if value <= 2**63 - 1 - 999_999 else None


# RFC 5424 (rsyslog RSYSLOG_SyslogProtocol23Format, OpenWrt, syslog-ng), after its "<PRI>":
# "1 2025-06-29T15:57:11.000000+00:00 host kernel - - - msg" (VERSION TIMESTAMP HOSTNAME
# APP-NAME PROCID MSGID STRUCTURED-DATA MSG; "-" is a nil value; MSG may open with a BOM).
_RFC5424 = compile_on_first_use(r"1 (\S+) (\S+) (\S+) (\S+) (\S+) (?:-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: \ufeff?|$)")


def _rfc5424(text: str, match: re.Match) -> tuple[str, datetime | None]:
    """The message of an RFC 5424 record (a user-space sender keeps "app[procid]: ")."""
    stamp, _, app, procid, _ = match.groups()
    date = _iso_date(stamp + " ")
    message = text[match.end():]
    if app != "kernel":
        message = f"{app}[{procid}]: {message}" if procid.isdigit() else f"{app}: {message}"
    return message, date[1] if date else None


def _strip_date(text: str, year: int | None) -> tuple[str, datetime | None]:
    """Remove a leading date (and the syslog host and kernel tag after it)."""
    if not text:
        return text, None
    if text[0] == "[":
        match = _DMESG_T.match(text)
        if not match:
            reltime = _DMESG_RELTIME.match(text)
            return (text[reltime.end():] if reltime else text), None
        mon, day, hh, mm, ss, yyyy = match.groups()
        return text[match.end():], _datetime(yyyy, _month(mon), day, hh, mm, ss)
    if text[0].isdigit():
        date = _iso_date(text) or _epoch_date(text) or _bsd_date(text, year)
    else:
        date = _short_full_date(text) or _ctime_date(text) or _bsd_date(text, year)
    if date is None:
        return _strip_kernel_tag(text), None
    end, wall = date
    return _strip_host(text[end:]), wall


def _strip_kernel_tag(text: str) -> str:
    """ "host kernel: msg" whose date was cut off, or "kernel: msg" continuing a wrapped line."""
    if "kernel:" not in text[:80]:
        return text
    match = _BARE_KERNEL_TAG.match(text) or _HOST_KERNEL.match(text)
    return text[match.end():] if match else text


def _iso_date(text: str) -> tuple[int, datetime | None] | None:
    match = _ISO.match(text)
    if not match:
        return None
    y, mo, d, hh, mm, ss, frac, offset = match.groups()
    try:
        tz = _offset(offset)
    except ValueError:  # "+99:00": no clock is a day or more off UTC (a forged or corrupt line)
        return match.end(), None
    return match.end(), _datetime(y, int(mo), d, hh, mm, ss, _fraction_usec(frac), tz)


def _short_full_date(text: str) -> tuple[int, datetime | None] | None:
    match = _SHORT_FULL.match(text)
    if not match:
        return None
    y, mo, d, hh, mm, ss, frac = match.groups()
    return match.end(), _datetime(y, int(mo), d, hh, mm, ss, _fraction_usec(frac))


# OpenWrt logread: "Sun Jun 29 15:57:11 2025 kern.warn kernel: [  123.456] msg" (ctime(3)
# date, facility.level, then the tag; no host).
_CTIME = re.compile(
    r"[^\W\d_]{2,}\.? +([^\W\d_]{2,}\.?|\d{1,2}月) +(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2}) (\d{4}) (?:[a-z]+\.[a-z]+ )?"
)


def _ctime_date(text: str) -> tuple[int, datetime | None] | None:
    match = _CTIME.match(text)
    if not match:
        return None
    mon, day, hh, mm, ss, yyyy = match.groups()
    # no host follows: "kernel: " is the tag itself, which _strip_host's last rule takes off
    return match.end(), _datetime(yyyy, _month(mon), day, hh, mm, ss)


def _epoch_date(text: str) -> tuple[int, datetime | None] | None:
    match = _EPOCH_STAMP.match(text)
    if not match:
        return None
    seconds = int(match.group(1)) + _fraction_usec(match.group(2)) / 1e6
    return match.end(), datetime.fromtimestamp(seconds, UTC)


def _bsd_date(text: str, year: int | None) -> tuple[int, datetime | None] | None:
    match = _BSD.match(text)
    if not match:
        return None
    return match.end(), _bsd_datetime(match.group(), year)


@lru_cache(maxsize=64)
def _bsd_datetime(stamp: str, year: int | None) -> datetime | None:
    """The time of a syslog date; cached, as the lines of one report share a few dates."""
    match = _BSD.match(stamp)
    if match is None:  # never: the stamp is what _BSD matched
        return None
    mon, day, hh, mm, ss, frac = match.groups()
    return _datetime(year, _month(mon), day, hh, mm, ss, _fraction_usec(frac))


def _strip_host(text: str) -> str:
    """After a date: drop "host kernel: ", reduce "host prog[pid]: …" to "prog[pid]: …"."""
    match = _HOST_KERNEL.match(text)
    if match:
        return text[match.end():]
    match = _HOST_TAG.match(text)
    if match:
        return text[match.end():]
    match = _BARE_KERNEL_TAG.match(text)  # "kernel: msg" with no host (some exports)
    return text[match.end():] if match else text


# dmesg output glued to the previous record: "…7802 7802[30104.278944] Node 0 …".
_GLUED = re.compile(r"(?<=\S)\[\s*\d+\.\d{6}\] ")


def messages(text: str) -> list[str]:
    """The kernel lines in one message: rsyslog-joined lines, dmesg records glued together."""
    return [piece for piece, _ in pieces(text)]


_LINE_BREAK = re.compile(r"\n|#012")
# Where the kernel prints a cgroup's path, which any user names as they like in a delegated
# subtree ("Memory cgroup stats for /…:", the summary's cpuset=, oom_memcg=/task_memcg=, v1's
# "Task in /… killed as a result of limit of /…", oom.group's "Tasks in /…"): a name may hold
# "#012", a "\n" or a glued "[ 1.000000] " and kill lines (review R38), so past one no separator
# is one. (No words of the kernel's after it tell where the name ended: printk may end the record
# inside the name, where its line is full, and the owner chooses what the record ends with.)
_PATH_OPENING = compile_on_first_use(r"oom-kill:constraint=|stats for /|memcg=/|Tasks? in /|limit of /|cpuset=")


def owned(text: str) -> int:
    """Where the names `text` holds that their owners chose (a cgroup's path) begin: past there
    nothing is cut (len(text): it holds none)."""
    path = _PATH_OPENING.search(text)
    return len(text) if path is None else path.start()


def pieces(text: str) -> list[tuple[str, str]]:
    """The kernel lines in one message, each with the separator that stood before it ("" for
    the first, "\n", rsyslog's "#012" or a glued dmesg record's ""), so that a line cut by a
    separator inside a process name can be joined back as it was printed. rsyslog's "#011"
    (a tab) is undone. Nothing is cut past a cgroup's path (owned())."""
    if "\n" in text or "#012" in text:
        found, start, separator = [], 0, ""
        for match in _LINE_BREAK.finditer(text, 0, owned(text)):
            found.append((text[start:match.start()], separator))
            start, separator = match.end(), match.group()
        found.append((text[start:], separator))
    else:
        found = [(text, "")]
    if "#011" in text:
        found = [(piece.replace("#011", "\t"), separator) for piece, separator in found]
    if text.find("[", 1) < 0:  # a task-table row's only "[" is its first character
        return found
    # A glued dmesg record's separator is its uptime "[ 1234.567890] ": a record of its own.
    split: list[tuple[str, str]] = []
    for piece, separator in found:
        start = 0
        for match in _GLUED.finditer(piece, 0, owned(piece)):
            split.append((piece[start:match.start()], separator))
            start, separator = match.end(), match.group()
        split.append((piece[start:], separator))
    return split



class Stamp:
    """Where and when a line was logged, copied onto the kills it completes. `raw` is the
    physical line as written (None for the live sources' bare messages): the host it names
    is read from it only when a kill is made. `notes` name the enclosures undone to read it
    (a kill's evidence), `sender` the tag or journal identifier that sent it, `host` the
    host its enclosure named (a journal entry's _HOSTNAME) or the one line_host(raw) reads,
    where the shape of its wrapper already said it (shapes._Shape.host())."""

    __slots__ = ("boot_id", "form", "host", "mono_usec", "notes", "raw", "sender", "source", "time")

    def __init__(self, line: KernelLine, time: datetime | None, mono_usec: int | None,
                 raw: str | None = None, notes: tuple[str, ...] = (), host: str | None = None,
                 form: str | None = None) -> None:
        self.source, self.boot_id = line.source, line.boot_id
        self.time, self.mono_usec = time, mono_usec
        self.raw, self.notes, self.host = raw, notes, host
        self.sender: str | None = None
        # line_format(raw), where the wrapper's shape already says it (no outer wrapper)
        self.form = form

    def _copy(self) -> Stamp:
        stamp = Stamp.__new__(Stamp)
        stamp.source, stamp.boot_id, stamp.time, stamp.mono_usec = self.source, self.boot_id, self.time, self.mono_usec
        stamp.raw, stamp.notes, stamp.host, stamp.sender = self.raw, self.notes, self.host, self.sender
        stamp.form = self.form
        return stamp

    def with_times(self, time: datetime | None, mono_usec: int | None) -> Stamp:
        """The same place, with times found later (in a wrapper learned from the line)."""
        stamp = self._copy()
        stamp.time, stamp.mono_usec = time, mono_usec
        return stamp

    def with_sender(self, sender: str | None) -> Stamp:
        """The same place, with the sender its message was found to have."""
        stamp = self._copy()
        stamp.sender = sender
        return stamp

    def noted(self, note: str) -> Stamp:
        """The same place, with one more thing done to read it (a kill's evidence)."""
        stamp = self._copy()
        stamp.notes = (*self.notes, note)
        return stamp

    def fields(self) -> dict:
        return {"source": self.source, "boot_id": self.boot_id, "time": self.time, "mono_usec": self.mono_usec,
                "host": self.host or (line_host(self.raw) if self.raw else None)}


# A host name as syslog daemons and journald write it: a DNS name or an address.
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
HOST_SEARCH_CHARS = 160  # how far into a line a date (and the host after it) is looked for


# _strip_date's dates after a digit, and after anything else, each tried in its order (an
# alternation takes the first alternative that matches, as `a or b or c` does).
_NUMERIC_DATE = compile_on_first_use("|".join(f"(?:{p.pattern})" for p in (_ISO, _EPOCH_STAMP, _BSD)))
_NAMED_DATE = compile_on_first_use("|".join(f"(?:{p.pattern})" for p in (_SHORT_FULL, _CTIME, _BSD)))


def line_host(raw: str) -> str | None:
    """The host a log line names: syslog's after its date ("Jun 29 15:57:11 build-07 kernel:
    …", ISO and journalctl dates alike), RFC 5424's HOSTNAME; None where it names none
    (dmesg, kmsg, a bare message). The date may stand behind an outer wrapper
    ("kern.log:12:Jun 29 …" from grep -Hn, a line number, a quote), as the parser finds the
    kernel's words anywhere: each place after a blank, colon or quote mark is tried."""
    head = raw[:HOST_SEARCH_CHARS]
    host = _host_at(head.lstrip())  # most lines: the date opens the line
    if host is not None:
        return host
    for start, c in enumerate(head, 1):
        if c in " \t:>|`":
            host = _host_at(head[start:].lstrip())
            if host is not None:
                return host
    return None


def _host_at(text: str) -> str | None:
    if text.startswith("<"):  # RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME APP …"
        priority = _PRIORITY.match(text)
        rfc5424 = _RFC5424.match(text[priority.end():]) if priority else None
        if rfc5424:
            host = rfc5424.group(2)
            return host if host != "-" and _HOSTNAME.fullmatch(host) else None
        return None
    if not text[:1].isalnum():
        return None
    # where _strip_date's date ends (its time is not needed): the first of its dates that matches
    date = (_NUMERIC_DATE if text[0].isdigit() else _NAMED_DATE).match(text)
    if date is None:
        return None
    after = text[date.end():]
    tagged = _HOST_KERNEL.match(after) or _HOST_TAG.match(after)
    if tagged is None:
        return None
    host = tagged.group(0).split()[0]
    return host if _HOSTNAME.fullmatch(host) else None




# ------------------------------------------------------------- decoding pasted text
#
# `import` reads text pasted from anywhere: mail (quoted-printable, "> " quotes, lines wrapped
# at 60-80 columns), web pages (HTML entities), terminals (ANSI colours, CR), JSON exports
# (journalctl -o json, Kubernetes events). Decoder undoes these enclosures line by line (their
# readers: enclosures.py); the live sources never need it (they read the kernel's and journald's
# own records, and the daemon's parser is not lenient).

LINE_CHARS = 65_536  # a longer physical line is cut here (and counted): printk lines are < 1 kB
JOIN_CHARS = 4_096  # a line joined from wrapped pieces is never longer than this

_JSON_STRUCTURE = compile_on_first_use(r'\s*(?:[{}\[\],]+\s*$|"[\w.@/-]{1,64}"\s*:)')


class Decoder:
    """Undoes what encloses log text pasted from anywhere, one physical line at a time.

    lines() returns the logical lines in a physical one, each with its sender when the
    enclosure names it: journald's `_TRANSPORT=kernel` is "kernel", another entry's
    SYSLOG_IDENTIFIER its tag. A quoted-printable soft line break ("=" at the end) holds
    the line until the next one arrives (`holding`).

    Only a lenient parser (import's) reads lines through it; the daemon's parser holds one only
    to ask whether it holds a line (never). The readers of the enclosures (JSON, CSV,
    quoted-printable, HTML entities, ANSI colours, CR: enclosures.py) are loaded at the first
    line lines() reads: this Decoder then becomes an enclosures.Reader (the same state, and
    the readers as its methods, called as directly as its own). plain() needs none of them.
    """

    def __init__(self) -> None:
        self.quoted_printable = False
        self.cut = 0  # physical lines longer than LINE_CHARS, cut
        self._soft: str | None = None
        # Of the last physical line: the enclosures undone (a kill's evidence), and the host
        # and time a journal entry named (journalctl -o json: _HOSTNAME, __REALTIME_TIMESTAMP).
        self.notes: tuple[str, ...] = ()
        self.entry: Where | None = None
        self._entries: list[Where | None] | None = None  # one per line, where they differ (a JSON array)
        self._table: CsvColumns | None = None  # the columns a CSV export's header named
        # An export's entries whose times go backwards (listed newest first, as gcloud, logcli
        # and Kibana list them by default, or two hosts' exports run together): a report read
        # so far must not take the lines that follow (`backwards`, for the last lines()).
        self.backwards = False
        self._last_time: datetime | None = None

    @property
    def holding(self) -> bool:
        return self._soft is not None

    def entry_of(self, n: int) -> Where | None:
        """The host and time named by the entry the `n`th line of the last lines() came in."""
        return self.entry if self._entries is None else self._entries[n]

    def plain(self, raw: str) -> str | None:
        """lines() of a line in no enclosure (most lines): the line itself, sender unnamed, no
        notes. None where lines() may have something to undo; then nothing has changed."""
        if self._soft is not None or self.quoted_printable or len(raw) > LINE_CHARS:
            return None
        raw = raw.rstrip("\r\n")
        # what lines() would act on: quoted-printable (see _quoted_printable), ANSI colours,
        # HTML entities ("&"), JSON (a quote, or a piece of a pretty-printed document), a bare CR
        if (raw.endswith("=") or "=3D" in raw or "\x1b" in raw or "&" in raw or '"' in raw or "\r" in raw
                or (not raw[:1].isalnum() and _JSON_STRUCTURE.match(raw))):  # (it opens with a blank or a mark)
            return None
        self.notes, self.entry = (), None
        return raw

    def lines(self, raw: str) -> list[tuple[str, str | None]]:
        """The logical lines of one physical line, with their senders (None: not named):
        enclosures.Reader.lines(), this Decoder made one at the first call."""
        from watchdog_oom.parse.enclosures import Reader

        self.__class__ = Reader
        return self.lines(raw)

    def flush(self) -> list[tuple[str, str | None]]:
        """A soft-broken line that no continuation followed."""
        soft, self._soft = self._soft, None
        return [] if soft is None else [(soft, None)]


# What stands before a message in a line whose wrapper is not one of the above.
# "… host prog[pid]: " (syslog) names a sender; a kernel message from any other sender is
# a forgery (logger(1)) and is refused.
# The tag is a whole run of its characters (none is "[" or ":", which must follow it): possessive.
_TAG_AT_END = compile_on_first_use(r"(^|\s)([\w.@/()-]{1,64}+)(?:\[\d+\])?:\s+$")


def prefix_sender(prefix: str, *, headed: bool = False) -> str | None:
    """The syslog tag that ends a line's prefix ("host prog[pid]: "), or None. A tag is only
    believed after a syslog date (`headed`, or a time in the prefix): "of memory: " at the
    start of a line is what a wrap left of "Out of memory: "."""
    match = _TAG_AT_END.search(prefix[-80:])
    if match is None or not (headed or _CLOCK.search(prefix)):
        # The kill's words further into a syslog line: inside its sender's own message
        # ("Jun 3 10:00:00 host alice: x,\"…\",\"Out of memory: Killed process 1 …\"", the
        # date and host taken off before): that sender it is (a user's `logger` line is no
        # kernel's kill, whatever it quotes).
        opening = _TAG_AT_START.match(prefix) if headed else None
        return opening.group(1) if opening is not None else None
    return match.group(2)


# The tag a syslog line's message opens with, once its date and host are off ("alice[42]: ").
_TAG_AT_START = compile_on_first_use(r"\s*([\w.@/()-]{1,64}+)(?:\[\d+\])?:\s")


_CLOCK = compile_on_first_use(r"\d:\d\d:\d\d")


def prefix_time(prefix: str, year: int | None) -> tuple[datetime | None, int | None]:
    """The wall time or kernel usec a prefix holds after an unknown outer wrapper (grep -n,
    cat -n, a bullet): tried from each place a date could start."""
    starts = [0] + [m.end() for m in _WORD_GAP.finditer(prefix[:200])][:16]
    found_wall: datetime | None = None
    for start in starts:  # the outermost date, and the kernel's uptime wherever it stands
        _, wall, mono, _fresh = unwrap(prefix[start:] + "x", year=year)
        found_wall = found_wall or wall
        if mono is not None:
            return found_wall, mono
    return found_wall, None


_WORD_GAP = compile_on_first_use(r"[\s:|\t-]+(?=[\w\[<])")


def shape(prefix: str) -> re.Pattern | None:
    """A pattern for the prefixes of a report's other lines, learned from one anchor line's:
    its digits may change (line numbers, times) and its blanks widen or narrow."""
    if len(prefix) > 200 or not _STRUCTURAL.search(prefix):
        return None  # a word or two is text a wrap left, not a wrapper
    parts = []
    for run in _RUNS.findall(prefix):
        if run[0].isdigit():  # possessive: a learned shape never backtracks (linear)
            parts.append(r"\d++")
        elif run[0].isspace():
            parts.append(r"\s*+")
        elif len(run) <= 4 and run.isalpha():  # a month or weekday name changes too
            parts.append(r"[^\W\d_]{1,4}+")
        else:
            parts.append(re.escape(run))
    return re.compile("".join(parts))


_STRUCTURAL = compile_on_first_use(r"\d|[^\w\s]")  # a digit or a mark: what wrappers are made of
_RUNS = compile_on_first_use(r"\d+|\s+|[^\W\d_]+|[^\w\s]+|_+")


# --------------------------------------------------------------- a kill's evidence
#
# What a line looked like, said with a kill read from it (`import` shows it): its log
# format, the outer wrapper before it, and the tag that sent it.

_OUTER_NAMES = (
    (compile_on_first_use(r"[^\s:]+:\d+[:-]"), "grep -Hn"),
    (compile_on_first_use(r"\d+[:-](?!\d)"), "grep -n"),
    (compile_on_first_use(r"\s*\d+(?:\t|  )\s*"), "line numbers (cat -n, nl)"),
    (compile_on_first_use(r"[-*+]\s+"), "markdown bullet"),
    (compile_on_first_use(r"(?:>\s*)+"), "mail quote"),
    (compile_on_first_use(r"`+"), "markdown code"),
)
_FORMATS = (
    (_KMSG, "/dev/kmsg record"),
    (compile_on_first_use(r"<\d{1,3}>1 "), "RFC 5424 syslog"),
    (compile_on_first_use(r"<\d{1,3}>"), "syslog priority"),
    (_DMESG_T, "dmesg -T"),
    (_UPTIME, "dmesg"),
    (_DMESG_RELTIME, "dmesg -H"),
    (_ISO, "ISO 8601 syslog or journalctl"),
    (_SHORT_FULL, "journalctl short-full"),
    (_EPOCH_STAMP, "journalctl short-unix"),
    (_CTIME, "logread (OpenWrt)"),
    (_BSD, "syslog"),
)
# "host kernel: msg", also "host kernel: [ 1234.567890] msg" (syslog of a kernel that prints its uptime)
_TAG_BEFORE = compile_on_first_use(r"(?:^|[\s>:|`])([\w.@/()-]{1,64}+)(?:\[\d+\])?:\s*(?:\[\s*\d+\.\d+\]\s*)?$")
_RFC5424_APP = compile_on_first_use(r"<\d{1,3}>1 \S+ \S+ (\S+) ")


def _first_of(named: tuple[tuple[re.Pattern, str], ...],
              compiler: Callable[[str], re.Pattern] = re.compile) -> tuple[re.Pattern, dict[str, str]]:
    """One pattern trying each of `named` in turn (an alternation takes the first alternative
    that matches), and the name of each alternative's group: match.lastgroup says which."""
    groups = {f"n{i}": name for i, (_, name) in enumerate(named)}
    return compiler("|".join(f"(?P<n{i}>{pattern.pattern})" for i, (pattern, _) in enumerate(named))), groups


_ANY_FORMAT, _FORMAT_NAMES = _first_of(_FORMATS, compile_on_first_use)
# An outer wrapper stands before a line's format only in pasted text (grep -n, a quote...): the
# live sources' lines open with their format, so line_format() never asks for these there.
_ANY_OUTER, _OUTER_NAMES_OF = _first_of(_OUTER_NAMES, compile_on_first_use)


def line_format(raw: str) -> tuple[str | None, tuple[str, ...]]:
    """The log format of a physical line (None: a bare message), and the outer wrappers
    before it (grep -n, line numbers, a bullet, mail quotes), outermost first."""
    text, outers = raw.lstrip(), list[str]()
    for _ in range(4):
        found = _ANY_FORMAT.match(text)
        if found is not None:
            return _FORMAT_NAMES[found.lastgroup or ""], tuple(outers)
        match = _ANY_OUTER.match(text)
        if match is None:
            break
        outers.append(_OUTER_NAMES_OF[match.lastgroup or ""])
        text = text[match.end():].lstrip()
    return None, tuple(outers)


def line_tag(raw: str, message: str) -> str | None:
    """The syslog tag (or RFC 5424 APP-NAME) that stood before `message` in `raw`."""
    head = raw[:HOST_SEARCH_CHARS]
    app = _RFC5424_APP.search(head) if "<" in head else None
    if app is not None:
        return app.group(1)
    at = raw.find(message[:24]) if message else -1
    if at <= 0:
        return None
    return tag_before(raw[max(0, at - 80):at])


# What may follow a tag's colon to the end (blanks, the kernel's uptime), and what may stand before its "[pid]".
_AFTER_TAG = compile_on_first_use(r"\s*(?:\[\s*\d+\.\d+\]\s*)?\Z")
_TAG_PID = compile_on_first_use(r"\[\d+\]\Z")
_TAG_RUN_BACKWARDS = compile_on_first_use(r"[\w.@/()-]{0,65}")


def tag_before(window: str) -> str | None:
    """The tag of _TAG_BEFORE.search(window) (group 1), found from the end: the pattern's
    colon is the window's last (nothing after it may hold one), "[pid]" and the tag (a run of
    1-64 tag characters that opens the window or follows a blank or a mark) stand right
    before it. A search tries the pattern at every offset of the window: most of a kill's
    evidence's cost."""
    colon = window.rfind(":")
    if colon < 0 or _AFTER_TAG.match(window, colon + 1) is None:
        return None
    end = colon
    if window.endswith("]", 0, colon):  # "tag[pid]:"
        end = window.rfind("[", 0, colon)
        if end < 0 or _TAG_PID.match(window[:colon], end) is None:
            return None
    found = _TAG_RUN_BACKWARDS.match(window[max(0, end - 65):end][::-1])
    run = found.end() if found is not None else 0
    start = end - run
    if not 0 < run <= 64 or not (start == 0 or window[start - 1].isspace() or window[start - 1] in ">:|`"):
        return None
    return window[start:end]

"""What a log writer put around a kernel message, and taking it off.

Owns the wrappers of one log line: the kmsg record header, dmesg uptime or `-T` date in any
locale, syslog / journalctl / ISO 8601 prefixes with their host and tag, rsyslog `#012`
escapes, quote marks of a paste; and the Stamp (where and when a line was logged) that the
recognisers copy onto the kills a line completes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from watchdog_oom.model import KernelLine

# --------------------------------------------------------------------------- wrappers

# /dev/kmsg record (3.5+): "prio,seq,usec,flags[,…];message".
_KMSG = re.compile(r"(\d+),(\d+),(\d+),[^;]*;")
# syslog(2) / `dmesg -r` priority prefix "<4>".
_PRIORITY = re.compile(r"<\d{1,3}>")
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
_HOST_KERNEL = re.compile(r"\S+\s+kernel:\s?")
_HOST_TAG = re.compile(r"\S+\s+(?=[\w.@/-]+(?:\[\d+\])?:(?:\s|$))")
_BARE_KERNEL_TAG = re.compile(r"kernel:\s?")
# A paste: "> " quote marks (e-mail, markdown), a markdown inline-code "`", leading blanks.
_QUOTE = re.compile(r"(?:[>`]\s*)+")
# rsyslog escapes control characters as "#ooo" octal: "#012" is a newline, "#011" a tab.
_RSYSLOG_ESCAPE = re.compile(r"#0(1[12])")

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
    text = raw.rstrip("\r\n").lstrip()
    if text.startswith((">", "`")):
        text = text[_QUOTE.match(text).end():]
    mono: int | None = None

    kmsg = _KMSG.match(text)
    if kmsg:
        return text[kmsg.end():], None, int(kmsg.group(3))
    if text.startswith("<"):
        priority = _PRIORITY.match(text)
        text = text[priority.end():] if priority else text

    text, wall = _strip_date(text, year)
    uptime = _UPTIME.match(text) if text.startswith("[") else None
    if uptime:
        mono = int(uptime.group(1)) * 1_000_000 + _fraction_usec(uptime.group(2))
        text = text[uptime.end():]
        # journalctl -o short-monotonic puts "host kernel: " after the uptime.
        host = _HOST_KERNEL.match(text)
        if host:
            text = text[host.end():]
    if "#01" in text:
        text = _RSYSLOG_ESCAPE.sub(lambda m: "\n" if m.group(1) == "12" else "\t", text)
    return text, wall, mono


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
        date = _short_full_date(text) or _bsd_date(text, year)
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
    return match.end(), _datetime(y, int(mo), d, hh, mm, ss, _fraction_usec(frac), _offset(offset))


def _short_full_date(text: str) -> tuple[int, datetime | None] | None:
    match = _SHORT_FULL.match(text)
    if not match:
        return None
    y, mo, d, hh, mm, ss, frac = match.groups()
    return match.end(), _datetime(y, int(mo), d, hh, mm, ss, _fraction_usec(frac))


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
    mon, day, hh, mm, ss, frac = _BSD.match(stamp).groups()
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
    lines = text.split("\n") if "\n" in text else [text]
    if text.find("[", 1) < 0:  # a task-table row's only "[" is its first character
        return lines
    return [part for line in lines for part in _GLUED.split(line)]



class Stamp:
    """Where and when a line was logged, copied onto the kills it completes."""

    __slots__ = ("boot_id", "mono_usec", "source", "time")

    def __init__(self, line: KernelLine, time: datetime | None, mono_usec: int | None) -> None:
        self.source, self.boot_id = line.source, line.boot_id
        self.time, self.mono_usec = time, mono_usec

    def fields(self) -> dict:
        return {"source": self.source, "boot_id": self.boot_id,
                "time": self.time, "mono_usec": self.mono_usec}



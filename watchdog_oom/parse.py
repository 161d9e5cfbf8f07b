"""Turns kernel log text into OomKill records: one per process an OOM killer killed.

Pure: text in, values out; no clock, no I/O beyond the stream `iter_kills` is handed.

Three layers:

* `strip_wrapper` removes what a log writer put around a kernel message (kmsg record
  header, dmesg uptime or `-T` date, syslog / journalctl / ISO 8601 prefixes, rsyslog
  `#012` escapes, quote marks of a paste) and returns the message with its times.
* `OomParser` joins the lines of one kernel OOM report (header, memory state, task
  table, `oom-kill:` summary, victim line) into kills, and recognises the user-space
  killers earlyoom, systemd-oomd and nohang. It hands a kill on as soon as its
  `Killed process` line arrives.
* `iter_kills` reads a large log fast: it finds the lines holding a kill word with a
  plain substring search and feeds the parser only the reports around them, giving the
  same kills as feeding every line (for reports that span less than `_LOOKBACK` bytes).

Kernel formats follow mm/oom_kill.c and mm/memcontrol.c from 2.4 to 6.x; the comment at
each pattern names the versions that print it. Where the text is ambiguous the labelling
rules of tests/data/oom_logs/README.md (the shared fixture rules) decide.
"""

from __future__ import annotations

import ctypes
import heapq
import re
from collections import deque
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import BinaryIO, Callable, Iterator

from watchdog_oom.model import KernelLine, OomKill, TaskRow

# Bounds that keep a huge report (a 50 000-row task table) from costing memory.
TASK_TABLE_ROWS = 10
MEMORY_INFO_LINES = 64
MEMORY_INFO_LINE_CHARS = 300
# A report whose kill has not come after this many lines (task-table rows not counted)
# is abandoned: the kernel panicked, the log was cut, or the kill went unlogged.
REPORT_LINES = 20_000
# A nohang victim description ends with its corrective action within this many lines.
NOHANG_BLOCK_LINES = 100
PAGE_KB = 4  # the task table counts pages; every architecture the fixtures show uses 4 kB

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
        return timezone.utc
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
    return match.end(), datetime.fromtimestamp(seconds, timezone.utc)


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


# ------------------------------------------------------------------ kernel report lines

# Header, printed first by dump_header(). Invoker name up to 15 chars, may hold ':' or ' '.
#   2.6.9-2.6.1x: "oom-killer: gfp_mask=0xd0, order=0" (no name)
#   2.6.2x-2.6.35: "X invoked oom-killer: gfp_mask=0x201d2, order=0, oomkilladj=0"
#   2.6.36-3.x:    "…, order=0, oom_adj=0, oom_score_adj=0"
#   4.x:           "gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null), order=0, oom_score_adj=0"
#   5.x-6.x:       "gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
_HEADER = re.compile(
    r"(?:(.*?) invoked )?oom-killer: gfp_mask=(0x[0-9a-fA-F]+(?:\([^)]*\))?)"
    r",(?: nodemask=[^,]*,)? order=(-?\d+)"
)
# The invoker's pid, from dump_stack(): "CPU: 1 PID: 4282 Comm: node Not tainted …"
# (6.x: "CPU: 1 UID: 104 PID: …"); 2.6.x: "Pid: 23212, comm: php-fpm Not tainted …".
_CPU = re.compile(
    r"(?:CPU: \d+ (?:UID: \d+ )?PID: (\d+) Comm: |Pid: (\d+), comm: )(.*?)"
    r" (?:Not tainted|Tainted:|Kdump:)"
)
# Memory-cgroup report, mem_cgroup_print_oom_info() 3.x-4.18 (4.19+ moved it to oom-kill:).
_TASK_IN = re.compile(r"Task in (.+) killed as a result of limit of (.+)")
# mem_cgroup_print_oom_group() 4.19+, printed after the victim's kill line.
_TASKS_IN = re.compile(r"Tasks in (.+) are going to be killed due to memory\.oom\.group set")
# dump_oom_summary() 4.19+; cpuset and memcg parts exist only with those configs.
_OOM_KILL = re.compile(r"oom-kill:constraint=(\w+)")
_OOM_KILL_MEMCG = re.compile(r",oom_memcg=(.*?),task_memcg=")
_OOM_KILL_TASK_MEMCG = re.compile(r",task_memcg=(.*?),task=")
_OOM_KILL_TASK = re.compile(r",task=(.*),pid=(\d+),uid=(\d+)$")
# The reason before the victim: "Out of memory", "Memory cgroup out of memory",
# "Out of memory (oom_kill_allocating_task)"; 2.4-2.6.1x "Out of Memory".
_REASON = r"(?:(Out of [Mm]emory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): )?"
# The selection, 2.6.1x-5.0 (removed with the child heuristic in 5.1):
#   "Out of Memory: Kill process 1234 (x) score 5 and children." (2.6.1x)
#   "Out of memory: kill process 1234 (x) score 5 or a child"   (2.6.2x-2.6.3x)
#   "Memory cgroup out of memory: Kill process 1234 (x) score 5 or sacrifice child" (3.x-5.0)
_SELECTION = re.compile(
    _REASON + r"[Kk]ill process (\d+) \((.*)\) score (-?\d+)"
    r" (?:or sacrifice child|or a child|and children\.?)$"
)
# The victim, __oom_kill_process() / oom_kill_task():
#   2.4-2.6.1x  "Out of Memory: Killed process 1234 (x)."
#   2.6.2x      "Killed process 1234 (x)"
#   RHEL6       "Killed process 1234, UID 27, (x) total-vm:…kB, anon-rss:…kB, file-rss:…kB"
#   2.6.36-4.x  "Killed process 1234 (x) total-vm:…kB, anon-rss:…kB, file-rss:…kB[, shmem-rss:…kB]"
#   5.1+        "Out of memory: Killed process 1234 (x) total-vm:…, UID:0 pgtables:…kB oom_score_adj:0"
#   RHEL7.7+    "Killed process 1234 (x), UID 0, total-vm:…kB, anon-rss:…kB, file-rss:…kB, shmem-rss:…kB"
# The name is the text between the first "(" and the last ")" before the figures; a figure
# list a person trimmed in a paste may start at any of the kB figures.
_KILLED = re.compile(
    _REASON + r"Killed process (\d+)(?:, UID (\d+),)? \((.*)\)(?:, UID (\d+),)?"
    r"(\.|\s+(?:total-vm|vsz|anon-rss|file-rss):.*)?$"
)
_FIGURE = re.compile(r"([A-Za-z_-]+):(-?\d+)")
_FIGURE_FIELDS = {
    "total-vm": "total_vm_kb",
    "anon-rss": "anon_rss_kb",
    "file-rss": "file_rss_kb",
    "shmem-rss": "shmem_rss_kb",
    "pgtables": "pgtables_kb",
    "oom_score_adj": "oom_score_adj",
    "UID": "uid",
}
# dump_tasks() header; its columns changed many times (cpu/oom_adj 2.6, nr_ptes 3.x,
# pgtables_bytes 4.15, rss_anon/rss_file/rss_shmem 6.x), so rows are read by its names.
_TABLE_HEADER = re.compile(r"\[\s*pid\s*\]\s+(uid\s+tgid\s+total_vm\s+rss\b.*\bname)\s*$")
# Memory state printed with the report: show_mem() "Mem-Info:" ("Mem-info:" before 2.6.2x) or
# mem_cgroup_print_oom_meminfo() "memory: usage …" (memcg).
_MEMORY_START = ("Mem-Info:", "Mem-info:", "memory: usage", "Memory cgroup stats for ")
# 2.6.x-3.x show_mem() per-CPU pageset lines ("CPU    7: hi:  186, btch:  31 usd:   7"):
# one per CPU and zone, too many to keep and of no use after the fact.
_PER_CPU = re.compile(r"CPU\s+\d+: hi:")

# ------------------------------------------------------------- user-space killers

_TAG = r"(?:{}(?:\[\d+\])?:\s+)"
# earlyoom 1.x kill.c: 'sending SIGTERM to process 1234 uid 1000 "firefox": oom_score 600,
# VmRSS 5000 MiB, cmdline "…"' (1.0-1.2: "badness 600" and no uid; 1.8: oom_score_adj,
# "badness N KiB", "ordering x"). The name may hold '"': anchor on '": '.
_EARLYOOM_SEND = re.compile(
    _TAG.format("earlyoom") + r'?sending (SIGTERM|SIGKILL) to process (\d+)(?: uid (\d+))? "(.*?)": (.*)$'
)
_EARLYOOM_DETAIL = re.compile(r'(oom_score_adj|oom_score|badness|VmRSS):? (-?\d+)|cmdline "(.*)"$')
# Before "sending SIGTERM" (1.3, 2019) earlyoom named the signal by number, after a
# "Low Memory! At or below sigterm limits" or "low memory! at or below SIGTERM limits":
#   2018 (1.0-1.1): "Killing process 'bash' with signal 15, pid: 5874, badness: 538, VmRSS: 3160 MiB"
#   early 2019:     'killing process 27541 "bash" with signal 15: badness 550, VmRSS 7609 MiB'
_EARLYOOM_SIGNAL = re.compile(
    _TAG.format("earlyoom") + r"""?(?:Killing process '(.*)' with signal (\d+), pid: (\d+)"""
    r"""|killing process (\d+) "(.*)" with signal (\d+):)(.*)$"""
)
_SIGNAL_NAMES = {"9": "SIGKILL", "15": "SIGTERM"}
# earlyoom 0.x printed to stdout: "Out of memory! avail: 0 MiB < min: 587 MiB" and on the
# next line "Killing process 8230 sudo".
_EARLYOOM_BANNER = re.compile(_TAG.format("earlyoom") + r"?(?:Out of memory!|[Ll]ow [Mm]emory!) ")
_EARLYOOM_KILLING = re.compile(_TAG.format("earlyoom") + r"?Killing process (\d+) (.+)$")
# systemd-oomd (247+) kills a whole cgroup, src/oom/oomd-manager.c:
#   "Killed /x.service due to memory pressure for /y.slice being 80.00% > 50.00% for > 20s
#    with reclaim activity"
#   "Killed /x.scope due to swap used (…) / total (…) being more than 90.00%"   (247-248)
#   "Killed /x.scope due to memory used (…) / total (…) and swap used (…) / total (…) …" (249+)
#   "Marked /x.service for killing due to memory pressure for /y.slice being …" (later
#    releases queue the kill and carry it out at once; PID 1 then logs "systemd-oomd killed
#    N process(es) in this unit"; both wordings exist for swap too)
_OOMD = re.compile(
    _TAG.format("systemd-oomd")
    + r"?(?:Killed|Marked) (/.*?)(?: for killing)? due to (memory pressure|swap used|memory used)(.*)$"
)
_OOMD_PRESSURE = re.compile(r" for (\S+) being ([\d.]+%) > ([\d.]+%)")
_UNIT_SUFFIXES = (".service", ".scope", ".slice", ".socket", ".mount", ".swap")
# nohang describes its victim on several lines, then acts (src/nohang, 2019-2021):
#   0.1:  "Process with highest badness (found in 4 ms):" / "  PID: 477, Name: Xorg, badness: 12"
#         "Implement a corrective action:" / "  Send SIGTERM to the victim; total response time: 13 ms"
#   0.2+: "Victim status (found in 14ms):"
#         "  PID:       12297, name: tail, state: R, EUID: 1000, SID: 2030 (bash), lifetime: 3s"
#         "  badness:   824, oom_score:  824, oom_score_adj:  0" / "  cgroup_v2: /user.slice/…"
#         "  cmdline:   tail /dev/zero" / "Implementing a corrective action:"
#         "  Sending SIGTERM to the victim"
_NOHANG_TAG = re.compile(_TAG.format(r"nohang(?:-desktop)?"))
_NOHANG_START = ("Victim status", "Process with highest badness")
_NOHANG_FIELD = re.compile(r"(PID|name|E?UID|badness|VmRSS|RSS|cgroup_v[12]):\s+([^,(]*?)\s*(?=,|\(|$)", re.I)
_NOHANG_KEYS = {"euid": "uid", "rss": "vm_rss_mib", "vmrss": "vm_rss_mib"}
_NOHANG_CMDLINE = re.compile(r"cmdline:\s+(.*)$", re.I)
_NOHANG_SEND = re.compile(r"Send(?:ing)? (SIGTERM|SIGKILL) to the victim")
_USERSPACE_MEMORY = 32  # victims remembered to record earlyoom's SIGTERM+SIGKILL once

# dmesg output glued to the previous record: "…7802 7802[30104.278944] Node 0 …".
_GLUED = re.compile(r"(?<=\S)\[\s*\d+\.\d{6}\] ")


class _Report:
    """What one kernel OOM report said so far, until its victims are handed on."""

    def __init__(self) -> None:
        self.invoker: str | None = None
        self.invoker_pid: int | None = None
        self.awaiting_pid = False
        self.gfp_mask: str | None = None
        self.order: int | None = None
        self.constraint: str | None = None
        self.memcg: str | None = None
        self.limit_task_memcg: str | None = None
        self.group_memcg: str | None = None
        self.cgroup_oom = False
        self.summary: dict | None = None  # the oom-kill: line's task, pid, uid, task_memcg
        self.selection: dict | None = None  # "Kill process … score … or sacrifice child"
        self.memory_info: list[str] = []
        self.in_memory_info = False
        self.columns: list[str] | None = None
        self.row_pattern: re.Pattern | None = None
        self.rss_group = 0
        self.tasks: list[tuple[int, int, TaskRow]] = []  # min-heap of the biggest by rss
        self.killed: set[int] = set()
        self.lines = 0

    @property
    def collecting(self) -> bool:
        """Still assembling (no victim yet), so every line matters."""
        return not self.killed

    def add_memory_line(self, text: str) -> None:
        if len(self.memory_info) < MEMORY_INFO_LINES:
            self.memory_info.append(text[:MEMORY_INFO_LINE_CHARS])

    def add_task(self, row: re.Match) -> None:
        """Keep a task-table row if it is among the biggest by rss; only those become TaskRows."""
        key = (int(row.group(self.rss_group)), -int(row.group(1)))
        if len(self.tasks) < TASK_TABLE_ROWS:
            heapq.heappush(self.tasks, (*key, _task_row(self.columns, row)))
        elif key > self.tasks[0][:2]:
            heapq.heapreplace(self.tasks, (*key, _task_row(self.columns, row)))

    def task_table(self) -> tuple[TaskRow, ...]:
        return tuple(row for _, _, row in sorted(self.tasks, reverse=True))


class OomParser:
    """Joins kernel log lines into OomKill records, one feed() at a time.

    A kill is returned by the feed() of its `Killed process` line (or of the user-space
    killer's line). A `Kill process … or sacrifice child` selection that no `Killed
    process` line follows is returned when the next report starts or by flush(), which a
    caller should invoke when its source has been quiet for a moment.
    """

    def __init__(self, *, year: int | None = None) -> None:
        self._year = year
        self._report: _Report | None = None
        self._earlyoom_banner = False
        self._nohang: dict | None = None
        self._nohang_lines = 0
        self._userspace_victims: deque[tuple[str, int, str]] = deque(maxlen=_USERSPACE_MEMORY)

    @property
    def pending(self) -> bool:
        """True when flush() would return a kill (a selection still awaiting its victim)."""
        return self._report is not None and self._report.selection is not None

    @property
    def collecting(self) -> bool:
        """True while a report or a user-space killer's description is being assembled."""
        return bool(
            (self._report is not None and self._report.collecting)
            or self._earlyoom_banner
            or self._nohang is not None
        )

    def feed(self, line: KernelLine) -> list[OomKill]:
        """Take one log line; return the kills it completes (usually none)."""
        if line.wrapped:
            text, wall, mono = strip_wrapper(line.text, year=self._year)
        else:
            text, wall, mono = line.text, None, None
        stamp = _Stamp(line, wall or line.time, mono if mono is not None else line.mono_usec)
        kills: list[OomKill] = []
        for message in _messages(text):
            kills.extend(self._take(message, stamp))
        return kills

    def flush(self) -> list[OomKill]:
        """Return what is pending: a selected victim whose `Killed process` never came."""
        report = self._report
        if report is None or report.selection is None:
            return []
        selection, report.selection = report.selection, None
        pid = selection["pid"]
        kill = _kernel_kill(report, selection, pid, selection["process"], {}, None,
                            selection["line"], selection["stamp"])
        report.killed.add(pid)
        return [kill]

    # -------------------------------------------------------------- one message

    def _take(self, text: str, stamp: "_Stamp") -> list[OomKill]:
        """One kernel message: it joins the open report, starts one, or completes a kill."""
        text = text.strip()
        report = self._report
        if report is not None and report.collecting:
            if report.columns is not None and self._task_row(report, text):
                return []
            report.lines += 1
            if report.lines > REPORT_LINES:
                abandoned = self.flush()
                self._report = None
                return abandoned + self._take(text, stamp)
        banner, self._earlyoom_banner = self._earlyoom_banner, False
        if "Kill" in text or "killing" in text:
            kills = self._kill_line(text, stamp, banner)
            if kills is not None:
                return kills
        if "SIG" in text:
            kills = self._send_line(text, stamp)
            if kills is not None:
                return kills
        if self._nohang is not None or text.startswith(("nohang", *_NOHANG_START)):
            self._nohang_line(text)
        if "oom-killer" in text:
            header = _HEADER.match(text)
            if header:
                return self._header(header)
        if text.startswith("oom-kill:"):
            return self._summary(text)
        if text.startswith("Task"):
            opened = self._task_in(text)
            if opened is not None:
                return opened
        if "uid  tgid" in text:
            header = _TABLE_HEADER.match(text)
            if header:
                return self._table_header(header.group(1))
        if "emory!" in text and _EARLYOOM_BANNER.match(text):
            self._earlyoom_banner = True
            return []
        if report is not None and report.collecting:
            self._report_line(report, text)
        return []

    def _kill_line(self, text: str, stamp: "_Stamp", banner: bool) -> list[OomKill] | None:
        """A line naming a victim; None when "Kill" meant something else."""
        killed = _KILLED.match(text)
        if killed:
            return self._killed(killed, text, stamp)
        selection = _SELECTION.match(text)
        if selection:
            return self._selection(selection, text, stamp)
        oomd = _OOMD.match(text)
        if oomd:
            return self._oomd(oomd, text, stamp)
        signal = _EARLYOOM_SIGNAL.match(text)
        if signal:
            return self._earlyoom_signal(signal, text, stamp)
        killing = _EARLYOOM_KILLING.match(text)
        if killing and (banner or text.startswith("earlyoom")):
            return self._userspace(
                stamp, "earlyoom", int(killing.group(1)), killing.group(2), text, uid=None
            )
        return None

    def _earlyoom_signal(self, match: re.Match, text: str, stamp: "_Stamp") -> list[OomKill]:
        """earlyoom 1.0-1.2's victim line, which names the signal by its number."""
        quoted, number, pid = match.group(1, 2, 3)
        if pid is None:
            pid, quoted, number = match.group(4, 5, 6)
        details = _earlyoom_details(match.group(7))
        return self._userspace(
            stamp, "earlyoom", int(pid), quoted, text, uid=None,
            signal=_SIGNAL_NAMES.get(number, number), **details,
        )

    # ----------------------------------------------------------- report structure

    def _open(self) -> tuple[_Report, list[OomKill]]:
        """Start a new report; a selection left without its victim becomes a kill."""
        kills = self.flush()
        self._report = _Report()
        return self._report, kills

    def _current(self) -> tuple[_Report, list[OomKill]]:
        """The report a structural line belongs to: the open one, or a new one after a kill."""
        if self._report is None or not self._report.collecting:
            return self._open()
        return self._report, []

    def _header(self, header: re.Match) -> list[OomKill]:
        report, kills = self._open()
        report.invoker = header.group(1)
        report.gfp_mask = header.group(2)
        report.order = int(header.group(3))
        report.awaiting_pid = True
        return kills

    def _summary(self, text: str) -> list[OomKill]:
        report, kills = self._current()
        report.in_memory_info = False
        constraint = _OOM_KILL.match(text)
        report.constraint = constraint.group(1) if constraint else None
        if report.constraint == "CONSTRAINT_MEMCG":
            report.cgroup_oom = True
        memcg = _OOM_KILL_MEMCG.search(text)
        if memcg:
            report.memcg = memcg.group(1)
        task_memcg = _OOM_KILL_TASK_MEMCG.search(text)
        task = _OOM_KILL_TASK.search(text)
        report.summary = {
            "task_memcg": task_memcg.group(1) if task_memcg else None,
            "pid": int(task.group(2)) if task else None,
            "uid": int(task.group(3)) if task else None,
        }
        return kills

    def _task_in(self, text: str) -> list[OomKill] | None:
        limit = _TASK_IN.match(text)
        if limit:
            report, kills = self._current()
            report.limit_task_memcg, report.memcg = limit.group(1), limit.group(2)
            report.cgroup_oom = True
            return kills
        group = _TASKS_IN.match(text)
        if group:
            # Printed after the first victim's kill line: its members are the same event.
            report, kills = (self._report, []) if self._report is not None else self._open()
            report.group_memcg = group.group(1)
            return kills
        return None

    def _table_header(self, columns: str) -> list[OomKill]:
        report, kills = self._current()
        report.in_memory_info = False
        report.columns = columns.split()[:-1]  # the numeric columns; the name follows
        report.row_pattern = _row_pattern(report.columns)
        report.rss_group = report.columns.index("rss") + 2  # after the "[pid]" group
        return kills

    @staticmethod
    def _task_row(report: _Report, text: str) -> bool:
        """Take a row of the report's task table; False (and the table ends) if it is not one."""
        row = report.row_pattern.fullmatch(text)
        if row is None:
            report.columns = None
            return False
        report.add_task(row)
        return True

    def _report_line(self, report: _Report, text: str) -> None:
        """A line inside an open report: the invoker's pid or its memory state."""
        if report.awaiting_pid:
            cpu = _CPU.match(text)
            if cpu and (report.invoker is None or cpu.group(3) == report.invoker):
                report.invoker_pid = int(cpu.group(1) or cpu.group(2))
                report.awaiting_pid = False
                return
        if text.startswith(_MEMORY_START):
            report.in_memory_info = True
            report.awaiting_pid = False
        if report.in_memory_info and text and not _PER_CPU.match(text):
            report.add_memory_line(text)

    # ------------------------------------------------------------------ victims

    def _selection(self, match: re.Match, text: str, stamp: "_Stamp") -> list[OomKill]:
        # A second selection before any victim: the first stands alone, a new event begins.
        report, kills = self._open() if self.pending else self._current()
        report.in_memory_info = False
        report.columns = None
        report.selection = {
            "pid": int(match.group(2)),
            "process": match.group(3),
            "score": int(match.group(4)),
            "reason": match.group(1),
            "line": text,
            "stamp": stamp,
        }
        return kills

    def _killed(self, match: re.Match, text: str, stamp: "_Stamp") -> list[OomKill]:
        pid = int(match.group(2))
        report = self._report
        if report is None or (report.killed and report.group_memcg is None):
            report, kills = self._open()
        else:
            kills = []
        if pid in report.killed:
            return kills  # an oom.group member printed again after its own kill
        figures = {
            _FIGURE_FIELDS[key]: int(value)
            for key, value in _FIGURE.findall(match.group(6) or "")
            if key in _FIGURE_FIELDS
        }
        uid = match.group(3) or match.group(5)  # RHEL6 ", UID 27, (x)", RHEL7 "(x), UID 27,"
        if uid is not None:
            figures["uid"] = int(uid)
        selection, report.selection = report.selection, None
        name, reason = match.group(4), match.group(1)
        kills.append(_kernel_kill(report, selection, pid, name, figures, reason, text, stamp))
        report.killed.add(pid)
        return kills

    def _oomd(self, match: re.Match, text: str, stamp: "_Stamp") -> list[OomKill]:
        """systemd-oomd kills a cgroup, not a process: the record names the cgroup.

        pid is 0 (no process was named), process the cgroup's last path component,
        task_memcg the cgroup, memcg the monitored cgroup whose pressure was too high.
        """
        cgroup = match.group(1)
        name = cgroup.rstrip("/").rpartition("/")[2] or cgroup
        extra: dict = {"kill_line": text, "reason": match.group(2)}
        pressure = _OOMD_PRESSURE.match(match.group(3))
        monitored = None
        if pressure:
            monitored = pressure.group(1)
            extra["pressure"], extra["pressure_limit"] = pressure.group(2), pressure.group(3)
        return [OomKill(
            pid=None,  # the log names no process: "null, never a guess"
            process=name,
            task_memcg=cgroup,
            memcg=monitored,
            unit=name if name.endswith(_UNIT_SUFFIXES) else None,
            killer="systemd-oomd",
            extra=extra,
            **stamp.fields(),
        )]

    def _send_line(self, text: str, stamp: "_Stamp") -> list[OomKill] | None:
        """earlyoom's "sending SIGTERM to process …" or nohang's "Send SIGTERM to the victim"."""
        send = _EARLYOOM_SEND.match(text)
        if send:
            details = _earlyoom_details(send.group(5))
            return self._userspace(
                stamp, "earlyoom", int(send.group(2)), send.group(4), text,
                uid=int(send.group(3)) if send.group(3) else None,
                cmdline=details.pop("cmdline", None),
                signal=send.group(1), **details,
            )
        victim = self._nohang
        body = _NOHANG_TAG.sub("", text, count=1).strip()
        action = _NOHANG_SEND.match(body)
        if not action:
            return None
        if victim is None or not victim.get("pid", "").isdigit():
            return []
        self._nohang = None
        return self._userspace(
            stamp, "nohang", int(victim["pid"]), victim.get("name", ""), text,
            uid=int(victim["uid"]) if victim.get("uid", "").isdigit() else None,
            cmdline=victim.get("cmdline"),
            task_memcg=victim.get("cgroup_v2") or victim.get("cgroup_v1"),
            signal=action.group(1),
            **{key: int(victim[key]) for key in ("badness", "vm_rss_mib") if _is_int(victim.get(key, ""))},
        )

    def _nohang_line(self, text: str) -> None:
        """Collect nohang's description of its victim, one "Key: value" line at a time."""
        body = _NOHANG_TAG.sub("", text, count=1).strip()
        if body.startswith(_NOHANG_START):
            self._nohang, self._nohang_lines = {}, 0
            body = body.partition(":")[2]
        if self._nohang is None:
            return
        self._nohang_lines += 1
        if self._nohang_lines > NOHANG_BLOCK_LINES:
            self._nohang = None
            return
        cmdline = _NOHANG_CMDLINE.match(body)
        if cmdline:
            self._nohang.setdefault("cmdline", cmdline.group(1))
            return
        for key, value in _NOHANG_FIELD.findall(body):
            self._nohang.setdefault(_NOHANG_KEYS.get(key.lower(), key.lower()), value)

    def _userspace(self, stamp: "_Stamp", killer: str, pid: int, name: str, text: str, *,
                   uid: int | None, cmdline: str | None = None, task_memcg: str | None = None,
                   **extra) -> list[OomKill]:
        """A user-space killer's victim, once: earlyoom sends SIGTERM, then SIGKILL."""
        key = (killer, pid, name)
        if key in self._userspace_victims:
            return []
        self._userspace_victims.append(key)
        return [OomKill(
            pid=pid,
            process=name,
            uid=uid,
            cmdline=cmdline,
            task_memcg=task_memcg,
            killer=killer,
            extra={"kill_line": text, **extra},
            **stamp.fields(),
        )]


def _kernel_kill(report: _Report, selection: dict | None, pid: int, name: str, figures: dict,
                 reason: str | None, text: str, stamp: "_Stamp") -> OomKill:
    """The record of one kernel victim, with what its report said before it."""
    extra: dict = {"kill_line": text}
    score = None
    if selection is not None:
        if selection["pid"] == pid:
            score = selection["score"]
        else:  # the selected task's child (or thread) was sacrificed instead
            extra["selected"] = {key: selection[key] for key in ("pid", "process", "score")}
    summary = report.summary or {}
    same_victim = summary.get("pid") == pid
    if same_victim and "uid" not in figures and summary.get("uid") is not None:
        figures["uid"] = summary["uid"]
    if same_victim:
        task_memcg = summary.get("task_memcg")
    elif report.killed and report.group_memcg:  # a member of a memory.oom.group
        task_memcg = report.group_memcg
    else:
        task_memcg = report.limit_task_memcg
    memcg_reason = "Memory cgroup out of memory" in (reason, selection and selection["reason"])
    return OomKill(
        pid=pid,
        process=name,
        score=score,
        constraint=report.constraint,
        memcg=report.memcg,
        task_memcg=task_memcg,
        cgroup_oom=report.cgroup_oom or memcg_reason,
        invoker=report.invoker,
        invoker_pid=report.invoker_pid,
        gfp_mask=report.gfp_mask,
        order=report.order,
        task_table=report.task_table(),
        memory_info=tuple(report.memory_info),
        extra=extra,
        **stamp.fields(),
        **figures,
    )


def _earlyoom_details(text: str) -> dict:
    """oom_score, badness, VmRSS (MiB) and cmdline from the tail of earlyoom's kill line."""
    details: dict = {}
    for key, value, cmdline in _EARLYOOM_DETAIL.findall(text):
        if cmdline:
            details["cmdline"] = cmdline
        elif key:
            details.setdefault("vm_rss_mib" if key == "VmRSS" else key, int(value))
    return details


def _row_pattern(columns: list[str]) -> re.Pattern:
    """A pattern for the rows under a task-table header: numbers, then the name."""
    return re.compile(r"\[\s*(\d+)\]" + r"\s+(-?\d+)" * len(columns) + r"\s+(.*)")


def _task_row(columns: list[str], row: re.Match) -> TaskRow:
    """One dump_tasks() row (a match of _row_pattern) read by the header's column names."""
    cells = dict(zip(columns, map(int, row.groups()[1:-1])))
    pgtables = cells.get("pgtables_bytes")
    if pgtables is not None:
        pgtables //= 1024
    elif "nr_ptes" in cells:
        pgtables = cells["nr_ptes"] * PAGE_KB
    return TaskRow(
        pid=int(row.group(1)),
        uid=cells.get("uid"),
        tgid=cells.get("tgid"),
        total_vm_kb=cells["total_vm"] * PAGE_KB,
        rss_kb=cells["rss"] * PAGE_KB,
        pgtables_kb=pgtables,
        swapents=cells.get("swapents"),
        oom_score_adj=cells.get("oom_score_adj"),
        name=row.group(len(columns) + 2),
    )


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _messages(text: str) -> list[str]:
    """The kernel lines in one message: rsyslog-joined lines, dmesg records glued together."""
    lines = text.split("\n") if "\n" in text else [text]
    if text.find("[", 1) < 0:  # a task-table row's only "[" is its first character
        return lines
    return [part for line in lines for part in _GLUED.split(line)]


class _Stamp:
    """Where and when a line was logged, copied onto the kills it completes."""

    __slots__ = ("source", "time", "mono_usec", "boot_id")

    def __init__(self, line: KernelLine, time: datetime | None, mono_usec: int | None) -> None:
        self.source, self.boot_id = line.source, line.boot_id
        self.time, self.mono_usec = time, mono_usec

    def fields(self) -> dict:
        return {"source": self.source, "boot_id": self.boot_id,
                "time": self.time, "mono_usec": self.mono_usec}


# ------------------------------------------------------------------------ bulk import

# Every kill line holds one of these: "Kill" (kernel "Killed process" / "Kill process",
# earlyoom 0.x-1.1 "Killing process", systemd-oomd "Killed /…"), " SIG" (earlyoom
# "sending SIGTERM", nohang "Send(ing) SIGTERM") or "killing" (systemd-oomd 254+ "Marked /…
# for killing", earlyoom 1.2 "killing process"). A few substring searches cost far less
# than one regular expression with alternatives, which CPython tries at every offset.
_KILL_NEEDLES = (b"Kill", b" SIG", b"killing")
# What a line with one of them must hold to be worth reading: systemd's "Killing process
# N (x) with signal SIGKILL" and "Received SIGHUP" are common and are not kills.
_KILL_LINE = re.compile(
    rb"Kill(?:ed process|ed /| process|ing process (?:'|\d+ (?!.* with signal SIG)))|[Ss]end(?:ing)? SIG"
    rb'|Marked /|killing process \d+ "'
)
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


def parse_text(text: str, source: str = "import", *, year: int | None = None) -> list[OomKill]:
    """All kills in a log held in a string, feeding every line (for small inputs and tests)."""
    parser = OomParser(year=year)
    kills: list[OomKill] = []
    for raw in text.splitlines():
        kills += parser.feed(KernelLine(text=raw, source=source, wrapped=True))
    return kills + parser.flush()


def iter_kills(stream: BinaryIO, source: str, *, year: int | None = None,
               chunk_size: int = _CHUNK) -> Iterator[OomKill]:
    """The kills in a binary log stream of any size, reading only the reports around kills.

    Gives what feeding every line would (for reports that start less than 4 MB before
    their kill line) in about twice the time `grep -c` takes: lines without a kill word
    are skipped unless they belong to a report that leads to one.
    """
    scanner = _Scanner(OomParser(year=year), source, chunk_size)
    yield from scanner.run(stream)


class _Scanner:
    """Finds kill lines in big chunks and feeds the parser the reports around them."""

    def __init__(self, parser: OomParser, source: str, chunk_size: int) -> None:
        self.parser = parser
        self.source = source
        self.chunk_size = chunk_size
        self.buffer = bytearray(_LOOKBACK + chunk_size)

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
            if _KILL_LINE.search(buffer, line_start, cursor):
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
            raw = buffer[at:stop].decode("utf-8", "replace")
            yield from parser.feed(KernelLine(text=raw, source=self.source, wrapped=True))
            at = stop
        self.position = at


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

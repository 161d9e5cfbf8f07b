"""The kernel's OOM report, read as a state machine over message bodies.

A report (mm/oom_kill.c dump_header(), mm/memcontrol.c) is: the `invoked oom-killer:`
header, the invoker's stack, the memory state (`Mem-Info:` or the memcg usage lines), the
task table, the `oom-kill:constraint=` summary (4.19+), then the victim: `Kill process …
or sacrifice child` (selection, up to 5.0) and `Killed process …`. ReportReader joins the
messages of one report into kills and hands a kill on as soon as its `Killed process`
line arrives; TaskTable reads dump_tasks()'s rows by its header's column names.

Kernel formats follow mm/oom_kill.c and mm/memcontrol.c from 2.4 to 6.x; the comment at
each pattern names the versions that print it. Where the text is ambiguous the labelling
rules of tests/data/oom_logs/README.md (the shared fixture rules) decide.

The patterns are compiled at their first use (lazy_regex.py): only the lines of an OOM report
reach them (ReportReader tests for their words first), so a daemon that has seen no OOM holds
none; the first report compiles those it needs, well under a millisecond each, and compiling
reads nothing from the disk (unlike a module loaded late, review R8, it cannot fail then).
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import re

from watchdog_oom.lazy_regex import compile_on_first_use
from watchdog_oom.model import OomKill, TaskRow
from watchdog_oom.parse.evidence import describe
from watchdog_oom.parse.userspace import Recogniser
from watchdog_oom.parse.values import (
    _DIGITS,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    UID_MAX,
    as_int,
    as_pid,
    as_uid,
)
from watchdog_oom.parse.wrappers import Stamp, line_host

# Bounds that keep a huge report (a 50 000-row task table) from costing memory.
TASK_TABLE_ROWS = 10
MEMORY_INFO_LINES = 64
MEMORY_INFO_LINE_CHARS = 300
# A report whose kill has not come after this many lines (task-table rows not counted)
# is abandoned: the kernel panicked, the log was cut, or the kill went unlogged.
REPORT_LINES = 20_000
PAGE_KB = 4  # the task table counts pages; every architecture the fixtures show uses 4 kB

# Header, printed first by dump_header(). Invoker name up to 15 chars, may hold ':' or ' '.
#   2.6.9-2.6.1x: "oom-killer: gfp_mask=0xd0, order=0" (no name)
#   2.6.2x-2.6.35: "X invoked oom-killer: gfp_mask=0x201d2, order=0, oomkilladj=0"
#   2.6.36-3.x:    "…, order=0, oom_adj=0, oom_score_adj=0"
#   4.x:           "gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null), order=0, oom_score_adj=0"
#   5.x-6.x:       "gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
HEADER = compile_on_first_use(
    r"(?:(.*?) invoked )?oom-killer: gfp_mask=(0x[0-9a-fA-F]+(?:\([^)]*\))?)"
    r",(?: nodemask=[^,]*,)? order=(-?\d+)"
)
# The invoker's pid, from dump_stack(): "CPU: 1 PID: 4282 Comm: node Not tainted …"
# (6.x: "CPU: 1 UID: 104 PID: …"); 2.6.x: "Pid: 23212, comm: php-fpm Not tainted …".
_CPU = compile_on_first_use(
    r"(?:CPU: \d+ (?:UID: \d+ )?PID: (\d+) Comm: |Pid: (\d+), comm: )(.*?)"
    r" (?:Not tainted|Tainted:|Kdump:)"
)
# Memory-cgroup report, mem_cgroup_print_oom_info() 3.x-4.18 (4.19+ moved it to oom-kill:).
TASK_IN = compile_on_first_use(r"Task in (.+) killed as a result of limit of (.+)")
# mem_cgroup_print_oom_group() 4.19+, printed after the victim's kill line.
TASKS_IN = compile_on_first_use(r"Tasks in (.+) are going to be killed due to memory\.oom\.group set")
# dump_oom_summary() 4.19+; cpuset and memcg parts exist only with those configs.
_OOM_KILL = compile_on_first_use(r"oom-kill:constraint=(\w+)")
_OOM_KILL_MEMCG = compile_on_first_use(r",oom_memcg=(.*?),task_memcg=")
_OOM_KILL_TASK_MEMCG = compile_on_first_use(r",task_memcg=(.*?),task=")
# The last ",pid=N,uid=N" (a task's name may hold either); what follows uid's digits is a
# wrapper's closing mark (a CSV quote, a markdown backtick or table bar, "</td>").
_OOM_KILL_TASK = compile_on_first_use(r",task=(.*),pid=(\d+),uid=(\d+)(?!\d)")
# The reason before the victim: "Out of memory", "Memory cgroup out of memory",
# "Out of memory (oom_kill_allocating_task)"; 2.4-2.6.1x "Out of Memory".
_REASON = r"(?:(Out of [Mm]emory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): )?"
# A victim's name as a log shows it: the task's comm, at most 15 bytes (TASK_COMM_LEN 16,
# include/linux/sched.h), each byte printed as up to four characters where escaped (kmsg's
# "\x0a", rsyslog's "#012"), so at most NAME_CHARS characters, read so wherever it reads so; and
# never the opening of another kill message (KILL_OPENING, 16 characters at the least: no comm
# holds it) where a log shipper or a paste ran the next kill line into this one (review R22b:
# the name of the first of 300 kill lines run together took the other 299, 51,218 characters).
NAME_CHARS = 64
KILL_OPENING = r"(?:Killed|[Kk]ill) process \d+(?:, UID \d+,)? \("
# A character of a name: only a "K" or "k" is asked whether the opening follows (one way to read
# each character, no backtracking between the two).
NAME_CHAR = r"(?:[^Kk]|[Kk](?!ill(?:ed)? process \d+(?:, UID \d+,)? \())"
_NAME = f"({NAME_CHAR}{{0,{NAME_CHARS}}})"
_BOUNDED_NAME = f"(.{{0,{NAME_CHARS}}})"
_LONG_NAME = f"({NAME_CHAR}*)"
# The selection, 2.6.1x-5.0 (removed with the child heuristic in 5.1):
#   "Out of Memory: Kill process 1234 (x) score 5 and children." (2.6.1x)
#   "Out of memory: kill process 1234 (x) score 5 or a child"   (2.6.2x-2.6.3x)
#   "Memory cgroup out of memory: Kill process 1234 (x) score 5 or sacrifice child" (3.x-5.0)
# The selection patterns are compiled at the first selection line (lazy_regex.py): no kernel
# since 5.1 prints one, and a line without "ill process " never reaches them.
SELECTION = compile_on_first_use(
    _REASON + r"[Kk]ill process (\d+) \(" + _LONG_NAME + r"\) score (-?\d+)"
    r" (?:or sacrifice child|or a child|and children\.?)$",
    re.DOTALL,  # a name may hold a newline (journal JSON, rsyslog #012)
)
# The victim, __oom_kill_process() / oom_kill_task():
#   2.4-2.6.1x  "Out of Memory: Killed process 1234 (x)."
#   2.6.2x      "Killed process 1234 (x)"
#   RHEL6       "Killed process 1234, UID 27, (x) total-vm:…kB, anon-rss:…kB, file-rss:…kB"
#   2.6.36-4.x  "Killed process 1234 (x) total-vm:…kB, anon-rss:…kB, file-rss:…kB[, shmem-rss:…kB]"
#   5.1+        "Out of memory: Killed process 1234 (x) total-vm:…, UID:0 pgtables:…kB oom_score_adj:0"
#   RHEL7.7+    "Killed process 1234 (x), UID 0, total-vm:…kB, anon-rss:…kB, file-rss:…kB, shmem-rss:…kB"
# The name is the text between the first "(" and the last ")" before the figures, no kill's
# opening in it (match_killed(): within NAME_CHARS characters where it reads so); a figure list
# a person trimmed in a paste may start at any of the kB figures.
KILLED = compile_on_first_use(
    _REASON + r"Killed process (\d+)(?:, UID (\d+),)? \(" + _LONG_NAME + r"\)(?:, UID (\d+),)?"
    r"(\.|\s+(?:total-vm|vsz|anon-rss|file-rss):.*)?$",
    re.DOTALL,  # a name may hold a newline (journal JSON, rsyslog #012)
)
# KILLED and SELECTION with the name a comm can be (NAME_CHARS characters at most, no kill's
# opening); then with the name bounded alone: the same match wherever the name it reads holds no
# " process " (every kernel's line), at the cost of a plain match. match_killed() and
# match_selection() ask these first; a longer name (no comm's: a forged or mangled line, its
# name capped where it is kept, bounds.py) is read by KILLED and SELECTION as before.
# _KILLED_NAMED reads only a name that holds " process ": compiled at its first use (lazy_regex.py).
_KILLED_NAMED = compile_on_first_use(KILLED.pattern.replace(_LONG_NAME, _NAME), re.DOTALL)
_SELECTION_NAMED = compile_on_first_use(SELECTION.pattern.replace(_LONG_NAME, _NAME), re.DOTALL)
_KILLED_BOUNDED = compile_on_first_use(KILLED.pattern.replace(_LONG_NAME, _BOUNDED_NAME), re.DOTALL)
_SELECTION_BOUNDED = compile_on_first_use(SELECTION.pattern.replace(_LONG_NAME, _BOUNDED_NAME), re.DOTALL)


def match_killed(text: str) -> re.Match | None:
    """A kill line's reading: its name within NAME_CHARS where it reads so, else KILLED's."""
    killed = _KILLED_BOUNDED.match(text)
    if killed is not None and " process " in killed.group(4):
        killed = _KILLED_NAMED.match(text)  # a kill's opening in the name the bound alone allowed: read again
    return killed if killed is not None else KILLED.match(text)


def match_selection(text: str) -> re.Match | None:
    """A selection line's reading, as match_killed() reads a kill line."""
    selection = _SELECTION_BOUNDED.match(text)
    if selection is not None and " process " in selection.group(3):
        selection = _SELECTION_NAMED.match(text)
    return selection if selection is not None else SELECTION.match(text)


# The lookbehind starts a name only where one begins: a long run of letters is tried once.
# A figure with digit-group commas ("26,184,840kB", a person's rewrite) is no kernel's: null.
# Only figures of no form _KERNEL_FIGURES reads come here (2.6's, a paste's): compiled at first use.
_FIGURE = compile_on_first_use(r"(?<![A-Za-z_-])([A-Za-z_-]+):(-?\d+)(?!\d|,\d)(kB)?")
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
_TABLE_HEADER = compile_on_first_use(r"\[\s*pid\s*\]\s+(uid\s+tgid\s+total_vm\s+rss\b.*\bname)\s*$")
# Memory state printed with the report: show_mem() "Mem-Info:" ("Mem-info:" before 2.6.2x) or
# mem_cgroup_print_oom_meminfo() "memory: usage …" (memcg).
_MEMORY_START = ("Mem-Info:", "Mem-info:", "memory: usage", "Memory cgroup stats for ")
# 2.6.x-3.x show_mem() per-CPU pageset lines ("CPU    7: hi:  186, btch:  31 usd:   7"):
# one per CPU and zone, too many to keep and of no use after the fact.
_PER_CPU = compile_on_first_use(r"CPU\s+\d+: hi:")


# ------------------------------------------------------------- recognisers

KERNEL_RECOGNISERS = (  # their sample lines: parse/sample_lines.py
    Recogniser("kernel: Killed process (2.4-6.x, RHEL 6/7 UID forms)", "kernel", KILLED,
               ("Killed process ",), ("kernel",)),
    Recogniser("kernel: Kill process … score … or sacrifice child (2.6.1x-5.0)", "kernel", SELECTION,
               ("ill process ",), ("kernel",)),
)


# The wording of every line KILLED matches: anchors.RECOGNISERS tries this recogniser first, and
# its needle ("Killed process ") is in each such line, so evidence.describe() need not look.
_KILLED_WORDING = KERNEL_RECOGNISERS[0].name
assert KERNEL_RECOGNISERS[0].pattern is KILLED and KERNEL_RECOGNISERS[0].needles == ("Killed process ",)


# ------------------------------------------------------------------ the task table


class TaskTable:
    """dump_tasks()'s rows, read by the column names of the header above them; only the
    TASK_TABLE_ROWS biggest by rss are kept (a table may hold 50 000 rows)."""

    def __init__(self) -> None:
        self.columns: list[str] | None = None  # while rows are being read: the numeric columns
        self._row: re.Pattern | None = None
        self._rss_group = 0
        # min-heap by (rss, -pid, -n): n counts the rows taken, so that two rows of one pid
        # and rss (garbled or pasted text; no kernel prints them) never compare their TaskRows
        self._biggest: list[tuple[int, int, int, TaskRow]] = []
        self._taken = 0

    @property
    def reading(self) -> bool:
        """True between a table's header and the first line that is not one of its rows."""
        return self.columns is not None

    def start(self, columns: str) -> None:
        """A table header ("[  pid  ]   uid  tgid total_vm      rss … name"): rows follow."""
        self.columns = columns.split()[:-1]  # the numeric columns; the name follows
        if "rss" not in self.columns:  # "rss," or "rss&lt;": the header pattern's \b let it by
            self.columns, self._row = None, None
            return
        self._row = _row_pattern(self.columns)
        self._rss_group = self.columns.index("rss") + 2  # after the "[pid]" group

    def stop(self) -> None:
        """The table has ended (the rows read so far are kept)."""
        self.columns = None

    def take(self, text: str) -> bool:
        """Take a row of the table; False (and the table ends) if `text` is not one."""
        row = self._row.fullmatch(text) if self._row is not None and self.columns is not None else None
        if row is None:
            self.columns = None
            return False
        self.add(row)
        return True

    def row(self, text: str) -> re.Match | None:
        """The match of `text` as a row of the table being read (its name the last group); None
        where it is none. Nothing changes: add() takes a row so found."""
        return self._row.fullmatch(text) if self._row is not None and self.columns is not None else None

    def add(self, row: re.Match, base: int = 0) -> None:
        """Keep a row (a match of row(), or of a pattern whose groups from `base` + 1 are
        row()'s) if it is among the biggest by rss; only those become TaskRows."""
        self._taken += 1
        rss = int(row.group(self._rss_group + base))
        biggest = self._biggest
        if len(biggest) >= TASK_TABLE_ROWS and rss < biggest[0][0]:
            return  # smaller than the least kept (most rows of a big table): its key cannot be bigger
        columns = self.columns or []
        key = (rss, -int(row.group(1 + base)), -self._taken)
        if len(self._biggest) < TASK_TABLE_ROWS:
            heapq.heappush(self._biggest, (*key, _task_row(columns, row, base)))
        elif key[:2] > self._biggest[0][:2]:
            heapq.heapreplace(self._biggest, (*key, _task_row(columns, row, base)))

    def rows(self) -> tuple[TaskRow, ...]:
        """The rows kept, biggest rss first."""
        if not self._biggest:
            return ()
        return tuple(row for *_, row in sorted(self._biggest, reverse=True))


def _row_pattern(columns: list[str]) -> re.Pattern:
    """A pattern for the rows under a task-table header: numbers, then the name."""
    return re.compile(r"\[\s*(\d{1,7})\]" + r"\s+(-?\d{1,19})" * len(columns) + r"\s+(.*)")


def _task_row(columns: list[str], row: re.Match, base: int = 0) -> TaskRow:
    """One dump_tasks() row (a match of _row_pattern, its groups from `base` + 1) read by the
    header's column names."""
    cells = dict(zip(columns, map(int, row.groups()[base + 1:base + 1 + len(columns)]), strict=True))
    pgtables = cells.get("pgtables_bytes")
    if pgtables is not None:
        pgtables //= 1024
    elif "nr_ptes" in cells:
        pgtables = cells["nr_ptes"] * PAGE_KB
    return TaskRow(
        pid=as_pid(row.group(1 + base)) or 0,
        uid=cells.get("uid"),
        tgid=cells.get("tgid"),
        total_vm_kb=cells["total_vm"] * PAGE_KB,
        rss_kb=cells["rss"] * PAGE_KB,
        pgtables_kb=pgtables,
        swapents=cells.get("swapents"),
        oom_score_adj=cells.get("oom_score_adj"),
        name=row.group(base + len(columns) + 2),
    )


# ------------------------------------------------------------------ one report


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
        self.table = TaskTable()
        self.killed: set[int | None] = set()
        self.lines = 0

    @property
    def collecting(self) -> bool:
        """Still assembling (no victim yet), so every line matters."""
        return not self.killed

    def add_memory_line(self, text: str) -> None:
        """Keep a line of the memory state, bounded in count and length."""
        if len(self.memory_info) < MEMORY_INFO_LINES:
            self.memory_info.append(text[:MEMORY_INFO_LINE_CHARS])


def _report_state(report: _Report | None) -> bool | None:
    """ReportReader.resumable's: False (no report, or one done with), True (a report its
    header alone opened) or None (one is read)."""
    if report is None or report.killed:  # no selection, no oom.group whose members may follow
        return False if report is None or (report.selection is None and report.group_memcg is None) else None
    opened = not (report.lines or not report.awaiting_pid or report.invoker_pid is not None or report.summary
                  or report.selection or report.constraint or report.memcg or report.limit_task_memcg
                  or report.cgroup_oom or report.memory_info or report.table.reading)
    return True if opened else None


class ReportReader:
    """Reads the kernel's messages of OOM reports, one at a time, into kills.

    Lines of one report accumulate in an open _Report; its `Killed process` line hands
    the kill on. A `Kill process … or sacrifice child` selection that no `Killed process`
    line follows becomes a kill when the next report opens or on flush_selection().
    """

    def __init__(self) -> None:
        self._report: _Report | None = None
        self._last_kill: tuple | None = None

    @property
    def collecting(self) -> bool:
        """True while a report is open and has no victim yet."""
        report = self._report  # (asked of every line: _Report.collecting inlined)
        return report is not None and not report.killed

    def resumable(self) -> tuple | None:
        """None while a report is read; else whether one is open (its header alone read) and
        the last kill read: readers with equal values after one line read on alike."""
        state = _report_state(self._report)
        return None if state is None else (state, self._last_kill)

    @property
    def selecting(self) -> bool:
        """True when a selection still awaits its victim's `Killed process` line."""
        return self._report is not None and self._report.selection is not None

    def task_row(self, text: str) -> bool:
        """Take `text` as a row of the open report's task table, if it is one."""
        report = self._report
        return report is not None and report.table.reading and report.table.take(text)

    def overlong(self) -> bool:
        """Count one more line of the open report; True when it ran past REPORT_LINES,
        and then it is abandoned (see abandon())."""
        report = self._report
        if report is None:
            return False
        report.lines += 1
        return report.lines > REPORT_LINES

    def reading_table(self) -> TaskTable | None:
        """The task table whose rows are being read: the open report's, while it collects."""
        report = self._report
        if report is None or report.killed or not report.table.reading:
            return None
        return report.table

    def quiet_line(self, text: str) -> bool:
        """A message holding no word that opens, shapes or ends a report (anchors.may_anchor
        is false: a task-table row, a line of the memory state, a call trace), taken as
        task_row(), overlong() and structure() take it; False, with nothing changed but the
        table ended, when the report has run past REPORT_LINES (see overlong())."""
        report = self._report
        if report is None or report.killed:
            return True  # no report collecting: such a line says nothing
        if report.table.reading and report.table.take(text):
            return True
        if report.lines >= REPORT_LINES:
            return False
        report.lines += 1
        # structure() and _report_line(): no header, summary, "Task in", table header, CPU
        # line or memory-state opener holds none of may_anchor's words; only a line of the
        # memory state already open is kept
        if report.in_memory_info and text and not _PER_CPU.match(text):
            report.add_memory_line(text)
        return True

    def abandon(self) -> list[OomKill]:
        """Give up the open report: its selection, if any, stands as a kill."""
        kills = self.flush_selection()
        self._report = None
        return kills

    def kill_line(self, text: str, stamp: Stamp) -> list[OomKill] | None:
        """A kernel line naming a victim; None when "Kill" meant something else."""
        killed = match_killed(text)
        if killed:
            return self._killed(killed, text, stamp)
        selection = match_selection(text)
        if selection:
            return self._selection(selection, text, stamp)
        return None

    def structure(self, text: str) -> list[OomKill]:
        """Any other message: one that opens or shapes a report, or a line inside one."""
        if "oom-killer" in text:
            header = HEADER.match(text)
            if header:
                return self.open_report(header)
        if text.startswith("oom-kill:"):
            return self.summary_line(text)
        if text.startswith("Task"):
            opened = self._task_in(text)
            if opened is not None:
                return opened
        if "uid  tgid" in text:
            header = _TABLE_HEADER.match(text)
            if header:
                return self._table_header(header.group(1))
        report = self._report
        if report is not None and report.collecting:
            self._report_line(report, text)
        return []

    def flush_selection(self) -> list[OomKill]:
        """A selection whose `Killed process` line never came, as a kill."""
        report = self._report
        if report is None or report.selection is None:
            return []
        selection, report.selection = report.selection, None
        pid = selection["pid"]
        kill = _kernel_kill(report, selection, pid, selection["process"], {}, None,
                            selection["line"], selection["stamp"])
        report.killed.add(pid)
        return [kill]

    # ----------------------------------------------------------- report structure

    def _open(self) -> tuple[_Report, list[OomKill]]:
        """Start a new report; a selection left without its victim becomes a kill."""
        kills = self.flush_selection()
        self._report = _Report()
        return self._report, kills

    def _current(self) -> tuple[_Report, list[OomKill]]:
        """The report a structural line belongs to: the open one, or a new one after a kill."""
        if self._report is None or not self._report.collecting:
            return self._open()
        return self._report, []

    def open_report(self, header: re.Match) -> list[OomKill]:
        """A report's header (HEADER's match) opens a new report."""
        return self.open_with(header.group(1), header.group(2), header.group(3))

    def open_with(self, invoker: str | None, gfp_mask: str, order: str) -> list[OomKill]:
        """A report's header, read as HEADER's groups (invoker, gfp_mask, order), opens a new report."""
        report, kills = self._open()
        report.invoker, report.gfp_mask, report.order = invoker, gfp_mask, as_int(order, -1, 64)
        report.awaiting_pid = True
        return kills

    def summary_line(self, text: str) -> list[OomKill]:
        """dump_oom_summary()'s `oom-kill:constraint=…` line."""
        return self.summary_with(*_summary_fields(text))

    def summary_with(self, constraint: str | None, memcg: str | None, task_memcg: str | None,
                     pid: str | None, uid: str | None) -> list[OomKill]:
        """dump_oom_summary()'s line as its fields (None: not in it): constraint, oom_memcg, task_memcg, pid, uid."""
        report, kills = self._current()
        report.in_memory_info = False
        report.constraint = constraint
        if constraint == "CONSTRAINT_MEMCG":
            report.cgroup_oom = True
        if memcg is not None:
            report.memcg = memcg
        report.summary = {
            "task_memcg": task_memcg,
            "pid": as_pid(pid) if pid is not None else None,
            "uid": as_uid(uid) if uid is not None else None,
        }
        return kills

    def _task_in(self, text: str) -> list[OomKill] | None:
        limit = TASK_IN.match(text)
        if limit:
            report, kills = self._current()
            report.limit_task_memcg, report.memcg = limit.group(1), limit.group(2)
            report.cgroup_oom = True
            return kills
        group = TASKS_IN.match(text)
        if group:
            # Printed after the first victim's kill line: its members are the same event.
            report, kills = (self._report, []) if self._report is not None else self._open()
            report.group_memcg = group.group(1)
            return kills
        return None

    def _table_header(self, columns: str) -> list[OomKill]:
        report, kills = self._current()
        report.in_memory_info = False
        report.table.start(columns)
        return kills

    @staticmethod
    def _report_line(report: _Report, text: str) -> None:
        """A line inside an open report: the invoker's pid or its memory state."""
        if report.awaiting_pid:
            cpu = _CPU.match(text)
            if cpu and (report.invoker is None or cpu.group(3) == report.invoker):
                report.invoker_pid = as_pid(cpu.group(1) or cpu.group(2))
                report.awaiting_pid = False
                return
        if text.startswith(_MEMORY_START):
            report.in_memory_info = True
            report.awaiting_pid = False
        if report.in_memory_info and text and not _PER_CPU.match(text):
            report.add_memory_line(text)

    # ------------------------------------------------------------------ victims

    def _selection(self, match: re.Match, text: str, stamp: Stamp) -> list[OomKill]:
        # A second selection before any victim: the first stands alone, a new event begins.
        report, kills = self._open() if self.selecting else self._current()
        report.in_memory_info = False
        report.table.stop()
        report.selection = {
            "pid": as_pid(match.group(2)),
            "process": match.group(3),
            "score": as_int(match.group(4), INT32_MIN, INT32_MAX),  # the history's column is 32-bit
            "reason": match.group(1),
            "line": text,
            "stamp": stamp,
        }
        return kills

    def _killed(self, match: re.Match, text: str, stamp: Stamp) -> list[OomKill]:
        figures = _figures(match.group(6) or "")
        uid = match.group(3) or match.group(5)  # RHEL6 ", UID 27, (x)", RHEL7 "(x), UID 27,"
        figures |= {"uid": as_uid(uid)} if uid is not None else {}
        return self.victim(as_pid(match.group(2)), match.group(4), match.group(1), figures, text, stamp)

    def victim(self, pid: int | None, name: str, reason: str | None, figures: dict, text: str,
               stamp: Stamp) -> list[OomKill]:
        """A `Killed process` line as KILLED's fields, its figures read: its kill, or none (printed already)."""
        last = (pid, stamp.time, stamp.mono_usec)
        if pid is not None and last == self._last_kill:
            return []  # the same victim printed twice at the same instant (a paste, a relay): one kill
        self._last_kill = last
        report = self._report
        if report is None or (report.killed and report.group_memcg is None):
            report, kills = self._open()
        else:
            kills = []
        if pid is not None and pid in report.killed:
            return kills  # an oom.group member printed again after its own kill
        selection, report.selection = report.selection, None
        kills.append(_kernel_kill(report, selection, pid, name, figures, reason, text, stamp, _KILLED_WORDING))
        report.killed.add(pid)
        return kills


def _summary_fields(text: str) -> tuple[str | None, str | None, str | None, str | None, str | None]:
    """The fields of dump_oom_summary()'s line (None: not in it): constraint, oom_memcg,
    task_memcg, the task's pid and uid as printed."""
    constraint = _OOM_KILL.match(text)
    at = text.find(",oom_memcg=")
    memcg = _OOM_KILL_MEMCG.match(text, at) if at >= 0 else None
    at = text.find(",task_memcg=")
    task_memcg = _OOM_KILL_TASK_MEMCG.match(text, at) if at >= 0 else None
    # one try from the first ",task=": searching would retry from every one (quadratic)
    at = text.find(",task=")
    task = _OOM_KILL_TASK.match(text, at) if at >= 0 else None
    return (constraint.group(1) if constraint else None, memcg.group(1) if memcg else None,
            task_memcg.group(1) if task_memcg else None, task.group(2) if task else None,
            task.group(3) if task else None)


# The figures as 4.x-6.x and RHEL 7 print them, in their order and with their units: what the
# loop of _figures() reads from such a tail, read in one match (digits few enough that every
# kB figure is within its column; oom_score_adj is range-checked as the loop checks it).
_KERNEL_FIGURES = compile_on_first_use(
    r"\s+total-vm:(\d{1,18})kB, anon-rss:(\d{1,18})kB, file-rss:(\d{1,18})kB(?:, shmem-rss:(\d{1,18})kB)?"
    r"(?:, UID:(\d{1,9}) pgtables:(\d{1,18})kB oom_score_adj:(-?\d{1,4}))?\Z")


def _figures(text: str) -> dict:
    """The victim's figures from the tail of its kill line; one out of range is None."""
    usual = _KERNEL_FIGURES.match(text)
    if usual is not None:
        total_vm, anon, file, shmem, uid, pgtables, adj = usual.groups()
        figures: dict = {"total_vm_kb": int(total_vm), "anon_rss_kb": int(anon), "file_rss_kb": int(file)}
        if shmem is not None:
            figures["shmem_rss_kb"] = int(shmem)
        if uid is not None:
            score_adj = int(adj)
            figures |= {"uid": int(uid), "pgtables_kb": int(pgtables),
                        "oom_score_adj": score_adj if -1000 <= score_adj <= 1000 else None}
        return figures
    figures = {}
    for key, value, unit in _FIGURE.findall(text):
        field = _FIGURE_FIELDS.get(key)
        if field is None or (field.endswith("_kb") and not unit):
            continue  # a kB figure without its unit was cut ("total-vm:740852" ending a paste): not known
        # values.as_int, inlined (seven a kill): `value` is "-?\d+", so int() reads it
        low, high = _FIGURE_RANGE[field]
        number = int(value) if len(value) - value.startswith("-") <= _DIGITS else None
        figures[field] = number if number is not None and low <= number <= high else None
    return figures


# A kill line's oom_score_adj is the task's, within OOM_SCORE_ADJ_MIN..MAX (include/uapi/linux/
# oom.h); outside it the figure is no kernel's, and it would not fit the history's 32-bit column.
_FIGURE_RANGE = {field: (INT64_MIN, INT64_MAX) for field in _FIGURE_FIELDS.values()} | {
    "uid": (0, UID_MAX), "oom_score_adj": (-1000, 1000)}


def _report_lines(report: _Report, selection: dict | None, killed: bool, rows: tuple[TaskRow, ...]) -> tuple[str, ...]:
    """The messages of a report that a kill was read from (its evidence); `rows`: its task table kept."""
    seen = []
    if report.gfp_mask is not None:
        seen.append("header")
    if report.memory_info:
        seen.append("memory state")
    if rows:
        seen.append("task table")
    if report.limit_task_memcg is not None:
        seen.append("memcg limit")
    if report.summary is not None:
        seen.append("constraint")
    if report.group_memcg is not None:
        seen.append("oom.group")
    if selection is not None:
        seen.append("selection")
    if killed:
        seen.append("kill line")
    return tuple(seen)


_REPORT_LINES = frozenset(("header", "task table", "memcg limit", "constraint"))


def _read_from(lines: tuple[str, ...]) -> str:
    """What kind of kernel evidence the lines make up."""
    if not _REPORT_LINES.isdisjoint(lines):
        return "kernel report"
    if lines == ("selection",):
        return "kernel selection line alone"
    if "selection" in lines:
        return "kernel selection and kill lines"
    return "kernel kill line alone"


# line_host(), remembered for the last lines: the kills of one line (kill lines run together,
# review R22b) share its host, read once (a str's hash is kept with it: a second kill's costs nothing).
_line_host = functools.lru_cache(maxsize=4)(line_host)


def _kernel_kill(report: _Report, selection: dict | None, pid: int | None, name: str, figures: dict,
                 reason: str | None, text: str, stamp: Stamp, wording: str | None = None) -> OomKill:
    """The record of one kernel victim, with what its report said before it (`wording`: the
    recogniser that read `text`, where known)."""
    rows = report.table.rows()
    lines = _report_lines(report, selection, selection is None or text != selection["line"], rows)
    extra: dict = {"kill_line": text, "evidence": describe(stamp, text, _read_from(lines), lines, wording)}
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
    get = figures.get
    # In the order of OomKill's fields (checked below): a call with 29 arguments by position
    # costs a third of one by keyword, and one kill is built per kill line.
    return OomKill(
        pid, name, stamp.time, stamp.mono_usec,
        get("uid"), get("total_vm_kb"), get("anon_rss_kb"), get("file_rss_kb"), get("shmem_rss_kb"),
        get("pgtables_kb"), get("oom_score_adj"), score,
        report.constraint, report.memcg, task_memcg, report.cgroup_oom or memcg_reason,
        report.invoker, report.invoker_pid, report.gfp_mask, report.order,
        "kernel", stamp.source, stamp.host or (_line_host(stamp.raw) if stamp.raw else None), stamp.boot_id,
        None, None, rows, tuple(report.memory_info), extra,
    )


# (Not an assert: `python -O` would drop it, and the kills would come out shifted.)
if tuple(f.name for f in dataclasses.fields(OomKill)) != (
    "pid", "process", "time", "mono_usec",
    "uid", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb",
    "pgtables_kb", "oom_score_adj", "score",
    "constraint", "memcg", "task_memcg", "cgroup_oom",
    "invoker", "invoker_pid", "gfp_mask", "order",
    "killer", "source", "host", "boot_id",
    "cmdline", "unit", "task_table", "memory_info", "extra",
):
    raise ImportError("_kernel_kill() builds an OomKill by position: its fields changed")

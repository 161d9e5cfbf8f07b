"""The kernel's OOM report, read as a state machine over message bodies.

A report (mm/oom_kill.c dump_header(), mm/memcontrol.c) is: the `invoked oom-killer:`
header, the invoker's stack, the memory state (`Mem-Info:` or the memcg usage lines), the
task table, the `oom-kill:constraint=` summary (4.19+), then the victim: `Kill process …
or sacrifice child` (selection, up to 5.0) and `Killed process …`. OomParser joins the
lines of one report into kills and hands a kill on as soon as its `Killed process` line
arrives; the user-space killers' lines go to their recognisers (userspace.py).

Kernel formats follow mm/oom_kill.c and mm/memcontrol.c from 2.4 to 6.x; the comment at
each pattern names the versions that print it. Where the text is ambiguous the labelling
rules of tests/data/oom_logs/README.md (the shared fixture rules) decide.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field

from watchdog_oom.model import KernelLine, OomKill, TaskRow
from watchdog_oom.parse.userspace import (
    USERSPACE_RECOGNISERS,
    Recogniser,
    UserspaceKillers,
)
from watchdog_oom.parse.values import as_int, as_pid, as_uid
from watchdog_oom.parse.wrappers import (
    JOIN_CHARS,
    LINE_CHARS,
    Decoder,
    Stamp,
    pieces,
    prefix_sender,
    prefix_time,
    shape,
    unwrap,
)

# Bounds that keep a huge report (a 50 000-row task table) from costing memory.
TASK_TABLE_ROWS = 10
MEMORY_INFO_LINES = 64
MEMORY_INFO_LINE_CHARS = 300
# A report whose kill has not come after this many lines (task-table rows not counted)
# is abandoned: the kernel panicked, the log was cut, or the kill went unlogged.
REPORT_LINES = 20_000
# A nohang victim description ends with its corrective action within this many lines.
PAGE_KB = 4  # the task table counts pages; every architecture the fixtures show uses 4 kB

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
# The name is the text between the first "(" and the last ")" before the figures; a figure
# list a person trimmed in a paste may start at any of the kB figures.
_KILLED = re.compile(
    _REASON + r"Killed process (\d+)(?:, UID (\d+),)? \((.*)\)(?:, UID (\d+),)?"
    r"(\.|\s+(?:total-vm|vsz|anon-rss|file-rss):.*)?$",
    re.DOTALL,  # a name may hold a newline (journal JSON, rsyslog #012)
)
# The lookbehind starts a name only where one begins: a long run of letters is tried once.
# A figure with digit-group commas ("26,184,840kB", a person's rewrite) is no kernel's: null.
_FIGURE = re.compile(r"(?<![A-Za-z_-])([A-Za-z_-]+):(-?\d+)(?!\d|,\d)")
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


# ------------------------------------------------------------- recognisers, anchors

KERNEL_RECOGNISERS = (
    Recogniser(
        "kernel: Killed process (2.4-6.x, RHEL 6/7 UID forms)", "kernel", _KILLED, ("Killed process ",),
        ((("Out of memory: Killed process 60540 (redis-server) total-vm:17652600kB, anon-rss:14230956kB, "
          "file-rss:128kB, shmem-rss:0kB, UID:999 pgtables:31340kB oom_score_adj:0"),
          "Linux 6.8 (AWS), tests/data/oom_logs/06_aws-6.8_dmesg-T_docker-redis-global-oom.log"),
         ("Killed process 40738, UID 27, (mysqld) total-vm:6424316kB, anon-rss:13128kB, file-rss:4kB",
          "RHEL 6 2.6.32, tests/data/oom_logs/12_rhel6-2.6.32_messages_full-event-oom_adj.log"),
         ("Killed process 3897 (stress) total-vm:1579488kB, anon-rss:1048132kB, file-rss:12kB",
          "Linux 4.x memcg, tests/data/oom_logs/41_docker-stress_dmesg-no-timestamps_task-in-limit-of.log")),
        ("kernel",)),
    Recogniser(
        "kernel: Kill process … score … or sacrifice child (2.6.1x-5.0)", "kernel", _SELECTION, ("ill process ",),
        (("Out of memory: Kill process 45465 (tail) score 902 or sacrifice child",
          "RHEL 7.8 3.10, tests/data/real_reports/azure-docs_rhel78_messages_rhel7-uid-selection-same-pid.log"),
         ("Memory cgroup out of memory: Kill process 443160 (stress-ng-vm) score 1272 or sacrifice child",
          "Linux 3.10 memcg (k8s), tests/data/real_reports/blog_k8s-3.10_dmesg_memcg-rhel7-uid-elided-table.log")),
        ("kernel",)),
)
RECOGNISERS = KERNEL_RECOGNISERS + USERSPACE_RECOGNISERS

# Where a message of an OOM report (or of a killer) begins, wherever it stands in a line.
# Every alternative opens with a literal, so a search tries a handful of characters at each
# offset: linear in the line. The header's invoker name stands before " invoked".
_ANCHOR_WORDS = (
    r"Out of [Mm]emory(?: \(oom_kill_allocating_task\))?: ",
    r"Memory cgroup out of memory: ",
    r"[Kk]ill(?:ed)? process \d",
    r"oom-killer: gfp_mask=",
    r"oom-kill:constraint=",
    r"Tasks? in /",
    r"Mem-[Ii]nfo:",
    r"\[ *pid *\] +uid +tgid",
    r"oom_reaper: ",
    r"CPU: \d+ (?:UID: \d+ )?PID: \d+ Comm: ",
    r"Pid: \d+, comm: ",
    r"memory: usage \d",
    r"Memory cgroup stats for ",
    r"sending SIG(?:TERM|KILL) to process \d",
    r"Killing process '",
    r"killing process \d+ \"",
    r"(?:Out of|[Ll]ow) [Mm]emory! ",
    r"(?:Killed|Marked) (?:/|…|\.\.\.)",
    r"Victim status",
    r"Process with highest badness",
    r"Send(?:ing)? SIG\w+ to the victim",
    r"Implement(?:ing)? a corrective action",
)
_ANCHOR = re.compile(r" invoked oom-killer: |[^\s:]+: systemd-oomd killed \d|[^\s:]+: Failed with result 'oom-kill'|"
                     + "|".join(_ANCHOR_WORDS))
# At the start of a message: the same, with a header's invoker (a task name: 15 bytes,
# here up to 16 characters, blanks allowed) or a unit before PID 1's words.
_ANCHOR_START = re.compile(r".{1,16}? invoked oom-killer: |\S+: systemd-oomd killed \d"
                           r"|\S+: Failed with result 'oom-kill'|"
                           + "|".join(_ANCHOR_WORDS))
# A line that names a victim and may have been cut after these words.
_KILL_START = re.compile(
    r"(?:(?:Out of [Mm]emory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): )?"
    r"[Kk]ill(?:ed)? process(?: \d|\s*$)"
    r"|(?:earlyoom(?:\[\d+\])?: )?(?:sending SIG|Killing process '|killing process \d)"
    r"|(?:systemd-oomd(?:\[\d+\])?: )?(?:Killed|Marked) (?:/|…|\.\.\.)"
    r"|(?:nohang(?:-desktop)?(?:\[\d+\])?: )?\s*Send(?:ing)? SIG\w+ to(?: the)?\s*$"
)
# Other report lines a wrap may cut, held for their continuation when visibly incomplete.
_HOLDABLE = re.compile(r".{1,16}? invoked oom-killer:|oom-killer: gfp_mask=|oom-kill:constraint=|Tasks? in /")
_HEADER_TAIL = re.compile(r"(?:order|oom_score_adj|oomkilladj|oom_adj)=-?\d+\s*$")
_SUMMARY_TAIL = re.compile(r",uid=\d+\s*$")
_EARLYOOM_CUT = re.compile(r"(?:,|\b(?:badness|oom_score|oom_score_adj|VmRSS|cmdline)|\d)\s*$")
MAX_JOINS = 4  # a kill line wrapped at 60 columns spans 3-4 lines
# How a kernel kill line ends when nothing was cut from it (then perhaps the closing quote,
# backtick, emphasis or bracket of whatever quoted it).
_COMPLETE_TAIL = re.compile(r"""(?:\)|\.|kB|oom_score_adj:-?\d+)[`'"*\]]*\s*$""")
# The start of a kill line's figures cut off onto the next line.
_FIGURE_CONTINUES = re.compile(r",?\s*(?:total-vm|anon-rss|file-rss|shmem-rss|UID|pgtables|oom_score_adj)[:\s]|\d*kB\b")
# A kill's words (issue 11 item 7): a line holding them that no recogniser reads is counted.
_KILL_WORDS = re.compile(
    r"[Kk]ill(?:ed)? process \d|invoked oom-killer|sending SIG(?:TERM|KILL) to process|Killing process '"
    r"|killing process \d+ \"|(?:Killed|Marked) (?:/|…|\.\.\.)\S*(?: for killing)? due to|systemd-oomd killed"
    r"|Send(?:ing)? SIG\w+ to the victim"
)


# Every anchor holds one of these: a few substring tests spare most lines the search.
_ANCHOR_HINTS = re.compile(r"emory|ill|oom|Task|Mem-|pid|PID|Pid|SIG|Marked|Victim|badness|corrective|victim")


def _may_anchor(text: str) -> bool:
    """False when no anchor can stand in `text` (a task-table row, a memory-state line)."""
    return _ANCHOR_HINTS.search(text) is not None


def _recognised(body: str) -> bool:
    """True when a recogniser reads this message (or it is a report's header)."""
    if _HEADER.match(body):
        return True
    return any(r.pattern.match(body) for r in RECOGNISERS if any(n in body for n in r.needles))


def _incomplete(body: str) -> bool:
    """True when a kill line (or a report line that tells which report a kill belongs to)
    was visibly cut: no recogniser reads it, or it stops mid-way (a number without its
    unit, a trailing comma)."""
    if body.startswith(("oom-kill:", "Task")):
        return not (_SUMMARY_TAIL.search(body) or _TASK_IN.match(body) or _TASKS_IN.match(body))
    if "oom-killer:" in body:
        return _HEADER.match(body) is None or _HEADER_TAIL.search(body) is None
    if _KILLED.match(body):
        return _COMPLETE_TAIL.search(body) is None
    if 'cmdline "' in body and not body.rstrip().endswith('"'):
        return True  # earlyoom's command line, its last field, was cut
    if body.startswith(("sending SIG", "earlyoom")) and _EARLYOOM_CUT.search(body):
        return True  # earlyoom's figures stop at a name or a comma
    return not _recognised(body)


# Outer wrappers that the continuation of a wrapped line carries as well: cat -n / nl line
# numbers, grep -n / -Hn "file:N:", markdown bullets and quotes.
# A numbered one is only taken off a continuation that carries the next number.
_OUTERS = (re.compile(r"(?P<n>\d+)(?:\t|  )\s*"), re.compile(r"[^\s:]+:(?P<n>\d+)[:-]"),
           re.compile(r"(?P<n>\d+)[:-](?!\d)"), re.compile(r"[-*+>]\s+"))


def _outer(prefix: str) -> re.Pattern | None:
    """The outer wrapper a located message's prefix opens with, if one of _OUTERS."""
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


def _uptime_usec(stamp: str) -> int | None:
    """Microseconds of a dmesg uptime "[ 1234.567890] "."""
    seconds, _, fraction = stamp.strip("[] ").partition(".")
    return as_int(seconds + fraction[:6].ljust(6, "0")) if seconds.isdigit() and fraction.isdigit() else None


_SECOND_KILL = re.compile(
    r"(?:(?:Out of [Mm]emory|Memory cgroup out of memory): )?(?:Killed|[Kk]ill) process \d")
# A syslog header (BSD date, host, kernel tag) that another record run into this one opened with.
_EMBEDDED_HEADER = re.compile(r"\s+[^\W\d_]{3} +\d{1,2} \d\d:\d\d:\d\d \S+ kernel: ")


def _run_together(body: str) -> tuple[int, int] | None:
    """Where a kill message that reads whole ends, and the next message on its line starts
    (a second kill message, or any message after a syslog header): None when not so."""
    if len(body) > JOIN_CHARS or not _KILL_START.match(body):
        return None
    own = _SECOND_KILL.match(body)
    after = own.end() if own else 1
    second = _SECOND_KILL.search(body, after)
    header = _EMBEDDED_HEADER.search(body, after)
    if header is not None and (second is None or header.start() < second.start()):
        end, resume = header.start(), header.end()
    elif second is not None:
        end = resume = second.start()
    else:
        return None
    first = body[:end].rstrip()
    return (end, resume) if first and not _incomplete(first) else None


def _reading(body: str) -> int:
    """How well a joined line reads: 2 whole, 1 as a kill line still cut, 0 not at all."""
    if not _incomplete(body):
        return 2
    return 1 if _KILLED.match(body) or _recognised(body) else 0


def _refusal(body: str, sender: str | None) -> str | None:
    """Why a kill line cannot be believed from this sender (None: it can): the kernel's
    words only from the kernel, a killer's only from its own tag (logger -t forges nothing
    that a journal field or syslog tag does not show)."""
    if sender is None:
        return None
    tag = sender.lower()
    for recogniser in RECOGNISERS:
        if any(n in body for n in recogniser.needles) and recogniser.pattern.match(body):
            if tag in recogniser.senders:
                return None
            return f"{recogniser.killer} words from {sender!r}, not from {'/'.join(recogniser.senders)}"
    return None


@dataclass(frozen=True)
class UnreadLine:
    """A line that holds a kill's words and that no recogniser read, as it was found."""

    line: int | None  # 1-based line number, when known
    offset: int | None  # byte offset in the input, when the line number is not known
    text: str  # the message, cut to UNREAD_CHARS
    reason: str


UNREAD_CHARS = 300


@dataclass
class Unread:
    """Lines holding a kill's words that could not be read into a kill: counted, the first
    `keep` kept with where they were, so that a person can look (nothing missed silently)."""

    keep: int = 20
    count: int = 0
    cut: int = 0  # physical lines longer than LINE_CHARS, cut there
    first: list[UnreadLine] = field(default_factory=list)
    _new: list[UnreadLine] = field(default_factory=list)  # since the last drain(), at most `keep`

    def add(self, where: tuple[int | None, int | None], text: str, reason: str) -> None:
        self.count += 1
        line = UnreadLine(where[0], where[1], text[:UNREAD_CHARS], reason)
        if len(self.first) < self.keep:
            self.first.append(line)
        if len(self._new) < self.keep:
            self._new.append(line)

    def drain(self) -> list[UnreadLine]:
        """The lines added since the last call (a follower alerts on each once)."""
        new, self._new = self._new, []
        return new


@dataclass(frozen=True)
class _Held:
    """A kill line waiting for the next line, which may be its continuation."""

    text: str
    stamp: Stamp
    sender: str | None
    width: int  # the physical line's length: a terminal cuts every long line at one width
    where: tuple[int | None, int | None] = (None, None)  # its line number or byte offset
    joins: int = 0  # continuations joined so far (a wrapped kill line spans a few lines)
    outer: re.Pattern | None = None  # an outer wrapper (cat -n, grep -n, a bullet) continuations carry too
    number: int = 0  # the line number in that outer wrapper


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
        self.killed: set[int | None] = set()
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
        columns = self.columns or []
        key = (int(row.group(self.rss_group)), -int(row.group(1)))
        if len(self.tasks) < TASK_TABLE_ROWS:
            heapq.heappush(self.tasks, (*key, _task_row(columns, row)))
        elif key > self.tasks[0][:2]:
            heapq.heapreplace(self.tasks, (*key, _task_row(columns, row)))

    def task_table(self) -> tuple[TaskRow, ...]:
        return tuple(row for _, _, row in sorted(self.tasks, reverse=True))


class OomParser:
    """Joins kernel log lines into OomKill records, one feed() at a time.

    A kill is returned by the feed() of its `Killed process` line (or of the user-space
    killer's line). A `Kill process … or sacrifice child` selection that no `Killed
    process` line follows is returned when the next report starts or by flush(), which a
    caller should invoke when its source has been quiet for a moment.
    """

    def __init__(self, *, year: int | None = None, lenient: bool = False,
                 unread: Unread | None = None) -> None:
        self._year = year
        self._report: _Report | None = None
        self._users = UserspaceKillers()
        # lenient: text pasted from anywhere (import): decode enclosures, find the kernel's
        # words wherever they start in a line, join lines wrapped after them. Strict (the
        # live sources): a message is read only where its source put it.
        self._lenient = lenient
        self._decoder = Decoder()
        self._shape: re.Pattern | None = None  # the wrapper learned from the last anchor line
        self._held: _Held | None = None  # a kill line that the next line may continue
        self._widths: dict[int, int] = {}  # how often each long physical width was seen
        self._where: tuple[int | None, int | None] = (None, None)
        self._held_where: tuple[int | None, int | None] = (None, None)
        self._held_outer: tuple[re.Pattern | None, int] = (None, 0)
        self._prefix = ""  # what stood before the last message located
        self._last_kill: tuple | None = None
        self.unread = unread if unread is not None else Unread()

    @property
    def pending(self) -> bool:
        """True when flush() would return a kill (a selection still awaiting its victim)."""
        return self._held is not None or (self._report is not None and self._report.selection is not None)

    @property
    def collecting(self) -> bool:
        """True while a report or a user-space killer's description is being assembled."""
        return bool(
            (self._report is not None and self._report.collecting)
            or self._users.collecting
            or self._held is not None
            or self._decoder.holding
        )

    def feed(self, line: KernelLine, *, line_no: int | None = None, offset: int | None = None) -> list[OomKill]:
        """Take one log line; return the kills it completes (usually none). `line_no` or
        `offset` say where it was, for the list of lines that could not be read."""
        self._where = (line_no, offset)
        text = line.text
        if not line.wrapped and not self._lenient and self._held is None and len(text) <= LINE_CHARS and (
                "\n" not in text and "#01" not in text and text.find("[", 1) < 0):
            # The live sources' common case: one kernel message, as the source delivered it.
            kills = self._hold_or_take(text.lstrip(), Stamp(line, line.time, line.mono_usec), None, len(text))
            return kills + self._release() if self._held is not None else kills
        kills = []
        logical: list[tuple[str, str | None]]
        if not line.wrapped:
            logical = [(line.text[:LINE_CHARS], None)]
        elif self._lenient:
            logical = self._decoder.lines(line.text)
            self.unread.cut = self._decoder.cut
            if len(line.text) >= 40:
                self._widths[len(line.text)] = self._widths.get(len(line.text), 0) + 1
        else:
            logical = [(line.text[:LINE_CHARS], None)]
        for raw, sender in logical:
            kills += self._logical(line, raw, sender, len(line.text))
        if not self._lenient and self._held is not None:
            kills += self._release()  # live: a kill is handed on by its own line
        return kills

    def _logical(self, line: KernelLine, raw: str, sender: str | None, width: int) -> list[OomKill]:
        if line.wrapped:
            text, wall, mono, fresh = unwrap(raw, year=self._year)
        else:
            text, wall, mono, fresh = raw, None, None, True
        stamp = Stamp(line, wall or line.time, mono if mono is not None else line.mono_usec,
                      raw if line.wrapped else None)
        kills: list[OomKill] = []
        for n, (piece, separator) in enumerate(pieces(text)):
            glued = separator.startswith("[")
            if glued:  # a dmesg record glued to the one before: a new record, with its own uptime
                mono = _uptime_usec(separator)
                stamp = stamp.with_times(stamp.time, mono if mono is not None else stamp.mono_usec)
            kills += self._piece(piece, stamp, sender, fresh=(fresh and n == 0) or glued,
                                 separator=separator if n and not glued else None, width=width,
                                 spaced=n == 0 and raw[:1] in (" ", "\t"))
        return kills

    def flush(self) -> list[OomKill]:
        """Return what is pending: a held kill line, a selected victim whose `Killed process`
        never came."""
        kills: list[OomKill] = []
        for raw, sender in self._decoder.flush():
            kills += self._logical(KernelLine(text=raw, source="", wrapped=True), raw, sender, 0)
        if self._held is not None:
            kills += self._release()
        return kills + self._flush_selection()

    def _flush_selection(self) -> list[OomKill]:
        report = self._report
        if report is None or report.selection is None:
            return []
        selection, report.selection = report.selection, None
        pid = selection["pid"]
        kill = _kernel_kill(report, selection, pid, selection["process"], {}, None,
                            selection["line"], selection["stamp"])
        report.killed.add(pid)
        return [kill]

    # ------------------------------------------------- finding and joining messages

    def _piece(self, piece: str, stamp: Stamp, sender: str | None, *, fresh: bool,
               separator: str | None, width: int, spaced: bool = False) -> list[OomKill]:
        """One message as cut from a line: it continues a held kill line, or is located."""
        kills: list[OomKill] = []
        held = self._held
        if held is not None:
            self._held = None
            if separator is None:
                piece = piece[_outer_end(held, piece):]
            if self._continues(held, piece, fresh, separator):
                if separator is not None:
                    joined = held.text + separator + piece
                else:
                    gap = " " if spaced else self._gap(held, piece)
                    joined = held.text + gap + piece.lstrip()
                    if _incomplete(joined.strip()):  # the other reading, where it reads better
                        other = held.text + (" " if gap == "" else "") + piece.lstrip()
                        if _reading(other.strip()) > _reading(joined.strip()):
                            joined = other
                self._held_where, self._held_outer = held.where, (held.outer, held.number)
                return self._hold_or_take(joined[:JOIN_CHARS], held.stamp, held.sender, held.width,
                                          joins=held.joins + 1)
            kills = self._take_held(held)
        body, sender = self._locate(piece, sender, fresh)
        if self._prefix and stamp.mono_usec is None:
            wall, mono = prefix_time(self._prefix, self._year)  # "  1 [57539.949044] " (nl), "kern.log:3:Jun …"
            if mono is not None or (wall is not None and stamp.time is None):
                stamp = stamp.with_times(stamp.time or wall, mono)
        return kills + self._hold_or_take(body, stamp, sender, width)

    def _hold_or_take(self, body: str, stamp: Stamp, sender: str | None, width: int,
                      joins: int = 0) -> list[OomKill]:
        """Hold a kill line the next line may continue (cut in a name or its figures, or a
        pasted line wrapped after them); take anything else now."""
        split = _run_together(body) if self._lenient else None
        if split is not None:  # messages run together on one line (a web page lost the line breaks)
            first = self._take_held(_Held(body[:split[0]].rstrip(), stamp, sender, width,
                                          self._held_where if joins else self._where))
            return first + self._hold_or_take(body[split[1]:], stamp, sender, width)
        holds = False
        if len(body) < JOIN_CHARS and joins < MAX_JOINS:  # substring tests first: most lines hold none
            if "ill" in body or "SIG" in body or "Send" in body:
                holds = _KILL_START.match(body) is not None and (self._lenient or _incomplete(body))
            if not holds and ("oom-kill" in body or "Task" in body):
                holds = _HOLDABLE.match(body) is not None and _incomplete(body)
            if not holds and sender == "systemd-oomd":
                holds = body.rstrip() in ("Killed", "Marked")
        if not holds and not joins:
            return self._take_checked(body, stamp, sender)  # the common case: a line read at once
        if joins:
            outer, number = self._held_outer
        else:
            outer = _outer(self._prefix)
            found = outer.match(self._prefix) if outer is not None else None
            number = int(found["n"]) if found is not None and found.groupdict().get("n") else 0
        held = _Held(body.rstrip("\r\n"), stamp, sender, width, self._held_where if joins else self._where, joins,
                     outer, number)
        if holds:
            self._held = held
            return []
        return self._take_held(held)

    def _release(self) -> list[OomKill]:
        held, self._held = self._held, None
        return self._take_held(held) if held else []

    def _take_held(self, held: _Held) -> list[OomKill]:
        """Take a held line as read so far, counted (if unread) where it began."""
        where, self._where = self._where, held.where
        try:
            return self._take_checked(held.text, held.stamp, held.sender)
        finally:
            self._where = where

    def _continues(self, held: _Held, piece: str, fresh: bool, separator: str | None) -> bool:
        """Whether `piece` is the rest of the held kill line rather than a message of its own."""
        stripped = piece.strip()
        if fresh or not stripped or _ANCHOR_START.match(stripped):
            return False
        if separator is None and self._shape_end(piece.lstrip()) > 0:
            return False
        if _FIGURE_CONTINUES.match(stripped):
            return True
        return _incomplete(held.text.strip())

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

    def _locate(self, piece: str, sender: str | None, fresh: bool) -> tuple[str, str | None]:
        """The message in a piece of a line, and who sent it. Lenient: a message starts at the
        kernel's (or a killer's) own words wherever they stand; what precedes them is the
        line's wrapper, learned for the report's lines that carry no such words."""
        text = piece.lstrip()  # blanks at its end tell a wrap's gap (see _gap)
        self._prefix = ""
        if not self._lenient or not text:
            return text, sender
        words = _may_anchor(text)
        if words and _ANCHOR_START.match(text):
            return text, sender
        end = self._shape_end(text)
        if end > 0 and words and _ANCHOR_START.match(text, end):
            self._prefix = text[:end]
            return text[end:], sender or prefix_sender(text[:end], headed=fresh)
        anchor = _ANCHOR.search(text) if words else None  # most report lines (task rows) hold no anchor
        if anchor is None:
            return text[end:], sender
        start = anchor.start()
        if text.startswith(" invoked", start):  # the invoker's name is the word before
            start = text.rfind(" ", 0, start) + 1
        prefix = self._prefix = text[:start]
        self._shape = shape(prefix)
        return text[start:], sender or prefix_sender(prefix, headed=fresh)

    def _shape_end(self, text: str) -> int:
        """Where the wrapper learned from the report's anchor lines ends in `text` (0: none)."""
        if self._shape is None:
            return 0
        match = self._shape.match(text, 0, 256)
        return match.end() if match is not None else 0

    def _take_checked(self, body: str, stamp: Stamp, sender: str | None) -> list[OomKill]:
        """Take one message unless its sender cannot have written it; a line holding a
        kill's words that no recogniser read is counted (Unread)."""
        refused = _refusal(body, sender)
        if refused is not None:
            self.unread.add(self._where, body, refused)
            return []
        if sender is None and not ("ill" in body or "SIG" in body or "oom" in body):
            return self._take(body, stamp)  # no kill's words: nothing to count
        kills = self._take(body, stamp)
        if not kills and _KILL_WORDS.search(body) and not _recognised(body):
            self.unread.add(self._where, body, "no recogniser read this line")
        return kills

    # -------------------------------------------------------------- one message

    def _take(self, text: str, stamp: Stamp) -> list[OomKill]:
        """One kernel message: it joins the open report, starts one, or completes a kill."""
        text = text.strip()
        report = self._report
        if report is not None and report.collecting:
            if report.columns is not None and self._task_row(report, text):
                return []
            report.lines += 1
            if report.lines > REPORT_LINES:
                abandoned = self._flush_selection()
                self._report = None
                return abandoned + self._take(text, stamp)
        if "Kill" in text or "kill process" in text:
            kills = self._kill_line(text, stamp)
            if kills is not None:
                self._users.interrupt()
                return kills
        kills = self._users.take(text, stamp)
        if kills is not None:
            return kills
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
        if report is not None and report.collecting:
            self._report_line(report, text)
        return []

    def _kill_line(self, text: str, stamp: Stamp) -> list[OomKill] | None:
        """A kernel line naming a victim; None when "Kill" meant something else."""
        killed = _KILLED.match(text)
        if killed:
            return self._killed(killed, text, stamp)
        selection = _SELECTION.match(text)
        if selection:
            return self._selection(selection, text, stamp)
        return None

    # ----------------------------------------------------------- report structure

    def _open(self) -> tuple[_Report, list[OomKill]]:
        """Start a new report; a selection left without its victim becomes a kill."""
        kills = self._flush_selection()
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
        report.order = as_int(header.group(3), -1, 64)
        report.awaiting_pid = True
        return kills

    def _summary(self, text: str) -> list[OomKill]:
        report, kills = self._current()
        report.in_memory_info = False
        constraint = _OOM_KILL.match(text)
        report.constraint = constraint.group(1) if constraint else None
        if report.constraint == "CONSTRAINT_MEMCG":
            report.cgroup_oom = True
        at = text.find(",oom_memcg=")
        memcg = _OOM_KILL_MEMCG.match(text, at) if at >= 0 else None
        if memcg:
            report.memcg = memcg.group(1)
        at = text.find(",task_memcg=")
        task_memcg = _OOM_KILL_TASK_MEMCG.match(text, at) if at >= 0 else None
        # one try from the first ",task=": searching would retry from every one (quadratic)
        at = text.find(",task=")
        task = _OOM_KILL_TASK.match(text, at) if at >= 0 else None
        report.summary = {
            "task_memcg": task_memcg.group(1) if task_memcg else None,
            "pid": as_pid(task.group(2)) if task else None,
            "uid": as_uid(task.group(3)) if task else None,
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
        row = report.row_pattern.fullmatch(text) if report.row_pattern is not None else None
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
        report, kills = self._open() if self.pending else self._current()
        report.in_memory_info = False
        report.columns = None
        report.selection = {
            "pid": as_pid(match.group(2)),
            "process": match.group(3),
            "score": as_int(match.group(4)),
            "reason": match.group(1),
            "line": text,
            "stamp": stamp,
        }
        return kills

    def _killed(self, match: re.Match, text: str, stamp: Stamp) -> list[OomKill]:
        pid = as_pid(match.group(2))
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
        figures = _figures(match.group(6) or "")
        uid = match.group(3) or match.group(5)  # RHEL6 ", UID 27, (x)", RHEL7 "(x), UID 27,"
        if uid is not None:
            figures["uid"] = as_uid(uid)
        selection, report.selection = report.selection, None
        name, reason = match.group(4), match.group(1)
        kills.append(_kernel_kill(report, selection, pid, name, figures, reason, text, stamp))
        report.killed.add(pid)
        return kills


def _figures(text: str) -> dict:
    """The victim's figures from the tail of its kill line; one out of range is None."""
    figures: dict = {}
    for key, value in _FIGURE.findall(text):
        field = _FIGURE_FIELDS.get(key)
        if field is not None:
            figures[field] = as_uid(value) if field == "uid" else as_int(value)
    return figures


def _kernel_kill(report: _Report, selection: dict | None, pid: int | None, name: str, figures: dict,
                 reason: str | None, text: str, stamp: Stamp) -> OomKill:
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



def _row_pattern(columns: list[str]) -> re.Pattern:
    """A pattern for the rows under a task-table header: numbers, then the name."""
    return re.compile(r"\[\s*(\d{1,7})\]" + r"\s+(-?\d{1,19})" * len(columns) + r"\s+(.*)")


def _task_row(columns: list[str], row: re.Match) -> TaskRow:
    """One dump_tasks() row (a match of _row_pattern) read by the header's column names."""
    cells = dict(zip(columns, map(int, row.groups()[1:-1]), strict=True))
    pgtables = cells.get("pgtables_bytes")
    if pgtables is not None:
        pgtables //= 1024
    elif "nr_ptes" in cells:
        pgtables = cells["nr_ptes"] * PAGE_KB
    return TaskRow(
        pid=as_pid(row.group(1)) or 0,
        uid=cells.get("uid"),
        tgid=cells.get("tgid"),
        total_vm_kb=cells["total_vm"] * PAGE_KB,
        rss_kb=cells["rss"] * PAGE_KB,
        pgtables_kb=pgtables,
        swapents=cells.get("swapents"),
        oom_score_adj=cells.get("oom_score_adj"),
        name=row.group(len(columns) + 2),
    )


"""Pure reading of the kernel's ``oom`` tracepoints: event formats, trace_pipe lines, values.

tracefs describes every event in ``events/<system>/<event>/format``: its fields and its
``print fmt``, the printf the kernel uses to write the event into ``trace_pipe``. Fields
differ between kernels, so this module reads the format first and builds the pattern of
the body from its ``print fmt``; a field the running kernel lacks is ``None``, never a guess.

The two events this project reads (include/trace/events/oom.h):

* ``oom/oom_score_adj_update`` (Linux 3.3, "oom: add tracepoints for oom_score_adj",
  KAMEZAWA Hiroyuki): ``pid=%d comm=%s oom_score_adj=%hd``. It fires in
  fs/proc/base.c ``__set_oom_adj()`` on every write to ``/proc/PID/oom_score_adj`` (and to
  the legacy ``oom_adj``), with the *target*'s pid, comm and new value; the task that
  wrote is the event's own task (the line's ``comm-pid`` prefix). The old value is not in it.
* ``oom/mark_victim`` (Linux 4.13, "mm/oom_kill.c: add tracepoints for oom reaper-related
  events", Roman Gushchin): ``pid=%d`` only. Commit 72ba14deb40a ("mm: update mark_victim
  tracepoints fields", Carlos Galo, mainline 6.9, backported to some stable trees) added
  ``comm``, ``total_vm``, ``anon_rss``, ``file_rss``, ``shmem_rss`` (kB), ``uid``,
  ``pgtables`` (kB) and ``oom_score_adj``: the figures of the ``Killed process`` line.
  It fires in ``mark_oom_victim()``, called in the context of the task that ran the OOM
  killer (the line's prefix names it: the invoker), right after SIGKILL was sent and
  ``oom_kill`` was counted in /proc/vmstat. It also fires without a kill, when the kernel
  gives memory reserves to a task that is already exiting (``task_will_free_mem``):
  such a mark does not raise ``oom_kill``, which is how ``classify_marks`` tells them apart.

A trace_pipe line (kernel/trace/trace_output.c, default options)::

    <comm>-<tid>  [<cpu>] <irq flags> <seconds>.<micro>: <event>: <body>

with a ``(tgid)`` column after the tid when ``record-tgid`` is set, 4 flag characters
before 6.x's 5, and ``CPU:<n> [LOST <count> EVENTS]`` lines where the ring buffer
overflowed. Process names are written by their owners (``prctl(PR_SET_NAME)``): any
bytes but NUL, 15 at most, so a line is parsed from its known end fields backwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import field
from datetime import datetime, timedelta
from typing import Any

from watchdog_oom.model import OomKill
from watchdog_oom.valueclass import valueclass

MARK_VICTIM = "mark_victim"
ADJ_UPDATE = "oom_score_adj_update"
EVENTS = (f"oom/{MARK_VICTIM}", f"oom/{ADJ_UPDATE}")
SOURCE_NAME = "tracepoint"
# A trace line is short; anything longer is not one (and is not kept).
MAX_LINE = 1024

# mark_victim's fields (6.9+) to the kill record's names; all sizes are in kB already.
_KILL_FIELDS = {
    "comm": "process", "total_vm": "total_vm_kb", "anon_rss": "anon_rss_kb", "file_rss": "file_rss_kb",
    "shmem_rss": "shmem_rss_kb", "uid": "uid", "pgtables": "pgtables_kb", "oom_score_adj": "oom_score_adj",
}

# The task's name is printed right-aligned in 16 columns ("%16s-%-7d", TASK_COMM_LEN 16, so
# 15 characters at most): bounding it keeps a name in the body (a victim's comm, chosen by
# its owner) from being taken for the line's own prefix.
_LINE = re.compile(
    r"^\s*(?P<task>.{0,16})-(?P<tid>\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(?P<cpu>\d+)\]\s+(?:[^\s\[\]]{4,5}\s+)?"
    r"(?P<secs>\d+)\.(?P<frac>\d+):\s(?P<event>\w+):\s(?P<body>.*)$",
    re.DOTALL,
)
_LOST = re.compile(r"^CPU:(\d+) \[LOST (\d+) EVENTS\]$")
# printf conversions the oom events use, to the pattern of what they print.
_CONVERSION = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\d*)(?P<length>hh|h|ll|l|z)?(?P<conv>[diuxXs%])")
_ARG_FIELD = re.compile(r"(?:REC->(\w+)|__get_str\((\w+)\))")


class FormatError(ValueError):
    """An event's ``format`` file cannot be understood."""


@valueclass
class EventFormat:
    """What ``events/<system>/<event>/format`` says: the fields and how a line prints them."""

    name: str
    fields: tuple[str, ...]
    printed: tuple[str, ...]
    pattern: re.Pattern[str]

    def has(self, name: str) -> bool:
        """Whether this kernel's event carries the field ``name``."""
        return name in self.fields


@valueclass
class VictimMarked:
    """``oom/mark_victim``: the OOM killer chose ``pid`` (usually: and sent it SIGKILL).

    ``mono_usec`` and ``time`` are the event's timestamp; ``marker``/``marker_tid`` the
    task that ran the OOM killer. ``figures`` holds the kill record fields this kernel
    prints (empty before 6.9). ``oom_kill_count`` is /proc/vmstat ``oom_kill`` as read
    when the event was delivered (None where it was not read).
    """

    pid: int
    mono_usec: int
    time: datetime | None
    marker: str
    marker_tid: int
    figures: dict[str, Any] = field(default_factory=dict)
    oom_kill_count: int | None = None


@valueclass
class AdjWritten:
    """``oom/oom_score_adj_update``: ``writer``/``writer_tid`` set ``pid``'s oom_score_adj."""

    pid: int
    process: str
    oom_score_adj: int
    mono_usec: int
    time: datetime | None
    writer: str
    writer_tid: int


@valueclass
class EventsLost:
    """The ring buffer of one CPU overflowed: ``count`` events were never delivered."""

    cpu: int
    count: int


TraceEvent = VictimMarked | AdjWritten | EventsLost


def parse_format(text: str) -> EventFormat:
    """An event's ``format`` file to its EventFormat. Raises FormatError."""
    name = ""
    fields: list[str] = []
    fmt: str | None = None
    args: str = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("name:"):
            name = line[5:].strip()
        elif line.startswith("field:"):
            declaration = line[6:].split(";", 1)[0].strip()
            field_name = re.sub(r"\[.*\]$", "", declaration.split()[-1]) if declaration else ""
            if field_name and not field_name.startswith("common_"):
                fields.append(field_name)
        elif line.startswith("print fmt:"):
            fmt, args = _split_print_fmt(line[len("print fmt:"):].strip())
    if fmt is None:
        raise FormatError(f"no print fmt in the format of {name or 'an event'}")
    printed = tuple(a or b for a, b in _ARG_FIELD.findall(args))
    pattern, count = _body_pattern(fmt)
    if count != len(printed):
        raise FormatError(f"{name}: print fmt has {count} conversions but {len(printed)} fields: {fmt!r}")
    return EventFormat(name=name, fields=tuple(fields), printed=printed, pattern=pattern)


def _split_print_fmt(rest: str) -> tuple[str, str]:
    """``"fmt", ARGS`` to (fmt with C escapes undone, ARGS)."""
    if not rest.startswith('"'):
        raise FormatError(f"print fmt is not a string: {rest[:80]!r}")
    chars: list[str] = []
    i = 1
    while i < len(rest):
        c = rest[i]
        if c == "\\" and i + 1 < len(rest):
            chars.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(rest[i + 1], rest[i + 1]))
            i += 2
            continue
        if c == '"':
            return "".join(chars), rest[i + 1:].lstrip(" ,")
        chars.append(c)
        i += 1
    raise FormatError(f"unterminated print fmt: {rest[:80]!r}")


def _body_pattern(fmt: str) -> tuple[re.Pattern[str], int]:
    """The regular expression a body printed by ``fmt`` matches, and its group count."""
    parts: list[str] = []
    at = 0
    count = 0
    for match in _CONVERSION.finditer(fmt):
        parts.append(re.escape(fmt[at:match.start()]))
        at = match.end()
        conv = match.group("conv")
        if conv == "%":
            parts.append("%")
            continue
        count += 1
        if conv == "s":
            # Greedy: the fields after a name are numbers, so the real ones are the last.
            parts.append("(.*)")
        elif conv in "di":
            parts.append(r"\s*(-?\d+)")
        elif conv == "u":
            parts.append(r"\s*(\d+)")
        else:
            parts.append(r"\s*([0-9a-fA-F]+)")
    parts.append(re.escape(fmt[at:]))
    return re.compile("^" + "".join(parts) + "$", re.DOTALL), count


def parse_body(fmt: EventFormat, body: str) -> dict[str, Any] | None:
    """An event's body to its fields by name (ints where printed as numbers); None if it does not fit."""
    match = fmt.pattern.match(body)
    if match is None:
        return None
    out: dict[str, Any] = {}
    for name, value in zip(fmt.printed, match.groups(), strict=True):
        out[name] = int(value) if re.fullmatch(r"-?\d+", value) and name != "comm" else value
    return out


def parse_line(line: str, formats: dict[str, EventFormat],
               boot_wall: datetime | None = None) -> TraceEvent | None:
    """One trace_pipe line to its event; None for other events, blank or unparseable lines.

    ``formats`` maps event names to their formats; ``boot_wall`` is the wall-clock time of
    the trace clock's zero (so a timestamp becomes a time), None to leave times unset.
    """
    line = line.rstrip("\n")
    if not line or len(line) > MAX_LINE:
        return None
    lost = _LOST.match(line.strip())
    if lost:
        return EventsLost(cpu=int(lost.group(1)), count=int(lost.group(2)))
    match = _LINE.match(line)
    if match is None:
        return None
    event = match.group("event")
    fmt = formats.get(event)
    if fmt is None:
        return None
    values = parse_body(fmt, match.group("body"))
    if values is None or "pid" not in values:
        return None
    frac = match.group("frac")
    usec = int(match.group("secs")) * 1_000_000 + int((frac + "000000")[:6])
    when = boot_wall + timedelta(microseconds=usec) if boot_wall is not None else None
    task, tid = match.group("task").strip(), int(match.group("tid"))
    if event == MARK_VICTIM:
        figures = {_KILL_FIELDS[k]: v for k, v in values.items() if k in _KILL_FIELDS}
        return VictimMarked(pid=values["pid"], mono_usec=usec, time=when, marker=task, marker_tid=tid,
                            figures=figures)
    if event == ADJ_UPDATE and isinstance(values.get("oom_score_adj"), int):
        return AdjWritten(pid=values["pid"], process=str(values.get("comm", "")), oom_score_adj=values["oom_score_adj"],
                          mono_usec=usec, time=when, writer=task, writer_tid=tid)
    return None


def parse_lines(lines: Iterable[str], formats: dict[str, EventFormat],
                boot_wall: datetime | None = None) -> Iterator[TraceEvent]:
    """Every event of ``lines`` (see parse_line)."""
    for line in lines:
        event = parse_line(line, formats, boot_wall)
        if event is not None:
            yield event


def classify_marks(marks: list[VictimMarked], counted_before: int | None) -> tuple[list[VictimMarked], int | None]:
    """Which marks are kills: those the /proc/vmstat ``oom_kill`` counter accounts for.

    ``__oom_kill_process()`` counts ``oom_kill`` before it marks the victim, so when the
    counter read after the events has not risen by one for a mark, that mark gave memory
    reserves to a task already exiting and killed nothing. Returns the kills and the
    counter value they account up to (pass it back in with the next marks). Without
    counter readings (``counted_before`` or a mark's ``oom_kill_count`` None) every mark
    counts as a kill.
    """
    kills: list[VictimMarked] = []
    counted = counted_before
    for mark in marks:
        if counted is None or mark.oom_kill_count is None:
            kills.append(mark)
            counted = mark.oom_kill_count if counted is None else counted
            continue
        if mark.oom_kill_count > counted:
            counted += 1
            kills.append(mark)
        # Otherwise the counter (read after the event, and counted before the mark) did
        # not move: the victim was already exiting when chosen, and nothing was killed.
    return kills, counted


def victim_to_kill(mark: VictimMarked, *, process: str | None = None, boot_id: str | None = None) -> OomKill:
    """The kill record the tracepoint alone gives: exact victim, time and (6.9+) sizes.

    ``process`` names the victim on kernels whose event carries only the pid (read from
    /proc or the process cache by the caller); ``?`` when nobody knows it.
    """
    figures = dict(mark.figures)
    name = figures.pop("process", None) or process or "?"
    extra = {
        "witnesses": [SOURCE_NAME],
        "tracepoint": {"mono_usec": mark.mono_usec, "marker": mark.marker, "marker_tid": mark.marker_tid,
                       "oom_kill_count": mark.oom_kill_count},
    }
    return OomKill(pid=mark.pid, process=name, time=mark.time, mono_usec=None, killer="kernel",
                   source=SOURCE_NAME, boot_id=boot_id, extra=extra, **figures)


def same_kill(traced: OomKill, logged: OomKill, window: timedelta = timedelta(seconds=5)) -> bool:
    """Whether a kill the tracepoint saw and one a log gave are one kill (pid, name, time)."""
    if logged.killer != "kernel" or traced.pid is None or traced.pid != logged.pid:
        return False
    if traced.boot_id and logged.boot_id and traced.boot_id != logged.boot_id:
        return False
    if traced.process != "?" and logged.process and traced.process[:15] != logged.process[:15]:
        return False
    if traced.time is None or logged.time is None or logged.time.tzinfo is None:
        return logged.time is None or traced.time is None
    return abs(traced.time - logged.time) <= window


def merge_witnesses(traced: OomKill, logged: OomKill) -> OomKill:
    """One record of one kill seen twice: the tracepoint's victim, time and sizes; the log's
    invoker, constraint, cgroups, task table and memory state; both named as witnesses."""
    taken = {name: getattr(traced, name) for name in (
        "pid", "time", "uid", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb", "pgtables_kb",
        "oom_score_adj") if getattr(traced, name) is not None}
    if traced.process != "?":
        taken["process"] = traced.process
    witnesses = list(dict.fromkeys([*traced.extra.get("witnesses", []), logged.source or "log"]))
    extra = {**logged.extra, "tracepoint": traced.extra.get("tracepoint"), "witnesses": witnesses}
    return logged.replace(**taken, boot_id=logged.boot_id or traced.boot_id, extra=extra)

"""The parser's fast lane (parse/lane.py) reads every line as its general path does.

OomParser(fast=False) is the reference: no remembered wrapper, no lane. tests/test_parse_shapes.py
reads every capture in tests/data both ways, raw, in every wrapper and mixed line by line; here:
captures interleaved with one another, and lines drawn at random from what the lane picks
among (headers, summaries, kill lines, rows, call traces, user-space killers' lines) and
their near misses (a long invoker, a cut header, a killer's words in a summary, a continuation
a wrap cut off), in wrappers that stay or change from one line to the next. The kills (every
field, evidence included) and the unread lines must be the same both ways. The lane's other
shortcuts are checked against what they stand for: a shape's log format against
wrappers.line_format(), the kill line's figures against their general loop.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from parse_corpus import _interleaved
from test_parse_shapes import CAPTURES, PREFIXES, YEARS, _same_both_ways

from watchdog_oom.model import KernelLine
from watchdog_oom.parse import OomParser, report, wrappers
from watchdog_oom.parse.report import REPORT_LINES
from watchdog_oom.parse.shapes import _SHAPES, _first_class

PAIRS = [(CAPTURES[i], CAPTURES[(i * 7 + 3) % len(CAPTURES)]) for i in range(0, len(CAPTURES), 3)]


@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a.name}+{b.name}" for a, b in PAIRS])
def test_two_captures_interleaved_read_the_same_with_and_without_the_lane(pair: tuple[Path, Path]) -> None:
    first, second = (path.read_text(encoding="utf-8", errors="replace").splitlines() for path in pair)
    year = YEARS.get(str(pair[0])) or YEARS.get(str(pair[1]))
    for seed in range(2):
        _same_both_ways(_interleaved(first, second, seed), year)


HEADER = "java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0"
SUMMARY = ("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
           "task_memcg=/system.slice/app.service,task=java,pid=1234,uid=1000")
KILL = ("Out of memory: Killed process 1234 (java) total-vm:8806332kB, anon-rss:6848016kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:1000 pgtables:14360kB oom_score_adj:0")
EARLYOOM_SEND = 'earlyoom[12]: sending SIGTERM to process 1234 uid 1000 "java": badness 900, VmRSS 1000 MiB'
EARLYOOM_CMDLINE = 'earlyoom[12]: process 1234 cmdline "java -jar x"'
NOHANG_STATUS, NOHANG_SEND = "nohang[3]: Victim status (found in 14ms):", "nohang[3]:   Sending SIGTERM to the victim"
# Messages the lane picks among, and their near misses.
MESSAGES = [
    HEADER,
    "oom-killer: gfp_mask=0xd0, order=0",
    "a very long name invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "a much longer name here invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "Killer invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "Tasker invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "SIGnal invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "nohang invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_sc",
    "Killed process 5 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0",
    "Low memory! ab invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    SUMMARY,
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=x,mems_allowed=0,oom_memcg=/k,task_memcg=/k/p,"
    "task=java,pid=77,uid=0",
    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=ja",
    "oom-kill:constraint=CONSTRAINT_NONE,task_memcg=/Killed process 5 (x),task=SIGx,pid=1234,uid=1000",
    "oom-kill:constraint=CONSTRAINT_NONE,task_memcg=/a invoked oom-killer: gfp_mask=0x0, order=0,task=x,pid=1,uid=0",
    "oom-kill:constraint=CONSTRAINT_NONE,task_memcg=/Marked /x due to,task=y,pid=3,uid=0",
    KILL,
    "Out of memory: Killed process 77 (java) total-vm:1kB, anon-rss:2kB, file-rss:3kB, shmem-rss:4kB",
    "Killed process 40738, UID 27, (mysqld) total-vm:6424316kB, anon-rss:13128kB, file-rss:4kB",
    "Memory cgroup out of memory: Killed process 77 (java) total-vm:1kB, anon-rss:2kB, file-rss:3kB, "
    "shmem-rss:4kB, UID:0 pgtables:5kB oom_score_adj:-999",
    "Out of memory: Killed process 1234 (ja",
    "Out of memory: Killed process 1234 (java) total-vm:8806332kB, anon-",
    "Out of memory: Kill process 1234 (java) score 902 or sacrifice child",
    "Killed process 1234 (java) total-vm:4kB, anon-rss:0kB, file-rss:0kB Out of memory: Killed process 99 (x).",
    "rss:0kB, file-rss:0kB, shmem-rss:0kB",
    "oom_score_adj:0",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    "[   1234]  1000  1234   100000    20000   200000        0             0 java",
    "[   1235]  1000  1235   100000    30000   200000        0             0 rapid",
    "[   1236]  1000  1236   100000 killall",
    "Mem-Info:",
    "active_anon:1790129 inactive_anon:177312 isolated_anon:0",
    "CPU    7: hi:  186, btch:  31 usd:   7",
    "CPU: 2 PID: 4282 Comm: java Not tainted 5.15.0-91-generic #101-Ubuntu",
    "Call Trace:",
    " dump_stack+0x4a/0x63",
    " out_of_memory+0x106/0x2e0",
    " oom_kill_process.cold+0xb/0x10",
    "Task in /docker/abc killed as a result of limit of /docker/abc",
    "memory: usage 1024kB, limit 1024kB, failcnt 5",
    "oom_reaper: reaped process 1234 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    EARLYOOM_SEND, EARLYOOM_CMDLINE,
    "earlyoom[12]: low memory! at or below SIGTERM limits: mem 10.00%, swap 10.00%",
    "earlyoom[12]: Killing process 1234 java",
    NOHANG_STATUS, "nohang[3]:   PID: 1234, name: java, state: R, EUID: 1000", NOHANG_SEND,
    "systemd-oomd[5]: Killed /user.slice/x.scope due to memory pressure for /user.slice being 80.00% > 50.00% "
    "for > 20s with reclaim activity",
    "x.scope: systemd-oomd killed 3 process(es) in this unit.",
    "a [b] c", "", "nohang is quiet", "x kill process 5", "the sky is blue", "  cmdline:   tail /dev/zero",
    "Call Trace: dump_stack+0x1/0x2[ 1234.567890] Out of memory: Killed process 5 (x) total-vm:1kB, anon-rss:1kB, "
    "file-rss:1kB",
    "Mem-Info:#012active_anon:1 inactive_anon:2", "Node 0 DMA free:15908kB[ 1234.567890] Node 0 Normal free:1kB",
     "Out of memory: Killed process 5 (x#011y) total-vm:1kB, anon-rss:1kB",
]
# Wrappers the lane remembers, and others: a line may keep the wrapper of the one before or not.
LANE_PREFIXES = [
    "Jun  3 10:00:00 host kernel: [ 1234.567890] ", "Jun  3 10:00:01 host kernel: [ 1234.600000] ",
    "Jun  3 10:00:00 host kernel: ", "Jun  3 10:00:00 host ", "Jun  3 10:00:00 other-host kernel: ",
    "2024-06-03T10:00:00.123456+02:00 host kernel: ", "[ 1234.567890] ", "[Mon Jun  3 10:00:00 2024] ",
    "Sun Jun 29 15:57:11 2025 kern.warn kernel: ", "", "  ", "kernel: ", "    12\t", "/var/log/kern.log:12:", "> ",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(LANE_PREFIXES), st.sampled_from(MESSAGES)),
                min_size=1, max_size=30), st.sampled_from([None, 2024]), st.booleans())
@example([(1, "Jun  3 10:00:00 host kernel: ", HEADER), (0, "", SUMMARY), (0, "", KILL), (0, "", HEADER)], 2024, True)
@example([(1, "Jun  3 10:00:00 host ", "Call Trace:"), (0, "", EARLYOOM_SEND), (0, "", "the sky is blue"),
          (0, "", EARLYOOM_CMDLINE)], 2024, True)  # earlyoom's kill awaits its command line over a quiet line
@example([(1, "Jun  3 10:00:00 host ", "Call Trace:"), (0, "", NOHANG_STATUS), (0, "", "  cmdline:   tail /dev/zero"),
          (0, "", NOHANG_SEND)], 2024, True)  # nohang's description holds a quiet line
def test_lines_drawn_at_random_read_the_same_with_and_without_the_lane(lines, year, lenient) -> None:
    """A line keeps the wrapper of the line before (switch 0, as a log does) or takes another."""
    out, prefix = [], LANE_PREFIXES[0]
    for switch, other, message in lines:
        prefix = other if switch == 1 else prefix
        out.append(prefix + message)
    _same_both_ways("\n".join(out) + "\n", year, lenient=lenient)


PREFIX = LANE_PREFIXES[0]
# After a line in PREFIX's wrapper: the next in the same, in none (the rest of a line a wrap
# cut, or a paste's next line), or in another wrapper.
NEXT = [PREFIX, "", "[ 1234.567890] "]


OPENINGS = [("Call Trace:",), (HEADER, "Mem-Info:")]


@pytest.mark.parametrize("opening", OPENINGS, ids=["no report", "memory state"])
@pytest.mark.parametrize("after", NEXT, ids=["same", "none", "other"])
def test_every_message_then_every_message_reads_the_same_with_and_without_the_lane(opening, after: str) -> None:
    """Each message in the lane (after lines that taught it the wrapper: no report open, or a
    report's memory state), then each message after `after`, then a kill line and a header to
    end what may be open.

    Half the pairs in each of the six ways, by the parity of the pair's indexes and the way's:
    every message is read first and second in each way, and each pair after both openings and
    after one or two of the three kinds of `after` (each pair in three of the six ways)."""
    way = OPENINGS.index(opening) + NEXT.index(after)
    for i, first in enumerate(MESSAGES):
        for j, second in enumerate(MESSAGES):
            if (i + j + way) % 2:
                continue
            lines = [PREFIX + line for line in opening]
            lines += [PREFIX + first, after + second, PREFIX + KILL, PREFIX + HEADER]
            _same_both_ways("\n".join(lines) + "\n", 2024)


TABLE_HEADER = "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"
ROW = "[   1234]  1000  1234   100000    20000   200000        0             0 "
# Rows whose names hold what the lane asks of a row's name alone, and lines that end a table.
ROWS = [ROW + name for name in (
    "java", "rapid", "Killed process 5 (x)", "Out of memory: Kill process 5 (x) score 1 or sacrifice child",
    "x[ 1234.567890] Node 0 DMA free:1kB", "a#012Out of memory: Killed process 5 (x)", "a [b] c", "killall process 5",
    "x invoked oom-killer: gfp_mask=0x0, order=0", "trailing   ", "\u00e9")] + [
    "[   1234]  1000  1234   100000    20000 java", ROW, "Call Trace:", "", EARLYOOM_SEND, NOHANG_STATUS,
    "[ 1] Out of memory: Killed process 5 (x)"]


@pytest.mark.parametrize("after", NEXT, ids=["same", "none", "other"])
def test_rows_then_rows_read_the_same_with_and_without_the_lane(after: str) -> None:
    """Two lines in a table being read, its kill, then a second report with its table: the
    rows each kill keeps show what was read, and what the first lines left (a wrapper the
    locator learned, a user-space killer's state) shows in the second's."""
    for first in ROWS:
        for second in ROWS:
            lines = [PREFIX + line for line in (HEADER, TABLE_HEADER, first)] + [after + second, PREFIX + KILL]
            lines += [PREFIX + line for line in (HEADER, TABLE_HEADER, ROW + "worker", KILL, HEADER)]
            _same_both_ways("\n".join(lines) + "\n", 2024)


def test_the_lane_reads_a_syslog_report_line_by_line() -> None:
    """Not a vacuous comparison: the lane, not the general path, reads the common lines."""
    parser = OomParser(year=2024, lenient=True)
    lane = parser._lane
    assert lane is not None
    prefix = "Jun  3 10:00:00 host kernel: [ 1234.567890] "
    report_lines = [HEADER, "CPU: 2 PID: 4282 Comm: java Not tainted 5.15.0-91-generic #101-Ubuntu", "Call Trace:",
                    " dump_stack+0x4a/0x63", " out_of_memory+0x106/0x2e0", "Mem-Info:",
                    "active_anon:1790129 inactive_anon:177312 isolated_anon:0",
                    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
                    "[   1234]  1000  1234   100000    20000   200000        0             0 java",
                    SUMMARY, KILL, HEADER]
    parser.feed(KernelLine(text=prefix + "Call Trace:", source="t", wrapped=True))  # learns the wrapper
    read = [lane.read(KernelLine(text=prefix + line, source="t", wrapped=True), prefix + line) for line in report_lines]
    assert all(kills is not None for kills in read)
    assert [len(kills or []) for kills in read] == [0] * 11 + [1]  # the kill line was held, then taken
    (kill,) = read[-1] or []
    assert (kill.pid, kill.process, kill.constraint, kill.host, kill.invoker_pid) == (
        1234, "java", "CONSTRAINT_NONE", "host", 4282)
    assert kill.extra["evidence"]["format"] == "syslog" and kill.task_table[0].pid == 1234
    assert kill.memory_info == ("Mem-Info:", "active_anon:1790129 inactive_anon:177312 isolated_anon:0")


# ------------------------------------------------------------ the shortcuts' own checks

DATE_MESSAGES = ["Out of memory: Killed process 5 (x)", "x", "", " kernel: [ 1.5] y", "host kernel: z"]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PREFIXES), st.sampled_from(DATE_MESSAGES), st.sampled_from([None, 2024]))
def test_a_shape_that_names_a_log_format_names_the_one_line_format_finds(prefix, message, year) -> None:
    raw = prefix + message
    text = raw.lstrip()
    for shape in _SHAPES.get(_first_class(text) or "", ()):
        if shape.form is not None and shape.match(text) is not None:
            assert wrappers.line_format(raw) == (shape.form, ()), (shape.name, raw)


# Hosts that are no host names, and wrappers that run past where line_host() looks.
HOST_PREFIXES = ["Jun  3 10:00:00 h/st kernel: ", "Jun  3 10:00:00 -h kernel: ",
                 "* 2024-06-03 10:00:00 CEST h kernel: ", "Jun  3 10:00:00 " + "h" * 150 + " kernel: ",
                 "Jun  3 10:00:00 h" + " " * 150 + "kernel: ", "Jun  3 10:00:00 h:1 kernel: ",
                 "Mon 2024-06-03 10:00:00 CEST " + "x" * 140 + " kernel: "]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["", " ", "\t "]), st.sampled_from(PREFIXES + HOST_PREFIXES), st.sampled_from(DATE_MESSAGES),
       st.sampled_from([None, 2024]))
@example("", "Jun  3 10:00:00 " + "h" * 150 + " kernel: ", "x", None)
def test_a_host_a_shape_reads_is_the_one_line_host_reads(lead, prefix, message, year) -> None:
    raw = lead + prefix + message
    text = raw.lstrip()
    for shape in _SHAPES.get(_first_class(text) or "", ()):
        match = shape.match(text)
        host = shape.host(match, text, len(lead)) if match is not None else None
        if host is not None:
            assert wrappers.line_host(raw) == host, (shape.name, raw)


def test_every_dated_shape_names_its_format() -> None:
    named = {shape.name: shape.form for shapes in _SHAPES.values() for shape in shapes}
    assert named == {
        "journalctl short-full": "journalctl short-full", "logread": "logread (OpenWrt)", "syslog": "syslog",
        "no date": None, "ISO 8601": "ISO 8601 syslog or journalctl", "short-unix": "journalctl short-unix",
        "syslog, numeric month": "syslog", "dmesg -T": "dmesg -T", "dmesg": None}


TAG_FRAGMENTS = ["kernel", "kernel:", ": ", ":", " ", "  ", "\t", "\n", "[", "]", "[12]", "[1a]", "[ 1234.567890]",
                 "[1.5]", "host", "earlyoom", "é", "x" * 40, "_", ".", "(", ")", "-", "/", "@", ">", "|", "`", "=",
                 "10:00:00", "٣", "²"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(TAG_FRAGMENTS), max_size=12).map("".join))
@example("Jun  3 10:00:00 h kernel: [ 1234.567890] ")
@example("a" * 64 + ":")
@example(" " + "a" * 64 + ":")
@example(" " + "a" * 65 + ":")
@example("x earlyoom[12]: ")
@example("x earlyoom[1٣]: ")
@example("x earlyoom[²]: ")
def test_the_tag_found_from_the_end_is_the_one_the_pattern_finds(window: str) -> None:
    found = wrappers._TAG_BEFORE.search(window)
    assert wrappers.tag_before(window) == (found.group(1) if found else None), repr(window)


def _figures_by_the_loop(text: str) -> dict:
    """report._figures() without its one-match reading of the usual layout."""
    figures: dict = {}
    for key, value, unit in report._FIGURE.findall(text):
        field = report._FIGURE_FIELDS.get(key)
        if field is None or (field.endswith("_kb") and not unit):
            continue
        low, high = report._FIGURE_RANGE[field]
        number = int(value) if len(value) - value.startswith("-") <= 20 else None
        figures[field] = number if number is not None and low <= number <= high else None
    return figures


NUMBERS = st.sampled_from(["0", "7", "007", "-1", "1000", "-1000", "1001", "-1001", "999999999999999999",
                           "9223372036854775807", "9223372036854775808", "4294967294", "4294967295", "1" * 25])
FIGURE_TAIL = st.tuples(st.sampled_from([" ", "  ", "\t", " ,"]), NUMBERS, NUMBERS, NUMBERS, NUMBERS, NUMBERS,
                        NUMBERS, NUMBERS, st.sampled_from(["full", "no UID", "no shmem", "cut", "comma"]))


@settings(max_examples=500, deadline=None)
@given(FIGURE_TAIL)
@example((" ", "8806332", "6848016", "0", "0", "1000", "14360", "0", "full"))
def test_the_usual_figures_read_in_one_match_read_as_the_loop_reads_them(tail) -> None:
    gap, vm, anon, file, shmem, uid, pgtables, adj, layout = tail
    text = f"{gap}total-vm:{vm}kB, anon-rss:{anon}kB, file-rss:{file}kB"
    if layout != "no shmem":
        text += f", shmem-rss:{shmem}kB"
    if layout in ("full", "no shmem", "comma"):
        text += f", UID:{uid} pgtables:{pgtables}kB oom_score_adj:{adj}"
    if layout == "cut":
        text += ", UID:"
    if layout == "comma":
        text += ","
    assert report._figures(text) == _figures_by_the_loop(text), text


def test_every_capture_line_that_the_usual_figures_read_reads_as_the_loop_reads_it() -> None:
    seen = 0
    for path in CAPTURES:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            killed = re.search(r"Killed process .*", line)
            match = report.KILLED.match(killed.group()) if killed else None
            if match is not None and match.group(6):
                seen += report._KERNEL_FIGURES.match(match.group(6)) is not None
                assert report._figures(match.group(6)) == _figures_by_the_loop(match.group(6)), line
    assert seen > 20



# ------------------------------------------------------------ the express (parse/express.py)

# Wrappers the express reads in one match (its ASCII syslog, dmesg's uptime), one it reads with
# the shape's own pattern (ISO 8601), and near misses of each that the shape reads otherwise.
EXPRESS_PREFIXES = [
    "Jun  3 10:00:00 web-01 kernel: [  123.456789] ", "Jun 13 10:00:00 web-01 kernel: ", "[  123.456789] ",
    "2024-06-03T10:00:00.123456+02:00 web-01 kernel: ", "Jun  3 10:00:00 web-01 kernel: [  123.456789]\t",
    "Jun  3 10:00:00 web-01 kernel:\t[  123.456789] ", "Jun  3 10:00:00 web-01  kernel: [  123.456789] ",
    "Jun  3 10:00:00 h\u00e9 kernel: [  123.456789] ", "Jun  3 10:00:00 web-01 kernel: [  12\u0663.456789] ",
    "Jun  3 10:00:00 web-01 kernel: [  123.456789] x kernel: ", "Jun  3 10:00:00 web-01 kernel: [ 1.5] [ 2.5] ",
    "Jun  3 10:00:00 web-01 kernel:  ", "[  123.456789]  ", "[  123.456789]",
    "Jun  3 10:00:00 " + "h" * 150 + " kernel: ", "Jun  3 10:00:00 web-01 kernel: [" + " " * 80 + "123.456789] ",
]
TABLE_ROWS = [ROW + "java", ROW + "worker-1",
              "[   1235]  1000  1235   100000    30000   200000        0             0 w x  "]
REPORT = [HEADER, "CPU: 2 PID: 4282 Comm: java Not tainted 5.15.0-91-generic #101-Ubuntu", "Call Trace:",
          " dump_stack+0x4a/0x63", "Mem-Info:", "active_anon:1790129 inactive_anon:177312 isolated_anon:0",
          TABLE_HEADER, *TABLE_ROWS, SUMMARY, KILL,
          "oom_reaper: reaped process 1234 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"]


def _mutations(line: str) -> list[str]:
    """A line of the express's kinds with one thing changed that its strict forms refuse or
    read otherwise: a character dropped or doubled, a blank added or a tab, a field cut, a
    Unicode digit, a bracket, an rsyslog escape, another wrapper's words in it."""
    out = [line[:cut] for cut in range(len(line) - 1, 0, -max(1, len(line) // 9))]
    for at in range(0, len(line), max(1, len(line) // 7)):
        out += [line[:at] + line[at + 1:], line[:at] + line[at] + line[at:], line[:at] + " " + line[at:],
                line[:at] + "\t" + line[at + 1:]]
    out += [line + " ", " " + line, line.replace("0", "\u0663", 1), line.replace(",", ", ", 1),
            line.replace("(", "[", 1), line + "#012x", line.replace(" ", " kernel: ", 1), line.replace("=", "==", 1),
            line.replace("java", "Killer"), line.replace("java", "oom-kill"), line.replace("java", "a process b"),
            line.replace("java", "java) total-vm:1kB, anon-rss:1kB, file-rss:1kB (x"), line.upper(), line.lower()]
    return out


@pytest.mark.parametrize("prefix", EXPRESS_PREFIXES)
def test_every_mutation_of_the_express_kinds_reads_the_same_with_and_without_the_lanes(prefix: str) -> None:
    """Each line of a report (header, summary, kill line, rows, quiet lines) changed one way or
    another, in a report read whole before and after it, in a wrapper the express reads or one
    that looks like it.

    A line's mutated reports are read in one log, each between two whole reports (a report, a
    mutated one, a report, the next mutated one, ...), so the ways are compared after each, at
    two reports read per mutation instead of three. A wrapper reads every other mutation of
    each line, alternating from line to line and from wrapper to wrapper: each wrapper still
    reads every line changed in every kind of way, and each change of each line is read in
    eight of the sixteen wrappers (two of the four the express reads in one match)."""
    wrapper = EXPRESS_PREFIXES.index(prefix)
    for at, line in enumerate(REPORT):
        mutated = [text for kind, text in enumerate(_mutations(line)) if (kind + at + wrapper) % 2 == 0]
        _same_in_one_log(prefix, [[*REPORT[:at], text, *REPORT[at + 1:], *REPORT] for text in mutated], REPORT)


def _same_in_one_log(prefix: str, cases: list[list[str]], before: list[str]) -> None:
    """`before`, then each case in turn, in `prefix`'s wrapper, read the same both ways; on a
    difference, the first case that differs read on its own after `before` says which."""
    try:
        _same_both_ways("\n".join(prefix + text for text in [*before, *sum(cases, [])]) + "\n", 2024)
    except AssertionError:
        for case in cases:
            _same_both_ways("\n".join(prefix + text for text in [*before, *case]) + "\n", 2024)
        raise


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(EXPRESS_PREFIXES[:4] + LANE_PREFIXES[:3]),
                          st.sampled_from(REPORT + MESSAGES + TABLE_ROWS), st.booleans()), min_size=1, max_size=40))
def test_reports_and_lines_drawn_at_random_read_the_same_with_and_without_the_lanes(lines) -> None:
    """Report lines, the lane's messages and rows, in runs sharing a wrapper or changing it."""
    out, prefix = [], EXPRESS_PREFIXES[0]
    for other, message, switch in lines:
        prefix = other if switch else prefix
        out.append(prefix + message)
    _same_both_ways("\n".join(out) + "\n", 2024)


def test_the_express_reads_a_syslog_report_line_by_line() -> None:
    """Not a vacuous comparison: the express, not the lane, reads the common lines, each in one
    match (header, rows, quiet lines, summary, the kill line held then taken by the next header)."""
    parser = OomParser(year=2024, lenient=True)
    lane = parser._lane
    assert lane is not None
    express = lane.express
    for prefix in EXPRESS_PREFIXES[:4]:
        parser.feed(KernelLine(text=prefix + "Call Trace:", source="t", wrapped=True))  # learns the wrapper
        lines = [HEADER, "Call Trace:", " dump_stack+0x4a/0x63", "active_anon:1790129 inactive_anon:177312",
                 TABLE_HEADER, *TABLE_ROWS, SUMMARY, KILL, HEADER]
        read = {}
        for line in lines:
            raw = prefix + line
            if line == TABLE_HEADER:  # the table's header is the lane's (an anchor holds it)
                parser.feed(KernelLine(text=raw, source="t", wrapped=True))
                continue
            read[line] = express.read(KernelLine(text=raw, source="t", wrapped=True), raw)
        assert all(kills is not None for kills in read.values()), (prefix, read)
        (kill,) = read[HEADER] or []
        assert (kill.pid, kill.process, kill.constraint, kill.task_memcg, kill.uid, kill.total_vm_kb) == (
            1234, "java", "CONSTRAINT_NONE", "/system.slice/app.service", 1000, 8806332)
        assert [row.name for row in kill.task_table] == ["w x", "java", "worker-1"]
        assert kill.memory_info == ()  # (no Mem-Info: line opened it)


def _kill(name: str = "java", adj: str = "0") -> str:
    return KILL.replace("(java)", f"({name})").replace("oom_score_adj:0", f"oom_score_adj:{adj}")


# Sequences where one step of the express would go wrong if it were left out.
EDGES = {
    "a row after the summary (it ends the table)": [HEADER, TABLE_HEADER, ROW + "a", SUMMARY, ROW + "late", KILL],
    "a row after a header (a new report)": [HEADER, TABLE_HEADER, ROW + "a", HEADER, ROW + "late", SUMMARY, KILL],
    "a row after a held kill": [HEADER, TABLE_HEADER, ROW + "a", KILL, ROW + "late", HEADER],
    "a row with no name": [HEADER, TABLE_HEADER, ROW + "a", ROW, ROW + "  ", ROW + "\t", SUMMARY, KILL],
    "a second kill in a name": [HEADER, SUMMARY, _kill("x Killed process 6 (y"), HEADER,
                                _kill("x) Killed process 6 (y"), HEADER,
                                _kill("x) Out of memory: Killed process 7 (y) total-vm:1kB"), HEADER],
    "a record run into a name": [HEADER, SUMMARY, _kill("x) Jun  3 10:00:00 h kernel: y (z"), HEADER],
    "a header in a name": [HEADER, SUMMARY, _kill("j invoked oom-killer: gfp_mask=0x0, order=0"), HEADER],
    "a wrapper in a name": [HEADER, SUMMARY, _kill("x Jun  3 10:00:00 h kernel: y"), HEADER],
    "an adjustment out of range": [HEADER, SUMMARY, _kill(adj="-1001"), HEADER, SUMMARY, _kill(adj="1001"), HEADER,
                                   _kill(adj="1000"), HEADER, _kill(adj="-1000")],
    "the same kill twice": [HEADER, SUMMARY, KILL, KILL, HEADER, KILL, KILL, KILL],
    "the same kill again in a report's table": [HEADER, KILL, HEADER, TABLE_HEADER, ROW + "a", KILL, ROW + "late",
                                                SUMMARY, _kill("other"), HEADER],
    "a kill, then a quiet line": [HEADER, SUMMARY, KILL, "Call Trace:", HEADER, SUMMARY, KILL],
}


@pytest.mark.parametrize("prefix", EXPRESS_PREFIXES[:5] + EXPRESS_PREFIXES[-2:])
@pytest.mark.parametrize("edge", EDGES, ids=list(EDGES))
def test_the_express_edges_read_the_same_with_and_without_the_lanes(edge: str, prefix: str) -> None:
    _same_both_ways("\n".join(prefix + line for line in EDGES[edge]) + "\n", 2024)


@pytest.fixture
def bound(monkeypatch: pytest.MonkeyPatch) -> int:
    """REPORT_LINES made 200 in every module of the parser that holds it: the reading at and
    past the bound is the same code whatever its value, and twelve reports of 20,000 lines of
    memory state, read both ways, were most of this file's time (tests/test_parse.py reads a
    report past the real bound)."""
    held = [module for name, module in list(sys.modules.items())
            if name.startswith("watchdog_oom.parse") and getattr(module, "REPORT_LINES", None) == REPORT_LINES]
    assert {"watchdog_oom.parse.report", "watchdog_oom.parse.express"} <= {module.__name__ for module in held}
    for module in held:
        monkeypatch.setattr(module, "REPORT_LINES", 200)
    return 200


@pytest.mark.parametrize("last", [HEADER, SUMMARY, KILL, "active_anon:1"])
@pytest.mark.parametrize("short", [2, 1, 0], ids=["bound-2", "bound-1", "bound"])
def test_a_report_past_its_bound_reads_the_same_with_and_without_the_lanes(short: int, last: str, bound: int) -> None:
    """A report of REPORT_LINES lines or about (memory state), then a header, summary, kill line
    or quiet line where it runs past its bound (the report is abandoned), then a report."""
    lines = bound - short
    report = [HEADER, TABLE_HEADER, ROW + "a", SUMMARY, *["active_anon:1"] * lines, last, KILL, HEADER, SUMMARY, KILL]
    _same_both_ways("\n".join(EXPRESS_PREFIXES[0] + line for line in report) + "\n", 2024)


# Syslog dates the express reads from the time of their minute (express._Stamper._syslog_wall): seconds
# within one minute and past it, minutes, hours and days that roll over, leap days, seconds
# that no clock shows (60, 99) and dates no calendar has; a minute read again after another.
DATES = ["Jun  3 10:00:00", "Jun  3 10:00:01", "Jun  3 10:00:59", "Jun  3 10:00:60", "Jun  3 10:00:99",
         "Jun  3 10:01:00", "Jun  3 11:01:07", "Jun 13 10:01:07", "Jun  3 10:00:30", "Dec 31 23:59:59",
         "Jan  1 00:00:00", "Feb 29 12:00:01", "Feb 29 12:00:02", "Feb 28 12:00:03", "Apr 31 08:00:00",
         "Apr 30 24:00:00", "Apr 30 23:60:00", "Mai  3 10:00:05", "Xyz  3 10:00:06", "Jun  3 10:00:08"]


@pytest.mark.parametrize("year", [2023, 2024, None])
def test_syslog_dates_read_from_their_minute_are_the_times_of_the_general_path(year: int | None) -> None:
    lines = []
    for n, date in enumerate(DATES):
        prefix = f"{date} web-01 kernel: [{n + 100:>5}.000001] "
        lines += [prefix + HEADER, prefix + SUMMARY, prefix + _kill(f"p{n}")]
    text = "\n".join(lines) + "\n"
    _same_both_ways(text, year)
    parser = OomParser(year=year, lenient=True)
    kills = [kill for line in text.splitlines()
             for kill in parser.feed(KernelLine(text=line, source="t", wrapped=True))]
    times = [kill.time for kill in kills + parser.flush()]
    assert len(times) == len(DATES)
    if year == 2024:  # not vacuous: times read, and none where the date is none
        assert [time.isoformat() if time else None for time in times[:6]] == [
            "2024-06-03T10:00:00", "2024-06-03T10:00:01", "2024-06-03T10:00:59", None, None, "2024-06-03T10:01:00"]
        assert times[11] is not None and times[14] is None and times[16] is None

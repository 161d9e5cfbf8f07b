"""The parser's fast paths give what its full detection gives, line for line and kill for kill.

OomParser(fast=False) finds every line's wrapper anew (wrappers.unwrap); the default
remembers the shape of the line before and tries it first (parse/shapes.py). Both read every
real capture in tests/data, raw and in every wrapper of tests/wrapping.py, and files whose
lines change format from one line to the next (hostile to a remembered shape): the kills
(every field, evidence included) and the unread lines must be the same, and so must each
line's unwrapping.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from wrapping import WRAPPERS

from watchdog_oom.model import KernelLine
from watchdog_oom.parse import OomParser, Unread, anchors, wrappers
from watchdog_oom.parse.shapes import LineUnwrapper

DATA = Path(__file__).parent / "data"
YEARS = {
    str(listing.parent / entry["file"]): entry.get("year")
    for listing in sorted(DATA.rglob("expected.json"))
    for entry in json.loads(listing.read_text(encoding="utf-8"))
}
CAPTURES = sorted({*DATA.rglob("*.log"), *DATA.rglob("*.kmsg")})
# Wrappers that keep one input line on one output line: mixed line by line below.
PER_LINE = ("grep-Hn", "cat-n", "nl", "logread", "rfc5424", "dmesg-T-fr", "dmesg-T-ja", "journal-json",
            "markdown-bullets", "color", "crlf", "html-entities", "mail-quoted-twice")


def _read(text: str, year: int | None, *, fast: bool, lenient: bool = True) -> tuple[list, Unread]:
    """The kills and unread lines of `text` fed line by line (as parse_text feeds it)."""
    unread = Unread(keep=1000)
    parser = OomParser(year=year, lenient=lenient, unread=unread, fast=fast)
    kills = []
    for number, raw in enumerate(text.splitlines(), 1):
        kills += parser.feed(KernelLine(text=raw, source="import", wrapped=True), line_no=number)
    return kills + parser.flush(), unread


def _same_both_ways(text: str, year: int | None, lenient: bool = True) -> None:
    fast, fast_unread = _read(text, year, fast=True, lenient=lenient)
    full, full_unread = _read(text, year, fast=False, lenient=lenient)
    assert [repr(kill) for kill in fast] == [repr(kill) for kill in full]  # repr: dict order and types too
    assert fast_unread == full_unread
    unwrapper = LineUnwrapper(year=year)
    for raw in text.splitlines():
        assert unwrapper.unwrap(raw) == wrappers.unwrap(raw, year=year), raw


def _mixed(lines: list[str], seed: int) -> str:
    """Each line in a wrapper drawn at random (or none): the format changes line to line."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        name = rng.choice((*PER_LINE, None, None, None))
        out.append(line if name is None else WRAPPERS[name]([line]).rstrip("\r\n"))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_a_capture_reads_the_same_with_and_without_the_fast_paths(path: Path) -> None:
    text, year = path.read_text(encoding="utf-8", errors="replace"), YEARS.get(str(path))
    lines = text.splitlines()
    _same_both_ways(text, year)
    _same_both_ways(text, year, lenient=False)  # the live sources' strict reading
    for wrap in WRAPPERS.values():
        _same_both_ways(wrap(lines), year)
    for seed in range(3):
        _same_both_ways(_mixed(lines, seed), year)


# Prefixes close to each wrapper unwrap() knows, and near misses of them: a remembered shape
# must never read a line another way than unwrap() does.
PREFIXES = [
    "Jun  3 10:00:00 host kernel: ", "Jun  3 10:00:00 host kernel: [ 1234.567890] ", "Jun 13 10:00:00.123456 h k: ",
    "juin  3 10:00:00 hôte kernel:", "6月 3 10:00:00 host kernel: ", "мая 26 10:00:00 host earlyoom[12]: ",
    "Jun  3 10:00:00: ", "Jun  3 10:00:00 kernel: ", "Jun\t3 10:00:00 host kernel: ", "Jun 2024-06-03 ",
    "Mon 2024-06-03 10:00:00 CEST host kernel: ", "Sun Jun 29 15:57:11 2025 kern.warn kernel: ",
    "Sun Jun 29 15:57:11 2025 ", "2024-06-03T10:00:00.123456+02:00 host kernel: ", "2024-06-03 10:00:00 h kernel: ",
    "2024-06-03T10:00:00+99:00 host kernel: ", "2024-02-30T10:00:00Z host kernel: ", "1717408800.123456 host kernel: ",
    "12,345,678,-;", "6,1,2;", "<4>", "<3>1 2025-06-29T15:57:11.000000+00:00 host kernel - - - ",
    "[ 1234.567890] ", "[1234.5] ", "[Mon Jun  3 10:00:00 2024] ", "[dim. juin 29 15:57:11 2025] ",
    "[Oct28 16:58] ", "[  +0.000082] ", "[ 1234.567890] host kernel: ", "[x] ", "kernel: ", "host kernel: ",
    "> ", "`", "  ", "\u00b2a Jun  3 10:00:00 2025 kern.warn kernel: ", "\u0663 Jun 3 ", "x" * 90 + " kernel: ",
    "/var/log/kern.log:12:", "    12\t", "- ", "", "Jun  3 10:00:00 host kernel: [99999999999999999999.1] ",
]
MESSAGES = [
    "Out of memory: Killed process 1234 (java) total-vm:4kB, anon-rss:0kB, file-rss:0kB",
    "java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    "[   1234]  1000  1234   100000    20000   200000        0             0 java",
    "earlyoom[12]: sending SIGTERM to process 1234 uid 1000 \"java\": badness 900, VmRSS 1000 MiB",
    "host kernel: Mem-Info:", "", "kernel: [ 12.5] x",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PREFIXES), st.sampled_from(MESSAGES), st.sampled_from(["", "\r\n", " "])),
                min_size=1, max_size=12), st.sampled_from([None, 2024]))
def test_lines_whose_wrapper_changes_each_line_unwrap_as_unwrap_does(lines, year) -> None:
    unwrapper = LineUnwrapper(year=year)
    for prefix, message, end in lines:
        raw = prefix + message + end
        assert unwrapper.unwrap(raw) == wrappers.unwrap(raw, year=year), raw


def test_an_iso_date_with_an_offset_no_clock_has_is_read_with_its_time_unknown() -> None:
    line = "2024-06-03T10:00:00+99:00 host kernel: Out of memory: Killed process 5 (x) total-vm:1kB, anon-rss:1kB"
    (kill,), _ = _read(line, None, fast=True)
    assert (kill.pid, kill.time, kill.host) == (5, None, "host")


# Patterns rewritten for speed, with the wording they had: each pair must find the same match
# (a possessive run where no character given back could help; a lookahead the match implies).
REWRITTEN = [
    (r"\S+\s+kernel:\s?", wrappers._HOST_KERNEL, "match"),
    (r"\S+\s+(?=[\w.@/-]+(?:\[\d+\])?:(?:\s|$))", wrappers._HOST_TAG, "match"),
    (r"(^|\s)([\w.@/()-]{1,64}?)(?:\[\d+\])?:\s+$", wrappers._TAG_AT_END, "search"),
    (r"(?:^|[\s>:|`])([\w.@/()-]{1,64}?)(?:\[\d+\])?:\s*(?:\[\s*\d+\.\d+\]\s*)?$", wrappers._TAG_BEFORE, "search"),
    (r" invoked oom-killer: |[^\s:]+: systemd-oomd killed \d|[^\s:]+: Failed with result 'oom-kill'|"
     + "|".join(anchors._ANCHOR_WORDS), anchors.ANCHOR, "search from 0"),  # as rejoin.py searches it
    (r".{1,16}? invoked oom-killer: |\S+: systemd-oomd killed \d|\S+: Failed with result 'oom-kill'|"
     + "|".join(anchors._ANCHOR_WORDS), anchors.ANCHOR_START, "match"),
]
FRAGMENTS = ["host", "kernel:", "kernel: ", " ", "  ", "\t", ":", ": ", "[12]", "[ 12.5] ", "x.service",
             "x.service: ", "a:b: ", "systemd-oomd killed 3", "Failed with result 'oom-kill'", "earlyoom[7]: ",
             "a" * 70, "oom-kill:constraint=X,task=y", "java invoked oom-killer: ",
             "Killed process 5 (x)", "Kill process 5 (x) score 1 or sacrifice child", "sending SIGTERM to process 5",
             "Killing process '", "killing process 5 \"x\"", "Marked /a.slice for killing due to", "Killed …/b due to",
             "Send SIGKILL to the victim", "Sending SIGTERM to the victim", "oomd killed", "-", ">", "|", "é", "6月"]
TEXTS = st.lists(st.sampled_from(FRAGMENTS), max_size=10).map("".join)


@settings(max_examples=400, deadline=None)
@given(TEXTS, st.integers(0, 5))
@example("x.service: systemd-oomd killed 3 process(es)", 0)
@example("a:b.service: Failed with result 'oom-kill'.", 0)
@example("Jun  3 10:00:00 " + "a" * 300 + " kernel: ", 16)
@example("a b:c x.service: systemd-oomd killed 3", 0)
@example("a.b:" + "x" * 3000 + ": Failed with result 'oom-kill'", 0)
def test_a_pattern_rewritten_for_speed_finds_what_it_found(text: str, pos: int) -> None:
    for old, new, method in REWRITTEN:
        # ANCHOR's lookbehind sees the text before `pos`: it is searched from a message's start alone
        start = 0 if method == "search from 0" else pos
        method = method.removesuffix(" from 0")
        before, after = getattr(re.compile(old), method)(text, start), getattr(new, method)(text, start)
        assert (before and (before.span(), before.groups())) == (after and (after.span(), after.groups())), old


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_kill_words_are_looked_for_only_where_their_needles_are_and_found_there(text: str) -> None:
    assert anchors.kill_words(text) == (anchors.KILL_WORDS.search(text) is not None)


# The pieces of a date in the order they stand, each with near misses: a shape remembered
# from one must never read another as unwrap() would not.
DATE_PARTS = st.tuples(
    st.sampled_from(["Jun", "juin.", "мая", "Mon", "Sun", "x"]), st.sampled_from([" ", "  ", "\t", " \t"]),
    st.sampled_from(["3", "13", "123", "2024-06-03", "Jun", "6月", "x6"]), st.sampled_from([" ", "  ", "\t", ""]),
    st.sampled_from(["10:00:00", "10:00:00.5", "3 10:00:00", "1"]),
    st.sampled_from(["", " 2025", " CEST", ":", ".123"]), st.sampled_from([" host kernel: ", " ", ""]))


@settings(max_examples=300, deadline=None)
@given(st.lists(DATE_PARTS, min_size=1, max_size=6))
def test_near_misses_of_each_date_unwrap_as_unwrap_does(dates) -> None:
    unwrapper = LineUnwrapper(year=2024)
    for parts in dates:
        raw = "".join(parts) + "Out of memory: Killed process 5 (x)"
        assert unwrapper.unwrap(raw) == wrappers.unwrap(raw, year=2024), raw


def test_each_shapes_tagged_pattern_has_its_patterns_groups() -> None:
    # _Shape.times() reads the uptime from the last two groups of whichever of the two matched
    from watchdog_oom.parse.shapes import _SHAPES

    for shape in (shape for shapes in _SHAPES.values() for shape in shapes):
        assert shape.tagged.groups == shape.pattern.groups, shape.name


# In a fresh interpreter: the shapes whose pattern is compiled (lazy_regex: a shape compiled at
# its first use holds its compiled pattern as `_compiled`) once the parser is loaded, then once
# the daemon's (strict) parser has read an ordinary line of a syslog file; and the parser's
# patterns compiled at their first use that this line compiled (none: only an OOM report's
# lines, a killer's, pasted text or a rare shape need one).
SHAPES_COMPILED = """
import re, sys
from watchdog_oom.lazy_regex import _FirstUse
from watchdog_oom.model import KernelLine
from watchdog_oom.parse import OomParser
from watchdog_oom.parse.shapes import _SHAPES

def compiled():
    shapes = [shape for shapes in _SHAPES.values() for shape in shapes]
    return sorted(s.name for s in shapes if isinstance(s.pattern, re.Pattern) or vars(s.pattern).get("_compiled"))

def compiled_late():
    return sorted(f"{name}.{key}" for name, module in sys.modules.items() if name.startswith("watchdog_oom.parse")
                  for key, value in vars(module).items()
                  if isinstance(value, _FirstUse) and vars(value).get("_compiled"))

print(compiled())
OomParser().feed(KernelLine(text=sys.argv[1], source="file", wrapped=True))
print(compiled())
print(compiled_late())
"""


@pytest.mark.parametrize("line", ["Jun  3 10:00:00 web-01 kernel: [ 1.000000] eth0: link up",
                                  "2026-06-03T10:00:00.123456+02:00 web-01 kernel: eth0: link up"])
def test_an_ordinary_line_of_a_syslog_file_compiles_no_pattern_at_its_first_use(line: str) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", SHAPES_COMPILED, line], capture_output=True, text=True,
                         check=True, cwd=root, env={"PYTHONPATH": str(root)}).stdout.splitlines()
    assert out == ["['ISO 8601', 'syslog']"] * 2 + ["[]"]

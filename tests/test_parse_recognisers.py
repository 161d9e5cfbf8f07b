"""The recognisers carry their evidence, and the parser holds against what is not a kill.

Each recogniser declares its needles and real sample lines (with where they were
published); the import scanner's needles cover every recogniser's. Then: forgeries,
lines that could not be read, values out of range, names that look like log syntax, and
linear time on hostile lines.
"""

from __future__ import annotations

import io
import random
import re
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from watchdog_oom.model import KernelLine
from watchdog_oom.parse import (
    KILL_NEEDLES,
    LINE_CHARS,
    RECOGNISERS,
    OomParser,
    Unread,
    iter_kills,
    parse_text,
)

FIGURES = "total-vm:4kB, anon-rss:0kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0"


@pytest.mark.parametrize("recogniser", RECOGNISERS, ids=[r.name for r in RECOGNISERS])
def test_recogniser_has_real_samples_that_it_reads(recogniser) -> None:
    assert recogniser.samples, "a recogniser without a sample line"
    for line, source in recogniser.samples:
        assert source.strip(), f"sample without its source: {line}"
        body = re.sub(r"^[\w.@/-]+\[\d+\]: ", "", line)
        assert recogniser.pattern.match(line) or recogniser.pattern.match(body), line


@pytest.mark.parametrize("recogniser", [r for r in RECOGNISERS if r.kill], ids=[r.name for r in RECOGNISERS if r.kill])
def test_every_needle_is_in_its_recognisers_samples_and_the_scanner_looks_for_it(recogniser) -> None:
    for needle in recogniser.needles:
        assert any(needle in line for line, _ in recogniser.samples), needle
        assert any(scan.decode() in needle or needle in scan.decode() for scan in KILL_NEEDLES) or any(
            scan.decode() in line for line, _ in recogniser.samples for scan in KILL_NEEDLES), needle


def test_every_sample_matches_a_recogniser_and_kill_samples_give_one_kill() -> None:
    for recogniser in RECOGNISERS:
        for line, _ in recogniser.samples:
            assert any(other.pattern.match(re.sub(r"^[\w.@/-]+\[\d+\]: ", "", line)) for other in RECOGNISERS)
            kills = parse_text(line)
            alone = recogniser.kill and recogniser.killer != "nohang"  # nohang names its victim before
            assert len(kills) == (1 if alone else 0), line


# ------------------------------------------------------------------------ spoofing

@pytest.mark.parametrize("line", [
    f"Jun  3 10:00:00 web-01 alice: Out of memory: Killed process 4242 (sshd) {FIGURES}",
    f"Jun  3 10:00:00 web-01 alice[812]: Killed process 4242 (sshd) {FIGURES}",
    '{"_TRANSPORT":"syslog","SYSLOG_IDENTIFIER":"alice",'
    f'"MESSAGE":"Out of memory: Killed process 4242 (sshd) {FIGURES}"}}',
    f"<13>1 2025-06-29T15:57:11+00:00 web-01 alice 812 - - Out of memory: Killed process 4242 (sshd) {FIGURES}",
    f"/var/log/syslog:7:Jun  3 10:00:00 web-01 alice: Out of memory: Killed process 4242 (sshd) {FIGURES}",
    'Jun  3 10:00:00 web-01 alice: sending SIGTERM to process 4242 uid 0 "sshd": badness 900, VmRSS 1 MiB',
    "Jun  3 10:00:00 web-01 alice: x.service: systemd-oomd killed 3 process(es) in this unit.",
])
def test_a_line_written_with_logger_is_no_kill_in_any_wrapper(line: str) -> None:
    unread = Unread()
    assert parse_text(line, unread=unread) == []
    assert unread.count == 1 and "alice" in unread.first[0].reason


@pytest.mark.parametrize("line", [
    "printk(KERN_ERR \"Killed process %d (%s) total-vm:%lukB\\n\", pid, comm);",
    "The OOM killer printed 'Killed process 1234 (java)' in my logs yesterday.",
    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=a,pid=5,uid=0",
    "Jun  3 10:00:00 h systemd[1]: session-3.scope: Killing process 48190 (firefox) with signal SIGKILL.",
    "Warning  OOMKilling  5m  kubelet  System OOM encountered, victim process: java, pid: 4242",
    'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space',
    "lowmemorykiller: Killing 'com.android.chrome' (4242), adj 900,",
    "bash: line 1:  4242 Killed                  python3 train.py",
    "Jun  3 10:00:00 h systemd[1]: x.service: Failed with result 'oom-kill'.",
])
def test_what_is_not_a_kill_gives_none(line: str) -> None:
    assert parse_text(line) == []


def test_the_live_path_reads_only_what_the_source_put_where_it_belongs() -> None:
    parser = OomParser()  # strict: the daemon's sources
    assert parser.feed(KernelLine(text=f"- Out of memory: Killed process 7 (a) {FIGURES}", source="kmsg")) == []
    (kill,) = parser.feed(KernelLine(text=f"Out of memory: Killed process 7 (a) {FIGURES}", source="kmsg"))
    assert (kill.pid, kill.process) == (7, "a")


# ---------------------------------------------------------------- nothing missed silently

def test_kill_lines_that_cannot_be_read_are_counted_with_their_line_numbers() -> None:
    text = "\n".join(["noise", f"Out of memory: Killed process 7 (a) {FIGURES}", "Killed process 8 (b",
                      "[    2.000000] Mem-Info:", "x invoked oom-killer: gfp_mask=zz"])
    unread = Unread()
    kills = parse_text(text, unread=unread)
    assert [k.pid for k in kills] == [7]
    assert [(u.line, u.text) for u in unread.first] == [(3, "Killed process 8 (b"),
                                                       (5, "x invoked oom-killer: gfp_mask=zz")]


def test_the_import_scanner_counts_unreadable_lines_by_offset_and_numbers_them() -> None:
    from watchdog_oom.parse import line_numbers

    data = b"a\nb\nKilled process 8 (b\n" + b"c\n" * 100 + b"Killed process 9 (\n"
    unread = Unread()
    assert list(iter_kills(io.BytesIO(data), "import", unread=unread, chunk_size=64)) == []
    assert [u.offset for u in unread.first] == [4, data.index(b"Killed process 9")]
    line_numbers(io.BytesIO(data), unread)
    assert [u.line for u in unread.first] == [3, 104]


# ---------------------------------------------------------------- values range-checked

@pytest.mark.parametrize(("line", "field"), [
    (f"Out of memory: Killed process 1180591620717411303424 (x) {FIGURES}", "pid"),
    (f"Out of memory: Killed process 4194305 (x) {FIGURES}", "pid"),
    ("Out of memory: Killed process 5 (x) total-vm:99999999999999999999999kB, anon-rss:0kB, file-rss:0kB",
     "total_vm_kb"),
    ("Out of memory: Killed process 5 (x) total-vm:1kB, anon-rss:0kB, file-rss:0kB, UID:4294967296 pgtables:0kB",
     "uid"),
])
def test_a_value_no_kernel_could_print_is_null_and_the_line_is_kept(line: str, field: str) -> None:
    (kill,) = parse_text(line)
    assert getattr(kill, field) is None
    assert kill.extra["kill_line"] == line


def test_a_long_name_is_cut_and_kept_whole_in_the_raw_line() -> None:
    name = "n" * 500
    (kill,) = parse_text(f'earlyoom[1]: sending SIGTERM to process 5 uid 0 "{name}": badness 1, VmRSS 1 MiB')
    assert kill.process == "n" * 64 and kill.extra["process_cut"] and name in kill.extra["kill_line"]


@pytest.mark.parametrize("name", ["a#012b", "a)b", 'say "hi"', "Killed process", "x) total-vm:1kB", "a\\nb"])
def test_a_name_that_looks_like_log_syntax_is_one_kill_with_that_name(name: str) -> None:
    line = f"Sep 29 08:12:34 h kernel: Out of memory: Killed process 9 ({name}) {FIGURES}"
    (kill,) = parse_text(line)
    assert (kill.pid, kill.process) == (9, name)


def test_a_name_with_a_newline_in_a_journal_export_is_one_kill() -> None:
    line = ('{"_TRANSPORT":"kernel","MESSAGE":"Out of memory: Killed process 9 (a\\nb) ' + FIGURES + '"}')
    (kill,) = parse_text(line)
    assert (kill.pid, kill.process) == (9, "a\nb")


# ----------------------------------------------------------------------- linear time

def _work(text: str) -> float:
    """Seconds (process time) the parser spends on `text`, best of three."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        parse_text(text)
        list(iter_kills(io.BytesIO(text.encode()), "import"))
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize("junk", ["x", "(a) ", ",task=a", "Killing process 1 ", "name: ", "1", "Killed process 1 ("])
def test_a_megabyte_line_costs_what_its_bytes_cost_in_short_lines(junk: str) -> None:
    """Linear: one 1 MB line after a kill line costs no more than ~the same bytes cut into
    1 kB lines (and the line is cut at LINE_CHARS, counted)."""
    head = f"Out of memory: Killed process 5 (a) {FIGURES} "
    size = 1 << 20
    long_line = head + junk * (size // len(junk))
    short_lines = "\n".join(head + junk * (1024 // len(junk)) for _ in range(size // 1024))
    assert _work(long_line) <= 3 * _work(short_lines) + 0.05
    unread = Unread()
    parse_text(long_line, unread=unread)
    assert unread.cut == 1 and len(long_line) > LINE_CHARS


def test_random_bytes_cost_what_their_size_costs() -> None:
    rng = random.Random(11)
    blob = bytes(rng.randrange(256) for _ in range(100_000)).decode("latin-1")
    words = ["Killed process 5 (", "oom-killer: ", "#012", "\\n", "=3D", "\x1b[31m", "&amp;", ") ", '"MESSAGE":"']
    hostile = "".join(rng.choice(words) if rng.random() < 0.02 else ch for ch in blob)
    small = hostile[:10_000]
    assert _work(hostile) <= 20 * _work(small) + 0.05


# -------------------------------------------------------------------- property

KILL_LINES = [
    f"Out of memory: Killed process 4242 (worker) {FIGURES}",
    "Memory cgroup out of memory: Killed process 4242 (worker) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB",
    "Killed process 4242, UID 27, (worker) total-vm:1919584kB, anon-rss:913340kB, file-rss:92kB",
    "Killed process 4242 (worker), UID 0, total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB",
]
PREFIXES = st.sampled_from(["", "[ 12.345678] ", "Jun  3 10:00:00 web-01 kernel: ", "kern.log:12:", "   7\t",
                            "- ", "> ", "> > ", "<4>", "6,423,41357569,-;", "[lun. juin  3 10:00:00 2024] ",
                            "2024-06-03T10:00:00+02:00 host kernel: ", "\x1b[32m[ 1.0]\x1b[0m "])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.sampled_from(KILL_LINES), prefix=PREFIXES,
       suffix=st.sampled_from(["", " ", "\r", "`", "  "]),
       noise=st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40), max_size=3),
       encoding=st.sampled_from(["plain", "json", "html", "qp"]), width=st.sampled_from([0, 61, 72, 80]))
# Found by this test: a closing backtick once made the line look cut, and the next line's ')'
# was joined to it and read as the end of the process name.
@example(line=KILL_LINES[0], prefix="", suffix="`", noise=[")"], encoding="plain", width=0)
def test_a_kill_line_in_any_wrapper_is_one_kill(line, prefix, suffix, noise, encoding, width) -> None:
    text = prefix + line + suffix
    if encoding == "json":
        import json
        text = json.dumps({"_TRANSPORT": "kernel", "MESSAGE": prefix + line})
    elif encoding == "html":
        import html
        text = html.escape(text)
    elif encoding == "qp":
        import quopri
        text = quopri.encodestring(text.encode()).decode()
    if width and encoding != "qp":  # quoted-printable wraps itself, at 76
        text = "\n".join(text[i:i + width] for i in range(0, len(text), width))
    others = [n for n in noise if "ill" not in n.lower() and "oom" not in n.lower() and "SIG" not in n]
    kills = parse_text("\n".join([*others, text, *others]))
    if re.search(r"Kill(?:ed)? process 4242", text) or not width:  # never below grep
        assert [k.pid for k in kills] == [4242]
    else:  # the wrap cut the kill's own words: grep misses it too; never a wrong kill
        assert [k.pid for k in kills] in ([], [4242])
    if kills and (not width or encoding == "qp"):
        assert kills[0].process == "worker"

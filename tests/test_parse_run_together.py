"""Kill lines run together on one line by other text are each a kill (review R22b).

A log shipper or a paste that lost the line breaks puts kernel kill lines on one line with
whatever stood between them: junk, another log's line, a timestamp, NULs, long text, or
nothing. Each kill is read with its own pid, name and figures, and nothing else, on every
path: the import's line-at-a-time parser (parse_text), its byte scanner (iter_kills), and
the daemon's strict parser (a syslog file's line, a bare kmsg message). The victim's name
is bounded by what the kernel prints (a comm of 15 bytes, at most 64 characters escaped)
and never holds another kill message's opening; names with parentheses, blanks and the
words of a kill line read as they did.
"""

from __future__ import annotations

import io
import random
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog_oom.model import KernelLine, OomKill
from watchdog_oom.parse import OomParser, Unread, iter_kills, parse_text, report
from watchdog_oom.parse.report import match_killed, match_selection

KILL = ("Out of memory: Killed process {pid} ({name}) total-vm:{vm}kB, anon-rss:{anon}kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:1000 pgtables:400kB oom_score_adj:{adj}")
# every kernel's wording of the kill line (report.KILLED's forms), a name and figures apiece
FORMS = [
    KILL,
    "Memory cgroup out of memory: Killed process {pid} ({name}) total-vm:{vm}kB, anon-rss:{anon}kB, file-rss:0kB, "
    "shmem-rss:0kB, UID:1000 pgtables:400kB oom_score_adj:{adj}",
    "Killed process {pid} ({name}) total-vm:{vm}kB, anon-rss:{anon}kB, file-rss:0kB",
    "Killed process {pid}, UID 27, ({name}) total-vm:{vm}kB, anon-rss:{anon}kB, file-rss:0kB",
    "Killed process {pid} ({name}), UID 0, total-vm:{vm}kB, anon-rss:{anon}kB, file-rss:0kB, shmem-rss:0kB",
    "Out of Memory: Killed process {pid} ({name}).",
    "Killed process {pid} ({name})",
]
JUNK = "".join(random.Random(22).choice("abcXYZ019 #&@=:,.;<>{}[]/\\'\"-_") for _ in range(40))
JOINERS = {
    "junk": f" {JUNK} ",
    # another program's record, then the kernel's header of the next kill's record: a kill after another
    # program's header and no kernel's is that program's, refused (review R29, test_parse_run_together_senders)
    "another log's line": " Jun 29 15:57:12 web-01 sshd[812]: Accepted publickey for root from 10.0.0.1 port 22 ssh2 "
                          "Jun 29 15:57:12 web-01 kernel: ",
    "a timestamp": " 2025-06-29T15:57:11.123456+00:00 ",
    "NULs": "\x00\x00\x00\x00",
    "long text": " " + "lorem ipsum (dolor) sit: amet, " * 130 + " ",
    "nothing": "",
    "a blank": " ",
    "a JSON array's punctuation": '"], ["1717408800123456789", "',
    "a reaper's line": " oom_reaper: reaped process 77 (x), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB ",
}


def _kill_text(form: str, n: int, name: str | None = None) -> str:
    return form.format(pid=1000 + n, name=f"v{n}" if name is None else name, vm=400000 + n, anon=200000 + n,
                       adj=n % 1000)


def _fields(kills: list[OomKill]) -> list[tuple]:
    return [(k.pid, k.process, k.total_vm_kb, k.anon_rss_kb, k.file_rss_kb, k.shmem_rss_kb, k.uid, k.pgtables_kb,
             k.oom_score_adj) for k in kills]


def _daemon(text: str, wrapped: bool) -> list[OomKill]:
    """What the daemon's strict parser reads of one line (a syslog file's, or kmsg's bare message)."""
    parser = OomParser(year=2025)
    kills: list[OomKill] = []
    for line in text.splitlines():
        kills += parser.feed(KernelLine(text=line, source="test", wrapped=wrapped))
    return kills + parser.flush()


def _no_lanes(text: str) -> list[OomKill]:
    """What the import's parser reads of `text` line by line without its fast lane and express."""
    parser = OomParser(year=2025, lenient=True, fast=False)
    kills: list[OomKill] = []
    for line in text.splitlines():
        kills += parser.feed(KernelLine(text=line, source="import", wrapped=True))
    return kills + parser.flush()


def _every_path(text: str, *, bare: bool = True, unread_too: bool = False) -> dict[str, list[OomKill]]:
    """The kills of `text` as each path reads it; the import reads every line (`unread_too`: or not)."""
    unread, scanned_unread = Unread(keep=10), Unread(keep=10)
    read = {
        "lines": parse_text(text, year=2025, unread=unread),
        "scanner": list(iter_kills(io.BytesIO(text.encode("utf-8", "surrogateescape")), "import", year=2025,
                                   unread=scanned_unread)),
        "lines, no lanes": _no_lanes(text),
        "daemon, syslog file": _daemon(text, True),
    }
    if bare:
        read["daemon, kmsg"] = _daemon(text, False)
    assert unread_too or not (unread.first or scanned_unread.first), (unread.first, scanned_unread.first)
    return read


@pytest.mark.parametrize("joiner", JOINERS.values(), ids=JOINERS.keys())
@pytest.mark.parametrize("form", FORMS, ids=[form[:32] for form in FORMS])
def test_two_kill_lines_run_together_are_two_kills_as_on_two_lines(form: str, joiner: str) -> None:
    own_lines = _kill_text(form, 1) + "\n" + _kill_text(form, 2) + "\n"
    expected = _fields(parse_text(own_lines, year=2025))
    assert [kill[:2] for kill in expected] == [(1001, "v1"), (1002, "v2")]
    joined = _kill_text(form, 1) + joiner + _kill_text(form, 2) + "\n"
    for path, kills in _every_path(joined).items():
        assert _fields(kills) == expected, path


SHORT_JOINERS = {**JOINERS, "another log's line": " Jun 29 15:57:12 h sshd[8]: x Jun 29 15:57:12 h kernel: "}


@pytest.mark.parametrize("joiner", ["junk", "another log's line", "a timestamp", "NULs", "nothing", "a blank"])
def test_three_hundred_kill_lines_run_together_are_three_hundred_kills(joiner: str) -> None:
    # Review R22b: one kill whose name was 51,218 characters long, 299 lost. (The line within
    # LINE_CHARS: a longer one is cut there, and counted.)
    joined = SHORT_JOINERS[joiner].join(_kill_text(KILL, n) for n in range(300)) + "\n"
    for path, kills in _every_path(joined).items():
        assert [(k.pid, k.process, k.anon_rss_kb) for k in kills] == [
            (1000 + n, f"v{n}", 200000 + n) for n in range(300)], path


def test_kill_lines_run_together_amid_a_syslog_report_are_each_a_kill() -> None:
    # the lines before it set the lane's shape (and the express's): the run-together line after them
    prefix = "Jun 29 15:57:11 web-01 kernel: [ 5000.000100] "
    report_lines = [
        "java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
        "CPU: 1 PID: 4000 Comm: java Not tainted 6.8.0-1 #1",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        "[   1001]  1000  1001   400000   200000   204800        0             0 v1",
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
        "task_memcg=/user.slice,task=v1,pid=1001,uid=1000",
    ]
    for joiner in (f" {JUNK} ", " ", "\x00\x00"):
        text = "".join(prefix + line + "\n" for line in report_lines) + prefix + joiner.join(
            _kill_text(KILL, n) for n in (1, 2, 3)) + "\n" + prefix + "Mem-Info:\n"
        for path, kills in _every_path(text, bare=False).items():
            assert [(k.pid, k.process, k.invoker, k.task_memcg) for k in kills] == [
                (1001, "v1", "java", "/user.slice"), (1002, "v2", None, None), (1003, "v3", None, None)], path


def test_a_syslog_header_before_each_kill_line_run_together_is_read_past() -> None:
    # each kill at its own header's time, under its host (review R27: all were at the first's)
    line = "".join(f"Jun 29 15:57:{n % 60:02d} web-{n:02d} kernel: {_kill_text(KILL, n)} " for n in range(50)) + "\n"
    for path, kills in _every_path(line, bare=False).items():
        assert [(k.pid, k.process, k.time, k.host) for k in kills] == [
            (1000 + n, f"v{n}", datetime(2025, 6, 29, 15, 57, n), f"web-{n:02d}") for n in range(50)], path


def test_a_selection_and_its_kill_run_together_are_one_kill_of_the_child() -> None:
    selection = "Out of memory: Kill process 1001 (parent) score 900 or sacrifice child"
    kill = "Killed process 1002 (child) total-vm:4kB, anon-rss:2kB, file-rss:0kB"
    for joiner in (" ", f" {JUNK} ", "\x00"):
        for path, kills in _every_path(selection + joiner + kill + "\n").items():
            assert [(k.pid, k.process, k.anon_rss_kb, k.extra.get("selected")) for k in kills] == [
                (1002, "child", 2, {"pid": 1001, "process": "parent", "score": 900})], path


# Names a comm can hold (15 bytes; escaped, up to 60 characters): parentheses, blanks, the words
# of a kill line, a closing parenthesis at the end. None holds "Kill(ed) process N (", 16 characters.
NAMES = ["(sd-pam)", "kworker/u8:2", "Web Content", "a)", "x) total-vm:1kB", "((((((()))))))", ")))))))((((((((",
         "Killed process ", "(Killed process", "Killed process)", ")(Killed proces", ") Killed proces",
         "kill process 12", "kill process 1)", "Kill process 1 ", "kkill process 1", "KKKKKKKKKKKKKKK",
         "\\x0a" * 15, "\\xe2\\x80\\xa6" * 5, "é" * 15, "a" * 15, "a#012b"]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_of_parentheses_blanks_and_kill_words_reads_alone_and_run_together(name: str) -> None:
    alone = _kill_text(KILL, 1, name) + "\n"
    for path, kills in _every_path(alone).items():
        assert [(k.pid, k.process) for k in kills] == [(1001, name)], path
    for joiner in (" ", f" {JUNK} ", "", " Killed process ", " (x) "):
        joined = _kill_text(KILL, 1, name) + joiner + _kill_text(KILL, 2, name) + "\n"
        for path, kills in _every_path(joined).items():
            assert [(k.pid, k.process) for k in kills] == [(1001, name), (1002, name)], (path, joiner)


def test_a_name_no_comm_can_be_is_read_as_before_and_never_holds_a_kill_opening() -> None:
    # over NAME_CHARS characters (a forged or mangled line): read whole as before, capped where it
    # is kept (bounds.py); a name within the bound is read so where the line reads so
    for name in ("n" * 64, "n" * 65, "n" * 5000, "(" * 100 + ")" * 100):
        (kill,) = parse_text(_kill_text(KILL, 1, name) + "\n")
        assert kill.process == name
    # another kill line's opening where the name would be: two messages, the first cut (counted)
    unread = Unread()
    assert [(k.pid, k.process) for k in parse_text(_kill_text(KILL, 1, "Killed process 5 (x)") + "\n",
                                                   unread=unread)] == [(5, "x)")]
    assert [u.text for u in unread.first] == ["Out of memory: Killed process 1001 ("]


def test_a_kill_line_after_a_cgroups_path_on_its_line_is_not_read() -> None:
    # A user names a cgroup of a delegated subtree as they like, a kill line and all: past a message
    # holding a path, what follows on the line is not cut into kill lines (it forges none).
    forged = _kill_text(KILL, 1, "systemd").replace("1001", "1")
    for opening in ("Tasks in /user.slice/", "oom-kill:constraint=CONSTRAINT_NONE,task_memcg=/user.slice/"):
        line = _kill_text(KILL, 2) + " " + opening + forged + " are going to be killed due to memory.oom.group set\n"
        for path, kills in _every_path(line, unread_too=True).items():  # (the forged words counted unread)
            assert [(k.pid, k.process) for k in kills] == [(1002, "v2")], path


def test_earlyoom_names_its_victim_to_the_first_signal_words() -> None:
    line = ("earlyoom[5]: Killing process 'bash' with signal 15, pid: 5874, badness: 538, VmRSS: 3160 MiB "
            "Killing process 'zsh' with signal 15, pid: 5875, badness: 538, VmRSS: 3160 MiB\n")
    assert [(k.pid, k.process) for k in parse_text(line)][:1] == [(5874, "bash")]


_TOKENS = ["Killed process ", "kill process ", "Kill process ", "1 ", "12", "(", ")", " ", "x", "K", ", UID 3, ",
           " total-vm:1kB, anon-rss:1kB, file-rss:0kB", ".", " score 5 or sacrifice child", "é", "\n"]


@settings(max_examples=400, deadline=None)  # (the reading with a comm's name first, else any length)
@given(st.lists(st.sampled_from(_TOKENS), max_size=40), st.sampled_from(["", "Out of memory: "]))
def test_the_fast_reading_is_the_name_a_comm_can_be_else_the_long_one(tokens: list[str], reason: str) -> None:
    # ReportReader.kill_line() asks the plain bounded pattern first, the one whose name refuses a
    # kill's opening only where the name holds " process ": the same reading either way.
    for text in (reason + "Killed process 5 (" + "".join(tokens), reason + "Kill process 5 (" + "".join(tokens)):
        fast, exact = match_killed(text), report._KILLED_NAMED.match(text) or report.KILLED.match(text)
        assert (fast and fast.groups()) == (exact and exact.groups()), text
        fast, exact = match_selection(text), report._SELECTION_NAMED.match(text) or report.SELECTION.match(text)
        assert (fast and fast.groups()) == (exact and exact.groups()), text


_FORGED = _kill_text(KILL, 0, "sshd").replace("1000", "1", 1)
# earlyoom's kill line in each version's words (userspace._EARLYOOM_SEND/_SIGNAL), `{user}` where the
# victim's owner writes: 1.8's cmdline "…", else the name (a comm holds 15 bytes, but nothing here counts them).
EARLYOOM_WORDINGS = {
    "1.8 cmdline": 'sending SIGTERM to process 4242 uid 1000 "evil": oom_score 900, VmRSS 1000 MiB, '
                   'cmdline "evil --x {user}"',
    "1.8 cmdline, quote closed": 'sending SIGTERM to process 4242 uid 1000 "evil": oom_score 900, VmRSS 1000 MiB, '
                                 'cmdline "evil --x" {user}"',
    "1.3-1.7": 'sending SIGKILL to process 4242 uid 1000 "evil {user}": badness 900, VmRSS 1000 MiB',
    "1.0-1.2": 'sending SIGTERM to process 4242 "evil {user}": badness 900, VmRSS 1000 MiB',
    "early 2019": 'killing process 4242 "evil {user}" with signal 15: badness 550, VmRSS 7609 MiB',
    "2018": "Killing process 'evil {user}' with signal 15, pid: 4242, badness: 538, VmRSS: 3160 MiB",
}


@pytest.mark.parametrize("tag", ["", "earlyoom[812]: "], ids=["no tag", "earlyoom's tag"])
@pytest.mark.parametrize("wording", EARLYOOM_WORDINGS.values(), ids=EARLYOOM_WORDINGS.keys())
def test_a_kernel_kill_line_in_earlyooms_victims_words_forges_no_kill(wording: str, tag: str) -> None:
    # Review R26: earlyoom prints its victim's name and (1.8) command line, which the victim's owner
    # writes as they like, a kernel kill line and all: past where those start, a killer's line is not
    # cut into kill lines (journalctl -u earlyoom -o cat and earlyoom's stderr carry no tag to refuse it).
    line = tag + wording.format(user=_FORGED) + "\n"
    for path, kills in _every_path(line, unread_too=True).items():
        assert [(k.pid, k.killer) for k in kills] == [(4242, "earlyoom")], (path, [k.process for k in kills])


def _report(i: int) -> list[str]:
    """A 6.x report's lines (review-notes/s10_r22b_reports.py's), its summary and kill line last."""
    return [f"app{i} invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0",
            f"CPU: 1 PID: {1000 + i} Comm: app{i} Not tainted 6.1.0 #1",
            "Tasks state (memory values in pages):",
            "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
            f"[   {1000 + i}]     0  {1000 + i}   250000   225000  2000000        0             0 app{i}",
            "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
            f"task_memcg=/system.slice/app{i}.service,task=app{i},pid={1000 + i},uid=0",
            _kill_text(KILL, i, f"app{i}")]


@pytest.mark.parametrize("lines", [slice(None), slice(-2, None)], ids=["whole reports", "summary + kill pairs"])
def test_reports_run_together_on_one_line_are_counted_unread_not_read_silently(lines: slice) -> None:
    # Review R25: past a cgroup's path nothing is cut (a forgery guard), so these give no kill: the
    # line is then counted unread, as `import` tells its user, on the line path and the scanner.
    text = " ".join(line for i in (1, 2) for line in _report(i)[lines]) + "\n"
    unread, scanned = Unread(keep=10), Unread(keep=10)
    assert parse_text(text, year=2025, unread=unread) == []
    assert list(iter_kills(io.BytesIO(text.encode()), "import", year=2025, unread=scanned)) == []
    assert (unread.count, scanned.count) == (1, 1)

"""Where a message of an OOM report (or of a killer) starts in a line, and whether it reads.

The parser of pasted text finds the kernel's (and each killer's) own words wherever they
stand in a line (ANCHOR); what precedes them is the line's wrapper. The predicates here
say whether a message reads whole (a wrap may have cut it), and whether its sender can
have written it.

Every pattern here is compiled at its first use (lazy_regex.py): only a line of an OOM report
or of a killer reaches one (each predicate tests for its words first), or `import`'s pasted
text; an ordinary kernel line none, so a daemon that has seen no OOM holds none of them.
"""

from __future__ import annotations

from watchdog_oom.lazy_regex import compile_on_first_use
from watchdog_oom.parse.report import HEADER, KERNEL_RECOGNISERS, TASK_IN, TASKS_IN, match_killed
from watchdog_oom.parse.userspace import USERSPACE_RECOGNISERS

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
# ANCHOR and ANCHOR_START (and _ANCHOR_HINTS below) serve the lenient parser (import's pasted
# text) and a held kill line's continuation; a live source's message is read where its source
# put it. Compiled at their first use (lazy_regex.py): the daemon need not hold them.
# PID 1's unit is looked for where a run of non-blanks starts (the lookbehind): the leftmost
# match starts there anyway, and a search no longer runs to the end of a long run from each
# of its characters (a 64 KiB line of one word took 20 s of CPU).
ANCHOR = compile_on_first_use(r" invoked oom-killer: |(?<![^\s:])[^\s:]++: systemd-oomd killed \d"
                              r"|(?<![^\s:])[^\s:]++: Failed with result 'oom-kill'|"
                              + "|".join(_ANCHOR_WORDS))
# A unit's name before PID 1's words ("x.service: "): the run of non-blanks must end in the colon,
# which the lookahead checks first without giving characters back (a long run costs one pass).
_UNIT = r"(?=\S*+(?<=:) )\S+: "
# At the start of a message: the same, with a header's invoker (a task name: 15 bytes,
# here up to 16 characters, blanks allowed) or a unit before PID 1's words.
ANCHOR_START = compile_on_first_use(r".{1,16}? invoked oom-killer: |" + _UNIT + r"systemd-oomd killed \d"
                                    r"|" + _UNIT + r"Failed with result 'oom-kill'|"
                                    + "|".join(_ANCHOR_WORDS))
# A line that names a victim and may have been cut after these words.
KILL_START = compile_on_first_use(
    r"(?:(?:Out of [Mm]emory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): )?"
    r"[Kk]ill(?:ed)? process(?: \d|\s*$)"
    # earlyoom's start-up banner "sending SIGTERM when mem <= 10.00% and swap <= 10.00%," is no kill
    r"|(?:earlyoom(?:\[\d+\])?: )?(?:sending SIG(?!\w* when )|Killing process '|killing process \d)"
    r"|(?:systemd-oomd(?:\[\d+\])?: )?(?:Killed|Marked) (?:/|…|\.\.\.)"
    r"|(?:nohang(?:-desktop)?(?:\[\d+\])?: )?\s*Send(?:ing)? SIG\w+ to(?: the)?\s*$"
)
# Other report lines a wrap may cut, held for their continuation when visibly incomplete.
HOLDABLE = compile_on_first_use(r".{1,16}? invoked oom-killer:|oom-killer: gfp_mask=|oom-kill:constraint=|Tasks? in /")
_HEADER_TAIL = compile_on_first_use(r"(?:order|oom_score_adj|oomkilladj|oom_adj)=-?\d+\s*$")
_SUMMARY_TAIL = compile_on_first_use(r",uid=\d+\s*$")
# (earlyoom's two: compiled at its first kill line, lazy_regex.py)
_EARLYOOM_CUT = compile_on_first_use(r"(?:,|\b(?:badness|oom_score|oom_score_adj|VmRSS|cmdline)|\d)\s*$")
# How earlyoom's kill line ends when whole (kill.c 1.0-1.9): its VmRSS in MiB, or 1.8's cmdline.
_EARLYOOM_END = compile_on_first_use(r'(?:MiB|")\s*$')
# How a kernel kill line ends when nothing was cut from it (then perhaps the closing quote,
# backtick, emphasis or bracket of whatever quoted it).
_COMPLETE_TAIL = compile_on_first_use(r"""(?:\)|\.|kB|oom_score_adj:-?\d+)[`'"*\]]*\s*$""")
# A kill's words (issue 11 item 7): a line holding them that no recogniser reads is counted.
KILL_WORDS = compile_on_first_use(
    r"[Kk]ill(?:ed)? process \d|invoked oom-killer|sending SIG(?:TERM|KILL) to process|Killing process '"
    r"|killing process \d+ \"|(?:Killed|Marked) (?:/|…|\.\.\.)\S*(?: for killing)? due to|systemd-oomd killed"
    r"|Send(?:ing)? SIG\w+ to the victim"
)


# A kernel kill line's opening (the selection's or the kill's).
_KILL_OPENING = compile_on_first_use(
    r"(?:(?:Out of [Mm]emory(?: \(oom_kill_allocating_task\))?|Memory cgroup out of memory): )?"
    r"[Kk]ill(?:ed)? process \d")


def counted_unread(body: str, kills: bool) -> bool:
    """Whether a message that gave `kills` (or none) is counted unread: it holds a kill's words
    and gave no kill, and no recogniser reads it, or it holds a kernel kill line's opening after
    its start (review R25: reports or summary + kill pairs run together on one line, which are
    not cut past a cgroup's path, are said to the user, not read silently as one report)."""
    if kills or not kill_words(body):
        return False
    if not recognised(body):
        return True
    found = _KILL_OPENING.search(body)
    if found is not None and found.start() == 0:
        found = _KILL_OPENING.search(body, found.end())
    return found is not None


# Every match of KILL_WORDS holds one of these ("Killed process" and "systemd-oomd killed" hold
# "illed "; "Kill process" "ill process"; "Killing"/"killing process" "illing process"; "sending
# SIGTERM" and "Send SIGKILL" "SIG"): a line with none is not searched (a search tries every
# alternative at every offset of a long line). Tested one by one: a generator over them costs more.
def kill_words(body: str) -> bool:
    """True when `body` holds a kill's words (KILL_WORDS) somewhere."""
    return ("ill process" in body or "illed " in body or "illing process" in body or "oom-killer" in body
            or "oomd killed" in body or "Marked " in body or "SIG" in body) and KILL_WORDS.search(body) is not None


# Every anchor holds one of these: a few substring tests spare most lines the search.
_ANCHOR_HINTS = compile_on_first_use(r"emory|ill|oom|Task|Mem-|pid|PID|Pid|SIG|Marked|Victim|badness|corrective|victim")


def may_anchor(text: str) -> bool:
    """False when no anchor can stand in `text` (a task-table row, a memory-state line)."""
    return _ANCHOR_HINTS.search(text) is not None


def recognised(body: str) -> bool:
    """True when a recogniser reads this message (or it is a report's header)."""
    if HEADER.match(body):
        return True
    return any(r.pattern.match(body) for r in RECOGNISERS if any(n in body for n in r.needles))


def incomplete(body: str) -> bool:
    """True when a kill line (or a report line that tells which report a kill belongs to)
    was visibly cut: no recogniser reads it, or it stops mid-way (a number without its
    unit, a trailing comma)."""
    if body.startswith(("oom-kill:", "Task")):
        return not (_SUMMARY_TAIL.search(body) or TASK_IN.match(body) or TASKS_IN.match(body))
    if "oom-killer:" in body:
        return HEADER.match(body) is None or _HEADER_TAIL.search(body) is None
    if match_killed(body):
        return _COMPLETE_TAIL.search(body) is None
    if 'cmdline "' in body and not body.rstrip().endswith('"'):
        return True  # earlyoom's command line, its last field, was cut
    if body.startswith(("sending SIG", "earlyoom")) and "sending SIG" in body and (
            _EARLYOOM_CUT.search(body) or not _EARLYOOM_END.search(body)):
        return True  # earlyoom's figures stop at a name, a comma, or mid-word
    return not recognised(body)


def reading(body: str) -> int:
    """How well a joined line reads: 2 whole, 1 as a kill line still cut, 0 not at all."""
    if not incomplete(body):
        return 2
    return 1 if match_killed(body) or recognised(body) else 0


def refusal(body: str, sender: str | None) -> str | None:
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

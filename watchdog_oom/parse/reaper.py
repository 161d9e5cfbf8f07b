"""The oom_reaper's line: a kill read from it where the log lost the kill's own line.

The OOM killer hands each victim to the oom_reaper kernel thread (Linux 4.6+, commit
aac453635549), which unmaps the victim's anonymous memory before the victim itself can
exit, and says so (mm/oom_kill.c, oom_reap_task_mm(); __oom_reap_task() before 4.14):

    oom_reaper: reaped process 1234 (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB

The figures are the victim's rss after the reap, not at the kill. The line comes after
the victim's `Killed process` line: at once before 5.18, up to two seconds later since
(OOM_REAPER_DELAY, commit e4a38402c36e), and then only when the victim has not released
its memory by the time the reaper comes.
When the log holds the kill line too (the common case) the reaper's line adds nothing
and yields nothing. When the kill line is gone (rotated into another file, dropped by
journald's rate limit, overwritten in the ring buffer before it was read) the reaper's
line is the only trace of the kill: its pid and name, and the figures kept as
`extra["after_reap"]`, with the evidence `kernel oom_reaper line alone`.

The kernel hands one more kind of victim to the reaper without a kill line: a task it
chose while that task was already exiting (task_will_free_mem(): killed by someone else,
or ending), which it lets die with access to the memory reserves instead of killing it.
Its reaper line looks the same; a kill read from the reaper's line alone may be such a
task, and its evidence says it was read from that line only.

Never a kill from this line: "oom_reaper: unable to reap pid:N (name)" (the reaper gave
up; the kill line, if kept, says the kill) and process_mrelease(2), which reaps without
a word.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from watchdog_oom.model import OomKill
from watchdog_oom.parse.evidence import describe
from watchdog_oom.parse.report import COMM_CHARS
from watchdog_oom.parse.userspace import Recogniser
from watchdog_oom.parse.values import INT64_MAX, as_int, as_pid
from watchdog_oom.parse.wrappers import Stamp

if TYPE_CHECKING:
    from watchdog_oom.parse.report import ReportReader, Victim
    from watchdog_oom.parse.userspace import UserspaceKillers


# 4.6-6.x: "oom_reaper: reaped process %d (%s), now anon-rss:%lukB, file-rss:%lukB,
# shmem-rss:%lukB". The patch as posted to linux-mm printed "shmem-rss:%lulB" (a typo
# fixed within the series): "0lB" is read too. The name is the text up to the last
# "), now " (a comm may hold parentheses); a line cut after the name still names the
# victim, its figures unknown.
REAPED = re.compile(r"oom_reaper: reaped process (\d+) \((.*)\)(?:,? now (.*))?$", re.DOTALL)
_AFTER_REAP = re.compile(r"\b(anon|file|shmem)-rss:(\d{1,18})[kl]B")

REAPER = Recogniser(
    "kernel: oom_reaper reaped process (4.6-6.x)", "kernel", REAPED, ("oom_reaper: reaped process ",),
    (("oom_reaper: reaped process 63214 (uwsgi), now anon-rss:0kB, file-rss:0kB, shmem-rss:92kB",
      "Linux 5.4 (k8s), tests/data/oom_logs/27_k8s-uwsgi-5.4_dmesg_memcg-kill-then-next-invocation.log"),
     ("oom_reaper: reaped process 15934 ((resolved)), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
      "Linux 4.x (docker host), tests/data/oom_logs/20_docker-host_syslog_four-kills-paren-name.log"),
     ("oom_reaper: reaped process 1055041 (nix-env), now anon-rss:0kB, file-rss:612kB, shmem-rss:0kB",
      "Linux 6.12, tests/data/real_reports_3/nixpkgs-435587_6.12_journal_summary-cut-by-journalctl-ellipsis.log")),
    ("kernel",))

# How far apart the victim's kill line and the reaper's line of the same victim may be: the
# reaper waits up to OOM_REAPER_DELAY (2 s, 5.18+), tries up to ten times a tenth of a second
# apart, and reaps one victim after another. Further apart, the same pid and name are
# another process's (the pid reused).
SAME_VICTIM_USEC = 60_000_000


def reaped(text: str, stamp: Stamp, reports: ReportReader, users: UserspaceKillers) -> list[OomKill] | None:
    """The kill a reaper's line `text` (a message, stripped) stands for: none when the
    victim's own kill line was read (by this parser, kernel or user-space killer's); a
    selection still waiting for its kill line made the kill; else the kill as the reaper
    names it. None: `text` is no reaper's line."""
    match = REAPED.match(text)
    if match is None:
        return None
    pid, name = as_pid(match.group(1)), match.group(2)
    if pid is None:
        return []
    selected = reports.selected_pid()
    if selected == pid:  # "Kill process … or sacrifice child" (up to 5.0) whose kill line was lost
        return reports.flush_selection()
    known = reports.victims.get(pid)
    if known is not None and _same_victim(known, name, stamp):
        return []
    if users.victim(pid, name):  # earlyoom or nohang signalled it; the kernel reaped it as it died
        return []
    kill = OomKill(pid=pid, process=name, extra={
        "kill_line": text,
        "after_reap": {f"{kind}_rss_kb": as_int(figure, 0, INT64_MAX)
                       for kind, figure in _AFTER_REAP.findall(match.group(3) or "")},
        "evidence": describe(stamp, text, "kernel oom_reaper line alone", ("oom_reaper",), REAPER.name),
    }, **stamp.fields())
    reports.victims.remember(kill)  # a repeated line (a paste, a relay) is the same kill
    return [kill]


def _same_victim(known: Victim, name: str, stamp: Stamp) -> bool:
    """Whether the reaper's line at `stamp` naming `name` is about the victim `known`: the
    same name (as far as a comm goes) and, where both lines carry a time, close enough."""
    comm, when, mono_usec, boot_id = known
    if comm != name[:COMM_CHARS]:
        return False
    if mono_usec is not None and stamp.mono_usec is not None and boot_id == stamp.boot_id:
        return 0 <= stamp.mono_usec - mono_usec <= SAME_VICTIM_USEC
    if when is not None and stamp.time is not None and (when.tzinfo is None) == (stamp.time.tzinfo is None):
        return abs((stamp.time - when).total_seconds()) * 1_000_000 <= SAME_VICTIM_USEC
    return True  # nothing says when either was: the same pid and name, one victim

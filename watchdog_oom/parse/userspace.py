"""The user-space OOM killers: systemd-oomd, earlyoom and nohang, one recogniser each.

Each killer writes its own wording to its own log (journal unit or syslog tag); the
recognisers here read a message body (the wrapper already taken off) into an OomKill.
Their patterns are compiled at their first use (lazy_regex.py): a host runs one of these
killers or none, and no other line reaches them (no_killer_words(), the needles), so the
daemon holds only the patterns of the killer whose lines it has seen.
"""

from __future__ import annotations

import re
from collections import deque

from watchdog_oom.lazy_regex import compile_on_first_use
from watchdog_oom.model import OomKill
from watchdog_oom.parse.evidence import describe
from watchdog_oom.parse.values import (
    CGROUP_NAME_CHARS,
    PROCESS_CHARS,
    as_int,
    as_pid,
    as_uid,
    cap_name,
)
from watchdog_oom.parse.wrappers import Stamp
from watchdog_oom.valueclass import valueclass

NOHANG_BLOCK_LINES = 100  # a nohang victim description ends with its action within this many lines

_TAG = r"(?:{}(?:\[\d+\])?:\s+)"
# earlyoom 1.x kill.c: 'sending SIGTERM to process 1234 uid 1000 "firefox": oom_score 600,
# VmRSS 5000 MiB, cmdline "…"' (1.0-1.2: "badness 600" and no uid; 1.8: oom_score_adj,
# "badness N KiB", "ordering x"). The name may hold '"': anchor on '": '.
_EARLYOOM_SEND = compile_on_first_use(
    _TAG.format("earlyoom") + r'?sending (SIGTERM|SIGKILL) to process (\d+)(?: uid (\d+))? "(.*?)": (.*)$'
)
_EARLYOOM_DETAIL = compile_on_first_use(r"(oom_score_adj|oom_score|badness|VmRSS):? (-?\d+)")
# Before "sending SIGTERM" (1.3, 2019) earlyoom named the signal by number, after a
# "Low Memory! At or below sigterm limits" or "low memory! at or below SIGTERM limits":
#   2018 (1.0-1.1): "Killing process 'bash' with signal 15, pid: 5874, badness: 538, VmRSS: 3160 MiB"
#   early 2019:     'killing process 27541 "bash" with signal 15: badness 550, VmRSS 7609 MiB'
# The name is read to the first "' with signal N, pid: N" (the first '" with signal N:'), not the last:
# a kill line another one ran into on one line (review R22b) lends it none of the rest of the line.
_EARLYOOM_SIGNAL = compile_on_first_use(
    _TAG.format("earlyoom") + r"""?(?:Killing process '(.*?)' with signal (\d+), pid: (\d+)"""
    r"""|killing process (\d+) "(.*?)" with signal (\d+):)(.*)$"""
)
_SIGNAL_NAMES = {"9": "SIGKILL", "15": "SIGTERM"}
# Between 1.7 and 1.8 (kill.c, commits e05fa9e 2023-09-19 to 7534065 2024-04-08; builds such
# as v1.7-41-g90f1a67) earlyoom printed the victim's command line on a line of its own right
# after its kill line: 'process 2595764 cmdline "command here"'. 1.8 moved it into the kill line.
_EARLYOOM_CMDLINE = compile_on_first_use(_TAG.format("earlyoom") + r'?process (\d+) cmdline "(.*)"\s*$')
# What earlyoom says right after its kill line (kill.c kill_wait(), kill_release(), 1.0-1.9):
# where kill(2) itself failed, no signal was sent and nothing was killed. "Timer expired"
# (the process did not exit in 10 s) follows a signal that was sent: the kill stands.
_EARLYOOM_FAILED = compile_on_first_use(
    _TAG.format("earlyoom") + r"?kill failed: (?:Operation not permitted|No such process)")
# Lines about the same kill that come before its outcome (1.8: pidfd and process_mrelease).
_EARLYOOM_SAME_KILL = compile_on_first_use(
    _TAG.format("earlyoom") + r"?(?:kill_release: |kill_wait pid \d+: |process \d+ cmdline )")
# earlyoom 0.x printed to stdout: "Out of memory! avail: 0 MiB < min: 587 MiB" and on the
# next line "Killing process 8230 sudo".
_EARLYOOM_BANNER = compile_on_first_use(_TAG.format("earlyoom") + r"?(?:Out of memory!|[Ll]ow [Mm]emory!) ")
_EARLYOOM_KILLING = compile_on_first_use(_TAG.format("earlyoom") + r"?Killing process (\d+) (.+)$")
# systemd-oomd (247+) kills a whole cgroup, src/oom/oomd-manager.c:
#   "Killed /x.service due to memory pressure for /y.slice being 80.00% > 50.00% for > 20s
#    with reclaim activity"
#   "Killed /x.scope due to swap used (…) / total (…) being more than 90.00%"   (247-248)
#   "Killed /x.scope due to memory used (…) / total (…) and swap used (…) / total (…) …" (249+)
#   "Marked /x.service for killing due to memory pressure for /y.slice being …" (later
#    releases queue the kill and carry it out at once; PID 1 then logs "systemd-oomd killed
#    N process(es) in this unit"; both wordings exist for swap too)
# journalctl elides a long path in the middle or at its start ("/user.slice/…/x.scope",
# "…ea541d95.scope", "..." where the terminal is not UTF-8): the part printed is kept.
_OOMD = compile_on_first_use(
    _TAG.format("systemd-oomd")
    + r"?(?:Killed|Marked) ((?:/|…|\.\.\.).*?)(?: for killing)? due to (memory pressure|swap used|memory used)(.*)$"
)
# "Marked /x.scope for killing" with nothing after it (a paste trimmed the reason): the kill stands.
_OOMD_MARKED = compile_on_first_use(_TAG.format("systemd-oomd") + r"?Marked ((?:/|…|\.\.\.)\S*) for killing()()\s*$")
# PID 1 (or the user's manager) carries the kill out and reports it, src/core/unit.c
# unit_log_oomd_kill... (249+): "x.scope: systemd-oomd killed 3 process(es) in this unit."
# It is the same event as systemd-oomd's own line, before or after it, or the only trace
# where systemd-oomd's unit was not in the excerpt.
_OOMD_UNIT = compile_on_first_use(
    _TAG.format("systemd") + r"?(?:(\S+?): )?systemd-oomd killed (\d+) process\(es\) in this unit\.?\s*$"
)
# A unit whose process the kernel (or systemd-oomd) OOM-killed ends with this result
# (src/core/service.c, 243+): corroboration of a kill recorded from its own line, never a kill.
_OOM_RESULT = compile_on_first_use(_TAG.format("systemd") + r"?(\S+?): Failed with result 'oom-kill'\.?\s*$")
_OOMD_PRESSURE = compile_on_first_use(r" for (\S+) being ([\d.]+%) > ([\d.]+%)")
_UNIT_SUFFIXES = (".service", ".scope", ".slice", ".socket", ".mount", ".swap")
# nohang describes its victim on several lines, then acts (src/nohang, 2019-2021):
#   0.1:  "Process with highest badness (found in 4 ms):" / "  PID: 477, Name: Xorg, badness: 12"
#         "Implement a corrective action:" / "  Send SIGTERM to the victim; total response time: 13 ms"
#   0.2+: "Victim status (found in 14ms):"
#         "  PID:       12297, name: tail, state: R, EUID: 1000, SID: 2030 (bash), lifetime: 3s"
#         "  badness:   824, oom_score:  824, oom_score_adj:  0" / "  cgroup_v2: /user.slice/…"
#         "  cmdline:   tail /dev/zero" / "Implementing a corrective action:"
#         "  Sending SIGTERM to the victim"
_NOHANG_TAG = compile_on_first_use(_TAG.format(r"nohang(?:-desktop)?"))
_NOHANG_START = ("Victim status", "Process with highest badness", "Finding the process with the highest badness")
_NOHANG_OPENERS = ("nohang", *_NOHANG_START)  # (made once: no_killer_words() is asked of most kernel lines)
_NOHANG_FIELD = compile_on_first_use(
    r"(PID|name|E?UID|badness|VmRSS|RSS|cgroup_v[12]):\s+([^,(]*?)\s*(?=,|\(|$)", re.IGNORECASE)
_NOHANG_KEYS = {"euid": "uid", "rss": "vm_rss_mib", "vmrss": "vm_rss_mib"}
_NOHANG_CMDLINE = compile_on_first_use(r"cmdline:\s+(.*)$", re.IGNORECASE)
_NOHANG_SEND = compile_on_first_use(r"Send(?:ing)? (SIGTERM|SIGKILL) to the victim")
# A victim that a configured command handles instead of a signal (nohang's soft actions,
# "execute_the_command" in 0.1): src/nohang implement_corrective_action()
#   0.1 (2018):       "  Execute the command: {cmd}" in the "Victim is …" block
#   2019 (to 0.2):    "Implement a corrective action:" / "  Run the command: {cmd}"
#   2020-03 (8e931f8) on: "Implementing a corrective action:" / "  Executing the command: {cmd}"
# ("Execute the command(1) in Thread-1: …", "Executing Command-1 …" log the same command's start.)
_NOHANG_COMMAND = compile_on_first_use(r"(?:Run|Execute|Executing) the command: (.+)$")
# nohang 0.1 (2018) names its victim on one line: "  Victim is tail, pid: 5, badness: 9, VmRSS: 3 MiB, …"
_NOHANG_VICTIM_IS = compile_on_first_use(r"Victim is (.+?), pid: (\d+), badness: (-?\d+)")
_USERSPACE_MEMORY = 32  # victims remembered to record earlyoom's SIGTERM+SIGKILL once
_ELISIONS = ("…", "...")


def no_killer_words(text: str) -> bool:
    """True when UserspaceKillers.take() passes `text` over (None, nothing changed) without a
    look at it while no description is open (not `collecting`): none of the words it looks
    for is there."""
    return not ("Kill" in text or "killing" in text or "SIG" in text or "oomd killed" in text
                or "'oom-kill'" in text or "emory!" in text or text.startswith(_NOHANG_OPENERS))


class UserspaceKillers:
    """The state the user-space killers' recognisers share: earlyoom's banner, nohang's
    description of its victim, and the victims seen lately (earlyoom's SIGTERM then SIGKILL
    of one process is one kill)."""

    def __init__(self) -> None:
        self._earlyoom_banner = False
        self._nohang: dict | None = None
        self._nohang_lines = 0
        self._victims: deque[tuple[str, int | None, str]] = deque(maxlen=_USERSPACE_MEMORY)
        self._oomd = SystemdOomdEvents()
        # an earlyoom kill awaiting the lines that follow it: its command line (1.7-x) or
        # "kill failed: Operation not permitted" (no signal was sent: no kill)
        self._awaiting_cmdline: OomKill | None = None

    @property
    def collecting(self) -> bool:
        """True while a description of a victim (earlyoom 0.x banner, nohang) is open, or an
        earlyoom kill awaits its command line."""
        return self._earlyoom_banner or self._nohang is not None or self._awaiting_cmdline is not None

    @property
    def pending(self) -> bool:
        """True when flush() would return a kill."""
        return self._awaiting_cmdline is not None

    def memory(self) -> tuple:
        """The victims and systemd-oomd events remembered (OomParser.resumable)."""
        return tuple(self._victims), tuple(self._oomd.open_events)

    def settle(self, text: str) -> tuple[list[OomKill], bool]:
        """Before a message is read: an earlyoom kill awaiting what follows it takes its
        command line from `text`, is dropped when `text` says kill(2) failed, or is handed
        on. True when the message was used up."""
        kill = self._awaiting_cmdline
        if kill is None:
            return [], False
        if "cmdline" in text:
            line = _EARLYOOM_CMDLINE.match(text)
            if line is not None and as_pid(line.group(1)) == kill.pid:
                self._awaiting_cmdline = kill.replace(cmdline=line.group(2))
                return [], True
        if "kill" in text:
            if _EARLYOOM_FAILED.match(text):
                self._awaiting_cmdline = None
                return [], True  # no signal was sent: not a kill
            if _EARLYOOM_SAME_KILL.match(text):
                return [], True
        self._awaiting_cmdline = None
        return [kill], False

    def flush(self) -> list[OomKill]:
        """An earlyoom kill whose command line never came."""
        kill, self._awaiting_cmdline = self._awaiting_cmdline, None
        return [kill] if kill is not None else []

    def interrupt(self) -> None:
        """Another line came: an earlyoom 0.x banner only counts for the line right after it."""
        self._earlyoom_banner = False

    def take(self, text: str, stamp: Stamp) -> list[OomKill] | None:
        """One message body: the kills it completes, or None when it is no killer's line."""
        banner, self._earlyoom_banner = self._earlyoom_banner, False
        if "Kill" in text or "killing" in text:
            kills = self._kill_line(text, stamp, banner)
            if kills is not None:
                return kills
        if "SIG" in text:
            kills = self._send_line(text, stamp)
            if kills is not None:
                return kills
        if self._nohang is not None and "the command: " in text:
            kills = self._nohang_command(text, stamp)
            if kills is not None:
                return kills
        if self._nohang is not None or text.startswith(_NOHANG_OPENERS):
            self._nohang_line(text)
        if "oomd killed" in text or "'oom-kill'" in text:
            kills = self._oomd.unit_line(text, stamp)
            if kills is not None:
                return kills
        if "emory!" in text and _EARLYOOM_BANNER.match(text):
            self._earlyoom_banner = True
            return []
        return None

    def _kill_line(self, text: str, stamp: Stamp, banner: bool) -> list[OomKill] | None:
        """A line naming a victim; None when "Kill" meant something else."""
        oomd = _OOMD.match(text) or _OOMD_MARKED.match(text)
        if oomd:
            return self._oomd.killed(oomd, text, stamp)
        signal = _EARLYOOM_SIGNAL.match(text)
        if signal:
            return self._earlyoom_signal(signal, text, stamp)
        killing = _EARLYOOM_KILLING.match(text)
        if killing and (banner or text.startswith("earlyoom")):
            return self._userspace(
                stamp, "earlyoom", as_pid(killing.group(1)), killing.group(2), text, uid=None
            )
        return None

    def _earlyoom_signal(self, match: re.Match, text: str, stamp: Stamp) -> list[OomKill]:
        """earlyoom 1.0-1.2's victim line, which names the signal by its number."""
        quoted, number, pid = match.group(1, 2, 3)
        if pid is None:
            pid, quoted, number = match.group(4, 5, 6)
        details = _earlyoom_details(match.group(7))
        return self._userspace(
            stamp, "earlyoom", as_pid(pid), quoted, text, uid=None,
            signal=_SIGNAL_NAMES.get(number, number), **details,
        )

    def _send_line(self, text: str, stamp: Stamp) -> list[OomKill] | None:
        """earlyoom's "sending SIGTERM to process …" or nohang's "Send SIGTERM to the victim"."""
        send = _EARLYOOM_SEND.match(text)
        if send:
            details = _earlyoom_details(send.group(5))
            cmdline = details.pop("cmdline", None)
            kills = self._userspace(
                stamp, "earlyoom", as_pid(send.group(2)), send.group(4), text,
                uid=as_uid(send.group(3)), cmdline=cmdline, signal=send.group(1), **details,
            )
            if kills:  # its command line (1.7-x) or its failure may follow
                self._awaiting_cmdline, kills = kills[0], []
            return kills
        victim = self._nohang
        body = _NOHANG_TAG.sub("", text, count=1).strip()
        action = _NOHANG_SEND.match(body)
        if not action:
            return None
        if victim is None or not victim.get("pid", "").isdigit():
            return []
        return self._nohang_victim(victim, text, stamp, signal=action.group(1))

    def _nohang_command(self, text: str, stamp: Stamp) -> list[OomKill] | None:
        """nohang's victim handled by a configured command (e.g. "kill -TERM $PID")."""
        body = _NOHANG_TAG.sub("", text, count=1).strip()
        action = _NOHANG_COMMAND.match(body)
        if action is None:
            return None
        victim = self._nohang or {}
        if not victim.get("pid", "").isdigit():
            return []
        return self._nohang_victim(victim, text, stamp, command=action.group(1))

    def _nohang_victim(self, victim: dict[str, str], text: str, stamp: Stamp, **action: str) -> list[OomKill]:
        """The kill of the victim nohang described, by the action it took (a signal sent,
        or a configured command run); the description is used up."""
        self._nohang = None
        return self._userspace(
            stamp, "nohang", as_pid(victim["pid"]), victim.get("name", ""), text,
            uid=as_uid(victim.get("uid")),
            cmdline=victim.get("cmdline"),
            task_memcg=victim.get("cgroup_v2") or victim.get("cgroup_v1"),
            **action,
            **{key: as_int(victim[key]) for key in ("badness", "vm_rss_mib") if _is_int(victim.get(key, ""))},
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
        victim = _NOHANG_VICTIM_IS.match(body)
        if victim:  # 0.1: "Victim is NAME, pid: N, badness: B, …"
            for key, value in zip(("name", "pid", "badness"), victim.groups(), strict=True):
                self._nohang.setdefault(key, value)
            return
        for key, value in _NOHANG_FIELD.findall(body):
            self._nohang.setdefault(_NOHANG_KEYS.get(key.lower(), key.lower()), value)

    def _userspace(self, stamp: Stamp, killer: str, pid: int | None, name: str, text: str, *,
                   uid: int | None, cmdline: str | None = None, task_memcg: str | None = None,
                   **extra) -> list[OomKill]:
        """A user-space killer's victim, once: earlyoom sends SIGTERM, then SIGKILL."""
        key = (killer, pid, name)
        if key in self._victims:
            return []
        self._victims.append(key)
        name, cut = cap_name(name, PROCESS_CHARS)
        if cut:
            extra["process_cut"] = True
        return [OomKill(
            pid=pid,
            process=name,
            uid=uid,
            cmdline=cmdline,
            task_memcg=task_memcg,
            killer=killer,
            extra={"kill_line": text, **extra, "evidence": describe(stamp, text, killer)},
            **stamp.fields(),
        )]



class SystemdOomdEvents:
    """systemd-oomd's kills: its own "Killed/Marked …" line and PID 1's "systemd-oomd killed N
    process(es) in this unit" are one event, whichever comes first (or alone)."""

    def __init__(self) -> None:
        # events one of the two lines (its own, PID 1's) announced, awaiting the other
        self._open: deque[tuple[str, str]] = deque(maxlen=_USERSPACE_MEMORY)

    @property
    def open_events(self) -> tuple[tuple[str, str], ...]:
        """The events awaiting their other line."""
        return tuple(self._open)

    def killed(self, match: re.Match, text: str, stamp: Stamp) -> list[OomKill]:
        """systemd-oomd kills a cgroup, not a process: the record names the cgroup.

        pid is 0 (no process was named), process the cgroup's last path component,
        task_memcg the cgroup, memcg the monitored cgroup whose pressure was too high.
        """
        cgroup = match.group(1)
        name = cgroup.rstrip("/").rpartition("/")[2] or cgroup
        elided = name.startswith(_ELISIONS)
        if self._paired(name, "oomd"):
            return []  # PID 1 reported this kill first
        name, cut = cap_name(name, CGROUP_NAME_CHARS)
        extra: dict = {"kill_line": text, "reason": match.group(2) or None,
                       "evidence": describe(stamp, text, "systemd-oomd")}
        if cut or elided:
            extra["process_cut" if cut else "elided"] = True
        pressure = _OOMD_PRESSURE.match(match.group(3) or "")
        monitored = None
        if pressure:
            monitored = pressure.group(1)
            extra["pressure"], extra["pressure_limit"] = pressure.group(2), pressure.group(3)
        return [OomKill(
            pid=None,  # the log names no process: "null, never a guess"
            process=name,
            task_memcg=cgroup,
            memcg=monitored,
            unit=name if name.endswith(_UNIT_SUFFIXES) and not elided else None,
            killer="systemd-oomd",
            extra=extra,
            **stamp.fields(),
        )]

    def unit_line(self, text: str, stamp: Stamp) -> list[OomKill] | None:
        """PID 1's report of systemd-oomd's kill (the same event as systemd-oomd's own line),
        or a unit's 'oom-kill' result (corroboration only)."""
        if _OOM_RESULT.match(text):
            return []
        match = _OOMD_UNIT.match(text)
        if match is None:
            return None
        unit = match.group(1)
        if unit is None:  # a wrap took the unit off: it can only confirm an open event
            return [] if self._paired_any("pid1") else None
        if self._paired(unit, "pid1"):
            return []  # systemd-oomd's own line recorded it
        name, cut = cap_name(unit, CGROUP_NAME_CHARS)
        extra: dict = {"kill_line": text, "processes": as_int(match.group(2)),
                       "evidence": describe(stamp, text, "systemd-oomd (PID 1's report)")}
        if cut:
            extra["process_cut"] = True
        return [OomKill(pid=None, process=name, unit=name if not cut else None,
                        killer="systemd-oomd", extra=extra, **stamp.fields())]

    def _paired_any(self, side: str) -> bool:
        """Consume the latest event the other side announced, if any."""
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][1] != side:
                del self._open[i]
                return True
        return False

    def _paired(self, name: str, side: str) -> bool:
        """True when the other line of this systemd-oomd event came already (then it is
        consumed); else this side is remembered. An elided name matches by its tail."""
        tail = name.lstrip(".…")
        for i, (seen, seen_side) in enumerate(self._open):
            if seen_side != side and (seen == name or seen.endswith(tail) or name.endswith(seen.lstrip(".…"))):
                del self._open[i]
                return True
        self._open.append((name, side))
        return False


def _earlyoom_details(text: str) -> dict:
    """oom_score, badness, VmRSS (MiB) and cmdline from the tail of earlyoom's kill line."""
    details: dict = {}
    at = text.find('cmdline "')
    if at >= 0 and text.endswith('"'):  # the last field; the command line may hold anything
        details["cmdline"] = text[at + 9:-1]
        text = text[:at]
    for key, value in _EARLYOOM_DETAIL.findall(text):
        details.setdefault("vm_rss_mib" if key == "VmRSS" else key, as_int(value))
    return details



def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()



# ------------------------------------------------------------------ recognisers


@valueclass(slots=False)
class Recogniser:
    """One wording of a kill (or of its corroboration), with its evidence.

    `pattern` matches a message body (the wrapper taken off) from its start; `needles` are
    literal strings every such line holds (what a fast scanner looks for); `senders` the
    syslog tags or journal identifiers it may come from (a kernel message from anyone else
    is refused); `kill` is False for a line that only corroborates a kill recorded from
    another line. Its `samples`, real lines each with where it was published, are kept in
    parse/sample_lines.py under its name.
    """

    name: str
    killer: str
    pattern: re.Pattern
    needles: tuple[str, ...]
    senders: tuple[str, ...]
    kill: bool = True

    @property
    def samples(self) -> tuple[tuple[str, str], ...]:
        """Real lines this recogniser reads, each with where it was published. Loaded when
        first asked for (the tests read them; the daemon never does): 8 kB of text the
        daemon need not hold."""
        from watchdog_oom.parse.sample_lines import SAMPLES

        return SAMPLES[self.name]


_EARLYOOM_SENDERS = ("earlyoom",)
_OOMD_SENDERS = ("systemd-oomd",)
_SYSTEMD_SENDERS = ("systemd",)
_NOHANG_SENDERS = ("nohang", "nohang-desktop")

USERSPACE_RECOGNISERS = (
    Recogniser("earlyoom 1.3-1.8 sending SIGTERM/SIGKILL", "earlyoom", _EARLYOOM_SEND,
               ("sending SIG", " to process "), _EARLYOOM_SENDERS),
    Recogniser("earlyoom 1.0-1.2 killing with a signal number", "earlyoom", _EARLYOOM_SIGNAL,
               ("illing process ", " with signal "), _EARLYOOM_SENDERS),
    Recogniser("systemd-oomd 247+ Killed / 254+ Marked for killing", "systemd-oomd", _OOMD,
               (" due to ",), _OOMD_SENDERS),
    Recogniser("systemd-oomd 254+ Marked for killing, reason trimmed", "systemd-oomd", _OOMD_MARKED,
               (" for killing",), _OOMD_SENDERS),
    Recogniser("PID 1: systemd-oomd killed N process(es) in this unit", "systemd-oomd", _OOMD_UNIT,
               ("systemd-oomd killed ",), _SYSTEMD_SENDERS),
    Recogniser("a unit's result 'oom-kill' (corroboration)", "systemd-oomd", _OOM_RESULT,
               ("Failed with result 'oom-kill'",), _SYSTEMD_SENDERS, kill=False),
    Recogniser("nohang 0.1 / 0.2+ corrective action", "nohang", _NOHANG_SEND,
               (" to the victim",), _NOHANG_SENDERS),
    Recogniser("nohang 0.1+ victim handled by a configured command", "nohang", _NOHANG_COMMAND,
               ("the command: ",), _NOHANG_SENDERS),
)

"""The user-space OOM killers: systemd-oomd, earlyoom and nohang, one recogniser each.

Each killer writes its own wording to its own log (journal unit or syslog tag); the
recognisers here read a message body (the wrapper already taken off) into an OomKill.
"""

from __future__ import annotations

import re
from collections import deque

from watchdog_oom.model import OomKill
from watchdog_oom.parse.wrappers import Stamp

NOHANG_BLOCK_LINES = 100  # a nohang victim description ends with its action within this many lines

_TAG = r"(?:{}(?:\[\d+\])?:\s+)"
# earlyoom 1.x kill.c: 'sending SIGTERM to process 1234 uid 1000 "firefox": oom_score 600,
# VmRSS 5000 MiB, cmdline "…"' (1.0-1.2: "badness 600" and no uid; 1.8: oom_score_adj,
# "badness N KiB", "ordering x"). The name may hold '"': anchor on '": '.
_EARLYOOM_SEND = re.compile(
    _TAG.format("earlyoom") + r'?sending (SIGTERM|SIGKILL) to process (\d+)(?: uid (\d+))? "(.*?)": (.*)$'
)
_EARLYOOM_DETAIL = re.compile(r'(oom_score_adj|oom_score|badness|VmRSS):? (-?\d+)|cmdline "(.*)"$')
# Before "sending SIGTERM" (1.3, 2019) earlyoom named the signal by number, after a
# "Low Memory! At or below sigterm limits" or "low memory! at or below SIGTERM limits":
#   2018 (1.0-1.1): "Killing process 'bash' with signal 15, pid: 5874, badness: 538, VmRSS: 3160 MiB"
#   early 2019:     'killing process 27541 "bash" with signal 15: badness 550, VmRSS 7609 MiB'
_EARLYOOM_SIGNAL = re.compile(
    _TAG.format("earlyoom") + r"""?(?:Killing process '(.*)' with signal (\d+), pid: (\d+)"""
    r"""|killing process (\d+) "(.*)" with signal (\d+):)(.*)$"""
)
_SIGNAL_NAMES = {"9": "SIGKILL", "15": "SIGTERM"}
# earlyoom 0.x printed to stdout: "Out of memory! avail: 0 MiB < min: 587 MiB" and on the
# next line "Killing process 8230 sudo".
_EARLYOOM_BANNER = re.compile(_TAG.format("earlyoom") + r"?(?:Out of memory!|[Ll]ow [Mm]emory!) ")
_EARLYOOM_KILLING = re.compile(_TAG.format("earlyoom") + r"?Killing process (\d+) (.+)$")
# systemd-oomd (247+) kills a whole cgroup, src/oom/oomd-manager.c:
#   "Killed /x.service due to memory pressure for /y.slice being 80.00% > 50.00% for > 20s
#    with reclaim activity"
#   "Killed /x.scope due to swap used (…) / total (…) being more than 90.00%"   (247-248)
#   "Killed /x.scope due to memory used (…) / total (…) and swap used (…) / total (…) …" (249+)
#   "Marked /x.service for killing due to memory pressure for /y.slice being …" (later
#    releases queue the kill and carry it out at once; PID 1 then logs "systemd-oomd killed
#    N process(es) in this unit"; both wordings exist for swap too)
_OOMD = re.compile(
    _TAG.format("systemd-oomd")
    + r"?(?:Killed|Marked) (/.*?)(?: for killing)? due to (memory pressure|swap used|memory used)(.*)$"
)
_OOMD_PRESSURE = re.compile(r" for (\S+) being ([\d.]+%) > ([\d.]+%)")
_UNIT_SUFFIXES = (".service", ".scope", ".slice", ".socket", ".mount", ".swap")
# nohang describes its victim on several lines, then acts (src/nohang, 2019-2021):
#   0.1:  "Process with highest badness (found in 4 ms):" / "  PID: 477, Name: Xorg, badness: 12"
#         "Implement a corrective action:" / "  Send SIGTERM to the victim; total response time: 13 ms"
#   0.2+: "Victim status (found in 14ms):"
#         "  PID:       12297, name: tail, state: R, EUID: 1000, SID: 2030 (bash), lifetime: 3s"
#         "  badness:   824, oom_score:  824, oom_score_adj:  0" / "  cgroup_v2: /user.slice/…"
#         "  cmdline:   tail /dev/zero" / "Implementing a corrective action:"
#         "  Sending SIGTERM to the victim"
_NOHANG_TAG = re.compile(_TAG.format(r"nohang(?:-desktop)?"))
_NOHANG_START = ("Victim status", "Process with highest badness")
_NOHANG_FIELD = re.compile(r"(PID|name|E?UID|badness|VmRSS|RSS|cgroup_v[12]):\s+([^,(]*?)\s*(?=,|\(|$)", re.IGNORECASE)
_NOHANG_KEYS = {"euid": "uid", "rss": "vm_rss_mib", "vmrss": "vm_rss_mib"}
_NOHANG_CMDLINE = re.compile(r"cmdline:\s+(.*)$", re.IGNORECASE)
_NOHANG_SEND = re.compile(r"Send(?:ing)? (SIGTERM|SIGKILL) to the victim")
_USERSPACE_MEMORY = 32  # victims remembered to record earlyoom's SIGTERM+SIGKILL once


class UserspaceKillers:
    """The state the user-space killers' recognisers share: earlyoom's banner, nohang's
    description of its victim, and the victims seen lately (earlyoom's SIGTERM then SIGKILL
    of one process is one kill)."""

    def __init__(self) -> None:
        self._earlyoom_banner = False
        self._nohang: dict | None = None
        self._nohang_lines = 0
        self._victims: deque[tuple[str, int, str]] = deque(maxlen=_USERSPACE_MEMORY)

    @property
    def collecting(self) -> bool:
        """True while a description of a victim (earlyoom 0.x banner, nohang) is open."""
        return self._earlyoom_banner or self._nohang is not None

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
        if self._nohang is not None or text.startswith(("nohang", *_NOHANG_START)):
            self._nohang_line(text)
        if "emory!" in text and _EARLYOOM_BANNER.match(text):
            self._earlyoom_banner = True
            return []
        return None

    def _kill_line(self, text: str, stamp: Stamp, banner: bool) -> list[OomKill] | None:
        """A line naming a victim; None when "Kill" meant something else."""
        oomd = _OOMD.match(text)
        if oomd:
            return self._oomd(oomd, text, stamp)
        signal = _EARLYOOM_SIGNAL.match(text)
        if signal:
            return self._earlyoom_signal(signal, text, stamp)
        killing = _EARLYOOM_KILLING.match(text)
        if killing and (banner or text.startswith("earlyoom")):
            return self._userspace(
                stamp, "earlyoom", int(killing.group(1)), killing.group(2), text, uid=None
            )
        return None

    def _earlyoom_signal(self, match: re.Match, text: str, stamp: Stamp) -> list[OomKill]:
        """earlyoom 1.0-1.2's victim line, which names the signal by its number."""
        quoted, number, pid = match.group(1, 2, 3)
        if pid is None:
            pid, quoted, number = match.group(4, 5, 6)
        details = _earlyoom_details(match.group(7))
        return self._userspace(
            stamp, "earlyoom", int(pid), quoted, text, uid=None,
            signal=_SIGNAL_NAMES.get(number, number), **details,
        )

    # ----------------------------------------------------------- report structure

    def _oomd(self, match: re.Match, text: str, stamp: Stamp) -> list[OomKill]:
        """systemd-oomd kills a cgroup, not a process: the record names the cgroup.

        pid is 0 (no process was named), process the cgroup's last path component,
        task_memcg the cgroup, memcg the monitored cgroup whose pressure was too high.
        """
        cgroup = match.group(1)
        name = cgroup.rstrip("/").rpartition("/")[2] or cgroup
        extra: dict = {"kill_line": text, "reason": match.group(2)}
        pressure = _OOMD_PRESSURE.match(match.group(3))
        monitored = None
        if pressure:
            monitored = pressure.group(1)
            extra["pressure"], extra["pressure_limit"] = pressure.group(2), pressure.group(3)
        return [OomKill(
            pid=None,  # the log names no process: "null, never a guess"
            process=name,
            task_memcg=cgroup,
            memcg=monitored,
            unit=name if name.endswith(_UNIT_SUFFIXES) else None,
            killer="systemd-oomd",
            extra=extra,
            **stamp.fields(),
        )]

    def _send_line(self, text: str, stamp: Stamp) -> list[OomKill] | None:
        """earlyoom's "sending SIGTERM to process …" or nohang's "Send SIGTERM to the victim"."""
        send = _EARLYOOM_SEND.match(text)
        if send:
            details = _earlyoom_details(send.group(5))
            return self._userspace(
                stamp, "earlyoom", int(send.group(2)), send.group(4), text,
                uid=int(send.group(3)) if send.group(3) else None,
                cmdline=details.pop("cmdline", None),
                signal=send.group(1), **details,
            )
        victim = self._nohang
        body = _NOHANG_TAG.sub("", text, count=1).strip()
        action = _NOHANG_SEND.match(body)
        if not action:
            return None
        if victim is None or not victim.get("pid", "").isdigit():
            return []
        self._nohang = None
        return self._userspace(
            stamp, "nohang", int(victim["pid"]), victim.get("name", ""), text,
            uid=int(victim["uid"]) if victim.get("uid", "").isdigit() else None,
            cmdline=victim.get("cmdline"),
            task_memcg=victim.get("cgroup_v2") or victim.get("cgroup_v1"),
            signal=action.group(1),
            **{key: int(victim[key]) for key in ("badness", "vm_rss_mib") if _is_int(victim.get(key, ""))},
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
        for key, value in _NOHANG_FIELD.findall(body):
            self._nohang.setdefault(_NOHANG_KEYS.get(key.lower(), key.lower()), value)

    def _userspace(self, stamp: Stamp, killer: str, pid: int, name: str, text: str, *,
                   uid: int | None, cmdline: str | None = None, task_memcg: str | None = None,
                   **extra) -> list[OomKill]:
        """A user-space killer's victim, once: earlyoom sends SIGTERM, then SIGKILL."""
        key = (killer, pid, name)
        if key in self._victims:
            return []
        self._victims.append(key)
        return [OomKill(
            pid=pid,
            process=name,
            uid=uid,
            cmdline=cmdline,
            task_memcg=task_memcg,
            killer=killer,
            extra={"kill_line": text, **extra},
            **stamp.fields(),
        )]



def _earlyoom_details(text: str) -> dict:
    """oom_score, badness, VmRSS (MiB) and cmdline from the tail of earlyoom's kill line."""
    details: dict = {}
    for key, value, cmdline in _EARLYOOM_DETAIL.findall(text):
        if cmdline:
            details["cmdline"] = cmdline
        elif key:
            details.setdefault("vm_rss_mib" if key == "VmRSS" else key, int(value))
    return details



def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


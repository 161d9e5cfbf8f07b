"""The ways people and machines wrap a kernel log before it reaches `import`, as functions.

Each wrapper takes the lines of a real excerpt (tests/data) and returns the text a user
would paste or a tool would write: grep -Hn, cat -n, nl, OpenWrt logread, RFC 5424, dmesg -T
in French and Japanese, journalctl -o json, Kubernetes event JSON, markdown bullets,
--color=always, quoted-printable, hard wraps at 60-80 columns, mail quotes, CRLF, HTML
entities, rsyslog #012 flattening. The texts are generated, never stored.
"""

from __future__ import annotations

import html
import json
import quopri
import re
import textwrap
from collections.abc import Callable

from watchdog_oom.parse import RECOGNISERS, strip_wrapper

Wrapper = Callable[[list[str]], str]

_TAG = re.compile(r"([\w.@/-]+)(?:\[(\d+)\])?: ")
_USERSPACE = [r for r in RECOGNISERS if r.killer != "kernel"]


def body_and_tag(line: str) -> tuple[str, str, str | None]:
    """A line's message without its wrapper, who sent it, and the sender's pid."""
    text, _, _ = strip_wrapper(line, year=2024)
    text = text.replace("\n", " ")
    tag = _TAG.match(text)
    if tag and (tag.group(1) in ("kernel", "systemd") or any(tag.group(1) in r.senders for r in _USERSPACE)):
        return text[tag.end():], tag.group(1), tag.group(2)
    for recogniser in _USERSPACE:
        if recogniser.pattern.search(text):  # also after a bullet or a quote
            return text, recogniser.senders[0], "1"
    return text, "kernel", None


def _numbered(fmt: str) -> Wrapper:
    return lambda lines: "\n".join(fmt.format(n=n, line=line) for n, line in enumerate(lines, 1)) + "\n"


def _rewrapped(make: Callable[[int, str, str, str | None], str]) -> Wrapper:
    def wrap(lines: list[str]) -> str:
        return "".join(make(n, *body_and_tag(line)) + "\n" for n, line in enumerate(lines))
    return wrap


def _logread(n: int, body: str, tag: str, pid: str | None) -> str:
    sender = "kernel" if tag == "kernel" else f"{tag}[{pid or 1}]"
    facility = "kern.warn" if tag == "kernel" else "daemon.err"
    return f"Sun Jun 29 15:{n // 60 % 60:02d}:{n % 60:02d} 2025 {facility} {sender}: {body}"


def _rfc5424(n: int, body: str, tag: str, pid: str | None) -> str:
    return f"<3>1 2025-06-29T15:57:{n % 60:02d}.000000+00:00 host {tag} {pid or '-'} - - {body}"


def _tagged(body: str, tag: str, pid: str | None) -> str:
    return body if tag == "kernel" else f"{tag}[{pid or 1}]: {body}"


def _dmesg_fr(n: int, body: str, tag: str, pid: str | None) -> str:
    return f"[dim. juin 29 15:57:{n % 60:02d} 2025] {_tagged(body, tag, pid)}"


def _dmesg_ja(n: int, body: str, tag: str, pid: str | None) -> str:
    return f"[日  6月 29 15:57:{n % 60:02d} 2025] {_tagged(body, tag, pid)}"


def _journal_json(n: int, body: str, tag: str, pid: str | None) -> str:
    entry = {"__REALTIME_TIMESTAMP": str(1751212631000000 + n), "_TRANSPORT": "kernel" if tag == "kernel" else "syslog",
             "SYSLOG_IDENTIFIER": tag, "MESSAGE": body, "_HOSTNAME": "host"}
    if pid:
        entry["_PID"] = pid
    return json.dumps(entry, ensure_ascii=False)


def _k8s_events(lines: list[str]) -> str:
    events = [{"kind": "Event", "type": "Warning", "reason": "OOMKilling", "source": {"component": "kernel-monitor"},
               "message": _tagged(*body_and_tag(line))} for line in lines]
    return json.dumps({"apiVersion": "v1", "items": events}, indent=2, ensure_ascii=False) + "\n"


_TIME = re.compile(r"^(\s*\S+ +\d+ [\d:]+|\s*\[[^\]]*\]|\S+T\S+)")


def _colour(lines: list[str]) -> str:
    """dmesg --color=always (time and facility coloured), then grep --color=always Killed."""
    out = []
    for line in lines:
        line = _TIME.sub(lambda m: f"\x1b[32m{m.group()}\x1b[0m", line, count=1)
        line = line.replace("kernel:", "\x1b[33mkernel:\x1b[0m", 1)
        out.append(line.replace("Killed", "\x1b[01;31m\x1b[KKilled\x1b[m\x1b[K"))
    return "\n".join(out) + "\n"


def _quoted_printable(lines: list[str]) -> str:
    return quopri.encodestring(("\n".join(lines) + "\n").encode()).decode("ascii")


def _terminal(width: int) -> Wrapper:
    """A terminal (or a pager) that cuts every line at its width."""
    def wrap(lines: list[str]) -> str:
        out = []
        for line in lines:
            out += [line[i:i + width] for i in range(0, max(len(line), 1), width)]
        return "\n".join(out) + "\n"
    return wrap


def _mail(width: int, quote: str = "") -> Wrapper:
    """A mail client: words wrapped at `width`, each line quoted with `quote`."""
    def wrap(lines: list[str]) -> str:
        out = []
        for line in lines:
            out += textwrap.wrap(line, width - len(quote), break_on_hyphens=False, drop_whitespace=True) or [""]
        return "".join(f"{quote}{line}\n" for line in out)
    return wrap


def _rsyslog(lines: list[str]) -> str:
    """journald forwarding multi-line messages to rsyslog: groups of lines flattened with #012."""
    out = []
    for start in range(0, len(lines), 4):
        group = lines[start:start + 4]
        out.append(group[0] + "".join("#012" + body_and_tag(line)[0] for line in group[1:]))
    return "\n".join(out) + "\n"


WRAPPERS: dict[str, Wrapper] = {
    "grep-Hn": _numbered("/var/log/kern.log:{n}:{line}"),
    "cat-n": _numbered("{n:6d}\t{line}"),
    "nl": _numbered("{n:>4}  {line}"),
    "logread": _rewrapped(_logread),
    "rfc5424": _rewrapped(_rfc5424),
    "dmesg-T-fr": _rewrapped(_dmesg_fr),
    "dmesg-T-ja": _rewrapped(_dmesg_ja),
    "journal-json": lambda lines: _rewrapped(_journal_json)(lines),
    "k8s-events": _k8s_events,
    "markdown-bullets": _numbered("- {line}"),
    "markdown-fenced": lambda lines: "```\n" + "\n".join(lines) + "\n```\n",
    "color": _colour,
    "quoted-printable": _quoted_printable,
    "terminal-60": _terminal(60),
    "terminal-80": _terminal(80),
    "mail-wrap-72": _mail(72),
    "mail-quoted-76": _mail(76, "> "),
    "mail-quoted-twice": _numbered("> > {line}"),
    "crlf": lambda lines: "\r\n".join(lines) + "\r\n",
    "html-entities": lambda lines: html.escape("\n".join(lines) + "\n"),
    "rsyslog-012": _rsyslog,
}
# Wrappers that may cut a kill's own words ("Killed pro|cess 12"): a kill is expected there
# where `grep 'Kill(ed)? process N'` still finds it, as a user's grep would.
CUTTING = {"terminal-60", "terminal-80", "mail-wrap-72", "mail-quoted-76", "quoted-printable"}

"""Pure rendering of a Notification: the facts every channel shows, and its plain-text form.

Nothing here escapes for a particular channel. Values are made printable (control,
line-separator and bidirectional-override characters shown as escapes, so a process
name cannot forge lines or reverse text) and each channel escapes them again for its
own format (Slack mrkdwn, HTML, mail headers) where it renders them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..model import Notification

# C0 and C1 controls, DEL, Unicode line/paragraph separators and bidi controls
# (the "Trojan Source" characters, CVE-2021-42574).
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(value: object) -> str:
    """`value` as one line of text, unprintable characters shown as \\n, \\x1b, \\u202e."""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def is_resolved(n: Notification) -> bool:
    """Whether `n` says a condition has ended (reason "resolved" or a *.resolved kind)."""
    return n.reason == "resolved" or n.kind.endswith(".resolved")


def headline(n: Notification) -> str:
    """One line: "RESOLVED: summary" or "CRITICAL: summary"."""
    state = "RESOLVED" if is_resolved(n) else n.severity.upper()
    return f"{state}: {printable(n.summary)}"


def format_kb(kb: int | float) -> str:
    """A size in kB as a person reads it: "512 kB", "12.3 MiB", "1.9 GiB"."""
    if abs(kb) < 1024:
        return f"{kb:.0f} kB"
    if abs(kb) < 1024 * 1024:
        return f"{kb / 1024:.1f} MiB"
    return f"{kb / (1024 * 1024):.1f} GiB"


def kills(n: Notification) -> list[Mapping[str, Any]]:
    """The kill records an "oom.kill" notification reports (empty for other kinds)."""
    if n.kind != "oom.kill":
        return []
    return [k for k in n.data.get("kills", ()) if isinstance(k, Mapping)]


def kill_facts(kill: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs describing one kill record; a field the record lacks is left out."""
    get = kill.get
    victim = printable(get("process") or "?")
    ids = [f"pid {get('pid')}"] if get("pid") is not None else []
    if get("uid") is not None:
        ids.append(f"uid {get('uid')}")
    facts = [("Victim", f"{victim} ({', '.join(ids)})" if ids else victim)]
    for label, key in (("Command line", "cmdline"), ("Unit", "unit"), ("Cgroup", "task_memcg")):
        if get(key):
            facts.append((label, printable(get(key))))
    if get("memcg") and get("memcg") != get("task_memcg"):
        facts.append(("Limit hit in", printable(get("memcg"))))
    if get("constraint"):
        facts.append(("Constraint", printable(get("constraint"))))
    sizes = [
        f"{name} {format_kb(value)}"
        for name, key in (("anon-rss", "anon_rss_kb"), ("total-vm", "total_vm_kb"))
        if isinstance(value := get(key), (int, float))
    ]
    if sizes:
        facts.append(("Memory", ", ".join(sizes)))
    if get("invoker"):
        invoker = printable(get("invoker"))
        if get("invoker_pid") is not None:
            invoker += f" (pid {get('invoker_pid')})"
        facts.append(("Invoker", invoker))
    if get("killer") and get("killer") != "kernel":
        facts.append(("Killed by", printable(get("killer"))))
    if get("time"):
        facts.append(("Time", printable(get("time"))))
    return facts


def data_facts(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs for the figures of a notification other than its kill list."""
    return [
        (printable(key).replace("_", " "), _figure(key, value))
        for key, value in data.items()
        if key != "kills" and key not in _INTERNAL and value is not None
    ]


# Bookkeeping of the outbox and of alert episodes: not figures a person needs.
_INTERNAL = frozenset({"alert_id", "alert_kind", "alert_severity", "key", "by_process", "resolved"})


def _victim(v: Mapping[str, Any]) -> str:
    """One likely victim in a line: "java (pid 101, 8.6 GiB, oom_score 1350, critical)"."""
    parts = [f"pid {v.get('pid')}"]
    if isinstance(v.get("rss_kb"), (int, float)):
        parts.append(format_kb(v["rss_kb"]))
    if v.get("oom_score") is not None or v.get("badness") is None:
        parts.append(f"oom_score {v.get('oom_score')}")
    else:  # inside a memory cgroup: the kernel's points against the cgroup's limit
        parts.append(f"badness {v.get('badness_permille')}‰ of the limit")
    if v.get("oom_score_adj"):
        parts.append(f"oom_score_adj {v.get('oom_score_adj')}")
    if v.get("critical"):
        parts.append("critical")
    return f"{printable(v.get('process'))} ({', '.join(parts)})"


def _figure(key: str, value: Any) -> str:
    if key == "victims" and isinstance(value, list):
        return "; ".join(_victim(v) for v in value if isinstance(v, Mapping)) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and key.endswith("_kb"):
        return f"{format_kb(value)} ({value:,.0f} kB)"
    if isinstance(value, (int, float)) and key.endswith("_bytes") and not isinstance(value, bool):
        return f"{format_kb(value / 1024)} ({value:,.0f} bytes)"
    if isinstance(value, float):
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return f"{text} %" if key.endswith("_percent") else text
    if isinstance(value, (dict, list, tuple)):
        return printable(json.dumps(value, default=str, ensure_ascii=False))
    return printable(value) + (" %" if key.endswith("_percent") else "")


def render_text(n: Notification) -> str:
    """The notification as plain text: the e-mail body and Slack's notification fallback."""
    lines = [
        headline(n),
        "",
        f"Host: {printable(n.host)}",
        f"Time: {printable(n.time)}",
        f"Severity: {printable(n.severity)}",
    ]
    if is_resolved(n):
        lines.append("The condition has resolved.")
    reported = kills(n)
    for number, kill in enumerate(reported, 1):
        lines += ["", f"Kill {number} of {len(reported)}:" if len(reported) > 1 else "Kill:"]
        lines += [f"  {label}: {value}" for label, value in kill_facts(kill)]
    figures = data_facts(n.data)
    if figures:
        lines += ["", "Details:"]
        lines += [f"  {label}: {value}" for label, value in figures]
    return "\n".join(lines) + "\n"

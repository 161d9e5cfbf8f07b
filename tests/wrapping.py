"""The ways people and machines wrap a kernel log before it reaches `import`, as functions.

Each wrapper takes the lines of a real excerpt (tests/data) and returns the text a user
would paste or a tool would write: grep -Hn, cat -n, nl, OpenWrt logread, RFC 5424, dmesg -T
in French and Japanese, journalctl -o json, Kubernetes event JSON, log stores' JSON exports
(Google Cloud Logging, CloudWatch, Elasticsearch, Splunk, Loki, Docker's json-file, Kibana's CSV), markdown bullets,
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


def _export(make: Callable[[int, str, str, str | None], dict]) -> Wrapper:
    """One JSON object a line, as a log store exports them (NDJSON)."""
    return _rewrapped(lambda n, body, tag, pid: json.dumps(make(n, body, tag, pid), ensure_ascii=False))


def _stamp(n: int) -> str:
    return f"2025-06-29T15:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z"


def _gcp_entry(n: int, body: str, tag: str, pid: str | None) -> dict:
    """Google Cloud Logging (gcloud logging read --format=json): textPayload, timestamp."""
    return {"insertId": f"x{n}", "logName": f"projects/p/logs/{tag}", "receiveTimestamp": _stamp(n),
            "resource": {"type": "gce_instance", "labels": {"instance_id": "1"}}, "textPayload": body,
            "timestamp": _stamp(n)}


def _cloudwatch_entry(n: int, body: str, tag: str, pid: str | None) -> dict:
    """AWS CloudWatch Logs Insights exported as JSON: @timestamp, @message, @logStream."""
    return {"@timestamp": _stamp(n).replace("T", " ").rstrip("Z"), "@logStream": "i-0abc",
            "@message": _tagged(body, tag, pid)}


def _elastic_hit(n: int, body: str, tag: str, pid: str | None) -> dict:
    """An Elasticsearch hit (a search's _source): ECS host.name, @timestamp, message."""
    return {"_index": "logs", "_id": str(n), "_source": {"@timestamp": _stamp(n), "host": {"name": "host"},
                                                         "message": body, "process": {"name": tag}}}


def _splunk_result(n: int, body: str, tag: str, pid: str | None) -> dict:
    """Splunk's REST export (output_mode=json): each event's text in result._raw."""
    sender = "kernel" if tag == "kernel" else f"{tag}[{pid or 1}]"
    return {"preview": False, "result": {"_raw": f"Jun 29 15:57:{n % 60:02d} host {sender}: {body}",
                                         "_time": _stamp(n), "host": "host"}}


def _loki_line(n: int, body: str, tag: str, pid: str | None) -> dict:
    """Grafana Loki's logcli query --output=jsonl: labels, line, timestamp."""
    return {"labels": {"job": "varlogs", "host": "host"}, "line": _tagged(body, tag, pid), "timestamp": _stamp(n)}


def _docker_json(n: int, body: str, tag: str, pid: str | None) -> dict:
    """Docker's json-file log driver: a container's output (here a syslog relay's), time."""
    return {"log": _tagged(body, tag, pid) + "\n", "stream": "stdout", "time": _stamp(n)}


def _csv(lines: list[str]) -> str:
    """Kibana's "Generate CSV" of a search: a header, then each line's time, host and message
    (quoted, its quotes doubled)."""
    rows = ['"@timestamp","host.name",message']
    for n, line in enumerate(lines):
        body, tag, pid = body_and_tag(line)
        message = _tagged(body, tag, pid).replace('"', '""')
        rows.append(f'"{_stamp(n)}",host,"{message}"')
    return "\n".join(rows) + "\n"


def _json_array(lines: list[str]) -> str:
    """Google Cloud Logging's API answers saved as they came, one page a line: an array of
    up to 100 entries (an answer longer than parse.LINE_CHARS is cut and said to be)."""
    entries = [_gcp_entry(n, *body_and_tag(line)) for n, line in enumerate(lines)]
    return "".join(json.dumps(entries[at:at + 100], ensure_ascii=False) + "\n" for at in range(0, len(entries), 100))


def _api_pages(lines: list[str]) -> str:
    """The same pages as the API's objects: {"entries": [...], "nextPageToken": ...}."""
    entries = [_gcp_entry(n, *body_and_tag(line)) for n, line in enumerate(lines)]
    return "".join(json.dumps({"entries": entries[at:at + 100], "nextPageToken": str(at)}, ensure_ascii=False) + "\n"
                   for at in range(0, len(entries), 100))


def _json_array_pretty(lines: list[str]) -> str:
    """The same array pretty-printed (the Logs Explorer's "Download" as JSON)."""
    return json.dumps([_gcp_entry(n, *body_and_tag(line)) for n, line in enumerate(lines)], indent=2,
                      ensure_ascii=False) + "\n"


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


# A kernel line that prints a cgroup's path ends its record (printk's own "\n" after the path):
# no multi-line message goes on past one (review R38: past a path the parser cuts nothing).
_NAMES_CGROUP = re.compile(r"oom-kill:constraint=|stats for /|memcg=/|Tasks? in /|limit of /|cpuset=")


def _rsyslog(lines: list[str]) -> str:
    """journald forwarding multi-line messages to rsyslog: groups of lines flattened with #012
    (up to 4; a line naming a cgroup ends its group, as it ends the kernel's record)."""
    groups: list[list[str]] = []
    for line in lines:
        if not groups or len(groups[-1]) == 4 or _NAMES_CGROUP.search(groups[-1][-1]):
            groups.append([])
        groups[-1].append(line)
    out = [group[0] + "".join("#012" + body_and_tag(line)[0] for line in group[1:]) for group in groups]
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
    "gcp-logging-json": _export(_gcp_entry),
    "gcp-logging-array": _json_array,
    "gcp-logging-array-pretty": _json_array_pretty,
    "gcp-logging-api-pages": _api_pages,
    "cloudwatch-json": _export(_cloudwatch_entry),
    "elasticsearch-hits": _export(_elastic_hit),
    "splunk-export": _export(_splunk_result),
    "loki-jsonl": _export(_loki_line),
    "docker-json-file": _export(_docker_json),
    "kibana-csv": _csv,
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

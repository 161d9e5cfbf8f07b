"""What a kill was read from (issue 11 item 6): `import` reads pasted text of any shape, so
it says per kill which of the killer's lines it saw, in which wording, inside which
wrappers, and whether the line carried its sender's own tag.

The evidence is a small JSON-ready dict, stored under the kill's `extra["evidence"]`:

  read_from  "kernel report", "kernel kill line alone", "kernel selection line alone"
             ("Kill process … or sacrifice child" with no "Killed process" line),
             or the user-space killer ("earlyoom", "systemd-oomd", "nohang")
  lines      (kernel) the report's messages seen: header, memory state, task table,
             memcg limit, constraint, selection, kill line
  wording    the recogniser that read the kill line (its name says the release)
  format     the log format of the line (syslog, dmesg -T, journalctl JSON, ...), or null
  wrappers   what was undone to read it: outer wrappers (grep -n, mail quote, bullet),
             enclosures (JSON, quoted-printable, HTML entities, ANSI colours, rsyslog
             #012), "rejoined N lines" for a kill line a wrap had cut
  tag        the syslog tag or journal sender of the line ("kernel" for the kernel's own,
             _TRANSPORT=kernel), or null where the line names none (dmesg, a bare paste)
"""

from __future__ import annotations

from typing import Any

from watchdog_oom.parse.wrappers import Stamp, line_format, line_tag

_REJOINED = "rejoined"
_SENDERS = ("earlyoom", "systemd-oomd", "systemd", "nohang", "nohang-desktop", "kernel")


def describe(stamp: Stamp, kill_line: str, read_from: str, lines: tuple[str, ...] = (),
             wording: str | None = None) -> dict[str, Any]:
    """The evidence of one kill read from `kill_line`, found at `stamp`; `wording`, where the
    caller knows it, is the name of the recogniser that reads the kill line (else looked for)."""
    evidence: dict[str, Any] = {"read_from": read_from}
    if lines:
        evidence["lines"] = list(lines)
    evidence["wording"] = wording or _wording(kill_line)
    raw = stamp.raw
    if raw is None:  # a live source: the message as the source (kmsg, journal) delivered it
        evidence.update(format=stamp.source, wrappers=[], tag=stamp.sender)
        return evidence
    found: str | None
    wrappers: list[str]
    if stamp.form is not None and not stamp.notes:  # most lines: a known wrapper, nothing undone
        found, wrappers = stamp.form, []
    else:
        found, wrappers = _enclosures(stamp, raw)
    if "#012" in raw:
        wrappers.append("rsyslog #012")
    joins = stamp.notes.count(_REJOINED) if stamp.notes else 0
    if joins:
        wrappers.append(f"rejoined {joins + 1} lines")
    evidence["format"] = found
    evidence["wrappers"] = wrappers
    evidence["tag"] = stamp.sender or _tag(raw, kill_line)
    return evidence


def _enclosures(stamp: Stamp, raw: str) -> tuple[str | None, list[str]]:
    """The format of the line `raw` and what was undone to read it, before rsyslog's #012 and
    the rejoining: its outer wrappers, then the enclosures its notes name."""
    found, outers = (stamp.form, ()) if stamp.form is not None else line_format(raw)
    wrappers = list(outers)
    notes = [note for note in stamp.notes if note != _REJOINED]
    if "journal JSON" in notes:
        found = "journalctl -o json"
        notes.remove("journal JSON")
    return found, wrappers + notes


def summary(evidence: dict[str, Any] | None) -> str:
    """One line for a table: what was read, in what, from whom."""
    if not evidence:
        return ""
    read_from = evidence.get("read_from") or "?"
    parts = [read_from if read_from.startswith("kernel") else evidence.get("wording") or read_from]
    if evidence.get("lines") and read_from == "kernel report":
        parts[0] += f" ({', '.join(evidence['lines'])})"
    if evidence.get("format"):
        parts.append(evidence["format"])
    parts += evidence.get("wrappers") or []
    tag = evidence.get("tag")
    parts.append(f"tag {tag}" if tag else "no tag")
    return "; ".join(parts)


def _tag(raw: str, kill_line: str) -> str | None:
    """The tag before the kill line: a user-space killer's own "name[pid]: " is part of it."""
    head = kill_line[:80]
    colon = head.find(": ")
    if colon > 0:
        name = head[:colon].partition("[")[0]
        if name in _SENDERS:
            return name
    return line_tag(raw, kill_line)


def _wording(kill_line: str) -> str | None:
    """The name of the recogniser that reads the kill line, if one does."""
    from watchdog_oom.parse.anchors import RECOGNISERS  # anchors imports the readers that call here

    body = kill_line
    colon = body.find(": ")
    for text in (body, body[colon + 2:] if colon > 0 else None):
        if text is None:
            continue
        for recogniser in RECOGNISERS:
            if any(n in text for n in recogniser.needles) and recogniser.pattern.match(text):
                return recogniser.name
    return None

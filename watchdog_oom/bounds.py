"""Size limits on untrusted text: one place that states them, and the functions that apply them.

Process names, command lines, cgroup paths and whole log lines are written by any local
user (a 1 MB process name, a 100 MB line in /var/log/syslog), so no such value is kept,
sent or logged whole beyond these caps. A capped value keeps its start and ends with a
marker that says it was truncated and how long it was, so nobody mistakes it for the
whole. The caps are generous for real values: the kernel's own limits are below them.

This module imports nothing from the package but the model, so every layer may use it.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Callable
from typing import Any

from watchdog_oom.model import OomKill

# The kernel's comm is 15 bytes (TASK_COMM_LEN 16, include/linux/sched.h); user-space
# killers print the same name. Anything longer is a forged or garbled line.
PROCESS_MAX = 255  # the column's size
# A page: what /proc/PID/cmdline returned whole before Linux 4.2; a longer one is kept
# to its start, which says what the process was.
CMDLINE_MAX = 4096
# PATH_MAX (include/uapi/linux/limits.h): cgroup paths, unit names, invoker names.
PATH_MAX = 4096
UNIT_MAX = 256  # systemd's UNIT_NAME_MAX
# Any other stored text of a kill: the raw kill line, memory-state lines, extras.
TEXT_MAX = 8192
# A log message of the daemon (its arguments included).
LOG_MESSAGE_MAX = 8192
# A webhook request body, in bytes of UTF-8 JSON.
BODY_MAX = 256 * 1024
# How many memory-state lines one report keeps (Mem-Info prints about 30 per node).
MEMORY_INFO_MAX = 400

MARKER = "…[truncated: {n} characters]"


def cap(text: str, limit: int) -> str:
    """`text` whole when it fits in `limit` characters, else its start and the truncation
    marker, `limit` characters in all (a column of that size takes it)."""
    if len(text) <= limit:
        return text
    marker = MARKER.format(n=len(text))
    if limit <= len(marker):
        return text[:limit]
    return text[:limit - len(marker)] + marker


def cap_opt(text: str | None, limit: int) -> str | None:
    """`cap` for a value that may be None."""
    return None if text is None else cap(text, limit)


def no_nul(text: Any) -> Any:
    """`text` with each NUL written `\\x00`, as the kernel escapes one in /dev/kmsg; any other
    value as it is. A NUL comes from a damaged log, and PostgreSQL's text columns cannot hold
    one: stored with it, the row is refused (SQLite would keep it)."""
    return text.replace("\x00", "\\x00") if isinstance(text, str) and "\x00" in text else text


def is_truncated(text: str | None) -> bool:
    """Whether `text` ends with the truncation marker."""
    return text is not None and text.endswith(" characters]") and "…[truncated: " in text


def cap_value(value: Any, limit: int = TEXT_MAX, depth: int = 0) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string capped at `limit`."""
    if isinstance(value, str):
        return cap(value, limit)
    if depth > 20:
        return None  # nothing we build nests this deep
    if isinstance(value, dict):
        return {cap(str(k), 256): cap_value(v, limit, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [cap_value(v, limit, depth + 1) for v in value]
    return value


def cap_kill(kill: OomKill) -> OomKill:
    """The kill with every text field within its cap (the same value when all fit)."""
    changes: dict[str, Any] = {}
    if not _texts_fit(kill):
        for (name, limit), value in zip(KILL_TEXT_CAPS, _kill_texts(kill), strict=True):
            if isinstance(value, str) and len(value) > limit:
                changes[name] = cap(value, limit)
    if kill.task_table and max(map(len, map(_task_name, kill.task_table))) > PROCESS_MAX:
        changes["task_table"] = tuple(dataclasses.replace(t, name=cap(t.name, PROCESS_MAX)) if
                                      len(t.name) > PROCESS_MAX else t for t in kill.task_table)
    if kill.memory_info and (len(kill.memory_info) > MEMORY_INFO_MAX or max(map(len, kill.memory_info)) > TEXT_MAX):
        changes["memory_info"] = tuple(cap(line, TEXT_MAX) for line in kill.memory_info[:MEMORY_INFO_MAX])
    if kill.extra and too_long(kill.extra):
        changes["extra"] = cap_value(kill.extra)
    return kill.replace(**changes) if changes else kill


# A kill's text fields and their caps (store/rows.py caps an import's rows by them too),
# and one call that reads them all.
KILL_TEXT_CAPS = (("process", PROCESS_MAX), ("cmdline", CMDLINE_MAX), ("memcg", PATH_MAX),
                  ("task_memcg", PATH_MAX), ("unit", UNIT_MAX), ("invoker", PROCESS_MAX), ("constraint", 64),
                  ("gfp_mask", PROCESS_MAX), ("source", PATH_MAX), ("boot_id", 64), ("host", PROCESS_MAX))
_kill_texts = operator.attrgetter(*(name for name, _ in KILL_TEXT_CAPS))
_task_name = operator.attrgetter("name")
# The fields in two groups, each with its smallest cap: most kills' texts are within it.
_WIDE_CAP = min(limit for _, limit in KILL_TEXT_CAPS if limit >= PROCESS_MAX)
_NARROW_CAP = min(limit for _, limit in KILL_TEXT_CAPS)
_kill_wide_texts = operator.attrgetter(*(name for name, limit in KILL_TEXT_CAPS if limit >= PROCESS_MAX))
_kill_narrow_texts = operator.attrgetter(*(name for name, limit in KILL_TEXT_CAPS if limit < PROCESS_MAX))


def _texts_fit(kill: OomKill) -> bool:
    """Whether every text field is within even the smallest cap of its group (in C calls:
    an import checks every kill); False when unsure, and the caller looks field by field."""
    try:
        return (max(map(len, filter(None, _kill_wide_texts(kill))), default=0) <= _WIDE_CAP
                and max(map(len, filter(None, _kill_narrow_texts(kill))), default=0) <= _NARROW_CAP)
    except TypeError:  # not text: left as it is, field by field
        return False


def too_long(value: Any, limit: int = TEXT_MAX) -> bool:
    """Whether a string in `value` (dicts, lists, tuples within) is longer than `limit`, or a
    dict's key longer than 256: what cap_value would change. Loops, and a call per nested
    container only (an import checks every kill's extra)."""
    if isinstance(value, str):
        return len(value) > limit
    if isinstance(value, dict):
        if value and max(map(len, map(str, value))) > 256:
            return True
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return False
    for item in value:
        if isinstance(item, str):
            if len(item) > limit:
                return True
        elif isinstance(item, (dict, list, tuple)) and too_long(item, limit):
            return True
    return False


def fit_document(document: dict[str, Any], dumps: Callable[[Any], bytes], limit: int = BODY_MAX,
                 lists: tuple[str, ...] = ("data", "kills")) -> tuple[bytes, int]:
    """`document` serialised by `dumps` within `limit` bytes; returns the body and how many
    entries of the list at path `lists` were left out to get there.

    First every string is capped (at TEXT_MAX, then shorter); if that is not enough, the
    list's last entries go, newest last, until it fits. The caller marks the document
    (`truncated`) before it is passed in; the marker survives every step.
    """
    body = dumps(document)
    if len(body) <= limit:
        return body, 0
    for field_limit in (TEXT_MAX, 1024, 128):
        document = cap_value(document, field_limit)
        body = dumps(document)
        if len(body) <= limit:
            return body, 0
    entries = _list_at(document, lists)
    dropped = 0
    while entries and len(body) > limit:
        # Halve what is left over until it fits: a few serialisations, not one per entry.
        keep = len(entries) // 2
        dropped += len(entries) - keep
        del entries[keep:]
        body = dumps(document)
    return body, dropped


def _list_at(document: dict[str, Any], path: tuple[str, ...]) -> list[Any]:
    node: Any = document
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, list) else []


def json_bytes(document: Any) -> bytes:
    """Compact UTF-8 JSON, as the channels send it."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


__all__ = [
    "BODY_MAX", "CMDLINE_MAX", "LOG_MESSAGE_MAX", "MARKER", "PATH_MAX", "PROCESS_MAX", "TEXT_MAX", "UNIT_MAX",
    "cap", "cap_kill", "cap_opt", "cap_value", "fit_document", "is_truncated", "json_bytes", "no_nul",
]

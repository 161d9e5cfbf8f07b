"""Terminal-safe text of one value: control characters, bidirectional and line-separator
characters made visible.

Process names, command lines and cgroup paths come from any local user. Split from
textout.py (tables, JSON, CSV for the commands) for the daemon's log formatter
(cli/run.py SafeFormatter), which needs this alone.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

# Unicode bidirectional marks, embeddings, overrides and isolates, and the line and
# paragraph separators: invisible, yet they reorder or break the text around them.
BIDI_AND_LINE_SEPARATORS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f{BIDI_AND_LINE_SEPARATORS}]")


def safe(value: Any) -> str:
    """A value as terminal-safe text: control characters shown as \\xNN, bidirectional
    and line-separator characters as \\uXXXX, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S%z")
    return _visible(str(value))


def _visible(text: str) -> str:
    """`text` with every control, bidirectional and line-separator character escaped."""
    # Every character _UNSAFE matches is non-printable to str.isprintable (categories Cc,
    # Cf, Zl, Zp), so a printable cell needs no regex: the common case, one C loop.
    if text.isprintable():
        return text
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

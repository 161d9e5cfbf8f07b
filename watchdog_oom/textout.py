"""Output for people and scripts: terminal-safe tables, JSON and RFC 4180 CSV.

Process names, command lines and cgroup paths come from any local user, so text bound
for a terminal has its control characters (ANSI escapes among them) made visible.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe(value: Any) -> str:
    """A value as terminal-safe text: control characters shown as \\xNN, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S%z")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]],
          widths: Mapping[str, int] | None = None) -> str:
    """A plain-text table of `rows` with (key, heading) columns."""
    widths = widths or {}
    cells = [[clip(safe(row.get(key)), widths.get(key, 60)) for key, _ in columns] for row in rows]
    sizes = [max([len(head)] + [len(r[i]) for r in cells]) for i, (_, head) in enumerate(columns)]
    lines = ["  ".join(head.ljust(sizes[i]) for i, (_, head) in enumerate(columns)).rstrip()]
    lines += ["  ".join(c.ljust(sizes[i]) for i, c in enumerate(r)).rstrip() for r in cells]
    return "\n".join(lines)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV per RFC 4180: a header row, CRLF line ends, quotes where needed."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _csv_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_json_default)
    return value

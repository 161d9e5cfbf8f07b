"""Output for people and scripts: terminal-safe tables, JSON and RFC 4180 CSV.

Process names, command lines and cgroup paths come from any local user, so text bound
for a terminal or a spreadsheet has its control characters (ANSI escapes among them) and
its bidirectional-text and line-separator characters (which can make a line read in
another order than it is written) made visible.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

# The terminal-safe text of one value: visible.py (the daemon's log formatter needs only that)
from watchdog_oom.visible import _UNSAFE as _UNSAFE
from watchdog_oom.visible import BIDI_AND_LINE_SEPARATORS as BIDI_AND_LINE_SEPARATORS
from watchdog_oom.visible import _visible, safe

# What a spreadsheet reads as the start of a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]],
          widths: Mapping[str, int] | None = None) -> str:
    """A plain-text table of `rows` with (key, heading) columns."""
    widths = widths or {}
    # Column by column: a history of thousands of rows is mostly printable text and numbers.
    texts = [_column(list(map(operator.methodcaller("get", key), rows)), widths.get(key, 60)) for key, _ in columns]
    sizes = [max(len(head), max(map(len, column), default=0)) for column, (_, head) in zip(texts, columns, strict=True)]
    line = "  ".join(f"{{:<{size}}}" for size in sizes)  # each cell left-aligned, padded to its column
    lines = [line.format(*(head for _, head in columns)).rstrip()]
    by_row = zip(*texts, strict=True) if texts else [()] * len(rows)
    lines += [line.format(*cells).rstrip() for cells in by_row]
    return "\n".join(lines)


def _column(values: list[Any], width: int) -> list[str]:
    """One column's cells as `safe` and `clip` make them. A column of plain numbers (whose
    str is always printable), or of text that is all printable, is converted in one pass;
    other cells one by one."""
    kinds = set(map(type, values))
    if kinds <= _NUMBERS:
        cells = list(map(str, values))
    elif kinds == _TEXT and "".join(values).isprintable():
        cells = values
    else:
        cells = [value if type(value) is str and value.isprintable()
                 else str(value) if type(value) in _NUMBERS else safe(value) for value in values]
    if max(map(len, cells), default=0) <= width:
        return cells
    return [cell if len(cell) <= width else clip(cell, width) for cell in cells]


_NUMBERS = frozenset((int, float))
_TEXT = frozenset((str,))


def to_json(value: Any) -> str:
    """`value` as indented JSON (two spaces), non-ASCII text as it is, times in ISO 8601."""
    if type(value) is list and value:
        text = _records_json(value)
        if text is not None:
            return text
    return json.dumps(value, indent=2, sort_keys=False, default=_json_default, ensure_ascii=False)


def _records_json(rows: list[Any]) -> str | None:
    """to_json's text of a list of flat records (dicts with the same keys in the same order,
    every value a JSON scalar), as a history lists thousands; None for any other list.

    json's C encoder only runs without indent: every value is encoded in one call, with a
    NUL between values (JSON text holds one only escaped, as \\u0000), and set in the
    indented layout of the records' keys."""
    if not _DICTS.issuperset(map(type, rows)):
        return None
    keys = tuple(rows[0])
    if not keys or not all(tuple(row) == keys for row in rows) or not _TEXT.issuperset(map(type, keys)):
        return None  # json.dumps writes a key that is no text as text ("1", "true"): left to it
    values = list(itertools.chain.from_iterable(map(dict.values, rows)))
    if not _JSON_SCALARS.issuperset(map(type, values)):
        return None
    pieces = _ENCODE_SEPARATED(values)[1:-1].split("\x00")
    width = len(keys)
    if len(pieces) != len(values):  # pragma: no cover - a NUL is always escaped
        return None
    # One record's layout: its keys and the places of its values (braces doubled for format).
    layout = "  {{\n" + ",\n".join("    " + _ENCODE_SEPARATED(key).replace("{", "{{").replace("}", "}}") + ": {}"
                                     for key in keys) + "\n  }}"
    return "[\n" + ",\n".join(layout.format(*pieces[i:i + width]) for i in range(0, len(pieces), width)) + "\n]"


_DICTS = frozenset((dict,))
_JSON_SCALARS = frozenset((str, int, float, bool, type(None)))  # what the C encoder writes as the indenting one does
# Scalars as json.dumps writes them (NaN as NaN, non-ASCII as it is), a NUL between them.
_ENCODE_SEPARATED = json.JSONEncoder(ensure_ascii=False, separators=("\x00", ": ")).encode


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """CSV per RFC 4180: a header row, CRLF line ends, quotes where needed.

    Text cells are made visible as for a terminal (a newline inside a value is written
    \\x0a), and those a spreadsheet would run as a formula get a leading single quote.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    # Column by column, as table() does: a history of thousands of rows is mostly numbers and plain text.
    cells = [_csv_column(list(map(operator.methodcaller("get", c), rows))) for c in columns]
    writer.writerows(zip(*cells, strict=True) if cells else [[] for _ in rows])
    return buf.getvalue()


def _csv_column(values: list[Any]) -> list[Any]:
    """One column's cells as _csv_cell makes them (None empty). A column of plain numbers,
    or of printable text none of which starts a formula, is written as it is."""
    kinds = set(map(type, values))
    if kinds <= _NUMBERS or (kinds == _TEXT and "".join(values).isprintable()
                             and not any(map(operator.methodcaller("startswith", _FORMULA_START), values))):
        return values
    return ["" if value is None else _csv_cell(value) for value in values]


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_json_default)
    if isinstance(value, str):
        return ("'" if value.startswith(_FORMULA_START) else "") + _visible(value)
    return value

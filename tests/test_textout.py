"""Output for terminals, spreadsheets and HTML stays inert whatever a process calls itself."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog_oom.report import esc
from watchdog_oom.textout import _UNSAFE, safe, table, to_csv

BIDI_AND_SEPARATORS = ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
                       "\u2066", "\u2067", "\u2068", "\u2069", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", BIDI_AND_SEPARATORS)
def test_safe_shows_bidi_and_line_separator_characters(char):
    assert safe(f"evil{char}txt.exe") == f"evil\\u{ord(char):04x}txt.exe"


def test_safe_still_shows_control_characters_and_keeps_other_text():
    assert safe("\x1b[2J\x9bä€") == "\\x1b[2J\\x9bä€"


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_csv_escapes_control_bidi_and_newlines_in_text_cells():
    text = to_csv([{"process": "a\x1b[31m\u202eb", "cmdline": 'x\ny\r\nz, "q"'}], ["process", "cmdline"])
    assert "\x1b" not in text and "\u202e" not in text
    assert text.count("\r\n") == 2  # the record ends only where rows end
    assert parse_csv(text) == [["process", "cmdline"], ["a\\x1b[31m\\u202eb", 'x\\x0ay\\x0d\\x0az, "q"']]


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_neutralises_formulas_in_text_cells(value):
    (_, (cell,)) = parse_csv(to_csv([{"process": value}], ["process"]))
    assert cell.startswith("'") and cell[1:] == safe(value)


def test_csv_leaves_numbers_and_plain_text_alone():
    rows = parse_csv(to_csv([{"oom_score_adj": -1000, "score": 1.5, "process": "java", "unit": None}],
                            ["oom_score_adj", "score", "process", "unit"]))
    assert rows[1] == ["-1000", "1.5", "java", ""]


def test_html_escape_shows_bidi_characters():
    assert esc("<b>evil\u202etxt.exe\u2066") == "&lt;b&gt;evil\\u202etxt.exe\\u2066"
    assert esc(None) == "–"


def test_safe_escapes_exactly_the_unsafe_characters_of_all_unicode():
    """The printable fast path skips no character the escaping regex would show."""
    unsafe = _UNSAFE.findall("".join(map(chr, range(0x110000))))
    assert len(unsafe) == 0x20 + 0x21 + len(BIDI_AND_SEPARATORS)
    assert not any(c.isprintable() for c in unsafe)  # so a printable cell holds none of them
    assert all(safe(f"a{c}b") == f"a\\{'x' if ord(c) < 0x100 else 'u'}{ord(c):0{2 if ord(c) < 0x100 else 4}x}b"
               for c in unsafe)


def test_table_pads_columns_and_escapes_hostile_cells():
    rows = [{"pid": 7, "process": "java", "rss": 1.5, "ok": True},
            {"pid": None, "process": "\x1b[31mred\u202eexe", "rss": float("nan"), "ok": False}]
    out = table(rows, [("pid", "PID"), ("process", "PROCESS"), ("rss", "RSS"), ("ok", "OK")],
                {"process": 12})
    assert out.splitlines() == ["PID  PROCESS       RSS  OK",
                                "7    java          1.5  yes",
                                "-    \\x1b[31mred…  nan  no"]
    assert table([], [("pid", "PID")]) == "PID"


def _reference_table(rows, columns, widths):
    """table() cell by cell, as it was written first: safe() then clip() on every cell."""
    from watchdog_oom.textout import clip

    texts = [[clip(safe(row.get(key)), widths.get(key, 60)) for row in rows] for key, _ in columns]
    sizes = [max([len(head), *map(len, column)]) for column, (_, head) in zip(texts, columns, strict=True)]
    lines = ["  ".join(head.ljust(size) for (_, head), size in zip(columns, sizes, strict=True)).rstrip()]
    lines += ["  ".join(cell.ljust(size) for cell, size in zip(cells, sizes, strict=True)).rstrip()
              for cells in zip(*texts, strict=True)]
    return "\n".join(lines)


_CELLS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                   st.text(alphabet=st.sampled_from(["a", "é", " ", "\x1b", "\x85", "\u202e", "\u2028", "日", "-"]),
                           max_size=14))


@given(st.lists(st.tuples(_CELLS, _CELLS, _CELLS), max_size=6), st.sampled_from(["same", "numbers", "text"]))
def test_table_converts_a_whole_column_as_it_converts_each_cell(cells, shape):
    """A column all numbers or all printable text is converted in one pass: the same text as cell by cell."""
    if shape == "numbers":
        cells = [tuple(c if type(c) in (int, float) else 1.5 for c in row) for row in cells]
    elif shape == "text":
        cells = [tuple(c if isinstance(c, str) and c.isprintable() else "ok" for c in row) for row in cells]
    rows = [{"a": a, "b": b, "c": c} for a, b, c in cells]
    columns = [("a", "A"), ("b", "B"), ("c", "C")]
    assert table(rows, columns, {"b": 4}) == _reference_table(rows, columns, {"b": 4})


def _reference_csv(rows, columns):
    """to_csv as it was written first: _csv_cell on every cell, row by row."""
    from watchdog_oom.textout import _csv_cell

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _csv_cell(row.get(c)) for c in columns])
    return buf.getvalue()


_TEXTS = st.text(alphabet=st.sampled_from(["a", "é", " ", ",", '"', "\n", "\x00", "\x1b", "\u202e", "{", "}", "=",
                                           "+", "-", "@", "\t", "日", "\\"]), max_size=10)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), _TEXTS)


@given(st.lists(st.tuples(_SCALARS, _SCALARS, _SCALARS), max_size=6),
       st.sampled_from(["same", "numbers", "text", "ragged", "nested"]))
def test_json_and_csv_of_records_are_those_of_each_record(cells, shape):
    """Records of the same keys, all scalars, are encoded a list at a time (JSON) and a column at
    a time (CSV): the same text as json.dumps of the whole, and as _csv_cell on each cell."""
    import json

    from watchdog_oom.textout import to_json

    if shape == "numbers":
        cells = [tuple(c if type(c) in (int, float) else 2 for c in row) for row in cells]
    elif shape == "text":
        cells = [tuple(c if isinstance(c, str) else "x" for c in row) for row in cells]
    keys = ["a", "{b}", 'c"\u00e9']
    rows = [dict(zip(keys, row, strict=True)) for row in cells]
    if shape == "ragged" and rows:
        rows[-1] = {"a": 1}
    if shape == "nested" and rows:
        rows[0]["a"] = {"x": [1, "y"]}
    assert to_json(rows) == json.dumps(rows, indent=2, ensure_ascii=False)
    assert to_csv(rows, keys) == _reference_csv(rows, keys)


@pytest.mark.parametrize("key", [1, True, None, 2.5])
def test_json_of_records_whose_keys_are_not_text_is_json_dumps_text(key):
    """json.dumps makes such a key text ("1"); the list-at-a-time encoding wrote it bare (1: …), no JSON."""
    import json

    from watchdog_oom.textout import to_json

    rows = [{key: "a", "b": 2}, {key: "c", "b": 3}]
    assert to_json(rows) == json.dumps(rows, indent=2, ensure_ascii=False)

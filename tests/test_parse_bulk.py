"""The scanner feeds a run of lines at a time and hands the task-table rows that follow a
row to the parser in one call (parse/scan.py _feed_run, OomParser.feed_rows): on every
input of the differential corpus (captures raw, wrapped and interleaved; tables with a row
of every odd kind; random and fuzzed logs) and on tables cut short, it gives what feeding
the same lines one at a time gives (_RUN 0: each line alone, as before runs), kill by kill
and field by field, with the same unread lines, whatever the size of the runs (a row cut
off by a run's end, a table ending at a run's end); and where the corpus reads a log line by
line as the scanner does (most inputs), what parse_text() gives."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from parse_corpus import GOLDEN, inputs, random_log, rows_log

from watchdog_oom.parse import Unread, iter_kills, line_numbers, parse_text, scan

# the differential corpus (its first seeds), then tables cut short: at the end of the log,
# and in the middle of a row, of its name and of its figures
_CORPUS = list(inputs(range(6)))
_TABLE = rows_log("Jun  3 10:00:{s:02d} web-01 kernel: [  100.000100] ")
_CUT = [("table at the end", _TABLE[:_TABLE.rindex("Killed process")].rsplit("\n", 1)[0] + "\n"),
        ("table cut in a row", _TABLE[:len(_TABLE) // 2]),
        ("tables cut in their rows", "".join(random_log(seed)[:9000 + seed * 997] + "\n" for seed in range(5)))]


# inputs read alike line by line and through the scanner, as the stored records say (tests/data/differential)
with gzip.open(GOLDEN, "rt", encoding="utf-8") as _stream:
    _ALIKE = {name for name, read in json.load(_stream).items()
              if read["stream"] == "as read line by line" and read["stream unread"] == read["unread"]}


def _read(data: bytes, run: int, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    monkeypatch.setattr(scan, "_RUN", run)
    unread = Unread(keep=1000)
    stream = io.BytesIO(data)
    kills = list(iter_kills(stream, "import", year=2026, unread=unread, chunk_size=1 << 16))
    line_numbers(io.BytesIO(data), unread)
    return kills, [(u.line, u.text, u.reason) for u in unread.first]


@pytest.mark.parametrize(("name", "text"), _CORPUS + _CUT, ids=[name for name, _ in _CORPUS + _CUT])
def test_rows_handed_over_a_run_at_a_time_read_as_line_by_line(name: str, text: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = text.encode("utf-8", "surrogateescape")
    expected, expected_unread = _read(data, 0, monkeypatch)
    for run in (64, 700, 4096):
        kills, found = _read(data, run, monkeypatch)
        assert kills == expected, (name, run)
        assert found == expected_unread, (name, run)
    lines = Unread(keep=1000)
    if name in _ALIKE:
        assert parse_text(text, "import", year=2026, unread=lines) == expected
        assert [(u.line, u.text, u.reason) for u in lines.first] == expected_unread

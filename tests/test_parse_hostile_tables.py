"""A task table the kernel never printed (rows garbled, duplicated, a header cut oddly) must
not stop the reading: the kill is still read, and the lines after it.

Found by feeding the fast and the full parser mutated captures (a review of session 4):
two rows with the same pid and rss but another name made the table's heap compare TaskRows
(TypeError), and a header whose "rss" runs into a punctuation mark ("rss," "rss&lt;") matched
the header pattern but had no column called "rss" (ValueError); either stopped `import` of
the whole file with a traceback. So did a date at the very edge of the calendar (the store
could not convert it to UTC).
"""

from __future__ import annotations

import io
import json

import pytest

from watchdog_oom.cli import main
from watchdog_oom.model import KernelLine, OomKill
from watchdog_oom.parse import OomParser

INVOKED = "java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"
HEADER = "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"
KILLED = "Out of memory: Killed process {pid} ({name}) total-vm:4kB, anon-rss:4kB, file-rss:0kB"


def _read(text: str, fast: bool) -> list[OomKill]:
    """The kills of `text` as import reads it (lenient), with or without the fast paths."""
    parser = OomParser(lenient=True, fast=fast)
    kills = []
    for raw in text.splitlines():
        kills += parser.feed(KernelLine(text=raw, source="import", wrapped=True))
    return kills + parser.flush()


@pytest.mark.parametrize("fast", [True, False])
def test_two_rows_with_one_pid_and_rss_but_other_names_are_both_kept(fast: bool) -> None:
    text = "\n".join([INVOKED, HEADER,
                      "[   3893]     0  3893     1655       22    40960        0             0 stress",
                      "[   3893]     0  3893     1655       22    40960        0             0 other",
                      KILLED.format(pid=3893, name="stress"), KILLED.format(pid=4000, name="later")])
    kills = _read(text, fast)
    assert [k.pid for k in kills] == [3893, 4000]
    assert sorted(row.name for row in kills[0].task_table) == ["other", "stress"]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("header", [HEADER.replace("rss ", "rss, "), HEADER.replace("rss ", "rss&lt; "),
                                    HEADER.replace(" rss ", " rss:rss ")])
def test_a_header_without_an_rss_column_is_no_table(header: str, fast: bool) -> None:
    text = "\n".join([INVOKED, header,
                      "[   3893]     0  3893     1655       22    40960        0             0 stress",
                      KILLED.format(pid=3893, name="stress"), KILLED.format(pid=4000, name="later")])
    assert [k.pid for k in _read(text, fast)] == [3893, 4000]


# A date at the very end of datetime's range, with an offset that takes it past it in UTC
# ("9999-12-31T23:59:59-10:00"), or at its very start ("0001-01-01T00:00:00+10:00"): Python
# cannot convert it to UTC (OverflowError), and the store stopped the whole import on it.
EDGE_DATES = ["9999-12-31T23:59:59-10:00", "0001-01-01T00:00:00+10:00", "9999-12-31 23:59:59",
              "0001-01-01 00:00:00"]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("date", EDGE_DATES)
def test_a_date_at_the_edge_of_the_calendar_is_an_unknown_time(date: str, fast: bool) -> None:
    (kill,) = _read(f"{date} host kernel: {KILLED.format(pid=5, name='x')}", fast)
    assert (kill.pid, kill.time) == (5, None)


@pytest.mark.parametrize("date", EDGE_DATES[:2])
def test_import_records_the_kills_of_a_log_with_a_date_past_the_calendar(tmp_path, date: str) -> None:
    log = tmp_path / "kern.log"
    log.write_text(f"{date} host kernel: {KILLED.format(pid=5, name='x')}\n"
                   f"2024-06-03T10:00:00+02:00 host kernel: {KILLED.format(pid=6, name='y')}\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(config), "import", str(log)], stdout=out, stderr=err) == 0, err.getvalue()
    out = io.StringIO()
    assert main(["-c", str(config), "history", "kills", "--format", "json"], stdout=out, stderr=err) == 0
    assert sorted((k["pid"], k["time"]) for k in json.loads(out.getvalue())) == [
        (5, None), (6, "2024-06-03T08:00:00+00:00")]

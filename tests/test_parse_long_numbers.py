"""A line number of thousands of digits (cat -n, nl, grep -n around a kill line) is read past,
not a crash: int() refuses over 4,300 digits, and one such line stopped `import` (review R32)."""

from __future__ import annotations

import io

import pytest

from watchdog_oom.model import KernelLine
from watchdog_oom.parse import OomParser, Unread, iter_kills, parse_text

KILL = ("Out of memory: Killed process {pid} (v{pid}) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0")
DIGITS = "9" * 5000


@pytest.mark.parametrize("outer", [f"{DIGITS}\t", f"{DIGITS}  ", f"kern.log:{DIGITS}:", f"{DIGITS}:", f"{DIGITS}-",
                                   "1" * 19 + "\t", f"kern.log:{'1' * 19}-"],
                         ids=["cat-n", "nl", "grep-Hn", "grep-n", "grep-n-context", "cat-n-19", "grep-Hn-19"])
@pytest.mark.parametrize("cut", [False, True], ids=["whole", "wrapped"])
def test_a_kill_line_numbered_with_thousands_of_digits_is_read(outer: str, cut: bool) -> None:
    line = f"{outer}Jun 29 15:51:11 h kernel: " + KILL.format(pid=1)
    # wrapped: the kill line held for its continuation, which carries the next "number"
    text = (f"{line[:-30]}\n{outer}{line[-30:]}\n" if cut else line + "\n") + \
        f"{outer}Jun 29 15:52:11 h kernel: " + KILL.format(pid=2) + "\n"
    assert [k.pid for k in parse_text(text, year=2025)] == [1, 2]
    unread = Unread(keep=5)
    read = list(iter_kills(io.BytesIO(text.encode()), "import", year=2025, unread=unread))
    assert [k.pid for k in read] == [1, 2]
    parser = OomParser(year=2025)  # the daemon's strict parser: no message where its source put none, no error
    for each in text.splitlines():
        parser.feed(KernelLine(text=each, source="test", wrapped=True))
    parser.flush()

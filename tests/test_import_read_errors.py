"""`import` keeps the kills it read before an error of ours stopped reading a log (review R31:
the kills of the batch not yet given were dropped, although it said they were kept)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from watchdog_oom.cli import import_logs, main
from watchdog_oom.model import OomKill

KILL = ("Jun  3 10:{minute:02d}:00 web-01 kernel: Out of memory: Killed process {pid} (v{pid}) "
        "total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0")
KILLS = 7  # fewer than a batch (import_logs.BATCH), read in one chunk of the log's: given at its end or not at all


class _ParserStopsAfter(import_logs._Filed):
    """The seam: what reads a log's kills as the parser gives them (_Filed.kills, where a
    ValueError out of the parser comes through), here raising one after the parser's
    KILLS-th kill, in the middle of the log's only chunk. No line the parser is known to
    fail on is left to raise it for real (review R32's 5,000-digit line number did)."""

    error: Exception = ValueError("Exceeds the limit (4300 digits) for integer string conversion")

    def kills(self, items: Iterator[Any]) -> Iterator[Any]:
        read = 0
        for item in super().kills(items):
            yield item
            read += type(item) is OomKill
            if read == KILLS and self.source.endswith("/kern.log"):  # not the second log
                raise self.error


def _history_pids(cfg: Path) -> list[int]:
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(cfg), "history", "--format", "json"], stdout=out, stderr=err) == 0, err.getvalue()
    return sorted(k["pid"] for k in json.loads(out.getvalue()))


@pytest.mark.parametrize("forked", [False, True], ids=["in-process", "reading-child"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["recorded", "dry-run"])
@pytest.mark.parametrize("error", [_ParserStopsAfter.error, IndexError("list index out of range"), TypeError("x"),
                                   KeyError("k"), RecursionError("deep"), AssertionError("a")],
                         ids=lambda e: type(e).__name__)
def test_an_internal_error_while_reading_keeps_the_kills_read_before_it(tmp_path: Path, monkeypatch, forked: bool,
                                                                        dry_run: bool, error: Exception) -> None:
    # any error of ours (review R31's update: not only a ValueError), and the next log is read
    log, second = tmp_path / "kern.log", tmp_path / "second.log"
    lines = []
    for n in range(KILLS + 3):
        lines.append(KILL.format(minute=n, pid=100 + n))
        lines += [f"Jun  3 10:{n:02d}:{s:02d} web-01 sshd[1]: a line between them" for s in range(20)]
    log.write_text("\n".join(lines) + "\n")
    second.write_text(KILL.format(minute=30, pid=300) + "\n")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"host: here\ndatabase: sqlite:///{tmp_path}/history.db\n")
    monkeypatch.setattr(import_logs, "_Filed", _ParserStopsAfter)
    monkeypatch.setattr(_ParserStopsAfter, "error", error)
    out = io.StringIO()
    # a terminal's import reads in a forked child (stderr has a file descriptor); a StringIO's in this process
    with (tmp_path / "err").open("w+") if forked else io.StringIO() as err:
        argv = ["-c", str(cfg), "import", "--year", "2025", "--format", "json", str(log), str(second)]
        code = main(argv + (["--dry-run"] if dry_run else []), stdout=out, stderr=err)
        err.seek(0)
        said = err.read()
    assert code == 1
    assert f"watchdog-oom import: {log}: reading stopped by an internal error ({type(error).__name__}: " in said
    assert "the kills read before it are kept" in said
    kept = [*range(100, 100 + KILLS), 300]
    assert sorted(k["pid"] for k in json.loads(out.getvalue())) == kept
    assert _history_pids(cfg) == ([] if dry_run else kept)

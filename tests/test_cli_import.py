"""`import` says what it could not read: lines holding a kill's words, and lines cut."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from watchdog_oom.cli import main

FIGURES = "total-vm:1kB, anon-rss:1kB, file-rss:0kB"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_import_counts_and_shows_kill_lines_it_could_not_read(tmp_path: Path) -> None:
    lines = [f"Jun  3 10:00:00 h kernel: Out of memory: Killed process 7 (a) {FIGURES}"]
    lines += [f"Jun  3 10:00:{i:02d} h sshd[1]: noise" for i in range(40)]
    lines += ["Jun  3 10:01:00 h kernel: Killed process 8 (b\x1b]0;title\x07",
              f"Jun  3 10:01:01 h alice: Out of memory: Killed process 9 (c) {FIGURES}"]
    lines += [f"Jun  3 10:02:{i:02d} h kernel: Killed process {100 + i} (" for i in range(7)]
    log = tmp_path / "kern.log.gz"
    log.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    code, out, err = run("import", "--dry-run", "--format", "json", str(log))
    assert code == 0 and [k["pid"] for k in json.loads(out)] == [7]
    assert f"{log}: 9 lines hold a kill's words but could not be read (the first 5 shown):" in err
    assert "  line 42: Killed process 8 (b  [no recogniser read this line]" in err
    assert "  line 43: Out of memory: Killed process 9 (c)" in err and "not from kernel" in err
    assert "1 kill found" in err


def test_import_says_how_many_lines_it_cut(tmp_path: Path) -> None:
    log = tmp_path / "syslog"
    log.write_text("x" * 200_000 + f"\nOut of memory: Killed process 7 (a) {FIGURES} " + "y" * 200_000 + "\n")
    code, out, err = run("import", "--dry-run", "--format", "json", str(log))
    assert code == 0 and [k["pid"] for k in json.loads(out)] == [7]
    assert "1 line longer than 65536 characters read only that far" in err


def test_import_shows_its_progress_on_a_terminal_and_clears_it(tmp_path: Path) -> None:
    import os
    import threading

    log = tmp_path / "syslog"
    noise = "".join(f"Jun  3 10:00:{i % 60:02d} h sshd[1]: Accepted publickey for deploy port {i}\n"
                    for i in range(30_000))
    log.write_text(noise + f"Jun  3 10:01:00 h kernel: Out of memory: Killed process 7 (a) {FIGURES}\n" + noise)
    assert log.stat().st_size > 2 << 20  # mapped, searched by two processes where there are two cores
    controller, terminal = os.openpty()
    shown = bytearray()
    reader = threading.Thread(target=lambda: _drain(controller, shown))
    reader.start()
    with open(terminal, "w", encoding="utf-8") as err:
        out = io.StringIO()
        code = main(["import", "--dry-run", "--format", "json", str(log)], stdout=out, stderr=err)
    reader.join(timeout=60)
    os.close(controller)
    assert code == 0 and [k["pid"] for k in json.loads(out.getvalue())] == [7]
    text = shown.decode()
    assert f"\r{log}: 100%" in text
    assert text.index(f"\r{log}: 100%") < text.index(f"\r{' ' * (len(str(log)) + 8)}\r")
    assert "1 kill found" in text


def _drain(fd: int, into: bytearray) -> None:
    import os

    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the terminal's other end closed
            return
        if not data:
            return
        into += data


def test_import_writes_its_json_as_to_json_would_the_whole_list(tmp_path: Path) -> None:
    # The array is written a record at a time, its scalars by json's C encoder set in a
    # layout: the text must be to_json's of the whole list, odd names included.
    from watchdog_oom.textout import to_json

    names = ["java", 'we"ird {0} \\ name', "naïve—日本", "tab\there", "{}", "x" * 300]
    log = tmp_path / "syslog"
    log.write_text("".join(f"Jun  3 10:00:{i:02d} h kernel: Out of memory: Killed process {10 + i} ({name}) "
                           f"{FIGURES}, shmem-rss:0kB, UID:1000 pgtables:8kB oom_score_adj:-1000\n"
                           for i, name in enumerate(names)))
    config = tmp_path / "config.yaml"
    config.write_text(f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    for argv in (["import", "--dry-run"], ["-c", str(config), "import"]):
        code, out, err = run(*argv, "--format", "json", str(log))
        assert code == 0, err
        kills = json.loads(out)
        assert len(kills) == len(names) and all(k["evidence"]["format"] == "syslog" for k in kills)
        assert out == to_json(kills) + "\n"
    # Read in a child (stderr a file), the batches come Packed (import_wire): new kills are
    # inserted and printed as their reader prepared them, the same text; kills recorded
    # already (a second import) go the rows' way, with the ids they have.
    fresh = tmp_path / "fresh.yaml"
    fresh.write_text(f"host: h\ndatabase: sqlite:///{tmp_path}/fresh.db\n")
    for argv, note in ((["import", "--dry-run"], "found;"), (["-c", str(fresh), "import"], "6 new, 0 already"),
                       (["-c", str(fresh), "import"], "0 new, 6 already")):
        with open(tmp_path / "stderr", "w+", encoding="utf-8") as said:
            code = main([*argv, "--format", "json", str(log)], stdout=(forked := io.StringIO()), stderr=said)
            said.seek(0)
            assert code == 0 and note in said.read()
        expected = kills if "--dry-run" not in argv else [{**k, "id": None} for k in kills]
        assert forked.getvalue() == to_json(expected) + "\n"


def test_import_json_elements_are_to_jsons_whatever_the_evidence() -> None:
    # The batch layout: evidence an object, an array, none, or something to_json alone
    # writes (a datetime, a NaN); a column of one value, of equal values of two types
    # (1 and True): each batch's text is to_json's of its records.
    from datetime import UTC, datetime

    from watchdog_oom.cli.import_logs import RECORD_KEYS, _json_elements
    from watchdog_oom.textout import to_json

    base = [None] * (len(RECORD_KEYS) - 1)
    batches = [[[*base[:-1], 'x"{}', {"format": "syslog", "lines": ["kill line"]}], [*base[:-1], 1, None],
                [*base[:-1], "naïve", ["a", {"b": 1}]], [*base[:-1], 2, {}]],
               [[*base[:-1], 3, datetime(2026, 1, 2, tzinfo=UTC)]], [[*base[:-1], float("nan"), None]],
               [[*base[:-1], 1, None], [*base[:-1], True, None], [*base[:-1], 1.0, None]],
               [[*base[:-2], n, "{0}} {x", {"lines": ["{}"]}] for n in (1, 2)]]  # one text throughout: in the layout
    for records in batches:
        whole = to_json([dict(zip(RECORD_KEYS, values, strict=True)) for values in records])
        assert "[\n" + _json_elements([list(column) for column in zip(*records, strict=True)]) + "\n]" == whole



@pytest.mark.parametrize("zeros", [4096, 100_000, 2 << 20], ids=["short", "past a line's cap", "mapped"])
def test_a_kill_line_after_the_zeros_of_a_copytruncate_keeps_its_date_and_host(tmp_path: Path, zeros: int) -> None:
    # logrotate's copytruncate while the writer kept its offset (or a crash before the
    # file's blocks were written) leaves a run of zeros as long as the file was, and the
    # next line follows them with no newline between: no part of that line, they neither
    # hide it (a line is read up to LINE_CHARS) nor its wrapper.
    kill = f"Jun  3 10:00:00 db-07 kernel: [ 1234.567890] Out of memory: Killed process 7 (a) {FIGURES}\n"
    log = tmp_path / "kern.log"
    second = kill.replace("(a)", "(b)").replace(" 7 ", " 8 ")
    log.write_bytes(b"\0" * zeros + kill.encode() + b"\0" * 10 + second.encode())
    code, out, _ = run("import", "--dry-run", "--format", "json", "--year", "2024", str(log))
    assert code == 0
    assert [(k["pid"], k["host"], k["time"][:19], k["evidence"]["format"]) for k in json.loads(out)] == [
        (7, "db-07", "2024-06-03T10:00:00", "syslog"), (8, "db-07", "2024-06-03T10:00:00", "syslog")]


@pytest.mark.parametrize(("line", "yearless"), [
    (f"[Mon Aug 31 18:23:18 2015] Killed process 7215 (php.bin) {FIGURES}", False),  # dmesg -T: its year
    (f"Mon 2024-06-03 10:00:00 CEST h kernel: Out of memory: Killed process 7 (a) {FIGURES}", False),
    (f"Jun  3 10:00:00 h kernel: Out of memory: Killed process 7 (a) {FIGURES}", True),  # syslog: none
])
def test_import_says_a_year_was_assumed_only_where_the_dates_carry_none(tmp_path: Path, line: str,
                                                                          yearless: bool) -> None:
    log = tmp_path / "kern.log"
    log.write_text(line + "\n")
    code, _, err = run("import", "--dry-run", str(log))
    assert code == 0 and "1 kill found" in err
    assert ("where its dates carry no year (syslog)" in err) is yearless

"""`import`'s two readers (cli/import_parts.py): a big log's second part parsed by a second
process while the first parses the first, with no kill lost or given twice where they
meet. Differential: for every line boundary of real captures as the split, the two give
what one reader gives (the rows, in order, and what is said: unread lines, the year)."""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog_oom.cli import import_logs
from watchdog_oom.cli.import_parts import Parts, unspooled
from watchdog_oom.parse import scan

DATA = Path(__file__).parent / "data" / "oom_logs"
FILING = import_logs.Filing(forced=None, local="h")


def _minimal(second: int, pid: int) -> str:
    prefix = f"Jun  3 10:{second // 60 % 60:02d}:{second % 60:02d} web-01 kernel: [{second:>8}.{pid % 1000000:06d}] "
    return "".join(prefix + line + "\n" for line in (
        "java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
        f"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
        f"task_memcg=/system.slice/app.service,task=java,pid={pid},uid=1000",
        f"Out of memory: Killed process {pid} (java) total-vm:8806332kB, anon-rss:6848016kB, "
        f"file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:14360kB oom_score_adj:0"))


def _interleaved(second: int) -> str:
    """Two memcg reports whose lines interleave (two CPUs printing at once), a selection
    and its victim on either side of the other's kill line, and an unreadable kill line."""
    stamp = f"Jun  3 11:{second // 60 % 60:02d}:{second % 60:02d} web-01 kernel:"
    lines = [
        "a invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "b invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "Memory cgroup out of memory: Kill process 4101 (a) score 990 or sacrifice child",
        "Memory cgroup out of memory: Killed process 4202 (b) total-vm:1000kB, anon-rss:900kB, file-rss:0kB",
        "Killed process 4101 (a) total-vm:2000kB, anon-rss:1800kB, file-rss:4kB, shmem-rss:0kB",
        "Out of memory: Killed process 77 (x",
        "oom_reaper: reaped process 4101 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    ]
    return "".join(f"{stamp} [{second}.{n:06d}] {line}\n" for n, line in enumerate(lines))


NOISE = "Jun  3 10:00:00 web-01 sshd[1]: Accepted publickey for deploy from 10.0.0.1 port 2222 ssh2\n"


def _composite() -> str:
    """Every capture of tests/data/oom_logs but the long RHEL 6 one, minimal and interleaved
    reports between them, and noise."""
    parts = []
    for n, capture in enumerate(sorted(DATA.glob("*.log"))):
        if capture.name.startswith("12_"):
            continue
        parts += [_minimal(n * 10, 30_000 + n), capture.read_text(encoding="utf-8").rstrip("\n") + "\n", NOISE,
                  _interleaved(n)]
    return "".join(parts)


@pytest.fixture(autouse=True)
def _small_files_are_mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    # The captures are small: mapped as a big log is (the split reads a mapped file).
    monkeypatch.setattr(scan, "_MAP_AT_LEAST", 1)


def _read(path: Path, parts: Parts | None) -> tuple[list, str]:
    """The rows import gives for `path` (read by one process, or two split at parts.at), and what it said."""
    err = io.StringIO()
    events = list(unspooled(import_logs._events([str(path)], FILING, err, marks=True, parts=parts)))
    assert events[-1] == ("done", str(path), None)
    return [row for kind, _, payload in events if kind == "kills" for row in payload], err.getvalue()


def _line_starts(text: bytes) -> list[int]:
    return [at + 1 for at in range(len(text) - 1) if text[at] == 0x0A]


# Run in a process of its own (forking it for each split costs a fraction of forking the
# test process): argv: the log, the splits (JSON); prints the kills found, or the first
# split where two readers gave other rows, or said other things, than one.
DIFFERENTIAL = """
import io, json, sys
from watchdog_oom.cli import import_logs
from watchdog_oom.cli.import_parts import Parts, unspooled
from watchdog_oom.parse import scan
scan._MAP_AT_LEAST = 1
path, splits = sys.argv[1], json.loads(sys.argv[2])
filing = import_logs.Filing(forced=None, local="h")
def read(parts):
    err = io.StringIO()
    events = list(unspooled(import_logs._events([path], filing, err, marks=True, parts=parts)))
    assert events[-1] == ("done", path, None), events[-1]
    return [row for kind, _, payload in events if kind == "kills" for row in payload], err.getvalue()
one = read(None)
for split in splits:
    two = read(Parts(at=split))
    if two != one:
        print(json.dumps({"split": split, "one": repr(one)[:3000], "two": repr(two)[:3000]}))
        sys.exit(1)
print(len(one[0]))
"""


def _two_give_what_one_gives(path: Path, splits: list[int]) -> int:
    """The kills one reader finds in `path`, once two split at each of `splits` gave the same."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    run = subprocess.run([sys.executable, "-c", DIFFERENTIAL, str(path), json.dumps(splits)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    return int(run.stdout)


def test_two_readers_give_what_one_gives_split_at_every_line_of_many_reports(tmp_path: Path) -> None:
    path = tmp_path / "composite.log"
    path.write_text(_composite())
    found = _two_give_what_one_gives(path, _line_starts(path.read_bytes()))
    assert found > 30


def test_two_readers_give_what_one_gives_split_anywhere_in_a_long_report(tmp_path: Path) -> None:
    # A whole RHEL 6 event (task table, memory state, call trace: 887 lines), twice, with
    # minimal reports around: split at every 20th line (and at each report's edges).
    capture = (DATA / "12_rhel6-2.6.32_messages_full-event-oom_adj.log").read_text(encoding="utf-8")
    path = tmp_path / "rhel6.log"
    path.write_text(_minimal(1, 500) + capture + _minimal(2, 501) + capture + _minimal(3, 502))
    starts = _line_starts(path.read_bytes())
    found = _two_give_what_one_gives(path, starts[::20] + starts[:12] + starts[885:895] + starts[-12:])
    assert found >= 5


def test_two_readers_count_each_unread_line_once(tmp_path: Path) -> None:
    text = "".join(_interleaved(n) + NOISE * 3 for n in range(30))
    path = tmp_path / "unread.log"
    path.write_text(text)
    starts = _line_starts(path.read_bytes())
    one, said = _read(path, None)
    assert "30 lines hold a kill's words but could not be read (the first 5 shown)" in said
    for split in starts[::5]:
        assert _read(path, Parts(at=split)) == (one, said)


def test_many_segments_and_the_second_part_mostly_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Segments of 4 KB (marks where the parser is idle): the first hands over at the
    # second's first mark where both parsers agree (the last kill read: a kill or so past
    # the split), so the second reads nearly all its part (counted by the spool).
    monkeypatch.setattr(scan, "_SEGMENT", 4096)
    path = tmp_path / "dense.log"
    path.write_text("".join(_minimal(2 * i, 100_000 + i) + (NOISE if i % 7 == 0 else "") for i in range(2000)))
    split = path.read_bytes().index(b"\n", path.stat().st_size // 2) + 1
    one, said = _read(path, None)
    err = io.StringIO()
    first, spooled, two = 0, 0, []

    def counted(events):  # the first's own kills, and the bytes it forwards from the spool
        nonlocal first, spooled
        for kind, at, payload in events:
            if kind == "kills":
                first += len(payload)
            elif kind == "raw":
                spooled += payload.end - payload.start
            yield kind, at, payload

    for kind, _, payload in unspooled(counted(import_logs._events([str(path)], FILING, err, marks=True,
                                                                  parts=Parts(at=split)))):
        if kind == "kills":
            two += payload
    assert len(one) == 2000 and 1000 <= first <= 1010 and spooled > 0, first
    assert two == one and err.getvalue() == said


def test_the_first_readers_share_is_smaller_where_kills_are_dense(tmp_path: Path) -> None:
    # The parent records the second's kills only after the handover: where they are many
    # (a kill every ~550 bytes) the first reads the less; in a log of other lines, or of
    # long reports, the share tuned for those; a map beyond the file's size is not read.
    import mmap

    def share(text: str, size: int | None = None) -> float:
        path = tmp_path / "share.log"
        path.write_text(text)
        with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return import_logs.first_share(view, 0, len(view) if size is None else size)

    dense = share("".join(_minimal(2 * i, 100_000 + i) for i in range(5000)))
    mixed = share("".join(_minimal(2 * i, 100_000 + i) + NOISE * 20 for i in range(1000)))
    sparse = share(NOISE * 30_000)
    assert dense == pytest.approx(import_logs.DENSE_SHARE, abs=0.01)
    assert import_logs.DENSE_SHARE <= dense < mixed < sparse == import_logs.SPARSE_SHARE
    assert share(NOISE * 10, size=0) == import_logs.SPARSE_SHARE


REPORTS = st.sampled_from(["minimal", "interleaved", "noise", "earlyoom", "oomd", "selection", "capture", "reaper"])
CAPTURES = sorted(DATA.glob("*.log"))


def _piece(kind: str, n: int, rng: random.Random) -> str:
    if kind == "minimal":
        return _minimal(n, 200_000 + n)
    if kind == "interleaved":
        return _interleaved(n)
    if kind == "noise":
        return NOISE * rng.randint(1, 4)
    if kind == "earlyoom":
        # the same victim again now and then (SIGTERM, then SIGKILL: one kill), on both sides of a split
        signal = "SIGKILL" if n % 2 else "SIGTERM"
        return (f"Jun  3 12:00:{n % 60:02d} web-01 earlyoom[812]: mem avail: 0 of 7836 MiB (0.00%), swap free: 0 of "
                f"0 MiB ( 0.00%)\nJun  3 12:00:{n % 60:02d} web-01 earlyoom[812]: low memory! at or below SIGTERM "
                f"limits: mem 10.00%, swap 10.00%\nJun  3 12:00:{n % 60:02d} web-01 earlyoom[812]: sending {signal} "
                f"to process {300 + n % 3} uid 1000 \"stress\": badness 900, VmRSS 7000 MiB\n")
    if kind == "reaper":  # the reaper's line of the kill before (a minimal report's), or of one never seen
        return (f"Jun  3 10:{(n - 1) // 60 % 60:02d}:{(n - 1) % 60:02d} web-01 kernel: [{n - 1:>8}.000009] oom_reaper: "
                f"reaped process {200_000 + n - 1} (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n")
    if kind == "oomd":
        return (f"Jun  3 12:01:{n % 60:02d} web-01 systemd-oomd[600]: Killed /user.slice/user-1000.slice/"
                f"session-{n}.scope due to memory pressure for /user.slice being 85.00% > 80.00% for > 20s with "
                "reclaim activity\n")
    if kind == "selection":
        stamp = f"Jun  3 12:02:{n % 60:02d} web-01 kernel: [{n}.000001]"
        return (f"{stamp} x invoked oom-killer: gfp_mask=0x24201ca, order=0, oom_score_adj=0\n"
                f"{stamp} Out of memory: Kill process {900 + n} (y) score 800 or sacrifice child\n"
                f"{stamp} Killed process {901 + n} (z) total-vm:100kB, anon-rss:90kB, file-rss:0kB\n")
    return CAPTURES[n % len(CAPTURES)].read_text(encoding="utf-8").rstrip("\n") + "\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(REPORTS, min_size=2, max_size=12), seed=st.integers(0, 1000), where=st.floats(0, 1))
def test_two_readers_give_what_one_gives_on_generated_logs(tmp_path_factory: pytest.TempPathFactory,
                                                            kinds: list[str], seed: int, where: float) -> None:
    rng = random.Random(seed)
    path = tmp_path_factory.mktemp("generated") / "log"
    path.write_text("".join(_piece(kind, n, rng) for n, kind in enumerate(kinds)))
    starts = _line_starts(path.read_bytes())
    if not starts:
        return
    one = _read(path, None)
    for split in (starts[min(len(starts) - 1, int(where * len(starts)))], rng.choice(starts)):
        assert _read(path, Parts(at=split)) == one, split


def test_the_command_records_each_kill_once_in_order_with_two_readers(tmp_path: Path) -> None:
    # The real command on a real migrated history: a log big enough to be split (2 MB and
    # over), read by two processes where there are two cores; each kill recorded once, in order.
    from test_cli import write_config

    from watchdog_oom.cli import main

    path = tmp_path / "syslog"
    path.write_text("".join(_minimal(2 * i, 100_000 + i) for i in range(6000)))
    assert path.stat().st_size > 2 << 20
    cfg = write_config(tmp_path, f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    out = io.StringIO()
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as err:  # a file: read in a child
        assert main(["-c", str(cfg), "import", "--format", "json", str(path)], stdout=out, stderr=err) == 0
        err.seek(0)
        said = err.read()
    records = json.loads(out.getvalue())
    assert [k["pid"] for k in records] == list(range(100_000, 106_000))
    assert [k["id"] for k in records] == sorted(k["id"] for k in records)
    assert f"{path}: 6000 kills found, 6000 new" in said
    history = io.StringIO()
    assert main(["-c", str(cfg), "history", "--format", "json", "--limit", "10000"], stdout=history,
                stderr=io.StringIO()) == 0
    assert sorted(k["pid"] for k in json.loads(history.getvalue())) == list(range(100_000, 106_000))
    with pytest.raises(ChildProcessError):  # every reading process was waited for
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize("when", ["under-the-map", "between-stretches"])
def test_a_log_truncated_in_the_second_part_after_the_handover_keeps_each_kill_before_the_cut_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    # The second reader finds the log cut (SIGBUS under its map, or a size check) after it
    # spooled some of its kills; the first hands over, sends those on, and the rest left is
    # read with read() from the last point the parent holds final: each kill once, in order.


    log = tmp_path / "syslog"
    reports = [_minimal(2 * i, 100_000 + i) for i in range(6000)]
    log.write_text("".join(reports))
    size = log.stat().st_size
    cut = sum(map(len, reports[:5000]))  # a line's end at 5/6 of the log
    segment = 256 << 10
    monkeypatch.setattr(scan, "_SEGMENT", segment)
    monkeypatch.setattr(import_logs, "BATCH", 200)
    trigger = cut if when == "under-the-map" else cut - segment - (40 << 10)

    def truncate(high: int) -> None:  # runs in both readers: the second reaches it first
        if high > trigger:
            os.truncate(log, cut)

    monkeypatch.setattr(scan, "_after_size_check", truncate)
    code, pids, said = _import(tmp_path, log)  # every reading process waited for
    assert code == 0, said
    assert pids == list(range(100_000, 105_000))
    assert f"{log}: the file shrank while it was read (to {cut} bytes from {size})" in said
    assert f"{log}: 5000 kills found, 5000 new" in said


def _import(tmp_path: Path, log: Path) -> tuple[int, list[int], str]:
    """The real command on a real migrated history, reading in children (stderr a file):
    its exit status, the pids it printed, what it said."""
    from test_cli import write_config

    from watchdog_oom.cli import main

    cfg = write_config(tmp_path, f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    out = io.StringIO()
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as err:
        code = main(["-c", str(cfg), "import", "--format", "json", str(log)], stdout=out, stderr=err)
        err.seek(0)
        said = err.read()
    with pytest.raises(ChildProcessError):  # every reading process was waited for
        os.waitpid(-1, os.WNOHANG)
    return code, [k["pid"] for k in json.loads(out.getvalue() or "[]")], said


def test_a_second_reader_stopped_by_its_spools_cap_leaves_the_first_to_read_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The second reader's spool is bounded: at its cap (here a batch's worth) the second
    # stops, quietly; the first has handed over, sends on what was spooled, then reads the
    # rest itself from the last point the parent holds final: each kill once, in order.
    from watchdog_oom.cli import import_parts

    log = tmp_path / "syslog"
    log.write_text("".join(_minimal(2 * i, 100_000 + i) for i in range(6000)))
    monkeypatch.setattr(import_logs, "BATCH", 500)
    monkeypatch.setattr(import_parts, "_SPOOL_CAP", 1)  # the second's first batch is written; then it stops
    code, pids, said = _import(tmp_path, log)
    assert code == 0, said
    assert pids == list(range(100_000, 106_000))
    assert f"{log}: 6000 kills found, 6000 new" in said
    assert "Traceback" not in said and "reading process stopped" not in said and "shrank" not in said


def test_a_second_reader_whose_tmpdir_fills_says_so_in_a_line_and_the_first_reads_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # $TMPDIR on a real tmpfs of 256 kB: the second reader's spool write fails (ENOSPC)
    # after the handover; it says so in one line, and the first reads the rest.
    import subprocess
    import tempfile

    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], capture_output=True,
                             text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        log = tmp_path / "syslog"
        log.write_text("".join(_minimal(2 * i, 100_000 + i) for i in range(6000)))
        monkeypatch.setattr(tempfile, "tempdir", str(small))
        code, pids, said = _import(tmp_path, log)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
    assert code == 0, said
    assert pids == list(range(100_000, 106_000))
    assert f"{log}: 6000 kills found, 6000 new" in said
    assert f"{log}: a second reading process stopped (No space left on device); the first reads on" in said
    assert "Traceback" not in said and len(said.splitlines()) == 3, said  # that line, the year's, the count's

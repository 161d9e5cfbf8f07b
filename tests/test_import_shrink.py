"""`import` of a log truncated while it is read (logrotate's copytruncate on /var/log/syslog):
a mapped page past the new end raises SIGBUS. Neither `import` nor `import --dry-run` dies of
it: the kills before the cut are recorded once, the rest of the file is read with read(),
and the bytes lost are said."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from test_cli import write_config

from watchdog_oom.cli import import_logs, main
from watchdog_oom.parse import scan
from watchdog_oom.store.rows import PID

KILL = ("Jun  3 10:{m:02d}:00 h kernel: Out of memory: Killed process {pid} (app{pid}) total-vm:1000kB, "
        "anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:12kB oom_score_adj:0\n")
NOISE = "Jun  3 10:00:00 h sshd[1]: Accepted publickey for deploy from 10.0.0.1 port 2222 ssh2\n"


def _log(path: Path) -> tuple[int, list[int]]:
    """A 3 MB log with a kill every ~20 KB; returns a cut (a line's end at about 2.2 MB)
    and the pids of the kills before it."""
    pieces, size, cut, before = [], 0, 0, []
    for pid in range(1000, 1150):
        for _ in range(240):
            pieces.append(NOISE)
            size += len(NOISE)
        line = KILL.format(m=pid % 60, pid=pid)
        pieces.append(line)
        size += len(line)
        if size <= 2_200_000:
            cut = size
            before.append(pid)
    path.write_text("".join(pieces))
    return cut, before


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "import"])
@pytest.mark.parametrize("when", ["under-the-map", "between-stretches"])
@pytest.mark.parametrize("hold", [None, 5], ids=["held-to-the-mark", "given-before-the-mark"])
def test_a_log_truncated_while_read_keeps_the_kills_before_the_cut(tmp_path, monkeypatch, dry_run, when, hold):
    log = tmp_path / "syslog"
    cut, before = _log(log)
    size = log.stat().st_size
    segment = 256 << 10
    monkeypatch.setattr(scan, "_SEGMENT", segment)
    if hold is not None:
        # A log dense with kills: the parent gives kills on before the child marks them
        # final (its memory stays bounded), and the child sends batches between marks;
        # read on from the mark after the cut, none of them is given twice.
        monkeypatch.setattr(import_logs, "HOLD", hold)
        monkeypatch.setattr(import_logs, "BATCH", 3)
    # under-the-map: cut just after a size check passed for a stretch reaching past the
    # cut: touching its pages raises SIGBUS (in the reading child, or the forked searcher).
    # between-stretches: cut while a stretch wholly before the cut is read; the next
    # stretch's size check finds the file shorter.
    trigger = cut if when == "under-the-map" else cut - segment - (40 << 10)

    def truncate(high: int) -> None:  # runs in the reading processes (forked with it)
        if high > trigger:
            os.truncate(log, cut)

    monkeypatch.setattr(scan, "_after_size_check", truncate)
    cfg = write_config(tmp_path, f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    out = io.StringIO()
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as err:  # a file: read in a child
        code = main(["-c", str(cfg), "import", *(["--dry-run"] if dry_run else []), "--format", "json", str(log)],
                    stdout=out, stderr=err)
        err.seek(0)
        said = err.read()
    assert code == 0, said
    assert [k["pid"] for k in json.loads(out.getvalue())] == before  # each once, in order
    assert f"{log}: the file shrank while it was read (to {cut} bytes from {size}): " \
           f"{size - cut} bytes could not be read" in said, said
    assert f"{log}: {len(before)} kills found" in said
    with pytest.raises(ChildProcessError):  # the reading child was waited for
        os.waitpid(-1, os.WNOHANG)
    if not dry_run:
        history = io.StringIO()
        assert main(["-c", str(cfg), "history", "--format", "json", "--limit", "1000"],
                    stdout=history, stderr=io.StringIO()) == 0
        assert sorted(k["pid"] for k in json.loads(history.getvalue())) == before


def test_a_reader_ended_by_sigbus_before_its_first_kill_still_says_what_was_lost(tmp_path, monkeypatch):
    # The second reader may cut the log (or touch it after a cut) before the first has sent
    # a kill: the first, computing its stretches, dies of SIGBUS while its pipe buffer still
    # holds the log's size as mapped. Under load that happened one run in ten of the test
    # above. Here the reading child truncates the log and dies so at its first size check.
    import signal

    log = tmp_path / "syslog"
    cut, before = _log(log)
    size = log.stat().st_size
    monkeypatch.setattr(scan, "_SEGMENT", 256 << 10)
    command = os.getpid()

    def die(high: int) -> None:
        if os.getppid() == command:  # the reading child, not the second reader it forks
            os.truncate(log, cut)
            os.kill(os.getpid(), signal.SIGBUS)

    monkeypatch.setattr(scan, "_after_size_check", die)
    out = io.StringIO()
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as err:
        code = main(["import", "--dry-run", "--format", "json", str(log)], stdout=out, stderr=err)
        err.seek(0)
        said = err.read()
    assert code == 0, said
    assert [k["pid"] for k in json.loads(out.getvalue())] == before  # read again from byte 0, each once
    assert f"{log}: the file shrank while it was read (to {cut} bytes from {size}): {size - cut} bytes " \
           "could not be read; read on from byte 0" in said, said


def test_a_log_that_shrank_between_paths_does_not_stop_the_next(tmp_path, monkeypatch):
    first, second = tmp_path / "syslog.1", tmp_path / "syslog"
    cut, before = _log(first)
    _log(second)
    monkeypatch.setattr(scan, "_SEGMENT", 256 << 10)
    seen: list[int] = []

    def truncate_first(high: int) -> None:  # only the first file is cut: once, by the first check past it
        if high > cut and not seen:
            seen.append(high)
            os.truncate(first, cut)

    monkeypatch.setattr(scan, "_after_size_check", truncate_first)
    out = io.StringIO()
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as err:
        code = main(["import", "--dry-run", "--format", "json", str(first), str(second)], stdout=out, stderr=err)
        err.seek(0)
        said = err.read()
    assert code == 0, said
    pids = [k["pid"] for k in json.loads(out.getvalue())]
    assert pids == before + list(range(1000, 1150))
    assert f"{first}: the file shrank while it was read" in said
    assert f"{first}: {len(before)} kills found" in said and f"{second}: 150 kills found" in said


def test_kills_given_on_past_the_last_mark_are_not_given_twice_after_sigbus(tmp_path, monkeypatch):
    # A log dense with kills gives the parent no mark to hold up to: it gives kills on once
    # it holds HOLD of them. A real reading child sends three batches of three, no mark,
    # and dies of SIGBUS; the log is read on from its start, without the six given already.
    import pickle
    import signal

    log = tmp_path / "syslog"
    log.write_text("".join(KILL.format(m=pid % 60, pid=pid) for pid in range(1000, 1010)))
    monkeypatch.setattr(import_logs, "BATCH", 3)
    monkeypatch.setattr(import_logs, "HOLD", 5)
    filing = import_logs.Filing(forced=None, local="h")
    err = io.StringIO()
    readable, writable = os.pipe()
    child = os.fork()
    if child == 0:  # the reading child, as _read_beside's, cut short by a shrinking log
        try:
            import_logs._sigbus_ends_quietly()
            os.close(readable)
            with os.fdopen(writable, "wb") as pipe:
                events = import_logs._events([str(log)], filing, io.StringIO(), marks=True, map_file=False)
                batches = [event for event in events if event[0] == "kills"][:3]
                assert [len(batch[2]) for batch in batches] == [3, 3, 3]
                for event in batches:
                    pickle.dump(event, pipe)
            os.kill(os.getpid(), signal.SIGBUS)
        finally:
            os._exit(1)
    os.close(writable)
    events = list(import_logs._received(readable, child, [str(log)], filing, err))
    pids = [row[PID] for kind, _, payload in events if kind == "kills" for row in payload.rows()]
    assert pids == list(range(1000, 1010)), pids  # each once, in order
    assert events[-1] == ("done", str(log), None)
    assert f"{log}: the file shrank while it was read" in err.getvalue()


# `import --dry-run` of a log, under faulthandler (as `python -X dev`, PYTHONFAULTHANDLER
# and pytest run it), with a hook called after each size check: argv: config, log, cut, and
# what the hook does: "truncate" the log at the cut once a check passed beyond it (in the
# reading child or its searcher), or kill the reading child itself with a signal that is
# a real crash.
UNDER_FAULTHANDLER = """
import os, signal, sys
from watchdog_oom.cli import main
from watchdog_oom.parse import scan
cfg, log, cut, then = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
scan._SEGMENT = 256 << 10
command = os.getpid()

def hook(high):
    if then == "truncate":
        if high > cut:
            os.truncate(log, cut)
    elif os.getppid() == command:  # the reading child, not its searcher
        os.kill(os.getpid(), getattr(signal, then))

scan._after_size_check = hook
sys.exit(main(["-c", cfg, "import", "--dry-run", "--format", "json", log]))
"""


@pytest.mark.parametrize("then", ["truncate", "SIGSEGV"])
def test_a_reader_killed_by_the_expected_sigbus_prints_no_crash_dump_and_a_real_crash_still_does(tmp_path, then):
    import subprocess
    import sys

    log = tmp_path / "syslog"
    cut, before = _log(log)
    cfg = write_config(tmp_path, f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    run = subprocess.run([sys.executable, "-X", "faulthandler", "-c", UNDER_FAULTHANDLER, str(cfg), str(log),
                          str(cut), then], capture_output=True, text=True, env=env, timeout=120)
    if then == "truncate":  # a log cut under the reader's map: SIGBUS, said in one line
        assert run.returncode == 0, run.stderr
        assert [k["pid"] for k in json.loads(run.stdout)] == before
        assert f"{log}: the file shrank while it was read" in run.stderr
        assert "Fatal Python error" not in run.stderr, run.stderr
    else:  # any other fatal signal of the reader is a crash, and faulthandler shows where
        assert run.returncode != 0
        assert "the reading process was killed by SIGSEGV" in run.stderr, run.stderr
        assert "Fatal Python error: Segmentation fault" in run.stderr, run.stderr

"""The oom_reaper's line (parse/reaper.py): the kill it stands for when the log lost the
kill's own line, and nothing when the kill line was read, on the live path and in `import`."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from test_cli import run, write_config

from watchdog_oom.model import KernelLine
from watchdog_oom.parse import OomParser, Unread, iter_kills, parse_text

DATA = Path(__file__).parent / "data"
# A real 6.18 memcg kill as /dev/kmsg gave it (this machine's kernel), and the reaper's
# line the kernel prints for that victim when it has not freed its memory within
# OOM_REAPER_DELAY (2 s): the same pid and name, its rss after the reap.
KMSG = (DATA / "kmsg_6.18_memcg_v1_python3.kmsg").read_text().splitlines()
KILL_AT = 41357569  # the kill line's time (µs since boot)
REAPER = "6,424,{usec},-;oom_reaper: reaped process 1772 (python3), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"
FIGURES = "total-vm:4kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0"


def _live(lines: list[str]) -> list:
    """The kills the daemon's strict parser gives for kmsg records, as kmsg.py hands them on."""
    parser, kills = OomParser(), []
    for record in lines:
        head, _, text = record.partition(";")
        kills += parser.feed(KernelLine(text=text, source="kmsg", mono_usec=int(head.split(",")[2]), boot_id="b"))
    return kills + parser.flush()


def test_a_real_kill_then_its_reapers_line_is_one_kill_on_the_live_path() -> None:
    (kill,) = _live([*KMSG, REAPER.format(usec=KILL_AT + 2_000_300)])
    assert (kill.pid, kill.anon_rss_kb, kill.mono_usec) == (1772, 65152, KILL_AT)
    assert kill.extra["evidence"]["read_from"] == "kernel report"


def test_the_reapers_line_alone_is_the_kill_when_the_kill_line_was_lost() -> None:
    # The ring buffer overwrote the report before it was read (kmsg's EPIPE): the reaper's
    # line, two seconds on, is what is left of the kill.
    (kill,) = _live([REAPER.format(usec=KILL_AT + 2_000_300)])
    assert (kill.pid, kill.process, kill.killer, kill.mono_usec) == (1772, "python3", "kernel", KILL_AT + 2_000_300)
    # the figures the reaper prints are after its work: none of them is the kill's
    assert (kill.total_vm_kb, kill.anon_rss_kb, kill.file_rss_kb, kill.shmem_rss_kb) == (None, None, None, None)
    assert kill.extra["after_reap"] == {"anon_rss_kb": 0, "file_rss_kb": 0, "shmem_rss_kb": 0}
    assert kill.extra["evidence"] == {"read_from": "kernel oom_reaper line alone", "lines": ["oom_reaper"],
                                      "wording": "kernel: oom_reaper reaped process (4.6-6.x)", "format": "kmsg",
                                      "wrappers": [], "tag": None}


def test_each_real_report_then_its_reapers_line_is_one_kill() -> None:
    # Every capture in tests/data holding a reaper's line gives what it gave without it.
    for path in sorted(DATA.rglob("*.log")):
        text = path.read_text(encoding="utf-8")
        if "oom_reaper: reaped" not in text or path.name.startswith("rotated-"):
            continue
        without = "\n".join(line for line in text.splitlines() if "oom_reaper: reaped" not in line)
        assert parse_text(text, year=2024) == parse_text(without, year=2024), path.name


def test_a_reapers_line_after_the_next_reports_kill_is_still_its_own_victims() -> None:
    # Two cgroups out of memory at once: the reaper's line of the first victim comes after
    # the second's report and kill (5.18+ reaps two seconds after the kill).
    lines = [f"[ 10.000000] Memory cgroup out of memory: Killed process 7 (a) {FIGURES}",
             "[ 10.500000] b invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
             f"[ 10.600000] Memory cgroup out of memory: Killed process 8 (b) {FIGURES}",
             "[ 12.000100] oom_reaper: reaped process 7 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
             "[ 12.600100] oom_reaper: reaped process 8 (b), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"]
    assert [(k.pid, k.extra["evidence"]["read_from"]) for k in parse_text("\n".join(lines))] == [
        (7, "kernel kill line alone"), (8, "kernel report")]


@pytest.mark.parametrize(("reaper", "kills"), [
    ("[ 71.000000] oom_reaper: reaped process 7 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB", [7, 7]),
    ("[ 10.100000] oom_reaper: reaped process 7 (b), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB", [7, 7]),
    ("[ 10.100000] oom_reaper: reaped process 7 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB", [7]),
], ids=["a minute later: the pid reused", "another name: another process", "the same victim"])
def test_a_reapers_line_is_the_kill_lines_victim_only_when_pid_name_and_time_agree(reaper: str, kills: list) -> None:
    text = f"[ 10.000000] Out of memory: Killed process 7 (a) {FIGURES}\n{reaper}"
    assert [k.pid for k in parse_text(text)] == kills


def test_a_syslog_reapers_line_in_whole_seconds_is_its_victims() -> None:
    when = datetime(2024, 6, 3, 10, 0, 0)
    lines = [f"{(when + timedelta(seconds=s)).strftime('%b %e %H:%M:%S')} h kernel: {text}" for s, text in [
        (0, f"Out of memory: Killed process 7 (a) {FIGURES}"),
        (2, "oom_reaper: reaped process 7 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"),
        (5, "oom_reaper: reaped process 9 (c), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB")]]
    assert [(k.pid, k.time) for k in parse_text("\n".join(lines), year=2024)] == [
        (7, when), (9, when + timedelta(seconds=5))]


def test_a_selection_whose_kill_line_was_lost_is_one_kill_with_its_reapers_line() -> None:
    # Up to 5.0 the kernel printed its selection, then "Killed process"; the second lost,
    # the reaper's line of the selected task confirms the selection's kill, once.
    lines = ["[ 9.100000] Out of memory: Kill process 812 (mysqld) score 901 or sacrifice child",
             "[ 9.150000] oom_reaper: reaped process 812 (mysqld), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"]
    parser = OomParser(lenient=True)
    assert parser.feed(KernelLine(text=lines[0], source="t", wrapped=True)) == []
    (kill,) = parser.feed(KernelLine(text=lines[1], source="t", wrapped=True))
    assert (kill.pid, kill.score, kill.extra["evidence"]["read_from"]) == (812, 901, "kernel selection line alone")
    assert parser.flush() == []


def test_a_victim_earlyoom_signalled_then_the_kernel_reaped_is_earlyooms_kill_alone() -> None:
    # The kernel's OOM killer found earlyoom's victim already dying and had it reaped.
    text = ('Jun  3 10:00:00 h earlyoom[5]: sending SIGKILL to process 4242 uid 1000 "java": badness 900, '
            "VmRSS 3000 MiB\n"
            "Jun  3 10:00:01 h kernel: oom_reaper: reaped process 4242 (java), now anon-rss:0kB, file-rss:0kB, "
            "shmem-rss:0kB\n")
    assert [(k.pid, k.killer) for k in parse_text(text, year=2024)] == [(4242, "earlyoom")]


@pytest.mark.parametrize("line", [
    "Jun  3 10:00:00 h alice: oom_reaper: reaped process 7 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    '{"_TRANSPORT":"syslog","SYSLOG_IDENTIFIER":"alice","MESSAGE":"oom_reaper: reaped process 7 (a), now '
    'anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"}',
])
def test_a_reapers_line_written_with_logger_is_no_kill(line: str) -> None:
    unread = Unread()
    assert parse_text(line, unread=unread) == []
    assert unread.count == 1 and "alice" in unread.first[0].reason


def test_what_the_reaper_says_without_reaping_is_no_kill() -> None:
    assert parse_text("[ 5.000000] oom_reaper: unable to reap pid:7 (a)\n"
                      "[ 5.000001] oom_reaper: reaped process x (a), now anon-rss:0kB") == []


def test_a_repeated_reapers_line_is_one_kill_and_a_cut_one_names_its_victim() -> None:
    line = "[ 5.000000] oom_reaper: reaped process 7 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"
    assert len(parse_text(f"{line}\n{line}")) == 1
    (kill,) = parse_text("[ 5.000000] oom_reaper: reaped process 7 (x) y), now anon-rss:12kB, file-")
    assert (kill.process, kill.extra["after_reap"]) == ("x) y", {"anon_rss_kb": 12})


def test_the_import_scanner_finds_a_lone_reapers_line_among_noise() -> None:
    noise = b"".join(b"Jun  3 10:00:%02d web-01 sshd[%d]: Accepted publickey for root\n" % (i % 60, i)
                     for i in range(40_000))
    reaper = b"Jun  3 10:01:00 web-01 kernel: oom_reaper: reaped process 7 (a), now anon-rss:0kB, file-rss:0kB, " \
             b"shmem-rss:4kB\n"
    log = noise + reaper + noise
    assert len(log) > 2 << 20  # mapped and searched in two halves where a file is given
    expected = parse_text(log.decode(), year=2024)
    assert [(k.pid, k.extra["after_reap"]["shmem_rss_kb"]) for k in expected] == [(7, 4)]
    assert list(iter_kills(io.BytesIO(log), "import", year=2024, chunk_size=1 << 20)) == expected


def test_import_of_a_log_rotated_between_a_kill_line_and_its_reapers_line_records_one_kill(tmp_path: Path) -> None:
    # logrotate cut kern.log after the kill line: kern.log.1 holds it, kern.log opens with
    # the reaper's line. Imported alone, kern.log records the kill from the reaper's line;
    # with kern.log.1, the two sightings are one kill (the store's rule: host, pid, name, time).
    real = (DATA / "oom_logs" / "20_docker-host_syslog_four-kills-paren-name.log").read_text().splitlines(True)
    (tmp_path / "kern.log.1").write_text(real[0])
    (tmp_path / "kern.log").write_text("".join(real[1:]))
    cfg = write_config(tmp_path, f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    code, out, err = run("import", "--year", "2024", "--format", "json", str(tmp_path / "kern.log"), config=cfg)
    assert code == 0, err
    assert [(k["pid"], k["anon_rss_kb"], k["evidence"]["read_from"]) for k in json.loads(out)] == [
        (15784, None, "kernel oom_reaper line alone"), (15925, 4064, "kernel kill line alone"),
        (15783, 4288, "kernel kill line alone"), (15934, 4064, "kernel kill line alone")]
    _, shown, _ = run("show", "1", config=cfg)
    assert "read from      the oom_reaper's line alone (rss after the reap: anon 0 kB, file 0 kB, shmem 0 kB)" in shown
    code, out, err = run("import", "--year", "2024", "--format", "json", str(tmp_path / "kern.log.1"), config=cfg)
    assert code == 0 and "1 kill found, 0 new, 1 already recorded" in err, err
    _, out, _ = run("history", "--since", "3000d", "--format", "json", config=cfg)
    assert sorted(k["pid"] for k in json.loads(out)) == [15783, 15784, 15925, 15934]
    (first,) = [k for k in json.loads(out) if k["pid"] == 15784]
    assert first["anon_rss_kb"] == 4288  # the kill line's figures fill what the reaper's line could not say


def test_times_without_zone_and_with_zone_are_not_compared() -> None:
    # A syslog kill line (local time, no zone) and a journal reaper line (UTC): no time to
    # compare, so pid and name decide.
    aware = datetime(2024, 6, 3, 10, 0, 2, tzinfo=timezone.utc)
    parser = OomParser()
    parser.feed(KernelLine(text=f"Out of memory: Killed process 7 (a) {FIGURES}", source="file:x",
                           time=datetime(2024, 6, 3, 12, 0, 0)))
    assert parser.feed(KernelLine(text="oom_reaper: reaped process 7 (a), now anon-rss:0kB, file-rss:0kB, "
                                       "shmem-rss:0kB", source="journal", time=aware)) == []


def test_a_daemon_restarted_between_a_kill_line_and_its_reapers_line_records_one_kill(tmp_path: Path, t0) -> None:
    # The daemon read the kill line and stored it, then restarted (a new parser, which
    # knows nothing of it) before the reaper's line came: the store takes that line for
    # the kill it follows (the same boot, pid and name, two seconds on), not for another.
    from proctree import ProcTree

    from tests.history_of import history_of
    from watchdog_oom.clock import FakeClock
    from watchdog_oom.config import parse_config
    from watchdog_oom.daemon import Daemon
    from watchdog_oom.daemon.pipeline import Pipeline

    cfg = parse_config(f"host: web-01\ndatabase: sqlite:///{tmp_path}/history.db\n"
                       f"procfs: {ProcTree(tmp_path).root}\nkernel_log:\n  source: none\n", env={})
    daemon = Daemon(cfg, clock=FakeClock(t0))
    daemon.store.upgrade()

    def read(record: str, usec_after_kill: int) -> None:
        text = record.partition(";")[2]
        Pipeline(daemon.shared, "kmsg", first_start=False).handle(
            KernelLine(text=text, source="kmsg", mono_usec=KILL_AT + usec_after_kill, boot_id="b",
                       time=t0 + timedelta(microseconds=usec_after_kill)))

    kill_line = next(record for record in KMSG if "Killed process" in record)
    read(kill_line, 0)
    read(REAPER.format(usec=0), 2_000_300)  # the restarted daemon's first line
    read(REAPER.replace("1772", "1773").format(usec=0), 2_500_000)  # another victim's, its kill line lost
    kills = sorted(history_of(daemon).kills(), key=lambda k: k.pid)
    assert [(k.pid, k.anon_rss_kb) for k in kills] == [(1772, 65152), (1773, None)]


@pytest.mark.parametrize("order", ["kill line first", "reaper's line first"])
def test_dmesg_logs_imported_one_after_the_other_record_one_kill(tmp_path: Path, order: str) -> None:
    # dmesg text carries no wall time: only the uptime tells two lines of one kill apart
    # from two kills of one pid; the reaper's line comes two seconds after the kill's.
    kill = f"[   10.000000] Out of memory: Killed process 7 (a) {FIGURES}\n"
    reaper = "[   12.000100] oom_reaper: reaped process 7 (a), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB\n"
    first, second = (kill, reaper) if order == "kill line first" else (reaper, kill)
    (tmp_path / "dmesg.1").write_text(first)
    (tmp_path / "dmesg.2").write_text(second)
    cfg = write_config(tmp_path, f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    for name, said in (("dmesg.1", "1 new, 0 already recorded"), ("dmesg.2", "0 new, 1 already recorded")):
        code, _, err = run("import", str(tmp_path / name), config=cfg)
        assert code == 0 and said in err, err
    _, shown, _ = run("show", "1", "--format", "json", config=cfg)
    assert (json.loads(shown)["anon_rss_kb"], json.loads(shown)["total_vm_kb"]) == (4, 4)  # the kill line's
    code, _, err = run("show", "2", config=cfg)
    assert code == 1


def test_the_store_takes_a_reapers_line_for_its_kill_only_within_its_lag(store, t0) -> None:
    # On SQLite and PostgreSQL: kmsg sightings (boot id and uptime) of pid 7 "a".
    from watchdog_oom.model import OomKill

    def kill(mono: int, reaped: bool = False, boot: str | None = "b", **figures) -> OomKill:
        extra = {"after_reap": {"anon_rss_kb": 0}} if reaped else {}
        return OomKill(pid=7, process="a", time=t0 + timedelta(microseconds=mono), mono_usec=mono, boot_id=boot,
                       source="kmsg", extra=extra, **figures)

    with store.tx() as tx:
        assert tx.add_kill(kill(10_000_000, anon_rss_kb=4), t0) is not None
        assert tx.add_kill(kill(12_000_100, reaped=True), t0) is None  # its reaper's line
        assert tx.add_kill(kill(12_000_100), t0) is not None  # a kill line 2 s on: another kill
        assert tx.add_kill(kill(80_000_000, reaped=True), t0) is not None  # a minute on: another victim
        assert tx.add_kill(kill(11_000_000, reaped=True, boot="other"), t0) is not None  # another boot
    with store.tx() as tx:  # the reverse: the reaper's line stored first, the kill line later
        assert tx.add_kill(OomKill(pid=8, process="b", mono_usec=5_000_000, boot_id="b", source="kmsg",
                                   extra={"after_reap": {}}), t0) is not None
        assert tx.add_kill(OomKill(pid=8, process="b", mono_usec=3_000_000, boot_id="b", source="kmsg",
                                   anon_rss_kb=9), t0) is None
    assert [(k.pid, k.mono_usec, k.anon_rss_kb) for k in sorted(store.kills(), key=lambda k: k.id)] == [
        (7, 10_000_000, 4), (7, 12_000_100, None), (7, 80_000_000, None), (7, 11_000_000, None),
        (8, 5_000_000, 9)]


def test_two_dmesg_kill_lines_of_one_pid_are_still_two_kills(store, t0) -> None:
    from watchdog_oom.model import OomKill

    with store.tx() as tx:
        for mono in (10_000_000, 12_000_000):
            assert tx.add_kill(OomKill(pid=7, process="a", mono_usec=mono, source="import:dmesg"), t0) is not None

"""The daemon's periodic checks, driven one at a time on fake and live /proc with a real database."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from proctree import ProcTree

from tests.history_of import history_of
from watchdog_oom.clock import FakeClock
from watchdog_oom.config import parse_config
from watchdog_oom.daemon import Daemon
from watchdog_oom.daemon.pipeline import Pipeline
from watchdog_oom.model import KernelLine, OomKill

DEFAULT_PROCESSES = """
processes:
  critical:
    - name: mysqld
    - name: sshd
"""


def make_service(tmp_path: Path, procfs: Path | str, t0, extra: str = "",
                 processes: str = DEFAULT_PROCESSES, database: str | None = None) -> Daemon:
    cfg = parse_config(f"""
host: web-01
database: {database or f"sqlite:///{tmp_path}/history.db"}
procfs: {procfs}
kernel_log:
  source: none
commit:
  for: 0s
memory:
  for: 0s
{processes}
{extra}
""", env={})
    service = Daemon(cfg, clock=FakeClock(t0))
    service.store.upgrade()
    return service


def overcommitted(tmp_path: Path, committed: int) -> ProcTree:
    return (ProcTree(tmp_path)
            .meminfo(MemTotal=24258840, MemAvailable=6000000, SwapTotal=8396200, SwapFree=8396200,
                     CommitLimit=30229156, Committed_AS=committed)
            .overcommit(1, 90)
            .process(101, "java", 1350, 0, uid=1000, rss_kb=9_000_000, cmdline=["java", "-jar", "app.jar"])
            .process(202, "mysqld", 1100, 0, uid=27, rss_kb=6_000_000, cmdline=["/usr/sbin/mysqld"])
            .process(505, "sshd", 0, -1000, rss_kb=8_000))


def test_commit_warning_names_the_likely_victims(tmp_path, t0):
    tree = overcommitted(tmp_path, 64262056)
    service = make_service(tmp_path, tree.root, t0)
    service.jobs.processes()
    service.jobs.memory()
    alerts = {a.key: a for a in history_of(service).alerts()}
    commit = alerts["commit"]
    assert commit.severity == "critical" and commit.status == "firing"
    victims = commit.data["victims"]
    assert [(v["process"], v["critical"]) for v in victims[:2]] == [("java", False), ("mysqld", True)]
    assert victims[0]["rss_kb"] == 9_000_000 and victims[0]["oom_score"] == 1350
    assert "process.at_risk:mysqld" in alerts and "process.at_risk:sshd" not in alerts


def test_commit_alert_resolves_when_commit_falls(tmp_path, t0):
    tree = overcommitted(tmp_path, 64262056)
    service = make_service(tmp_path, tree.root, t0)
    service.jobs.memory()
    tree.meminfo(Committed_AS=10_000_000)
    service.shared.clock.t = t0 + timedelta(seconds=10)
    service.jobs.memory()
    (commit,) = [a for a in history_of(service).alerts() if a.key == "commit"]
    assert commit.status == "resolved" and commit.resolved_at == t0 + timedelta(seconds=10)


def test_firing_alert_repeats_after_repeat_interval(tmp_path, t0):
    tree = overcommitted(tmp_path, 64262056)
    extra = """
notifications:
  repeat_interval: 1h
  channels:
    - name: hook
      type: webhook
      url: http://127.0.0.1:9/hook
      min_severity: warning
      kinds: ["commit.*"]
"""
    service = make_service(tmp_path, tree.root, t0, extra)
    service.jobs.memory()
    service.shared.clock.t = t0 + timedelta(minutes=30)
    service.jobs.memory()
    service.shared.clock.t = t0 + timedelta(minutes=61)
    service.jobs.memory()
    reasons = [n.reason for n in reversed(history_of(service).notifications())]
    assert reasons == ["first", "repeat"]


def test_unlogged_kills_are_alerted_from_vmstat(tmp_path, t0):
    tree = overcommitted(tmp_path, 10_000_000).vmstat(oom_kill=5)
    service = make_service(tmp_path, tree.root, t0)
    service.jobs.memory()  # baseline
    tree.vmstat(oom_kill=8)
    service.jobs.memory()  # seen once: the log may just lag
    assert not [a for a in history_of(service).alerts() if a.key == "oom.unlogged"]
    service.jobs.memory()
    (alert,) = [a for a in history_of(service).alerts() if a.key == "oom.unlogged"]
    assert alert.data["missing"] == 3 and "3 OOM kills with no log record" in alert.summary
    service.jobs.memory()
    assert len([a for a in history_of(service).alerts() if a.key == "oom.unlogged"]) == 1  # not again


def test_a_resolution_while_the_database_is_down_is_stored_once_it_is_back(tmp_path, t0, own_pg):
    # The rules' state lives in memory; what they decided is stored in the check's transaction.
    # When that fails, the decision must not stay made: a commit alert that resolved while
    # PostgreSQL was down stayed firing in the history (repeated every repeat_interval) for good.
    tree = overcommitted(tmp_path, 64262056)
    hook = """
notifications:
  channels:
    - {name: hook, type: webhook, url: "http://127.0.0.1:9/hook", kinds: ["commit*"]}
"""
    service = make_service(tmp_path, tree.root, t0, hook, database=own_pg.url)
    clock = service.shared.clock
    service.jobs.memory()
    assert [(a.key, a.status) for a in history_of(service).alerts() if a.key == "commit"] == [("commit", "firing")]
    own_pg.stop()
    tree.meminfo(Committed_AS=10_000_000)
    clock.t = t0 + timedelta(seconds=10)
    with pytest.raises(Exception, match="connect|closed|terminat"):
        service.jobs.memory()
    # The check ran: systemd's watchdog is fed (a daemon holding kills through an outage
    # must not be restarted for it), and the database watch is the one to alert.
    assert service.shared.host.last_check == clock.t
    own_pg.start()
    clock.t = t0 + timedelta(seconds=20)
    service.jobs.memory()
    (commit,) = [a for a in history_of(service).alerts() if a.key == "commit"]
    assert commit.status == "resolved" and commit.resolved_at == t0 + timedelta(seconds=20)
    assert sorted(n.reason for n in history_of(service).notifications()) == ["first", "resolved"]
    service.store.close()


DOCKER = "/system.slice/docker-5d1e7c3b9a2f4e6d8c0b1a3f5e7d9c2b4a6f8e0d1c3b5a7f9e2d4c6b8a0f1e3d.scope"


def with_cgroups(tmp_path: Path, t0):
    """A service over a fake /proc and, beside it, the captured cgroup v2 tree (a Docker
    container among others), with both kill counters' baselines taken."""
    tree = overcommitted(tmp_path, 10_000_000).vmstat(oom_kill=5)
    shutil.copytree(Path(__file__).parent / "data" / "cgroups" / "v2-systemd-docker-k8s-podman",
                    tmp_path / "sys" / "fs" / "cgroup")
    service = make_service(tmp_path, tree.root, t0)
    service.shared.boot_id = "b"
    service.jobs.memory()
    service.jobs.cgroups()
    return tree, service


def kill_uncounted_in(tmp_path: Path, cgroup: str) -> None:
    """The kernel's counting of one kill in `cgroup` (v2 memory.events, its own and up the tree)."""
    events = tmp_path / "sys" / "fs" / "cgroup" / cgroup.lstrip("/") / "memory.events"
    counts = dict(line.split() for line in events.read_text().splitlines())
    counts["oom_kill"] = str(int(counts["oom_kill"]) + 1)
    events.write_text("".join(f"{k} {v}\n" for k, v in counts.items()))


def unlogged_alerts(service) -> list:
    return sorted(((a.key, a.data.get("cgroup"), a.data["missing"])
                   for a in history_of(service).alerts() if a.kind == "oom.unlogged"), key=str)


@pytest.mark.parametrize("cgroups_first", [False, True])
def test_a_lost_kill_in_a_cgroup_is_one_alert_naming_the_cgroup(tmp_path, t0, cgroups_first):
    # The host's /proc/vmstat counter and the container's memory.events both count the kill
    # the log lost: one notification, the cgroup's, whichever check sees it first.
    tree, service = with_cgroups(tmp_path, t0)
    tree.vmstat(oom_kill=6)
    kill_uncounted_in(tmp_path, DOCKER)
    jobs = [service.jobs.cgroups, service.jobs.memory] if cgroups_first else [service.jobs.memory,
                                                                               service.jobs.cgroups]
    for step in range(1, 7):
        service.shared.clock.t = t0 + timedelta(seconds=step)
        jobs[step % 2]()
    assert unlogged_alerts(service) == [(f"oom.unlogged:{DOCKER}", DOCKER, 1)]
    # A kill no watched cgroup counted (a global OOM kill of an unlimited service) is the host's.
    tree.vmstat(oom_kill=7)
    for step in range(7, 13):
        service.shared.clock.t = t0 + timedelta(seconds=step)
        jobs[step % 2]()
    assert unlogged_alerts(service) == [("oom.unlogged", None, 1), (f"oom.unlogged:{DOCKER}", DOCKER, 1)]


def test_the_host_waits_for_no_cgroup_check_that_has_stalled(tmp_path, t0):
    tree, service = with_cgroups(tmp_path, t0)
    tree.vmstat(oom_kill=6)
    for step in (40, 41):  # the cgroups' check last looked 40 s ago: it reads nothing now
        service.shared.clock.t = t0 + timedelta(seconds=step)
        service.jobs.memory()
    assert unlogged_alerts(service) == [("oom.unlogged", None, 1)]


@pytest.fixture
def children():
    procs: list[subprocess.Popen] = []

    def spawn(marker: str, adj: int) -> subprocess.Popen:
        code = ("import sys,time; open('/proc/self/oom_score_adj','w').write(sys.argv[1]); "
                "print('ready', flush=True); time.sleep(60)")
        p = subprocess.Popen([sys.executable, "-c", code, str(adj), marker], stdout=subprocess.PIPE)
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"  # its adj is written
        return p

    yield spawn
    for p in procs:
        p.kill()
        p.wait()


def adj_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/oom_score_adj").read_text())


def test_protect_lowers_only_critical_processes_and_records_it(tmp_path, t0, children):
    marker = f"critical-{uuid.uuid4().hex}"
    critical = children(marker, 500)
    bystander = children(f"other-{uuid.uuid4().hex}", 500)
    assert adj_of(critical.pid) == 500
    service = make_service(tmp_path, "/proc", t0, processes=f"""
processes:
  critical:
    - cmdline: '{marker}'
  protect: true
  protect_adj: 0
""")
    service.jobs.processes()
    assert adj_of(critical.pid) == 0
    assert adj_of(bystander.pid) == 500
    (change,) = history_of(service).protections()
    assert (change.pid, change.from_adj, change.to_adj, change.error) == (critical.pid, 500, 0, None)
    service.jobs.processes()  # already protected: nothing more to do
    assert len(history_of(service).protections()) == 1


def test_kills_are_held_while_the_database_refuses_and_stored_once_it_answers(tmp_path, t0):
    import sqlite3

    from watchdog_oom.sources.kmsg import parse_record

    service = make_service(tmp_path, ProcTree(tmp_path).root, t0)
    pipeline = Pipeline(service.shared, "kmsg", first_start=False)
    db = tmp_path / "history.db"
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE kills RENAME TO kills_away")
    capture = (Path(__file__).parent / "data" / "kmsg_6.18_memcg_v1_python3.kmsg").read_bytes()
    for raw in capture.splitlines():
        record = parse_record(raw)
        pipeline.handle(KernelLine(text=record.text, source="kmsg", mono_usec=record.usec, seq=record.seq,
                                   boot_id="b", cursor=f"b:{record.seq}", time=t0))
    assert [k.pid for k in pipeline.unsaved] == [1772]
    pipeline.handle(None)  # still refused: still held
    assert len(pipeline.unsaved) == 1
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE kills_away RENAME TO kills")
    pipeline.handle(None)
    assert pipeline.unsaved == []
    assert [k.pid for k in history_of(service).kills()] == [1772]
    with service.store.tx() as tx:
        assert tx.get_cursor("kmsg") == f"b:{record.seq}"


def test_buffer_kills_stored_after_the_vmstat_baseline_do_not_hide_unlogged_ones(tmp_path, t0):
    tree = overcommitted(tmp_path, 10_000_000).vmstat(oom_kill=3)
    service = make_service(tmp_path, tree.root, t0)
    service.shared.boot_id = "b"
    service.jobs.memory()  # baseline: 3 counted, none recorded yet
    with service.store.tx() as tx:  # the buffer's 3 old kills arrive after the baseline
        for pid in (1, 2, 3):
            tx.add_kill(OomKill(pid=pid, process="x", boot_id="b", mono_usec=pid, time=t0, source="kmsg"), t0)
    service.jobs.memory()
    tree.vmstat(oom_kill=5)  # two kills the log never showed
    service.jobs.memory()
    service.jobs.memory()
    (alert,) = [a for a in history_of(service).alerts() if a.key == "oom.unlogged"]
    assert alert.data["missing"] == 2


def test_kills_from_a_live_log_file_count_for_this_boot(tmp_path, t0):
    tree = overcommitted(tmp_path, 10_000_000).uptime(3600)
    service = make_service(tmp_path, tree.root, t0)
    recent = OomKill(pid=7, process="java", time=t0 - timedelta(minutes=5), source="file:/var/log/kern.log")
    before_boot = recent.replace(time=t0 - timedelta(hours=2))
    pipeline = Pipeline(service.shared, "file:/var/log/kern.log", first_start=False)
    assert pipeline.enrich(recent).boot_id == service.shared.boot_id
    assert pipeline.enrich(before_boot).boot_id is None


def test_a_systemd_oomd_kill_is_recorded_and_logged_without_a_pid(tmp_path, t0, caplog):

    service = make_service(tmp_path, ProcTree(tmp_path).root, t0)
    pipeline = Pipeline(service.shared, "journal", first_start=False)
    line = ("systemd-oomd[611]: Killed /system.slice/batch.service due to memory pressure for "
            "/system.slice being 80.12% > 50.00% for > 20s with reclaim activity")
    with caplog.at_level("WARNING", logger="watchdog_oom"):
        pipeline.handle(KernelLine(text=line, source="journal", time=t0, cursor="c1"))
    (kill,) = history_of(service).kills()
    assert kill.pid is None and kill.killer == "systemd-oomd" and kill.process == "batch.service"
    assert any("batch.service (a cgroup) killed by systemd-oomd" in r.getMessage() for r in caplog.records)


def eventually(predicate, timeout: float = 60.0) -> bool:
    """Whether `predicate()` comes true within `timeout` seconds (another thread makes it so)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_kernel_log_thread_outlives_a_database_failure_and_alerts_later(tmp_path, t0, caplog):
    import dataclasses
    import sqlite3
    import threading

    from watchdog_oom.config import KernelLogConfig

    service = make_service(tmp_path, ProcTree(tmp_path).root, t0)
    service.shared.cfg = dataclasses.replace(service.cfg, kernel_log=KernelLogConfig(
        source="kmsg", path=str(tmp_path / "no-kmsg")))
    db = tmp_path / "history.db"
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE alerts RENAME TO alerts_away")  # the database refuses the alert
    service.follower.source_problem = "journalctl exited with status 1"
    thread = threading.Thread(target=service.follower.loop, args=(Pipeline(service.shared, "kmsg", False),))
    thread.start()
    assert eventually(lambda: any("unexpected failure" in r.getMessage() for r in caplog.records))
    assert thread.is_alive()
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE alerts_away RENAME TO alerts")
    assert eventually(lambda: [a for a in history_of(service).alerts() if a.key == "kernel_log.down"])
    service.stop_event.set()
    thread.join(timeout=60)
    assert not thread.is_alive()
    (alert,) = [a for a in history_of(service).alerts() if a.key == "kernel_log.down"]
    assert alert.status == "firing" and "status 1" in alert.summary


def test_a_source_reopened_before_catching_up_still_sends_one_summary(tmp_path, t0):
    from watchdog_oom.model import CaughtUp

    service = make_service(tmp_path, ProcTree(tmp_path).root, t0, extra="""
notifications:
  channels:
    - {name: hook, type: webhook, url: 'http://127.0.0.1:9/x', min_severity: info}
""")
    pipeline = Pipeline(service.shared, "journal", first_start=True)
    kill_line = ("Out of memory: Killed process {pid} (java) total-vm:100kB, anon-rss:50kB, file-rss:0kB, "
                 "shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0")
    pipeline.handle(KernelLine(text=kill_line.format(pid=1111), source="journal", time=t0, cursor="c1"))
    pipeline.resume("journal", first_start=False)  # the source failed before catching up
    pipeline.handle(KernelLine(text=kill_line.format(pid=2222), source="journal", time=t0, cursor="c2"))
    pipeline.handle(CaughtUp("journal"))
    (note,) = history_of(service).notifications()
    assert note.data["backlog"] is True and sorted(k["pid"] for k in note.data["kills"]) == [1111, 2222]

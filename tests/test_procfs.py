"""procfs.py against fake /proc trees built with tests/proctree.py, and against the live /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.proctree import ProcTree
from watchdog_oom import procfs

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
LIVE = os.path.isfile("/proc/self/oom_score_adj")
needs_live_proc = pytest.mark.skipif(not LIVE, reason="needs a Linux /proc with oom_score_adj")


def has_cap_sys_resource() -> bool:
    """Whether this process may lower oom_score_adj below its oom_score_adj_min (CAP_SYS_RESOURCE, 24)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def sleeper(*, oom_score_adj: int | None = None) -> subprocess.Popen[bytes]:
    """A real child process that sleeps until killed, optionally with a set oom_score_adj."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    if oom_score_adj is not None:
        Path(f"/proc/{child.pid}/oom_score_adj").write_text(str(oom_score_adj))
    return child


# --- memory files -------------------------------------------------------------------


def test_meminfo_is_read_in_kb_and_counts(tmp_path):
    root = str(ProcTree(tmp_path).meminfo(MemTotal=1000, **{"Active(anon)": 7}).root)
    meminfo = procfs.read_meminfo(root)
    assert meminfo["MemTotal"] == 1000
    assert meminfo["Active(anon)"] == 7
    assert meminfo["HugePages_Total"] == 0


def test_vmstat_counters(tmp_path):
    root = str(ProcTree(tmp_path).vmstat(oom_kill=3, nr_free_pages=99).root)
    assert procfs.read_vmstat(root) == {"oom_kill": 3, "nr_free_pages": 99}


def test_pressure_is_parsed(tmp_path):
    root = str(ProcTree(tmp_path).pressure(some=12.5, full=3.25, full_total=4242).root)
    pressure = procfs.read_pressure(root)
    assert pressure["some"]["avg10"] == 12.5
    assert pressure["full"] == {"avg10": 3.25, "avg60": 1.62, "avg300": 0.81, "total": 4242}


def test_pressure_is_none_without_psi(tmp_path):
    assert procfs.read_pressure(str(ProcTree(tmp_path).root)) is None


def test_overcommit_settings_and_missing_kbytes_on_old_kernels(tmp_path):
    tree = ProcTree(tmp_path).overcommit(2, 90, 0)
    assert procfs.read_overcommit(str(tree.root)) == (2, 90, 0)
    tree.remove("sys/vm/overcommit_kbytes")
    assert procfs.read_overcommit(str(tree.root)) == (2, 90, None)


def test_boot_id_and_uptime(tmp_path):
    root = str(ProcTree(tmp_path).boot_id("abc-123").uptime(42.25).root)
    assert procfs.read_boot_id(root) == "abc-123"
    assert procfs.read_uptime(root) == 42.25
    empty = str(ProcTree(tmp_path / "empty", defaults=False).root)
    assert procfs.read_boot_id(empty) is None
    assert procfs.read_uptime(empty) is None


def test_sample_gathers_meminfo_overcommit_psi_and_kill_count(tmp_path):
    root = str(
        ProcTree(tmp_path)
        .meminfo(MemTotal=30_000_000, SwapTotal=2_000_000, Committed_AS=64_000_000, CommitLimit=30_229_156)
        .overcommit(2, 90)
        .pressure(some=4.0, full=1.5, full_total=777)
        .vmstat(oom_kill=2)
        .root
    )
    s = procfs.sample(root, NOW)
    assert s.time == NOW
    assert (s.mem_total_kb, s.swap_total_kb, s.committed_as_kb, s.commit_limit_kb) == (
        30_000_000, 2_000_000, 64_000_000, 30_229_156)
    assert s.mem_available_kb == 8_192_000
    assert (s.overcommit_memory, s.overcommit_ratio, s.overcommit_kbytes) == (2, 90, 0)
    assert (s.psi_some_avg10, s.psi_full_avg10, s.psi_full_total_us) == (4.0, 1.5, 777)
    assert s.oom_kill_count == 2
    assert s.commit_percent == 200.0


def test_sample_on_an_old_kernel_has_none_for_what_it_lacks(tmp_path):
    fields = {k: v for k, v in procfs.read_meminfo(str(ProcTree(tmp_path / "new").root)).items()
              if k != "MemAvailable"}
    root = str(ProcTree(tmp_path).meminfo(replace=True, **fields).vmstat(pgfault=1).root)
    s = procfs.sample(root, NOW)
    assert s.mem_available_kb is None  # before 3.14
    assert s.oom_kill_count is None  # before 4.13
    assert s.psi_full_avg10 is None  # before 4.20


def test_sample_without_memtotal_names_the_line(tmp_path):
    root = str(ProcTree(tmp_path).meminfo(replace=True, MemFree=1).root)
    with pytest.raises(ValueError, match="MemTotal"):
        procfs.sample(root, NOW)


# --- processes --------------------------------------------------------------------


def test_scan_reads_every_field(tmp_path):
    root = str(
        ProcTree(tmp_path)
        .process(4242, "mysqld", 1100, 0, uid=27, rss_kb=8_000_000, start_time=5555,
                 cmdline=["/usr/sbin/mysqld", "--basedir=/usr"],
                 cgroup="/system.slice/mysqld.service")
        .root
    )
    [proc] = procfs.scan_processes(root)
    assert proc.pid == 4242
    assert proc.process == "mysqld"
    assert (proc.oom_score, proc.oom_score_adj, proc.oom_adj) == (1100, 0, None)
    assert proc.uid == 27
    assert proc.rss_kb == 8_000_000
    assert proc.cmdline == "/usr/sbin/mysqld --basedir=/usr"
    assert proc.cgroup == "/system.slice/mysqld.service"
    assert proc.unit == "mysqld.service"
    assert proc.start_time == 5555


def test_comm_with_spaces_and_parentheses_is_read_to_the_last_paren(tmp_path):
    root = str(ProcTree(tmp_path).process(7, "a) (b c)", 700).process(8, "(sd-pam)", 600).root)
    names = {p.pid: p.process for p in procfs.scan_processes(root)}
    assert names == {7: "a) (b c)", 8: "(sd-pam)"}


def test_kernel_threads_and_dead_zombies_are_skipped(tmp_path):
    root = str(
        ProcTree(tmp_path)
        .process(2, "kthreadd", 0, ppid=0, kernel_thread=True)
        .process(37, "kworker/0:1", 0, ppid=2, kernel_thread=True)
        .process(900, "defunct", 0, state="Z", cmdline=[])
        .process(901, "bash", 667)
        .process(902, "leader-gone", 900, state="Z", rss_kb=0)  # its threads still run
        .root
    )
    assert [p.pid for p in procfs.scan_processes(root)] == [901, 902]


def test_empty_cmdline_is_none_and_cmdline_can_be_left_out(tmp_path):
    root = str(ProcTree(tmp_path).process(10, "sh", 666, cmdline=[]).process(11, "vim", 700).root)
    by_pid = {p.pid: p for p in procfs.scan_processes(root)}
    assert by_pid[10].cmdline is None
    assert by_pid[11].cmdline == "vim"
    assert all(p.cmdline is None for p in procfs.scan_processes(root, with_cmdline=False))


def test_rewritten_argv_with_spaces_is_kept(tmp_path):
    root = str(ProcTree(tmp_path).process(12, "postgres", 700, cmdline=["postgres: checkpointer "]).root)
    assert procfs.scan_processes(root)[0].cmdline == "postgres: checkpointer "


def test_legacy_kernel_without_oom_score_adj_reads_oom_adj(tmp_path):
    root = str(ProcTree(tmp_path).process(13, "sshd", 0, oom_score_adj=None, oom_adj=-17).root)
    [proc] = procfs.scan_processes(root)
    assert (proc.oom_score_adj, proc.oom_adj) == (None, -17)


def test_pid_dirs_that_vanish_or_are_half_gone_are_skipped(tmp_path):
    tree = ProcTree(tmp_path).process(20, "gone", 700).process(21, "stays", 700).process(22, "late", 700)
    tree.remove("20/oom_score")
    tree.remove("22/status")
    (tree.root / "23").mkdir()  # listed, then gone before anything was read
    (tree.root / "sys" / "fs").mkdir()  # non-numeric entries are not processes
    assert [p.pid for p in procfs.scan_processes(str(tree.root))] == [21]


def test_unreadable_cmdline_leaves_the_rest(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    tree = ProcTree(tmp_path).process(30, "secretive", 700)
    (tree.root / "30" / "cmdline").chmod(0)
    [proc] = procfs.scan_processes(str(tree.root))
    assert proc.cmdline is None and proc.oom_score == 700


def test_memory_controller_line_is_the_cgroup_on_v1_and_hybrid(tmp_path):
    hybrid = "12:memory:/system.slice/nginx.service\n3:cpu,cpuacct:/system.slice\n0::/system.slice/nginx.service\n"
    legacy = "4:memory:/docker/" + "ab" * 32 + "\n1:name=systemd:/docker/x\n"
    root = str(
        ProcTree(tmp_path)
        .process(40, "nginx", 700, cgroup=hybrid)
        .process(41, "app", 700, cgroup=legacy)
        .process(42, "v2", 700, cgroup="/user.slice/user-1000.slice/session-3.scope")
        .process(43, "nocg", 700, cgroup=None)
        .root
    )
    by_pid = {p.pid: p for p in procfs.scan_processes(root)}
    assert by_pid[40].cgroup == "/system.slice/nginx.service"
    assert by_pid[41].cgroup == "/docker/" + "ab" * 32
    assert by_pid[41].unit == "docker:abababababab"
    assert by_pid[42].unit == "session-3.scope"
    assert (by_pid[43].cgroup, by_pid[43].unit) == (None, None)


ID = "0123456789abcdef" * 4
POD = "8f3c1a2b-4d5e-6f70-8192-a3b4c5d6e7f8"


@pytest.mark.parametrize(
    ("cgroup", "unit"),
    [
        ("/system.slice/mysqld.service", "mysqld.service"),
        ("/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-terminal.scope",
         "app-gnome-terminal.scope"),
        ("/system.slice/docker-" + ID + ".scope", "docker:0123456789ab"),
        ("/docker/" + ID, "docker:0123456789ab"),
        ("/machine.slice/libpod-" + ID + ".scope/container", "podman:0123456789ab"),
        ("/system.slice/crio-" + ID + ".scope", "cri-o:0123456789ab"),
        ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + POD.replace("-", "_")
         + ".slice/cri-containerd-" + ID + ".scope", f"pod:{POD}/containerd:0123456789ab"),
        ("/kubepods/besteffort/pod" + POD + "/" + ID, f"pod:{POD}/container:0123456789ab"),
        ("/kubepods/besteffort/pod" + POD, f"pod:{POD}"),
        ("/system.slice/docker-" + ID + ".scope/system.slice/nginx.service", "docker:0123456789ab"),
        ("/", None),
        ("/user.slice", None),
        ("", None),
    ],
)
def test_unit_is_derived_from_the_cgroup(cgroup, unit):
    assert procfs.unit_from_cgroup(cgroup) == unit


# --- oom_score scale and adj conversions -------------------------------------------


def test_scale_is_probed_through_self(tmp_path):
    tree = ProcTree(tmp_path).process(50, "probe", 667, 0).self_process(50)
    assert procfs.oom_score_scale(str(tree.root)) == procfs.SCALE_SINCE_5_9
    tree.process(51, "probe", 3, 0).self_process(51)
    assert procfs.oom_score_scale(str(tree.root)) == procfs.SCALE_2_6_36
    tree.process(52, "probe", 70, -900).self_process(52)
    assert procfs.oom_score_scale(str(tree.root)) == procfs.SCALE_SINCE_5_9
    tree.process(53, "probe", 1234, None, oom_adj=0).self_process(53)
    assert procfs.oom_score_scale(str(tree.root)) == procfs.SCALE_LEGACY


def test_memory_share_comes_out_of_either_scale():
    # 5.9+: (1000 + 250 + 0) * 2 / 3 = 833 for a quarter of memory and adj 0.
    assert procfs.SCALE_SINCE_5_9.memory_permille(833, 0) == 249
    assert procfs.SCALE_SINCE_5_9.memory_permille(1000, 500) == 0
    assert procfs.SCALE_2_6_36.memory_permille(750, 500) == 250
    assert procfs.SCALE_LEGACY.memory_permille(99999, None) is None


@needs_live_proc
def test_live_kernel_scale_matches_an_idle_process():
    scale = procfs.oom_score_scale()
    child = sleeper(oom_score_adj=0)
    try:
        score = int(Path(f"/proc/{child.pid}/oom_score").read_text())
    finally:
        child.kill()
        child.wait()
    # An idle process with adj 0 scores its small memory share above the baseline.
    assert scale.baseline <= score < scale.baseline + 50


@pytest.mark.parametrize(("legacy", "adj"), [(-17, -1000), (15, 1000), (0, 0), (-16, -941), (8, 470), (-1, -58)])
def test_legacy_oom_adj_converts_to_oom_score_adj_like_oom_adj_write(legacy, adj):
    assert procfs.adj_from_legacy(legacy) == adj


@pytest.mark.parametrize(("adj", "legacy"), [(-1000, -17), (1000, 15), (0, 0), (-941, -15), (500, 8), (-999, -16)])
def test_oom_score_adj_converts_to_legacy_like_oom_adj_read(adj, legacy):
    assert procfs.legacy_from_adj(adj) == legacy


# --- setting oom_score_adj ---------------------------------------------------------


@needs_live_proc
def test_set_oom_score_adj_on_a_real_child_returns_the_previous_value():
    # Raising is always allowed, and so is lowering down to oom_score_adj_min (0 here);
    # going below it needs CAP_SYS_RESOURCE.
    child = sleeper(oom_score_adj=300)
    try:
        assert procfs.set_oom_score_adj("/proc", child.pid, 100) == 300
        assert Path(f"/proc/{child.pid}/oom_score_adj").read_text().strip() == "100"
        if has_cap_sys_resource():
            assert procfs.set_oom_score_adj("/proc", child.pid, -500) == 100
            assert Path(f"/proc/{child.pid}/oom_score_adj").read_text().strip() == "-500"
    finally:
        child.kill()
        child.wait()


@needs_live_proc
def test_set_oom_score_adj_on_an_exited_process_says_so():
    child = subprocess.Popen(["true"])
    child.wait()
    with pytest.raises(ProcessLookupError, match=f"process {child.pid} does not exist"):
        procfs.set_oom_score_adj("/proc", child.pid, 100)


def test_set_oom_score_adj_rejects_values_out_of_range(tmp_path):
    root = str(ProcTree(tmp_path).process(60, "x", 700).root)
    with pytest.raises(ValueError, match="-1000..1000"):
        procfs.set_oom_score_adj(root, 60, -1001)


def test_set_oom_score_adj_falls_back_to_legacy_oom_adj(tmp_path):
    tree = ProcTree(tmp_path).process(61, "sshd", 0, oom_score_adj=None, oom_adj=0)
    assert procfs.set_oom_score_adj(str(tree.root), 61, -1000) == 0
    assert (tree.root / "61" / "oom_adj").read_text() == "-17"
    assert procfs.set_oom_score_adj(str(tree.root), 61, 500) == -1000
    assert (tree.root / "61" / "oom_adj").read_text() == "8"


@needs_live_proc
def test_lowering_without_cap_sys_resource_is_refused_with_a_clear_error():
    if has_cap_sys_resource():
        pytest.skip("this process may lower any oom_score_adj")
    child = sleeper(oom_score_adj=0)
    try:
        with pytest.raises(PermissionError, match=f"not permitted to set oom_score_adj of process {child.pid}"
                           r" to -500 \(lowering it needs CAP_SYS_RESOURCE, which this process lacks\)"):
            procfs.set_oom_score_adj("/proc", child.pid, -500)
    finally:
        child.kill()
        child.wait()


LOWER_OWN = """
import sys; sys.path.insert(0, sys.argv[1])
from watchdog_oom import procfs
open("/proc/self/oom_score_adj", "w").write("500")  # raising needs no privilege
print(procfs.lower_own_oom_score_adj(200))
print(procfs.lower_own_oom_score_adj(300))
print(procfs.lower_own_oom_score_adj(-900))
print(open("/proc/self/oom_score_adj").read().strip())
"""


@needs_live_proc
def test_lower_own_oom_score_adj_lowers_never_raises_and_reports_refusal():
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", LOWER_OWN, repo], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert out[0] == "(True, 'oom_score_adj lowered from 500 to 200')"
    assert out[1] == "(True, 'oom_score_adj is already 200 (at or below 300); left as it is')"
    if has_cap_sys_resource():
        assert out[2] == "(True, 'oom_score_adj lowered from 200 to -900')"
        assert out[3] == "-900"
    else:
        assert out[2].startswith("(False, 'not permitted to set oom_score_adj")
        assert out[2].endswith("oom_score_adj stays 200')")
        assert out[3] == "200"


# --- the live /proc ----------------------------------------------------------------


@needs_live_proc
def test_live_scores_match_the_kernel_files_for_self_and_a_child():
    child = sleeper(oom_score_adj=500)
    try:
        pids = (os.getpid(), child.pid)
        before = {pid: int(Path(f"/proc/{pid}/oom_score").read_text()) for pid in pids}
        by_pid = {p.pid: p for p in procfs.scan_processes("/proc")}
        for pid in pids:
            proc = by_pid[pid]
            # Read on both sides of the scan: this test's own memory may move meanwhile.
            assert proc.oom_score in (before[pid], int(Path(f"/proc/{pid}/oom_score").read_text()))
            assert proc.oom_score_adj == int(Path(f"/proc/{pid}/oom_score_adj").read_text())
            assert proc.start_time is not None and proc.rss_kb > 0
        assert by_pid[child.pid].oom_score_adj == 500
        assert by_pid[child.pid].cmdline == f"{sys.executable} -c import time; time.sleep(120)"
        assert by_pid[child.pid].uid == os.getuid()
        assert 2 not in by_pid  # kthreadd
    finally:
        child.kill()
        child.wait()


@needs_live_proc
def test_processes_exiting_during_the_scan_do_not_break_it():
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            subprocess.run(["true"], check=False)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(30):
            procs = procfs.scan_processes("/proc")
            assert any(p.pid == os.getpid() for p in procs)
    finally:
        stop.set()
        for t in threads:
            t.join()


@needs_live_proc
def test_live_sample_is_consistent():
    s = procfs.sample("/proc", NOW)
    assert s.mem_total_kb > 0 and s.commit_limit_kb > 0
    assert s.overcommit_memory in (0, 1, 2)
    assert procfs.read_boot_id() == Path("/proc/sys/kernel/random/boot_id").read_text().strip()

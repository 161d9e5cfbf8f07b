"""Reading memory cgroups: captured v1 and v2 trees with their expectations beside them,
hybrid hosts, filters, bounds, runtime names and the processes of a cgroup."""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from proctree import ProcTree

from watchdog_oom.cgroup_limits import NAME_MAX, RuntimeNames, cgroup_pids, identify, read_tasks
from watchdog_oom.cgroups import CgroupReader, hierarchies

DATA = Path(__file__).parent / "data" / "cgroups"
CAPTURES = sorted(p.name for p in DATA.iterdir() if (p / "expected_cgroups.json").exists())
FIELDS = ("path", "kind", "name", "limit_bytes", "high_bytes", "usage_bytes", "working_set_bytes",
          "swap_limit_bytes", "failcnt", "oom_kill", "under_oom", "oom_group", "events", "labels")


def scan(root: Path, t0, host: int = 16 << 30, **kwargs):
    return CgroupReader(str(root), str(root / "state"), **kwargs).scan(t0, host)


@pytest.mark.parametrize("capture", CAPTURES)
def test_captured_tree_reads_as_expected(capture, t0):
    expected = json.loads((DATA / capture / "expected_cgroups.json").read_text())
    result = scan(DATA / capture, t0, expected["host_memory_bytes"])
    got = [{f: getattr(s, f) for f in FIELDS if getattr(s, f) not in (None, {})}
           for s in sorted(result.samples, key=lambda s: s.path)]
    assert got == expected["cgroups"]
    assert not result.truncated and result.vanished == 0


def test_v1_figures_are_the_kernel_files(t0):
    """Working set is usage_in_bytes minus memory.stat total_inactive_file, as cAdvisor counts it."""
    root = DATA / "v1-linux-6.18_docker-k8s-systemd"
    for sample in scan(root, t0).samples:
        d = root / "memory" / sample.path.lstrip("/")
        usage = int((d / "memory.usage_in_bytes").read_text())
        stat = dict(line.split() for line in (d / "memory.stat").read_text().splitlines())
        assert sample.usage_bytes == usage
        assert sample.working_set_bytes == usage - int(stat["total_inactive_file"])
        assert sample.limit_bytes == int((d / "memory.limit_in_bytes").read_text())
        assert sample.failcnt == int((d / "memory.failcnt").read_text())


def test_v1_kill_counts_in_every_limited_ancestor(t0):
    """v1 counts a kill only in the victim's own memory.oom_control; the reader adds it up the tree."""
    samples = {s.path: s for s in scan(DATA / "v1-linux-6.18_docker-k8s-systemd", t0).samples}
    victim = next(p for p in samples if p.startswith("/kubepods/besteffort/"))
    assert samples[victim].oom_kill == 1
    assert samples["/kubepods"].oom_kill == 1  # its own oom_control says 0
    assert samples["/kubepods/burstable/pod7b3c1e52-9d4a-4f8e-b1c6-2a5d8e0f4b93"].oom_kill == 0


def test_names_from_runtime_state(t0):
    samples = {s.name: s for s in scan(DATA / "v2-systemd-docker-k8s-podman", t0).samples}
    assert samples["grafana (docker)"].kind == "container"
    assert samples["jobs/batch-5c8d7f-abcde/worker"].labels["runtime"] == "containerd"
    assert samples["jobs/batch-5c8d7f-abcde"].kind == "pod"  # named after its containers
    assert samples["infra/memcached-0/cache"].labels["runtime"] == "cri-o"
    assert samples["nextcloud (podman)"].swap_limit_bytes == 64 << 20
    assert samples["postgresql.service"].limit_bytes is None and samples["postgresql.service"].high_bytes == 2 << 30
    # The pause container has no limit of its own: not listed.
    assert not any(s.labels.get("container") == "POD" for s in samples.values())


def test_without_runtime_state_the_ids_name_them(t0, tmp_path):
    root = tmp_path / "cg"
    shutil.copytree(DATA / "v2-systemd-docker-k8s-podman", root, ignore=shutil.ignore_patterns("state"))
    names = {s.name for s in scan(root, t0).samples}
    assert "docker:5d1e7c3b9a2f" in names
    assert "pod:4c2d9e1a-7b3f-4e8d-a5c6-0f1e2d3c4b5a" in names
    assert "pod:4c2d9e1a-7b3f-4e8d-a5c6-0f1e2d3c4b5a/containerd:e3b0c44298fc" in names


def test_hybrid_host_reads_the_v1_memory_hierarchy(t0, tmp_path):
    shutil.copytree(DATA / "v1-linux-6.18_docker-k8s-systemd" / "memory", tmp_path / "memory")
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")  # systemd's, no memory
    found = hierarchies(str(tmp_path))
    assert [h.version for h in found] == [1]
    assert len(CgroupReader(str(tmp_path), None).scan(t0, 16 << 30).samples) == 7


def test_limits_at_or_above_host_memory_are_no_limit(t0):
    samples = scan(DATA / "v2-systemd-docker-k8s-podman", t0, host=1 << 30).samples
    assert all(s.limit_bytes is None or s.limit_bytes < 1 << 30 for s in samples)
    assert "/system.slice/nightly-backup.service" in {s.path for s in samples}
    assert not any("firefox" in s.path for s in samples)


def test_include_and_exclude_globs(t0):
    root = DATA / "v2-systemd-docker-k8s-podman"
    paths = {s.path for s in scan(root, t0, include=["/kubepods.slice/*"]).samples}
    assert paths and all(p.startswith("/kubepods.slice/") for p in paths)
    paths = {s.path for s in scan(root, t0, exclude=["/kubepods.slice/*", "*.service"]).samples}
    assert not any(p.startswith("/kubepods.slice/") or p.endswith(".service") for p in paths)
    assert any("libpod" in p for p in paths)


def test_excluded_container_still_counts_its_kills_in_the_pod(t0):
    root = DATA / "v1-linux-6.18_docker-k8s-systemd"
    samples = {s.path: s for s in scan(root, t0, exclude=["/kubepods/besteffort/*"]).samples}
    assert samples["/kubepods"].oom_kill == 1


def test_a_pass_is_bounded(t0):
    result = scan(DATA / "v2-systemd-docker-k8s-podman", t0, max_cgroups=5)
    assert result.truncated and result.visited == 5


def test_cgroup_half_gone_is_skipped(t0, tmp_path):
    """A cgroup removed while read (its files gone after the listing) is skipped, the rest read."""
    root = tmp_path / "cg"
    shutil.copytree(DATA / "v2-systemd-docker-k8s-podman", root)
    gone = next(root.glob("system.slice/docker-*.scope"))
    (gone / "memory.current").unlink()
    samples = scan(root, t0).samples
    assert len(samples) == 7 and not any("docker-" in s.path for s in samples)


def test_hostile_runtime_names_are_bounded_and_printable(t0, tmp_path):
    cid = "ab" * 32
    state = tmp_path / "var/lib/docker/containers" / cid
    state.mkdir(parents=True)
    (state / "config.v2.json").write_text(json.dumps({"Name": "/evil\x1b[31m\n" + "x" * 500}))
    names = RuntimeNames(str(tmp_path))
    found = names.lookup("docker", cid, t0)["container"]
    assert len(found) == NAME_MAX and "\x1b" not in found and "\n" not in found


def test_missing_runtime_state_is_asked_again_after_a_minute(t0, tmp_path):
    cid = "cd" * 32
    names = RuntimeNames(str(tmp_path))
    assert names.lookup("docker", cid, t0) == {}
    state = tmp_path / "var/lib/docker/containers" / cid
    state.mkdir(parents=True)
    (state / "config.v2.json").write_text(json.dumps({"Name": "/late"}))
    assert names.lookup("docker", cid, t0 + timedelta(seconds=10)) == {}  # cached
    assert names.lookup("docker", cid, t0 + timedelta(seconds=61)) == {"container": "late"}


def test_oversized_state_file_is_not_read(t0, tmp_path):
    path = tmp_path / "var/lib/containers/storage/overlay-containers/containers.json"
    path.parent.mkdir(parents=True)
    with open(path, "w") as f:
        f.write("[" + ",".join(['{"id": "x", "names": ["y"]}'] * 400000) + "]")
    assert RuntimeNames(str(tmp_path)).lookup("podman", "x", t0) == {}


@pytest.mark.parametrize(("path", "kind"), [
    ("/system.slice/mysqld.service", "service"),
    ("/user.slice/user-1000.slice", "slice"),
    ("/system.slice/session-3.scope", "scope"),
    ("/kubepods/burstable/pod7b3c1e52-9d4a-4f8e-b1c6-2a5d8e0f4b93", "pod"),
    ("/kubepods.slice/kubepods-pod7b3c1e52_9d4a_4f8e_b1c6_2a5d8e0f4b93.slice", "pod"),
    ("/docker/" + "e" * 64, "container"),
    ("/batch/job-17", "cgroup"),
])
def test_identify(path, kind):
    assert identify(path, {})[1] == kind


def test_processes_of_a_cgroup_and_its_descendants(tmp_path):
    root = tmp_path / "cg"
    shutil.copytree(DATA / "v2-systemd-docker-k8s-podman", root)
    pod = next(root.glob("kubepods.slice/kubepods-burstable.slice/*.slice"))
    rel = "/" + str(pod.relative_to(root))
    pids = cgroup_pids(str(root), rel)
    assert sorted(p for p, _ in pids) == [4990, 5001, 5002]
    proc = (ProcTree(tmp_path)
            .process(5001, "java", 0, 0, uid=1000, rss_kb=600_000, swap_kb=2048, pte_kb=1500,
                     cmdline=["java", "-Xmx600m", "-jar", "worker.jar"])
            .process(5002, "sh", 0, 0, rss_kb=900)
            .process(4990, "pause", 0, -998, rss_kb=400)
            .root)
    tasks = {t.pid: t for t in read_tasks(str(root), rel, str(proc))}
    java = tasks[5001]
    assert (java.process, java.rss_kb, java.swap_kb, java.pgtables_kb, java.uid) == ("java", 600_000, 2048, 1500, 1000)
    assert java.cmdline == "java -Xmx600m -jar worker.jar" and java.cgroup.endswith(".scope")
    assert tasks[4990].oom_score_adj == -998


def test_processes_that_exited_are_skipped(tmp_path):
    root = tmp_path / "cg"
    shutil.copytree(DATA / "v2-systemd-docker-k8s-podman", root)
    proc = ProcTree(tmp_path).process(3101, "grafana", 0, 0, rss_kb=1000).root  # 3150 has gone
    rel = "/" + str(next(root.glob("system.slice/docker-*.scope")).relative_to(root))
    assert [t.pid for t in read_tasks(str(root), rel, str(proc))] == [3101]


def test_own_process_reads_from_the_real_proc():
    from watchdog_oom.cgroup_limits import read_task

    me = read_task("/proc", os.getpid())
    assert me is not None and me.rss_kb > 0 and me.process

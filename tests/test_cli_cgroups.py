"""`watchdog-oom cgroups`, and the cgroups in `check` and /metrics, over a captured v2 host:
its cgroup tree at sys/fs/cgroup beside a proc tree of its processes."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from proctree import ProcTree
from servers import HttpSink
from test_cli import run, write_config
from test_service import Daemon, reap_daemons, wait_until  # noqa: F401 (reap_daemons: autouse fixture)

from watchdog_oom.cgroups import CgroupReader
from watchdog_oom.metrics import cgroup_metrics

DATA = Path(__file__).parent / "data" / "cgroups" / "v2-systemd-docker-k8s-podman"
WORKER = ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod4c2d9e1a_7b3f_4e8d_a5c6_0f1e2d3c4b5a.slice/"
          "cri-containerd-e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.scope")


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A proc tree and, beside it, the captured cgroup tree (cgroups.root's default)."""
    shutil.copytree(DATA, tmp_path / "sys" / "fs" / "cgroup", ignore=shutil.ignore_patterns("state"))
    shutil.copytree(DATA / "state", tmp_path, dirs_exist_ok=True)  # the runtimes' state under the same root
    (ProcTree(tmp_path)
     .meminfo(MemTotal=16 << 20)
     .process(5001, "java", 900, 0, uid=1000, rss_kb=700_000, cmdline=["java", "-Dtoken=hunter2", "-jar", "w.jar"])
     .process(5002, "sh", 700, 300, rss_kb=2_000)
     .process(3101, "grafana", 800, 0, rss_kb=350_000)
     .process(3150, "sh", 600, 0, rss_kb=1_000))
    return tmp_path


def config(tmp: Path, extra: str = "") -> Path:
    return write_config(tmp, f"database: sqlite:///{tmp}/db/history.db\nprocfs: {tmp}/proc\n{extra}")


def test_cgroups_json_least_headroom_first_with_the_victim(host):
    code, out, err = run("cgroups", "--format", "json", config=config(host))
    assert code == 0, err
    doc = json.loads(out)
    rows = doc["cgroups"]
    assert rows[0]["path"] == WORKER and rows[0]["name"] == "jobs/batch-5c8d7f-abcde/worker"
    percents = [r["working_set_percent"] for r in rows if r["working_set_percent"] is not None]
    assert percents == sorted(percents, reverse=True)
    worker = rows[0]
    assert worker["limit_bytes"] == 768 << 20 and worker["working_set_bytes"] == (699 + 100 - 50 + 3) << 20
    assert worker["victim"]["pid"] == 5001 and "hunter2" not in worker["victim"]["cmdline"]
    assert worker["seconds_to_limit"] is None  # one reading and no history: no rate
    assert doc["hierarchies"] == [{"version": 2, "root": str(host / "sys" / "fs" / "cgroup")}]
    assert not (host / "db").exists()  # a look, not a write


def test_cgroups_table_and_top(host):
    code, out, _ = run("cgroups", "--top", "2", config=config(host))
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["NAME", "KIND", "LIMIT"]
    assert len(lines) == 3 and "jobs/batch-5c8d7f-abcde/worker" in lines[1] and "java (5001)" in lines[1]


def test_cgroups_filters_and_no_hierarchy(host, tmp_path):
    code, out, _ = run("cgroups", "--json", config=config(host, "cgroups:\n  exclude: ['/kubepods.slice/*']\n"))
    assert not any(r["path"].startswith("/kubepods.slice/") for r in json.loads(out)["cgroups"])
    code, out, _ = run("cgroups", config=config(host, f"cgroups:\n  root: {tmp_path}/nowhere\n"))
    assert code == 0 and out.startswith("no memory cgroup hierarchy under")


def test_check_judges_the_cgroups(host):
    code, out, _ = run("check", "--json", config=config(host))
    doc = json.loads(out)
    assert code == 2 and doc["status"] == "CRITICAL"
    finding = next(f for f in doc["findings"] if f["kind"].startswith("cgroup."))
    assert finding["kind"] == "cgroup.critical" and "jobs/batch-5c8d7f-abcde/worker" in finding["summary"]
    assert doc["cgroups"]["status"] == "CRITICAL" and doc["cgroups"]["watched"] == 8
    code, out, _ = run("check", config=config(host))
    assert "cgroups  CRITICAL 8 with a limit; least headroom: jobs/batch-5c8d7f-abcde/worker at 97.92%" in out


def test_check_without_cgroups(host):
    code, out, _ = run("check", "--json", config=config(host, "cgroups:\n  enabled: false\n"))
    doc = json.loads(out)
    assert doc["cgroups"] is None and code == 0


def test_metrics_have_one_series_per_cgroup_worth_keeping(t0):
    samples = CgroupReader(str(DATA), None).scan(t0.astimezone(timezone.utc), 16 << 30).samples
    families = {m.name: m for m in cgroup_metrics(samples[:3])}
    ws = families["watchdog_oom_cgroup_memory_working_set_bytes"]
    assert len(ws.samples) == 3 and set(ws.samples[0].labels) == {"cgroup", "name", "kind"}
    assert list(cgroup_metrics([])) == []


def test_report_shows_the_cgroups_closest_to_their_limit_escaped(store, t0):
    from datetime import timedelta

    from watchdog_oom.model import CgroupSample
    from watchdog_oom.report import render_report

    def reading(minute: int, path: str, name: str, ws: int) -> CgroupSample:
        return CgroupSample(path=path, version=2, time=t0 - timedelta(minutes=minute), limit_bytes=100 << 20,
                            usage_bytes=ws << 20, working_set_bytes=ws << 20, name=name, kind="container")

    with store.tx() as tx:
        tx.add_cgroup_samples([r for m in range(60) for r in (
            reading(m, "/docker/evil", "<script>alert(1)</script> (docker)", 90 - m // 2),
            reading(m, "/system.slice/calm.service", "calm.service", 20))])
    page = render_report(store, t0 - timedelta(hours=2), t0)
    assert "Cgroups closest to their memory limit" in page and "(2)" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; (docker)" in page
    assert page.index("&lt;script&gt;") < page.index("calm.service")  # the closest first
    assert "90.0%" in page and 'class="sparkline"' in page


def test_cgroups_forecast_from_the_daemons_history(host, store, t0):
    """`cgroups` fits this reading with the samples the daemon stored: a time to the limit."""
    from datetime import timedelta

    from watchdog_oom.model import CgroupSample

    now = datetime.now(timezone.utc)
    mib = 1 << 20
    with store.tx() as tx:  # the worker grew by 1 MiB/s over the last minute, up to 4 MiB ago
        tx.add_cgroup_samples([CgroupSample(
            path=WORKER, version=2, time=now - timedelta(seconds=s), limit_bytes=768 * mib,
            usage_bytes=0, working_set_bytes=752 * mib - (s + 4) * mib) for s in range(60, 0, -10)])
    cfg = write_config(host, f"host: web-01\ndatabase: {store.url}\nprocfs: {host}/proc\n")
    code, out, _ = run("cgroups", "--json", config=cfg)
    worker = json.loads(out)["cgroups"][0]
    assert worker["path"] == WORKER and 10 <= worker["seconds_to_limit"] <= 30


def test_cgroup_alerts_route_and_keep_one_alertmanager_label_set():
    from watchdog_oom.dispatch import Route
    from watchdog_oom.model import Notification
    from watchdog_oom.notify.webhook import alertmanager_body

    pods = Route("k8s", match_cgroup="/kubepods*")
    quiet = Route("hosts", exclude_cgroup="/kubepods*")
    assert pods.wants("cgroup.forecast", "warning", None, WORKER)
    assert not quiet.wants("cgroup.forecast", "warning", None, WORKER)
    assert not pods.wants("cgroup.warning", "warning", None, "/system.slice/mysqld.service")
    key = "cgroup.forecast:" + WORKER
    firing = Notification(id="a", kind="cgroup.forecast", time=datetime(2026, 3, 14, tzinfo=timezone.utc),
                          host="node-1", severity="warning", summary="s", data={"key": key, "cgroup": WORKER})
    resolved = Notification(id="b", kind="cgroup.resolved", time=firing.time, host="node-1", severity="info",
                            summary="r", data={"key": key}, reason="resolved")
    labels = [alertmanager_body(n, "am")["alerts"][0]["labels"] for n in (firing, resolved)]
    assert labels[0] == labels[1] == {"alertname": "CgroupForecast", "host": "node-1", "instance": "node-1",
                                      "cgroup": WORKER}


def test_daemon_alerts_names_the_victim_and_resolves(host):
    """The daemon over the captured host: a critical cgroup alert naming java, then resolved
    once the working set falls back (the capture's memory.current rewritten)."""
    with HttpSink() as sink:
        daemon = Daemon(host, f"""
host: node-1
database: sqlite:///{host}/history.db
procfs: {host}/proc
kernel_log:
  source: none
cgroups:
  interval: 1s
  for: 0s
notifications:
  group_wait: 0s
  channels:
    - name: hook
      type: webhook
      url: {sink.url}/hook
      min_severity: info
      kinds: ["cgroup.*"]
""")
        try:
            daemon.wait_message("READY=1")
            first = json.loads(sink.wait_for(1)[0].body)
            current = host / "sys" / "fs" / "cgroup" / WORKER.lstrip("/") / "memory.current"
            current.write_text(f"{300 << 20}\n")
            assert wait_until(lambda: any(json.loads(r.body)["type"] == "cgroup.resolved" for r in sink.requests)), \
                daemon.log_text()
        finally:
            assert daemon.stop() == 0
    assert first["type"] == "cgroup.critical" and first["data"]["cgroup"] == WORKER
    assert first["data"]["name"] == "jobs/batch-5c8d7f-abcde/worker"
    assert first["data"]["victims"][0]["pid"] == 5001 and "hunter2" not in first["data"]["victims"][0]["cmdline"]
    assert "likely victim: java (pid 5001" in first["summary"]
    types = [json.loads(r.body)["type"] for r in sink.requests]
    assert types.count("cgroup.critical") == 1 and types[-1] == "cgroup.resolved"

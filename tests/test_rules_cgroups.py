"""Cgroup rules: levels with for/hysteresis, memory.high throttling, the forecast, the
kernel's choice of victim inside a cgroup, and the per-cgroup kill counter cross-check."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from watchdog_oom.cgroups import CgroupReader
from watchdog_oom.config import CgroupsConfig
from watchdog_oom.detect import Rules
from watchdog_oom.model import CgroupSample, CgroupTask
from watchdog_oom.rules import cgroup_limits as limits
from watchdog_oom.rules import cgroups as rules

MiB = 1 << 20
CFG = CgroupsConfig(warn_percent=85, crit_percent=95, for_=30, hysteresis=5, horizon=600, window=300,
                        interval=10)
DATA = Path(__file__).parent / "data" / "cgroups"
PATH = "/system.slice/docker-" + "a" * 64 + ".scope"


def sample(t, ws_mib, *, limit_mib=200, path=PATH, version=1, **kw) -> CgroupSample:
    return CgroupSample(path=path, version=version, time=t, limit_bytes=limit_mib * MiB if limit_mib else None,
                        usage_bytes=int(ws_mib * MiB) + 10 * MiB, working_set_bytes=int(ws_mib * MiB),
                        name="db (docker)", kind="container", **kw)


def run(rule_set: Rules, samples, cfg=CFG):
    """Feed a sequence of scans (one sample each) through the rules as the daemon does."""
    history: list[CgroupSample] = []
    events = []
    for s in samples:
        conds = rules.conditions([s], {s.path: history}, cfg, rule_set.firing_map())
        events += rule_set.evaluate(conds, s.time, family=rules.FAMILY_PREFIXES, keep=rules.keep_keys([s], conds))
        history.append(s)
    return events


# -- levels -------------------------------------------------------------------------------

def test_level_waits_for_its_duration_escalates_and_resolves_below_hysteresis(t0):
    seq = [(0, 170), (10, 172), (20, 175), (30, 176), (40, 192), (50, 171), (60, 150)]
    events = run(Rules(), [sample(t0 + timedelta(seconds=s), ws) for s, ws in seq],
                 CgroupsConfig(horizon=0, for_=30))
    level = [(e.time - t0).total_seconds() for e in events if e.key.startswith("cgroup:")]
    kinds = [e.kind for e in events if e.key.startswith("cgroup:")]
    # 170 MiB of 200 is 85 %: warns after 30 s; 192 is 96 %: critical; 171 (85.5 %) holds the
    # warning (hysteresis 5 points); 150 (75 %) resolves.
    assert kinds == ["cgroup.warning", "cgroup.critical", "cgroup.warning", "cgroup.resolved"]
    assert level == [30, 40, 50, 60]
    warning = next(e for e in events if e.kind == "cgroup.warning")
    assert warning.data["cgroup"] == PATH and warning.data["working_set_percent"] == 88.0
    assert "db (docker)" in warning.summary and "88.0% of its memory limit" in warning.summary


def test_cgroup_without_a_limit_has_no_level(t0):
    assert limits.level_condition(sample(t0, 500, limit_mib=None), CFG) is None


# -- memory.high --------------------------------------------------------------------------

def test_memory_high_throttling_fires_while_overruns_rise(t0):
    def s(sec, high_events):
        return sample(t0 + timedelta(seconds=sec), 1900, limit_mib=None, version=2, high_bytes=2048 * MiB,
                      events={"high": high_events, "max": 0, "oom_kill": 0}, psi_some_avg10=12.5)
    cfg = CgroupsConfig(for_=0)
    events = run(Rules(), [s(0, 100), s(10, 100), s(20, 180), s(30, 260), s(40, 260)], cfg)
    assert [e.kind for e in events] == ["cgroup.warning", "cgroup.warning", "cgroup.resolved"]
    assert events[0].key == "cgroup.high:" + PATH and "80 overruns" in events[0].summary
    assert "12.5%" in events[0].summary


def test_memory_high_is_v2_only(t0):
    prev = sample(t0, 100, version=1, high_bytes=MiB, events={"high": 1})
    assert limits.high_condition(sample(t0, 100, version=1, high_bytes=MiB, events={"high": 9}), prev, CFG) is None


# -- forecast -----------------------------------------------------------------------------

def filling(t0, start_mib, mib_per_s, seconds, step=10, limit=200):
    return [sample(t0 + timedelta(seconds=t), min(start_mib + mib_per_s * t, limit), limit_mib=limit)
            for t in range(0, seconds + 1, step)]


def test_forecast_names_the_time_to_the_limit_before_any_level(t0):
    """The issue's case: 200 MiB filling at 5 MiB/s is killed 40 s in; levels alone see nothing."""
    seq = filling(t0, 0, 5, 30)
    events = run(Rules(), seq)
    forecasts = [e for e in events if e.kind == "cgroup.forecast"]
    assert forecasts, events
    first = forecasts[0]
    assert (first.time - t0).total_seconds() == 20  # the third reading
    assert first.data["seconds_to_limit"] == 20 and first.data["growth_bytes_per_second"] == 5 * MiB
    assert first.severity == "critical"  # before the next two readings
    assert "reaches its memory limit in about 20 s" in first.summary
    assert not any(e.key.startswith("cgroup:") for e in events)


def test_slow_leak_forecasts_a_warning_within_the_horizon(t0):
    seq = filling(t0, 100, 0.02, 300)  # +1.2 MiB/min from 100 MiB: the limit ~78 min away
    assert not [e for e in run(Rules(), seq) if e.kind == "cgroup.forecast"]
    seq = filling(t0, 150, 0.1, 300)  # +6 MiB/min: 180 MiB at the end, 200 MiB 200 s later
    events = [e for e in run(Rules(), seq) if e.kind == "cgroup.forecast"]
    assert events and events[-1].severity == "warning"
    assert events[-1].data["seconds_to_limit"] == 200
    assert (events[0].time - t0).total_seconds() == 20  # 450 s ahead: within the 600 s horizon


@pytest.mark.parametrize("shape", ["flat", "falling", "sawtooth"])
def test_forecast_is_quiet_when_flat_falling_or_unsteady(t0, shape):
    ws = {"flat": lambda i: 150,
          "falling": lambda i: 190 - i,
          "sawtooth": lambda i: 120 + (i % 3) * 30 - (i % 2) * 25}[shape]
    seq = [sample(t0 + timedelta(seconds=10 * i), ws(i)) for i in range(20)]
    assert not [e for e in run(Rules(), seq, CgroupsConfig(warn_percent=99, crit_percent=100))
                if e.kind == "cgroup.forecast"]


def test_forecast_resolves_after_the_kill_and_starts_afresh(t0):
    seq = filling(t0, 100, 2, 40)  # 100 -> 180 MiB
    seq += [sample(t0 + timedelta(seconds=50 + 10 * i), 20 + 2 * i) for i in range(3)]  # killed, restarted
    events = run(Rules(), seq, CgroupsConfig(warn_percent=99, crit_percent=100))
    kinds = [e.kind for e in events]
    assert kinds[0] == "cgroup.forecast" and "cgroup.resolved" in kinds
    # After the drop only the points since it count: 3 points of +0.2 MiB/s, 180 MiB away.
    last = limits.forecast_condition(seq[:-1], seq[-1], CFG)
    assert last.data["window_seconds"] == 20 and last.severity is None


def test_forecast_needs_three_readings(t0):
    assert limits.forecast_condition([sample(t0, 100)], sample(t0 + timedelta(seconds=10), 150), CFG) is None


# -- the victim ---------------------------------------------------------------------------

def task(pid, name, rss_mib, adj=0, swap_mib=0, pte_kb=0):
    return CgroupTask(pid=pid, process=name, oom_score_adj=adj, rss_kb=rss_mib * 1024, swap_kb=swap_mib * 1024,
                      pgtables_kb=pte_kb, cmdline=f"/usr/bin/{name}")


def test_badness_is_scaled_against_the_cgroup_limit():
    """mm/oom_kill.c: points = rss + swap + page tables (pages) + adj * totalpages / 1000."""
    s = sample(None, 100, limit_mib=200)
    totalpages = limits.memcg_totalpages(s)
    assert totalpages == 200 * MiB // limits.PAGE_SIZE
    page_kb = limits.PAGE_SIZE // 1024
    java = task(812, "java", 120, swap_mib=8, pte_kb=400)
    assert limits.oom_badness(java, totalpages) == (128 * 1024 + 400) // page_kb
    # +500 adds half of the limit's pages; -1000 is never chosen.
    assert limits.oom_badness(task(1, "x", 0, adj=500), totalpages) == 500 * (totalpages // 1000)
    assert limits.oom_badness(task(2, "y", 150, adj=-1000), totalpages) is None


def test_victim_honours_oom_score_adj_within_the_cgroup():
    s = sample(None, 180, limit_mib=200)
    tasks = [task(812, "java", 120), task(900, "sidecar", 30, adj=700), task(1, "tini", 1, adj=-1000),
             task(950, "postgres", 40, adj=-500)]
    ranked = limits.rank_victims(tasks, limits.memcg_totalpages(s))
    # sidecar: 30 MiB + 0.7 x 200 MiB = 170 MiB worth of points beats java's 120.
    assert [t.process for t, _ in ranked] == ["sidecar", "java", "postgres"]


def test_swap_limit_counts_in_totalpages_up_to_the_host_swap():
    s = sample(None, 100, limit_mib=200, swap_limit_bytes=100 * MiB)
    assert limits.memcg_totalpages(s, swap_total_bytes=50 * MiB) == 250 * MiB // limits.PAGE_SIZE
    assert limits.memcg_totalpages(s, swap_total_bytes=0) == 200 * MiB // limits.PAGE_SIZE


def test_warning_names_the_victim(t0):
    s = sample(t0, 180, limit_mib=200)
    cond = limits.level_condition(s, CFG)
    named = limits.name_victim(cond, s, [task(812, "java", 150), task(813, "sh", 1)])
    assert "likely victim: java (pid 812, 150 MiB RSS)" in named.summary
    assert [v["pid"] for v in named.data["victims"]] == [812, 813]
    assert named.data["victims"][0]["cmdline"] == "/usr/bin/java"


def test_oom_group_says_every_process_dies(t0):
    s = sample(t0, 190, limit_mib=200, version=2, oom_group=True)
    named = limits.name_victim(limits.level_condition(s, CFG), s, [task(1, "a", 90), task(2, "b", 80)])
    assert "all 2 of its processes would be killed together" in named.summary


# -- kill counters ------------------------------------------------------------------------

POD = "/kubepods/burstable/pod1"
CTR = POD + "/ctr"


def test_unlogged_kill_is_reported_once_for_the_innermost_cgroup(t0):
    state, alerts = rules.cross_check({}, "boot", {POD: 0, CTR: 0}, {POD: 0, CTR: 0}, t0)
    assert not alerts
    # A kill in the container: both counters rise (v2 counts up the tree), no log record.
    state, alerts = rules.cross_check(state, "boot", {POD: 1, CTR: 1}, {POD: 0, CTR: 0}, t0)
    assert not alerts  # the log may lag a moment
    state, alerts = rules.cross_check(state, "boot", {POD: 1, CTR: 1}, {POD: 0, CTR: 0}, t0)
    assert [(a.key, a.data["cgroup"], a.data["missing"]) for a in alerts] == [("oom.unlogged:" + CTR, CTR, 1)]
    assert alerts[0].kind == "oom.unlogged" and CTR in alerts[0].summary
    state, alerts = rules.cross_check(state, "boot", {POD: 1, CTR: 1}, {POD: 0, CTR: 0}, t0)
    assert not alerts


def test_the_state_counts_the_kills_the_cgroups_account_for(t0):
    # What the host's /proc/vmstat cross-check leaves to the cgroups: seen missing (pending),
    # then reported (unlogged), counted once for a container and its pod, kept when they go.
    state, _ = rules.cross_check({}, "boot", {POD: 0, CTR: 0}, {POD: 0, CTR: 0}, t0)
    state, _ = rules.cross_check(state, "boot", {POD: 1, CTR: 1}, {POD: 0, CTR: 0}, t0)
    assert (state["pending"], state["unlogged"]) == (1, 0)
    state, alerts = rules.cross_check(state, "boot", {POD: 1, CTR: 1}, {POD: 0, CTR: 0}, t0)
    assert len(alerts) == 1 and (state["pending"], state["unlogged"]) == (0, 1)
    state, _ = rules.cross_check(state, "boot", {}, {}, t0)  # the pod is gone
    assert (state["pending"], state["unlogged"]) == (0, 1)
    state, _ = rules.cross_check(state, "next-boot", {}, {}, t0)
    assert state["unlogged"] == 0


def test_the_host_check_leaves_the_cgroups_their_kills_and_waits_for_their_look(t0):
    from watchdog_oom.rules.crosscheck import cross_check as host_check

    later = t0 + timedelta(seconds=1)
    state, _ = host_check({}, "boot", counter=5, recorded=0, now=t0)
    state, _ = host_check(state, "boot", counter=6, recorded=0, now=later, cgroups_seen=t0)
    state, alert = host_check(state, "boot", counter=6, recorded=0, now=later, cgroups_seen=t0)
    assert alert is None  # the cgroups have not looked since the kill was counted
    state, alert = host_check(state, "boot", counter=6, recorded=0, now=later, in_cgroups=1, cgroups_seen=later)
    assert alert is None and "suspect" not in state  # a container's kill: its cgroup's to report
    state, _ = host_check(state, "boot", counter=7, recorded=0, now=later, in_cgroups=1, cgroups_seen=later)
    state, alert = host_check(state, "boot", counter=7, recorded=0, now=later, in_cgroups=1, cgroups_seen=later)
    assert alert is not None and alert.data["missing"] == 1 and alert.key == "oom.unlogged"


def test_logged_kill_agrees_with_the_counter(t0):
    state, _ = rules.cross_check({}, "boot", {CTR: 0}, {CTR: 0}, t0)
    for _ in range(3):
        state, alerts = rules.cross_check(state, "boot", {CTR: 1}, {CTR: 1}, t0)
        assert not alerts
    # A late log record (counter first, record a check later) is no shortfall either.
    state, alerts = rules.cross_check(state, "boot", {CTR: 2}, {CTR: 1}, t0)
    state, alerts = rules.cross_check(state, "boot", {CTR: 2}, {CTR: 2}, t0)
    assert not alerts


def test_restarted_cgroup_and_new_boot_start_a_new_baseline(t0):
    state, _ = rules.cross_check({}, "boot", {CTR: 5}, {CTR: 2}, t0)
    state, alerts = rules.cross_check(state, "boot", {CTR: 0}, {CTR: 2}, t0)  # service restarted
    assert not alerts and state["cgroups"][CTR][0] == 0
    state, alerts = rules.cross_check(state, "other-boot", {CTR: 3}, {CTR: 0}, t0)
    state, alerts = rules.cross_check(state, "other-boot", {CTR: 3}, {CTR: 0}, t0)
    assert not alerts


def test_recorded_kills_count_up_the_tree():
    counts = rules.subtree_counts({CTR: 2, POD + "/other": 1, "/kubepods/burstable/pod10/x": 4}, [POD, CTR])
    assert counts == {POD: 3, CTR: 2}


# -- the captured trees through the rules -------------------------------------------------

def test_captured_trees_through_the_rules(t0):
    root = DATA / "v2-systemd-docker-k8s-podman"
    v2 = {s.name: s for s in CgroupReader(str(root), str(root / "state")).scan(t0, 16 << 30).samples}
    conds = rules.conditions(list(v2.values()), {}, CFG, {})
    firing = {c.key: c.severity for c in conds if c.severity}
    worker = v2["jobs/batch-5c8d7f-abcde/worker"]
    assert firing == {"cgroup:" + worker.path: "critical"}
    v1 = CgroupReader(str(DATA / "v1-linux-6.18_docker-k8s-systemd"), None).scan(t0, 16 << 30).samples
    assert {c.data["cgroup"] for c in rules.conditions(v1, {}, CFG, {}) if c.severity} == \
        {"/docker/3f8a1c2e9b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a"}


def test_worth_keeping_is_above_warn_plus_the_top_n(t0):
    samples = [sample(t0, ws, path=f"/c{ws}") for ws in (10, 50, 100, 150, 175, 190)]
    kept = rules.worth_keeping(samples, CgroupsConfig(top=2, warn_percent=85), firing=["cgroup.forecast:/c10"])
    assert [s.path for s in kept] == ["/c190", "/c175", "/c10"]
    assert [s.path for s in rules.by_headroom(samples)][:2] == ["/c190", "/c175"]


# -- a kill linked to the warning before it -----------------------------------------------

def test_kill_links_to_the_first_warning_of_its_cgroup(t0):
    from watchdog_oom.model import Alert, OomKill

    def alert(sec, kind, pct, eta):
        data = {"cgroup": CTR, "working_set_percent": pct, "seconds_to_limit": eta,
                "victims": [{"pid": 812, "process": "java"}]}
        return Alert(f"{kind}:{CTR}", kind, "warning", "s", t0 + timedelta(seconds=sec), False, data)

    first = limits.alert_link(alert(0, "cgroup.forecast", 60.0, 240), 7)
    later = limits.alert_link(alert(170, "cgroup.forecast", 85.0, 70), 7, first)
    level = limits.alert_link(alert(100, "cgroup.warning", 85.0, None), 9)
    links = {CTR: {"cgroup.forecast:" + CTR: later, "cgroup:" + CTR: level}}
    kill = OomKill(pid=812, process="java", time=t0 + timedelta(seconds=240), cgroup_oom=True, memcg=CTR,
                   task_memcg=CTR)
    link = rules.preceding_alert(kill, links, timedelta(hours=1))
    assert link["alert_id"] == 7 and link["first"]["seconds_to_limit"] == 240
    text = limits.describe_link(link)
    assert text.startswith("cgroup.forecast #7 first at ") and "(60.0 % of the limit, 4m left)" in text
    assert "(85.0 % of the limit, 70 s left)" in text and text.endswith("victim java pid 812")
    # A kill in a child cgroup finds its parent's alert; an old or a global one finds none.
    child = kill.replace(memcg=None, task_memcg=CTR + "/worker")
    assert rules.preceding_alert(child, links, timedelta(hours=1))["alert_id"] == 7
    assert rules.preceding_alert(kill.replace(time=t0 + timedelta(hours=3)), links, timedelta(hours=1)) is None
    assert rules.preceding_alert(kill.replace(cgroup_oom=False), links, timedelta(hours=1)) is None


def test_long_paths_make_bounded_alert_keys():
    path = "/" + "/".join(["x" * 60] * 6)
    key = rules.key_of(rules.FORECAST, path)
    assert len(key) <= 255 and key != rules.key_of(rules.FORECAST, path + "y")
    assert rules.key_of(rules.LEVEL, "/short") == "cgroup:/short"


def test_forecast_waits_out_a_burst_that_is_over(t0):
    """As measured on a real cgroup of 64 MiB: a process starts (a jump of 9 MiB), then grows
    by 2 MiB a reading. The first readings fit a line twice as steep as the growth now, so
    the forecast waits until the recent growth bears the fitted rate out."""
    ws = [27, 36, 38, 40, 42, 44, 46]
    seq = [sample(t0 + timedelta(seconds=2 * i), w, limit_mib=64) for i, w in enumerate(ws)]
    cfg = CgroupsConfig(warn_percent=99, crit_percent=100, horizon=60, interval=2)
    assert limits.forecast_condition(seq[:2], seq[2], cfg).severity is None
    first = next(e for e in run(Rules(), seq, cfg) if e.kind == "cgroup.forecast")
    at = int((first.time - t0).total_seconds()) // 2
    assert at >= 4
    truth = (64 - ws[at]) / 1.0  # seconds at the real 1 MiB/s
    assert truth / 2 <= first.data["seconds_to_limit"] <= truth


def test_the_daemon_keeps_each_cgroups_readings_compactly(t0):
    import sys

    from watchdog_oom.daemon.shared import CgroupTrack

    track = CgroupTrack(keep=33)
    for i in range(100):
        track.add(sample(t0 + timedelta(seconds=10 * i), 100 + (i % 2), version=2, events={"high": i}))
    assert len(track.times) == len(track.working_set) == 33
    size = sys.getsizeof(track) + sys.getsizeof(track.times) + sys.getsizeof(track.working_set)
    assert size < 1024  # 5,000 containers: a few MiB, not a sample object per reading
    now = sample(t0 + timedelta(seconds=1000), 101, version=2)
    # Flat with a page of noise: no forecast is fitted; the memory.high rule still has its last reading.
    assert not track.may_reach(now, 600)
    assert [s.events for s in track.samples(now, full=False)] == [{"high": 99}]
    rising = sample(t0 + timedelta(seconds=1000), 150)
    assert track.may_reach(rising, 600)
    past = track.samples(rising, full=True)
    assert len(past) == 33 and past[0].time < past[-1].time and past[-1].working_set_bytes == 101 * MiB

"""The pure rules: thresholds, `for`, hysteresis, resolution and the commit trend, `now` passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from watchdog_oom import detect
from watchdog_oom.config import CommitConfig, MemoryConfig
from watchdog_oom.model import MemorySample, ProcScore


def sample(t, committed_kb, *, mode=0, mem_total=24258840, swap_total=8396200, limit=30229156,
           available=12_000_000, swap_free=None, psi_full=None):
    return MemorySample(time=t, mem_total_kb=mem_total, mem_available_kb=available, mem_free_kb=1000,
                        swap_total_kb=swap_total, swap_free_kb=swap_total if swap_free is None else swap_free,
                        committed_as_kb=committed_kb, commit_limit_kb=limit, overcommit_memory=mode,
                        overcommit_ratio=90, overcommit_kbytes=0, psi_full_avg10=psi_full)


def at_percent(t, percent, **kw):
    """A sample whose sar %commit is `percent` on the sar -r host."""
    return sample(t, int((24258840 + 8396200) * percent / 100), **kw)


def test_sar_commit_figures_of_the_published_host(t0):
    s = sample(t0, 64262056, mode=1)
    assert s.commit_percent == 196.79
    assert s.commit_limit_percent == 212.58


def test_auto_basis_follows_the_overcommit_mode(t0):
    assert detect.commit_basis(sample(t0, 1, mode=2), "auto") == "commit_limit"
    assert detect.commit_basis(sample(t0, 1, mode=0), "auto") == "sar"
    assert detect.commit_basis(sample(t0, 1, mode=1), "auto") == "sar"
    assert detect.commit_basis(sample(t0, 1, mode=0), "commit_limit") == "commit_limit"


def test_mode_2_warns_that_allocations_will_fail(t0):
    # 95% of CommitLimit, but only 88% of RAM+swap: mode 2 judges by CommitLimit.
    cond = detect.commit_conditions(sample(t0, int(30229156 * 0.95), mode=2), CommitConfig())
    assert cond.severity == "warning"
    assert "ENOMEM" in cond.summary and "CommitLimit" in cond.summary


def test_mode_0_explains_that_the_oom_killer_acts_instead(t0):
    cond = detect.commit_conditions(sample(t0, 64262056, mode=0), CommitConfig())
    assert cond.severity == "critical"
    assert "OOM killer" in cond.summary and "196.79%" in cond.summary


def test_condition_must_hold_for_its_duration(t0):
    cfg = CommitConfig(for_=30)
    rules = detect.Rules()

    def fire(t):
        return rules.evaluate([detect.commit_conditions(at_percent(t, 95), cfg, rules.firing("commit"))], t)

    assert fire(t0) == []
    assert fire(t0 + timedelta(seconds=20)) == []
    (alert,) = fire(t0 + timedelta(seconds=30))
    assert alert.kind == "commit.warning" and not alert.resolved


def test_a_dip_restarts_the_for_timer(t0):
    cfg = CommitConfig(for_=30)
    rules = detect.Rules()

    def at(t, pct):
        return rules.evaluate([detect.commit_conditions(at_percent(t, pct), cfg, rules.firing("commit"))], t)

    at(t0, 95)
    at(t0 + timedelta(seconds=20), 50)
    assert at(t0 + timedelta(seconds=35), 95) == []
    assert at(t0 + timedelta(seconds=65), 95)[0].kind == "commit.warning"


def test_hysteresis_keeps_it_firing_until_well_below(t0):
    cfg = CommitConfig(for_=0, warn_percent=90, hysteresis=5)
    rules = detect.Rules()

    def at(t, pct):
        return rules.evaluate([detect.commit_conditions(at_percent(t, pct), cfg, rules.firing("commit"))], t)

    assert at(t0, 91)[0].severity == "warning"
    assert not at(t0 + timedelta(seconds=10), 87)[0].resolved  # 87 > 90 - 5: still firing
    (resolved,) = at(t0 + timedelta(seconds=20), 84)
    assert resolved.resolved and resolved.kind == "commit.resolved"
    assert at(t0 + timedelta(seconds=30), 87) == []  # not firing, and 87 < 90


def test_escalation_to_critical_and_back(t0):
    cfg = CommitConfig(for_=0, warn_percent=90, crit_percent=100, hysteresis=5)
    rules = detect.Rules()

    def at(t, pct):
        return rules.evaluate([detect.commit_conditions(at_percent(t, pct), cfg, rules.firing("commit"))], t)

    assert at(t0, 101)[0].severity == "critical"
    assert at(t0 + timedelta(seconds=1), 97)[0].severity == "critical"  # within hysteresis
    assert at(t0 + timedelta(seconds=2), 94)[0].severity == "warning"


def test_available_memory_is_worse_when_lower(t0):
    cfg = MemoryConfig(for_=0)
    low = sample(t0, 1, available=int(24258840 * 0.04))
    conds = {c.key: c for c in detect.memory_conditions(low, cfg)}
    assert conds["memory.available"].severity == "critical"
    fine = sample(t0, 1, available=int(24258840 * 0.5))
    assert {c.key: c.severity for c in detect.memory_conditions(fine, cfg)}["memory.available"] is None


def test_swap_and_pressure_are_judged(t0):
    cfg = MemoryConfig(for_=0)
    s = sample(t0, 1, swap_free=int(8396200 * 0.1), psi_full=35.0)
    conds = {c.key: c.severity for c in detect.memory_conditions(s, cfg)}
    assert conds["memory.swap"] == "warning"  # 90% used: above 80, below 95
    assert conds["memory.pressure"] == "critical"


def test_no_swap_means_no_swap_condition(t0):
    s = sample(t0, 1, swap_total=0)
    assert "memory.swap" not in {c.key for c in detect.memory_conditions(s, MemoryConfig())}


def _ramp(t0, start_pct, end_pct, minutes, mode=0, step=60):
    n = minutes * 60 // step
    return [at_percent(t0 + timedelta(seconds=i * step), start_pct + (end_pct - start_pct) * i / n, mode=mode)
            for i in range(n + 1)]


def test_sustained_commit_rise_alerts_with_its_rate(t0):
    cfg = CommitConfig(trend_window=1800, trend_rise_percent=10)
    history = _ramp(t0, 50, 65, 30)
    now = history[-1].time
    cond = detect.trend_condition(history[:-1], history[-1], cfg, now)
    assert cond.severity == "warning" and cond.alert_kind == "commit.trend"
    assert cond.data["rise_percent"] == pytest.approx(15, abs=0.5)
    assert "/h" in cond.summary and "leak" in cond.summary


def test_trend_in_mode_2_says_when_commitlimit_is_reached(t0):
    cfg = CommitConfig(trend_window=1800, trend_rise_percent=5, basis="sar")
    history = _ramp(t0, 50, 65, 30, mode=2)
    cond = detect.trend_condition(history[:-1], history[-1], cfg, history[-1].time)
    assert cond.severity == "warning"
    assert "reaches CommitLimit in" in cond.summary and cond.data["seconds_to_limit"] > 0


def test_flat_or_noisy_commit_is_no_trend(t0):
    cfg = CommitConfig(trend_window=1800, trend_rise_percent=10)
    flat = _ramp(t0, 60, 61, 30)
    assert detect.trend_condition(flat[:-1], flat[-1], cfg, flat[-1].time).severity is None
    # A single jump at the end is not a sustained rise: the fit is poor.
    jumpy = _ramp(t0, 60, 60, 30)
    jumpy[-1] = at_percent(jumpy[-1].time, 90)
    assert detect.trend_condition(jumpy[:-1], jumpy[-1], cfg, jumpy[-1].time).severity is None


def test_trend_needs_enough_history(t0):
    cfg = CommitConfig(trend_window=1800, trend_rise_percent=10)
    short = _ramp(t0, 50, 80, 10)
    assert detect.trend_condition(short[:-1], short[-1], cfg, short[-1].time) is None


def test_at_risk_processes_resolve_when_they_leave_the_list(t0):
    rules = detect.Rules()
    mysqld = ProcScore(pid=42, process="mysqld", oom_score=1100, oom_score_adj=0, critical=True)
    (alert,) = rules.evaluate(detect.process_conditions([(mysqld, "mysqld is #2")]), t0, family="process.")
    assert alert.kind == "process.at_risk" and alert.data["pid"] == 42
    (resolved,) = rules.evaluate([], t0 + timedelta(seconds=30), family="process.")
    assert resolved.resolved and resolved.key == "process.at_risk:mysqld"
    assert resolved.kind == "process.resolved"


def test_restored_alert_is_not_announced_again(t0):
    rules = detect.Rules()
    rules.restore("commit", "warning", "commit.warning")
    cfg = CommitConfig(for_=30)
    (alert,) = rules.evaluate([detect.commit_conditions(at_percent(t0, 95), cfg, "warning")], t0)
    assert alert.severity == "warning"  # continues at once, no new `for` wait


def test_worst_severity():
    assert detect.worst([None, "warning", "critical", None]) == "critical"
    assert detect.worst([None, None]) is None


def test_config_thresholds_are_used(t0):
    cfg = replace(CommitConfig(), warn_percent=150, crit_percent=250, for_=0)
    assert detect.commit_conditions(sample(t0, 64262056, mode=1), cfg).severity == "warning"


def test_a_condition_that_disappears_resolves_within_its_family(t0):
    rules = detect.Rules()
    cfg = MemoryConfig(for_=0)
    swapping = sample(t0, 1, swap_free=int(8396200 * 0.01))
    assert [a.key for a in rules.evaluate(detect.memory_conditions(swapping, cfg), t0, family="memory.")] == \
        ["memory.swap"]
    swapoff = sample(t0, 1, swap_total=0)  # swapoff -a: no swap condition any more
    events = rules.evaluate(detect.memory_conditions(swapoff, cfg), t0, family="memory.")
    assert [(a.key, a.resolved) for a in events] == [("memory.swap", True)]


def test_a_key_kept_while_its_rule_cannot_judge_stays_firing(t0):
    rules = detect.Rules()
    rules.restore("commit.trend", "warning", "commit.trend")
    assert rules.evaluate([], t0, family="commit", keep=("commit.trend",)) == []
    assert rules.firing("commit.trend") == "warning"
    (resolved,) = rules.evaluate([], t0, family="commit")
    assert resolved.resolved and resolved.kind == "commit.resolved"

"""processes.py: ranking, critical rules, at-risk reasons, protection plans and the process cache."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.proctree import ProcTree
from watchdog_oom import procfs
from watchdog_oom.model import CriticalRule, ProcScore
from watchdog_oom.processes import (
    ProcessCache,
    at_risk,
    is_protected,
    mark_critical,
    matches,
    protection_plan,
    rank,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def proc(pid: int, name: str, score: int, adj: int | None = 0, **kw) -> ProcScore:
    kw.setdefault("uid", 0)  # root's, unless a test is about the owner
    return ProcScore(pid=pid, process=name, oom_score=score, oom_score_adj=adj, **kw)


@pytest.fixture
def five(tmp_path) -> str:
    """The acceptance host: java, mysqld (critical), chrome, bash, sshd (critical, adj -1000)."""
    return str(
        ProcTree(tmp_path)
        .process(3100, "java", 1350, 300, uid=1001, rss_kb=12_000_000,
                 cmdline=["/usr/bin/java", "-Xmx12g", "-jar", "app.jar"], cgroup="/system.slice/app.service")
        .process(4242, "mysqld", 1100, 0, uid=27, rss_kb=6_000_000,
                 cmdline=["/usr/sbin/mysqld", "--datadir=/var/lib/mysql"], cgroup="/system.slice/mysqld.service")
        .process(5150, "chrome", 800, 0, uid=1000, rss_kb=2_000_000,
                 cmdline=["/opt/google/chrome/chrome", "--type=renderer"],
                 cgroup="/user.slice/user-1000.slice/session-2.scope")
        .process(6000, "bash", 667, 0, uid=1000, rss_kb=5_000)
        .process(812, "sshd", 0, -1000, uid=0, rss_kb=8_000, cmdline=["sshd: /usr/sbin/sshd -D"],
                 cgroup="/system.slice/ssh.service")
        .root
    )


RULES = [CriticalRule(name="sshd"), CriticalRule(cmdline=r"^/usr/sbin/mysqld\b")]


def test_acceptance_top_three_victims_and_the_critical_one_at_risk(five):
    ranked = rank(mark_critical(procfs.scan_processes(five), RULES))
    top = ranked[:3]
    assert [p.process for p in top] == ["java", "mysqld", "chrome"]
    assert [(p.rss_kb, p.uid) for p in top] == [(12_000_000, 1001), (6_000_000, 27), (2_000_000, 1000)]
    assert top[0].cmdline == "/usr/bin/java -Xmx12g -jar app.jar"
    assert top[1].cmdline == "/usr/sbin/mysqld --datadir=/var/lib/mysql"
    assert top[2].cmdline == "/opt/google/chrome/chrome --type=renderer"

    risks = at_risk(ranked, 3)
    assert [(p.process, p.pid) for p, _ in risks] == [("mysqld", 4242)]
    assert risks[0][1] == (
        "mysqld (pid 4242) is #2 of the OOM killer's likely victims (oom_score 1100);"
        " protect it with oom_score_adj"
    )
    assert all(p.process != "sshd" for p, _ in at_risk(ranked, len(ranked)))


def test_acceptance_protection_plan_lowers_only_the_unprotected_critical_one(five):
    procs = mark_critical(procfs.scan_processes(five), RULES)
    plan = protection_plan(procs, -900)
    assert [(p.process, before, after) for p, before, after in plan] == [("mysqld", 0, -900)]


def test_rank_breaks_ties_by_rss_then_pid():
    procs = [proc(3, "c", 700, rss_kb=10), proc(2, "b", 700, rss_kb=10), proc(1, "a", 700, rss_kb=99),
             proc(4, "d", 900), proc(5, "e", 700)]
    assert [p.pid for p in rank(procs)] == [4, 1, 2, 3, 5]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (CriticalRule(name="postgres"), True),
        (CriticalRule(name="postgre"), False),  # exact, not a prefix
        (CriticalRule(cmdline=r"postgres: .*checkpointer"), True),
        (CriticalRule(cmdline=r"^checkpointer"), False),  # a search, anchors mean the start
        (CriticalRule(unit="postgresql@*.service"), True),
        (CriticalRule(unit="postgresql"), False),  # a glob on the whole unit
        (CriticalRule(cgroup="/system.slice/postgresql@*"), True),
        (CriticalRule(cgroup="/user.slice/*"), False),
        (CriticalRule(name="nginx", unit="postgresql@16-main.service"), True),  # any field
        (CriticalRule(), False),
    ],
)
def test_rule_fields_match_as_documented(rule, expected):
    p = proc(10, "postgres", 700, cmdline="postgres: 16/main: checkpointer",
             cgroup="/system.slice/postgresql@16-main.service", unit="postgresql@16-main.service")
    assert matches(p, rule) is expected


def test_a_rule_name_longer_than_comm_matches_the_kernels_truncation():
    p = proc(11, "clickhouse-serv", 700)  # the kernel keeps 15 characters
    assert matches(p, CriticalRule(name="clickhouse-server"))
    assert not matches(p, CriticalRule(name="clickhouse-keeper"))


def test_rules_skip_processes_without_the_field():
    p = proc(12, "kworker", 0)
    assert not matches(p, CriticalRule(cmdline=".*"))
    assert not matches(p, CriticalRule(unit="*"))
    assert not matches(p, CriticalRule(cgroup="*"))


def test_mark_critical_sets_only_matching_processes():
    procs = [proc(1, "sshd", 0, -1000), proc(2, "java", 900)]
    marked = mark_critical(procs, [CriticalRule(name="sshd")])
    assert [p.critical for p in marked] == [True, False]
    assert marked[1] is procs[1]


def test_protected_processes_are_never_at_risk():
    ranked = rank([
        proc(1, "sshd", 0, -1000, critical=True),
        proc(2, "old-sshd", 0, None, oom_adj=-17, critical=True),
        proc(3, "java", 900),
    ])
    assert is_protected(ranked[1]) and is_protected(ranked[2])
    assert at_risk(ranked, 10) == []


def test_critical_process_at_neutral_adj_while_others_are_shielded_is_at_risk():
    ranked = rank([
        proc(1, "java", 1500), proc(2, "chrome", 1200), proc(3, "systemd-udevd", 0, -1000),
        proc(4, "dbus", 500, -500), proc(5, "postgres", 700, 0, critical=True),
        proc(6, "redis", 600, -100, critical=True),
    ])
    risks = at_risk(ranked, 2)
    assert [p.process for p, _ in risks] == ["postgres"]
    assert risks[0][1] == (
        "postgres (pid 5) has oom_score_adj 0 while 3 other processes (dbus, redis, systemd-udevd)"
        " are shielded by a negative one; protect it with oom_score_adj"
    )


def test_critical_process_is_not_at_risk_when_nobody_is_shielded_and_it_is_low():
    ranked = rank([proc(1, "java", 1500), proc(2, "chrome", 1200), proc(5, "postgres", 700, critical=True)])
    assert at_risk(ranked, 2) == []
    assert [p.process for p, _ in at_risk(ranked, 3)] == ["postgres"]


def test_protection_plan_never_raises_and_never_touches_others():
    procs = [
        proc(1, "sshd", 0, -1000, critical=True),  # already below: left
        proc(2, "mysqld", 1100, 0, critical=True),  # lowered
        proc(3, "redis", 600, -900, critical=True),  # equal: left
        proc(4, "pg", 650, -950, critical=True),  # below: never raised
        proc(5, "java", 1350, 300),  # not critical: never touched
        proc(6, "legacy", 700, None, oom_adj=5, critical=True),  # legacy oom_adj 5 = adj 294
        proc(7, "unknown", 700, None, critical=True),  # adj unknown: left
    ]
    plan = protection_plan(procs, -900)
    assert [(p.pid, before, after) for p, before, after in plan] == [(2, 0, -900), (6, 294, -900)]
    for p, before, after in protection_plan(procs, 500):
        assert p.critical and after < before
    with pytest.raises(ValueError, match="protect_adj"):
        protection_plan(procs, -1001)


def test_cache_returns_the_victims_full_record_by_pid():
    cache = ProcessCache()
    mysqld = proc(4242, "mysqld", 1100, cmdline="/usr/sbin/mysqld", unit="mysqld.service", start_time=10)
    cache.remember([mysqld, proc(1, "init", 0, start_time=1)], NOW)
    assert cache.lookup(4242) == mysqld
    assert cache.lookup(4242, "mysqld") == mysqld
    assert cache.lookup(4242, "bash") is None
    assert cache.lookup(999) is None


def test_cache_matches_names_on_the_kernels_15_characters():
    cache = ProcessCache()
    long_name = proc(77, "clickhouse-serv", 1000, start_time=5)
    cache.remember([long_name], NOW)
    assert cache.lookup(77, "clickhouse-server") == long_name
    assert cache.lookup(77, "clickhouse-serv") == long_name


def test_cache_tells_a_reused_pid_apart():
    cache = ProcessCache()
    old = proc(500, "postgres", 800, start_time=100)
    new = proc(500, "bash", 667, start_time=9000)
    cache.remember([old], NOW)
    cache.remember([new], NOW + timedelta(seconds=30))
    assert len(cache) == 2
    assert cache.lookup(500) == new
    assert cache.lookup(500, "postgres") == old
    assert cache.lookup(500, "bash") == new


def test_cache_is_bounded_least_recently_seen_first():
    cache = ProcessCache(max_entries=3)
    cache.remember([proc(i, f"p{i}", 700, start_time=i) for i in range(1, 4)], NOW)
    cache.remember([proc(1, "p1", 700, start_time=1)], NOW + timedelta(seconds=1))  # seen again
    cache.remember([proc(4, "p4", 700, start_time=4)], NOW + timedelta(seconds=2))
    assert len(cache) == 3
    assert cache.lookup(2) is None
    assert [cache.lookup(i) is not None for i in (1, 3, 4)] == [True, True, True]


def test_cache_forgets_processes_not_seen_for_max_age():
    cache = ProcessCache(max_age=timedelta(hours=1))
    cache.remember([proc(1, "a", 700, start_time=1)], NOW)
    cache.remember([proc(2, "b", 700, start_time=2)], NOW + timedelta(minutes=90))
    assert cache.lookup(1) is None
    assert cache.lookup(2) is not None


def test_cache_rejects_a_useless_size():
    with pytest.raises(ValueError, match="max_entries"):
        ProcessCache(max_entries=0)


def test_an_ordinary_user_cannot_make_a_process_critical_by_its_name():
    impostor = ProcScore(pid=9, process="sshd", oom_score=1900, oom_score_adj=1000, uid=1000, cmdline="sshd")
    real = ProcScore(pid=1, process="sshd", oom_score=0, oom_score_adj=0, uid=0, cmdline="sshd -D")
    rule = CriticalRule(name="sshd")
    assert not matches(impostor, rule) and matches(real, rule)
    marked = mark_critical([impostor, real], [rule])
    assert [p.critical for p in marked] == [False, True]
    assert protection_plan(marked, -900) == [(marked[1], 0, -900)]


def test_a_rule_naming_a_uid_matches_that_owner_only():
    app = ProcScore(pid=5, process="myapp", oom_score=500, oom_score_adj=0, uid=1001)
    other = app.replace(pid=6, uid=1002)
    rule = CriticalRule(name="myapp", uid=1001)
    assert matches(app, rule) and not matches(other, rule)
    assert not matches(app.replace(uid=None), rule)  # owner unknown: never critical
    assert matches(app.replace(uid=1200), CriticalRule(name="myapp"), system_uid_max=1500)


def test_cache_resize_keeps_the_most_recently_seen():
    cache = ProcessCache(max_entries=10)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cache.remember([proc(pid, f"p{pid}", 1, start_time=pid) for pid in range(10)], now)
    cache.resize(3)
    assert len(cache) == 3 and cache.lookup(9) is not None and cache.lookup(0) is None

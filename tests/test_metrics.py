"""Prometheus metrics served over real HTTP from a real SQLite history, parsed as Prometheus would."""

from __future__ import annotations

from datetime import timedelta

import prometheus_client
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from watchdog_oom.metrics import Metrics, parse_listen
from watchdog_oom.model import Alert, MemorySample, OomKill
from watchdog_oom.store import Store, claims


def _sample(t0, psi_full=None):
    return MemorySample(time=t0, mem_total_kb=16_000_000, mem_available_kb=3_000_000, mem_free_kb=1,
                        swap_total_kb=4_000_000, swap_free_kb=4_000_000, committed_as_kb=18_000_000,
                        commit_limit_kb=12_000_000, overcommit_memory=0, overcommit_ratio=50, overcommit_kbytes=0,
                        psi_some_avg10=4.5, psi_full_avg10=psi_full)


def _kill(t, pid, killer="kernel", constraint="CONSTRAINT_NONE", host=None):
    return OomKill(pid=pid, process="java", time=t, killer=killer, constraint=constraint, host=host, source="kmsg")


def _families(server) -> list:
    answer = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    return list(text_string_to_metric_families(answer.text))


def _scrape(server) -> dict[str, float | dict[tuple[tuple[str, str], ...], float]]:
    """/metrics as {sample: value} when unlabelled, {sample: {labels: value}} otherwise."""
    out: dict = {}
    for family in _families(server):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            if sample.labels:
                out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
            else:
                out[sample.name] = sample.value
    return out


@pytest.fixture
def serve():
    servers = []

    def start(metrics: Metrics):
        server = metrics.serve("127.0.0.1:0")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()


def test_latest_sample_is_exposed_in_bytes_and_percent(store, t0, serve):
    sample = _sample(t0, psi_full=1.25)
    scraped = _scrape(serve(Metrics(store, "web-01", lambda: sample, lambda: t0)))
    assert scraped["watchdog_oom_commit_percent"] == 90.0
    assert scraped["watchdog_oom_commit_limit_percent"] == 150.0
    assert scraped["watchdog_oom_committed_as_bytes"] == 18_000_000 * 1024
    assert scraped["watchdog_oom_commit_limit_bytes"] == 12_000_000 * 1024
    assert scraped["watchdog_oom_mem_available_bytes"] == 3_000_000 * 1024
    assert scraped["watchdog_oom_psi_memory_some_avg10"] == 4.5
    assert scraped["watchdog_oom_psi_memory_full_avg10"] == 1.25
    assert scraped["watchdog_oom_last_check_timestamp_seconds"] == t0.timestamp()
    assert scraped["watchdog_oom_up"] == 1
    assert scraped["process_resident_memory_bytes"] > 0


def test_figures_not_known_yet_are_absent_rather_than_zero(store, serve):
    scraped = _scrape(serve(Metrics(store, "web-01", lambda: None, lambda: None)))
    assert not [name for name in scraped if "commit" in name or "psi" in name or "last_check" in name]
    assert scraped["watchdog_oom_up"] == 1
    assert scraped["watchdog_oom_outbox_backlog"] == 0


def test_kernel_without_psi_has_no_psi_full_metric(store, t0, serve):
    scraped = _scrape(serve(Metrics(store, "web-01", lambda: _sample(t0, psi_full=None), lambda: t0)))
    assert "watchdog_oom_psi_memory_full_avg10" not in scraped
    assert scraped["watchdog_oom_psi_memory_some_avg10"] == 4.5


def test_kills_of_this_host_are_counted_by_killer_and_constraint(store, t0, serve):
    with store.tx() as tx:
        for i in range(3):
            tx.add_kill(_kill(t0 + timedelta(minutes=i), 100 + i, constraint="CONSTRAINT_MEMCG"), t0)
        tx.add_kill(_kill(t0, 200), t0)
        tx.add_kill(_kill(t0, 300, killer="systemd-oomd", constraint=None), t0)
        tx.add_kill(_kill(t0, 400, host="db-07"), t0)  # another host of the fleet
    server = serve(Metrics(store, "web-01", lambda: None, lambda: None))
    scraped = _scrape(server)
    assert scraped["watchdog_oom_kills_total"] == {
        (("constraint", "CONSTRAINT_MEMCG"), ("killer", "kernel")): 3,
        (("constraint", "CONSTRAINT_NONE"), ("killer", "kernel")): 1,
        (("constraint", "unknown"), ("killer", "systemd-oomd")): 1,
    }
    # A counter, so that rate() and increase() apply.
    assert {f.name: f.type for f in _families(server)}["watchdog_oom_kills"] == "counter"


def test_kill_counter_counts_from_the_daemons_start_so_pruning_cannot_lower_it(store, t0, serve):
    with store.tx() as tx:
        tx.add_kill(_kill(t0 - timedelta(days=500), 1), t0 - timedelta(days=401))  # recorded long before the start
        tx.add_kill(_kill(t0, 2), t0 + timedelta(seconds=5))
    scraped = _scrape(serve(Metrics(store, "web-01", lambda: None, lambda: None, started=t0)))
    assert scraped["watchdog_oom_kills_total"] == {(("constraint", "CONSTRAINT_NONE"), ("killer", "kernel")): 1}
    pruned = store.prune(t0 + timedelta(seconds=10), samples=86400, kills=400 * 86400, alerts=86400,
                         notifications=86400, raw_samples=3600)
    assert pruned["kills"] == 1
    again = _scrape(serve(Metrics(store, "web-01", lambda: None, lambda: None, started=t0)))
    assert again["watchdog_oom_kills_total"] == scraped["watchdog_oom_kills_total"]


def test_firing_alerts_are_counted_and_resolved_kinds_read_zero(store, t0, serve):
    with store.tx() as tx:
        tx.fire_alert(Alert(key="commit", kind="commit.warning", severity="warning", summary="w", time=t0))
        tx.resolve_alert(Alert(key="commit", kind="commit.resolved", severity="warning", summary="ok",
                               time=t0 + timedelta(minutes=5), resolved=True))
        tx.fire_alert(Alert(key="memory.available", kind="memory.critical", severity="critical", summary="c", time=t0))
        tx.fire_alert(Alert(key="process.at_risk:mysqld", kind="process.at_risk", severity="warning", summary="m",
                            time=t0))
        tx.fire_alert(Alert(key="process.at_risk:sshd", kind="process.at_risk", severity="warning", summary="s",
                            time=t0))
    scraped = _scrape(serve(Metrics(store, "web-01", lambda: None, lambda: None)))
    assert scraped["watchdog_oom_alerts_firing"] == {
        (("kind", "commit.warning"), ("severity", "warning")): 0,
        (("kind", "memory.critical"), ("severity", "critical")): 1,
        (("kind", "process.at_risk"), ("severity", "warning")): 2,
    }


def test_outbox_backlog_counts_notifications_not_yet_sent(store, t0, serve):
    with store.tx() as tx:
        for i in range(4):
            tx.enqueue(channel="ops", kind="oom.kill", severity="critical", reason="first", summary=f"kill {i}",
                       data={}, now=t0)
    (claimed,) = claims.claim_due(store, t0, limit=1)
    claims.mark_sent(store, claims.claim_due(store, t0, limit=1)[0], "200 OK", t0)
    assert claimed.status == "sending"
    scraped = _scrape(serve(Metrics(store, "web-01", lambda: None, lambda: None)))
    assert scraped["watchdog_oom_outbox_backlog"] == 3  # two pending, one sending


def test_database_that_does_not_answer_reads_up_zero(db_url, t0, serve):
    unmigrated = Store(db_url, "web-01")  # no tables: every query fails
    scraped = _scrape(serve(Metrics(unmigrated, "web-01", lambda: _sample(t0), lambda: t0)))
    assert scraped["watchdog_oom_up"] == 0
    assert scraped["watchdog_oom_commit_percent"] == 90.0
    assert "watchdog_oom_kills_total" not in scraped
    unmigrated.close()


def test_an_outage_is_logged_once_and_its_end_once_while_scrapes_keep_answering(sqlite_store, db_url, t0, serve,
                                                                                 caplog):
    import sqlite3

    from watchdog_oom.daemon.outage import State

    state = State()
    server = serve(Metrics(sqlite_store, "web-01", lambda: _sample(t0), lambda: t0, database=lambda: state))
    path = db_url.split(":///", 1)[1]
    with caplog.at_level("INFO", logger="watchdog_oom"):
        assert _scrape(server)["watchdog_oom_up"] == 1
        with sqlite3.connect(path) as conn:  # the store stops answering the metrics' queries
            conn.execute("ALTER TABLE kills RENAME TO kills_away")
        state.ok, state.kind, state.held = False, "schema", 2
        scrapes = [_scrape(server) for _ in range(3)]
        for scraped in scrapes:  # what is known without the store is still served
            assert scraped["watchdog_oom_up"] == 0 and scraped["watchdog_oom_commit_percent"] == 90.0
            assert scraped["watchdog_oom_kills_held"] == 2
            assert scraped["watchdog_oom_database_down"] == {(("kind", "schema"),): 1.0}
        with sqlite3.connect(path) as conn:
            conn.execute("ALTER TABLE kills_away RENAME TO kills")
        state.ok, state.kind, state.held = True, None, 0
        assert [_scrape(server)["watchdog_oom_up"] for _ in range(2)] == [1, 1]
    said = [r for r in caplog.records if r.getMessage().startswith("metrics:")]
    assert [r.levelname for r in said] == ["WARNING", "INFO"], [r.getMessage() for r in said]
    assert "does not answer" in said[0].getMessage() and "answers again" in said[1].getMessage()


def test_metrics_stay_out_of_the_global_registry(store):
    Metrics(store, "web-01", lambda: None, lambda: None)
    assert not [name for name in prometheus_client.REGISTRY._names_to_collectors if name.startswith("watchdog_oom")]


def test_stopped_server_frees_its_port(store):
    server = Metrics(store, "web-01", lambda: None, lambda: None).serve("127.0.0.1:0")
    url = f"http://127.0.0.1:{server.port}/metrics"
    assert requests.get(url, timeout=5).status_code == 200
    server.shutdown()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)


@pytest.mark.parametrize("listen, expected", [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)),
    ("[::1]:9464", ("::1", 9464)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("localhost:9100", ("localhost", 9100)),
])
def test_listen_address_is_parsed(listen, expected):
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["9464", ":9464", "127.0.0.1", "127.0.0.1:http", "::1:9464", "h:70000"])
def test_bad_listen_address_is_refused(listen):
    with pytest.raises(ValueError):
        parse_listen(listen)

"""Routing, grouping and the outbox worker, against a real SQLite outbox and a real HTTP server."""

from __future__ import annotations

import base64
import contextlib
import json
import random
import sys
from collections.abc import Iterator
from datetime import timedelta

from servers import HttpSink

from watchdog_oom import notices
from watchdog_oom.dispatch import Dispatcher, Outbox, Route, backoff
from watchdog_oom.model import Alert, OomKill
from watchdog_oom.notify import Deferred, build_channel
from watchdog_oom.notify.webhook import verify_signature
from watchdog_oom.store import claims
from watchdog_oom.store.tables import notifications

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, seconds):
        self.t += timedelta(seconds=seconds)


def _record_kill(store, outbox, t, pid, process="java", **kw):
    with store.tx() as tx:
        row = tx.add_kill(OomKill(pid=pid, process=process, time=t, mono_usec=pid * 1000, boot_id="b",
                                  source="kmsg", **kw), t)
        outbox.kill(tx, row, t)
    return row


def test_route_filters_by_severity_kind_process_and_cgroup():
    page = Route("pager", min_severity="critical", kinds=("oom.kill",), exclude_cgroup="/kubepods/*")
    assert page.wants("oom.kill", "critical", "java", "/system.slice/app.service")
    assert not page.wants("oom.kill", "critical", "java", "/kubepods/burstable/pod1/c1")
    assert not page.wants("oom.kill", "warning", "java", None)
    assert not page.wants("commit.critical", "critical")
    chat = Route("chat", min_severity="warning", kinds=("commit.*", "memory.*"), match_process=None)
    assert chat.wants("commit.warning", "warning")
    assert not chat.wants("oom.kill", "critical")


def test_kills_within_group_wait_make_one_notification(store, t0):
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=5)
    for i in range(100):
        _record_kill(store, outbox, t0 + timedelta(milliseconds=30 * i), pid=1000 + i,
                     process="worker" if i % 2 else "java")
    rows = store.notifications()
    assert len(rows) == 1
    data = rows[0].data
    assert data["count"] == 100 and len(data["kills"]) == 50
    assert data["by_process"] == {"java": 50, "worker": 50}
    assert rows[0].summary.startswith("100 OOM kills")


def test_kills_after_the_window_start_a_new_group(store, t0):
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=5)
    _record_kill(store, outbox, t0, pid=1)
    _record_kill(store, outbox, t0 + timedelta(seconds=6), pid=2)
    assert len(store.notifications()) == 2


def test_muted_kill_is_recorded_but_not_sent(store, t0):
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=5)
    store.add_mute(t0 + timedelta(hours=1), t0, kind="oom.kill", process="chrome")
    _record_kill(store, outbox, t0, pid=1, process="chrome")
    _record_kill(store, outbox, t0, pid=2, process="java")
    statuses = sorted((n.summary.split(":")[1].split()[0], n.status) for n in store.notifications())
    assert statuses == [("chrome", "muted"), ("java", "pending")]
    assert len(claims.claim_due(store, t0 + timedelta(seconds=6))) == 1


def test_delivered_exactly_once_after_the_endpoint_recovers(store, t0):
    clock = Clock(t0)
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=0)
    _record_kill(store, outbox, t0, pid=4242, process="redis-server", anon_rss_kb=14230956)
    with HttpSink([(503, {}, "down"), (503, {}, "down")]) as sink:
        channel = build_channel("webhook", "hook", url=sink.url + "/oom", secret=SECRET)
        dispatcher = Dispatcher(store, {"hook": channel}, max_age=3600, clock=clock, rng=random.Random(1))
        assert dispatcher.run_once() == 1
        (row,) = store.notifications()
        assert row.status == "pending" and "503" in row.last_error and row.attempts == 1
        assert dispatcher.run_once() == 0  # backing off
        for _ in range(5):
            clock.advance(60)
            dispatcher.run_once()
        requests = sink.requests
    (row,) = store.notifications()
    assert row.status == "sent" and row.attempts == 3
    assert len(requests) == 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    final = requests[-1]
    assert verify_signature(SECRET, final.headers, final.body)
    body = json.loads(final.body)
    assert body["type"] == "oom.kill" and body["data"]["kills"][0]["pid"] == 4242


def test_a_channel_whose_code_cannot_be_loaded_keeps_its_row_until_it_can(store, t0, monkeypatch):
    # The daemon's channels load their code at their first send (notify.Deferred): a module
    # that cannot be imported then (the package being upgraded) is a transient failure; the
    # row waits in the outbox and goes out once the import works.
    clock = Clock(t0)
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=0)
    _record_kill(store, outbox, t0, pid=4242, process="redis-server")
    with HttpSink() as sink:
        channel = Deferred("webhook", "hook", url=sink.url + "/oom", secret=SECRET)
        dispatcher = Dispatcher(store, {"hook": channel}, max_age=3600, clock=clock, rng=random.Random(1))
        with monkeypatch.context() as m:
            m.setitem(sys.modules, "watchdog_oom.notify.webhook", None)  # import raises ImportError
            assert dispatcher.run_once() == 1
        (row,) = store.notifications()
        assert row.status == "pending" and "code could not be loaded" in row.last_error
        clock.advance(60)
        assert dispatcher.run_once() == 1
        (request,) = sink.wait_for(1)
    (row,) = store.notifications()
    assert row.status == "sent" and row.attempts == 2
    assert verify_signature(SECRET, request.headers, request.body)
    assert json.loads(request.body)["data"]["kills"][0]["pid"] == 4242


def test_a_channel_whose_compiled_code_is_corrupt_keeps_its_row_until_it_loads(store, t0, tmp_path, monkeypatch):
    # A corrupt .pyc (its header intact, its body not) makes the import raise ValueError
    # ("bad marshal data"), not ImportError: it is still the code that cannot be loaded, a
    # transient failure, not the channel's configuration refused (review R23).
    import importlib.util

    import watchdog_oom.notify as notify_package

    (tmp_path / "webhook.pyc").write_bytes(importlib.util.MAGIC_NUMBER + bytes(12) + b"\xff\xfe corrupt")
    clock = Clock(t0)
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=0)
    _record_kill(store, outbox, t0, pid=4242, process="redis-server")
    with HttpSink() as sink:
        channel = Deferred("webhook", "hook", url=sink.url + "/oom", secret=SECRET)
        dispatcher = Dispatcher(store, {"hook": channel}, max_age=3600, clock=clock, rng=random.Random(1))
        with monkeypatch.context() as m:
            m.delitem(sys.modules, "watchdog_oom.notify.webhook")
            m.setattr(notify_package, "__path__", [str(tmp_path), *notify_package.__path__])
            assert dispatcher.run_once() == 1
            assert "watchdog_oom.notify.webhook" not in sys.modules
        (row,) = store.notifications()
        assert row.status == "pending"
        assert "code could not be loaded: ValueError: bad marshal data" in row.last_error
        clock.advance(60)
        assert dispatcher.run_once() == 1
        (request,) = sink.wait_for(1)
    (row,) = store.notifications()
    assert row.status == "sent" and row.attempts == 2
    assert verify_signature(SECRET, request.headers, request.body)


def test_a_channel_its_type_refuses_at_its_first_send_fails_for_good(store, t0):
    clock = Clock(t0)
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=0)
    _record_kill(store, outbox, t0, pid=1)
    Dispatcher(store, {"hook": Deferred("webhook", "hook", url="ftp://x.example/hook")}, max_age=3600,
               clock=clock).run_once()
    (row,) = store.notifications()
    assert row.status == "failed" and "url must be an http(s) URL" in row.last_error


def test_permanent_failure_is_not_retried(store, t0):
    clock = Clock(t0)
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=0)
    _record_kill(store, outbox, t0, pid=1)
    with HttpSink([(404, {}, "no such hook")]) as sink:
        channel = build_channel("webhook", "hook", url=sink.url)
        Dispatcher(store, {"hook": channel}, max_age=3600, clock=clock).run_once()
    (row,) = store.notifications()
    assert row.status == "failed" and "404" in row.last_error


def test_given_up_after_max_age(store, t0):
    clock = Clock(t0)
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=0)
    _record_kill(store, outbox, t0, pid=1)
    with HttpSink([(500, {}, "x")] * 10) as sink:
        dispatcher = Dispatcher(store, {"hook": build_channel("webhook", "hook", url=sink.url)},
                                max_age=600, clock=clock)
        dispatcher.run_once()
        clock.advance(3600)
        dispatcher.run_once()
    (row,) = store.notifications()
    assert row.status == "given_up" and "gave up" in row.last_error


def test_retry_after_is_honoured(store, t0):
    clock = Clock(t0)
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=0)
    _record_kill(store, outbox, t0, pid=1)
    with HttpSink([(429, {"Retry-After": "120"}, "slow down")]) as sink:
        Dispatcher(store, {"hook": build_channel("webhook", "hook", url=sink.url)}, max_age=3600,
                   clock=clock).run_once()
    (row,) = store.notifications()
    assert row.status == "pending" and row.due_at >= t0 + timedelta(seconds=120)


def test_backoff_grows_and_is_capped():
    rng = random.Random(7)
    delays = [backoff(n, rng) for n in range(1, 12)]
    assert delays[0] < 10 and delays[3] > delays[0]
    assert max(delays) <= 900 * 1.5


def test_resolved_goes_only_where_the_alert_was_sent(store, t0):
    outbox = Outbox([Route("chat", min_severity="warning"), Route("pager", min_severity="critical")], 0)
    alert = Alert("commit", "commit.warning", "warning", "commit high", t0, data={})
    with store.tx() as tx:
        row, reason = tx.fire_alert(alert)
        outbox.alert(tx, alert, row, reason, t0)
    resolved = Alert("commit", "commit.resolved", "info", "Resolved: commit fine", t0, True, {})
    with store.tx() as tx:
        row = tx.resolve_alert(resolved)
        outbox.alert(tx, resolved, row, "resolved", t0)
    sent = sorted((n.channel, n.reason) for n in store.notifications())
    assert sent == [("chat", "first"), ("chat", "resolved")]


def test_alert_unchanged_is_not_announced_twice(store, t0):
    alert = Alert("commit", "commit.warning", "warning", "commit high", t0)
    with store.tx() as tx:
        assert tx.fire_alert(alert)[1] == "first"
        assert tx.fire_alert(alert)[1] is None
        assert tx.fire_alert(Alert("commit", "commit.critical", "critical", "x", t0))[1] == "new"


def test_kernel_log_gaps_within_group_wait_add_up_in_one_notification(store, t0):
    outbox = Outbox([Route("hook", min_severity="warning")], group_wait=5)
    for i in range(20):
        with store.tx() as tx:
            notices.gap(outbox, tx, "kmsg", 3, "3 records overwritten", t0 + timedelta(milliseconds=100 * i))
    (row,) = store.notifications()
    assert row.kind == "kernel_log.gap" and row.data["missed"] == 60 and row.data["gaps"] == 20
    assert "60 in 20 gaps" in row.summary


def test_resolved_reaches_a_channel_that_matched_the_alerts_process(store, t0):
    outbox = Outbox([Route("sshd-pager", min_severity="warning", match_process="sshd")], 0)
    alert = Alert("process.at_risk:sshd", "process.at_risk", "warning", "sshd is #1", t0, data={"process": "sshd"})
    with store.tx() as tx:
        row, reason = tx.fire_alert(alert)
        outbox.alert(tx, alert, row, reason, t0)
    resolved = Alert("process.at_risk:sshd", "process.resolved", "info", "Resolved", t0, True, {})
    with store.tx() as tx:
        outbox.alert(tx, resolved, tx.resolve_alert(resolved), "resolved", t0)
    assert sorted(n.reason for n in store.notifications()) == ["first", "resolved"]


def test_an_endpoint_echoing_any_channels_secret_never_gets_it_stored(store, t0):
    clock = Clock(t0)
    outbox = Outbox([Route("hook", min_severity="info")], group_wait=0)
    _record_kill(store, outbox, t0, pid=1)
    with HttpSink([(500, {}, "upstream said: token PAGERTOKEN98765 rejected")]) as sink:
        Dispatcher(store, {"hook": build_channel("webhook", "hook", url=sink.url)}, max_age=3600, clock=clock,
                   secrets=["PAGERTOKEN98765"]).run_once()
    (row,) = store.notifications()
    assert "500" in row.last_error and "PAGERTOKEN98765" not in row.last_error


def test_alertmanager_receivers_see_one_alert_from_firing_through_escalation_to_resolved(store, t0):
    from watchdog_oom.dispatch import to_notification
    from watchdog_oom.notify.webhook import alertmanager_body

    outbox = Outbox([Route("am", min_severity="info")], 0)
    bodies = []

    def send(alert, resolved=False):
        with store.tx() as tx:
            if resolved:
                row, reason = tx.resolve_alert(alert), "resolved"
            else:
                row, reason = tx.fire_alert(alert)
            outbox.alert(tx, alert, row, reason or "repeat", t0)
        newest = max(store.notifications(), key=lambda n: n.id)
        bodies.append(alertmanager_body(to_notification(newest), "am"))

    mysqld = {"process": "mysqld", "pid": 42}
    send(Alert("process.at_risk:mysqld", "process.at_risk", "warning", "mysqld #2", t0, data=mysqld))
    send(Alert("process.at_risk:mysqld", "process.at_risk", "critical", "mysqld #1", t0, data=mysqld))
    send(Alert("process.at_risk:mysqld", "process.resolved", "info", "Resolved", t0 + timedelta(minutes=5),
               True, {}), resolved=True)
    send(Alert("process.at_risk:postgres", "process.at_risk", "warning", "postgres #3", t0,
               data={"process": "postgres"}))
    mysqld_prints = {b["alerts"][0]["fingerprint"] for b in bodies[:3]}
    assert len(mysqld_prints) == 1, "firing, escalation and resolution must be one alert"
    assert bodies[3]["alerts"][0]["fingerprint"] not in mysqld_prints
    assert [b["status"] for b in bodies[:3]] == ["firing", "firing", "resolved"]
    assert bodies[0]["alerts"][0]["labels"] == {"alertname": "ProcessAtRisk", "host": "web-01",
                                                "instance": "web-01", "process": "mysqld"}
    assert bodies[2]["alerts"][0]["startsAt"] == t0.isoformat()
    assert bodies[1]["alerts"][0]["annotations"]["severity"] == "critical"


def test_retry_after_pauses_the_whole_channel_not_just_one_message(store, t0):
    clock = Clock(t0)
    with store.tx() as tx:
        for i in range(5):
            tx.enqueue(channel="hook", kind="test", severity="info", reason="test", summary=f"n{i}", data={}, now=t0)
    with HttpSink([(429, {"Retry-After": "60"}, "slow down")]) as sink:
        dispatcher = Dispatcher(store, {"hook": build_channel("webhook", "hook", url=sink.url)}, max_age=3600,
                                clock=clock)
        dispatcher.run_once()
        assert len(sink.requests) == 1
        rows = store.notifications()
        assert all(r.status == "pending" and r.due_at >= t0 + timedelta(seconds=60) for r in rows)
        assert sorted(r.attempts for r in rows) == [0, 0, 0, 0, 1]
        clock.advance(61)
        dispatcher.run_once()
        assert len(sink.requests) == 6
    assert {r.status for r in store.notifications()} == {"sent"}


def test_a_short_retry_after_pauses_the_channel_only_that_long(store, t0):
    clock = Clock(t0)
    with store.tx() as tx:
        old = tx.enqueue(channel="hook", kind="test", severity="info", reason="test", summary="old", data={}, now=t0)
    claims.claim_due(store, t0)
    with store.tx() as tx:  # as if it had failed eight times already
        tx.conn.execute(notifications.update().where(notifications.c.id == old.id)
                        .values(status="pending", attempts=8))
    with HttpSink([(429, {"Retry-After": "1"}, "slow down")]) as sink:
        dispatcher = Dispatcher(store, {"hook": build_channel("webhook", "hook", url=sink.url)}, max_age=86400,
                                clock=clock)
        dispatcher.run_once()  # the old row backs off for minutes; the channel only for 1 s
        clock.advance(2)
        with store.tx() as tx:
            tx.enqueue(channel="hook", kind="test", severity="info", reason="test", summary="new", data={},
                       now=clock())
        dispatcher.run_once()
        assert [r.json()["summary"] for r in sink.wait_for(2)] == ["old", "new"]


@contextlib.contextmanager
def _statement_threads(engine) -> Iterator[list[str]]:
    """The name of the thread of every statement run on `engine` meanwhile (a real engine event)."""
    import threading

    from sqlalchemy import event

    threads: list[str] = []

    def note(*_args):
        threads.append(threading.current_thread().name)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield threads
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _enqueue(store, channel, summary, now):
    with store.tx() as tx:
        tx.enqueue(channel=channel, kind="test", severity="info", reason="test", summary=summary, data={}, now=now)


def test_a_hung_endpoint_delays_no_other_channel(store, t0):
    from servers import HANG

    from watchdog_oom.dispatch import Senders

    clock = Clock(t0)
    with HttpSink([HANG]) as hung, HttpSink() as chat:
        channels = {"hung": build_channel("webhook", "hung", url=hung.url, timeout=120),
                    "chat": build_channel("webhook", "chat", url=chat.url)}
        senders = Senders(Dispatcher(store, channels, max_age=3600, clock=clock)).start()
        try:
            _enqueue(store, "hung", "first", t0)
            senders.wake()
            hung.wait_for(1)  # the hung channel's thread is now stuck in its request
            _enqueue(store, "chat", "second", t0)
            senders.wake()
            # Arrives while the other endpoint still holds its request (120 s timeout).
            assert [r.json()["summary"] for r in chat.wait_for(1)] == ["second"]
            _wait_until(lambda: {n.channel: n.status for n in store.notifications()}
                        == {"hung": "sending", "chat": "sent"})
            hung.release()
            _wait_until(lambda: {n.status for n in store.notifications()} == {"sent"})
        finally:
            senders.stop()
        assert len(hung.requests) == 1 and len(chat.requests) == 1
    assert not any(t.is_alive() for t in senders.threads)


def test_a_stop_during_a_hung_send_leaves_the_rest_of_the_batch_untried(store, t0):
    import threading

    from servers import HANG

    clock = Clock(t0)
    for summary in ("first", "second", "third"):
        _enqueue(store, "hook", summary, t0)
    stop = threading.Event()
    with HttpSink([HANG] * 3) as hung:
        dispatcher = Dispatcher(store, {"hook": build_channel("webhook", "hook", url=hung.url, timeout=120)},
                                max_age=3600, clock=clock)
        worker = threading.Thread(target=dispatcher.run_once, kwargs={"stop": stop})
        worker.start()
        hung.wait_for(1)  # the batch of three is claimed; the first send hangs
        stop.set()
        hung.release()
        worker.join(timeout=20)
        assert not worker.is_alive()
        assert len(hung.requests) == 1, "a stopping sender went on with its batch"
    rows = sorted(store.notifications(), key=lambda n: n.summary)
    assert [(n.summary, n.status, n.attempts) for n in rows] == [
        ("first", "sent", 1), ("second", "pending", 0), ("third", "pending", 0)]


def test_a_failing_channel_delays_no_other_and_rows_of_removed_channels_are_dropped(store, t0):
    from watchdog_oom.dispatch import Senders

    clock = Clock(t0)
    for name in ("down", "chat", "gone"):
        _enqueue(store, name, f"to {name}", t0)
    with HttpSink([(503, {}, "down")] * 50) as down, HttpSink() as chat:
        channels = {"down": build_channel("webhook", "down", url=down.url),
                    "chat": build_channel("webhook", "chat", url=chat.url)}
        senders = Senders(Dispatcher(store, channels, max_age=3600, clock=clock)).start()
        try:
            chat.wait_for(1)
            _wait_until(lambda: {n.channel: n.status for n in store.notifications()}
                        == {"down": "pending", "chat": "sent", "gone": "failed"})
        finally:
            senders.stop()
    (gone,) = [n for n in store.notifications() if n.channel == "gone"]
    assert "no longer configured" in gone.last_error
    # One thread per channel: a free channel's thread failed the removed channel's row.
    assert sorted(t.name for t in senders.threads) == ["send:chat", "send:down"]


def test_with_no_channel_left_one_thread_fails_the_rows_of_removed_channels(store, t0):
    from watchdog_oom.dispatch import Senders

    clock = Clock(t0)
    _enqueue(store, "gone", "to gone", t0)
    senders = Senders(Dispatcher(store, {}, max_age=3600, clock=clock)).start()
    try:
        _wait_until(lambda: [n.status for n in store.notifications()] == ["failed"])
        _enqueue(store, "gone", "again", t0)  # written meanwhile (another process): found when woken
        senders.wake()
        _wait_until(lambda: [n.status for n in store.notifications()] == ["failed", "failed"])
    finally:
        senders.stop()
    assert [t.name for t in senders.threads] == ["send:unconfigured"]


def test_idle_senders_run_no_query_of_their_own_and_a_look_finds_rows_nobody_rang_for(store, t0):
    # Each channel's thread queries the database only once woken: the look at the whole
    # outbox (start(), then the daemon's outbox thread every IDLE_WAIT) runs in the caller's
    # thread. Every statement's thread is recorded on the real engine.
    from watchdog_oom.dispatch import Senders

    with _statement_threads(store.engine) as threads:
        clock = Clock(t0)
        with HttpSink() as chat:
            channels = {"chat": build_channel("webhook", "chat", url=chat.url),
                        "hook": build_channel("webhook", "hook", url=chat.url)}
            senders = Senders(Dispatcher(store, channels, max_age=3600, clock=clock)).start()
            try:
                senders.look()  # nothing due: nobody is woken
                assert threads and not [t for t in threads if t.startswith("send:")]
                _enqueue(store, "chat", "written elsewhere", t0)  # no doorbell rung for it
                senders.look()
                assert [r.json()["summary"] for r in chat.wait_for(1)] == ["written elsewhere"]
                _wait_until(lambda: [n.status for n in store.notifications()] == ["sent"])
            finally:
                senders.stop()
        assert "send:chat" in threads


def test_a_look_says_when_a_row_not_due_yet_falls_due_and_wakes_the_senders_then(store, t0):
    # A retry due later, found by the look at start (a restart): no sender waits for it,
    # so the look says when, and the caller (the daemon's outbox thread) looks again then.
    from watchdog_oom.dispatch import Senders

    clock = Clock(t0)
    with store.tx() as tx:
        tx.enqueue(channel="chat", kind="test", severity="info", reason="test", summary="retried", data={},
                   now=t0, due_at=t0 + timedelta(seconds=30))
    with HttpSink() as chat:
        senders = Senders(Dispatcher(store, {"chat": build_channel("webhook", "chat", url=chat.url)},
                                     max_age=3600, clock=clock)).start()
        try:
            assert senders.next_look == 30.0
            clock.advance(10)
            assert senders.look() == 20.0
            assert not chat.requests
            clock.advance(20)
            assert senders.look() is None  # due: the senders are woken
            assert [r.json()["summary"] for r in chat.wait_for(1)] == ["retried"]
        finally:
            senders.stop()


def test_senders_stopped_while_idle_end_without_a_query(store, t0):
    import threading

    from watchdog_oom.dispatch import Senders

    with _statement_threads(store.engine) as threads:
        channels = {"chat": build_channel("webhook", "chat", url="http://127.0.0.1:9/x")}
        senders = Senders(Dispatcher(store, channels, max_age=3600, clock=Clock(t0))).start()
        senders.stop()
    assert not any(t.is_alive() for t in senders.threads)
    assert threads == [threading.current_thread().name] * len(threads) and threads  # start()'s look alone


def test_rows_of_a_removed_channel_queued_later_are_failed_when_the_senders_are_woken(store, t0):
    from watchdog_oom.dispatch import Senders

    clock = Clock(t0)
    with HttpSink() as chat:
        channels = {"chat": build_channel("webhook", "chat", url=chat.url)}
        senders = Senders(Dispatcher(store, channels, max_age=3600, clock=clock)).start()
        try:
            _enqueue(store, "gone", "to gone", t0)
            _enqueue(store, "chat", "to chat", t0)
            senders.wake()
            chat.wait_for(1)
            _wait_until(lambda: {n.channel: n.status for n in store.notifications()}
                        == {"chat": "sent", "gone": "failed"})
        finally:
            senders.stop()


def _wait_until(condition, timeout=60.0):
    """Poll a condition on the database (the senders record outcomes in their own threads)."""
    import threading

    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError("condition not met within the deadline")

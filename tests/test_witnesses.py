"""One kill, several witnesses: the rules that call a disagreement, and the store joining
the tracepoint's record of a real kill with the log's, in either order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from test_trace_events import first_kill_from_kmsg, traced_first_kill

from watchdog_oom.rules.witnesses import TraceWindow, Witnessed, suspect, unlogged
from watchdog_oom.store import tracing

TRACE_FIELDS = ("time", "uid", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb", "pgtables_kb",
                "oom_score_adj", "process")


def seen(t0, **kw) -> Witnessed:
    base = {"id": 7, "pid": 42, "process": "java", "time": t0, "source": "kmsg", "recorded_at": t0,
            "witnesses": ("kmsg",), "flagged": False}
    return Witnessed(**{**base, **kw})


def test_a_kill_only_the_tracepoint_saw_is_called_unlogged_once_the_log_had_time(t0):
    traced = seen(t0, source="tracepoint", witnesses=("tracepoint",))
    assert unlogged(traced, "kmsg", t0 + timedelta(seconds=3)) is None  # the log may still come
    alert = unlogged(traced, "kmsg", t0 + timedelta(seconds=11))
    assert alert.kind == "oom.unlogged" and alert.data["disagreed"] == "log" and alert.data["kill_id"] == 7
    assert "java (pid 42)" in alert.summary and "not in the kernel log (kmsg)" in alert.summary
    assert unlogged(traced, None, t0 + timedelta(seconds=60)) is None  # source none: no log to disagree
    assert unlogged(seen(t0, source="tracepoint", flagged=True), "kmsg", t0 + timedelta(minutes=1)) is None
    # kernel_log.witness_wait: a log shipped from elsewhere may be given longer, a test less.
    assert unlogged(traced, "kmsg", t0 + timedelta(seconds=11), wait=timedelta(seconds=30)) is None
    assert unlogged(traced, "kmsg", t0 + timedelta(seconds=3), wait=timedelta(seconds=2)) is not None


def test_a_log_kill_the_watching_tracepoint_never_saw_is_suspect(t0):
    window = TraceWindow(since=t0 - timedelta(minutes=5))
    later = t0 + timedelta(seconds=11)
    alert = suspect(seen(t0, source="file:/var/log/kern.log"), window, later)
    assert alert.data["disagreed"] == "tracepoint" and "logger -t kernel" in alert.summary
    assert suspect(seen(t0), window, later).summary.endswith("possibly forged")
    assert suspect(seen(t0, witnesses=("kmsg", "tracepoint")), window, later) is None
    assert suspect(seen(t0), window, t0 + timedelta(seconds=2)) is None  # the tracepoint may still report it
    assert suspect(seen(t0), window, t0 + timedelta(seconds=2), wait=timedelta(seconds=1)) is not None
    assert suspect(seen(t0), window, later, wait=timedelta(seconds=30)) is None
    assert suspect(seen(t0), None, later) is None  # not tracing
    assert suspect(seen(t0), TraceWindow(since=t0 - timedelta(seconds=2)), later) is None  # before it watched
    assert suspect(seen(t0), TraceWindow(window.since, (t0 + timedelta(seconds=3),)), later) is None  # lost events


def test_traced_first_then_logged_is_one_record_with_both(store, t0):
    traced, _ = traced_first_kill()
    logged = first_kill_from_kmsg()
    with store.tx() as tx:
        row = tx.add_kill(traced.replace(host="web-01"), t0)
        assert row is not None and row.source == "tracepoint"
    with store.tx() as tx:
        assert tx.add_kill(logged.replace(host="web-01"), t0) is None  # the same kill
    (kill,) = store.kills()
    assert kill.source == "kmsg" and kill.time == traced.time
    assert kill.constraint == "CONSTRAINT_MEMCG" and kill.invoker == "python3" and kill.mono_usec == logged.mono_usec
    assert kill.details["task_table"] and kill.details["memory_info"]
    assert kill.details["extra"]["witnesses"] == ["tracepoint", "kmsg"]
    assert kill.details["extra"]["tracepoint"]["mono_usec"] == 417140432


def test_logged_first_then_traced_takes_the_tracepoints_time_and_figures(store, t0):
    traced, _ = traced_first_kill()
    logged = first_kill_from_kmsg()
    with store.tx() as tx:
        row = tx.add_kill(logged.replace(host="web-01"), t0)
    with store.tx() as tx:
        found = tracing.find_kernel_kill(tx, traced.pid, "b", traced.time, timedelta(seconds=5))
        assert found is not None and found.id == row.id
        tracing.add_witness(tx, found, traced, TRACE_FIELDS, "tracepoint", traced.extra["tracepoint"])
    (kill,) = store.kills()
    assert kill.time == traced.time and kill.source == "kmsg" and kill.details["task_table"]
    assert kill.details["extra"]["witnesses"] == ["kmsg", "tracepoint"]
    with store.tx() as tx:
        assert tracing.find_kernel_kill(tx, traced.pid, "other-boot", traced.time, timedelta(seconds=5)) is None
        later = traced.time + timedelta(minutes=1)
        assert tracing.find_kernel_kill(tx, traced.pid, "b", later, timedelta(seconds=5)) is None


def test_a_pid_only_traced_kill_takes_the_logs_name(store, t0):
    traced, _ = traced_first_kill()
    logged = first_kill_from_kmsg()
    anonymous = traced.replace(process="?", total_vm_kb=None, anon_rss_kb=None, host="web-01")
    with store.tx() as tx:
        tx.add_kill(anonymous, t0)
    with store.tx() as tx:
        assert tx.add_kill(logged.replace(host="web-01"), t0) is None
    (kill,) = store.kills()
    assert kill.process == "python3" and kill.total_vm_kb == 58712 and kill.source == "kmsg"


def test_flags_and_protections_are_kept(store, t0):
    logged = first_kill_from_kmsg()
    with store.tx() as tx:
        row = tx.add_kill(logged.replace(host="web-01"), t0)
        tracing.note_on_kill(tx, row, "disagreed", "tracepoint")
        tx.add_protection(time=t0, pid=5, process="sshd", cmdline=None, from_adj=0, to_adj=-900)
        tx.add_protection(time=t0 + timedelta(seconds=1), pid=5, process="sshd", cmdline=None, from_adj=0, to_adj=-1,
                          error="EACCES")
    with store.tx() as tx:
        (recent,) = tracing.recent_kernel_kills(tx, "b", logged.time - timedelta(seconds=1))
        assert recent.details["disagreed"] == "tracepoint"
        assert tracing.last_protection(tx, 5, t0 - timedelta(days=1)) == -900
        assert tracing.last_protection(tx, 5, t0 + timedelta(seconds=1)) is None
        assert tracing.last_protection(tx, 6, t0 - timedelta(days=1)) is None


def test_the_counters_shortfall_with_the_tracepoint_on_is_one_neither_witness_showed(t0):
    from watchdog_oom.rules.crosscheck import cross_check

    state, _ = cross_check({}, "b", counter=10, recorded=0, now=t0, tracing=True)
    state, _ = cross_check(state, "b", counter=11, recorded=0, now=t0, tracing=True)
    _, alert = cross_check(state, "b", counter=11, recorded=0, now=t0, tracing=True)
    assert alert.data["disagreed"] == "log and tracepoint" and "nor the tracepoint" in alert.summary


def test_show_names_the_witnesses_and_a_suspect_record(tmp_path, store, t0):
    from test_cli import run, write_config

    traced, _ = traced_first_kill()
    logged = first_kill_from_kmsg()
    with store.tx() as tx:
        tx.add_kill(traced.replace(host="web-01"), t0)
        tx.add_kill(logged.replace(host="web-01"), t0)
        forged = tx.add_kill(logged.replace(host="web-01", pid=999, time=logged.time + timedelta(hours=1),
                                            mono_usec=None, source="file:/var/log/syslog"), t0)
        tracing.note_on_kill(tx, forged, "disagreed", "tracepoint")
    cfg = write_config(tmp_path, f"database: {store.engine.url}\nhost: web-01\n")
    code, out, _ = run("show", "1", config=cfg)
    assert code == 0 and "witnesses      tracepoint, kmsg" in out and "marked by      python3 (tid 16834)" in out
    code, out, _ = run("show", str(forged.id), config=cfg)
    assert "SUSPECT" in out


@pytest.mark.parametrize("minutes", [10 / 60, 5, 9.5, 10, 15, 60])
def test_a_kill_only_the_tracepoint_saw_is_alerted_whatever_the_witness_wait(minutes: float) -> None:
    # Review R11: a sweep read the kills of the last SWEEP_BACK (10 min) alone, so with a
    # witness_wait past ~9 min a kill left the look-back before its wait ended: never alerted.
    # The tracer's schedule (every min(SWEEP, wait) for BUSY s after a traced kill, then every
    # SWEEP_IDLE), each sweep reading from now - look_back(wait), with the real rule.
    from watchdog_oom.daemon.tracer import BUSY, SWEEP, SWEEP_IDLE, look_back

    t0 = datetime(2026, 12, 6, 22, 0, tzinfo=timezone.utc)
    kill = Witnessed(1, 42, "java", t0, "tracepoint", t0, ("tracepoint",), False)
    wait = timedelta(minutes=minutes)
    at, alerted = 0.0, None
    while at < 4 * 3600 and alerted is None:
        at += min(SWEEP, wait.total_seconds()) if at < BUSY else SWEEP_IDLE
        now = t0 + timedelta(seconds=at)
        if kill.time >= now - look_back(wait) and unlogged(kill, "journal", now, wait):
            alerted = at
    assert alerted is not None and wait.total_seconds() <= alerted <= wait.total_seconds() + SWEEP_IDLE

"""The oom_score_adj audit: which writes alert and how loudly, what history keeps, and
`history adjustments` over a real migrated database."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from test_cli import run, write_config

from watchdog_oom.rules.adjaudit import (
    AdjMemory,
    Adjustment,
    Writer,
    alert,
    severity,
    summary,
)
from watchdog_oom.store import Store, tracing

WRITER = Writer(tid=4242, process="evil", pid=4242, cmdline="evil --make-it-die", unit="cron.service", uid=1000)


def change(t0, old, new, **kw) -> Adjustment:
    return Adjustment(time=t0, pid=77, process="postgres", old_adj=old, new_adj=new, writer=kw.pop("writer", WRITER),
                      critical=kw.pop("critical", True), **kw)


@pytest.mark.parametrize("old,new,extra,expected", [
    (0, 1000, {}, "critical"),            # likelier to die
    (None, 500, {}, "critical"),          # against the kernel's default 0
    (-500, -100, {}, "critical"),
    (0, -500, {}, "warning"),             # safer, but someone touched a critical process
    (-900, -100, {"protected_to": -900}, "critical"),   # the watchdog's protection taken away
    (-900, -950, {"protected_to": -900}, "warning"),
    (0, 0, {}, None),                     # a write of the same value changes nothing
    (0, 1000, {"critical": False}, None),  # other processes: history only
    (0, -900, {"by_watchdog": True}, None),  # the daemon's own write (protecting)
])
def test_severity_of_a_change(t0, old, new, extra, expected):
    assert severity(change(t0, old, new, **extra)) == expected


def test_the_alert_names_the_process_the_values_and_the_writer(t0):
    a = alert(change(t0, 0, 1000, cmdline="postgres -D /data", unit="postgresql.service"))
    assert a.kind == "process.adj_changed" and a.severity == "critical"
    assert a.summary == ("oom_score_adj of postgres (pid 77) changed from 0 to 1000 by evil (pid 4242, "
                         "cron.service): it is now likelier to be killed (1000: the OOM killer's first choice)")
    data = a.data["adjustment"]
    assert data["old_adj"] == 0 and data["new_adj"] == 1000 and data["unit"] == "postgresql.service"
    assert data["writer"] == {"pid": 4242, "tid": 4242, "process": "evil", "cmdline": "evil --make-it-die",
                              "unit": "cron.service", "uid": 1000, "exited": False, "unknown": None}
    assert data["found_by"] == "tracepoint"


def test_a_change_found_by_a_re_read_says_its_writer_is_unknown(t0):
    lost = Writer(tid=0, process="?", unknown="its event was lost: 9 trace events lost")
    adj = change(t0, 0, 1000, writer=lost, found_by="resync")
    assert alert(adj).summary.startswith("oom_score_adj of postgres (pid 77) changed from 0 to 1000 by an unknown "
                                         "writer (its event was lost: 9 trace events lost)")
    assert adj.to_dict()["found_by"] == "resync" and adj.to_dict()["writer"]["unknown"].startswith("its event")


def test_a_removed_protection_and_an_exited_writer_are_said(t0):
    gone = Writer(tid=9, process="sh", exited=True)
    text = summary(Adjustment(time=t0, pid=1, process="sshd", old_adj=-900, new_adj=0, writer=gone, critical=True,
                              protected_to=-900))
    assert text.endswith("by sh (pid 9, exited): the protection watchdog-oom set (-900) is gone")


def test_the_old_value_comes_from_the_last_scan_or_write():
    memory = AdjMemory(max_entries=3)
    memory.seen({1: 0, 2: -900}, scan_began=10.0)
    assert memory.written(2, 1000, when=11.0) == -900
    assert memory.written(2, 0, when=12.0) == 1000
    assert memory.written(5, 0, when=12.5) is None
    # A scan that began before a write does not bring back the value the write replaced.
    memory.seen({1: 0, 2: 1000}, scan_began=11.5)
    assert memory.written(2, 3, when=13.0) == 0
    for pid in range(100, 110):
        memory.written(pid, 1, when=14.0)
    assert memory.written(100, 2, when=15.0) is None  # bounded: the oldest are forgotten


def test_a_write_handled_after_a_scan_that_already_read_it_is_not_called_unchanged(t0):
    # The tracepoint thread handles a write late (behind a flood of others); the process
    # scan meanwhile read the new value. Taken as the old one, the write to a critical
    # process looked unchanged and raised no alert.
    memory = AdjMemory()
    memory.seen({7: 0}, scan_began=10.0)
    memory.seen({7: 1000}, scan_began=20.0)  # read after the write at 15.0
    old = memory.written(7, 1000, when=15.0)
    assert old is None
    adj = Adjustment(time=t0, pid=7, process="postgres", old_adj=old, new_adj=1000, writer=WRITER, critical=True)
    assert severity(adj) == "critical"


def record(store: Store, t0, n: int, **kw) -> None:
    with store.tx() as tx:
        for i in range(n):
            tracing.add_adjustment(tx, time=t0 + timedelta(minutes=i), boot_id="b", pid=100 + i,
                                   process=kw.get("process", "app"),
                                   cmdline=None, unit=None, old_adj=0, new_adj=i, critical=False, by_watchdog=False,
                                   severity=None, writer=kw.get("writer", WRITER.to_dict()))


def test_history_keeps_every_change_and_retention_bounds_it(store, t0):
    record(store, t0, 5)
    rows = store.adjustments()
    assert [r.new_adj for r in rows] == [4, 3, 2, 1, 0]  # newest first
    assert rows[0].writer_process == "evil" and rows[0].writer_unit == "cron.service"
    assert [r.pid for r in store.adjustments(process="evi*")] == [104, 103, 102, 101, 100]
    now = t0 + timedelta(days=400, minutes=3)
    counts = store.prune(now, samples=86400, kills=86400, alerts=86400, notifications=86400, raw_samples=86400)
    assert counts["adjustments"] == 3
    assert [r.new_adj for r in store.adjustments()] == [4, 3]


def test_history_adjustments_command(tmp_path, store, t0):
    cfg = write_config(tmp_path, f"database: {store.engine.url}\nhost: web-01\n")
    record(store, t0, 2, process="post\x1b[2Jgres", writer={**WRITER.to_dict(), "pid": None, "exited": True})
    code, out, _ = run("history", "adjustments", "--format", "json", "--since", "3000d", config=cfg)
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["writer_process"] == "evil" and rows[0]["by"] == "evil (pid 4242, exited)"
    code, out, _ = run("history", "adjustments", "--since", "3000d", config=cfg)
    assert "evil (pid 4242, exited)" in out and "\x1b" not in out
    code, out, _ = run("history", "adjustments", "--format", "csv", "--since", "3000d", config=cfg)
    header = next(csv.reader(io.StringIO(out)))
    assert header[:4] == ["time", "host", "pid", "process"] and "writer_cmdline" in header

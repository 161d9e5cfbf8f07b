"""`history kills` and `history samples` read as records (the printed fields alone, times
converted a column at a time): the same records, in the same order, as the stored values
give, on both engines; and what `history samples` prints, pinned byte for byte."""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from watchdog_oom.cli import main
from watchdog_oom.model import MemorySample, OomKill
from watchdog_oom.store import Store, kill_record
from watchdog_oom.store.records import SAMPLE_FIELDS

ROOT = Path(__file__).resolve().parent.parent


def _kill(t0, pid, process, **kw):
    base = dict(pid=pid, process=process, time=t0, mono_usec=pid * 1000, boot_id="b1", source="kmsg",
                anon_rss_kb=65152, constraint="CONSTRAINT_MEMCG", cgroup_oom=True, task_memcg="/wdtest1")
    return OomKill(**{**base, **kw})


def _sample(t, committed=10_000_000, **kw):
    base = dict(time=t, mem_total_kb=16_000_000, mem_available_kb=8_000_000, mem_free_kb=1, swap_total_kb=0,
                swap_free_kb=0, committed_as_kb=committed, commit_limit_kb=8_000_000, overcommit_memory=0,
                overcommit_ratio=50, overcommit_kbytes=0, psi_some_avg10=0.25, psi_full_avg10=0.125)
    return MemorySample(**{**base, **kw})


def _record_of_sample(s) -> dict:
    """A stored sample as `history samples` gave it before records were read directly."""
    return {"time": s.time.isoformat(), "host": s.host, "resolution": s.resolution,
            "commit_percent": s.commit_percent, "commit_limit_percent": s.commit_limit_percent,
            "committed_as_kb": s.committed_as_kb, "commit_limit_kb": s.commit_limit_kb,
            "mem_available_kb": s.mem_available_kb, "mem_available_percent": s.mem_available_percent,
            "swap_total_kb": s.swap_total_kb, "swap_free_kb": s.swap_free_kb,
            "psi_some_avg10": s.psi_some_avg10, "psi_full_avg10": s.psi_full_avg10,
            "overcommit_memory": s.overcommit_memory}


def test_kill_records_are_the_records_of_the_stored_kills_in_their_order(store, store_url, t0):
    with store.tx() as tx:
        for i in range(9):
            when = None if i == 4 else t0 - timedelta(minutes=i % 3, microseconds=7 * i)  # ties, one undated
            tx.add_kill(_kill(when, 100 + i, "java" if i % 2 else "javac", uid=None if i == 3 else 1000,
                              order=i % 2 or None, cgroup_oom=bool(i % 3), mono_usec=None, boot_id=None), t0)
        tx.add_kill(_kill(t0, 300, "\x1b[31mred\u202eexe", cmdline="a\nb"), t0)
    other = Store(store_url, "db-01")
    with other.tx() as tx:
        tx.add_kill(_kill(t0 - timedelta(hours=1), 200, "mysqld"), t0)
    other.close()
    for filters in ({}, {"limit": 1}, {"limit": 4}, {"process": "java*"}, {"process": "java", "limit": 2},
                    {"host": "db-01"}, {"since": t0 - timedelta(minutes=1)}, {"until": t0 - timedelta(minutes=1)},
                    {"process": "nothing*"}):
        records = store.kill_records(**filters)
        assert records == [kill_record(k) for k in store.kills(**filters)], filters
        assert all(list(r) == list(kill_record(k)) for r, k in zip(records, store.kills(**filters), strict=True))
        # What a table prints, read alone: the same values of those fields.
        table = ["time", "id", "process", "order", "cgroup_oom"]
        assert store.kill_records(table, **filters) == [{f: r[f] for f in table} for r in records], filters
    assert {r["time"] for r in store.kill_records()} >= {None, (t0 - timedelta(minutes=1, microseconds=7)).isoformat()}


def test_sample_records_are_the_samples_as_history_gave_them(store, store_url, t0):
    with store.tx() as tx:
        for i in range(6):
            tx.add_sample(_sample(t0 - timedelta(minutes=i, microseconds=i), committed=9_000_000 + 333_333 * i,
                                  mem_available_kb=None if i == 2 else 8_000_000, psi_full_avg10=None if i == 3
                                  else 0.125))
    other = Store(store_url, "db-01")
    with other.tx() as tx:
        tx.add_sample(_sample(t0 - timedelta(seconds=30)))
    other.close()
    for filters in ({}, {"limit": 2}, {"host": "db-01"}, {"host": "web-01", "since": t0 - timedelta(minutes=3)},
                    {"until": t0 - timedelta(minutes=4)}, {"since": t0 + timedelta(days=1)}):
        records = store.sample_records(**filters)
        assert records == [_record_of_sample(s) for s in store.samples(**filters)], filters
        assert all(list(r) == list(SAMPLE_FIELDS) for r in records)
        table = ["host", "mem_available_percent", "time"]
        assert store.sample_records(table, **filters) == [{f: r[f] for f in table} for r in records], filters


@pytest.fixture
def samples_cfg(tmp_path: Path, t0) -> Path:
    url = f"sqlite:///{tmp_path}/db/history.db"
    for host, minutes in (("web-01", range(3)), ("db-01", range(1))):
        store = Store(url, host)
        store.upgrade()
        with store.tx() as tx:
            for i in minutes:
                tx.add_sample(_sample(t0 - timedelta(minutes=i, microseconds=250_000 * i),
                                      committed=9_000_000 + 1_234_567 * i,
                                      mem_available_kb=None if i == 1 else 7_999_999,
                                      psi_full_avg10=None if i == 2 else 0.125))
        store.close()
    path = tmp_path / "config.yaml"
    path.write_text(f"host: web-01\ndatabase: {url}\n")
    return path


def _history(cfg: Path, *argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(cfg), "history", "samples", *argv], stdout=out, stderr=err) == 0, err.getvalue()
    return out.getvalue()


def test_history_samples_prints_this_table(samples_cfg):
    assert _history(samples_cfg) == (
        "TIME                              HOST    %COMMIT  %LIMIT  %AVAIL  PSI_FULL  RES_S\n"
        "2026-11-20T12:00:00+00:00         db-01   56.25    112.5   50.0    0.125     0\n"
        "2026-11-20T12:00:00+00:00         web-01  56.25    112.5   50.0    0.125     0\n"
        "2026-11-20T11:58:59.750000+00:00  web-01  63.97    127.93  -       0.125     0\n"
        "2026-11-20T11:57:59.500000+00:00  web-01  71.68    143.36  50.0    -         0\n")


def test_history_samples_json_and_csv_hold_every_field(samples_cfg):
    doc = json.loads(_history(samples_cfg, "--format", "json", "--host", "web-01", "--limit", "2"))
    assert [list(r) for r in doc] == [list(SAMPLE_FIELDS)] * 2
    assert doc[1] == {"time": "2026-11-20T11:58:59.750000+00:00", "host": "web-01", "resolution": 0,
                      "commit_percent": 63.97, "commit_limit_percent": 127.93, "committed_as_kb": 10234567,
                      "commit_limit_kb": 8000000, "mem_available_kb": None, "mem_available_percent": None,
                      "swap_total_kb": 0, "swap_free_kb": 0, "psi_some_avg10": 0.25, "psi_full_avg10": 0.125,
                      "overcommit_memory": 0}
    assert _history(samples_cfg, "--format", "csv", "--host", "db-01") == (
        ",".join(SAMPLE_FIELDS) + "\r\n"
        "2026-11-20T12:00:00+00:00,db-01,0,56.25,112.5,9000000,8000000,7999999,50.0,0,0,0.25,0.125,0\r\n")


def test_the_collector_is_as_it_was_after_a_history(samples_cfg):
    """The command pauses the garbage collector while it lists rows: the process that ran it
    gets it back enabled, and nothing left frozen out of its collections."""
    _history(samples_cfg)
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_history_on_sqlite_loads_no_postgresql_dialect(samples_cfg):
    """Nothing on a SQLite command's path asks SQLAlchemy for its PostgreSQL dialect (an
    index declaring a PostgreSQL operator class would: tens of milliseconds of start-up)."""
    code = ("import sys; from watchdog_oom.cli import main; "
            f"code = main(['-c', {str(samples_cfg)!r}, 'history', 'samples']); "
            "print(code, sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.postgresql')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, check=False)
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr

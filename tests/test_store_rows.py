"""The kills rows that `import` builds where it reads and the store writes as they are."""

from __future__ import annotations

from datetime import timedelta

from watchdog_oom.model import OomKill, TaskRow, kill_record_from_value
from watchdog_oom.store import kill_record
from watchdog_oom.store.records import kill_values
from watchdog_oom.store.rows import COLUMNS, kill_from_row, kill_row, row_evidence, row_record
from watchdog_oom.store.tables import kills

TASKS = (TaskRow(pid=1772, uid=0, tgid=1772, total_vm_kb=9000, rss_kb=65000, pgtables_kb=300, swapents=0,
                 oom_score_adj=-17, name="python3"),)


def _full(t0) -> OomKill:
    return OomKill(pid=1772, process="python3", time=t0, mono_usec=41357569, uid=1000, total_vm_kb=9000,
                   anon_rss_kb=65152, file_rss_kb=4, shmem_rss_kb=0, pgtables_kb=300, oom_score_adj=-17, score=900,
                   constraint="CONSTRAINT_MEMCG", memcg="/wdtest1", task_memcg="/wdtest1/a", cgroup_oom=True,
                   invoker="stress", invoker_pid=1771, gfp_mask="0xcc0(GFP_KERNEL)", order=0, killer="kernel",
                   source="import:/var/log/syslog", host="web-07", boot_id="b1", cmdline="python3 -c x",
                   unit="x.service", task_table=TASKS, memory_info=("Mem-Info:", "active_anon:1"),
                   extra={"kill_line": "Killed process 1772", "evidence": {"format": "syslog"}})


def test_a_row_holds_the_kills_table_columns_in_its_order():
    assert tuple(column.name for column in kills.columns if column.name != "id") == COLUMNS


def test_a_row_holds_what_kill_values_gives_and_makes_the_kill_again(t0):
    for kill in (_full(t0), OomKill(pid=None, process="batch.service", killer="systemd-oomd")):
        row = kill_row(kill, "web-01", t0, {"memory_before": {"mem_available_kb": 1}})
        assert dict(zip(COLUMNS, row, strict=True)) == kill_values(kill, "web-01", t0,
                                                                   {"memory_before": {"mem_available_kb": 1}})
        assert kill_from_row(row) == kill.replace(host=kill.host or "web-01")


def test_a_rows_record_is_the_stored_kills_and_a_dry_runs(store, t0):
    kill = _full(t0 + timedelta(hours=1)).replace(time=(t0 + timedelta(hours=1)).astimezone())
    row = kill_row(kill, "web-01")
    with store.tx() as tx:
        (stored,) = tx.add_kills([(kill, None)], t0)
    assert row_record(stored.id, row) == kill_record(stored)
    assert row_record(None, row) == kill_record_from_value(kill)
    assert row_evidence(row) == {"format": "syslog"}
    assert row_evidence(kill_row(OomKill(pid=1, process="x"), "h")) is None

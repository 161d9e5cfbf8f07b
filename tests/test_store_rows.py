"""The kills rows that `import` builds where it reads and the store writes as they are."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from watchdog_oom.model import OomKill, TaskRow, kill_record_from_value
from watchdog_oom.store import kill_record
from watchdog_oom.store.records import kill_values
from watchdog_oom.store.rows import COLUMNS, kill_from_row, kill_row
from watchdog_oom.store.rows_import import row_evidence, row_record
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


def test_rows_are_capped_as_cap_kill_caps_their_kills(t0):
    from watchdog_oom.bounds import cap_kill
    from watchdog_oom.store.rows_import import capped

    long, shared = "x" * 10_000, {"format": "syslog", "lines": ["kill line"]}
    fits = _full(t0).replace(extra={"kill_line": "Killed process 1772", "evidence": shared})
    kills = [fits, fits.replace(pid=2),
             fits.replace(process=long, cmdline=long * 2, source="import:" + long, host="h" * 300, constraint="c" * 65,
                          task_table=(dataclasses.replace(TASKS[0], name=long),), memory_info=("m" * 9000,) * 401,
                          extra={"kill_line": long, "evidence": shared, "k" * 300: 1}),
             fits.replace(extra={"evidence": {"lines": ["y" * 9000]}}), fits.replace(unit="u" * 257),
             fits.replace(extra=[long])]
    rows = [kill_row(kill, "web-01") for kill in kills]
    assert capped(rows) == [kill_row(cap_kill(kill), "web-01") for kill in kills]
    assert capped(rows[:2]) == rows[:2] and capped(rows)[0] is rows[0]  # a row within the caps is itself
    assert capped([]) == []


def test_rows_imported_are_capped_stored_once_and_answered_as_stored(store, t0):
    # import's path on each engine: the rows as read, capped, deduplicated against the
    # stored kills and within the batch, and answered as the database holds them.
    from watchdog_oom.store.batch_import import import_rows

    rows = [kill_row(_full(t0 + timedelta(seconds=i)).replace(pid=100 + i, process="p" * (250 + i)), "web-01")
            for i in range(10)]
    first = import_rows(store, [*rows[:6], rows[2]], t0)
    assert [new for _, new, _ in first] == [True] * 6 + [False] and first[6][0] == first[2][0]
    again = import_rows(store, rows, t0)
    assert [new for _, new, _ in again] == [False] * 6 + [True] * 4
    assert [kill_id for kill_id, _, _ in again[:6]] == [kill_id for kill_id, _, _ in first[:6]]
    for kill_id, _, row in again:
        assert row_record(kill_id, row) == kill_record(store.kill(kill_id))
    assert [len(store.kill(kill_id).process) for kill_id, _, _ in again] == [250, 251, 252, 253, 254, 255] + [255] * 4


def test_prepared_rows_are_stored_as_import_rows_stores_them(store, t0):
    # What a reading process prepares (rows_import.prepared_params, free of SQLAlchemy) and the
    # recording one inserts as it is (batch_import.import_prepared): the very values import_rows
    # stores; refused (None, nothing written) wherever import_rows has more to do.
    from sqlalchemy import delete, select

    from watchdog_oom.store.batch_import import import_prepared, import_rows
    from watchdog_oom.store.rows_import import capped, prepared_params

    def kills_table() -> list[tuple]:
        with store.engine.connect() as conn:
            return [tuple(row)[1:] for row in conn.execute(select(kills).order_by(kills.c.id))]

    local = t0.astimezone()
    rows = capped([kill_row(_full(local + timedelta(seconds=i)).replace(pid=100 + i, host=None), "web-01")
                   for i in range(3)]
                  + [kill_row(OomKill(pid=7, process="naïve—日本 \"x\"", time=None, killer="kernel",
                                      extra={"kill_line": "k", "evidence": {"lines": ["é"]}}), "web-02")])
    names, params = prepared_params(rows)
    ids = import_prepared(store, names, params, t0)
    if store.engine.dialect.name != "sqlite":  # PostgreSQL: import_rows' INSERT … RETURNING
        assert ids is None and kills_table() == []
        return
    assert ids is not None and len(ids) == 4 and ids == sorted(ids)
    prepared = kills_table()
    assert import_prepared(store, names, params, t0) is None  # stored now: import_rows' to match
    assert import_prepared(store, *prepared_params([rows[0], rows[0]]), t0) is None  # two of one (host, pid)
    cgroup = kill_row(OomKill(pid=None, process="batch.service", time=local, killer="systemd-oomd"), "web-01")
    assert import_prepared(store, *prepared_params([cgroup]), t0) is None  # only the moment tells
    assert prepared_params([kill_row(OomKill(pid=1, process="x", time=t0.replace(tzinfo=None)), "h")]) is None
    assert kills_table() == prepared
    with store.engine.begin() as conn:
        conn.execute(delete(kills))
    assert [new for _, new, _ in import_rows(store, rows, t0)] == [True] * 4
    assert kills_table() == prepared


def test_a_batch_given_column_by_column_is_stored_as_import_rows_stores_it(store, t0, monkeypatch):
    # import_columns (what `import` records a reader's batch with): the values every row
    # shares bound once, the others a row at a time, ROWS_MOST rows a statement (here 64:
    # several) and the rows short of a whole one by executemany; one row, all of it
    # shared. The rows import_rows stores, in order, their ids in order.
    from sqlalchemy import delete, select

    from watchdog_oom.store import batch_import as batch
    from watchdog_oom.store.rows_import import capped, prepared_params

    def kills_table() -> list[tuple]:
        with store.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(select(kills).order_by(kills.c.id))]

    monkeypatch.setattr(batch, "ROWS_MOST", 64)
    local = t0.astimezone()
    rows = capped([kill_row(_full(local + timedelta(seconds=i // 2)).replace(
        pid=1000 + i, uid=i % 3, cmdline=None if i % 5 else f"x {i}", host=None), "web-01") for i in range(300)])
    for batch_rows in (rows, rows[:1]):
        names, params = prepared_params(batch_rows)
        columns = [batch._shared(list(values)) for values in zip(*params, strict=True)]
        assert (tuple in map(type, columns)) and (len(batch_rows) == 1 or list in map(type, columns))
        ids = batch.import_columns(store, names, columns, len(batch_rows), t0)
        if store.engine.dialect.name != "sqlite":  # PostgreSQL: import_rows' INSERT … RETURNING
            assert ids is None and kills_table() == []
            return
        stored = kills_table()
        assert ids == [kill_id for kill_id, *_ in stored] == list(range(ids[0], ids[0] + len(batch_rows)))
        with store.engine.begin() as conn:
            conn.execute(delete(kills))
        again = [kill_id for kill_id, _, _ in batch.import_rows(store, batch_rows, t0)]
        assert [row[1:] for row in kills_table()] == [row[1:] for row in stored] and len(again) == len(batch_rows)
        with store.engine.begin() as conn:
            conn.execute(delete(kills))


def test_prepared_details_are_json_dumps_text(t0):
    # prepared_params encodes a kill's details value by value, a nested value the rows
    # share once: the text json.dumps writes, whatever the details hold.
    import json

    from watchdog_oom.store.rows import DETAILS
    from watchdog_oom.store.rows_import import prepared_params

    shared = {"format": "syslog", "lines": ["kill line"], "wording": "naïve \"x\" \\ 日本"}
    extras = [{"kill_line": "Killed process 1772", "evidence": shared}, {"evidence": shared, "n": 1.5, "b": True},
              {"evidence": [shared, None], "nan": float("nan")}, {"k": {"deep": {"er": [1, 2]}}, 3: "int key"},
              {"evidence": shared, "kill_line": "\x00\x1f\u2028"}, {}]
    rows = [kill_row(_full(t0).replace(pid=i, extra=extra), "web-01") for i, extra in enumerate(extras)]
    rows.append(kill_row(_full(t0).replace(pid=99, task_table=(), memory_info=()), "web-01", None,
                         {"memory_before": {"mem_available_kb": 1}, 5: [shared]}))
    names, params = prepared_params(rows)
    at = names.index("details")
    assert [values[at] for values in params] == [json.dumps(row[DETAILS]) for row in rows]

"""A kill line whose figures no kernel prints (a hostile or corrupted log) is still recorded,
on every engine: a figure that does not fit its column is unknown (null), never the reason
the kill is refused. PostgreSQL refused a kill line's `oom_score_adj:-99999999999999` (its
column is 32-bit: "integer out of range") and quarantined the kill, where SQLite stored it."""

from __future__ import annotations

from watchdog_oom.parse import parse_text

LINES = (
    "Dec  6 10:00:00 big kernel: [    1.0] Out of memory: Kill process 4242 (java) score 99999999999 "
    "or sacrifice child\n"
    "Dec  6 10:00:00 big kernel: [    1.1] Killed process 4242 (java) total-vm:100kB, anon-rss:50kB, "
    "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4kB oom_score_adj:-99999999999999\n"
    "Dec  6 10:00:01 big kernel: [    1.2] Out of memory: Killed process 4243 (java) total-vm:100kB, "
    "anon-rss:50kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4kB oom_score_adj:1000\n"
)


def test_figures_out_of_their_range_are_unknown_and_the_kills_recorded(store, t0):
    kills = parse_text(LINES, source="import", year=2026)
    assert [(k.pid, k.oom_score_adj, k.score) for k in kills] == [(4242, None, None), (4243, 1000, None)]
    recorded = list(store.import_kills(kills, t0))
    assert [(row.pid, row.oom_score_adj, row.score, new) for row, new in recorded] == [
        (4242, None, None, True), (4243, 1000, None, True)]
    assert store.quarantined() == []


def test_an_uptime_no_clock_reaches_is_unknown_and_stops_nothing(store, t0):
    # 5000 digits: int() refuses them (Python 3.11's limit), which stopped `import` of the
    # whole file ("corrupt or unreadable compressed data") and lost the line on the live path;
    # 30 digits: past the 64-bit mono_usec column, which refused the kill (quarantined).
    kill = "] Out of memory: Killed process {} ({}) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB\n"
    text = ("[" + "9" * 5000 + ".5" + kill.format(7001, "a") + "[" + "9" * 30 + ".5" + kill.format(7002, "b")
            + "6,1,99999999999999999999999,-;Out of memory: Killed process 7003 (c) total-vm:1kB, anon-rss:1kB, "
            "file-rss:0kB, shmem-rss:0kB\n" + "[    5.500000" + kill.format(7004, "d"))
    kills = parse_text(text, source="import")
    assert [(k.pid, k.mono_usec) for k in kills] == [(7001, None), (7002, None), (7003, None), (7004, 5_500_000)]
    recorded = list(store.import_kills(kills, t0))
    assert [(row.pid, row.mono_usec, new) for row, new in recorded] == [
        (7001, None, True), (7002, None, True), (7003, None, True), (7004, 5_500_000, True)]
    assert store.quarantined() == []

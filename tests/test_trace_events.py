"""trace_events against tracefs text: every trace_pipe capture in tests/data/tracepoints
with the events it must give, read through the format files of its kernel.

tests/data/tracepoints/cases.json lists each capture, the format files of its kernel,
and its events; adding a kernel is adding its files and an entry. (The listing is not
named expected.json: that name is test_parse.py's, for kernel log captures.)
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchdog_oom.model import KernelLine
from watchdog_oom.parse import OomParser
from watchdog_oom.sources.kmsg import parse_record
from watchdog_oom.trace_events import (
    AdjWritten,
    EventsLost,
    FormatError,
    VictimMarked,
    classify_marks,
    merge_witnesses,
    parse_format,
    parse_line,
    parse_lines,
    same_kill,
    victim_to_kill,
)

DATA = Path(__file__).parent / "data" / "tracepoints"
CASES = json.loads((DATA / "cases.json").read_text(encoding="utf-8"))
BOOT = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)


def formats(names: list[str]) -> dict:
    out = {}
    for name in names:
        fmt = parse_format((DATA / name).read_text(encoding="utf-8"))
        out[fmt.name] = fmt
    return out


def as_label(event) -> dict:
    label = {"type": type(event).__name__, **asdict(event)}
    label.pop("time", None)
    label.pop("oom_kill_count", None)
    return label


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_capture_gives_its_events(case):
    lines = (DATA / case["file"]).read_text(encoding="utf-8").splitlines()
    events = list(parse_lines(lines, formats(case["formats"]), BOOT))
    assert [as_label(e) for e in events] == case["events"]
    for event in events:
        if not isinstance(event, EventsLost):
            assert event.time == BOOT + timedelta(microseconds=event.mono_usec)


def test_every_capture_is_listed():
    listed = {c["file"] for c in CASES} | {f for c in CASES for f in c["formats"]} | {"cases.json"}
    assert {p.name for p in DATA.iterdir()} - listed == {"6.18_first-kill.kmsg"}


def test_formats_say_which_fields_the_kernel_has():
    old = parse_format((DATA / "4.13_mark_victim.format").read_text())
    new = parse_format((DATA / "6.18_mark_victim.format").read_text())
    assert old.fields == ("pid",) and old.printed == ("pid",)
    assert new.has("comm") and new.has("pgtables") and not old.has("comm")
    assert new.printed == ("pid", "comm", "total_vm", "anon_rss", "file_rss", "shmem_rss", "uid", "pgtables",
                           "oom_score_adj")
    adj = parse_format((DATA / "6.18_oom_score_adj_update.format").read_text())
    assert adj.fields == ("pid", "comm", "oom_score_adj")


def test_a_format_whose_print_fmt_and_fields_disagree_is_refused():
    text = (DATA / "4.13_mark_victim.format").read_text().replace('"pid=%d"', '"pid=%d uid=%u"')
    with pytest.raises(FormatError):
        parse_format(text)


def test_a_field_a_newer_kernel_adds_is_read_by_name():
    text = (DATA / "6.18_mark_victim.format").read_text()
    text = text.replace('oom_score_adj=%hd"', 'oom_score_adj=%hd swapents=%lukB"') + ""
    text = text.replace("REC->oom_score_adj\n", "REC->oom_score_adj, REC->swapents\n")
    fmt = parse_format(text)
    line = ("  python3-7 [000] ..... 1.000001: mark_victim: pid=7 comm=x total-vm=1kB anon-rss=1kB file-rss:1kB "
            "shmem-rss:0kB uid=0 pgtables=4kB oom_score_adj=0 swapents=12kB")
    event = parse_line(line, {"mark_victim": fmt})
    assert isinstance(event, VictimMarked) and event.figures["total_vm_kb"] == 1


@pytest.mark.parametrize("line", [
    "",
    "# tracer: nop",
    "  bash-1 [000] ..... 1.0: sched_switch: prev_comm=bash",
    "  bash-1 [000] ..... 1.000001: mark_victim: pid=notanumber",
    "x" * 5000,
])
def test_other_lines_give_nothing(line):
    assert parse_line(line, formats(["6.18_mark_victim.format", "6.18_oom_score_adj_update.format"])) is None


def test_a_victim_named_like_a_line_prefix_is_still_read():
    # Captured on 6.18: a process named "-1 [0] 1.1: a: " (any user may name theirs so)
    # writing its oom_score_adj. Read with an unbounded task name, the body's comm was
    # taken for the prefix and the event (for mark_victim: the kill) was dropped.
    name = "-1 [0] 1.1: a: "
    fmts = formats(["6.18_mark_victim.format", "6.18_oom_score_adj_update.format"])
    adj = parse_line(f" {name}-5629    [001] .....  6418.848073: oom_score_adj_update: pid=5629 comm={name} "
                     "oom_score_adj=500", fmts)
    assert isinstance(adj, AdjWritten) and adj.pid == 5629 and adj.writer_tid == 5629
    assert adj.process == name and adj.writer == name.strip() and adj.oom_score_adj == 500
    kill = parse_line(f"         python3-812     [000] .....   812.117000: mark_victim: pid=900 comm={name} "
                      "total-vm=47408kB anon-rss=37504kB file-rss:6688kB shmem-rss:0kB uid=1000 pgtables=136kB "
                      "oom_score_adj=0", fmts)
    assert isinstance(kill, VictimMarked) and kill.pid == 900 and kill.marker == "python3"
    assert kill.figures["process"] == name and kill.figures["anon_rss_kb"] == 37504


def mark(pid: int, counter: int | None, marker_tid: int | None = None) -> VictimMarked:
    return VictimMarked(pid=pid, mono_usec=pid, time=None, marker="m", marker_tid=marker_tid or pid,
                        oom_kill_count=counter)


def test_marks_the_oom_kill_counter_accounts_for_are_kills():
    kills, counted = classify_marks([mark(1, 5), mark(2, 5)], counted_before=3)
    assert [k.pid for k in kills] == [1, 2] and counted == 5


def test_a_mark_without_a_counted_kill_is_an_exiting_task_given_reserves():
    # Two marks, one kill counted: the second victim was already exiting.
    kills, counted = classify_marks([mark(1, 4), mark(2, 4, marker_tid=9)], counted_before=3)
    assert [k.pid for k in kills] == [1] and counted == 4
    kills, _ = classify_marks([mark(3, 4)], counted_before=counted)
    assert kills == []


def test_without_the_counter_every_mark_is_a_kill():
    assert len(classify_marks([mark(1, None), mark(2, None)], None)[0]) == 2


def first_kill_from_kmsg():
    boot = BOOT
    parser = OomParser()
    kills = []
    for raw in (DATA / "6.18_first-kill.kmsg").read_bytes().splitlines():
        record = parse_record(raw)
        if record is None:
            continue
        kills += parser.feed(KernelLine(text=record.text, source="kmsg", mono_usec=record.usec, seq=record.seq,
                                        time=boot + timedelta(microseconds=record.usec), boot_id="b"))
    (kill,) = kills
    return kill


def traced_first_kill():
    case = CASES[0]
    lines = (DATA / case["file"]).read_text().splitlines()
    marks = [e for e in parse_lines(lines, formats(case["formats"]), BOOT) if isinstance(e, VictimMarked)]
    return victim_to_kill(marks[0], boot_id="b"), victim_to_kill(marks[1], boot_id="b")


def test_the_same_real_kill_through_kmsg_and_the_tracepoint_is_one_record_with_both_fields():
    logged = first_kill_from_kmsg()
    traced, other = traced_first_kill()
    # The trace clock and printk's differ (34 ms on that VM): matched by pid, name and time.
    assert same_kill(traced, logged) and not same_kill(other, logged)
    merged = merge_witnesses(traced, logged)
    assert merged.time == traced.time and merged.pid == 16834 and merged.process == "python3"
    assert (merged.total_vm_kb, merged.anon_rss_kb, merged.file_rss_kb, merged.pgtables_kb) == (58712, 48880, 6520, 160)
    assert merged.constraint == "CONSTRAINT_MEMCG" and merged.cgroup_oom
    assert merged.memcg.endswith("/cap-2428cf0f") and merged.invoker == "python3" and merged.gfp_mask
    assert merged.task_table and merged.memory_info
    assert merged.source == "kmsg" and merged.extra["witnesses"] == ["tracepoint", "kmsg"]
    assert merged.extra["tracepoint"]["mono_usec"] == 417140432


def test_a_pid_only_kill_matches_the_log_by_pid_and_time():
    logged = first_kill_from_kmsg()
    pid_only = VictimMarked(pid=16834, mono_usec=1, time=logged.time + timedelta(milliseconds=30),
                            marker="python3", marker_tid=16834)
    traced = victim_to_kill(pid_only, boot_id="b")
    assert traced.process == "?" and traced.total_vm_kb is None
    assert same_kill(traced, logged)
    merged = merge_witnesses(traced, logged)
    assert merged.process == "python3" and merged.total_vm_kb == 58712 and merged.time == traced.time


def test_kills_of_other_boots_or_killers_or_far_apart_are_not_the_same():
    logged = first_kill_from_kmsg()
    traced, _ = traced_first_kill()
    assert not same_kill(traced, logged.replace(boot_id="other"))
    assert not same_kill(traced, logged.replace(killer="earlyoom"))
    assert not same_kill(traced, logged.replace(time=logged.time + timedelta(minutes=1)))


def test_adj_write_values():
    case = CASES[0]
    events = list(parse_lines((DATA / case["file"]).read_text().splitlines(), formats(case["formats"])))
    writes = [e for e in events if isinstance(e, AdjWritten)]
    assert [(w.process, w.oom_score_adj, w.writer) for w in writes] == [("sleep", 1000, "python3"),
                                                                         ("sleep", 0, "bash")]

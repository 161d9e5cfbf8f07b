"""`import` of log stores' exports listed newest first, as gcloud, logcli and Kibana list them.

Each report then comes kill line first and its header last, and the next report's header
stands before the earlier kill (review R15). import reads such an export whole and in time
order; parse_text too; the line-by-line reader (the scanner, for an export too big to read
whole) breaks off where time goes backwards, so no report's details join another's kill.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from watchdog_oom.cli import main
from watchdog_oom.parse import csv_as_ndjson, iter_kills, json_array_as_ndjson, may_be_export, parse_text


def report(inviter: str, cgroup: str, pid: int, victim: str) -> list[str]:
    """A cgroup v2 memcg OOM report of 6.1 (the lines that carry its details)."""
    return [f"{inviter} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
            f"CPU: 1 PID: {pid - 1} Comm: {inviter} Not tainted 6.1.0-18-amd64 #1 Debian 6.1.76-1",
            "Tasks state (memory values in pages):",
            "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
            f"[{pid:7d}]  1000 {pid:5d}   100000    50000   409600        0             0 {victim}",
            f"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg={cgroup},"
            f"task_memcg={cgroup},task={victim},pid={pid},uid=1000",
            f"Memory cgroup out of memory: Killed process {pid} ({victim}) total-vm:400000kB, anon-rss:200000kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:400kB oom_score_adj:0"]


LINES = report("alpha", "/system.slice/a.service", 100, "va") + report("beta", "/system.slice/b.service", 200, "vb")
STAMPS = [f"2025-06-29T15:00:{n:02d}.{n:06d}Z" for n in range(len(LINES))]
EXPECTED = [(100, "va", "alpha", "/system.slice/a.service", 1), (200, "vb", "beta", "/system.slice/b.service", 1)]


def gcloud(order: list[int]) -> str:
    """`gcloud logging read --format=json`: one pretty-printed array."""
    return json.dumps([{"insertId": f"x{n}", "logName": "projects/p/logs/syslog", "resource": {"type": "gce_instance"},
                        "textPayload": LINES[n], "timestamp": STAMPS[n]} for n in order], indent=2) + "\n"


def logcli(order: list[int]) -> str:
    """`logcli query --output=jsonl` (backward by default)."""
    return "".join(json.dumps({"labels": {"host": "node-1"}, "line": LINES[n], "timestamp": STAMPS[n]}) + "\n"
                   for n in order)


def kibana(order: list[int]) -> str:
    """Kibana Discover's CSV (sorted by @timestamp, newest first, by default)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["@timestamp", "host.name", "message"])
    writer.writerows([STAMPS[n], "node-1", LINES[n]] for n in order)
    return '"@timestamp","host.name",message\n' + out.getvalue().split("\n", 1)[1]


EXPORTS = {"gcloud": gcloud, "logcli": logcli, "kibana": kibana}
NEWEST_FIRST = list(range(len(LINES)))[::-1]


def seen(kills: list) -> list[tuple]:
    return [(k.pid, k.process, k.invoker, k.task_memcg, len(k.task_table)) for k in kills]


@pytest.mark.parametrize("export", sorted(EXPORTS))
@pytest.mark.parametrize("order", ["oldest-first", "newest-first"])
def test_parse_text_reads_an_export_in_time_order(export: str, order: str) -> None:
    lines = list(range(len(LINES))) if order == "oldest-first" else NEWEST_FIRST
    assert seen(parse_text(EXPORTS[export](lines))) == EXPECTED


@pytest.mark.parametrize("export", ["logcli", "kibana"])
def test_read_line_by_line_newest_first_no_report_lends_its_details_to_another_kill(export: str) -> None:
    text = EXPORTS[export](NEWEST_FIRST)
    if export == "kibana":  # a CSV export too big to be read whole, as import reads it: NDJSON, in its order
        text = "".join(csv_as_ndjson(io.StringIO(text, newline="")))
    kills = list(iter_kills(io.BytesIO(text.encode()), "import", chunk_size=4096))
    # each kill found, at its own time; what came after it in the file (its own header) is not guessed at
    assert sorted((k.pid, k.invoker, k.task_memcg) for k in kills) == [(100, None, None), (200, None, None)]
    assert all(k.time is not None for k in kills)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"host: web-01\ndatabase: sqlite:///{tmp_path}/history.db\n")
    return path


@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_import_records_an_export_listed_newest_first_in_time_order(export: str, config: Path, tmp_path: Path) -> None:
    log = tmp_path / f"{export}.json.gz"
    log.write_bytes(gzip.compress(EXPORTS[export](NEWEST_FIRST).encode()))
    out, err = io.StringIO(), io.StringIO()
    code = main(["-c", str(config), "import", "--format", "json", str(log)], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    kills = json.loads(out.getvalue())
    assert [(k["pid"], k["process"], k["invoker"], k["task_memcg"]) for k in kills] == [e[:4] for e in EXPECTED]
    assert [k["time"] for k in kills] == ["2025-06-29T15:00:06.000006+00:00", "2025-06-29T15:00:13.000013+00:00"]
    assert "read as a log store's export, entry by entry in time order" in err.getvalue()


@pytest.mark.parametrize("head", ["[    0.000000] Linux version 6.1.0", "[Mon Jun 29 15:57:10 2025] java invoked",
                                  "Jun 29 15:57:10 host dockerd[1]: msg=\"a, b\"", "<6>[  1.0] x"])
def test_a_kernel_log_is_no_export(head: str) -> None:
    assert not may_be_export(head + "\n")


@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_each_export_is_known_by_its_first_kilobytes(export: str) -> None:
    assert may_be_export(EXPORTS[export](NEWEST_FIRST)[:4096])


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_import_puts_an_export_too_big_to_read_whole_in_time_order_on_disk(
        export: str, compressed: bool, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / f"{export}.log"
    text = EXPORTS[export](NEWEST_FIRST)
    if compressed:
        log.write_bytes(gzip.compress(text.encode()))
    else:
        log.write_text(text)
    kills, said = _import_small_limit(log, config, monkeypatch)
    assert [(k["pid"], k["process"], k["invoker"], k["task_memcg"]) for k in kills] == [e[:4] for e in EXPECTED]
    assert "over 0 MiB, entry by entry in time order" in said and "newest first" not in said


SHUFFLED = [7, 8, 9, 10, 11, 12, 13, 0, 1, 2, 3, 4, 5, 6]  # two pages, each oldest first, the newer page first


@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_a_big_export_in_no_time_order_is_sorted_stably(export: str, config: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / f"{export}.log"
    log.write_text(EXPORTS[export](SHUFFLED))
    kills, said = _import_small_limit(log, config, monkeypatch)
    assert [(k["pid"], k["process"], k["invoker"], k["task_memcg"]) for k in kills] == [e[:4] for e in EXPECTED]
    assert "in time order" in said


@pytest.mark.parametrize("flaw", ["too-many", "untimed", "not-json"])
def test_a_big_export_that_cannot_be_put_in_order_lends_no_report_its_details(
        flaw: str, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import watchdog_oom.cli.import_logs

    entries = [json.loads(line) for line in logcli(NEWEST_FIRST if flaw != "too-many" else SHUFFLED[::-1]).splitlines()]
    if flaw == "too-many":
        monkeypatch.setattr(watchdog_oom.cli.import_logs, "SORTED_ENTRIES", 5)
    elif flaw == "untimed":
        del entries[3]["timestamp"]
    lines = [json.dumps(entry) for entry in entries]
    if flaw == "not-json":
        lines.insert(4, "Jun 29 15:00:04 node-1 kernel: a line of text amid the export")
    log = tmp_path / "export.ndjson"
    log.write_text("\n".join(lines) + "\n")
    kills, said = _import_small_limit(log, config, monkeypatch)
    assert sorted(k["pid"] for k in kills) == [100, 200]
    assert all(k["task_memcg"] is None for k in kills)  # no report's details lent to another's kill
    assert "is read in the file's order" in said and "newest first" in said
    assert {"too-many": "over 5 entries", "untimed": "not every entry names its time",
            "not-json": "no JSON entry"}[flaw] in said


def test_a_json_array_read_entry_by_entry_from_chunks_cut_anywhere_gives_each_entry_once() -> None:
    text = gcloud(NEWEST_FIRST)
    whole = [json.loads(line) for line in json_array_as_ndjson([text])]
    assert [entry["textPayload"] for entry in whole] == [LINES[n] for n in NEWEST_FIRST]
    for size in (1, 7, 64, 1000):
        chunks = [text[at:at + size] for at in range(0, len(text), size)]
        assert [json.loads(line) for line in json_array_as_ndjson(chunks)] == whole


@pytest.mark.parametrize("text", ["", "{}", "[", "[1, 2]", '[{"a": 1}, oops {"b": 2}]', "[" + "[" * 5000])
def test_a_json_array_reader_stops_at_what_is_no_entry(text: str) -> None:
    assert [json.loads(line) for line in json_array_as_ndjson([text])] in ([], [{"a": 1}])


def _import_small_limit(log: Path, config: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict], str]:
    import watchdog_oom.parse
    import watchdog_oom.parse.exports

    for module in (watchdog_oom.parse, watchdog_oom.parse.exports):  # (the reader is forked: it sees these)
        monkeypatch.setattr(module, "EXPORT_CHARS", 1_000)
    out, err = io.StringIO(), io.StringIO()
    code = main(["-c", str(config), "import", "--dry-run", "--format", "json", str(log)], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue()), err.getvalue()


@pytest.mark.parametrize("flaw", ["two-arrays", "damaged-entry", "no-room"])
def test_a_big_export_that_cannot_be_converted_whole_is_read_as_it_is(
        flaw: str, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Review R17: a conversion that stopped early lost every kill after the flaw, silently.
    first, second = gcloud(list(range(7))), gcloud(list(range(7, 14)))
    damaged = first.replace('"insertId": "x3",', '"insertId": "x3" BROKEN,')
    text = {"two-arrays": first + second, "damaged-entry": damaged, "no-room": first}[flaw]
    if flaw == "no-room":
        def full(*args: object, **kwargs: object) -> None:
            raise OSError(28, "No space left on device")
        monkeypatch.setattr("tempfile.TemporaryFile", full)
    log = tmp_path / "export.json"
    log.write_text(text)
    kills, said = _import_small_limit(log, config, monkeypatch)
    expected = [(100, "va"), (200, "vb")] if flaw == "two-arrays" else [(100, "va")]
    assert sorted((k["pid"], k["process"]) for k in kills) == expected
    assert "is read as it is, line by line" in said


@pytest.mark.parametrize("stamp", ["2025-06-29T15:00:{s:02d}Z", "2025-06-29 15:00:{s:02d}.000"],
                         ids=["ties", "no-zone"])
@pytest.mark.parametrize("export", ["gcloud-like", "cloudwatch"])
def test_an_export_newest_first_with_ties_or_times_without_a_zone_is_put_in_order(stamp: str, export: str) -> None:
    # Review R15 (a, b): one report's lines share its second (a syslog date parsed by the agent),
    # and CloudWatch Logs Insights' @timestamp has no zone; both sorted newest first.
    second = [0] * 7 + [1] * 7
    key = "textPayload" if export == "gcloud-like" else "@message"
    time_key = "timestamp" if export == "gcloud-like" else "@timestamp"
    entries = [{key: LINES[n], time_key: stamp.format(s=second[n])} for n in range(len(LINES))]
    newest_first = entries[::-1]  # as a store lists its newest first (logcli, tac): ties reversed too
    for text in (json.dumps(newest_first, indent=2), "".join(json.dumps(entry) + "\n" for entry in newest_first)):
        assert seen(parse_text(text + "\n")) == EXPECTED


def test_a_big_export_s_order_is_the_small_one_s_ties_and_all() -> None:
    import random
    from datetime import datetime, timedelta

    from watchdog_oom.cli.import_logs import _stable_order
    from watchdog_oom.parse.exports import time_order

    rng = random.Random(9)
    for _ in range(300):
        count = rng.randint(2, 40)
        keys = [rng.randint(-3, 6) for _ in range(count)]  # ties, and times before 1970
        small = time_order([datetime(1970, 1, 1) + timedelta(microseconds=key) for key in keys])
        assert list(_stable_order(keys)) == (small if small is not None else list(range(count)))


def elasticsearch(order: list[int], indent: int | None = None) -> str:
    """An Elasticsearch `_search` answer as curl saves it (one line; `| jq .`: indented)."""
    hits = [{"_index": "filebeat-8", "_id": f"h{n}", "_score": None,
             "_source": {"@timestamp": STAMPS[n], "host": {"name": "node-1"}, "message": LINES[n]}} for n in order]
    return json.dumps({"took": 3, "timed_out": False, "hits": {"total": {"value": len(hits)}, "max_score": None,
                                                              "hits": hits}}, indent=indent) + "\n"


def loki(order: list[int]) -> str:
    """A Loki query_range answer as curl saves it (newest first: direction=backward)."""
    def ns(stamp: str) -> str:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return str(int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000)
    values = [[ns(STAMPS[n]), LINES[n]] for n in order]
    return json.dumps({"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {"host": "node-1", "job": "varlogs"}, "values": values}]}}) + "\n"


API_ANSWERS = {"elasticsearch": elasticsearch, "elasticsearch-jq": lambda order: elasticsearch(order, 2),
               "loki": loki}


@pytest.mark.parametrize("order", ["oldest-first", "newest-first"])
@pytest.mark.parametrize("answer", sorted(API_ANSWERS))
def test_an_api_answer_saved_as_it_comes_is_read_as_an_export(answer: str, order: str, config: Path,
                                                               tmp_path: Path) -> None:
    # Review R20 (Elasticsearch's hits two levels down) and R22 (Loki's [ns, line] pairs): each
    # kill with its own report's invoker, cgroup and time, in either order.
    text = API_ANSWERS[answer](list(range(len(LINES))) if order == "oldest-first" else NEWEST_FIRST)
    assert seen(parse_text(text)) == EXPECTED
    log = tmp_path / "answer.json"
    log.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(config), "import", "--dry-run", "--format", "json", str(log)], stdout=out, stderr=err) == 0
    kills = json.loads(out.getvalue())
    assert [(k["pid"], k["process"], k["invoker"], k["task_memcg"]) for k in kills] == [e[:4] for e in EXPECTED]
    assert [k["time"] for k in kills] == ["2025-06-29T15:00:06.000006+00:00", "2025-06-29T15:00:13.000013+00:00"]


def test_a_big_document_on_one_line_is_not_parsed_whole_for_nothing(config: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Review R21: a document over 8 MiB opening with "{" on one line was taken for NDJSON and
    # decoded and parsed whole (~6x the file in memory) before being read as it is; and
    # read as text (only its first 64 KiB), its kills took the next report's invoker (R20).
    import watchdog_oom.cli.import_logs

    monkeypatch.setattr(watchdog_oom.cli.import_logs, "_ENTRY_BYTES", 1_000)
    log = tmp_path / "answer.json"
    log.write_text(json.dumps({"status": "ok", "data": {"rows": [[n, LINES[n]] for n in NEWEST_FIRST]}}) + "\n")
    kills, said = _import_small_limit(log, config, monkeypatch)
    assert kills == [] and "not read: a JSON document over 0 MiB on one line" in said and "jq -c" in said


@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "jq"])
def test_a_big_elasticsearch_answer_is_read_hit_by_hit_in_time_order(indent: int | None, config: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Review R20 over 8 MiB: the hits converted one by one as a big array is, then put in order.
    import watchdog_oom.cli.import_logs

    monkeypatch.setattr(watchdog_oom.cli.import_logs, "_ENTRY_BYTES", 2_000)
    log = tmp_path / "answer.json"
    log.write_text(elasticsearch(NEWEST_FIRST, indent))
    kills, said = _import_small_limit(log, config, monkeypatch)
    assert [(k["pid"], k["process"], k["invoker"], k["task_memcg"]) for k in kills] == [e[:4] for e in EXPECTED]
    assert "over 0 MiB, entry by entry in time order" in said

"""Every real excerpt in tests/data, wrapped every way a log reaches `import`, gives its kills.

The wrapped texts are generated here (tests/wrapping.py), never stored. For wrappers that
keep lines whole the kills must be exactly the labelled ones (pid and name); for those that
may cut a kill's own words (terminal and mail wraps, quoted-printable soft breaks) every
kill that `grep 'Kill(ed)? process N'` still finds must be found (its pid: a cut inside a
name may leave where a blank stood unknowable), and nothing else.
"""

from __future__ import annotations

import functools
import io
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from wrapping import CUTTING, WRAPPERS

from watchdog_oom.parse import csv_as_ndjson, export_in_time_order, iter_kills, parse_text

DATA = Path(__file__).parent / "data"
ENTRIES = [
    (listing.parent / entry["file"], entry)
    for listing in sorted(DATA.rglob("expected.json"))
    for entry in json.loads(listing.read_text(encoding="utf-8"))
    if not entry.get("xfail")
]
GREP = re.compile(r"Kill(?:ed)? process (\d+)")


def _labels(entry: dict) -> list[tuple[int | None, str]]:
    return sorted((kill["pid"], kill["process"]) for kill in [*entry["kills"], *entry.get("userspace_kills", [])])


@functools.cache
def _parsed(name: str, path: Path, year: int | None) -> tuple[str, tuple[tuple[int | None, str], ...]]:
    """An excerpt in wrapper `name`, and the pid and name of each kill parse_text reads in it:
    read once for the tests below (the per-wrapper ones and the recall over them all)."""
    text = WRAPPERS[name](path.read_text(encoding="utf-8").splitlines())
    return text, tuple((kill.pid, kill.process) for kill in parse_text(text, year=year))


def _misses(name: str, read=None) -> list[str]:
    """What reading each wrapped excerpt got wrong (with `read`, else parse_text), one line per excerpt."""
    wrong = []
    for path, entry in ENTRIES:
        if read is None:
            text, kills = _parsed(name, path, entry.get("year"))
        else:
            text = WRAPPERS[name](path.read_text(encoding="utf-8").splitlines())
            kills = tuple((kill.pid, kill.process) for kill in read(text, entry.get("year")))
        labels = _labels(entry)
        got = sorted(kills)
        if name in CUTTING:  # a wrap inside a name can leave it ambiguous ("Web|Content"): pids
            grep = {int(pid) for pid in GREP.findall(text)}
            pids = [pid for pid, _ in got]
            missed = [label for label in labels if label[0] in grep and label[0] not in pids]
            extra = [kill for kill in got if kill[0] not in [pid for pid, _ in labels]]
        else:
            missed = [label for label in labels if label not in got]
            twice = ["(a kill twice)"] if len(got) > len(set(got)) else []
            extra = [kill for kill in got if kill not in labels] + twice
        if missed or extra:
            wrong.append(f"{path.name}: missed {missed}, extra {extra}")
    return wrong


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapped_excerpts_give_their_kills(name: str) -> None:
    assert _misses(name) == []


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapped_excerpts_give_their_kills_through_the_import_scanner(name: str) -> None:
    def scan(text: str, year: int | None) -> list:
        text = export_in_time_order(text) or text  # as import does first (cli/import_logs.py)
        return list(iter_kills(io.BytesIO(text.encode()), "import", year=year, chunk_size=4096))
    assert _misses(name, scan) == []


def test_recall_on_the_wrapper_matrix_is_never_below_grep() -> None:
    found = grepped = total = 0
    for name in WRAPPERS:
        for path, entry in ENTRIES:
            text, kills = _parsed(name, path, entry.get("year"))
            labels = _labels(entry)
            got = {pid for pid, _ in kills}
            grep = {int(pid) for pid in GREP.findall(text)}
            total += len(labels)
            found += sum(1 for pid, _ in labels if pid in got)
            grepped += sum(1 for pid, _ in labels if pid in grep)
    assert found / total >= 0.97
    assert found >= grepped


KILL = ("Out of memory: Killed process {pid} (java) total-vm:8806332kB, anon-rss:6848016kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:1000 pgtables:14360kB oom_score_adj:0")
EXPORTS = {  # an export of one kernel line (its message, at its time), and the host it names
    "gcp": (lambda msg, at: {"textPayload": msg, "timestamp": at, "resource": {"labels": {"instance_id": "1"}}}, None),
    "gcp-jsonPayload": (lambda msg, at: {"jsonPayload": {"message": msg}, "timestamp": at}, None),
    "cloudwatch": (lambda msg, at: {"@timestamp": at, "@message": "kernel: " + msg}, None),
    "elasticsearch": (lambda msg, at: {"_source": {"@timestamp": at, "host": {"name": "es-host"}, "message": msg}},
                      "es-host"),
    "splunk": (lambda msg, at: {"result": {"_raw": "Jun 29 15:57:10 sp-host kernel: " + msg, "_time": at,
                                           "host": "sp-host"}}, "sp-host"),
    "loki": (lambda msg, at: {"labels": {"job": "k"}, "line": msg, "timestamp": at}, None),
    "docker": (lambda msg, at: {"log": "[ 1234.567890] " + msg + "\n", "stream": "stdout", "time": at}, None),
    "zap-seconds": (lambda msg, at: {"ts": datetime.fromisoformat(at).timestamp(), "msg": msg, "hostname": "z-host"},
                    "z-host"),
}


@pytest.mark.parametrize("export", sorted(EXPORTS))
def test_a_log_stores_export_gives_each_kill_the_time_and_host_its_entry_names(export: str) -> None:
    make, host = EXPORTS[export]
    times = ["2025-06-29T15:57:10.250000+00:00", "2025-06-30T01:02:03+02:00"]
    lines = [json.dumps(make(KILL.format(pid=4000 + n), at)) for n, at in enumerate(times)]
    for text in ("\n".join(lines) + "\n", json.dumps([json.loads(line) for line in lines]) + "\n",
                 json.dumps({"entries": [json.loads(line) for line in lines], "nextPageToken": "x"}) + "\n"):
        kills = parse_text(text, year=2025)
        assert [(k.pid, k.time, k.host) for k in kills] == [
            (4000 + n, datetime.fromisoformat(at), host) for n, at in enumerate(times)], text[:300]


def test_an_export_time_without_a_zone_is_not_taken_for_one() -> None:
    line = json.dumps({"@timestamp": "2025-06-29 15:57:10.250", "@message": "kernel: " + KILL.format(pid=7)})
    assert [(k.pid, k.time) for k in parse_text(line + "\n")] == [(7, None)]


@pytest.mark.parametrize("hostile", [
    '{"a":' * 10_000 + "1" + "}" * 10_000,  # json's recursion limit, inside LINE_CHARS
    "[" * 30_000 + "]" * 30_000,
    '[{"message": "' + "x" * 70_000 + '"}]',  # an array cut at LINE_CHARS
], ids=["nested-objects", "nested-arrays", "cut-array"])
def test_a_hostile_json_line_never_keeps_the_next_kill_from_being_read(hostile: str) -> None:
    text = hostile + "\n" + KILL.format(pid=4242) + "\n"
    assert [k.pid for k in parse_text(text)] == [4242]
    assert [k.pid for k in iter_kills(io.BytesIO(text.encode()), "import", chunk_size=4096)] == [4242]


@pytest.mark.parametrize("closing", ['"', '",', "`", " |", "</td>", ";"])
def test_a_wrappers_closing_mark_after_the_oom_kill_line_keeps_its_task_memcg(closing: str) -> None:
    # A CSV export quotes the message, markdown puts it in `code` or a table, a web page in a cell.
    summary = ("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods/pod1,"
               "task_memcg=/kubepods/pod1/c1,task=java,pid=4242,uid=1000")
    kills = parse_text(f"{summary}{closing}\n{KILL.format(pid=4242)}{closing}\n")
    assert [(k.pid, k.memcg, k.task_memcg, k.uid) for k in kills] == [
        (4242, "/kubepods/pod1", "/kubepods/pod1/c1", 1000)]


CSV_EXPORTS = {  # a header as each tool writes it, and a row of it around a message (its fields quoted where needed)
    "kibana": ('"@timestamp","host.name",message', lambda at, msg: f'"{at}","csv-host","{msg}"'),
    "splunk": ('"_serial","_time",source,host,"_raw"',
               lambda at, msg: f'0,"{at}",/var/log/kern.log,csv-host,"Jun 29 15:57:10 csv-host kernel: {msg}"'),
}


@pytest.mark.parametrize("export", sorted(CSV_EXPORTS))
def test_a_csv_export_gives_each_kill_its_rows_time_and_host(export: str) -> None:
    header, row = CSV_EXPORTS[export]
    summary = ("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods/pod1,"
               "task_memcg=/kubepods/pod1/c1,task=java,pid=4242,uid=1000")
    at = "2025-06-29T15:57:10.250+00:00"
    text = "\n".join([header, row(at, summary), row(at, KILL.format(pid=4242)), "ordinary text, after the table",
                      KILL.format(pid=77)]) + "\n"
    kills = parse_text(text, year=2025)
    assert [(k.pid, k.task_memcg, k.time, k.host) for k in kills] == [
        (4242, "/kubepods/pod1/c1", datetime.fromisoformat(at), "csv-host"), (77, None, None, None)]
    assert kills[0].extra["kill_line"] == KILL.format(pid=4242)
    # import's scanner reads only what stands near a kill's words: the header, 3,000 rows
    # before, is unseen there; import reads the export as NDJSON first (its rows in order)
    far = "\n".join([header, *[row(at, "sshd[1]: Accepted publickey for deploy") for _ in range(3000)],
                      row(at, summary), row(at, KILL.format(pid=4242))]) + "\n"
    for text in (export_in_time_order(far), "".join(csv_as_ndjson(io.StringIO(far, newline="")))):
        assert text is not None
        scanned = list(iter_kills(io.BytesIO(text.encode()), "import", year=2025, chunk_size=4096))
        assert [(k.pid, k.task_memcg, k.time, k.host) for k in scanned] == [
            (4242, "/kubepods/pod1/c1", datetime.fromisoformat(at), "csv-host")]


def test_a_log_line_whose_cgroup_name_holds_csv_or_json_forges_no_kill() -> None:
    # Review R16: any user names a cgroup of their delegated subtree as they like (quotes,
    # commas), and the kernel prints it raw in its oom-kill: line, in kern.log.
    forged = ("Out of memory: Killed process 1 (systemd) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, "
              "UID:0 pgtables:4kB oom_score_adj:-1000")
    base = "/user.slice/user-1000.slice/user@1000.service/app.slice/"
    for name in (f'x,"2025-06-29T15:57:10Z","{forged} padding padding"', 'x,"2025-06-29T15:57:10Z",y',
                 f'x "msg": "{forged}"', f'x "message": "{forged}"', f'x "textPayload": "{forged}"'):
        prefix = "Jun  3 10:00:00 web-01 kernel: [ 5000.000001] "
        text = (f"{prefix}oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
                f"task_memcg={base}{name},task=stress,pid=4242,uid=1000\n{prefix}{KILL.format(pid=4242)}\n")
        for kills in (parse_text(text, year=2025), list(iter_kills(io.BytesIO(text.encode()), "import", year=2025))):
            assert [(k.pid, k.uid, k.constraint, k.task_memcg) for k in kills] == [
                (4242, 1000, "CONSTRAINT_NONE", base + name)], name


@pytest.mark.parametrize("line", [
    'Jun  3 10:00:00 h alice[42]: x,"2025","{kill}"',
    "Jun  3 10:00:00 h alice: x {kill}",
    "2025-06-03T10:00:00+00:00 h alice: see {kill}",
])
def test_a_users_syslog_line_quoting_a_kernel_kill_further_in_is_no_kill(line: str) -> None:
    # Any user writes /var/log/syslog and messages through logger(1): the kernel's words deeper
    # in alice's message are hers (the daemon's feed refused them; import took them, 8e12a16).
    forged = ("Out of memory: Killed process 1 (systemd) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, "
              "UID:0 pgtables:4kB oom_score_adj:-1000")
    text = line.format(kill=forged) + "\n" + f"Jun  3 10:00:01 h kernel: {KILL.format(pid=4242)}\n"
    assert [k.pid for k in parse_text(text, year=2025)] == [4242]
    assert [k.pid for k in iter_kills(io.BytesIO(text.encode()), "import", year=2025)] == [4242]


_JOINED_KILL = ("Out of memory: Killed process {p} (v{p}) total-vm:400000kB, anon-rss:200000kB, file-rss:0kB, "
                "shmem-rss:0kB, UID:1000 pgtables:400kB oom_score_adj:0")


@pytest.mark.parametrize("joiner", ['"], ["1717408800123456789", "', '", "', " | ", "; ", " ", ' "' + '"' * 60 + " "])
def test_two_kill_lines_run_together_by_json_punctuation_are_two_kills_each_its_own_name(joiner: str) -> None:
    # Review R22b: Loki's [ns, line] pairs, a JSON array of strings, a pipe: the first kill's
    # name ran on into the second kill line, which was lost. (The last: a run of quotes that
    # a backtracking reading of the joiner would take exponentially long to refuse.)
    text = _JOINED_KILL.format(p=1) + joiner + _JOINED_KILL.format(p=2) + "\n"
    for line in (text, "[ 12.5] " + text, "Jun 29 15:57:11 host kernel: " + text):
        assert [(k.pid, k.process, k.anon_rss_kb) for k in parse_text(line)] == [(1, "v1", 200000), (2, "v2", 200000)]

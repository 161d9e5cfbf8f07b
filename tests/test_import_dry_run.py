"""`import --dry-run` prints what `import` would record: the same kills, their untrusted
texts (process names, cgroup paths) cut to the history's caps (bounds.py) and escaped the
same way, in the table and in JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

from watchdog_oom.bounds import PATH_MAX, PROCESS_MAX, is_truncated
from watchdog_oom.cli import main

# Any local user writes such lines to /var/log/syslog with logger(1): a "process name" of
# 60,000 characters, a cgroup path of 10,000, each within the 64 KiB a line is read to.
NAME = "n\u202e" + "n" * 60_000
CGROUP = "/" + "c" * 10_000
LOG = "".join(f"Jun  3 10:00:{second:02d} h kernel: {text}\n" for second, text in [
    (0, "java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"),
    (0, f"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg={CGROUP},"
        f"task_memcg={CGROUP},task=x,pid=7,uid=0"),
    (0, f"Memory cgroup out of memory: Killed process 7 ({NAME}) total-vm:1kB, anon-rss:1kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0"),
    (1, "Out of memory: Killed process 8 (short) total-vm:1kB, anon-rss:1kB, file-rss:0kB"),
])


def _import(tmp_path: Path, *options: str) -> str:
    log = tmp_path / "kern.log"
    log.write_text(LOG)
    config = tmp_path / "config.yaml"
    config.write_text(f"host: h\ndatabase: sqlite:///{tmp_path}/history.db\n")
    out, err = io.StringIO(), io.StringIO()
    code = main(["-c", str(config), "import", *options, "--year", "2024", str(log)], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    return out.getvalue()


def test_dry_run_json_is_the_recorded_json_with_the_texts_capped(tmp_path: Path) -> None:
    dry = json.loads(_import(tmp_path, "--dry-run", "--format", "json"))
    assert not (tmp_path / "history.db").exists()
    recorded = json.loads(_import(tmp_path, "--format", "json"))
    assert [kill.pop("id") for kill in dry] == [None, None]
    assert [kill.pop("id") for kill in recorded] == [1, 2]
    assert dry == recorded
    first = dry[0]
    assert len(first["process"]) == PROCESS_MAX and is_truncated(first["process"])
    assert first["process"].startswith(NAME[:100])
    assert len(first["memcg"]) == len(first["task_memcg"]) == PATH_MAX and is_truncated(first["memcg"])
    assert dry[1]["process"] == "short"


def test_dry_run_table_is_the_recorded_table(tmp_path: Path) -> None:
    dry = _import(tmp_path, "--dry-run").splitlines()
    recorded = _import(tmp_path).splitlines()
    assert len(dry) == len(recorded) == 3
    # the ID column aside ("-" not recorded, 1 and 2 recorded), every cell is the same
    assert [line.split(None, 1)[1] for line in dry[1:]] == [line.split(None, 1)[1] for line in recorded[1:]]
    assert dry[0] == recorded[0] and "\u202e" not in "".join(dry)

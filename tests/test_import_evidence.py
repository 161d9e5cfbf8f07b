"""`import` gives each kill the evidence it was read from: the reading child shares one
evidence object among the kills whose evidence is equal, and never gives a kill another's."""

from __future__ import annotations

import io
import json
from pathlib import Path

from watchdog_oom.cli import main
from watchdog_oom.parse import parse_text

FIGURES = "total-vm:4kB, anon-rss:4kB, file-rss:0kB"
LOG = "".join([
    f"Jun  3 10:00:00 host kernel: Out of memory: Killed process 5 (a) {FIGURES}\n",  # syslog, tag kernel
    f"Jun  3 10:00:01 host kernel: Out of memory: Killed process 6 (b) {FIGURES}\n",  # the same evidence
    f"[ 1234.567890] Out of memory: Killed process 7 (c) {FIGURES}\n",  # dmesg: another
    "Jun  3 10:00:02 host kernel: java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n",
    f"Jun  3 10:00:02 host kernel: Out of memory: Killed process 8 (d) {FIGURES}\n",  # a report: another
    f"Jun  3 10:00:03 host kernel: Out of memory: Killed process 9 (e) {FIGURES}\n",  # the first's again
])


def _evidence(tmp_path: Path, config: Path, *options: str) -> list[object]:
    log = tmp_path / "kern.log"
    log.write_text(LOG)
    out, err = io.StringIO(), io.StringIO()
    assert main(["-c", str(config), "import", *options, "--format", "json", "--year", "2024", str(log)],
                stdout=out, stderr=err) == 0, err.getvalue()
    return [record["evidence"] for record in json.loads(out.getvalue())]


def test_each_kill_has_its_own_evidence_dry_run_and_recorded(tmp_path: Path) -> None:
    expected = [kill.extra["evidence"] for kill in parse_text(LOG, year=2024)]
    assert len({json.dumps(e, sort_keys=True) for e in expected}) == 3  # the log holds three kinds
    config = tmp_path / "c.yaml"
    config.write_text(f"host: h\ndatabase: sqlite:///{tmp_path}/h.db\n")
    assert _evidence(tmp_path, config, "--dry-run") == expected
    assert _evidence(tmp_path, config) == expected  # recorded: the stored rows' evidence

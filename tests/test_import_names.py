"""`import` names each log it reads in what it says; a file's name is untrusted text (a
directory of logs per sending host is named after what the host claims), so its control
characters are shown escaped, never sent to the terminal."""

from __future__ import annotations

import io
from pathlib import Path

from watchdog_oom.cli import main

KILL = "Out of memory: Killed process 5 (x) total-vm:4kB, anon-rss:4kB, file-rss:0kB\n"


def test_a_log_named_with_control_characters_is_named_escaped(tmp_path: Path) -> None:
    named = tmp_path / "evil\x1b[2J\nname.log"
    named.write_text("Jun  3 10:00:00 host kernel: " + KILL + "noise oom-kill: unreadable words Killed process\n")
    missing = tmp_path / "gone\x1b]0;title\x07.log"
    out, err = io.StringIO(), io.StringIO()
    assert main(["import", "--dry-run", str(named), str(missing)], stdout=out, stderr=err) == 1
    said = err.getvalue()
    assert "\x1b" not in said and "\x07" not in said and "\nname.log" not in said, said
    assert "evil\\x1b[2J\\x0aname.log: 1 kill found" in said, said
    assert "gone\\x1b]0;title\\x07.log" in said, said

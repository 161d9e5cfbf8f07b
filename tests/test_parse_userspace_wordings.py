"""User-space killers' wordings that the corpus showed only once: earlyoom's command line
on a line of its own (1.7-x builds), nohang's victim handled by a configured command, and
nohang 0.1's one-line victim description. Samples as the releases print them (kill.c at
rfjakob/earlyoom e05fa9e..7534065; src/nohang implement_corrective_action())."""

from __future__ import annotations

from watchdog_oom.model import KernelLine
from watchdog_oom.parse import OomParser, parse_text

EARLYOOM_17 = [
    'Jul 18 08:23:17 server.name earlyoom[2608931]: sending SIGTERM to process 2595764 uid 0 "cellxgene": '
    "badness 711, VmRSS 52562 MiB",
    'Jul 18 08:23:17 server.name earlyoom[2608931]: process 2595764 cmdline "command here"',
]


def test_earlyoom_cmdline_on_its_own_line_is_the_kills():
    (kill,) = parse_text("\n".join(EARLYOOM_17) + "\n", year=2024)
    assert (kill.pid, kill.process, kill.uid, kill.cmdline) == (2595764, "cellxgene", 0, "command here")


def test_earlyoom_kill_without_cmdline_line_is_handed_on_by_the_next_line_or_flush():
    parser = OomParser()  # strict: as the daemon reads journald's earlyoom entries
    first = KernelLine(text=EARLYOOM_17[0].split(": ", 1)[1], source="journal")
    assert parser.feed(first) == [] and parser.pending
    (kill,) = parser.feed(KernelLine(text="earlyoom[2608931]: process exited after 0.1 seconds", source="journal"))
    assert kill.pid == 2595764 and kill.cmdline is None
    assert parser.feed(KernelLine(text=first.text.replace("2595764", "77"), source="journal")) == []
    assert [k.pid for k in parser.flush()] == [77] and not parser.pending


def test_earlyoom_other_pids_cmdline_is_not_taken():
    text = EARLYOOM_17[0] + "\n" + EARLYOOM_17[1].replace("2595764", "1") + "\n"
    (kill,) = parse_text(text, year=2024)
    assert kill.cmdline is None


def test_earlyoom_startup_banner_ending_in_a_comma_holds_no_line():
    banner = [
        "earlyoom[1]: sending SIGTERM when mem <= 10.00% and swap <= 10.00%,",
        "earlyoom[1]:         SIGKILL when mem <=  5.00% and swap <=  5.00%",
        "earlyoom[1]: low memory! at or below SIGTERM limits: mem 10.00%, swap 10.00%",
        'earlyoom[1]: sending SIGTERM to process 42 uid 0 "x": badness 711, VmRSS 52562 MiB',
    ]
    assert [k.pid for k in parse_text("\n".join(banner))] == [42]


def test_nohang_command_action_is_a_kill_of_the_described_victim():
    text = """Process with highest badness (found in 6 ms):
  PID: 12297, Name: tail, badness: 727
Execute the command(1) in Thread-1: kill -TERM 12297
Implement a corrective action:
  Run the command: kill -TERM 12297
  Exit status: None; total response time: 7 ms
Total stat (what happened in the last 26 sec):
  Run the command 'kill -TERM $PID': 1
"""
    (kill,) = parse_text(text)
    assert (kill.pid, kill.process, kill.killer, kill.extra["command"]) == (12297, "tail", "nohang", "kill -TERM 12297")


def test_nohang_2020_executing_the_command_wording():
    text = """Victim status (found in 14ms):
  PID:       4242, name: firefox, state: R, EUID: 1000, SID: 2030 (bash), lifetime: 3s
Implementing a corrective action:
  Executing the command: systemctl restart firefox.service
"""
    (kill,) = parse_text(text)
    assert (kill.pid, kill.process, kill.uid) == (4242, "firefox", 1000)


def test_nohang_0_1_names_its_victim_on_one_line():
    text = """  Finding the process with the highest badness
  Victim is stress, pid: 5874, badness: 812, VmRSS: 3160 MiB, VmSwap: 0 MiB
  Sending SIGTERM to the victim; OK; response time: 12 ms
"""
    (kill,) = parse_text(text)
    assert (kill.pid, kill.process, kill.extra["signal"], kill.extra["badness"]) == (5874, "stress", "SIGTERM", 812)

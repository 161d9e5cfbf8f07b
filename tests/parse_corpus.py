"""Logs to compare two parsers on, and the records a parser reads from them, field by field.

The parser's speed work (issue 13) must not change one record on any text a kernel or a
person produces. This module makes the inputs, deterministically from seeds:

* every capture in tests/data (and any files named on the command line), raw;
* captures in the wrappers of tests/wrapping.py (syslog tools, JSON, mail, terminals);
* two captures interleaved (two hosts' logs merged, one report inside another);
* random logs: runs of real captures' messages re-wrapped line by line in random wrappers,
  reports cut short, task-table rows with hostile names and figures, kernel wordings from
  2.6 to 6.x, memcg v1/v2 lines, user-space killers (earlyoom, systemd-oomd, nohang,
  Android's lmkd), wrap-cut kill lines, JSON lines;
* review-notes/scanner_fuzz.py's generator (kill words put anywhere in a line).

and reads each both ways `import` reads text: fed line by line (parse_text) and through the
byte scanner (iter_kills, as a stream and, with --big, as a mapped file): every kill's every
field (repr), and the unread lines. tests/test_parse_differential.py compares the records of
the current parser with those that the parser before the speed work (main at 57f4c33) read
from the same inputs, stored in tests/data/differential/records.json.gz. To compare any two
trees on bigger inputs:

    python3 tests/parse_corpus.py compare OLD_TREE NEW_TREE [--seeds 0:400] [--big] [FILES...]

and to write the stored records again from a tree (after a deliberate change of what the
parser reads; say why in the commit):

    PYTHONPATH=TREE python3 tests/parse_corpus.py write tests/data/differential/records.json.gz
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
GOLDEN = DATA / "differential" / "records.json.gz"

# ------------------------------------------------------------------ the messages

HEADERS = [
    "{comm} invoked oom-killer: gfp_mask=0x280da, order=0, oom_adj=0, oom_score_adj=0",
    "{comm} invoked oom-killer: gfp_mask=0x201da, order=0, oomkilladj=0",
    "{comm} invoked oom-killer: gfp_mask=0x14200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null), order=0, oom_score_adj=0",
    "{comm} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=-1000",
    "{comm} invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
    "oom-killer: gfp_mask=0xd0, order=0",
]
CPU_LINES = [
    "CPU: {n} PID: {pid} Comm: {comm} Not tainted 5.15.0-91-generic #101-Ubuntu",
    "CPU: {n} UID: {uid} PID: {pid} Comm: {comm} Not tainted 6.12.0 #1",
    "Pid: {pid}, comm: {comm} Not tainted 2.6.32-642.11.1.el6.x86_64 #1",
    "CPU: {n} PID: {pid} Comm: {comm} Tainted: G           O      4.19.0 #1",
]
TRACE = [
    "Call Trace:",
    " <TASK>",
    " dump_stack_lvl+0x4a/0x63",
    " [<ffffffff81131420>] ? dump_header+0x90/0x1b0",
    " oom_kill_process.cold+0xb/0x10",
    " out_of_memory+0x106/0x2e0",
    " </TASK>",
    "Hardware name: QEMU",
]
MEMORY = [
    "Mem-Info:",
    "Mem-info:",
    "active_anon:1790129 inactive_anon:177312 isolated_anon:0",
    "Node 0 DMA free:15908kB min:132kB low:164kB high:196kB",
    "Node 0 DMA per-cpu:",
    "CPU    0: hi:    0, btch:   1 usd:   0",
    "Free swap  = 0kB",
    "Total swap = 0kB",
    "memory: usage {kb}kB, limit {kb}kB, failcnt {n}",
    "memory+swap: usage {kb}kB, limit 9007199254740988kB, failcnt 0",
    "swap: usage 0kB, limit 0kB, failcnt 0",
    "kmem: usage 0kB, limit 9007199254740988kB, failcnt 0",
    "Memory cgroup stats for {cg}: cache:0KB rss:{kb}KB rss_huge:0KB",
    "Memory cgroup stats for {cg}:",
    "anon {kb}",
    "file 0",
    "{comm} cpuset=/ mems_allowed=0",
]
TABLE_HEADERS = [
    "[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name",
    "[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name",
    "[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name",
    "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes swapents oom_score_adj name",
]
NAMES = [
    "java",
    "worker-3",
    "kworker/0:1",
    "php-fpm",
    "(sd-pam)",
    "Web Content",
    "a b",
    "kill",
    "killer",
    "oom-killer",
    "Killed",
    "[x]",
    "x]",
    'a"b',
    "a&b",
    "x=3D",
    "x=",
    "naïve",
    "名前",
    "x\ty",
    "pid",
    "Task",
    "Mem-",
    "SIG",
    "emory",
    "x#012y",
    "x#01",
    "sh -c",
    "",
    " ",
    "1",
    "-",
    "python3.11",
    "a(b)c",
    "a) total-vm:1kB",
]
SUMMARIES = [
    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
    "task_memcg={cg},task={comm},pid={pid},uid={uid}",
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset={cg},mems_allowed=0,oom_memcg={cg},"
    "task_memcg={cg}/c,task={comm},pid={pid},uid={uid}",
    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0-1,global_oom,task_memcg=/,"
    "task={comm},pid={pid},uid={uid}",
]
MEMCG = [
    "Task in {cg}/c killed as a result of limit of {cg}",
    "Tasks in {cg} are going to be killed due to memory.oom.group set",
]
SELECTIONS = [
    "Out of memory: Kill process {pid} ({comm}) score {score} or sacrifice child",
    "Memory cgroup out of memory: Kill process {pid} ({comm}) score {score} or sacrifice child",
    "Out of memory: kill process {pid} ({comm}) score {score} or a child",
    "Out of Memory: Kill process {pid} ({comm}) score {score} and children.",
]
KILLS = [
    "Out of memory: Killed process {pid} ({comm}) total-vm:{kb}kB, anon-rss:{kb}kB, file-rss:0kB, shmem-rss:0kB, "
    "UID:{uid} pgtables:{n}kB oom_score_adj:{adj}",
    "Memory cgroup out of memory: Killed process {pid} ({comm}) total-vm:{kb}kB, anon-rss:{kb}kB, file-rss:4kB, "
    "shmem-rss:0kB, UID:{uid} pgtables:{n}kB oom_score_adj:{adj}",
    "Killed process {pid}, UID {uid}, ({comm}) total-vm:{kb}kB, anon-rss:{kb}kB, file-rss:4kB",
    "Killed process {pid} ({comm}), UID {uid}, total-vm:{kb}kB, anon-rss:{kb}kB, file-rss:0kB, shmem-rss:0kB",
    "Killed process {pid} ({comm}) total-vm:{kb}kB, anon-rss:{kb}kB, file-rss:12kB",
    "Out of memory: Killed process {pid} ({comm}).",
    "Killed process {pid} ({comm})",
    "Out of memory (oom_kill_allocating_task): Killed process {pid} ({comm}) total-vm:{kb}kB, anon-rss:{kb}kB, "
    "file-rss:0kB, shmem-rss:0kB, UID:{uid} pgtables:{n}kB oom_score_adj:{adj}",
    "Out of memory: Killed process {pid} ({comm}) total-vm:{kb}kB, anon-rss:{kb}kB, file-rss:0kB, shmem-rss:0kB, "
    "UID:{uid} pgtables:{n}kB oom_score_adj:{adj}",
]
AFTER = ["oom_reaper: reaped process {pid} ({comm}), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"]
NOISE = [
    "Out of memory and no killable processes...",
    "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom",
    "java.lang.OutOfMemoryError: Java heap space",
    "{comm} ({pid}): oom_adj is deprecated, please use oom_score_adj instead.",
    "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=203.0.113.{n} LEN=40",
    "session-{n}.scope: Killing process {pid} (sleep) with signal SIGKILL.",
    "imuxsock: Received SIGHUP, reopening files",
    "Started Session {n} of User deploy.",
]
USERSPACE = [
    "earlyoom[{n}]: mem avail: 100 of 1000 MiB ( 10.00%), swap free: 0 of 0 MiB ( 0.00%)",
    "earlyoom[{n}]: low memory! at or below SIGTERM limits: mem 10.00%, swap 10.00%",
    'earlyoom[{n}]: sending SIGTERM to process {pid} uid {uid} "{comm}": badness {score}, VmRSS {n} MiB',
    'earlyoom[{n}]: sending SIGKILL to process {pid} uid {uid} "{comm}": oom_score {score}, VmRSS {n} MiB',
    'earlyoom[{n}]: process {pid} cmdline "{comm} -jar x"',
    "earlyoom[{n}]: process exited after 0.1 seconds",
    "systemd-oomd[{n}]: Killed {cg}/x.scope due to memory pressure for {cg} being 81.22% > 50.00% for > 20s "
    "with reclaim activity",
    "systemd-oomd[{n}]: Killed {cg}/y.service due to memory used (15971459072) / total (16527302656) and swap used "
    "(3849830400) / total (4294963200) being more than 90.00%",
    "systemd[1]: x.service: Failed with result 'oom-kill'.",
    "systemd[1]: {comm}.scope: A process of this unit has been killed by the OOM killer.",
    "nohang[{n}]: Victim status (found in 14ms):",
    "nohang[{n}]:   Name:      {comm}",
    "nohang[{n}]:   PID:       {pid}",
    "nohang[{n}]:   Sending SIGTERM to the victim",
    "nohang[{n}]: Implement a corrective action: SIGKILL to PID {pid}, name: {comm}",
    "lowmemorykiller: Kill '{comm}' ({pid}), uid {uid}, oom_score_adj {adj} to free {kb}kB rss, 0kB swap; "
    "reason: low watermark",
    "lowmemorykiller: Killing '{comm}' ({pid}), adj {adj},",
    "lmkd: Reclaimed {kb}kB, cache({kb}kB) and free({kb}kB)-reserved",
]
# Wrappers, each with its time fields; "" is a bare message (a paste, dmesg without times).
WRAPPERS = [
    "{mon} {d:>2} {h:02d}:{m:02d}:{s:02d} {host} kernel: [{up:>12.6f}] ",
    "{mon} {d:>2} {h:02d}:{m:02d}:{s:02d} {host} kernel: ",
    "[{up:>12.6f}] ",
    "[{up:.6f}] ",
    "",
    "2026-06-{d:02d}T{h:02d}:{m:02d}:{s:02d}.123456+02:00 {host} kernel: ",
    "[Mon Jun {d:>2} {h:02d}:{m:02d}:{s:02d} 2026] ",
    "{mon} {d:02d} {h:02d}:{m:02d}:{s:02d} {host} kernel: ",
    "/var/log/kern.log:{n}:{mon} {d:>2} {h:02d}:{m:02d}:{s:02d} {host} kernel: [{up:>12.6f}] ",
    "> {mon} {d:>2} {h:02d}:{m:02d}:{s:02d} {host} kernel: ",
    "<4>[{up:>12.6f}] ",
    "{mon} {d:>2} {h:02d}:{m:02d}:{s:02d} {host} ",
    "    {n:>3}\t",
    "- ",
]
HOSTS = ["web-01", "db.example.com", "10.0.0.5", "h", "web-02"]


def _fields(rng: random.Random) -> dict:
    """Random values for the templates' fields, now and then out of any kernel's range."""
    big = rng.random() < 0.05
    return {
        "comm": rng.choice(NAMES),
        "pid": rng.choice([rng.randint(1, 4_194_304), 0, 99999999999] if big else [rng.randint(1, 99999)]),
        "uid": rng.choice([0, 1000, 27, 4294967295, -1] if big else [0, 1000]),
        "n": rng.randint(0, 99),
        "kb": rng.choice([rng.randint(0, 10**8), 10**25] if big else [rng.randint(0, 10**8)]),
        "adj": rng.choice([0, -1000, 1000, 2000, -17] if big else [0, 900]),
        "score": rng.randint(-1000, 2000),
        "cg": rng.choice(
            ["/docker/abc", "/kubepods/burstable/pod1", "/user.slice", "/a,b", "/oom-killer-test.service"]
        ),
    }


def _row(rng: random.Random, header: str) -> str:
    """A task-table row for the header's columns, now and then hostile."""
    columns = len(header.split()) - 3  # "[", "pid", "]" counted as fields of the header's split
    cells = [str(rng.randint(0, 9_999_999)) for _ in range(columns)]
    odd = rng.random()
    if odd < 0.05:
        cells[rng.randrange(columns)] = rng.choice(["-1", "123456789012345678901", "١٢٣", "1_000", "+5", "", "x"])
    pid = rng.choice([str(rng.randint(1, 99999)), "12345678"]) if odd < 0.1 else str(rng.randint(1, 99999))
    name = rng.choice(NAMES) if odd < 0.3 else f"w{rng.randint(0, 40)}"
    pad = rng.choice([" ", "  ", "\t", "   "]) if odd < 0.1 else " "
    row = f"[{pid:>7}]" + "".join(f"{pad}{cell:>8}" for cell in cells) + f" {name}"
    return row + rng.choice(["", " ", "\t", "\u00a0", "\x1c"]) if odd < 0.15 else row


def _report(rng: random.Random) -> list[str]:
    """One OOM report of a random kernel's shape, perhaps cut short or with parts missing."""
    f = _fields(rng)
    lines = [rng.choice(HEADERS).format(**f)]
    if rng.random() < 0.8:
        lines.append(rng.choice(CPU_LINES).format(**f))
    lines += rng.sample(TRACE, rng.randint(0, 4))
    if rng.random() < 0.4:
        lines.append(rng.choice(MEMCG[:1]).format(**f))
    lines += [m.format(**f) for m in rng.sample(MEMORY, rng.randint(0, 6))]
    if rng.random() < 0.8:
        header = rng.choice(TABLE_HEADERS)
        lines += ["Tasks state (memory values in pages):", header] + [
            _row(rng, header) for _ in range(rng.randint(0, 40))
        ]
    if rng.random() < 0.6:
        lines.append(rng.choice(SUMMARIES).format(**f))
    if rng.random() < 0.4:
        lines.append(rng.choice(SELECTIONS).format(**f))
        if rng.random() < 0.5:
            f["pid"] = rng.randint(1, 99999)
    if rng.random() < 0.9:
        lines.append(rng.choice(KILLS).format(**f))
    if rng.random() < 0.2:
        lines.append(MEMCG[1].format(**f))
    if rng.random() < 0.5:
        lines.append(AFTER[0].format(**f))
    if rng.random() < 0.15:  # a report cut short (the log rotated, a paste ended)
        lines = lines[: rng.randint(1, len(lines))]
    return lines


def _wrap(rng: random.Random, template: str, second: int, host: str, n: int) -> str:
    return template.format(
        mon="Jun",
        d=3 + second // 86400 % 20,
        h=second // 3600 % 24,
        m=second // 60 % 60,
        s=second % 60,
        host=host,
        up=second + rng.random(),
        n=n,
    )


def _mutate(rng: random.Random, line: str) -> str:
    """A line as a person or a tool may have left it: cut by a wrap, quoted, in JSON, with junk."""
    odd = rng.random()
    if odd < 0.03 and len(line) > 40:  # a terminal's hard wrap: the rest on the next line
        cut = rng.randint(20, len(line) - 1)
        return line[:cut] + "\n" + line[cut:]
    if odd < 0.05:
        return json.dumps(
            {
                "MESSAGE": line,
                "SYSLOG_IDENTIFIER": "kernel",
                "_TRANSPORT": "kernel",
                "__REALTIME_TIMESTAMP": "1717408800000000",
                "_HOSTNAME": "web-01",
            }
        )
    if odd < 0.07:
        at = rng.randrange(len(line) + 1)
        return (
            line[:at]
            + rng.choice(
                [
                    "",
                    " ",
                    "\t",
                    "(",
                    ")",
                    "[",
                    "]",
                    ",",
                    "kB",
                    "0",
                    "#012",
                    ":",
                    "\x1b[1m",
                    "&amp;",
                    '"',
                    "=",
                    "\r",
                    "\x00",
                ]
            )
            + line[at:]
        )
    if odd < 0.08:
        return line.rstrip() + rng.choice([" ", "\r", "  ", "\t"])
    return line


def random_log(seed: int) -> str:
    """A log of reports, killers' lines and noise from one or two hosts, in changing wrappers."""
    rng = random.Random(seed)
    hosts = rng.sample(HOSTS, 2)
    sticky = [rng.choice(WRAPPERS), rng.choice(WRAPPERS)]
    streams: list[list[str]] = [[], []]
    for _ in range(rng.randint(1, 6)):
        which = rng.random() < 0.3
        kind = rng.random()
        if kind < 0.6:
            streams[which] += _report(rng)
        elif kind < 0.8:
            streams[which] += [rng.choice(USERSPACE).format(**_fields(rng)) for _ in range(rng.randint(1, 6))]
        else:
            streams[which] += [rng.choice(NOISE + AFTER).format(**_fields(rng)) for _ in range(rng.randint(1, 4))]
    out, second, at = [], rng.randint(0, 10**6), [0, 0]
    while at[0] < len(streams[0]) or at[1] < len(streams[1]):
        which = 1 if at[0] >= len(streams[0]) or (at[1] < len(streams[1]) and rng.random() < 0.2) else 0
        message = streams[which][at[which]]
        at[which] += 1
        second += rng.random() < 0.3
        template = sticky[which] if rng.random() < 0.9 else rng.choice(WRAPPERS)
        out.append(_mutate(rng, _wrap(rng, template, second, hosts[which], len(out) + 1) + message))
    return "\n".join(out) + "\n"


def _fuzz_log(seed: int) -> str:
    """review-notes/scanner_fuzz.py's generator: kill words put anywhere in lines of every kind."""
    rng = random.Random(seed)
    wrappers = [
        "Jun  3 10:00:{s:02d} web-01 kernel: [ {s}.000100] ",
        "[ {s}.000100] ",
        "Jun  3 10:00:{s:02d} web-01 kernel: ",
        "2024-06-03T10:00:{s:02d}.123456+02:00 web-01 kernel: ",
        "kern.log:12:Jun  3 10:00:{s:02d} web-01 kernel: [ {s}.000100] ",
        "",
    ]
    messages = [
        HEADERS[4].format(comm="java"),
        SUMMARIES[0].format(cg="/user.slice", comm="java", pid=7, uid=1000),
        SUMMARIES[1].format(cg="/a", comm="oom-killer", pid=8, uid=0),
        KILLS[0].format(pid=7, comm="java", kb=8, uid=1000, n=4, adj=0),
        KILLS[0].format(pid=9, comm="oom-killer", kb=8, uid=0, n=4, adj=0),
        KILLS[1].format(pid=8, comm="oom-kill:x", kb=8, uid=0, n=4, adj=0),
        SELECTIONS[0].format(pid=7, comm="java", score=900),
        KILLS[4].format(pid=10, comm="java", kb=8),
        USERSPACE[3].format(n=5, pid=4242, uid=1000, comm="oom-killer", score=900),
        USERSPACE[2].format(n=5, pid=4243, uid=1000, comm="java", score=900),
        USERSPACE[6].format(n=77, cg="/user.slice/user-1000.slice/oom-killer"),
        "systemd-oomd[77]: Marked /oom-kill:/x.scope for killing",
        "nohang[1]: oom-killer the command: kill -9 1234",
        USERSPACE[14].format(n=1, pid=1234, comm="java"),
        AFTER[0].format(pid=7, comm="java"),
        "Mem-Info:",
        "Call Trace:",
        "active_anon:1 inactive_anon:2",
        "Tasks state (memory values in pages):",
        TABLE_HEADERS[3],
        "[   1234]  1000  1234     1000      500    40960        0             0 oom-killer",
        MEMCG[0].format(cg="/oom-kill:/a"),
        "kill",
        "oom-kill",
        "oom-kill:",
        "oom-killer",
        "oom-killed",
        "xoom-kill:",
        'killing process 1 "a"',
        'oom-kill:x killing process 12 "a"',
    ]
    sticky, lines = rng.choice(wrappers), []
    for i in range(rng.randint(3, 60)):
        wrapper = sticky if rng.random() < 0.85 else rng.choice(wrappers)
        message = rng.choice(messages)
        if rng.random() < 0.3:
            at = rng.randrange(len(message) + 1)
            message = (
                message[:at]
                + rng.choice([" oom-killer", "oom-kill:", " oom-kill: ", "oom-killer:", "Kill", "kill"])
                + message[at:]
            )
        lines.append(wrapper.format(s=i % 60) + message)
    return "\n".join(lines) + "\n"


def rows_log(wrapper: str) -> str:
    """A report whose task table has, between runs of plain rows, a row of each odd kind (a
    name with a kill's words, an enclosure's or a cut's characters; blanks after it; a figure
    no kernel prints; zeros before it), most in `wrapper` (of WRAPPERS), some in another."""
    rng = random.Random(wrapper)
    plain = "[{pid:>7}]  1000 {pid:>5}   {n:>6} {n:>8}   {n:>8}        0             0 w{n}"
    odd = [plain.replace("w{n}", name.replace("{", "{{")) for name in NAMES]
    odd += [plain + tail for tail in (" ", "\t", "\u00a0", "\x1c", "\r", " =", "=")]
    odd += [plain.replace("1000 ", f + " ", 1) for f in ("-1", "123456789012345678901", "\u0661", "1_000", "+5")]
    odd += ["\x00\x00" + plain, plain.replace("  1000", "\t1000", 1), plain.replace("[", "[ ", 1)]
    odd += ["[   ] 1 2 3 4 5 6 7 x", plain.replace(" w{n}", "")]
    # "=3D" or a long line ending in "=" turns quoted-printable decoding on for the rest (Decoder): last
    odd.sort(key=lambda row: "=3D" in row or row.endswith("="))
    messages = []
    for n, row in enumerate(odd):  # each in a report of its own: a row that is none ends the table
        messages += [(wrapper, HEADERS[4].format(comm="java")), (wrapper, TABLE_HEADERS[3])]
        for _ in range(rng.randint(1, 4)):
            messages.append((wrapper, plain.format(pid=rng.randint(1, 99999), n=rng.randint(1, 10**6))))
        # the biggest rss of its table: kept, its every field compared
        odd_row = row.format(pid=rng.randint(1, 99999), n=9_000_000 + n)
        messages.append((wrapper if n % 7 else rng.choice(WRAPPERS), odd_row))
        for _ in range(rng.randint(0, 2)):
            messages.append((wrapper, plain.format(pid=rng.randint(1, 99999), n=rng.randint(1, 10**6))))
        messages.append((wrapper, KILLS[0].format(pid=4242 + n, comm="java", kb=1, uid=0, n=4, adj=0)))
    return "\n".join(_wrap(rng, w, 100 + n // 50, "web-01", n) + m for n, (w, m) in enumerate(messages)) + "\n"


def captures(extra: list[Path] = ()) -> list[Path]:  # type: ignore[assignment]
    """The real captures: tests/data's logs and kmsg dumps, and `extra` files."""
    found = sorted({*DATA.rglob("*.log"), *DATA.rglob("*.kmsg")} - set(DATA.glob("differential/*")))
    return found + [Path(p) for p in extra]


def _interleaved(first: list[str], second: list[str], seed: int) -> str:
    """The lines of two logs in runs of random length, one run from each in turn (two hosts'
    logs merged, one report inside the other)."""
    rng, out, a, b = random.Random(seed), [], 0, 0
    while a < len(first) or b < len(second):
        run = rng.randint(1, 12)
        out += first[a : a + run]
        a += run
        run = rng.randint(1, 12)
        out += second[b : b + run]
        b += run
    return "\n".join(out) + "\n"


_TOOLS = ("cat-n", "cloudwatch-json", "color", "crlf", "dmesg-T-fr", "dmesg-T-ja", "docker-json-file",
          "elasticsearch-hits", "gcp-logging-api-pages", "gcp-logging-array", "gcp-logging-array-pretty",
          "gcp-logging-json", "grep-Hn", "html-entities", "journal-json", "k8s-events", "kibana-csv", "logread",
          "loki-jsonl", "mail-quoted-76", "mail-quoted-twice", "mail-wrap-72", "markdown-bullets", "markdown-fenced",
          "nl", "quoted-printable", "rfc5424", "rsyslog-012", "splunk-export", "terminal-60", "terminal-80")


def inputs(seeds: range, extra: list[Path] = (), wrapped_every: int = 3) -> Iterator[tuple[str, str]]:  # type: ignore[assignment]
    """(name, text) of every input: captures raw, wrapped, interleaved; random and fuzz logs."""
    sys.path.insert(0, str(HERE))
    from wrapping import WRAPPERS as TOOLS  # tests/wrapping.py

    files = captures(extra)
    texts = [
        (str(p.relative_to(HERE) if p.is_relative_to(HERE) else p), p.read_text(encoding="utf-8", errors="replace"))
        for p in files
    ]
    yield from texts
    # the tools of tests/wrapping.py when the records were stored, in this order (one added since
    # changes no input's name)
    tools = [tool for tool in _TOOLS if tool in TOOLS]
    for n, (name, text) in enumerate(texts[::wrapped_every]):
        tool = tools[n % len(tools)]
        yield f"{name} in {tool}", TOOLS[tool](text.splitlines())
    for n in range(0, len(texts), 5):
        (a, first), (b, second) = texts[n], texts[(n * 7 + 3) % len(texts)]
        yield f"{a} + {b}", _interleaved(first.splitlines(), second.splitlines(), n)
    for n, wrapper in enumerate(WRAPPERS):
        yield f"rows {n}", rows_log(wrapper)
    for seed in seeds:
        yield f"random {seed}", random_log(seed)
        yield f"fuzz {seed}", _fuzz_log(seed)


# ------------------------------------------------------------------ the records


def _record(kill: object) -> dict[str, str]:
    """A kill's every field, as repr (types, dict order and all)."""
    return {f.name: repr(getattr(kill, f.name)) for f in dataclasses.fields(kill)}  # type: ignore[arg-type]


def records(text: str, big: bool = False) -> dict[str, object]:
    """What the parser in sys.path reads from `text`: line by line (parse_text, with the unread
    lines), through the scanner as a stream, and (big) as a mapped file."""
    from watchdog_oom.parse import Unread, iter_kills, parse_text

    unread = Unread(keep=1000)
    year = 2026
    out: dict[str, object] = {
        "lines": [_record(k) for k in parse_text(text, "import", year=year, unread=unread)],
        "unread": [unread.count, [repr(u) for u in unread.first]],
    }
    data = text.encode("utf-8", "surrogateescape")
    scanned = Unread(keep=1000)
    out["stream"] = [
        _record(k) for k in iter_kills(io.BytesIO(data), "import", year=year, unread=scanned, chunk_size=1 << 16)
    ]
    out["stream unread"] = [scanned.count, [repr(u) for u in scanned.first]]
    if out["stream"] == out["lines"]:
        out["stream"] = "as read line by line"  # (most inputs: the stored records are half as long)
    if big:
        with tempfile.NamedTemporaryFile(suffix=".log") as file:
            copies = max(1, (2 << 20) // max(len(data), 1))  # past scan._MAP_AT_LEAST: mapped
            file.write(data * copies)
            file.flush()
            with open(file.name, "rb") as stream:
                mapped = [_record(k) for k in iter_kills(stream, "import", year=year, workers=2)]
            out["mapped"] = [
                len(mapped) // copies,
                mapped[: len(mapped) // copies],
                mapped == mapped[: len(mapped) // copies] * copies,
            ]
    return out


def all_records(seeds: range, extra: list[Path] = (), big: bool = False) -> dict[str, object]:  # type: ignore[assignment]
    """records() of every input, by name."""
    return {name: records(text, big) for name, text in inputs(seeds, extra)}


GOLDEN_SEEDS = range(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write", help="write the records of the parser in sys.path (gzip JSON)")
    write.add_argument("out")
    write.add_argument("--seeds", default=f"{GOLDEN_SEEDS.start}:{GOLDEN_SEEDS.stop}")
    write.add_argument("--big", action="store_true")
    write.add_argument("files", nargs="*", type=Path)
    compare = sub.add_parser("compare", help="compare two trees' parsers on the inputs")
    compare.add_argument("old")
    compare.add_argument("new")
    compare.add_argument("--seeds", default="0:400")
    compare.add_argument("--big", action="store_true")
    compare.add_argument("files", nargs="*", type=Path)
    args, rest = parser.parse_known_args(argv)
    args.files += [Path(p) for p in rest]  # files after the options
    low, high = (int(x) for x in args.seeds.split(":"))
    if args.command == "write":
        found = all_records(range(low, high), args.files, args.big)
        with gzip.open(args.out, "wt", encoding="utf-8") as out:
            json.dump(found, out, ensure_ascii=False, sort_keys=True, indent=0)
        print(f"{len(found)} inputs, {sum(len(r['lines']) for r in found.values())} kills")  # type: ignore[arg-type]
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for tree in (args.old, args.new):
            out = Path(tmp) / f"{len(results)}.json.gz"
            command = [sys.executable, __file__, "write", str(out), "--seeds", args.seeds, *map(str, args.files)]
            subprocess.run(
                command + (["--big"] if args.big else []),
                check=True,
                env={**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{HERE}"},
            )
            with gzip.open(out, "rt", encoding="utf-8") as stream:
                results.append(json.load(stream))
    old, new = results
    differ = [name for name in old if old[name] != new.get(name)]
    for name in differ[:5]:
        print(f"DIFFERS: {name}")
        for way in old[name]:
            if old[name][way] != new[name][way]:
                print(f"  {way}:\n    old {str(old[name][way])[:2000]}\n    new {str(new[name][way])[:2000]}")
    print(f"{len(old)} inputs, {sum(len(r['lines']) for r in old.values())} kills; {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

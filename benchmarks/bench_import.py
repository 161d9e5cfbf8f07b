"""Benchmark of the import path against `grep -c 'Killed process'`, and of its write path
against a plain importer (`re` + `sqlite3.executemany`).

Writes a syslog of realistic noise with full OOM reports spread through it into a
temporary directory (removed afterwards), then times over it, median of --runs:
`grep -c`, the parser alone (parse.iter_kills, searching in one process and in two),
and the whole `watchdog-oom import` command as a user runs it (a new process, config, an
existing SQLite history, recording every kill; a big log is read by two processes where
there are two cores, each parsing a half, while the command's first process records).
Prints the wall and CPU seconds (a forked searcher's included), the ratios of each to
grep's, and the kill count each found (they must agree). On a shared machine the CPU
ratio is the steadier; with two processes the wall time drops while the CPU time does
not. The write path (--write-only: 100,000 minimal reports into a migrated history) times
`watchdog-oom import --quiet`, which records every kill and says the counts, as the plain
importer does, and `--format json`, which prints each record too; it prints, per run, each
of the quiet command's processes: when it was seen and its CPU seconds.

    python3 benchmarks/bench_import.py                  # ~1 GB, 5 runs
    python3 benchmarks/bench_import.py --size-mb 100 --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from watchdog_oom import parse  # noqa: E402
from watchdog_oom.parse import iter_kills  # noqa: E402

HOST = "web-01"
# Ordinary syslog lines, each template with its weight (systemd's "Killing process" and
# SIGHUP lines hold the words the scanner looks for without being OOM kills).
NOISE = {
    "sshd[{pid}]: Accepted publickey for deploy from 10.0.{a}.{b} port {port} ssh2: RSA SHA256:x{n}": 10,
    "sshd[{pid}]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)": 10,
    "CRON[{pid}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)": 10,
    "systemd[1]: Started Session {n} of User deploy.": 10,
    "kernel: [{up}] [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC=203.0.113.{a} DST=10.0.0.5 "
    "LEN=40 TOS=0x00 PREC=0x00 TTL=244 ID={n} PROTO=TCP SPT={port} DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0": 20,
    "dockerd[{pid}]: time=\"2024-06-03T10:00:00.{n}Z\" level=info msg=\"ignoring event\" "
    "container={n}abcdef module=libcontainerd namespace=moby topic=/tasks/delete type=\"*events.TaskDelete\"": 10,
    "nginx[{pid}]: 10.0.{a}.{b} - - \"GET /api/v1/items/{n} HTTP/1.1\" 200 {port} \"-\" \"curl/7.88.1\"": 40,
    "kubelet[{pid}]: I0603 10:00:00.{n} {pid} prober.go:107] \"Probe failed\" probeType=\"Readiness\" "
    "pod=\"default/api-{a}\"": 10,
    "postfix/smtpd[{pid}]: connect from unknown[198.51.100.{a}]": 10,
    "systemd[1]: session-{n}.scope: Killing process {pid} (sleep) with signal SIGKILL.": 0.2,
    "rsyslogd[{pid}]: imuxsock: Received SIGHUP, reopening files [v8.2112.0]": 0.05,
}

TEMPLATES, WEIGHTS = list(NOISE), list(NOISE.values())


def _stamp(second: int) -> str:
    day, hour, minute = 3 + second // 86400 % 20, second // 3600 % 24, second // 60 % 60
    return f"Jun {day:>2} {hour:02d}:{minute:02d}:{second % 60:02d}"


def noise_block(rng: random.Random, size: int, first_second: int) -> bytes:
    """About `size` bytes of syslog lines from the templates above."""
    lines, total, second = [], 0, first_second
    while total < size:
        second += rng.random() < 0.01
        fields = {"pid": rng.randint(300, 4_000_000), "a": rng.randint(0, 255), "b": rng.randint(1, 254),
                  "port": rng.randint(1024, 65535), "n": rng.randint(1, 10**6),
                  "up": f"{second:>8}.{rng.randint(0, 999999):06d}"}
        template = rng.choices(TEMPLATES, WEIGHTS)[0]
        line = f"{_stamp(second)} {HOST} {template.format(**fields)}\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()


def oom_report(rng: random.Random, second: int, victim: int, tasks: int = 300) -> bytes:
    """One 5.x global OOM report as rsyslog writes it: header to `Killed process`."""
    up = f"[{second:>8}.{rng.randint(0, 999999):06d}]"
    prefix = f"{_stamp(second)} {HOST} kernel: {up} "
    lines = [
        "java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
        f"CPU: 2 PID: {victim + 1} Comm: java Not tainted 5.15.0-91-generic #101-Ubuntu",
        "Call Trace:", " <TASK>", " dump_stack_lvl+0x4a/0x63", " dump_header+0x4a/0x1f4",
        " oom_kill_process.cold+0xb/0x10", " out_of_memory+0x106/0x2e0", " </TASK>",
        "Mem-Info:", "active_anon:1790129 inactive_anon:177312 isolated_anon:0",
        "Node 0 DMA free:15908kB min:132kB low:164kB high:196kB", "Free swap  = 0kB", "Total swap = 0kB",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    ]
    for pid in range(1000, 1000 + tasks):
        lines.append(f"[{pid:7d}]  1000 {pid:5d}   {rng.randint(1000, 90000):6d} {rng.randint(10, 9000):8d}"
                     f"   {rng.randint(4, 900) * 4096:8d}        0             0 worker-{pid % 17}")
    lines += [
        f"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
        f"task_memcg=/system.slice/app.service,task=java,pid={victim},uid=1000",
        f"Out of memory: Killed process {victim} (java) total-vm:8806332kB, anon-rss:6848016kB, "
        f"file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:14360kB oom_score_adj:0",
        f"oom_reaper: reaped process {victim} (java), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB",
    ]
    return "".join(prefix + line + "\n" for line in lines).encode()


def write_log(path: Path, size_mb: int, incidents: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    blocks = [noise_block(rng, 4 << 20, i * 3600) for i in range(8)]
    target = size_mb << 20
    report_at = sorted(rng.randrange(target) for _ in range(incidents))
    written, second = 0, 0
    with path.open("wb") as out:
        while written < target:
            block = blocks[rng.randrange(len(blocks))]
            out.write(block)
            written += len(block)
            second += 600
            while report_at and report_at[0] <= written:
                report_at.pop(0)
                report = oom_report(rng, second, victim=rng.randint(10_000, 99_999))
                out.write(report)
                written += len(report)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def time_grep(path: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds of `grep -c 'Killed process'`, and its count."""
    cpu, start = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(["grep", "-c", "Killed process", str(path)], capture_output=True, text=True)
    return time.perf_counter() - start, _cpu(resource.RUSAGE_CHILDREN) - cpu, int(done.stdout.strip() or 0)


def time_iter_kills(path: Path, workers: int) -> tuple[float, float, int]:
    """Wall and CPU seconds (this process and the searcher it forks) of parse.iter_kills."""
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with path.open("rb") as stream:
        count = sum(1 for _ in iter_kills(stream, f"import:{path}", workers=workers))
    wall = time.perf_counter() - start
    return wall, _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - cpu, count


def time_command(path: Path, tmp: str, run: int) -> tuple[float, float, int, float]:
    """The real command, `python -m watchdog_oom import PATH`, recording every kill into a
    copy of a history that exists already (migrating a new one is a one-off cost): wall
    and CPU seconds (all its processes), the kills it printed, its peak RSS in MiB."""
    template = Path(tmp) / "history-template.db"
    if not template.exists():
        from watchdog_oom.store import Store

        store = Store(f"sqlite:///{template}", HOST)
        store.upgrade()
        store.close()
    database = Path(tmp) / f"history-{run}.db"
    shutil.copyfile(template, database)
    config = Path(tmp) / f"config-{run}.yaml"
    config.write_text(f"database: sqlite:///{database}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seconds, rss, out, cpu = run_measured([sys.executable, "-m", "watchdog_oom", "-c", str(config), "import",
                                           "--format", "json", str(path)], env)
    database.unlink()
    return seconds, cpu, len(json.loads(out)), rss


def minimal_report(second: int, victim: int) -> str:
    """A complete minimal 5.x report: the header, the constraint line and the kill line."""
    prefix = f"{_stamp(second)} {HOST} kernel: [{second:>8}.{victim % 1000000:06d}] "
    lines = [
        "java invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
        f"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
        f"task_memcg=/system.slice/app.service,task=java,pid={victim},uid=1000",
        f"Out of memory: Killed process {victim} (java) total-vm:8806332kB, anon-rss:6848016kB, "
        f"file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:14360kB oom_score_adj:0",
    ]
    return "".join(prefix + line + "\n" for line in lines)


def write_kills_log(path: Path, kills: int) -> None:
    """`kills` minimal reports, 2 s apart, each its own victim."""
    with path.open("w") as out:
        for i in range(kills):
            out.write(minimal_report(2 * i, 100_000 + i))


# The plain reference: a regular expression over the kill lines and executemany into a
# table of the same fields (the history's own kills table), in one transaction.
PLAIN = r"""
import re, sqlite3, sys, time, resource
from datetime import datetime
path, db, host = sys.argv[1:4]
kill = re.compile(rb"^(\w{3} [ \d]\d \d\d:\d\d:\d\d) (\S+) kernel: \[ *[\d.]+\] Out of memory: Killed process "
                  rb"(\d+) \((.*?)\) total-vm:(\d+)kB, anon-rss:(\d+)kB, file-rss:(\d+)kB, shmem-rss:(\d+)kB, "
                  rb"UID:(\d+) pgtables:(\d+)kB oom_score_adj:(-?\d+)")
year = datetime.now().year
now = datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
def rows():
    with open(path, "rb") as f:
        for line in f:
            m = kill.match(line)
            if m:
                t = datetime.strptime(f"{year} " + m[1].decode(), "%Y %b %d %H:%M:%S")
                yield (host, t.strftime("%Y-%m-%d %H:%M:%S.%f"), int(m[3]), m[4].decode(), int(m[5]), int(m[6]),
                       int(m[7]), int(m[8]), int(m[9]), int(m[10]), int(m[11]), "kernel", "import:" + path, "{}",
                       now, 0)
con = sqlite3.connect(db)
con.executemany("INSERT INTO kills (host, time, pid, process, total_vm_kb, anon_rss_kb, file_rss_kb, shmem_rss_kb, "
                "uid, pgtables_kb, oom_score_adj, killer, source, details, recorded_at, cgroup_oom) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
con.commit()
print(con.execute("SELECT count(*) FROM kills").fetchone()[0])
"""


# Runs argv in a child of its own and writes that child's peak RSS (kB) and CPU seconds
# (with its own children's) to the file named by $BENCH_RUSAGE. The measured command must
# not be a child of this big process: Linux carries a parent's peak RSS at the fork into
# the child's figure, even across exec.
LAUNCHER = """import os, sys
pid = os.fork() or os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
with open(os.environ["BENCH_RUSAGE"], "w") as out:
    out.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(argv: list[str], env: dict[str, str] | None = None,
                 processes: list[tuple[float, float, float]] | None = None) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS in MiB (of the process and any child it waited for), stdout,
    and CPU seconds (user + system, children included). With `processes`, a list, each
    process of the command's tree is appended to it: from when and until when it was seen
    (seconds from the start, /proc read every 10 ms by a thread) and its CPU seconds."""
    start = time.perf_counter()
    handle, report = tempfile.mkstemp(prefix="bench-rusage-")
    os.close(handle)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER, *argv], stdout=subprocess.PIPE,
                                stderr=errors, env={**(env or os.environ), "BENCH_RUSAGE": report})
        done = threading.Event()
        watcher = _watch_tree(proc.pid, start, processes, done) if processes is not None else None
        out = proc.stdout.read() if proc.stdout else b""
        done.set()
        if watcher is not None:
            watcher.join()
        _, status = os.waitpid(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            said = errors.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{argv[:2]}… exited {proc.returncode}: {said}")
    wall = time.perf_counter() - start
    with open(report) as figures:
        maxrss, cpu = figures.read().split()
    os.unlink(report)
    return wall, int(maxrss) / 1024, out.decode(), float(cpu)


def _watch_tree(launcher: int, start: float, processes: list[tuple[float, float, float]],
                done: threading.Event) -> threading.Thread:
    """A thread that reads /proc every 10 ms until `done`: each process below `launcher` (the
    command, its reading child, the second reader), when it was first and last seen and its
    CPU seconds then; appended to `processes` at the end, in the order they were seen."""
    tick = os.sysconf("SC_CLK_TCK")
    seen: dict[int, tuple[float, float, float]] = {}

    def children(pid: int) -> list[int]:
        try:
            return [int(child) for task in os.listdir(f"/proc/{pid}/task")
                    for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            return []

    def watch() -> None:
        while not done.wait(0.01):
            now = time.perf_counter() - start
            todo = children(launcher)
            while todo:
                pid = todo.pop()
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                seen[pid] = (seen.get(pid, (now,))[0], now, (int(fields[11]) + int(fields[12])) / tick)
                todo += children(pid)
        processes.extend(sorted(seen.values()))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def write_path(kills: int, runs: int, tmp: str) -> None:
    """`watchdog-oom import` of `kills` minimal reports into an existing history, against
    the plain importer, each a new process on a fresh copy of the same migrated database."""
    from watchdog_oom.store import Store

    log = Path(tmp) / "kills.log"
    write_kills_log(log, kills)
    template = Path(tmp) / "write-template.db"
    store = Store(f"sqlite:///{template}", HOST)
    store.upgrade()
    store.close()  # the last connection folds the WAL into the file that is copied
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results: dict[str, list[tuple[float, float, int, float]]] = {"plain": [], "ours": [], "printing": []}
    trees: list[list[tuple[float, float, float]]] = []
    load = _load()
    for run in range(runs):
        for mode in ("plain", "ours", "printing"):
            database = Path(tmp) / f"write-{mode}-{run}.db"
            shutil.copyfile(template, database)
            if mode == "plain":
                argv = [sys.executable, "-c", PLAIN, str(log), str(database), HOST]
                seconds, rss, out, cpu = run_measured(argv)
                count = int(out.strip())
            else:
                config = Path(tmp) / "write-config.yaml"
                config.write_text(f"host: {HOST}\ndatabase: sqlite:///{database}\n")
                # ours: recording alone, as the plain importer does (--quiet: the counts said, no kill
                # printed); printing: each kill's record printed too (--format json, 95 MB here)
                printing = mode == "printing"
                argv = [sys.executable, "-m", "watchdog_oom", "-c", str(config), "import",
                        *(["--format", "json"] if printing else ["--quiet"]), str(log)]
                if not printing:
                    trees.append([])
                seconds, rss, out, cpu = run_measured(argv, env, None if printing else trees[-1])
                if printing:
                    count = len(json.loads(out))
                else:  # what it recorded
                    with contextlib.closing(sqlite3.connect(database)) as conn:
                        count = conn.execute("SELECT count(*) FROM kills").fetchone()[0]
            results[mode].append((seconds, rss, count, cpu))
            database.unlink()
    print(f"\nwrite path: {kills:,} minimal reports ({log.stat().st_size / 1e6:.0f} MB), each run a new process "
          f"on a fresh copy of a migrated history; median of {runs}; load average before {load}, after {_load()}")
    for mode, label in (("plain", "plain re + sqlite3.executemany"), ("ours", "watchdog-oom import --quiet"),
                        ("printing", "watchdog-oom import --format json")):
        seconds = statistics.median(r[0] for r in results[mode])
        cpu = statistics.median(r[3] for r in results[mode])
        print(f"  {label:<36} {seconds:6.2f} s wall, {cpu:6.2f} s CPU  peak RSS "
              f"{max(r[1] for r in results[mode]):4.0f} MiB  {results[mode][0][2]:,} kills")
    ratios = [statistics.median(r[i] for r in results["ours"]) / statistics.median(r[i] for r in results["plain"])
              for i in (0, 3)]
    print(f"  ratio ours/plain: {ratios[0]:.2f} wall, {ratios[1]:.2f} CPU (--quiet: recording alone, as the plain "
          "importer records)")
    printed = [statistics.median(r[i] for r in results["printing"]) / statistics.median(r[i] for r in results["plain"])
               for i in (0, 3)]
    print(f"  ratio printing/plain: {printed[0]:.2f} wall, {printed[1]:.2f} CPU (--format json: each record printed "
          "too)")
    names = ("the recording parent", "the reading child", "the second reader")
    for run, tree in enumerate(trees):
        print(f"  run {run + 1}, its processes (seen from-until s, CPU s): "
              + "; ".join(f"{names[n] if n < len(names) else 'another'} {first:.2f}-{last:.2f}, {cpu:.2f}"
                          for n, (first, last, cpu) in enumerate(tree)))
    split_write_path(log, template, runs, tmp)
    parser_per_kill(min(kills, 20_000), runs, tmp)


def split_write_path(log: Path, template: Path, runs: int, tmp: str) -> None:
    """Where the command's time goes, in this process: the readers' work (the parse of the
    log and the batches packed as they send them, import_wire.Packer; and the packing
    alone, of the kills parsed before), and the recording parent's: the packed batches
    written as it writes them (batch_import.import_columns: one look-up and a few inserts a batch,
    in a transaction of its own), the same rows by batch_import.import_rows (the way of a batch
    not all new), against executemany of the same kills into the same table, and the
    records printed as JSON from the packed texts."""
    import io
    import sqlite3
    from datetime import datetime, timezone

    from watchdog_oom.cli.import_logs import BATCH, Filing, _events, _Filed
    from watchdog_oom.cli.import_wire import Printer
    from watchdog_oom.store import Store
    from watchdog_oom.store.batch_import import import_columns, import_rows
    from watchdog_oom.store.rows import COLUMNS

    def read_all() -> list[Any]:
        events = _events([str(log)], Filing(forced=None, local=HOST), io.StringIO())
        return [payload for kind, _, payload in events if kind == "kills"]

    read_s = statistics.median(_timed(read_all) for _ in range(runs))
    packed = read_all()
    rows = [row for batch in packed for row in batch.rows()]
    batches = [rows[at:at + BATCH] for at in range(0, len(rows), BATCH)]
    filed = _Filed(str(log), Filing(forced=None, local=HOST), True)
    with log.open("rb") as stream:
        kills = list(iter_kills(stream, filed.source, year=filed.year))
    pack_s = statistics.median(_timed(lambda: [filed.pack(kills[at:at + BATCH]) for at in range(0, len(kills), BATCH)])
                               for _ in range(runs))
    # The command holds a batch of rows at a time, this process all of them: frozen, they
    # are left out of the garbage collector's passes, which would otherwise walk them all
    # again and again while either contender writes.
    gc.freeze()
    now = datetime.now(timezone.utc)
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    plain_columns = ("pid", "process", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb", "uid",
                     "pgtables_kb", "oom_score_adj", "killer", "source")
    at = [COLUMNS.index(name) for name in plain_columns]
    host, time, details, cgroup_oom = (COLUMNS.index(name) for name in ("host", "time", "details", "cgroup_oom"))

    def ours() -> tuple[float, float, float]:
        database = Path(tmp) / "split-ours.db"
        times = []
        for write in (lambda store: [import_columns(store, batch.names, batch.columns, len(batch), now)
                                     for batch in packed],
                      lambda store: [import_rows(store, batch, now) for batch in batches]):
            shutil.copyfile(template, database)
            store = Store(f"sqlite:///{database}", HOST)
            store.at_head()  # connected, as the command is before it records
            times.append(_timed(lambda store=store, write=write: write(store)))
            store.close()
        printer = Printer("json", io.StringIO())
        ids = [range(at, at + len(batch)) for at, batch in zip(range(1, len(rows) + 1, BATCH), packed, strict=True)]
        printing = _timed(lambda: [printer.add_texts(kill_ids, batch.texts) for kill_ids, batch in zip(ids, packed,
                                                                                                       strict=True)])
        return times[0], times[1], printing

    def plain() -> float:
        database = Path(tmp) / "split-plain.db"
        shutil.copyfile(template, database)
        con = sqlite3.connect(database)

        def write() -> None:
            con.executemany(
                "INSERT INTO kills (host, time, pid, process, total_vm_kb, anon_rss_kb, file_rss_kb, shmem_rss_kb, "
                "uid, pgtables_kb, oom_score_adj, killer, source, details, recorded_at, cgroup_oom) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((row[host], row[time].astimezone(timezone.utc).strftime(stamp), *(row[i] for i in at),
                  json.dumps(row[details]), now.strftime(stamp), int(row[cgroup_oom])) for row in rows))
            con.commit()
        seconds = _timed(write)
        con.close()
        return seconds

    results = [(*ours(), plain()) for _ in range(runs)]  # interleaved: both see the same moments of load
    prepared_s, rows_s, printing_s, plain_s = (statistics.median(result[i] for result in results) for i in range(4))
    print(f"  of which, in one process (CPU s): reading (parse and packing the batches) {read_s:.2f}, of which "
          f"packing {pack_s:.2f} ({pack_s / len(rows) * 1e6:.1f} µs a kill; the readers' work); "
          f"writing {len(rows):,} rows: as prepared (batch_import.import_columns, the "
          f"command's way for new kills) {prepared_s:.2f}, batch_import.import_rows {rows_s:.2f}, "
          f"executemany {plain_s:.2f}, "
          f"ratio {prepared_s / plain_s:.2f} and {rows_s / plain_s:.2f}; printing them as JSON {printing_s:.2f}")


def _timed(run: Any) -> float:
    """CPU seconds of `run()` in this process: on a shared machine, steadier than wall time."""
    start = time.process_time()
    run()
    return time.process_time() - start


REAL_REPORT = ROOT / "tests" / "data" / "oom_logs" / "12_rhel6-2.6.32_messages_full-event-oom_adj.log"


def parser_per_kill(kills: int, runs: int, tmp: str) -> None:
    """The parser alone (parse.iter_kills, CPU in this process) per kill: on minimal reports,
    on full 5.x reports with a 300-row task table, and on a real RHEL 6 report (its whole
    event: task table, memory state, call trace) repeated."""
    minimal, full, real = Path(tmp) / "per-kill-minimal.log", Path(tmp) / "per-kill-full.log", Path(tmp) / "real.log"
    write_kills_log(minimal, kills)
    full.write_bytes(b"".join(oom_report(random.Random(i), 100 * i, 10_000 + i) for i in range(200)))
    real.write_bytes(REAL_REPORT.read_bytes() * 20)
    figures = []
    for path in (minimal, full, real):
        found: list[int] = []

        def parse(path: Path = path, found: list[int] = found) -> None:
            with path.open("rb") as stream:
                found.append(sum(1 for _ in iter_kills(stream, "import:bench", year=2026)))

        seconds = statistics.median(_timed(parse) for _ in range(runs))
        figures.append(f"{seconds / found[0] * 1e6:,.0f} µs ({found[0]:,} kills)")
    print(f"  parser alone, CPU per kill, median of {runs}: minimal reports {figures[0]}; full reports "
          f"(300-row task table) {figures[1]}; a real RHEL 6 report ({REAL_REPORT.name}) {figures[2]}")


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated log (default 1024)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--incidents", type=int, default=36, help="OOM reports spread through the log")
    parser.add_argument("--write-kills", type=int, default=100_000,
                        help="kills of the write-path part (default 100000; 0 skips it)")
    parser.add_argument("--write-only", action="store_true", help="run only the write-path part")
    args = parser.parse_args(argv)
    if args.write_only:
        with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
            write_path(args.write_kills, args.runs, tmp)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        path = Path(tmp) / "syslog"
        write_log(path, args.size_mb, args.incidents)
        search = "bytearray.find" if parse._find is parse._python_find else "libc strstr, memmem"
        print(f"log: {path.stat().st_size / 1e6:.0f} MB, {args.incidents} OOM reports; search: {search}; "
              f"load average before: {_load()}")
        time_grep(path)  # warm the page cache
        grep, one, two, command = [], [], [], []
        for run in range(args.runs):  # interleaved: each contender sees the same moments of load
            grep.append(time_grep(path))
            one.append(time_iter_kills(path, workers=1))
            two.append(time_iter_kills(path, workers=2))
            command.append(time_command(path, tmp, run))
    grep_wall, grep_cpu = (statistics.median(r[i] for r in grep) for i in (0, 1))
    print(f"median of {args.runs}; load average after: {_load()}")
    label = "grep -c 'Killed process'"
    print(f"  {label:<34} {grep_wall:6.3f} s wall {grep_cpu:6.3f} s CPU  {grep[0][2]} kills")
    for label, results in (("parse.iter_kills, 1 process", one), ("parse.iter_kills, 2 processes", two),
                           ("watchdog-oom import (all)", command)):
        wall, cpu = (statistics.median(r[i] for r in results) for i in (0, 1))
        rss = f"  peak RSS {max(r[3] for r in results):.0f} MiB" if len(results[0]) > 3 else ""
        print(f"  {label:<34} {wall:6.3f} s wall {cpu:6.3f} s CPU  {results[0][2]} kills   "
              f"{wall / grep_wall:.2f}x grep wall, {cpu / grep_cpu:.2f}x grep CPU{rss}")
    if not grep[0][2] == one[0][2] == two[0][2] == command[0][2]:
        print("KILL COUNTS DISAGREE", file=sys.stderr)
        return 1
    if args.write_kills:
        with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
            write_path(args.write_kills, args.runs, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())

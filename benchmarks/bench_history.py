"""The history at scale: query times over a big database, and its size after a year.

Part 1 builds a database of --samples samples (10-second samples of --hosts hosts, ending
now), --kills kills (spread over the past year, each with the task table and memory state
a kernel report carries) and the last two days of 10-second readings of --cgroups cgroups
of host h0 (what the default retention keeps raw), then times each history command and the
7-day HTML report as a user runs them (a new `python3 -m watchdog_oom` process, output to
/dev/null), beside the database's own command line tool answering the same questions
(`sqlite3`, and `psql` on PostgreSQL) and beside Python importing the command's libraries
(pyyaml, SQLAlchemy, the dialect it loads for the URL and the driver), in --runs rounds in
which each runs once in turn: a moment's load on a shared machine falls on all alike. The
figure is the median over rounds of what the command spends beyond its libraries' import
(the issue's bar: at most 3x the CLI, or 0.15 s where the CLI needs next to nothing), by
CPU time, the steadier on a shared machine. --compare TREE runs another checkout's commands
(main, say) in the same rounds, for a before and after measured side by side; it must know
the schema revision ours migrates the database to (an older checkout refuses a newer
database, as Alembic does). Python's
bytecode is cached (in the temporary directory) for ours and the libraries alike, as it is
for an installed package.

SQLite runs in a temporary directory (or --database PATH, built there once and reused).
PostgreSQL runs on --postgres URL (a database the user may create tables in), else on a
throwaway server started as the test suite starts one (tests/pgserver.py), where the
PostgreSQL binaries and psycopg are installed; --no-postgres skips it.

Part 2 estimates the database file of one host after --days (365) at default settings:
10-second samples, downsampled by `Store.prune` as the daemon does (raw for 2 days,
5-minute means to 7 days, hourly means after) and deleted after retention.samples, 30d
by default and then 365d; --kills-per-day kills with their task table, --alerts-per-day
alert episodes with two notifications each.

    python3 benchmarks/bench_history.py [--samples 1000000] [--kills 100000] [--runs 5] [--days 365]
        [--only report,summary] [--database PATH] [--postgres URL | --no-postgres] [--compare TREE]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from watchdog_oom.model import Alert, OomKill, TaskRow  # noqa: E402
from watchdog_oom.store import Store, counts  # noqa: E402
from watchdog_oom.store.tables import cgroup_samples as cgroup_table  # noqa: E402
from watchdog_oom.store.tables import kills as kills_table  # noqa: E402
from watchdog_oom.store.tables import samples as samples_table  # noqa: E402

PROCESSES = ["java", "python3", "node", "postgres", "mysqld", "chrome", "ruby", "php-fpm", "dotnet", "gunicorn",
             "celery", "redis-server", "elasticsearch", "kafka", "clickhouse", "ffmpeg", "gcc", "cc1plus", "rustc",
             "ld", "make", "bash", "perl", "beam.smp", "mongod"]
CGROUPS = ["/system.slice/app.service", "/system.slice/db.service", "/user.slice/user-1000.slice",
           "/kubepods.slice/kubepods-burstable.slice/pod1234", "/docker/5f0c9b1e2d7a"]
CHUNK = 20_000
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime stores a (UTC) time in SQLite
# What a kernel report adds to a kill: the biggest tasks and the memory state (as in part 2).
TASK_TABLE = [TaskRow(pid=2000 + i, uid=1000, tgid=2000 + i, total_vm_kb=900_000, rss_kb=300_000 - i,
                      pgtables_kb=900, swapents=0, oom_score_adj=0, name=PROCESSES[i]).to_dict() for i in range(10)]
MEMORY_INFO = [f"Node 0 Normal free:{i * 1024}kB boost:0kB min:67584kB low:84480kB high:101376kB "
               f"reserved_highatomic:0KB active_anon:{i}kB" for i in range(24)]
# The libraries a history command loads before its first query, per engine: pyyaml, SQLAlchemy,
# the dialect SQLAlchemy loads for the URL and its DBAPI driver.
LIBRARIES = {"sqlite": "yaml, sqlalchemy, sqlalchemy.dialects.sqlite, sqlite3",
             "postgresql": "yaml, sqlalchemy, sqlalchemy.dialects.postgresql.psycopg, psycopg"}
# The report's chart and sparklines: the slices the store reduces samples to (report.py).
CHART_POINTS, SPARK_POINTS = 2000, 240


def median_seconds(run: Callable[[], Any], runs: int) -> float:
    run()  # warm: imports, page cache, statement caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sample_row(host: str, t: datetime, rng: random.Random, resolution: int = 0) -> dict[str, Any]:
    committed = rng.randint(6_000_000, 17_000_000)
    available = rng.randint(200_000, 9_000_000)
    return dict(host=host, time=t, resolution=resolution, mem_total_kb=16_000_000, mem_available_kb=available,
                swap_total_kb=2_000_000, swap_free_kb=1_500_000, committed_as_kb=committed,
                commit_limit_kb=10_000_000, commit_percent=round(committed * 100 / 18_000_000, 2),
                commit_limit_percent=round(committed * 100 / 10_000_000, 2),
                mem_available_percent=round(available * 100 / 16_000_000, 2), psi_some_avg10=0.5,
                psi_full_avg10=0.1, overcommit_memory=0)


def kill_row(host: str, t: datetime, pid: int, rng: random.Random) -> dict[str, Any]:
    process = PROCESSES[min(int(rng.paretovariate(1.2)) - 1, len(PROCESSES) - 1)]
    return dict(host=host, boot_id="b" * 36, time=t, mono_usec=pid * 1000, pid=pid, process=process, uid=1000,
                total_vm_kb=9_000_000, anon_rss_kb=rng.randint(100_000, 8_000_000), file_rss_kb=1200,
                shmem_rss_kb=0, pgtables_kb=9000, oom_score_adj=0, constraint="CONSTRAINT_NONE",
                memcg=None, task_memcg=rng.choice(CGROUPS), cgroup_oom=False, invoker=process, invoker_pid=pid,
                gfp_mask="0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP)", alloc_order=0, killer="kernel",
                source="kmsg", cmdline=f"/usr/bin/{process} --workers 8 --config /etc/{process}.conf",
                unit="app.service",
                details={"task_table": TASK_TABLE, "memory_info": MEMORY_INFO, "extra": {}}, recorded_at=t)


def cgroup_rows(host: str, now: datetime, cgroups: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Two days of 10-second readings of `cgroups` cgroups with a limit: what the daemon keeps raw."""
    paths = [f"/kubepods.slice/kubepods-burstable.slice/pod{i:04d}" for i in range(cgroups)]
    for step in range(2 * 8640, 0, -1):
        t = now - timedelta(seconds=10 * step)
        for n, path in enumerate(paths):
            percent = rng.uniform(20, 60 + 3 * n)
            yield dict(host=host, time=t, resolution=0, path=path, name=f"pod{n:04d} (pod)", kind="pod",
                       limit_bytes=1 << 30, high_bytes=None, usage_bytes=int(percent * (1 << 30) / 100),
                       working_set_bytes=int(percent * (1 << 30) / 100), working_set_percent=round(percent, 2),
                       oom_kill=0)


def build(url: str, samples: int, kills: int, hosts: int, cgroups: int, now: datetime) -> float:
    """The big database: 10-second samples per host ending now, kills over the past year,
    two days of cgroup readings of the first host."""
    start = time.perf_counter()
    store = Store(url, "h0")
    store.upgrade()
    rng = random.Random(7)
    per_host = samples // hosts
    sample_rows = (sample_row(f"h{h}", now - timedelta(seconds=10 * (per_host - i)), rng)
                   for h in range(hosts) for i in range(per_host))
    kill_rows = (kill_row(f"h{k % hosts}", now - timedelta(seconds=rng.uniform(0, 365 * 86400)), 1000 + k, rng)
                 for k in range(kills))
    with store.engine.begin() as conn:
        for table, rows in ((samples_table, sample_rows), (kills_table, kill_rows),
                            (cgroup_table, cgroup_rows("h0", now, cgroups, rng))):
            while chunk := list(itertools.islice(rows, CHUNK)):
                conn.execute(insert(table), chunk)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    store.close()
    return time.perf_counter() - start


Run = tuple[float, float]  # one process's wall time and CPU time (user + system), in seconds


def run_once(argv: list[str], env: dict[str, str] | None = None) -> Run:
    """One process, its output thrown away. On a shared machine the CPU time is the steadier
    figure: waiting for a core is not work the command does."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} exited {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def side_by_side(commands: list[tuple[list[str], dict[str, str] | None]], runs: int) -> list[list[Run]]:
    """Each command's runs, measured in rounds: every command once, untimed (page cache,
    bytecode), then `runs` rounds in which each runs once in turn, so that a moment's load
    on a shared machine falls on all of them alike."""
    for argv, env in commands:
        run_once(argv, env)
    rounds = [[run_once(argv, env) for argv, env in commands] for _ in range(runs)]
    return [list(column) for column in zip(*rounds, strict=True)]


def medians(runs: list[Run]) -> Run:
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def beyond(ours: list[Run], base: list[Run]) -> Run:
    """The median, over rounds, of what a command took beyond the libraries' import in its round."""
    return medians([(max(o[0] - b[0], 0.0), max(o[1] - b[1], 0.0)) for o, b in zip(ours, base, strict=True)])


def sqlite_cli(path: str) -> Callable[[list[str]], list[str]]:
    """The sqlite3 command line tool answering the same queries (`-batch`, no ~/.sqliterc)."""
    return lambda statements: ["sqlite3", "-batch", "-init", "/dev/null", path, *statements]


def psql_cli(url: str) -> Callable[[list[str]], list[str]]:
    """psql answering the same queries (no ~/.psqlrc, unaligned), in a UTC session as ours."""
    psql = shutil.which("psql") or max(glob.glob("/usr/lib/postgresql/*/bin/psql"), default="psql")
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    return lambda statements: [psql, "-X", "-q", "-A", "-d", plain, "-c", "SET TIME ZONE 'UTC'",
                               *itertools.chain.from_iterable(("-c", s) for s in statements)]


def cases(dialect: str, now: datetime, output: Path) -> list[tuple[str, list[str], list[str]]]:
    """(name, our arguments, the statements a user of the database's CLI would run for the same)."""
    fmt = SQLITE_TIME if dialect == "sqlite" else SQLITE_TIME + "+00"
    week, day, until = ((now - timedelta(days=d)).strftime(fmt) for d in (7, 1, 0))
    start, span = int((now - timedelta(days=7)).timestamp()), 7 * 86400 + 1

    def slice_of(slices: int) -> str:
        if dialect == "sqlite":
            return f"(CAST(strftime('%s', time) AS INTEGER) - {start}) * {slices} / {span}"
        return f"floor((extract(epoch FROM time) - {start}) * {slices} / {span})"

    order = "ORDER BY time DESC NULLS LAST, id DESC"
    kills_sql = "SELECT * FROM kills"
    glob_java = ("process >= 'java' AND process < 'javb' AND process LIKE 'java%'" if dialect == "sqlite"
                 else "process LIKE 'java%'")
    h0_week = f"host = 'h0' AND time >= '{week}' AND time <= '{until}'"
    return [
        ("history kills --limit 20", ["history", "kills", "--limit", "20"], [f"{kills_sql} {order} LIMIT 20"]),
        ("history kills --process 'java*' --limit 50", ["history", "kills", "--process", "java*", "--limit", "50"],
         [f"{kills_sql} WHERE {glob_java} {order} LIMIT 50"]),
        ("history kills --since 7d --process java", ["history", "kills", "--since", "7d", "--process", "java"],
         [f"{kills_sql} WHERE time >= '{week}' AND process = 'java' {order}"]),
        ("history kills --host h3 --limit 50", ["history", "kills", "--host", "h3", "--limit", "50"],
         [f"{kills_sql} WHERE host = 'h3' {order} LIMIT 50"]),
        ("history samples --since 24h --host h0", ["history", "samples", "--since", "24h", "--host", "h0"],
         [f"SELECT * FROM samples WHERE host = 'h0' AND time >= '{day}' ORDER BY time DESC, id DESC"]),
        ("history alerts --limit 50", ["history", "alerts", "--limit", "50"],
         ["SELECT * FROM alerts ORDER BY started_at DESC, id DESC LIMIT 50"]),
        ("history notifications --limit 50", ["history", "notifications", "--limit", "50"],
         ["SELECT * FROM notifications ORDER BY created_at DESC, id DESC LIMIT 50"]),
        ("history summary", ["history", "summary"],
         ["SELECT process, count(*) FROM kills GROUP BY process ORDER BY 2 DESC",
          "SELECT coalesce(task_memcg, memcg), count(*) FROM kills GROUP BY 1 ORDER BY 2 DESC",
          "SELECT substr(CAST(time AS VARCHAR), 1, 10), count(*) FROM kills GROUP BY 1 ORDER BY 2 DESC"]),
        # The chart's samples and each cgroup's sparkline reduced to the slices drawn, the
        # kills marked, the kills and alerts tabled.
        ("report --since 7d (host h0)", ["report", "--since", "7d", "--output", str(output)],
         [f"SELECT min(time), max(commit_percent), max(commit_limit_percent), min(mem_available_percent), "
          f"max(resolution), count(*) FROM samples WHERE {h0_week} GROUP BY {slice_of(CHART_POINTS)} ORDER BY 1",
          f"SELECT time, pid, process, killer, anon_rss_kb, task_memcg, memcg FROM kills WHERE {h0_week} "
          "ORDER BY time, id",
          f"{kills_sql} WHERE {h0_week} {order} LIMIT 1000",
          f"SELECT * FROM alerts WHERE host = 'h0' AND started_at <= '{until}' "
          f"AND (resolved_at IS NULL OR resolved_at >= '{week}') ORDER BY started_at DESC, id DESC LIMIT 1000",
          f"SELECT path, min(time), max(working_set_percent), max(time) FROM cgroup_samples WHERE {h0_week} "
          f"AND path IN (SELECT path FROM cgroup_samples WHERE {h0_week} GROUP BY path "
          f"ORDER BY max(working_set_percent) DESC LIMIT 10) GROUP BY path, {slice_of(SPARK_POINTS)} "
          "ORDER BY 1, 2"]),
    ]


def measure(label: str, url: str, cli: Callable[[list[str]], list[str]], args: argparse.Namespace,
            tmp: Path, now: datetime, libraries: str) -> None:
    """Each history command as a user runs it on `url`, against the database's CLI answering the
    same, and against the libraries' import, side by side (and against --compare's checkout)."""
    config = tmp / f"config-{label}.yaml"
    config.write_text(f"host: h0\ndatabase: {url}\n")
    trees = {"ours": ROOT, **({"compared": Path(args.compare).resolve()} if args.compare else {})}
    env = {name: python_env(tree, tmp / f"pycache-{name}") for name, tree in trees.items()}
    ours = {name: [sys.executable, "-m", "watchdog_oom", "-c", str(config)] for name in trees}
    # What every command pays before its first query: the interpreter and its libraries.
    base = [sys.executable, "-c", f"import {libraries}"]
    plain = medians(side_by_side([([sys.executable, "-c", "import yaml, sqlalchemy"], env["ours"])], args.runs)[0])
    print(f"\n{label}: median of {args.runs} rounds, each command a new process in every round; ms of wall time / "
          f"of CPU time. 'beyond': ours less python3 importing {libraries} in the same round (yaml and "
          f"sqlalchemy alone: {plain[0] * 1e3:.0f} / {plain[1] * 1e3:.0f} ms); load average "
          f"{Path('/proc/loadavg').read_text().split()[0]}")
    if not url.startswith("sqlite"):
        print("CPU time is the client's alone, ours and psql's: the server's work is in neither (wall time has it)")
    compared = f"{'compared':>11}{'change':>9}" if args.compare else ""
    print(f"{'command':<44}{'libs':>11}{'ours':>11}{'beyond':>11}{'CLI':>11}{'ratio':>13}  within (CPU){compared}")
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    for name, argv, statements in cases(dialect, now, tmp / "report.html"):
        if args.only and not any(word in name for word in args.only.split(",")):
            continue
        commands = [(base, env["ours"]), (cli(statements), {**os.environ, "PGTZ": "UTC"}),
                    *(([*ours[tree], *argv], env[tree]) for tree in trees)]
        base_t, cli_t, ours_t, *others = side_by_side(commands, args.runs)
        past = beyond(ours_t, base_t)
        ratio = [b / max(c, 1e-3) for b, c in zip(past, medians(cli_t), strict=True)]
        ok = ratio[1] <= 3 or past[1] <= 0.15
        line = (f"{name:<44}{pair(medians(base_t)):>11}{pair(medians(ours_t)):>11}{pair(past):>11}"
                f"{pair(medians(cli_t)):>11}{pair(ratio, 1, '.1f'):>13}  {'yes' if ok else 'NO':<12}")
        if others:
            then = beyond(others[0], base_t)
            line += f"{pair(then):>11}{(past[1] - then[1]) * 1e3:>+8.0f}"
        print(line, flush=True)
    store = Store(url, "h0")
    metrics = median_seconds(lambda: (counts.kill_totals(store, "h0", now - timedelta(days=1)),
                                      counts.alert_counts(store, "h0"), counts.outbox_backlog(store)), args.runs)
    print(f"/metrics' database reads (kills since start, alerts, outbox), in the daemon: {metrics * 1e3:.1f} ms")
    store.close()


def python_env(tree: Path, pycache: Path) -> dict[str, str]:
    """The environment of a command run from `tree`, its bytecode cached as for an installed
    package (in the temporary directory, not the tree)."""
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPATH": str(tree), "PYTHONPYCACHEPREFIX": str(pycache)}


def pair(values: Any, scale: float = 1e3, fmt: str = ".0f") -> str:
    return f"{values[0] * scale:{fmt}}/{values[1] * scale:{fmt}}"


def describe(url: str, args: argparse.Namespace, built: float | None) -> None:
    where = url.rsplit("@", 1)[-1]
    how = f"built in {built:.0f} s" if built is not None else "reused"
    print(f"database {where}: {args.samples:,} samples ({args.hosts} hosts, 10 s apart), {args.kills:,} kills over "
          f"a year, {args.cgroups * 2 * 8640:,} cgroup readings; {how}")


def part1(args: argparse.Namespace, tmp: Path) -> None:
    """Each history command as a user runs it, against sqlite3 (and psql) answering the same."""
    path = args.database or str(tmp / "big.db")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    built = None
    if not os.path.exists(path):
        built = build(f"sqlite:///{path}", args.samples, args.kills, args.hosts, args.cgroups, now)
    else:  # reused: its samples end when it was built
        with contextlib.closing(sqlite3.connect(path)) as con:
            newest = con.execute("SELECT max(time) FROM samples").fetchone()[0]
        now = datetime.strptime(newest, SQLITE_TIME).replace(tzinfo=timezone.utc)
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    describe(f"sqlite:///{path}", args, built)
    print(f"SQLite file: {size / 2**20:.0f} MiB")
    measure("SQLite", f"sqlite:///{path}", sqlite_cli(path), args, tmp, now, LIBRARIES["sqlite"])
    if args.no_postgres:
        return
    with postgres(args.postgres) as url:
        if url is None:
            return
        now = datetime.now(timezone.utc).replace(microsecond=0)
        built = build(url, args.samples, args.kills, args.hosts, args.cgroups, now)
        describe(url, args, built)
        measure("PostgreSQL", url, psql_cli(url), args, tmp, now, LIBRARIES["postgresql"])


@contextlib.contextmanager
def postgres(given: str | None) -> Iterator[str | None]:
    """A database on the given PostgreSQL, else on a throwaway server started as the tests
    start theirs; None (and why) where there is none."""
    if given:
        yield given
        return
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import pgserver
        import pytest
    except ImportError as exc:
        print(f"\nPostgreSQL: skipped ({exc})")
        yield None
        return
    server = pgserver.pg_server()
    try:
        url = next(server)
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:
        print(f"\nPostgreSQL: skipped ({exc})")
        yield None
        return
    try:
        database = pgserver.fresh_database(url)
        yield next(database)
        with contextlib.suppress(StopIteration):
            next(database)  # dropped
    finally:
        with contextlib.suppress(StopIteration):
            next(server)  # stopped


def simulate_year(path: str, days: int, samples_retention_days: int, kills_per_day: int,
                  alerts_per_day: int) -> dict[str, float]:
    """A host's history after `days`, pruned once a simulated day as the daemon's hourly job does
    (day boundaries are whole hours and 5-minute slots, so the means come out the same)."""
    store = Store(f"sqlite:///{path}", "web-01")
    store.upgrade()
    rng = random.Random(3)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    pid = 1000
    task_table = tuple(TaskRow(pid=2000 + i, uid=1000, tgid=2000 + i, total_vm_kb=900_000, rss_kb=300_000 - i,
                               pgtables_kb=900, swapents=0, oom_score_adj=0, name=PROCESSES[i]) for i in range(10))
    memory_info = tuple(f"Node 0 Normal free:{i * 1024}kB boost:0kB min:67584kB low:84480kB high:101376kB "
                        f"reserved_highatomic:0KB active_anon:{i}kB" for i in range(24))
    for day in range(days):
        day_start = start + timedelta(days=day)
        with store.engine.begin() as conn:
            conn.execute(insert(samples_table), [sample_row("web-01", day_start + timedelta(seconds=10 * i), rng)
                                          for i in range(8640)])
        with store.tx() as tx:
            for _ in range(kills_per_day):
                pid += 1
                t = day_start + timedelta(seconds=rng.uniform(0, 86400))
                tx.add_kill(OomKill(pid=pid, process=rng.choice(PROCESSES), time=t, mono_usec=pid, boot_id="b",
                                    uid=1000, anon_rss_kb=3_000_000, constraint="CONSTRAINT_NONE",
                                    task_memcg=rng.choice(CGROUPS), invoker="java", source="kmsg",
                                    cmdline="/usr/bin/java -Xmx8g -jar /srv/app.jar", task_table=task_table,
                                    memory_info=memory_info), t)
            for n in range(alerts_per_day):
                t = day_start + timedelta(hours=24 * n / alerts_per_day)
                alert = Alert(key="commit", kind="commit.warning", severity="warning",
                              summary="%commit 93.1% of RAM+swap (Committed_AS 16.8 GiB)", time=t)
                row, _ = tx.fire_alert(alert)
                fired = tx.enqueue(channel="ops", kind=alert.kind, severity="warning", reason="first",
                                   summary=alert.summary, data={"alert": alert.summary}, now=t, alert_id=row.id)
                done = tx.resolve_alert(Alert(key="commit", kind="commit.resolved", severity="warning",
                                              summary="resolved", time=t + timedelta(minutes=20), resolved=True))
                resolved = tx.enqueue(channel="ops", kind="commit.resolved", severity="info", reason="resolved",
                                      summary="resolved", data={}, now=t, alert_id=done.id)
                fired.status = resolved.status = "sent"
        store.prune(day_start + timedelta(days=1), samples=samples_retention_days * 86400.0, kills=400 * 86400.0,
                    alerts=400 * 86400.0, notifications=90 * 86400.0, raw_samples=2 * 86400.0)
    with store.engine.connect() as conn:
        counts = {res: conn.exec_driver_sql(f"SELECT count(*) FROM samples WHERE resolution = {res}").scalar()
                  for res in (0, 300, 3600)}
        kills = conn.exec_driver_sql("SELECT count(*) FROM kills").scalar()
        page_size = conn.exec_driver_sql("PRAGMA page_size").scalar()
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        free = conn.exec_driver_sql("PRAGMA freelist_count").scalar()
    store.close()  # the last connection closing checkpoints and removes the WAL file
    size = os.path.getsize(path)
    con = sqlite3.connect(path)
    con.execute("VACUUM")
    con.close()
    return {"raw": counts[0], "5min": counts[300], "hourly": counts[3600], "kills": kills, "file": size,
            "live": (pages - free) * page_size, "vacuumed": os.path.getsize(path)}


def part2(args: argparse.Namespace, tmp: Path) -> None:
    print(f"\none host, {args.days} days at 10-second samples, {args.kills_per_day} kills and "
          f"{args.alerts_per_day} alert episodes a day, pruned daily as the daemon's retention job does")
    print(f"{'retention.samples':<20}{'raw':>8}{'5-min':>8}{'hourly':>8}{'kills':>7}{'file MiB':>10}"
          f"{'in use MiB':>12}{'vacuumed MiB':>14}{'took s':>8}")
    for retention in (30, 365):
        start = time.perf_counter()
        r = simulate_year(str(tmp / f"year-{retention}.db"), args.days, retention, args.kills_per_day,
                          args.alerts_per_day)
        print(f"{f'{retention}d':<20}{r['raw']:>8}{r['5min']:>8}{r['hourly']:>8}{r['kills']:>7}"
              f"{r['file'] / 2**20:>10.1f}{r['live'] / 2**20:>12.1f}{r['vacuumed'] / 2**20:>14.1f}"
              f"{time.perf_counter() - start:>8.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="samples in part 1 (default 1000000)")
    parser.add_argument("--kills", type=int, default=100_000, help="kills in part 1 (default 100000)")
    parser.add_argument("--hosts", type=int, default=10, help="hosts sharing the part 1 database (default 10)")
    parser.add_argument("--cgroups", type=int, default=10,
                        help="cgroups of h0 read every 10 s for two days in part 1 (default 10, cgroups.top)")
    parser.add_argument("--only", metavar="WORDS", help="only the commands whose name holds one of these "
                        "comma-separated words (e.g. report,summary)")
    parser.add_argument("--database", metavar="PATH", help="part 1's SQLite file: built there if missing, "
                        "else reused (default: a temporary one)")
    parser.add_argument("--postgres", metavar="URL", help="part 1 on this PostgreSQL database too (default: "
                        "a throwaway server, where PostgreSQL is installed)")
    parser.add_argument("--no-postgres", action="store_true", help="part 1 on SQLite only")
    parser.add_argument("--parts", default="1,2", help="which parts to run (default 1,2)")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per command (default 5)")
    parser.add_argument("--compare", metavar="TREE", help="also run the commands from this checkout (main, "
                        "say), in the same rounds: its figure beyond the libraries, and ours less it")
    parser.add_argument("--days", type=int, default=365, help="days simulated in part 2 (default 365; 0 skips)")
    parser.add_argument("--kills-per-day", type=int, default=2)
    parser.add_argument("--alerts-per-day", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="watchdog-oom-bench-") as tmp:
        if "1" in args.parts.split(","):
            part1(args, Path(tmp))
        if args.days and "2" in args.parts.split(","):
            part2(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retention at scale: downsampling --samples aged samples, against plain SQL doing the same.

Builds, in a temporary directory, a SQLite history holding --samples raw 10-second samples
of one host that all lie beyond `retention.raw_samples` (2 days): a few months of raw
samples, as after lowering raw_samples. Then times, median of --runs, each in a fresh
process on a fresh copy of the database:

- ours: `Store.prune` as the daemon's hourly retention job calls it (nothing is old enough
  to delete, so it is the downsampling: raw → 5-minute means → hourly means beyond a week,
  in bounded chunks, one short transaction each);
- plain SQL: the same two tiers as one `INSERT … SELECT … GROUP BY` and one `DELETE`
  each, through the sqlite3 module, in one transaction.

Prints both times, the ratio, each process's peak RSS, and checks both leave the same rows.
With --postgres URL (a database the user may create tables in) it runs the same on
PostgreSQL, plain SQL through psycopg.

    python3 benchmarks/bench_retention.py [--samples 1000000] [--runs 5] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOST = "web-01"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
RAW = 2 * 86400.0
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a (UTC) time in SQLite
COLUMNS = ("host, time, resolution, mem_total_kb, mem_available_kb, swap_total_kb, swap_free_kb, committed_as_kb, "
           "commit_limit_kb, commit_percent, commit_limit_percent, mem_available_percent, psi_some_avg10, "
           "psi_full_avg10, overcommit_memory")

# The plain reference: per tier, one INSERT … SELECT … GROUP BY and one DELETE.
# {bucket} is the bucket's start in Unix seconds, {stored} that start as a stored time.
PLAIN_TIER = """
INSERT INTO samples ({columns})
SELECT host, {stored}, {to_res}, CAST(round(avg(mem_total_kb)) AS BIGINT), CAST(round(avg(mem_available_kb)) AS BIGINT),
       CAST(round(avg(swap_total_kb)) AS BIGINT), CAST(round(avg(swap_free_kb)) AS BIGINT),
       CAST(round(avg(committed_as_kb)) AS BIGINT), CAST(round(avg(commit_limit_kb)) AS BIGINT),
       max(commit_percent), max(commit_limit_percent), min(mem_available_percent), max(psi_some_avg10),
       max(psi_full_avg10), max(overcommit_memory)
FROM samples WHERE host = {p} AND resolution = {from_res} AND time < {p}
GROUP BY host, {bucket};
DELETE FROM samples WHERE host = {p} AND resolution = {from_res} AND time < {p};
"""
DIALECT = {
    "sqlite": dict(p="?", bucket="(CAST(strftime('%s', time) AS INTEGER) / {w}) * {w}",
                   stored="strftime('%Y-%m-%d %H:%M:%S.000000', (CAST(strftime('%s', time) AS INTEGER) / {w}) * {w}, "
                          "'unixepoch')"),
    "postgresql": dict(p="%s", bucket="CAST(floor(extract(epoch FROM time) / {w}) AS BIGINT) * {w}",
                       stored="to_timestamp(CAST(floor(extract(epoch FROM time) / {w}) AS BIGINT) * {w})"),
}

# Run in a fresh interpreter: argv = mode, url; prints {"seconds", "rss_mib", "removed"}.
CHILD = """
import json, resource, sys, time
from datetime import datetime, timezone
sys.path.insert(0, sys.argv[3])
from benchmarks.bench_retention import HOST, NOW, RAW, plain
mode, url = sys.argv[1], sys.argv[2]
if mode == "ours":
    from watchdog_oom.store import Store
    store = Store(url, HOST)
    start = time.perf_counter()
    counts = store.prune(NOW, samples=365 * 86400.0, kills=400 * 86400.0, alerts=400 * 86400.0,
                         notifications=90 * 86400.0, raw_samples=RAW)
    seconds, removed = time.perf_counter() - start, counts["downsampled"]
    store.close()
else:
    start = time.perf_counter()
    removed = plain(url)
    seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "rss_mib": rss, "removed": removed}))
"""


def edges() -> list[tuple[int, int, datetime]]:
    """(from resolution, to resolution, older than) per tier, as Store.downsample cuts them."""
    tiers = []
    for from_res, to_res, age in ((0, 300, RAW), (300, 3600, max(RAW, 7 * 86400))):
        edge = int((NOW - timedelta(seconds=age)).timestamp()) // to_res * to_res
        tiers.append((from_res, to_res, datetime.fromtimestamp(edge, timezone.utc)))
    return tiers


def plain(url: str) -> int:
    """Both tiers in plain SQL, one transaction; returns the rows removed."""
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    if backend == "sqlite":
        con: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        count = "SELECT count(*) FROM samples WHERE host = ?"
    else:
        import psycopg

        con = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        count = "SELECT count(*) FROM samples WHERE host = %s"
    before = con.execute(count, (HOST,)).fetchone()[0]
    for from_res, to_res, older_than in edges():
        sql = dict(DIALECT[backend])
        sql = {k: v.format(w=to_res) for k, v in sql.items()}
        edge = older_than.strftime(SQLITE_TIME) if backend == "sqlite" else older_than
        insert, delete = (s for s in PLAIN_TIER.format(columns=COLUMNS, to_res=to_res, from_res=from_res,
                                                      **sql).split(";") if s.strip())
        con.execute(insert, (HOST, edge))
        con.execute(delete, (HOST, edge))
    con.commit()
    after = con.execute(count, (HOST,)).fetchone()[0]
    con.close()
    return before - after


def sample_rows(samples: int) -> Any:
    """`samples` raw samples 10 s apart, the newest just older than raw_samples."""
    end = NOW - timedelta(seconds=RAW + 3600)
    for i in range(samples):
        t = end - timedelta(seconds=10 * (samples - i))
        committed = 6_000_000 + (i * 7919) % 11_000_000
        available = 200_000 + (i * 104729) % 8_800_000
        yield (HOST, t, 0, 16_000_000, available, 2_000_000, 1_500_000, committed, 10_000_000,
               round(committed * 100 / 18_000_000, 2), round(committed * 100 / 10_000_000, 2),
               round(available * 100 / 16_000_000, 2), 0.5, 0.1 * (i % 9), 0)


def build(url: str, samples: int) -> float:
    """The migrated database with the aged samples, written with executemany."""
    from watchdog_oom.store import Store

    start = time.perf_counter()
    store = Store(url, HOST)
    store.upgrade()
    store.close()
    placeholders = ", ".join(["?" if url.startswith("sqlite") else "%s"] * 15)
    if url.startswith("sqlite"):
        con: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        rows: Any = ((r[0], r[1].strftime(SQLITE_TIME), *r[2:]) for r in sample_rows(samples))
        con.executemany(f"INSERT INTO samples ({COLUMNS}) VALUES ({placeholders})", rows)
        con.commit()
    else:
        import psycopg

        con = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        con.execute(f"DELETE FROM samples WHERE host = '{HOST}'")
        with con.cursor().copy(f"COPY samples ({COLUMNS}) FROM STDIN") as copy:
            for row in sample_rows(samples):
                copy.write_row(row)
        con.commit()
    con.close()
    return time.perf_counter() - start


def snapshot(url: str) -> list[tuple[Any, ...]]:
    """The host's samples after a run, comparable across the two ways."""
    from sqlalchemy import text

    from watchdog_oom.store import Store

    store = Store(url, HOST)
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT time, resolution, mem_available_kb, committed_as_kb, commit_percent, mem_available_percent, "
            "psi_full_avg10 FROM samples WHERE host = :h ORDER BY time, resolution"), {"h": HOST}).all()
    store.close()
    return [tuple(r) for r in rows]


def run_child(mode: str, url: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, url, str(ROOT)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def measure(name: str, fresh: Any, runs: int) -> None:
    """Median of `runs` for both ways; `fresh()` gives the URL of an untouched copy."""
    results: dict[str, list[dict[str, float]]] = {"ours": [], "plain": []}
    finals: dict[str, list[tuple[Any, ...]]] = {}
    for _ in range(runs):
        for mode in ("plain", "ours"):  # alternated, so both see the same machine load
            url = fresh()
            results[mode].append(run_child(mode, url))
            finals[mode] = snapshot(url)
    same = finals["ours"] == finals["plain"]
    med = {m: statistics.median(r["seconds"] for r in rs) for m, rs in results.items()}
    rss = {m: max(r["rss_mib"] for r in rs) for m, rs in results.items()}
    removed = results["ours"][0]["removed"]
    print(f"{name}: {removed:,} rows fewer, {len(finals['ours']):,} left; same rows both ways: {same}")
    print(f"  {'':<12}{'median s':>10}{'peak RSS MiB':>14}")
    for mode in ("plain", "ours"):
        print(f"  {mode:<12}{med[mode]:>10.2f}{rss[mode]:>14.0f}")
    print(f"  ratio ours/plain: {med['ours'] / med['plain']:.2f}  (runs: "
          + ", ".join(f"{r['seconds']:.2f}" for r in results["ours"]) + " / "
          + ", ".join(f"{r['seconds']:.2f}" for r in results["plain"]) + ")")
    if not same:
        raise SystemExit("the two ways left different rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL database")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="watchdog-oom-bench-") as tmp:
        master = Path(tmp) / "master.db"
        built = build(f"sqlite:///{master}", args.samples)
        print(f"{args.samples:,} raw samples of one host, 10 s apart, all older than raw_samples (2 days); "
              f"built in {built:.0f} s; median of {args.runs} runs, each in a new process on a new copy")
        copy = Path(tmp) / "run.db"

        def fresh_sqlite() -> str:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(master, copy)
            return f"sqlite:///{copy}"

        measure("SQLite", fresh_sqlite, args.runs)
    if args.postgres:
        def fresh_pg() -> str:
            build(args.postgres, args.samples)
            return args.postgres

        measure("PostgreSQL", fresh_pg, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

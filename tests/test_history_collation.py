"""`--process` globs on PostgreSQL databases whose collation is not C (an ICU locale, a libc
UTF-8 locale): the literal prefix is still a range of an index (migration 0008's pattern
operator class), and the glob matches what it matches on SQLite, case and all.

The test cluster is initialised with --locale=C; each test creates a database of its own
with another collation (from template0, as PostgreSQL requires), migrated by Alembic."""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import make_url
from statements import selects_run

from watchdog_oom.model import OomKill
from watchdog_oom.store import Store

NAMES = ["java", "javac", "Java", "JAVA", "javb", "jav", "java_x", "javaX", "javä", "jawa", "python3", "j%va"]
GLOBS = ["java*", "jav?", "java_*", "Java*", "javä*", "j%*", "*ava"]
# Each way to create a database whose strings do not compare byte by byte, as an operator
# would: an ICU locale (PostgreSQL 15+ built with ICU), en_US.UTF-8, or glibc's C.UTF-8
# (which PostgreSQL before 17 does not take for C when planning a LIKE).
COLLATIONS = {
    "icu en-US": "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'",
    "libc en_US.UTF-8": "LOCALE 'en_US.UTF-8'",
    "libc C.UTF-8": "LOCALE 'C.UTF-8'",
}


@pytest.fixture(params=sorted(COLLATIONS))
def collated(request: pytest.FixtureRequest, pg_server: str) -> Iterator[Store]:
    """A migrated history in a new database of this collation (skipped where the server has none)."""
    import psycopg

    admin = make_url(pg_server).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"wd_coll_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        try:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' {COLLATIONS[request.param]}")
        except psycopg.Error as exc:
            pytest.skip(f"this PostgreSQL cannot create a database with {request.param}: {exc}".strip())
    store = Store(make_url(pg_server).set(database=name).render_as_string(hide_password=False), "web-01")
    store.upgrade()
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _record_kills(store: Store, t0) -> None:
    with store.tx() as tx:
        for i, name in enumerate(NAMES * 3):
            tx.add_kill(OomKill(pid=100 + i, process=name, time=t0 - timedelta(minutes=i), source="kmsg"), t0)


def _plans(store: Store, call) -> list[str]:
    """PostgreSQL's plan of every statement `call` runs, with sequential scans priced out of
    reach: what is left is a scan of an index, if any index can answer."""
    selects = selects_run(store, call)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        return [" / ".join(row[0].strip() for row in conn.exec_driver_sql("EXPLAIN " + statement, params))
                for statement, params in selects]


def test_a_glob_prefix_is_a_range_of_an_index_under_any_collation(collated, t0):
    _record_kills(collated, t0)
    for call in (lambda: collated.kill_records(process="java*"),
                 lambda: collated.kill_records(process="java*", limit=5),
                 lambda: collated.kill_records(process="java*", since=t0 - timedelta(hours=1)),
                 lambda: collated.kill_counts(process="jav?")):
        plans = _plans(collated, call)
        assert plans and not any("Seq Scan on kills" in plan for plan in plans), plans
        assert any("ix_kills_process_pattern" in plan and "~>=~" in plan for plan in plans), plans


def test_a_glob_matches_as_on_sqlite_under_any_collation(collated, t0):
    """Byte by byte and case-sensitive, whatever the collation says of 'Java' and 'java'."""
    _record_kills(collated, t0)
    for glob in GLOBS:
        found = sorted(r["process"] for r in collated.kill_records(process=glob))
        assert found == sorted(n for n in NAMES * 3 if fnmatch.fnmatchcase(n, glob)), glob

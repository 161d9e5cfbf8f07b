"""The store on a SQLite older than 3.35, which has no RETURNING (RHEL 8 ships 3.26, RHEL 9
and Debian 11 3.34.1): SQLAlchemy marks such a library's dialect as having no
UPDATE/INSERT … RETURNING (sqlalchemy/dialects/sqlite/base.py, `sqlite_version_info <
(3, 35)`), and there SQLite refuses the keyword with `near "RETURNING": syntax error`.

The dialect here is given the flags SQLAlchemy gives it for such a library, on a real
migrated SQLite file, and every statement sent is watched: none may carry RETURNING (the
outbox claim did, so no notification was ever sent there). Checked by hand against
Debian 11's libsqlite3 3.34.1 too (LD_LIBRARY_PATH): the outbox, store, dispatch and
retention tests pass on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event, insert

from watchdog_oom.store import Store, claims, retention
from watchdog_oom.store.tables import samples


@pytest.fixture
def old_sqlite(sqlite_store: Store) -> Iterator[tuple[Store, list[str]]]:
    """The migrated store, its dialect flagged as SQLAlchemy flags SQLite < 3.35, and the
    statements it sends from now on."""
    dialect = sqlite_store.engine.dialect
    dialect.update_returning = dialect.delete_returning = dialect.insert_returning = False
    sent: list[str] = []
    event.listen(sqlite_store.engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_rest: sent.append(statement))
    yield sqlite_store, sent


def test_the_outbox_claims_without_returning(old_sqlite, t0):
    store, sent = old_sqlite
    with store.tx() as tx:
        queued = tx.enqueue(channel="hook", kind="oom.kill", severity="critical", reason="first",
                            summary="OOM kill: java", data={"kills": [1]}, now=t0)
    (claimed,) = claims.claim_due(store, t0 + timedelta(seconds=1))
    assert (claimed.id, claimed.uuid, claimed.status, claimed.attempts) == (queued.id, queued.uuid, "sending", 1)
    assert claimed.data == {"kills": [1]} and claimed.last_attempt_at == t0 + timedelta(seconds=1)
    assert claims.claim_due(store, t0 + timedelta(seconds=2)) == []  # taken once
    assert claims.mark_sent(store, claimed, "HTTP 200", t0 + timedelta(seconds=2))
    assert not [s for s in sent if "RETURNING" in s.upper()]


def test_downsampling_counts_without_returning(old_sqlite, t0):
    store, sent = old_sqlite
    rows = [dict(host="web-01", time=t0 - timedelta(days=3, seconds=10 * i), resolution=0,
                 mem_total_kb=16_000_000, mem_available_kb=8_000_000, swap_total_kb=0, swap_free_kb=0,
                 committed_as_kb=10_000_000, commit_limit_kb=8_000_000, commit_percent=50.0,
                 commit_limit_percent=None, mem_available_percent=50.0, psi_some_avg10=None,
                 psi_full_avg10=0.0, overcommit_memory=0) for i in range(60)]  # 10 minutes at 10 s
    with store.engine.begin() as conn:
        conn.execute(insert(samples), rows)
    sent.clear()
    removed = retention.downsample(store.engine, "web-01", t0, 2 * 86400.0)
    with store.engine.connect() as conn:
        left = conn.execute(samples.select()).all()
    assert removed == len(rows) - len(left) and {row.resolution for row in left} == {300}
    assert not [s for s in sent if "RETURNING" in s.upper()]

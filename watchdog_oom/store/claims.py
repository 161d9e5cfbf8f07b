"""The outbox as its senders use it: claim due notifications for sending (a lease, SKIP
LOCKED on PostgreSQL), record each outcome, hand back what a channel asked to wait for.

Split from outbox.py, whose looks (when is the next row due, the rows a stopped daemon left
`sending`) the idle daemon runs: these run only once a row falls due, from the senders
(sending.py), which import this module; the daemon loads both then, not at start (a failure
to load them is said and retried by daemon/sender.py, the rows waiting in the outbox).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection

from watchdog_oom.store.engine import UNCACHED
from watchdog_oom.store.outbox import CLAIM_LEASE, OutboxQueue, _channel_filter
from watchdog_oom.store.tables import notifications
from watchdog_oom.stored import OutboxRow, from_row

n = notifications.c


def claim_due(store: OutboxQueue, now: datetime, limit: int = 20, channel: str | None = None,
              other_than: Collection[str] | None = None) -> list[OutboxRow]:
    """Take due notifications of this host for sending (status → sending): of one
    `channel`, of channels `other_than` those named, or of all.

    A claim is a lease: a row left `sending` longer than CLAIM_LEASE (its sender died,
    or could not record the outcome) is due again, so nothing stays stuck until a
    restart. Delivery is therefore at least once; the stable `webhook-id` lets a
    receiver drop the rare repeat.
    """
    expired = now - CLAIM_LEASE
    due = or_(and_(n.status == "pending", n.due_at <= now),
              and_(n.status == "sending", n.last_attempt_at < expired))
    claimed: list[OutboxRow] = []
    with store.engine.begin() as conn:
        rows = conn.execute(
            select(notifications)
            .where(n.host == store.host, due, *_channel_filter(channel, other_than))
            .order_by(n.due_at, n.id)
            .limit(limit)
            # PostgreSQL: two claimers take different rows instead of queueing on
            # the same ones; SQLite has no row locks and serialises writers anyway.
            .with_for_update(skip_locked=True),
            execution_options=UNCACHED,
        ).all()
        for row in rows:
            # Conditional update: a concurrent grouper may not append to a claimed row,
            # and a concurrent claimer may not take it twice. The row is sent as the update
            # returns it, not as it was read: on SQLite (no row locks) a burst's transaction
            # may have added kills to it between the read and this write, which waited for it.
            taken = _take(conn, row, now)
            if taken is not None:
                claimed.append(from_row(OutboxRow, dict(taken._mapping)))
    return claimed



def mark_sent(store: OutboxQueue, row: OutboxRow, detail: str, now: datetime) -> bool:
    """Record a claimed notification as delivered, with the endpoint's answer."""
    return _finish(store, row, status="sent", sent_at=now, detail=detail[:2000], last_error=None)


def mark_retry(store: OutboxQueue, row: OutboxRow, error: str, due_at: datetime) -> bool:
    """Record a failed attempt; the notification is due again at `due_at`."""
    return _finish(store, row, status="pending", due_at=due_at, last_error=error[:2000])


def release(store: OutboxQueue, row: OutboxRow, due_at: datetime) -> bool:
    """Hand back a claimed notification unsent (its channel asked us to wait): it is
    due again at `due_at`, and the claim does not count as an attempt."""
    return _finish(store, row, status="pending", due_at=due_at, attempts=n.attempts - 1)


def mark_failed(store: OutboxQueue, row: OutboxRow, error: str, status: str = "failed") -> bool:
    """Give up on a notification: `failed` (permanent error) or `given_up` (too old)."""
    return _finish(store, row, status=status, last_error=error[:2000])


def _finish(store: OutboxQueue, row: OutboxRow, **values: Any) -> bool:
    """Record the outcome of a claim, unless the claim is stale: its lease ran out and
    another sender claimed the row since (a later attempt). False then."""
    with store._connection() as conn, conn.begin():
        return bool(conn.execute(
            update(notifications)
            .where(n.id == row.id, n.status == "sending", n.attempts == row.attempts)
            .values(**values)
        ).rowcount)


def _take(conn: Connection, row: Any, now: datetime) -> Any:
    """Claim one read row (status → sending) unless someone changed it since; the row as
    claimed, or None."""
    take = (update(notifications)
            .where(n.id == row.id, n.status == row.status, n.attempts == row.attempts)
            .values(status="sending", last_attempt_at=now, attempts=n.attempts + 1))
    if conn.dialect.update_returning:
        return conn.execute(take.returning(*notifications.c)).first()
    # SQLite before 3.35 (RHEL 8's 3.26, RHEL 9's and Debian 11's 3.34) has no RETURNING.
    # Once the UPDATE has written, this transaction holds SQLite's one write lock until it
    # commits: the row read back now is the row as claimed, and no writer can change it.
    if not conn.execute(take).rowcount:
        return None
    return conn.execute(select(notifications).where(n.id == row.id)).first()

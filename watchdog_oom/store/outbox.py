"""The outbox, as its senders use it: claim due notifications (a lease, SKIP LOCKED on
PostgreSQL), record each outcome, hand back what a channel asked to wait for."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection

from watchdog_oom.store.engine import UNCACHED, Database, _answers
from watchdog_oom.store.tables import notifications
from watchdog_oom.stored import OutboxRow, from_row

# How long a claimed notification may stay `sending` before it is due again: longer
# than any channel's timeout (SMTP and HTTP default to 10 s).
CLAIM_LEASE = timedelta(minutes=5)

n = notifications.c


class OutboxQueue(Database):
    """The store's outbox operations (a part of `Store`)."""

    def claim_due(self, now: datetime, limit: int = 20, channel: str | None = None,
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
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(notifications)
                .where(n.host == self.host, due, *_channel_filter(channel, other_than))
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

    def next_due(self, channel: str | None = None, other_than: Collection[str] | None = None) -> datetime | None:
        """When the earliest notification of this host (of `channel`, or of channels
        `other_than` those named) falls due; a lease expiring counts."""
        which = (n.host == self.host, *_channel_filter(channel, other_than))
        with self._connection() as conn:
            pending = conn.scalar(select(func.min(n.due_at)).where(*which, n.status == "pending"),
                                  execution_options=UNCACHED)
            leased = conn.scalar(select(func.min(n.last_attempt_at)).where(*which, n.status == "sending"),
                                 execution_options=UNCACHED)
        candidates = [t for t in (pending, leased + CLAIM_LEASE if leased else None) if t is not None]
        return min(candidates) if candidates else None

    def mark_sent(self, row: OutboxRow, detail: str, now: datetime) -> bool:
        """Record a claimed notification as delivered, with the endpoint's answer."""
        return self._finish(row, status="sent", sent_at=now, detail=detail[:2000], last_error=None)

    def mark_retry(self, row: OutboxRow, error: str, due_at: datetime) -> bool:
        """Record a failed attempt; the notification is due again at `due_at`."""
        return self._finish(row, status="pending", due_at=due_at, last_error=error[:2000])

    def release(self, row: OutboxRow, due_at: datetime) -> bool:
        """Hand back a claimed notification unsent (its channel asked us to wait): it is
        due again at `due_at`, and the claim does not count as an attempt."""
        return self._finish(row, status="pending", due_at=due_at, attempts=n.attempts - 1)

    def mark_failed(self, row: OutboxRow, error: str, status: str = "failed") -> bool:
        """Give up on a notification: `failed` (permanent error) or `given_up` (too old)."""
        return self._finish(row, status=status, last_error=error[:2000])

    def _finish(self, row: OutboxRow, **values: Any) -> bool:
        """Record the outcome of a claim, unless the claim is stale: its lease ran out and
        another sender claimed the row since (a later attempt). False then."""
        with self._connection() as conn, conn.begin():
            return bool(conn.execute(
                update(notifications)
                .where(n.id == row.id, n.status == "sending", n.attempts == row.attempts)
                .values(**values)
            ).rowcount)

    def requeue_inflight(self) -> int:
        """Put back notifications a previous run claimed but never finished (it died mid-send)."""
        with self._connection() as conn, conn.begin():
            return conn.execute(
                update(notifications).where(n.host == self.host, n.status == "sending").values(status="pending"),
                execution_options=UNCACHED,
            ).rowcount

    @_answers
    def outbox_backlog(self) -> int:
        """How many notifications of this host wait to be sent (pending or being sent)."""
        with self._connection() as conn:
            return conn.scalar(select(func.count()).select_from(notifications)
                               .where(n.host == self.host, n.status.in_(("pending", "sending")))) or 0


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


def _channel_filter(channel: str | None, other_than: Collection[str] | None) -> list[Any]:
    """The WHERE terms choosing one channel's notifications, or those of other channels."""
    terms: list[Any] = []
    if channel is not None:
        terms.append(n.channel == channel)
    if other_than is not None:
        terms.append(n.channel.not_in(list(other_than)))
    return terms

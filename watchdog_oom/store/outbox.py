"""The outbox as the daemon looks at it: when its next notification falls due, the ones a
stopped daemon left `sending` put back, how many wait (for /metrics). Claiming due
notifications and recording their outcomes, what the senders alone do, is claims.py's."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from watchdog_oom.store.engine import UNCACHED, Database
from watchdog_oom.store.tables import notifications

# How long a claimed notification may stay `sending` before it is due again: longer
# than any channel's timeout (SMTP and HTTP default to 10 s).
CLAIM_LEASE = timedelta(minutes=5)

n = notifications.c


class OutboxQueue(Database):
    """The store's outbox operations (a part of `Store`)."""

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

    def requeue_inflight(self) -> int:
        """Put back notifications a previous run claimed but never finished (it died mid-send)."""
        with self._connection() as conn, conn.begin():
            return conn.execute(
                update(notifications).where(n.host == self.host, n.status == "sending").values(status="pending"),
                execution_options=UNCACHED,
            ).rowcount


def _channel_filter(channel: str | None, other_than: Collection[str] | None) -> list[Any]:
    """The WHERE terms choosing one channel's notifications, or those of other channels."""
    terms: list[Any] = []
    if channel is not None:
        terms.append(n.channel == channel)
    if other_than is not None:
        terms.append(n.channel.not_in(list(other_than)))
    return terms

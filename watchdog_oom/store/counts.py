"""The counts the metrics endpoint serves (metrics.py): kills per killer and constraint,
alerts per kind and severity, the notifications waiting in the outbox. Split from
recorder.py and outbox.py: metrics.py, and this module with it, is loaded only by a daemon
whose configuration has a metrics endpoint (at its start, which fails if they cannot be).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select

from watchdog_oom.store.engine import Database, _answers
from watchdog_oom.store.tables import alerts, kills, notifications

n = notifications.c


@_answers
def kill_totals(store: Database, host: str,
                recorded_since: datetime | None = None) -> list[tuple[str, str | None, int]]:
    """(killer, constraint, count) of the kills of `host` recorded since a moment."""
    k = kills.c
    query = select(k.killer, k.constraint, func.count()).where(k.host == host)
    if recorded_since is not None:
        query = query.where(k.recorded_at >= recorded_since)
    query = query.group_by(k.killer, k.constraint).order_by(k.killer, k.constraint)
    with store.engine.connect() as conn:
        return [(killer, constraint, int(n)) for killer, constraint, n in conn.execute(query)]


@_answers
def alert_counts(store: Database, host: str) -> list[tuple[str, str, int]]:
    """(kind, severity, firing now) for every kind of alert `host` has had."""
    a = alerts.c
    firing = func.sum(case((a.status == "firing", 1), else_=0))
    query = (select(a.kind, a.severity, firing).where(a.host == host)
             .group_by(a.kind, a.severity).order_by(a.kind, a.severity))
    with store.engine.connect() as conn:
        return [(kind, severity, int(n or 0)) for kind, severity, n in conn.execute(query)]


@_answers
def outbox_backlog(store: Database) -> int:
    """How many notifications of this host wait to be sent (pending or being sent)."""
    with store._connection() as conn:
        return conn.scalar(select(func.count()).select_from(notifications)
                           .where(n.host == store.host, n.status.in_(("pending", "sending")))) or 0

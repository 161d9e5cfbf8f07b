"""Alert events written to the store with the notifications they cause, in the caller's transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from watchdog_oom.model import Alert
from watchdog_oom.rules.alerts import repeats_due

if TYPE_CHECKING:
    from watchdog_oom.daemon.shared import Shared
    from watchdog_oom.dispatch import Outbox
    from watchdog_oom.store import Tx

log = logging.getLogger("watchdog_oom")


def record_events(tx: Tx, outbox: Outbox, events: Iterable[Alert], now: datetime) -> None:
    """Fire or resolve each alert; queue a notification when the store says one is due."""
    for alert in events:
        if alert.resolved:
            row = tx.resolve_alert(alert)
            if row is not None:
                outbox.alert(tx, alert, row, "resolved", now)
                log.info("resolved: %s", alert.key)
            continue
        row, reason = tx.fire_alert(alert)
        if reason is not None:
            outbox.alert(tx, alert, row, reason, now)
            log.warning("%s (%s): %s", alert.kind, alert.severity, alert.summary)


class StartPending(Exception):
    """The daemon's start with its database waits for the server (daemon/database.py,
    `defer_start`: said once, as database.down): nothing is written until it is done."""


def database_ready(s: Shared) -> bool:
    """Whether the daemon's start with its database is done: until then the schema is not
    checked nor migrated, the alert state not restored, and the server did not answer."""
    return s.database is None or s.database.ready()


@contextmanager
def undone_unless_stored(s: Shared, before: Mapping[str, Any], events: Sequence[Alert]) -> Iterator[None]:
    """Around the transaction that records `events`: when it fails (the database is down),
    their rule state is put back as it was `before` they were decided, so they are decided,
    stored and notified again by a later run rather than lost. While the start with the
    database waits for its server, the transaction is not even tried: StartPending."""
    if not database_ready(s):
        with s.lock:
            s.rules.put_back(before, events)
        raise StartPending
    try:
        yield
    except BaseException:
        with s.lock:
            s.rules.put_back(before, events)
        raise


def record_repeats(tx: Tx, outbox: Outbox, now: datetime, repeat_interval: float) -> int:
    """Queue the repeat notifications of the firing alerts that are due one; how many alerts were."""
    due = repeats_due(tx.firing_alerts(), now, repeat_interval)
    for row, alert in due:
        outbox.alert(tx, alert, row, "repeat", now)
    return len(due)

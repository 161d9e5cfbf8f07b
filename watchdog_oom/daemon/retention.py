"""The daemon's retention job: prune and downsample the history, and say so when it fails.

A retention run that fails leaves the database growing without bound, hour after hour,
which nobody would notice in a log alone: the failure is an alert (`retention.failed`,
through the outbox like every other), resolved by the next run that succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from watchdog_oom.model import Alert

log = logging.getLogger(__name__)

RETENTION_KEY = "retention"
FAILED = "retention.failed"
RESOLVED = "retention.resolved"


class RetentionJob:
    """One host's retention run: `run()` is called by the scheduler, hourly by default.

    `policy()` returns the current `retention:` config (it changes on reload), `wakeup()`
    tells the outbox worker that notifications were queued.
    """

    def __init__(self, store: Any, outbox: Any, policy: Callable[[], Any], clock: Callable[[], datetime],
                 wakeup: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.outbox = outbox
        self.policy = policy
        self.clock = clock
        self.wakeup = wakeup

    def run(self) -> dict[str, int] | None:
        """Prune now; returns the counts per kind, or None when the run failed (and alerted)."""
        now = self.clock()
        r = self.policy()
        try:
            counts = self.store.prune(now, samples=r.samples, kills=r.kills, alerts=r.alerts,
                                      notifications=r.notifications, raw_samples=r.raw_samples,
                                      adjustments=r.adjustments)
        except Exception as exc:
            log.error("retention failed; the history keeps growing until a run succeeds: %s", exc)
            self._alert(Alert(RETENTION_KEY, FAILED, "warning",
                              f"Retention failed: {exc}; the history database keeps growing until it succeeds",
                              now, False, {"error": str(exc)}), now)
            return None
        if any(counts.values()):
            log.info("retention: %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))
        self._alert(Alert(RETENTION_KEY, RESOLVED, "info", "Resolved: retention runs again.", now, True, {}), now)
        return counts

    def _alert(self, alert: Alert, now: datetime) -> None:
        """Fire or resolve the retention alert; a database that cannot take even that
        leaves it to the log line above and the next run."""
        try:
            with self.store.tx() as tx:
                if alert.resolved:
                    row, reason = tx.resolve_alert(alert), "resolved"
                else:
                    row, reason = tx.fire_alert(alert)
                if row is not None and reason is not None:
                    self.outbox.alert(tx, alert, row, reason, now)
                    queued = True
                else:
                    queued = False
        except Exception as exc:
            log.error("retention: cannot record the alert either: %s", exc)
            return
        if queued:
            self.wakeup()

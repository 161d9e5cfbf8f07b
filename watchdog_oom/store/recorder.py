"""`Recorder`: the store as the long-running daemon holds it. Transactions that record
(`tx()`), the outbox's looks (its senders' claims are claims.py's), retention, and the
engine's repairs (upkeep.py, loaded at the first) — and nothing that reads the history back (nor the counts the
metrics endpoint serves: counts.py, loaded with it).

The history's read side (queries.py, charts.py: the `history`, `show` and `report`
commands) is in `Store`, which is a `Recorder` too (history.py). The daemon holds a
`Recorder`, so those modules and their statements are never loaded in the process that
must stay small; a command that reads the history opens a `Store`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from watchdog_oom.store import StoreError
from watchdog_oom.store.engine import UNCACHED, db_error
from watchdog_oom.store.outbox import OutboxQueue

if TYPE_CHECKING:
    from watchdog_oom.store.writes import Tx


class Recorder(OutboxQueue):
    """The history database of one host (or of a fleet, each row carrying its host), as
    the daemon writes to it."""

    def __init__(self, url: str, host: str, one_connection: bool = False) -> None:
        super().__init__(url, host, one_connection)
        # The newest cursor committed per source by this process: what a database that was
        # deleted or replaced under the daemon gets back, so nothing is read twice.
        self.cursors_committed: dict[str, str] = {}

    # -- transactions -------------------------------------------------------------------

    @contextlib.contextmanager
    def tx(self) -> Iterator[Tx]:
        """One transaction: everything done through the Tx commits together or not at all."""
        from watchdog_oom.store.writes import Tx  # the write side: a read-only command never loads it

        with self._connection() as conn, conn.begin():
            tx = Tx(conn, self.host)
            yield tx
        self.cursors_committed.update(tx.cursors_set)

    # -- retention ----------------------------------------------------------------------

    def prune(self, now: datetime, *, samples: float, kills: float, alerts: float,
              notifications: float, raw_samples: float,
              adjustments: float = 400 * 86400.0) -> dict[str, int]:
        """Delete rows past their retention and downsample aging samples; counts per kind."""
        from watchdog_oom.store import retention

        policy = retention.RetentionPolicy(samples=samples, kills=kills, alerts=alerts, notifications=notifications,
                                 raw_samples=raw_samples, adjustments=adjustments)
        try:
            return retention.prune(self._hourly(), self.host, now, policy)
        except SQLAlchemyError as exc:
            raise StoreError(f"retention: {db_error(exc)}") from exc

    def downsample(self, now: datetime, raw_samples: float) -> int:
        """Replace raw samples older than `raw_samples` by 5-minute means, and 5-minute
        means older than a week by hourly means. Returns the number of rows removed."""
        from watchdog_oom.store import retention

        return retention.downsample(self._hourly(), self.host, now, raw_samples)

    def _hourly(self) -> Engine:
        """The engine for retention's statements, which run once an hour: compiled at each
        run (a few ms), not kept in SQLAlchemy's compiled cache, where the idle daemon held
        some 0.2 MiB of them (traced) between runs (see UNCACHED)."""
        return self.engine.execution_options(**UNCACHED)

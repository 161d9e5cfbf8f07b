"""What the kernel log makes the daemon write: kills in batches, each batch with the
source's cursor and the notifications it causes in one transaction; a kill the database
refuses on its own, quarantined; kills held in memory while the database is down.

The pipeline (pipeline.py) reads, parses and enriches; it hands this writer kills ready
to store, each with what the host looked like before it, and the cursor that may be
saved with them. The writer decides when to write (a lone kill at once, a burst together),
retries while the database refuses, and tells the database watch (database.py) how it
went, so that an outage is alerted once and its end too.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from watchdog_oom.daemon.shared import Shared
from watchdog_oom.model import OomKill, SourceGap
from watchdog_oom.store.health import database_failure

log = logging.getLogger("watchdog_oom")

# A burst: kills found within BATCH_WAIT seconds of each other (up to BATCH_MAX) are
# stored in one transaction, as `import` does; a lone kill waits at most BATCH_WAIT.
BATCH_MAX = 2000
BATCH_WAIT = 0.2
# Kills held in memory while the database refuses them; at this many the source is not
# read on (it keeps the rest: the kernel's buffer, the journal, the file) until they are stored.
HELD_MAX = 100_000
RETRY_FIRST = 0.5  # seconds before storing held kills is tried again, doubling to RETRY_MAX
RETRY_MAX = 5.0
LOGGED_PER_BATCH = 20  # "OOM kill recorded" lines per batch; the rest are counted

Prepared = tuple[OomKill, dict[str, Any]]  # a kill enriched, and the host's state before it


class KillWriter:
    """Writes one kernel-log source's kills, gaps and notices to the store."""

    def __init__(self, shared: Shared, source_name: str) -> None:
        self.shared = shared
        self.source_name = source_name
        self.held: list[Prepared] = []  # not stored yet: waiting for a burst's end, or for the database
        self.held_since = 0.0  # time.monotonic() when the oldest held kill was found
        self.retry_at = 0.0  # time.monotonic() before which a failed database is not tried again
        self.retry_delay = RETRY_FIRST
        self.last_kill_commit = 0.0  # time.monotonic() of the last commit that stored kills

    def full(self) -> bool:
        """Whether HELD_MAX kills wait for the database (the source is not read on)."""
        return len(self.held) >= HELD_MAX

    def retry_in(self) -> float:
        """Seconds until held kills are worth trying again (at least a moment)."""
        return max(self.retry_at - time.monotonic(), 0.05)

    def write(self, kills: Sequence[Prepared], cursor: str | None, *, force: bool,
              summarise: bool) -> list[Any] | None:
        """Store the held kills and `kills` with `cursor` (None: no cursor to save), and queue
        their notifications, in one transaction; the new rows, or None when nothing was
        written (a burst still arriving, or the database refused and the kills are held).

        Without `force`, kills following a commit within BATCH_WAIT wait (at most
        BATCH_WAIT seconds, at most BATCH_MAX of them) for the ones that follow, and a
        database that failed a moment ago is not tried again before its retry is due.
        With `summarise`, the kills queue no notification of their own: they are the
        backlog of a first start, told in one summary once the source has caught up.
        """
        if kills and not self.held:
            self.held_since = time.monotonic()
        self.held += kills
        if not self.held and cursor is None:
            return None
        clock = time.monotonic()
        in_burst = clock - self.last_kill_commit < BATCH_WAIT
        if not force and in_burst and self.held and len(self.held) < BATCH_MAX \
                and clock - self.held_since < BATCH_WAIT:
            return None
        if not force and time.monotonic() < self.retry_at and len(self.held) < HELD_MAX:
            return None  # the database failed a moment ago: not again at every line of a flood
        return self._commit(cursor, summarise)

    def _commit(self, cursor: str | None, summarise: bool) -> list[Any] | None:
        """Try to store what is held; the new rows when it was, else None."""
        kills, now = self.held, self.shared.clock()
        watch = self.shared.database
        if watch is not None and not watch.ready():
            # A start still waiting for its database server: nothing is written before its
            # schema is checked (and migrated); the kills wait here, counted for /metrics.
            watch.state.held = len(kills)
            return None
        try:
            with watch.lock if watch is not None else contextlib.nullcontext():
                try:
                    new_rows = self._store(kills, cursor, now, summarise)
                except Exception as exc:
                    if database_failure(exc):
                        raise
                    new_rows = self._store_each(kills, cursor, now, summarise)
        except Exception as exc:
            self._held(exc)
            return None
        if self.retry_at:
            log.info("kernel log %s: the %d held kill(s) are stored now", self.source_name, len(kills))
        if watch is not None:
            watch.succeeded()
        if kills:
            self.last_kill_commit = time.monotonic()
        self.held, self.retry_at, self.retry_delay = [], 0.0, RETRY_FIRST
        self._log_recorded(new_rows)
        if new_rows:
            self.shared.wakeup.set()
        return new_rows

    def _held(self, exc: Exception) -> None:
        """The database refused: keep the kills, tell the database watch, retry later."""
        if not self.retry_at:
            log.error("kernel log %s: cannot store %d kill(s), holding them and retrying: %s",
                      self.source_name, len(self.held), exc)
        self.retry_at = time.monotonic() + self.retry_delay
        self.retry_delay = min(self.retry_delay * 2, RETRY_MAX)
        watch = self.shared.database
        if watch is not None:
            watch.failed(exc, held=len(self.held))

    def _store(self, kills: list[Prepared], cursor: str | None, now: datetime, summarise: bool) -> list[Any]:
        """One transaction: the new kills, their notifications (unless they are a first
        start's backlog, to be summarised), the cursor. Returns the new rows."""
        s = self.shared
        with s.store.tx() as tx:
            new_rows = [row for row in tx.add_kills(kills, now) if row is not None]
            if new_rows and not summarise:
                s.outbox.kills(tx, new_rows, now)
            if cursor is not None:
                tx.set_cursor(self.source_name, cursor, now)
        return new_rows

    def _store_each(self, kills: list[Prepared], cursor: str | None, now: datetime, summarise: bool) -> list[Any]:
        """The batch failed for a reason of its own: store the kills one by one, each in its
        own transaction, quarantining any the database will not take (kept with its raw
        text and the error, alerted once as kill.unstored). Raises when the database
        itself fails meanwhile (the kills not stored yet stay held)."""
        new_rows: list[Any] = []
        for i, prepared in enumerate(kills):
            try:
                new_rows += self._store([prepared], None, now, summarise)
            except Exception as exc:
                if database_failure(exc):
                    self.held = kills[i:]
                    raise
                self._quarantine(prepared[0], exc, now)
        if cursor is not None:
            with self.shared.store.tx() as tx:
                tx.set_cursor(self.source_name, cursor, now)
        return new_rows

    def _quarantine(self, kill: OomKill, exc: Exception, now: datetime) -> None:
        """Keep a kill the database refused, with its raw text and the error; alert once."""
        s = self.shared
        error = f"{type(exc).__name__}: {exc}"
        log.error("kernel log %s: a kill could not be stored and is quarantined (%s): %s", self.source_name,
                  error, kill.extra.get("raw") or kill.process)
        with s.store.tx() as tx:
            quarantined = tx.quarantine_kill(kill, error, now)
            s.outbox.unstored(tx, quarantined, now)
        s.wakeup.set()

    def _log_recorded(self, rows: list[Any]) -> None:
        """One log line per kill; in a burst, the first few and a count."""
        for row in rows[:LOGGED_PER_BATCH]:
            log.warning("OOM kill recorded (id %d): %s %s killed by %s%s", row.id, row.process,
                        f"pid {row.pid}" if row.pid is not None else "(a cgroup)", row.killer,
                        f" in {row.task_memcg}" if row.task_memcg else "")
        if len(rows) > LOGGED_PER_BATCH:
            log.warning("... and %d more OOM kills recorded (ids %d to %d)", len(rows) - LOGGED_PER_BATCH,
                        rows[LOGGED_PER_BATCH].id, rows[-1].id)

    # -- what the source says besides kills -------------------------------------------------

    def summary(self, backlog: list[int]) -> None:
        """A first start's old kills, caught up with: one notification for them all."""
        s = self.shared
        with s.store.tx() as tx:
            s.outbox.backlog_summary(tx, tx.kills_by_id(backlog), s.clock())
        s.wakeup.set()

    def gap(self, gap: SourceGap) -> None:
        """Lines the source lost: a notification, and the cursor moved past them."""
        s = self.shared
        told = _notices(self.source_name, "kernel_log.gap")
        with s.store.tx() as tx:
            if told is not None:
                told.gap(s.outbox, tx, gap.source, gap.missed, gap.message, s.clock())
            if gap.cursor:
                tx.set_cursor(gap.source, gap.cursor, s.clock())
        s.wakeup.set()

    def unreadable(self, texts: list[tuple[str, str]]) -> None:
        """Queue the notice of lines (redacted text, reason) holding a kill's words that no
        recogniser read; a database that is down leaves only the log line already written."""
        s = self.shared
        told = _notices(self.source_name, "kill.unreadable")
        if told is None:
            return
        try:
            with s.store.tx() as tx:
                for text, reason in texts:
                    told.unreadable(s.outbox, tx, self.source_name, text, reason, s.clock())
        except Exception as exc:  # the database is down: the log line stays
            log.error("kernel log %s: cannot queue the unreadable-line notice: %s", self.source_name, exc)
            return
        s.wakeup.set()


def _notices(source_name: str, notice: str) -> Any:
    """notices.py, which writes the rows of a gap's and an unreadable line's notices: loaded at
    the first of them, not at start. None when it cannot be loaded (the package being
    upgraded, memory short): said here, and the caller writes what it was writing (the cursor
    past a gap) without the notice, which is lost; no kill is (a kill unstored and a first
    start's backlog are told by dispatch.Outbox, loaded at start)."""
    try:
        from watchdog_oom import notices
    except Exception as exc:
        log.error("kernel log %s: %s is not notified: its code (watchdog_oom.notices) cannot be loaded: %s: %s",
                  source_name, notice, type(exc).__name__, exc)
        return None
    return notices

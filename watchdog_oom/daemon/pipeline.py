"""Kernel lines in, stored kills and their notifications out, one transaction at a time.

The kill's walk, downward: the source's event → the parser (lines → OomKill) → the
enrichment rule (what was known before the kill) → one store transaction holding the
kill, the source's cursor and the outbox rows it causes → the outbox thread's doorbell.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

from watchdog_oom import procfs
from watchdog_oom.clock import local_naive
from watchdog_oom.daemon.shared import Shared
from watchdog_oom.model import CaughtUp, KernelLine, OomKill, SourceGap, with_local_time
from watchdog_oom.parse import OomParser, undo_future_year
from watchdog_oom.rules.enrich import enrich_kill, state_before
from watchdog_oom.store.health import database_failure

log = logging.getLogger("watchdog_oom")

CURSOR_COMMIT_INTERVAL = 5.0  # seconds: how often a cursor alone (no kill) is committed
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


class Pipeline:
    """Parses one source's lines and stores the kills found, with the source's cursor."""

    def __init__(self, shared: Shared, source_name: str, first_start: bool) -> None:
        self.shared = shared
        self.source_name = source_name
        self.year = local_naive(shared.clock()).year
        self.parser = OomParser(year=self.year)
        self.first_start = first_start
        self.source_name_known = bool(source_name)  # False: the first open failed
        self.caught_up = False
        self.backlog: list[int] = []
        self.caught_up_kills = 0  # recorded from the source's backlog, before it caught up
        self.unsaved: list[OomKill] = []
        self.held_since = 0.0  # time.monotonic() when the oldest unsaved kill was found
        self.retry_at = 0.0  # time.monotonic() before which a failed database is not tried again
        self.retry_delay = RETRY_FIRST
        self.last_kill_commit = 0.0  # time.monotonic() of the last commit that stored kills
        self.cursor: str | None = None
        self.cursor_dirty = False
        self.last_commit = shared.clock()

    def resume(self, source_name: str, first_start: bool) -> None:
        """A reopened source starts again from the stored cursor: drop the half-read report
        (its lines come again). A first start that had not caught up yet still has not:
        the rest of the old buffer joins the same single summary."""
        self.source_name = source_name
        self.parser = OomParser(year=self.year)
        self.cursor, self.cursor_dirty = None, False
        if self.caught_up or not self.source_name_known:
            self.first_start, self.caught_up = first_start, False
        self.source_name_known = True

    def pending(self) -> bool:
        """Whether work waits for a quiet moment (None): kills held while the database
        refused them, a cursor not saved yet, a report still being read."""
        return bool(self.unsaved) or self.cursor_dirty or self.parser.collecting

    def handle(self, event: KernelLine | SourceGap | CaughtUp | None) -> None:
        """Take one event of the source (None: it has been idle a moment)."""
        if isinstance(event, KernelLine):
            self._line(event)
        elif event is None:
            self.record(self.parser.flush())
        elif isinstance(event, CaughtUp):
            self.record(self.parser.flush())
            self._caught_up()
        elif isinstance(event, SourceGap):
            self._gap(event)

    def _line(self, line: KernelLine) -> None:
        year = local_naive(self.shared.clock()).year if line.wrapped else self.year
        if year != self.year and not self.parser.collecting:
            # Syslog dates carry no year: a new parser for the new year, between reports.
            self.year = year
            self.parser = OomParser(year=self.year)
        kills = self.parser.feed(line)
        unread = self.parser.unread.drain()
        if unread:
            self._unreadable(unread)
        if line.cursor is not None:
            self.cursor, self.cursor_dirty = line.cursor, True
        if kills or self.unsaved:
            self.record(kills, force=False)
        elif self.cursor_dirty and (self.shared.clock() - self.last_commit).total_seconds() > CURSOR_COMMIT_INTERVAL:
            self.record([])

    def _caught_up(self) -> None:
        """The source has delivered its backlog: on a first start, one summary of the old kills."""
        s = self.shared
        self.caught_up = True
        if self.first_start and self.backlog:
            with s.store.tx() as tx:
                s.outbox.backlog_summary(tx, tx.kills_by_id(self.backlog), s.clock())
            s.wakeup.set()
        n = self.caught_up_kills
        how = " (one summary notification)" if self.first_start and self.backlog else ""
        log.info("kernel log %s: caught up, %d earlier kill%s recorded%s", self.source_name, n,
                 "" if n == 1 else "s", how)
        self.backlog = []
        self.caught_up_kills = 0

    def _gap(self, gap: SourceGap) -> None:
        """Lines the source lost: a notification, and the cursor moved past them."""
        s = self.shared
        log.warning("kernel log %s: %s", gap.source, gap.message)
        with s.store.tx() as tx:
            s.outbox.gap(tx, gap.source, gap.missed, gap.message, s.clock())
            if gap.cursor:
                tx.set_cursor(gap.source, gap.cursor, s.clock())
        s.wakeup.set()

    def _unreadable(self, lines: list[Any]) -> None:
        """Lines holding a kill's words that no recogniser read: logged and notified
        (redacted, cut; channels escape them), so a person can look. Never fatal."""
        from watchdog_oom.dispatch import unreadable

        s = self.shared
        for line in lines:
            text = s.redactor.redact(line.text)
            log.warning("kernel log %s: a line holds a kill's words but could not be read (%s): %r",
                        self.source_name, line.reason, text)
        try:
            with s.store.tx() as tx:
                for line in lines:
                    unreadable(s.outbox, tx, self.source_name, s.redactor.redact(line.text), line.reason, s.clock())
        except Exception as exc:  # the database is down: the log line above stays
            log.error("kernel log %s: cannot queue the unreadable-line notice: %s", self.source_name, exc)
            return
        s.wakeup.set()

    def enrich(self, kill: OomKill, booted: dict[str, Any] | None = None) -> OomKill:
        """The kill completed from what the daemon knew before it, and where it runs
        (`booted` caches the boot time over a batch)."""
        s = self.shared
        booted_at = None
        if kill.source not in ("kmsg", "journal"):  # those read this boot only: no need to ask
            if booted is not None and "at" in booted:
                booted_at = booted["at"]
            else:
                uptime = procfs.read_uptime(s.cfg.procfs)
                booted_at = None if uptime is None else s.clock() - timedelta(seconds=uptime)
                if booted is not None:
                    booted["at"] = booted_at
        known = s.host.cache.lookup(kill.pid, kill.process) if kill.pid is not None else None
        return enrich_kill(kill, host=s.cfg.host, boot_id=s.boot_id, known=known, booted_at=booted_at,
                           redact=s.redactor.redact)

    def context(self, kill: OomKill) -> dict[str, Any]:
        """What the host looked like just before the kill, when the last sample is recent."""
        s = self.shared
        with s.lock:
            last = s.host.last_sample()
        context = state_before(kill, last, min(s.cfg.commit.interval, s.cfg.memory.interval))
        link = s.cgroups.alert_before(kill)
        if link is not None:
            context["cgroup_alert"] = link  # the warning before it, for `show`
        return context

    def record(self, kills: list[OomKill], force: bool = True) -> None:
        """Store kills with the cursor, and queue their notifications, in one transaction.

        A kill is stored at once; in a burst (kills following a commit within BATCH_WAIT),
        with `force` False, they wait (at most BATCH_WAIT seconds, at most BATCH_MAX of
        them) for the ones that follow, and are stored together.
        When the database refuses (locked, full, gone), the kills are held (at most
        HELD_MAX; beyond that the source is not read on until they are stored) and tried
        again; the cursor stays behind them, so even a crash in between loses nothing.
        A kill the database refuses on its own (a value it cannot take) is quarantined and
        the others are stored.
        """
        if kills and not self.unsaved:
            self.held_since = time.monotonic()
        self.unsaved += kills
        # Commit the cursor only between incidents: resuming in the middle of one would
        # lose its header (the invoker) and task table.
        save_cursor = self.cursor_dirty and not self.parser.collecting
        if not self.unsaved and not save_cursor:
            return
        clock = time.monotonic()
        in_burst = clock - self.last_kill_commit < BATCH_WAIT
        if not force and in_burst and self.unsaved and len(self.unsaved) < BATCH_MAX \
                and clock - self.held_since < BATCH_WAIT:
            return
        if not force and time.monotonic() < self.retry_at and len(self.unsaved) < HELD_MAX:
            return  # the database failed a moment ago: not again at every line of a flood
        self._commit(save_cursor)

    def _commit(self, save_cursor: bool) -> bool:
        """Try to store what is held; True when it was."""
        kills, now = self.unsaved, self.shared.clock()
        watch = self.shared.database
        try:
            with watch.lock if watch is not None else contextlib.nullcontext():
                try:
                    new_rows, backlog = self._store(kills, save_cursor, now)
                except Exception as exc:
                    if database_failure(exc):
                        raise
                    new_rows, backlog = self._store_each(kills, save_cursor, now)
        except Exception as exc:
            self._held(self.unsaved, exc)
            return False
        if self.retry_at:
            log.info("kernel log %s: the %d held kill(s) are stored now", self.source_name, len(kills))
        if watch is not None:
            watch.succeeded()
        if kills:
            self.last_kill_commit = time.monotonic()
        self.unsaved, self.retry_at, self.retry_delay = [], 0.0, RETRY_FIRST
        self.backlog += backlog
        if not self.caught_up:
            self.caught_up_kills += len(new_rows)
        if save_cursor:
            self.cursor_dirty = False
            self.last_commit = now
        self._log_recorded(new_rows)
        if new_rows:
            self.shared.wakeup.set()
        return True

    def _held(self, kills: list[OomKill], exc: Exception) -> None:
        """The database refused: keep the kills, tell the database watch, retry later."""
        if not self.retry_at:
            log.error("kernel log %s: cannot store %d kill(s), holding them and retrying: %s",
                      self.source_name, len(kills), exc)
        self.retry_at = time.monotonic() + self.retry_delay
        self.retry_delay = min(self.retry_delay * 2, RETRY_MAX)
        watch = self.shared.database
        if watch is not None:
            watch.failed(exc, held=len(kills))

    def wait_for_room(self, stop: Any) -> None:
        """Hold the source (read no further) while HELD_MAX kills wait for the database."""
        while len(self.unsaved) >= HELD_MAX and not stop.is_set():
            save_cursor = self.cursor_dirty and not self.parser.collecting
            if self._commit(save_cursor):
                return
            stop.wait(max(self.retry_at - time.monotonic(), 0.05))

    def _log_recorded(self, rows: list[Any]) -> None:
        """One log line per kill; in a burst, the first few and a count."""
        for row in rows[:LOGGED_PER_BATCH]:
            log.warning("OOM kill recorded (id %d): %s %s killed by %s%s", row.id, row.process,
                        f"pid {row.pid}" if row.pid is not None else "(a cgroup)", row.killer,
                        f" in {row.task_memcg}" if row.task_memcg else "")
        if len(rows) > LOGGED_PER_BATCH:
            log.warning("... and %d more OOM kills recorded (ids %d to %d)", len(rows) - LOGGED_PER_BATCH,
                        rows[LOGGED_PER_BATCH].id, rows[-1].id)

    def _store(self, kills: list[OomKill], save_cursor: bool, now: Any) -> tuple[list[Any], list[int]]:
        """One transaction: the new kills, their notifications (or their place in the
        first start's backlog), the cursor. Returns the new rows and the backlog's ids."""
        s = self.shared
        reference = local_naive(now)
        prepared = []
        booted: dict[str, Any] = {}
        for kill in kills:
            # Local time made explicit once: every later step needs it.
            kill = with_local_time(undo_future_year(kill, reference))
            prepared.append((self.enrich(kill, booted), self.context(kill)))
        with s.store.tx() as tx:
            new_rows = [row for row in tx.add_kills(prepared, now) if row is not None]
            backlog = [row.id for row in new_rows] if self.first_start and not self.caught_up else []
            if new_rows and not backlog:
                s.outbox.kills(tx, new_rows, now)
            if save_cursor:
                tx.set_cursor(self.source_name, self.cursor, now)
        return new_rows, backlog

    def _store_each(self, kills: list[OomKill], save_cursor: bool, now: Any) -> tuple[list[Any], list[int]]:
        """The batch failed for a reason of its own: store the kills one by one, each in its
        own transaction, quarantining any the database will not take (kept with its raw
        text and the error, alerted once as kill.unstored). Raises when the database
        itself fails meanwhile (the kills not stored yet stay held)."""
        new_rows: list[Any] = []
        backlog: list[int] = []
        for i, kill in enumerate(kills):
            try:
                rows, ids = self._store([kill], False, now)
            except Exception as exc:
                if database_failure(exc):
                    self.unsaved = kills[i:]
                    raise
                self._quarantine(kill, exc, now)
                continue
            new_rows += rows
            backlog += ids
        if save_cursor:
            with self.shared.store.tx() as tx:
                tx.set_cursor(self.source_name, self.cursor, now)
        return new_rows, backlog

    def _quarantine(self, kill: OomKill, exc: Exception, now: Any) -> None:
        """Keep a kill the database refused, with its raw text and the error; alert once."""
        s = self.shared
        error = f"{type(exc).__name__}: {exc}"
        log.error("kernel log %s: a kill could not be stored and is quarantined (%s): %s", self.source_name,
                  error, kill.extra.get("raw") or kill.process)
        with s.store.tx() as tx:
            quarantined = tx.quarantine_kill(kill, error, now)
            s.outbox.unstored(tx, quarantined, now)
        s.wakeup.set()


"""Kernel lines in, stored kills and their notifications out, one transaction at a time.

The kill's walk, downward: the source's event → the parser (lines → OomKill) → the
enrichment rule (what was known before the kill) → one store transaction holding the
kill, the source's cursor and the outbox rows it causes → the outbox thread's doorbell.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from watchdog_oom import procfs
from watchdog_oom.clock import local_naive
from watchdog_oom.daemon.shared import Shared
from watchdog_oom.model import CaughtUp, KernelLine, OomKill, SourceGap
from watchdog_oom.parse import OomParser, undo_future_year
from watchdog_oom.rules.enrich import enrich_kill, state_before

log = logging.getLogger("watchdog_oom")

CURSOR_COMMIT_INTERVAL = 5.0  # seconds: how often a cursor alone (no kill) is committed


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
        year = local_naive(self.shared.clock()).year
        if line.wrapped and year != self.year and not self.parser.collecting:
            # Syslog dates carry no year: a new parser for the new year, between reports.
            self.year = year
            self.parser = OomParser(year=self.year)
        kills = self.parser.feed(line)
        unread = self.parser.unread.drain()
        if unread:
            self._unreadable(unread)
        if line.cursor is not None:
            self.cursor, self.cursor_dirty = line.cursor, True
        if kills:
            self.record(kills)
        elif self.cursor_dirty and (self.shared.clock() - self.last_commit).total_seconds() > CURSOR_COMMIT_INTERVAL:
            self.record([])

    def _caught_up(self) -> None:
        """The source has delivered its backlog: on a first start, one summary of the old kills."""
        s = self.shared
        self.caught_up = True
        if self.first_start and self.backlog:
            with s.store.tx() as tx:
                rows = [tx.session.get(_kill_table(), i) for i in self.backlog]
                s.outbox.backlog_summary(tx, [r for r in rows if r is not None], s.clock())
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

    def enrich(self, kill: OomKill) -> OomKill:
        """The kill completed from what the daemon knew before it, and where it runs."""
        s = self.shared
        booted_at = None
        if kill.source not in ("kmsg", "journal"):  # those read this boot only: no need to ask
            uptime = procfs.read_uptime(s.cfg.procfs)
            booted_at = None if uptime is None else s.clock() - timedelta(seconds=uptime)
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

    def record(self, kills: list[OomKill]) -> None:
        """Store kills with the cursor, and queue their notifications, in one transaction.

        When the database refuses (locked, full, gone), the kills are held and tried again
        at the next line or idle moment; the cursor stays behind them, so even a crash in
        between loses nothing.
        """
        kills = self.unsaved + kills
        # Commit the cursor only between incidents: resuming in the middle of one would
        # lose its header (the invoker) and task table.
        save_cursor = self.cursor_dirty and not self.parser.collecting
        if not kills and not save_cursor:
            return
        now = self.shared.clock()
        try:
            new_rows, backlog = self._store(kills, save_cursor, now)
        except Exception as exc:
            if not self.unsaved:
                log.error("kernel log %s: cannot store %d kill(s), holding them and retrying: %s",
                          self.source_name, len(kills), exc)
            self.unsaved = kills
            return
        if self.unsaved:
            log.info("kernel log %s: the held kills are stored now", self.source_name)
        self.unsaved = []
        self.backlog += backlog
        if not self.caught_up:
            self.caught_up_kills += len(new_rows)
        if save_cursor:
            self.cursor_dirty = False
            self.last_commit = now
        for row in new_rows:
            log.warning("OOM kill recorded (id %d): %s %s killed by %s%s", row.id, row.process,
                        f"pid {row.pid}" if row.pid is not None else "(a cgroup)", row.killer,
                        f" in {row.task_memcg}" if row.task_memcg else "")
        if new_rows:
            self.shared.wakeup.set()

    def _store(self, kills: list[OomKill], save_cursor: bool, now: Any) -> tuple[list[Any], list[int]]:
        """One transaction: the new kills, their notifications (or their place in the
        first start's backlog), the cursor. Returns the new rows and the backlog's ids."""
        s = self.shared
        new_rows: list[Any] = []
        backlog: list[int] = []
        reference = local_naive(now)
        with s.store.tx() as tx:
            for kill in kills:
                kill = undo_future_year(kill, reference)
                row = tx.add_kill(self.enrich(kill), now, self.context(kill))
                if row is None:
                    continue
                new_rows.append(row)
                if self.first_start and not self.caught_up:
                    backlog.append(row.id)
                else:
                    s.outbox.kill(tx, row, now)
            if save_cursor:
                tx.set_cursor(self.source_name, self.cursor, now)
        return new_rows, backlog


def _kill_table() -> Any:
    from watchdog_oom.store import Kill

    return Kill

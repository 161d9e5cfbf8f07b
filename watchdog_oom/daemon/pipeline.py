"""A kernel-log source's events read in order: lines parsed into kills, each kill
enriched, then handed down to the writer.

The kill's walk, downward: the source's event → the parser (lines → OomKill) → the
enrichment rule (what was known before the kill, and the host's state just before it) →
writer.py (one store transaction holding the kill, the source's cursor and the outbox
rows it causes; held while the database is down) → the outbox thread's doorbell.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from watchdog_oom import procfs
from watchdog_oom.bounds import no_nul
from watchdog_oom.clock import local_naive
from watchdog_oom.daemon.shared import Shared
from watchdog_oom.daemon.writer import KillWriter, Prepared
from watchdog_oom.model import CaughtUp, KernelLine, OomKill, SourceGap, with_local_time
from watchdog_oom.parse import OomParser, undo_future_year
from watchdog_oom.rules.enrich import enrich_kill, state_before

log = logging.getLogger("watchdog_oom")

CURSOR_COMMIT_INTERVAL = 5.0  # seconds: how often a cursor alone (no kill) is committed


class Pipeline:
    """Parses one source's lines, enriches the kills found and hands them to its writer."""

    def __init__(self, shared: Shared, source_name: str, first_start: bool, provisional: bool = False) -> None:
        self.shared = shared
        # Opened without its stored cursor (the database did not answer at start): the
        # backlog is left to the reading from that cursor once it answers (`resume`), the
        # kills found after it are held, and no cursor is saved meanwhile.
        self.provisional = provisional
        self.source_name = source_name
        self.year = local_naive(shared.clock()).year
        self.parser = OomParser(year=self.year)
        self.first_start = first_start
        self.source_name_known = bool(source_name)  # False: the first open failed
        self.caught_up = False
        self.backlog: list[int] = []
        self.caught_up_kills = 0  # recorded from the source's backlog, before it caught up
        self.writer = KillWriter(shared, source_name)
        self.cursor: str | None = None
        self.cursor_dirty = False
        self.last_commit = shared.clock()

    def resume(self, source_name: str, first_start: bool, provisional: bool = False) -> None:
        """A reopened source starts again from the stored cursor: drop the half-read report
        (its lines come again). A first start that had not caught up yet still has not:
        the rest of the old buffer joins the same single summary. `provisional`: reopened
        without the stored cursor still (see __init__)."""
        self.source_name = self.writer.source_name = source_name
        self.parser = OomParser(year=self.year)
        self.cursor, self.cursor_dirty = None, False
        if self.provisional or provisional:  # its backlog is left, or now read from the cursor
            self.provisional, self.caught_up = provisional, False
            self.first_start = first_start and not provisional
            self.source_name_known = True
            return
        if self.caught_up or not self.source_name_known:
            self.first_start, self.caught_up = first_start, False
        self.source_name_known = True

    def pending(self) -> bool:
        """Whether work waits for a quiet moment (None): kills held while the database
        refused them, a cursor not saved yet, a report still being read."""
        return bool(self.writer.held) or self.cursor_dirty or self.parser.collecting

    @property
    def unsaved(self) -> list[OomKill]:
        """The kills found and not stored yet (held while the database refuses them)."""
        return [kill for kill, _ in self.writer.held]

    def full(self) -> bool:
        """Whether so many kills are held that the source must not be read on."""
        return self.writer.full()

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
        if unread and not self._backlog_left():
            self._unreadable(unread)
        if line.cursor is not None:
            self.cursor, self.cursor_dirty = line.cursor, True
        if kills or self.writer.held:
            self.record(kills, force=False)
        elif self.cursor_dirty and (self.shared.clock() - self.last_commit).total_seconds() > CURSOR_COMMIT_INTERVAL:
            self.record([])

    def _caught_up(self) -> None:
        """The source has delivered its backlog: on a first start, one summary of the old kills."""
        if self._backlog_left():
            self.caught_up = True
            log.info("kernel log %s: caught up; its backlog is read from the stored cursor once the history "
                     "database answers, new kills are held in memory until then", self.source_name)
            return
        self.caught_up = True
        if self.first_start and self.backlog:
            self.writer.summary(self.backlog)
        n = self.caught_up_kills
        how = " (one summary notification)" if self.first_start and self.backlog else ""
        log.info("kernel log %s: caught up, %d earlier kill%s recorded%s", self.source_name, n,
                 "" if n == 1 else "s", how)
        self.backlog = []
        self.caught_up_kills = 0

    def _gap(self, gap: SourceGap) -> None:
        """Lines the source lost: a notification, and the cursor moved past them."""
        if self._backlog_left():
            return  # in the backlog: the reading from the stored cursor meets it again
        log.warning("kernel log %s: %s", gap.source, gap.message)
        self.writer.gap(gap)

    def _unreadable(self, lines: list[Any]) -> None:
        """Lines holding a kill's words that no recogniser read: logged and notified
        (redacted, cut; channels escape them), so a person can look. Never fatal."""
        # (a NUL escaped: PostgreSQL would refuse the notice)
        texts = [(no_nul(self.shared.redactor.redact(line.text)), line.reason) for line in lines]
        for text, reason in texts:
            log.warning("kernel log %s: a line holds a kill's words but could not be read (%s): %r",
                        self.source_name, reason, text)
        self.writer.unreadable(texts)

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
        """Enrich kills and hand them to the writer with the cursor, to be stored in one
        transaction with their notifications (see KillWriter.write: a burst is stored
        together, kills are held while the database refuses them, a kill it refuses on
        its own is quarantined; the cursor stays behind what is held, so even a crash
        in between loses nothing)."""
        if self._backlog_left():
            kills = []
        now = self.shared.clock()
        reference = local_naive(now)
        booted: dict[str, Any] = {}
        prepared: list[Prepared] = []
        for kill in kills:
            # Local time made explicit once: every later step needs it.
            kill = with_local_time(undo_future_year(kill, reference))
            prepared.append((self.enrich(kill, booted), self.context(kill)))
        self._write(prepared, force)

    def _write(self, prepared: list[Prepared], force: bool) -> bool:
        """Hand kills down with the cursor; True when what was held got stored."""
        # Commit the cursor only between incidents: resuming in the middle of one would
        # lose its header (the invoker) and task table.
        save_cursor = self.cursor_dirty and not self.parser.collecting and not self.provisional
        summarise = self.first_start and not self.caught_up
        new_rows = self.writer.write(prepared, self.cursor if save_cursor else None, force=force,
                                     summarise=summarise)
        if new_rows is None:
            return False
        if summarise:
            self.backlog += [row.id for row in new_rows]
        if not self.caught_up:
            self.caught_up_kills += len(new_rows)
        if save_cursor:
            self.cursor_dirty = False
            self.last_commit = self.shared.clock()
        return True

    def _backlog_left(self) -> bool:
        """Whether what is read now is backlog left to the reading from the stored cursor."""
        return self.provisional and not self.caught_up

    def wait_for_room(self, stop: Any) -> None:
        """Hold the source (read no further) while the writer holds all the kills it may
        (HELD_MAX) for the database."""
        while self.writer.full() and not stop.is_set():
            if self._write([], force=True):
                return
            stop.wait(self.writer.retry_in())

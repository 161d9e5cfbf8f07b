"""The kernel-log follower: one thread reading the configured source into a Pipeline,
reopening it from the stored cursor when it ends or fails, and alerting while it cannot.

Opened while the database server does not answer (`open(provisional=True)`), it reads
without the stored cursor, holding the kills that happen meanwhile, and reopens the log
from that cursor once the database's start is done (`database_ready`)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from watchdog_oom.daemon.pipeline import Pipeline
from watchdog_oom.daemon.recording import record_events
from watchdog_oom.daemon.shared import Shared
from watchdog_oom.model import KernelLine, SourceGap
from watchdog_oom.rules.alerts import source_down, source_up
from watchdog_oom.sources import SourceError, select_source

log = logging.getLogger("watchdog_oom")

MAX_DELAY = 60.0  # seconds between reopening attempts, at most
STABLE = 60.0  # a source that read this long before failing starts the back-off again
MISSING_GRACE = 5.0  # seconds a log file may be missing (rotation in progress) before it is alerted
# Seconds of quiet after which the parser is flushed (a kill line with no more to come),
# held kills are tried again and the cursor saved. Only while there is such work: an idle
# source then yields nothing, and the thread sleeps until the log says something.
IDLE = 0.5


class KernelLogFollower:
    """Follows the kernel log in its own thread; `open()` before READY=1, `close()` at stop."""

    def __init__(self, shared: Shared, stop: threading.Event) -> None:
        self.shared = shared
        self.stop = stop
        self.source: Any = None
        self.source_is_down = False  # the outage alert is firing
        self.source_problem: str | None = None  # a failure not yet alerted
        self.missing_since: float | None = None  # time.monotonic() since the source's file is missing
        self.thread: threading.Thread | None = None
        self._reopen = threading.Event()  # the database answers: read on from the stored cursor

    def open(self, provisional: bool = False) -> None:
        """Open the kernel log; a thread follows it from then on (and retries if it would not open).
        `provisional`: the database does not answer, so the stored cursor cannot be read."""
        try:
            source, reason, cursors = self._select(provisional)
        except SourceError as exc:
            log.error("kernel log: %s; retrying, and counting OOM kills from /proc/vmstat meanwhile", exc)
            self.source_problem = str(exc)  # alerted by the follower thread, which retries
            source, cursors = None, {}
        else:
            log.info("kernel log: %s", reason)
            if source is None:
                return
            missing = self._waiting_for(source)
            if missing:
                self.missing_since = time.monotonic()
                log.warning("kernel log: %s; no OOM kill can be read from it until it appears (alerted as "
                            "kernel_log.down if it stays missing)", missing)
        self.source = source
        name = source.name if source is not None else None
        pipeline = Pipeline(self.shared, name or "", first_start=not provisional and name is not None
                            and name not in cursors, provisional=provisional)
        self.thread = threading.Thread(target=self.loop, args=(pipeline,), name="kernel-log", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Close the source, which ends the thread's read (call after setting `stop`)."""
        if self.source is not None:
            self.source.close()

    def join(self, timeout: float) -> None:
        """Wait for the thread to end."""
        if self.thread is not None:
            self.thread.join(timeout=timeout)

    def database_ready(self) -> None:
        """The database's start is done: store the kills held, and read on from the stored cursor."""
        self._reopen.set()

    def _select(self, provisional: bool = False) -> tuple[Any, str, dict[str, str]]:
        """Open the configured kernel log where its stored cursor left off (`provisional`:
        without it, from the start of what the log keeps)."""
        kl = self.shared.cfg.kernel_log
        cursors: dict[str, str] = {}
        if not provisional:
            with self.shared.store.tx() as tx:
                cursors = tx.cursors()
        source, reason = select_source(kl.source, kl.path, cursors=cursors)
        return source, reason, cursors

    def loop(self, pipeline: Pipeline) -> None:
        """Follow the kernel log; when it ends or fails, reopen it from the stored cursor,
        waiting longer after each failure (1 s doubling to a minute). Nothing that goes
        wrong here (a locked database included) may end this thread: it is how kills are seen."""
        delay = 1.0
        while not self.stop.is_set():
            try:
                delay = self._follow_once(pipeline, delay)
            except Exception:
                log.exception("kernel log: unexpected failure; retrying")
                self.source = None
                delay = min(delay * 2, MAX_DELAY)
                if self.stop.wait(delay):
                    return

    def _follow_once(self, pipeline: Pipeline, delay: float) -> float:
        """Read the open source until it ends, then wait and reopen it; returns the next delay."""
        if self.source is not None:
            began = time.monotonic()
            problem = self._follow(self.source, pipeline)
            if self.stop.is_set():
                return delay
            if problem:
                self.source_problem = problem
            if time.monotonic() - began > STABLE:
                delay = 1.0
            self.source = None
        if self.source_problem:
            self._down(self.source_problem)
        # The database answering is no failure: read on from the stored cursor at once.
        if self.stop.wait(0.0 if self._reopen.is_set() else delay):
            return delay
        self._reopen.clear()
        watch = self.shared.database
        provisional = watch is not None and not watch.ready()  # still without the stored cursor
        try:
            source, reason, cursors = self._select(provisional)
        except SourceError as exc:
            log.error("kernel log: cannot reopen: %s", exc)
            self.source_problem = str(exc)
            return min(delay * 2, MAX_DELAY)
        if source is None:  # kernel_log.source: none
            return delay
        log.info("kernel log: reopened, %s", reason)
        pipeline.resume(source.name, first_start=source.name not in cursors, provisional=provisional)
        self.source = source
        return min(delay * 2, MAX_DELAY)

    def _follow(self, source: Any, pipeline: Pipeline) -> str | None:
        """Feed the source's events to the pipeline until it ends; returns why it failed
        (None when it just ended, as a FIFO or file does when its writers are gone)."""
        try:
            for event in source.events(idle_timeout=IDLE):
                if self.stop.is_set():
                    return None
                try:
                    if isinstance(event, KernelLine) and pipeline.full():
                        pipeline.wait_for_room(self.stop)  # the source keeps the rest meanwhile
                    if event is None:
                        self._missing(source)
                    elif not isinstance(event, SourceGap) and not self._waiting_for(source):
                        self._up()
                    pipeline.handle(event)
                    if self._reopen.is_set() and pipeline.provisional:
                        self._leave_provisional(source, pipeline)
                        return None
                except Exception:
                    log.exception("kernel log %s: failed to handle an event", source.name)
                # One quiet moment after anything read; more while work waits for one.
                wanted = event is not None or pipeline.pending() or self._waiting_for(source) is not None \
                    or pipeline.provisional
                source.idle_timeout = IDLE if wanted else None
        except SourceError as exc:
            log.error("kernel log %s stopped: %s", source.name, exc)
            return str(exc)
        except Exception as exc:
            log.exception("kernel log %s stopped unexpectedly", source.name)
            return f"{type(exc).__name__}: {exc}"
        log.info("kernel log %s ended", source.name)
        return None

    def _leave_provisional(self, source: Any, pipeline: Pipeline) -> None:
        """The database answers: store the kills held (what cannot be stays held), and end
        this reading, so that the log is opened again from the stored cursor."""
        pipeline.record([])
        source.close()
        log.info("kernel log %s: the history database answers; reading on from the stored cursor", source.name)

    def _waiting_for(self, source: Any) -> str | None:
        """Why an open source cannot read yet (a log file that does not exist), or None."""
        problem = getattr(source, "problem", None)
        return problem() if problem is not None else None

    def _missing(self, source: Any) -> None:
        """A source waiting for its file: warned at once, alerted (kernel_log.down) when it
        is still missing MISSING_GRACE seconds later."""
        problem = self._waiting_for(source)
        if problem is None:
            self.missing_since = None
            return
        now = time.monotonic()
        if self.missing_since is None:
            self.missing_since = now
            log.warning("kernel log %s: %s; waiting for it (alerting if it stays missing)", source.name, problem)
        elif now - self.missing_since >= MISSING_GRACE and not self.source_is_down:
            self._down(f"{problem} (for {now - self.missing_since:.0f} s)")

    def _down(self, problem: str) -> None:
        """Raise (once per outage) the alert that OOM kills are not being read. Raises
        what the database raises; the caller tries again on its next pass."""
        s = self.shared
        now = s.clock()
        with s.store.tx() as tx:
            record_events(tx, s.outbox, [source_down(problem, now)], now)
        self.source_is_down = True
        self.source_problem = None
        s.wakeup.set()

    def _up(self) -> None:
        """Resolve the outage alert once the log reads again."""
        if not self.source_is_down:
            return
        s = self.shared
        now = s.clock()
        with s.store.tx() as tx:
            record_events(tx, s.outbox, [source_up(now)], now)
        self.source_is_down = False
        s.wakeup.set()

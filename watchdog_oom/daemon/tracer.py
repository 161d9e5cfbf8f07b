"""The tracepoint follower: one thread reading the kernel's oom tracepoints into the history.

``oom/mark_victim`` becomes a kill record (or joins the log's record of the same kill,
whichever witness comes first), ``oom/oom_score_adj_update`` an audited adjustment
(``daemon.adjwatch``). Every few seconds a sweep compares the witnesses of recent kills
(``rules.witnesses``) and raises ``oom.unlogged`` where they disagree.

Whether it runs is ``kernel_log.tracepoints``: ``auto`` where tracefs is mounted and this
process may make an instance, ``on`` always (mounting tracefs if needed, and unmounting
it at stop), ``off`` never.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from watchdog_oom import procfs
from watchdog_oom.daemon.adjwatch import AdjWatch
from watchdog_oom.daemon.shared import Shared
from watchdog_oom.model import Alert, OomKill
from watchdog_oom.rules.enrich import enrich_kill, state_before
from watchdog_oom.rules.witnesses import MARGIN, TraceWindow, Witnessed, suspect, unlogged
from watchdog_oom.sources.base import SourceError
from watchdog_oom.sources.tracefs import ruled_out
from watchdog_oom.sources.tracepoint import (
    TRACEFS_MOUNTS,
    TracepointSource,
    find_tracefs,
    mount_tracefs,
    unusable,
)
from watchdog_oom.store import tracing
from watchdog_oom.trace_events import (
    AdjWritten,
    EventsLost,
    VictimMarked,
    classify_marks,
    victim_to_kill,
)

log = logging.getLogger("watchdog_oom")

# With a kernel log being read, a traced kill waits this long for the log's record of it,
# so that the one record (and its notification) carries both witnesses' fields; printk
# and /dev/kmsg deliver within milliseconds. Without a log it is stored at once.
HOLD = 0.5
IDLE = 0.25  # seconds of quiet after which held kills are looked at
# Seconds between comparisons of the witnesses: often for a while after a kill the
# tracepoint saw (every SWEEP, or kernel_log.witness_wait if shorter), seldom otherwise (a
# forged log line is found within a minute).
SWEEP = 5.0
SWEEP_IDLE = 60.0
BUSY = 120.0  # seconds after a traced kill during which the sweep runs every SWEEP
SWEEP_BACK = timedelta(minutes=10)  # how far back a sweep looks, at least (look_back)
MATCH_WINDOW = timedelta(seconds=5)  # the log's record of the same kill lies this close
RETRY = 5.0  # seconds before reopening the instance after a failure
# The tracepoint's values win over the log's: exact time, and the victim's figures at the kill.
TRACE_FIELDS = ("time", "uid", "total_vm_kb", "anon_rss_kb", "file_rss_kb", "shmem_rss_kb", "pgtables_kb",
                "oom_score_adj", "process")


def open_tracepoints(setting: str, tracefs: str | None, instance: str) -> tuple[TracepointSource | None, str, bool]:
    """The source ``kernel_log.tracepoints`` asks for, why, and whether tracefs was mounted for it.

    Raises SourceError when ``on`` cannot be honoured.
    """
    why_not = ruled_out(setting, tracefs)
    if why_not is not None:
        return None, why_not, False
    candidates = (tracefs,) if tracefs else TRACEFS_MOUNTS
    found = find_tracefs(candidates)
    mounted = False
    if found is None:  # and the setting is on
        mount_tracefs(candidates[0])
        found, mounted = candidates[0], True
        log.warning("tracepoints: mounted tracefs at %s (kernel_log.tracepoints: on); unmounted at stop", found)
    why_not = unusable(found)
    if why_not is not None:
        if setting == "on":
            raise SourceError(why_not)
        return None, f"tracepoints not read: {why_not}", mounted
    try:
        source = TracepointSource(found, instance)
    except SourceError as exc:
        if setting == "on":
            raise
        return None, f"tracepoints not read: {exc}", mounted
    return source, f"tracing {', '.join(source.enabled)} in {source.path} (clock {source.clock})", mounted


class TracepointFollower:
    """Follows the oom tracepoints in its own thread; ``open()`` at start, ``close()`` at stop.

    ``log_source()`` names the kernel log being read (None when none is), which decides
    whether a traced kill waits for the log's record and whether a missing one is news.
    """

    def __init__(self, shared: Shared, stop: threading.Event, log_source: Callable[[], str | None]) -> None:
        self.shared = shared
        self.stop = stop
        self.log_source = log_source
        self.source: TracepointSource | None = None
        self.mounted: str | None = None
        self.thread: threading.Thread | None = None
        self.window: TraceWindow | None = None
        self.counted: int | None = None
        self.pending: list[tuple[float, OomKill]] = []
        self.last_sweep = 0.0
        self.busy_until = 0.0
        self.adj = AdjWatch(shared)

    def open(self) -> None:
        """Open the instance if the configuration asks for it and the kernel allows; start the thread."""
        kl = self.shared.cfg.kernel_log
        try:
            source, reason, mounted = open_tracepoints(kl.tracepoints, kl.tracefs, kl.trace_instance)
        except SourceError as exc:
            log.error("tracepoints: %s (kernel_log.tracepoints: on)", exc)
            return
        if mounted:
            self.mounted = source.tracefs if source is not None else (kl.tracefs or TRACEFS_MOUNTS[0])
        log.info("%s", reason)
        if source is None:
            return
        self._start(source)
        self.thread = threading.Thread(target=self.loop, name="tracepoints", daemon=True)
        self.thread.start()

    def _start(self, source: TracepointSource) -> None:
        self.source = source
        self.shared.tracing = True
        self.counted = source.oom_kill_at_start
        self.window = TraceWindow(since=self.shared.clock())
        self.adj.started = self.window.since

    @property
    def running(self) -> bool:
        """Whether the tracepoints are being read."""
        return self.source is not None

    def close(self) -> None:
        """End the thread's read; the source removes its instance."""
        if self.source is not None:
            self.source.close()

    def join(self, timeout: float) -> None:
        """Wait for the thread to end, store what it held, and unmount a tracefs it mounted."""
        if self.thread is not None:
            self.thread.join(timeout=timeout)
        if self.pending:
            self._flush(force=True)
        if self.mounted is not None:
            import subprocess

            subprocess.run(["umount", self.mounted], capture_output=True, check=False, timeout=10)

    def loop(self) -> None:
        """Read events until stopped; reopen the instance after a failure."""
        while not self.stop.is_set():
            source = self.source
            if source is None:
                if self.stop.wait(RETRY):
                    return
                self._reopen()
                continue
            try:
                for event in source.events(idle_timeout=IDLE):
                    if self.stop.is_set():
                        break
                    self._handle(event)
            except SourceError as exc:
                log.error("tracepoints stopped: %s; reopening in %.0f s", exc, RETRY)
            except Exception:
                log.exception("tracepoints: unexpected failure; reopening")
            source.close()
            self.source = None
            self.shared.tracing = False

    def _reopen(self) -> None:
        kl = self.shared.cfg.kernel_log
        try:
            source, reason, _ = open_tracepoints(kl.tracepoints, kl.tracefs, kl.trace_instance)
        except SourceError as exc:
            log.error("tracepoints: cannot reopen: %s", exc)
            return
        if source is not None:
            log.info("tracepoints: reopened, %s", reason)
            self._start(source)
            self.adj.events_lost(0)  # the writes made while it was closed were never read

    def _handle(self, event: Any) -> None:
        try:
            if isinstance(event, (VictimMarked, AdjWritten)) or event is None:
                # A re-read after a loss is settled once the events stamped before it are handled.
                self.adj.before(event.mono_usec if event is not None else None)
            if isinstance(event, VictimMarked):
                self._marked(event)
            elif isinstance(event, AdjWritten):
                self.adj.written(event)
            elif isinstance(event, EventsLost):
                log.warning("tracepoints: the trace buffer of CPU %d overflowed; %d events lost", event.cpu,
                            event.count)
                if self.window is not None:
                    self.window = TraceWindow(self.window.since, (*self.window.lost[-20:], self.shared.clock()))
                self.adj.events_lost(event.count)
            self._flush()
            now = time.monotonic()
            interval = min(SWEEP, self.shared.cfg.kernel_log.witness_wait) if now < self.busy_until else SWEEP_IDLE
            if now - self.last_sweep >= interval:
                self.last_sweep = now
                self._sweep()
            if self.source is not None:
                # Wake soon while a held kill falls due; else only for the next sweep.
                self.source.idle_timeout = IDLE if self.pending or self.adj.waiting else interval
        except Exception:
            log.exception("tracepoints: failed to handle %s", type(event).__name__)

    # -- kills --------------------------------------------------------------------------

    def _marked(self, mark: VictimMarked) -> None:
        """A victim marked: a kill if the oom_kill counter accounts for it, held for its log record."""
        kills, self.counted = classify_marks([mark], self.counted)
        if not kills:
            log.info("tracepoints: pid %d was marked as an OOM victim while already exiting (no kill)", mark.pid)
            return
        s = self.shared
        alive = procfs.read_process(s.cfg.procfs, mark.pid)  # the victim may not have exited yet
        name = alive.process if alive is not None else None
        kill = victim_to_kill(mark, process=name, boot_id=s.boot_id)
        if alive is not None and alive.cmdline and kill.cmdline is None:
            kill = kill.replace(cmdline=s.redactor.redact(alive.cmdline), unit=alive.unit)
        due = time.monotonic() + (HOLD if self.log_source() else 0.0)
        self.pending.append((due, kill))
        self.busy_until = time.monotonic() + BUSY

    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        due = [k for at, k in self.pending if force or at <= now]
        if not due:
            return
        self.pending = [(at, k) for at, k in self.pending if not (force or at <= now)]
        for kill in due:
            try:
                self._store(kill)
            except Exception as exc:  # noqa: BLE001 - whatever the database raises, the kill is held
                log.error("tracepoints: cannot store the kill of pid %s yet: %s", kill.pid, exc)
                self.pending.append((now + RETRY, kill))

    def _store(self, kill: OomKill) -> None:
        """One transaction: join the log's record of this kill, or record it (and notify).

        Under the lock the kernel-log pipeline records under too (the database watch's): the
        log's thread may be storing this very kill, and two look-ups that each find nothing
        would insert it twice."""
        watch = self.shared.database
        with watch.lock if watch is not None else contextlib.nullcontext():
            self._store_now(kill)

    def _store_now(self, kill: OomKill) -> None:
        s = self.shared
        now = s.clock()
        evidence = kill.extra.get("tracepoint", {})
        with s.store.tx() as tx:
            row = tracing.find_kernel_kill(tx, kill.pid, s.boot_id, kill.time, MATCH_WINDOW) if kill.time else None
            if row is not None:
                tracing.add_witness(tx, row, kill, TRACE_FIELDS, "tracepoint", evidence)
                log.info("tracepoints: the kill of %s (pid %s, id %d) confirmed by the tracepoint",
                         row.process, row.pid, row.id)
                return
            known = None if kill.pid is None else s.host.cache.lookup(kill.pid, None if kill.process == "?" else
                                                                      kill.process)
            enriched = enrich_kill(kill, host=s.cfg.host, boot_id=s.boot_id, known=known, booted_at=None,
                                   redact=s.redactor.redact)
            with s.lock:
                last = s.host.last_sample()
            context = state_before(kill, last, min(s.cfg.commit.interval, s.cfg.memory.interval))
            row = tx.add_kill(enriched, now, context)
            if row is None:
                # The log's record lies further off than MATCH_WINDOW (a syslog stamp in whole
                # seconds of local time): add_kill found it by name; the tracepoint joins it.
                same = tx.find_same_kill(enriched)
                if same is not None:
                    tracing.add_witness(tx, same, kill, TRACE_FIELDS, "tracepoint", evidence)
                return
            s.outbox.kill(tx, row, now)
        log.warning("OOM kill recorded (id %d) from the tracepoint: %s pid %s", row.id, row.process, row.pid)
        s.wakeup.set()

    # -- witnesses ----------------------------------------------------------------------

    def _sweep(self) -> None:
        """Compare the witnesses of recent kills; raise oom.unlogged where they disagree."""
        s = self.shared
        now = s.clock()
        log_source = self.log_source()
        wait = timedelta(seconds=s.cfg.kernel_log.witness_wait)
        queued = False
        with s.store.tx() as tx:
            since = now - look_back(wait)
            since = max(self.window.since, since) if self.window else since
            for row in tracing.recent_kernel_kills(tx, s.boot_id, since):
                seen = _witnessed(row)
                alert = unlogged(seen, log_source, now, wait) or suspect(seen, self.window, now, wait)
                if alert is None:
                    continue
                tracing.note_on_kill(tx, row, "disagreed", alert.data["disagreed"])
                _record_finding(tx, s.outbox, alert, now)
                log.warning("%s", alert.summary)
                queued = True
        if queued:
            s.wakeup.set()


def look_back(wait: timedelta) -> timedelta:
    """How far back a sweep reads kills: SWEEP_BACK, or longer where kernel_log.witness_wait
    is: a kill must still be read by the first sweep after its wait ended, which comes up
    to SWEEP_IDLE later (else a long wait would silently never alert)."""
    return max(SWEEP_BACK, wait + 2 * timedelta(seconds=SWEEP_IDLE) + MARGIN)


def _witnessed(row: Any) -> Witnessed:
    details = row.details or {}
    extra = details.get("extra") or {}
    witnesses = tuple(extra.get("witnesses") or ([row.source] if row.source else []))
    return Witnessed(id=row.id, pid=row.pid, process=row.process, time=row.time, source=row.source,
                     recorded_at=row.recorded_at, witnesses=witnesses, flagged=details.get("disagreed") is not None)


def _record_finding(tx: Any, outbox: Any, alert: Alert, now: datetime) -> None:
    """An event-like alert: fired, notified, and resolved at once so the next one fires anew."""
    row, reason = tx.fire_alert(alert)
    outbox.alert(tx, alert, row, reason or "new", now)
    tx.resolve_alert(Alert(alert.key, alert.kind, "info", alert.summary, now, True, {}))


__all__ = ["TracepointFollower", "open_tracepoints"]

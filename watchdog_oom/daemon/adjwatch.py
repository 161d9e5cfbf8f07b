"""The oom_score_adj audit's shell: each write the tracepoint reports, with its writer
read from /proc at once, judged by ``adjaudit`` and stored (with its alert) in one transaction.

The writer is the task that wrote (the trace line's ``comm-tid``); /proc/TID/status
gives its process, whose name, command line (redacted), unit and uid are read while it
may still exist. A writer already gone keeps the kernel's name for it and is marked
``exited``. Writes by this daemon (``processes.protect``) are labelled as its own and
remembered, so that a later write undoing them is called what it is.

Events can be lost: when writes come faster than they are read, the trace instance's ring
buffer overwrites the oldest unread ones and ``trace_pipe`` says how many (any user can
flood writes to its own processes' value, and so push a later write to a critical process
out of the buffer). The view is then stale, so the watched processes (critical ones, and
those this daemon protected) are re-read from /proc at once, at most once a second while
the loss goes on. Each value read is settled once the events stamped before that read have
been handled (or none is left): if they do not account for it, the change they missed is
the alert its event would have raised, with the writer unknown and ``found_by: resync``.
A process scan never overwrites what the events told of a watched process, and adds one
to them only when every event up to now is read and none was lost: a scan made after a
lost write would otherwise hide it.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta

from watchdog_oom import processes, procfs
from watchdog_oom.daemon.shared import Shared
from watchdog_oom.model import Alert, ProcScore
from watchdog_oom.rules import adjaudit
from watchdog_oom.store import tracing
from watchdog_oom.trace_events import AdjWritten

log = logging.getLogger("watchdog_oom")

OWN_WRITES_KEPT = 65536
# Writes to processes that are not critical go to history at this rate at most: a burst of
# KEPT_BURST, refilled KEPT_RATE a second. Any user may write its own processes'
# oom_score_adj as fast as it likes (200,000 writes in 1.6 s as uid 65534 on the test VM),
# and each kept write is a transaction: unbounded, that grew the history without limit and
# held the tracepoint thread (and a kill behind it) for minutes. Critical processes' writes
# and this daemon's own are always kept; the others beyond the rate are counted and logged.
KEPT_RATE = 20.0
KEPT_BURST = 200
SKIPPED_LOG_EVERY = 60.0  # seconds between log lines counting writes not kept
RESYNC_EVERY = 1.0  # seconds between re-reads of the watched processes while events are lost
UNKNOWN_WRITER = "?"


class Reread:
    """A watched process's oom_score_adj as re-read after a loss, waiting to be settled."""

    __slots__ = ("proc", "read_usec", "lost")

    def __init__(self, proc: ProcScore, read_usec: int, lost: int) -> None:
        self.proc = proc
        self.read_usec = read_usec  # CLOCK_MONOTONIC, microseconds, just after the read
        self.lost = lost  # the events lost that made it re-read


class AdjWatch:
    """Turns oom_score_adj_update events into adjustments and process.adj_changed alerts."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.memory = adjaudit.AdjMemory()
        self.synced: datetime | None = None  # the ranking the memory last took values from
        self._adopted: datetime | None = None  # the ranking new watched processes last came from
        self.own: dict[int, int] = {}  # pid -> the value this daemon wrote
        self.started: datetime | None = None
        self.monotonic = time.monotonic  # a test seam
        self._tokens = float(KEPT_BURST)
        self._refilled: float | None = None
        self.skipped = 0  # writes not kept since the last log line saying so
        self._skip_logged: float | None = None
        # Critical and protected processes: pid -> (start time, the value the events last told).
        self.watched: dict[int, tuple[int | None, int]] = {}
        self.lost = 0  # events lost since the last re-read
        self._resync_due = False
        self._resynced: float | None = None
        self._rereads: list[Reread] = []
        self.mono_usec = lambda: time.monotonic_ns() // 1000  # the trace clock "mono"; a test seam

    @property
    def waiting(self) -> bool:
        """Whether a re-read is due or waits to be settled (the reader should wake soon)."""
        return self._resync_due or bool(self._rereads)

    def events_lost(self, count: int) -> None:
        """The buffer overflowed: re-read the watched processes now, or once a second has passed."""
        self.lost += count
        self._resync_due = True
        self.before(None)

    def before(self, next_usec: int | None) -> None:
        """Before an event stamped ``next_usec`` is handled (None: none is waiting): settle the
        re-reads it comes after, and re-read if due."""
        if self._rereads:
            ready = [r for r in self._rereads if next_usec is None or r.read_usec < next_usec]
            if ready:
                self._rereads = [r for r in self._rereads if r not in ready]
                for reread in ready:
                    self._settle(reread)
        if self._resync_due and not self._rereads:
            now = self.monotonic()
            if self._resynced is None or now - self._resynced >= RESYNC_EVERY:
                self._resync(now)
        if next_usec is None and not self._resync_due and not self._rereads:
            self._sync(adopt=True)  # nothing left to read, nothing lost: a scan agrees with the events

    def written(self, event: AdjWritten) -> None:
        """Record one write; alert when it touched a critical process."""
        s = self.shared
        cfg = s.cfg
        self._sync()
        # A thread of this process (processes.protect): /proc/self/task lists exactly those.
        by_watchdog = os.path.exists(f"/proc/self/task/{event.writer_tid}")
        target = procfs.read_process(cfg.procfs, event.pid) or s.host.cache.lookup(event.pid, event.process)
        critical = False
        if target is not None:
            target = target.replace(cmdline=s.redactor.redact(target.cmdline) if target.cmdline else None)
            rules, uid_max = cfg.processes.critical, cfg.processes.system_uid_max
            critical = processes.mark_critical([target], rules, uid_max)[0].critical
        when = event.time or s.clock()
        old = self.memory.written(event.pid, event.oom_score_adj, when.timestamp())
        if target is None:
            self.watched.pop(event.pid, None)
        elif critical or event.pid in self.watched or by_watchdog:
            self.watched[event.pid] = (target.start_time, event.oom_score_adj)
        if not critical and not by_watchdog and not self._keep():
            return
        writer = self._writer(event)
        protected_to = self._protected_to(event.pid, by_watchdog, event.oom_score_adj, when)
        adj = adjaudit.Adjustment(
            time=when, pid=event.pid, process=target.process if target else event.process, old_adj=old,
            new_adj=event.oom_score_adj, writer=writer, cmdline=target.cmdline if target else None,
            unit=target.unit if target else None, critical=critical, by_watchdog=by_watchdog,
            protected_to=protected_to, mono_usec=event.mono_usec)
        self._record(adj, adjaudit.alert(adj))

    def _keep(self) -> bool:
        """Whether the history takes one more write to a process that is not critical."""
        now = self.monotonic()
        if self._refilled is not None:
            self._tokens = min(float(KEPT_BURST), self._tokens + (now - self._refilled) * KEPT_RATE)
        self._refilled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.skipped += 1
        if self._skip_logged is None or now - self._skip_logged >= SKIPPED_LOG_EVERY:
            log.warning("oom_score_adj audit: %d write(s) to processes that are not critical not kept in history "
                        "(over %g a second); critical processes' writes are all kept", self.skipped, KEPT_RATE)
            self.skipped = 0
            self._skip_logged = now
        return False

    def _record(self, adj: adjaudit.Adjustment, alert: Alert | None) -> None:
        s = self.shared
        now = s.clock()
        with s.store.tx() as tx:
            tracing.add_adjustment(tx, time=adj.time, boot_id=s.boot_id, pid=adj.pid, process=adj.process,
                                   cmdline=adj.cmdline, unit=adj.unit, old_adj=adj.old_adj, new_adj=adj.new_adj,
                                   critical=adj.critical, by_watchdog=adj.by_watchdog,
                                   severity=alert.severity if alert else None, writer=adj.writer.to_dict(),
                                   found_by=adj.found_by)
            if alert is not None:
                row, reason = tx.fire_alert(alert)
                s.outbox.alert(tx, alert, row, reason or "new", now)
                # Each write is its own event: resolved at once, so the next one fires anew.
                tx.resolve_alert(Alert(alert.key, alert.kind, "info", alert.summary, now, True, {}))
        if alert is not None:
            log.warning("%s (%s): %s", alert.kind, alert.severity, alert.summary)
            s.wakeup.set()
        elif adj.critical or adj.by_watchdog:
            log.info("oom_score_adj of %s (pid %d): %s -> %d by %s", adj.process, adj.pid, adj.old_adj, adj.new_adj,
                     "watchdog-oom" if adj.by_watchdog else adj.writer.describe())

    def _writer(self, event: AdjWritten) -> adjaudit.Writer:
        procfs_root = self.shared.cfg.procfs
        tgid = procfs.read_tgid(procfs_root, event.writer_tid)
        proc: ProcScore | None = procfs.read_process(procfs_root, tgid) if tgid is not None else None
        if proc is None:
            return adjaudit.Writer(tid=event.writer_tid, process=event.writer, exited=True)
        cmdline = self.shared.redactor.redact(proc.cmdline) if proc.cmdline else None
        return adjaudit.Writer(tid=event.writer_tid, process=proc.process, pid=proc.pid, cmdline=cmdline,
                               unit=proc.unit, uid=proc.uid)

    def _sync(self, adopt: bool = False) -> None:
        """Take the old values from the newest process scan (ProcessCheck's ranking); with
        ``adopt`` (every event up to now read, none lost) also watch the processes it lists
        that are not watched yet, at the scan's value."""
        s = self.shared
        with s.lock:
            ranking, when = s.host.ranking, s.host.ranking_time
        if when is None or when == self.synced and (not adopt or when == self._adopted):
            return
        if when != self.synced:
            self.synced = when
            self.memory.seen({p.pid: p.oom_score_adj for p in ranking if p.oom_score_adj is not None},
                             when.timestamp())
        if adopt:
            self._adopted = when
        # Those already watched keep the events' values. A new one takes the scan's only once the
        # events are read up to now with none lost: before, the scan may have read a write whose
        # event is unread or was lost (a scan after the flood, before its loss is read; or after
        # the re-read, before it is settled), and the re-read after the loss (_settle) would
        # find that write's value already known. Until then a re-read takes it as never seen.
        watched: dict[int, tuple[int | None, int]] = {}
        listed = set()
        for p in ranking:
            listed.add(p.pid)
            if p.oom_score_adj is None or not (p.critical or p.pid in self.own):
                continue
            known = self.watched.get(p.pid)
            if known is not None and known[0] == p.start_time:
                watched[p.pid] = known
            elif adopt:
                watched[p.pid] = (p.start_time, p.oom_score_adj)
        # One the events made known after the scan began is not in it yet: kept while it lives.
        procfs_root = s.cfg.procfs
        watched.update({pid: known for pid, known in self.watched.items()
                        if pid not in listed and os.path.exists(os.path.join(procfs_root, str(pid)))})
        self.watched = watched

    def _resync(self, now: float) -> None:
        """Re-read the watched processes' oom_score_adj; settled later (``before``)."""
        self._sync()
        self._resync_due = False
        self._resynced = now
        procfs_root = self.shared.cfg.procfs
        for pid, (start, _) in list(self.watched.items()):
            proc = procfs.read_process(procfs_root, pid)
            read_usec = self.mono_usec()
            if proc is None or proc.start_time != start or proc.oom_score_adj is None:
                self.watched.pop(pid, None)  # gone (or its pid reused): nothing left to miss
                continue
            self._rereads.append(Reread(proc, read_usec, self.lost))
        watched = len(self._rereads)
        # Critical processes neither a scan nor an event has shown yet (started since the last
        # scan, or before the first): nothing known to compare with, so a scan of their own.
        cfg = self.shared.cfg
        try:
            unseen = [p for p in processes.mark_critical(procfs.scan_processes(procfs_root), cfg.processes.critical,
                                                         cfg.processes.system_uid_max)
                      if p.critical and p.pid not in self.watched and p.oom_score_adj is not None]
        except OSError as exc:
            log.warning("tracepoints: cannot scan %s for critical processes: %s", procfs_root, exc)
            unseen = []
        read_usec = self.mono_usec()
        self._rereads += [Reread(p, read_usec, self.lost) for p in unseen]
        log.warning("tracepoints: %d events lost since the last re-read; re-read the oom_score_adj of %d watched "
                    "processes and %d critical ones not seen before", self.lost, watched, len(unseen))
        self.lost = 0

    def _settle(self, reread: Reread) -> None:
        """The events before the re-read have been handled: alert a change they did not show."""
        proc = reread.proc
        known = self.watched.get(proc.pid)
        value = proc.oom_score_adj
        if value is None or known is not None and (known[0] != proc.start_time or known[1] == value):
            return
        # Never known: only a value likelier to die than the kernel's default is news.
        if known is None and value <= adjaudit.DEFAULT_ADJ:
            return
        s = self.shared
        cfg = s.cfg
        when = s.clock()
        self.watched[proc.pid] = (proc.start_time, value)
        self.memory.written(proc.pid, value, when.timestamp())
        proc = proc.replace(cmdline=s.redactor.redact(proc.cmdline) if proc.cmdline else None)
        critical = processes.mark_critical([proc], cfg.processes.critical, cfg.processes.system_uid_max)[0].critical
        writer = adjaudit.Writer(tid=0, process=UNKNOWN_WRITER,
                                 unknown=f"its event was lost: {reread.lost} trace events lost" if reread.lost
                                 else "its event was not read: the trace instance was reopened")
        protected_to = self._protected_to(proc.pid, False, value, when)
        adj = adjaudit.Adjustment(
            time=when, pid=proc.pid, process=proc.process, old_adj=known[1] if known else None, new_adj=value,
            writer=writer,
            cmdline=proc.cmdline, unit=proc.unit, critical=critical, by_watchdog=False, protected_to=protected_to,
            found_by="resync")
        # Back to the value this daemon set: its own protection, most likely, whose event was lost.
        self._record(adj, None if protected_to == value else adjaudit.alert(adj))

    def _protected_to(self, pid: int, by_watchdog: bool, value: int, when: datetime) -> int | None:
        """The value this daemon set on ``pid`` (from its own writes seen, or its protections table)."""
        if by_watchdog:
            self.own[pid] = value
            while len(self.own) > OWN_WRITES_KEPT:
                self.own.pop(next(iter(self.own)))
            return value
        if pid in self.own:
            return self.own[pid]
        if not self.shared.cfg.processes.protect:
            return None
        # Protections of this boot (an earlier run's included: the value it set is still there).
        uptime = procfs.read_uptime(self.shared.cfg.procfs)
        since = when - timedelta(seconds=uptime) if uptime is not None else (self.started or when)
        with self.shared.store.tx() as tx:
            return tracing.last_protection(tx, pid, since)

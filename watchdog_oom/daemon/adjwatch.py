"""The oom_score_adj audit's shell: each write the tracepoint reports, with its writer
read from /proc at once, judged by ``adjaudit`` and stored (with its alert) in one transaction.

The writer is the task that wrote (the trace line's ``comm-tid``); /proc/TID/status
gives its process, whose name, command line (redacted), unit and uid are read while it
may still exist. A writer already gone keeps the kernel's name for it and is marked
``exited``. Writes by this daemon (``processes.protect``) are labelled as its own and
remembered, so that a later write undoing them is called what it is.
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


class AdjWatch:
    """Turns oom_score_adj_update events into adjustments and process.adj_changed alerts."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.memory = adjaudit.AdjMemory()
        self.synced: datetime | None = None  # the ranking the memory last took values from
        self.own: dict[int, int] = {}  # pid -> the value this daemon wrote
        self.started: datetime | None = None
        self.monotonic = time.monotonic  # a test seam
        self._tokens = float(KEPT_BURST)
        self._refilled: float | None = None
        self.skipped = 0  # writes not kept since the last log line saying so
        self._skip_logged: float | None = None

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
            tx.add_adjustment(time=adj.time, boot_id=s.boot_id, pid=adj.pid, process=adj.process,
                              cmdline=adj.cmdline, unit=adj.unit, old_adj=adj.old_adj, new_adj=adj.new_adj,
                              critical=adj.critical, by_watchdog=adj.by_watchdog,
                              severity=alert.severity if alert else None, writer=adj.writer.to_dict())
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

    def _sync(self) -> None:
        """Take the old values from the newest process scan (ProcessCheck's ranking)."""
        s = self.shared
        with s.lock:
            ranking, when = s.host.ranking, s.host.ranking_time
        if when is None or when == self.synced:
            return
        self.synced = when
        self.memory.seen({p.pid: p.oom_score_adj for p in ranking if p.oom_score_adj is not None}, when.timestamp())

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
            return tx.last_protection(pid, since)

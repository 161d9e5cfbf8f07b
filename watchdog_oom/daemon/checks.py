"""The periodic checks: memory (sample /proc, evaluate the rules, cross-check the kill
counter) and processes (rank them, remember them for kill records, protect critical ones)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from watchdog_oom import detect, processes, procfs
from watchdog_oom.daemon.cgroups import CROSS_CHECK_CURSOR as CGROUPS_CURSOR
from watchdog_oom.daemon.recording import record_events, record_repeats, undone_unless_stored
from watchdog_oom.daemon.shared import Shared
from watchdog_oom.model import Alert, ProcScore
from watchdog_oom.rules.alerts import wants_victims, with_victims
from watchdog_oom.rules.crosscheck import cross_check

log = logging.getLogger("watchdog_oom")

VMSTAT_CURSOR = "vmstat:oom_kill"  # the cross-check's state, kept as a cursor
VICTIMS_NAMED = 5  # how many likely victims a warning names

Protection = tuple[ProcScore, int | None, int, str | None]  # process, adj before, adj wanted, error


class MemoryCheck:
    """Sample /proc, store the sample, evaluate commit, memory and trend rules."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    def __call__(self) -> None:
        s = self.shared
        cfg, now = s.cfg, s.clock()
        try:
            sample = procfs.sample(cfg.procfs, now)
        except Exception as exc:
            log.error("cannot read memory figures from %s: %s", cfg.procfs, exc)
            return
        with s.lock:
            prior = s.rules.snapshot()
            history = list(s.host.samples)
            s.host.remember(sample, keep=cfg.commit.trend_window + 2 * min(cfg.commit.interval, cfg.memory.interval))
            firing = s.rules.firing_map()
            conditions = [detect.commit_conditions(sample, cfg.commit, firing.get("commit"))]
            conditions += detect.memory_conditions(sample, cfg.memory, firing)
            trend = detect.trend_condition(history, sample, cfg.commit, now, firing.get("commit.trend"))
            if trend is not None:
                conditions.append(trend)
            trend_enabled = cfg.commit.trend_rise_percent > 0 and cfg.commit.trend_window > 0
            # No trend condition with the rule on: too little history to judge (after a
            # restart, say), which is no reason to call a firing trend resolved.
            keep = ("commit.trend",) if trend is None and trend_enabled else ()
            events = s.rules.evaluate(conditions, now, family=("commit", "memory."), keep=keep)
        if wants_victims(events):
            # Scanned before the transaction opens: a fresh scan of /proc must not hold the database.
            events = with_victims(events, likely_victims(s))
        # The check ran, whether or not the database takes its results: systemd's watchdog
        # (jobs.watchdog) must not restart a daemon that holds kills through a database outage.
        s.host.last_check = now
        with undone_unless_stored(s, prior, events), s.store.tx() as tx:
            tx.add_sample(sample)
            record_events(tx, s.outbox, events, now)
            found = cfg.kernel_log.vmstat_check and sample.oom_kill_count is not None \
                and self._cross_check(tx, sample.oom_kill_count, now)
            repeats = record_repeats(tx, s.outbox, now, cfg.notifications.repeat_interval)
        if events or found or repeats:  # the outbox thread's doorbell: it does not poll
            s.wakeup.set()

    def _cross_check(self, tx: Any, counter: int, now: datetime) -> bool:
        """Compare /proc/vmstat oom_kill with the kills recorded this boot; alert kills with no log record
        that no memory cgroup's counter accounts for (those are one alert each, naming the cgroup).
        Returns whether it alerted."""
        s = self.shared
        raw = tx.get_cursor(VMSTAT_CURSOR)
        in_cgroups, cgroups_seen = self._cgroups_findings(tx, now)
        state, alert = cross_check(json.loads(raw) if raw else {}, s.boot_id, counter,
                                   tx.count_kills(boot_id=s.boot_id), now, tracing=s.tracing,
                                   in_cgroups=in_cgroups, cgroups_seen=cgroups_seen)
        if alert is not None:
            row, _ = tx.fire_alert(alert)
            s.outbox.alert(tx, alert, row, "new", now)
            # Each finding is its own event: resolved at once, so the next one fires anew.
            tx.resolve_alert(Alert(alert.key, alert.kind, "info", alert.summary, now, True, {}))
            log.error("%s", alert.summary)
        tx.set_cursor(VMSTAT_CURSOR, json.dumps(state, sort_keys=True), now, cached=False)  # every check
        return alert is not None


    def _cgroups_findings(self, tx: Any, now: datetime) -> tuple[int, datetime | None]:
        """The kills of this boot the per-cgroup cross-check accounts for, and when it last
        looked (None when cgroups are not watched, or their check has not run for three of its
        intervals: the host then waits for nobody)."""
        s = self.shared
        seen = s.cgroups.crosschecked_at
        if not s.cfg.cgroups.enabled or seen is None \
                or (now - seen).total_seconds() > 3 * s.cfg.cgroups.interval:
            return 0, None
        raw = tx.get_cursor(CGROUPS_CURSOR)
        found = json.loads(raw) if raw else {}
        if found.get("boot_id") != s.boot_id:
            return 0, seen
        return int(found.get("unlogged", 0)) + int(found.get("pending", 0)), seen


class ProcessCheck:
    """Rank processes, remember them for kill records, flag and protect critical ones."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.failed_protections: set[tuple[int, int | None, int]] = set()

    def __call__(self) -> None:
        s = self.shared
        cfg, now = s.cfg, s.clock()
        try:
            ranked = scan_ranked(s)
        except Exception as exc:
            log.error("cannot scan processes in %s: %s", cfg.procfs, exc)
            return
        s.host.cache.remember(ranked, now)
        log.debug("processes: %d ranked", len(ranked))  # each one's command line known to its kill record
        protections = self._protect(ranked) if cfg.processes.protect else []
        with s.lock:
            s.host.ranking, s.host.ranking_time = ranked, now
            risky = processes.at_risk(ranked, cfg.processes.at_risk_top)
            conditions = detect.process_conditions(risky, cfg.processes.for_)
            prior = s.rules.snapshot()
            events = s.rules.evaluate(conditions, now, family="process.")
        with undone_unless_stored(s, prior, events), s.store.tx() as tx:
            for proc, before, after, error in protections:
                tx.add_protection(time=now, pid=proc.pid, process=proc.process, cmdline=proc.cmdline,
                                  from_adj=before, to_adj=after, error=error)
            record_events(tx, s.outbox, events, now)
        if events:
            s.wakeup.set()

    def _protect(self, ranked: list[ProcScore]) -> list[Protection]:
        """Lower critical processes' oom_score_adj. A change that fails is recorded and
        logged once per process, not at every scan."""
        cfg = self.shared.cfg
        done: list[Protection] = []
        for proc, before, after in processes.protection_plan(ranked, cfg.processes.protect_adj):
            key = (proc.pid, proc.start_time, after)
            if key in self.failed_protections:
                continue
            try:
                previous = procfs.set_oom_score_adj(cfg.procfs, proc.pid, after)
                done.append((proc, previous, after, None))
                log.info("protected %s (pid %d): oom_score_adj %s -> %d", proc.process, proc.pid, previous, after)
            except (OSError, ValueError) as exc:
                self.failed_protections.add(key)
                done.append((proc, before, after, str(exc)))
                log.warning("cannot protect %s (pid %d): %s", proc.process, proc.pid, exc)
        live = {(p.pid, p.start_time) for p in ranked}
        self.failed_protections = {k for k in self.failed_protections if k[:2] in live}
        return done


def scan_ranked(s: Shared) -> list[ProcScore]:
    """Every process, command lines redacted, critical ones marked, likeliest victim first."""
    cfg = s.cfg
    procs = [_redacted(s, p) for p in procfs.scan_processes(cfg.procfs)]
    s.host.redacted = {(p.pid, p.start_time): (raw, p.cmdline) for p, raw in procs}
    s.host.redacted_by = s.redactor
    ranked = [p for p, _ in procs]
    return processes.rank(processes.mark_critical(ranked, cfg.processes.critical, cfg.processes.system_uid_max))


def _redacted(s: Shared, proc: ProcScore) -> tuple[ProcScore, str | None]:
    """The process with its command line redacted, and the command line as read. Most
    command lines never change: the last scan's redaction of the same text is reused
    (the redaction patterns cost more than reading /proc)."""
    raw = proc.cmdline
    if not raw:
        return proc, raw
    known = s.host.redacted.get((proc.pid, proc.start_time)) if s.host.redacted_by is s.redactor else None
    redacted = known[1] if known is not None and known[0] == raw else s.redactor.redact(raw)
    return (proc if redacted == raw else proc.replace(cmdline=redacted)), raw


def likely_victims(s: Shared) -> list[dict[str, Any]]:
    """The likely victims now: the last ranking if fresh, else a new scan."""
    with s.lock:
        ranked, when = s.host.ranking, s.host.ranking_time
    if when is None or (s.clock() - when).total_seconds() > 2 * s.cfg.processes.interval:
        try:
            ranked = scan_ranked(s)
        except Exception:
            return []
    return detect.victims(ranked, min(s.cfg.processes.top, VICTIMS_NAMED))

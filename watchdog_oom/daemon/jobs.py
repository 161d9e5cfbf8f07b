"""The scheduler's jobs: the checks, retention, the heartbeat and systemd's watchdog ping.

APScheduler runs each job in its pool, one instance at a time (max_instances=1), runs
missed ones once (coalesce), and forgives a job half a minute late (misfire_grace_time).

APScheduler and the two of its modules the jobs use (the interval trigger, the thread pool)
are imported with this module, before the daemon starts any thread, not in `start`: run
from a shell (no NOTIFY_SOCKET), the daemon importing them there, while its kernel-log,
outbox and database-watch threads did their first work, kept a brk heap 0.65 MiB larger
(smaps [heap] 9.8 against 9.2 MiB). Under systemd (NOTIFY_SOCKET set) it made no difference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta, timezone
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from watchdog_oom.daemon.cgroups import CgroupCheck
from watchdog_oom.daemon.checks import MemoryCheck, ProcessCheck
from watchdog_oom.daemon.recording import StartPending, database_ready
from watchdog_oom.daemon.sdnotify import SdNotify
from watchdog_oom.daemon.shared import Shared
from watchdog_oom.store.health import database_failure, failure_text

log = logging.getLogger("watchdog_oom")

RETENTION_INTERVAL = 3600.0
# A ranking and the cgroups at once; prune soon after start.
FIRST_RUN = {"processes": 1.0, "cgroups": 0.5, "retention": 60.0}


class Jobs:
    """The periodic work, and the scheduler that runs it at the configured intervals."""

    def __init__(self, shared: Shared, notify: SdNotify) -> None:
        self.shared = shared
        self.notify = notify
        self.memory = MemoryCheck(shared)
        self.processes = ProcessCheck(shared)
        self.cgroups = CgroupCheck(shared)
        self.scheduler: Any = None
        self._refused: set[str] = set()  # jobs whose last run the database refused

    def start(self) -> None:
        """Start the scheduler with the jobs the configuration asks for."""
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30},
            executors={"default": ThreadPoolExecutor(max_workers=3)},
        )
        self.schedule()
        self.scheduler.start()

    def stop(self) -> None:
        """Stop the scheduler, letting a running job finish."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)

    def wanted(self) -> dict[str, tuple[Callable[[], Any], float]]:
        """Each job the configuration asks for, with its interval in seconds."""
        cfg = self.shared.cfg
        jobs: dict[str, tuple[Callable[[], Any], float]] = {
            "memory": (self.memory, min(cfg.commit.interval, cfg.memory.interval)),
            "processes": (self.processes, cfg.processes.interval),
            "retention": (self.prune, RETENTION_INTERVAL),
        }
        if cfg.cgroups.enabled:
            jobs["cgroups"] = (self.cgroups, cfg.cgroups.interval)
        if cfg.notifications.heartbeat.url:
            jobs["heartbeat"] = (self.heartbeat, cfg.notifications.heartbeat.interval)
        if self.notify.watchdog_interval and cfg.daemon.watchdog:
            jobs["watchdog"] = (self.watchdog, max(self.notify.watchdog_interval / 2, 1.0))
        return jobs

    def schedule(self) -> None:
        """Bring the scheduler's jobs in line with the config. A job whose interval is
        unchanged keeps its next run, so frequent reloads postpone nothing."""
        if self.scheduler is None:
            return
        wanted = self.wanted()
        for job in self.scheduler.get_jobs():
            func_interval = wanted.get(job.id)
            if func_interval is None:
                job.remove()
            elif job.trigger.interval.total_seconds() != func_interval[1]:
                job.reschedule(IntervalTrigger(seconds=func_interval[1], timezone=timezone.utc))
        present = {job.id for job in self.scheduler.get_jobs()}
        for name, (func, seconds) in wanted.items():
            if name not in present:
                first = self.shared.clock() + timedelta(seconds=FIRST_RUN.get(name, seconds))
                every = IntervalTrigger(seconds=seconds, timezone=timezone.utc)
                self.scheduler.add_job(self._guarded(name, func), every, id=name, name=name, next_run_time=first)

    def run_now(self, name: str) -> None:
        """Run one job at once in this thread, guarded as the scheduler's runs are."""
        func, _ = self.wanted()[name]
        self._guarded(name, func)()

    def _guarded(self, name: str, func: Callable[[], Any]) -> Callable[[], None]:
        """`func` as a job: a database that refuses its results is said once per outage, in
        one line (the database watch alerts it as database.down), not with a traceback at
        every run; while the start waits for the database server, it skips its writes
        quietly (StartPending); any other failure is left to the scheduler, which logs it whole."""

        def run() -> None:
            try:
                func()
            except StartPending:
                return  # database.down said it; the first run after the start writes again
            except Exception as exc:
                if not database_failure(exc):
                    raise
                if name not in self._refused:
                    self._refused.add(name)
                    log.warning("%s: the history database refuses this job's results until it is back (%s)", name,
                                failure_text(exc))
                return
            if name in self._refused:
                self._refused.discard(name)
                log.info("%s: the history database takes this job's results again", name)

        return run

    def prune(self) -> None:
        """Delete history older than the retention settings; a failure is an alert."""
        s = self.shared
        if not database_ready(s):
            return  # no retention.failed for an outage database.down says already
        try:
            # Loaded at the first run (a minute after the start, then hourly), not at start.
            from watchdog_oom.daemon.retention import RetentionJob
        except Exception as exc:  # ImportError (the package being upgraded), MemoryError: the next run tries again
            log.error("retention: its code could not be loaded (%s: %s); the next run tries again",
                      type(exc).__name__, exc)
            return
        RetentionJob(s.store, s.outbox, lambda: s.cfg.retention, s.clock, s.wakeup.set).run()

    def heartbeat(self) -> None:
        """Ping the dead man's switch, if one is configured."""
        url = self.shared.cfg.notifications.heartbeat.url
        if not url:
            return
        from watchdog_oom.notify import ChannelError
        from watchdog_oom.notify.heartbeat import ping

        try:
            ping(url, timeout=10)
        except ChannelError as exc:
            log.warning("heartbeat failed: %s", exc)

    def watchdog(self) -> None:
        """WATCHDOG=1 only while the checks run: a wedged scheduler gets restarted by systemd."""
        s = self.shared
        interval = min(s.cfg.commit.interval, s.cfg.memory.interval)
        last = s.host.last_check
        if last and (s.clock() - last).total_seconds() < 3 * interval + 5:
            self.notify.send("WATCHDOG=1")

"""The daemon: wires sources, parser, rules, store and dispatcher into one process.

Threads: one reads the kernel log source (blocking, so a kill is stored within a
second), one sends the outbox, and APScheduler's pool runs the periodic checks. The
main thread waits for signals: SIGTERM and SIGINT stop cleanly, SIGHUP reloads the
configuration (a bad one is refused and the old one kept). systemd hears READY=1,
WATCHDOG=1 and STOPPING=1 through $NOTIFY_SOCKET.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from watchdog_oom import config as config_mod
from watchdog_oom import detect, procfs, processes
from watchdog_oom.dispatch import Dispatcher, Outbox, Route
from watchdog_oom.model import (Alert, CaughtUp, KernelLine, MemorySample, OomKill, ProcScore, SourceGap,
                                with_local_time)
from watchdog_oom.notify import ChannelError, build_channel, mask_secret, secrets_of_config
from watchdog_oom.notify.heartbeat import ping
from watchdog_oom.parse import OomParser, undo_future_year
from watchdog_oom.redact import Redactor
from watchdog_oom.sources import SourceError, select_source
from watchdog_oom.store import Kill, Store, Tx
from watchdog_oom.store.migrate import migrate_in_child

log = logging.getLogger("watchdog_oom")

VMSTAT_CURSOR = "vmstat:oom_kill"
SOURCE_DOWN = "kernel_log.down"
RETENTION_INTERVAL = 3600.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SdNotify:
    """The sd_notify protocol without a systemd dependency: datagrams to $NOTIFY_SOCKET."""

    def __init__(self, env: Mapping[str, str] = os.environ) -> None:
        path = env.get("NOTIFY_SOCKET")
        self.address: str | None = None
        if path:
            # A leading '@' names a socket in the abstract namespace.
            self.address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_interval: float | None = None
        if usec and usec.isdigit() and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6

    def send(self, message: str) -> bool:
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode())
            return True
        except OSError as exc:
            log.warning("sd_notify %s to %s failed: %s", message.split("=")[0], self.address.lstrip("\0"), exc)
            return False


def build_channels(cfg: config_mod.Config) -> dict[str, Any]:
    return {c.name: build_channel(c.type, c.name, **c.options()) for c in cfg.notifications.channels}


class Pipeline:
    """Kernel lines in, stored kills and their notifications out, one transaction at a time."""

    def __init__(self, service: "Service", source_name: str, first_start: bool) -> None:
        self.service = service
        self.source_name = source_name
        self.year = datetime.now().year
        self.parser = OomParser(year=self.year)
        self.first_start = first_start
        self.source_name_known = bool(source_name)  # False: the first open failed
        self.caught_up = False
        self.backlog: list[int] = []
        self.unsaved: list[OomKill] = []
        self.cursor: str | None = None
        self.cursor_dirty = False
        self.last_commit = utcnow()

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
        if isinstance(event, KernelLine):
            if event.wrapped and datetime.now().year != self.year and not self.parser.collecting:
                # Syslog dates carry no year: a new parser for the new year, between reports.
                self.year = datetime.now().year
                self.parser = OomParser(year=self.year)
            kills = self.parser.feed(event)
            if event.cursor is not None:
                self.cursor, self.cursor_dirty = event.cursor, True
            if kills:
                self.record(kills)
            elif self.cursor_dirty and (utcnow() - self.last_commit).total_seconds() > 5:
                self.record([])
        elif event is None:
            self.record(self.parser.flush())
        elif isinstance(event, CaughtUp):
            self.record(self.parser.flush())
            self.caught_up_now()
        elif isinstance(event, SourceGap):
            self.service.source_gap(event)

    def caught_up_now(self) -> None:
        self.caught_up = True
        if self.first_start and self.backlog:
            with self.service.store.tx() as tx:
                rows = [tx.session.get(Kill, i) for i in self.backlog]
                self.service.outbox.backlog_summary(tx, [r for r in rows if r is not None], utcnow())
            self.service.dispatch_wakeup.set()
        log.info("kernel log %s: caught up (%d earlier kill%s recorded)", self.source_name, len(self.backlog),
                 "" if len(self.backlog) == 1 else "s")
        self.backlog = []

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
        now = utcnow()
        new_rows: list[Kill] = []
        backlog: list[int] = []
        try:
            with self.service.store.tx() as tx:
                for kill in kills:
                    kill = undo_future_year(kill, datetime.now())
                    row = tx.add_kill(self.service.enrich(kill), now, self.service.kill_context(kill))
                    if row is None:
                        continue
                    new_rows.append(row)
                    if self.first_start and not self.caught_up:
                        backlog.append(row.id)
                    else:
                        self.service.outbox.kill(tx, row, now)
                if save_cursor:
                    tx.set_cursor(self.source_name, self.cursor, now)
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
        if save_cursor:
            self.cursor_dirty = False
            self.last_commit = now
        for row in new_rows:
            log.warning("OOM kill recorded (id %d): %s %s killed by %s%s", row.id, row.process,
                        f"pid {row.pid}" if row.pid is not None else "(a cgroup)", row.killer,
                        f" in {row.task_memcg}" if row.task_memcg else "")
        if new_rows:
            self.service.dispatch_wakeup.set()


class Service:
    """The running daemon. `run()` blocks until stopped and returns the exit status."""

    def __init__(self, cfg: config_mod.Config, config_path: str | None = None,
                 env: Mapping[str, str] = os.environ, clock: Callable[[], datetime] = utcnow) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.env = env
        self.clock = clock
        self.notify = SdNotify(env)
        self.store = Store(cfg.database, cfg.host)
        self.rules = detect.Rules()
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.dispatch_wakeup = threading.Event()
        self.lock = threading.RLock()  # rules, history, ranking: shared by scheduler jobs
        self.history: deque[MemorySample] = deque(maxlen=4096)
        self.ranking: list[ProcScore] = []
        self.ranking_time: datetime | None = None
        self.cache = processes.ProcessCache(cfg.processes.cache_size)
        self.redactor = Redactor(cfg.processes.redact)
        self.boot_id = procfs.read_boot_id(cfg.procfs)
        self.source: Any = None
        self.source_is_down = False
        self.source_problem: str | None = None  # a failure not yet alerted
        self.failed_protections: set[tuple[int, int | None, int]] = set()
        self.source_thread: threading.Thread | None = None
        self.metrics_server: Any = None
        self.dispatch_thread: threading.Thread | None = None
        self.scheduler: BackgroundScheduler | None = None
        self.last_check: datetime | None = None
        self._apply(cfg)

    # -- configuration ------------------------------------------------------------------

    def _apply(self, cfg: config_mod.Config) -> None:
        self.cfg = cfg
        self.outbox = Outbox([Route.of(c) for c in cfg.notifications.channels], cfg.notifications.group_wait)
        n = cfg.notifications
        self.dispatcher = Dispatcher(self.store, build_channels(cfg), n.max_age, self.clock,
                                     retry_initial=n.retry_initial, retry_max=n.retry_max,
                                     secrets=secrets_of_config(cfg))
        self.redactor = Redactor(cfg.processes.redact)

    def reload(self) -> bool:
        """Load the config file again; keep the old one when the new one is bad."""
        try:
            new = config_mod.load_config(self.config_path, self.env)
        except config_mod.ConfigError as exc:
            log.error("SIGHUP: the new configuration is refused, keeping the old one: %s", exc)
            return False
        if new.database != self.cfg.database or new.host != self.cfg.host:
            log.warning("SIGHUP: database and host changes take effect at the next restart")
            new = dataclasses.replace(new, database=self.cfg.database, host=self.cfg.host)
        for key in ("kernel_log", "metrics"):
            if getattr(new, key) != getattr(self.cfg, key):
                log.warning("SIGHUP: %s changes take effect at the next restart", key)
        if new.processes.cache_size != self.cfg.processes.cache_size:
            self.cache.resize(new.processes.cache_size)
        if new.daemon.log_level != self.cfg.daemon.log_level:
            logging.getLogger().setLevel(new.daemon.log_level.upper())
        if new.daemon.oom_score_adj != self.cfg.daemon.oom_score_adj:
            ok, message = procfs.lower_own_oom_score_adj(new.daemon.oom_score_adj, new.procfs)
            (log.info if ok else log.warning)("SIGHUP: %s", message)
        with self.lock:
            self._apply(new)
            self._schedule()
        log.info("SIGHUP: configuration reloaded from %s", self.config_path or new.origin or "built-in defaults")
        return True

    # -- lifecycle ----------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        self.start()
        self.notify.send("READY=1\nSTATUS=watching memory and the kernel log")
        log.info("watchdog-oom running on %s (database %s)", self.cfg.host,
                 mask_secret(self.cfg.database))
        while not self.stop_event.wait(0.5):
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.notify.send("RELOADING=1")
                self.reload()
                self.notify.send("READY=1")
        self.notify.send("STOPPING=1")
        self.shutdown()
        log.info("watchdog-oom stopped")
        return 0

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())

    def start(self) -> None:
        ok, message = procfs.lower_own_oom_score_adj(self.cfg.daemon.oom_score_adj, self.cfg.procfs)
        (log.info if ok else log.warning)("%s", message)
        revision = migrate_in_child(self.cfg.database)
        log.info("database at schema revision %s", revision)
        requeued = self.store.requeue_inflight()
        if requeued:
            log.info("outbox: %d notification(s) interrupted by the last stop will be sent again", requeued)
        with self.store.tx() as tx:
            for row in tx.firing_alerts():
                self.rules.restore(row.key, row.severity, row.kind)
                # An outage of the kernel log seen by the last run resolves once it reads.
                self.source_is_down = self.source_is_down or row.key == SOURCE_DOWN
        self._open_source()
        if self.cfg.metrics.listen:
            from watchdog_oom.metrics import Metrics

            metrics = Metrics(self.store, self.cfg.host, lambda: self.history[-1] if self.history else None,
                              lambda: self.last_check, started=self.clock())
            self.metrics_server = metrics.serve(self.cfg.metrics.listen)
            log.info("Prometheus metrics at http://%s/metrics", self.cfg.metrics.listen)
        self.dispatch_thread = threading.Thread(target=self._dispatch_loop, name="dispatch", daemon=True)
        self.dispatch_thread.start()
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30},
            executors={"default": {"type": "threadpool", "max_workers": 3}},
        )
        self._schedule()
        self.scheduler.start()
        # One evaluation straight away, so the first sample does not wait an interval.
        self.check_memory()

    def _jobs(self) -> dict[str, tuple[Callable[[], Any], float]]:
        cfg = self.cfg
        jobs: dict[str, tuple[Callable[[], Any], float]] = {
            "memory": (self.check_memory, min(cfg.commit.interval, cfg.memory.interval)),
            "processes": (self.check_processes, cfg.processes.interval),
            "retention": (self.prune, RETENTION_INTERVAL),
        }
        if cfg.notifications.heartbeat.url:
            jobs["heartbeat"] = (self.heartbeat, cfg.notifications.heartbeat.interval)
        if self.notify.watchdog_interval and cfg.daemon.watchdog:
            jobs["watchdog"] = (self.watchdog, max(self.notify.watchdog_interval / 2, 1.0))
        return jobs

    def _schedule(self) -> None:
        """Bring the scheduler's jobs in line with the config. A job whose interval is
        unchanged keeps its next run, so frequent reloads postpone nothing."""
        if self.scheduler is None:
            return
        wanted = self._jobs()
        for job in self.scheduler.get_jobs():
            func_interval = wanted.get(job.id)
            if func_interval is None:
                job.remove()
            elif job.trigger.interval.total_seconds() != func_interval[1]:
                job.reschedule("interval", seconds=func_interval[1])
        present = {job.id for job in self.scheduler.get_jobs()}
        first_run = {"processes": 1.0, "retention": 60.0}  # a ranking at once; prune soon after start
        for name, (func, seconds) in wanted.items():
            if name not in present:
                self.scheduler.add_job(func, "interval", seconds=seconds, id=name, name=name,
                                       next_run_time=self.clock() + timedelta(seconds=first_run.get(name, seconds)))

    def shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        if self.source is not None:
            self.source.close()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        self.dispatch_wakeup.set()
        for thread in (self.source_thread, self.dispatch_thread):
            if thread is not None:
                thread.join(timeout=10)
        self.store.close()

    # -- kernel log ---------------------------------------------------------------------

    def _select_source(self) -> tuple[Any, str, dict[str, str]]:
        """Open the configured kernel log where its stored cursor left off."""
        kl = self.cfg.kernel_log
        with self.store.tx() as tx:
            cursors = tx.cursors()
        source, reason = select_source(kl.source, kl.path, cursors=cursors)
        return source, reason, cursors

    def _open_source(self) -> None:
        """Open the kernel log before READY=1; a thread follows it from then on."""
        try:
            source, reason, cursors = self._select_source()
        except SourceError as exc:
            log.error("kernel log: %s; retrying, and counting OOM kills from /proc/vmstat meanwhile", exc)
            self.source_problem = str(exc)  # alerted by the follower thread, which retries
            source, cursors = None, {}
        else:
            log.info("kernel log: %s", reason)
            if source is None:
                return
        self.source = source
        name = source.name if source is not None else None
        pipeline = Pipeline(self, name or "", first_start=name is not None and name not in cursors)
        self.source_thread = threading.Thread(target=self._source_loop, args=(pipeline,),
                                              name="kernel-log", daemon=True)
        self.source_thread.start()

    def _source_loop(self, pipeline: Pipeline) -> None:
        """Follow the kernel log; when it ends or fails, reopen it from the stored cursor,
        waiting longer after each failure (1 s doubling to a minute). Nothing that goes
        wrong here (a locked database included) may end this thread: it is how kills are seen."""
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                delay = self._follow_once(pipeline, delay)
            except Exception:
                log.exception("kernel log: unexpected failure; retrying")
                self.source = None
                delay = min(delay * 2, 60.0)
                if self.stop_event.wait(delay):
                    return

    def _follow_once(self, pipeline: Pipeline, delay: float) -> float:
        """Read the open source until it ends, then wait and reopen it; returns the next delay."""
        if self.source is not None:
            began = time.monotonic()
            problem = self._follow(self.source, pipeline)
            if self.stop_event.is_set():
                return delay
            if problem:
                self.source_problem = problem
            if time.monotonic() - began > 60:
                delay = 1.0
            self.source = None
        if self.source_problem:
            self._source_down(self.source_problem)
        if self.stop_event.wait(delay):
            return delay
        try:
            source, reason, cursors = self._select_source()
        except SourceError as exc:
            log.error("kernel log: cannot reopen: %s", exc)
            self.source_problem = str(exc)
            return min(delay * 2, 60.0)
        if source is None:  # kernel_log.source: none
            return delay
        log.info("kernel log: reopened, %s", reason)
        pipeline.resume(source.name, first_start=source.name not in cursors)
        self.source = source
        return min(delay * 2, 60.0)

    def _follow(self, source: Any, pipeline: Pipeline) -> str | None:
        """Feed the source's events to the pipeline until it ends; returns why it failed
        (None when it just ended, as a FIFO or file does when its writers are gone)."""
        try:
            for event in source.events(idle_timeout=0.5):
                if self.stop_event.is_set():
                    return None
                try:
                    if event is not None and not isinstance(event, SourceGap):
                        self._source_up()
                    pipeline.handle(event)
                except Exception:
                    log.exception("kernel log %s: failed to handle an event", source.name)
        except SourceError as exc:
            log.error("kernel log %s stopped: %s", source.name, exc)
            return str(exc)
        except Exception as exc:
            log.exception("kernel log %s stopped unexpectedly", source.name)
            return f"{type(exc).__name__}: {exc}"
        log.info("kernel log %s ended", source.name)
        return None

    def _source_down(self, problem: str) -> None:
        """Raise (once per outage) the alert that OOM kills are not being read. Raises
        what the database raises; the caller tries again on its next pass."""
        now = self.clock()
        summary = (f"The kernel log cannot be read ({problem}); OOM kills are only counted from "
                   "/proc/vmstat, without details, until it is back")
        alert = Alert(SOURCE_DOWN, SOURCE_DOWN, "critical", summary, now, False, {"problem": problem})
        with self.store.tx() as tx:
            row, reason = tx.fire_alert(alert)
            if reason is not None:
                self.outbox.alert(tx, alert, row, reason, now)
        self.source_is_down = True
        self.source_problem = None
        self.dispatch_wakeup.set()

    def _source_up(self) -> None:
        if not self.source_is_down:
            return
        now = self.clock()
        resolved = Alert(SOURCE_DOWN, "kernel_log.resolved", "info", "Resolved: the kernel log is read again.",
                         now, True, {})
        with self.store.tx() as tx:
            row = tx.resolve_alert(resolved)
            if row is not None:
                self.outbox.alert(tx, resolved, row, "resolved", now)
        self.source_is_down = False
        self.dispatch_wakeup.set()

    def enrich(self, kill: OomKill) -> OomKill:
        """Add what we knew of the victim before it died, and where this daemon runs."""
        known = self.cache.lookup(kill.pid, kill.process)
        changes: dict[str, Any] = {"host": self.cfg.host}
        if kill.boot_id is None and self._this_boot(kill):
            changes["boot_id"] = self.boot_id
        if known is not None:
            if kill.cmdline is None and known.cmdline:
                changes["cmdline"] = self.redactor.redact(known.cmdline)
            if kill.unit is None and known.unit:
                changes["unit"] = known.unit
        if kill.unit is None and "unit" not in changes and kill.task_memcg:
            changes["unit"] = procfs.unit_from_cgroup(kill.task_memcg)
        return kill.replace(**changes)

    def _this_boot(self, kill: OomKill) -> bool:
        """Whether a kill the source delivers happened during this boot: always for kmsg
        and the journal (they read this boot), for a log file when it is dated after boot."""
        if kill.source in ("kmsg", "journal"):
            return True
        if kill.time is None:
            return False
        uptime = procfs.read_uptime(self.cfg.procfs)
        if uptime is None:
            return False
        booted = self.clock() - timedelta(seconds=uptime)
        return with_local_time(kill).time >= booted - timedelta(seconds=2)

    def kill_context(self, kill: OomKill) -> dict[str, Any]:
        """What the host looked like just before the kill: the last sample, when it is recent."""
        with self.lock:
            last = self.history[-1] if self.history else None
        kill = with_local_time(kill)  # a log file's stamps are local time without an offset
        if last is None or kill.time is None:
            return {}
        interval = min(self.cfg.commit.interval, self.cfg.memory.interval)
        if abs((kill.time - last.time).total_seconds()) > 2 * interval + 5:
            return {}  # an old kill (read from the buffer at start): that sample says nothing of it
        return {"commit_state": {**detect.commit_figures(last), "mem_available_kb": last.mem_available_kb,
                                 "time": last.time.isoformat()}}

    def source_gap(self, gap: SourceGap) -> None:
        log.warning("kernel log %s: %s", gap.source, gap.message)
        with self.store.tx() as tx:
            self.outbox.gap(tx, gap.source, gap.missed, gap.message, self.clock())
            if gap.cursor:
                tx.set_cursor(gap.source, gap.cursor, self.clock())
        self.dispatch_wakeup.set()

    # -- periodic checks ----------------------------------------------------------------

    def check_memory(self) -> None:
        """Sample /proc, store the sample, evaluate commit, memory and trend rules."""
        now = self.clock()
        try:
            sample = procfs.sample(self.cfg.procfs, now)
        except Exception as exc:
            log.error("cannot read memory figures from %s: %s", self.cfg.procfs, exc)
            return
        with self.lock:
            history = list(self.history)
            self.history.append(sample)
            firing = self.rules.firing_map()
            conditions = [detect.commit_conditions(sample, self.cfg.commit, firing.get("commit"))]
            conditions += detect.memory_conditions(sample, self.cfg.memory, firing)
            trend = detect.trend_condition(history, sample, self.cfg.commit, now, firing.get("commit.trend"))
            if trend is not None:
                conditions.append(trend)
            trend_enabled = self.cfg.commit.trend_rise_percent > 0 and self.cfg.commit.trend_window > 0
            # No trend condition with the rule on: too little history to judge (after a
            # restart, say), which is no reason to call a firing trend resolved.
            keep = ("commit.trend",) if trend is None and trend_enabled else ()
            events = self.rules.evaluate(conditions, now, family=("commit", "memory."), keep=keep)
        events = self._name_victims(events)
        with self.store.tx() as tx:
            tx.add_sample(sample)
            self._record_events(tx, events, now)
            if self.cfg.kernel_log.vmstat_check and sample.oom_kill_count is not None:
                self._cross_check(tx, sample.oom_kill_count, now)
            self._repeat_due(tx, now)
        self.last_check = now
        if events:
            self.dispatch_wakeup.set()

    def check_processes(self) -> None:
        """Rank processes, remember them for kill records, flag and protect critical ones."""
        now = self.clock()
        try:
            procs = procfs.scan_processes(self.cfg.procfs)
        except Exception as exc:
            log.error("cannot scan processes in %s: %s", self.cfg.procfs, exc)
            return
        procs = [p.replace(cmdline=self.redactor.redact(p.cmdline)) if p.cmdline else p for p in procs]
        ranked = processes.rank(processes.mark_critical(procs, self.cfg.processes.critical,
                                                        self.cfg.processes.system_uid_max))
        self.cache.remember(ranked, now)
        protections = self._protect(ranked, now) if self.cfg.processes.protect else []
        with self.lock:
            self.ranking, self.ranking_time = ranked, now
            risky = processes.at_risk(ranked, self.cfg.processes.at_risk_top)
            conditions = detect.process_conditions(risky, self.cfg.processes.for_)
            events = self.rules.evaluate(conditions, now, family="process.")
        with self.store.tx() as tx:
            for proc, before, after, error in protections:
                tx.add_protection(time=now, pid=proc.pid, process=proc.process, cmdline=proc.cmdline,
                                  from_adj=before, to_adj=after, error=error)
            self._record_events(tx, events, now)
        if events:
            self.dispatch_wakeup.set()

    def _protect(self, ranked: list[ProcScore], now: datetime) -> list[tuple[ProcScore, int | None, int, str | None]]:
        """Lower critical processes' oom_score_adj. A change that fails is recorded and
        logged once per process, not at every scan."""
        done = []
        for proc, before, after in processes.protection_plan(ranked, self.cfg.processes.protect_adj):
            key = (proc.pid, proc.start_time, after)
            if key in self.failed_protections:
                continue
            try:
                previous = procfs.set_oom_score_adj(self.cfg.procfs, proc.pid, after)
                done.append((proc, previous, after, None))
                log.info("protected %s (pid %d): oom_score_adj %s -> %d", proc.process, proc.pid, previous, after)
            except (OSError, ValueError) as exc:
                self.failed_protections.add(key)
                done.append((proc, before, after, str(exc)))
                log.warning("cannot protect %s (pid %d): %s", proc.process, proc.pid, exc)
        live = {(p.pid, p.start_time) for p in ranked}
        self.failed_protections = {k for k in self.failed_protections if k[:2] in live}
        return done

    def victims(self) -> list[dict[str, Any]]:
        """The likely victims now: the last ranking if fresh, else a new scan."""
        with self.lock:
            ranked, when = self.ranking, self.ranking_time
        if when is None or (self.clock() - when).total_seconds() > 2 * self.cfg.processes.interval:
            try:
                procs = procfs.scan_processes(self.cfg.procfs)
            except Exception:
                return []
            ranked = processes.rank(processes.mark_critical(procs, self.cfg.processes.critical,
                                                        self.cfg.processes.system_uid_max))
            ranked = [p.replace(cmdline=self.redactor.redact(p.cmdline)) if p.cmdline else p for p in ranked]
        return detect.victims(ranked, min(self.cfg.processes.top, 5))

    def _name_victims(self, events: list[Alert]) -> list[Alert]:
        """Commit and memory warnings carry the likely victims of the moment. Done before
        the transaction opens: a fresh scan of /proc must not hold the database."""
        warns = [a for a in events if not a.resolved and a.kind.startswith(("commit.", "memory."))]
        if not warns:
            return events
        victims = self.victims()
        return [dataclasses.replace(a, data={**a.data, "victims": victims}) if a in warns else a for a in events]

    def _record_events(self, tx: Tx, events: list[Alert], now: datetime) -> None:
        for alert in events:
            if alert.resolved:
                row = tx.resolve_alert(alert)
                if row is not None:
                    self.outbox.alert(tx, alert, row, "resolved", now)
                    log.info("resolved: %s", alert.key)
                continue
            row, reason = tx.fire_alert(alert)
            if reason is not None:
                self.outbox.alert(tx, alert, row, reason, now)
                log.warning("%s (%s): %s", alert.kind, alert.severity, alert.summary)

    def _repeat_due(self, tx: Tx, now: datetime) -> None:
        repeat = timedelta(seconds=self.cfg.notifications.repeat_interval)
        for row in tx.firing_alerts():
            last = row.last_notified_at or row.started_at
            if now - last >= repeat:
                alert = Alert(row.key, row.kind, row.severity, row.summary, now, False, row.data or {})
                self.outbox.alert(tx, alert, row, "repeat", now)

    def _cross_check(self, tx: Tx, counter: int, now: datetime) -> None:
        """Compare /proc/vmstat oom_kill (4.13+) with the kills recorded this boot.

        The kernel's printk is rate-limited and a log can be lost; the counter is not.
        A shortfall seen on two checks in a row (the log may lag the counter by a moment)
        is recorded and alerted as kills with no log record.
        """
        recorded = tx.count_kills(boot_id=self.boot_id)
        raw = tx.get_cursor(VMSTAT_CURSOR)
        state = json.loads(raw) if raw else {}
        if state.get("boot_id") != self.boot_id or counter < state.get("counter0", 0):
            state = {"boot_id": self.boot_id, "counter0": counter, "recorded0": recorded, "reported": 0}
        missing = (counter - state["counter0"]) - (recorded - state["recorded0"]) - state["reported"]
        if missing < 0:
            # More kills recorded than counted since the baseline: kills from before it
            # (the kernel buffer read at start) arrived after it. Absorb them, or they
            # would hide as many truly unlogged kills later.
            state["recorded0"] -= missing
            missing = 0
        if missing > 0 and state.get("suspect") == missing:
            state["reported"] += missing
            state.pop("suspect", None)
            summary = (f"{missing} OOM kill{'s' if missing != 1 else ''} with no log record: /proc/vmstat oom_kill "
                       f"rose to {counter} but the kernel log showed fewer kills (rate-limited printk or a lost log)")
            alert = Alert("oom.unlogged", "oom.unlogged", "critical", summary, now, False,
                          {"missing": missing, "oom_kill": counter})
            row, _ = tx.fire_alert(alert)
            self.outbox.alert(tx, alert, row, "new", now)
            tx.resolve_alert(Alert("oom.unlogged", "oom.unlogged", "info", summary, now, True, {}))
            log.error("%s", summary)
        elif missing > 0:
            state["suspect"] = missing
        else:
            state.pop("suspect", None)
        tx.set_cursor(VMSTAT_CURSOR, json.dumps(state, sort_keys=True), now)

    def prune(self) -> None:
        r = self.cfg.retention
        counts = self.store.prune(self.clock(), samples=r.samples, kills=r.kills, alerts=r.alerts,
                                  notifications=r.notifications, raw_samples=r.raw_samples)
        if any(counts.values()):
            log.info("retention: %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))

    def heartbeat(self) -> None:
        url = self.cfg.notifications.heartbeat.url
        if not url:
            return
        try:
            ping(url, timeout=10)
        except ChannelError as exc:
            log.warning("heartbeat failed: %s", exc)

    def watchdog(self) -> None:
        """WATCHDOG=1 only while the checks run: a wedged scheduler gets restarted by systemd."""
        interval = min(self.cfg.commit.interval, self.cfg.memory.interval)
        if self.last_check and (self.clock() - self.last_check).total_seconds() < 3 * interval + 5:
            self.notify.send("WATCHDOG=1")

    # -- outbox -------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                while self.dispatcher.run_once():
                    if self.stop_event.is_set():
                        return
                due = self.store.next_due()
            except Exception:
                log.exception("outbox: dispatch failed; retrying shortly")
                due = None
            timeout = 5.0 if due is None else max(0.05, min(5.0, (due - self.clock()).total_seconds()))
            self.dispatch_wakeup.wait(timeout)
            self.dispatch_wakeup.clear()

"""The daemon's lifecycle: assemble the parts, start them, wait for signals, reload, stop.

Threads: one reads the kernel log (blocking, so a kill is stored within a second), one
sends the outbox, and APScheduler's pool runs the periodic checks. The main thread waits
for signals: SIGTERM and SIGINT stop cleanly, SIGHUP reloads the configuration (a bad one
is refused and the old one kept). systemd hears READY=1, WATCHDOG=1 and STOPPING=1.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Mapping
from typing import Any

from watchdog_oom import config as config_mod
from watchdog_oom import processes, procfs
from watchdog_oom.clock import Clock, utcnow
from watchdog_oom.daemon.database import DatabaseWatch
from watchdog_oom.daemon.follower import KernelLogFollower
from watchdog_oom.daemon.jobs import Jobs
from watchdog_oom.daemon.sdnotify import SdNotify
from watchdog_oom.daemon.sender import OutboxThread
from watchdog_oom.daemon.shared import HostState, Shared
from watchdog_oom.daemon.signals import SignalPipe
from watchdog_oom.redact import Redactor
from watchdog_oom.rules.alerts import SOURCE_DOWN
from watchdog_oom.sources.tracefs import ruled_out

log = logging.getLogger("watchdog_oom")


def _migrate(url: str) -> str:
    """Migrate the database in a child process (store/migrate.py, loaded only then: a
    database at the schema's head, read first, never loads it)."""
    from watchdog_oom.store.migrate import migrate_in_child

    return migrate_in_child(url)


def build_channels(cfg: config_mod.Config) -> dict[str, Any]:
    """One channel object per configured channel, by name: each loads its code (its module, the
    renderer, the HTTP client) at its first send, not at start (notify.Deferred)."""
    from watchdog_oom.notify import Deferred

    return {c.name: Deferred(c.type, c.name, **c.options()) for c in cfg.notifications.channels}


class StartError(Exception):
    """A part of the daemon that could not start, said in one line (exit status 1)."""


class Daemon:
    """The running daemon. `run()` blocks until stopped and returns the exit status."""

    def __init__(self, cfg: config_mod.Config, config_path: str | None = None,
                 env: Mapping[str, str] = os.environ, clock: Clock = utcnow) -> None:
        from watchdog_oom.dispatch import Outbox, Route
        from watchdog_oom.store import Recorder

        self.config_path = config_path
        self.env = env
        self.notify = SdNotify(env)
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.shared = Shared(
            cfg=cfg, store=Recorder(cfg.database, cfg.host, one_connection=True), clock=clock,
            outbox=Outbox([Route.of(c) for c in cfg.notifications.channels], cfg.notifications.group_wait),
            redactor=Redactor(cfg.processes.redact), boot_id=procfs.read_boot_id(cfg.procfs),
            host=HostState(processes.ProcessCache(cfg.processes.cache_size)))
        self.jobs = Jobs(self.shared, self.notify)
        self.follower = KernelLogFollower(self.shared, self.stop_event)
        self.tracer: Any = None  # the TracepointFollower, made at start if tracing is to be tried
        self.sender = OutboxThread(self.shared, self.stop_event)
        self.direct: Any = None  # notifications that bypass the outbox (database.down): made at first use
        self._make_direct: Any = None  # what makes it for the channels in force (apply)
        self._direct_lock = threading.Lock()
        self.database = DatabaseWatch(self.shared, self._direct, self.notify.send, self.stop_event, _migrate)
        self.shared.database = self.database
        self.metrics_server: Any = None
        self.apply(cfg)

    def _log_source(self) -> str | None:
        """The kernel log being read, None when none is (kernel_log.source: none, or down)."""
        source = self.follower.source
        return source.name if source is not None else None

    @property
    def cfg(self) -> config_mod.Config:
        """The configuration in force."""
        return self.shared.cfg

    @property
    def store(self) -> Any:
        """The history database."""
        return self.shared.store

    # -- configuration ------------------------------------------------------------------

    def apply(self, cfg: config_mod.Config) -> None:
        """Put `cfg` in force: at start, and on SIGHUP (daemon/reload.py)."""
        from watchdog_oom.dispatch import Outbox, Route
        from watchdog_oom.notify import secrets_of_config

        s = self.shared
        s.cfg = cfg
        s.outbox = Outbox([Route.of(c) for c in cfg.notifications.channels], cfg.notifications.group_wait)
        n = cfg.notifications
        channels = build_channels(cfg)
        secrets = secrets_of_config(cfg)

        def dispatcher() -> Any:
            """The dispatcher of these channels: made, and its module loaded, when a row first falls due."""
            from watchdog_oom.sending import Dispatcher

            return Dispatcher(s.store, channels, n.max_age, s.clock, retry_initial=n.retry_initial,
                              retry_max=n.retry_max, secrets=secrets)

        def direct() -> Any:
            """The direct sender of these channels: made, and its module loaded, at the first
            database.down (daemon/outage.py says so if it cannot be)."""
            from watchdog_oom.sending import Direct

            return Direct(channels, self.stop_event, max_age=n.max_age, retry_initial=n.retry_initial,
                          retry_max=n.retry_max, secrets=secrets)

        self.sender.dispatcher = dispatcher
        with self._direct_lock:
            self.direct, self._make_direct = None, direct
        s.redactor = Redactor(cfg.processes.redact)

    def _direct(self) -> Any:
        """The sender of the notifications that bypass the outbox (sending.Direct), for the
        channels in force: made at its first use, a database outage, not at start."""
        with self._direct_lock:
            if self.direct is None:
                self.direct = self._make_direct()
            return self.direct

    def reload(self) -> bool:
        """Load the config file again; keep the old one when the new one is bad. Its code
        (daemon/reload.py) is loaded at the first SIGHUP, not at start."""
        try:
            from watchdog_oom.daemon.reload import reload
        except Exception as exc:  # unreadable (the package being upgraded, say): the old one stays
            log.error("SIGHUP: the configuration is not reloaded, keeping the old one: its code "
                      "(watchdog_oom.daemon.reload) cannot be loaded: %s: %s", type(exc).__name__, exc)
            return False
        return reload(self)

    # -- lifecycle ----------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve until SIGTERM or SIGINT (reloading on SIGHUP), stop; the exit status."""
        from watchdog_oom.notify import mask_secret

        signals = SignalPipe((signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
        try:
            try:
                self.start()
            except BaseException:
                # A part that failed to start (the metrics address taken, say): stop the parts
                # that did, so no trace instance is left enabled in the kernel after the error.
                self.stop_event.set()
                self.shutdown()
                raise
            self.notify.send("READY=1\n" + self.database.status_line())
            log.info("watchdog-oom running on %s (database %s)", self.cfg.host, mask_secret(self.cfg.database))
            # The main thread sleeps until a signal comes, and acts on it here, not in a handler.
            while not self.stop_event.is_set():
                for signum in signals.wait():
                    if signum == signal.SIGHUP:
                        self.reload_requested.set()
                    else:
                        self.stop_event.set()
                if self.reload_requested.is_set() and not self.stop_event.is_set():
                    self.reload_requested.clear()
                    self.notify.send("RELOADING=1")
                    self.reload()
                    self.notify.send("READY=1")
            self.notify.send("STOPPING=1")
            self.shutdown()
        finally:
            signals.close()
        log.info("watchdog-oom stopped")
        return 0

    def start(self) -> None:
        """Protect this process, migrate, restore the alert state, start every part.

        A database server that cannot be reached yet (down, restarting, the network) does
        not stop the start: `database.down` is said through the channels, the checks run,
        the kernel log is read and new kills held in memory, and the database watch finishes
        the start (migration, alert state, the kernel log from its stored cursor) once the
        server answers. Anything else wrong with the
        database (a SQLite file that cannot be opened, a wrong password) stops it."""
        ok, message = procfs.lower_own_oom_score_adj(self.cfg.daemon.oom_score_adj, self.cfg.procfs)
        (log.info if ok else log.warning)("%s", message)
        try:
            self._start_with_database()
        except Exception as exc:
            if not self.database.may_wait(exc):
                raise
            self.database.defer_start(exc, self._start_with_database, self.follower.database_ready)
            self.follower.open(provisional=True)  # new kills are held meanwhile
        if self.cfg.metrics.listen:
            self._serve_metrics(self.cfg.metrics.listen)
        self.sender.start()
        self.database.start()
        self.jobs.start()
        # One evaluation straight away, so the first sample does not wait an interval.
        self.jobs.run_now("memory")

    def _start_with_database(self) -> None:
        """The part of the start that needs the database: check and migrate it, restore the
        alert state, then follow the kernel log from the stored cursor (and the tracepoints)."""
        from watchdog_oom.store import SCHEMA_HEAD

        s = self.shared
        salvaged = self.database.before_migration()  # a corrupt file is moved aside first
        if s.store.at_head():  # one query; Alembic and its child process only when behind
            log.info("database at schema revision %s", SCHEMA_HEAD)
        else:
            s.store.engine.dispose()  # no SQLite connection open across the migration child's fork
            log.info("database migrated to schema revision %s", _migrate(self.cfg.database))
        self.database.after_migration(salvaged)
        requeued = s.store.requeue_inflight()
        if requeued:
            log.info("outbox: %d notification(s) interrupted by the last stop will be sent again", requeued)
        with s.store.tx() as tx:
            for row in tx.firing_alerts():
                s.rules.restore(row.key, row.severity, row.kind)
                # An outage of the kernel log seen by the last run resolves once it reads.
                self.follower.source_is_down = self.follower.source_is_down or row.key == SOURCE_DOWN
        if self.stop_event.is_set():  # stopped while the database was waited for
            return
        if self.follower.thread is None:  # else it reads already (provisionally, or a retry after it)
            self.follower.open()
        if self.tracer is None:
            self._open_tracer()

    def _open_tracer(self) -> None:
        """Follow the oom tracepoints if the configuration and the kernel allow it. The
        tracepoint reader and the oom_score_adj audit are loaded only then."""
        kl = self.cfg.kernel_log
        why_not = ruled_out(kl.tracepoints, kl.tracefs)
        if why_not is not None:
            log.info("%s", why_not)
            return
        from watchdog_oom.daemon.tracer import TracepointFollower

        self.tracer = TracepointFollower(self.shared, self.stop_event, self._log_source)
        self.tracer.open()

    def _serve_metrics(self, listen: str) -> None:
        from watchdog_oom.metrics import daemon_metrics

        metrics = daemon_metrics(self.shared, self.database)
        try:
            self.metrics_server = metrics.serve(listen)
        except OSError as exc:  # the address taken, not this host's, or a port below 1024
            raise StartError(f"metrics.listen {listen}: cannot listen there ({exc.strerror or exc}); "
                             "stop what holds it or choose another address") from None
        log.info("Prometheus metrics at http://%s/metrics", listen)

    def shutdown(self) -> None:
        """Stop every part and close the database."""
        self.jobs.stop()
        self.database.join(timeout=5)  # first: a start it was finishing opens no source after this
        self.follower.close()
        if self.tracer is not None:
            self.tracer.close()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        self.follower.join(timeout=10)
        if self.tracer is not None:
            self.tracer.join(timeout=10)
        self.sender.join(timeout=10)
        self.shared.store.close()

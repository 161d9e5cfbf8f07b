"""The daemon's watch over its history database: it says loudly when the database fails,
and puts it back when it can, so that kill recording goes on.

At start (`before_migration`): an integrity check (store/health.py); a corrupt SQLite
file is moved aside, never overwritten, a new one is started, and the cursors that can be
read from the old one are carried over, so the kernel log resumes where it was.

While running (a thread, every CHECK_INTERVAL seconds, and at once when a write fails):
the file must still be the one opened (a stat), and the database must answer a read
through the daemon's own connections (every PROBE_INTERVAL seconds while all is well,
at every look while it is not: an idle daemon does not query it every few seconds). A deleted file is written back
from the connection that still has it open (nothing lost); a replaced or corrupt one is
set aside and a new one started with the cursors the daemon last committed, so nothing
is read or notified twice. A database that refuses writes (full, read-only, locked)
holds the kills in memory (writer.py bounds them) until it takes them again.

A database server that cannot be reached when the daemon starts is an outage like
another (`defer_start`): the daemon runs on, holding the kills that happen meanwhile in
memory, and this watch finishes its start (the schema checked and migrated, the alert
state restored, the kernel log read on from its stored cursor) once the server answers.
A SQLite file that cannot be opened is not waited for: nothing will make it openable,
and the start fails with one line.

Every outage is `database.down` (critical), sent straight through every channel, not
through the outbox that lives in the failing database, and `database.resolved` when the
database works again (outage.py says it); systemd's STATUS= and /metrics show the state
meanwhile.

The repairs and the deferred start's end run only after a failure: their code is
recovery.py's, loaded then, not at start (see there what happens if it cannot be).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from watchdog_oom.daemon.outage import Outage, State
from watchdog_oom.store import StoreError
from watchdog_oom.store.health import (
    Health,
    SqliteFile,
    check_at_start,
    classify,
    sqlite_path,
)

log = logging.getLogger("watchdog_oom")

CHECK_INTERVAL = 2.0  # seconds between looks at the file: a stat
PROBE_INTERVAL = 60.0  # seconds between reads through the connections while the database is well
class DatabaseWatch:
    """Checks the history database, repairs what can be repaired, and tells people directly."""

    def __init__(self, shared: Any, direct: Callable[[], Any], status: Callable[[str], Any],
                 stop: threading.Event, migrate: Callable[[str], str]) -> None:
        self.shared = shared
        self.outage = Outage(shared, direct, status)  # what people and systemd hear of it
        self.stop = stop
        self.migrate = migrate
        # Held by every kill-writing transaction and by repairs: a repair never swaps the
        # database under a transaction that is writing kills and their cursor.
        self.lock = threading.RLock()
        path = sqlite_path(shared.store.url)
        self.file = SqliteFile(path) if path is not None else None
        self._wake = threading.Event()
        self.thread: threading.Thread | None = None
        self._deferred: Any = None  # the rest of a start that waits for the server (recovery.DeferredStart)

    # -- start --------------------------------------------------------------------------

    def before_migration(self) -> dict[str, str]:
        """The start check. A corrupt SQLite file is moved aside (its cursors salvaged and
        returned, to restore once the new database is migrated). A server that does not
        answer raises StoreError (the start waits for it, see `may_wait`). Anything else
        wrong is left to the migration, which names it."""
        store = self.shared.store
        health = check_at_start(store.url, store.engine)
        if not health.ok and health.kind == "unreachable" and self.file is None:
            raise StoreError(health.problem or "the database server does not answer")
        if health.ok or health.kind != "corrupt" or self.file is None:
            if not health.ok:
                log.error("database: %s", (health.problem or "").removeprefix("database: "))
            return {}
        from watchdog_oom.daemon.recovery import set_aside_at_start  # (a start's repair: see its module)

        return set_aside_at_start(self, health)

    def after_migration(self, cursors: dict[str, str]) -> None:
        """Restore salvaged cursors into the new database; the outage of the start is over."""
        if cursors:  # salvaged by recovery.py, loaded then
            from watchdog_oom.daemon.recovery import restore_cursors

            restore_cursors(self, cursors)
        if self.file is not None:
            self.file.reopened()
        if not self.state.ok and self.state.kind == "corrupt":
            self.outage.up("a new history database was started; kills are recorded again")

    def may_wait(self, exc: BaseException) -> bool:
        """Whether a start that failed with `exc` waits for the database instead of ending:
        only a database server that cannot be reached (it comes back by itself); never a
        SQLite file, which nothing will make openable while the daemon waits."""
        return self.file is None and not self.shared.store.url.startswith("sqlite") \
            and classify(exc) == "unreachable"

    def defer_start(self, exc: BaseException, start: Callable[[], Any], then: Callable[[], Any]) -> None:
        """The database server cannot be reached at start: alert, and run `start` (the rest
        of the daemon's start) from the watch thread once it answers, `then` once it is done."""
        from watchdog_oom.daemon.recovery import DeferredStart  # (see its module)

        self._deferred = DeferredStart(start, then, CHECK_INTERVAL, PROBE_INTERVAL)
        self.outage.down("unreachable", f"the history database cannot be reached at start: {_one_line(exc)}; "
                                  "the daemon runs on, holds new kills in memory, and reads the kernel log "
                                  "from where it was left once the database answers")

    def ready(self) -> bool:
        """Whether the start with the database is done (False while it waits for the server):
        until then nothing may be written, the schema may not even be there."""
        return self._deferred is None

    @property
    def state(self) -> State:
        """What is known of the database now (ok, kind, problem, kills held)."""
        return self.outage.state

    def status_line(self) -> str:
        """systemd's STATUS= for the database's state now."""
        return self.outage.status_line()

    def start(self) -> None:
        """Watch from a thread of its own."""
        self.thread = threading.Thread(target=self._loop, name="database-watch", daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> None:
        self._wake.set()
        if self.thread is not None:
            self.thread.join(timeout)

    # -- reports from the writers ---------------------------------------------------------

    def failed(self, exc: BaseException, held: int = 0) -> None:
        """A write failed (from the kill writer): alert once per outage; look at the file now."""
        self.state.held = held
        kind = classify(exc)
        problem = _one_line(exc)
        if self.state.ok or self.state.kind != kind:
            self.outage.down(kind, f"the history database refuses writes ({kind}): {problem}; "
                             f"{held} kill(s) held in memory until it takes them")
        self._wake.set()

    def succeeded(self) -> None:
        """Kills were stored (held ones included): the outage, if any, is over."""
        self.state.held = 0
        if not self.state.ok:
            self.outage.up("the history database takes writes again; the held kills are stored")

    # -- the periodic check -----------------------------------------------------------------

    def _loop(self) -> None:
        next_probe, woken = 0.0, False
        while not self.stop.is_set():
            # A write that failed (woken), an outage in course or the interval: read too.
            probe = woken or not self.state.ok or time.monotonic() >= next_probe
            try:
                if self._deferred is not None:
                    self._finish_start()
                else:
                    self.check(probe=probe)
            except Exception:
                log.exception("database watch: check failed; trying again")
            if probe:
                next_probe = time.monotonic() + PROBE_INTERVAL
            # Without a file to stat (PostgreSQL), nothing is looked at between probes.
            idle = CHECK_INTERVAL if self.file is not None or not self.state.ok else PROBE_INTERVAL
            woken = self._wake.wait(idle)
            self._wake.clear()

    def _finish_start(self) -> None:
        """Once the server answers, the rest of the start (recovery.DeferredStart); until
        then (and while that fails for another reason, said once) nothing else is looked at."""
        deferred = self._deferred
        if not deferred.finish(self):
            return
        self._deferred = None
        self.outage.up("the history database answers; its schema is checked and the kernel log is read from its cursor")
        deferred.then()
        self.shared.wakeup.set()  # the outbox senders waited for this start

    def check(self, probe: bool = True) -> Health:
        """One look at the database (with `probe`, a read through the daemon's connections
        too); repairs a deleted, replaced or corrupt SQLite file."""
        health = self.file.check() if self.file is not None else Health.good()
        if health.ok and probe:
            health = self._probe()
        if health.ok:
            if not self.state.ok and self.state.held == 0 and self.state.kind not in (None,):
                self.outage.up("the history database answers again")
            return health
        if health.kind in ("deleted", "replaced", "corrupt") and self.file is not None:
            # Loaded at the first repair: if that fails (the package being upgraded on disk, say),
            # this look fails, is logged, and the next one tries again (_loop); kills are held
            # or written to the open file meanwhile (recovery.py, store/upkeep.py).
            from watchdog_oom.daemon.recovery import repair

            repair(self, health)
        elif self.state.ok or self.state.kind != health.kind:
            self.outage.down(health.kind or "unknown", health.problem or "")
        return health

    def _probe(self) -> Health:
        """A read through the daemon's own connections (and, while down, a small write)."""
        try:
            with self.shared.store.tx() as tx:
                tx.cursors()
                if not self.state.ok and self.state.held == 0:
                    tx.set_cursor("database.probe", "ok", self.shared.clock(), cached=False)
        except Exception as exc:
            kind = classify(exc)
            return Health.bad(kind if kind != "unknown" else "unreachable", _one_line(exc))
        return Health.good()


def _one_line(exc: BaseException) -> str:
    """A database error in one line, without SQLAlchemy's background link, at most 500 characters."""
    return " ".join(str(exc).split("(Background on this error", 1)[0].split())[:500]

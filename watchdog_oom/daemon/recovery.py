"""What the database watch (database.py) does only when the history database has failed:
set aside a SQLite file found damaged at start, repair one while running (write a deleted
file back, set a replaced or damaged one aside and start anew with the cursors this daemon
committed), and finish a start that waited for its database server once it answers.

Split from database.py, whose looks (a stat, a read) run all the time: this runs only
after a failure, so the watch loads it then, not at start. If it cannot be loaded then
(the package being upgraded on disk, say), that look fails, is logged, and the watch's
next look tries again (database.py `_loop`), the kills held in memory or written to the
open file meanwhile; a start that finds its file damaged fails, saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from watchdog_oom.daemon.database import DatabaseWatch, _one_line
from watchdog_oom.store.health import Health, check_at_start, quick_check
from watchdog_oom.store.upkeep import move_aside, reopen, restore_unlinked, salvage_cursors

log = logging.getLogger("watchdog_oom")


def set_aside_at_start(watch: DatabaseWatch, health: Health) -> dict[str, str]:
    """A SQLite file found damaged at start: moved aside (kept, never overwritten), a new
    one started; the cursors read out of the old one, to restore once the new one is migrated."""
    assert watch.file is not None
    store, path = watch.shared.store, watch.file.path
    aside = reopen(store, lambda: move_aside(path))
    cursors = salvage_cursors(aside, store.host)
    message = (f"the history database is damaged ({health.problem}); it was moved aside to {aside} "
               f"(kept, never overwritten) and a new one is started at {watch.file.path}"
               + (f"; the kernel log resumes where the damaged one says ({len(cursors)} cursor(s) read)"
                  if cursors else "; no cursor could be read from it, so the kernel log is read again"))
    log.error("database: %s", message)
    watch.outage.down("corrupt", message)
    return cursors


def repair(watch: DatabaseWatch, health: Health) -> None:
    """Put a deleted file back, or set a replaced or corrupt one aside and start anew."""
    assert watch.file is not None
    store = watch.shared.store
    with watch.lock:
        cursors = dict(store.cursors_committed)
        if health.kind == "deleted" and restore_unlinked(store):
            done = (f"{watch.file.path} was deleted while in use; it was written back whole from the "
                    "daemon's open connection: nothing is lost")
        else:
            path = watch.file.path

            def set_aside() -> str | None:
                # Every connection is closed by now (POSIX locks, see SqliteFile.check).
                if health.kind == "corrupt" or (health.kind == "replaced" and not quick_check(path).ok):
                    return move_aside(path)
                return None

            aside = reopen(store, set_aside)
            watch.migrate(store.url)
            restore_cursors(watch, cursors)
            done = (f"{health.problem}; " + (f"the damaged file was moved aside to {aside} and " if aside else "")
                    + f"{'a new' if aside or health.kind == 'deleted' else 'the'} database at {watch.file.path} "
                    "is used, resuming the kernel log where this daemon had read it")
        watch.file.reopened()
    log.error("database: %s", done)
    watch.outage.down(health.kind or "unknown", done)
    watch.outage.up(f"recording again: {done}")


def restore_cursors(watch: DatabaseWatch, cursors: dict[str, str]) -> None:
    """The source cursors of a database set aside, written into the new one."""
    now = watch.shared.clock()
    with watch.shared.store.tx() as tx:
        for source, cursor in cursors.items():
            tx.set_cursor(source, cursor, now)


class DeferredStart:
    """The rest of a start whose database server did not answer (`start`), run by the watch
    once it does, and `then` once that is done; tried again with a growing pause while it
    fails for another reason (said once per reason)."""

    def __init__(self, start: Callable[[], Any], then: Callable[[], Any], first_pause: float,
                 longest_pause: float) -> None:
        self.start, self.then = start, then
        self.error: str | None = None  # the last reason it failed, said once
        self.after = 0.0  # time.monotonic() before which it is not tried again
        self.pause, self.longest_pause = first_pause, longest_pause

    def finish(self, watch: DatabaseWatch) -> bool:
        """Once the server answers, the rest of the start; True when it is done (the watch
        then says so, and calls `then`). Until then (and while that fails for another
        reason) nothing else is looked at."""
        store = watch.shared.store
        if time.monotonic() < self.after:
            return False
        health = check_at_start(store.url, store.engine)
        if not health.ok and health.kind == "unreachable":
            return False  # still unreachable: the outage goes on, said already
        # It answers: the start goes on even if something else is wrong (a refused password,
        # an empty alembic_version): the start's steps say what, or fix it (the migration).
        try:
            with watch.lock:
                self.start()
        except Exception as exc:
            # It answers, yet the rest of the start fails (the migration, say): not at every look.
            self.after = time.monotonic() + self.pause
            self.pause = min(self.pause * 2, self.longest_pause)
            if _one_line(exc) != self.error:
                self.error = _one_line(exc)
                log.error("database: the start with the history database failed; trying again: %s", self.error)
            return False
        return True

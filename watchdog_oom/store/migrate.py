"""`python -m watchdog_oom.store.migrate`: migrate the database whose URL arrives on stdin.

The daemon migrates in this short-lived child so that Alembic and its templates (about
12 MB) never stay resident in the long-running process, which must stay small. The URL
comes on stdin, not in argv, because it may hold a password and argv is world-readable.
At the daemon's start, while it runs no other thread, the child is forked instead: it has
SQLAlchemy and the store loaded already and loads only Alembic.
"""

from __future__ import annotations

import logging
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable

from watchdog_oom.store import StoreError
from watchdog_oom.store.engine import Database

# SQLAlchemy's link to its generic page about an error class: noise in a one-line message.
_BACKGROUND = re.compile(r"\(Background on this error at: [^)]*\)")


def migrate_in_child(url: str, timeout: float = 300.0) -> str:
    """Run the migration in a child process; returns the revision reached.

    Forked where this process runs no other thread (a thread could hold a lock the child
    would copy held): 0.3 s of CPU instead of 0.85 s for a new interpreter, which imports
    SQLAlchemy again (0.7 s of wall instead of 2.1 s at load 4.6). The caller has no
    connection to the database open (SQLite's: none may cross a fork)."""
    if hasattr(os, "fork") and threading.active_count() == 1:
        return _forked(url, timeout)
    try:
        proc = subprocess.run([sys.executable, "-m", "watchdog_oom.store.migrate"], input=url, text=True,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StoreError(f"database: migration did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise StoreError(_one_line(proc.stderr) or f"database: migration failed (exit {proc.returncode})")
    return proc.stdout.strip()


_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _forked(url: str, timeout: float) -> str:
    """migrate_in_child's forked child: what it says comes back through a pipe, one line."""
    readable, writable = os.pipe()
    # The daemon's signals wake its main loop (a wakeup fd): none may reach the child's copy
    # of that before the child puts the defaults back, as a new interpreter has them.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        child = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(readable)
        os.close(writable)
        raise
    if child == 0:  # pragma: no cover - the child: ends in os._exit, never returns
        _migrate_and_exit(url, writable, blocked)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(writable)
    said, deadline = b"", time.monotonic() + timeout
    try:
        while len(said) < 65536:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([readable], [], [], left)[0]:
                os.kill(child, signal.SIGKILL)
                raise StoreError(f"database: migration did not finish within {timeout:.0f}s")
            data = os.read(readable, 65536)
            if not data:
                break
            said += data
    finally:
        os.close(readable)
        _, status = os.waitpid(child, 0)
    text_ = said.decode(errors="replace").strip()
    if os.waitstatus_to_exitcode(status) != 0:
        raise StoreError(text_ or f"database: migration failed (exit {os.waitstatus_to_exitcode(status)})")
    return text_


def _migrate_and_exit(url: str, writable: int, blocked: Iterable[int]) -> None:  # pragma: no cover
    """The forked child: the defaults for the daemon's signals, Alembic's log lines kept out of
    the daemon's log (a new interpreter's went nowhere), the migration; its revision or its
    error, on one line, through `writable`."""
    status, said = 1, "database: migration failed"
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        logging.disable(logging.CRITICAL)
        database = Database(url, host="")
        said = database.upgrade()
        database.close()
        status = 0
    except StoreError as exc:
        said = _one_line(str(exc))
    except BaseException as exc:  # noqa: BLE001 -- said to the parent, which raises it
        said = _one_line(f"database: migration failed: {type(exc).__name__}: {exc}")
    finally:
        try:
            os.write(writable, said.encode(errors="replace")[:60000])
        finally:
            os._exit(status)


def main() -> int:
    url = sys.stdin.read().strip()
    try:
        database = Database(url, host="")
        print(database.upgrade())
        database.close()
    except StoreError as exc:
        print(_one_line(str(exc)), file=sys.stderr)
        return 1
    return 0


def _one_line(message: str) -> str:
    """An error message on one line, without SQLAlchemy's background link."""
    return " ".join(_BACKGROUND.sub("", message).split())


if __name__ == "__main__":
    sys.exit(main())

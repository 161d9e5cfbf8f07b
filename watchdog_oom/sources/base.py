"""What every kernel log source shares: its error type and a thread-safe way to stop it.

Kept apart from the package's ``__init__`` so that the source modules can import it
without importing each other.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable


class SourceError(OSError):
    """A kernel log cannot be opened or read; the message names it and says what to do.

    An OSError, so that callers handling I/O errors (``import``) handle it too.
    """


class Stopper:
    """Lets ``close()`` from any thread end a source's ``events()`` promptly.

    ``events()`` polls ``fileno()`` (the read end of a self-pipe) beside its own fd;
    ``stop()`` writes a byte to the pipe so that poll returns at once. The source's
    resources (its fd or subprocess, and this pipe) are released exactly once: by
    ``events()`` when it finishes, or by ``stop()`` itself when no ``events()`` is
    running, so no fd is closed while another thread may still be polling it.
    """

    def __init__(self, release: Callable[[], None]) -> None:
        self._release_source = release
        self._lock = threading.Lock()
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopped = False
        self._running = False
        self._released = False

    @property
    def stopped(self) -> bool:
        """True once ``stop()`` was called."""
        return self._stopped

    def fileno(self) -> int:
        """The fd that becomes readable when ``stop()`` is called."""
        return self._read_fd

    def begin(self) -> bool:
        """Mark ``events()`` as running; False when the source is already closed."""
        with self._lock:
            if self._stopped or self._released:
                return False
            self._running = True
            return True

    def end(self) -> None:
        """Called by ``events()`` as it finishes: releases everything."""
        with self._lock:
            self._running = False
            self._stopped = True
            self._release()

    def stop(self) -> None:
        """Any thread: wake a running ``events()``, or release at once if none runs."""
        with self._lock:
            self._stopped = True
            if self._released:
                return
            if self._running:
                with contextlib.suppress(BlockingIOError):  # the pipe is full of wake-ups already
                    os.write(self._write_fd, b"\0")
            else:
                self._release()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        try:
            self._release_source()
        finally:
            os.close(self._read_fd)
            os.close(self._write_fd)

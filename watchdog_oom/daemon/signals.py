"""Signals for the daemon's main thread, with no work done inside a signal handler.

CPython runs a Python-level signal handler in the main thread between two bytecodes,
wherever that thread is at the time: inside `threading.Event.wait()` holding the Event's
lock, or inside the handler of an earlier signal. A handler that sets an Event takes that
same lock, and at such an instant waits for itself forever: the daemon would never stop
on SIGTERM (python/cpython#126434 is the same deadlock with multiprocessing.Event).

So the handlers here do nothing. CPython's C-level handler writes each signal's number to
a pipe (`signal.set_wakeup_fd`, async-signal-safe), and the main thread blocks reading
that pipe and acts on the numbers in its own time, holding nothing.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from types import FrameType
from typing import Any


def _wake_only(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: nothing. Installing one makes CPython write the pipe."""


class SignalPipe:
    """The signals `signums`, delivered as numbers to `wait()` in the main thread."""

    def __init__(self, signums: Iterable[int]) -> None:
        self.signums = frozenset(signums)
        self._read, self._write = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self._write, False)  # set_wakeup_fd needs it; the reader blocks
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        self.previous: dict[int, Any] = {s: signal.signal(s, _wake_only) for s in self.signums}

    def wait(self) -> list[int]:
        """Block until one or more of the signals arrive; their numbers, each once, in order."""
        while True:
            data = os.read(self._read, 512)  # retried after EINTR (PEP 475)
            got = [s for s in dict.fromkeys(data) if s in self.signums]
            if got:
                return got

    def close(self) -> None:
        """Put back the wakeup fd found at start and close the pipe. The handlers stay, doing
        nothing: a second SIGTERM while the daemon exits must not turn a clean stop into a
        death by signal (`previous` holds the handlers found at start)."""
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._read)
        os.close(self._write)

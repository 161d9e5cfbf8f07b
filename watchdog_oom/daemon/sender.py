"""The outbox thread: sends what is due, then sleeps until the next row is due or the doorbell rings."""

from __future__ import annotations

import logging
import threading
from typing import Any

from watchdog_oom.daemon.shared import Shared

log = logging.getLogger("watchdog_oom")

IDLE_WAIT = 5.0  # seconds between looks at the outbox when nothing rings


class OutboxThread:
    """Runs the current dispatcher (swapped on reload) until `stop` is set."""

    def __init__(self, shared: Shared, stop: threading.Event) -> None:
        self.shared = shared
        self.stop = stop
        self.dispatcher: Any = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sending in a daemon thread."""
        self.thread = threading.Thread(target=self.loop, name="dispatch", daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> None:
        """Ring the doorbell and wait for the thread to end (call after setting `stop`)."""
        self.shared.wakeup.set()
        if self.thread is not None:
            self.thread.join(timeout=timeout)

    def loop(self) -> None:
        """Send due rows until none is left, then wait; a failure is logged and tried again."""
        s = self.shared
        while not self.stop.is_set():
            try:
                while self.dispatcher.run_once(stop=self.stop):
                    if self.stop.is_set():
                        return
                due = s.store.next_due()
            except Exception:
                log.exception("outbox: dispatch failed; retrying shortly")
                due = None
            timeout = IDLE_WAIT if due is None else max(0.05, min(IDLE_WAIT, (due - s.clock()).total_seconds()))
            s.wakeup.wait(timeout)
            s.wakeup.clear()

"""The outbox senders: one thread per channel (dispatch.Senders), woken by the daemon's doorbell.

A channel whose endpoint hangs until its timeout, or keeps failing, holds up only its own
thread. On reload the daemon hands in a new dispatcher: the old senders finish what they
are sending (their outcome is recorded) and end, and new ones start for the new channels.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from watchdog_oom.daemon.recording import database_ready
from watchdog_oom.daemon.shared import Shared

log = logging.getLogger("watchdog_oom")

# Seconds between looks at the outbox when nothing rings and no row falls due. Every row
# is written by this process, and each part that queues one rings the doorbell after its
# transaction; each sender waits exactly until its next row is due (a retry, the end of a
# lease). This look is a safety net, so an idle daemon does not query its database every
# few seconds for nothing; it is one look at the whole outbox, by this thread
# (Senders.look), not one by each channel's sender.
IDLE_WAIT = 60.0


class OutboxThread:
    """Runs the current dispatcher's per-channel senders until `stop` is set; relays the doorbell."""

    def __init__(self, shared: Shared, stop: threading.Event) -> None:
        self.shared = shared
        self.stop = stop
        self._dispatcher: Any = None
        self.senders: Any = None
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._look_now = False  # the next ring asks for a look at the outbox (new senders), not a wake

    @property
    def dispatcher(self) -> Any:
        """The dispatcher in force."""
        return self._dispatcher

    @dispatcher.setter
    def dispatcher(self, dispatcher: Any) -> None:
        with self._lock:
            self._dispatcher = dispatcher
            if self.senders is not None:  # a reload while running: new channels, new senders
                self.senders.stop(timeout=0)
                # Their look at the outbox is this thread's (loop): not one under the reload's locks.
                self.senders = self._senders(dispatcher).start(look=False)
                self._look_now = True
                self.shared.wakeup.set()

    def start(self) -> None:
        """Start the senders, and the thread that passes the doorbell on to them. While the
        start with the database waits for its server, the senders wait too: the outbox
        lives there, and interrupted sends are requeued by that start. Its end rings."""
        with self._lock:
            if database_ready(self.shared):
                self.senders = self._senders(self._dispatcher).start()
        self.thread = threading.Thread(target=self.loop, name="dispatch", daemon=True)
        self.thread.start()

    def _senders(self, dispatcher: Any) -> Any:
        from watchdog_oom.dispatch import Senders

        return Senders(dispatcher, idle=IDLE_WAIT)

    def join(self, timeout: float) -> None:
        """Ring the doorbell and wait for the threads to end (call after setting `stop`).
        A sender in the middle of a request is left to its channel's timeout."""
        self.shared.wakeup.set()
        if self.thread is not None:
            self.thread.join(timeout=timeout)
        with self._lock:
            if self.senders is not None:
                self.senders.stop(timeout=min(timeout, 1.0))

    def loop(self) -> None:
        """Wake every channel's sender when the doorbell rings (a transaction queued rows);
        look at the outbox when it does not, every IDLE_WAIT seconds or when a row falls due
        that no sender waits for (a look found it due later)."""
        s = self.shared
        with self._lock:
            timeout = _until(self.senders.next_look if self.senders is not None else None)
        while not self.stop.is_set():
            rung = s.wakeup.wait(timeout)  # join() rings it to stop
            s.wakeup.clear()
            if self.stop.is_set():
                return  # join() stops the senders: no look of theirs for the ring that ends it
            with self._lock:
                timeout = self._turn(rung)

    def _turn(self, rung: bool) -> float:
        """Act on a ring or on the time out; how long to wait for the next ring."""
        if self.senders is None:
            if not database_ready(self.shared) or self.stop.is_set():
                return IDLE_WAIT
            self.senders = self._senders(self._dispatcher).start()  # the start with the database is done
            return _until(self.senders.next_look)
        if rung and not self._look_now:
            self.senders.wake()  # each sender then waits for its own next row
            return IDLE_WAIT
        self._look_now = False
        return _until(self.senders.look())


def _until(left: float | None) -> float:
    """The wait before the next look at the outbox: until a row found due later falls due, at most IDLE_WAIT."""
    return IDLE_WAIT if left is None else min(IDLE_WAIT, max(0.05, left))

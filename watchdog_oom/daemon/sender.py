"""The outbox senders: one thread per channel (sending.Senders), woken by the daemon's doorbell.

A channel whose endpoint hangs until its timeout, or keeps failing, holds up only its own
thread. On reload the daemon hands in a new dispatcher: the old senders finish what they
are sending (their outcome is recorded) and end, and new ones start for the new channels.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
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
# Seconds before the senders' code is loaded again after a failure to.
RETRY_LOAD = 5.0


class OutboxThread:
    """Runs the current dispatcher's per-channel senders until `stop` is set; relays the doorbell.

    The senders (sending.py: the Dispatcher, a thread per channel) and the channels' code are
    made when a row first falls due: until then this thread looks at the outbox itself (one
    query every IDLE_WAIT, or when the doorbell rings), and an idle daemon holds neither. If
    they cannot be loaded then (the package being upgraded, memory short), the rows wait in
    the durable outbox; this thread says so and tries again after RETRY_LOAD seconds.
    """

    def __init__(self, shared: Shared, stop: threading.Event) -> None:
        self.shared = shared
        self.stop = stop
        self._dispatcher: Callable[[], Any] | None = None
        self.senders: Any = None
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._look_now = False  # the next ring asks for a look at the outbox (new senders), not a wake
        self._load_failed = False  # the senders' code could not be loaded at the last try

    @property
    def dispatcher(self) -> Callable[[], Any] | None:
        """What makes the dispatcher in force (called when the senders are made)."""
        return self._dispatcher

    @dispatcher.setter
    def dispatcher(self, make: Callable[[], Any]) -> None:
        with self._lock:
            self._dispatcher = make
            if self.senders is not None:  # a reload while running: new channels, new senders
                self.senders.stop(timeout=0)
                # Their look at the outbox is this thread's (loop): not one under the reload's locks.
                self.senders = self._senders().start(look=False)
                self._look_now = True
                self.shared.wakeup.set()

    def start(self) -> None:
        """Start the thread that looks at the outbox, makes the senders when a row is due, and
        passes the doorbell on to them. While the start with the database waits for its
        server, it waits too: the outbox lives there, and interrupted sends are requeued by
        that start. Its end rings."""
        self.thread = threading.Thread(target=self.loop, name="dispatch", daemon=True)
        self.thread.start()

    def _senders(self) -> Any:
        from watchdog_oom.sending import Senders

        assert self._dispatcher is not None
        return Senders(self._dispatcher(), idle=IDLE_WAIT)

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
        that no sender waits for (a look found it due later). The first look is at once."""
        s = self.shared
        with self._lock:
            timeout = self._turn(False)
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
            left = self._due_in()
            if left is not None and left > 0:
                return _until(left)  # rows wait, none due yet: no senders for them yet
            if left is None:
                return IDLE_WAIT
            return self._start_senders()
        if rung and not self._look_now:
            self.senders.wake()  # each sender then waits for its own next row
            return IDLE_WAIT
        self._look_now = False
        return _until(self.senders.look())

    def _due_in(self) -> float | None:
        """While there are no senders: in how many seconds the earliest row falls due (0: due
        now, or the database would not say: the senders' threads say what it answers, once per
        outage); None when no row waits."""
        try:
            due = self.shared.store.next_due()
        except Exception:
            return 0.0
        return None if due is None else (due - self.shared.clock()).total_seconds()

    def _start_senders(self) -> float:
        """Make and start the senders (their first look wakes them for the due rows); how long
        to wait for the next ring."""
        try:
            self.senders = self._senders().start()
        except Exception as exc:  # ImportError (a package being upgraded), MemoryError, ...
            if not self._load_failed:
                log.error("outbox: the senders could not be loaded (%s: %s); notifications wait in the outbox, "
                          "tried again every %.0f s", type(exc).__name__, exc, RETRY_LOAD)
            self._load_failed = True
            return RETRY_LOAD
        if self._load_failed:
            self._load_failed = False
            log.info("outbox: the senders are loaded; the notifications that waited go out")
        return _until(self.senders.next_look)


def _until(left: float | None) -> float:
    """The wait before the next look at the outbox: until a row found due later falls due, at most IDLE_WAIT."""
    return IDLE_WAIT if left is None else min(IDLE_WAIT, max(0.05, left))

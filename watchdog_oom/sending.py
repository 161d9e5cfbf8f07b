"""Sending the outbox: the Dispatcher (due rows through their channels, with backoff and
Retry-After, every outcome recorded) and the Senders (a thread per channel); and Direct,
which sends what the outbox cannot carry while the database is down.

Split from dispatch.py, which writes the rows (Outbox, in the kill's transaction) and stays
loaded: the daemon loads this module when a row first falls due (daemon/sender.py), or at
the first `database.down` (Direct, daemon/outage.py), so an idle daemon holds neither this
code nor the channels' threads.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from watchdog_oom.model import Notification
from watchdog_oom.notify import Channel, ChannelError, redact
from watchdog_oom.store import Recorder, claims
from watchdog_oom.store.health import database_failure, failure_text
from watchdog_oom.stored import OutboxRow

log = logging.getLogger("watchdog_oom.dispatch")  # the name its lines have always had

BACKOFF_BASE = 5.0
BACKOFF_CAP = 900.0


def backoff(attempts: int, rng: random.Random, initial: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds before retry number `attempts`: exponential, capped, with ±50% jitter so
    many hosts recovering together do not hammer an endpoint in step."""
    delay = min(initial * (2 ** min(max(attempts - 1, 0), 32)), cap)
    return delay * rng.uniform(0.5, 1.5)


def to_notification(row: OutboxRow) -> Notification:
    """The plain value a channel renders, from an outbox row."""
    return Notification(id=row.uuid, kind=row.kind, time=row.created_at, host=row.host, severity=row.severity,
                        summary=row.summary, data=dict(row.data or {}), reason=row.reason)

class Dispatcher:
    """Sends due outbox rows of this host. `clock` and `rng` are seams for tests."""

    def __init__(self, store: Recorder, channels: Mapping[str, Channel], max_age: float,
                 clock: Callable[[], datetime], rng: random.Random | None = None,
                 retry_initial: float = BACKOFF_BASE, retry_max: float = BACKOFF_CAP,
                 secrets: Sequence[str] = ()) -> None:
        self.store = store
        # Every channel's secrets: an endpoint may echo another channel's token.
        self.secrets = list(secrets)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.channels = dict(channels)
        self.max_age = timedelta(seconds=max_age)
        self.clock = clock
        self.rng = rng or random.Random()
        # Channels that answered 429 or Retry-After: nothing is sent to them before then.
        self.paused: dict[str, datetime] = {}

    def run_once(self, limit: int = 20, channel: str | None = None,
                 other_than: Collection[str] | None = None, stop: threading.Event | None = None) -> int:
        """Send what is due now (of one `channel`, of channels `other_than` those named,
        or of all); returns how many rows were claimed.

        Once `stop` is set, the rows of this batch not yet attempted go back to `pending`
        untried: each attempt may take a channel's whole timeout, and a stopping daemon
        must not spend one per row of its batch (systemd kills it after TimeoutStopSec).
        If recording an outcome fails (the database is locked or gone), the rows of this
        batch not yet attempted go back to `pending` too; the one whose outcome was lost
        stays `sending` until its lease runs out and is then sent again.
        """
        rows = claims.claim_due(self.store, self.clock(), limit, channel=channel, other_than=other_than)
        for i, row in enumerate(rows):
            if stop is not None and stop.is_set():
                self._release(rows[i:])
                break
            try:
                self._deliver(row)
            except Exception:
                self._release(rows[i + 1:])
                raise
        return len(rows)

    def _release(self, rows: Sequence[OutboxRow]) -> None:
        """Give claimed rows back untried (no attempt counted)."""
        for row in rows:
            try:
                claims.release(self.store, row, row.due_at)
            except Exception:
                break  # the lease returns it later

    def _deliver(self, row: OutboxRow) -> None:
        resume = self.paused.get(row.channel)
        if resume is not None and resume > self.clock():
            # Retry-After speaks for the endpoint, not for one message (RFC 9110 §10.2.3).
            claims.release(self.store, row, resume)
            return
        channel = self.channels.get(row.channel)
        if channel is None:
            claims.mark_failed(self.store, row, f"channel {row.channel!r} is no longer configured")
            log.error("notification %s: channel %r is no longer configured; dropped", row.uuid, row.channel)
            return
        try:
            detail = channel.send(to_notification(row))
        except ChannelError as exc:
            self._failed(row, exc)
            return
        except Exception as exc:  # a channel bug must not kill the worker or lose the row
            log.exception("notification %s via %s: unexpected error", row.uuid, row.channel)
            self._failed(row, ChannelError(f"unexpected error: {type(exc).__name__}: {exc}", permanent=False))
            return
        if not claims.mark_sent(self.store, row, detail or "", self.clock()):
            log.warning("notification %s: sent, but another sender had claimed it meanwhile", row.uuid)
        log.info("notification %s (%s, %s) sent via %s: %s", row.uuid, row.kind, row.reason, row.channel, detail)

    def _failed(self, row: OutboxRow, exc: ChannelError) -> None:
        now = self.clock()
        message = redact(str(exc), self.secrets)
        if exc.permanent:
            claims.mark_failed(self.store, row, message)
            log.error("notification %s via %s failed for good: %s", row.uuid, row.channel, message)
            return
        if now - row.created_at >= self.max_age:
            claims.mark_failed(self.store, row, f"gave up after {row.attempts} attempts: {message}", status="given_up")
            log.error("notification %s via %s given up after %d attempts over %s: %s",
                      row.uuid, row.channel, row.attempts, now - row.created_at, message)
            return
        delay = backoff(row.attempts, self.rng, self.retry_initial, self.retry_max)
        if exc.retry_after is not None:
            # Honour Retry-After, but never wait past the give-up age for one answer.
            delay = max(delay, min(float(exc.retry_after), self.max_age.total_seconds()))
        if exc.retry_after is not None or exc.status == 429:
            # The channel waits as long as the endpoint asked, not as long as this row's
            # own backoff has grown: newer notifications must not wait for an old one.
            asked = exc.retry_after if exc.retry_after is not None else self.retry_initial
            self.paused[row.channel] = now + timedelta(seconds=min(float(asked), self.max_age.total_seconds()))
        claims.mark_retry(self.store, row, message, now + timedelta(seconds=delay))
        log.warning("notification %s via %s failed (attempt %d), retry in %.0fs: %s",
                    row.uuid, row.channel, row.attempts, delay, message)


RETRY_SOON = 5.0  # seconds before a sender whose database failed looks again
UNCONFIGURED = "send:unconfigured"  # the rows of channels no longer configured, in the log


class Senders:
    """One sending thread per channel.

    Each thread claims only its own channel's rows, so a channel whose endpoint hangs
    until its timeout (or keeps failing) holds up nothing but itself. `wake()` tells every
    thread that new rows may be due; a thread that sent or was refused sleeps until its
    next row falls due (at most `idle` seconds), and one with nothing due sleeps until
    woken. `look()` is the idle look at the whole outbox, in the caller's thread: it wakes
    the threads only when a row is due (one written by another process, or while a
    thread slept). `start()` looks once; the daemon's outbox thread looks every
    IDLE_WAIT, so the channels' threads run no query while nothing is to be sent: each
    thread that queries the database gets a malloc arena of its own, which grows with
    what SQLite and the compilation of the statements allocate there (the idle daemon's
    peak RSS 0.29 MiB smaller with its two channels' threads idle, median of 3).
    The rows of channels no longer configured are failed by whichever channel's thread
    is free first, at start and again when woken: no row of an unknown channel falls
    due later, so that look needs no thread of its own (a thread costs the daemon a
    stack and a malloc arena, some 0.2 MiB); with no channel at all, one thread does it.
    """

    def __init__(self, dispatcher: Dispatcher, idle: float = 5.0, batch: int = 10) -> None:
        self.dispatcher = dispatcher
        self.idle = idle
        # A channel's thread claims this many rows at a time: the lease (CLAIM_LEASE) of
        # the last must outlast sending the batch at the channels' timeouts.
        self.batch = batch
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._generation = 0
        self.threads: list[threading.Thread] = []
        self._refused: set[str] = set()  # threads whose last look at the outbox the database refused
        self._configured: list[str] = sorted(dispatcher.channels)
        self._unconfigured_due = True  # a look for rows of channels no longer configured is due
        self.next_look: float | None = None  # what start()'s look returned

    def start(self, look: bool = True) -> Senders:
        """Start the threads and, unless told not to, look at the outbox once in this thread
        (`next_look` keeps what that look returned); returns self."""
        for name in self._configured:
            self._spawn(f"send:{name}", {"channel": name})
        if not self._configured:
            self._spawn(UNCONFIGURED, {"other_than": []})
        if look:
            self.next_look = self.look()
        return self

    def look(self) -> float | None:
        """Wake the threads if a row is due now, of any channel (configured or not): one
        look at the outbox in the caller's thread, instead of one per channel's thread.
        Returns in how many seconds the earliest row not due yet falls due, when nothing was
        woken: the caller looks again then (None: no row waits, or the woken threads take
        it from here, each until its own next row)."""
        try:
            due = self.dispatcher.store.next_due()
        except Exception as exc:
            if not database_failure(exc):
                log.exception("outbox: looking for due notifications failed")
            self.wake()  # each thread looks, and says once what the database answers
            return None
        if due is None:
            return None
        left = (due - self.dispatcher.clock()).total_seconds()
        if left <= 0:
            self.wake()
            return None
        return left

    def wake(self) -> None:
        """New rows may be due: every channel looks now."""
        with self._changed:
            self._generation += 1
            self._unconfigured_due = True
            self._changed.notify_all()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask every thread to end and wait up to `timeout` for each. A thread in the middle
        of a send ends when that send does (the channel's own timeout); its outcome is kept."""
        self._stop.set()
        self.wake()
        for thread in self.threads:
            thread.join(timeout)

    def _spawn(self, name: str, which: dict[str, Any]) -> None:
        with self._changed:
            seen = self._generation  # a wake from now on is this thread's to see
        thread = threading.Thread(target=self._loop, args=(name, which, seen), name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _loop(self, name: str, which: dict[str, Any], seen: int) -> None:
        timeout: float | None = None  # nothing to do until woken: start() looks for it
        while not self._stop.is_set():
            self._wait(seen, timeout)
            with self._changed:
                seen = self._generation
            if self._stop.is_set():
                return
            due, ok = self._send_due(name, which)
            if ok and "channel" in which:
                ok = self._fail_unconfigured()
            timeout = self._timeout(due, which) if ok else min(self.idle, RETRY_SOON)

    def _fail_unconfigured(self) -> bool:
        """Fail the rows of channels no longer configured, when a look is due and no other
        thread has taken it; False when the database refused (the look stays due)."""
        with self._changed:
            if not self._unconfigured_due:
                return True
            self._unconfigured_due = False
        _, ok = self._send_due(UNCONFIGURED, {"other_than": self._configured})
        if not ok:
            with self._changed:
                self._unconfigured_due = True
        return ok

    def _timeout(self, due: datetime | None, which: dict[str, Any]) -> float | None:
        """How long a sender may sleep unless woken: until its next row is due, at most
        `idle`; until woken when none is (`look()` finds what another process wrote), and
        for the rows of channels no longer configured, which never fall due later."""
        if "other_than" in which or due is None:
            return None
        return max(0.05, min(self.idle, (due - self.dispatcher.clock()).total_seconds()))

    def _wait(self, seen: int, timeout: float | None) -> None:
        """Until woken since generation `seen`, stopped, or `timeout` seconds (None: no limit)."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen or self._stop.is_set(), timeout)

    def _send_due(self, name: str, which: dict[str, Any]) -> tuple[datetime | None, bool]:
        """Send this thread's due rows; returns when the next one falls due (None: none is),
        and False when sending or asking failed (to be tried again shortly)."""
        try:
            while self.dispatcher.run_once(self.batch, stop=self._stop, **which):
                if self._stop.is_set():
                    return None, True
            due = self.dispatcher.store.next_due(**which)
        except Exception as exc:
            if not database_failure(exc):
                log.exception("outbox %s: sending failed; retrying shortly", name)
            elif name not in self._refused:  # once per outage: the database watch alerts it
                self._refused.add(name)
                log.warning("outbox %s: the history database is not answering; the outbox waits for it (%s)", name,
                            failure_text(exc))
            return None, False
        if name in self._refused:
            self._refused.discard(name)
            log.info("outbox %s: the history database answers again", name)
        return due, True


class Direct:
    """Notifications sent straight through every channel, bypassing the outbox.

    For what the outbox cannot carry because it lives in the database that is down
    (`database.down`, `database.resolved`). Each channel has its own thread and queue, so
    its messages keep their order (a resolution never overtakes its alert) and a hung
    channel holds up no other. A transient failure is retried with backoff until it is
    delivered, fails for good, is `max_age` old, or the daemon stops. The outcomes are
    logged, and kept in `outcomes` for the history once the database is back.
    """

    def __init__(self, channels: Mapping[str, Channel], stop: threading.Event, *, max_age: float = 3600.0,
                 retry_initial: float = 2.0, retry_max: float = 60.0, secrets: Sequence[str] = (),
                 rng: random.Random | None = None) -> None:
        self.channels = dict(channels)
        self.stop = stop
        self.max_age = max_age
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.secrets = list(secrets)
        self.rng = rng or random.Random()
        self._queues: dict[str, queue.SimpleQueue[Notification]] = {}
        self._lock = threading.Lock()
        self.outcomes: list[tuple[str, Notification, str, str]] = []  # channel, notification, status, detail

    def send(self, n: Notification) -> None:
        """Queue `n` for every channel; returns at once."""
        with self._lock:
            for name in self.channels:
                if name not in self._queues:
                    self._queues[name] = queue.SimpleQueue()
                    threading.Thread(target=self._worker, args=(name,), name=f"direct:{name}", daemon=True).start()
                self._queues[name].put(n)

    def _worker(self, name: str) -> None:
        channel, inbox = self.channels[name], self._queues[name]
        while True:
            n = inbox.get()  # blocks while there is nothing to send (a daemon thread: gone at exit)
            if self.stop.is_set():
                return
            status, detail = self._deliver(channel, n)
            with self._lock:
                self.outcomes.append((name, n, status, detail))

    def _deliver(self, channel: Channel, n: Notification) -> tuple[str, str]:
        began, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            try:
                detail = channel.send(n) or ""
            except ChannelError as exc:
                message = redact(str(exc), self.secrets)
                if exc.permanent or time.monotonic() - began > self.max_age:
                    log.error("%s via %s (direct) failed after %d attempt(s): %s", n.kind, channel.name, attempts,
                              message)
                    return "failed", message
                delay = backoff(attempts, self.rng, self.retry_initial, self.retry_max)
                if exc.retry_after is not None:
                    delay = max(delay, min(float(exc.retry_after), self.retry_max))
                log.warning("%s via %s (direct) failed (attempt %d), retry in %.0fs: %s", n.kind, channel.name,
                            attempts, delay, message)
                if self.stop.wait(delay):
                    return "pending", message
                continue
            except Exception as exc:  # a channel bug must not end the worker
                log.exception("%s via %s (direct): unexpected error", n.kind, channel.name)
                return "failed", f"unexpected error: {type(exc).__name__}: {exc}"
            log.info("%s sent directly via %s: %s", n.kind, channel.name, detail)
            return "sent", detail

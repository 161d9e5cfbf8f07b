"""What the daemon's parts share: the configuration of the moment and the host as last seen.

`Shared` is assembled once by the daemon; on SIGHUP the daemon swaps `cfg`, `outbox`
and `redactor` under `lock`. The parts read it and never call back into the daemon.
"""

from __future__ import annotations

import threading
from array import array
from collections import deque
from dataclasses import field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from watchdog_oom import config as config_mod
from watchdog_oom import detect, processes
from watchdog_oom.clock import Clock
from watchdog_oom.model import CgroupSample, MemorySample, OomKill, ProcScore
from watchdog_oom.redact import Redactor
from watchdog_oom.rules.cgroups import preceding_alert
from watchdog_oom.valueclass import valueclass

if TYPE_CHECKING:
    from watchdog_oom.dispatch import Outbox
    from watchdog_oom.store import Recorder

SAMPLES_KEPT = 4096  # the memory samples kept for the trend rule and the state before a kill
CGROUP_LINK_WITHIN = timedelta(hours=1)  # how old a cgroup alert may be to be linked to a kill


@valueclass(frozen=False, slots=False)
class HostState:
    """The host as the checks last saw it: recent samples, the process ranking and its
    cache of who was who (a killed process is gone from /proc when its kill is read)."""

    cache: processes.ProcessCache
    samples: deque[MemorySample] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    ranking: list[ProcScore] = field(default_factory=list)
    ranking_time: datetime | None = None
    last_check: datetime | None = None
    # The last scan's command lines by (pid, start time): as read, and redacted by
    # `redacted_by` (the redactor changes on reload). Mostly the same strings as the ranking's.
    redacted: dict[tuple[int, int | None], tuple[str | None, str | None]] = field(default_factory=dict)
    redacted_by: Redactor | None = None

    def remember(self, sample: MemorySample, keep: float) -> None:
        """Add a sample; forget those more than `keep` seconds older (what the trend rule
        reads, and the sample before a kill, are recent: 4096 would be hours of them)."""
        self.samples.append(sample)
        oldest = sample.time - timedelta(seconds=keep)
        while self.samples[0].time < oldest:
            self.samples.popleft()

    def last_sample(self) -> MemorySample | None:
        """The newest memory sample, if any."""
        return self.samples[-1] if self.samples else None


class CgroupTrack:
    """One cgroup's recent working set, compact: a host of 5,000 containers keeps 5,000 of
    these, so two arrays of numbers (times, bytes) rather than samples, at most `keep` long."""

    __slots__ = ("times", "working_set", "high_events", "keep")

    def __init__(self, keep: int) -> None:
        self.times = array("d")  # Unix seconds
        self.working_set = array("q")
        self.high_events: int | None = None  # memory.events high at the last reading
        self.keep = keep

    def add(self, sample: CgroupSample) -> None:
        """Remember a reading, forgetting the oldest beyond `keep`."""
        self.times.append(sample.time.timestamp())
        self.working_set.append(sample.working_set_bytes)
        if len(self.times) > self.keep:
            del self.times[: len(self.times) - self.keep]
            del self.working_set[: len(self.working_set) - self.keep]
        self.high_events = sample.events.get("high")

    def may_reach(self, sample: CgroupSample, horizon: float) -> bool:
        """Whether the growth seen could bring the limit within `horizon`, with a margin of
        three (a least-squares slope can exceed the rise over the span): only then is a
        forecast worth fitting. Most cgroups are flat and cost nothing more."""
        if not self.times or sample.limit_bytes is None or horizon <= 0:
            return False
        rise = sample.working_set_bytes - min(self.working_set)
        span = sample.time.timestamp() - self.times[0]
        if rise <= 0 or span <= 0:
            return False
        return 3 * horizon * rise / span >= sample.limit_bytes - sample.working_set_bytes

    def samples(self, like: CgroupSample, full: bool) -> list[CgroupSample]:
        """The kept readings as samples of `like`'s cgroup, oldest first: all of them when
        `full`, else only the last (what the memory.high rule compares with)."""
        first = 0 if full else max(len(self.times) - 1, 0)
        out = [CgroupSample(path=like.path, version=like.version,
                            time=datetime.fromtimestamp(self.times[i], timezone.utc), limit_bytes=like.limit_bytes,
                            usage_bytes=self.working_set[i], working_set_bytes=self.working_set[i],
                            high_bytes=like.high_bytes) for i in range(first, len(self.times))]
        if out and self.high_events is not None:
            out[-1] = out[-1].replace(events={"high": self.high_events})
        return out


@valueclass(frozen=False, slots=False)
class CgroupState:
    """The memory cgroups as their check last saw them: each one's recent samples (for the
    forecast), those worth keeping (for /metrics), and the last alert per cgroup path,
    which a kill in that cgroup links to."""

    history: dict[str, CgroupTrack] = field(default_factory=dict)
    latest: list[CgroupSample] = field(default_factory=list)
    scanned_at: datetime | None = None
    crosschecked_at: datetime | None = None  # when the kill counters' check last committed its findings
    alerts: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # path -> alert key -> link
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alert_before(self, kill: OomKill) -> dict[str, Any] | None:
        """The cgroup alert that preceded a kill, for the kill's record (None: none recent)."""
        with self.lock:
            return preceding_alert(kill, self.alerts, CGROUP_LINK_WITHIN)


@valueclass(frozen=False, slots=False)
class Shared:
    """The store, clock, alert state and configuration the daemon's parts work with."""

    cfg: config_mod.Config
    store: Recorder
    clock: Clock
    outbox: Outbox
    redactor: Redactor
    boot_id: str | None
    host: HostState
    rules: detect.Rules = field(default_factory=detect.Rules)
    cgroups: CgroupState = field(default_factory=CgroupState)
    # The outbox thread's doorbell: rung after a transaction that queued notifications.
    wakeup: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)  # rules and host state
    tracing: bool = False  # the oom tracepoints are being read (daemon.tracer)
    # The watch over the history database (daemon/database.py); None in tests that need none.
    database: Any = None

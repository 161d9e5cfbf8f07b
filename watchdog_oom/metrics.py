"""Prometheus metrics at /metrics: the latest memory sample, kills, alerts and the outbox.

`Metrics` is a collector read at scrape time, registered in a registry of its own (with
the process collector, for the daemon's own footprint), so nothing is added to
prometheus_client's global default registry. Memory figures come from the daemon's latest
sample; kills, alerts and the outbox from the history store. While the store does not
answer, a scrape still gets what the daemon knows without it (the sample, the cgroups,
the database's state, the kills held) with `watchdog_oom_up` 0; the log says so once
per outage, and once when the store answers again, not at every scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from watchdog_oom.model import CgroupSample, MemorySample
from watchdog_oom.store import Recorder, StoreError, counts
from watchdog_oom.valueclass import valueclass

log = logging.getLogger(__name__)

PREFIX = "watchdog_oom_"


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` (metrics.listen) as (address, port) for a socket."""
    host, colon, port = listen.rpartition(":")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT or [IPv6]:PORT, e.g. 127.0.0.1:9464, got {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address takes brackets, e.g. [::1]:9464, got {listen!r}")
    return host, int(port)


@valueclass
class MetricsServer:
    """The HTTP server of a `Metrics.serve()`: its port, and how to stop it."""

    server: Any  # prometheus_client's WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def shutdown(self) -> None:
        """Stop serving, close the socket and wait for the serving thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def daemon_metrics(shared: Any, database: Any) -> Metrics:
    """The running daemon's metrics (daemon/daemon.py, which loads this module only when its
    configuration has an endpoint): its store and host, its last sample and check, the
    cgroups' latest readings, its database watch's state."""
    s = shared
    return Metrics(s.store, s.cfg.host, s.host.last_sample, lambda: s.host.last_check, started=s.clock(),
                   cgroups=lambda: list(s.cgroups.latest), database=lambda: database.state)


class Metrics:
    """The collector of one host's metrics, in its own registry (`.registry`)."""

    def __init__(self, store: Recorder, host: str, latest_sample: Callable[[], MemorySample | None],
                 last_check: Callable[[], datetime | None], started: datetime | None = None,
                 cgroups: Callable[[], Sequence[CgroupSample]] = tuple,
                 database: Callable[[], Any] | None = None) -> None:
        self.store = store
        self.cgroups = cgroups
        self.database = database  # the daemon's DatabaseWatch state: ok, kind, held
        self.started = started
        self.host = host
        self.latest_sample = latest_sample
        self.last_check = last_check
        self._unanswered = False  # the last scrape found the store not answering
        self._said = threading.Lock()  # scrapes may come at once: one says the change
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)

    def serve(self, listen: str) -> MetricsServer:
        """Serve /metrics on `listen` (HOST:PORT; port 0 picks a free one) from a daemon thread."""
        address, port = parse_listen(listen)
        server, thread = start_http_server(port, addr=address, registry=self.registry)
        return MetricsServer(server, thread)

    def collect(self) -> Iterator[Metric]:
        """Every metric, read now (called by the registry at each scrape)."""
        yield from self._sample_metrics()
        yield from cgroup_metrics(self.cgroups())
        checked = self.last_check()
        if checked is not None:
            yield GaugeMetricFamily(PREFIX + "last_check_timestamp_seconds",
                                    "When memory was last sampled and judged, Unix time.", value=checked.timestamp())
        try:
            store_metrics, up = list(self._store_metrics()), 1
        except StoreError as exc:
            store_metrics, up = [], 0
            self._answered(False, exc)
        else:
            self._answered(True)
        yield from store_metrics
        yield GaugeMetricFamily(PREFIX + "up", "1 when the history database answered this scrape, else 0.",
                                value=up)
        if self.database is not None:
            state = self.database()
            down = GaugeMetricFamily(PREFIX + "database_down",
                                     "1 while the history database is down (kind: corrupt, deleted, replaced, full, "
                                     "read-only, locked, unreachable, io), else 0.", labels=["kind"])
            down.add_metric([state.kind or ""], 0 if state.ok else 1)
            yield down
            yield GaugeMetricFamily(PREFIX + "kills_held", "OOM kills held in memory while the database refuses them.",
                                    value=state.held)

    def _answered(self, answered: bool, exc: BaseException | None = None) -> None:
        """Log the store's answer to scrapes when it changes: once per outage, once after."""
        with self._said:
            if answered == (not self._unanswered):
                return
            self._unanswered = not answered
        if answered:
            log.info("metrics: the history database answers again; kills, alerts and the outbox are served")
        else:
            log.warning("metrics: the history database does not answer; serving what is known without it "
                        "(watchdog_oom_up 0) until it does: %s", exc)

    def _sample_metrics(self) -> Iterator[Metric]:
        """The latest sample's figures; absent before the first sample, and where the kernel
        does not report them (PSI before 4.20, or disabled)."""
        sample = self.latest_sample()
        if sample is None:
            return
        for name, doc, value in (
            ("commit_percent", "Committed_AS / (MemTotal + SwapTotal) x 100, as sar -r %commit.",
             sample.commit_percent),
            ("commit_limit_percent", "Committed_AS / CommitLimit x 100.", sample.commit_limit_percent),
            ("committed_as_bytes", "Committed_AS from /proc/meminfo.", sample.committed_as_kb * 1024),
            ("commit_limit_bytes", "CommitLimit from /proc/meminfo.", sample.commit_limit_kb * 1024),
            ("mem_available_bytes", "MemAvailable from /proc/meminfo.",
             None if sample.mem_available_kb is None else sample.mem_available_kb * 1024),
            ("psi_memory_some_avg10", "/proc/pressure/memory some avg10, percent.", sample.psi_some_avg10),
            ("psi_memory_full_avg10", "/proc/pressure/memory full avg10, percent.", sample.psi_full_avg10),
        ):
            if value is not None:
                yield GaugeMetricFamily(PREFIX + name, doc, value=value)

    def _store_metrics(self) -> Iterator[Metric]:
        kills = CounterMetricFamily(
            # Counted from the daemon's start, so the counter only grows while it runs
            # (retention pruning old kills can never make it fall) and resets on restart,
            # as Prometheus expects of a counter.
            PREFIX + "kills", "OOM kills of this host recorded since the daemon started.",
            labels=["killer", "constraint"])
        for killer, constraint, count in counts.kill_totals(self.store, self.host, self.started):
            kills.add_metric([killer, constraint or "unknown"], count)
        alerts = GaugeMetricFamily(
            PREFIX + "alerts_firing", "Alerts firing now; 0 for kinds that fired before and resolved.",
            labels=["kind", "severity"])
        for kind, severity, count in counts.alert_counts(self.store, self.host):
            alerts.add_metric([kind, severity], count)
        yield kills
        yield alerts
        yield GaugeMetricFamily(PREFIX + "outbox_backlog", "Notifications waiting to be sent (pending or sending).",
                                value=counts.outbox_backlog(self.store))


CGROUP_LABELS = ["cgroup", "name", "kind"]


def cgroup_metrics(samples: Sequence[CgroupSample]) -> Iterator[Metric]:
    """Per-cgroup gauges for the cgroups worth watching: those at or above the warning level
    and the `cgroups.top` with the least headroom, so the series stay few however many
    containers the host runs. Named after cAdvisor's container_memory_* where they mean
    the same; `cgroup` is the path as the kernel prints it."""
    if not samples:
        return
    families = {
        "limit": GaugeMetricFamily(PREFIX + "cgroup_memory_limit_bytes",
                                   "memory.max / memory.limit_in_bytes of the cgroup.", labels=CGROUP_LABELS),
        "usage": GaugeMetricFamily(PREFIX + "cgroup_memory_usage_bytes",
                                   "memory.current / memory.usage_in_bytes of the cgroup.", labels=CGROUP_LABELS),
        "working_set": GaugeMetricFamily(PREFIX + "cgroup_memory_working_set_bytes",
                                         "Usage minus inactive file pages, as cAdvisor's "
                                         "container_memory_working_set_bytes.", labels=CGROUP_LABELS),
        "percent": GaugeMetricFamily(PREFIX + "cgroup_memory_working_set_percent",
                                     "Working set in percent of the limit.", labels=CGROUP_LABELS),
        "oom_kill": GaugeMetricFamily(PREFIX + "cgroup_oom_kills",
                                      "The cgroup's oom_kill counter (memory.events, memory.oom_control), "
                                      "kills in its descendants included.", labels=CGROUP_LABELS),
    }
    for s in samples:
        labels = [s.path, s.name or s.path, s.kind]
        for key, value in (("limit", s.limit_bytes), ("usage", s.usage_bytes), ("working_set", s.working_set_bytes),
                           ("percent", s.percent), ("oom_kill", s.oom_kill)):
            if value is not None:
                families[key].add_metric(labels, value)
    yield from families.values()

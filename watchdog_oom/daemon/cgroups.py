"""The cgroups check: read the memory cgroups with a limit, evaluate their rules, name the
victim inside each one that alerts, cross-check their kill counters, keep their history.

The reading and the rules are `watchdog_oom.cgroups` and `watchdog_oom.rules.cgroups`;
this job holds what they need between runs (each cgroup's recent samples, the counters'
baselines, the last alert per cgroup, which a kill record links to) and does the I/O.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from watchdog_oom import procfs
from watchdog_oom.cgroups import CgroupReader, Hierarchy, Scan
from watchdog_oom.daemon.recording import record_repeats, undone_unless_stored
from watchdog_oom.daemon.shared import CgroupState, CgroupTrack, Shared
from watchdog_oom.model import Alert
from watchdog_oom.rules import cgroups as rules

log = logging.getLogger("watchdog_oom")

CROSS_CHECK_CURSOR = "cgroups:oom_kill"  # the per-cgroup cross-check's state, kept as a cursor
HISTORY_KEPT = 64  # readings per cgroup kept in memory at most (the default window needs 33)


class CgroupCheck:
    """One reading of the memory cgroups and everything that follows from it."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.state: CgroupState = shared.cgroups
        self._reader: CgroupReader | None = None
        self._reader_key: tuple[Any, ...] = ()
        self._warned_truncated = False
        self._warned_slow = False
        self.alerted = False  # the last cross-check queued a notification

    def reader(self) -> CgroupReader:
        """The reader for the configuration in force (rebuilt when its settings change)."""
        c = self.shared.cfg.cgroups
        root = c.root_for(self.shared.cfg.procfs)
        key = (root, c.include, c.exclude, c.max_cgroups)
        if self._reader is None or key != self._reader_key:
            state_root = c.state_root_for(self.shared.cfg.procfs)
            self._reader = CgroupReader(root, state_root, include=c.include, exclude=c.exclude,
                                        max_cgroups=c.max_cgroups)
            self._reader_key = key
        return self._reader

    def __call__(self) -> None:
        s = self.shared
        cfg, now = s.cfg, s.clock()
        if not cfg.cgroups.enabled:
            return
        try:
            meminfo = procfs.read_meminfo(cfg.procfs)
            began = time.monotonic()
            scan = self.reader().scan(now, meminfo.get("MemTotal", 0) * 1024)
            elapsed = time.monotonic() - began
        except Exception as exc:
            log.error("cannot read memory cgroups under %s: %s", cfg.cgroups.root_for(cfg.procfs), exc)
            return
        self._log_scan(scan, elapsed)
        swap_total = meminfo.get("SwapTotal", 0) * 1024
        with s.lock:
            firing = s.rules.firing_map()
            history = self._history(scan, firing)
            conditions = rules.conditions(scan.samples, history, cfg.cgroups, firing)
        conditions = self._name_victims(conditions, scan, swap_total)
        with s.lock:
            prior = s.rules.snapshot()
            events = s.rules.evaluate(conditions, now, family=rules.FAMILY_PREFIXES,
                                      keep=rules.keep_keys(scan.samples, conditions))
            self._remember(scan, events, s.rules.firing_map(), now)
        with undone_unless_stored(s, prior, events), s.store.tx() as tx:
            tx.add_cgroup_samples(self.state.latest)  # those above warn and the top N: history stays bounded
            rows = self._record(tx, events, now)
            checked = self._cross_check(tx, scan, now)
            repeats = record_repeats(tx, s.outbox, now, cfg.notifications.repeat_interval)
        if checked:
            self.state.crosschecked_at = now  # committed: the host's cross-check may read what it found
        with self.state.lock:
            for alert, row_id in rows:  # (an alert fired: the rules of a cgroup with a limit are loaded)
                from watchdog_oom.rules.cgroup_limits import alert_link

                links = self.state.alerts.setdefault(alert.data.get("cgroup", ""), {})
                earlier = links.get(alert.key)
                same_episode = earlier is not None and earlier.get("alert_id") == row_id
                links[alert.key] = alert_link(alert, row_id, earlier if same_episode else None)
        if events or (checked and self.alerted) or repeats:  # the outbox thread's doorbell: it does not poll
            s.wakeup.set()

    def _log_scan(self, scan: Scan, elapsed: float) -> None:
        if scan.truncated and not self._warned_truncated:
            log.warning("cgroups: more than %d cgroups; the rest of the tree is not read (cgroups.max_cgroups)",
                        self.shared.cfg.cgroups.max_cgroups)
            self._warned_truncated = True
        log.debug("cgroups: %d looked at, %d with a limit, in %.3f s", scan.visited, len(scan.samples), elapsed)
        interval = self.shared.cfg.cgroups.interval
        if elapsed > interval / 4 and not self._warned_slow:
            log.warning("cgroups: reading %d cgroups took %.1f s, over a quarter of cgroups.interval (%g s); "
                        "a longer interval or include/exclude globs would lighten it",
                        scan.visited, elapsed, interval)
            self._warned_slow = True

    def _name_victims(self, conditions: list[Any], scan: Scan, swap_total: int) -> list[Any]:
        """Alerting conditions name the process the kernel would kill in their cgroup.
        Read outside the lock: /proc reads must not hold up the other checks."""
        by_path = {x.path: x for x in scan.samples}
        out = []
        for cond in conditions:
            sample = by_path.get(cond.data.get("cgroup", ""))
            if cond.severity is None or sample is None:
                out.append(cond)
                continue
            # (both loaded already: by the scan that read this cgroup, by the rule that judged it)
            from watchdog_oom.cgroup_limits import read_tasks
            from watchdog_oom.rules.cgroup_limits import name_victim

            hierarchy = _hierarchy(scan.hierarchies, sample.version)
            tasks = read_tasks(hierarchy.root, sample.path, self.shared.cfg.procfs) if hierarchy else []
            redact = self.shared.redactor.redact
            tasks = [t if not t.cmdline else _with_cmdline(t, redact(t.cmdline)) for t in tasks]
            out.append(name_victim(cond, sample, tasks, swap_total))
        return out

    def _history(self, scan: Scan, firing: Mapping[str, str | None]) -> dict[str, list[Any]]:
        """Each cgroup's earlier readings for the rules: all of them where its growth could
        reach the limit or its forecast fires (a forecast needs them), else the last one
        (what memory.high's rule compares with)."""
        out = {}
        for sample in scan.samples:
            track = self.state.history.get(sample.path)
            if track is not None:
                full = (track.may_reach(sample, self.shared.cfg.cgroups.horizon)
                        or bool(firing.get(rules.key_of(rules.FORECAST, sample.path))))
                out[sample.path] = track.samples(sample, full)
        return out

    def _remember(self, scan: Scan, events: list[Alert], firing: Mapping[str, str | None], now: datetime) -> None:
        state = self.state
        c = self.shared.cfg.cgroups
        keep = min(HISTORY_KEPT, int(c.window / c.interval) + 3)
        for sample in scan.samples:
            track = state.history.get(sample.path)
            if track is None or track.keep != keep:
                track = state.history[sample.path] = CgroupTrack(keep)
            track.add(sample)
        live = {x.path for x in scan.samples}
        for path in [p for p in state.history if p not in live]:
            del state.history[path]  # the cgroup is gone (a stopped container)
        state.latest = rules.worth_keeping(scan.samples, self.shared.cfg.cgroups,
                                           [k for k, v in firing.items() if v])
        state.scanned_at = now

    def _record(self, tx: Any, events: list[Alert], now: datetime) -> list[tuple[Alert, int]]:
        """Fire or resolve each alert with its notifications; the fired alerts with their row ids."""
        s = self.shared
        fired = []
        for alert in events:
            if alert.resolved:
                row = tx.resolve_alert(alert)
                if row is not None:
                    s.outbox.alert(tx, alert, row, "resolved", now)
                    log.info("resolved: %s", alert.key)
                continue
            row, reason = tx.fire_alert(alert)
            fired.append((alert, row.id))
            if reason is not None:
                s.outbox.alert(tx, alert, row, reason, now)
                log.warning("%s (%s): %s", alert.kind, alert.severity, alert.summary)
        return fired

    def _cross_check(self, tx: Any, scan: Scan, now: datetime) -> bool:
        """Each cgroup's oom_kill counter against the kills recorded in it this boot; False when
        off. `alerted` says whether it queued a notification."""
        s = self.shared
        if not s.cfg.kernel_log.vmstat_check:
            return False
        counters = {x.path: x.oom_kill for x in scan.samples if x.oom_kill is not None}
        raw = tx.get_cursor(CROSS_CHECK_CURSOR)
        state = json.loads(raw) if raw else {}
        recorded = rules.subtree_counts(tx.kills_by_cgroup(s.boot_id), counters)
        new_state, alerts = rules.cross_check(state, s.boot_id, counters, recorded, now)
        if alerts and self._every_kill_recorded(tx):
            # The kernel counted no kill this boot that is not on record: a cgroup's shortfall is a
            # kill filed without its cgroup (the tracepoint gives none), not one the log lost.
            alerts = []
            new_state["unlogged"] = state.get("unlogged", 0) if state.get("boot_id") == s.boot_id else 0
        for alert in alerts:
            row, _ = tx.fire_alert(alert)
            s.outbox.alert(tx, alert, row, "new", now)
            # Each finding is its own event: resolved at once, so the next one fires anew.
            tx.resolve_alert(Alert(alert.key, alert.kind, "info", alert.summary, now, True, {}))
            log.error("%s", alert.summary)
        if new_state != state:
            tx.set_cursor(CROSS_CHECK_CURSOR, json.dumps(new_state, sort_keys=True), now, cached=False)
        self.alerted = bool(alerts)
        return True

    def _every_kill_recorded(self, tx: Any) -> bool:
        """Whether every kill /proc/vmstat oom_kill counted since the host check's baseline is on
        record (kills it reported unlogged are not: a cgroup's alert still names their cgroup)."""
        from watchdog_oom.daemon.checks import VMSTAT_CURSOR

        s = self.shared
        raw = tx.get_cursor(VMSTAT_CURSOR)
        state = json.loads(raw) if raw else {}
        counter = procfs.read_vmstat(s.cfg.procfs).get("oom_kill")
        if counter is None or state.get("boot_id") != s.boot_id or "counter0" not in state:
            return False
        recorded = tx.count_kills(boot_id=s.boot_id)
        return (counter - state["counter0"]) - (recorded - state["recorded0"]) <= 0


def _hierarchy(hierarchies: list[Hierarchy], version: int) -> Hierarchy | None:
    return next((h for h in hierarchies if h.version == version), None)


def _with_cmdline(task: Any, cmdline: str) -> Any:
    from dataclasses import replace

    return replace(task, cmdline=cmdline)

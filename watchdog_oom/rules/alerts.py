"""Alerts the daemon raises about itself, repeats of firing alerts, and the likely
victims a commit or memory warning names."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from watchdog_oom.model import Alert

SOURCE_DOWN = "kernel_log.down"


def source_down(problem: str, now: datetime) -> Alert:
    """The alert that OOM kills are not being read, because the kernel log cannot be."""
    summary = (f"The kernel log cannot be read ({problem}); OOM kills are only counted from "
               "/proc/vmstat, without details, until it is back")
    return Alert(SOURCE_DOWN, SOURCE_DOWN, "critical", summary, now, False, {"problem": problem})


def source_up(now: datetime) -> Alert:
    """The outage alert resolved: the kernel log reads again."""
    return Alert(SOURCE_DOWN, "kernel_log.resolved", "info", "Resolved: the kernel log is read again.", now, True, {})


class Firing(Protocol):
    """A firing alert as stored: what a repeat needs of it."""

    key: str
    kind: str
    severity: str
    summary: str
    data: Any
    started_at: datetime
    last_notified_at: datetime | None


F = TypeVar("F", bound=Firing)  # the episode type the caller holds, handed back as it is


def repeats_due(firing: Iterable[F], now: datetime, repeat_interval: float) -> list[tuple[F, Alert]]:
    """The firing alerts last notified `repeat_interval` seconds ago or more, with the alert to send again."""
    repeat = timedelta(seconds=repeat_interval)
    return [(row, Alert(row.key, row.kind, row.severity, row.summary, now, False, row.data or {}))
            for row in firing if now - (row.last_notified_at or row.started_at) >= repeat]


def wants_victims(events: Iterable[Alert]) -> bool:
    """Whether any event is a commit or memory warning, which names the likely victims."""
    return any(_names_victims(a) for a in events)


def with_victims(events: list[Alert], victims: list[dict[str, Any]]) -> list[Alert]:
    """The events, commit and memory warnings carrying the likely victims of the moment."""
    return [dataclasses.replace(a, data={**a.data, "victims": victims}) if _names_victims(a) else a for a in events]


def _names_victims(alert: Alert) -> bool:
    return not alert.resolved and alert.kind.startswith(("commit.", "memory."))

"""The daemon's database read back as the commands read it: the daemon holds a `Recorder`,
which records and serves the outbox but has none of the history's queries."""

from __future__ import annotations

from typing import Any

from watchdog_oom.store import Store


def history_of(daemon: Any) -> Store:
    """A `Store` on the database of `daemon` (a Daemon), for reading what it recorded."""
    return Store(daemon.store.url, daemon.store.host)

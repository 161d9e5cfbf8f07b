"""The history store: every SQL statement of watchdog-oom lives here, and SQLAlchemy is
used nowhere else (Core only: tables.py, statements on connections; no ORM).

`Recorder(url, host)` (recorder.py), what the daemon holds, opens any SQLAlchemy URL
(SQLite by default), migrates it with Alembic, and hands out transactions
(`Recorder.tx()`) in which the daemon writes rows, the source cursor that produced them
and the notifications they cause, all or nothing; the outbox's looks and retention are
there too (the senders claim rows and record their outcomes through claims.py: `claim_due`,
`mark_sent`, `mark_retry`, `mark_failed`). `Store(url, host)` (history.py)
is a `Recorder` that also reads the history back, for the commands.
Everything comes back as the values of watchdog_oom.stored, never as rows.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Loaded on first use: SQLAlchemy costs a command that stores nothing (`check`,
# `processes`) most of its start-up, and `import` overlaps it with reading the logs. The
# kill record and mute rules need no database at all; Tx (the write side) only a writer.
# The daemon holds a `Recorder`, which writes and serves the outbox: the history's read
# side (`Store`'s queries and charts) is never loaded in it. Each name comes from the
# module that defines it, so that asking for one loads no more than it needs.
_ENGINE, _HISTORY, _RECORDS = "watchdog_oom.store.engine", "watchdog_oom.store.history", "watchdog_oom.store.records"
_LAZY = {
    "CLAIM_LEASE": "watchdog_oom.store.outbox",
    "KILL_FIELDS": "watchdog_oom.model",
    "Recorder": "watchdog_oom.store.recorder",
    "SAME_KILL_WINDOW": _RECORDS,
    "SCHEMA_HEAD": _ENGINE,
    "Store": _HISTORY,
    "Tx": "watchdog_oom.store.writes",
    "alembic_config": "watchdog_oom.store.upkeep",
    "kill_record": _RECORDS,
    "make_engine": _ENGINE,
    "mute_matches": _RECORDS,
    "with_local_time": "watchdog_oom.model",
}

__all__ = ["StoreError", *sorted(_LAZY)]


class StoreError(Exception):
    """The database cannot be opened or used; the message says which and why."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

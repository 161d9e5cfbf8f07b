"""The history store: every SQL statement of watchdog-oom lives here, and SQLAlchemy is
used nowhere else (Core only: tables.py, statements on connections; no ORM).

`Store(url, host)` opens any SQLAlchemy URL (SQLite by default), migrates it with Alembic,
and hands out transactions (`Store.tx()`) in which the daemon writes rows, the source
cursor that produced them and the notifications they cause, all or nothing. The outbox
(`claim_due`, `mark_sent`, `mark_retry`, `mark_failed`) and the history queries are here too.
Everything comes back as the values of watchdog_oom.stored, never as rows.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Loaded on first use: SQLAlchemy costs a command that stores nothing (`check`,
# `processes`) most of its start-up, and `import` overlaps it with reading the logs. The
# kill record and mute rules need no database at all; Tx (the write side) only a writer.
_HISTORY, _RECORDS = "watchdog_oom.store.history", "watchdog_oom.store.records"
_LAZY = {
    "CLAIM_LEASE": _HISTORY,
    "KILL_FIELDS": _HISTORY,
    "SAME_KILL_WINDOW": _RECORDS,
    "SCHEMA_HEAD": _HISTORY,
    "Store": _HISTORY,
    "Tx": "watchdog_oom.store.writes",
    "alembic_config": _HISTORY,
    "kill_record": _RECORDS,
    "make_engine": _HISTORY,
    "mute_matches": _RECORDS,
    "with_local_time": _HISTORY,
}

__all__ = ["StoreError", *sorted(_LAZY)]


class StoreError(Exception):
    """The database cannot be opened or used; the message says which and why."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

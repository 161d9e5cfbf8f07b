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
# `processes`) most of its start-up, and `import` overlaps it with reading the logs.
_IMPLEMENTATION = "watchdog_oom.store.history"
_LAZY = frozenset({
    "CLAIM_LEASE",
    "KILL_FIELDS",
    "SAME_KILL_WINDOW",
    "SCHEMA_HEAD",
    "Store",
    "Tx",
    "alembic_config",
    "kill_record",
    "make_engine",
    "mute_matches",
    "with_local_time",
})

__all__ = ["StoreError", *sorted(_LAZY)]


class StoreError(Exception):
    """The database cannot be opened or used; the message says which and why."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_IMPLEMENTATION), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

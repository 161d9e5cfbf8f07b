"""The SELECT statements a piece of the store runs, captured with their parameters, so a
test can ask the database for their plans (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event


def selects_run(store: Any, call: Callable[[], object]) -> list[tuple[str, Any]]:
    """Each SELECT that `call()` sends through `store.engine`, with its parameters, in order."""
    seen: list[tuple[str, Any]] = []

    def listener(conn, cursor, statement, params, context, executemany):
        seen.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", listener)
    try:
        call()
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)
    return [(statement, params) for statement, params in seen if statement.lstrip().upper().startswith("SELECT")]

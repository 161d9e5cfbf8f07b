"""The history schema as the migrations own it: every table's full `Table` (keys, NOT NULL,
uniqueness, the database's defaults, foreign keys) and its indexes, on one MetaData
(`schema()`, `metadata`), and what Alembic's autogenerate compares (`include_object`).

Split from tables.py, whose lightweight clauses the statements use: only the migrations
(Alembic's env.py, in the daemon's migration child or a command's `db upgrade`) and the
tests that compare the schema with them ask for this, so a daemon or a command that only
reads and writes rows never loads it. tables.py still answers for these names (PEP 562).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import MetaData

from watchdog_oom.store.tables import COLUMN_SCHEMA, TABLES

# Each table's indexes, (name, column, ...): what the migrations create, made with the
# rest of the schema (schema()). SQLAlchemy Core never reads an Index to build or run a
# statement.
INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "samples": (
        ("ix_samples_host_time", "host", "time"),  # a host's chart, retention's chunks
        ("ix_samples_time", "time"),  # history samples of every host, newest first
    ),
    "cgroup_samples": (("ix_cgroup_samples_host_time", "host", "time"),),
    "kills": (
        ("ix_kills_host_time", "host", "time"),  # --host, a report, deduplication
        ("ix_kills_host_pid", "host", "pid"),
        ("ix_kills_time", "time"),  # history kills of the fleet, newest first
        ("ix_kills_process_time", "process", "time"),  # --process NAME or 'prefix*', summary
        ("ix_kills_host_recorded", "host", "recorded_at"),  # metrics' counts, retention
        ("ix_kills_cgroup", "task_memcg", "memcg"),  # summary per cgroup, from the index alone
        # PostgreSQL also has ix_kills_process_pattern (see UNDECLARED_INDEXES).
    ),
    "alerts": (
        ("ix_alerts_host_key_status", "host", "key", "status"),
        ("ix_alerts_host_started", "host", "started_at"),
        ("ix_alerts_started", "started_at"),
    ),
    "notifications": (
        ("ix_notifications_status_due", "status", "due_at"),
        ("ix_notifications_host_created", "host", "created_at"),
        ("ix_notifications_created", "created_at"),
        # Foreign keys: "was this alert announced on that channel", and ON DELETE SET NULL
        # when retention deletes alerts or mutes, would otherwise scan the whole outbox.
        ("ix_notifications_alert", "alert_id", "channel"),
        ("ix_notifications_mute", "mute_id"),
    ),
    "protections": (("ix_protections_host_time", "host", "time"), ("ix_protections_time", "time")),
    "adjustments": (("ix_adjustments_host_time", "host", "time"), ("ix_adjustments_process", "process")),
    "quarantined_kills": (("ix_quarantined_kills_host_time", "host", "recorded_at"),),
}
_built: list[MetaData] = []  # the schema, once made
_building = threading.Lock()


def schema() -> MetaData:
    """The whole schema, every table's Columns (their keys, NOT NULL, uniqueness, the
    database's defaults) and indexes (INDEXES), on one MetaData made at the first call:
    what the migrations build, for Alembic's autogenerate and the tests that compare."""
    with _building:
        if not _built:
            _built.append(_make_schema())
    return _built[0]


def __getattr__(name: str) -> MetaData:
    """`metadata`, the schema (see `schema()`), made when first asked for (PEP 562)."""
    if name == "metadata":
        return schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _make_schema() -> MetaData:
    from sqlalchemy import Column, ForeignKey, Index, MetaData, Table

    metadata = MetaData()
    for clause in TABLES:
        columns = []
        for each, declared in zip(clause.columns, COLUMN_SCHEMA[clause.name], strict=True):
            options = dict(declared)
            references = options.pop("references", None)
            keys = [ForeignKey(references[0], ondelete=references[1])] if references else []
            # Each Column its own type, as declared one by one (a Boolean attaches to its column).
            columns.append(Column(each.name, each.type.copy(), *keys, **options))
        made = Table(clause.name, metadata, *columns)
        for index, *names in INDEXES.get(clause.name, ()):
            Index(index, *(made.c[name] for name in names))
    return metadata


# Indexes the migrations create that are not declared above. ix_kills_process_pattern
# (migration 0008, PostgreSQL's alone): `--process 'java*'` asks LIKE 'java%', whose literal
# prefix PostgreSQL makes a range of a plain index only under the C collation; this index,
# of the pattern operator class (process varchar_pattern_ops, time), compares byte by byte
# whatever the database's collation (en_US.UTF-8, ICU). SQLite has no operator classes and
# needs none (the store gives it the range on BINARY text). Declaring the operator class
# (postgresql_ops) here would load SQLAlchemy's PostgreSQL dialect into every process that
# imports the tables, on SQLite too: some 30 ms of each command's start, 90 under load.
UNDECLARED_INDEXES = frozenset({"ix_kills_process_pattern"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's include_object: what autogenerate compares with the tables above (all but
    UNDECLARED_INDEXES, which the migrations alone own)."""
    return not (type_ == "index" and name in UNDECLARED_INDEXES)

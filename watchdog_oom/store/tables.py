"""The history schema: the tables the statements use, and the schema Alembic's migrations own.

Every row carries its `host`, so a fleet can share one database. Times are stored as
UTC and always come back timezone-aware, whatever the backend. The store reads and
writes these tables with Core statements and hands out the values of
watchdog_oom.stored, never rows.

The statements need each table's name and its columns' names and types, and no more: the
tables below are SQLAlchemy's lightweight `table()` of `column()`s. The rest of each
column (NOT NULL, keys, uniqueness, the database's defaults) and the indexes are the
schema's alone, store/schema.py's `schema()`: the full `Table`s on one MetaData, what the
migrations create and autogenerate compares, made only where asked for (Alembic's env.py,
the tests that compare; a PostgreSQL store makes the kills Table alone, without its
indexes, at its first batch: see `keyed()`). As 141 Columns of 10 Tables they held 0.41 MiB
(traced) in every process that imports the tables, the idle daemon included; as clauses,
0.13. The clauses carry no Python-side default: every statement names the values it
inserts (a row's id aside: the database's), and `engine.insert_id` asks for the new id.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    TypeDecorator,
    column,
    table,
)
from sqlalchemy.sql.expression import TableClause

from watchdog_oom.forward import forward

if TYPE_CHECKING:
    from sqlalchemy import Table

# SQLite only autoincrements an INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: times must carry an offset")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# A column's type, one instance per kind shared by all the columns of that kind (a type
# holds no state of its column; SQLAlchemy keeps its processors per dialect on it).
_UTC, _NAME = UtcDateTime(), String(255)
_TYPES: dict[Any, Any] = {kind: kind() for kind in (Text, Integer, BigInteger, Float, Boolean, JSON)}

# Per table, per column in order: what else its Column takes in the schema (schema()):
# Column's keyword arguments, and `references` ("alerts.id", its ON DELETE) for a foreign key.
COLUMN_SCHEMA: dict[str, tuple[dict[str, Any], ...]] = {}
_NULLABLE: dict[str, Any] = {}
_NOT_NULL: dict[str, Any] = {"nullable": False}

Col = tuple[str, Any, dict[str, Any]]


def _c(name: str, type_: Any, nullable: bool = True, **schema: Any) -> Col:
    """A column: its name, its type, and the rest of its declaration (for schema())."""
    if schema:
        if not nullable:
            schema["nullable"] = False
    else:
        schema = _NULLABLE if nullable else _NOT_NULL
    return name, _TYPES.get(type_, type_), schema


def _table(name: str, *columns: Col) -> TableClause:
    COLUMN_SCHEMA[name] = tuple(schema for _, _, schema in columns)
    return table(name, *(column(column_name, type_) for column_name, type_, _ in columns))


def _id() -> Col:
    return _c("id", BigId, primary_key=True, autoincrement=True)


def _host() -> Col:
    return _c("host", _NAME, nullable=False)


def _when(name: str, nullable: bool = False) -> Col:
    return _c(name, _UTC, nullable=nullable)


# A memory reading; `resolution` is 0 for a raw sample, else the seconds it averages.
samples = _table(
    "samples",
    _id(), _host(), _when("time"),
    _c("resolution", Integer, nullable=False),
    _c("mem_total_kb", BigInteger, nullable=False),
    _c("mem_available_kb", BigInteger),
    _c("swap_total_kb", BigInteger, nullable=False),
    _c("swap_free_kb", BigInteger, nullable=False),
    _c("committed_as_kb", BigInteger, nullable=False),
    _c("commit_limit_kb", BigInteger, nullable=False),
    _c("commit_percent", Float, nullable=False),
    _c("commit_limit_percent", Float),
    _c("mem_available_percent", Float),
    _c("psi_some_avg10", Float),
    _c("psi_full_avg10", Float),
    _c("overcommit_memory", Integer),
)

# A memory cgroup's reading, kept for those above the warning level and the `top` with the
# least headroom; `resolution` is 0 for a raw reading, else the seconds it averages.
cgroup_samples = _table(
    "cgroup_samples",
    _id(), _host(), _when("time"),
    _c("resolution", Integer, nullable=False),
    _c("path", Text, nullable=False),
    _c("name", Text),
    _c("kind", String(32)),
    _c("limit_bytes", BigInteger),
    _c("high_bytes", BigInteger),
    _c("usage_bytes", BigInteger, nullable=False),
    _c("working_set_bytes", BigInteger, nullable=False),
    _c("working_set_percent", Float),
    _c("oom_kill", BigInteger),
)

# One process killed by an OOM killer: the kill record of INTERFACE.md.
kills = _table(
    "kills",
    _id(), _host(),
    _c("boot_id", String(64)),
    _when("time", nullable=True),
    _c("mono_usec", BigInteger),
    _c("pid", Integer),  # None: a cgroup was killed (systemd-oomd)
    _c("process", _NAME, nullable=False),
    _c("uid", BigInteger),
    _c("total_vm_kb", BigInteger),
    _c("anon_rss_kb", BigInteger),
    _c("file_rss_kb", BigInteger),
    _c("shmem_rss_kb", BigInteger),
    _c("pgtables_kb", BigInteger),
    _c("oom_score_adj", Integer),
    _c("score", Integer),
    _c("constraint", String(64)),
    _c("memcg", Text),
    _c("task_memcg", Text),
    _c("cgroup_oom", Boolean, nullable=False),
    _c("invoker", _NAME),
    _c("invoker_pid", Integer),
    _c("gfp_mask", _NAME),
    _c("alloc_order", Integer),
    _c("killer", String(32), nullable=False),
    _c("source", Text),
    _c("cmdline", Text),
    _c("unit", Text),
    # task_table, memory_info, extra, commit state at the time of the kill
    _c("details", JSON, nullable=False),
    _when("recorded_at"),
)

# One episode of a condition, from when it fired to when it resolved.
alerts = _table(
    "alerts",
    _id(), _host(),
    _c("key", _NAME, nullable=False),
    _c("kind", String(64), nullable=False),
    _c("severity", String(16), nullable=False),
    _c("status", String(16), nullable=False),  # firing | resolved
    _c("summary", Text, nullable=False),
    _when("started_at"),
    _when("updated_at"),
    _when("resolved_at", nullable=True),
    _when("last_notified_at", nullable=True),
    _c("data", JSON, nullable=False),
)

# Silences matching notifications until `until`; what is muted is still recorded.
mutes = _table(
    "mutes",
    _id(),
    _c("host", _NAME),  # None: every host of the fleet
    _when("created_at"),
    _when("until"),
    _c("kind", String(64)),
    _c("process", _NAME),
    _c("cgroup", Text),
    _c("reason", Text),
)

# The outbox: one message for one channel, written in the transaction that caused it.
notifications = _table(
    "notifications",
    _id(), _host(),
    _c("uuid", String(64), nullable=False, unique=True),  # webhook-id, same on every retry
    _c("channel", _NAME, nullable=False),
    _c("kind", String(64), nullable=False),
    _c("severity", String(16), nullable=False),
    _c("reason", String(16), nullable=False),  # first | new | repeat | resolved | test
    _c("summary", Text, nullable=False),
    # pending | sending | sent | failed | given_up | muted
    _c("status", String(16), nullable=False),
    _c("group_key", _NAME),
    _c("data", JSON, nullable=False),
    _c("alert_id", BigId, references=("alerts.id", "SET NULL")),
    _c("mute_id", BigId, references=("mutes.id", "SET NULL")),
    _when("created_at"),
    _when("due_at"),
    _c("attempts", Integer, nullable=False),
    _when("last_attempt_at", nullable=True),
    _c("last_error", Text),
    _c("detail", Text),  # the endpoint's answer when sent
    _when("sent_at", nullable=True),
)

# Where a source (or a counter such as vmstat oom_kill) was last read, per host.
cursors = _table(
    "cursors",
    _c("host", _NAME, primary_key=True),
    _c("source", _NAME, primary_key=True),
    _c("cursor", Text, nullable=False),
    _when("updated_at"),
)

# A change the daemon made to a process's oom_score_adj (processes.protect).
protections = _table(
    "protections",
    _id(), _host(), _when("time"),
    _c("pid", Integer, nullable=False),
    _c("process", _NAME, nullable=False),
    _c("cmdline", Text),
    _c("from_adj", Integer),
    _c("to_adj", Integer, nullable=False),
    _c("error", Text),
)

# A write to a process's oom_score_adj, seen by the oom_score_adj_update tracepoint: the
# process, the old and new value, and who wrote it (``history adjustments``).
adjustments = _table(
    "adjustments",
    _id(), _host(),
    _c("boot_id", String(64)),
    _when("time"),
    _c("pid", Integer, nullable=False),
    _c("process", _NAME, nullable=False),
    _c("cmdline", Text),
    _c("unit", Text),
    _c("old_adj", Integer),
    _c("new_adj", Integer, nullable=False),
    _c("critical", Boolean, nullable=False),
    _c("by_watchdog", Boolean, nullable=False),
    _c("severity", String(16)),  # the alert it raised, if any
    _c("writer_pid", Integer),
    _c("writer_tid", Integer, nullable=False),
    _c("writer_process", _NAME, nullable=False),
    _c("writer_cmdline", Text),
    _c("writer_unit", Text),
    _c("writer_uid", BigInteger),
    _c("writer_exited", Boolean, nullable=False),
    # why the writer is not known (its event was lost), else null (migration 0009)
    _c("writer_unknown", Text),
    # "tracepoint": read from its event; "resync": found by re-reading /proc after events
    # were lost (migration 0009; the rows before it were all "tracepoint")
    _c("found_by", String(16), nullable=False, server_default="tracepoint"),
)

# A kill the database would not store (a value it cannot take): kept with the text it was
# read from and the error, so it is neither lost nor able to block the others.
quarantined_kills = _table(
    "quarantined_kills",
    _id(), _host(),
    _when("time", nullable=True),  # when the kill was logged, if known
    _when("recorded_at"),
    _c("source", Text),
    _c("process", _NAME),
    _c("raw", Text, nullable=False),  # the kill as read: its raw line, else its fields as JSON
    _c("error", Text, nullable=False),
)

_keyed: dict[str, Table] = {}  # keyed()'s Tables, once made
_making = threading.Lock()


def keyed(name: str) -> Table:
    """The Table of `name` as ordered RETURNING needs it (PostgreSQL's batch of kills,
    batch._insert): its columns and their types, and its autoincrement key, on a MetaData of
    its own; no other constraint and no index (the schema's alone, store/schema.py). Made at the
    first call, once, however many threads ask at once."""
    made = _keyed.get(name)
    if made is None:
        with _making:
            made = _keyed.get(name)
            if made is None:
                made = _keyed[name] = _make_keyed(name)
    return made


def _make_keyed(name: str) -> Table:
    from sqlalchemy import Column, MetaData, Table

    clause = next(each for each in TABLES if each.name == name)
    columns = []
    for each, declared in zip(clause.columns, COLUMN_SCHEMA[name], strict=True):
        key = {option: declared[option] for option in ("primary_key", "autoincrement") if option in declared}
        columns.append(Column(each.name, each.type.copy(), **key))
    return Table(name, MetaData(), *columns)


TABLES = (samples, cgroup_samples, kills, alerts, mutes, notifications, cursors, protections, adjustments,
          quarantined_kills)

# The schema as the migrations own it (the full Tables, their indexes, what autogenerate
# compares): store/schema.py's, loaded where asked for.
_SCHEMA_NAMES = ("INDEXES", "UNDECLARED_INDEXES", "include_object", "metadata", "schema")


__getattr__ = forward(__name__, {"watchdog_oom.store.schema": _SCHEMA_NAMES})


__all__ = [
    "BigId",
    "UtcDateTime",
    "adjustments",
    "alerts",
    "cgroup_samples",
    "cursors",
    "kills",
    "mutes",
    "notifications",
    "protections",
    "quarantined_kills",
    "samples",
    "keyed",
]

"""The history schema: the tables the statements use, and the schema Alembic's migrations own.

Every row carries its `host`, so a fleet can share one database. Times are stored as
UTC and always come back timezone-aware, whatever the backend. The store reads and
writes these tables with Core statements and hands out the values of
watchdog_oom.stored, never rows.

The statements need each table's name and its columns' names and types, and no more: the
tables below are SQLAlchemy's lightweight `table()` of `column()`s. The rest of each
column (NOT NULL, keys, uniqueness, the database's defaults) and the indexes are the
schema's alone, `schema()`: the full `Table`s on one MetaData, what the migrations create
and autogenerate compares, made only where asked for (Alembic's env.py, the tests that
compare; a PostgreSQL store makes the kills Table alone, without its indexes, at
its first batch: see `keyed()`). As 141 Columns of 10 Tables they held 0.41 MiB
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

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table

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
_SCHEMA: dict[str, tuple[dict[str, Any], ...]] = {}
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
    _SCHEMA[name] = tuple(schema for _, _, schema in columns)
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
_keyed: dict[str, Table] = {}  # keyed()'s Tables, once made
_building = threading.Lock()


def schema() -> MetaData:
    """The whole schema, every table's Columns (their keys, NOT NULL, uniqueness, the
    database's defaults) and indexes (INDEXES), on one MetaData made at the first call:
    what the migrations build, for Alembic's autogenerate and the tests that compare."""
    with _building:
        if not _built:
            _built.append(_make_schema())
    return _built[0]


def keyed(name: str) -> Table:
    """The Table of `name` as ordered RETURNING needs it (PostgreSQL's batch of kills,
    batch._insert): its columns and their types, and its autoincrement key, on a MetaData of
    its own; no other constraint and no index (the schema's alone, `schema()`). Made at the
    first call, once, however many threads ask at once."""
    made = _keyed.get(name)
    if made is None:
        with _building:
            made = _keyed.get(name)
            if made is None:
                made = _keyed[name] = _make_keyed(name)
    return made


def _make_keyed(name: str) -> Table:
    from sqlalchemy import Column, MetaData, Table

    clause = next(each for each in _CLAUSES if each.name == name)
    columns = []
    for each, declared in zip(clause.columns, _SCHEMA[name], strict=True):
        key = {option: declared[option] for option in ("primary_key", "autoincrement") if option in declared}
        columns.append(Column(each.name, each.type.copy(), **key))
    return Table(name, MetaData(), *columns)


def _make_schema() -> MetaData:
    from sqlalchemy import Column, ForeignKey, Index, MetaData, Table

    metadata = MetaData()
    for clause in _CLAUSES:
        columns = []
        for each, declared in zip(clause.columns, _SCHEMA[clause.name], strict=True):
            options = dict(declared)
            references = options.pop("references", None)
            keys = [ForeignKey(references[0], ondelete=references[1])] if references else []
            # Each Column its own type, as declared one by one (a Boolean attaches to its column).
            columns.append(Column(each.name, each.type.copy(), *keys, **options))
        made = Table(clause.name, metadata, *columns)
        for index, *names in INDEXES.get(clause.name, ()):
            Index(index, *(made.c[name] for name in names))
    return metadata


_CLAUSES = (samples, cgroup_samples, kills, alerts, mutes, notifications, cursors, protections, adjustments,
            quarantined_kills)


def __getattr__(name: str) -> MetaData:
    """`metadata`, the schema (see `schema()`), made when first asked for (PEP 562)."""
    if name == "metadata":
        return schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


__all__ = [
    "INDEXES",
    "UNDECLARED_INDEXES",
    "BigId",
    "UtcDateTime",
    "adjustments",
    "alerts",
    "cgroup_samples",
    "cursors",
    "include_object",
    "kills",
    "mutes",
    "notifications",
    "protections",
    "quarantined_kills",
    "samples",
    "keyed",
    "schema",
]

"""The history schema: SQLAlchemy Core tables on one MetaData, owned by Alembic migrations.

Every row carries its `host`, so a fleet can share one database. Times are stored as
UTC and always come back timezone-aware, whatever the backend. The store reads and
writes these tables with Core statements and hands out the values of
watchdog_oom.stored, never rows.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

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


# The tables as the statements use them. Their indexes are the schema's alone (below):
# `metadata`, the schema the migrations create and autogenerate compares, has them.
_tables = MetaData()


def _id() -> Column[int]:
    return Column("id", BigId, primary_key=True, autoincrement=True)


def _host() -> Column[str]:
    return Column("host", String(255), nullable=False)


def _when(name: str, nullable: bool = False) -> Column[datetime]:
    return Column(name, UtcDateTime(), nullable=nullable)


# A memory reading; `resolution` is 0 for a raw sample, else the seconds it averages.
samples = Table(
    "samples", _tables,
    _id(), _host(), _when("time"),
    Column("resolution", Integer, nullable=False, default=0),
    Column("mem_total_kb", BigInteger, nullable=False),
    Column("mem_available_kb", BigInteger),
    Column("swap_total_kb", BigInteger, nullable=False),
    Column("swap_free_kb", BigInteger, nullable=False),
    Column("committed_as_kb", BigInteger, nullable=False),
    Column("commit_limit_kb", BigInteger, nullable=False),
    Column("commit_percent", Float, nullable=False),
    Column("commit_limit_percent", Float),
    Column("mem_available_percent", Float),
    Column("psi_some_avg10", Float),
    Column("psi_full_avg10", Float),
    Column("overcommit_memory", Integer),
)

# A memory cgroup's reading, kept for those above the warning level and the `top` with the
# least headroom; `resolution` is 0 for a raw reading, else the seconds it averages.
cgroup_samples = Table(
    "cgroup_samples", _tables,
    _id(), _host(), _when("time"),
    Column("resolution", Integer, nullable=False, default=0),
    Column("path", Text, nullable=False),
    Column("name", Text),
    Column("kind", String(32)),
    Column("limit_bytes", BigInteger),
    Column("high_bytes", BigInteger),
    Column("usage_bytes", BigInteger, nullable=False),
    Column("working_set_bytes", BigInteger, nullable=False),
    Column("working_set_percent", Float),
    Column("oom_kill", BigInteger),
)

# One process killed by an OOM killer: the kill record of INTERFACE.md.
kills = Table(
    "kills", _tables,
    _id(), _host(),
    Column("boot_id", String(64)),
    _when("time", nullable=True),
    Column("mono_usec", BigInteger),
    Column("pid", Integer),  # None: a cgroup was killed (systemd-oomd)
    Column("process", String(255), nullable=False),
    Column("uid", BigInteger),
    Column("total_vm_kb", BigInteger),
    Column("anon_rss_kb", BigInteger),
    Column("file_rss_kb", BigInteger),
    Column("shmem_rss_kb", BigInteger),
    Column("pgtables_kb", BigInteger),
    Column("oom_score_adj", Integer),
    Column("score", Integer),
    Column("constraint", String(64)),
    Column("memcg", Text),
    Column("task_memcg", Text),
    Column("cgroup_oom", Boolean, nullable=False, default=False),
    Column("invoker", String(255)),
    Column("invoker_pid", Integer),
    Column("gfp_mask", String(255)),
    Column("alloc_order", Integer),
    Column("killer", String(32), nullable=False, default="kernel"),
    Column("source", Text),
    Column("cmdline", Text),
    Column("unit", Text),
    # task_table, memory_info, extra, commit state at the time of the kill
    Column("details", JSON, nullable=False, default=dict),
    _when("recorded_at"),
)

# One episode of a condition, from when it fired to when it resolved.
alerts = Table(
    "alerts", _tables,
    _id(), _host(),
    Column("key", String(255), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # firing | resolved
    Column("summary", Text, nullable=False),
    _when("started_at"),
    _when("updated_at"),
    _when("resolved_at", nullable=True),
    _when("last_notified_at", nullable=True),
    Column("data", JSON, nullable=False, default=dict),
)

# Silences matching notifications until `until`; what is muted is still recorded.
mutes = Table(
    "mutes", _tables,
    _id(),
    Column("host", String(255)),  # None: every host of the fleet
    _when("created_at"),
    _when("until"),
    Column("kind", String(64)),
    Column("process", String(255)),
    Column("cgroup", Text),
    Column("reason", Text),
)

# The outbox: one message for one channel, written in the transaction that caused it.
notifications = Table(
    "notifications", _tables,
    _id(), _host(),
    Column("uuid", String(64), nullable=False, unique=True),  # webhook-id, same on every retry
    Column("channel", String(255), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("reason", String(16), nullable=False),  # first | new | repeat | resolved | test
    Column("summary", Text, nullable=False),
    # pending | sending | sent | failed | given_up | muted
    Column("status", String(16), nullable=False),
    Column("group_key", String(255)),
    Column("data", JSON, nullable=False, default=dict),
    Column("alert_id", ForeignKey("alerts.id", ondelete="SET NULL")),
    Column("mute_id", ForeignKey("mutes.id", ondelete="SET NULL")),
    _when("created_at"),
    _when("due_at"),
    Column("attempts", Integer, nullable=False, default=0),
    _when("last_attempt_at", nullable=True),
    Column("last_error", Text),
    Column("detail", Text),  # the endpoint's answer when sent
    _when("sent_at", nullable=True),
)

# Where a source (or a counter such as vmstat oom_kill) was last read, per host.
cursors = Table(
    "cursors", _tables,
    Column("host", String(255), primary_key=True),
    Column("source", String(255), primary_key=True),
    Column("cursor", Text, nullable=False),
    _when("updated_at"),
)

# A change the daemon made to a process's oom_score_adj (processes.protect).
protections = Table(
    "protections", _tables,
    _id(), _host(), _when("time"),
    Column("pid", Integer, nullable=False),
    Column("process", String(255), nullable=False),
    Column("cmdline", Text),
    Column("from_adj", Integer),
    Column("to_adj", Integer, nullable=False),
    Column("error", Text),
)

# A write to a process's oom_score_adj, seen by the oom_score_adj_update tracepoint: the
# process, the old and new value, and who wrote it (``history adjustments``).
adjustments = Table(
    "adjustments", _tables,
    _id(), _host(),
    Column("boot_id", String(64)),
    _when("time"),
    Column("pid", Integer, nullable=False),
    Column("process", String(255), nullable=False),
    Column("cmdline", Text),
    Column("unit", Text),
    Column("old_adj", Integer),
    Column("new_adj", Integer, nullable=False),
    Column("critical", Boolean, nullable=False, default=False),
    Column("by_watchdog", Boolean, nullable=False, default=False),
    Column("severity", String(16)),  # the alert it raised, if any
    Column("writer_pid", Integer),
    Column("writer_tid", Integer, nullable=False),
    Column("writer_process", String(255), nullable=False),
    Column("writer_cmdline", Text),
    Column("writer_unit", Text),
    Column("writer_uid", BigInteger),
    Column("writer_exited", Boolean, nullable=False, default=False),
    # why the writer is not known (its event was lost), else null (migration 0009)
    Column("writer_unknown", Text),
    # "tracepoint": read from its event; "resync": found by re-reading /proc after events
    # were lost (migration 0009; the rows before it were all "tracepoint")
    Column("found_by", String(16), nullable=False, server_default="tracepoint"),
)

# A kill the database would not store (a value it cannot take): kept with the text it was
# read from and the error, so it is neither lost nor able to block the others.
quarantined_kills = Table(
    "quarantined_kills", _tables,
    _id(), _host(),
    _when("time", nullable=True),  # when the kill was logged, if known
    _when("recorded_at"),
    Column("source", Text),
    Column("process", String(255)),
    Column("raw", Text, nullable=False),  # the kill as read: its raw line, else its fields as JSON
    Column("error", Text, nullable=False),
)

# Each table's indexes, (name, column, ...): what the migrations create. SQLAlchemy Core
# never reads an Index to build or run a statement, and these 22 objects held 0.14 MiB
# (traced) in every process that imports the tables, the idle daemon included: they are
# made only when the schema itself is asked for (`metadata`, by Alembic's env.py and the
# tests that compare it with the migrations).
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
_indexed = threading.Lock()


def schema() -> MetaData:
    """The whole schema, the tables with their indexes (INDEXES, made at the first call):
    what the migrations build, for Alembic's autogenerate and the tests that compare."""
    with _indexed:
        for name, indexes in INDEXES.items():
            table = _tables.tables[name]
            if not table.indexes:
                for index, *columns in indexes:
                    Index(index, *(table.c[column] for column in columns))
    return _tables


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
    "schema",
]

"""The history schema: SQLAlchemy 2.0 declarative tables, owned by Alembic migrations.

Every row carries its `host`, so a fleet can share one database. Times are stored as
UTC and always come back timezone-aware, whatever the backend.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements an INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator):
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


class Base(DeclarativeBase):
    pass


class Sample(Base):
    """A memory reading; `resolution` is 0 for a raw sample, else the seconds it averages."""

    __tablename__ = "samples"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    resolution: Mapped[int] = mapped_column(Integer, default=0)
    mem_total_kb: Mapped[int] = mapped_column(BigInteger)
    mem_available_kb: Mapped[int | None] = mapped_column(BigInteger)
    swap_total_kb: Mapped[int] = mapped_column(BigInteger)
    swap_free_kb: Mapped[int] = mapped_column(BigInteger)
    committed_as_kb: Mapped[int] = mapped_column(BigInteger)
    commit_limit_kb: Mapped[int] = mapped_column(BigInteger)
    commit_percent: Mapped[float] = mapped_column(Float)
    commit_limit_percent: Mapped[float | None] = mapped_column(Float)
    mem_available_percent: Mapped[float | None] = mapped_column(Float)
    psi_some_avg10: Mapped[float | None] = mapped_column(Float)
    psi_full_avg10: Mapped[float | None] = mapped_column(Float)
    overcommit_memory: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_samples_host_time", "host", "time"),  # a host's chart, retention's chunks
        Index("ix_samples_time", "time"),  # history samples of every host, newest first
    )


class CgroupSampleRow(Base):
    """A memory cgroup's reading, kept for those above the warning level and the `top` with
    the least headroom; `resolution` is 0 for a raw reading, else the seconds it averages."""

    __tablename__ = "cgroup_samples"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    resolution: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(32))
    limit_bytes: Mapped[int | None] = mapped_column(BigInteger)
    high_bytes: Mapped[int | None] = mapped_column(BigInteger)
    usage_bytes: Mapped[int] = mapped_column(BigInteger)
    working_set_bytes: Mapped[int] = mapped_column(BigInteger)
    working_set_percent: Mapped[float | None] = mapped_column(Float)
    oom_kill: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_cgroup_samples_host_time", "host", "time"),)


class Kill(Base):
    """One process killed by an OOM killer: the kill record of INTERFACE.md."""

    __tablename__ = "kills"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    boot_id: Mapped[str | None] = mapped_column(String(64))
    time: Mapped[datetime | None] = mapped_column(UtcDateTime())
    mono_usec: Mapped[int | None] = mapped_column(BigInteger)
    pid: Mapped[int | None] = mapped_column(Integer)  # None: a cgroup was killed (systemd-oomd)
    process: Mapped[str] = mapped_column(String(255))
    uid: Mapped[int | None] = mapped_column(BigInteger)
    total_vm_kb: Mapped[int | None] = mapped_column(BigInteger)
    anon_rss_kb: Mapped[int | None] = mapped_column(BigInteger)
    file_rss_kb: Mapped[int | None] = mapped_column(BigInteger)
    shmem_rss_kb: Mapped[int | None] = mapped_column(BigInteger)
    pgtables_kb: Mapped[int | None] = mapped_column(BigInteger)
    oom_score_adj: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[int | None] = mapped_column(Integer)
    constraint: Mapped[str | None] = mapped_column(String(64))
    memcg: Mapped[str | None] = mapped_column(Text)
    task_memcg: Mapped[str | None] = mapped_column(Text)
    cgroup_oom: Mapped[bool] = mapped_column(Boolean, default=False)
    invoker: Mapped[str | None] = mapped_column(String(255))
    invoker_pid: Mapped[int | None] = mapped_column(Integer)
    gfp_mask: Mapped[str | None] = mapped_column(String(255))
    alloc_order: Mapped[int | None] = mapped_column(Integer)
    killer: Mapped[str] = mapped_column(String(32), default="kernel")
    source: Mapped[str | None] = mapped_column(Text)
    cmdline: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    # task_table, memory_info, extra, commit state at the time of the kill
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_kills_host_time", "host", "time"),  # --host, a report, deduplication
        Index("ix_kills_host_pid", "host", "pid"),
        Index("ix_kills_time", "time"),  # history kills of the fleet, newest first
        Index("ix_kills_process_time", "process", "time"),  # --process NAME or 'prefix*', summary
        Index("ix_kills_host_recorded", "host", "recorded_at"),  # metrics' counts, retention
    )


class AlertRow(Base):
    """One episode of a condition, from when it fired to when it resolved."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved
    summary: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_alerts_host_key_status", "host", "key", "status"),
        Index("ix_alerts_host_started", "host", "started_at"),
        Index("ix_alerts_started", "started_at"),
    )


class NotificationRow(Base):
    """The outbox: one message for one channel, written in the transaction that caused it."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    uuid: Mapped[str] = mapped_column(String(64), unique=True)  # webhook-id, same on every retry
    channel: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(16))  # first | new | repeat | resolved | test
    summary: Mapped[str] = mapped_column(Text)
    # pending | sending | sent | failed | given_up | muted
    status: Mapped[str] = mapped_column(String(16))
    group_key: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    mute_id: Mapped[int | None] = mapped_column(ForeignKey("mutes.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # the endpoint's answer when sent
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ix_notifications_status_due", "status", "due_at"),
        Index("ix_notifications_host_created", "host", "created_at"),
        Index("ix_notifications_created", "created_at"),
        # Foreign keys: "was this alert announced on that channel", and ON DELETE SET NULL
        # when retention deletes alerts or mutes, would otherwise scan the whole outbox.
        Index("ix_notifications_alert", "alert_id", "channel"),
        Index("ix_notifications_mute", "mute_id"),
    )


class Cursor(Base):
    """Where a source (or a counter such as vmstat oom_kill) was last read, per host."""

    __tablename__ = "cursors"
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    cursor: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Protection(Base):
    """A change the daemon made to a process's oom_score_adj (processes.protect)."""

    __tablename__ = "protections"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    pid: Mapped[int] = mapped_column(Integer)
    process: Mapped[str] = mapped_column(String(255))
    cmdline: Mapped[str | None] = mapped_column(Text)
    from_adj: Mapped[int | None] = mapped_column(Integer)
    to_adj: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_protections_host_time", "host", "time"), Index("ix_protections_time", "time"))


class Adjustment(Base):
    """A write to a process's oom_score_adj, seen by the oom_score_adj_update tracepoint:
    the process, the old and new value, and who wrote it (``history adjustments``)."""

    __tablename__ = "adjustments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    boot_id: Mapped[str | None] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UtcDateTime())
    pid: Mapped[int] = mapped_column(Integer)
    process: Mapped[str] = mapped_column(String(255))
    cmdline: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    old_adj: Mapped[int | None] = mapped_column(Integer)
    new_adj: Mapped[int] = mapped_column(Integer)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    by_watchdog: Mapped[bool] = mapped_column(Boolean, default=False)
    severity: Mapped[str | None] = mapped_column(String(16))  # the alert it raised, if any
    writer_pid: Mapped[int | None] = mapped_column(Integer)
    writer_tid: Mapped[int] = mapped_column(Integer)
    writer_process: Mapped[str] = mapped_column(String(255))
    writer_cmdline: Mapped[str | None] = mapped_column(Text)
    writer_unit: Mapped[str | None] = mapped_column(Text)
    writer_uid: Mapped[int | None] = mapped_column(BigInteger)
    writer_exited: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_adjustments_host_time", "host", "time"),
        Index("ix_adjustments_process", "process"),
    )


class Mute(Base):
    """Silences matching notifications until `until`; what is muted is still recorded."""

    __tablename__ = "mutes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    host: Mapped[str | None] = mapped_column(String(255))  # None: every host of the fleet
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    until: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str | None] = mapped_column(String(64))
    process: Mapped[str | None] = mapped_column(String(255))
    cgroup: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class QuarantinedKill(Base):
    """A kill the database would not store (a value it cannot take): kept with the text
    it was read from and the error, so it is neither lost nor able to block the others."""

    __tablename__ = "quarantined_kills"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255))
    time: Mapped[datetime | None] = mapped_column(UtcDateTime())  # when the kill was logged, if known
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())
    source: Mapped[str | None] = mapped_column(Text)
    process: Mapped[str | None] = mapped_column(String(255))
    raw: Mapped[str] = mapped_column(Text)  # the kill as read: its raw line, else its fields as JSON
    error: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_quarantined_kills_host_time", "host", "recorded_at"),)


__all__ = [
    "Adjustment",
    "AlertRow",
    "Base",
    "Cursor",
    "Kill",
    "Mute",
    "NotificationRow",
    "Protection",
    "QuarantinedKill",
    "Sample",
]

# The tables as Core sees them: what the store's statements name.
metadata = Base.metadata
samples = Sample.__table__
cgroup_samples = CgroupSampleRow.__table__
kills = Kill.__table__
alerts = AlertRow.__table__
notifications = NotificationRow.__table__
cursors = Cursor.__table__
protections = Protection.__table__
adjustments = Adjustment.__table__
mutes = Mute.__table__
quarantined_kills = QuarantinedKill.__table__

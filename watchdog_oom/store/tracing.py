"""The writes only the tracepoint follower (daemon/tracer.py) and its oom_score_adj audit
(daemon/adjwatch.py) make, each in a transaction (`Tx`) of theirs: find the log's record of a
kill the tracepoints saw and join them (a second witness), note findings on a stored kill,
record the writes to oom_score_adj and read back the protections this daemon set.

Split from kills.py and writes.py: only the tracer uses these, and the tracer, with this
module, is loaded at start only where the configuration and the kernel allow tracing
(daemon/daemon.py `_open_tracer`); a daemon reading the kernel log alone never loads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from watchdog_oom.model import OomKill
from watchdog_oom.store.records import UNKNOWN_NAME
from watchdog_oom.store.tables import adjustments, kills, protections
from watchdog_oom.store.writes import Tx
from watchdog_oom.stored import StoredKill, from_row

k = kills.c


def find_kernel_kill(tx: Tx, pid: int | None, boot_id: str | None, around: datetime,
                     window: timedelta) -> StoredKill | None:
    """This host's kernel kill of `pid` recorded within `window` of `around` (and of this boot when known)."""
    query = select(kills).where(k.host == tx.host, k.pid == pid, k.killer == "kernel",
                                k.time.between(around - window, around + window))
    for row in tx.conn.execute(query.order_by(k.id)):
        if not (row.boot_id and boot_id and row.boot_id != boot_id):
            return from_row(StoredKill, row._mapping)
    return None


def add_witness(tx: Tx, row: StoredKill, kill: OomKill, fields: Sequence[str], witness: str,
                evidence: dict[str, Any]) -> StoredKill | None:
    """Another witness of a stored kill: its values of `fields` (those it has) replace the
    record's, and it joins the record's witnesses with its evidence under details.extra[witness].
    Returns the record as it is now."""
    def witnessed(stored: Any) -> None:
        for name in fields:
            value = getattr(kill, name)
            if value is not None and not (name == "process" and value == UNKNOWN_NAME):
                setattr(stored, name, value)
        details = dict(stored.details or {})
        extra = dict(details.get("extra") or {})
        known = extra.get("witnesses") or ([stored.source] if stored.source else [])
        extra["witnesses"] = list(dict.fromkeys([*known, witness]))
        extra[witness] = evidence
        details["extra"] = extra
        stored.details = details
    return tx.edit_kill(row.id, witnessed)


def recent_kernel_kills(tx: Tx, boot_id: str | None, since: datetime) -> list[StoredKill]:
    """This host's kernel kills of this boot dated from `since` on, oldest first."""
    query = select(kills).where(k.host == tx.host, k.killer == "kernel", k.time >= since)
    if boot_id is not None:
        query = query.where(k.boot_id == boot_id)
    return [from_row(StoredKill, row._mapping) for row in tx.conn.execute(query.order_by(k.time, k.id))]


def note_on_kill(tx: Tx, row: StoredKill, key: str, value: Any) -> None:
    """Set details[key] of a stored kill (a finding about it, such as `suspect`)."""
    def noted(stored: Any) -> None:
        stored.details = {**(stored.details or {}), key: value}
    tx.edit_kill(row.id, noted)


def add_adjustment(tx: Tx, *, time: datetime, boot_id: str | None, pid: int, process: str, cmdline: str | None,
                   unit: str | None, old_adj: int | None, new_adj: int, critical: bool, by_watchdog: bool,
                   severity: str | None, writer: dict[str, Any], found_by: str = "tracepoint") -> None:
    """Record one write to a process's oom_score_adj and who made it (`writer`: pid, tid,
    process, cmdline, unit, uid, exited, unknown), and how it was found (`found_by`:
    "tracepoint", its event; "resync", a re-read after events were lost)."""
    tx.conn.execute(insert(adjustments).values(
        host=tx.host, boot_id=boot_id, time=time, pid=pid, process=process, cmdline=cmdline, unit=unit,
        old_adj=old_adj, new_adj=new_adj, critical=critical, by_watchdog=by_watchdog, severity=severity,
        writer_pid=writer.get("pid"), writer_tid=writer["tid"], writer_process=writer["process"],
        writer_cmdline=writer.get("cmdline"), writer_unit=writer.get("unit"), writer_uid=writer.get("uid"),
        writer_exited=bool(writer.get("exited")), writer_unknown=writer.get("unknown"), found_by=found_by,
    ))


def last_protection(tx: Tx, pid: int, since: datetime) -> int | None:
    """The oom_score_adj this daemon last set on `pid` since `since`, None if it set none."""
    p = protections.c
    return tx.conn.scalar(
        select(p.to_adj).where(p.host == tx.host, p.pid == pid, p.error.is_(None), p.time >= since)
        .order_by(p.time.desc(), p.id.desc()).limit(1))

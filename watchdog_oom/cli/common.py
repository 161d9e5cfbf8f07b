"""What the commands share beyond what `run` needs: times and numbers on the command line,
the store opened for a command. Exit codes, usage errors and `Command` are cli/__init__.py's
(the daemon's `run` needs them, and none of this module)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from watchdog_oom import config as config_mod
from watchdog_oom import store as store_mod
from watchdog_oom.cli import UsageError
from watchdog_oom.clock import utcnow as utcnow  # the one clock, for the command modules

MAX_DURATION = timedelta(days=36525)  # 100 years: longer is a typing error, and overflows datetime
MAX_ID = 2**63 - 1
_BARE_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?")  # the largest integer SQLite and PostgreSQL's bigint hold


def parse_when(text: str, now: datetime) -> datetime:
    """A WHEN: a duration back from now (30m, 24h, 7d) or an ISO 8601 time; in UTC."""
    if _BARE_NUMBER.fullmatch(text.strip()):
        # 30 could mean seconds, minutes or days: ask rather than guess.
        raise UsageError(f"{text!r} has no unit: write {text.strip()}m, {text.strip()}h or {text.strip()}d "
                         "(or s), or an ISO 8601 time")
    try:
        seconds = config_mod.parse_duration(text)
    except ValueError:
        return parse_time(text)
    return now - bounded_duration(seconds, text)


def bounded_duration(seconds: float, text: str) -> timedelta:
    """`seconds` as a timedelta, refused beyond 100 years (`text` is what the user typed)."""
    if seconds > MAX_DURATION.total_seconds():
        raise UsageError(f"{text!r} is longer than 100 years")
    return timedelta(seconds=seconds)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time in UTC (local time when it names no zone), from 1970 to 9999."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is neither a duration like 30m, 24h, 7d nor an ISO 8601 time") from None
    try:
        utc = (value if value.tzinfo else value.astimezone()).astimezone(timezone.utc)
    except (OverflowError, ValueError):  # past year 9999 or before year 1 in UTC
        utc = None
    if utc is None or utc.year < 1970:
        raise UsageError(f"{text!r} is out of range: give a time from 1970 to 9999 (in UTC)")
    return utc


def positive_int(text: str) -> int:
    """argparse type: a whole number from 1 to the largest database id."""
    import argparse  # loaded by then: only a parser calls this

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 < value <= MAX_ID:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to {MAX_ID}, got {text}")
    return value


def open_store(cfg: config_mod.Config) -> store_mod.Store:
    """The store, migrated first if it is behind: a database at the newest schema can be read-only."""
    store = store_mod.Store(cfg.database, cfg.host)
    if not store.at_head():
        store.upgrade()
    return store

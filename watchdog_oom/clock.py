"""The one clock: every part that needs the time takes a `Clock` and calls it.

A clock is any callable returning an aware UTC datetime. The daemon and the commands
pass `utcnow`; tests pass a `FakeClock` they move by hand instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The time now, in UTC."""
    return datetime.now(timezone.utc)


def local_naive(now: datetime) -> datetime:
    """`now` as naive local time, the way syslog dates are written."""
    return now.astimezone().replace(tzinfo=None)


class FakeClock:
    """A clock that stands still until told to move: `clock.t = …` or `clock.advance(seconds)`."""

    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward and return the new time."""
        self.t += timedelta(seconds=seconds)
        return self.t

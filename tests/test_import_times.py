"""`import` dates a syslog line, which carries no offset, in this host's local time: with the
offset astimezone() gives it, asked of the C library once per hour of the log."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from watchdog_oom.cli.import_logs import _Zones


# tz database zones, and a POSIX rule whose changes fall within an hour (01:15, 02:45).
@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC",
                                  "XST-1XDT,M3.5.0/1:15,M10.5.0/2:45"])
def test_import_gives_syslog_times_the_offsets_astimezone_gives(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The reading child asks the C library for an offset once per hour of the log: around
    # each change of offset (an hour skipped, an hour repeated, Lord Howe's half hour) every
    # time, the hour before and after, gets what astimezone() gives it.
    if "," not in zone and not Path("/usr/share/zoneinfo", zone).exists():
        pytest.skip(f"no tz database entry for {zone}")
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        zones = _Zones()
        for day in (datetime(2024, 3, 9), datetime(2024, 3, 30), datetime(2024, 4, 6), datetime(2024, 10, 5),
                    datetime(2024, 10, 26), datetime(2024, 11, 2)):
            for step in range(0, 3 * 24 * 60, 7):
                when = day + timedelta(minutes=step, seconds=step % 60)
                got, expected = zones.local(when), when.astimezone()
                assert (got, got.isoformat(), got.tzname()) == (expected, expected.isoformat(), expected.tzname())
    finally:
        monkeypatch.undo()
        time.tzset()

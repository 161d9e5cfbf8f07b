"""The store's values built from rows: a column order worked out once, extra columns ignored."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from watchdog_oom.stored import StoredKill, row_maker
from watchdog_oom.stored_history import SeriesPoint

WHEN = datetime(2026, 1, 2, tzinfo=timezone.utc)


def test_row_maker_takes_fields_by_name_whatever_the_column_order():
    make = row_maker(SeriesPoint, ["resolution", "extra", "mem_available_percent", "time", "commit_limit_percent",
                                   "commit_percent"])
    assert make((10, "ignored", 40.0, WHEN, 90.0, 50.0)) == SeriesPoint(WHEN, 50.0, 90.0, 40.0, 10)


def test_row_maker_leaves_fields_without_a_column_to_their_defaults():
    make = row_maker(StoredKill, ["process", "id", "recorded_at", "host", "not_a_field"])
    assert make(("java", 3, WHEN, "h0", 1)) == StoredKill(id=3, host="h0", process="java", recorded_at=WHEN)


def test_the_history_only_values_are_still_named_by_stored():
    """They live in stored_history (the daemon does not load them); stored names them too."""
    import watchdog_oom.stored as stored
    import watchdog_oom.stored_history as stored_history

    for name in ("StoredSample", "ProtectionRecord", "AdjustmentRecord", "SeriesPoint", "SeriesSlice", "KillMark"):
        assert getattr(stored, name) is getattr(stored_history, name)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        stored.Nope  # noqa: B018

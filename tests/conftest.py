"""Shared fixtures: a real SQLite history migrated by Alembic, fake /proc trees, clocks."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from watchdog_oom.store import Store  # noqa: E402

T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'history.db'}"


@pytest.fixture
def store(db_url: str) -> Store:
    s = Store(db_url, "web-01")
    s.upgrade()
    yield s
    s.close()


@pytest.fixture
def t0() -> datetime:
    return T0

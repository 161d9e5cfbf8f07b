"""Shared fixtures: a real history migrated by Alembic, on SQLite and on a throwaway
PostgreSQL (`store` runs each test on both engines), fake /proc trees, clocks."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

import pgserver  # noqa: E402

from watchdog_oom.store import Store  # noqa: E402

T0 = datetime(2026, 11, 20, 12, 0, 0, tzinfo=timezone.utc)

# The suite's verdict is a function of the code: property tests draw the same examples on
# every run, so CI cannot fail on a draw it never made before, nor on wall time: an example
# over Hypothesis's 200 ms deadline, or drawing judged too slow, because the machine was busy.
# HYPOTHESIS_PROFILE=explore draws new ones to hunt for more; commit what it finds as an @example.
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'history.db'}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL server for the whole session (skipped, with the reason, where none can run)."""
    yield from pgserver.pg_server()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped afterwards."""
    yield from pgserver.fresh_database(pg_server)


@pytest.fixture(scope="session")
def pg_migrated(pg_server: str) -> Iterator[str]:
    """The name of a database migrated to head once, copied by every PostgreSQL `store`."""
    for url in pgserver.fresh_database(pg_server):
        store = Store(url, "template")
        store.upgrade()
        store.close()
        yield url.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def _own_pg_server() -> Iterator[pgserver.PgServer]:
    server = pgserver.PgServer()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def own_pg(_own_pg_server: pgserver.PgServer) -> Iterator[pgserver.OwnDatabase]:
    """A fresh database on a PostgreSQL server the test may stop and start (the session's
    is shared by all): one server per module, running again after each test."""
    server = _own_pg_server
    for url in pgserver.fresh_database(server.url):
        yield pgserver.OwnDatabase(url, server)
        if not server.running():
            server.start()


@pytest.fixture(scope="session")
def sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A SQLite history migrated to head by Alembic once, as bytes: each SQLite `store` and
    `sqlite_store` starts from a copy (as each PostgreSQL one from `pg_migrated`), not from
    its own run of every migration (a fifth of a second each, hundreds of times)."""
    path = tmp_path_factory.mktemp("template") / "history.db"
    store = Store(f"sqlite:///{path}", "template")
    store.upgrade()
    store.close()  # the last connection closed: SQLite checkpoints the WAL into the file and removes it
    assert not path.with_name("history.db-wal").exists()
    return path.read_bytes()


def _migrated_sqlite(db_url: str, template: bytes) -> None:
    """The history at `db_url` as the template, in a directory and file only their owner
    reads, as the store makes them (engine._prepare_sqlite_file)."""
    path = Path(db_url.removeprefix("sqlite:///"))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(template)


ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def store_url(request: pytest.FixtureRequest, db_url: str) -> Iterator[str]:
    """A migrated history on each engine in turn: SQLite in a temporary file, then a
    fresh PostgreSQL database copied from the migrated template."""
    if request.param == "sqlite":
        _migrated_sqlite(db_url, request.getfixturevalue("sqlite_migrated"))
        yield db_url
        return
    server = request.getfixturevalue("pg_server")
    yield from pgserver.fresh_database(server, template=request.getfixturevalue("pg_migrated"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store(store_url, "web-01")
    if not s.at_head():
        s.upgrade()
    yield s
    s.close()


@pytest.fixture
def sqlite_store(db_url: str, sqlite_migrated: bytes) -> Iterator[Store]:
    """A migrated SQLite history only: for what is SQLite's own (its planner, pragmas, files)."""
    _migrated_sqlite(db_url, sqlite_migrated)
    s = Store(db_url, "web-01")
    assert s.at_head()
    yield s
    s.close()


@pytest.fixture
def t0() -> datetime:
    return T0


class _Install:
    """./install.sh run as a user would on a fresh clone of this checkout, under a temporary
    directory, with an environment that names none of this machine's places. (Not started in
    the background: tests assert that the command they ran left no child of the test process
    behind, with os.waitpid(-1), which a running install would fail.)"""

    def __init__(self) -> None:
        import subprocess
        import tempfile

        self.tmp = Path(tempfile.mkdtemp(prefix="watchdog-oom-installed-"))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WATCHDOG_OOM_CONFIG", "VIRTUAL_ENV")}
        env.update(WATCHDOG_OOM_PREFIX=str(self.tmp / "prefix"), WATCHDOG_OOM_BINDIR=str(self.tmp / "bin"),
                   WATCHDOG_OOM_SHAREDIR=str(self.tmp / "share"), HOME=str(self.tmp / "home"),
                   STATE_DIRECTORY=str(self.tmp / "state"))
        self.env = env
        self.out, self.err = open(self.tmp / "out", "w+"), open(self.tmp / "err", "w+")  # noqa: SIM115 (close())
        self.proc = subprocess.Popen(["sh", "-c", 'git clone --quiet "$1" clone && cd clone && exec ./install.sh', "sh",
                                      str(ROOT)], cwd=self.tmp, env=env, stdout=self.out, stderr=self.err,
                                     start_new_session=True)

    def result(self) -> dict:
        """What it installed, once it has ended: its CompletedProcess (`proc`), `env`, the
        `command`, and the `share` and `state` directories."""
        import subprocess

        self.proc.wait(timeout=600)
        said = []
        for stream in (self.out, self.err):
            stream.seek(0)
            said.append(stream.read())
        proc = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, *said)
        return {"proc": proc, "env": self.env, "command": self.tmp / "bin" / "watchdog-oom",
                "share": self.tmp / "share", "state": self.tmp / "state"}

    def close(self) -> None:
        """End it if it still runs (a session stopped early), and remove what it installed."""
        import shutil
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.out.close()
        self.err.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


ROOT = Path(__file__).resolve().parent.parent
_INSTALLS: list[_Install] = []


def _can_clone() -> bool:
    import shutil

    return shutil.which("git") is not None and (ROOT / ".git").exists()


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _INSTALLS:
        _INSTALLS.pop().close()


@pytest.fixture(scope="session")
def installed() -> dict:
    """This checkout cloned afresh and installed by ./install.sh, once for the session
    (tests/test_install.py checks the install, starts the service and runs the installed
    console script): see _Install."""
    if not _can_clone():
        pytest.skip("not a git checkout (or no git): there is nothing to clone")
    if not _INSTALLS:
        _INSTALLS.append(_Install())
    return _INSTALLS[0].result()

"""A throwaway PostgreSQL server for the tests, and fresh databases on it.

The session starts its own PostgreSQL (Debian's /usr/lib/postgresql/*/bin, or initdb on
PATH) on 127.0.0.1 with trust authentication, as the `postgres` user when run as root
since the server refuses to run as root. Set WATCHDOG_OOM_TEST_PG_URL (a user allowed to
CREATE DATABASE) to use a server of your own. Where there is neither, the PostgreSQL
tests are skipped and say why.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url


def _psycopg():
    return pytest.importorskip("psycopg", reason="the PostgreSQL driver is the postgres extra: "
                                                 "pip install 'psycopg[binary]'")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_binaries() -> Path | None:
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        return Path(max(found, key=lambda p: int(Path(p).parts[-3]))).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _unprivileged_user() -> str | None:
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


class PgServer:
    """A throwaway PostgreSQL server in a directory of its own, which a test may stop and
    start again (same data, same port) to take the database away from a running daemon."""

    def __init__(self) -> None:
        _psycopg()
        bindir = _server_binaries()
        if bindir is None:
            pytest.skip("no PostgreSQL server here (apt-get install postgresql, see .ci/postgres.sh), "
                        "and WATCHDOG_OOM_TEST_PG_URL is not set")
        self.bindir = bindir
        self.as_user: list[str] = []
        self.base = Path(tempfile.mkdtemp(prefix="watchdog-oom-pg-"))
        if os.geteuid() == 0:
            user = _unprivileged_user()
            if user is None or not shutil.which("runuser"):
                shutil.rmtree(self.base)
                pytest.skip("running as root, and there is no postgres or nobody user (or no runuser) "
                            "to run PostgreSQL as: it refuses to run as root")
            account = pwd.getpwnam(user)
            os.chown(self.base, account.pw_uid, account.pw_gid)
            self.as_user = ["runuser", "-u", user, "--"]
        self.data, self.port = self.base / "data", free_port()
        self.url = f"postgresql+psycopg://watchdog@127.0.0.1:{self.port}/postgres"
        try:
            subprocess.run([*self.as_user, str(bindir / "initdb"), "-D", str(self.data), "-U", "watchdog",
                            "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                           check=True, capture_output=True, timeout=60)
            self.start()
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            self._fail(exc)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        # fsync off and friends: a throwaway server need not survive a power cut.
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        try:
            subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                            "-l", str(self.base / "server.log"), "-w", "-t", "30", "start"],
                           check=True, capture_output=True, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            self._fail(exc)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: clients are disconnected, as in an outage); waits until it is down."""
        subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                        "stop"], capture_output=True, timeout=60, check=False)

    def running(self) -> bool:
        """Whether the server is up (pg_ctl status)."""
        return subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
                              capture_output=True, timeout=60, check=False).returncode == 0

    def remove(self) -> None:
        """Stop the server at once and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)

    def _fail(self, exc: BaseException) -> None:
        log = self.base / "server.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        self.remove()
        pytest.fail(f"PostgreSQL did not start: {exc}\n{getattr(exc, 'stderr', b'')!r}\n{text}")


@dataclass(frozen=True)
class OwnDatabase:
    """A database (`url`) on a server of the test's own, which it may stop and start."""

    url: str
    server: PgServer

    def stop(self) -> None:
        """Stop the server: its clients are cut off, as in an outage."""
        self.server.stop()

    def start(self) -> None:
        """Start the server again, with the same data on the same port."""
        self.server.start()


def pg_server() -> Iterator[str]:
    """A SQLAlchemy URL of a PostgreSQL server (database `postgres`) that lives for the session."""
    _psycopg()
    given = os.environ.get("WATCHDOG_OOM_TEST_PG_URL")
    if given:
        yield given
        return
    server = PgServer()
    try:
        yield server.url
    finally:
        server.remove()


def fresh_database(pg_server: str, template: str | None = None) -> Iterator[str]:
    """A new database on the session's server (a copy of `template`, else empty), dropped afterwards."""
    psycopg = _psycopg()
    server = make_url(pg_server)
    name = f"wd_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')



"""`python -m watchdog_oom.store.migrate`: migrate the database whose URL arrives on stdin.

The daemon migrates in this short-lived child so that Alembic and its templates (about
12 MB) never stay resident in the long-running process, which must stay small. The URL
comes on stdin, not in argv, because it may hold a password and argv is world-readable.
"""

from __future__ import annotations

import re
import subprocess
import sys

from watchdog_oom.store import StoreError
from watchdog_oom.store.engine import Database

# SQLAlchemy's link to its generic page about an error class: noise in a one-line message.
_BACKGROUND = re.compile(r"\(Background on this error at: [^)]*\)")


def migrate_in_child(url: str, timeout: float = 300.0) -> str:
    """Run the migration in a child process; returns the revision reached."""
    try:
        proc = subprocess.run([sys.executable, "-m", "watchdog_oom.store.migrate"], input=url, text=True,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StoreError(f"database: migration did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise StoreError(_one_line(proc.stderr) or f"database: migration failed (exit {proc.returncode})")
    return proc.stdout.strip()


def main() -> int:
    url = sys.stdin.read().strip()
    try:
        database = Database(url, host="")
        print(database.upgrade())
        database.close()
    except StoreError as exc:
        print(_one_line(str(exc)), file=sys.stderr)
        return 1
    return 0


def _one_line(message: str) -> str:
    """An error message on one line, without SQLAlchemy's background link."""
    return " ".join(_BACKGROUND.sub("", message).split())


if __name__ == "__main__":
    sys.exit(main())

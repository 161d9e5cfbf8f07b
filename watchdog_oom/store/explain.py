"""What a database error means for the operator: the path, the cause and what to do.

SQLite's own words ("unable to open database file", "attempt to write a readonly
database") name neither the file nor the remedy; `explain` turns the common ones into a
sentence that does. Pure string work, so the command line can use it without SQLAlchemy.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit


def database_place(url: str) -> str:
    """The database as an operator knows it: SQLite's file path, else the server (no password)."""
    if url.startswith("sqlite:"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        return os.path.abspath(path.split("?", 1)[0]) if path and path != ":memory:" else "an in-memory database"
    parts = urlsplit(url)
    where = parts.hostname or "localhost"
    if parts.port:
        where += f":{parts.port}"
    return f"{parts.scheme.split('+')[0]} at {where}{parts.path}"


# (words in the driver's message, what it means, what to do); the first match wins.
_CAUSES = (
    ("readonly database", "is read-only (a read-only mount, or a file of another user)",
     "reading commands still work; to record, run as the file's owner or make it writable"),
    ("read-only file system", "is on a read-only file system",
     "remount it read-write, or point `database:` at a writable place"),
    ("unable to open database file", "cannot be opened: its directory is missing or not writable, "
     "or it is on a read-only mount", "check the path and its permissions, or set `database:` in the config"),
    ("database or disk is full", "cannot grow: the disk holding it is full",
     "free space on that file system (df -h), or shorten `retention:`"),
    ("no space left on device", "cannot grow: the disk holding it is full",
     "free space on that file system (df -h), or shorten `retention:`"),
    ("database is locked", "is locked by another process, which held it longer than the wait allows",
     "try again; `fuser -v` on the file shows who holds it"),
    ("disk i/o error", "could not be read or written (an I/O error)",
     "check the disk (dmesg) and the file; a copy from a backup may be needed"),
    ("file is not a database", "is not an SQLite database (or is encrypted or damaged)",
     "check `database:`; move the file aside to start a new history"),
    ("database disk image is malformed", "is damaged",
     "move the file aside (it is kept for recovery) and a new history starts; `sqlite3 FILE .recover` may save rows"),
    ("connection refused", "refused the connection", "check that the server runs and the URL's host and port"),
    ("password authentication failed", "refused the user's password", "check the URL's user and password"),
)


def explain(message: str, url: str) -> str:
    """One line for the operator: which database, what is wrong with it, and what to do.

    An error this module does not know is passed on as it is, prefixed with the place.
    """
    place = database_place(url)
    said = " ".join(message.split())
    lowered = said.lower()
    for words, meaning, remedy in _CAUSES:
        if words in lowered:
            return f"the history database {place} {meaning}: {remedy} ({said})"
    return f"the history database {place}: {said}"

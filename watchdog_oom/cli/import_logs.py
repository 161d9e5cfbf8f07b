"""`import`: record the kills found in old kernel logs; the logs are read in a forked child
while this process opens the database."""

from __future__ import annotations

import argparse
import contextlib
import lzma
import os
import signal
import traceback
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, BinaryIO, TextIO, cast

from watchdog_oom import config as config_mod
from watchdog_oom import store as store_mod
from watchdog_oom.cli.common import EXIT_OK, Command, UsageError, open_store, utcnow
from watchdog_oom.cli.history import KILL_COLUMNS
from watchdog_oom.cli.options import add_format
from watchdog_oom.model import OomKill, kill_record_from_value, with_local_time
from watchdog_oom.textout import table, to_json


class _Progress:
    """Counts bytes read from a binary stream and shows progress on a terminal."""

    def __init__(self, raw: Any, total: int | None, label: str, err: TextIO) -> None:
        self.raw, self.total, self.label, self.err = raw, total, label, err
        self.done = 0
        self.shown = -1
        self.live = err.isatty()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self._advance(len(data))
        return data

    def readinto(self, b: Any) -> int:
        # Straight into the caller's buffer: a copy of every chunk would cost more than
        # the whole scan of a big log.
        count = self.raw.readinto(b) or 0
        self._advance(count)
        return count

    def _advance(self, count: int) -> None:
        self.done += count
        if self.live and self.total:
            percent = int(self.done * 100 / self.total)
            if percent != self.shown:
                self.shown = percent
                self.err.write(f"\r{self.label}: {percent}%")
                self.err.flush()

    def finish(self) -> None:
        if self.live and self.shown >= 0:
            self.err.write("\r" + " " * (len(self.label) + 8) + "\r")
            self.err.flush()


def cmd_import(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Record (or with --dry-run only print) the kills in the logs given."""
    if args.dry_run:
        store, read = None, _read_all(args.paths, cfg.host, err)
    elif hasattr(os, "fork") and _has_fd(err):
        read, store = _read_beside(args.paths, cfg.host, err, lambda: open_store(cfg))
    else:
        store, read = open_store(cfg), _read_all(args.paths, cfg.host, err)
    records: list[dict[str, Any]] = []
    failed = False
    for path, kills in read:
        if kills is None:
            failed = True
            continue
        found = len(kills)
        if store is None:
            records += [kill_record_from_value(k) for k in kills]
            note = ""
        else:
            recorded, new = _record(store, kills, utcnow())
            records += recorded
            note = f", {new} new, {found - new} already recorded"
        print(f"{path}: {found} kill{'s' if found != 1 else ''} found{note}", file=err)
    if args.format == "json":
        print(to_json(records), file=out)
    elif records:
        print(table(records, KILL_COLUMNS), file=out)
    return 1 if failed else EXIT_OK


ReadLogs = list[tuple[str, list[OomKill] | None]]  # per path, its kills or None when unreadable


def _read_all(paths: Sequence[str], host: str, err: TextIO) -> ReadLogs:
    read: ReadLogs = []
    for path in paths:
        try:
            read.append((path, _read_kills(path, host, err)))
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
            print(f"watchdog-oom import: {_read_error(path, exc)}", file=err)
            read.append((path, None))
    return read


def _has_fd(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _read_beside(paths: Sequence[str], host: str, err: TextIO, work: Callable[[], Any]) -> tuple[ReadLogs, Any]:
    """Read the logs in a forked child while `work()` (opening the database) runs here.

    Loading SQLAlchemy takes a fifth of a second, a big log's scan several tenths; a
    thread would not overlap them, as the two would fight for the GIL around every
    memmem call of the scan, but two processes on two cores do. The child sends the
    kills back pickled through a pipe. Forked before SQLAlchemy is loaded, and before
    this process has threads.
    """
    import pickle

    readable, writable = os.pipe()
    err.flush()
    parent = os.getpid()
    child = os.fork()
    if child == 0:  # the child: read, send, leave without running the parent's cleanup
        status = 1
        try:
            _die_with_parent(parent)
            os.close(readable)
            with os.fdopen(writable, "wb") as pipe:
                pipe.write(pickle.dumps(_read_all(paths, host, err)))
            status = 0
        except (KeyboardInterrupt, BrokenPipeError):
            pass  # the parent was interrupted too, and says so itself
        except BaseException:
            traceback.print_exc(file=err)
        finally:
            try:
                err.flush()
            finally:
                os._exit(status)
    os.close(writable)
    try:
        result = work()
    except BaseException:
        os.kill(child, signal.SIGKILL)  # no history to record into: stop reading at once
        os.close(readable)
        os.waitpid(child, 0)
        raise
    with os.fdopen(readable, "rb") as pipe:
        sent = pipe.read()
    _, status = os.waitpid(child, 0)
    if status != 0 or not sent:
        raise UsageError("reading the logs failed (the reading process ended abnormally)")
    return pickle.loads(sent), result


def _die_with_parent(parent: int) -> None:
    """Have the kernel end this child when its parent ends (Linux PR_SET_PDEATHSIG), so a
    killed `import` leaves no orphan reading on; without prctl, a check of the parent."""
    import ctypes

    with contextlib.suppress(AttributeError, OSError):  # no prctl: the check below stays
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before prctl took effect
        os._exit(1)


def _read_kills(path: str, host: str, err: TextIO) -> list[OomKill]:
    """The kills in one log (`-`: stdin), as imported from it; raises what opening or reading it raises."""
    from watchdog_oom.parse import iter_kills, undo_future_year
    from watchdog_oom.sources.logfile import open_log

    stream = open_log(path)
    size, reference = _size_and_mtime(path)
    progress = _Progress(stream, size, path, err)
    label = "stdin" if path == "-" else os.path.abspath(path)
    try:
        # Syslog dates carry no year: take the year the file was last written.
        return [with_local_time(undo_future_year(k, reference)).replace(host=host, source=f"import:{label}")
                for k in iter_kills(cast(BinaryIO, progress), f"import:{label}", year=reference.year)]
    finally:
        progress.finish()
        if path != "-":
            stream.close()


def _size_and_mtime(path: str) -> tuple[int | None, datetime]:
    """A log's size (None: unknown) and when it was last written (now for stdin), in local time."""
    if path != "-":
        try:
            st = os.stat(path)
            return st.st_size, datetime.fromtimestamp(st.st_mtime)
        except OSError:
            pass
    return None, datetime.now()


def _read_error(path: str, exc: Exception) -> str:
    from watchdog_oom.sources import SourceError

    if isinstance(exc, SourceError):
        return str(exc)  # it names the path
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{path}: {exc.strerror}"
    # zlib.error, lzma.LZMAError, EOFError (cut short), ValueError, bz2's and gzip's OSError without errno
    return f"{path}: corrupt or unreadable compressed data ({exc})"


def _record(store: store_mod.Store, kills: Sequence[OomKill], now: datetime) -> tuple[list[dict[str, Any]], int]:
    """Records the kills not recorded yet; returns every kill's record, with its id, and how many were new."""
    records = []
    new = 0
    with store.tx() as tx:
        for kill in kills:
            row = tx.add_kill(kill, now)
            if row is None:
                row = tx.find_same_kill(kill)  # recorded before; _read_kills gave `kill` the local time add_kill does
            else:
                new += 1
            records.append(store_mod.kill_record(row))
    return records, new



def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="a log file (plain or .gz), or - for stdin")
    p.add_argument("--dry-run", action="store_true", help="find and print the kills, record nothing")
    add_format(p, "table", "json")


COMMANDS = (Command("import", "record the kills found in old kernel logs", _arguments, cmd_import),)

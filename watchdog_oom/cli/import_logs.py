"""`import`: record the kills found in old kernel logs; the logs are read in a forked child
while this process opens the database."""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import lzma
import os
import re
import signal
import tempfile
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, cast

from watchdog_oom import config as config_mod
from watchdog_oom import store as store_mod
from watchdog_oom.cli import EXIT_OK, Command, UsageError
from watchdog_oom.cli.common import open_store, utcnow
from watchdog_oom.cli.import_parts import Forward, Parts, SecondStopped, TwoReaders, send_spooled
from watchdog_oom.cli.import_wire import RECORD_KEYS, Packed, Packer, Printer, _json_elements, _Zones
from watchdog_oom.cli.options import add_format
from watchdog_oom.model import OomKill
from watchdog_oom.store.rows import PROCESS, Row, kill_from_row
from watchdog_oom.store.rows_import import capped, record_columns, row_evidence
from watchdog_oom.textout import safe
from watchdog_oom.valueclass import valueclass

if TYPE_CHECKING:  # the scanner loads in the reading child
    from watchdog_oom.parse.scan import Reached

# Names of import_wire's that are imported from here too (tests).
__all__ = ["RECORD_KEYS", "_Zones", "_json_elements", "cmd_import"]


class _Progress:
    """Shows on a terminal how much of a log the scanner got through (advance(bytes))."""

    def __init__(self, total: int | None, label: str, err: TextIO) -> None:
        self.total, self.label, self.err = total, label, err
        self.done = 0
        self.shown = -1
        self.live = err.isatty()
        self.more: Callable[[], int] | None = None  # the bytes a second reader got through

    def advance(self, count: int) -> None:
        self.done += count
        if self.live and self.total:
            done = self.done + (self.more() if self.more is not None else 0)
            percent = int(done * 100 / self.total)
            if percent != self.shown:
                self.shown = percent
                self.err.write(f"\r{self.label}: {percent}%")
                self.err.flush()

    def finish(self) -> None:
        if self.live and self.shown >= 0:
            self.err.write("\r" + " " * (len(self.label) + 8) + "\r")
            self.err.flush()


def cmd_import(args: argparse.Namespace, cfg: config_mod.Config, out: TextIO, err: TextIO) -> int:
    """Record (or with --dry-run only print) the kills in the logs given.

    Streamed: the kills arrive in batches, each recorded in a transaction of its own and
    printed at once, so memory does not grow with the number of kills.
    """
    filing = Filing(forced=args.host, local=cfg.host, year=args.year)
    texts = args.format == "json" and not args.quiet  # the records' JSON texts, made by the readers
    if hasattr(os, "fork") and _has_fd(err):  # a log that shrinks can kill its reader (SIGBUS): a child
        work = (lambda: None) if args.dry_run else lambda: open_store(cfg)
        events, store = _read_beside(args.paths, filing, err, work, texts=texts)
    elif args.dry_run:
        store, events = None, _events(args.paths, filing, err, map_file=False, texts=texts)
    else:
        store, events = open_store(cfg), _events(args.paths, filing, err, map_file=False, texts=texts)
    if not args.quiet:
        _wider_pipe(out)
    printer = Printer(None if args.quiet else args.format, out)
    failed = False
    found = new = unstored = 0
    hosts: Counter[str] = Counter()
    now = utcnow()
    with _collected_rarely():  # after the store is open
        for kind, path, payload in events:
            if kind == "kills":  # a batch of kills: Packed (import_wire)
                fresh, quarantined = _record(store, payload, now, printer, err)
                found, new, unstored = found + len(payload), new + fresh, unstored + quarantined
                hosts.update(payload.hosts())
                continue
            if payload is not None:  # the path could not be read: says why
                print(f"watchdog-oom import: {safe(payload)}", file=err)  # it names the path
                failed = True
            else:
                note = "" if store is None else f", {new} new, {found - new - unstored} already recorded"
                if unstored:
                    note += (f", {unstored} could not be stored (quarantined with the raw text: "
                             "watchdog-oom history quarantined)")
                filed = ", ".join(f"{safe(h)} ({n})" for h, n in hosts.most_common())
                print(f"{safe(path)}: {found} kill{'s' if found != 1 else ''} found{note}"
                      + (f"; filed under {filed}" if filed else ""), file=err)
            found = new = unstored = 0
            hosts.clear()
    printer.finish()
    return 1 if failed else EXIT_OK


def _wider_pipe(out: TextIO) -> None:
    """Where the records go into a pipe (`| jq`, a program reading them), have it hold
    PIPE_SIZE bytes: a batch's JSON is some 2 MB, which through the default 64 KiB took
    thirty turns of this process and the reader a batch (100,000 kills as JSON into a
    Python reader's pipe, nice -20 at load 6-10: 4.11-4.48 s against 3.89-4.20, medians of
    4 and 5 runs, interleaved). A file or a terminal is left as it is; so is a pipe the
    system allows no more (fs.pipe-max-size, the user's pipe quota)."""
    import fcntl
    import stat

    with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        fd = out.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _record(store: store_mod.Store | None, payload: Packed, now: datetime, printer: Printer,
            err: TextIO) -> tuple[int, int]:
    """Record (unless `store` is None: a dry run) and print a batch: how many of its kills
    are new and how many could not be stored. A batch of new kills on SQLite as JSON goes
    in and out as its reader prepared it (import_wire); any other from its rows."""
    if printer.quiet and store is None:  # a quiet dry run: the kills counted, nothing else
        return 0, 0
    if payload.texts is not None and printer.json or printer.quiet:
        ids = [None] * len(payload) if store is None else _import_packed(store, payload, now)
        if ids is not None:
            if payload.texts is not None:
                printer.add_texts(ids, payload.texts)
            return (0 if store is None else len(ids)), 0
    records, fresh, quarantined = _batch_records(store, payload.rows(), now, err)
    printer.add(records)
    return fresh, quarantined


def _import_packed(store: store_mod.Store, packed: Packed, now: datetime) -> list[int] | None:
    """The ids of a Packed batch's kills, recorded as prepared (store.batch_import.import_columns),
    or None: the batch is to be recorded from its rows (not all new, another database, a
    value the database would not take: its rows are then stored one by one)."""
    from watchdog_oom.store.batch_import import import_columns
    from watchdog_oom.store.health import database_failure

    if packed.names is None or packed.columns is None:
        return None
    try:
        return import_columns(store, packed.names, packed.columns, len(packed), now)
    except Exception as exc:
        if database_failure(exc):
            raise
        return None


def _batch_records(store: store_mod.Store | None, rows: Sequence[Row], now: datetime,
                   err: TextIO) -> tuple[list[Sequence[Any]], int, int]:
    """A batch's records, column by column in RECORD_KEYS' order, its kills recorded unless
    `store` is None (a dry run); with how many of them are new and how many could not be
    stored."""
    if store is None:  # what would be recorded: the texts cut to the history's caps, as import_rows cuts them
        rows = capped(rows)
        return [*record_columns([None] * len(rows), rows), [row_evidence(row) for row in rows]], 0, 0
    recorded, quarantined = _import_batch(store, rows, now, err)
    stored = [row for _, _, row in recorded]
    columns = record_columns([kill_id for kill_id, _, _ in recorded], stored)
    # what this import read each kill from; the stored row's where some were quarantined
    columns.append([row_evidence(row) for row in (rows if not quarantined else stored)])
    return columns, sum(1 for _, is_new, _ in recorded if is_new), quarantined


@contextlib.contextmanager
def _collected_rarely() -> Iterator[None]:
    """Hold off the garbage collector's passes for a while: the objects there are already
    (this process's modules, SQLAlchemy's, the engine) are left out of them (gc.freeze),
    and the youngest generation is collected after 100,000 new objects instead of 700.

    A batch of rows unpickled is some 20,000 new objects, all freed by their reference
    counts once recorded; each pass of the collector walked them all again, and the
    oldest generation's walked everything SQLAlchemy had loaded: a seventh of the
    recording process's time (in the reading child, which holds a batch of rows while
    it parses on, two to three percent)."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _import_batch(store: store_mod.Store, rows: Sequence[Row], now: datetime,
                  err: TextIO | None = None) -> tuple[list[tuple[int, bool, Row]], int]:
    """Record one batch of rows: per stored kill its id, whether it is new and its row as
    stored, and how many the database would not take. Such a kill (a value out of the
    database's range) is quarantined with its text and the error, said on `err`, and the
    others are stored."""
    from watchdog_oom.store.batch_import import import_rows
    from watchdog_oom.store.health import database_failure
    try:
        return import_rows(store, rows, now), 0
    except Exception as exc:
        if database_failure(exc):
            raise
    recorded: list[tuple[int, bool, Row]] = []
    quarantined = 0
    for row in rows:  # one at a time, each its own transaction, to find the bad ones
        try:
            recorded += import_rows(store, [row], now)
        except Exception as exc:
            if database_failure(exc):
                raise
            quarantined += 1
            error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            with store.tx() as tx:
                tx.quarantine_kill(kill_from_row(row), error, now)
            if err is not None:
                print(f"  a kill of {safe(row[PROCESS][:60])} could not be stored ({safe(error)}); quarantined",
                      file=err)
    return recorded, quarantined


# What reading the logs yields: ("kills", path, Packed) batches (import_wire: the kills
# ready to be stored and printed, or made rows), then ("done", path, None) or, when the
# path could not be read, ("done", path, the reason).
Event = tuple[str, str, Any]
BATCH = 2000
# The most kills the reading parent holds back until the child marks them final.
HOLD = 2 * BATCH
PIPE_SIZE = 1 << 20  # the pipe's size asked for (F_SETPIPE_SZ) between the reading child and the parent


@valueclass(slots=False)
class Filing:
    """Which host an imported kill is filed under, and the year of dates that carry none.

    A kill goes under `forced` (--host) if given, else the host its log line names (syslog,
    journalctl, RFC 5424), else `local`, the config's host: logs collected from a fleet keep
    each machine's kills apart. `year` (--year) is the year of syslog dates, which have none;
    without it the year the file was last written is assumed (and said)."""

    forced: str | None
    local: str
    year: int | None = None


def _events(paths: Sequence[str], filing: Filing, err: TextIO, *, marks: bool = False,
            map_file: bool = True, parts: Parts | None = None, texts: bool = True) -> Iterator[Event]:
    """Per path, its kills in Packed batches (with their records' JSON texts where
    `texts`), then whether it could be read. With `marks` (to send to another process),
    also ("at", path, (offset, size)): every kill before offset was sent. With `parts`, a
    big mapped log is read by two processes (import_parts), and the second's events come
    as ("raw", path, Forward): bytes to send on as they are."""
    for path in paths:
        yield from _path_events(path, filing, err, marks=marks, map_file=map_file, parts=parts, texts=texts)


def _path_events(path: str, filing: Filing, err: TextIO, *, marks: bool, map_file: bool = True,
                 start: int = 0, size: int | None = None, parts: Parts | None = None,
                 texts: bool = True) -> Iterator[Event]:
    """One path's events (see _events), read from byte `start`; a mapped file found shorter
    than when it was mapped is read on with read() from the last point reached."""
    from watchdog_oom.parse.scan import LogShrank, Reached

    filed = _Filed(path, filing, texts)
    batch: list[OomKill] = []
    at, whole = start, size
    given = 0  # kills sent since the mark `at`
    try:
        for item in _iter_kills(path, filed, err, start=start, map_file=map_file, parts=parts):
            kind = type(item)
            if kind is OomKill:
                batch.append(item)  # type: ignore[arg-type]
                if len(batch) >= BATCH:
                    yield "kills", path, filed.pack(batch)
                    given += len(batch)
                    batch = []
                continue
            if batch:
                yield "kills", path, filed.pack(batch)
                given += len(batch)
                batch = []
            if kind is Forward:  # the second reader's events, spooled
                yield "raw", path, item
                mark = item.mark  # type: ignore[union-attr]
                at, whole, given = mark if mark is not None else (at, whole, given + item.kills)  # type: ignore[union-attr]
            elif isinstance(item, Reached):  # what came before it is final
                at, whole, given = int(item), whole if item.size is None else item.size, 0
                if marks:
                    yield "at", path, (at, whole)
    except LogShrank:
        # the kills since the last mark are read again, with the rest, from the mark;
        # those already sent are left out
        yield from shrank_events(path, at, whole, filing, err, marks=marks, given=given, texts=texts)
        return
    except SecondStopped:  # (before OSError, ValueError below) its spool full, or it failed: said
        yield from _read_on(path, at, whole, filing, err, marks=marks, given=given, map_file=map_file, texts=texts)
        return
    except MemoryError:
        raise
    except Exception as exc:  # the file's (OSError, EOFError, zlib.error, lzma.LZMAError) or ours: _read_error
        if batch:  # the kills read before it are kept, as said (review R31: they were dropped)
            yield "kills", path, filed.pack(batch)
        yield "done", path, _read_error(path, exc)
        return
    if batch:
        yield "kills", path, filed.pack(batch)
    yield "done", path, None


def shrank_events(path: str, at: int, size: int | None, filing: Filing, err: TextIO, *,
                  marks: bool = False, given: int = 0, texts: bool = True) -> Iterator[Event]:
    """Say that a log shrank while it was read and how many bytes were lost, then read
    the rest that is left from byte `at` with read() (a truncation cannot kill that),
    leaving out the first `given` kills read there: they were given already."""
    try:
        now = os.stat(path).st_size
    except OSError:
        now = 0
    lost = f"{size - max(now, at)} bytes" if size is not None and size > max(now, at) else \
        "no bytes" if size is not None else "what it held past that"  # (its size as read is unknown)
    print(f"{safe(path)}: the file shrank while it was read (to {now} bytes"
          f"{f' from {size}' if size is not None else ''}): {lost} could not be read; "
          f"read on from byte {at}", file=err)
    err.flush()
    yield from _read_on(path, at, size, filing, err, marks=marks, given=given, map_file=False, texts=texts)


def _read_on(path: str, at: int, size: int | None, filing: Filing, err: TextIO, *, marks: bool, given: int,
             map_file: bool, texts: bool) -> Iterator[Event]:
    """A path's events read by this one process from byte `at` (a final point), leaving
    out the first `given` kills read there: they were given already."""
    events = _path_events(path, filing, err, marks=marks, map_file=map_file, start=at, size=size, texts=texts)
    yield from _skip_kills(events, given)


def _skip_kills(events: Iterator[Event], given: int) -> Iterator[Event]:
    """The events, without their first `given` kills."""
    for kind, path, payload in events:
        if given and kind == "kills":
            dropped = min(given, len(payload))
            payload, given = payload.after(dropped), given - dropped
            if not payload:
                continue
        yield kind, path, payload


def _has_fd(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _read_beside(paths: Sequence[str], filing: Filing, err: TextIO, work: Callable[[], Any], *,
                 texts: bool = False) -> tuple[Iterator[Event], Any]:
    """Read the logs in a forked child while `work()` (opening the database) runs here.

    Loading SQLAlchemy takes a fifth of a second, a big log's scan several tenths; a
    thread would not overlap them, as the two would fight for the GIL around every
    memmem call of the scan, but two processes on two cores do. The child sends the
    kills back through a pipe, pickled a batch at a time, and goes on reading while this
    process records them, each batch Packed (import_wire: with its records' JSON texts
    where `texts`). Forked before SQLAlchemy is loaded, and before this process has
    threads.
    """
    import pickle

    readable, writable = os.pipe()
    with contextlib.suppress(AttributeError, OSError):  # Linux 2.6.35+; up to fs.pipe-max-size (1 MiB)
        import fcntl

        # A batch is some 3 MB pickled: through the default 64 KiB the two processes took
        # turns some fifty times a batch, each turn a wake-up (and on a busy machine a wait
        # for a core); 1 MiB lets the child write on while the parent records.
        fcntl.fcntl(writable, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    err.flush()
    parent = os.getpid()
    child = os.fork()
    if child == 0:  # the child: read, send, leave without running the parent's cleanup
        status = 1
        try:
            _die_with_parent(parent)
            _sigbus_ends_quietly()
            os.close(readable)
            with os.fdopen(writable, "wb") as pipe, _collected_rarely():
                parts = Parts() if _search_workers() >= 2 else None  # a big log: two readers, one per core
                sized = None  # the last path whose size as mapped the parent was sent
                for event in _events(paths, filing, err, marks=True, parts=parts, texts=texts):
                    if event[0] == "raw":  # the second reader's events, pickled already
                        pipe.flush()
                        send_spooled(pipe.fileno(), event[2])
                        continue
                    pickle.dump(event, pipe, protocol=pickle.HIGHEST_PROTOCOL)
                    if event[0] == "at" and event[1] != sized:
                        # A path's first mark, with its size as mapped, goes out at once: should a
                        # SIGBUS end this child before its buffer fills (the second reader may cut
                        # the log before the first touches its pages), the parent says what was lost.
                        pipe.flush()
                        sized = event[1]
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

    return _received(readable, child, paths, filing, err, texts=texts), result


def _received(readable: int, child: int, paths: Sequence[str], filing: Filing, err: TextIO, *,
              texts: bool = False) -> Iterator[Event]:
    """The events the reading child sends through the pipe `readable`, then its end."""
    import pickle

    # A path's kills are held until the child says they are final ("at", "done"): if a
    # shrinking log kills it (SIGBUS), the path is read on from the last "at", once. The
    # parser may be mid-report at every mark of a log dense with kills, so at most
    # HOLD kills are held (memory stays bounded): those given beyond the last mark are
    # counted and left out when the path is read on from it.
    held: list[Event] = []
    current: str | None = None
    at, size, done, given, holding = 0, None, 0, 0, 0
    with os.fdopen(readable, "rb") as pipe:
        while True:
            try:
                kind, path, payload = pickle.load(pipe)
            except EOFError:
                break
            if path != current:
                current, at, size, held, given, holding = path, 0, None, [], 0, 0
            if kind == "kills":
                held.append((kind, path, payload))
                holding += len(payload)
                if holding >= HOLD:
                    yield from held
                    held, given, holding = [], given + holding, 0
                continue
            yield from held
            held, holding = [], 0
            if kind == "at":
                at, size, given = payload[0], payload[1], 0
                continue
            done += 1
            current = None
            yield kind, path, payload
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGBUS and done < len(paths):
        # the pages of a mapped log truncated under it (logrotate's copytruncate)
        yield from shrank_events(paths[done], at if current is not None else 0, size, filing, err,
                                 given=given if current is not None else 0, texts=texts)
        if done + 1 < len(paths):
            rest, _ = _read_beside(paths[done + 1:], filing, err, lambda: None, texts=texts)
            yield from rest
        return
    yield from held  # read before the reader ended: recorded, then the failure said
    if os.WIFSIGNALED(status):
        signame = signal.Signals(os.WTERMSIG(status)).name
        raise UsageError(f"reading the logs failed (the reading process was killed by {signame})")
    if status != 0:
        raise UsageError("reading the logs failed (the reading process ended abnormally)")


def _die_with_parent(parent: int) -> None:
    """Have the kernel end this child when its parent ends (Linux PR_SET_PDEATHSIG), so a
    killed `import` leaves no orphan reading on; without prctl, a check of the parent."""
    import ctypes

    with contextlib.suppress(AttributeError, OSError):  # no prctl: the check below stays
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before prctl took effect
        os._exit(1)


def _sigbus_ends_quietly() -> None:
    """In the reading child: a SIGBUS (a mapped page of a log truncated under it) ends it
    by the kernel's default action, which the parent reads as "the file shrank" and reads
    on. faulthandler (python -X dev, PYTHONFAULTHANDLER, pytest) would otherwise print
    "Fatal Python error: Bus error" and a thread dump for what is no crash; it still dumps
    the child's other fatal signals (SIGSEGV, SIGABRT, SIGFPE, SIGILL)."""
    with contextlib.suppress(AttributeError, ValueError):  # no SIGBUS here; not the main thread
        signal.signal(signal.SIGBUS, signal.SIG_DFL)


def _iter_kills(path: str, filed: _Filed, err: TextIO, *, start: int = 0, map_file: bool = True,
                parts: Parts | None = None) -> Iterator[OomKill | Reached | Forward]:
    """The kills in one log (`-`: stdin), as the parser gives them (`filed` counts the times
    without a year and packs them: _Filed), and the scanner's Reached marks (ints), from
    byte `start`; raises what opening or reading it raises. With `parts` and two cores, a
    big mapped log's second part is read by a second process, whose events follow as
    Forward items (import_parts)."""
    from watchdog_oom.parse.scan import iter_kills_marked
    from watchdog_oom.sources.logfile import open_log

    stream = open_log(path)
    if start:
        stream.seek(start)
    ordered = _export_in_time_order(path, stream, err) if not start else None
    if ordered is not None:  # read from memory or a temporary file, by one process: its marks
        stream.close()  # are the copy's offsets, which reading on from the log's own after a SIGBUS would miss
        stream, map_file, parts = ordered, False, None
    progress = _Progress(filed.size, safe(path), err)
    progress.done = start  # read on from there: the bytes before it were got through
    two = None
    try:
        two = _two_readers(path, stream, filed, progress, err, parts) if parts is not None and map_file and not start \
            else None
        if two is None:
            yield from filed.kills(iter_kills_marked(stream, filed.source, year=filed.year, unread=filed.unread,
                                                     progress=progress.advance, workers=_search_workers(),
                                                     map_file=map_file, at=start))
        else:
            readers, items = two
            yield from filed.kills(items)
            for forward in readers.forward():
                yield forward
                progress.advance(0)  # the second's bytes, as far as it got
            progress.advance(0)
            filed.yearless = readers.merge_counts(filed.unread, filed.yearless)
    finally:
        progress.finish()
        if two is not None:
            two[0].close()
        if path != "-":
            stream.close()
    if filed.yearless and filed.year_given is None:
        print(f"{safe(path)}: where its dates carry no year (syslog), {filed.year} is assumed, the year the file was "
              "last written (a date after that, the year before); --year YYYY sets it", file=err)
    _report_unread(path, filed.unread, err)


def _export_in_time_order(path: str, stream: Any, err: TextIO) -> BinaryIO | None:
    """A log store's export (a JSON document, NDJSON, CSV with its header), to be read instead
    of the file: in time order from memory, as parse.export_in_time_order() gives it. One too
    big to be read whole is said to be read in its own order (the parser breaks off wherever
    time goes backwards): a JSON array or a CSV export as NDJSON in an unlinked temporary
    file; NDJSON as it is (None). None also: no export, in order already, stdin."""
    from watchdog_oom.parse import EXPORT_CHARS, export_in_time_order, may_be_export

    if path == "-" or not stream.seekable():
        return None
    head = stream.read(4096)
    stream.seek(0)
    if not may_be_export(head.decode("utf-8", "replace")):
        return None
    data = stream.read(EXPORT_CHARS + 1)
    stream.seek(0)
    if len(data) <= EXPORT_CHARS:
        ordered = export_in_time_order(data.decode("utf-8", "replace"))
        if ordered is None:
            return None
        print(f"{safe(path)}: read as a log store's export, entry by entry in time order", file=err)
        return io.BytesIO(ordered.encode())
    del data
    opening = head.lstrip()[:1]
    if opening == b"{":  # NDJSON: put in order from where it lies
        ndjson, owned = stream, False
        hits = _hits_offset(stream)
        if hits is not None:  # an Elasticsearch answer: its hits as NDJSON in a temporary file first
            stream.seek(hits)
            spool = _big_export(stream, True, closers="}")
            stream.seek(0)
            if spool is not None:
                ndjson, owned = spool, True
    else:  # a JSON array or CSV: its entries as NDJSON in a temporary file first
        spool = _big_export(stream, opening == b"[")
        stream.seek(0)
        if spool is None:
            print(f"{safe(path)}: an export over {EXPORT_CHARS >> 20} MiB that is not one clean JSON array (or could "
                  "not be copied to $TMPDIR) is read as it is, line by line", file=err)
            return None
        ndjson, owned = spool, True
    put, why = _big_in_time_order(ndjson)
    if put is not None:
        if owned:
            ndjson.close()
        print(f"{safe(path)}: read as a log store's export over {EXPORT_CHARS >> 20} MiB, entry by entry in time "
              "order", file=err)
        return put
    if why == "in order":
        if owned:
            print(f"{safe(path)}: read as a log store's export over {EXPORT_CHARS >> 20} MiB, entry by entry",
                  file=err)
        return ndjson if owned else None
    if why.startswith("with a line over") and not owned:  # one JSON document on a line: as text, a guess
        print(f"{safe(path)}: not read: a JSON document over {EXPORT_CHARS >> 20} MiB on one line that lists no "
              "entries this import reads one by one (a JSON array, an Elasticsearch answer's hits); write it one "
              "entry a line (jq -c '.[]') and import that", file=err)
        return io.BytesIO()
    print(f"{safe(path)}: an export over {EXPORT_CHARS >> 20} MiB {why} is read in the file's order, entry by entry: "
          "where it lists entries newest first, its reports' kills are found without their details", file=err)
    return ndjson if owned else None


# A big export in neither time order (nor newest first) is sorted up to this many entries:
# their places, times and order take some 70 bytes an entry (a million: 84 MiB at its peak
# in all); one listed newest first is reversed whatever its length (24 bytes an entry).
SORTED_ENTRIES = 1_000_000
_ENTRY_BYTES = 1 << 20  # an NDJSON entry longer than this is none (a log line is at most some kilobytes)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def _stable_order(keys: Sequence[int]) -> Iterator[int]:
    """The indices of `keys` in their order, ties as time_order() leaves them (a listing
    that ends older than it starts reversed first): one sorted list of ints, each its key
    and its place in one number (some 40 bytes an entry, not a list of indices and one of
    keys)."""
    count = len(keys)
    shift = count.bit_length()
    mask = (1 << shift) - 1
    last = count - 1 if keys[0] > keys[-1] else 0  # the place of each index: n, or count - 1 - n reversed
    for packed in sorted((key << shift) + abs(last - n) for n, key in enumerate(keys)):
        yield abs(last - (packed & mask))


def _big_in_time_order(ndjson: BinaryIO) -> tuple[BinaryIO | None, str]:
    """An export too big to be read whole, as NDJSON (`ndjson`, read from its start and
    left there), in time order as export_in_time_order() puts a small one (a listing
    newest first reversed, then a stable sort): an unlinked temporary file of its entries
    in order, and "sorted"; or None and why it is left as it is: "in order", or what keeps
    it from being ordered (said in a sentence after "an export over 8 MiB"). Two passes:
    the first keeps each entry's place and time (a compressed file's text is copied to a
    temporary file meanwhile), the second writes the entries in their order."""
    from array import array

    from watchdog_oom.parse.exports import export_entry_time

    plain = isinstance(ndjson, (io.BufferedReader, io.BufferedRandom))
    copy = out = None
    try:
        copy = None if plain else tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
        starts, sizes, keys = array("q"), array("q"), array("q")
        rising = falling = True
        zoned = None
        at = 0
        for line in iter(lambda: ndjson.readline(_ENTRY_BYTES + 1), b""):
            if len(line) > _ENTRY_BYTES:  # a document on one line (an API's answer) is no NDJSON entry:
                return None, f"with a line over {_ENTRY_BYTES >> 20} MiB"  # not decoded and parsed whole
            if copy is not None:
                copy.write(line)
            if line.strip():
                entry, when = export_entry_time(line.decode("utf-8", "replace"))
                if not entry:
                    return None, "with a line that is no JSON entry"
                if when is None or zoned is not None and zoned != (when.tzinfo is not None):
                    return None, "where not every entry names its time (or some with a zone, some without)"
                zoned = when.tzinfo is not None
                key = (when - (_EPOCH if zoned else _NAIVE_EPOCH)) // _MICROSECOND
                if keys:
                    rising, falling = rising and keys[-1] <= key, falling and keys[-1] >= key
                starts.append(at)
                sizes.append(len(line))
                keys.append(key)
            at += len(line)
        if rising:
            return None, "in order"
        count = len(keys)
        if falling:  # newest first: reversed (ties too, as a small one's stable sort leaves them)
            order: Iterable[int] = range(count - 1, -1, -1)
        elif count > SORTED_ENTRIES:
            return None, f"in no time order, with over {SORTED_ENTRIES:,} entries to sort"
        else:
            order = _stable_order(keys)
        source = copy if copy is not None else ndjson
        source.flush()
        fd = source.fileno()
        out = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it, as the file it stands for)
        for n in order:
            entry_text = os.pread(fd, sizes[n], starts[n])
            out.write(entry_text if entry_text.endswith(b"\n") else entry_text + b"\n")
        out.seek(0)
        ordered, out = out, None
        return cast(BinaryIO, ordered), "sorted"
    except OSError:
        return None, "(that could not be put in order in $TMPDIR)"
    finally:
        for spare in (copy, out):
            if spare is not None:
                spare.close()
        with contextlib.suppress(OSError, ValueError):
            ndjson.seek(0)


# Where an Elasticsearch _search answer's entries start: `"hits": [` (the outer "hits" holds
# an object), within the first megabyte (after "took", "_shards" and the totals).
_HITS = re.compile(rb'"hits"\s*:\s*\[')


def _hits_offset(stream: Any) -> int | None:
    """The offset of the entries' array in a big JSON document that is an Elasticsearch
    answer (`{"took": …, "hits": {"total": …, "hits": [`), None for any other document."""
    head = stream.read(1 << 20)
    stream.seek(0)
    found = _HITS.search(head)
    if found is None or b'"took"' not in head[:found.start()]:
        return None
    return found.end() - 1


def _big_export(stream: Any, array: bool, closers: str = "") -> BinaryIO | None:
    """A big export's entries as NDJSON in an unlinked temporary file (a JSON array through
    json_array_as_ndjson, CSV through csv_as_ndjson); None where the array was not the whole
    file (two arrays run together, a damaged entry: nothing may be left unread) or the copy
    failed (a full $TMPDIR): the file is then read as it is."""
    from watchdog_oom.parse import csv_as_ndjson, json_array_as_ndjson

    text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    try:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller, as the file it stands for)
        try:
            if array:
                entries = json_array_as_ndjson(iter(lambda: text.read(1 << 16), ""), closers)
                while True:
                    try:
                        spool.write(next(entries).encode())
                    except StopIteration as end:
                        whole = end.value
                        break
            else:
                spool.writelines(line.encode() for line in csv_as_ndjson(text))
                whole = True
            if whole:
                spool.seek(0)
                return cast(BinaryIO, spool)
        except OSError:
            pass
        spool.close()
        return None
    except OSError:
        return None
    finally:
        text.detach()


class _Filed:
    """One log's kills as its reader gives them: each as the parser gave it (the times
    without a year counted as they come), a batch of them Packed (import_wire.Packer:
    filed, in local time, ready to be stored and printed); and what it says at the end:
    the lines it could not read, the times without a year."""

    def __init__(self, path: str, filing: Filing, texts: bool) -> None:
        from watchdog_oom.parse import Unread

        self.size, reference = _size_and_mtime(path)
        self.source = f"import:{'stdin' if path == '-' else os.path.abspath(path)}"
        self.unread = Unread(keep=UNREAD_SHOWN)
        # Syslog dates carry no year: --year, else the year the file was last written.
        self.year_given = filing.year
        self.year = filing.year or reference.year
        self.yearless = 0
        self.pack = Packer(filing.forced, filing.local, self.source, None if filing.year else reference, texts=texts)

    def kills(self, items: Iterator[Any]) -> Iterator[Any]:
        """The kills of `items` and the marks (ints: Reached, Idle) as they are, the kills'
        times without a year (syslog's: naive) counted."""
        from watchdog_oom.parse.values import year_guessed

        for kill in items:
            if type(kill) is OomKill:
                when = kill.time
                if when is not None and when.tzinfo is None and year_guessed(kill):
                    self.yearless += 1
            yield kill

    def counts(self) -> tuple[tuple[int, int, int], int, list[Any]]:
        """The unread lines (count, kept, cut), the yearless times, the unread lines kept."""
        unread = self.unread
        return (unread.count, len(unread.first), unread.cut), self.yearless, list(unread.first)


# The first reader's share of a log read by two (the bytes before the split). The parent
# records the first's kills as they come, but the second's only from the handover on. On
# two cores the parent runs beside the first reader (it wakes on the core the first's
# writes to the pipe wake it on) and the second has the other core to itself: all three
# end together where the first's part and all the parent's work take as long as the
# second's part, a share of (1 - (P + c) / R) / 2 (P, R: the parent's and the readers'
# CPU for the whole log; c: the parent's start, ~0.35 s). Minimal reports (a kill in
# ~550 bytes: a reader ~47 us a kill, the parent ~8 us recording alone (--quiet) and ~11
# printing JSON too; 100,000 of them) give a share of 0.39 and 0.35: 0.37 (measured as
# JSON at nice -20 on 2 busy cores, before the parent's inserts took a third less: 0.44,
# 4.1-4.7 s; 0.34, 3.4-3.8 s). A reader's work a kill grows with the report's lines and
# the parent's does not: where kills are sparser (full reports with task tables, big
# logs of other lines) P/R falls toward 0 and the share is SPARSE_SHARE, as tuned before
# for those. Between, P/R is taken as inversely proportional to the bytes per kill,
# estimated from the kill lines ("Kill…": kernel, systemd-oomd, lmkd) in SAMPLES windows
# of SAMPLE bytes spread over the log. A single core has one reader (_search_workers), a
# log under 2 MB too (split_point). With the table format the parent's work is the
# larger and bounds the time whatever the share.
SPARSE_SHARE = 0.44
DENSE_SHARE = 0.37
DENSE_BYTES = 550  # the bytes of a minimal report, a kill at DENSE_SHARE
SAMPLES, SAMPLE = 8, 64 << 10


def first_share(view: Any, start: int, size: int) -> float:
    """The first reader's share of [start, size) of a mapped log (see above)."""
    size = min(size, len(view))
    span = size - start
    if span <= 0:
        return SPARSE_SHARE
    sampled = hits = 0
    for at in range(start, size, max(span // SAMPLES, SAMPLE)):
        window = view[at:min(at + SAMPLE, size)]
        sampled += len(window)
        hits += window.count(b"Kill")
    if not hits:
        return SPARSE_SHARE
    return SPARSE_SHARE - (SPARSE_SHARE - DENSE_SHARE) * min(1.0, DENSE_BYTES * hits / sampled)


def _two_readers(path: str, stream: Any, filed: _Filed, progress: _Progress, err: TextIO,
                 parts: Parts | None = None) -> tuple[TwoReaders, Iterator[Any]] | None:
    """The first of two readers of a big mapped log, and its part's items; None where one
    reads it (a stream, a small file)."""
    from watchdog_oom.parse.scan import iter_part, map_log, split_point

    mapped = map_log(stream)
    if mapped is None:
        return None
    view, start = mapped
    if parts is None or parts.at is None:
        split = split_point(view, start, first_share(view, start, _size_now(stream)))
    else:
        split = parts.at
    if split is None or not start < split < len(view):
        view.close()
        return None

    def second(count: Callable[[int], object]) -> Any:  # in the forked second reader
        items = iter_part(view, start, split, filed.source, year=filed.year, unread=filed.unread, progress=count)
        return filed.kills(items), filed.counts

    try:
        readers = TwoReaders(path, split, second, BATCH, err, pack=filed.pack)
    except OSError:  # no spool file (TMPDIR full, read-only) or no fork (EAGAIN): one reader
        view.close()
        stream.seek(start)
        return None
    progress.more = readers.second_done

    def first() -> Iterator[Any]:
        try:
            yield from iter_part(view, start, split, filed.source, year=filed.year, unread=filed.unread,
                                 progress=progress.advance, handoff=readers.handoff)
        finally:
            view.close()

    return readers, first()


def _size_now(stream: Any) -> int:
    """The mapped log's size now: what of its map may be read without a SIGBUS."""
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        return 0


def _search_workers() -> int:
    """Processes to search a big log with: two where this process may run on two cores
    (the scan of a mapped file splits in halves; see parse.iter_kills)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return 2 if cores >= 2 else 1


UNREAD_SHOWN = 5  # lines shown of those that hold a kill's words but could not be read


def _report_unread(path: str, unread: Any, err: TextIO) -> None:
    """Say how many lines held a kill's words that no recogniser could read, and show the
    first few with their line numbers (nothing missed silently); and how many lines were
    cut at the parser's line length."""
    from watchdog_oom.parse import LINE_CHARS, line_numbers
    from watchdog_oom.sources.logfile import open_log

    if unread.count:
        if path != "-":  # the scan knows byte offsets; a second read, up to the last shown, numbers them
            try:
                with open_log(path) as again:
                    line_numbers(again, unread)
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
                pass
        lines = "line holds" if unread.count == 1 else "lines hold"
        print(f"{safe(path)}: {unread.count} {lines} a kill's words but could not be read"
              f"{f' (the first {len(unread.first)} shown)' if unread.count > len(unread.first) else ''}:", file=err)
        for line in unread.first:
            where = f"line {line.line}" if line.line is not None else f"byte {line.offset}"
            print(f"  {where}: {safe(line.text)}  [{line.reason}]", file=err)
    if unread.cut:
        print(f"{safe(path)}: {unread.cut} line{'s' if unread.cut != 1 else ''} longer than {LINE_CHARS} characters "
              "read only that far", file=err)


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
    if isinstance(exc, (OSError, EOFError, zlib.error, lzma.LZMAError)):
        # zlib.error, lzma.LZMAError, EOFError (cut short), bz2's and gzip's OSError without errno
        return f"{path}: corrupt or unreadable compressed data ({exc})"
    # Anything else (a ValueError) is not the file's fault but ours: say so, rather than
    # blame a plain text file for being bad compressed data, as this once did (the caller
    # prints it escaped).
    return (f"{path}: reading stopped by an internal error ({type(exc).__name__}: {str(exc)[:200]}); "
            "the kills read before it are kept; please report this with the line that caused it")


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="a log file (plain or .gz), or - for stdin")
    p.add_argument("--dry-run", action="store_true", help="find and print the kills, record nothing")
    p.add_argument("--host", metavar="NAME",
                   help="file every kill under this host (default: the host each log line names, "
                        "else the config's host)")
    p.add_argument("--year", type=_year, metavar="YYYY",
                   help="the year of syslog dates, which carry none (default: the year the file was last written)")
    add_format(p, "table", "json")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print no kill, only each log's count of kills found, new and already recorded "
                        "(a big archive's import)")


def _year(text: str) -> int:
    try:
        year = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a year") from None
    if not 1970 <= year <= 9999:
        raise argparse.ArgumentTypeError(f"{year} is not a year from 1970 to 9999")
    return year


COMMANDS = (Command("import", "record the kills found in old kernel logs", _arguments, cmd_import),)

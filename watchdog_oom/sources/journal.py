"""The journald source: kernel messages, and the user-space OOM killers', via ``journalctl``.

``journalctl --output=json --follow`` prints one JSON object per journal entry and
keeps running. Each entry carries ``__CURSOR``, an opaque position that
``--after-cursor=`` resumes right after, so nothing is read twice or skipped across
restarts, reboots included: without ``--boot`` the match is not limited to one boot.

The match is ``_TRANSPORT=kernel + _SYSTEMD_UNIT=a.service _SYSTEMD_UNIT=b.service …``:
"+" ORs the groups, and matches on the same field are alternatives (journalctl(1),
MATCHES). ``-k`` cannot be used: journalctl ANDs its ``_TRANSPORT=kernel`` with every
other match, so user-space killers' messages would never pass it. ``-u`` is not used
either: it also matches what other processes (PID 1, systemd-coredump) log *about* a unit.

Only trusted fields are matched, those whose names start with "_", which journald sets
itself from the sender's credentials and cgroup (systemd.journal-fields(7)). A recorded
kill pages someone, so who logged it matters: ``SYSLOG_IDENTIFIER`` is whatever the
sender says, and any local user can run ``logger -t earlyoom 'sending SIGKILL to process
1 …'``; a process in ``earlyoom.service`` is earlyoom (or what root runs there). The
check is repeated on every entry read (``parse_entry``), so that a wider match (or a
journalctl that ignores it) cannot let a forged entry through, and the killer's name put
before its message comes from its unit, not from the identifier it gave. A killer run
under another unit is followed only once that unit's name, without ``.service``, is
added to ``identifiers``.

JSON values (systemd.journal-fields(7), "Journal JSON Format"): a string; an array of
byte values when the field is not valid UTF-8 or not printable; an array of values when
an entry has the field more than once; null when it exceeds 4096 bytes unless ``--all``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from watchdog_oom.model import CaughtUp, KernelLine, SourceGap
from watchdog_oom.sources.base import SourceError, Stopper

# User-space OOM killers by name, each followed through its unit NAME.service (the units
# their packages install; nohang ships a server and a desktop configuration).
USERSPACE_KILLERS = ("systemd-oomd", "earlyoom", "nohang", "nohang-desktop")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# journalctl's last words are kept for the error message when it fails.
_STDERR_TAIL = 4096


def killer_units(identifiers: Sequence[str] = USERSPACE_KILLERS) -> dict[str, str]:
    """The systemd unit of each user-space killer named in ``identifiers``, to its name."""
    return {f"{identifier}.service": identifier for identifier in identifiers}


def journal_argv(
    cursor: str | None,
    *,
    executable: Sequence[str] = ("journalctl",),
    identifiers: Sequence[str] = USERSPACE_KILLERS,
) -> list[str]:
    """The journalctl command line that follows kernel and killer messages after ``cursor``.

    The killers named in ``identifiers`` are matched by their units (``_SYSTEMD_UNIT``),
    never by the SYSLOG_IDENTIFIER they give themselves.
    """
    argv = [*executable, "--output=json", "--follow", "--no-pager", "--quiet", "--all"]
    # --follow alone starts with the last 10 entries; --no-tail starts with all of them.
    argv.append("--no-tail")
    # Without a cursor, this boot's entries (as /dev/kmsg holds); with one, every entry
    # after it, so kills logged late in the previous boot are not lost.
    argv.append(f"--after-cursor={cursor}" if cursor else "--boot")
    argv.append("_TRANSPORT=kernel")
    if identifiers:
        argv.append("+")
        argv.extend(f"_SYSTEMD_UNIT={unit}" for unit in killer_units(identifiers))
    return argv


def tail_argv(executable: Sequence[str] = ("journalctl",),
              identifiers: Sequence[str] = USERSPACE_KILLERS) -> list[str]:
    """The journalctl command line that prints the newest entry the follower would read."""
    argv = [*executable, "--output=json", "--no-pager", "--quiet", "--all", "--lines=1", "_TRANSPORT=kernel"]
    if identifiers:
        argv.append("+")
        argv.extend(f"_SYSTEMD_UNIT={unit}" for unit in killer_units(identifiers))
    return argv


def newest_cursor(argv: Sequence[str], timeout: float = 3.0) -> tuple[bool, str | None]:
    """(known, cursor) of the newest matching entry: (True, None) when there is none,
    (False, None) when journalctl could not say."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return False, None
    if done.returncode != 0:
        return False, None
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        return True, None
    try:
        return True, field_text(json.loads(lines[-1]).get("__CURSOR"))
    except ValueError:
        return False, None


def field_text(value: Any) -> str | None:
    """A journal JSON field value as text: a string, bytes as numbers, or the first of many."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        if all(isinstance(item, int) for item in value):
            return bytes(value).decode("utf-8", "replace")
        return field_text(value[0])
    return None


def _field_int(entry: dict[str, Any], name: str) -> int | None:
    text = field_text(entry.get(name))
    return int(text) if text is not None and text.isdigit() else None


def parse_entry(entry: dict[str, Any], units: Mapping[str, str] | None = None) -> KernelLine | None:
    """One journal entry (decoded JSON) to a KernelLine; None when it is not to be trusted.

    Kept: the kernel's messages (``_TRANSPORT=kernel``), and those of a process in one of
    ``units`` (``_SYSTEMD_UNIT`` to killer name, ``killer_units()`` by default). Dropped:
    everything else, whatever its SYSLOG_IDENTIFIER claims, and entries without a message.

    A killer's message is prefixed ``NAME[PID]: `` as syslog would write it, so that the
    parser can tell who killed: NAME from its unit and PID from ``_PID``, both set by
    journald, not from the SYSLOG_IDENTIFIER and SYSLOG_PID the sender chose.
    """
    message = field_text(entry.get("MESSAGE"))
    if message is None:
        return None
    if field_text(entry.get("_TRANSPORT")) != "kernel":
        if units is None:
            units = killer_units()
        identifier = units.get(field_text(entry.get("_SYSTEMD_UNIT")) or "")
        if identifier is None:
            return None
        pid = field_text(entry.get("_PID"))
        message = f"{identifier}[{pid}]: {message}" if pid else f"{identifier}: {message}"
    realtime = _field_int(entry, "__REALTIME_TIMESTAMP")
    boot_id = field_text(entry.get("_BOOT_ID"))
    return KernelLine(
        text=message,
        source="journal",
        time=_EPOCH + timedelta(microseconds=realtime) if realtime is not None else None,
        # The kernel's own timestamp of the record journald read from /dev/kmsg.
        mono_usec=_field_int(entry, "_SOURCE_MONOTONIC_TIMESTAMP"),
        prio=_field_int(entry, "PRIORITY"),
        cursor=field_text(entry.get("__CURSOR")),
        # journald writes the boot id as 32 hex digits; /proc and kmsg use the UUID form.
        boot_id=str(uuid.UUID(boot_id)) if boot_id else None,
    )


class JournalSource:
    """Follows the journal through a ``journalctl`` subprocess started at construction.

    ``argv`` is the command that runs journalctl (a test seam: a script printing JSON);
    ``identifiers`` name the user-space OOM killers to follow too, each through the
    systemd unit ``NAME.service``: only the kernel's and these units' messages are read.
    """

    def __init__(
        self,
        cursor: str | None = None,
        *,
        argv: Sequence[str] = ("journalctl",),
        identifiers: Sequence[str] = USERSPACE_KILLERS,
    ) -> None:
        self.name = "journal"
        self.argv = journal_argv(cursor, executable=argv, identifiers=identifiers)
        self._units = killer_units(identifiers)
        # What "caught up" means: having delivered the newest entry there is now. Without
        # that answer, the first silence of the follower stands in for it.
        known, newest = newest_cursor(tail_argv(argv, identifiers))
        self._backlog_known = known
        self._backlog_ends = newest if newest != cursor else None
        try:
            self._process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except FileNotFoundError:
            raise SourceError(
                f"{argv[0]} not found: install systemd or set kernel_log.source to kmsg or file"
            ) from None
        except OSError as exc:
            raise SourceError(f"cannot run {argv[0]}: {exc.strerror}") from exc
        assert self._process.stdout is not None and self._process.stderr is not None
        self._pipes = (self._process.stdout, self._process.stderr)
        self._stdout = self._process.stdout.fileno()
        self._stderr = self._process.stderr.fileno()
        os.set_blocking(self._stdout, False)
        os.set_blocking(self._stderr, False)
        self._partial = b""
        self._stderr_tail = b""
        self._caught_up = False  # in the current run of events()
        self._stdout_open = True
        self._stopper = Stopper(self._terminate)
        self.idle_timeout: float | None = 1.0  # set by events(); the reader may change it

    def events(self, idle_timeout: float = 1.0) -> Iterator[KernelLine | SourceGap | CaughtUp | None]:
        """Entries as KernelLines, CaughtUp after the newest entry there was at start (or
        at the first idle period when journalctl could not name it), None when idle
        (``idle_timeout``, which the reader may change between events; None: never).

        Ends when close() is called or journalctl exits; raises SourceError when it
        exits with an error, with what it printed.
        """
        self.idle_timeout = idle_timeout
        if not self._stopper.begin():
            return
        try:
            poller = select.poll()
            for fd in (self._stdout, self._stderr, self._stopper.fileno()):
                poller.register(fd, select.POLLIN)
            self._caught_up = False
            if self._backlog_known and self._backlog_ends is None:  # nothing old to deliver
                yield from self._catch_up()
            self._stdout_open = True
            while self._stdout_open and not self._stopper.stopped:
                idle = self.idle_timeout if self._caught_up else idle_timeout  # the first silence ends the backlog
                ready = poller.poll(None if idle is None else int(idle * 1000))
                if not ready:
                    # journalctl prints what the journal holds without pausing, then
                    # waits: the first silence is the end of the backlog.
                    yield from self._catch_up()
                    yield None
                    continue
                for fd, _ in ready:
                    yield from self._on_ready(poller, fd)
            if not self._stdout_open:
                self._check_exit()
                yield from self._catch_up()
        finally:
            self._stopper.end()

    def _catch_up(self) -> Iterator[CaughtUp]:
        """CaughtUp, the first time only in one run of events()."""
        if not self._caught_up:
            self._caught_up = True
            yield CaughtUp(self.name)

    def _on_ready(self, poller: select.poll, fd: int) -> Iterator[KernelLine | CaughtUp]:
        """Read the descriptor poll found ready: stderr's tail is kept, stdout's entries parsed."""
        if fd == self._stderr:
            if self._read_stderr() is False:
                poller.unregister(self._stderr)  # closed: poll would report it forever
            return
        if fd != self._stdout:
            return
        data = self._read(self._stdout)
        if data is None:
            return
        self._stdout_open = bool(data)
        if not self._stdout_open:
            poller.unregister(self._stdout)
        for event in self._feed(data, final=not self._stdout_open):
            if isinstance(event, CaughtUp):
                yield from self._catch_up()
            else:
                yield event

    def close(self) -> None:
        """Make events() end promptly and stop journalctl; safe from any thread."""
        self._stopper.stop()

    @staticmethod
    def _read(fd: int) -> bytes | None:
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            return None

    def _read_stderr(self) -> bool | None:
        """Keep the tail of what journalctl says; False at its end, None if nothing yet."""
        data = self._read(self._stderr)
        if data:
            self._stderr_tail = (self._stderr_tail + data)[-_STDERR_TAIL:]
        return None if data is None else bool(data)

    def _feed(self, data: bytes, *, final: bool = False) -> Iterator[KernelLine | CaughtUp]:
        # At the end of the output a last line without its newline is complete too.
        lines = (self._partial + data).split(b"\n")
        self._partial = b"" if final else lines.pop()
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                raise SourceError(
                    f"{self.argv[0]} printed something that is not a JSON journal entry: {line[:200]!r}"
                ) from None
            kernel_line = parse_entry(entry, self._units)
            if kernel_line is not None:
                yield kernel_line
            if self._backlog_ends is not None and field_text(entry.get("__CURSOR")) == self._backlog_ends:
                yield CaughtUp(self.name)

    def _check_exit(self) -> None:
        status = self._process.wait()
        os.set_blocking(self._stderr, True)
        while self._read_stderr():
            pass
        if status != 0:
            said = self._stderr_tail.decode("utf-8", "replace").strip() or "(nothing on stderr)"
            raise SourceError(f"{self.argv[0]} exited with status {status}: {said}")

    def _terminate(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for pipe in self._pipes:
            pipe.close()

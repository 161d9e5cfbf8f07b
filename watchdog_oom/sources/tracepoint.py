"""The tracepoint source: the kernel's ``oom`` events from a tracefs instance of our own.

tracefs (``/sys/kernel/tracing``; ``/sys/kernel/debug/tracing`` on old systems) lets any
number of users trace at once through *instances*: ``mkdir instances/NAME`` makes a ring
buffer with its own event switches, clock and ``trace_pipe``, and ``rmdir`` removes it.
This source makes ``instances/watchdog-oom``, sets its clock to ``mono`` (CLOCK_MONOTONIC,
so an event's time converts exactly to wall-clock time), enables ``oom/mark_victim`` and
``oom/oom_score_adj_update``, and reads ``trace_pipe``, which hands each event out once
and blocks (poll) while there is none. The top-level buffer and other users' instances
are never touched. ``close()`` disables the events and removes the instance.

The instance name: when ``instances/watchdog-oom`` exists already it is either left by a
daemon that was killed (SIGKILL gives no chance to remove it) or in use by another
watchdog-oom on the same kernel (a second container, say). The kernel refuses to remove
an instance while any of its files is open (EBUSY), so ``rmdir`` sorts the two out: a
leftover is removed and made afresh, a busy one is left alone and this daemon uses
``watchdog-oom-PID`` instead (and says so). Such a fallback left by a killed daemon would
stay for good (no later daemon has its PID), so at start the fallbacks of this name whose
PID is no longer alive are removed too; ``rmdir`` still leaves one another reader holds
open (a daemon in another PID namespace, whose PIDs mean nothing here).

Events are parsed by ``watchdog_oom.trace_events`` after reading each event's ``format``.
A ``mark_victim`` event is delivered with /proc/vmstat ``oom_kill`` read right after it
(``classify_marks`` needs it to tell a kill from a mark without one).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import select
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from watchdog_oom.sources.base import SourceError, Stopper
from watchdog_oom.sources.tracefs import TRACEFS_MOUNTS as TRACEFS_MOUNTS
from watchdog_oom.sources.tracefs import find_tracefs as find_tracefs
from watchdog_oom.trace_events import (
    ADJ_UPDATE,
    EVENTS,
    MARK_VICTIM,
    SOURCE_NAME,
    EventFormat,
    FormatError,
    TraceEvent,
    VictimMarked,
    parse_format,
    parse_line,
)

log = logging.getLogger(__name__)

DEFAULT_INSTANCE = "watchdog-oom"
# Per CPU. A new instance gets the default size (1.4 MB per CPU); two rare events need
# little, and the buffer is what a killed daemon leaves behind until its next start.
BUFFER_KB = 256
READ_SIZE = 65536
# Clocks in order of preference: mono is CLOCK_MONOTONIC (Linux 4.1+); local, the default,
# is sched_clock, which drifts from it (34 ms after 7 minutes on the VM this was written on).
CLOCKS = ("mono", "local")


def unusable(tracefs: str) -> str | None:
    """Why this daemon cannot trace there (None when it can): permissions, missing events."""
    if not os.path.isdir(os.path.join(tracefs, "events", "oom", MARK_VICTIM)):
        return f"{tracefs} has no oom/{MARK_VICTIM} event (Linux 4.13+ with CONFIG_TRACING)"
    # Effective ids and capabilities (AT_EACCESS): plain access() drops the capabilities
    # of a process whose real uid is not 0, such as a DynamicUser with CAP_DAC_OVERRIDE.
    effective = os.access in os.supports_effective_ids
    if not os.access(os.path.join(tracefs, "instances"), os.W_OK, effective_ids=effective):
        return f"{tracefs}/instances is not writable (tracing needs root, or CAP_DAC_OVERRIDE as the unit grants)"
    return None


def mount_tracefs(path: str = TRACEFS_MOUNTS[0]) -> None:
    """Mount tracefs at ``path`` (for ``kernel_log.tracepoints: on``). Raises SourceError."""
    try:
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", path], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"cannot mount tracefs at {path}: {exc}") from exc
    if done.returncode != 0:
        raise SourceError(f"cannot mount tracefs at {path}: {done.stderr.strip()[:200]}")


def read_oom_kill(vmstat: str) -> int | None:
    """/proc/vmstat ``oom_kill`` (Linux 4.13+), None when absent or unreadable."""
    try:
        with open(vmstat, "rb") as file:
            for line in file:
                if line.startswith(b"oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as file:
        file.write(value)


def _alive(pid: int) -> bool:
    """Whether a process with this PID exists (signal 0 checks without sending)."""
    if pid == os.getpid():
        return False  # this daemon has made no instance yet: one with its PID is a leftover
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: it exists, as another user's
    return True


def _remove_dead_fallbacks(instances: str, name: str) -> None:
    """Remove the ``NAME-PID`` instances (see the module's docstring) whose PID is gone."""
    fallback = re.compile(re.escape(name) + r"-([1-9][0-9]{0,9})")
    try:
        entries = os.listdir(instances)
    except OSError:
        return  # making the instance will say why
    for entry in entries:
        match = fallback.fullmatch(entry)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            os.rmdir(os.path.join(instances, entry))
        except OSError as exc:  # EBUSY: open in another PID namespace; its owner removes it
            log.debug("trace instance %s/%s left alone: %s", instances, entry, exc.strerror)
        else:
            log.info("removed the trace instance %s/%s left by an earlier run", instances, entry)


def _boot_wall(clock: str) -> datetime:
    # mono is CLOCK_MONOTONIC itself; local (sched_clock) is close to it.
    return datetime.fromtimestamp(time.time() - time.clock_gettime(time.CLOCK_MONOTONIC), UTC)


class TracepointSource:
    """``oom`` events from a trace instance of this daemon's own, as they happen.

    ``tracefs`` is where tracefs is mounted; ``instance`` the name to make under
    ``instances/``. ``vmstat`` is read after each mark_victim (a test seam, like the
    paths). Raises SourceError when the instance cannot be made or the events enabled.
    """

    def __init__(self, tracefs: str, instance: str = DEFAULT_INSTANCE, *, events: Sequence[str] = EVENTS,
                 vmstat: str = "/proc/vmstat", buffer_kb: int = BUFFER_KB) -> None:
        self.name = SOURCE_NAME
        self.tracefs = tracefs
        self.vmstat = vmstat
        self.formats: dict[str, EventFormat] = {}
        self.enabled: list[str] = []
        self.clock = "local"
        self.idle_timeout = 1.0
        self._partial = b""
        self.path = self._make_instance(instance)
        try:
            self._configure(events, buffer_kb)
            self.oom_kill_at_start = read_oom_kill(vmstat)
            self._fd = os.open(os.path.join(self.path, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, FormatError) as exc:
            self._remove_instance()
            if isinstance(exc, SourceError):
                raise
            raise SourceError(f"cannot trace in {self.path}: {exc}") from exc
        self._stopper = Stopper(self._release)
        self.opened_at = datetime.now(UTC)

    @property
    def instance(self) -> str:
        """The instance's name under ``instances/``."""
        return os.path.basename(self.path)

    def _make_instance(self, name: str) -> str:
        _remove_dead_fallbacks(os.path.join(self.tracefs, "instances"), name)
        path = os.path.join(self.tracefs, "instances", name)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            pass
        except OSError as exc:
            raise SourceError(f"cannot make the trace instance {path}: {exc.strerror}") from exc
        try:
            os.rmdir(path)  # a leftover of a killed daemon: nobody holds its files open
            log.info("removed the trace instance %s left by an earlier run", path)
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise SourceError(f"cannot replace the trace instance {path}: {exc.strerror}") from exc
            path = f"{path}-{os.getpid()}"
            log.warning("trace instance %s is in use by another reader; using %s", name, path)
        try:
            os.mkdir(path)
        except OSError as exc:
            raise SourceError(f"cannot make the trace instance {path}: {exc.strerror}") from exc
        return path

    def _configure(self, events: Sequence[str], buffer_kb: int) -> None:
        try:
            with open(os.path.join(self.path, "trace_clock"), encoding="ascii") as file:
                available = file.read()
            self.clock = next((c for c in CLOCKS if c in available.replace("[", " ").replace("]", " ").split()),
                              "local")
            _write(os.path.join(self.path, "trace_clock"), self.clock)
        except OSError:
            self.clock = "local"
        with contextlib.suppress(OSError):  # keep the default size
            _write(os.path.join(self.path, "buffer_size_kb"), str(buffer_kb))
        for event in events:
            folder = os.path.join(self.path, "events", event)
            if not os.path.isdir(folder):
                if event.endswith(MARK_VICTIM):
                    raise SourceError(f"this kernel has no {event} event (Linux 4.13+)")
                log.info("this kernel has no %s event; it is not traced", event)
                continue
            with open(os.path.join(self.tracefs, "events", event, "format"), encoding="utf-8",
                      errors="replace") as file:
                fmt = parse_format(file.read())
            self.formats[fmt.name] = fmt
            _write(os.path.join(folder, "enable"), "1")
            self.enabled.append(event)

    def events(self, idle_timeout: float = 1.0) -> Iterator[TraceEvent | None]:
        """The events as they come, None after ``idle_timeout`` seconds of quiet; ends at close().

        The reader may change ``self.idle_timeout`` between events (short while it holds
        work that falls due, long otherwise, so an idle daemon wakes seldom).
        """
        self.idle_timeout = idle_timeout
        if not self._stopper.begin():
            return
        try:
            poller = select.poll()
            poller.register(self._fd, select.POLLIN)
            poller.register(self._stopper.fileno(), select.POLLIN)
            while not self._stopper.stopped:
                try:
                    data = os.read(self._fd, READ_SIZE)
                except BlockingIOError:
                    if not poller.poll(self.idle_timeout * 1000):
                        yield None
                    continue
                except OSError as exc:
                    raise SourceError(f"cannot read {self.path}/trace_pipe: {exc.strerror}") from exc
                if not data:
                    return
                yield from self._feed(data)
        finally:
            self._stopper.end()

    def _feed(self, data: bytes) -> Iterator[TraceEvent]:
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > READ_SIZE:
            self._partial = b""  # no line is this long: drop it rather than grow
        boot_wall = _boot_wall(self.clock)
        counter: int | None = None
        for raw in lines:
            event = parse_line(raw.decode("utf-8", "replace"), self.formats, boot_wall)
            if isinstance(event, VictimMarked):
                if counter is None:
                    counter = read_oom_kill(self.vmstat)
                event = replace(event, oom_kill_count=counter)
            if event is not None:
                yield event

    def close(self) -> None:
        """Make events() end promptly, disable the events and remove the instance; any thread."""
        self._stopper.stop()

    def _release(self) -> None:
        try:
            os.close(self._fd)
        finally:
            self._remove_instance()

    def _remove_instance(self) -> None:
        for event in self.enabled:
            with contextlib.suppress(OSError):
                _write(os.path.join(self.path, "events", event, "enable"), "0")
        try:
            os.rmdir(self.path)
        except OSError as exc:
            log.warning("cannot remove the trace instance %s: %s", self.path, exc.strerror)


__all__ = [
    "ADJ_UPDATE",
    "DEFAULT_INSTANCE",
    "MARK_VICTIM",
    "TRACEFS_MOUNTS",
    "TracepointSource",
    "find_tracefs",
    "mount_tracefs",
    "read_oom_kill",
    "unusable",
]

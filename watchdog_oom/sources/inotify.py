"""inotify(7) for the log-file source: a descriptor that becomes readable when a followed
file is written, truncated, renamed or deleted, or a file is created or moved into its
directory, so that the source sleeps in poll() instead of looking every 0.2 s.

Python's standard library has no inotify, so the three calls go through ctypes to the C
library the process already has (glibc and musl both provide them); ctypes is loaded only
here, by a daemon that follows a log file. Where anything is missing (no such call, a
kernel without inotify, the user's watch limit reached, a directory that does not exist),
``Inotify.open`` returns None and the source polls as before.

Watches are on the directory (IN_CREATE, IN_MOVED_TO, IN_MOVED_FROM, IN_DELETE: a file
appearing or rotated) and on each file being read, through its open descriptor
(/proc/self/fd/N, so the very file held open, also after it was renamed): IN_MODIFY
(appended or truncated), IN_ATTRIB, IN_MOVE_SELF, IN_DELETE_SELF. A watch goes away with
its file (IN_IGNORED). The events' contents do not matter: any event means "look again".

``FileWatch`` is the wait built on it that the log-file source sleeps in: inotify where
it works, a look every ``stat_interval`` where it does not, and a stop pipe that ends
the wait at once. inotify is not portable to every filesystem a log can live on (a
network filesystem sees no other host's writes), so with inotify it also looks once a
second, and the first look that finds lines inotify did not announce turns inotify off
for good, as does a watch the kernel refuses.
"""

from __future__ import annotations

import logging
import os
import select
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("watchdog_oom")

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
DIRECTORY_EVENTS = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE
FILE_EVENTS = IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF
READ_SIZE = 4096
# With inotify, a look this often anyway: what a filesystem without inotify events is
# found out by (its first lines then wait this long, the rest stat_interval).
NOTIFIED_INTERVAL = 1.0


class Inotify:
    """An inotify descriptor watching one log file's directory and the files being read."""

    def __init__(self, fd: int, add_watch: Any) -> None:
        self.fd = fd
        self._add_watch = add_watch

    @classmethod
    def open(cls, directory: str) -> Inotify | None:
        """A descriptor watching `directory`, or None where inotify cannot be had."""
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            init, add_watch = libc.inotify_init1, libc.inotify_add_watch
        except (AttributeError, OSError, ImportError):
            return None
        init.argtypes, init.restype = (ctypes.c_int,), ctypes.c_int
        add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        add_watch.restype = ctypes.c_int
        fd = init(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            return None
        notify = cls(fd, add_watch)
        if add_watch(fd, os.fsencode(directory), DIRECTORY_EVENTS) < 0:
            notify.close()
            return None
        return notify

    def follow(self, fd: int) -> bool:
        """Watch the file open as `fd`; False when the kernel refuses. Watching a file
        watched already changes nothing (the same watch is returned), so the source asks
        at every look rather than keep track of inodes, which the kernel reuses."""
        return bool(self._add_watch(self.fd, f"/proc/self/fd/{fd}".encode(), FILE_EVENTS) >= 0)

    def drain(self) -> bool:
        """Read every pending event; whether there was any."""
        got = False
        while True:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return got
            if not data:
                return got
            got = True

    def pending(self) -> bool:
        """Whether an event waits to be read (without reading it)."""
        return bool(select.select([self.fd], [], [], 0)[0])

    def close(self) -> None:
        """Release the descriptor (and with it every watch)."""
        os.close(self.fd)


class FileWatch:
    """How a log-file source waits for its files to change: woken by inotify where it
    works, else by a look every ``stat_interval`` seconds; and at once by ``stop_fd``."""

    def __init__(self, path: str, stop_fd: int, stat_interval: float, use_inotify: bool) -> None:
        self.path = path
        self.stat_interval = stat_interval
        self.poller = select.poll()
        self.poller.register(stop_fd, select.POLLIN)
        directory = os.path.dirname(os.path.abspath(path))
        self.notify = Inotify.open(directory) if use_inotify else None
        if self.notify is not None:
            self.poller.register(self.notify.fd, select.POLLIN)
        self.timer = False  # the last wake-up was the timer's, not inotify's

    @property
    def notified(self) -> bool:
        """Whether inotify is being relied on."""
        return self.notify is not None

    def follow(self, fds: Iterable[int]) -> None:
        """Watch the files being read, open as `fds` (again: a new one since the last look).
        A watch the kernel refuses (the user's limit, fs.inotify.max_user_watches, reached)
        turns inotify off."""
        if self.notify is not None and not all(self.notify.follow(fd) for fd in fds):
            self._off("refused a watch")

    def found_lines(self) -> None:
        """A look found lines: when the timer woke it and inotify has nothing to tell, inotify
        missed them (a network filesystem), and is turned off."""
        if self.timer and self.notify is not None and not self.notify.pending():
            self._off("missed lines")

    def sleep(self, timeout: float | None = None, *, timed: bool = False) -> bool:
        """Until inotify tells of a change, the next look is due, `timeout` seconds (an idle
        event due) or stop; True when inotify woke it. Without inotify, and when the caller
        times something (`timed`: a rotated file's grace), the next look is stat_interval away."""
        wait = NOTIFIED_INTERVAL if self.notify is not None and not timed else self.stat_interval
        if timeout is not None:
            wait = min(wait, max(timeout, 0.0))
        ready = self.poller.poll(wait * 1000)
        woken = self.notify is not None and any(fd == self.notify.fd for fd, _ in ready)
        if woken and self.notify is not None:
            self.notify.drain()
        self.timer = not woken
        return woken

    def close(self) -> None:
        """Release the inotify descriptor, if any."""
        if self.notify is not None:
            self.notify.close()
            self.notify = None

    def _off(self, why: str) -> None:
        """Stop relying on inotify (it missed lines, or refused a watch): look from now on."""
        assert self.notify is not None
        self.poller.unregister(self.notify.fd)
        self.close()
        log.info("%s: inotify %s (a network filesystem? fs.inotify.max_user_watches?); looking every %.1f s",
                 self.path, why, self.stat_interval)

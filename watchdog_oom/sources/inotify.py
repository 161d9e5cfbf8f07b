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
"""

from __future__ import annotations

import os
from typing import Any

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
        import select

        return bool(select.select([self.fd], [], [], 0)[0])

    def close(self) -> None:
        """Release the descriptor (and with it every watch)."""
        os.close(self.fd)

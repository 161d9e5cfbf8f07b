"""The sd_notify protocol without a systemd dependency: datagrams to $NOTIFY_SOCKET
(READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1), as sd_notify(3) describes."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("watchdog_oom")


class SdNotify:
    """Tells systemd how the daemon is doing; a no-op when not started by systemd."""

    def __init__(self, env: Mapping[str, str] = os.environ) -> None:
        path = env.get("NOTIFY_SOCKET")
        self.address: str | None = None
        if path:
            # A leading '@' names a socket in the abstract namespace.
            self.address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_interval: float | None = None
        # WATCHDOG_PID names the process systemd expects pings from: not a child we started.
        if usec and usec.isdigit() and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6

    def send(self, message: str) -> bool:
        """Send one state message; False when there is no socket or it refuses."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode())
            return True
        except OSError as exc:
            log.warning("sd_notify %s to %s failed: %s", message.split("=")[0], self.address.lstrip("\0"), exc)
            return False

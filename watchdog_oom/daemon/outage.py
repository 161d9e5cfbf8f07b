"""The history database's outage as people and systemd hear of it: `database.down`
(critical) once per outage and `database.resolved` once after, sent straight through every
channel (not through the outbox, which lives in the failing database), systemd's
`STATUS=`, and the state /metrics reads. The database watch (database.py) decides when."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from watchdog_oom.model import Notification
from watchdog_oom.valueclass import valueclass

log = logging.getLogger("watchdog_oom")

DOWN = "database.down"
RESOLVED = "database.resolved"


@valueclass(frozen=False, slots=False)
class State:
    """What is known of the database now; read by /metrics and `STATUS=`."""

    ok: bool = True
    kind: str | None = None
    problem: str | None = None
    held: int = 0


class Outage:
    """Says when the history database goes down and when it is back, directly."""

    def __init__(self, shared: Any, direct: Callable[[], Any], status: Callable[[str], Any]) -> None:
        self.shared = shared
        self.direct = direct  # the Direct sender in force (swapped on reload)
        self.status = status  # sd_notify STATUS=
        self.state = State()

    def status_line(self) -> str:
        """systemd's STATUS= for the database's state now."""
        if self.state.ok:
            return "STATUS=watching memory and the kernel log"
        return f"STATUS=history database down ({self.state.kind}): kills held in memory"

    def down(self, kind: str, problem: str) -> None:
        """The database is down (or down another way): log, STATUS= and database.down."""
        self.state.ok, self.state.kind, self.state.problem = False, kind, problem
        log.error("database.down (%s): %s", kind, problem)
        self.status(self.status_line())
        self._send(DOWN, "critical", f"History database down ({kind}): {problem}",
                   {"kind": kind, "problem": problem, "held_kills": self.state.held})

    def up(self, summary: str) -> None:
        """The database works again: log, STATUS= and database.resolved."""
        kind = self.state.kind
        self.state.ok, self.state.kind, self.state.problem = True, None, None
        log.warning("database.resolved: %s", summary)
        self.status(self.status_line())
        self._send(RESOLVED, "info", f"Resolved: {summary}", {"kind": kind})

    def _send(self, kind: str, severity: str, summary: str, data: dict[str, Any]) -> None:
        try:
            # Made, and the sending code (sending.py) loaded, at the first outage.
            direct = self.direct()
        except Exception as exc:  # that code unreadable (the package being upgraded, say)
            log.error("%s is not sent through the channels: the sending code (watchdog_oom.sending) cannot be "
                      "loaded: %s: %s", kind, type(exc).__name__, exc)
            return
        if direct is None:
            return
        direct.send(Notification(id=f"msg_{uuid.uuid4().hex}", kind=kind, time=self.shared.clock(),
                                 host=self.shared.cfg.host, severity=severity, summary=summary, data=data,
                                 reason="resolved" if kind == RESOLVED else "first"))

"""Lines that hold a kill's words and that no recogniser read (issue 11 item 7).

Nothing is missed silently: such a line is counted, and the first few are kept with where
they were (a line number or a byte offset), so that `import` can show them and the daemon
can raise an alert with the raw line.
"""

from __future__ import annotations

from dataclasses import field

from watchdog_oom.valueclass import valueclass

UNREAD_CHARS = 300


@valueclass(slots=False)
class UnreadLine:
    """A line that holds a kill's words and that no recogniser read, as it was found."""

    line: int | None  # 1-based line number, when known
    offset: int | None  # byte offset in the input, when the line number is not known
    text: str  # the message, cut to UNREAD_CHARS
    reason: str


@valueclass(frozen=False, slots=False)
class Unread:
    """Lines holding a kill's words that could not be read into a kill: counted, the first
    `keep` kept with where they were, so that a person can look (nothing missed silently)."""

    keep: int = 20
    count: int = 0
    cut: int = 0  # physical lines longer than LINE_CHARS, cut there
    first: list[UnreadLine] = field(default_factory=list)
    _new: list[UnreadLine] = field(default_factory=list)  # since the last drain(), at most `keep`

    def add(self, where: tuple[int | None, int | None], text: str, reason: str) -> None:
        """Count one unread line found at `where` (line number, byte offset)."""
        self.count += 1
        line = UnreadLine(where[0], where[1], text[:UNREAD_CHARS], reason)
        if len(self.first) < self.keep:
            self.first.append(line)
        if len(self._new) < self.keep:
            self._new.append(line)

    def drain(self) -> list[UnreadLine]:
        """The lines added since the last call (a follower alerts on each once)."""
        new, self._new = self._new, []
        return new

"""Numbers and names as read from a log line, range-checked where they are read.

Anyone who can write to a log can print any digits (`logger -t kernel`, a corrupted file,
a kernel bug), so a value that no kernel could print becomes None, with the line kept
whole in the kill's raw text: one bad line never stops the record of the others.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog_oom.model import OomKill

# include/linux/threads.h PID_MAX_LIMIT: 4 * 1024 * 1024 on 64-bit kernels, the most
# /proc/sys/kernel/pid_max accepts; 0 is the idle task, never a victim.
PID_MAX_LIMIT = 4_194_304
# uid_t is 32 bits; (uid_t)-1 is "no user".
UID_MAX = 2**32 - 2
# Every other figure (kB, pages, bytes, scores) is stored in a signed 64-bit column.
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# ... except a selection's score and a kill's oom_score_adj: 32-bit columns.
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
# A task's comm is 15 bytes (TASK_COMM_LEN 16 with its NUL); 64 characters leave room for
# multi-byte and escaped renderings. A cgroup's name (systemd-oomd's victim) is a file name:
# NAME_MAX 255. Longer text is cut here; the raw line keeps all of it.
PROCESS_CHARS = 64
CGROUP_NAME_CHARS = 255
# Longer text than a digit run of 20 is never an int64; checking the length first keeps
# int() from spending quadratic time on a megabyte of digits.
_DIGITS = 20


def as_int(text: str | None, low: int = INT64_MIN, high: int = INT64_MAX) -> int | None:
    """The integer printed in `text` if it lies in [low, high]; None otherwise."""
    if text is None or len(text.lstrip("-+")) > _DIGITS:
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


def as_pid(text: str | None) -> int | None:
    """A process id within Linux's limit (1 to 4194304); None otherwise."""
    return as_int(text, 1, PID_MAX_LIMIT)


def as_uid(text: str | None) -> int | None:
    """A user id (32 bits, not -1); None otherwise."""
    return as_int(text, 0, UID_MAX)


def cap_name(name: str, limit: int = PROCESS_CHARS) -> tuple[str, bool]:
    """The name cut to `limit` characters, and whether it was cut."""
    return (name, False) if len(name) <= limit else (name[:limit], True)


# Log formats (the names a kill's evidence gives, parse.wrappers') whose dates carry their
# year, local times all the same: `dmesg -T`'s "[Mon Jun  3 10:00:00 2024]", journalctl
# short-full's, logread's, an ISO 8601 date without an offset. Only a classic syslog date
# ("Jun  3 10:00:00") leaves the year to be guessed.
DATED_FORMATS = frozenset({"dmesg -T", "journalctl short-full", "logread (OpenWrt)", "ISO 8601 syslog or journalctl"})


def year_guessed(kill: OomKill) -> bool:
    """Whether the kill's time is a local time whose year the parser was told, not read:
    naive, and not from a format whose dates carry their year."""
    when = kill.time
    if when is None or when.tzinfo is not None:
        return False
    evidence = kill.extra.get("evidence") if isinstance(kill.extra, dict) else None
    return not (isinstance(evidence, dict) and evidence.get("format") in DATED_FORMATS)


def undo_future_year(kill: OomKill, reference: datetime) -> OomKill:
    """A syslog date has no year, so the caller guessed `reference`'s year; a kill that
    would then lie in the future was logged the year before (a December line read in
    January). `reference` is naive local time, like the syslog date. A date that carries
    its year (DATED_FORMATS) is left as it is, even in the future: a clock set wrong is
    not a year's difference."""
    if (kill.time is not None and kill.time.tzinfo is None and kill.time > reference + timedelta(days=1)
            and year_guessed(kill)):
        try:
            return kill.replace(time=kill.time.replace(year=kill.time.year - 1))
        except ValueError:  # 29 February
            return kill.replace(time=kill.time.replace(year=kill.time.year - 1, day=28))
    return kill

"""Turns kernel log text into OomKill records: one per process an OOM killer killed.

Pure: text in, values out; no clock, no I/O beyond the stream `iter_kills` is handed.

* wrappers.py: what a log writer put around a kernel message, and taking it off;
* enclosures.py: what encloses pasted text (JSON, CSV, quoted-printable, HTML, ANSI), read
  by import's lenient Decoder only (the daemon's parser reads no enclosure);
* kernel.py: the front (OomParser): lines in, each message to the reader that knows it;
* lane.py: the front's fast lane: a line in the wrapper of the one before, read in one step;
* rejoin.py: where a message starts in a line, and rejoining a kill line a wrap cut;
* anchors.py: the kernel's and the killers' own words, and whether a message reads whole;
* report.py: the kernel's OOM report as a state machine over message bodies, its task table;
* userspace.py: one recogniser per user-space killer (systemd-oomd, earlyoom, nohang);
* unread.py: the lines holding a kill's words that nothing read, counted and kept;
* scan.py: the byte scanner that reads a large log fast (iter_kills) for `import`;
* exports.py: a log store's export read whole (in time order, or as NDJSON) for `import`.

The names below are what the rest of the package (daemon, CLI, sources) uses.
"""

from watchdog_oom.forward import forward
from watchdog_oom.parse.kernel import (
    MEMORY_INFO_LINE_CHARS,
    MEMORY_INFO_LINES,
    PAGE_KB,
    RECOGNISERS,
    REPORT_LINES,
    TASK_TABLE_ROWS,
    OomParser,
    Unread,
    UnreadLine,
)
from watchdog_oom.parse.userspace import NOHANG_BLOCK_LINES
from watchdog_oom.parse.values import undo_future_year
from watchdog_oom.parse.wrappers import LINE_CHARS, strip_wrapper

# scan.py's names, imported on first use (PEP 562): the daemon parses line by line and
# never scans a file, so it does not load the scanner (nor ctypes, for glibc's memmem).
_SCAN_NAMES = ("KILL_NEEDLES", "_find", "_libc_finder", "_python_find", "iter_kills", "line_numbers", "parse_text")
# exports.py's, likewise: a whole export is read by `import` only, never by the daemon.
_EXPORT_NAMES = ("EXPORT_CHARS", "csv_as_ndjson", "export_in_time_order", "json_array_as_ndjson", "may_be_export")


__getattr__ = forward(__name__, {"watchdog_oom.parse.scan": _SCAN_NAMES, "watchdog_oom.parse.exports": _EXPORT_NAMES})


__all__ = [
    "KILL_NEEDLES",
    "LINE_CHARS",
    "MEMORY_INFO_LINES",
    "MEMORY_INFO_LINE_CHARS",
    "NOHANG_BLOCK_LINES",
    "PAGE_KB",
    "RECOGNISERS",
    "REPORT_LINES",
    "TASK_TABLE_ROWS",
    "OomParser",
    "Unread",
    "UnreadLine",
    "_find",
    "_libc_finder",
    "_python_find",
    "iter_kills",
    "line_numbers",
    "parse_text",
    "strip_wrapper",
    "undo_future_year",
    "EXPORT_CHARS",
    "export_in_time_order",
    "may_be_export",
    "csv_as_ndjson",
    "json_array_as_ndjson",
]

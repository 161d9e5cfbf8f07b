"""Where tracefs is mounted, and whether the oom tracepoints are to be read at all.

Apart from the tracepoint source so that a daemon that reads no tracepoints (tracefs not
mounted, or ``kernel_log.tracepoints: off``) decides so without loading the tracepoint
reader, its event parser and the oom_score_adj audit.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

TRACEFS_MOUNTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def find_tracefs(candidates: Sequence[str] = TRACEFS_MOUNTS) -> str | None:
    """The first candidate where a tracefs is mounted (it has ``instances``), else None."""
    for path in candidates:
        if os.path.isdir(os.path.join(path, "instances")):
            return path
    return None


def ruled_out(setting: str, tracefs: str | None) -> str | None:
    """Why ``kernel_log.tracepoints`` (`setting`) reads nothing here, before anything is
    tried (off; auto without a mounted tracefs), or None when tracing is to be tried."""
    if setting == "off":
        return "tracepoints not read (kernel_log.tracepoints: off)"
    candidates = (tracefs,) if tracefs else TRACEFS_MOUNTS
    if setting != "on" and find_tracefs(candidates) is None:
        return f"tracepoints not read: tracefs is not mounted at {' or '.join(candidates)}"
    return None

"""watchdog-oom: watch memory commit and pressure, rank the OOM killer's next victims, record every OOM kill."""

__version__ = "0.1.0"

# This package's own modules load without docstrings and functions' annotations (lean.py).
from watchdog_oom import lean as _lean  # noqa: E402

_lean.install()

"""watchdog-oom: watch memory commit and pressure, rank the OOM killer's next victims, record every OOM kill."""

__version__ = "0.1.0"

"""The daemon, as small parts a composition root assembles.

daemon.py (lifecycle: signals, reload, sd_notify) builds `Shared` and starts:
follower.py (a thread following the kernel log into pipeline.py: parse -> enrich,
then writer.py: store with its outbox rows, held while the database is down),
tracer.py (the oom tracepoints: a second witness of each kill, and the oom_score_adj
writes adjwatch.py audits), jobs.py (the scheduler running checks.py, retention.py,
the heartbeat and the watchdog ping) and sender.py (the outbox thread). The decisions
they take are in `watchdog_oom.rules` and `watchdog_oom.detect`; none of the parts
calls back into the daemon.
"""

from watchdog_oom.daemon.daemon import Daemon

__all__ = ["Daemon"]

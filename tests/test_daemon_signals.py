"""The daemon's signals reach its main thread through a pipe: no work, and no lock, in a handler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from watchdog_oom.daemon.signals import SignalPipe

ROOT = Path(__file__).resolve().parent.parent


def test_signals_arrive_as_numbers_once_each_in_order_and_a_late_one_changes_nothing():
    pipe = SignalPipe((signal.SIGTERM, signal.SIGHUP))
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
        assert pipe.wait() == [signal.SIGHUP, signal.SIGTERM]
        pipe.close()
        os.kill(os.getpid(), signal.SIGTERM)  # as the daemon exits: no death by signal
    finally:
        for signum, handler in pipe.previous.items():
            signal.signal(signum, handler)


PROBE = """
import os, signal, threading
from watchdog_oom.daemon.signals import SignalPipe
stop = threading.Event()
pipe = SignalPipe((signal.SIGTERM,))
with stop._cond:  # the Event's lock, as Event.wait() holds it around its wait
    os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, in this thread
print(pipe.wait())
"""


def test_a_signal_while_the_main_thread_holds_the_stop_events_lock_blocks_nothing():
    # The instant an earlier daemon could hang in: its SIGTERM handler set a threading.Event,
    # and Python ran it in the main thread while that thread, inside Event.wait(), held the
    # Event's own lock. The handler waited for that lock forever and SIGTERM never stopped
    # the daemon. In a child, so that such a hang fails this test instead of stopping the run.
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"[{int(signal.SIGTERM)}]"]

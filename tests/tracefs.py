"""A tracefs of the test's own: mounted on a temporary directory, unmounted after.

tracefs can be mounted at any number of places, each showing the same kernel tracing
state; mounting a private one leaves /sys/kernel/tracing (and whoever mounted it or
uses it) alone. Every test makes its trace instance under a unique name, so concurrent
runs never meet.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def unique_instance(prefix: str = "wdoom-test") -> str:
    """An instance name no other test run will pick."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextmanager
def private_tracefs() -> Iterator[str]:
    """Mount tracefs on a fresh directory and yield its path; skip (with the reason) where impossible."""
    if os.geteuid() != 0:
        pytest.skip("tracing needs root (or CAP_SYS_ADMIN) to mount tracefs and make an instance")
    with open("/proc/filesystems", encoding="ascii") as file:
        if "tracefs" not in file.read():
            pytest.skip("this kernel has no tracefs")
    mount_point = tempfile.mkdtemp(prefix="wdoom-tracefs-")
    try:
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", mount_point], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount tracefs here: {done.stderr.strip()}")
        try:
            if not os.path.isdir(os.path.join(mount_point, "events", "oom", "mark_victim")):
                pytest.skip("this kernel has no oom/mark_victim tracepoint (Linux 4.13+)")
            yield mount_point
        finally:
            if subprocess.run(["umount", mount_point], capture_output=True, check=False).returncode != 0:
                # Still held open (a daemon being reaped): detach it; the kernel frees it after.
                subprocess.run(["umount", "-l", mount_point], check=False)
    finally:
        os.rmdir(mount_point)

"""`import`'s output into a pipe: the pipe is asked to hold a batch's records (1 MiB), so
that the recording process is not woken and put to sleep thirty times a batch by a reader
of its output; a file, or a pipe it may not widen, is left as it is."""

from __future__ import annotations

import fcntl
import io
import os
from pathlib import Path

import pytest

from watchdog_oom.cli import import_logs


def test_the_records_pipe_is_widened_a_file_left_alone(tmp_path: Path) -> None:
    readable, writable = os.pipe()
    with os.fdopen(readable, "rb") as reader, os.fdopen(writable, "w") as out:
        before = fcntl.fcntl(out.fileno(), fcntl.F_GETPIPE_SZ)
        try:
            fcntl.fcntl(out.fileno(), fcntl.F_SETPIPE_SZ, import_logs.PIPE_SIZE)
        except OSError:
            pytest.skip("this system allows no 1 MiB pipe (fs.pipe-max-size)")
        fcntl.fcntl(out.fileno(), fcntl.F_SETPIPE_SZ, before)  # back to the default, then as import does
        import_logs._wider_pipe(out)
        assert fcntl.fcntl(out.fileno(), fcntl.F_GETPIPE_SZ) == import_logs.PIPE_SIZE > before
        out.write("[]\n")
        out.flush()
        assert reader.read(3) == b"[]\n"
    with (tmp_path / "records.json").open("w") as file:
        import_logs._wider_pipe(file)  # not a pipe: nothing asked
    import_logs._wider_pipe(io.StringIO())  # no descriptor (a test's output): nothing asked

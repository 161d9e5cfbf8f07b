"""A real memory cgroup filled at a steady rate, under the test's own cgroup, with the daemon
watching: the warning and the forecast come before the kernel's kill, with room left in the
cgroup, and name the right pid; the kill is recorded once and linked to them; the kernel's
oom_kill counter agrees; a limited cgroup outside the include filter is never mentioned.
And `watchdog-oom cgroups` says what the kernel's own files say.

The filler grows one step for each reading the daemon stores (lock-step, not on a timer):
how early the forecast came is measured in bytes left below the limit, which is readings
left before the kill, the same on an idle machine and on a loaded one.

Needs root and a memory cgroup of our own (cgroup v1 on the development machine, v2
where the host has it); skips saying why otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_service import Daemon, reap_daemons, wait_until  # noqa: F401 (reap_daemons: autouse fixture)

pytestmark = pytest.mark.realoom

MiB = 1 << 20
LIMIT = 64 * MiB
STEP = 6 * MiB  # the filler's growth per reading of the daemon (one a second): the limit about ten readings in
ROOT = Path(__file__).resolve().parent.parent


def own_memory_cgroup() -> tuple[Path, int, str]:
    """(directory of our own memory cgroup, cgroup version, its path as the kernel prints it)."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory" + path), 1, path
    for line in lines:
        if line.startswith("0::") and "memory" in Path("/sys/fs/cgroup/cgroup.controllers").read_text().split():
            return Path("/sys/fs/cgroup" + line[3:]), 2, line[3:]
    raise OSError("no memory cgroup in /proc/self/cgroup")


class LimitedCgroup:
    """A child memory cgroup of our own with a limit, removed afterwards."""

    def __init__(self, parent: Path, version: int, kernel_parent: str, limit: int) -> None:
        self.name = f"wdcg-{uuid.uuid4().hex[:8]}"
        self.dir = parent / self.name
        self.path = f"{kernel_parent.rstrip('/')}/{self.name}"
        self.dir.mkdir()
        self.version = version
        limit_file = "memory.limit_in_bytes" if version == 1 else "memory.max"
        try:
            (self.dir / limit_file).write_text(str(limit))
        except OSError:
            self.dir.rmdir()
            raise

    def run(self, code: str, *args: str, stdout: int | None = None, stdin: int | None = None) -> subprocess.Popen:
        """A Python child started inside this cgroup."""
        procs = self.dir / "cgroup.procs"
        return subprocess.Popen([sys.executable, "-c", code, *args], stdout=stdout, stdin=stdin,
                                preexec_fn=lambda: procs.write_text(str(os.getpid())))

    def remove(self) -> None:
        for pid in (self.dir / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        for _ in range(100):
            try:
                self.dir.rmdir()
                return
            except OSError:
                time.sleep(0.05)


@pytest.fixture
def cgroups():
    if os.geteuid() != 0:
        pytest.skip("making memory cgroups needs root")
    if not os.access("/dev/kmsg", os.R_OK):
        pytest.skip("/dev/kmsg is not readable here")
    try:
        parent, version, kernel_parent = own_memory_cgroup()
    except OSError as exc:
        pytest.skip(f"no memory cgroup of our own: {exc}")
    if version == 2 and "memory" not in (parent / "cgroup.subtree_control").read_text().split():
        pytest.skip(f"{parent} does not delegate the memory controller to its children")
    made: list[LimitedCgroup] = []

    def make(limit: int) -> LimitedCgroup:
        try:
            cg = LimitedCgroup(parent, version, kernel_parent, limit)
        except OSError as exc:
            pytest.skip(f"cannot make a limited memory cgroup under {parent}: {exc}")
        made.append(cg)
        return cg

    yield make
    for cg in made:
        cg.remove()


# Grows by the touched MiB each line on its stdin asks for, and says so, until the kernel kills it.
FILLER = """import sys
a = []
for line in sys.stdin:
    a.extend(b"\\1" * (1 << 20) for _ in range(int(line)))
    print(len(a), flush=True)
"""
# Holds some memory and waits: a process the kernel should not pick. It says when every page
# of it is touched (charged to its cgroup).
HOLDER = "import sys, time; a = b'\\1' * (int(sys.argv[1]) << 20); print('holding', flush=True); time.sleep(600)"


def hold(cg: LimitedCgroup, mib: int) -> subprocess.Popen:
    """A holder of `mib` MiB in `cg`, returned once it holds them."""
    holder = cg.run(HOLDER, str(mib), stdout=subprocess.PIPE)
    assert holder.stdout is not None
    ready, _, _ = select.select([holder.stdout], [], [], 30)
    said = holder.stdout.readline() if ready else b""
    holder.stdout.close()  # it says nothing more
    assert said == b"holding\n", f"the holder of {mib} MiB in {cg.path} never held it"
    return holder


def config(tmp: Path, include: str) -> str:
    return f"""
host: cgroup-host
database: sqlite:///{tmp}/history.db
kernel_log:
  source: kmsg
processes:
  interval: 1s
cgroups:
  interval: 1s
  include: ["{include}"]
  warn_percent: 60
  crit_percent: 90
  for: 0s
  horizon: 60s
  window: 30s
notifications:
  group_wait: 0s
"""


def query(db: Path, sql: str, *args) -> list[sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()


def readings(db: Path, path: str, counted_kill: bool = False) -> int:
    """How many readings of the cgroup at `path` the daemon stored (that saw a kill)."""
    sql = "SELECT COUNT(*) AS n FROM cgroup_samples WHERE path = ? AND resolution = 0"
    return query(db, sql + (" AND oom_kill >= 1" if counted_kill else ""), path)[0]["n"]


def working_set(db: Path, path: str) -> int:
    """The working set in the daemon's latest stored reading of the cgroup at `path`."""
    sql = "SELECT working_set_bytes FROM cgroup_samples WHERE path = ? AND resolution = 0 ORDER BY time DESC LIMIT 1"
    return query(db, sql, path)[0]["working_set_bytes"]


def fill_in_step_with_readings(db: Path, box: LimitedCgroup) -> subprocess.Popen:
    """Start a filler in `box` and grow it by STEP each time the daemon has stored a reading of
    the last step, until the kernel kills it: the daemon sees the same steady growth per
    reading however fast or slow this machine runs either of them."""
    filler = box.run(FILLER, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert filler.stdin is not None and filler.stdout is not None
    seen = working_set(db, box.path)
    while True:
        count = readings(db, box.path)
        try:
            filler.stdin.write(b"%d\n" % (STEP // MiB))
            filler.stdin.flush()
        except BrokenPipeError:
            break
        if not filler.stdout.readline():
            break  # killed while growing
        # A stored reading that shows the step, or (should reclaim have taken file pages the
        # while) the second reading stored since: it began after the step.
        def stored(seen: int = seen, count: int = count) -> bool:
            return working_set(db, box.path) >= seen + STEP // 2 or readings(db, box.path) >= count + 2

        assert wait_until(stored, timeout=60), "the daemon stored no reading of the cgroup"
        seen = working_set(db, box.path)
    with contextlib.suppress(BrokenPipeError):
        filler.stdin.close()
    filler.stdout.close()
    return filler


def test_warning_and_forecast_come_before_the_kill_and_name_the_victim(tmp_path, cgroups):
    box = cgroups(LIMIT)
    outside = cgroups(32 * MiB)  # limited and above the warning level, but not included
    db = tmp_path / "history.db"
    daemon = Daemon(tmp_path, config(tmp_path, box.path))
    try:
        daemon.wait_message("READY=1")
        holder = hold(box, 6)
        other = hold(outside, 12)
        # A reading begun after the holders hold their memory (the second one committed from
        # now): the forecast's history starts before the filler, the outside cgroup is at its level.
        before = readings(db, box.path)
        assert wait_until(lambda: readings(db, box.path) >= before + 2, timeout=30), daemon.log_text()
        filler = fill_in_step_with_readings(db, box)
        assert filler.wait(timeout=60) == -9, "the kernel did not kill the filler"
        kills = wait_until(lambda: query(db, "SELECT * FROM kills WHERE pid = ?", filler.pid), timeout=60)
        # Two readings that counted the kill: the counter cross-check's first look and its second
        # (a shortfall seen twice in a row is alerted), each in the transaction that stored it.
        assert wait_until(lambda: readings(db, box.path, counted_kill=True) >= 2, timeout=30), daemon.log_text()
        assert holder.poll() is None and other.poll() is None, "only the filler may die"
        holder.kill()
        other.kill()
    finally:
        assert daemon.stop() == 0
    assert kills and len(kills) == 1, daemon.log_text()
    kill = kills[0]
    assert kill["memcg"] == box.path and kill["cgroup_oom"] == 1

    alerts = query(db, "SELECT * FROM alerts WHERE key LIKE 'cgroup%' ORDER BY started_at")
    by_kind = {}
    for row in alerts:
        by_kind.setdefault(row["kind"], row)
    forecast = by_kind.get("cgroup.forecast")
    warning = by_kind.get("cgroup.warning") or by_kind.get("cgroup.critical")
    assert forecast is not None and warning is not None, [dict(r) for r in alerts]
    kill_time = _time(kill["time"])
    for alert in (forecast, warning):
        data = json.loads(alert["data"])
        assert data["cgroup"] == box.path
        assert _time(alert["started_at"]) < kill_time
        assert data["victims"][0]["pid"] == filler.pid, data["victims"]
        assert holder.pid in [v["pid"] for v in data["victims"]]
    # How early, in bytes: the reading that raised the forecast left room for two more steps of
    # the filler at least, so two more readings (and their alerts) before the kill.
    (raised,) = query(db, "SELECT working_set_bytes FROM cgroup_samples WHERE path = ? AND resolution = 0 "
                          "AND time = ?", box.path, forecast["started_at"])
    room = LIMIT - raised["working_set_bytes"]
    print(f"\nforecast with {room / MiB:.1f} MiB left below the limit ({room / STEP:.1f} steps of the filler), "
          f"{(kill_time - _time(forecast['started_at'])).total_seconds():.1f} s before the kill; "
          f"warning {(kill_time - _time(warning['started_at'])).total_seconds():.1f} s before")
    assert room >= 2 * STEP
    assert f"pid {filler.pid}" in forecast["summary"]

    # The kill links to the alert before it, and `show` tells the story.
    link = json.loads(kill["details"])["cgroup_alert"]
    assert link["cgroup"] == box.path and link["victim"]["pid"] == filler.pid
    assert link["alert_id"] in {row["id"] for row in alerts}
    shown = subprocess.run([sys.executable, "-m", "watchdog_oom", "-c", str(tmp_path / "config.yaml"), "show",
                            str(kill["id"])], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "Warned before" in shown.stdout and f"pid {filler.pid}" in shown.stdout, shown.stdout + shown.stderr
    print(shown.stdout[shown.stdout.index("Warned before"):].split("\n\n")[0])

    # The kernel's oom_kill counter agrees with the one kill recorded: nothing unlogged.
    assert not query(db, "SELECT * FROM alerts WHERE kind = 'oom.unlogged' AND data LIKE ?", f"%{box.path}%")
    state = json.loads(query(db, "SELECT cursor FROM cursors WHERE source = 'cgroups:oom_kill'")[0]["cursor"])
    counter0, recorded0, reported, suspect = state["cgroups"][box.path]
    assert (reported, suspect) == (0, 0)
    # Nothing about the cgroup outside the filter.
    assert not query(db, "SELECT * FROM alerts WHERE data LIKE ?", f"%{outside.name}%")
    assert not query(db, "SELECT * FROM cgroup_samples WHERE path LIKE ?", f"%{outside.name}%")
    # Its readings are in the history, up to the limit.
    kept = query(db, "SELECT working_set_percent FROM cgroup_samples WHERE path = ?", box.path)
    assert len(kept) >= 5 and max(r["working_set_percent"] for r in kept) > 80


def _time(text: str):
    from datetime import datetime, timezone

    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def test_cgroups_command_says_what_the_kernel_files_say(tmp_path, cgroups):
    box = cgroups(LIMIT)
    holder = hold(box, 20)
    try:
        cfg = tmp_path / "config.yaml"
        cfg.write_text(f'database: sqlite:///{tmp_path}/history.db\ncgroups:\n  include: ["{box.path}"]\n')
        done = subprocess.run([sys.executable, "-m", "watchdog_oom", "-c", str(cfg), "cgroups", "--format", "json"],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        files = {name: (box.dir / name).read_text() for name in os.listdir(box.dir) if name.startswith("memory.")
                 and name in ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat", "memory.failcnt",
                              "memory.oom_control", "memory.max", "memory.current", "memory.events")}
    finally:
        holder.kill()
    (row,) = json.loads(done.stdout)["cgroups"]
    stat = dict(line.split() for line in files["memory.stat"].splitlines())
    if box.version == 1:
        limit, usage = int(files["memory.limit_in_bytes"]), int(files["memory.usage_in_bytes"])
        inactive = int(stat["total_inactive_file"])
        oom_kill = int(dict(line.split() for line in files["memory.oom_control"].splitlines())["oom_kill"])
        assert row["failcnt"] == int(files["memory.failcnt"])
    else:
        limit, usage = int(files["memory.max"]), int(files["memory.current"])
        inactive = int(stat["inactive_file"])
        oom_kill = int(dict(line.split() for line in files["memory.events"].splitlines())["oom_kill"])
    assert row["path"] == box.path and row["limit_bytes"] == limit == LIMIT
    # The holder is idle, so the figures move by little more than a page between the two reads.
    assert abs(row["usage_bytes"] - usage) < MiB
    assert abs(row["working_set_bytes"] - (usage - inactive)) < MiB
    assert row["working_set_percent"] == pytest.approx(row["working_set_bytes"] * 100 / limit, abs=0.01)
    assert row["oom_kill"] == oom_kill == 0
    assert row["victim"]["pid"] == holder.pid and row["victim"]["rss_kb"] > 20 * 1024
    assert not (tmp_path / "history.db").exists()

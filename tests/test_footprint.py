"""What the daemon and a read-only command load: only what their configuration and command use.

A memory watchdog runs on hosts short of memory, and every module imported is code held
for the daemon's lifetime (benchmarks/bench_footprint.py measures the whole). These tests
run the real daemon and the real command line in a child process and look at its
sys.modules: the idle daemon once READY=1 is sent, the command once it has answered.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import HttpSink
from tests.test_notify_webhook import SECRET
from watchdog_oom.cli import _plain_run, build_parser
from watchdog_oom.notify.webhook import verify_signature

ROOT = Path(__file__).resolve().parent.parent

# Runs `watchdog-oom ARGV` in this process; a `run` daemon is stopped (SIGTERM) once it
# said READY=1. Prints the modules loaded as one JSON list on the last line of stdout.
RUN_AND_LIST = """
import json, os, signal, socket, sys, threading
argv, notify = json.loads(sys.argv[1]), sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(notify)
os.environ["NOTIFY_SOCKET"] = notify
seen = []

held = {"tables": [], "cached": [], "patterns": [], "compiled late": []}

def patterns():  # see test_the_idle_daemon_compiles_only_the_patterns_every_line_may_need
    import re
    from watchdog_oom.lazy_regex import _FirstUse
    found = {}
    for name, module in sorted(sys.modules.items()):
        for key, value in list(vars(module).items()) if name.startswith("watchdog_oom") else ():
            for item in value if type(value) is tuple else (value,):
                for one in item if type(item) is tuple else (item,):
                    if isinstance(one, re.Pattern) or (isinstance(one, _FirstUse) and "_compiled" in vars(one)):
                        found.setdefault(id(one), (f"{name}.{key}", isinstance(one, _FirstUse)))
    for where, late in found.values():
        held["compiled late" if late else "patterns"].append(where)

def watch():
    while b"READY=1" not in sock.recv(4096):
        pass
    seen.extend(sys.modules)
    patterns()
    if "sqlalchemy.sql.schema" in sys.modules:  # see test_the_idle_daemon_holds_no_table_nor_compiled_statement
        import gc
        from sqlalchemy.engine import Engine
        table = sys.modules["sqlalchemy.sql.schema"].Table
        for o in gc.get_objects():
            if isinstance(o, table):
                held["tables"].append(o.name)
            elif isinstance(o, Engine) and o._compiled_cache:
                held["cached"].extend(" ".join(str(v).split()) for v in o._compiled_cache.values())
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=watch, daemon=True).start()
from watchdog_oom.cli import main
code = main(argv, stdout=open(os.devnull, "w"))
print(json.dumps(held))
print(json.dumps(sorted(seen or sys.modules)))
sys.exit(code)
"""



def modules_of(tmp_path: Path, *argv: str) -> set[str]:
    """The modules a `watchdog-oom ARGV` process had loaded (a daemon: when it was ready)."""
    return set(json.loads(run_and_list(tmp_path, *argv)[-1]))


def run_and_list(tmp_path: Path, *argv: str) -> list[str]:
    """RUN_AND_LIST's last lines: what a daemon held when it was ready (the schema's Tables,
    the statements compiled and cached), and its modules."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("WATCHDOG_OOM_CONFIG", None)
    out = subprocess.run([sys.executable, "-c", RUN_AND_LIST, json.dumps(argv),
                          str(tmp_path / f"notify-{time.monotonic_ns()}")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()[-2:]


def config(tmp_path: Path) -> Path:
    log = tmp_path / "kern.log"
    log.write_text("")
    path = tmp_path / "config.yaml"
    path.write_text(f"""
database: sqlite:///{tmp_path}/history.db
kernel_log: {{source: file, path: {log}, tracepoints: "off"}}
notifications:
  channels:
    - {{name: hook, type: webhook, url: "http://127.0.0.1:9/hook"}}
    - {{name: chat, type: slack, webhook_url: "http://127.0.0.1:9/services/T0/B0/x"}}
""")
    return path


def loaded(modules: set[str], *names: str) -> list[str]:
    """Those of `names` (a name ending in '.' stands for its submodules) that are loaded."""
    return sorted(m for m in modules for n in names if m == n or (n.endswith(".") and m.startswith(n)))


# The senders and the channels' code: loaded when a row first falls due (daemon/sender.py) and
# at a channel's first send (notify.Deferred), not at start.
CHANNEL_CODE = ("watchdog_oom.sending", "watchdog_oom.store.claims", "watchdog_oom.notify.webhook",
                "watchdog_oom.notify.slack", "watchdog_oom.notify.render", "watchdog_oom.notify.transport",
                "http.client", "urllib.request")


def test_the_idle_daemon_loads_only_what_its_configuration_uses(tmp_path):
    modules = modules_of(tmp_path, "-c", str(config(tmp_path)), "run")
    # What it was configured for is there: the observation is of the real thing.
    assert {"watchdog_oom.sources.logfile", "watchdog_oom.notify", "watchdog_oom.dispatch"} <= modules
    assert loaded(modules,
                  # no message sent yet: neither the channels' code, the renderer nor the HTTP client
                  *CHANNEL_CODE,
                  # the retention job's code: loaded at its first run, a minute after the start
                  "watchdog_oom.daemon.retention",
                  # no metrics endpoint, the schema at its head
                  "requests", "urllib3", "prometheus_client", "alembic", "watchdog_oom.metrics",
                  "watchdog_oom.store.counts",
                  # the other sources; the tracepoints (off) and their audit
                  "watchdog_oom.sources.kmsg", "watchdog_oom.sources.journal", "watchdog_oom.sources.tracepoint",
                  "watchdog_oom.daemon.tracer", "watchdog_oom.daemon.adjwatch", "watchdog_oom.trace_events",
                  "watchdog_oom.store.tracing",
                  # the schema as the migrations own it (the migration runs in a child process)
                  "watchdog_oom.store.schema",
                  # a channel type not configured; signing (no webhook secret configured)
                  "watchdog_oom.notify.email", "smtplib", "hmac",
                  # its command line is read without a parser, nor what only the other commands share
                  "argparse", "gettext", "watchdog_oom.cli.options", "watchdog_oom.cli.common",
                  # the history's read side: the daemon's store is a Recorder, not a Store
                  "watchdog_oom.store.history", "watchdog_oom.store.queries", "watchdog_oom.store.charts",
                  "watchdog_oom.stored_history",
                  # the import command's batches and rows (the kill writer's are batch.py's and rows.py's)
                  "watchdog_oom.store.batch_import", "watchdog_oom.store.rows_import",
                  # the __init__ dataclass would have written, made for a call that does not bind
                  "watchdog_oom.valueclass_exact",
                  # migrating (in a child process) and repairing the database
                  "watchdog_oom.store.upkeep", "watchdog_oom.daemon.recovery",
                  # the rarer notices' outbox rows (a gap, an unreadable line, a kill unstored, a
                  # first start's backlog); what a SIGHUP runs
                  "watchdog_oom.notices", "watchdog_oom.daemon.reload",
                  # what only commands use: the file scanner, a whole export's readers and the
                  # enclosures' (JSON, CSV, quoted-printable: import's lenient Decoder), the report,
                  # the other commands, printing a config; HTML entities (for pasted logs); old logs'
                  # decompressors; ctypes (the log file is looked at, with no inotify through it)
                  "ctypes", "watchdog_oom.parse.scan", "watchdog_oom.parse.exports", "watchdog_oom.parse.enclosures",
                  # the lenient parser's fast lane (import's): the live sources' strict parser never takes it
                  "watchdog_oom.parse.lane", "watchdog_oom.parse.express",
                  # the recognisers' sample lines (the tests' evidence; the recognisers are loaded)
                  "watchdog_oom.parse.sample_lines",
                  # what is read of a cgroup with a limit, and its rules: no cgroup here has one
                  "watchdog_oom.cgroup_limits", "watchdog_oom.rules.cgroup_limits",
                  "gzip", "watchdog_oom.report",
                  "watchdog_oom.config.render",
                  "watchdog_oom.cli.check", "watchdog_oom.cli.history", "watchdog_oom.cli.import_logs",
                  "watchdog_oom.cli.systemd", "watchdog_oom.cli.admin", "watchdog_oom.cli.mute",
                  "watchdog_oom.cli.cgroups", "watchdog_oom.cli.notify_test", "html.entities",
                  # the commands' tables, JSON and CSV (the log formatter's safe() is visible.py's)
                  "watchdog_oom.textout") == []


# Every module the idle daemon of `config()` loads beyond the library floor's (the modules of
# a Python that imports pyyaml, SQLAlchemy Core and APScheduler, and what RUN_AND_LIST itself
# imports): pinned, so that a change that pulls a module into the idle daemon (the CLI, the
# HTTP client, the report, ctypes, Alembic...) fails here, naming it. A module the idle
# daemon must load is added here, in the same commit, with the figure of
# benchmarks/bench_footprint.py in its message; one it need not load is imported where it
# is used instead (on a configuration that uses it, or when its command runs).
IDLE_DAEMON_MODULES = frozenset({
    # SQLite, and SQLAlchemy's dialect for it (its package imports the async drivers too)
    "_sqlite3", "sqlite3", "sqlite3.dbapi2", "sqlalchemy.connectors", "sqlalchemy.connectors.asyncio",
    "sqlalchemy.dialects._typing", "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.sqlite.aiosqlite",
    "sqlalchemy.dialects.sqlite.base", "sqlalchemy.dialects.sqlite.dml", "sqlalchemy.dialects.sqlite.json",
    "sqlalchemy.dialects.sqlite.pysqlcipher", "sqlalchemy.dialects.sqlite.pysqlite",
    # the jobs' trigger and the thread pool APScheduler's executor starts
    "apscheduler.triggers.interval", "concurrent.futures.thread",
    "watchdog_oom", "watchdog_oom.bounds", "watchdog_oom.cgroups", "watchdog_oom.clock", "watchdog_oom.detect",
    "watchdog_oom.dispatch", "watchdog_oom.model", "watchdog_oom.processes", "watchdog_oom.procfs",
    "watchdog_oom.redact", "watchdog_oom.stored", "watchdog_oom.valueclass",
    # the loader of the package's own modules without docstrings and annotations
    "watchdog_oom.lean",
    # the names a module hands out from modules loaded at their first use (PEP 562)
    "watchdog_oom.forward",
    # the patterns a rare line shape or pasted text needs, compiled at their first use
    "watchdog_oom.lazy_regex",
    # the log formatter's terminal-safe text (the commands' tables, JSON and CSV are textout's)
    "watchdog_oom.visible",
    # the command line: `run` alone, read without argparse
    "watchdog_oom.cli", "watchdog_oom.cli.run",
    # the configuration, read again on SIGHUP
    "watchdog_oom.config", "watchdog_oom.config.declare", "watchdog_oom.config.reader",
    "watchdog_oom.config.schema", "watchdog_oom.config.values",
    "watchdog_oom.daemon", "watchdog_oom.daemon.cgroups", "watchdog_oom.daemon.checks", "watchdog_oom.daemon.daemon",
    "watchdog_oom.daemon.database", "watchdog_oom.daemon.follower", "watchdog_oom.daemon.jobs",
    "watchdog_oom.daemon.outage", "watchdog_oom.daemon.pipeline", "watchdog_oom.daemon.recording",
    "watchdog_oom.daemon.sdnotify", "watchdog_oom.daemon.sender",
    "watchdog_oom.daemon.shared", "watchdog_oom.daemon.signals", "watchdog_oom.daemon.writer",
    # the channels' registry, ChannelError and the secrets' masks; each channel's code (its module,
    # the renderer, the HTTP client) waits for its first message (notify.Deferred)
    "watchdog_oom.notify",
    # the parser, loaded at start so that one that cannot be loaded is said at start (review R8)
    "watchdog_oom.parse", "watchdog_oom.parse.anchors", "watchdog_oom.parse.evidence",
    "watchdog_oom.parse.kernel", "watchdog_oom.parse.rejoin", "watchdog_oom.parse.report", "watchdog_oom.parse.shapes",
    "watchdog_oom.parse.unread", "watchdog_oom.parse.userspace", "watchdog_oom.parse.values",
    "watchdog_oom.parse.wrappers",
    "watchdog_oom.rules", "watchdog_oom.rules.alerts", "watchdog_oom.rules.cgroups", "watchdog_oom.rules.crosscheck",
    "watchdog_oom.rules.enrich",
    # the configured source (a log file) and the tracefs look that rules the tracepoints out
    "watchdog_oom.sources", "watchdog_oom.sources.base", "watchdog_oom.sources.logfile",
    "watchdog_oom.sources.tracefs",
    # the write side of the store; the kill batch writer, loaded at start (a526448)
    "watchdog_oom.store", "watchdog_oom.store.batch", "watchdog_oom.store.engine", "watchdog_oom.store.health",
    "watchdog_oom.store.kills", "watchdog_oom.store.migrate", "watchdog_oom.store.outbox",
    "watchdog_oom.store.recorder", "watchdog_oom.store.records", "watchdog_oom.store.rows",
    "watchdog_oom.store.serial", "watchdog_oom.store.tables", "watchdog_oom.store.writes",
})

def test_a_daemon_whose_database_is_at_the_schemas_head_loads_no_migration_code(tmp_path):
    cfg = str(config(tmp_path))
    assert "watchdog_oom.store.migrate" in modules_of(tmp_path, "-c", cfg, "run")  # a first start migrates
    # the stored revision is read first (one query): the next start, at the head, does not
    assert loaded(modules_of(tmp_path, "-c", cfg, "run"), "watchdog_oom.store.migrate", "alembic") == []


FLOOR_AND_LIST = """
import json, os, signal, socket, sys, threading
import yaml, sqlalchemy, apscheduler.schedulers.background
print(json.dumps(sorted(sys.modules)))
"""


def test_the_idle_daemon_loads_exactly_the_modules_pinned_here(tmp_path):
    modules = modules_of(tmp_path, "-c", str(config(tmp_path)), "run")
    out = subprocess.run([sys.executable, "-c", FLOOR_AND_LIST], capture_output=True, text=True, timeout=120,
                         check=True)
    beyond_floor = modules - set(json.loads(out.stdout))
    new = sorted(beyond_floor - IDLE_DAEMON_MODULES)
    assert not new, (f"the idle daemon now loads {', '.join(new)}: import it where it is used, or pin it in "
                     "IDLE_DAEMON_MODULES with its cost (benchmarks/bench_footprint.py)")
    gone = sorted(IDLE_DAEMON_MODULES - beyond_floor)
    assert not gone, f"the idle daemon no longer loads {', '.join(gone)}: take it out of IDLE_DAEMON_MODULES"


def test_the_idle_daemon_holds_no_table_nor_compiled_statement(tmp_path):
    # Its statements run on store.tables' lightweight clauses; the schema's Tables (141
    # Columns, 22 indexes: 0.41 MiB traced) are made where only they serve: the migration
    # (a child process), Alembic, a PostgreSQL store's batch insert.
    # What it runs on a clock (its samples, checks, outbox looks) or once at start is
    # compiled at each run (store/engine.py UNCACHED), not held in SQLAlchemy's compiled
    # cache, some 20 kB a statement: only statements that answer an event are kept there.
    held, modules = run_and_list(tmp_path, "-c", str(config(tmp_path)), "run")
    assert "watchdog_oom.store.writes" in json.loads(modules)  # the daemon was ready, its store open
    held = json.loads(held)
    assert (held["tables"], held["cached"]) == ([], [])


# The regular expressions of ours the idle daemon of `config()` holds compiled (module globals,
# also in tuples): those every line of a live source may go through. One that only a rare line
# shape or pasted text needs is compiled at its first use (lazy_regex.py), and none of those
# is compiled yet. A change that compiles more at start fails here: compile it at its first use,
# or raise the number in the same commit, with the figure of benchmarks/bench_footprint.py.
IDLE_DAEMON_PATTERNS = 40


def test_the_idle_daemon_compiles_only_the_patterns_every_line_may_need(tmp_path):
    held, _ = run_and_list(tmp_path, "-c", str(config(tmp_path)), "run")
    held = json.loads(held)
    assert held["compiled late"] == []
    assert len(held["patterns"]) <= IDLE_DAEMON_PATTERNS, f"compiled at start: {held['patterns']}"


def test_a_read_only_command_loads_neither_the_daemon_nor_the_other_commands(tmp_path):
    cfg = str(config(tmp_path))
    assert modules_of(tmp_path, "-c", cfg, "db", "upgrade") >= {"alembic"}  # the schema, made once
    modules = modules_of(tmp_path, "-c", cfg, "history", "kills", "--limit", "20")
    assert "watchdog_oom.cli.history" in modules
    assert loaded(modules, "watchdog_oom.daemon", "watchdog_oom.daemon.", "apscheduler", "alembic", "requests",
                  "watchdog_oom.sources", "watchdog_oom.parse", "watchdog_oom.report", "watchdog_oom.config.render",
                  "watchdog_oom.cli.run", "watchdog_oom.cli.check", "watchdog_oom.cli.import_logs",
                  "watchdog_oom.cli.systemd", "watchdog_oom.cli.admin", "watchdog_oom.cli.mute") == []


# Runs the daemon of `config()` with its channels' URLs replaced, and a kill appended to its
# log once it said READY=1; stopped by the test (SIGTERM) once the messages arrived. Prints
# the modules loaded when it was ready, then those loaded at its end.
RUN_KILL_AND_LIST = """
import json, os, socket, sys, threading
argv, notify, log = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(notify)
os.environ["NOTIFY_SOCKET"] = notify
seen = []

def watch():
    while b"READY=1" not in sock.recv(4096):
        pass
    seen.extend(sys.modules)
    with open(log, "a") as out:
        out.write("2026-12-07T06:00:00+00:00 bench kernel: Out of memory: Killed process 4242 (mysqld) "
                  "total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB "
                  "oom_score_adj:0\\n")

threading.Thread(target=watch, daemon=True).start()
from watchdog_oom.cli import main
code = main(argv, stdout=open(os.devnull, "w"))
print(json.dumps(sorted(seen)))
print(json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def run_kill(tmp_path: Path, config_text: str, script: str = RUN_KILL_AND_LIST) -> tuple[list, int, str, str]:
    """Runs `script` (RUN_KILL_AND_LIST, or a variant of it) as a daemon on `config_text`, its
    channels aimed at an HttpSink that must receive two requests: the requests, and the
    daemon's exit code, stdout and stderr once it was stopped."""
    path = config(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("WATCHDOG_OOM_CONFIG", None)
    with HttpSink() as sink:
        path.write_text(config_text.replace("http://127.0.0.1:9", sink.url))
        child = subprocess.Popen([sys.executable, "-c", script, json.dumps(["-c", str(path), "run"]),
                                  str(tmp_path / "notify"), str(tmp_path / "kern.log")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            requests = sink.wait_for(2)
        finally:
            child.send_signal(signal.SIGTERM)
            out, err = child.communicate(timeout=60)
    return requests, child.returncode, out, err


def test_a_kill_is_notified_through_channels_loaded_at_their_first_send(tmp_path):
    # The idle daemon holds no channel code (notify.Deferred); the first kill loads it, and both
    # channels' messages arrive, the webhook's signed.
    text = config(tmp_path).read_text()
    text = text.replace('url: "http://127.0.0.1:9/hook"', 'url: "http://127.0.0.1:9/hook", secret: "' + SECRET + '"')
    requests, returncode, out, err = run_kill(tmp_path, text + "  group_wait: 0s\nhost: bench\n")
    assert returncode == 0, err
    ready, at_end = (set(json.loads(line)) for line in out.splitlines()[-2:])
    assert loaded(ready, *CHANNEL_CODE) == []
    assert {"watchdog_oom.sending", "watchdog_oom.notify.webhook", "watchdog_oom.notify.slack",
            "watchdog_oom.notify.transport"} <= at_end
    # The kill was read by the daemon's own parser, which reads no enclosure (import's Decoder does)
    assert loaded(at_end, "watchdog_oom.parse.enclosures", "watchdog_oom.parse.exports") == []
    by_path = {r.path: r for r in requests}
    hook, chat = by_path["/hook"], by_path["/services/T0/B0/x"]
    assert verify_signature(SECRET, hook.headers, hook.body)
    assert json.loads(hook.body)["data"]["kills"][0]["pid"] == 4242
    assert "mysqld" in json.loads(chat.body)["text"]


# As if the package on disk could not be imported from (being upgraded) when the first row
# falls due: the senders' module is refused until the daemon has said so once.
UNTIL_SAID = """
import logging, sys
sys.modules["watchdog_oom.sending"] = None

class Unblock(logging.Handler):
    def emit(self, record):
        if "the senders could not be loaded" in record.getMessage():
            sys.modules.pop("watchdog_oom.sending", None)

logging.getLogger("watchdog_oom").addHandler(Unblock())
"""


def test_a_notification_waits_in_the_outbox_while_the_senders_cannot_be_loaded(tmp_path):
    main = "from watchdog_oom.cli import main"
    text = config(tmp_path).read_text() + "  group_wait: 0s\nhost: bench\n"
    requests, returncode, out, err = run_kill(tmp_path, text, RUN_KILL_AND_LIST.replace(main, UNTIL_SAID + main))
    assert returncode == 0, err
    assert "outbox: the senders could not be loaded (ModuleNotFoundError" in err
    assert "the senders are loaded; the notifications that waited go out" in err
    assert sorted(r.path for r in requests) == ["/hook", "/services/T0/B0/x"]


SEND_AND_LIST = """
import json, sys
from watchdog_oom.notify.slack import SlackChannel
from watchdog_oom.notify.webhook import WebhookChannel
from tests.test_notify_webhook import SECRET, kill_notification
url = sys.argv[1]
print(WebhookChannel("pager", url + "/hook", secret=SECRET).send(kill_notification()),
      SlackChannel("chat", url + "/services/T0/B0/x").send(kill_notification()))
print(json.dumps(sorted(sys.modules)))
"""


def test_a_notification_is_sent_with_the_standard_librarys_http_client(tmp_path):
    # requests with urllib3 and its charset detection held some 6 MiB more for the
    # daemon's remaining life once it had sent one notification.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with HttpSink() as sink:
        out = subprocess.run([sys.executable, "-c", SEND_AND_LIST, sink.url], capture_output=True, text=True,
                             timeout=60, env=env, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert len(sink.wait_for(2)) == 2
    sent, modules = out.stdout.splitlines()[-2:]
    assert sent == "HTTP 200 HTTP 200"
    assert loaded(set(json.loads(modules)), "requests", "urllib3", "charset_normalizer", "chardet") == []


# `run`'s plain command lines, which the daemon reads without argparse, and lines it
# leaves to argparse (an abbreviation, help, a mistake, a value argparse reads otherwise).
PLAIN = [["run"], ["-c", "x.yaml", "run"], ["--config", "x", "run", "--log-level", "debug"],
         ["--config=a=b", "run", "--log-level=error"], ["-c=a", "run"], ["-c", "a", "-c", "b", "run"],
         ["-c", "run", "run"], ["run", "--log-level", "info", "--log-level", "warning"]]
LEFT_TO_ARGPARSE = [["run", "--help"], ["run", "-h"], ["--version", "run"], ["--conf", "x", "run"],
                    ["run", "--log", "debug"], ["-cX", "run"], ["--config=", "run"], ["run", "--log-level", "loud"],
                    ["run", "--log-level", "loud", "--log-level", "info"],
                    ["run", "--log-level=x=y", "--log-level=info"],
                    ["run", "x"], ["run", "-c", "x"], ["-c", "-x", "run"], ["run", "--log-level"], ["run", "--"]]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_the_daemons_plain_command_line_reads_as_argparse_reads_it(argv):
    with contextlib.redirect_stdout(io.StringIO()):
        assert vars(_plain_run(argv)) == vars(build_parser("run").parse_args(argv))


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=" ".join)
def test_any_other_command_line_of_the_daemon_is_left_to_argparse(argv):
    assert _plain_run(argv) is None


def test_a_forwarded_name_loads_its_module_when_first_asked_for_and_an_unknown_name_is_refused():
    # forward.py: dispatch hands out sending.py's names without loading it at import.
    probe = ("import sys, watchdog_oom.dispatch as d\n"
             "before = 'watchdog_oom.sending' in sys.modules\n"
             "senders = d.Senders\n"
             "try:\n    d.no_such_name\nexcept AttributeError as e:\n    refused = str(e)\n"
             "print(before, senders.__module__, 'watchdog_oom.sending' in sys.modules, refused)")
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert out == ("False watchdog_oom.sending True "
                   "module 'watchdog_oom.dispatch' has no attribute 'no_such_name'")

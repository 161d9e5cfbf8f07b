"""`import`'s readers pack a batch of kills straight from the parser's (import_wire.Packer):
the INSERT's parameters and each record's JSON text in one pass, no row made; a batch the
recording process does not take so (not all new, PostgreSQL, the table format) is made
rows again from them (Packed.rows). Differential, on generated logs mixing kinds (real
captures plain and wrapped or pasted, user-space killers, interleaved reports, texts past
their caps, syslog dates without a year, times around changes of offset, in a zone that
has them): the one pass gives what the rows' way gives (the way of a batch the one pass
cannot make), and the command stores and prints the same through both, new kills and
kills recorded already, on both engines."""

from __future__ import annotations

import io
import json
import random
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pgserver
import pytest
from conftest import ENGINES, _migrated_sqlite
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from test_import_parts import _piece
from wrapping import WRAPPERS

from watchdog_oom.cli import import_logs, import_wire, main
from watchdog_oom.cli.import_wire import Packer, pack
from watchdog_oom.parse import iter_kills
from watchdog_oom.store import Store
from watchdog_oom.store.rows import TIME
from watchdog_oom.store.tables import kills as kills_table

DATA = Path(__file__).parent / "data" / "oom_logs"
CAPTURES = sorted(DATA.glob("*.log"))
KINDS = ["minimal", "interleaved", "noise", "earlyoom", "oomd", "selection", "capture", "reaper", "wrapped",
         "long", "changes", "rfc5424"]
FIGURES = "total-vm:8806332kB, anon-rss:6848016kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:14360kB"


def _kind(kind: str, n: int, rng: random.Random) -> str:
    """A piece of log of `kind`: test_import_parts' pieces and these."""
    if kind == "wrapped":  # a capture as pasted or written by another tool
        capture = CAPTURES[n % len(CAPTURES)].read_text(encoding="utf-8").splitlines()
        return WRAPPERS[rng.choice(sorted(WRAPPERS))](capture).rstrip("\n") + "\n"
    if kind == "long":  # texts past their caps: a cgroup path, a command name in the extras
        path = "/system.slice/" + "a" * 5000 + ".service"
        return (f"Jun  3 10:00:{n % 60:02d} web-01 kernel: [ {n}.000001] oom-kill:constraint=CONSTRAINT_MEMCG,"
                f"nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg={path},task_memcg={path},task=x,pid={n},"
                f"uid=0\nJun  3 10:00:{n % 60:02d} web-01 kernel: [ {n}.000002] Memory cgroup out of memory: "
                f"Killed process {n} ({'y' * 15}) {FIGURES} oom_score_adj:0 {'z' * 9000}\n")
    if kind == "changes":  # syslog times in hours an offset changes in (Europe/Berlin, 2024), and the new year
        stamp = rng.choice(["Mar 31 01:59:59", "Mar 31 02:30:00", "Mar 31 03:00:01", "Oct 27 02:30:00",
                            "Oct 27 01:30:00", "Oct 27 03:00:00", "Dec 31 23:59:59", "Feb 29 12:00:00"])
        return f"{stamp} web-01 kernel: Out of memory: Killed process {7000 + n} (java) {FIGURES} oom_score_adj:0\n"
    if kind == "rfc5424":  # times with the offsets the log gives
        offset = rng.choice(["Z", "+05:30", "-03:00", "+00:00", "+13:45"])
        return (f"<4>1 2024-06-03T10:{n % 60:02d}:00.{n:06d}{offset} db-{n % 3} kernel - - - Out of memory: "
                f"Killed process {8000 + n} (java) {FIGURES} oom_score_adj:0\n")
    return _piece(kind, n, rng)


def _generated(kinds: list[str], seed: int) -> str:
    rng = random.Random(seed)
    return "".join(_kind(kind, n, rng) for n, kind in enumerate(kinds))


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This host's local time is Europe/Berlin's (offsets +01:00 and +02:00, changing)."""
    if not Path("/usr/share/zoneinfo/Europe/Berlin").exists():
        pytest.skip("no tz database entry for Europe/Berlin")
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _packer(forced: str | None, reference: datetime | None, texts: bool) -> Packer:
    return Packer(forced, "local-host", "import:/var/log/x", reference, texts=texts)


def _the_same(fast: import_wire.Packed, slow: import_wire.Packed) -> None:
    """Two Packed batches give the same rows (times in the same offsets), parameters, texts, hosts."""
    rows = slow.rows()
    assert fast.rows() == rows
    assert [row[TIME] and row[TIME].isoformat() for row in fast.rows()] == [
        row[TIME] and row[TIME].isoformat() for row in rows]
    assert (_inserted(fast), fast.texts, fast.hosts()) == (_inserted(slow), slow.texts, slow.hosts())


def _inserted(packed: import_wire.Packed) -> list[dict[str, object]]:
    """What the INSERT's parameters write, row by row (a column bound NULL or left out alike:
    a batch's tail keeps the columns the batch had values for)."""
    assert packed.names is not None and packed.params is not None
    return [{name: value for name, value in zip(packed.names, values, strict=True) if value is not None}
            for values in packed.params]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=14), seed=st.integers(0, 1000),
       forced=st.sampled_from([None, "fleet-7", "h" * 300]), year=st.booleans(), texts=st.booleans())
def test_one_pass_gives_what_the_rows_way_gives(berlin: None, kinds: list[str], seed: int, forced: str | None,
                                               year: bool, texts: bool) -> None:
    text = _generated(kinds, seed).encode()
    found = list(iter_kills(io.BytesIO(text), "import:/var/log/x", year=2024))
    if not found:
        return
    # --year 2024 (no date moved), or the year the file was last written: early January 2024
    # (a December date moved to 2023)
    reference = None if year else datetime(2024, 1, 2, 3, 4, 5)
    fast = _packer(forced, reference, texts)(found)
    slow = pack(_packer(forced, reference, texts).rows(found), texts=texts)
    assert fast.blob is None and slow.blob is not None  # each made its own way
    _the_same(fast, slow)
    assert (fast.names, fast.params) == (slow.names, slow.params)
    skip = random.Random(seed).randrange(len(found))  # the rest after a handover within it
    _the_same(fast.after(skip), slow.after(skip))
    assert [len(made.after(len(found))) for made in (fast, slow)] == [0, 0]
    assert [made.after(len(found)).rows() for made in (fast, slow)] == [[], []]
    # sent as a reader sends it
    _the_same(pickle_round(fast), slow)


def pickle_round(packed: import_wire.Packed) -> import_wire.Packed:
    import pickle

    return pickle.loads(pickle.dumps(packed, protocol=pickle.HIGHEST_PROTOCOL))


def test_a_batch_the_one_pass_cannot_make_goes_the_rows_way(berlin: None) -> None:
    # A flag not a bool, an extra with a key not text: the rows' way, the same rows.
    found = list(iter_kills(io.BytesIO(_generated(["minimal", "capture", "oomd"], 1).encode()), "import:x",
                            year=2024))
    odd = [found[0].replace(cgroup_oom=0), found[1].replace(extra={**found[1].extra, 7: "seven"})]
    for kills in (odd[:1], odd[1:], [*found, *odd]):
        made = _packer(None, None, True)(kills)
        assert made.blob is not None
        assert made.rows() == pack(_packer(None, None, True).rows(kills), texts=True).rows()


@pytest.fixture(params=ENGINES)
def two_histories(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two migrated histories on each engine in turn."""
    if request.param == "sqlite":
        urls = tuple(f"sqlite:///{tmp_path / name / 'history.db'}" for name in ("one", "two"))
        for url in urls:
            _migrated_sqlite(url, request.getfixturevalue("sqlite_migrated"))
        yield urls  # type: ignore[misc]
        return
    server, template = request.getfixturevalue("pg_server"), request.getfixturevalue("pg_migrated")
    made = [pgserver.fresh_database(server, template=template) for _ in range(2)]
    urls = tuple(next(each) for each in made)
    yield urls  # type: ignore[misc]
    for each in made:
        next(each, None)  # dropped


def _import(tmp_path: Path, url: str, log: Path, fmt: str) -> tuple[str, str]:
    """The command's output and what it said, read in a child (stderr a file)."""
    config = tmp_path / "config.yaml"
    config.write_text(f"host: local-host\ndatabase: {url}\n")
    out = io.StringIO()
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as err:
        assert main(["-c", str(config), "import", "--format", fmt, str(log)], stdout=out, stderr=err) == 0
        err.seek(0)
        return out.getvalue(), err.read()


def _stored(url: str) -> list[tuple[object, ...]]:
    store = Store(url, "local-host")
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(kills_table).order_by(kills_table.c.id)).all()
    finally:
        store.close()
    first = rows[0].id if rows else 0
    return [(row.id - first, *row[1:-1]) for row in rows]  # ids from the first; recorded_at aside


def _from_first_id(out: str) -> list[dict[str, object]]:
    records = json.loads(out)
    first = records[0]["id"] if records else 0
    return [{**record, "id": record["id"] - first} for record in records]


def test_the_command_stores_and_prints_alike_both_ways_on_both_engines(
        berlin: None, two_histories: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One history imports the log as its reader packs it (one pass), the other with every
    # batch made the rows' way; both twice (new kills, then all recorded already), in
    # batches of 7 so that a batch mixes kinds.
    log = tmp_path / "syslog"
    log.write_text(_generated([KINDS[n % len(KINDS)] for n in range(60)], 3))
    monkeypatch.setattr(import_logs, "BATCH", 7)
    results = []
    for url, way in zip(two_histories, ("one pass", "rows"), strict=True):
        if way == "rows":
            monkeypatch.setattr(Packer, "_packed", _refused)
        said = [_import(tmp_path, url, log, "json") for _ in range(2)]
        table = _import(tmp_path, url, log, "table")
        results.append(([_from_first_id(out) for out, _ in said], [note for _, note in said], table, _stored(url)))
    assert results[0] == results[1]
    records = results[0][0][0]
    again = results[0][0][1]  # found again: the ids they have (their times read back in UTC)
    assert len(records) > 40 and [(k["id"], k["pid"]) for k in again] == [(k["id"], k["pid"]) for k in records]
    assert f"{len(records)} kills found, " in results[0][1][0] and ", 0 new, " in results[0][1][1]


def _refused(self: Packer, kills: object) -> None:
    raise TypeError("the rows' way, for the test")

"""Every real excerpt in tests/data, wrapped every way a log reaches `import`, gives its kills.

The wrapped texts are generated here (tests/wrapping.py), never stored. For wrappers that
keep lines whole the kills must be exactly the labelled ones (pid and name); for those that
may cut a kill's own words (terminal and mail wraps, quoted-printable soft breaks) every
kill that `grep 'Kill(ed)? process N'` still finds must be found (its pid: a cut inside a
name may leave where a blank stood unknowable), and nothing else.
"""

from __future__ import annotations

import functools
import io
import json
import re
from pathlib import Path

import pytest
from wrapping import CUTTING, WRAPPERS

from watchdog_oom.parse import iter_kills, parse_text

DATA = Path(__file__).parent / "data"
ENTRIES = [
    (listing.parent / entry["file"], entry)
    for listing in sorted(DATA.rglob("expected.json"))
    for entry in json.loads(listing.read_text(encoding="utf-8"))
    if not entry.get("xfail")
]
GREP = re.compile(r"Kill(?:ed)? process (\d+)")


def _labels(entry: dict) -> list[tuple[int | None, str]]:
    return sorted((kill["pid"], kill["process"]) for kill in [*entry["kills"], *entry.get("userspace_kills", [])])


@functools.cache
def _parsed(name: str, path: Path, year: int | None) -> tuple[str, tuple[tuple[int | None, str], ...]]:
    """An excerpt in wrapper `name`, and the pid and name of each kill parse_text reads in it:
    read once for the tests below (the per-wrapper ones and the recall over them all)."""
    text = WRAPPERS[name](path.read_text(encoding="utf-8").splitlines())
    return text, tuple((kill.pid, kill.process) for kill in parse_text(text, year=year))


def _misses(name: str, read=None) -> list[str]:
    """What reading each wrapped excerpt got wrong (with `read`, else parse_text), one line per excerpt."""
    wrong = []
    for path, entry in ENTRIES:
        if read is None:
            text, kills = _parsed(name, path, entry.get("year"))
        else:
            text = WRAPPERS[name](path.read_text(encoding="utf-8").splitlines())
            kills = tuple((kill.pid, kill.process) for kill in read(text, entry.get("year")))
        labels = _labels(entry)
        got = sorted(kills)
        if name in CUTTING:  # a wrap inside a name can leave it ambiguous ("Web|Content"): pids
            grep = {int(pid) for pid in GREP.findall(text)}
            pids = [pid for pid, _ in got]
            missed = [label for label in labels if label[0] in grep and label[0] not in pids]
            extra = [kill for kill in got if kill[0] not in [pid for pid, _ in labels]]
        else:
            missed = [label for label in labels if label not in got]
            twice = ["(a kill twice)"] if len(got) > len(set(got)) else []
            extra = [kill for kill in got if kill not in labels] + twice
        if missed or extra:
            wrong.append(f"{path.name}: missed {missed}, extra {extra}")
    return wrong


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapped_excerpts_give_their_kills(name: str) -> None:
    assert _misses(name) == []


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapped_excerpts_give_their_kills_through_the_import_scanner(name: str) -> None:
    def scan(text: str, year: int | None) -> list:
        return list(iter_kills(io.BytesIO(text.encode()), "import", year=year, chunk_size=4096))
    assert _misses(name, scan) == []


def test_recall_on_the_wrapper_matrix_is_never_below_grep() -> None:
    found = grepped = total = 0
    for name in WRAPPERS:
        for path, entry in ENTRIES:
            text, kills = _parsed(name, path, entry.get("year"))
            labels = _labels(entry)
            got = {pid for pid, _ in kills}
            grep = {int(pid) for pid in GREP.findall(text)}
            total += len(labels)
            found += sum(1 for pid, _ in labels if pid in got)
            grepped += sum(1 for pid, _ in labels if pid in grep)
    assert found / total >= 0.97
    assert found >= grepped

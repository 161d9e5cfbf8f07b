"""The parser reads every record as it did before its speed work (issue 13), field by field.

tests/parse_corpus.py makes the inputs (every capture raw, wrapped by the tools of
tests/wrapping.py and interleaved with another; random logs of every kernel's wording,
memcg v1/v2 lines, user-space killers, hostile task tables, wrap-cut and JSON lines, two
hosts; review-notes' scanner fuzz) and reads each line by line and through the byte
scanner. tests/data/differential/records.json.gz holds what the parser of main at 57f4c33
read from them: every kill's every field (repr) and the unread lines. A deliberate change of
what the parser reads writes that file again (see parse_corpus.py) and says why.
"""

from __future__ import annotations

import gzip
import json

import pytest
from parse_corpus import GOLDEN, GOLDEN_SEEDS, inputs, records

with gzip.open(GOLDEN, "rt", encoding="utf-8") as _stream:
    BEFORE: dict[str, dict] = json.load(_stream)
NOW = dict(inputs(GOLDEN_SEEDS))
# A capture added to tests/data since the records were written has none: it is read by the
# other parse tests; the generated logs and every capture then present are compared.
NAMES = sorted(set(BEFORE) & set(NOW))


def test_every_stored_record_still_has_its_input() -> None:
    generated = {name for name in BEFORE if name.startswith(("random ", "fuzz "))}
    assert len(generated) == 2 * len(GOLDEN_SEEDS)
    # A capture renamed or removed would drop its records from the comparison unseen.
    missing = sorted(set(BEFORE) - set(NOW))
    assert not missing, (f"{len(missing)} stored records have no input any more ({missing[:5]}): a capture "
                         "renamed or removed? Rename or drop its key in tests/data/differential/records.json.gz "
                         "and say why in the commit")


def _differences(before: list[dict], now: list[dict]) -> list[str]:
    """Each field that differs, kill by kill."""
    if len(before) != len(now):
        return [
            f"{len(before)} kills before, {len(now)} now: {[k.get('pid') for k in before]} "
            f"{[k.get('pid') for k in now]}"
        ]
    return [
        f"kill {n} {field}: before {old[field]} now {new.get(field)}"
        for n, (old, new) in enumerate(zip(before, now, strict=True))
        for field in old
        if old[field] != new.get(field)
    ]


@pytest.mark.parametrize("name", NAMES)
def test_records_are_read_as_before(name: str) -> None:
    before, now = BEFORE[name], records(NOW[name])
    assert not _differences(before["lines"], now["lines"]), _differences(before["lines"], now["lines"])[:10]
    if isinstance(before["stream"], str):
        assert now["stream"] == before["stream"]
    else:
        assert not _differences(before["stream"], now["stream"]), _differences(before["stream"], now["stream"])[:10]
    assert now["unread"] == before["unread"]
    assert now["stream unread"] == before["stream unread"]

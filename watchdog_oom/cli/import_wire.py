"""What `import`'s readers send the recording process, and how it prints the records.

A batch of kills crosses from a reading process to the recording one as a Packed: its
rows (store/rows.py), cut to the history's caps, pickled once where they were read; and,
made there too, what recording them on SQLite and printing them as JSON needs: the
INSERT's parameters (store.rows.prepared_params) and each record's JSON text but its
id. The recording process then unpickles a few strings a kill instead of a row of
Python objects, and where the batch is all new kills (store.batch.import_prepared) it
inserts the parameters and prints the texts with their ids as they are; any other batch
(a kill seen before, another database, the table format) is recorded from its rows as
before. The texts are those to_json gives (_record_texts; a test holds them equal).
"""

from __future__ import annotations

import itertools
import json
import pickle
from collections.abc import Sequence
from json.encoder import encode_basestring
from typing import Any, TextIO

from watchdog_oom.cli.history import KILL_COLUMNS
from watchdog_oom.model import KILL_FIELDS
from watchdog_oom.store.rows import HOST, Row, capped, prepared_params, record_columns, row_evidence
from watchdog_oom.textout import table, to_json

# import's table: the kill columns of `history`, and what each kill was read from.
IMPORT_COLUMNS = [*KILL_COLUMNS, ("evidence", "EVIDENCE")]
# The keys of import's records: a kill record's, then what the kill was read from.
RECORD_KEYS = (*KILL_FIELDS, "evidence")
# How each record's JSON text begins, up to its id's value (RECORD_KEYS start with "id").
_ID_PREFIX = "  {\n    " + encode_basestring(RECORD_KEYS[0]) + ": "


class Packed:
    """A batch of kills as a reader sends it: `blob`, its rows (capped) pickled; `count`;
    `names` and `params`, the INSERT's columns and values (prepared_params; None: the
    rows need the column processors); `texts`, each record's JSON text after its id (None:
    not asked for, the output is a table)."""

    __slots__ = ("blob", "count", "names", "params", "texts", "_rows")

    def __init__(self, blob: bytes, count: int, names: list[str] | None, params: list[tuple[Any, ...]] | None,
                 texts: list[str] | None) -> None:
        self.blob, self.count, self.names, self.params, self.texts = blob, count, names, params, texts
        self._rows: list[Row] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return Packed, (self.blob, self.count, self.names, self.params, self.texts)

    def __len__(self) -> int:
        return self.count

    def rows(self) -> list[Row]:
        """The batch's rows (capped), unpickled once."""
        if self._rows is None:
            self._rows = pickle.loads(self.blob)
        return self._rows

    def hosts(self) -> list[str]:
        """Each kill's host."""
        if self.names and self.params is not None and self.names[0] == "host":
            return [values[0] for values in self.params]
        return [row[HOST] for row in self.rows()]

    def after(self, skip: int) -> Packed:
        """The batch without its first `skip` kills."""
        return pack(self.rows()[skip:], texts=self.texts is not None)


def pack(rows: Sequence[Row], *, texts: bool) -> Packed:
    """A batch of rows as a reader sends it (in the reading process): capped, pickled, its
    INSERT's parameters and, with `texts`, its records' JSON texts but their ids."""
    rows = capped(rows)
    prepared = prepared_params(rows)
    record_texts = None
    if texts:
        columns = record_columns([None] * len(rows), rows)
        columns.append([row_evidence(row) for row in rows])
        skip = len(_ID_PREFIX) + len("null")
        record_texts = [text[skip:] for text in _record_texts(columns)]
    names, params = prepared if prepared is not None else (None, None)
    return Packed(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL), len(rows), names, params, record_texts)


class Printer:
    """Prints kill records as they come: a JSON array a batch of elements at a time, or the
    table a batch at a time (its heading once). A batch comes column by column, in
    RECORD_KEYS' order, or as a Packed's texts with their ids."""

    def __init__(self, fmt: str, out: TextIO) -> None:
        self.json, self.out, self.count = fmt == "json", out, 0

    def add(self, columns: list[Sequence[Any]]) -> None:
        """Print a batch's records, given column by column."""
        if not columns[0]:
            return
        if self.json:
            # to_json of the whole list, a batch of elements at a time: the same text.
            self.out.write(("[\n" if self.count == 0 else ",\n") + _json_elements(columns))
            self.count += len(columns[0])
            return
        from watchdog_oom.parse.evidence import summary  # the parser's modules load in the reading child

        rows = [{**dict(zip(RECORD_KEYS, record, strict=True)), "evidence": summary(record[-1])}
                for record in zip(*columns, strict=True)]
        lines = table(rows, IMPORT_COLUMNS, {"evidence": 160}).splitlines()
        print("\n".join(lines if self.count == 0 else lines[1:]), file=self.out)
        self.count += len(rows)

    def add_texts(self, ids: Sequence[int | None], texts: Sequence[str]) -> None:
        """Print a batch's records as JSON: each its id, then its text (Packed.texts)."""
        if not texts:
            return
        prefix = _ID_PREFIX
        elements = ",\n".join([f"{prefix}{'null' if kill_id is None else kill_id}{text}"
                               for kill_id, text in zip(ids, texts, strict=True)])
        self.out.write(("[\n" if self.count == 0 else ",\n") + elements)
        self.count += len(texts)

    def finish(self) -> None:
        """End the JSON array."""
        if self.json:
            print("\n]" if self.count else "[]", file=self.out)


def _json_elements(columns: list[Sequence[Any]]) -> str:
    """Records (given column by column in RECORD_KEYS' order) as elements of to_json's
    indented array, joined as it joins them: the same text, a batch in a few C calls."""
    return ",\n".join(_record_texts(columns))


def _record_texts(columns: list[Sequence[Any]]) -> list[str]:
    """Each record's text as an element of to_json's indented array (records given column
    by column in RECORD_KEYS' order), a batch in a few C calls.

    json's C encoder only runs without indent: each column's values are encoded in one
    call, with a NUL between values (JSON text holds one only escaped, as \\u0000), or
    once where they are all one value (a log's host, killer, source); the records' texts
    are set in the indented layout of RECORD_KEYS by one format call, a NUL between
    records. The evidence, where it is an object or array, is laid out by json's
    indenting encoder once per distinct value (_indented). A batch holding anything else
    (a nested value elsewhere, a NaN, a datetime) is laid out record by record by
    to_json itself."""
    try:
        texts = [_column_json(values) for values in columns[:-1]]
        texts.append([_indented(said) if type(said) in _NESTED else _column_json([said])[0] for said in columns[-1]])
    except (TypeError, ValueError):
        return ["\n".join("  " + line for line in to_json(dict(zip(RECORD_KEYS, values, strict=True))).splitlines())
                for values in zip(*columns, strict=True)]
    joined = "\x00".join([_LAYOUT] * len(columns[0])).format(*itertools.chain.from_iterable(zip(*texts, strict=True)))
    return joined.split("\x00")


def _column_json(values: Sequence[Any]) -> Sequence[str]:
    """Each of `values` (JSON scalars) as to_json writes it; TypeError, ValueError where one is not."""
    first, count = values[0], len(values)
    kind = type(first)
    if kind in _SCALARS and values.count(first) == count and list(map(type, values)).count(kind) == count:
        return [_ENCODE_FLAT([first])[1:-1]] * count  # the same value throughout: encoded once
    if not _SCALARS.issuperset(map(type, values)):
        raise TypeError("not a JSON scalar")
    pieces = _ENCODE_FLAT(list(values))[1:-1].split("\x00")
    if len(pieces) != count:  # pragma: no cover - a NUL is always escaped
        raise ValueError("a value's text holds a NUL")
    return pieces


def _indented(value: Any) -> str:
    """A nested value as to_json lays it out two levels deep (an array's element's field)."""
    if _LAST_INDENTED and _LAST_INDENTED[0] is value:  # the kills of a batch share their evidence (_Interned)
        return _LAST_INDENTED[1]
    compact = _ENCODE_COMPACT(value)  # TypeError, ValueError: not JSON as it stands
    text = _INDENTED.get(compact)
    if text is None:
        if len(_INDENTED) >= 1024:
            _INDENTED.clear()
        text = _INDENTED[compact] = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n    ")
    _LAST_INDENTED[:] = [value, text]  # held: its id is not reused while it is looked up by identity
    return text


_SCALARS = frozenset((str, int, float, bool, type(None)))  # what _ENCODE_FLAT writes as to_json does
_NESTED = frozenset((dict, list, tuple))
_ENCODE_FLAT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=("\x00", ": ")).encode
_ENCODE_COMPACT = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
_INDENTED: dict[str, str] = {}  # a nested value's compact JSON -> its indented text
_LAST_INDENTED: list[Any] = []  # the last nested value laid out, and its text
# One record's layout: its keys and the places of its values (braces doubled for format).
_LAYOUT = "  {{\n" + ",\n".join("    " + encode_basestring(key).replace("{", "{{").replace("}", "}}") + ": {}"
                                 for key in RECORD_KEYS) + "\n  }}"

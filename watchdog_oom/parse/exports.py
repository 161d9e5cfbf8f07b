"""A log store's export read whole, for `watchdog-oom import` only: put in time order, or
converted entry by entry (a JSON array too big to be read whole, a CSV export) to NDJSON,
whose lines the Decoder (wrappers.py, enclosures.py) reads as any other.

Split from wrappers.py so that the daemon, which reads a log line by line and never a whole
export, does not hold this code: parse/__init__ loads it on first use (PEP 562).
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable, Iterator
from datetime import datetime

from watchdog_oom.parse.enclosures import (
    _csv_columns,
    _csv_header,
    _entry_message,
    _entry_time,
    _json_document,
    _listed,
    _sort_time,
    time_order,
)

# ------------------------------------------------------------- exports in time order
#
# Log stores export newest first by default (`gcloud logging read`, `logcli query`, Kibana's
# Discover and its CSV): each report then comes kill line first and header last, and the
# header of the next report would stand before the earlier kill. An export read whole is
# put back in time order first; one read line by line breaks off where time goes backwards
# (Decoder.backwards).

EXPORT_CHARS = 8 << 20  # an export longer than this is read in its own order, entry by entry (import: 26 MiB of
# pretty-printed JSON read whole and sorted peaked at 208 MiB, one of 8 MiB at some 70)


# How a JSON export opens: an array of objects (or an empty one), or an object's first key.
_JSON_OPENING = re.compile(r'\s*(?:\[\s*[{\]]|\{\s*")')


def may_be_export(head: str) -> bool:
    """Whether a text opening with `head` (its first kilobytes) may be an export that
    export_in_time_order() reads: a JSON document or NDJSON, or a CSV export's header. A
    dmesg log ("[    0.000000] …") or a syslog is none."""
    if _JSON_OPENING.match(head):
        return True
    first = head.split("\n", 1)[0].rstrip("\r")
    return "," in first and _csv_header(first) is not None


def export_in_time_order(text: str) -> str | None:
    """A log store's export, read whole (a JSON document, pretty-printed or not; NDJSON; a CSV
    export with its header), as the same export with its entries in time order (stable;
    JSON ones as NDJSON); None where `text` is no such export, is longer than EXPORT_CHARS,
    has an entry without a time, or is in time order already."""
    if len(text) > EXPORT_CHARS or not may_be_export(text[:4096]):
        return None
    return _json_in_time_order(text) if _JSON_OPENING.match(text) else _csv_in_time_order(text)


def _json_in_time_order(text: str) -> str | None:
    """export_in_time_order() of a JSON document or NDJSON. A document (pretty-printed: a
    line per key, its entries' times and hosts on other lines than their messages) comes
    back as NDJSON in any case, an entry a line."""
    found = _export_entries(text)
    if found is None:
        return None
    entries, whole = found
    order = time_order([_sort_time(entry, _entry_message(entry)) for entry in entries])
    if order is None and not whole:
        return None  # NDJSON in time order (or not all entries timed): read as it is
    return "".join(json.dumps(entries[n], ensure_ascii=False) + "\n"
                   for n in (order if order is not None else range(len(entries))))


def _export_entries(text: str) -> tuple[list[dict], bool] | None:
    """The entries of a JSON document (an array of them, or an API's answer listing them:
    True) or of NDJSON (one a line: False); None for anything else."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        entries: list[dict] = []
        for line in text.splitlines():
            if line.strip():
                one = _json_document(line)
                if not isinstance(one, dict):
                    return None
                entries.append(one)
        return (entries, False) if entries else None
    document = _listed(document)
    if isinstance(document, list) and document and all(isinstance(entry, dict) for entry in document):
        return document, True
    return None


def _csv_in_time_order(text: str) -> str | None:
    """export_in_time_order() of a CSV export whose first line is its header: its rows as
    NDJSON entries (csv_as_ndjson()), in time order where each has a time."""
    import io

    try:
        entries = list(_csv_entries(io.StringIO(text, newline=""), strict=True))
    except ValueError:  # a line that is no row of its table: text beside an export, read line by line
        return None
    if not entries:
        return None
    order = time_order([_entry_time(entry.get("@timestamp"), naive=True) for entry in entries])
    return "".join(json.dumps(entries[n], ensure_ascii=False) + "\n"
                   for n in (order if order is not None else range(len(entries))))


def csv_as_ndjson(text: Iterable[str]) -> Iterator[str]:
    """_csv_entries() of a CSV export, each as an NDJSON line."""
    return (json.dumps(entry, ensure_ascii=False) + "\n" for entry in _csv_entries(text))


def _csv_entries(text: Iterable[str], *, strict: bool = False) -> Iterator[dict[str, str]]:
    """A CSV export (its first line its header: may_be_export()) read row by row, as NDJSON
    lines in its order: each row's message, time and host under the keys the Decoder reads
    (message, @timestamp, host); a row of another width (or a line csv cannot read) as its
    fields joined again, a message of its own (`strict`: ValueError instead). Nothing when
    the first line is no header.
    A row is read only under its header: import reads a big log where kills are, not from
    its top, and a row without one cannot be told from a log line whose fields a local user
    chose (a cgroup's name holds quotes and commas: review R16)."""
    import csv

    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except csv.Error:
        return
    table = _csv_columns(header) if header else None
    if table is None:
        return
    names = {"message": table.message, "@timestamp": table.time, "host": table.host}
    while True:
        try:
            row = next(reader, None)
        except csv.Error:
            if strict:
                raise ValueError("not CSV") from None
            continue  # (a field over csv's limit): the reader goes on at the next line
        if row is None:
            return
        if not row:
            continue
        if strict and len(row) != table.width:
            raise ValueError("a line of another width")
        yield ({key: row[at] for key, at in names.items() if at is not None} if len(row) == table.width
               else {"message": ",".join(row)})


JSON_ENTRY_CHARS = 1 << 20  # an entry of a JSON array longer than this ends its reading


def json_array_as_ndjson(chunks: Iterable[str], closers: str = "") -> Generator[str, None, bool]:
    """A JSON array of entries (an export too big to be read whole, pretty-printed or not)
    read entry by entry from its text's `chunks`, as NDJSON lines in its order. Returns
    (StopIteration's value) whether that was the whole text: one array of objects, blanks
    after it; False where it stopped early (anything that is no entry, an entry longer than
    JSON_ENTRY_CHARS, a second array after the first), all entries before read. `closers`:
    what may follow the array besides blanks (an API answer's "}" that held it)."""
    decoder = json.JSONDecoder()
    buffer, opened, closed = "", False, False
    for chunk in chunks:
        buffer = (buffer + chunk).lstrip()
        while buffer and not closed:
            if not opened:
                if buffer[0] != "[":
                    return False
                buffer, opened = buffer[1:].lstrip(), True
                continue
            buffer = buffer.lstrip(",").lstrip()
            if buffer[:1] == "]":
                buffer, closed = buffer[1:].lstrip(), True
                break
            try:
                entry, end = decoder.raw_decode(buffer)
            except (ValueError, RecursionError):
                if len(buffer) > JSON_ENTRY_CHARS:
                    return False
                break  # the entry goes on in the next chunk
            if not isinstance(entry, dict):
                return False
            yield json.dumps(entry, ensure_ascii=False) + "\n"
            buffer = buffer[end:]
        if closed:
            buffer = buffer.lstrip(closers + " \t\r\n")
            if buffer:
                return False  # something after the array: not one export
    return closed and not buffer


def export_entry_time(line: str) -> tuple[bool, datetime | None]:
    """An NDJSON export's line: whether it is an entry (a JSON object on the line), and
    the time it is ordered by (None: it names none); what export_in_time_order() sorts
    by, for an export too big to be read whole."""
    entry = _json_document(line)
    if not isinstance(entry, dict):
        return False, None
    return True, _sort_time(entry, _entry_message(entry))

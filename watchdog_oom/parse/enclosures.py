"""The readers of what encloses log text pasted from anywhere, for `import`'s Decoder
(wrappers.Decoder, lenient parsing): ANSI colours, quoted-printable, HTML entities, JSON
(journalctl -o json, NDJSON exports, a listing of entries on one line, a pretty-printed
document), a CSV export's header and rows, bare CRs.

Split from wrappers.py: the daemon's parser is not lenient and reads no enclosure, so it
does not load this module; a Decoder loads it at the first line it reads (Decoder.lines).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import NamedTuple

from watchdog_oom.parse.wrappers import (
    _HOSTNAME,
    _JSON_STRUCTURE,
    _QUOTE,
    JOIN_CHARS,
    LINE_CHARS,
    Decoder,
    _iso_date,
)

# ECMA-48 sequences: CSI ("ESC [ … final", colours and erases), OSC ("ESC ] … BEL"), and
# two-character escapes. dmesg --color=always and grep --color=always write CSI.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)?|[@-Z\\-_])")
_HTML_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|apos|nbsp|#\d{1,7}|#[xX][0-9a-fA-F]{1,6});")
_QP_HEX = re.compile(r"(?:=[0-9A-F]{2})+")
# The string value of a message key in a JSON object that is not one line (pretty-printed
# Kubernetes events, `kubectl get events -o json`), or a line of one that json cannot read.
# The keys that hold a line's text, tried in this order: journald's MESSAGE, the usual
# message/msg/log (Docker's json-file, Kubernetes events, Elasticsearch's ECS), Google Cloud
# Logging's textPayload, CloudWatch Logs Insights' @message, Splunk's _raw, Loki's line
# (logcli --output=jsonl), OpenTelemetry's body.
_JSON_KEYS = ("MESSAGE", "message", "msg", "log", "note", "textPayload", "@message", "_raw", "line", "body")
_KEYS_ALTERNATION = "|".join(re.escape(key) for key in _JSON_KEYS)
_KEYED_STRING = re.compile(rf'"(?:{_KEYS_ALTERNATION})"\s*:\s*"((?:[^"\\]|\\.)*)"')
# How a line of JSON opens: an object, an array of objects or strings, or a key of a
# pretty-printed object.
_JSON_LINE_START = re.compile(r'\s*(?:[\[{]\s*[{"]|"[^"\n]{1,64}"\s*:)')
# A line of a pretty-printed JSON document that holds no message: brackets, or a key.
_MESSAGE_OPENED = re.compile(rf'\s*"(?:{_KEYS_ALTERNATION})"\s*:\s*"')
# Where an export keeps the time and host of an entry (the first key found): journald's
# __REALTIME_TIMESTAMP (microseconds) and _HOSTNAME; an RFC 3339 time with its zone under
# @timestamp, timestamp, time (Docker), _time (Splunk) or ts (zap, as seconds too); a host
# name under _HOSTNAME, host or hostname, or an ECS host object's name.
_TIME_KEYS = ("@timestamp", "timestamp", "time", "_time", "ts")
_HOST_KEYS = ("_HOSTNAME", "host", "hostname", "host.name")
# A JSON array of entries on one line is read entry by entry, up to this many (a bigger one
# is no log export a line of text would hold).
JSON_ARRAY_ENTRIES = 10_000


class Reader(Decoder):
    """A Decoder with its readers: what Decoder.lines() makes of a Decoder at its first call."""

    def lines(self, raw: str) -> list[tuple[str, str | None]]:
        """The logical lines of one physical line, with their senders (None: not named)."""
        if len(raw) > LINE_CHARS:
            raw, self.cut = raw[:LINE_CHARS], self.cut + 1
        raw = raw.rstrip("\r\n")
        notes: tuple[str, ...] = ()
        self.entry, self._entries = None, None
        if "\x1b" in raw:
            raw = _ANSI.sub("", raw)
            notes += ("ANSI colours",)
        if self._soft is not None:
            raw, self._soft = (self._soft + _unquoted(raw))[:JOIN_CHARS], None
        decoded_qp = self._quoted_printable(raw)
        if decoded_qp is None:
            return []
        if self.quoted_printable:
            notes += ("quoted-printable",)
        raw = decoded_qp
        if "&" in raw and _HTML_ENTITY.search(raw):
            import html  # on first use: its table of entities is a megabyte the daemon need not hold

            raw = html.unescape(raw).replace("\xa0", " ")
            notes += ("HTML entities",)
        self.notes = notes
        self.backwards = False
        read = self._csv(raw) if "," in raw and '"' in raw else None
        if read is None:
            read = self._json_or_text(raw)
        if self.entry is not None:
            self._follow_time()
        return read

    def _follow_time(self) -> None:
        """Note whether this line's entries go back in time from the last entry's."""
        times = [where[1] for where in (self._entries or [self.entry]) if where is not None and where[1] is not None]
        if not times:
            return
        if self._last_time is not None and times[0] < self._last_time:
            self.backwards = True
        self._last_time = times[-1]

    def _csv(self, raw: str) -> list[tuple[str, str | None]] | None:
        """A CSV export's header (remembered: nothing to read) or one of its rows (the message,
        its host and time as entry); None: neither, read the line otherwise. A row of another
        width ends the table."""
        if self._table is not None:
            row = _csv_row(raw, self._table)
            if row is not None:
                self.notes += ("CSV",)
                self.entry = row[1]
                return [(row[0], None)]
            self._table = None
        header = _csv_header(raw)
        if header is not None:
            self._table = header
            return []
        return None

    def _json_or_text(self, raw: str) -> list[tuple[str, str | None]]:
        """The message lines of a JSON enclosure, or the text itself."""
        document = _json_document(raw) if '"' in raw else None
        array = _entries_in(document) if document is not None else None
        if array is not None:
            self.notes += ("JSON array",)
            self._entries = [where for _, where in array]
            self.entry = self._entries[0]
            return [line for line, _ in array]
        decoded = _json_lines(raw, document) if '"' in raw else None
        if decoded is not None:
            lines, self.entry = decoded
            self.notes += ("journal JSON" if self.entry is not None and "__REALTIME_TIMESTAMP" in raw else "JSON",)
            if len(lines) == 1 and '"' in lines[0][0]:  # a JSON log line exported as JSON again
                inner = _json_lines(lines[0][0])
                if inner is not None:
                    self.notes += ("JSON in JSON",)
                    self.entry = inner[1] or self.entry
                    return [(text, sender or lines[0][1]) for text, sender in inner[0]]
            return lines
        opened = _MESSAGE_OPENED.match(raw) if '"' in raw else None
        if opened is not None:  # a message string cut by a wrap: its first part, as printed
            self.notes += ("JSON (a message string cut by a wrap)",)
            return [(raw[opened.end():], None)]
        if _JSON_STRUCTURE.match(raw):
            return []  # the rest of a pretty-printed JSON document: it interrupts nothing
        if "\r" in raw:  # a bare CR (old Mac text, progress output) ends a line too
            self.notes += ("CR line ends",)
            return [(part, None) for part in raw.split("\r")]
        return [(raw, None)]

    def _quoted_printable(self, raw: str) -> str | None:
        """RFC 2045 quoted-printable: "=XX" bytes and "=" soft line breaks; None while held."""
        if not self.quoted_printable:
            # "=" itself is always "=3D" in quoted-printable text; a soft break ends a long line
            if not ("=3D" in raw or (len(raw) >= 60 and raw.endswith("=") and not raw.endswith("=="))):
                return raw
            self.quoted_printable = True
        if raw.endswith("=") and not raw.endswith("=="):
            self._soft = raw[:-1]
            return None
        if "=" not in raw:
            return raw
        return _QP_HEX.sub(_qp_bytes, raw)


def _qp_bytes(match: re.Match) -> str:
    return bytes.fromhex(match.group().replace("=", "")).decode("utf-8", "replace")


def _unquoted(line: str) -> str:
    """A continuation line without its mail quote marks."""
    quote = _QUOTE.match(line.lstrip())
    return line.lstrip()[quote.end():] if quote is not None and line.lstrip().startswith(">") else line


Where = tuple[str | None, datetime | None]  # the host and time an enclosure names




JsonLines = tuple[list[tuple[str, str | None]], Where | None]


def _json_document(raw: str) -> object | None:
    """The JSON object or array a whole line holds (a trailing comma aside: a line of a
    pretty-printed array), else None."""
    stripped = raw.strip().rstrip(",")
    if (stripped[:1], stripped[-1:]) not in (("{", "}"), ("[", "]")):
        return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):  # RecursionError: a hostile line nesting 100,000 "["
        return None


def _json_lines(raw: str, entry: object | None = None) -> JsonLines | None:
    """The message lines of a JSON object (one per line, as journalctl -o json and log stores'
    NDJSON exports write; `entry`, that object already read), or of a message key's string
    value on a line of a pretty-printed one; None when neither. With them, the host and time
    the entry names (None: none)."""
    if entry is None and '"' in raw and raw.lstrip()[:1] == "{":
        entry = _json_document(raw)
    if isinstance(entry, dict):
        found = _entry_message(entry)
        if found is not None:
            # one message: its lines are split (and a name cut by "\n" joined) by pieces()
            return [found[0]], found[1]
    # Each message key's string on the line: one of a pretty-printed document, or several of a
    # line json cannot read (a long array cut at LINE_CHARS, objects run together). Only a
    # line that opens as JSON does: a log line's own text is no JSON key (a cgroup named
    # 'x "msg": "Out of memory: Killed process 1 …"' would forge a kill: review R16).
    if _JSON_LINE_START.match(raw) is None:
        return None
    messages: list[tuple[str, str | None]] = []
    for keyed in _KEYED_STRING.finditer(raw):
        try:
            messages.append((json.loads(f'"{keyed.group(1)}"'), None))
        except ValueError:
            messages.append((keyed.group(1), None))
    return (messages, None) if messages else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _entry_message(entry: dict) -> tuple[tuple[str, str | None], Where | None] | None:
    """The message of one exported entry, with its sender, and the host and time it names;
    None when it holds no message. The message may sit one object down (Google's
    jsonPayload, Splunk's result, an Elasticsearch hit's _source): the host and time are then
    looked for there first, then beside it."""
    holder, message = entry, _message_of(entry)
    if message is None:
        for value in entry.values():
            if isinstance(value, dict):
                message = _message_of(value)
                if message is not None:
                    holder = value
                    break
    if message is None:
        return None
    where = _entry_where(holder)
    if holder is not entry:
        outer = _entry_where(entry)
        if outer is not None:
            where = (where[0] or outer[0], where[1] or outer[1]) if where is not None else outer
    return (message, _journal_sender(holder)), where


def _message_of(entry: dict) -> str | None:
    """The text under the first message key of `entry` (journald's byte array decoded)."""
    message = next((entry[key] for key in _JSON_KEYS if key in entry), None)
    if isinstance(message, list) and all(isinstance(b, int) and 0 <= b < 256 for b in message):
        message = bytes(message).decode("utf-8", "replace")  # journald: not UTF-8
    return message if isinstance(message, str) else None


def _entry_where(entry: dict) -> Where | None:
    """The host and time an exported entry names (_HOST_KEYS, _TIME_KEYS, journald's
    __REALTIME_TIMESTAMP in microseconds since the epoch); None when it names neither. A
    time without a zone is not taken: the exporter's zone is unknown."""
    host = next((entry[key] for key in _HOST_KEYS if key in entry), None)
    if isinstance(host, dict):  # ECS: "host": {"name": …}
        host = host.get("name") or host.get("hostname")
    if not (isinstance(host, str) and _HOSTNAME.fullmatch(host)):
        host = None
    when = None
    realtime = entry.get("__REALTIME_TIMESTAMP")
    if isinstance(realtime, str) and realtime.isdigit() and len(realtime) <= 17:  # until the year 5138
        when = _EPOCH + timedelta(microseconds=int(realtime))
    else:
        when = _entry_time(next((entry[key] for key in _TIME_KEYS if key in entry), None))
    return None if host is None and when is None else (host, when)


def _entry_time(value: object, *, naive: bool = False) -> datetime | None:
    """An export's time: RFC 3339 with its zone, or seconds since the epoch (a number, as
    zap's ts); None otherwise (out of range, not a time, no zone: unless `naive`, where one
    export's times without a zone are to be put in order, not taken)."""
    if isinstance(value, str) and len(value) <= 40:
        found = _iso_date(value.strip() + " ")
        if found is not None and found[0] == len(value.strip()) + 1 and found[1] is not None:
            return found[1] if naive or found[1].tzinfo is not None else None
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 1e8 < value < 4.1e9:  # 1973-2099
        return _EPOCH + timedelta(seconds=value)
    return None


def _journal_sender(entry: dict) -> str | None:
    """Who wrote a journal entry: "kernel" for _TRANSPORT=kernel, else its identifier."""
    transport = entry.get("_TRANSPORT")
    if transport == "kernel":
        return "kernel"
    ident = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM")
    if isinstance(ident, str):
        return ident
    return "journal" if transport else None


# ------------------------------------------------------------- a listing on one line
#
# A JSON document on one line that lists entries (an array, an API's answer), read by the
# Decoder entry by entry in time order (wrappers.Decoder._json_or_text).

def _listed(document: object) -> list | None:
    """The entries (objects) a JSON document lists: itself, an array; or an API's answer
    holding them one or two levels down ({"entries": […]}, {"items": […]}, Elasticsearch's
    {"hits": {"hits": […]}}, Loki's query_range {"data": {"result": [{"stream": {…},
    "values": [[ns, line], …]}]}}, made entries as logcli writes them); None: it lists none
    (an object with a message is an entry of its own)."""
    if isinstance(document, list):
        return document
    if not isinstance(document, dict) or _message_of(document) is not None:
        return None
    first = None  # a list of objects none of which holds a message (Elasticsearch's _shards.failures)
    for value in document.values():
        if isinstance(value, dict):  # one level further: {"hits": {"hits": […]}}, {"data": {"result": […]}}
            value = next((inner for inner in value.values() if isinstance(inner, list) and inner), None)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            listed = _loki_entries(value) or value
            if _entry_message(listed[0]) is not None:
                return listed
            first = first or listed
    return first


def _loki_entries(streams: list) -> list[dict] | None:
    """Loki's streams (each its labels and [time in ns, line] pairs) as logcli's entries
    ({"labels": …, "line": …, "timestamp": RFC 3339}); None where they are not such."""
    if not all(isinstance(stream, dict) and isinstance(stream.get("values"), list) for stream in streams):
        return None
    entries = []
    for stream in streams:
        labels = stream.get("stream") if isinstance(stream.get("stream"), dict) else {}
        for pair in stream["values"]:
            if not (isinstance(pair, list) and len(pair) >= 2 and isinstance(pair[1], str)):
                return None
            try:
                seconds, rest = divmod(int(pair[0]), 1_000_000_000)
                when = (_EPOCH + timedelta(seconds=seconds, microseconds=rest // 1000)).isoformat()
            except (TypeError, ValueError, OverflowError):
                return None
            entries.append({"labels": labels, "line": pair[1], "timestamp": when})
    return entries


def _entries_in(document: object) -> list[tuple[tuple[str, str | None], Where | None]] | None:
    """The messages of the entries a JSON document on one line lists, each with the host and
    time it names: an array of entries, or an API's answer holding one ({"entries": […]},
    {"items": […]}, Elasticsearch's {"hits": {"hits": […]}}); None when it lists none (an
    entry of its own is _json_lines()')."""
    entries = _listed(document)
    if entries is None:
        return None
    kept = [entry for entry in entries[:JSON_ARRAY_ENTRIES] if isinstance(entry, dict)]
    found = [_entry_message(entry) for entry in kept]
    order = time_order([_sort_time(entry, read) for entry, read in zip(kept, found, strict=True)])
    read = [found[n] for n in (order if order is not None else range(len(found)))]  # an API pages newest first
    return [one for one in read if one is not None] or None


def time_order(times: Sequence[datetime | None]) -> list[int] | None:
    """The order of an export's entries by their `times`, ties kept as the export meant them
    (a listing newest first is reversed before a stable sort: the lines of one report, one
    second apart at most, come back in their order); None where they are in order already
    or cannot be ordered (a time missing, times with a zone and without mixed)."""
    known = [when for when in times if when is not None]
    if not known or len(known) != len(times) or len({when.tzinfo is None for when in known}) != 1:
        return None
    if all(a <= b for a, b in pairwise(known)):
        return None
    indices = list(range(len(known)))
    if known[0] > known[-1]:
        indices.reverse()
    return sorted(indices, key=known.__getitem__)


def _sort_time(entry: dict, found: tuple[tuple[str, str | None], Where | None] | None) -> datetime | None:
    """The time an export's entry is ordered by: the one it names (_entry_where), else one
    without a zone under a time key of it or of the object holding its message (CloudWatch
    Logs Insights' "2025-06-29 15:00:06.000"). `found`: what _entry_message(entry) gave."""
    if found is not None and found[1] is not None and found[1][1] is not None:
        return found[1][1]
    for holder in (entry, *(value for value in entry.values() if isinstance(value, dict))):
        value = next((holder[key] for key in _TIME_KEYS if key in holder), None)
        if value is not None:
            return _entry_time(value, naive=True)
    return None


# ------------------------------------------------------------- a CSV export's lines
#
# A CSV export's header (remembered by the Decoder: the columns) and its rows (each its
# message, and the host and time its columns hold).

class CsvColumns(NamedTuple):
    """Where a CSV export (Kibana's "Generate CSV", Splunk's export, a SIEM's) keeps each
    field: the message's column, the time's and the host's (None: not exported)."""

    width: int
    message: int
    time: int | None
    host: int | None


_CSV_NAME = re.compile(r"[\w@.:-]{1,64}")
_CSV_HEADER_START = re.compile(r'"?[\w@.:-]{1,64}"?,')
CSV_HEADER_CHARS = 2_048  # a longer line is no header of a log export


def _csv_fields(raw: str) -> list[str] | None:
    """The fields of one CSV line (RFC 4180 quoting), None where it is not one."""
    import csv  # on first use: the daemon's live sources never meet a CSV export

    try:
        return next(csv.reader([raw], strict=True), None)
    except csv.Error:
        return None


def _csv_header(raw: str) -> CsvColumns | None:
    """The columns of a CSV export's header line: names only, one a message key (_JSON_KEYS:
    message, _raw, MESSAGE, …); None for any other line."""
    if len(raw) > CSV_HEADER_CHARS or _CSV_HEADER_START.match(raw) is None:
        return None
    names = _csv_fields(raw)
    return _csv_columns(names) if names is not None else None


def _csv_columns(names: list[str]) -> CsvColumns | None:
    """The columns a CSV header's `names` give; None where they are no header's."""
    if len(names) < 2 or not all(_CSV_NAME.fullmatch(name) for name in names):
        return None
    message = next((names.index(key) for key in _JSON_KEYS if key in names), None)
    if message is None:
        return None
    time = next((names.index(key) for key in _TIME_KEYS if key in names), None)
    host = next((names.index(key) for key in _HOST_KEYS if key in names), None)
    return CsvColumns(len(names), message, time, host)


def _csv_row(raw: str, table: CsvColumns) -> tuple[str, Where | None] | None:
    """A row of a CSV export: its message, and the host and time its columns hold; None
    where the line is no row of `table` (another width, not CSV)."""
    fields = _csv_fields(raw)
    if fields is None or len(fields) != table.width:
        return None
    host = fields[table.host] if table.host is not None else None
    when = _entry_time(fields[table.time]) if table.time is not None else None
    if not (host and _HOSTNAME.fullmatch(host)):
        host = None
    return fields[table.message], (None if host is None and when is None else (host, when))

"""What `import`'s readers send the recording process, and how it prints the records.

A batch of kills crosses from a reading process to the recording one as a Packed: its
rows (store/rows.py), cut to the history's caps, pickled once where they were read; and,
made there too, what recording them on SQLite and printing them as JSON needs: the
INSERT's parameters (store.rows_import.prepared_params) column by column, and each record's
JSON text but its id, as the texts the batch's records share and those that vary (Laid).
The recording process then unpickles a few strings a kill instead of a row of Python
objects, and where the batch is all new kills (store.batch_import.import_columns) it inserts
the parameters and prints the texts with their ids as they are; any other batch (a kill
seen before, another database, the table format) is recorded from its rows as before.
The texts are those to_json gives (_record_texts; a test holds them equal).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import operator
import pickle
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any, TextIO

from watchdog_oom.bounds import KILL_TEXT_CAPS, MEMORY_INFO_MAX, PROCESS_MAX, TEXT_MAX, cap, cap_kill, too_long
from watchdog_oom.cli.history import KILL_COLUMNS
from watchdog_oom.model import KILL_FIELDS, OomKill, TaskRow
from watchdog_oom.store.rows import (
    CGROUP_OOM,
    COLUMNS,
    DETAILS,
    HOST,
    SOURCE,
    TIME,
    Row,
    json_dumps,
    row_values,
    time_text,
)
from watchdog_oom.store.rows_import import FLAGS, capped, params_rows, prepared_params, record_columns, row_evidence
from watchdog_oom.textout import table, to_json

# import's table: the kill columns of `history`, and what each kill was read from.
IMPORT_COLUMNS = [*KILL_COLUMNS, ("evidence", "EVIDENCE")]
# The keys of import's records: a kill record's, then what the kill was read from.
RECORD_KEYS = (*KILL_FIELDS, "evidence")
# How each record's JSON text begins, up to its id's value (RECORD_KEYS start with "id").
_ID_PREFIX = "  {\n    " + encode_basestring(RECORD_KEYS[0]) + ": "
_RECORD_TIME = RECORD_KEYS.index("time")
_NEXT_ID = ",\n" + _ID_PREFIX  # between two records' texts, up to the second's id


class Packed:
    """A batch of kills as a reader sends it: `count`; `names` and `columns`, the INSERT's
    columns and their values column by column, a value the whole batch shares as a
    1-tuple of it (None: the rows need the column processors), whose rows are `params`
    (rows_import.prepared_params' form); `texts`, each record's JSON text after its id (Laid; None:
    not asked for, the output is a table); `suffixes`, each kill's time's UTC offset as
    isoformat() ends with it (None: no time), by which rows() gives each time its offset
    again; `blob`, the rows (capped) pickled, only where the batch was made the rows' way
    (Packer.rows). Column by column, a batch pickles and unpickles a few objects a kill
    (what varies), where row by row it was every value of every row."""

    __slots__ = ("count", "names", "columns", "texts", "suffixes", "blob", "_rows", "_params")

    def __init__(self, count: int, names: list[str] | None, columns: list[Any] | None, texts: Laid | None,
                 suffixes: list[str | None] | None = None, blob: bytes | None = None) -> None:
        self.count, self.names, self.columns, self.texts, self.suffixes, self.blob = (
            count, names, columns, texts, suffixes, blob)
        self._rows: list[Row] | None = None
        self._params: list[tuple[Any, ...]] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return Packed, (self.count, self.names, self.columns, self.texts, self.suffixes, self.blob)

    def __len__(self) -> int:
        return self.count

    @property
    def params(self) -> list[tuple[Any, ...]] | None:
        """The INSERT's values, row by row (None: the rows need the column processors)."""
        if self._params is None and self.columns is not None:
            self._params = list(zip(*map(self._column, self.columns), strict=True))
        return self._params

    def _column(self, values: Any) -> Any:
        return itertools.repeat(values[0], self.count) if type(values) is tuple else values

    def rows(self) -> list[Row]:
        """The batch's rows (capped): unpickled, or made again from the parameters
        (rows_import.params_rows: the values a stored kill reads back as, times in their offsets)."""
        if self._rows is None:
            params = self.params
            if self.blob is not None or self.names is None or params is None or self.suffixes is None:
                self._rows = pickle.loads(self.blob) if self.blob is not None else []
            else:
                self._rows = params_rows(self.names, params, self.suffixes)
        return self._rows

    def hosts(self) -> list[str]:
        """Each kill's host."""
        if self.names and self.columns is not None and self.names[0] == "host":
            return list(self._column(self.columns[0]))
        return [row[HOST] for row in self.rows()]

    def after(self, skip: int) -> Packed:
        """The batch without its first `skip` kills."""
        if self.blob is not None or self.columns is None or self.suffixes is None:
            return pack(self.rows()[skip:], texts=self.texts is not None)
        return Packed(max(0, self.count - skip), self.names,
                      [values if type(values) is tuple else values[skip:] for values in self.columns],
                      None if self.texts is None else self.texts.after(skip), self.suffixes[skip:])


def _shared(values: Sequence[Any]) -> Any:
    """A column's values as Packed keeps them: a 1-tuple of the value all share (of one type:
    1 equals True and 1.0, which bind otherwise), else a list."""
    first, count = values[0], len(values)
    if values.count(first) == count and (
            first is None or type(first) is str or list(map(type, values)).count(type(first)) == count):
        return (first,)
    return values if type(values) is list else list(values)


def pack(rows: Sequence[Row], *, texts: bool) -> Packed:
    """A batch of rows as a reader sends it the rows' way (Packer.rows): capped, pickled,
    its INSERT's parameters and, with `texts`, its records' JSON texts but their ids."""
    rows = capped(rows)
    prepared = prepared_params(rows)
    record_texts = None
    if texts and not rows:
        record_texts = Laid(["", ""], [[]], 0)
    elif texts:
        records = record_columns([None] * len(rows), rows)
        records.append([row_evidence(row) for row in rows])
        skip = len(_ID_PREFIX) + len("null")
        record_texts = Laid(["", ""], [[text[skip:] for text in _record_texts(records)]], len(rows))
    names, columns = (prepared[0], list(map(list, zip(*prepared[1], strict=True)))) if prepared is not None else (
        None, None)
    return Packed(len(rows), names, columns, record_texts, blob=pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))


# The kill's values behind the columns up to details, then those behind details.
_KILL_VALUES = operator.attrgetter(*("order" if name == "alloc_order" else name for name in COLUMNS[:DETAILS]),
                                   "task_table", "memory_info", "extra")
_TEXT_CAPS = tuple((COLUMNS.index(name), limit) for name, limit in KILL_TEXT_CAPS)
# The columns behind a record's fields but id (`order` is alloc_order; time is made text).
_RECORD_AT = tuple(COLUMNS.index("alloc_order" if name == "order" else name) for name in KILL_FIELDS[1:])
_TASK_FIELDS = tuple(field.name for field in dataclasses.fields(TaskRow))
_task_values = operator.attrgetter(*_TASK_FIELDS)
_task_name = operator.attrgetter("name")
_QUOTE = encode_basestring_ascii
_DAY = timedelta(days=1)


class Packer:
    """Makes a batch of one log's kills, as its parser gave them, what its reader sends
    (Packed): filed (the host: --host, else the line's, else the config's; the source;
    a syslog time without a year moved back a year where it would lie in the future, and
    given its local offset by `zones`), cut to the history's caps, in one pass a column at
    a time. Each kill's INSERT parameters and its record's JSON text are made straight
    from the kill, what a batch holds once (the host, the source, a field no kill of the
    batch has) once a batch; no row is made. A batch holding what that pass does not
    expect (a flag not a bool, a time not a datetime, extras JSON would write otherwise:
    a key not text) is made the rows' way (rows(), then pack), which Packed.rows() gives
    back alike (a test holds the two ways equal)."""

    def __init__(self, forced: str | None, local: str, source: str, reference: datetime | None, *, texts: bool,
                 zones: _Zones | None = None) -> None:
        """`reference`: the naive local time a syslog date's year was taken from (None: --year)."""
        self.forced, self.local, self.source, self.texts = forced, local, source, texts
        self.future = None if reference is None else reference + _DAY  # (undo_future_year's bound)
        self.zones = zones if zones is not None else _Zones()
        self.offsets: dict[Any, tuple[str, timedelta]] = {}  # a fixed offset -> isoformat's suffix, the offset
        self.said: tuple[Any, ...] | None = None  # the last evidence made text: it, its texts, whether it fits

    def __call__(self, kills: Sequence[OomKill]) -> Packed:
        """The kills Packed (the rows' way where the one pass cannot make them)."""
        try:
            return self._packed(kills)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
            return pack(self.rows(kills), texts=self.texts)

    def rows(self, kills: Sequence[OomKill]) -> list[Row]:
        """The kills as rows (store/rows.py: filed, local times with their offsets), not capped."""
        rows = []
        for kill in kills:
            when = kill.time
            if when is not None and when.tzinfo is None:
                if self.future is not None and when > self.future and _year_guessed(kill):
                    when = _year_before(when)
                    kill = kill.replace(time=when)
                when = self.zones.local(when)
            values = row_values(kill, self.local)
            values[HOST] = self.forced or kill.host or self.local
            values[TIME] = when
            values[SOURCE] = self.source
            rows.append(tuple(values))
        return rows

    def _packed(self, kills: Sequence[OomKill]) -> Packed:
        count = len(kills)
        columns: list[Any] = list(zip(*map(_KILL_VALUES, kills), strict=True))
        local = self.local
        columns[HOST] = [self.forced] * count if self.forced else [host or local for host in columns[HOST]]
        columns[SOURCE] = [self.source] * count
        flags = columns[CGROUP_OOM]
        if list(map(type, flags)).count(bool) != count:
            raise TypeError("a flag that is not a bool")
        _cap_texts(columns)
        stored, isos, suffixes = self._times(columns[TIME], kills)
        details, evidence = self._all_details(columns[DETAILS], columns[DETAILS + 1], columns[DETAILS + 2])
        values = columns[:DETAILS]
        values[TIME], values[CGROUP_OOM] = stored, list(map(FLAGS.__getitem__, flags))
        values.append(details)
        kept = [at for at, column in enumerate(values) if column[0] is not None or column.count(None) != count]
        shared = [_shared(values[at]) for at in kept]
        texts = None
        if self.texts:
            record = [columns[at] for at in _RECORD_AT]
            record[_RECORD_TIME - 1] = isos
            texts = _layout([*map(_column_json, record), evidence], RECORD_KEYS[1:], ",\n")  # after the id
        return Packed(count, [COLUMNS[at] for at in kept], shared, texts, suffixes)

    def _times(self, times: Sequence[Any],
               kills: Sequence[OomKill]) -> tuple[list[str | None], list[str | None], list[str | None]]:
        """Per time (of `kills`, in order): as the column stores it (time_text: UTC), as
        the record shows it (isoformat()), and the end of that that is its offset (None: no
        time)."""
        stored: list[str | None] = []
        isos: list[str | None] = []
        suffixes: list[str | None] = []
        future, zones = self.future, self.zones
        low = high = None  # the hour of local time last given one offset: its start and end, the offset's
        local = ("", timedelta(0))
        for at, when in enumerate(times):
            if when is None:
                stored.append(None)
                isos.append(None)
                suffixes.append(None)
                continue
            if when.tzinfo is None:
                if future is not None and when > future and _year_guessed(kills[at]):
                    when = _year_before(when)
                if low is None or not low <= when < high or when.fold:
                    zone = zones.fixed(when)
                    if zone is None:  # a change of offset within its hour: asked of the C library
                        stored.append(time_text(aware := zones.local(when)))
                        isos.append(aware.isoformat())
                        suffixes.append(isos[-1][len(when.isoformat()):])  # type: ignore[index]
                        continue
                    low, high, zone = zones.last  # type: ignore[misc]
                    local = self._offset(zone)
                suffix, offset = local
            elif type(when.tzinfo) is timezone:  # an offset the log wrote
                suffix, offset = self._offset(when.tzinfo)
                when = when.replace(tzinfo=None)
            else:
                stored.append(time_text(when))
                isos.append(when.isoformat())
                suffixes.append(isos[-1][len(when.replace(tzinfo=None).isoformat()):])  # type: ignore[index]
                continue
            # the UTC time and the record's, in C calls (the naive time minus its offset; its text and the offset's)
            stored.append((when - offset).isoformat(" ", "microseconds"))
            isos.append(when.isoformat() + suffix)
            suffixes.append(suffix)
        return stored, isos, suffixes

    def _offset(self, zone: timezone) -> tuple[str, timedelta]:
        """How isoformat() ends a time of the fixed offset `zone`, and the offset."""
        known = self.offsets.get(zone)
        if known is None:
            sample = datetime(2000, 1, 1, tzinfo=zone)
            known = self.offsets[zone] = (sample.isoformat()[len(sample.replace(tzinfo=None).isoformat()):],
                                          zone.utcoffset(None))
        return known

    def _all_details(self, tasks: Sequence[Any], lines: Sequence[Any],
                     extras: Sequence[Any]) -> tuple[list[str], list[str]]:
        """Each kill's details as the JSON column's text (json.dumps of row_values' dict),
        and its evidence as its record shows it."""
        details, evidence = [], []
        detail, extra_of = self._details, self._extra
        for kill_tasks, kill_lines, extra in zip(tasks, lines, extras, strict=True):
            if not (kill_tasks or kill_lines):  # (most kills: the extras alone)
                extra_text, said, fits = extra_of(extra)
                if fits:
                    details.append(f'{{"task_table": [], "memory_info": [], "extra": {extra_text}}}')
                    evidence.append(said)
                    continue
            text, said = detail(kill_tasks, kill_lines, extra)
            details.append(text)
            evidence.append(said)
        return details, evidence

    def _details(self, tasks: Any, lines: Any, extra: Any, capped: bool = False) -> tuple[str, str]:
        """One kill's details text and evidence text; cut to the caps as cap_kill cuts them."""
        fits = True
        if tasks:
            fits = max(map(len, map(_task_name, tasks))) <= PROCESS_MAX
            tasks_text = json_dumps([dict(zip(_TASK_FIELDS, _task_values(task), strict=True)) for task in tasks])
        else:
            tasks_text = "[]"
        if lines:
            fits = fits and len(lines) <= MEMORY_INFO_MAX and max(map(len, lines)) <= TEXT_MAX
            lines_text = json_dumps(list(lines))
        else:
            lines_text = "[]"
        extra_text, said, extra_fits = self._extra(extra)
        if not (capped or (fits and extra_fits)):
            cut = cap_kill(OomKill(pid=None, process="", task_table=tuple(tasks), memory_info=tuple(lines),
                                   extra=extra))
            return self._details(cut.task_table, cut.memory_info, cut.extra, capped=True)
        return f'{{"task_table": {tasks_text}, "memory_info": {lines_text}, "extra": {extra_text}}}', said

    def _extra(self, extra: Any) -> tuple[str, str, bool]:
        """A kill's extras as JSON text, its evidence as the record shows it, and whether
        cap_value would leave them as they are; TypeError for a key that is not text."""
        if type(extra) is not dict:
            return json_dumps(extra), "null", not too_long(extra)
        parts, said, fits = [], "null", True
        for key, value in extra.items():
            if type(key) is not str:
                raise TypeError("an extra's key that is not text")
            fits = fits and len(key) <= 256
            if type(value) is str:
                fits = fits and len(value) <= TEXT_MAX
                text = _QUOTE(value)
            elif type(value) is dict and key == "evidence":
                text, said, value_fits = self._evidence(value)
                fits = fits and value_fits
            else:
                fits = fits and not too_long(value)
                text = json_dumps(value)
            if key == "evidence" and type(value) is not dict:
                said = _indented(value) if type(value) in _NESTED else _column_json([value])[0]
            parts.append(f"{_QUOTE(key)}: {text}")
        return f"{{{', '.join(parts)}}}", said, fits

    def _evidence(self, said: dict[str, Any]) -> tuple[str, str, bool]:
        """An evidence as the details hold it, as the record shows it, and whether it
        fits: made once for as long as the same evidence comes again (a log's kills
        mostly share one: equal where it holds only text, as equal text is the same)."""
        last = self.said
        if last is not None and (last[0] is said or (last[4] and last[0] == said)):
            return last[1], last[2], last[3]
        compact = json_dumps(said)
        shown = json.dumps(said, indent=2, ensure_ascii=False).replace("\n", "\n    ")
        self.said = (said, compact, shown, not too_long(said), all(map(_text_only, said.values())))
        return compact, shown, self.said[3]


def _text_only(value: Any) -> bool:
    """Whether `value` is text or a list of text: what equals it is the same text."""
    return type(value) is str or (type(value) is list and all(type(item) is str for item in value))


def _cap_texts(columns: list[Any]) -> None:
    """Cut the text columns' values to their caps (bounds.KILL_TEXT_CAPS), as cap_kill does."""
    for at, limit in _TEXT_CAPS:
        values = columns[at]
        try:
            fit = max(map(len, filter(None, values)), default=0) <= limit
        except TypeError:  # not text: looked at one by one
            fit = False
        if not fit:
            columns[at] = [cap(value, limit) if isinstance(value, str) and len(value) > limit else value
                           for value in values]


def _year_guessed(kill: OomKill) -> bool:
    """parse.values.year_guessed (imported where a time lies in the future: the parser's
    package is the readers', not the recording parent's)."""
    from watchdog_oom.parse.values import year_guessed

    return year_guessed(kill)


def _year_before(when: datetime) -> datetime:
    """undo_future_year's time: the year before (28 February for the 29th)."""
    try:
        return when.replace(year=when.year - 1)
    except ValueError:  # 29 February
        return when.replace(year=when.year - 1, day=28)


class _Zones:
    """Naive local times given their offsets as astimezone() gives them, the offset found
    once per hour of the log, and one object per offset and name (astimezone() makes a new
    one each time).

    astimezone() asks the C library (localtime(3)) each time, several microseconds: about a
    tenth of the reading process's time per kill once the parser is fast. An hour whose
    start and end both exist with one offset (no change of offset within it: the tz
    database changes a zone's offset at most once within an hour) gives every time within
    it that offset; any other hour (a change of offset, times skipped or repeated) is
    asked of astimezone() time by time."""

    def __init__(self) -> None:
        self.seen: dict[tuple[Any, ...], Any] = {}
        self.hours: dict[tuple[int, int, int, int], Any] = {}  # an hour -> its offset, or None: time by time
        self.last: tuple[datetime, datetime, Any] | None = None  # the last hour looked up: start, end, offset

    def local(self, when: datetime) -> datetime:
        """`when` (naive: this host's local time) with its offset (with_local_time's)."""
        zone = self.fixed(when)
        if zone is not None:
            return when.replace(tzinfo=zone)
        return self._zone(when.astimezone())

    def fixed(self, when: datetime) -> Any:
        """The offset of `when` (naive local time) where its hour has one and it is not
        the second of a repeated time (fold), its hour then in `last`; else None: ask
        astimezone()."""
        last = self.last
        if last is not None and last[0] <= when < last[1] and not when.fold:
            return last[2]
        hour = (when.year, when.month, when.day, when.hour)
        zone = self.hours.get(hour, False)
        if zone is False:
            if len(self.hours) >= 4096:
                self.hours.clear()
            zone = self.hours[hour] = self._hour_zone(when.replace(minute=0, second=0, microsecond=0, fold=0))
        if zone is None or when.fold:
            return None
        start = when.replace(minute=0, second=0, microsecond=0, fold=0)
        try:
            self.last = (start, start + _HOUR, zone)  # (the hour `last` describes whenever this gives an offset)
        except OverflowError:  # the last hour of year 9999
            return None
        return zone

    def _hour_zone(self, start: datetime) -> Any:
        """The offset of every time of the hour from `start`, or None where it has no single one."""
        try:
            first, last = start.astimezone(), (start + _HOUR).astimezone()
        except (OverflowError, ValueError):  # the last hour of year 9999
            return None
        if (first.replace(tzinfo=None) != start or last.replace(tzinfo=None) != start + _HOUR
                or first.utcoffset() != last.utcoffset() or first.tzname() != last.tzname()):
            return None
        return self._zone(first).tzinfo

    def _zone(self, aware: datetime) -> datetime:
        """`aware` with the first zone object seen of its offset and name."""
        zone = aware.tzinfo
        first = self.seen.setdefault((aware.utcoffset(), aware.tzname()), zone)
        return aware if first is zone else aware.replace(tzinfo=first)


_HOUR = timedelta(hours=1)


class Printer:
    """Prints kill records as they come: a JSON array a batch of elements at a time, or the
    table a batch at a time (its heading once). A batch comes column by column, in
    RECORD_KEYS' order, or as a Packed's texts with their ids."""

    def __init__(self, fmt: str | None, out: TextIO) -> None:
        """`fmt`: "json", "table", or None: print nothing (--quiet)."""
        self.json, self.quiet, self.out, self.count = fmt == "json", fmt is None, out, 0

    def add(self, columns: list[Sequence[Any]]) -> None:
        """Print a batch's records, given column by column."""
        if not columns[0] or self.quiet:
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

    def add_texts(self, ids: Sequence[int | None], texts: Laid) -> None:
        """Print a batch's records as JSON: each its id, then its text (Packed.texts)."""
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} records")
        if not texts:
            return
        numbers = map(str, ids) if None not in ids else ("null" if kill_id is None else str(kill_id) for kill_id in ids)
        # each element: the text up to its id (after ",\n" but the first's), the id, the text after it: one join
        heads = itertools.chain((_ID_PREFIX,), itertools.repeat(_NEXT_ID))
        self.out.write("[\n" if self.count == 0 else ",\n")
        self.out.write("".join(itertools.chain.from_iterable(zip(heads, numbers, *texts.streams(), strict=False))))
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
    return _laid_out(texts)


class Laid:
    """Records' texts as a batch carries them: the layout's `pieces`, the texts every
    record shares, between `columns`, the texts that vary (`count` each): a record is
    pieces[0], its text of columns[0], pieces[1], … pieces[-1]. A batch of a log's kills
    crosses to the recording process as the few texts that vary a kill (a time, a pid)
    and its records are laid out as they are printed (Printer.add_texts: one join), where
    a list of whole texts was some 900 bytes a kill to make, pickle, send and join."""

    __slots__ = ("pieces", "columns", "count")

    def __init__(self, pieces: list[str], columns: list[list[str]], count: int) -> None:
        self.pieces, self.columns, self.count = pieces, columns, count

    def __reduce__(self) -> tuple[Any, ...]:
        return Laid, (self.pieces, self.columns, self.count)

    def __len__(self) -> int:
        return self.count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Laid) and self.texts() == other.texts()

    __hash__ = None  # type: ignore[assignment]

    def streams(self) -> list[Any]:
        """Each record's pieces in order, as iterables of `count` texts (to zip and join)."""
        streams: list[Any] = [itertools.repeat(self.pieces[0], self.count)]
        for column, piece in zip(self.columns, self.pieces[1:], strict=True):
            streams += [column, itertools.repeat(piece, self.count)]
        return streams

    def texts(self) -> list[str]:
        """Each record's text (JSON text holds a NUL only escaped: one join, split)."""
        if not self.count:
            return []
        joined = "".join(itertools.chain.from_iterable(zip(*self.streams(), itertools.repeat("\x00"))))
        return joined.split("\x00")[:-1]

    def after(self, skip: int) -> Laid:
        """The records but the first `skip`."""
        return Laid(self.pieces, [column[skip:] for column in self.columns], max(0, self.count - skip))


def _layout(texts: Sequence[Sequence[str]], keys: Sequence[str] = RECORD_KEYS, head: str = "  {\n") -> Laid:
    """Records given as their values' JSON texts, column by column (`keys`: their keys,
    RECORD_KEYS' or its tail), set in to_json's indented layout after `head`: a column of
    one text throughout is written into the layout's pieces once."""
    count = len(texts[0])
    pieces: list[str] = []
    columns: list[list[str]] = []
    text = head  # the layout's text since the last value that varies
    for at, (key, column) in enumerate(zip(keys, texts, strict=True)):
        text += ("" if at == 0 else ",\n") + _KEYS[key]
        first = column[0] if count else ""
        if column.count(first) == count:
            text += first
        else:
            pieces.append(text)
            columns.append(list(column))
            text = ""
    pieces.append(text + "\n  }")
    return Laid(pieces, columns, count)


def _laid_out(texts: Sequence[Sequence[str]], keys: Sequence[str] = RECORD_KEYS, head: str = "  {\n") -> list[str]:
    """_layout's records' texts."""
    return _layout(texts, keys, head).texts() if len(texts[0]) else []


def _column_json(values: Sequence[Any]) -> Sequence[str]:
    """Each of `values` (JSON scalars) as to_json writes it; TypeError, ValueError where one is not."""
    first, count = values[0], len(values)
    kind = type(first)
    # the same value throughout: encoded once (text or None: only its like equals it; 1 equals True)
    if kind in _SCALARS and values.count(first) == count and (
            kind is str or first is None or list(map(type, values)).count(kind) == count):
        return [_ENCODE_FLAT([first])[1:-1]] * count
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
# Each record key as the layout writes it before its value.
_KEYS = {key: "    " + encode_basestring(key) + ": " for key in RECORD_KEYS}

"""The declaration of a key: `key()`, `section()` and `records()` make dataclass fields that
are Settings (kind, help, example), from which everything else is derived.

A section is a frozen dataclass whose fields are declared with these helpers. It may
also declare `checks`, functions run after its keys are read that refuse combinations
of values (a critical level below its warning level) with an error at the right line.

The kinds here read a value; how one is shown (`config check`, config.example.yaml, the
reference of keys) is render.py's, which the daemon does not load.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable, Mapping
from typing import Any

from watchdog_oom.config.values import Kind
from watchdog_oom.valueclass import valueclass

# The most items any list in the file may hold (channels, rules, patterns, addresses):
# far above any real use, it keeps a runaway file from costing minutes and megabytes.
MAX_ITEMS = 1000


class _Nothing:
    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()


class Setting(dataclasses.Field[Any]):
    """How one key is read, shown and documented: the dataclass field that declares it.

    `help` is one sentence, or more lines for the example file (a line starting with
    spaces is kept as written, others are wrapped). `example` is written in
    config.example.yaml instead of the default; a key whose default is computed at
    start (`default_text` says what it is) is written there commented out. `more` are
    further commented-out values shown after it. `required` keys must be written.
    `daemon_only` sections are read only by the daemon and notify-test: a read-only
    command tolerates an unset ${VAR} there (see load_config's strict_env).

    One object a key: the field itself carries the setting (no Setting, metadata dict and
    its read-only view beside each field: 118 keys, about 40 kB).
    """

    __slots__ = ("help", "kind", "example", "more", "default_text", "required", "daemon_only")

    def __init__(self, field: dataclasses.Field[Any], help: str, kind: Any, example: Any = NOTHING,
                 more: tuple[Any, ...] = (), default_text: str | None = None, required: bool = False,
                 daemon_only: bool = False) -> None:
        for name in dataclasses.Field.__slots__:  # what dataclasses.field() made, as it made it
            setattr(self, name, getattr(field, name))
        self.help, self.kind, self.example, self.more = help, kind, example, more
        self.default_text, self.required, self.daemon_only = default_text, required, daemon_only



def key(default: Any, kind: Kind | Any, help: str, *, example: Any = NOTHING, more: tuple[Any, ...] = (),
        default_factory: Callable[[], Any] | None = None, default_text: str | None = None,
        required: bool = False) -> Any:
    """Declares a key: its default, its kind (with bounds) and its help."""
    secret = getattr(kind, "mask", None) is not None or getattr(kind, "secret", False)
    if default_factory is not None:
        made = dataclasses.field(default_factory=default_factory, repr=not secret)
    else:
        made = dataclasses.field(default=default, repr=not secret)
    return Setting(made, help, kind, example, more, default_text, required)


def section(cls: type, help: str, *, daemon_only: bool = False, compact: bool = False) -> Any:
    """Declares a nested section: a mapping read into `cls`, all defaults when absent.

    `compact`: `config check` leaves out its keys that are null.
    """
    return Setting(dataclasses.field(default=cls()), help, SectionOf(cls, compact=compact), daemon_only=daemon_only)


def field_name(yaml_key: str) -> str:
    """The dataclass field of a YAML key: Python keywords get a trailing underscore (for_, from_)."""
    return f"{yaml_key}_" if keyword.iskeyword(yaml_key) else yaml_key


def yaml_key(name: str) -> str:
    """The YAML key of a dataclass field."""
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def settings_of(cls: type) -> dict[str, tuple[str, Setting]]:
    """The keys a section declares, in order: YAML key to (field name, Setting). Made at each
    call (a section's is read once a load), not kept: the daemon would keep them between
    reloads for nothing (8 to 17 kB)."""
    return {yaml_key(f.name): (f.name, f) for f in dataclasses.fields(cls) if isinstance(f, Setting)}


# -- kinds that read a whole node (a section, a list, a mapping of free names) ------------


@valueclass
class SectionOf:
    """A nested section read into `cls`."""

    cls: type
    what: str = "a mapping of keys"
    describe: str = "a section"
    compact: bool = False

    def read(self, reader: Any, node: Any, path: str) -> Any:
        """The typed value of the node at `path`; errors through `reader`."""
        return reader.read_section(self.cls, node, path, self.what)


@valueclass
class ListOf:
    """A list of values of one kind; with `single`, one value stands for a list of one.

    With `flatten`, each item reads as a list (one text holding several addresses).
    """

    kind: Kind
    single: bool = False
    flatten: bool = False
    max_items: int = MAX_ITEMS

    @property
    def mask(self) -> Any:
        """The mask of the items, when they are secrets."""
        return self.kind.mask

    def read(self, reader: Any, node: Any, path: str) -> tuple[Any, ...]:
        """The typed value of the node at `path`; errors through `reader`."""
        items = reader.items(node, path, self.single, self.max_items)
        values = [self.kind.read(reader, item, item_path) for item_path, item in items]
        if self.flatten:
            return tuple(value for group in values for value in group)
        return tuple(values)


@valueclass
class Records:
    """A list of mappings, each read into one of `classes` (chosen by the `tag` key's value
    when there are several), optionally turned into another type by `build`.

    `shorthand`: a plain scalar item stands for a mapping of that one key (`- sshd` is
    `- name: sshd`). `unique`: a key whose value no two items may share. `examples`
    are items shown commented out in config.example.yaml.
    """

    classes: Mapping[str, type]
    noun: str
    what: str
    tag: str | None = None
    shorthand: str | None = None
    unique: str | None = None
    build: Callable[[Any], Any] | None = None
    examples: tuple[Mapping[str, Any], ...] = ()
    max_items: int = MAX_ITEMS

    def read(self, reader: Any, node: Any, path: str) -> tuple[Any, ...]:
        """The typed value of the node at `path`; errors through `reader`."""
        return tuple(reader.read_records(self, node, path))


@valueclass
class NamedValues:
    """A mapping of names the user chooses (HTTP header names) to values of one kind.

    `name_ok` says whether a name is well formed; names in `reserved` (compared without
    case) are refused, as is the same name twice in another case.
    """

    kind: Kind
    noun: str
    name_ok: Callable[[str], bool]
    reserved: tuple[str, ...] = ()
    owner: str = ""
    describe: str = "a mapping of names to values"

    def read(self, reader: Any, node: Any, path: str) -> tuple[tuple[str, Any], ...]:
        """The typed value of the node at `path`; errors through `reader`."""
        view = reader.view(node, path)
        pairs: list[tuple[str, Any]] = []
        seen: set[str] = set()
        for name, (key_node, value_node) in view.entries.items():
            name_path = view.key_path(name)
            if not self.name_ok(name):
                raise reader.error(f'{name_path}: "{name}" is not a valid {self.noun} name', key_node)
            if name.lower() in self.reserved:
                raise reader.error(f"{name_path}: {name} is set by {self.owner} itself", key_node)
            if name.lower() in seen:
                raise reader.error(f"{name_path}: the {self.noun} {name} is given twice", key_node)
            seen.add(name.lower())
            pairs.append((name, self.kind.read(reader, value_node, name_path)))
        return tuple(pairs)

    @property
    def mask(self) -> Any:
        """The mask of the items, when they are secrets."""
        return self.kind.mask

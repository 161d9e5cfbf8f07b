"""Reading YAML text against the declarations: every key's node typed by its kind, every
mistake a ConfigError naming the file, the line and the full key path.

Environment: `${VAR}` and `${VAR:-default}` in a scalar value are replaced before the
value is typed. A plain (unquoted) scalar is typed as if the replacement had been written
there; a quoted one stays a string. `:-` takes the default when the variable is unset or
empty, as the shell does. `$$` is a literal `$`; a `$` not followed by `{` or `$` is kept
as it is. Keys are never expanded.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import yaml

from watchdog_oom.config.declare import Records, Setting, settings_of
from watchdog_oom.config.values import Nested, shown

# `$$`, or `${...}` (group "body"; group "close" is empty when the brace is never closed).
_REFERENCE = r"\$\$|\$\{(?P<body>[^}]*)(?P<close>\}?)"  # (texts: re compiles them when a value holds a $)
_REFERENCE_BODY = r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?"  # (re.S)
_S = TypeVar("_S")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file, the line and the key."""

    def __init__(self, message: str, origin: str | None = None, line: int | None = None) -> None:
        where = " ".join(part for part in (origin, f"line {line}" if line else None) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.origin = origin
        self.line = line


class UnsetVariable(ConfigError):
    """A ${VAR} without a default whose variable is not set."""


def line_of(node: yaml.Node | None) -> int | None:
    """The 1-based line a node starts on."""
    return node.start_mark.line + 1 if node is not None else None


def is_null(node: yaml.Node) -> bool:
    """Whether a node is YAML's null (`~`, `null` or nothing)."""
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def join(path: str, key: str) -> str:
    """A key's full path: `commit.interval`."""
    return f"{path}.{key}" if path else key


class _Unset(ValueError):
    pass


def expand(text: str, env: Mapping[str, str]) -> str:
    """`text` with ${VAR}, ${VAR:-default} and $$ replaced; errors name variables, never values."""

    def replace(match: re.Match[str]) -> str:
        if match.group() == "$$":
            return "$"
        if not match["close"]:
            raise ValueError('"${" is never closed by "}" (write $$ for a literal dollar sign)')
        body = re.fullmatch(_REFERENCE_BODY, match["body"], re.S)
        if body is None:
            raise ValueError(
                f'"${{{match["body"]}}}" is not a variable reference: write ${{NAME}} or '
                "${NAME:-default}, or $$ for a literal dollar sign"
            )
        name, default = body["name"], body["default"]
        value = env.get(name)
        if default is not None:
            return value or default
        if value is None:
            raise _Unset(
                f"environment variable {name} is not set; set it, or give a default "
                f"with ${{{name}:-default}}"
            )
        return value

    return re.sub(_REFERENCE, replace, text)


class Reader:
    """One parse: where the text came from, the environment, and the loader that types scalars.

    With `strict_env` false, an unset ${VAR} inside a section declared daemon_only, or in
    one of the top-level keys `unused`, leaves that key at its default (or the list item
    out) and adds a line to `warnings`.
    """

    def __init__(self, origin: str, env: Mapping[str, str], loader: yaml.SafeLoader, strict_env: bool = True,
                 unused: Iterable[str] = ()) -> None:
        self.origin = origin
        self.env = env
        self.loader = loader
        self.strict_env = strict_env
        self.unused = frozenset(unused)
        self.warnings: list[str] = []
        self._lenient = 0  # depth of daemon_only sections being read
        self._records = 0  # depth of list items being read: an unset variable drops the item
        self._entries: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}
        self._merging: set[int] = set()

    def error(self, message: str, node: yaml.Node | None) -> ConfigError:
        """A ConfigError at the line of `node`."""
        return ConfigError(message, self.origin, line_of(node))

    def value(self, node: yaml.Node, path: str) -> Any:
        """The Python value of a scalar node after environment expansion; Nested otherwise."""
        if not isinstance(node, yaml.ScalarNode):
            return Nested(isinstance(node, yaml.SequenceNode))
        if node.tag == _STR_TAG and "$" in node.value:
            try:
                text = expand(node.value, self.env)
            except _Unset as error:
                raise UnsetVariable(f"{path}: {error}", self.origin, line_of(node)) from None
            except ValueError as error:
                raise self.error(f"{path}: {error}", node) from None
            tag = node.tag
            if node.style is None:  # plain: typed as if the expanded text had been written
                tag = self.loader.resolve(yaml.ScalarNode, text, (True, False))
            node = yaml.ScalarNode(tag, text, node.start_mark, node.end_mark, node.style)
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError as error:
            raise self.error(f"{path}: {getattr(error, 'problem', None) or error}", node) from None
        except (ValueError, OverflowError) as error:  # a timestamp such as 2024-02-30
            raise self.error(f"{path}: {error}", node) from None

    def convert(self, node: yaml.Node, path: str, convert: Callable[[Any], Any]) -> Any:
        """`convert` applied to a scalar node's value; its ValueError becomes a ConfigError."""
        try:
            return convert(self.value(node, path))
        except ValueError as error:
            raise self.error(f"{path}: {error}", node) from None

    def entries(self, node: yaml.MappingNode, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """A mapping's (key node, value node) by key; `<<` merges resolved, duplicates refused."""
        known = self._entries.get(id(node))
        if known is not None:  # an alias merged many times is read once
            return known
        if id(node) in self._merging:
            raise self.error(f"{path or 'the top level'}: a merge key (<<) refers to a mapping it is part of", node)
        self._merging.add(id(node))
        own: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise self.error(
                            f"{path or 'the top level'}: a merge key (<<) takes a mapping or a list of mappings",
                            source,
                        )
                    for key, entry in self.entries(source, path).items():
                        merged.setdefault(key, entry)  # the first mapping merged wins
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                nested = Nested(isinstance(key_node, yaml.SequenceNode)).kind
                raise self.error(f"{path or 'the top level'}: a key must be a plain name, not {nested}", key_node)
            key = key_node.value
            if key in own:
                raise self.error(
                    f'duplicate key "{join(path, key)}" (first written at line {line_of(own[key][0])})', key_node
                )
            own[key] = (key_node, value_node)
        self._merging.discard(id(node))
        result = {**merged, **own}
        self._entries[id(node)] = result
        return result

    def view(self, node: yaml.Node | None, path: str, what: str = "a mapping of keys") -> View:
        """The mapping at `node` (null or absent: empty), for reading its keys."""
        return View(self, node, path, what)

    def items(self, node: yaml.Node, path: str, single: bool, max_items: int) -> list[tuple[str, yaml.Node]]:
        """The (path, node) of each item of a list; null is an empty list; with `single`, one
        scalar stands for a list of one."""
        if is_null(node):
            return []
        if isinstance(node, yaml.SequenceNode):
            if len(node.value) > max_items:
                raise self.error(f"{path}: {len(node.value)} items; at most {max_items} are allowed", node)
            return [(f"{path}[{index}]", item) for index, item in enumerate(node.value)]
        if single and isinstance(node, yaml.ScalarNode):
            return [(path, node)]
        raise self.error(f"{path}: expected a list, got {shown(self.value(node, path))}", node)

    # -- sections ---------------------------------------------------------------------

    def read_section(self, cls: type, node: yaml.Node | None, path: str, what: str = "a mapping of keys",
                     view: View | None = None, also: Iterable[str] = (), unknown_suffix: str = "",
                     on_missing: Callable[[View, list[str]], ConfigError] | None = None) -> Any:
        """The keys of the mapping at `node` read into `cls` (a declared section), then its checks.

        `also` are further keys allowed here that the caller reads itself.
        """
        view = view or self.view(node, path, what)
        settings = settings_of(cls)
        view.only((*settings, *also), unknown_suffix)
        values = {}
        for key, (name, setting) in settings.items():
            if key in view:
                read = self._read_key(view, key, setting)
                if read is not _SKIPPED:
                    values[name] = read
        if on_missing is not None:
            missing = [key for key, (_, setting) in settings.items() if setting.required and key not in view]
            if missing:
                raise on_missing(view, missing)
        section = cls(**values)
        for check in getattr(cls, "checks", ()):
            section = check(view, section) or section
        return section

    def _read_key(self, view: View, key: str, setting: Setting) -> Any:
        lenient = (setting.daemon_only or (not view.path and key in self.unused)) and not self.strict_env
        self._lenient += lenient
        try:
            return setting.kind.read(self, view.entries[key][1], view.key_path(key))
        except UnsetVariable as error:
            if not self._lenient or self._records:
                raise
            self.warnings.append(f"{error}; {view.key_path(key)} is left at its default by this command")
            return _SKIPPED
        finally:
            self._lenient -= lenient

    def read_records(self, records: Records, node: yaml.Node, path: str) -> tuple[Any, ...]:
        """A list of records (critical rules, channels): each item's keys read into its class."""
        found: list[Any] = []
        first_line: dict[Any, int | None] = {}
        for item_path, item in self.items(node, path, False, records.max_items):
            self._records += 1
            try:
                record = self._record(records, item, item_path)
            except UnsetVariable as error:
                if not self._lenient:
                    raise
                self.warnings.append(f"{error}; {item_path} is left out by this command")
                continue
            finally:
                self._records -= 1
            if records.unique is not None:
                value = getattr(record, records.unique)
                if value in first_line:
                    raise self.error(
                        f'{item_path}.{records.unique}: "{value}" is already the {records.unique} of the '
                        f"{records.noun} at line {first_line[value]}",
                        self.view(item, item_path).entries[records.unique][1],
                    )
                first_line[value] = line_of(item)
            found.append(records.build(record) if records.build else record)
        return tuple(found)

    def _record(self, records: Records, node: yaml.Node, path: str) -> Any:
        if records.shorthand and isinstance(node, yaml.ScalarNode) and not is_null(node):
            cls = next(iter(records.classes.values()))
            setting = settings_of(cls)[records.shorthand][1]
            return cls(**{records.shorthand: setting.kind.read(self, node, path)})
        view = self.view(node, path, records.what)
        if records.tag is None:
            return self.read_section(next(iter(records.classes.values())), node, path, view=view)
        if records.unique and records.unique not in view:
            raise view.error(f"{path}: a {records.noun} needs a {records.unique}")
        tags = tuple(records.classes)
        if records.tag not in view:
            raise view.error(f"{path}: a {records.noun} needs a {records.tag}: {', '.join(tags)}")
        from watchdog_oom.config.values import choice

        kind = view.get(records.tag, choice(tags).convert)

        def missing(_view: View, keys: list[str]) -> ConfigError:
            label = f" ({view.get(records.unique, str)})" if records.unique else ""
            return view.error(f"{path}{label}: the {kind} {records.noun} needs {' and '.join(keys)}")

        return self.read_section(records.classes[kind], node, path, view=view, also=(records.tag,),
                                 unknown_suffix=f" for a {kind} {records.noun}", on_missing=missing)


_SKIPPED: Any = object()


class View:
    """One YAML mapping being read: its entries, and errors naming key and line."""

    def __init__(self, reader: Reader, node: yaml.Node | None, path: str, what: str = "a mapping of keys") -> None:
        self.reader = reader
        self.node = node
        self.path = path
        if node is None or is_null(node):  # `commit:` with nothing under it: all defaults
            self.entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        elif isinstance(node, yaml.MappingNode):
            self.entries = reader.entries(node, path)
        else:
            got = shown(reader.value(node, path))
            raise reader.error(f"{path or 'the top level'}: expected {what}, got {got}", node)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def key_path(self, key: str) -> str:
        """The full path of a key of this mapping."""
        return join(self.path, key)

    def only(self, allowed: Iterable[str], suffix: str = "") -> None:
        """Refuses any key not in `allowed`, suggesting the nearest allowed one."""
        allowed = tuple(allowed)
        for key, (key_node, _) in self.entries.items():
            if key not in allowed:
                import difflib

                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f'did you mean "{close[0]}"?' if close else f"the keys here are {', '.join(allowed)}"
                raise self.reader.error(f'unknown key "{self.key_path(key)}"{suffix}; {hint}', key_node)

    def error(self, problem: str, *keys: str) -> ConfigError:
        """An error at the line of the first of `keys` written here, else of the mapping itself."""
        written = [self.entries[key][0] for key in keys if key in self.entries]
        return self.reader.error(problem, written[0] if written else self.node)

    def get(self, key: str, convert: Callable[[Any], Any]) -> Any:
        """The value of `key`, which is written here, through `convert`."""
        return self.reader.convert(self.entries[key][1], self.key_path(key), convert)


def replace(section: _S, **changes: Any) -> _S:
    """A section with some values changed (for checks that complete a section)."""
    return dataclasses.replace(section, **changes)  # type: ignore[type-var]

"""The configuration written out, from the declarations: `config check`'s effective
configuration (secrets masked), config.example.yaml (every key with its help and
default) and a reference of every key (kind, bounds, default, one-line help).
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

import yaml

from watchdog_oom.config.declare import NOTHING, ListOf, NamedValues, Records, SectionOf, Setting, settings_of
from watchdog_oom.config.values import MASK, Kind

WIDTH = 90

EXAMPLE_HEADER = """\
# watchdog-oom configuration: every key, each set to its built-in default.
#
# Copy to /etc/watchdog-oom/config.yaml (or point $WATCHDOG_OOM_CONFIG or -c at it) and
# keep only what you change: every key is optional, and a file that is missing, empty
# or all comments means the defaults. `watchdog-oom config check` validates a file and
# prints the effective configuration with secrets masked.
#
# An unknown key, a wrong type or an impossible value stops the daemon with an error
# naming the key and its line; nothing is silently ignored. A file over 1 MiB, of over
# 20,000 keys and values, or with a list of over 1,000 items is refused.
#
# Durations: 10s, 5m, 2h, 1d, 1w, combined like 1h30m, or a number of seconds.
#
# Environment: ${VAR} and ${VAR:-default} are replaced in any value (not in keys) before
# it is read, so secrets can stay out of this file: `password: ${SMTP_PASSWORD}`.
# ${VAR} with VAR unset is an error (read-only commands such as `history` only warn
# when it is in a section they do not use); ${VAR:-default} takes the default when VAR
# is unset or empty. An unquoted value is read as if the replacement had been written
# there (`port: ${SMTP_PORT:-587}` is a number); a quoted one stays text. $$ writes a
# literal $; a $ followed by anything but { or $ is kept as it is.
#
# YAML anchors, aliases and merge keys (<<: *common) work, e.g. to share settings
# between channels.
#
# This file is generated from the declarations in watchdog_oom/config/schema.py:
#   python -m watchdog_oom.config example > config.example.yaml
"""


# -- values shown: how each kind writes a value (here, not on the kinds: the daemon, which
# reads its file but never writes one, does not load this code) ---------------------------


def shown(kind: Any, value: Any, example: bool = False) -> Any:
    """A value of `kind` as plain YAML data: as `config check` prints it, secrets masked, or
    with `example` as config.example.yaml writes it (examples hold no secret)."""
    if isinstance(kind, Kind):
        if value is None:
            return None
        return kind.mask(value) if kind.mask is not None and not example else kind.write(value)
    if isinstance(kind, SectionOf):
        return show_section(value, example, skip_none=kind.compact)
    if isinstance(kind, ListOf):
        return [shown(kind.kind, item, example) for item in value]
    if isinstance(kind, NamedValues):
        return {name: shown(kind.kind, item, example) for name, item in value}
    if isinstance(kind, Records):
        return _records(kind, value, example)
    raise TypeError(f"no way to show a value of {kind!r}")


def show_section(value: Any, example: bool = False, skip_none: bool = False) -> dict[str, Any]:
    """A section as plain YAML data under the file's key names; secrets masked unless `example`."""
    return _shown_keys(type(value), value, example, skip_none)


def _shown_keys(cls: type, value: Any, example: bool, skip_none: bool) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key_name, (name, setting) in settings_of(cls).items():
        item = getattr(value, name)
        if item is None and skip_none:
            continue
        result[key_name] = shown(setting.kind, item, example)
    return result


def _records(kind: Records, value: tuple[Any, ...], example: bool) -> list[Any]:
    """Each record's keys that are set (its class's, chosen by the tag), the tag second."""
    result = []
    for item in value:
        cls = next(iter(kind.classes.values())) if kind.tag is None else kind.classes[getattr(item, kind.tag)]
        fields = _shown_keys(cls, item, example, skip_none=True)
        if kind.tag:  # the tag second, after the name
            first = next(iter(fields.items()), None)
            fields = {**dict([first] if first else []), kind.tag: getattr(item, kind.tag), **fields}
        result.append(fields)
    return result


def describe(kind: Any) -> str:
    """What a value of `kind` is, for `config keys`."""
    if isinstance(kind, ListOf):
        return f"a list of {describe(kind.kind)}" + (" (or one)" if kind.single else "")
    if isinstance(kind, Records):
        return f"a list of {kind.noun}s"
    return str(kind.describe)


def summary(setting: Setting) -> str:
    """A key's one-line help."""
    first = setting.help.split("\n")[0]
    sentence = first.split(". ")[0]
    return sentence if sentence.endswith((".", ":")) or sentence == first else sentence + "."


def display(config: Any) -> str:
    """The effective configuration as YAML that parse_config reads back, with every secret masked."""
    origin = config.origin or "built-in defaults, no file"
    document = yaml.safe_dump(show_section(config), sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"# watchdog-oom effective configuration ({origin}); secrets are shown as {MASK}\n{document}"


# -- config.example.yaml ------------------------------------------------------------------


def example_text() -> str:
    """config.example.yaml: every key with its help, at its default, and examples commented out."""
    from watchdog_oom.config.schema import Config

    writer = _Writer()
    writer.section(Config, "", 0, top=True)
    return EXAMPLE_HEADER + "\n".join(writer.lines) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    """Help text as comment lines: a line starting with a space is kept, others are wrapped."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if paragraph.startswith(" "):
            lines.append(paragraph)
        else:
            lines += textwrap.wrap(paragraph, width, break_on_hyphens=False, break_long_words=False) or [""]
    return lines


def inline(value: Any) -> str:
    """A value as YAML on one line: scalars plain where YAML allows, lists in brackets."""
    if value == {}:
        return "{}"
    if value == []:
        return "[]"
    text: str = yaml.safe_dump(value, default_flow_style=True, width=1 << 20, allow_unicode=True, sort_keys=False)
    return text.removesuffix("\n...\n").rstrip("\n")


def value_lines(key: str, value: Any) -> list[str]:
    """`key: value` as YAML lines; a non-empty mapping or list of mappings as a block."""
    if isinstance(value, dict) and value:
        return [f"{key}:"] + [f"  {line}" for k, item in value.items() for line in value_lines(k, item)]
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return [f"{key}:"] + [f"  {line}" for item in value for line in item_lines(item)]
    return [f"{key}: {inline(value)}"]


def item_lines(item: Any) -> list[str]:
    """One list item as YAML lines, `- ` before the first."""
    if not isinstance(item, dict):
        return [f"- {inline(item)}"]
    lines = [line for k, value in item.items() for line in value_lines(k, value)]
    return [("- " if index == 0 else "  ") + line for index, line in enumerate(lines)]


class _Writer:
    """Lines of the example file. `prefix` is put before each line: "  # " in a commented block."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def help(self, prefix: str, indent: int, text: str) -> None:
        pad = " " * indent
        for line in _wrap(text, WIDTH - len(prefix) - indent - 2):
            self.lines.append(f"{prefix}{pad}# {line}".rstrip())

    def add(self, prefix: str, indent: int, lines: list[str]) -> None:
        pad = " " * indent
        self.lines += [f"{prefix}{pad}{line}".rstrip() for line in lines]

    def section(self, cls: type, prefix: str, indent: int, top: bool = False) -> None:
        defaults = {f.name: f.default for f in dataclasses.fields(cls)}
        for key, (name, setting) in settings_of(cls).items():
            if top:
                self.lines.append("")
            kind = setting.kind
            if isinstance(kind, SectionOf):
                self.help(prefix, indent, setting.help)
                self.add(prefix, indent, [f"{key}:"])
                self.section(kind.cls, prefix, indent + 2)
            elif isinstance(kind, Records):
                self.records(key, setting, defaults[name], prefix, indent)
            else:
                self.scalar(key, setting, defaults[name], prefix, indent)

    def scalar(self, key: str, setting: Setting, default: Any, prefix: str, indent: int) -> None:
        computed = setting.default_text is not None
        self.help(prefix, indent, setting.help + (f"\nDefault: {setting.default_text}." if computed else ""))
        value = setting.example if setting.example is not NOTHING else shown(setting.kind, default, example=True)
        commented = f"{prefix}{' ' * indent}# "
        self.add(commented if computed else prefix, 0 if computed else indent, value_lines(key, value))
        for other in setting.more:
            self.add(commented, 0, value_lines(key, list(other) if isinstance(other, tuple) else other))

    def records(self, key: str, setting: Setting, default: Any, prefix: str, indent: int) -> None:
        kind: Records = setting.kind
        text = setting.help
        if kind.tag is None:  # one shape: its keys in a table
            keys = settings_of(next(iter(kind.classes.values())))
            text += "\n" + "\n".join(f"  {k:<8} {summary(s)}" for k, (_, s) in keys.items())
        written = shown(kind, default, example=True)
        if not written and kind.examples:
            text += f'\nTo use the examples below, remove `{key}: []` and the "# " in front of each line.'
        self.help(prefix, indent, text)
        commented = f"{prefix}{' ' * (indent + (2 if written else 0))}# "
        if written:
            self.add(prefix, indent, [f"{key}:"] + [f"  {line}" for item in written for line in item_lines(item)])
            for example in kind.examples:
                self.add(commented, 0, item_lines(dict(example)))
            return
        self.add(prefix, indent, [f"{key}: []"])
        if not kind.examples:
            return
        self.add(commented, 0, [f"{key}:"])
        seen: set[str] = set()
        for index, example in enumerate(kind.examples):
            if index:
                self.lines.append(commented.rstrip())
            cls = kind.classes[example[kind.tag]] if kind.tag else next(iter(kind.classes.values()))
            self.example_item(cls, example, seen, commented)
        self.lines.append("")  # the commented block ends here

    def example_item(self, cls: type, example: Any, seen: set[str], prefix: str) -> None:
        """One commented example of a record, each key's help before its first appearance."""
        settings = settings_of(cls)
        for index, (key, value) in enumerate(example.items()):
            if key in settings and key not in seen:
                seen.add(key)
                self.help(prefix, 2 if index == 0 else 4, settings[key][1].help)
            lines = value_lines(key, value)
            lead = "- " if index == 0 else "  "
            self.add(prefix, 2, [lead + lines[0]] + [f"  {line}" for line in lines[1:]])


# -- the reference --------------------------------------------------------------------------


def reference() -> str:
    """Every key with its kind (and bounds), default and one-line help, one per line."""
    from watchdog_oom.config.schema import CHANNEL_CLASSES, Config

    rows: list[tuple[str, str, str, str]] = []
    _reference_rows(Config, "", rows)
    for kind, cls in CHANNEL_CLASSES.items():
        _reference_rows(cls, f"notifications.channels[type={kind}]", rows)
    return "".join(f"{path}\n    {what}; default {default}\n    {help}\n" for path, what, default, help in rows)


def _reference_rows(cls: type, path: str, rows: list[tuple[str, str, str, str]]) -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for key, (name, setting) in settings_of(cls).items():
        key_path = f"{path}.{key}" if path else key
        kind = setting.kind
        if isinstance(kind, SectionOf):
            _reference_rows(kind.cls, key_path, rows)
            continue
        default = setting.default_text or inline(shown(kind, defaults[name], example=True))
        if isinstance(kind, Records) and kind.tag is None:
            _reference_rows(next(iter(kind.classes.values())), f"{key_path}[]", rows)
        rows.append((key_path, describe(kind), default, summary(setting)))

"""The configuration: YAML text to typed, frozen values, every key declared once.

Every key is optional. A mistake (an unknown key, a wrong type, an impossible value,
a missing environment variable, a file that cannot be read or is not YAML) is a
ConfigError that names the file, the line and the full key path, and never repeats a
secret; nothing else escapes load_config, so neither a start nor a reload dies of a bad
file.

Where things are:
  schema.py   every key and section: type, default, bounds (the kind), help, example
  values.py   the kinds of values (duration, percent, URL, ...): reading, masking
  declare.py  key(), section(), Records, ListOf: how a declaration is written
  reader.py   YAML nodes read against the declarations; ${VAR} expansion; errors
  render.py   `config check`'s output and config.example.yaml, both from the declarations

Adding a key is one line in its section's dataclass in schema.py:

    trend_rise_percent: float = key(10.0, v.number(0), "The rise that alerts; 0 disables it.")

The default, the kind with its bounds and the help are all there; the reader, `config
check` and the example file follow. Then regenerate the example, which a test compares
with the declarations:

    python -m watchdog_oom.config example > config.example.yaml

Adding a section is a frozen dataclass of such keys in schema.py and one line in Config:

    cgroups: CgroupsConfig = section(CgroupsConfig, "Memory cgroups with a limit.")

A check of several keys together (a critical level below its warning level) is a
function (view, section) -> None | replaced section, listed in the section's `checks`;
raise view.error(message, *keys) to point at the line of the first key written.
A key that needs a kind of its own adds a factory to values.py returning a Kind whose
`convert` raises ValueError in plain words.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

import yaml

from watchdog_oom.config.declare import MAX_ITEMS, settings_of
from watchdog_oom.config.reader import ConfigError, Reader, UnsetVariable
from watchdog_oom.config.schema import (
    CHANNEL_CLASSES,
    CHANNEL_TYPES,
    COMMIT_BASES,
    EMAIL_PORTS,
    EMAIL_SECURITY,
    KERNEL_LOG_SOURCES,
    LOG_LEVELS,
    SYSTEM_STATE_DIRECTORY,
    WEBHOOK_FORMATS,
    WEBHOOK_OWN_HEADERS,
    CgroupsConfig,
    ChannelConfig,
    CommitConfig,
    Config,
    DaemonConfig,
    EmailChannel,
    GlobFilter,
    HeartbeatConfig,
    KernelLogConfig,
    MemoryConfig,
    MetricsConfig,
    NotificationsConfig,
    ProcessesConfig,
    RetentionConfig,
    SlackChannel,
    WebhookChannel,
    default_database_url,
    state_directory,
)
from watchdog_oom.config.values import (
    MASK,
    WEBHOOK_SECRET_BYTES,
    WEBHOOK_SECRET_PREFIX,
    format_duration,
    mask_database_url,
    mask_url,
    parse_duration,
)
from watchdog_oom.forward import forward

# One name a line, so that helpers adding names do not conflict.
__all__ = [
    "CHANNEL_CLASSES",
    "CHANNEL_KEYS",
    "CHANNEL_TYPES",
    "COMMIT_BASES",
    "CONFIG_ENV",
    "CgroupsConfig",
    "ChannelConfig",
    "CommitConfig",
    "Config",
    "ConfigError",
    "DEFAULT_CONFIG_PATH",
    "DaemonConfig",
    "EMAIL_PORTS",
    "EMAIL_SECURITY",
    "EmailChannel",
    "GlobFilter",
    "HeartbeatConfig",
    "KERNEL_LOG_SOURCES",
    "KernelLogConfig",
    "LOG_LEVELS",
    "MASK",
    "MAX_CONFIG_BYTES",
    "MAX_ITEMS",
    "MAX_NODES",
    "MemoryConfig",
    "MetricsConfig",
    "NotificationsConfig",
    "ProcessesConfig",
    "RetentionConfig",
    "SYSTEM_STATE_DIRECTORY",
    "SlackChannel",
    "UnsetVariable",
    "WEBHOOK_FORMATS",
    "WEBHOOK_OWN_HEADERS",
    "WEBHOOK_SECRET_BYTES",
    "WEBHOOK_SECRET_PREFIX",
    "WebhookChannel",
    "config_path",
    "default_database_url",
    "display",
    "example_text",
    "format_duration",
    "load_config",
    "mask_database_url",
    "mask_url",
    "parse_config",
    "parse_duration",
    "state_directory",
]



# `display` and `example_text` (render.py), loaded on first use: only `config check` and
# `config example` print a configuration, and the daemon never does.
__getattr__ = forward(__name__, {"watchdog_oom.config.render": ("display", "example_text")})


CONFIG_ENV = "WATCHDOG_OOM_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/watchdog-oom/config.yaml"
# A config file larger than this is refused before it is parsed, and one holding more
# keys and values than MAX_NODES as soon as the parser reaches that many: real files
# are a few kilobytes and a few hundred values, while PyYAML keeps every value of a
# document as a node of about 600 bytes, which it takes about 40 µs to make.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_NODES = 20_000

# The keys each channel type takes besides the common ones.
CHANNEL_KEYS = {
    kind: tuple(k for k in settings_of(cls) if k not in settings_of(ChannelConfig))
    for kind, cls in CHANNEL_CLASSES.items()
}


def config_path(path: str | None = None, env: Mapping[str, str] = os.environ) -> str | None:
    """The file load_config reads: `path`, $WATCHDOG_OOM_CONFIG, or the default file if it exists."""
    if path:
        return path
    if env.get(CONFIG_ENV):
        return env[CONFIG_ENV]
    return DEFAULT_CONFIG_PATH if os.path.exists(DEFAULT_CONFIG_PATH) else None


def load_config(path: str | None = None, env: Mapping[str, str] = os.environ, strict_env: bool = True,
                unused: Collection[str] = ()) -> Config:
    """The configuration from the file config_path names, or the built-in defaults without one.

    With `strict_env` false (the read-only commands), a ${VAR} whose variable is unset in
    a section only the daemon reads (notifications, metrics, retention, daemon), or in
    one of the top-level keys `unused` (say, "database" for `check`), leaves that key at
    its default, or that channel out, and says so in Config.warnings.
    """
    chosen = config_path(path, env)
    if chosen is None:
        return parse_config("", None, env, strict_env, unused)
    return parse_config(read_text(chosen), chosen, env, strict_env, unused)


def read_text(path: str) -> str:
    """The text of a config file; ConfigError when it is unreadable, too large or not UTF-8."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"cannot read the configuration: {error.strerror or error}", path) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the configuration is larger than {MAX_CONFIG_BYTES // 1024} KiB; "
                          "is this the right file?", path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(f"not UTF-8 text (byte {error.start}, 0x{data[error.start]:02x}, is not)",
                          path, line) from None


def parse_config(text: str, origin: str | None = "<config>", env: Mapping[str, str] = os.environ,
                 strict_env: bool = True, unused: Collection[str] = ()) -> Config:
    """The configuration written in `text`; `origin` names it in errors and in Config.origin."""
    where = origin if origin is not None else "built-in defaults"
    loader = _loader(text, where)
    try:
        root = loader.get_single_node()
    except _TooMany as error:
        raise ConfigError(f"more than {MAX_NODES} keys and values; is this the right file?",
                          where, error.line) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.context, error.problem) if part)
        if "'\\t'" in problem:
            problem += " (YAML indents with spaces, never tabs)"
        elif "expected <block end>" in problem:
            problem += " (check the indentation of this line)"
        raise ConfigError(f"not valid YAML: {problem}", where, mark.line + 1 if mark else None) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}", where) from None
    except RecursionError:
        raise ConfigError("not valid YAML: nested too deeply", where) from None
    finally:
        loader.dispose()
    reader = Reader(where, env, loader, strict_env, unused)
    try:
        config = reader.read_section(Config, root, "", "a mapping of keys (host:, commit:, notifications:, ...)")
    except RecursionError:
        raise ConfigError("nested too deeply", where) from None
    return _finish(config, origin, reader.warnings)


def _finish(config: Config, origin: str | None, warnings: list[str]) -> Config:
    import dataclasses

    return dataclasses.replace(config, origin=origin, warnings=tuple(warnings))


class _TooMany(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, stopping at the MAX_NODES-th node instead of building them all."""

    nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooMany(self.peek_event().start_mark.line + 1)
        node: yaml.Node = super().compose_node(parent, index)
        return node


def _loader(text: str, where: str) -> yaml.SafeLoader:
    """A YAML loader over `text`; a character YAML refuses is a ConfigError at its line."""
    try:
        return _Loader(text)
    except yaml.reader.ReaderError as error:
        position = error.position if isinstance(error.position, int) else 0
        line = text.count("\n", 0, position) + 1
        code = error.character if isinstance(error.character, int) else ord(text[position:position + 1] or "?")
        raise ConfigError(
            f"not valid YAML: the character U+{code:04X} is not allowed in a YAML file "
            "(control characters can only be written as escapes in double quotes, like \"\\x01\")",
            where, line,
        ) from None

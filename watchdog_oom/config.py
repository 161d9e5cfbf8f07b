"""The configuration: YAML text to typed, frozen values, refusing every mistake in plain words.

Every key is optional. A mistake (an unknown key, a wrong type, an impossible value,
a missing environment variable) is a ConfigError that names the file, the line and the
full key path, and never repeats a secret.

Environment: `${VAR}` and `${VAR:-default}` in a scalar value are replaced before the
value is typed, so `interval: ${INTERVAL:-10s}` and `port: ${SMTP_PORT:-587}` work. A
plain (unquoted) scalar is typed as if the replacement had been written there; a quoted
one stays a string. `:-` takes the default when the variable is unset or empty, as the
shell does. `$$` is a literal `$`; a `$` not followed by `{` or `$` is kept as it is.
Keys are never expanded.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import difflib
import ipaddress
import json
import keyword
import math
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formataddr, getaddresses
from typing import Any
from urllib.parse import urlsplit

import yaml

from watchdog_oom.model import SEVERITIES, CriticalRule

CONFIG_ENV = "WATCHDOG_OOM_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/watchdog-oom/config.yaml"
SYSTEM_STATE_DIRECTORY = "/var/lib/watchdog-oom"
MASK = "***"

COMMIT_BASES = ("auto", "sar", "commit_limit")
KERNEL_LOG_SOURCES = ("auto", "kmsg", "journal", "file", "none")
CHANNEL_TYPES = ("slack", "email", "webhook")
EMAIL_SECURITY = ("starttls", "ssl", "none")
WEBHOOK_FORMATS = ("native", "alertmanager")
LOG_LEVELS = ("debug", "info", "warning", "error")
# The port of each email security by convention: submission with STARTTLS (RFC 6409),
# implicit TLS (RFC 8314), plain SMTP to a local relay (RFC 5321).
EMAIL_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
# The keys each channel type takes besides the common ones.
CHANNEL_KEYS = {
    "slack": ("webhook_url",),
    "email": ("host", "port", "security", "username", "password", "from", "to"),
    "webhook": ("url", "secret", "format", "headers"),
}
# Headers the webhook channel sets itself; configured headers may not replace them.
WEBHOOK_OWN_HEADERS = ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature")
# Standard Webhooks signing keys: "whsec_" + base64 of 24 to 64 random bytes.
WEBHOOK_SECRET_PREFIX = "whsec_"
WEBHOOK_SECRET_BYTES = (24, 64)

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([smhdw])")
_DURATION = re.compile(r"(?:(?:\d+(?:\.\d+)?|\.\d+)\s*[smhdw]\s*)+")
# `$$`, or `${...}` (group "body"; group "close" is empty when the brace is never closed).
_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)(?P<close>\}?)")
_REFERENCE_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.S)
# SQLAlchemy's URL form (sqlalchemy.engine.url._parse_url): dialect[+driver]://[user[:password]@]rest
_DATABASE_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9]*(?:\+[A-Za-z0-9_]+)?)://"
    r"(?:(?P<user>[^:/@]*)(?::(?P<password>[^@]*))?@)?(?P<rest>.*)",
    re.S,
)
_HOSTNAME = re.compile(r"(?=.{1,253}\.?\Z)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
                       r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?")
_LISTEN = re.compile(r"(?:\[(?P<ipv6>[^\]]*)\]|(?P<host>[^:\[\]]*)):(?P<port>\d+)")
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file, the line and the key."""

    def __init__(self, message: str, origin: str | None = None, line: int | None = None) -> None:
        where = " ".join(part for part in (origin, f"line {line}" if line else None) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.origin = origin
        self.line = line


def _duration(default: float) -> Any:
    """A dataclass field holding seconds that the YAML writes as a duration."""
    return field(default=default, metadata={"duration": True})


def _secret(mask: Callable[[str], str], default: Any = None) -> Any:
    """A dataclass field that may hold a secret: masked by display(), left out of repr()."""
    return field(default=default, repr=False, metadata={"mask": mask})


def _hidden(_value: str) -> str:
    return MASK


def mask_url(url: str) -> str:
    """An http(s) URL with every part that may carry a secret masked: scheme, host and port stay."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"{MASK}@{netloc}"
    masked = f"{parts.scheme}://{netloc}"
    if parts.path.strip("/") or parts.query or parts.fragment:
        masked += "/" + MASK
    return masked


def mask_database_url(url: str) -> str:
    """A database URL with its password masked; the dialect, user, host and database stay."""
    match = _DATABASE_URL.fullmatch(url)
    if match is None:
        return MASK
    if match["password"] is None:
        return url
    return url[: match.start("password")] + MASK + url[match.end("password"):]


@dataclass(frozen=True, slots=True)
class CommitConfig:
    """When committed memory (Committed_AS) is worth an alert: `commit:`."""

    interval: float = _duration(10.0)
    basis: str = "auto"
    warn_percent: float = 90.0
    crit_percent: float = 100.0
    for_: float = _duration(30.0)
    hysteresis: float = 5.0
    # A sustained rise of the basis percent by trend_rise_percent points within
    # trend_window alerts before a threshold is reached; 0 disables it.
    trend_window: float = _duration(1800.0)
    trend_rise_percent: float = 10.0


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """When available memory, memory pressure or swap use is worth an alert: `memory:`."""

    interval: float = _duration(10.0)
    available_warn_percent: float = 10.0
    available_crit_percent: float = 5.0
    psi_full_warn: float = 10.0
    psi_full_crit: float = 30.0
    swap_used_warn_percent: float = 80.0
    swap_used_crit_percent: float = 95.0
    for_: float = _duration(30.0)
    hysteresis: float = 2.0


@dataclass(frozen=True, slots=True)
class KernelLogConfig:
    """Where OOM kill reports are read from: `kernel_log:`."""

    source: str = "auto"
    path: str | None = None
    vmstat_check: bool = True


@dataclass(frozen=True, slots=True)
class ProcessesConfig:
    """Ranking of the OOM killer's next victims, and the processes that must not be one."""

    interval: float = _duration(30.0)
    top: int = 10
    at_risk_top: int = 3
    # sshd only: it is the way in to repair a machine short of memory. Databases are
    # left to each host's file: on a database server the database is the biggest
    # process, hence always among the top candidates, and would alert without end.
    critical: tuple[CriticalRule, ...] = (CriticalRule(name="sshd"),)
    # A rule without `uid` only matches processes of system accounts (uid up to this).
    system_uid_max: int = 999
    protect: bool = False
    protect_adj: int = -900
    for_: float = _duration(0.0)
    cache_size: int = 4096
    redact: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One notification channel: where it delivers, and which notifications it wants."""

    name: str
    type: str
    min_severity: str = "warning"
    kinds: tuple[str, ...] = ()
    match_process: str | None = None
    match_cgroup: str | None = None
    exclude_process: str | None = None
    exclude_cgroup: str | None = None
    timeout: float = _duration(10.0)
    # slack
    webhook_url: str | None = _secret(mask_url)
    # email
    host: str | None = None
    port: int = EMAIL_PORTS["starttls"]
    security: str = "starttls"
    username: str | None = None
    password: str | None = _secret(_hidden)
    from_: str | None = None
    to: tuple[str, ...] = ()
    # webhook
    url: str | None = _secret(mask_url)
    secret: str | None = _secret(_hidden)
    format: str = "native"
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of build_channel(type, name, **options) for this channel's type."""
        if self.type == "slack":
            return {"webhook_url": self.webhook_url, "timeout": self.timeout}
        if self.type == "email":
            return {
                "host": self.host, "port": self.port, "security": self.security,
                "username": self.username, "password": self.password,
                "sender": self.from_, "to": self.to, "timeout": self.timeout,
            }
        return {
            "url": self.url, "secret": self.secret, "format": self.format,
            "timeout": self.timeout, "headers": dict(self.headers),
        }


@dataclass(frozen=True, slots=True)
class HeartbeatConfig:
    """A URL fetched every `interval` while the daemon is healthy (a dead man's switch)."""

    url: str | None = _secret(mask_url)
    interval: float = _duration(60.0)


@dataclass(frozen=True, slots=True)
class NotificationsConfig:
    """Grouping, repeating and delivery of notifications: `notifications:`."""

    group_wait: float = _duration(5.0)
    repeat_interval: float = _duration(14400.0)
    max_age: float = _duration(86400.0)  # an undelivered notification is given up after this
    retry_initial: float = _duration(5.0)  # first retry after a transient failure (doubles, with jitter)
    retry_max: float = _duration(900.0)  # the longest wait between retries
    channels: tuple[ChannelConfig, ...] = ()
    heartbeat: HeartbeatConfig = HeartbeatConfig()


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """The Prometheus endpoint: `metrics:`."""

    listen: str | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        """`listen` as (host, port) for a socket, IPv6 brackets removed; None when off."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """How long history is kept (seconds) before it is downsampled or deleted."""

    samples: float = _duration(30 * 86400.0)
    kills: float = _duration(400 * 86400.0)
    alerts: float = _duration(400 * 86400.0)
    notifications: float = _duration(90 * 86400.0)
    # Raw samples older than this become 5-minute means; those older than a week
    # (or raw_samples, if longer) become hourly means, kept until `samples`.
    raw_samples: float = _duration(2 * 86400.0)


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """The daemon's own conduct: `daemon:`."""

    oom_score_adj: int = -900
    log_level: str = "info"
    watchdog: bool = True


def state_directory(env: Mapping[str, str] = os.environ) -> str:
    """The daemon's state directory: systemd's, the system one for root, else the user's XDG one."""
    if env.get("STATE_DIRECTORY"):
        # systemd sets it from StateDirectory=; with several, they are colon-separated.
        return os.path.abspath(env["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return SYSTEM_STATE_DIRECTORY
    base = env.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says to ignore a relative path
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return os.path.abspath(os.path.join(base, "watchdog-oom"))


def default_database_url(env: Mapping[str, str] = os.environ) -> str:
    """The SQLite database history.db in the state directory, as an SQLAlchemy URL."""
    return "sqlite:///" + os.path.join(state_directory(env), "history.db")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; `origin` is the file it came from, None for built-in defaults."""

    host: str = field(default_factory=socket.gethostname)
    database: str = field(
        default_factory=lambda: default_database_url(os.environ),
        repr=False,
        metadata={"mask": mask_database_url},
    )
    procfs: str = "/proc"
    commit: CommitConfig = CommitConfig()
    memory: MemoryConfig = MemoryConfig()
    kernel_log: KernelLogConfig = KernelLogConfig()
    processes: ProcessesConfig = ProcessesConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    metrics: MetricsConfig = MetricsConfig()
    retention: RetentionConfig = RetentionConfig()
    daemon: DaemonConfig = DaemonConfig()
    origin: str | None = None


# -- loading ----------------------------------------------------------------------------


def config_path(path: str | None = None, env: Mapping[str, str] = os.environ) -> str | None:
    """The file load_config reads: `path`, $WATCHDOG_OOM_CONFIG, or the default file if it exists."""
    if path:
        return path
    if env.get(CONFIG_ENV):
        return env[CONFIG_ENV]
    return DEFAULT_CONFIG_PATH if os.path.exists(DEFAULT_CONFIG_PATH) else None


def load_config(path: str | None = None, env: Mapping[str, str] = os.environ) -> Config:
    """The configuration from the file config_path names, or the built-in defaults without one."""
    chosen = config_path(path, env)
    if chosen is None:
        return _read_config(_Context("built-in defaults", env, yaml.SafeLoader("")), None, None)
    try:
        with open(chosen, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        raise ConfigError(f"cannot read the configuration: {error.strerror or error}", chosen) from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text (byte {error.start} is not)", chosen) from None
    return parse_config(text, chosen, env)


def parse_config(text: str, origin: str = "<config>", env: Mapping[str, str] = os.environ) -> Config:
    """The configuration written in `text`; `origin` names it in errors and in Config.origin."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = " ".join(part for part in (error.context, error.problem) if part)
        if "'\\t'" in problem:
            problem += " (YAML indents with spaces, never tabs)"
        elif "expected <block end>" in problem:
            problem += " (check the indentation of this line)"
        raise ConfigError(f"not valid YAML: {problem}", origin, mark.line + 1 if mark else None) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}", origin) from None
    finally:
        loader.dispose()
    return _read_config(_Context(origin, env, loader), root, origin)


def parse_duration(value: object) -> float:
    """Seconds in a duration: "10s", "5m", "2h", "1d", "1w", combined ("1h30m"), or a number."""
    expected = f"expected a duration like 10s, 5m or a number of seconds, got {_shown(value)}"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(expected)
    if isinstance(value, str):
        text = value.strip()
        sign, text = (-1, text[1:]) if text.startswith("-") else (1, text)
        try:
            seconds = sign * float(text)
        except ValueError:
            if not _DURATION.fullmatch(text):
                raise ValueError(expected) from None
            seconds = sign * sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be zero or more seconds, got {_shown(value)}")
    return seconds


def format_duration(seconds: float) -> str:
    """The duration text parse_duration reads back as `seconds`: "4h", "1h30m", "400d", "2.5s"."""
    parts = []
    rest = float(seconds)
    for unit in ("d", "h", "m"):
        count, rest = divmod(rest, _DURATION_UNITS[unit])
        if count:
            parts.append(f"{int(count)}{unit}")
    if rest or not parts:
        parts.append(f"{rest:.9g}s")
    return "".join(parts)


# -- reading YAML nodes -----------------------------------------------------------------


class _Nested:
    """A list or mapping where a scalar was expected, as error messages name it."""

    def __init__(self, node: yaml.Node) -> None:
        self.kind = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def _shown(value: object) -> str:
    """A value the user wrote, as an error message quotes it."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    return value.kind if isinstance(value, _Nested) else f"a {type(value).__name__}"


def _kind(value: object) -> str:
    """What sort of value the user wrote, without the value itself (for secrets)."""
    if isinstance(value, (bool, type(None), _Nested)):
        return _shown(value)
    return "a number" if isinstance(value, (int, float)) else f"a {type(value).__name__}"


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _field_name(key: str) -> str:
    """The dataclass field of a YAML key: Python keywords get a trailing underscore."""
    return f"{key}_" if keyword.iskeyword(key) else key


def _yaml_key(name: str) -> str:
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def _expand(text: str, env: Mapping[str, str]) -> str:
    """`text` with ${VAR}, ${VAR:-default} and $$ replaced; errors name variables, never values."""

    def replace(match: re.Match[str]) -> str:
        if match.group() == "$$":
            return "$"
        if not match["close"]:
            raise ValueError('"${" is never closed by "}" (write $$ for a literal dollar sign)')
        body = _REFERENCE_BODY.fullmatch(match["body"])
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
            raise ValueError(
                f"environment variable {name} is not set; set it, or give a default "
                f"with ${{{name}:-default}}"
            )
        return value

    return _REFERENCE.sub(replace, text)


@dataclass
class _Context:
    """One parse: where the text came from, the environment, and the loader that types scalars."""

    origin: str
    env: Mapping[str, str]
    loader: yaml.SafeLoader

    def error(self, message: str, node: yaml.Node | None) -> ConfigError:
        return ConfigError(message, self.origin, _line(node))

    def value(self, node: yaml.Node, path: str) -> Any:
        """The Python value of a scalar node after environment expansion; _Nested otherwise."""
        if not isinstance(node, yaml.ScalarNode):
            return _Nested(node)
        if node.tag == _STR_TAG and "$" in node.value:
            try:
                text = _expand(node.value, self.env)
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

    def convert(self, node: yaml.Node, path: str, convert: Callable[[Any], Any]) -> Any:
        """`convert` applied to a scalar node's value; its ValueError becomes a ConfigError."""
        try:
            return convert(self.value(node, path))
        except ValueError as error:
            raise self.error(f"{path}: {error}", node) from None

    def entries(self, node: yaml.MappingNode, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """A mapping's (key node, value node) by key; `<<` merges resolved, duplicates refused."""
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
                raise self.error(
                    f"{path or 'the top level'}: a key must be a plain name, not {_Nested(key_node).kind}", key_node
                )
            key = key_node.value
            if key in own:
                raise self.error(
                    f'duplicate key "{_join(path, key)}" (first written at line {_line(own[key][0])})', key_node
                )
            own[key] = (key_node, value_node)
        return {**merged, **own}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Section:
    """One YAML mapping being read: each key's typed value, and errors naming key and line."""

    def __init__(self, ctx: _Context, node: yaml.Node | None, path: str, what: str = "a mapping of keys") -> None:
        self.ctx = ctx
        self.node = node
        self.path = path
        if node is None or _is_null(node):  # `commit:` with nothing under it: all defaults
            self.entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        elif isinstance(node, yaml.MappingNode):
            self.entries = ctx.entries(node, path)
        else:
            got = _shown(ctx.value(node, path))
            raise ctx.error(f"{path or 'the top level'}: expected {what}, got {got}", node)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def key_path(self, key: str) -> str:
        return _join(self.path, key)

    def only(self, allowed: Iterable[str], what: str = "") -> None:
        """Refuses any key not in `allowed`, suggesting the nearest allowed one."""
        allowed = tuple(allowed)
        for key, (key_node, _) in self.entries.items():
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f'did you mean "{close[0]}"?' if close else f"the keys here are {', '.join(allowed)}"
                raise self.ctx.error(f'unknown key "{self.key_path(key)}"{what}; {hint}', key_node)

    def error(self, problem: str, *keys: str) -> ConfigError:
        """An error at the line of the first of `keys` written here, else of the mapping itself."""
        written = [self.entries[key][0] for key in keys if key in self.entries]
        return self.ctx.error(problem, written[0] if written else self.node)

    def get(self, key: str, convert: Callable[[Any], Any]) -> Any:
        """The value of `key`, which is written here, through `convert`."""
        return self.ctx.convert(self.entries[key][1], self.key_path(key), convert)

    def read(self, converters: Mapping[str, Callable[[Any], Any]], *others: str, what: str = "") -> dict[str, Any]:
        """The converted values of the scalar keys written, by field name; refuses unknown keys.

        `others` are further keys allowed here, which the caller reads itself.
        """
        self.only((*converters, *others), what)
        return {_field_name(key): self.get(key, convert) for key, convert in converters.items() if key in self}

    def section(self, key: str) -> _Section:
        entry = self.entries.get(key)
        return _Section(self.ctx, entry[1] if entry else None, self.key_path(key))

    def items(self, key: str, single: bool = False) -> list[tuple[str, yaml.Node]]:
        """The (path, node) of each item of the list under `key`; null is an empty list.

        With `single`, one scalar stands for a list of one.
        """
        if key not in self.entries:
            return []
        node = self.entries[key][1]
        if _is_null(node):
            return []
        if isinstance(node, yaml.SequenceNode):
            return [(f"{self.key_path(key)}[{index}]", item) for index, item in enumerate(node.value)]
        if single and isinstance(node, yaml.ScalarNode):
            return [(self.key_path(key), node)]
        path = self.key_path(key)
        raise self.ctx.error(f"{path}: expected a list, got {_shown(self.ctx.value(node, path))}", node)

    def convert_items(self, key: str, convert: Callable[[Any], Any], single: bool = False) -> tuple[Any, ...]:
        return tuple(self.ctx.convert(node, path, convert) for path, node in self.items(key, single))


# -- converters: a value the user wrote to a typed value, or ValueError in plain words ----


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else convert(value)


def _interval(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than zero, got {_shown(value)}")
    return seconds


def _number(value: object, lowest: float = -math.inf, highest: float = math.inf, above: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"expected a number, got {_shown(value)}")
    if value < lowest or value > highest or (above and value == lowest):
        low = f"above {lowest:g}" if above else f"at least {lowest:g}"
        bound = low if highest == math.inf else f"{low} and at most {highest:g}"
        raise ValueError(f"must be {bound}, got {_shown(value)}")
    return float(value)


def _percent(value: object) -> float:
    return _number(value, 0, 100)


def _positive(value: object) -> float:
    return _number(value, 0, above=True)


def _non_negative(value: object) -> float:
    return _number(value, 0)


def _integer(lowest: int, highest: int | None = None) -> Callable[[Any], int]:
    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {_shown(value)}")
        if value < lowest or (highest is not None and value > highest):
            bound = f"from {lowest} to {highest}" if highest is not None else f"at least {lowest}"
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return convert


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_shown(value)}")
    return value


def _text(value: object, secret: bool = False) -> str:
    if not isinstance(value, str):
        got = _kind(value) if secret else _shown(value)
        hint = "; put it in quotes to make it text" if isinstance(value, (int, float)) else ""
        raise ValueError(f"expected text, got {got}{hint}")
    if not value:
        raise ValueError("must not be empty (leave the key out instead)")
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters such as line breaks or tabs")
    return value


def _secret_text(value: object) -> str:
    return _text(value, secret=True)


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: object) -> str:
        if not isinstance(value, str) or value not in options:
            close = difflib.get_close_matches(value, options, n=1) if isinstance(value, str) else []
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise ValueError(f"expected one of {', '.join(options)}; got {_shown(value)}{hint}")
        return value

    return convert


def _absolute_path(value: object) -> str:
    path = _text(value)
    if not os.path.isabs(path):
        raise ValueError(f"expected an absolute path, got {_shown(value)}")
    return path


_glob = _text  # fnmatch takes any text as a pattern


def _regex(value: object) -> str:
    pattern = _text(value)
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression ({error})") from None
    return pattern


def _is_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(_HOSTNAME.fullmatch(text))
    return True


def _hostname(value: object) -> str:
    host = _text(value)
    if not _is_host(host):
        hint = " (the port goes under port:)" if ":" in host and not host.startswith("[") else ""
        raise ValueError(f"expected a host name or IP address like smtp.example.com, got {_shown(value)}{hint}")
    return host


def _http_url(value: object) -> str:
    """An http(s) URL with a host. Errors never repeat it: such URLs carry tokens."""
    url = _secret_text(value)
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError as error:  # a bad port or IPv6 literal; the message does not quote the URL
        raise ValueError(f"not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https"):
        scheme = f'the scheme "{parts.scheme}"' if parts.scheme else "no scheme"
        raise ValueError(f"expected an http:// or https:// URL, got one with {scheme}")
    if not host:
        raise ValueError("expected an http(s) URL with a host, got one without")
    if " " in url:
        raise ValueError("a URL must not contain spaces (write them as %20)")
    return url


def _database_url(value: object) -> str:
    """An SQLAlchemy URL. Errors never repeat it: it may carry a password."""
    url = _secret_text(value)
    if _DATABASE_URL.fullmatch(url) is None:
        raise ValueError(
            "expected an SQLAlchemy URL dialect[+driver]://..., like "
            "sqlite:////var/lib/watchdog-oom/history.db or postgresql://user@db-host/watchdog"
        )
    return url


def _webhook_secret(value: object) -> str:
    """A Standard Webhooks signing secret: whsec_ + base64 of 24..64 bytes (the prefix may be omitted)."""
    secret = _secret_text(value)
    try:
        key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"expected {WEBHOOK_SECRET_PREFIX} followed by base64, "
            f"e.g. {WEBHOOK_SECRET_PREFIX}$(openssl rand -base64 32)"
        ) from None
    low, high = WEBHOOK_SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"encodes {len(key)} bytes; Standard Webhooks secrets are {low} to {high} random bytes")
    return secret


def _addresses(value: object) -> list[str]:
    """The email addresses in one text ("ops@example.com", "Ops <ops@example.com>, b@example.com")."""
    text = _text(value)
    found = getaddresses([text])
    if not found or any(not _is_address(address) for _, address in found):
        raise ValueError(f"expected email addresses like ops@example.com, got {_shown(value)}")
    return [formataddr(pair) for pair in found]


def _is_address(address: str) -> bool:
    """user@domain in ASCII: the email channel does not negotiate SMTPUTF8 (RFC 6531)."""
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and address.isascii() and not any(c.isspace() for c in address)


def _address(value: object) -> str:
    found = _addresses(value)
    if len(found) != 1:
        raise ValueError(f"expected one email address, got {len(found)}")
    return found[0]


def _channel_name(value: object) -> str:
    name = _text(value)
    if not _CHANNEL_NAME.fullmatch(name):
        raise ValueError(f"a channel name is letters, digits, '.', '_' and '-'; got {_shown(value)}")
    return name


def _header_value(value: object) -> str:
    """A header value; numbers are taken as their text. Never repeated: it may be a token."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _secret_text(value)


def _listen(value: object) -> str:
    text = _text(value)
    match = _LISTEN.fullmatch(text)
    usage = (
        "expected HOST:PORT like 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 (all interfaces), "
        f"got {_shown(value)}"
    )
    if match is None:
        raise ValueError(usage)
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            raise ValueError(usage) from None
    elif not _is_host(match["host"]):
        raise ValueError(usage)
    if not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"the port must be from 1 to 65535, got {match['port']}")
    return text


# -- the sections ---------------------------------------------------------------------


_TOP_KEYS = (
    "host", "database", "procfs", "commit", "memory", "kernel_log", "processes",
    "notifications", "metrics", "retention", "daemon",
)


def _read_config(ctx: _Context, root: yaml.Node | None, origin: str | None) -> Config:
    top = _Section(ctx, root, "", "a mapping of keys (host:, commit:, notifications:, ...)")
    values = top.read({"host": _text, "database": _database_url, "procfs": _absolute_path}, *_TOP_KEYS[3:])
    values.setdefault("database", default_database_url(ctx.env))
    return Config(
        **values,
        commit=_commit(top.section("commit")),
        memory=_memory(top.section("memory")),
        kernel_log=_kernel_log(top.section("kernel_log")),
        processes=_processes(top.section("processes")),
        notifications=_notifications(top.section("notifications")),
        metrics=MetricsConfig(**top.section("metrics").read({"listen": _optional(_listen)})),
        retention=_retention(top.section("retention")),
        daemon=DaemonConfig(**top.section("daemon").read({
            "oom_score_adj": _integer(-1000, 1000),
            "log_level": _choice(LOG_LEVELS),
            "watchdog": _boolean,
        })),
        origin=origin,
    )


def _thresholds(section: _Section, warn_key: str, crit_key: str, warn: float, crit: float,
                higher_is_worse: bool = True) -> None:
    """Refuses a critical level that is less severe than its warning level."""
    if (crit < warn) if higher_is_worse else (crit > warn):
        relation, why = (
            ("below", "the critical level must be at least the warning level") if higher_is_worse
            else ("above", "less available memory is worse, "
                           "so the critical level must be at most the warning level")
        )
        raise section.error(
            f"{section.key_path(crit_key)} ({crit:g}) is {relation} {section.key_path(warn_key)} ({warn:g}): {why}",
            crit_key, warn_key,
        )


def _commit(section: _Section) -> CommitConfig:
    config = CommitConfig(**section.read({
        "interval": _interval,
        "basis": _choice(COMMIT_BASES),
        # Above 100 is meaningful: Committed_AS exceeds RAM + swap under overcommit.
        "warn_percent": _positive,
        "crit_percent": _positive,
        "for": parse_duration,
        "hysteresis": _percent,
        "trend_window": _interval,
        "trend_rise_percent": _non_negative,
    }))
    _thresholds(section, "warn_percent", "crit_percent", config.warn_percent, config.crit_percent)
    if config.hysteresis >= config.warn_percent:
        raise section.error(
            f"{section.key_path('hysteresis')} ({config.hysteresis:g}) must be below "
            f"{section.key_path('warn_percent')} ({config.warn_percent:g}): an alert resolves that many "
            "points below the warning level",
            "hysteresis", "warn_percent",
        )
    return config


def _memory(section: _Section) -> MemoryConfig:
    config = MemoryConfig(**section.read({
        "interval": _interval,
        "available_warn_percent": _percent,
        "available_crit_percent": _percent,
        "psi_full_warn": _percent,
        "psi_full_crit": _percent,
        "swap_used_warn_percent": _percent,
        "swap_used_crit_percent": _percent,
        "for": parse_duration,
        "hysteresis": _percent,
    }))
    _thresholds(section, "available_warn_percent", "available_crit_percent",
                config.available_warn_percent, config.available_crit_percent, higher_is_worse=False)
    _thresholds(section, "psi_full_warn", "psi_full_crit", config.psi_full_warn, config.psi_full_crit)
    _thresholds(section, "swap_used_warn_percent", "swap_used_crit_percent",
                config.swap_used_warn_percent, config.swap_used_crit_percent)
    return config


def _kernel_log(section: _Section) -> KernelLogConfig:
    config = KernelLogConfig(**section.read({
        "source": _choice(KERNEL_LOG_SOURCES),
        "path": _optional(_absolute_path),
        "vmstat_check": _boolean,
    }))
    if config.source == "file" and config.path is None:
        raise section.error(f"{section.key_path('path')}: source file needs the path of the log file", "source")
    if config.path is not None and config.source in ("journal", "none"):
        raise section.error(
            f"{section.key_path('path')}: source {config.source} reads no path (kmsg, file and auto do)",
            "path",
        )
    return config


_CRITICAL_KEYS = {"name": _text, "cmdline": _regex, "unit": _glob, "cgroup": _glob}
_CRITICAL_OWNER = {"uid": _integer(0)}


def _critical_rule(ctx: _Context, path: str, node: yaml.Node) -> CriticalRule:
    if isinstance(node, yaml.ScalarNode) and not _is_null(node):  # `- sshd` is `- name: sshd`
        return CriticalRule(name=ctx.convert(node, path, _text))
    rule = _Section(ctx, node, path, "a mapping with one of name, cmdline, unit or cgroup (and optionally uid)")
    values = rule.read({**_CRITICAL_KEYS, **_CRITICAL_OWNER})
    if not set(values) & set(_CRITICAL_KEYS):
        raise rule.error(f"{path}: a critical rule needs one of {', '.join(_CRITICAL_KEYS)}")
    return CriticalRule(**values)


def _processes(section: _Section) -> ProcessesConfig:
    values = section.read({
        "interval": _interval,
        "top": _integer(1),
        "at_risk_top": _integer(0),
        "protect": _boolean,
        "protect_adj": _integer(-1000, 1000),
        "for": parse_duration,
        "cache_size": _integer(1),
        "system_uid_max": _integer(0),
    }, "critical", "redact")
    if "critical" in section:
        values["critical"] = tuple(
            _critical_rule(section.ctx, path, node) for path, node in section.items("critical")
        )
    if "redact" in section:
        values["redact"] = section.convert_items("redact", _regex, single=True)
    return ProcessesConfig(**values)


def _notifications(section: _Section) -> NotificationsConfig:
    values = section.read({
        "group_wait": parse_duration,
        "repeat_interval": _interval,
        "max_age": _interval,
        "retry_initial": _interval,
        "retry_max": _interval,
    }, "channels", "heartbeat")
    if values.get("retry_initial", 5.0) > values.get("retry_max", 900.0):
        raise section.error("notifications.retry_initial: must not exceed retry_max", "retry_initial", "retry_max")
    channels: list[ChannelConfig] = []
    first_line: dict[str, int | None] = {}
    for path, node in section.items("channels"):
        channel, name_node = _channel(section.ctx, path, node)
        if channel.name in first_line:
            raise section.ctx.error(
                f'{path}.name: "{channel.name}" is already the name of the channel '
                f"at line {first_line[channel.name]}",
                name_node,
            )
        first_line[channel.name] = _line(node)
        channels.append(channel)
    heartbeat = HeartbeatConfig(**section.section("heartbeat").read({
        "url": _optional(_http_url),
        "interval": _interval,
    }))
    return NotificationsConfig(**values, channels=tuple(channels), heartbeat=heartbeat)


# The scalar keys of each channel type, and those a channel of the type cannot do without.
_CHANNEL_SCALARS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "slack": {"webhook_url": _http_url},
    "email": {
        "host": _hostname,
        "port": _integer(1, 65535),
        "security": _choice(EMAIL_SECURITY),
        "username": _text,
        "password": _secret_text,
        "from": _address,
    },
    "webhook": {"url": _http_url, "secret": _webhook_secret, "format": _choice(WEBHOOK_FORMATS)},
}
_CHANNEL_REQUIRED = {"slack": ("webhook_url",), "email": ("host", "from", "to"), "webhook": ("url",)}


def _channel(ctx: _Context, path: str, node: yaml.Node) -> tuple[ChannelConfig, yaml.Node]:
    """One channel, and the node of its name for errors about it."""
    channel = _Section(ctx, node, path, "a mapping with name, type and the type's keys")
    if "name" not in channel:
        raise channel.error(f"{path}: a channel needs a name")
    if "type" not in channel:
        raise channel.error(f"{path}: a channel needs a type: {', '.join(CHANNEL_TYPES)}")
    kind = channel.get("type", _choice(CHANNEL_TYPES))
    scalars = _CHANNEL_SCALARS[kind]
    values = channel.read(
        {
            "name": _channel_name,
            "type": _choice(CHANNEL_TYPES),
            "min_severity": _choice(SEVERITIES),
            "timeout": _interval,
            **scalars,
        },
        "kinds", "match", "exclude", *(key for key in CHANNEL_KEYS[kind] if key not in scalars),
        what=f" for a {kind} channel",
    )
    values["kinds"] = channel.convert_items("kinds", _glob, single=True)
    for group in ("match", "exclude"):
        globs = channel.section(group).read({"process": _glob, "cgroup": _glob})
        values.update({f"{group}_{key}": glob for key, glob in globs.items()})

    missing = [key for key in _CHANNEL_REQUIRED[kind] if key not in channel]
    if missing:
        raise channel.error(f"{path} ({values['name']}): the {kind} channel needs {' and '.join(missing)}")
    if kind == "email":
        _email(channel, values)
    if kind == "webhook":
        values["headers"] = _headers(channel.section("headers"))
    return ChannelConfig(**values), channel.entries["name"][1]


def _email(channel: _Section, values: dict[str, Any]) -> None:
    """Adds the email channel's recipients and port to `values`; refuses unusable login settings."""
    values["to"] = tuple(
        address for path, node in channel.items("to", single=True)
        for address in channel.ctx.convert(node, path, _addresses)
    )
    if not values["to"]:
        raise channel.error(f"{channel.key_path('to')}: an email channel needs at least one address", "to")
    security = values.get("security", "starttls")
    values.setdefault("port", EMAIL_PORTS[security])
    if ("username" in values) != ("password" in values):
        given, absent = ("username", "password") if "username" in values else ("password", "username")
        raise channel.error(
            f"{channel.key_path(given)}: a login needs both username and password; {absent} is missing", given
        )
    if "password" in values and security == "none":
        raise channel.error(
            f"{channel.key_path('security')}: none would send the password unencrypted; use starttls or ssl",
            "security", "password",
        )


def _headers(section: _Section) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, (key_node, value_node) in section.entries.items():
        path = section.key_path(name)
        if not _HEADER_NAME.fullmatch(name):
            raise section.ctx.error(f'{path}: "{name}" is not a valid HTTP header name', key_node)
        if name.lower() in WEBHOOK_OWN_HEADERS:
            raise section.ctx.error(f"{path}: {name} is set by the webhook channel itself", key_node)
        if name.lower() in seen:
            raise section.ctx.error(f"{path}: the header {name} is given twice", key_node)
        seen.add(name.lower())
        headers.append((name, section.ctx.convert(value_node, path, _header_value)))
    return tuple(headers)


def _retention(section: _Section) -> RetentionConfig:
    config = RetentionConfig(**section.read({
        key: _interval for key in ("samples", "kills", "alerts", "notifications", "raw_samples")
    }))
    if config.raw_samples > config.samples:
        raise section.error(
            f"{section.key_path('raw_samples')} ({format_duration(config.raw_samples)}) is longer than "
            f"{section.key_path('samples')} ({format_duration(config.samples)}): samples are deleted before "
            "they would be downsampled",
            "raw_samples", "samples",
        )
    return config


# -- display ----------------------------------------------------------------------------


def display(config: Config) -> str:
    """The effective configuration as YAML that parse_config reads back, with every secret masked."""
    origin = config.origin or "built-in defaults, no file"
    document = yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"# watchdog-oom effective configuration ({origin}); secrets are shown as {MASK}\n{document}"


def _plain(value: Any) -> Any:
    """A config value as plain YAML data under the file's own key names, secrets masked."""
    if isinstance(value, ChannelConfig):
        return _plain_channel(value)
    if isinstance(value, CriticalRule):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if getattr(value, f.name) is not None}
    if dataclasses.is_dataclass(value):
        return {
            _yaml_key(f.name): _plain_field(f, getattr(value, f.name))
            for f in dataclasses.fields(value) if f.name != "origin"
        }
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _plain_field(f: dataclasses.Field[Any], value: Any) -> Any:
    if value is None:
        return None
    if "mask" in f.metadata:
        return f.metadata["mask"](value)
    if f.metadata.get("duration"):
        return format_duration(value)
    return _plain(value)


def _plain_channel(channel: ChannelConfig) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(channel)}
    document = {
        key: _plain_field(fields[key], getattr(channel, key))
        for key in ("name", "type", "min_severity", "kinds", "timeout")
    }
    for group in ("match", "exclude"):
        globs = {key: getattr(channel, f"{group}_{key}") for key in ("process", "cgroup")}
        document[group] = {key: glob for key, glob in globs.items() if glob is not None}
    for key in CHANNEL_KEYS[channel.type]:
        name = _field_name(key)
        document[key] = _plain_field(fields[name], getattr(channel, name))
    if channel.type == "webhook":
        document["headers"] = {name: MASK for name, _ in channel.headers}
    return document

"""Kinds of scalar values a key can hold: how each is read, shown back, masked and described.

A Kind turns what the YAML says into a typed value or raises ValueError in plain words
(the reader adds the file, line and key path). A Kind is frozen, so the factories marked
@_once make one per arguments, shared by every key of that kind. Bounds are part of the kind:
`number(0, 100)`, `integer(1)`, `duration(positive=True)`. Kinds that carry secrets
mask themselves in `show` and never quote the value in an error.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import os
import re
import warnings
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from watchdog_oom.valueclass import valueclass

MASK = "***"
_P = ParamSpec("_P")
_K = TypeVar("_K")

# The patterns are texts, compiled by re when first used (and kept in its cache): a file with
# no duration written as text, no host name or listen address compiles none of theirs (8 kB).
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = r"(\d+(?:\.\d+)?|\.\d+)\s*([smhdw])"
_DURATION = r"(?:(?:\d+(?:\.\d+)?|\.\d+)\s*[smhdw]\s*)+"
# SQLAlchemy's URL form (sqlalchemy.engine.url._parse_url): dialect[+driver]://[user[:password]@]rest
DATABASE_URL = (r"(?P<scheme>[A-Za-z][A-Za-z0-9]*(?:\+[A-Za-z0-9_]+)?)://"
                r"(?:(?P<user>[^:/@]*)(?::(?P<password>[^@]*))?@)?(?P<rest>.*)")  # (re.S)
_HOSTNAME = (r"(?=.{1,253}\.?\Z)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
             r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?")
_LISTEN = r"(?:\[(?P<ipv6>[^\]]*)\]|(?P<host>[^:\[\]]*)):(?P<port>\d+)"
_CHANNEL_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_CONTROL = r"[\x00-\x1f\x7f]"
# Standard Webhooks signing keys: "whsec_" + base64 of 24 to 64 random bytes.
WEBHOOK_SECRET_PREFIX = "whsec_"
WEBHOOK_SECRET_BYTES = (24, 64)


class Nested:
    """A list or mapping where a scalar was expected, as error messages name it."""

    def __init__(self, is_list: bool) -> None:
        self.kind = "a list" if is_list else "a mapping"


def shown(value: object) -> str:
    """A value the user wrote, as an error message quotes it."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    return value.kind if isinstance(value, Nested) else f"a {type(value).__name__}"


def _sort_of(value: object) -> str:
    """What sort of value the user wrote, without the value itself (for secrets)."""
    if isinstance(value, (bool, type(None), Nested)):
        return shown(value)
    return "a number" if isinstance(value, (int, float)) else f"a {type(value).__name__}"


_KINDS: dict[tuple[Any, ...], Any] = {}  # the Kinds made by the factories marked @_once


def _once(make: Callable[_P, _K]) -> Callable[_P, _K]:
    """`make`, giving one Kind per arguments: a Kind is frozen, so the keys of one kind share it
    (25 durations, 14 numbers...: about 10 kB of Kinds and their convert closures)."""

    def once(*args: _P.args, **kwargs: _P.kwargs) -> _K:
        key = (make, args, *kwargs.items())
        kind = _KINDS.get(key)
        if kind is None:
            kind = _KINDS[key] = make(*args, **kwargs)
        return kind

    once.__doc__, once.__name__, once.__qualname__ = make.__doc__, make.__name__, make.__qualname__
    return once


# -- durations ----------------------------------------------------------------------------


def parse_duration(value: object) -> float:
    """Seconds in a duration: "10s", "5m", "2h", "1d", "1w", combined ("1h30m"), or a number."""
    expected = f"expected a duration like 10s, 5m or a number of seconds, got {shown(value)}"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(expected)
    if isinstance(value, str):
        text = value.strip()
        sign, text = (-1, text[1:]) if text.startswith("-") else (1, text)
        try:
            seconds = sign * float(text)
        except ValueError:
            if not re.fullmatch(_DURATION, text):
                raise ValueError(expected) from None
            seconds = sign * sum(float(n) * _DURATION_UNITS[unit] for n, unit in re.findall(_DURATION_PART, text))
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be zero or more seconds, got {shown(value)}")
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


# -- masks ------------------------------------------------------------------------------


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
    match = re.fullmatch(DATABASE_URL, url, re.S)
    if match is None:
        return MASK
    if match["password"] is None:
        return url
    return url[: match.start("password")] + MASK + url[match.end("password"):]


def _hidden(_value: str) -> str:
    return MASK


# -- the kinds --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A typed value as YAML writes it: whole floats as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@valueclass
class Kind:
    """One kind of scalar value: its reader (ValueError in plain words), writer and description.

    `mask` marks a secret: `config check` masks the value (render.shown), and how it is
    masked tells callers what sort of secret it is ("url" keeps the host of a URL; "text"
    hides it whole). `write` gives the value as YAML writes it.
    """

    describe: str
    convert: Callable[[Any], Any]
    write: Callable[[Any], Any] = _plain
    mask: Callable[[str], str] | None = None
    secret_sort: str | None = None  # "text" or "url" for secrets

    def read(self, reader: Any, node: Any, path: str) -> Any:
        """The typed value of one YAML node; `reader` adds file, line and key to errors."""
        return reader.convert(node, path, self.convert)


@_once
def optional(kind: Kind) -> Kind:
    """`kind`, or null."""
    return Kind(f"{kind.describe}, or null", lambda value: None if value is None else kind.convert(value),
                kind.write, kind.mask, kind.secret_sort)


def _interval(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than zero, got {shown(value)}")
    return seconds


@_once
def duration(positive: bool = False) -> Kind:
    """A duration in seconds written as 10s, 5m, 2h, 1d, 1w or a number; `positive` refuses 0."""
    if positive:
        return Kind("a duration longer than zero (10s, 5m, 2h, 1d, 1w)", _interval, format_duration)
    return Kind("a duration (10s, 5m, 2h, 1d, 1w; 0 for none)", parse_duration, format_duration)


def _bounds_text(lowest: float, highest: float, above: bool) -> str:
    low = f"above {lowest:g}" if above else f"at least {lowest:g}"
    return low if highest == math.inf else f"{low} and at most {highest:g}"


@_once
def number(lowest: float = -math.inf, highest: float = math.inf, above: bool = False) -> Kind:
    """A number from `lowest` (excluded with `above`) to `highest`."""

    def convert(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"expected a number, got {shown(value)}")
        if value < lowest or value > highest or (above and value == lowest):
            raise ValueError(f"must be {_bounds_text(lowest, highest, above)}, got {shown(value)}")
        return float(value)

    return Kind(f"a number {_bounds_text(lowest, highest, above)}", convert)


def percent() -> Kind:
    """A percentage from 0 to 100."""
    return number(0, 100)


@_once
def integer(lowest: int, highest: int | None = None) -> Kind:
    """A whole number from `lowest` to `highest` (no upper bound without one)."""
    bound = f"from {lowest} to {highest}" if highest is not None else f"at least {lowest}"

    def convert(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {shown(value)}")
        if value < lowest or (highest is not None and value > highest):
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return Kind(f"a whole number {bound}", convert)


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {shown(value)}")
    return value


@_once
def boolean() -> Kind:
    """true or false."""
    return Kind("true or false", _boolean)


def check_text(value: object, secret: bool = False) -> str:
    """One line of text, not empty; a secret is never repeated in the error."""
    if not isinstance(value, str):
        got = _sort_of(value) if secret else shown(value)
        hint = "; put it in quotes to make it text" if isinstance(value, (int, float)) else ""
        raise ValueError(f"expected text, got {got}{hint}")
    if not value:
        raise ValueError("must not be empty (leave the key out instead)")
    if re.search(_CONTROL, value):
        raise ValueError("must not contain control characters such as line breaks or tabs")
    return value


def secret_text(value: object) -> str:
    """Text that is a secret: the error never quotes it."""
    return check_text(value, secret=True)


@_once
def text(describe: str = "text") -> Kind:
    """One line of text."""
    return Kind(describe, check_text)


def secret() -> Kind:
    """A password or key: masked whole in `config check`."""
    return Kind("text (a secret, masked)", secret_text, mask=_hidden, secret_sort="text")


def choice(options: tuple[str, ...]) -> Kind:
    """One of `options`; a near miss is suggested."""

    def convert(value: object) -> str:
        if not isinstance(value, str) or value not in options:
            import difflib

            close = difflib.get_close_matches(value, options, n=1) if isinstance(value, str) else []
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise ValueError(f"expected one of {', '.join(options)}; got {shown(value)}{hint}")
        return value

    return Kind(" | ".join(options), convert)


def _auto_on_off(value: object) -> str:
    # YAML 1.1 (PyYAML) reads a bare on/off as true/false.
    if value is True:
        return "on"
    if value is False:
        return "off"
    return choice(("auto", "on", "off")).convert(value)


def auto_on_off() -> Kind:
    """auto, on or off (a bare YAML on/off, which is a boolean, counts as the word)."""
    return Kind("auto | on | off", _auto_on_off)


def _file_name(value: object) -> str:
    name = check_text(value)
    if "/" in name or name in (".", ".."):
        raise ValueError(f"must be a name, not a path: got {shown(value)}")
    return name


def file_name() -> Kind:
    """A name for one directory entry: no slash, not . or .."""
    return Kind("a name without /", _file_name)


def _absolute_path(value: object) -> str:
    path = check_text(value)
    if not os.path.isabs(path):
        raise ValueError(f"expected an absolute path, got {shown(value)}")
    return path


@_once
def absolute_path() -> Kind:
    """An absolute file system path."""
    return Kind("an absolute path", _absolute_path)


@_once
def glob() -> Kind:
    """A shell glob (fnmatch takes any text as a pattern)."""
    return Kind("a glob (* ? [...])", check_text)


def check_regex(value: object) -> str:
    """A Python regular expression that compiles."""
    pattern = check_text(value)
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: not the user's concern here
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a valid regular expression ({error})") from None
    except (RecursionError, OverflowError):  # sre_parse recurses once per nested group
        raise ValueError("not a usable regular expression (nested too deeply or too large)") from None
    return pattern


@_once
def regex() -> Kind:
    """A Python regular expression."""
    return Kind("a regular expression", check_regex)


def is_host(name: str) -> bool:
    """Whether `name` is an IP address or a DNS host name."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return bool(re.fullmatch(_HOSTNAME, name))
    return True


def _hostname(value: object) -> str:
    host = check_text(value)
    if not is_host(host):
        hint = " (the port goes under port:)" if ":" in host and not host.startswith("[") else ""
        raise ValueError(f"expected a host name or IP address like smtp.example.com, got {shown(value)}{hint}")
    return host


def hostname() -> Kind:
    """A host name or IP address, without a port."""
    return Kind("a host name or IP address", _hostname)


def _http_url(value: object) -> str:
    """An http(s) URL with a host. Errors never repeat it: such URLs carry tokens."""
    url = secret_text(value)
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


def http_url() -> Kind:
    """An http(s) URL; its path and query may hold a token, so it is masked past the host."""
    return Kind("an http(s) URL (masked past the host)", _http_url, mask=mask_url, secret_sort="url")


def _database_url(value: object) -> str:
    """An SQLAlchemy URL. Errors never repeat it: it may carry a password."""
    url = secret_text(value)
    if re.fullmatch(DATABASE_URL, url, re.S) is None:
        raise ValueError(
            "expected an SQLAlchemy URL dialect[+driver]://..., like "
            "sqlite:////var/lib/watchdog-oom/history.db or postgresql://user@db-host/watchdog"
        )
    return url


def database_url() -> Kind:
    """An SQLAlchemy database URL; its password is masked."""
    return Kind("an SQLAlchemy URL (password masked)", _database_url, mask=mask_database_url)


def _webhook_secret(value: object) -> str:
    """A Standard Webhooks signing secret: whsec_ + base64 of 24..64 bytes (the prefix may be omitted)."""
    key_text = secret_text(value)
    try:
        key = base64.b64decode(key_text.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"expected {WEBHOOK_SECRET_PREFIX} followed by base64, "
            f"e.g. {WEBHOOK_SECRET_PREFIX}$(openssl rand -base64 32)"
        ) from None
    low, high = WEBHOOK_SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"encodes {len(key)} bytes; Standard Webhooks secrets are {low} to {high} random bytes")
    return key_text


def webhook_secret() -> Kind:
    """A Standard Webhooks signing secret (whsec_ and base64)."""
    return Kind("whsec_ and the base64 of 24 to 64 bytes (masked)", _webhook_secret, mask=_hidden, secret_sort="text")


def _is_address(address: str) -> bool:
    """user@domain in ASCII: the email channel does not negotiate SMTPUTF8 (RFC 6531)."""
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and address.isascii() and not any(c.isspace() for c in address)


def _addresses(value: object) -> list[str]:
    """The email addresses in one text ("ops@example.com", "Ops <ops@example.com>, b@example.com")."""
    from email.utils import formataddr, getaddresses  # only email channels need the email package

    written = check_text(value)
    found = getaddresses([written])
    if not found or any(not _is_address(address) for _, address in found):
        raise ValueError(f"expected email addresses like ops@example.com, got {shown(value)}")
    return [formataddr(pair) for pair in found]


def addresses() -> Kind:
    """One or more email addresses in one text, comma-separated; read as a list."""
    return Kind("email addresses", _addresses)


def _address(value: object) -> str:
    found = _addresses(value)
    if len(found) != 1:
        raise ValueError(f"expected one email address, got {len(found)}")
    return found[0]


def address() -> Kind:
    """One email address, with or without a display name."""
    return Kind("an email address", _address)


def _channel_name(value: object) -> str:
    name = check_text(value)
    if not re.fullmatch(_CHANNEL_NAME, name):
        raise ValueError(f"a channel name is letters, digits, '.', '_' and '-'; got {shown(value)}")
    return name


def channel_name() -> Kind:
    """A channel's name: letters, digits, '.', '_' and '-'."""
    return Kind("a name of letters, digits, . _ -", _channel_name)


def header_value(value: object) -> str:
    """A header value; numbers are taken as their text. Never repeated: it may be a token."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return secret_text(value)


def _listen(value: object) -> str:
    written = check_text(value)
    match = re.fullmatch(_LISTEN, written)
    usage = (
        "expected HOST:PORT like 127.0.0.1:9464, [::1]:9464 or 0.0.0.0:9464 (all interfaces), "
        f"got {shown(value)}"
    )
    if match is None:
        raise ValueError(usage)
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            raise ValueError(usage) from None
    elif not is_host(match["host"]):
        raise ValueError(usage)
    if not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"the port must be from 1 to 65535, got {match['port']}")
    return written


def listen() -> Kind:
    """HOST:PORT of a listening socket; IPv6 in brackets."""
    return Kind("HOST:PORT", _listen)

"""Notification channels: the Channel protocol, the one place that decides retry, the registry.

Here: ChannelError, the secrets (mask_secret, redact), the registry (build_channel, and
Deferred: a channel loaded at its first send). transport.py: the HTTP exchange and how an
answer is classified; render.py: the facts a notification shows; a module per channel type.

A channel takes plain values (URLs, hosts, addresses), renders a Notification its own
way and delivers it. Success is a short description of the answer ("HTTP 200",
"250 2.0.0 Ok: queued"); failure is a ChannelError that says whether trying again can
help and, when the server said so, when. The dispatcher stores both and decides the
schedule; channels never sleep or retry themselves.

Secrets (webhook URL paths, passwords, signing secrets) never appear in a message,
a detail or a repr: every text that leaves this package goes through `redact`.
"""

from __future__ import annotations

import inspect
import logging
import re
import urllib.parse
from collections.abc import Iterable
from typing import Any, Protocol

from watchdog_oom.forward import forward

from ..model import Notification

__all__ = [
    "Channel",
    "ChannelError",
    "Deferred",
    "HttpAnswer",
    "build_channel",
    "classify_http",
    "http_request",
    "mask_secret",
    "parse_retry_after",
    "redact",
    "render_text",
    "secrets_of_url",
]

log = logging.getLogger(__name__)

MASK = "***"
MIN_URL_SECRET = 8

# The HTTP client's names (transport.py) and the renderer's (render.py), imported on first
# use (PEP 562): the daemon holds neither until a channel sends (see Deferred).
_TRANSPORT_NAMES = ("HttpAnswer", "MAX_BODY_READ", "MAX_DETAIL", "USER_AGENT", "classify_http", "http_request",
                    "parse_retry_after")
_RENDER_NAMES = ("printable", "render_text")


__getattr__ = forward(__name__, {"watchdog_oom.notify.transport": _TRANSPORT_NAMES,
                                  "watchdog_oom.notify.render": _RENDER_NAMES})


class ChannelError(Exception):
    """A delivery failed; `permanent` says whether trying the same request again can help.

    `retry_after` is the delay in seconds the server asked for (Retry-After), else None.
    `status` is the HTTP status or SMTP reply code when there was an answer, and
    `detail` the answer's text, truncated and free of secrets.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        status: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.status = status
        self.detail = detail

    def __repr__(self) -> str:
        return (
            f"ChannelError({self.message!r}, permanent={self.permanent}, "
            f"retry_after={self.retry_after}, status={self.status})"
        )


class Channel(Protocol):
    """A configured destination: `send` delivers one notification or raises ChannelError."""

    name: str

    def send(self, n: Notification) -> str:
        """Deliver `n`; return a short description of the server's answer."""
        ...


# --- secrets -------------------------------------------------------------------------

# A URL anywhere in a text, up to whitespace or a quote; punctuation that ends a
# sentence or closes a bracket around the URL is not part of it.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_URL_TRAILER = re.compile(r"[.,;:!?)\]]+$")
# Standard Webhooks secrets (whsec_), and the asymmetric keys the spec names (whsk_).
_SIGNING_SECRET = re.compile(r"\b(whsec_|whsk_)[A-Za-z0-9+/=_-]+")
# A path segment shown as is: a short lower-case word without digits ("services",
# "api", "webhooks", "oom", "ping"), or at most three characters ("v1"). Anything else
# may be a token (Slack's /services/T…/B…/<mixed-case token>, a healthchecks UUID,
# Discord's /api/webhooks/<id>/<token>) and is masked.
_PLAIN_SEGMENT = re.compile(r"[a-z._~-]{1,20}|[^/]{0,3}")


def mask_secret(url_or_text: str) -> str:
    """The URL, or every URL in a text, with its secret parts replaced by ***.

    Kept: scheme, user name, host, port and the path segments that are plain words.
    Masked: the password, token-like path segments, query values and the fragment.
    Signing secrets (whsec_…) anywhere in the text are masked too.
    """
    text = _URL_IN_TEXT.sub(_mask_url_match, url_or_text)
    return _SIGNING_SECRET.sub(lambda m: m.group(1) + MASK, text)


def _mask_url_match(match: re.Match[str]) -> str:
    url = match.group()
    trailer = _URL_TRAILER.search(url)
    end = trailer.start() if trailer else len(url)
    return _mask_url(url[:end]) + url[end:]


def _mask_url(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return MASK
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username is not None:
        userinfo = urllib.parse.quote(urllib.parse.unquote(parts.username), safe="")
        if parts.password is not None:
            userinfo += ":" + MASK
        netloc = f"{userinfo}@{netloc}"
    path = "/".join(
        segment if _PLAIN_SEGMENT.fullmatch(segment) else MASK
        for segment in parts.path.split("/")
    )
    query = "&".join(
        f"{pair.partition('=')[0]}={MASK}" for pair in parts.query.split("&") if pair
    )
    # Assembled by hand: urlunsplit drops the "//" of an empty authority (sqlite:////x).
    masked = f"{parts.scheme}://{netloc}{path}"
    if query:
        masked += "?" + query
    if parts.fragment:
        masked += "#" + MASK
    return masked


def secrets_of_url(url: str) -> tuple[str, ...]:
    """The parts of `url` that `mask_secret` hides, to `redact` them from any text.

    Token-like parts shorter than MIN_URL_SECRET are left out: "?page=1" holds no
    credential, and replacing every "1" would garble the text. A password counts
    whatever its length.
    """
    parts = urllib.parse.urlsplit(url)
    found = [s for s in parts.path.split("/") if not _PLAIN_SEGMENT.fullmatch(s)]
    found += [pair.partition("=")[2] for pair in parts.query.split("&")]
    found.append(parts.fragment)
    tokens = [s for s in found if len(s) >= MIN_URL_SECRET]
    if parts.password:
        tokens.append(parts.password)
    # Both spellings, so an echo of the decoded form is caught too.
    return tuple({s for token in tokens for s in (token, urllib.parse.unquote(token))})


def secrets_of_config(cfg: Any) -> list[str]:
    """Every secret a Config holds: passwords, signing secrets, header values, and the
    secret parts of webhook and heartbeat URLs, to `redact` from any text shown."""
    found: list[str] = []
    for c in cfg.notifications.channels:
        texts, urls = c.secrets()  # each channel type knows which of its keys are secret
        found += [v for v in texts if v]
        found += [t for url in urls if url for t in secrets_of_url(url)]
    if cfg.notifications.heartbeat.url:
        found += secrets_of_url(cfg.notifications.heartbeat.url)
    return found


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every one of `secrets` replaced by ***, then every URL masked."""
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return mask_secret(text)


# --- registry ------------------------------------------------------------------------

CHANNEL_TYPES = ("slack", "email", "webhook")


def channel_factory(type: str, name: str) -> Any:
    """The class that makes a channel of `type` ("slack", "email", "webhook"), its module
    imported now (an unknown type is a ValueError that names it). Imports are local because
    the channel modules import this one."""
    if type == "slack":
        from .slack import SlackChannel

        return SlackChannel
    if type == "email":
        from .email import EmailChannel

        return EmailChannel
    if type == "webhook":
        from .webhook import WebhookChannel

        return WebhookChannel
    known = ", ".join(CHANNEL_TYPES)
    raise ValueError(f"channel {name!r}: unknown type {type!r} (one of {known})")


def make_channel(factory: Any, type: str, name: str, **options: Any) -> Channel:
    """A channel of `type` named `name` made by `factory` (channel_factory's) from its config
    options; an unknown option, or one the channel refuses, is a ValueError that names it."""
    if type == "email" and "from" in options:
        options["sender"] = options.pop("from")
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(map(repr, unknown))
        raise ValueError(f"channel {name!r} ({type}): unknown option {listed}")
    channel: Channel = factory(name, **options)
    return channel


def build_channel(type: str, name: str, **options: Any) -> Channel:
    """A channel of `type` ("slack", "email", "webhook") named `name`, from its config options.

    Options are the channel's config keys (`from` is accepted for email's `sender`).
    An unknown type or option is a ValueError that names it.
    """
    return make_channel(channel_factory(type, name), type, name, **options)


class Deferred:
    """A configured channel whose code is loaded at its first send: build_channel(type, name,
    **options) then, and every send after goes to what it built.

    The daemon holds its channels for its whole life but sends seldom: its channels' modules,
    the renderer and the HTTP client (some 150 KiB of code) wait on disk until a notification
    is due. The configuration was checked when it was read (config/schema.py: URLs, formats,
    secrets, headers), so what build_channel checks again does not fail here; if it does
    (ValueError), the notification fails for good, with the reason. A channel whose code
    cannot be loaded (the package being upgraded, memory short) is a transient failure: the
    row stays in the durable outbox and is retried with backoff, and the next send tries the
    import again.
    """

    def __init__(self, type: str, name: str, **options: Any) -> None:
        self.type = type
        self.name = name
        self._options = options
        self._channel: Channel | None = None

    def __repr__(self) -> str:
        return f"Deferred({self.type!r}, {self.name!r}, loaded={self._channel is not None})"

    def channel(self) -> Channel:
        """The channel itself, built on the first call."""
        if self._channel is None:
            # The import first: whatever it raises (an ImportError while the package is being
            # upgraded, a corrupt .pyc's ValueError "bad marshal data", MemoryError) is transient;
            # only what the channel's constructor refuses (ValueError) fails the row for good.
            if self.type not in CHANNEL_TYPES:
                known = ", ".join(CHANNEL_TYPES)
                raise ChannelError(redact(f"channel {self.name!r}: unknown type {self.type!r} (one of {known})"),
                                   permanent=True)
            try:
                factory = channel_factory(self.type, self.name)
            except Exception as exc:  # ImportError (a package being upgraded), MemoryError, ...: try again later
                log.error("channel %r: its code could not be loaded (%s: %s); the notification waits in the outbox",
                          self.name, type(exc).__name__, redact(str(exc)))
                raise ChannelError(f"the {self.type} channel's code could not be loaded: {type(exc).__name__}: "
                                   f"{redact(str(exc))}", permanent=False) from None
            try:
                self._channel = make_channel(factory, self.type, self.name, **dict(self._options))
            except ValueError as exc:
                raise ChannelError(redact(str(exc)), permanent=True) from None
        return self._channel

    def send(self, n: Notification) -> str:
        return self.channel().send(n)

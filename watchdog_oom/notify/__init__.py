"""Notification channels: the Channel protocol, the one place that decides retry, the registry.

A channel takes plain values (URLs, hosts, addresses), renders a Notification its own
way and delivers it. Success is a short description of the answer ("HTTP 200",
"250 2.0.0 Ok: queued"); failure is a ChannelError that says whether trying again can
help and, when the server said so, when. The dispatcher stores both and decides the
schedule; channels never sleep or retry themselves.

Secrets (webhook URL paths, passwords, signing secrets) never appear in a message,
a detail or a repr: every text that leaves this package goes through `redact`.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .. import __version__
from ..model import Notification
from .render import printable, render_text

if TYPE_CHECKING:
    import ssl
    from email.message import Message

__all__ = [
    "Channel",
    "ChannelError",
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

USER_AGENT = f"watchdog-oom/{__version__}"
MASK = "***"
# How much of an answer's body is kept: enough for an error string or a short page,
# small enough that a misbehaving server cannot make the daemon hold megabytes.
MAX_BODY_READ = 64 * 1024
MAX_DETAIL = 200
MIN_URL_SECRET = 8


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


# --- HTTP ----------------------------------------------------------------------------


class HttpAnswer(NamedTuple):
    """What an HTTP server answered: status, headers (case-insensitive), start of the body."""

    status: int
    headers: Mapping[str, str] | Message
    body: bytes


def http_request(
    method: str,
    url: str,
    *,
    timeout: float,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> HttpAnswer:
    """One HTTP exchange; a failure to get any answer is a transient ChannelError.

    Redirects are not followed: a notification is a POST, and following a redirect
    would either drop its body (303) or send it, signed, somewhere not configured.
    A 3xx answer is therefore a permanent error asking to fix the URL.
    """
    # The standard library's client, loaded on the first request. requests (with urllib3
    # and the codecs its charset detection loads) held 6 MiB more for the rest of the
    # daemon's life once it had sent one notification: a watchdog must stay small after
    # the shortage it told of. The proxy variables (HTTPS_PROXY, NO_PROXY) are read as
    # requests read them, and TLS is verified against the same certificates (_tls).
    import http.client
    import urllib.error
    import urllib.request

    hidden = (*secrets_of_url(url), *secrets)
    parts = urllib.parse.urlsplit(url)
    server = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    sent = {"User-Agent": USER_AGENT, **_basic_auth(parts), **(headers or {})}
    request = urllib.request.Request(_without_userinfo(parts), data=body, headers=sent, method=method)
    # No redirect handler: a 3xx answer is handed back like any other status. The
    # certificates are loaded only for an https URL.
    tls = urllib.request.HTTPSHandler(context=_tls() if parts.scheme == "https" else None)
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), tls,
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    try:
        try:
            with opener.open(request, timeout=timeout) as response:
                return HttpAnswer(response.status, response.headers, response.read(MAX_BODY_READ))
        except urllib.error.HTTPError as answer:  # an answer whose status is not 2xx
            with answer:
                return HttpAnswer(answer.code, answer.headers, answer.read(MAX_BODY_READ))
    except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
            raise ChannelError(f"{server}: no answer within {timeout:g} s", permanent=False) from None
        reason = redact(_transport_reason(exc), hidden)
        raise ChannelError(f"{server}: {reason}", permanent=False) from None


def _basic_auth(parts: urllib.parse.SplitResult) -> dict[str, str]:
    """The Authorization header of a URL's user:password@, as requests sent it (RFC 7617)."""
    if parts.username is None and parts.password is None:
        return {}
    import base64

    pair = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")}


def _without_userinfo(parts: urllib.parse.SplitResult) -> str:
    """The URL without its user:password@ (sent as a header instead, never as the host)."""
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS context of every request, made once (loading certificates costs megabytes
    and milliseconds): verified against REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE where set,
    else certifi's bundle, the certificates requests trusted, else the system's."""
    import ssl

    cafile = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if not cafile:
        try:
            import certifi
        except ImportError:
            cafile = None
        else:
            cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile)


def _transport_reason(exc: BaseException) -> str:
    """The innermost cause of a failure to get an answer (refused, unreachable, reset)."""
    reason: BaseException = exc
    while True:
        inner = getattr(reason, "reason", None)
        if inner is None and reason.args:
            inner = reason.args[0]
        if not isinstance(inner, BaseException):
            break
        reason = inner
    return printable(str(reason)) or type(exc).__name__


def classify_http(
    status: int,
    headers: Mapping[str, str] | Message,
    body: bytes | str,
    *,
    secrets: Iterable[str] = (),
    now: datetime | None = None,
) -> ChannelError | None:
    """Decide from an HTTP answer whether delivery succeeded, may be retried, or failed for good.

    The rule is Alertmanager's (notify/util.go Retrier.Check): 2xx is delivered; 429 and
    5xx are transient, honouring Retry-After (RFC 9110 §10.2.3: seconds or an
    HTTP-date); 408 Request Timeout is transient too, being a timeout; every other
    answer (3xx, 4xx) is permanent, with the start of the body in the message because
    that is where the server says what is wrong. Returns None when delivered.
    """
    if 200 <= status < 300:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    detail = _detail(text, secrets)
    try:
        import http  # on first use: HTTPStatus is a large enum, and most answers are 2xx

        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    message = " ".join(p for p in (f"HTTP {status}", phrase) if p)
    transient = status == 429 or status == 408 or 500 <= status < 600
    if 300 <= status < 400 and headers.get("Location"):
        message += f" to {redact(headers['Location'], secrets)} (not followed: fix the URL)"
    if detail:
        message += f": {detail}"
    retry_after = parse_retry_after(headers.get("Retry-After"), now) if transient else None
    return ChannelError(
        message, permanent=not transient, retry_after=retry_after, status=status, detail=detail
    )


def _detail(text: str, secrets: Iterable[str]) -> str:
    one_line = printable(" ".join(text.split()))
    clean = redact(one_line, secrets)
    return clean if len(clean) <= MAX_DETAIL else clean[: MAX_DETAIL - 1] + "…"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as such
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


# --- registry ------------------------------------------------------------------------

CHANNEL_TYPES = ("slack", "email", "webhook")


def build_channel(type: str, name: str, **options: Any) -> Channel:
    """A channel of `type` ("slack", "email", "webhook") named `name`, from its config options.

    Options are the channel's config keys (`from` is accepted for email's `sender`).
    An unknown type or option is a ValueError that names it. Imports are local because
    the channel modules import this one.
    """
    factory: Any
    if type == "slack":
        from .slack import SlackChannel as factory
    elif type == "email":
        from .email import EmailChannel as factory

        if "from" in options:
            options["sender"] = options.pop("from")
    elif type == "webhook":
        from .webhook import WebhookChannel as factory
    else:
        known = ", ".join(CHANNEL_TYPES)
        raise ValueError(f"channel {name!r}: unknown type {type!r} (one of {known})")
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(map(repr, unknown))
        raise ValueError(f"channel {name!r} ({type}): unknown option {listed}")
    return factory(name, **options)

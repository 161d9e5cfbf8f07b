"""The HTTP exchange of the HTTP channels (webhook, Slack, the heartbeat), and the one place
that decides from an answer whether delivery succeeded, may be retried, or failed for good.

Loaded with the first channel that sends (notify.Deferred), not by the idle daemon.
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, NamedTuple

from .. import __version__
from . import ChannelError, redact, secrets_of_url
from .render import printable

if TYPE_CHECKING:
    import ssl
    from email.message import Message

USER_AGENT = f"watchdog-oom/{__version__}"
# How much of an answer's body is kept: enough for an error string or a short page,
# small enough that a misbehaving server cannot make the daemon hold megabytes.
MAX_BODY_READ = 64 * 1024
MAX_DETAIL = 200


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

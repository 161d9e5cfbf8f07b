"""The dead man's switch: a ping that tells an outside monitor the daemon is alive.

healthchecks.io and its kin accept GET, HEAD or POST to a check's URL and alert when
pings stop arriving (healthchecks.io docs, "Pinging API"). A POST may carry a short
text the check's log shows, e.g. a status line. The URL itself is the credential, so
it is masked in every error.
"""

from __future__ import annotations

from . import secrets_of_url
from .transport import classify_http, http_request


def ping(url: str, timeout: float = 10.0, body: str | None = None) -> str:
    """Ping `url` (GET, or POST with `body`); return "HTTP 200" or raise ChannelError."""
    answer = http_request(
        "GET" if body is None else "POST",
        url,
        body=None if body is None else body.encode("utf-8"),
        headers=None if body is None else {"Content-Type": "text/plain; charset=utf-8"},
        timeout=timeout,
    )
    error = classify_http(answer.status, answer.headers, answer.body, secrets=secrets_of_url(url))
    if error is not None:
        raise error
    return f"HTTP {answer.status}"

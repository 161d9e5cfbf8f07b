"""Real local servers for tests: an HTTP sink and an SMTP sink that record what they receive.

Both listen on 127.0.0.1 in a background thread, are context managers, record every
request or message in a thread-safe list and answer from a script, so a test can say
"the first attempt gets 500, the second 200" and then look at exactly what was sent.

    with HttpSink([(500, {}, "down"), (200, {}, "ok")]) as sink:
        post(sink.url + "/hook")
        request = sink.wait_for(1)[0]

    with HttpSink([HANG]) as hung:      # holds the first request until hung.release()

    with SmtpSink(tls="starttls", auth=("user", "pass")) as smtp:
        send(smtp.host, smtp.port, ssl_context=smtp.client_context())
        message = smtp.wait_for(1)[0].message
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# An HTTP answer: status, headers, body (str bodies are sent as UTF-8).
Answer = tuple[int, Mapping[str, str], "bytes | str"]
# An answer that is no answer: the request is read and the connection held open, silent,
# until the test calls `HttpSink.release()` (or the sink closes); then 200 "ok".
HANG: Answer = (-1, {}, "")


@dataclass(frozen=True)
class Request:
    """One HTTP request as the sink received it. Header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class _Recorder:
    """A thread-safe list that tests can wait on."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._changed = threading.Condition()

    def add(self, item: Any) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def snapshot(self) -> list[Any]:
        with self._changed:
            return list(self._items)

    def wait_for(self, n: int, timeout: float, what: str) -> list[Any]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._items) >= n, timeout):
                raise TimeoutError(f"{len(self._items)} {what} after {timeout} s, expected {n}")
            return list(self._items)


class _Script:
    """Answers consumed in order, then the default answer forever."""

    def __init__(self, answers: Iterable[Any], default: Any) -> None:
        self._answers = deque(answers)
        self._default = default
        self._lock = threading.Lock()

    def extend(self, answers: Iterable[Any]) -> None:
        with self._lock:
            self._answers.extend(answers)

    def next(self) -> Any:
        with self._lock:
            return self._answers.popleft() if self._answers else self._default


class HttpSink:
    """An HTTP server on 127.0.0.1 that records every request and answers from a script.

    `script` is a list of (status, headers, body) answers used in order; once it is
    used up every request gets 200 "ok". Any method is accepted. With `tls`, it speaks
    HTTPS with a certificate for 127.0.0.1 from a throwaway trustme CA (`ca`).
    """

    def __init__(self, script: Iterable[Answer] = (), *, tls: bool = False) -> None:
        self._script = _Script(script, (200, {}, "ok"))
        self._recorded = _Recorder()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.scheme = "https" if tls else "http"
        self.ca = trustme.CA() if tls else None
        if self.ca is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("127.0.0.1").configure_cert(context)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        # A short poll interval: shutdown() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.01,), name="HttpSink", daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: http://127.0.0.1:PORT (https with `tls`)."""
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    @property
    def requests(self) -> list[Request]:
        """The requests received so far, oldest first."""
        return self._recorded.snapshot()

    def answer(self, *answers: Answer) -> None:
        """Append answers to the script."""
        self._script.extend(answers)

    def wait_for(self, n: int, timeout: float = 60.0) -> list[Request]:
        """Block until at least `n` requests arrived; return them all. TimeoutError otherwise."""
        return self._recorded.wait_for(n, timeout, "requests")

    def release(self) -> None:
        """Let every request held by a HANG answer (and any later one) have 200 "ok"."""
        self._released.set()

    def __enter__(self) -> HttpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                sink._recorded.add(Request(self.command, self.path, headers, body))
                status, answer_headers, answer_body = sink._script.next()
                if status == HANG[0]:
                    sink._released.wait()
                    status, answer_headers, answer_body = 200, {}, "ok"
                payload = answer_body.encode("utf-8") if isinstance(answer_body, str) else answer_body
                self.send_response(status)
                for name, value in answer_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: tests look at `requests`, not at stderr."""

        return Handler


@dataclass(frozen=True)
class Received:
    """One message as the SMTP sink accepted it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    login: str | None


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that records the messages it accepts.

    tls: "none"; "starttls" (offered, and required before AUTH); or "ssl" (implicit
    TLS from the first byte). The certificate is issued for 127.0.0.1 and localhost by a
    throwaway trustme CA; `client_context()` trusts it.
    auth: (username, password) to require AUTH PLAIN/LOGIN before MAIL.
    replies: answers to DATA used in order (e.g. "451 4.3.0 Try again later"), then
    "250 2.0.0 Ok: queued".
    """

    def __init__(
        self,
        *,
        tls: Literal["none", "starttls", "ssl"] = "none",
        auth: tuple[str, str] | None = None,
        replies: Iterable[str] = (),
    ) -> None:
        self.host = "127.0.0.1"
        self.port = _free_port(self.host)
        self.ca = trustme.CA()
        self._recorded = _Recorder()
        self._replies = _Script(replies, "250 2.0.0 Ok: queued")
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
        options: dict[str, Any] = {}
        if tls == "starttls":
            options.update(tls_context=server_context, require_starttls=True)
        elif tls == "ssl":
            options.update(ssl_context=server_context)
        if auth is not None:
            options.update(
                authenticator=_Authenticator(*auth),
                auth_required=True,
                # aiosmtpd offers AUTH only over TLS unless told otherwise; with
                # implicit TLS its session does not know it is encrypted.
                auth_require_tls=tls == "starttls",
            )
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **options)

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this sink's CA (and nothing else)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and host name
        self.ca.configure_trust(context)
        return context

    @property
    def messages(self) -> list[Received]:
        """The messages accepted so far, oldest first."""
        return self._recorded.snapshot()

    def wait_for(self, n: int, timeout: float = 60.0) -> list[Received]:
        """Block until at least `n` messages arrived; return them all. TimeoutError otherwise."""
        return self._recorded.wait_for(n, timeout, "messages")

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._controller.stop()


class _Authenticator:
    """aiosmtpd authenticator accepting one username and password."""

    def __init__(self, username: str, password: str) -> None:
        self._expected = LoginPassword(username.encode(), password.encode())

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == self._expected
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class _Handler:
    """aiosmtpd handler: records the message, answers DATA from the sink's script."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self._sink._replies.next()
        if reply.startswith("250"):
            raw = bytes(envelope.original_content or envelope.content)
            # Parsed with local line endings, as a mailbox would store it; `raw` keeps CRLF.
            message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
            login = session.auth_data.login.decode() if session.authenticated else None
            self._sink._recorded.add(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message, raw, login)
            )
        return reply


def _free_port(host: str) -> int:
    """A port nothing listens on now (aiosmtpd's Controller cannot bind port 0)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]

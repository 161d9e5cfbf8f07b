"""The e-mail channel: a notification as a multipart/alternative message over SMTP.

Transport security is one of: `starttls` (RFC 3207, submission on port 587),
`ssl` (implicit TLS, RFC 8314, port 465) or `none` (port 25, a local relay). The
server's certificate is verified against the system's CAs unless a context is given.

SMTP replies decide retry (RFC 5321 §4.2.1): 4yz is a transient failure, 5yz a
permanent one (535 5.7.8 bad credentials included); no answer at all (refused,
reset, timed out, TLS failure) is transient. The message goes out with MAIL, RCPT
and DATA one by one rather than `sendmail`, so that the reply to DATA, which says
the server took responsibility for the message, is what `send` returns.
"""

from __future__ import annotations

import html
import re
import smtplib
import ssl
import types
from collections.abc import Sequence
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from ..model import Notification
from . import ChannelError, redact
from .render import (
    UNPRINTABLE,
    data_facts,
    headline,
    is_resolved,
    kill_facts,
    kills,
    printable,
    render_text,
)

SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = types.MappingProxyType({"starttls": 587, "ssl": 465, "none": 25})
SUBJECT_PREFIX = "[watchdog-oom]"
# RFC 5322 allows 998 characters a line; a subject people can read is far shorter.
MAX_SUBJECT = 200
# Non-ASCII text goes out quoted-printable or base64, so no server needs 8BITMIME.
_POLICY = SMTP.clone(cte_type="7bit")


def subject(n: Notification) -> str:
    """`[watchdog-oom] HOST: SUMMARY`, control characters stripped, at most MAX_SUBJECT long.

    Controls (C0, DEL, C1) and Unicode line separators could end the header or start
    another; bidi controls could make it read backwards. Each becomes a space.
    """
    text = f"{SUBJECT_PREFIX} {n.host}: {n.summary}"
    text = " ".join(UNPRINTABLE.sub(" ", text).split())
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1] + "…"


def render_html(n: Notification) -> str:
    """The HTML part: every machine-provided piece escaped with html.escape."""
    e = html.escape

    def table(facts: list[tuple[str, str]]) -> str:
        rows = "".join(
            f'<tr><th style="text-align:left;padding-right:1em">{e(label)}</th>'
            f"<td><code>{e(value)}</code></td></tr>"
            for label, value in facts
        )
        return f"<table>{rows}</table>"

    about = [("Host", n.host), ("Time", n.time), ("Severity", n.severity)]
    parts = [
        f"<h2>{e(headline(n))}</h2>",
        table([(label, printable(value)) for label, value in about]),
    ]
    if is_resolved(n):
        parts.append("<p>The condition has resolved.</p>")
    reported = kills(n)
    for number, kill in enumerate(reported, 1):
        title = f"Kill {number} of {len(reported)}" if len(reported) > 1 else "Kill"
        parts += [f"<h3>{title}</h3>", table(kill_facts(kill))]
    figures = data_facts(n.data)
    if figures:
        parts += ["<h3>Details</h3>", table(figures)]
    return (
        '<!DOCTYPE html>\n<html><body style="font-family:sans-serif">\n'
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def build_message(
    n: Notification, sender: str, to: Sequence[str], *, date: datetime
) -> EmailMessage:
    """The message for `n`: plain text and HTML alternatives, dated `date`."""
    message = EmailMessage(policy=_POLICY)
    message["Subject"] = subject(n)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(date)
    # The same Message-ID on every retry lets mail systems drop a duplicate delivery.
    local = re.sub(r"[^A-Za-z0-9.-]", "-", f"watchdog-oom.{n.id}")
    # A dot-atom (RFC 5322 §3.6.4): no empty labels, no leading or trailing dot.
    domain = ".".join(label for label in re.sub(r"[^A-Za-z0-9.-]", "-", n.host).split(".") if label) or "localhost"
    message["Message-ID"] = f"<{local}@{domain}>"
    # RFC 3834: a machine wrote this; vacation responders must not answer it.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(render_text(n))
    message.add_alternative(render_html(n), subtype="html")
    return message


class EmailChannel:
    """Sends notifications by SMTP to a fixed list of recipients."""

    def __init__(
        self,
        name: str,
        host: str,
        *,
        sender: str,
        to: Sequence[str],
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in SECURITY:
            raise ValueError(
                f"channel {name!r}: security must be one of {', '.join(SECURITY)}, not {security!r}"
            )
        if not to:
            raise ValueError(f"channel {name!r}: 'to' needs at least one address")
        if (username is None) != (password is None):
            raise ValueError(f"channel {name!r}: username and password go together")
        self._credentials = (username, password) if username is not None else None
        for address in (sender, *to):
            if UNPRINTABLE.search(address):
                raise ValueError(
                    f"channel {name!r}: address {address!r} contains control characters"
                )
            if not address.isascii():
                # smtplib sends commands in ASCII and we do not negotiate SMTPUTF8.
                raise ValueError(f"channel {name!r}: address {address!r} is not ASCII")
        self.name = name
        self.host = host
        self.port = port if port is not None else DEFAULT_PORTS[security]
        self.security = security
        self.username = username
        self.sender = sender
        self.to = list(to)
        self.timeout = timeout
        self._context = ssl_context or ssl.create_default_context()

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"EmailChannel({self.name!r}, {user}{self.host}:{self.port}, {self.security})"

    def send(self, n: Notification) -> str:
        """Send `n`; return the server's reply to DATA ("250 …") or raise ChannelError."""
        message = build_message(n, self.sender, self.to, date=datetime.now(timezone.utc))
        try:
            smtp = self._connect()
            try:
                if self._credentials is not None:
                    user, password = self._credentials
                    smtp.login(user, password or "")
                answer = self._transaction(smtp, message.as_bytes())
            except BaseException:
                smtp.close()
                raise
            self._quit(smtp)
            return answer
        except smtplib.SMTPResponseException as exc:
            raise self._error(exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise self._failure(str(exc), permanent=False) from None
        except smtplib.SMTPNotSupportedError as exc:
            # The server does not offer STARTTLS or AUTH: a configuration mismatch.
            raise self._failure(str(exc), permanent=True) from None
        except ssl.SSLCertVerificationError as exc:
            # Transient: certificates get fixed (renewed, the CA installed), and until
            # then the outbox keeps the notification rather than dropping it.
            reason = f"TLS certificate not trusted: {exc.verify_message}"
            raise self._failure(reason, permanent=False) from None
        except smtplib.SMTPException as exc:
            # "No suitable authentication method found" and its like: configuration.
            raise self._failure(str(exc), permanent=True) from None
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise self._failure(reason, permanent=False) from None

    @staticmethod
    def _quit(smtp: smtplib.SMTP) -> None:
        """Say QUIT after the message was accepted. Whatever the server answers now (a
        421 is allowed at any time, RFC 5321 §3.8) the mail is delivered: reporting a
        failure would send it twice. (smtplib's context manager raises on a QUIT reply
        other than 221, which is why it is not used.)"""
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    def _connect(self) -> smtplib.SMTP:
        """An SMTP session, encrypted as configured, greeted with EHLO."""
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self._context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                # starttls() sends EHLO first and forgets the answer after the
                # handshake, as RFC 3207 §4.2 requires; the EHLO below is the new one.
                smtp.starttls(context=self._context)
            smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _transaction(self, smtp: smtplib.SMTP, content: bytes) -> str:
        """MAIL, RCPT for each recipient, DATA. A partial delivery counts as delivered."""
        code, reply = smtp.mail(self.sender)
        if code != 250:
            raise self._error(code, reply)
        refused: dict[str, tuple[int, bytes]] = {}
        for address in self.to:
            code, reply = smtp.rcpt(address)
            if code not in (250, 251):
                refused[address] = (code, reply)
        if len(refused) == len(self.to):
            # Retry is worth it only if some refusal was temporary.
            reported = min(refused.values(), key=lambda answer: answer[0] // 100 != 4)
            raise self._error(*reported)
        code, reply = smtp.data(content)
        if code != 250:
            raise self._error(code, reply)
        answer = f"{code} {reply.decode('utf-8', 'replace')}"
        if refused:
            # Retrying would send it again to those who got it; report and move on.
            answer += "; refused: " + ", ".join(
                f"{address} ({code} {reply.decode('utf-8', 'replace')})"
                for address, (code, reply) in refused.items()
            )
        return self._clean(answer)

    def _error(self, code: int, reply: bytes | str) -> ChannelError:
        """The error for an SMTP reply: 4yz transient, anything else permanent."""
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        detail = self._clean(f"{code} {text}")
        return ChannelError(
            f"{self.host}:{self.port}: {detail}",
            permanent=not 400 <= code < 500,
            status=code,
            detail=detail,
        )

    def _failure(self, reason: str, *, permanent: bool) -> ChannelError:
        """The error for a session that ended without an SMTP reply to judge."""
        return ChannelError(self._clean(f"{self.host}:{self.port}: {reason}"), permanent=permanent)

    def _clean(self, text: str) -> str:
        """One printable line with the password (and any URL secrets) masked."""
        password = [self._credentials[1]] if self._credentials and self._credentials[1] else []
        return redact(printable(" ".join(text.split())), password)

"""The e-mail channel against a real aiosmtpd server: STARTTLS and implicit TLS on a throwaway CA, AUTH."""

from __future__ import annotations

import socket
import ssl
from datetime import datetime, timezone

import pytest

from tests.servers import SmtpSink
from watchdog_oom.model import Notification
from watchdog_oom.notify import ChannelError
from watchdog_oom.notify.email import EmailChannel

USER, PASSWORD = "watchdog", "correct-horse-battery-staple"
TIME = datetime(2026, 3, 14, 8, 26, 53, tzinfo=timezone.utc)
KILL = {
    "time": "2026-03-14T08:26:50+00:00",
    "pid": 4242,
    "process": "python3",
    "uid": 1000,
    "anon_rss_kb": 2_000_000,
    "total_vm_kb": 2_500_000,
    "constraint": "CONSTRAINT_MEMCG",
    "task_memcg": "/system.slice/app.service",
    "cmdline": "python3 app.py --workers 4",
    "unit": "app.service",
    "invoker": "kworker/u8:2",
    "invoker_pid": 77,
}


def notification(**changes) -> Notification:
    fields = dict(
        id="n-1",
        kind="oom.kill",
        time=TIME,
        host="web-01",
        severity="critical",
        summary="OOM kill: python3 (pid 4242)",
        data={"kills": [KILL]},
    )
    return Notification(**(fields | changes))


def channel(smtp: SmtpSink, **options) -> EmailChannel:
    settings = dict(
        port=smtp.port,
        security="starttls",
        username=USER,
        password=PASSWORD,
        sender="watchdog@example.com",
        to=["ops@example.com", "oncall@example.com"],
        ssl_context=smtp.client_context(),
        timeout=5,
    )
    return EmailChannel("ops-mail", smtp.host, **(settings | options))


def test_starttls_with_auth_delivers_a_multipart_alternative_message():
    with SmtpSink(tls="starttls", auth=(USER, PASSWORD)) as smtp:
        answer = channel(smtp).send(notification())
        received = smtp.wait_for(1)[0]
    assert answer == "250 2.0.0 Ok: queued"
    assert received.login == USER
    assert received.mail_from == "watchdog@example.com"
    assert received.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    message = received.message
    assert message["Subject"] == "[watchdog-oom] web-01: OOM kill: python3 (pid 4242)"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]


def test_plain_text_lists_every_fact_of_the_kill():
    with SmtpSink() as smtp:
        channel(smtp, security="none", username=None, password=None).send(notification())
        text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    for line in (
        "Victim: python3 (pid 4242, uid 1000)",
        "Command line: python3 app.py --workers 4",
        "Unit: app.service",
        "Cgroup: /system.slice/app.service",
        "Constraint: CONSTRAINT_MEMCG",
        "Memory: anon-rss 1.9 GiB, total-vm 2.4 GiB",
        "Invoker: kworker/u8:2 (pid 77)",
        "Time: 2026-03-14T08:26:50+00:00",
    ):
        assert f"  {line}\n" in text


def test_resolved_notification_says_so_with_its_figures():
    n = notification(
        kind="commit.resolved",
        severity="info",
        summary="Commit back to 80 %",
        data={"commit_percent": 80.25},
        reason="resolved",
    )
    with SmtpSink() as smtp:
        channel(smtp, security="none", username=None, password=None).send(n)
        text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    assert text.startswith("RESOLVED: Commit back to 80 %\n")
    assert "The condition has resolved." in text
    assert "  commit percent: 80.25 %\n" in text


def test_html_escapes_machine_text_and_subject_loses_control_characters():
    hostile = KILL | {"process": "<script>alert(1)</script>", "cmdline": 'a "&" <b>'}
    n = notification(summary="OOM kill\r\nBcc: victim@example.org\x00\x07\x7f\x85 done", data={"kills": [hostile]})
    with SmtpSink() as smtp:
        channel(smtp, security="none", username=None, password=None).send(n)
        received = smtp.wait_for(1)[0]
    html = received.message.get_body(("html",)).get_content()
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a &quot;&amp;&quot; &lt;b&gt;" in html
    assert received.message["Subject"] == "[watchdog-oom] web-01: OOM kill Bcc: victim@example.org done"
    assert received.message["Bcc"] is None
    assert received.rcpt_tos == ["ops@example.com", "oncall@example.com"]


def test_long_subject_is_capped():
    with SmtpSink() as smtp:
        channel(smtp, security="none", username=None, password=None).send(notification(summary="x" * 5000))
        subject = smtp.wait_for(1)[0].message["Subject"]
    assert len(subject) == 200 and subject.endswith("…")


# aiosmtpd cannot tell that an implicit-TLS session is encrypted, so the sink must
# allow AUTH "without TLS" there, and aiosmtpd warns about it.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_implicit_tls_delivers():
    with SmtpSink(tls="ssl", auth=(USER, PASSWORD)) as smtp:
        answer = channel(smtp, security="ssl").send(notification())
        assert smtp.wait_for(1)[0].login == USER
    assert answer.startswith("250 ")


def test_untrusted_certificate_is_an_error_and_nothing_is_sent():
    with SmtpSink(tls="starttls", auth=(USER, PASSWORD)) as smtp:
        untrusting = ssl.create_default_context()  # the system CAs do not know the test CA
        with pytest.raises(ChannelError) as failed:
            channel(smtp, ssl_context=untrusting).send(notification())
        assert smtp.messages == []
    assert "certificate" in failed.value.message
    assert not failed.value.permanent


def test_wrong_password_is_permanent_and_the_error_does_not_show_it():
    with SmtpSink(tls="starttls", auth=(USER, PASSWORD)) as smtp:
        wrong = channel(smtp, password="hunter2-wrong-password")
        with pytest.raises(ChannelError) as failed:
            wrong.send(notification())
        assert smtp.messages == []
    assert failed.value.permanent
    assert failed.value.status == 535
    for text in (str(failed.value), repr(failed.value), failed.value.detail, repr(wrong)):
        assert "hunter2-wrong-password" not in text and PASSWORD not in text


def test_temporary_refusal_is_transient_and_the_retry_is_delivered():
    with SmtpSink(replies=["451 4.3.0 Try again later"]) as smtp:
        plain = channel(smtp, security="none", username=None, password=None)
        with pytest.raises(ChannelError) as failed:
            plain.send(notification())
        assert plain.send(notification()).startswith("250 ")
        assert len(smtp.wait_for(1)) == 1
    assert not failed.value.permanent
    assert failed.value.status == 451


def test_permanent_refusal_of_data_is_permanent():
    with SmtpSink(replies=["554 5.7.1 Message rejected"]) as smtp:
        with pytest.raises(ChannelError) as failed:
            channel(smtp, security="none", username=None, password=None).send(notification())
    assert failed.value.permanent
    assert "554 5.7.1 Message rejected" in failed.value.message


def test_unreachable_server_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = EmailChannel("ops-mail", "127.0.0.1", port=port, sender="w@example.com", to=["o@example.com"])
    with pytest.raises(ChannelError) as failed:
        unreachable.send(notification())
    assert not failed.value.permanent
    assert f"127.0.0.1:{port}" in failed.value.message


def test_port_defaults_follow_the_security_mode():
    ports = {
        security: EmailChannel("m", "smtp.example.com", security=security, sender="a@b", to=["c@d"]).port
        for security in ("starttls", "ssl", "none")
    }
    assert ports == {"starttls": 587, "ssl": 465, "none": 25}


def test_a_reply_to_quit_after_the_message_was_accepted_is_not_a_failure():
    import socket as socketlib
    import threading

    server = socketlib.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def scripted() -> None:
        conn, _ = server.accept()
        f = conn.makefile("rwb")

        def say(line: bytes) -> None:
            f.write(line + b"\r\n")
            f.flush()

        say(b"220 test ESMTP")
        while line := f.readline():
            verb = line.split()[0].upper()
            if verb == b"EHLO":
                say(b"250 test")
            elif verb == b"DATA":
                say(b"354 go ahead")
                while f.readline() not in (b".\r\n", b""):
                    pass
                say(b"250 2.0.0 queued as 42")
            elif verb == b"QUIT":
                say(b"421 4.3.2 shutting down")
                break
            else:
                say(b"250 ok")
        conn.close()

    thread = threading.Thread(target=scripted, daemon=True)
    thread.start()
    channel = EmailChannel("mail", "127.0.0.1", port=port, security="none", sender="w@example.com",
                           to=["ops@example.com"])
    assert channel.send(notification()).startswith("250 2.0.0 queued as 42")
    thread.join(timeout=5)
    server.close()


def test_non_ascii_addresses_are_refused_when_the_channel_is_made():
    with pytest.raises(ValueError, match="not ASCII"):
        EmailChannel("mail", "127.0.0.1", security="none", sender="wätchdog@example.org", to=["ops@example.com"])


def test_likely_victims_read_as_lines_not_json():
    from watchdog_oom.notify.render import render_text

    n = notification(kind="commit.critical", summary="Committed memory is 196.79% of RAM+swap", data={
        "commit_percent": 196.79, "alert_id": 3, "key": "commit",
        "victims": [{"pid": 101, "process": "java", "rss_kb": 9_000_000, "oom_score": 1350, "critical": False},
                    {"pid": 202, "process": "mysqld", "rss_kb": 6_000_000, "oom_score": 1100, "critical": True}]})
    text = render_text(n)
    assert "java (pid 101, 8.6 GiB, oom_score 1350); mysqld (pid 202, 5.7 GiB, oom_score 1100, critical)" in text
    assert '{"pid"' not in text and "alert id" not in text

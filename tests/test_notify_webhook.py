"""The webhook channel against a real local HTTP server, and the HTTP rules all channels share."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.servers import HttpSink
from watchdog_oom.model import Notification
from watchdog_oom.notify import ChannelError, build_channel, classify_http, mask_secret
from watchdog_oom.notify.email import EmailChannel
from watchdog_oom.notify.webhook import WebhookChannel, fingerprint, verify_signature

KEY = bytes(range(32))
ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + base64.b64encode(KEY).decode()
TIME = datetime(2026, 3, 14, 9, 26, 53, tzinfo=timezone(timedelta(hours=1)))
KILL = {
    "id": 7,
    "host": "web-01",
    "time": "2026-03-14T09:26:50+01:00",
    "pid": 4242,
    "process": "python3",
    "uid": 1000,
    "anon_rss_kb": 2_000_000,
    "total_vm_kb": 2_500_000,
    "constraint": "CONSTRAINT_MEMCG",
    "task_memcg": "/system.slice/app.service",
    "cmdline": "python3 app.py",
    "unit": "app.service",
}


def kill_notification(**changes) -> Notification:
    fields = dict(
        id="n-123",
        kind="oom.kill",
        time=TIME,
        host="web-01",
        severity="critical",
        summary="OOM kill: python3 (pid 4242)",
        data={"kills": [KILL]},
    )
    return Notification(**(fields | changes))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_server_error_is_transient_and_the_next_attempt_is_delivered():
    with HttpSink([(500, {}, "database down")]) as sink:
        channel = WebhookChannel("pager", sink.url + "/oom")
        with pytest.raises(ChannelError) as failed:
            channel.send(kill_notification())
        assert channel.send(kill_notification()) == "HTTP 200"
        assert len(sink.wait_for(2)) == 2
    assert not failed.value.permanent
    assert failed.value.status == 500
    assert "database down" in failed.value.message


def test_too_many_requests_carries_retry_after_seconds():
    with HttpSink([(429, {"Retry-After": "7"}, "slow down")]) as sink:
        with pytest.raises(ChannelError) as failed:
            WebhookChannel("pager", sink.url).send(kill_notification())
    assert not failed.value.permanent
    assert failed.value.retry_after == 7


def test_retry_after_as_http_date_is_seconds_from_now():
    now = datetime(2026, 3, 14, 8, 0, 0, tzinfo=timezone.utc)
    error = classify_http(503, {"Retry-After": "Sat, 14 Mar 2026 08:01:30 GMT"}, b"", now=now)
    assert error is not None and not error.permanent
    assert error.retry_after == 90


def test_not_found_is_permanent_with_the_body_in_the_message():
    with HttpSink([(404, {}, "no such hook")]) as sink:
        with pytest.raises(ChannelError) as failed:
            WebhookChannel("pager", sink.url + "/oom").send(kill_notification())
    assert failed.value.permanent
    assert failed.value.retry_after is None
    assert failed.value.message == "HTTP 404 Not Found: no such hook"


def test_redirect_is_not_followed_and_is_permanent():
    with HttpSink([(301, {"Location": "http://elsewhere.example/x"}, "")]) as sink:
        with pytest.raises(ChannelError) as failed:
            WebhookChannel("pager", sink.url).send(kill_notification())
        assert len(sink.requests) == 1
    assert failed.value.permanent
    assert "not followed" in failed.value.message


def test_refused_connection_is_transient():
    channel = WebhookChannel("pager", f"http://127.0.0.1:{closed_port()}/hook")
    with pytest.raises(ChannelError) as failed:
        channel.send(kill_notification())
    assert not failed.value.permanent
    assert "refused" in failed.value.message.lower()


def test_signature_verifies_with_the_library_and_an_independent_hmac():
    with HttpSink() as sink:
        WebhookChannel("pager", sink.url, secret=SECRET).send(kill_notification())
        request = sink.wait_for(1)[0]
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"] == "n-123"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert verify_signature(SECRET, headers, request.body)
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == "v1," + expected


def test_tampered_body_stale_timestamp_or_other_secret_fail_verification():
    with HttpSink() as sink:
        WebhookChannel("pager", sink.url, secret=SECRET).send(kill_notification())
        request = sink.wait_for(1)[0]
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert not verify_signature(SECRET, request.headers, request.body + b" ")
    assert not verify_signature(other, request.headers, request.body)
    assert not verify_signature(SECRET, request.headers, request.body, now=time.time() + 3600)


def test_every_attempt_of_one_notification_has_the_same_webhook_id():
    with HttpSink([(502, {}, "")]) as sink:
        channel = WebhookChannel("pager", sink.url, secret=SECRET)
        with pytest.raises(ChannelError):
            channel.send(kill_notification())
        channel.send(kill_notification())
        first, second = sink.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "n-123"
    assert verify_signature(SECRET, second.headers, second.body)


def test_native_body_has_the_documented_fields_and_the_kill_records():
    with HttpSink() as sink:
        WebhookChannel("pager", sink.url).send(kill_notification())
        body = sink.wait_for(1)[0].json()
    assert body["type"] == "oom.kill"
    assert body["id"] == "n-123"
    assert body["time"] == "2026-03-14T09:26:53+01:00"
    assert (body["host"], body["severity"]) == ("web-01", "critical")
    assert body["summary"] == "OOM kill: python3 (pid 4242)"
    assert body["data"]["kills"] == [KILL]


def test_alertmanager_body_is_webhook_version_4_with_one_alert_per_kill():
    second = KILL | {"pid": 4243, "process": "node", "task_memcg": "/user.slice"}
    notification = kill_notification(data={"kills": [KILL, second]})
    with HttpSink() as sink:
        WebhookChannel("pager", sink.url, format="alertmanager").send(notification)
        body = sink.wait_for(1)[0].json()
    assert set(body) == {
        "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts",
    }
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "pager"
    assert body["truncatedAlerts"] == 0
    assert body["groupLabels"] == {"alertname": "OomKill", "instance": "web-01"}
    assert body["groupKey"] == '{}:{alertname="OomKill", instance="web-01"}'
    assert body["commonLabels"]["alertname"] == "OomKill"
    assert "process" not in body["commonLabels"]  # the two victims differ
    assert [a["labels"]["process"] for a in body["alerts"]] == ["python3", "node"]
    alert = body["alerts"][0]
    assert set(alert) == {
        "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint",
    }
    assert alert["labels"] == {
        "alertname": "OomKill", "host": "web-01", "instance": "web-01", "severity": "critical",
        "process": "python3", "pid": "4242", "unit": "app.service",
        "cgroup": "/system.slice/app.service", "constraint": "CONSTRAINT_MEMCG",
    }
    assert alert["annotations"]["summary"] == "OOM kill: python3 (pid 4242)"
    assert "Cgroup: /system.slice/app.service" in alert["annotations"]["description"]
    assert alert["startsAt"] == KILL["time"]
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["fingerprint"] == fingerprint(alert["labels"])
    assert body["alerts"][1]["fingerprint"] != alert["fingerprint"]


def test_alertmanager_resolved_notification_resolves_the_same_alert():
    resolved = Notification(
        id="n-9", kind="commit.resolved", time=TIME, host="web-01", severity="info",
        summary="Commit back to 80 %", data={"commit_percent": 80.0}, reason="resolved",
    )
    firing = dataclasses.replace(resolved, kind="commit.warning", severity="warning", reason="first")
    with HttpSink() as sink:
        channel = WebhookChannel("pager", sink.url, format="alertmanager")
        channel.send(firing)
        channel.send(resolved)
        fired, ended = (r.json() for r in sink.wait_for(2))
    assert (fired["status"], ended["status"]) == ("firing", "resolved")
    assert fired["groupKey"] == ended["groupKey"] == '{}:{alertname="Commit", instance="web-01"}'
    assert ended["alerts"][0]["endsAt"] == "2026-03-14T09:26:53+01:00"


def test_alertmanager_fingerprint_is_fnv1a_of_sorted_labels():
    assert fingerprint({}) == "cbf29ce484222325"  # the FNV-1a 64 offset basis
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "12"}) != fingerprint({"a1": "2"})


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode(), ""])
def test_invalid_secret_is_refused_at_construction_without_repeating_it(secret):
    with pytest.raises(ValueError) as refused:
        WebhookChannel("pager", "https://hooks.example.com/oom", secret=secret)
    assert "whsec_" in str(refused.value)
    assert secret.removeprefix("whsec_") not in str(refused.value) or not secret


def test_secret_without_prefix_is_accepted_as_the_reference_libraries_do():
    with HttpSink() as sink:
        WebhookChannel("pager", sink.url, secret=SECRET.removeprefix("whsec_")).send(kill_notification())
        request = sink.wait_for(1)[0]
    assert verify_signature(SECRET, request.headers, request.body)


def test_no_error_or_repr_contains_the_url_secret_or_header_token():
    token = "T0KENb7c9d0e1f2a3b4c5d6e7f8a9"
    auth = "Bearer s3cr3t-b3ar3r-t0k3n"
    # The server echoes the request path and the token back, as some error pages do.
    with HttpSink([(404, {}, f"Cannot POST /hook/{token}?key={token} ({auth})")]) as sink:
        url = f"{sink.url}/hook/{token}?key={token}"
        channel = WebhookChannel("pager", url, secret=SECRET, headers={"Authorization": auth})
        with pytest.raises(ChannelError) as echoed:
            channel.send(kill_notification())
    refused = WebhookChannel("pager", f"http://u:pw-{token}@127.0.0.1:{closed_port()}/hook/{token}", secret=SECRET)
    with pytest.raises(ChannelError) as unreachable:
        refused.send(kill_notification())
    texts = [
        str(echoed.value), echoed.value.detail, str(unreachable.value), repr(channel), repr(refused),
    ]
    for text in texts:
        for secret in (token, auth, SECRET, SECRET.removeprefix("whsec_")):
            assert secret not in text, text


def test_mask_secret_hides_tokens_passwords_and_query_values():
    assert (
        mask_secret("https://hooks.slack.com/services/T0123ABCD/B0123ABCD/abcdefABCDEF0123456789xy")
        == "https://hooks.slack.com/services/***/***/***"
    )
    assert mask_secret("https://hooks.example.com/oom") == "https://hooks.example.com/oom"
    assert mask_secret("https://u:hunter2@h.example:8443/v1/x?token=abc&x=1") == (
        "https://u:***@h.example:8443/v1/x?token=***&x=***"
    )
    assert mask_secret(f"secret: {SECRET} at http://h/ping/{'a' * 8}-1234") == "secret: whsec_*** at http://h/ping/***"


def test_build_channel_makes_each_type_and_names_unknown_options():
    webhook = build_channel("webhook", "pager", url="https://hooks.example.com/oom", format="alertmanager")
    assert isinstance(webhook, WebhookChannel) and webhook.name == "pager"
    mail = build_channel("email", "ops-mail", host="smtp.example.com", to=["ops@example.com"],
                         **{"from": "w@example.com"})
    assert isinstance(mail, EmailChannel) and mail.sender == "w@example.com" and mail.port == 587
    with pytest.raises(ValueError, match="'min_severity'"):
        build_channel("slack", "ops-chat", webhook_url="https://hooks.slack.com/x", min_severity="warning")
    with pytest.raises(ValueError, match="unknown type 'pager'"):
        build_channel("pager", "x")


def test_https_with_a_certificate_no_trusted_authority_signed_is_a_transient_error():
    with HttpSink(tls=True) as sink:
        with pytest.raises(ChannelError) as refused:
            WebhookChannel("pager", f"{sink.url}/hook", secret=SECRET).send(kill_notification())
        assert sink.requests == []
    assert not refused.value.permanent
    assert "CERTIFICATE_VERIFY_FAILED" in refused.value.message


def test_https_is_delivered_where_the_ca_bundle_named_in_the_environment_trusts_the_server(tmp_path):
    # REQUESTS_CA_BUNDLE, as requests read it; in a process of its own, as the daemon
    # reads it once, at its first notification.
    with HttpSink(tls=True) as sink:
        sink.ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        code = ("from watchdog_oom.notify.webhook import WebhookChannel\n"
                "from tests.test_notify_webhook import SECRET, kill_notification\n"
                f"print(WebhookChannel('pager', {sink.url + '/hook'!r}, secret=SECRET).send(kill_notification()))")
        env = {**os.environ, "REQUESTS_CA_BUNDLE": str(tmp_path / "ca.pem"), "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "HTTP 200"
        assert [r.path for r in sink.wait_for(1)] == ["/hook"]


def test_a_user_and_password_in_the_url_go_as_basic_authorization_not_to_the_host():
    with HttpSink() as sink:
        url = sink.url.replace("://", "://ops:p%40ss%3Aword@") + "/hook"
        WebhookChannel("pager", url, secret=SECRET).send(kill_notification())
        request = sink.wait_for(1)[0]
    assert request.path == "/hook"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"ops:p@ss:word").decode()

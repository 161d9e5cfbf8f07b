"""The dead man's switch ping against a real local HTTP server."""

from __future__ import annotations

import pytest

from tests.servers import HttpSink
from watchdog_oom.notify import ChannelError
from watchdog_oom.notify.heartbeat import ping

CHECK = "/ping/5f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8"


def test_ping_without_body_is_a_get():
    with HttpSink() as sink:
        assert ping(sink.url + CHECK) == "HTTP 200"
        request = sink.wait_for(1)[0]
    assert (request.method, request.path, request.body) == ("GET", CHECK, b"")


def test_ping_with_body_posts_it_as_text():
    with HttpSink() as sink:
        ping(sink.url + CHECK, body="commit 42 %, 0 kills")
        request = sink.wait_for(1)[0]
    assert request.method == "POST"
    assert request.headers["content-type"] == "text/plain; charset=utf-8"
    assert request.body == b"commit 42 %, 0 kills"


def test_rate_limited_ping_is_transient_with_retry_after():
    with HttpSink([(429, {"Retry-After": "60"}, "rate limited")]) as sink:
        with pytest.raises(ChannelError) as failed:
            ping(sink.url + CHECK)
    assert not failed.value.permanent
    assert failed.value.retry_after == 60


def test_unknown_check_is_permanent_and_the_error_hides_the_check_uuid():
    with HttpSink([(404, {}, f"not found: {CHECK}")]) as sink:
        with pytest.raises(ChannelError) as failed:
            ping(sink.url + CHECK)
    assert failed.value.permanent
    assert "5f1a2b3c" not in str(failed.value)

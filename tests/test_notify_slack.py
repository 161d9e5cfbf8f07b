"""The Slack channel against a real local HTTP server standing in for an incoming webhook."""

from __future__ import annotations

import json
import re
import socket
from datetime import datetime, timezone

import pytest

from tests.servers import HttpSink
from watchdog_oom.model import Notification
from watchdog_oom.notify import ChannelError, mask_secret
from watchdog_oom.notify.slack import SlackChannel

TOKEN = "abcdefABCDEF0123456789xy"
HOOK_PATH = f"/services/T0123ABCD/B0123ABCD/{TOKEN}"
TIME = datetime(2026, 3, 14, 8, 26, 53, tzinfo=timezone.utc)


def kill(**changes) -> dict:
    record = {
        "time": "2026-03-14T08:26:50+00:00",
        "pid": 4242,
        "process": "python3",
        "uid": 1000,
        "anon_rss_kb": 2_000_000,
        "total_vm_kb": 2_500_000,
        "constraint": "CONSTRAINT_MEMCG",
        "task_memcg": "/system.slice/app.service",
        "cmdline": "python3 app.py",
        "unit": "app.service",
        "invoker": "python3",
        "invoker_pid": 4242,
    }
    return record | changes


def notification(*kills: dict, **changes) -> Notification:
    fields = dict(
        id="n-1",
        kind="oom.kill",
        time=TIME,
        host="web-01",
        severity="critical",
        summary="OOM kill: python3 (pid 4242)",
        data={"kills": list(kills) or [kill()]},
    )
    return Notification(**(fields | changes))


def post(n: Notification) -> dict:
    """Send `n` through the channel; return the JSON body Slack would have received."""
    with HttpSink() as sink:
        assert SlackChannel("ops-chat", sink.url + HOOK_PATH).send(n) == "HTTP 200"
        request = sink.wait_for(1)[0]
    assert request.path == HOOK_PATH
    assert request.headers["content-type"].startswith("application/json")
    return request.json()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def all_text(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_process_names_and_command_lines_cannot_mention_anyone():
    hostile = kill(process="<!channel>", cmdline="x & <@U1>", task_memcg="/a/<!here>", unit="<http://evil|ok>")
    n = notification(hostile, summary="OOM kill: <!channel> (pid 4242)")
    text = all_text(post(n))
    for raw in ("<!channel>", "<@U1>", "<!here>", "<http://evil|ok>"):
        assert raw not in text
    assert "<" not in text and ">" not in text
    assert not re.search(r"&(?!amp;|lt;|gt;)", text), "every & is an entity"
    assert "&lt;!channel&gt;" in text
    assert "x &amp; &lt;@U1&gt;" in text


def test_backticks_cannot_end_the_code_span_around_a_value():
    payload = post(notification(kill(process="a`*bold*`b")))
    fields = [f["text"] for b in payload["blocks"] for f in b.get("fields", [])]
    victim = next(f for f in fields if f.startswith("*Victim*"))
    assert victim.count("`") == 2


def test_kill_message_has_header_fields_and_context():
    payload = post(notification())
    blocks = payload["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "CRITICAL: OOM kill: python3 (pid 4242)", "emoji": False},
    }
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for b in blocks for f in b.get("fields", [])}
    assert fields["*Victim*"] == "`python3 (pid 4242, uid 1000)`"
    assert fields["*Host*"] == "`web-01`"
    assert fields["*Cgroup*"] == "`/system.slice/app.service`"
    assert fields["*Memory*"] == "`anon-rss 1.9 GiB, total-vm 2.4 GiB`"
    assert any(b.get("text", {}).get("text") == "*Command line*\n`python3 app.py`" for b in blocks)
    assert blocks[-1]["type"] == "context"
    assert "python3 (pid 4242, uid 1000)" in payload["text"]


def test_other_notifications_show_their_figures():
    n = notification(
        kind="commit.warning",
        severity="warning",
        summary="Commit at 93.5 % of RAM + swap",
        data={"commit_percent": 93.456, "committed_as_kb": 15_000_000},
    )
    fields = [f["text"] for b in post(n)["blocks"] for f in b.get("fields", [])]
    assert "*commit percent*\n`93.46 %`" in fields
    assert "*committed as kb*\n`14.3 GiB (15,000,000 kB)`" in fields


def test_block_kit_limits_hold_for_many_kills_and_huge_text():
    kills = [kill(pid=i, cmdline="x" * 10_000, task_memcg="/" + "c" * 5_000) for i in range(60)]
    payload = post(notification(*kills, summary="S" * 500))
    blocks = payload["blocks"]
    assert len(blocks) <= 50
    assert len(blocks[0]["text"]["text"]) <= 150
    for block in blocks:
        assert len(block.get("text", {}).get("text", "")) <= 3000
        assert len(block.get("fields", [])) <= 10
        assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
    assert "more kills" in all_text(blocks[-2])


@pytest.mark.parametrize(
    "status, answer",
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (403, "invalid_token"),
        (404, "channel_not_found"),
        (404, "no_service"),
        (410, "channel_is_archived"),
    ],
)
def test_slack_refusals_are_permanent_and_say_why(status, answer):
    with HttpSink([(status, {}, answer)]) as sink:
        with pytest.raises(ChannelError) as failed:
            SlackChannel("ops-chat", sink.url + HOOK_PATH).send(notification())
    assert failed.value.permanent
    assert failed.value.status == status
    assert answer in failed.value.message


def test_revoked_webhook_is_permanent_whatever_the_status():
    with HttpSink([(500, {}, "no_service")]) as sink:
        with pytest.raises(ChannelError) as failed:
            SlackChannel("ops-chat", sink.url + HOOK_PATH).send(notification())
    assert failed.value.permanent


def test_rate_limit_is_transient_with_retry_after():
    with HttpSink([(429, {"Retry-After": "30"}, "rate_limited")]) as sink:
        with pytest.raises(ChannelError) as failed:
            SlackChannel("ops-chat", sink.url + HOOK_PATH).send(notification())
    assert not failed.value.permanent
    assert failed.value.retry_after == 30


def test_slack_server_error_is_transient():
    with HttpSink([(500, {}, "rollup_error")]) as sink:
        channel = SlackChannel("ops-chat", sink.url + HOOK_PATH)
        with pytest.raises(ChannelError) as failed:
            channel.send(notification())
        assert channel.send(notification()) == "HTTP 200"
    assert not failed.value.permanent


def test_errors_and_repr_never_show_the_webhook_token():
    with HttpSink([(404, {}, f"no route for POST {HOOK_PATH}")]) as sink:
        channel = SlackChannel("ops-chat", sink.url + HOOK_PATH)
        with pytest.raises(ChannelError) as echoed:
            channel.send(notification())
    with pytest.raises(ChannelError) as unreachable:
        SlackChannel("ops-chat", f"http://127.0.0.1:{closed_port()}{HOOK_PATH}").send(notification())
    for text in (str(echoed.value), echoed.value.detail, str(unreachable.value), repr(channel)):
        assert TOKEN not in text, text
    assert mask_secret("https://hooks.slack.com" + HOOK_PATH) == "https://hooks.slack.com/services/***/***/***"


def test_a_burst_of_kills_stays_within_slacks_total_text_per_message():
    from watchdog_oom.notify.slack import MAX_MESSAGE_TEXT, _text_size, render_payload

    burst = notification(*(kill(pid=1000 + i, cmdline="java " + "-Dx=" * 2500) for i in range(300)))
    payload = render_payload(burst)
    assert _text_size(payload["blocks"]) <= MAX_MESSAGE_TEXT
    assert "more kills" in json.dumps(payload)


def test_blocks_slack_refuses_are_sent_again_as_text():
    with HttpSink([(400, {}, "msg_blocks_too_long")]) as sink:
        assert SlackChannel("chat", sink.url + "/services/T/B/x").send(notification(kill())) == "HTTP 200"
        first, second = sink.wait_for(2)
    assert "blocks" in first.json() and set(second.json()) == {"text"}

"""Caps on untrusted text: where kills are stored, in webhook and Slack bodies, in the daemon's log."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from servers import HttpSink

from watchdog_oom.bounds import BODY_MAX, CMDLINE_MAX, LOG_MESSAGE_MAX, PROCESS_MAX, cap, cap_kill, is_truncated
from watchdog_oom.cli.run import SafeFormatter
from watchdog_oom.model import Notification, OomKill, TaskRow
from watchdog_oom.notify import build_channel

MB = 1024 * 1024
T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def huge_kill(i: int = 0, size: int = MB) -> dict:
    return {"id": i, "pid": 1000 + i, "process": "x" * size, "cmdline": "y" * size, "task_memcg": "/" + "z" * size,
            "host": "web-01", "time": T.isoformat()}


def stored_kill(i: int) -> dict:
    """A kill as the store gives it back: every field at its cap."""
    return huge_kill(i, CMDLINE_MAX) | {"process": "x" * PROCESS_MAX}


def kills_notification(kills: list[dict]) -> Notification:
    return Notification(id="n-1", kind="oom.kill", time=T, host="web-01", severity="critical",
                        summary=f"{len(kills)} OOM kills", data={"kills": kills, "count": len(kills)})


def test_cap_keeps_what_fits_and_marks_what_it_cut():
    assert cap("sshd", PROCESS_MAX) == "sshd"
    cut = cap("a" * 1000, 10)
    cut = cap("a" * 1000, 100)
    assert len(cut) == 100 and cut.startswith("a" * 10) and "truncated: 1000 characters" in cut and is_truncated(cut)
    assert not is_truncated("sshd")


def test_a_kill_is_capped_field_by_field_and_a_fitting_one_is_untouched():
    small = OomKill(pid=1, process="java", cmdline="java -jar app.jar")
    assert cap_kill(small) is small
    big = OomKill(pid=1, process="p" * MB, cmdline="c" * MB, task_memcg="/" + "g" * MB,
                  task_table=(TaskRow(1, 0, 1, 1, 1, 1, 0, 0, "n" * MB),), memory_info=("m" * MB,),
                  extra={"raw": "r" * MB})
    capped = cap_kill(big)
    assert len(capped.process) == PROCESS_MAX and is_truncated(capped.process)
    assert len(capped.cmdline) < CMDLINE_MAX + 40 and is_truncated(capped.cmdline)
    assert len(capped.task_memcg) < 4096 + 40
    assert len(capped.task_table[0].name) < PROCESS_MAX + 40
    assert len(capped.memory_info[0]) < 8192 + 40 and len(capped.extra["raw"]) < 8192 + 40


def test_the_store_keeps_capped_names_and_command_lines(store, t0):
    with store.tx() as tx:
        tx.add_kill(OomKill(pid=7, process="x" * MB, cmdline="y" * MB, time=t0, source="kmsg"), t0)
    (row,) = store.kills()
    assert row.process.startswith("x" * 200) and len(row.process) == PROCESS_MAX and is_truncated(row.process)
    assert len(row.cmdline) < CMDLINE_MAX + 40


def test_a_native_webhook_body_of_megabyte_names_is_capped_and_says_so():
    with HttpSink() as sink:
        build_channel("webhook", "hook", url=sink.url).send(kills_notification([huge_kill(i) for i in range(3)]))
        (request,) = sink.wait_for(1)
    assert len(request.body) <= BODY_MAX
    body = request.json()
    assert body["truncated"] is True and len(body["data"]["kills"]) == 3
    assert is_truncated(body["data"]["kills"][0]["process"])


def test_a_native_webhook_body_of_fifty_long_kills_lists_them_all_with_shorter_texts():
    with HttpSink() as sink:
        build_channel("webhook", "hook", url=sink.url).send(kills_notification([stored_kill(i) for i in range(50)]))
        (request,) = sink.wait_for(1)
    assert len(request.body) <= BODY_MAX
    body = request.json()
    assert body["truncated"] is True and "kills_left_out" not in body["data"]
    assert [k["pid"] for k in body["data"]["kills"]] == list(range(1000, 1050))
    assert is_truncated(body["data"]["kills"][0]["cmdline"])


def test_a_native_webhook_body_too_long_even_so_leaves_the_last_kills_out_and_counts_them():
    with HttpSink() as sink:
        build_channel("webhook", "hook", url=sink.url).send(kills_notification([stored_kill(i) for i in range(3000)]))
        (request,) = sink.wait_for(1)
    assert len(request.body) <= BODY_MAX
    body = request.json()
    assert body["truncated"] is True and body["data"]["count"] == 3000
    listed = body["data"]["kills"]
    assert listed and len(listed) + body["data"]["kills_left_out"] == 3000
    assert listed[0]["pid"] == 1000


def test_an_alertmanager_body_counts_the_alerts_it_left_out():
    with HttpSink() as sink:
        build_channel("webhook", "am", url=sink.url, format="alertmanager").send(
            kills_notification([huge_kill(i) for i in range(3)] + [stored_kill(i) for i in range(3, 60)]))
        (request,) = sink.wait_for(1)
    assert len(request.body) <= BODY_MAX
    body = request.json()
    assert body["version"] == "4"
    assert len(body["alerts"]) + body["truncatedAlerts"] == 60 and body["alerts"]
    assert "truncated" in body["alerts"][0]["labels"]["process"]


def test_a_body_that_fits_is_sent_unchanged():
    with HttpSink() as sink:
        build_channel("webhook", "hook", url=sink.url).send(kills_notification([{"pid": 1, "process": "java"}]))
        body = sink.wait_for(1)[0].json()
    assert "truncated" not in body and body["data"]["kills"] == [{"pid": 1, "process": "java"}]


def test_a_slack_message_of_megabyte_names_stays_small_and_says_truncated():
    with HttpSink() as sink:
        build_channel("slack", "chat", webhook_url=sink.url + "/services/T/B/x").send(
            kills_notification([huge_kill(i) for i in range(3)]))
        (request,) = sink.wait_for(1)
    assert len(request.body) < 64 * 1024
    assert "[truncated]" in request.body.decode()


def test_a_log_message_is_capped():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test_bounds")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("OOM kill recorded: %s killed", "\n" * MB)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert line.count("\n") == 1 and len(line) < LOG_MESSAGE_MAX + 100
    assert "truncated" in line
    json.dumps(line)

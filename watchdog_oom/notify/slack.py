"""The Slack channel: a notification as an incoming-webhook message (text plus Block Kit blocks).

Machine text (process names, command lines, cgroup paths, host names) is written by
any local user, so every piece of it is escaped for Slack before it is placed in the
message: Slack reads `<…>` as a link or mention (`<!channel>`, `<@U123>`,
`<http://x|y>`) and requires `&`, `<` and `>` to be sent as `&amp;`, `&lt;`, `&gt;`
("Formatting text for app surfaces", Escaping text). In mrkdwn, values also go into
inline code spans, where `*bold*`, `_italic_`, `~strike~` and auto-linking do not
apply; a backtick in a value, which would end the span, is replaced by U+02CB.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Mapping
from typing import Any

from ..model import Notification
from . import ChannelError, mask_secret, secrets_of_url
from .render import data_facts, headline, kill_facts, kills, printable, render_text
from .transport import HttpAnswer, classify_http, http_request

# Block Kit limits (docs.slack.dev, "Blocks" and "Section block" reference).
MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
# The top-level `text` is what notifications and screen readers show; keep it short.
MAX_FALLBACK_TEXT = 3000
# Slack also refuses a message whose blocks hold more than about 12,000 characters of
# text in all ("msg_blocks_too_long"; undocumented, reported in slackapi/bolt-js
# #2509 and #2867), so the blocks of one message stay within this budget.
MAX_MESSAGE_TEXT = 10000
# A command line can be 4 KB; in chat its start says what the process was.
MAX_CMDLINE = 600
# The end of a value cut to fit a limit.
TRUNCATED = "…[truncated]"
# Answers to a message whose blocks Slack would not take: sent again as text only.
_BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long"})

# Answers of incoming webhooks that no retry can fix, with what the operator should do
# (api.slack.com changelog 2016-05-17 "Improving error conditions for Incoming
# Webhooks", and docs.slack.dev "Sending messages using incoming webhooks", Handling
# errors). They come as a plain-text body with 400, 403, 404 or 410.
_PERMANENT_ANSWERS = types.MappingProxyType(
    {
        "invalid_payload": "Slack could not read the message",
        "user_not_found": "the webhook's user does not exist",
        "action_prohibited": "a workspace restriction forbids this webhook to post",
        "posting_to_general_channel_denied": "only admins may post to this channel",
        "channel_not_found": "the webhook's channel no longer exists",
        "channel_is_archived": "the webhook's channel is archived",
        "invalid_token": "the webhook URL is wrong or was revoked: create a new one",
        "no_service": "the webhook URL is wrong or was revoked: create a new one",
        "no_active_hooks": "the webhook was disabled: create a new one",
        "no_team": "the workspace no longer exists",
        "team_disabled": "the workspace was disabled",
    }
)


def escape(text: str) -> str:
    """`text` with Slack's three control characters as entities: & < >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(value: str, limit: int = MAX_SECTION_TEXT) -> str:
    """`value` escaped as an mrkdwn inline code span of at most `limit` characters."""
    return "`" + _cut(escape(value.replace("`", "\u02cb")), limit - 2) + "`"


def _cut(escaped: str, limit: int) -> str:
    """Truncate escaped text to `limit` characters without splitting an entity; a cut
    text ends with TRUNCATED, so a reader knows there was more."""
    if len(escaped) <= limit:
        return escaped
    if limit <= len(TRUNCATED):
        return re.sub(r"&[a-z]*$", "", escaped[: limit - 1]) + "…"
    return re.sub(r"&[a-z]*$", "", escaped[: limit - len(TRUNCATED)]) + TRUNCATED


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _cut(escape(text), limit), "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _field(label: str, value: str) -> dict[str, Any]:
    heading = f"*{escape(label)}*\n"
    return _mrkdwn(heading + code(value, MAX_FIELD_TEXT - len(heading)))


def _fields_sections(facts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Sections of at most ten fields each."""
    return [
        {"type": "section", "fields": [_field(label, value) for label, value in chunk]}
        for chunk in (facts[i : i + MAX_FIELDS] for i in range(0, len(facts), MAX_FIELDS))
    ]


def _kill_blocks(kill: Mapping[str, Any], n: Notification) -> list[dict[str, Any]]:
    """A section of fields for one kill, and one for its command line, which can be long."""
    facts = kill_facts(kill)
    cmdline = next((value for label, value in facts if label == "Command line"), None)
    facts = [(label, value) for label, value in facts if label != "Command line"]
    facts.insert(1, ("Host", printable(kill.get("host") or n.host)))
    blocks = _fields_sections(facts)
    if cmdline:
        label = "*Command line*\n"
        text = label + code(cmdline, MAX_CMDLINE)
        blocks.append({"type": "section", "text": _mrkdwn(text)})
    return blocks


def render_payload(n: Notification) -> dict[str, Any]:
    """The incoming-webhook body for `n`: `text` for notifications, `blocks` for the message."""
    title = headline(n)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(title, MAX_HEADER)}]
    if len(escape(title)) > MAX_HEADER:
        blocks.append({"type": "section", "text": _plain(title, MAX_SECTION_TEXT)})
    context = {
        "type": "context",
        "elements": [
            _mrkdwn(f"*{label}* {code(value, MAX_FIELD_TEXT)}")
            for label, value in (
                ("Host", printable(n.host)),
                ("Time", printable(n.time)),
                ("Severity", printable(n.severity)),
                ("Notification", printable(n.id)),
            )
        ],
    }
    body: list[dict[str, Any]] = []
    reported = kills(n)
    used = _text_size([*blocks, context])
    for shown, kill in enumerate(reported):
        more = _kill_blocks(kill, n)
        used += _text_size(more)
        # Keep one block free for the context and one for the "more kills" notice, and
        # the text of all blocks within Slack's total.
        if len(blocks) + len(body) + len(more) + 2 > MAX_BLOCKS or used > MAX_MESSAGE_TEXT - 200:
            notice = f"… and {len(reported) - shown} more kills, listed in the history."
            body.append({"type": "context", "elements": [_plain(notice, MAX_FIELD_TEXT)]})
            break
        body += more
    figures = data_facts(n.data)
    budget = MAX_BLOCKS - len(blocks) - len(body) - 1
    for section in _fields_sections(figures)[:budget]:
        used += _text_size([section])
        if used > MAX_MESSAGE_TEXT:
            break
        body.append(section)
    return {
        "text": _cut(escape(render_text(n)), MAX_FALLBACK_TEXT),
        "blocks": [*blocks, *body, context],
    }


def _text_size(blocks: list[dict[str, Any]]) -> int:
    """The characters of text in `blocks`, as Slack counts them toward its total."""
    total = 0
    for block in blocks:
        for part in (block.get("text"), *block.get("fields", ()), *block.get("elements", ())):
            if isinstance(part, dict):
                total += len(part.get("text", ""))
    return total


class SlackChannel:
    """Posts notifications to a Slack incoming webhook."""

    def __init__(self, name: str, webhook_url: str, timeout: float = 10.0) -> None:
        if not webhook_url.startswith(("https://", "http://")):
            raise ValueError(
                f"channel {name!r}: webhook_url must be an http(s) URL, "
                f"not {mask_secret(webhook_url)!r}"
            )
        self.name = name
        self.webhook_url = webhook_url
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SlackChannel({self.name!r}, {mask_secret(self.webhook_url)!r})"

    def send(self, n: Notification) -> str:
        """Post `n`; return "HTTP 200" or raise ChannelError.

        A message whose blocks Slack refuses is sent again as its plain `text`: a kill
        told plainly beats one lost to a layout limit.
        """
        payload = render_payload(n)
        answer = self._post(payload)
        if answer.status == 400 and answer.body.decode("utf-8", "replace").strip() in _BLOCK_ERRORS:
            answer = self._post({"text": payload["text"]})
        return self._outcome(answer)

    def _post(self, payload: dict[str, Any]) -> HttpAnswer:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        return http_request(
            "POST",
            self.webhook_url,
            body=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
            timeout=self.timeout,
        )

    def _outcome(self, answer: HttpAnswer) -> str:
        """"HTTP 200", or the ChannelError Slack's answer calls for."""
        error = classify_http(
            answer.status, answer.headers, answer.body, secrets=secrets_of_url(self.webhook_url)
        )
        reply = answer.body.decode("utf-8", "replace").strip()
        hint = _PERMANENT_ANSWERS.get(reply)
        if hint is not None:
            # Slack's error string decides, whatever the status: a 5xx with "no_service"
            # is still a revoked webhook.
            message = error.message if error else f"HTTP {answer.status}: {reply}"
            raise ChannelError(
                f"{message} ({hint})", permanent=True, status=answer.status, detail=reply
            )
        if error is not None:
            raise error
        return f"HTTP {answer.status}"

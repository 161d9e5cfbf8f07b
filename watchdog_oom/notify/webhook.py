"""The webhook channel: a notification as signed JSON, in our own shape or Alertmanager's.

Signing follows Standard Webhooks 1.0 (standardwebhooks.com, spec/standard-webhooks.md,
"Signature scheme" and "Webhook headers"): the signed content is
`{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256 keyed with the secret's bytes,
sent base64-encoded as `webhook-signature: v1,<signature>`. `webhook-id` is the
notification's id, identical on every retry so a receiver can drop duplicates;
`webhook-timestamp` is the time of the attempt, so a receiver can refuse replays.

The "alertmanager" format is the body of Alertmanager's webhook receiver, version 4
(prometheus/alertmanager notify/webhook/webhook.go Message, template.Data), so
receivers written for Alertmanager accept watchdog-oom's notifications unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from ..bounds import BODY_MAX, PATH_MAX, cap, fit_document
from ..model import Notification
from . import mask_secret, secrets_of_url
from .render import is_resolved, kill_facts, kills, printable, render_text
from .transport import classify_http, http_request

FORMATS = ("native", "alertmanager")
SECRET_PREFIX = "whsec_"
# The spec's symmetric secrets are "at least 24 bytes (192 bits, 512 maximum)".
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
# The spec's suggested replay window for receivers.
DEFAULT_TOLERANCE = 300
# Headers this channel owns; configured extra headers may not replace them.
_OWN_HEADERS = ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature")
# Go's zero time.Time, which Alertmanager sends as endsAt of an alert with no known end.
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"
# Alert labels of a kill (label, kill record field): who was killed and where it ran,
# which identify the alert; its figures go in the description.
_KILL_LABELS = (
    ("process", "process"),
    ("pid", "pid"),
    ("unit", "unit"),
    ("cgroup", "task_memcg"),
    ("constraint", "constraint"),
)


def parse_secret(secret: str) -> bytes:
    """The HMAC key of a signing secret: `whsec_` + base64 (the prefix may be omitted).

    Accepting bare base64 matches the reference libraries (standardwebhooks Python,
    Svix), which strip the prefix when present. The error never repeats the secret.
    """
    problem = (
        f"webhook secret must be {SECRET_PREFIX!r} followed by the base64 of "
        f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes"
    )
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{problem}; this one is not base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"{problem}; this one decodes to {len(key)} bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one attempt: "v1," + base64 HMAC-SHA256."""
    # The id and timestamp are joined with "."; one containing "." would make the
    # signed content ambiguous (the spec forbids it).
    if "." in msg_id:
        raise ValueError(f"webhook-id {msg_id!r} must not contain '.'")
    import hmac  # only a channel with a secret signs: not loaded by the idle daemon

    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether `headers` carry a valid Standard Webhooks signature of `body` under `secret`.

    Checks, as the spec asks of receivers: all three headers present, the timestamp
    within `tolerance` seconds of `now`, and one of the space-separated `v1,` signatures
    equal to the expected one (compared in constant time).
    """
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp", "")
    offered = lower.get("webhook-signature", "").split()
    if not msg_id or not stamp.isdigit() or not offered:
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return False
    try:
        expected = sign(parse_secret(secret), msg_id, int(stamp), body)
    except ValueError:
        return False
    import hmac

    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def _iso(value: datetime) -> str:
    """ISO 8601 with an offset; a naive time is taken as UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def native_body(n: Notification) -> dict[str, Any]:
    """The native body: type, id, time, host, severity, summary, reason, data."""
    return {
        "type": n.kind,
        "id": n.id,
        "time": _iso(n.time),
        "host": n.host,
        "severity": n.severity,
        "summary": n.summary,
        "reason": n.reason,
        "data": n.data,
    }


def alert_name(kind: str) -> str:
    """Alertmanager's CamelCase alertname for a notification type: "commit.warning" → "Commit".

    The severity suffix is dropped so that warning, critical and resolved are states of
    one alert, as with Prometheus rules: "oom.kill" → "OomKill",
    "process.at_risk" → "ProcessAtRisk".
    """
    parts = kind.split(".")
    if len(parts) > 1 and parts[-1] in ("warning", "critical", "resolved"):
        parts = parts[:-1]
    return "".join(word.capitalize() for part in parts for word in re.split(r"[_-]", part))


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's alert fingerprint: FNV-1a 64 over the sorted labels, as 16 hex digits.

    The same computation as prometheus/common model.LabelSet.Fingerprint
    (model/signature.go labelSetToFingerprint): name, 0xff, value, 0xff for each label
    in name order.
    """
    digest = 0xCBF29CE484222325  # FNV-1a 64 offset basis
    for name in sorted(labels):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            digest = ((digest ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{digest:016x}"


def _label_set(labels: Mapping[str, str]) -> str:
    """A label set as Alertmanager prints it in a group key: {a="x", b="y"}."""
    return "{" + ", ".join(f"{k}={json.dumps(labels[k])}" for k in sorted(labels)) + "}"


def _condition_labels(n: Notification) -> tuple[str, dict[str, str]]:
    """The identity of a stateful alert (commit, memory, process, kernel log) as labels.

    Alertmanager and the receivers built for it know an alert by its label set (its
    fingerprint), so the labels must be the same when it fires, repeats, escalates and
    resolves: the name comes from the condition's key ("process.at_risk:mysqld" →
    ProcessAtRisk with process="mysqld"), and the severity, which changes on
    escalation, is left to the annotations.
    """
    key = str(n.data.get("key") or n.kind)
    family, _, subject = key.partition(":")
    labels = {"alertname": alert_name(family), "host": n.host, "instance": n.host}
    if family.startswith("cgroup") or (family == "oom.unlogged" and subject):
        # A memory cgroup's condition (cgroup:PATH, cgroup.forecast:PATH, oom.unlogged:PATH):
        # the path from the key, which its resolution carries too.
        labels["cgroup"] = printable(subject)
        return labels["alertname"], labels
    process = subject or n.data.get("process")
    if process:
        labels["process"] = printable(process)
    return labels["alertname"], labels


def alertmanager_body(n: Notification, receiver: str) -> dict[str, Any]:
    """The Alertmanager webhook v4 body for `n`: one alert per kill, else one alert."""
    status = "resolved" if is_resolved(n) else "firing"
    if kills(n):
        name = alert_name(n.kind)
        common = {"alertname": name, "host": n.host, "instance": n.host, "severity": n.severity}
    else:
        name, common = _condition_labels(n)
    alerts: list[dict[str, Any]] = []
    victims: list[Any] = list(kills(n)) or [None]  # a notification without kills is one alert
    for kill in victims:
        labels = dict(common)
        annotations = {"summary": n.summary}
        starts = _iso(n.time)
        if kill is None:
            annotations["description"] = render_text(n)
            annotations["severity"] = str(n.data.get("alert_severity") or n.severity)
            if isinstance(n.data.get("started_at"), str):
                starts = n.data["started_at"]
        else:
            for label, key in _KILL_LABELS:
                if kill.get(key) is not None:
                    # Capped before the fingerprint, a loop over every byte.
                    labels[label] = printable(cap(str(kill[key]), PATH_MAX))
            annotations["description"] = "\n".join(
                f"{label}: {value}" for label, value in kill_facts(kill)
            )
            if isinstance(kill.get("time"), (str, datetime)):
                starts = kill["time"] if isinstance(kill["time"], str) else _iso(kill["time"])
        alerts.append(
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": starts,
                "endsAt": _iso(n.time) if status == "resolved" else _GO_ZERO_TIME,
                "generatorURL": "",
                "fingerprint": fingerprint(labels),
            }
        )
    group_labels = {"alertname": name, "instance": n.host}
    return {
        "version": "4",
        "groupKey": "{}:" + _label_set(group_labels),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": _common(a["labels"] for a in alerts),
        "commonAnnotations": _common(a["annotations"] for a in alerts),
        "externalURL": "",
        "alerts": alerts,
    }


def _dumps(document: Any) -> bytes:
    return json.dumps(
        document, default=_json_default, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def fit_body(document: dict[str, Any], format: str = "native", limit: int = BODY_MAX) -> bytes:
    """`document` as JSON within `limit` bytes, however long the machine's text in it.

    A body that fits is sent as it is. Otherwise its long strings are cut (each ending
    with "…[truncated: N characters]") and, if that is not enough, the last kills
    (native `data.kills`) or alerts (Alertmanager) are left out. The native body then
    carries `"truncated": true` and, in `data`, `kills_left_out`; the Alertmanager body
    counts left-out alerts in its own `truncatedAlerts`, as Alertmanager does for `max_alerts`.
    """
    body = _dumps(document)
    if len(body) <= limit:
        return body
    # Room for the markers added after fitting.
    room = limit - 256
    if format == "native":
        document = {**document, "truncated": True}
        body, dropped = fit_document(document, _dumps, room, ("data", "kills"))
        if dropped:
            fitted = json.loads(body)
            fitted["data"]["kills_left_out"] = dropped
            body = _dumps(fitted)
        return body
    body, dropped = fit_document(document, _dumps, room, ("alerts",))
    if dropped:
        fitted = json.loads(body)
        fitted["truncatedAlerts"] = int(fitted.get("truncatedAlerts") or 0) + dropped
        body = _dumps(fitted)
    return body


def _common(sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The pairs every one of the label (or annotation) sets has."""
    first, *rest = sets
    return {k: v for k, v in first.items() if all(s.get(k) == v for s in rest)}


class WebhookChannel:
    """POSTs notifications as JSON to a URL, signed when a secret is configured."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: str | None = None,
        format: str = "native",
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(
                f"channel {name!r}: url must be an http(s) URL, not {mask_secret(url)!r}"
            )
        if format not in FORMATS:
            raise ValueError(
                f"channel {name!r}: format must be one of {', '.join(FORMATS)}, not {format!r}"
            )
        clash = sorted(h for h in (headers or {}) if h.lower() in _OWN_HEADERS)
        if clash:
            raise ValueError(f"channel {name!r}: headers may not set {', '.join(clash)}")
        self.name = name
        self.url = url
        self.format = format
        self.timeout = timeout
        self.headers = dict(headers or {})
        try:
            self._key = parse_secret(secret) if secret is not None else None
        except ValueError as exc:
            raise ValueError(f"channel {name!r}: {exc}") from None
        # Header values (an Authorization token) are secrets too.
        self._secrets = (*secrets_of_url(url), *(v for v in self.headers.values() if v))

    def __repr__(self) -> str:
        signed = ", signed" if self._key else ""
        return f"WebhookChannel({self.name!r}, {mask_secret(self.url)!r}, {self.format}{signed})"

    def render(self, n: Notification) -> bytes:
        """The request body for `n` in this channel's format, compact UTF-8 JSON of at most
        BODY_MAX bytes (see `fit_body`)."""
        document = native_body(n) if self.format == "native" else alertmanager_body(n, self.name)
        return fit_body(document, self.format)

    def send(self, n: Notification) -> str:
        """POST `n`; return "HTTP 2xx" or raise ChannelError."""
        body = self.render(n)
        # webhook-id and -timestamp go out unsigned too: the id lets any receiver drop
        # a retry it has already processed.
        timestamp = int(time.time())
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "webhook-id": n.id,
            "webhook-timestamp": str(timestamp),
        }
        if self._key is not None:
            headers["webhook-signature"] = sign(self._key, n.id, timestamp, body)
        answer = http_request(
            "POST",
            self.url,
            body=body,
            headers=headers,
            timeout=self.timeout,
            secrets=self._secrets,
        )
        error = classify_http(answer.status, answer.headers, answer.body, secrets=self._secrets)
        if error is not None:
            raise error
        return f"HTTP {answer.status}"

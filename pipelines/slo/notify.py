"""Notifications: payloads in each receiver's own format, channel settings, and delivery.

The incident engine decides *what* to say (a :class:`Notification`); this module decides *how* each
receiver wants to hear it and makes sure it hears it once:

* one pure payload builder per receiver (Slack Block Kit, PagerDuty Events API v2, a signed generic
  webhook, email, Twilio-style SMS, Prometheus Alertmanager), so the exact bytes are testable without a
  network;
* channel settings as strict pydantic models behind a discriminated union on ``type``, with problems
  reported as ``<file>: channels.<name>.<field>: <message>`` like the SLO files;
* :func:`dispatch`, which sends one notification to one channel with idempotency (a key is delivered at
  most once per channel, so a retried evaluation never pages twice), a per-channel rate limit on
  triggers (resolves always go, so nobody stays paged for a problem that is over), retries with
  exponential backoff on transient failures, and an :class:`Attempt` record per try.

Secrets (webhook URLs, routing keys, tokens, passwords) are only ever read from the environment mapping
given to :func:`dispatch`, and every value read is scrubbed from anything recorded: details are built
from status codes, exception class names and the receiver's short answer, never from URLs or headers.

All strings of a notification may come from user configuration, so each builder escapes for its
target: Slack mrkdwn (``&``, ``<``, ``>``), HTML email, and no CR/LF in email headers or SMS lines.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import html
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import quote, urlencode, urlsplit

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from pipelines.slo.mail import MESSAGE_ID_DOMAIN, MailError, SmtpSettings, build_message, send_message

# httpx logs every request's full URL at INFO, and a Slack (or webhook_url_env) URL is itself the secret:
# keep its request lines out of every log that runs at INFO or below (tests/test_security.py).
logging.getLogger("httpx").setLevel(logging.WARNING)

SEVERITIES = ("page", "ticket", "info")
KINDS = ("burn_rate", "budget", "no_data", "anomaly")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_SEVERITY = {"page": "critical", "ticket": "warning", "info": "info"}
ALERTNAMES = {
    "burn_rate": "SLOBurnRate",
    "budget": "SLOBudget",
    "no_data": "SLONoData",
    "anomaly": "SLOAnomaly",
}
CLIENT = "sloscope"

# Receiver limits (Slack Block Kit reference; PagerDuty Events API v2; our own SMS budget of two
# concatenated GSM-7 segments, 2 x 160 characters).
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_PER_SECTION = 10
SLACK_URL_MAX = 3000
PAGERDUTY_SUMMARY_MAX = 1024
SMS_MAX = 320
# Retry-After is honoured, but never beyond this: an alert that waits longer is worth less than one
# that fails loudly and is retried at the next evaluation.
RETRY_AFTER_MAX_SECONDS = 60.0
_DETAIL_MAX = 300
_RECEIVER_MESSAGE_MAX = 200

_ALERTMANAGER_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_RATE_PER = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")
_NUMERIC_RETRY_AFTER = re.compile(r"^\s*([0-9]{1,9})(\.[0-9]+)?\s*$")


# ---------------------------------------------------------------------------------------------------------
# The notification


@dataclass(frozen=True)
class Notification:
    """One thing to tell people about an incident; the engine builds it, every channel renders it.

    ``key`` is the idempotency key: one key is delivered at most once per channel. ``dedup_key`` is
    stable per alert (PagerDuty's dedup_key, Alertmanager's ``dedup_key`` label), so a trigger and its
    resolve refer to the same alert in every receiver.
    """

    key: str
    action: Literal["trigger", "resolve"]
    dedup_key: str
    incident_id: int
    severity: str
    service: str
    slo: str
    slo_display_name: str
    objective: str
    kind: str
    title: str
    description: str
    started_at: datetime
    at: datetime
    resolved_at: datetime | None = None
    expires_at: datetime | None = None
    facts: tuple[tuple[str, str], ...] = ()
    runbook_url: str | None = None
    source_url: str | None = None
    escalation_level: int = 1

    def __post_init__(self) -> None:
        # Fail where the notification is built, not inside a receiver's 400 at three in the morning.
        if self.action not in ("trigger", "resolve"):
            raise ValueError(f"Notification.action: expected 'trigger' or 'resolve', got {self.action!r}")
        if not self.key or not self.dedup_key:
            raise ValueError("Notification.key and Notification.dedup_key must not be empty")
        if self.severity not in SEVERITIES:
            raise ValueError(f"Notification.severity: expected one of {SEVERITIES}, got {self.severity!r}")
        if self.kind not in KINDS:
            raise ValueError(f"Notification.kind: expected one of {KINDS}, got {self.kind!r}")
        for name in ("started_at", "at", "resolved_at", "expires_at"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"Notification.{name}: expected a timezone-aware datetime, got {value!r}")
        object.__setattr__(self, "facts", tuple((str(label), str(value)) for label, value in self.facts))


# ---------------------------------------------------------------------------------------------------------
# Text helpers shared by the builders


def _iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, the form every receiver here accepts."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _human(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _one_line(text: str) -> str:
    """Control characters (CR, LF, tabs, Unicode line separators) become one space: a header or an SMS
    line can then never be split or smuggle a second header."""
    return _CONTROL.sub(" ", text).strip()


def _truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(ellipsis)] + ellipsis


def _label(notification: Notification) -> str:
    """``[PAGE]``, ``[TICKET]``, ``[INFO]`` or ``[RESOLVED]``: what a reader needs before anything else."""
    if notification.action == "resolve":
        return "[RESOLVED]"
    return f"[{notification.severity.upper()}]"


def _is_web_url(url: str | None) -> bool:
    """Only http(s) links are rendered as links: a ``javascript:`` runbook must not become a button."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not _CONTROL.search(url)


def slack_escape(text: str) -> str:
    """Slack mrkdwn escaping: only ``&``, ``<`` and ``>`` are special (``<!channel>`` is a mention)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate_mrkdwn(escaped: str, limit: int) -> str:
    """Truncate already escaped mrkdwn without cutting an entity such as ``&amp;`` in half."""
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    partial = re.search(r"&[a-z]{0,3}$", cut)
    if partial:
        cut = cut[: partial.start()]
    return cut + "…"


def _display_fields(notification: Notification) -> list[tuple[str, str]]:
    """The label/value pairs every human-facing format shows, in order, facts last."""
    fields = [
        ("Severity", notification.severity),
        ("Service", notification.service),
        ("SLO", notification.slo_display_name),
        ("Objective", notification.objective),
        ("Started", _human(notification.started_at)),
    ]
    if notification.action == "resolve":
        fields.append(("Resolved", _human(notification.resolved_at or notification.at)))
    fields.extend(notification.facts)
    return fields


# ---------------------------------------------------------------------------------------------------------
# Payload builders (pure)


def slack_payload(notification: Notification) -> dict[str, Any]:
    """Slack incoming-webhook body: a mrkdwn ``text`` fallback (notifications, screen readers) and Block
    Kit ``blocks``: header, sections of at most 10 fields, a context line, runbook/source buttons."""
    n = notification
    headline = f"{_label(n)} {_one_line(n.title)}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            # plain_text is not parsed for markup, so it is not escaped (escaping would show "&amp;").
            "text": {"type": "plain_text", "text": _truncate(headline, SLACK_HEADER_MAX), "emoji": True},
        }
    ]
    fields = [
        {
            "type": "mrkdwn",
            "text": _truncate_mrkdwn(f"*{slack_escape(k)}*\n{slack_escape(v)}", SLACK_FIELD_MAX),
        }
        for k, v in _display_fields(n)
    ]
    chunks = [
        fields[i : i + SLACK_FIELDS_PER_SECTION] for i in range(0, len(fields), SLACK_FIELDS_PER_SECTION)
    ]
    first: dict[str, Any] = {"type": "section"}
    if n.description.strip():
        first["text"] = {
            "type": "mrkdwn",
            "text": _truncate_mrkdwn(slack_escape(n.description), SLACK_TEXT_MAX),
        }
    first["fields"] = chunks[0]
    blocks.append(first)
    blocks.extend({"type": "section", "fields": chunk} for chunk in chunks[1:])
    context = (
        f"Incident #{n.incident_id} · escalation level {n.escalation_level} · "
        f"dedup key `{slack_escape(_one_line(n.dedup_key))}`"
    )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _truncate_mrkdwn(context, SLACK_TEXT_MAX)}],
        }
    )
    buttons = []
    if _is_web_url(n.runbook_url) and len(n.runbook_url or "") <= SLACK_URL_MAX:
        buttons.append(
            {
                "type": "button",
                "action_id": "runbook",
                "text": {"type": "plain_text", "text": "Runbook"},
                "url": n.runbook_url,
            }
        )
    if _is_web_url(n.source_url) and len(n.source_url or "") <= SLACK_URL_MAX:
        buttons.append(
            {
                "type": "button",
                "action_id": "source",
                "text": {"type": "plain_text", "text": "Open in sloscope"},
                "url": n.source_url,
            }
        )
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": _truncate_mrkdwn(slack_escape(headline), SLACK_TEXT_MAX), "blocks": blocks}


def pagerduty_payload(notification: Notification, routing_key: str) -> dict[str, Any]:
    """PagerDuty Events API v2 event. A resolve carries only what PagerDuty reads for it (routing key,
    action, dedup key); a trigger maps our severity to PagerDuty's and puts the rest in custom_details."""
    n = notification
    if n.action == "resolve":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": n.dedup_key}
    custom_details: dict[str, Any] = {
        "description": n.description,
        "slo": n.slo,
        "slo_display_name": n.slo_display_name,
        "objective": n.objective,
        "incident_id": n.incident_id,
        "started_at": _iso(n.started_at),
        "escalation_level": n.escalation_level,
        "facts": dict(n.facts),
    }
    links = [{"href": n.runbook_url, "text": "Runbook"}] if _is_web_url(n.runbook_url) else []
    if _is_web_url(n.source_url):
        links.append({"href": n.source_url, "text": "sloscope"})
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": n.dedup_key,
        "payload": {
            "summary": _truncate(_one_line(n.title), PAGERDUTY_SUMMARY_MAX),
            "source": n.service,
            "severity": PAGERDUTY_SEVERITY[n.severity],
            "timestamp": _iso(n.at),
            "component": n.slo,
            "group": n.service,
            "class": n.kind,
            "custom_details": custom_details,
        },
        "links": links,
        "client": CLIENT,
    }
    if _is_web_url(n.source_url):
        event["client_url"] = n.source_url
    return event


def notification_document(notification: Notification) -> dict[str, Any]:
    """The notification as plain JSON values: ISO times, facts as ordered ``[label, value]`` pairs."""
    document: dict[str, Any] = {}
    for f in dataclasses.fields(notification):
        value = getattr(notification, f.name)
        if isinstance(value, datetime):
            value = _iso(value)
        elif f.name == "facts":
            value = [list(pair) for pair in value]
        document[f.name] = value
    return document


def webhook_body(notification: Notification) -> bytes:
    """Compact canonical JSON (sorted keys, ASCII only) so a receiver can re-serialise and compare."""
    return json.dumps(
        notification_document(notification), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def webhook_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``; the timestamp is signed to stop replays."""
    return "v1=" + hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def webhook_headers(key: str, body: bytes, secret: bytes, now: datetime) -> dict[str, str]:
    """Headers of a signed webhook request made at ``now`` (each retry is signed afresh)."""
    timestamp = str(int(now.timestamp()))
    return {
        "Content-Type": "application/json",
        "X-Sloscope-Timestamp": timestamp,
        "X-Sloscope-Signature": webhook_signature(secret, timestamp, body),
        # Header values are ASCII: anything else in a key is percent-encoded.
        "Idempotency-Key": quote(_one_line(key), safe=_HEADER_SAFE),
    }


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """For receivers: is this body signed with our secret, at a time within ``tolerance`` of ``now``?

    Stale and future timestamps are rejected (a captured request cannot be replayed later), and the
    comparison is constant-time so the signature cannot be guessed byte by byte.
    """
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    if abs(now.timestamp() - int(timestamp)) > tolerance.total_seconds():
        return False
    expected = webhook_signature(secret, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))


def email_subject(notification: Notification) -> str:
    """``[PAGE] <title>`` / ``[RESOLVED] <title>``, on one line (no header injection)."""
    return _truncate(f"{_label(notification)} {_one_line(notification.title)}", 200)


def message_id_for(key: str, sender: str) -> str:
    """A Message-ID (without the angle brackets) derived from the idempotency key: a resent mail carries
    the same id, so mail clients and people can tell it is the same notification. The key is hashed
    because Message-IDs only allow a few characters; the right-hand side is the sender's domain."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    domain = parseaddr(sender)[1].rpartition("@")[2]
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", domain):
        domain = MESSAGE_ID_DOMAIN
    return f"sloscope.{digest}@{domain}"


def email_bodies(notification: Notification) -> tuple[str, str]:
    """The plain-text and the HTML body; every user string in the HTML is escaped."""
    n = notification
    fields = _display_fields(n)
    text_lines = [f"{_label(n)} {_one_line(n.title)}", ""]
    if n.description.strip():
        text_lines += [n.description.strip(), ""]
    text_lines += [f"{_one_line(k)}: {_one_line(v)}" for k, v in fields]
    text_lines.append("")
    if _is_web_url(n.runbook_url):
        text_lines.append(f"Runbook: {n.runbook_url}")
    if _is_web_url(n.source_url):
        text_lines.append(f"Details: {n.source_url}")
    footer = f"Incident #{n.incident_id}, escalation level {n.escalation_level}"
    text_lines.append(f"{footer}, dedup key {_one_line(n.dedup_key)}")
    text = "\n".join(text_lines) + "\n"

    esc = html.escape
    rows = "".join(
        f'<tr><th align="left" style="padding-right:12px">{esc(k)}</th><td>{esc(v)}</td></tr>'
        for k, v in fields
    )
    links = []
    if _is_web_url(n.runbook_url):
        links.append(f'<a href="{esc(n.runbook_url or "")}">Runbook</a>')
    if _is_web_url(n.source_url):
        links.append(f'<a href="{esc(n.source_url or "")}">Details</a>')
    description = esc(n.description.strip()).replace("\n", "<br>\n")
    html_body = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        f"<h2>{esc(_label(n))} {esc(_one_line(n.title))}</h2>\n"
        + (f"<p>{description}</p>\n" if description else "")
        + f"<table>{rows}</table>\n"
        + (f"<p>{' · '.join(links)}</p>\n" if links else "")
        + f"<p><small>Incident #{n.incident_id}, escalation level {n.escalation_level}, "
        f"dedup key {esc(_one_line(n.dedup_key))}</small></p>\n"
        "</body></html>\n"
    )
    return text, html_body


def email_message(notification: Notification, *, sender: str, recipients: list[str]) -> EmailMessage:
    """The complete email (subject, text and HTML parts, Message-ID from the idempotency key)."""
    text, html_body = email_bodies(notification)
    return build_message(
        sender=sender,
        recipients=recipients,
        subject=email_subject(notification),
        text=text,
        html=html_body,
        message_id=message_id_for(notification.key, sender),
    )


def sms_text(notification: Notification) -> str:
    """A short SMS: label and title, incident number, one line per fact; at most 320 characters.

    Truncation uses three ASCII dots rather than "…" so an ASCII alert stays in the GSM-7 alphabet
    (160 characters per segment instead of 70).
    """
    n = notification
    lines = [f"{_label(n)} {_one_line(n.title)}", f"Incident #{n.incident_id}"]
    lines += [f"{_one_line(k)}: {_one_line(v)}" for k, v in n.facts]
    return _truncate("\n".join(lines), SMS_MAX, "...")


def sms_forms(notification: Notification, *, sender: str, recipients: list[str]) -> list[dict[str, str]]:
    """One Twilio-style form (From, To, Body) per recipient."""
    body = sms_text(notification)
    return [{"From": _one_line(sender), "To": _one_line(to), "Body": body} for to in recipients]


def alertmanager_payload(notification: Notification) -> list[dict[str, Any]]:
    """``POST /api/v2/alerts`` body: one alert. Alertmanager identifies an alert by its label set, so a
    resolve repeats the trigger's labels with ``endsAt`` = the resolution time."""
    n = notification
    labels = {
        "alertname": ALERTNAMES[n.kind],
        "service": n.service,
        "slo": n.slo,
        "objective": n.objective,
        "severity": n.severity,
        "dedup_key": n.dedup_key,
    }
    # An empty label value means "no such label" to Prometheus and Alertmanager; drop it explicitly.
    labels = {name: str(value) for name, value in labels.items() if str(value) != ""}
    bad = [name for name in labels if not _ALERTMANAGER_LABEL_NAME.fullmatch(name)]
    if bad:  # pragma: no cover - the names above are constants; this guards future additions
        raise ValueError(f"invalid Alertmanager label names: {bad}")
    annotations = {"summary": n.title, "description": n.description, "incident_id": str(n.incident_id)}
    if n.runbook_url:
        annotations["runbook_url"] = n.runbook_url
    alert: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": _iso(n.started_at)}
    if n.action == "resolve":
        alert["endsAt"] = _iso(n.resolved_at or n.at)
    elif n.expires_at is not None:
        alert["endsAt"] = _iso(n.expires_at)
    if _is_web_url(n.source_url):
        alert["generatorURL"] = n.source_url
    return [alert]


# ---------------------------------------------------------------------------------------------------------
# Channel settings


class ChannelConfigError(ValueError):
    """The ``channels:`` settings are invalid; ``problems`` has one ``<source>: channels.<name>...`` line
    per problem, all collected before raising so a user fixes them in one pass."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError("expected an environment variable name such as SLACK_WEBHOOK_URL")
    return value


def _url_problem(url: str, *, placeholder: bool = False) -> str | None:
    """Why ``url`` is not an acceptable receiver URL, or None. Never echoes the URL itself."""
    if placeholder:
        rest = url.replace("{account_sid}", "AC0")
        if "{" in rest or "}" in rest:
            return "only the {account_sid} placeholder is allowed in the URL"
        url = rest
    if _CONTROL.search(url) or " " in url:
        return "the URL contains spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return f"expected an http:// or https:// URL, got scheme {parts.scheme!r}"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not allowed; put secrets in environment variables"
    return None


def _check_url(value: str) -> str:
    problem = _url_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _check_sms_url(value: str) -> str:
    problem = _url_problem(value, placeholder=True)
    if problem:
        raise ValueError(problem)
    return value


def _check_address(value: str) -> str:
    """Checked by the mail module's own parser, so what passes here also passes when a page is sent."""
    try:
        build_message(sender=value, recipients=[value], subject="", text="")
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("sender: ")) from None
    return value


def _check_phone(value: str) -> str:
    if not _E164.fullmatch(value):
        raise ValueError(f"expected an E.164 phone number like +14155550100, got {value!r}")
    return value


def _check_sms_sender(value: str) -> str:
    if _CONTROL.search(value) or not value.strip() or len(value) > 64:
        raise ValueError("expected a sender number or id of 1-64 characters without control characters")
    return value


EnvName = Annotated[str, AfterValidator(_check_env_name)]
WebUrl = Annotated[str, AfterValidator(_check_url)]
EmailAddress = Annotated[str, AfterValidator(_check_address)]
PhoneNumber = Annotated[str, AfterValidator(_check_phone)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _check_rate_per(value: str) -> str:
    if not _RATE_PER.fullmatch(value):
        raise ValueError(f"expected a duration like 30m, 1h or 1d, got {value!r}")
    return value


class RateLimit(_Settings):
    """At most ``count`` delivered notifications per ``per`` (``30m``, ``1h``, ``1d``) on a channel."""

    count: int = Field(ge=1)
    per: Annotated[str, AfterValidator(_check_rate_per)]

    @property
    def window(self) -> timedelta:
        match = _RATE_PER.fullmatch(self.per)
        assert match is not None  # validated above
        amount, unit = int(match.group(1)), match.group(2)
        return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[
            unit
        ]


class _ChannelBase(_Settings):
    timeout_seconds: float = Field(default=10, gt=0, le=300)
    rate_limit: RateLimit | None = None


class SlackChannel(_ChannelBase):
    """Slack incoming webhook; the webhook URL is itself the credential, so it lives in the environment."""

    type: Literal["slack"]
    webhook_url_env: EnvName


class PagerDutyChannel(_ChannelBase):
    """PagerDuty Events API v2 with an integration routing key from the environment."""

    type: Literal["pagerduty"]
    routing_key_env: EnvName
    url: WebUrl = PAGERDUTY_URL


class WebhookChannel(_ChannelBase):
    """Any HTTP receiver, with an HMAC-SHA256 signature over timestamp and body."""

    type: Literal["webhook"]
    url: WebUrl | None = None
    url_env: EnvName | None = None
    secret_env: EnvName

    @model_validator(mode="after")
    def _one_url(self) -> WebhookChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of url or url_env")
        return self


class EmailChannel(_ChannelBase):
    """Email through an SMTP relay (see :mod:`pipelines.slo.mail`); ``smtp.timeout_seconds`` bounds each
    SMTP operation (``timeout_seconds`` of the channel applies to HTTP channels)."""

    type: Literal["email"]
    smtp: SmtpSettings
    sender: EmailAddress
    recipients: list[EmailAddress] = Field(min_length=1)


class SmsChannel(_ChannelBase):
    """Twilio-style SMS: form POST with HTTP Basic auth; ``{account_sid}`` in the URL is filled in."""

    type: Literal["sms"]
    url: Annotated[str, AfterValidator(_check_sms_url)]
    account_sid_env: EnvName
    auth_token_env: EnvName
    sender: Annotated[str, AfterValidator(_check_sms_sender)]
    recipients: list[PhoneNumber] = Field(min_length=1)


class AlertmanagerChannel(_ChannelBase):
    """Prometheus Alertmanager (``<url>/api/v2/alerts``), optionally behind a bearer token."""

    type: Literal["alertmanager"]
    url: WebUrl
    bearer_token_env: EnvName | None = None


Channel = Annotated[
    SlackChannel | PagerDutyChannel | WebhookChannel | EmailChannel | SmsChannel | AlertmanagerChannel,
    Field(discriminator="type"),
]
CHANNEL_TYPES = ("slack", "pagerduty", "webhook", "email", "sms", "alertmanager")
_CHANNEL_ADAPTER: TypeAdapter[Any] = TypeAdapter(Channel)


def _problem_lines(source: str, name: str, raw: Any, exc: ValidationError) -> list[str]:
    problems: list[str] = []
    tag = raw.get("type") if isinstance(raw, Mapping) else None
    for err in exc.errors():
        loc = list(err["loc"])
        if loc and loc[0] == tag:  # pydantic prefixes the union branch; it is noise in a path
            loc = loc[1:]
        message = err["msg"].removeprefix("Value error, ")
        kind = err["type"]
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "required field is missing"
        elif kind == "literal_error":
            message = f"expected {err['ctx']['expected']}, got {err.get('input')!r}"
        elif kind == "union_tag_invalid":
            loc = ["type"]
            message = f"expected one of {', '.join(CHANNEL_TYPES)}; got {tag!r}"
        elif kind == "union_tag_not_found":
            loc = ["type"]
            message = f"required field is missing (one of {', '.join(CHANNEL_TYPES)})"
        elif kind in ("model_attributes_type", "dict_type", "model_type"):
            message = "expected a mapping of settings"
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
        problem = f"{source}: channels.{name}{path}: {message}"
        if problem not in problems:
            problems.append(problem)
    return problems


def parse_channels(raw: Mapping[str, Any], source: str) -> dict[str, Channel]:
    """Validate a ``channels:`` mapping (name -> settings); every problem is collected, then raised as
    :class:`ChannelConfigError` with ``<source>: channels.<name>.<field>: <message>`` lines."""
    if not isinstance(raw, Mapping):
        raise ChannelConfigError(
            [f"{source}: channels: expected a mapping of channel name to settings, got {type(raw).__name__}"]
        )
    channels: dict[str, Channel] = {}
    problems: list[str] = []
    for name, body in raw.items():
        if not isinstance(name, str) or not _CHANNEL_NAME.fullmatch(name):
            problems.append(
                f"{source}: channels.{name!r}: a channel name is 1-64 characters of A-Z a-z 0-9 _ . -"
            )
            continue
        try:
            channels[name] = _CHANNEL_ADAPTER.validate_python(body)
        except ValidationError as exc:
            problems.extend(_problem_lines(source, name, body, exc))
    if problems:
        raise ChannelConfigError(problems)
    return channels


# ---------------------------------------------------------------------------------------------------------
# Delivery records


Outcome = Literal["delivered", "failed", "retrying", "duplicate", "rate_limited", "dry_run"]


@dataclass(frozen=True)
class Attempt:
    """One recorded try (or decision not to try). ``detail`` never contains a secret."""

    notification_key: str
    channel: str
    channel_type: str
    attempt: int  # 1-based; duplicate / rate_limited / dry_run records carry 1
    at: datetime
    outcome: str
    http_status: int | None
    detail: str
    duration_ms: float


class DeliveryLog(Protocol):
    """Where attempts are kept; idempotency and rate limits are answered from it."""

    def delivered(self, key: str, channel: str) -> bool: ...

    def delivered_since(self, channel: str, since: datetime) -> int: ...

    def record(self, attempt: Attempt) -> None: ...


class InMemoryDeliveryLog:
    """A :class:`DeliveryLog` in a list, for tests and dry runs (thread-safe, nothing persisted)."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()

    def delivered(self, key: str, channel: str) -> bool:
        with self._lock:
            return any(
                a.outcome == "delivered" and a.notification_key == key and a.channel == channel
                for a in self.attempts
            )

    def delivered_since(self, channel: str, since: datetime) -> int:
        with self._lock:
            return sum(
                1
                for a in self.attempts
                if a.outcome == "delivered" and a.channel == channel and a.at >= since
            )

    def record(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)


# ---------------------------------------------------------------------------------------------------------
# Delivery


class _EnvProblem(Exception):
    """A secret is missing or unusable; the message names the variable, never its value."""


class _Secrets:
    """Reads secrets from the env mapping and remembers every value (and derived form) to scrub."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.values: list[str] = []

    def get(self, name: str, *, header: bool = False) -> str:
        """The value of ``name``; with ``header`` it must be printable ASCII, because it goes into an HTTP
        header and the encoding error would otherwise carry the secret out of :func:`dispatch`."""
        value = self._env.get(name)
        if value is None:
            raise _EnvProblem(f"environment variable {name} is not set")
        if not value:
            raise _EnvProblem(f"environment variable {name} is empty")
        self.add(value)
        if header and not (value.isascii() and value.isprintable()):
            raise _EnvProblem(f"environment variable {name} must be printable ASCII (it is sent in a header)")
        return value

    def get_url(self, name: str) -> str:
        url = self.get(name).strip()
        self.add(url)
        if _url_problem(url) is not None:
            raise _EnvProblem(f"environment variable {name} does not hold a usable http(s) URL")
        parts = urlsplit(url)
        # A receiver may echo only the path of a webhook URL (the token is in it), so scrub its pieces too.
        self.add(parts.path + (f"?{parts.query}" if parts.query else ""))
        self.add(parts.query)
        for piece in re.split(r"[/?&=]", parts.path + "?" + parts.query):
            if len(piece) >= 6:
                self.add(piece)
        return url

    def add(self, value: str) -> None:
        if value and len(value) > 1 and value not in self.values:
            self.values.append(value)

    def scrub(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "[redacted]")
        return text


@dataclass(frozen=True)
class _Result:
    ok: bool
    retryable: bool
    status: int | None
    detail: str
    retry_after: float | None = None


@dataclass(frozen=True)
class _Step:
    """One request of a delivery (SMS has one per recipient); only failed steps are retried, so a
    recipient who already got the text is not texted again."""

    label: str
    run: Callable[[httpx.Client], _Result]


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    match = _NUMERIC_RETRY_AFTER.fullmatch(value)
    if not match:
        return None  # an HTTP-date: fall back to our own backoff
    return min(float(match.group(1) + (match.group(2) or "")), RETRY_AFTER_MAX_SECONDS)


def _receiver_message(response: httpx.Response, scrub: Callable[[str], str]) -> str:
    """The start of the receiver's answer on one line, scrubbed *before* it is shortened (a secret cut
    in half by truncation would no longer be recognised)."""
    try:
        text = response.text[:65536]
    except Exception:  # undecodable body: the status says enough
        return ""
    return _truncate(" ".join(scrub(text).split()), _RECEIVER_MESSAGE_MAX)


def _post(
    client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str], scrub: Callable[[str], str]
) -> _Result:
    """POST and classify: 2xx delivered; 429/5xx and transport errors retried; anything else final."""
    try:
        response = client.post(url, content=body, headers=dict(headers))
    except httpx.TransportError as exc:  # connect errors, timeouts, broken connections
        return _Result(False, True, None, type(exc).__name__)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _Result(False, False, None, type(exc).__name__)
    status = response.status_code
    if 200 <= status < 300:
        return _Result(True, False, status, f"HTTP {status}")
    message = _receiver_message(response, scrub)
    detail = f"HTTP {status}" + (f": {message}" if message else "")
    if status == 429 or status >= 500:
        return _Result(False, True, status, detail, _retry_after(response.headers.get("Retry-After")))
    if 300 <= status < 400:
        detail = f"HTTP {status}: redirects are not followed; configure the final URL"
    return _Result(False, False, status, detail)


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _json_step(
    url: str, payload: Any, scrub: Callable[[str], str], headers: Mapping[str, str] | None = None
) -> _Step:
    body = _json_bytes(payload)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return _Step("", lambda client: _post(client, url, body, all_headers, scrub))


def _plan(
    notification: Notification,
    channel: Channel,
    secrets: _Secrets,
    env: Mapping[str, str],
    clock: Callable[[], datetime],
) -> list[_Step]:
    """Read the channel's secrets and build its requests; raises _EnvProblem before anything is sent."""
    n = notification
    scrub = secrets.scrub
    if isinstance(channel, SlackChannel):
        return [_json_step(secrets.get_url(channel.webhook_url_env), slack_payload(n), scrub)]
    if isinstance(channel, PagerDutyChannel):
        return [_json_step(channel.url, pagerduty_payload(n, secrets.get(channel.routing_key_env)), scrub)]
    if isinstance(channel, WebhookChannel):
        url = channel.url if channel.url is not None else secrets.get_url(channel.url_env or "")
        secret = secrets.get(channel.secret_env).encode("utf-8")
        body = webhook_body(n)
        # Signed at send time, so a retry after a long backoff is not rejected as stale.
        return [
            _Step(
                "",
                lambda client: _post(client, url, body, webhook_headers(n.key, body, secret, clock()), scrub),
            )
        ]
    if isinstance(channel, SmsChannel):
        sid = secrets.get(channel.account_sid_env)
        token = secrets.get(channel.auth_token_env)
        if ":" in sid:
            raise _EnvProblem(
                f"environment variable {channel.account_sid_env} must not contain ':' (Basic auth)"
            )
        secrets.add(quote(sid, safe=""))
        credentials = base64.b64encode(f"{sid}:{token}".encode()).decode("ascii")
        secrets.add(credentials)
        url = channel.url.replace("{account_sid}", quote(sid, safe=""))
        headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        forms = sms_forms(n, sender=channel.sender, recipients=channel.recipients)
        steps = []
        for i, form in enumerate(forms, start=1):
            body = urlencode(form).encode("ascii")
            label = f"recipient {i} of {len(forms)}" if len(forms) > 1 else ""
            steps.append(_Step(label, lambda client, body=body: _post(client, url, body, headers, scrub)))
        return steps
    if isinstance(channel, AlertmanagerChannel):
        headers = {}
        if channel.bearer_token_env:
            headers["Authorization"] = f"Bearer {secrets.get(channel.bearer_token_env, header=True)}"
        url = channel.url.rstrip("/") + "/api/v2/alerts"
        return [_json_step(url, alertmanager_payload(n), scrub, headers)]
    if isinstance(channel, EmailChannel):
        for name in (channel.smtp.username_env, channel.smtp.password_env):
            if name:
                secrets.get(name)
        message = email_message(n, sender=channel.sender, recipients=list(channel.recipients))
        return [_Step("", lambda _client: _send_mail(channel.smtp, message, env))]
    raise TypeError(f"unknown channel type {type(channel).__name__}")  # pragma: no cover


def _send_mail(settings: SmtpSettings, message: EmailMessage, env: Mapping[str, str]) -> _Result:
    try:
        send_message(settings, message, env=env)
    except MailError as exc:
        return _Result(False, exc.retryable, None, f"{type(exc).__name__}: {exc}")
    except OSError as exc:  # a connection problem that escaped the mail module: transient
        return _Result(False, True, None, type(exc).__name__)
    return _Result(True, False, None, "accepted by the SMTP server")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def dispatch(
    notification: Notification,
    channel_name: str,
    channel: Channel,
    *,
    env: Mapping[str, str],
    log: DeliveryLog,
    clock: Callable[[], datetime] = _utc_now,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 4,
    backoff_seconds: float = 1.0,
    dry_run: bool = False,
) -> str:
    """Deliver ``notification`` to one channel at most once; returns the final outcome.

    ``"duplicate"`` when the log already has this key delivered on this channel; ``"rate_limited"`` for a
    trigger over the channel's limit; ``"dry_run"`` after building everything without sending;
    otherwise ``"delivered"`` or ``"failed"`` after up to ``max_attempts`` tries, sleeping
    ``backoff_seconds * 2**(n-1)`` (or a numeric Retry-After, at most 60 s) between them.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    n = notification
    secrets = _Secrets(env)

    def record(outcome: str, attempt: int, at: datetime, status: int | None, detail: str, ms: float) -> None:
        clean = _truncate(secrets.scrub(detail), _DETAIL_MAX)
        log.record(Attempt(n.key, channel_name, channel.type, attempt, at, outcome, status, clean, ms))

    now = clock()
    if log.delivered(n.key, channel_name):
        record("duplicate", 1, now, None, "already delivered on this channel; not sent again", 0.0)
        return "duplicate"
    limit = channel.rate_limit
    if n.action == "trigger" and limit is not None:
        sent = log.delivered_since(channel_name, now - limit.window)
        if sent >= limit.count:
            record(
                "rate_limited",
                1,
                now,
                None,
                f"{sent} delivered in the last {limit.per} (limit {limit.count})",
                0,
            )
            return "rate_limited"

    try:
        steps = _plan(n, channel, secrets, env, clock)
    except _EnvProblem as exc:
        record("failed", 1, now, None, f"{exc}; nothing was sent", 0.0)
        return "failed"
    if dry_run:
        record(
            "dry_run",
            1,
            now,
            None,
            f"{channel.type} payload built ({len(steps)} request(s)); nothing sent",
            0,
        )
        return "dry_run"

    pending = steps
    permanent: list[str] = []

    def describe(step: _Step, result: _Result) -> str:
        return f"{step.label}: {result.detail}" if step.label else result.detail

    with httpx.Client(timeout=httpx.Timeout(channel.timeout_seconds), follow_redirects=False) as client:
        for attempt in range(1, max_attempts + 1):
            at = clock()
            started = time.perf_counter()
            results = [(step, step.run(client)) for step in pending]
            ms = (time.perf_counter() - started) * 1000
            failures = [(s, r) for s, r in results if not r.ok]
            permanent += [describe(s, r) for s, r in failures if not r.retryable]
            pending = [s for s, r in failures if r.retryable]
            status = (failures or results)[-1][1].status
            if not pending:
                if permanent:
                    ok = len(steps) - len(permanent)
                    summary = f" ({ok} of {len(steps)} requests delivered)" if len(steps) > 1 else ""
                    record("failed", attempt, at, status, "; ".join(permanent) + summary, ms)
                    return "failed"
                done = f" ({len(results)} requests)" if len(results) > 1 else ""
                record("delivered", attempt, at, status, results[-1][1].detail + done, ms)
                return "delivered"
            detail = "; ".join(dict.fromkeys(permanent + [describe(s, r) for s, r in failures]))
            if attempt == max_attempts:
                record("failed", attempt, at, status, f"{detail}; gave up after {attempt} attempts", ms)
                return "failed"
            hinted = [r.retry_after for _, r in failures if r.retryable and r.retry_after is not None]
            delay = max(hinted) if hinted else backoff_seconds * 2 ** (attempt - 1)
            record("retrying", attempt, at, status, f"{detail}; retrying in {delay:g}s", ms)
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover

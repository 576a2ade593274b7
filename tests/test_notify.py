"""Notification payloads, channel settings and delivery (retries, idempotency, rate limits, secrets).

Every expected value is written out by hand from the sample notification below (or from the receiver's
published format), not copied from the code's output. HTTP goes to a recording server on 127.0.0.1
(tests/receivers.py), email to a real aiosmtpd server on 127.0.0.1; nothing leaves the loopback.
"""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import hashlib
import hmac
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller

# tests/ is on sys.path under pytest (rootdir conftest, no __init__.py), so this works both with
# `.venv/bin/pytest` and `python -m pytest`; `tests.receivers` would need the repository root on the path.
from receivers import Receiver, Reply

from pipelines.slo.mail import SmtpSettings
from pipelines.slo.notify import (
    AlertmanagerChannel,
    Attempt,
    ChannelConfigError,
    EmailChannel,
    InMemoryDeliveryLog,
    Notification,
    PagerDutyChannel,
    RateLimit,
    SlackChannel,
    SmsChannel,
    WebhookChannel,
    alertmanager_payload,
    dispatch,
    email_message,
    pagerduty_payload,
    parse_channels,
    slack_payload,
    sms_forms,
    sms_text,
    verify_signature,
    webhook_body,
)

STARTED = datetime(2026, 3, 1, 11, 45, tzinfo=UTC)
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RESOLVED = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
# 2026-03-01T12:00:00Z as Unix seconds, by hand: 56 years 1970-2025 with 14 leap days (1972..2024)
# = 20454 days, + 31 (Jan) + 28 (Feb 2026) = 20513 days = 1_772_323_200 s, + 12 h = 1_772_366_400.
AT_UNIX = "1772366400"
TITLE = "Checkout availability is burning budget 14.4x too fast"


def sample(**changes: Any) -> Notification:
    """The notification every expectation in this file is derived from."""
    base = Notification(
        key="incident-42/trigger/1",
        action="trigger",
        dedup_key="sloscope/checkout-availability/page",
        incident_id=42,
        severity="page",
        service="checkout",
        slo="checkout-availability",
        slo_display_name="Checkout <script>&",
        objective="99.9% of checkout requests succeed",
        kind="burn_rate",
        title=TITLE,
        description="Error budget is burning fast.\nSee the dashboard.",
        started_at=STARTED,
        at=AT,
        facts=(("Burn rate (1h)", "14.4x"), ("Burn rate (5m)", "15.2x"), ("Budget left", "62.5%")),
        runbook_url="https://runbooks.example.com/checkout",
        source_url="https://sloscope.example.com/incidents/42",
    )
    return dataclasses.replace(base, **changes)


def resolved_sample(**changes: Any) -> Notification:
    return sample(key="incident-42/resolve", action="resolve", resolved_at=RESOLVED, at=RESOLVED, **changes)


class FakeTime:
    """Injected clock and sleep: sleeping advances the clock, and every sleep is recorded."""

    def __init__(self, start: datetime = AT) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(default=Reply(202, b'{"status":"success"}')) as running:
        yield running


def pagerduty(url: str, **extra: Any) -> PagerDutyChannel:
    return PagerDutyChannel(type="pagerduty", routing_key_env="PD_ROUTING_KEY", url=url, **extra)


PD_ENV = {"PD_ROUTING_KEY": "R0123456789abcdef0123456789abcdef"}


def closed_port() -> int:
    """A port nothing listens on (bound, then released), for connection-refused cases."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------------------
# Notification


def test_notification_rejects_naive_times_unknown_severity_and_empty_keys() -> None:
    with pytest.raises(ValueError, match=r"Notification\.at: expected a timezone-aware datetime"):
        sample(at=datetime(2026, 3, 1, 12, 0))
    with pytest.raises(ValueError, match=r"Notification\.severity"):
        sample(severity="critical")
    with pytest.raises(ValueError, match="must not be empty"):
        sample(key="")


# ---------------------------------------------------------------------------------------------------------
# Slack


def test_slack_payload_blocks_and_escaping() -> None:
    payload = slack_payload(sample())
    assert payload["text"] == f"[PAGE] {TITLE}"
    header, section, context, actions = payload["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": f"[PAGE] {TITLE}", "emoji": True},
    }
    assert section["type"] == "section"
    assert section["text"] == {"type": "mrkdwn", "text": "Error budget is burning fast.\nSee the dashboard."}
    # 5 fixed fields + 3 facts, in order; "<script>&" escaped to Slack's three entities.
    assert [f["text"] for f in section["fields"]] == [
        "*Severity*\npage",
        "*Service*\ncheckout",
        "*SLO*\nCheckout &lt;script&gt;&amp;",
        "*Objective*\n99.9% of checkout requests succeed",
        "*Started*\n2026-03-01 11:45:00 UTC",
        "*Burn rate (1h)*\n14.4x",
        "*Burn rate (5m)*\n15.2x",
        "*Budget left*\n62.5%",
    ]
    assert all(f["type"] == "mrkdwn" for f in section["fields"])
    assert context == {
        "type": "context",
        "elements": [
            {
                "type": "mrkdwn",
                "text": "Incident #42 · escalation level 1 · dedup key `sloscope/checkout-availability/page`",
            }
        ],
    }
    assert actions["type"] == "actions"
    assert [(b["type"], b["text"]["text"], b["url"]) for b in actions["elements"]] == [
        ("button", "Runbook", "https://runbooks.example.com/checkout"),
        ("button", "Open in sloscope", "https://sloscope.example.com/incidents/42"),
    ]


def test_slack_escapes_mentions_in_fallback_text_but_not_in_plain_text_header() -> None:
    payload = slack_payload(sample(title="<!channel> down & out"))
    assert payload["text"] == "[PAGE] &lt;!channel&gt; down &amp; out"
    assert (
        payload["blocks"][0]["text"]["text"] == "[PAGE] <!channel> down & out"
    )  # plain_text: shown verbatim


def test_slack_splits_fields_at_ten_per_section() -> None:
    facts = tuple((f"fact {i}", str(i)) for i in range(1, 8))  # 5 fixed + 7 facts = 12 fields
    sections = [b for b in slack_payload(sample(facts=facts))["blocks"] if b["type"] == "section"]
    assert [len(s["fields"]) for s in sections] == [10, 2]
    assert sections[0]["fields"][-1]["text"] == "*fact 5*\n5"
    assert [f["text"] for f in sections[1]["fields"]] == ["*fact 6*\n6", "*fact 7*\n7"]
    assert "text" not in sections[1]


def test_slack_limits_header_150_and_section_text_3000_without_cutting_entities() -> None:
    payload = slack_payload(sample(title="x" * 200, description="a&" * 2000))
    # "[PAGE] " is 7 characters: 7 + 142 + the ellipsis = 150.
    assert payload["blocks"][0]["text"]["text"] == "[PAGE] " + "x" * 142 + "…"
    # Escaped, each "a&" is the 6 characters "a&amp;". 2999 = 499 * 6 + 5, so the cut falls inside the
    # 500th entity ("a&amp"); the partial entity is dropped: 499 units + "a" + "…" (2996 characters).
    text = payload["blocks"][1]["text"]["text"]
    assert text == "a&amp;" * 499 + "a…"
    assert len(text) == 2996


def test_slack_resolve_and_unsafe_runbook_url() -> None:
    payload = slack_payload(resolved_sample(runbook_url="javascript:alert(1)", source_url=None))
    assert payload["text"] == f"[RESOLVED] {TITLE}"
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields[4:6] == ["*Started*\n2026-03-01 11:45:00 UTC", "*Resolved*\n2026-03-01 12:30:00 UTC"]
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "context"]  # no button


def test_slack_dispatch_posts_the_payload(receiver: Receiver) -> None:
    receiver.program([], default=Reply(200, b"ok"))
    env = {"SLACK_WEBHOOK_URL": receiver.url("/services/T000/B000/XXXX")}
    channel = SlackChannel(type="slack", webhook_url_env="SLACK_WEBHOOK_URL")
    log = InMemoryDeliveryLog()
    assert dispatch(sample(), "slack-oncall", channel, env=env, log=log, clock=lambda: AT) == "delivered"
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/services/T000/B000/XXXX")
    assert request.header("content-type") == "application/json"
    assert request.json["text"] == f"[PAGE] {TITLE}"
    (attempt,) = log.attempts
    assert attempt == Attempt(
        "incident-42/trigger/1",
        "slack-oncall",
        "slack",
        1,
        AT,
        "delivered",
        200,
        "HTTP 200",
        attempt.duration_ms,
    )


# ---------------------------------------------------------------------------------------------------------
# PagerDuty


def test_pagerduty_trigger_shape() -> None:
    event = pagerduty_payload(sample(), "ROUTING")
    assert event == {
        "routing_key": "ROUTING",
        "event_action": "trigger",
        "dedup_key": "sloscope/checkout-availability/page",
        "payload": {
            "summary": TITLE,
            "source": "checkout",
            "severity": "critical",
            "timestamp": "2026-03-01T12:00:00Z",
            "component": "checkout-availability",
            "group": "checkout",
            "class": "burn_rate",
            "custom_details": {
                "description": "Error budget is burning fast.\nSee the dashboard.",
                "slo": "checkout-availability",
                "slo_display_name": "Checkout <script>&",
                "objective": "99.9% of checkout requests succeed",
                "incident_id": 42,
                "started_at": "2026-03-01T11:45:00Z",
                "escalation_level": 1,
                "facts": {"Burn rate (1h)": "14.4x", "Burn rate (5m)": "15.2x", "Budget left": "62.5%"},
            },
        },
        "links": [
            {"href": "https://runbooks.example.com/checkout", "text": "Runbook"},
            {"href": "https://sloscope.example.com/incidents/42", "text": "sloscope"},
        ],
        "client": "sloscope",
        "client_url": "https://sloscope.example.com/incidents/42",
    }


def test_pagerduty_resolve_carries_only_key_action_and_dedup_key() -> None:
    assert pagerduty_payload(resolved_sample(), "ROUTING") == {
        "routing_key": "ROUTING",
        "event_action": "resolve",
        "dedup_key": "sloscope/checkout-availability/page",
    }


@pytest.mark.parametrize(
    ("severity", "expected"), [("page", "critical"), ("ticket", "warning"), ("info", "info")]
)
def test_pagerduty_severity_mapping(severity: str, expected: str) -> None:
    assert pagerduty_payload(sample(severity=severity), "R")["payload"]["severity"] == expected


def test_pagerduty_summary_truncated_at_1024() -> None:
    summary = pagerduty_payload(sample(title="t" * 2000), "R")["payload"]["summary"]
    assert summary == "t" * 1023 + "…"
    assert len(summary) == 1024


def test_pagerduty_dispatch_sends_routing_key_from_env(receiver: Receiver) -> None:
    log = InMemoryDeliveryLog()
    outcome = dispatch(sample(), "pd", pagerduty(receiver.url("/v2/enqueue")), env=PD_ENV, log=log)
    assert outcome == "delivered"
    (request,) = receiver.requests
    assert request.path == "/v2/enqueue"
    assert request.json["routing_key"] == "R0123456789abcdef0123456789abcdef"
    assert request.json["event_action"] == "trigger"
    assert log.attempts[0].http_status == 202


# ---------------------------------------------------------------------------------------------------------
# Signed webhook


WEBHOOK_SECRET = "whsec-0123456789"


def test_webhook_body_signature_and_headers(receiver: Receiver) -> None:
    receiver.program([], default=Reply(200, b""))
    channel = WebhookChannel(type="webhook", url=receiver.url("/hooks/sloscope"), secret_env="HOOK_SECRET")
    time = FakeTime()
    env = {"HOOK_SECRET": WEBHOOK_SECRET}
    assert (
        dispatch(sample(), "hook", channel, env=env, log=InMemoryDeliveryLog(), clock=time.clock)
        == "delivered"
    )
    (request,) = receiver.requests
    assert request.header("content-type") == "application/json"
    assert request.header("idempotency-key") == "incident-42/trigger/1"
    assert request.header("x-sloscope-timestamp") == AT_UNIX
    # The signature, recomputed independently from the raw bytes that arrived.
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{AT_UNIX}.".encode() + request.body, hashlib.sha256)
    assert request.header("x-sloscope-signature") == "v1=" + expected.hexdigest()
    # Canonical: sorted keys, no spaces, ISO times in UTC with Z, facts as ordered pairs.
    assert request.body.startswith(b'{"action":"trigger","at":"2026-03-01T12:00:00Z","dedup_key":')
    assert b": " not in request.body and b", " not in request.body
    assert json.loads(request.body) == {
        "action": "trigger",
        "at": "2026-03-01T12:00:00Z",
        "dedup_key": "sloscope/checkout-availability/page",
        "description": "Error budget is burning fast.\nSee the dashboard.",
        "escalation_level": 1,
        "expires_at": None,
        "facts": [["Burn rate (1h)", "14.4x"], ["Burn rate (5m)", "15.2x"], ["Budget left", "62.5%"]],
        "incident_id": 42,
        "key": "incident-42/trigger/1",
        "kind": "burn_rate",
        "objective": "99.9% of checkout requests succeed",
        "resolved_at": None,
        "runbook_url": "https://runbooks.example.com/checkout",
        "service": "checkout",
        "severity": "page",
        "slo": "checkout-availability",
        "slo_display_name": "Checkout <script>&",
        "source_url": "https://sloscope.example.com/incidents/42",
        "started_at": "2026-03-01T11:45:00Z",
        "title": TITLE,
    }


def test_verify_signature_accepts_fresh_and_rejects_tampered_stale_future() -> None:
    body = webhook_body(sample())
    secret = WEBHOOK_SECRET.encode()
    good = "v1=" + hmac.new(secret, f"{AT_UNIX}.".encode() + body, hashlib.sha256).hexdigest()
    four_minutes_later = AT + timedelta(minutes=4)
    assert verify_signature(secret, AT_UNIX, body, good, now=four_minutes_later)
    assert not verify_signature(secret, AT_UNIX, body.replace(b"page", b"info"), good, now=four_minutes_later)
    assert not verify_signature(b"another secret", AT_UNIX, body, good, now=four_minutes_later)
    assert not verify_signature(
        secret, AT_UNIX, body, good, now=AT + timedelta(minutes=5, seconds=1)
    )  # stale
    assert not verify_signature(secret, AT_UNIX, body, good, now=AT - timedelta(minutes=6))  # from the future
    assert not verify_signature(secret, "1772366400.5", body, good, now=AT)  # not an integer
    assert not verify_signature(secret, AT_UNIX, body, good[3:], now=AT)  # missing "v1="
    assert verify_signature(
        secret, AT_UNIX, body, good, now=AT + timedelta(minutes=10), tolerance=timedelta(hours=1)
    )


def test_webhook_idempotency_key_header_is_ascii(receiver: Receiver) -> None:
    receiver.program([], default=Reply(200, b""))
    channel = WebhookChannel(type="webhook", url=receiver.url("/hook"), secret_env="HOOK_SECRET")
    env = {"HOOK_SECRET": WEBHOOK_SECRET}
    assert dispatch(sample(key="incident-42/zürich"), "hook", channel, env=env, log=InMemoryDeliveryLog())
    # "ü" is UTF-8 C3 BC, percent-encoded; the body keeps the key as is.
    assert receiver.requests[0].header("idempotency-key") == "incident-42/z%C3%BCrich"
    assert receiver.requests[0].json["key"] == "incident-42/zürich"


def test_webhook_retry_is_signed_with_the_retry_time(receiver: Receiver) -> None:
    receiver.program([503], default=Reply(200, b""))
    env = {"HOOK_URL": receiver.url("/hook"), "HOOK_SECRET": WEBHOOK_SECRET}
    channel = WebhookChannel(type="webhook", url_env="HOOK_URL", secret_env="HOOK_SECRET")
    time = FakeTime()
    log = InMemoryDeliveryLog()
    assert (
        dispatch(sample(), "hook", channel, env=env, log=log, clock=time.clock, sleep=time.sleep)
        == "delivered"
    )
    # First try at AT, one backoff second later the second try: its timestamp is AT + 1.
    assert [r.header("x-sloscope-timestamp") for r in receiver.requests] == [AT_UNIX, "1772366401"]
    second = receiver.requests[1]
    assert verify_signature(
        WEBHOOK_SECRET.encode(),
        second.header("x-sloscope-timestamp") or "",
        second.body,
        second.header("x-sloscope-signature") or "",
        now=AT + timedelta(seconds=1),
    )


# ---------------------------------------------------------------------------------------------------------
# SMS


SMS_ENV = {"SMS_SID": "AC12/34 x", "SMS_TOKEN": "sms-token-0001"}


def sms_channel(receiver: Receiver, recipients: list[str]) -> SmsChannel:
    return SmsChannel(
        type="sms",
        url=receiver.url("/2010-04-01/Accounts/{account_sid}/Messages.json"),
        account_sid_env="SMS_SID",
        auth_token_env="SMS_TOKEN",
        sender="+15005550006",
        recipients=recipients,
    )


def test_sms_text_and_forms() -> None:
    expected = (
        f"[PAGE] {TITLE}\nIncident #42\nBurn rate (1h): 14.4x\nBurn rate (5m): 15.2x\nBudget left: 62.5%"
    )
    assert sms_text(sample()) == expected
    assert sms_forms(sample(), sender="+15005550006", recipients=["+14155550100", "+14155550101"]) == [
        {"From": "+15005550006", "To": "+14155550100", "Body": expected},
        {"From": "+15005550006", "To": "+14155550101", "Body": expected},
    ]
    # A fact value with CR/LF stays on its own single line.
    assert sms_text(sample(facts=(("Note", "one\r\ntwo"),))).endswith("\nNote: one two")


def test_sms_truncated_to_320_with_ascii_ellipsis() -> None:
    text = sms_text(sample(title="w" * 400))
    # 320 - 3 dots = 317 kept: "[PAGE] " (7) + 310 "w".
    assert text == "[PAGE] " + "w" * 310 + "..."
    assert len(text) == 320


def test_sms_dispatch_one_post_per_recipient_with_basic_auth(receiver: Receiver) -> None:
    receiver.program([], default=Reply(201, b'{"sid":"SM1"}'))
    channel = sms_channel(receiver, ["+14155550100", "+14155550101"])
    log = InMemoryDeliveryLog()
    assert dispatch(sample(), "sms", channel, env=SMS_ENV, log=log) == "delivered"
    assert len(receiver.requests) == 2
    for request, to in zip(receiver.requests, ["+14155550100", "+14155550101"], strict=True):
        # {account_sid} filled in percent-encoded: "/" -> %2F, " " -> %20.
        assert request.path == "/2010-04-01/Accounts/AC12%2F34%20x/Messages.json"
        assert request.header("content-type") == "application/x-www-form-urlencoded"
        scheme, _, encoded = (request.header("authorization") or "").partition(" ")
        assert scheme == "Basic"
        assert base64.b64decode(encoded).decode() == "AC12/34 x:sms-token-0001"
        assert request.form == {"From": ["+15005550006"], "To": [to], "Body": [sms_text(sample())]}
    assert [(a.outcome, a.http_status, a.detail) for a in log.attempts] == [
        ("delivered", 201, "HTTP 201 (2 requests)")
    ]


def test_sms_retry_resends_only_to_the_recipient_that_failed(receiver: Receiver) -> None:
    receiver.program([201, 503], default=Reply(201, b"{}"))
    channel = sms_channel(receiver, ["+14155550100", "+14155550101"])
    time = FakeTime()
    log = InMemoryDeliveryLog()
    outcome = dispatch(sample(), "sms", channel, env=SMS_ENV, log=log, clock=time.clock, sleep=time.sleep)
    assert outcome == "delivered"
    # Attempt 1: first recipient 201, second 503; attempt 2 texts only the second one again.
    assert [r.form["To"] for r in receiver.requests if r.form] == [
        ["+14155550100"],
        ["+14155550101"],
        ["+14155550101"],
    ]
    assert [(a.attempt, a.outcome) for a in log.attempts] == [(1, "retrying"), (2, "delivered")]
    assert log.attempts[0].detail == "recipient 2 of 2: HTTP 503: ok; retrying in 1s"


# ---------------------------------------------------------------------------------------------------------
# Alertmanager (payload; the real server is exercised in test_alertmanager.py)


def test_alertmanager_payload_trigger_and_resolve() -> None:
    labels = {
        "alertname": "SLOBurnRate",
        "service": "checkout",
        "slo": "checkout-availability",
        "objective": "99.9% of checkout requests succeed",
        "severity": "page",
        "dedup_key": "sloscope/checkout-availability/page",
    }
    annotations = {
        "summary": TITLE,
        "description": "Error budget is burning fast.\nSee the dashboard.",
        "incident_id": "42",
        "runbook_url": "https://runbooks.example.com/checkout",
    }
    expires = AT + timedelta(minutes=15)
    assert alertmanager_payload(sample(expires_at=expires)) == [
        {
            "labels": labels,
            "annotations": annotations,
            "startsAt": "2026-03-01T11:45:00Z",
            "endsAt": "2026-03-01T12:15:00Z",
            "generatorURL": "https://sloscope.example.com/incidents/42",
        }
    ]
    assert "endsAt" not in alertmanager_payload(sample())[0]
    (resolve,) = alertmanager_payload(resolved_sample())
    assert resolve["labels"] == labels  # same label set = same alert
    assert resolve["endsAt"] == "2026-03-01T12:30:00Z"
    assert alertmanager_payload(sample(kind="budget"))[0]["labels"]["alertname"] == "SLOBudget"
    assert alertmanager_payload(sample(kind="no_data"))[0]["labels"]["alertname"] == "SLONoData"


def test_alertmanager_dispatch_posts_list_with_bearer_token(receiver: Receiver) -> None:
    receiver.program([], default=Reply(200, b""))
    channel = AlertmanagerChannel(type="alertmanager", url=receiver.url("/am/"), bearer_token_env="AM_TOKEN")
    env = {"AM_TOKEN": "am-token-0001"}
    assert dispatch(sample(), "am", channel, env=env, log=InMemoryDeliveryLog()) == "delivered"
    (request,) = receiver.requests
    assert request.path == "/am/api/v2/alerts"
    assert request.header("authorization") == "Bearer am-token-0001"
    assert isinstance(request.json, list) and request.json[0]["labels"]["alertname"] == "SLOBurnRate"


# ---------------------------------------------------------------------------------------------------------
# Email through a real SMTP server


class _Sink:
    """aiosmtpd handler keeping every envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Sink, int]]:
    sink = _Sink()
    port = closed_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def email_channel(port: int, **smtp: Any) -> EmailChannel:
    return EmailChannel(
        type="email",
        smtp=SmtpSettings(host="127.0.0.1", port=port, security="none", **smtp),
        sender="sloscope <alerts@example.com>",
        recipients=["oncall@example.com", "sre@example.com"],
    )


def test_email_sent_through_smtp(smtp_server: tuple[_Sink, int]) -> None:
    sink, port = smtp_server
    log = InMemoryDeliveryLog()
    assert dispatch(sample(), "mail", email_channel(port), env={}, log=log) == "delivered"
    (envelope,) = sink.envelopes
    assert envelope.mail_from == "alerts@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "sre@example.com"]
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert message["Subject"] == f"[PAGE] {TITLE}"
    digest = hashlib.sha256(b"incident-42/trigger/1").hexdigest()[:32]
    assert message["Message-ID"] == f"<sloscope.{digest}@example.com>"
    # SMTP transmits CRLF line ends; compare lines.
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert "SLO: Checkout <script>&\n" in text
    assert "Burn rate (1h): 14.4x\n" in text
    assert "Runbook: https://runbooks.example.com/checkout\n" in text
    assert "<td>Checkout &lt;script&gt;&amp;</td>" in html
    assert "<script>" not in html
    assert '<a href="https://runbooks.example.com/checkout">Runbook</a>' in html
    assert log.attempts[0].outcome == "delivered"


def test_email_subject_cannot_inject_headers_and_resolve_subject() -> None:
    message = email_message(
        sample(title="Down\r\nBcc: evil@example.com"),
        sender="alerts@example.com",
        recipients=["a@example.com"],
    )
    assert message["Subject"] == "[PAGE] Down Bcc: evil@example.com"
    assert message["Bcc"] is None
    resolved = email_message(resolved_sample(), sender="alerts@example.com", recipients=["a@example.com"])
    assert resolved["Subject"] == f"[RESOLVED] {TITLE}"
    # Same key, same Message-ID: a resent mail is recognisable.
    again = email_message(resolved_sample(), sender="alerts@example.com", recipients=["b@example.com"])
    assert resolved["Message-ID"] == again["Message-ID"]


def test_email_to_unreachable_server_is_retried_then_fails() -> None:
    time = FakeTime()
    log = InMemoryDeliveryLog()
    channel = email_channel(closed_port())
    outcome = dispatch(
        sample(), "mail", channel, env={}, log=log, clock=time.clock, sleep=time.sleep, max_attempts=2
    )
    assert outcome == "failed"
    assert time.sleeps == [1.0]
    assert [a.outcome for a in log.attempts] == ["retrying", "failed"]
    assert log.attempts[-1].detail.startswith("MailError: SMTP 127.0.0.1:")


# ---------------------------------------------------------------------------------------------------------
# Retries


def test_503_503_202_delivered_on_third_attempt_with_exponential_backoff(receiver: Receiver) -> None:
    receiver.program([Reply(503, b"busy"), Reply(503, b"busy")])
    time = FakeTime()
    log = InMemoryDeliveryLog()
    outcome = dispatch(
        sample(), "pd", pagerduty(receiver.url()), env=PD_ENV, log=log, clock=time.clock, sleep=time.sleep
    )
    assert outcome == "delivered"
    assert time.sleeps == [1.0, 2.0]  # 1 * 2**0, 1 * 2**1
    assert [(a.attempt, a.outcome, a.http_status) for a in log.attempts] == [
        (1, "retrying", 503),
        (2, "retrying", 503),
        (3, "delivered", 202),
    ]
    assert log.attempts[0].detail == "HTTP 503: busy; retrying in 1s"
    assert [a.at for a in log.attempts] == [AT, AT + timedelta(seconds=1), AT + timedelta(seconds=3)]
    assert len(receiver.requests) == 3


def test_400_fails_at_once_with_receiver_message(receiver: Receiver) -> None:
    receiver.program([Reply(400, b'{"status":"invalid event","message":"Event object is invalid"}')])
    time = FakeTime()
    log = InMemoryDeliveryLog()
    outcome = dispatch(
        sample(), "pd", pagerduty(receiver.url()), env=PD_ENV, log=log, clock=time.clock, sleep=time.sleep
    )
    assert outcome == "failed"
    assert time.sleeps == []
    assert len(receiver.requests) == 1
    (attempt,) = log.attempts
    assert (attempt.outcome, attempt.http_status) == ("failed", 400)
    assert attempt.detail == 'HTTP 400: {"status":"invalid event","message":"Event object is invalid"}'


def test_all_attempts_503_gives_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.program([], default=Reply(503, b""))
    time = FakeTime()
    log = InMemoryDeliveryLog()
    outcome = dispatch(
        sample(), "pd", pagerduty(receiver.url()), env=PD_ENV, log=log, clock=time.clock, sleep=time.sleep
    )
    assert outcome == "failed"
    assert time.sleeps == [1.0, 2.0, 4.0]
    assert [a.outcome for a in log.attempts] == ["retrying", "retrying", "retrying", "failed"]
    assert log.attempts[-1].detail == "HTTP 503; gave up after 4 attempts"


def test_timeout_then_success(receiver: Receiver) -> None:
    receiver.program([Reply(202, b"{}", delay=3.0)])
    time = FakeTime()
    log = InMemoryDeliveryLog()
    channel = pagerduty(receiver.url(), timeout_seconds=0.3)
    outcome = dispatch(sample(), "pd", channel, env=PD_ENV, log=log, clock=time.clock, sleep=time.sleep)
    assert outcome == "delivered"
    assert [(a.outcome, a.http_status, a.detail) for a in log.attempts] == [
        ("retrying", None, "ReadTimeout; retrying in 1s"),
        ("delivered", 202, "HTTP 202"),
    ]


@pytest.mark.parametrize(
    ("retry_after", "expected_sleep"),
    [("7", 7.0), ("120", 60.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0)],  # capped at 60; a date -> backoff
)
def test_retry_after_honoured(receiver: Receiver, retry_after: str, expected_sleep: float) -> None:
    receiver.program([Reply(429, b"slow down", headers={"Retry-After": retry_after})])
    time = FakeTime()
    outcome = dispatch(
        sample(),
        "pd",
        pagerduty(receiver.url()),
        env=PD_ENV,
        log=InMemoryDeliveryLog(),
        clock=time.clock,
        sleep=time.sleep,
    )
    assert outcome == "delivered"
    assert time.sleeps == [expected_sleep]


def test_connection_refused_is_retried(receiver: Receiver) -> None:
    time = FakeTime()
    log = InMemoryDeliveryLog()
    channel = pagerduty(f"http://127.0.0.1:{closed_port()}/v2/enqueue")
    outcome = dispatch(
        sample(), "pd", channel, env=PD_ENV, log=log, clock=time.clock, sleep=time.sleep, max_attempts=2
    )
    assert outcome == "failed"
    assert [a.detail for a in log.attempts] == [
        "ConnectError; retrying in 1s",
        "ConnectError; gave up after 2 attempts",
    ]


def test_redirect_is_not_followed(receiver: Receiver) -> None:
    receiver.program([Reply(302, b"", headers={"Location": "http://127.0.0.1:1/elsewhere"})])
    log = InMemoryDeliveryLog()
    assert dispatch(sample(), "pd", pagerduty(receiver.url()), env=PD_ENV, log=log) == "failed"
    assert len(receiver.requests) == 1
    assert log.attempts[0].http_status == 302


def test_missing_env_var_fails_without_a_request(receiver: Receiver) -> None:
    log = InMemoryDeliveryLog()
    assert dispatch(sample(), "pd", pagerduty(receiver.url()), env={}, log=log) == "failed"
    assert receiver.requests == []
    (attempt,) = log.attempts
    assert attempt.detail == "environment variable PD_ROUTING_KEY is not set; nothing was sent"


def test_env_webhook_url_with_bad_scheme_fails_without_echoing_it() -> None:
    log = InMemoryDeliveryLog()
    channel = SlackChannel(type="slack", webhook_url_env="SLACK_URL")
    env = {"SLACK_URL": "ftp://hooks.example.com/T0/B0/secretpart"}
    assert dispatch(sample(), "slack", channel, env=env, log=log) == "failed"
    assert log.attempts[0].detail == (
        "environment variable SLACK_URL does not hold a usable http(s) URL; nothing was sent"
    )


# ---------------------------------------------------------------------------------------------------------
# Idempotency, rate limits, dry runs


def test_same_key_is_delivered_once(receiver: Receiver) -> None:
    log = InMemoryDeliveryLog()
    channel = pagerduty(receiver.url())
    assert dispatch(sample(), "pd", channel, env=PD_ENV, log=log) == "delivered"
    assert dispatch(sample(), "pd", channel, env=PD_ENV, log=log) == "duplicate"
    assert len(receiver.requests) == 1
    assert [a.outcome for a in log.attempts] == ["delivered", "duplicate"]
    # The same key on another channel is a different delivery.
    assert dispatch(sample(), "pd-secondary", channel, env=PD_ENV, log=log) == "delivered"
    assert len(receiver.requests) == 2


def test_failed_delivery_does_not_block_a_later_retry(receiver: Receiver) -> None:
    receiver.program([400])
    log = InMemoryDeliveryLog()
    channel = pagerduty(receiver.url())
    assert dispatch(sample(), "pd", channel, env=PD_ENV, log=log) == "failed"
    assert dispatch(sample(), "pd", channel, env=PD_ENV, log=log) == "delivered"


def test_rate_limit_blocks_third_trigger_but_not_a_resolve(receiver: Receiver) -> None:
    channel = pagerduty(receiver.url(), rate_limit=RateLimit(count=2, per="1h"))
    log = InMemoryDeliveryLog()
    time = FakeTime()
    outcomes = []
    for i in (1, 2, 3):
        time.now = AT + timedelta(minutes=i)
        outcomes.append(dispatch(sample(key=f"t{i}"), "pd", channel, env=PD_ENV, log=log, clock=time.clock))
    assert outcomes == ["delivered", "delivered", "rate_limited"]
    assert log.attempts[-1].detail == "2 delivered in the last 1h (limit 2)"
    assert dispatch(resolved_sample(), "pd", channel, env=PD_ENV, log=log, clock=time.clock) == "delivered"
    assert len(receiver.requests) == 3
    # At AT+62m the hour starts at AT+2m: the second trigger (AT+2m) and the resolve (AT+3m) are in it.
    time.now = AT + timedelta(minutes=62)
    assert dispatch(sample(key="t4"), "pd", channel, env=PD_ENV, log=log, clock=time.clock) == "rate_limited"
    time.now = AT + timedelta(minutes=63)  # window from AT+3m: only the resolve is left in it
    assert dispatch(sample(key="t5"), "pd", channel, env=PD_ENV, log=log, clock=time.clock) == "delivered"


def test_dry_run_builds_but_sends_nothing(receiver: Receiver) -> None:
    log = InMemoryDeliveryLog()
    assert dispatch(sample(), "pd", pagerduty(receiver.url()), env=PD_ENV, log=log, dry_run=True) == "dry_run"
    assert receiver.requests == []
    assert log.attempts[0].outcome == "dry_run"
    assert not log.delivered("incident-42/trigger/1", "pd")
    # Missing configuration still surfaces in a dry run.
    assert dispatch(sample(), "pd", pagerduty(receiver.url()), env={}, log=log, dry_run=True) == "failed"


# ---------------------------------------------------------------------------------------------------------
# Secrets never recorded


SECRETS = {
    "SLACK_URL": "/services/T0SLACKSECRET/B0SLACKSECRET/SLACKTOKENSECRET",
    "PD_KEY": "PDROUTINGKEYSECRET0001",
    "HOOK_URL": "/hooks/HOOKPATHSECRET?token=HOOKQUERYSECRET",
    "HOOK_SECRET": "HOOKHMACSECRET0001",
    "SMS_SID": "ACSMSSIDSECRET",
    "SMS_TOKEN": "SMSTOKENSECRET0001",
    "AM_TOKEN": "AMBEARERSECRET0001",
    "SMTP_USER": "SMTPUSERSECRET",
    "SMTP_PASSWORD": "SMTPPASSWORDSECRET",
}


def secret_pieces(names: list[str]) -> list[str]:
    """Every secret of ``names`` and every distinctive piece of it (a receiver may echo only a URL's
    path or one token of it), plus the Basic-auth form of the SMS credentials."""
    pieces = []
    for name in names:
        value = SECRETS[name]
        pieces += [value, *(p for p in re.split(r"[/?=]", value) if "SECRET" in p)]
    if "SMS_TOKEN" in names:
        pieces.append(base64.b64encode(f"{SECRETS['SMS_SID']}:{SECRETS['SMS_TOKEN']}".encode()).decode())
    return pieces


def test_secrets_never_appear_in_attempts_or_errors(receiver: Receiver) -> None:
    env = {name: receiver.url(value) if value.startswith("/") else value for name, value in SECRETS.items()}
    channels = {
        "slack": (SlackChannel(type="slack", webhook_url_env="SLACK_URL"), ["SLACK_URL"]),
        "pd": (
            PagerDutyChannel(type="pagerduty", routing_key_env="PD_KEY", url=receiver.url("/pd")),
            ["PD_KEY"],
        ),
        "hook": (
            WebhookChannel(type="webhook", url_env="HOOK_URL", secret_env="HOOK_SECRET"),
            ["HOOK_URL", "HOOK_SECRET"],
        ),
        "sms": (
            SmsChannel(
                type="sms",
                url=receiver.url("/Accounts/{account_sid}/Messages.json"),
                account_sid_env="SMS_SID",
                auth_token_env="SMS_TOKEN",
                sender="+15005550006",
                recipients=["+14155550100"],
            ),
            ["SMS_SID", "SMS_TOKEN"],
        ),
        "am": (
            AlertmanagerChannel(type="alertmanager", url=receiver.url("/am"), bearer_token_env="AM_TOKEN"),
            ["AM_TOKEN"],
        ),
        "mail": (
            EmailChannel(
                type="email",
                smtp=SmtpSettings(
                    host="127.0.0.1",
                    port=closed_port(),
                    security="starttls",
                    username_env="SMTP_USER",
                    password_env="SMTP_PASSWORD",
                ),
                sender="alerts@example.com",
                recipients=["oncall@example.com"],
            ),
            ["SMTP_USER", "SMTP_PASSWORD"],
        ),
    }
    time = FakeTime()
    for name, (channel, names) in channels.items():
        # A careless receiver echoing the channel's secrets (and the Authorization header) in its errors.
        echoed = " ".join(secret_pieces(names) + [env[n] for n in names])
        receiver.program([Reply(503, f"busy: {echoed}"), Reply(401, f"denied: {echoed}")])
        log = InMemoryDeliveryLog()
        outcome = dispatch(
            sample(), name, channel, env=env, log=log, clock=time.clock, sleep=time.sleep, max_attempts=2
        )
        assert outcome == "failed"
        assert len(log.attempts) == 2  # every channel got past reading its secrets and tried twice
        recorded = [repr(a) for a in log.attempts]
        for piece in secret_pieces(names):
            assert not [text for text in recorded if piece in text], (name, piece)
        if name != "mail":
            assert "[redacted]" in log.attempts[0].detail  # the echo was there, and was scrubbed
    errors: list[str] = []
    for bad in (
        {"s": {"type": "slack", "webhook_url_env": env["SLACK_URL"]}},  # a URL pasted where a name belongs
        {
            "p": {
                "type": "pagerduty",
                "routing_key_env": "K",
                "url": f"https://u:{SECRETS['PD_KEY']}@x.example",
            }
        },
    ):
        with pytest.raises(ChannelConfigError) as caught:
            parse_channels(bad, "cfg.yaml")
        errors.append(str(caught.value))
    for piece in secret_pieces(["SLACK_URL", "PD_KEY"]):
        assert not [text for text in errors if piece in text], piece


# ---------------------------------------------------------------------------------------------------------
# Channel settings


def test_parse_channels_valid_config_of_every_type() -> None:
    channels = parse_channels(
        {
            "slack-oncall": {
                "type": "slack",
                "webhook_url_env": "SLACK_URL",
                "rate_limit": {"count": 5, "per": "30m"},
            },
            "pd": {"type": "pagerduty", "routing_key_env": "PD_KEY", "timeout_seconds": 5},
            "hook": {"type": "webhook", "url": "https://hooks.example.com/in", "secret_env": "HOOK_SECRET"},
            "mail": {
                "type": "email",
                "smtp": {"host": "smtp.example.com", "port": 587},
                "sender": "alerts@example.com",
                "recipients": ["oncall@example.com"],
            },
            "sms": {
                "type": "sms",
                "url": "https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Messages.json",
                "account_sid_env": "TWILIO_SID",
                "auth_token_env": "TWILIO_TOKEN",
                "sender": "+15005550006",
                "recipients": ["+14155550100"],
            },
            "am": {"type": "alertmanager", "url": "http://alertmanager:9093"},
        },
        "sloscope.yaml",
    )
    assert {name: c.type for name, c in channels.items()} == {
        "slack-oncall": "slack",
        "pd": "pagerduty",
        "hook": "webhook",
        "mail": "email",
        "sms": "sms",
        "am": "alertmanager",
    }
    slack = channels["slack-oncall"]
    assert slack.rate_limit is not None and slack.rate_limit.window == timedelta(minutes=30)
    assert slack.timeout_seconds == 10
    pd = channels["pd"]
    assert isinstance(pd, PagerDutyChannel) and pd.url == "https://events.pagerduty.com/v2/enqueue"
    assert pd.timeout_seconds == 5.0
    mail = channels["mail"]
    assert isinstance(mail, EmailChannel) and mail.smtp.security == "starttls"


def test_parse_channels_reports_every_problem_precisely() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        parse_channels(
            {
                "pd": {"type": "pagerduty"},
                "slack": {"type": "slack", "webhook_url_env": "SLACK_URL", "webhook_url": "https://x"},
                "teams": {"type": "teams"},
                "untyped": {"url": "https://x"},
                "bad name!": {"type": "slack", "webhook_url_env": "X"},
                "hook": {
                    "type": "webhook",
                    "url": "https://x.example",
                    "url_env": "HOOK_URL",
                    "secret_env": "S",
                },
                "limited": {"type": "slack", "webhook_url_env": "X", "rate_limit": {"count": 0, "per": "2w"}},
                "mail": {
                    "type": "email",
                    "smtp": {"host": "smtp.example.com", "port": "25"},
                    "sender": "alerts@example.com",
                    "recipients": [],
                },
                "sms": {
                    "type": "sms",
                    "url": "https://sms.example/{account_sid}/{token}",
                    "account_sid_env": "sid",
                    "auth_token_env": "has-dash",
                    "sender": "+1",
                    "recipients": ["0123"],
                },
                "slow": {"type": "slack", "webhook_url_env": "X", "timeout_seconds": "10"},
            },
            "sloscope.yaml",
        )
    assert caught.value.problems == [
        "sloscope.yaml: channels.pd.routing_key_env: required field is missing",
        "sloscope.yaml: channels.slack.webhook_url: unknown field",
        "sloscope.yaml: channels.teams.type: expected one of slack, pagerduty, webhook, email, sms,"
        " alertmanager; got 'teams'",
        "sloscope.yaml: channels.untyped.type: required field is missing"
        " (one of slack, pagerduty, webhook, email, sms, alertmanager)",
        "sloscope.yaml: channels.'bad name!': a channel name is 1-64 characters of A-Z a-z 0-9 _ . -",
        "sloscope.yaml: channels.hook: set exactly one of url or url_env",
        "sloscope.yaml: channels.limited.rate_limit.count: Input should be greater than or equal to 1",
        "sloscope.yaml: channels.limited.rate_limit.per: expected a duration like 30m, 1h or 1d, got '2w'",
        "sloscope.yaml: channels.mail.smtp.port: Input should be a valid integer",
        "sloscope.yaml: channels.mail.recipients: List should have at least 1 item after validation, not 0",
        "sloscope.yaml: channels.sms.url: only the {account_sid} placeholder is allowed in the URL",
        "sloscope.yaml: channels.sms.auth_token_env: expected an environment variable name such as"
        " SLACK_WEBHOOK_URL",
        "sloscope.yaml: channels.sms.recipients[0]: expected an E.164 phone number like +14155550100,"
        " got '0123'",
        "sloscope.yaml: channels.slow.timeout_seconds: Input should be a valid number",
    ]


def test_parse_channels_rejects_a_non_mapping() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        parse_channels(["slack"], "sloscope.yaml")  # type: ignore[arg-type]
    assert caught.value.problems == [
        "sloscope.yaml: channels: expected a mapping of channel name to settings, got list"
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://alertmanager.example/", "expected an http:// or https:// URL, got scheme 'ftp'"),
        ("javascript:alert(1)", "expected an http:// or https:// URL, got scheme 'javascript'"),
        ("file:///etc/passwd", "expected an http:// or https:// URL, got scheme 'file'"),
        ("alertmanager:9093", "expected an http:// or https:// URL, got scheme 'alertmanager'"),
        ("https://", "the URL has no host"),
        ("https://user:pw@alertmanager.example", "credentials in the URL are not allowed; put secrets in"),
        ("https://alertmanager.example/\r\nX: y", "the URL contains spaces or control characters"),
    ],
)
def test_bad_urls_rejected(url: str, message: str) -> None:
    with pytest.raises(ChannelConfigError) as caught:
        parse_channels({"am": {"type": "alertmanager", "url": url}}, "cfg.yaml")
    (problem,) = caught.value.problems
    assert problem.startswith(f"cfg.yaml: channels.am.url: {message}")


def test_bad_url_schemes_rejected_for_every_url_field() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        parse_channels(
            {
                "pd": {"type": "pagerduty", "routing_key_env": "K", "url": "ftp://x"},
                "hook": {"type": "webhook", "url": "gopher://x", "secret_env": "S"},
                "sms": {
                    "type": "sms",
                    "url": "smtp://x/{account_sid}",
                    "account_sid_env": "A",
                    "auth_token_env": "B",
                    "sender": "+15005550006",
                    "recipients": ["+14155550100"],
                },
            },
            "cfg.yaml",
        )
    assert caught.value.problems == [
        "cfg.yaml: channels.pd.url: expected an http:// or https:// URL, got scheme 'ftp'",
        "cfg.yaml: channels.hook.url: expected an http:// or https:// URL, got scheme 'gopher'",
        "cfg.yaml: channels.sms.url: expected an http:// or https:// URL, got scheme 'smtp'",
    ]

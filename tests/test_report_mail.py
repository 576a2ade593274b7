"""pipelines.report_mail against a real SMTP server (aiosmtpd on 127.0.0.1), parsing what it receives."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import duckdb
import pytest
from aiosmtpd.controller import Controller

from pipelines.report_mail import (
    Recipients,
    RecipientsError,
    delivery_key,
    load_recipients,
    period_label,
    report_email,
    send_report,
    smtp_sender_from_env,
    smtp_settings_from_env,
)
from pipelines.slo.mail import SmtpSettings

LOOPBACK = "127.0.0.1"
SENDER = "sloscope reports <reports@sloscope.example>"
TO = ["sre@shop.example", "Ana Núñez <ana@shop.example>"]

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>checkout</title></head>
<body><h1>checkout — Verfügbarkeit</h1>
<figure><svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" aria-label="Daily SLI">
<rect width="120" height="40" fill="#1e7b34"/></svg><figcaption>SLI</figcaption></figure>
<figure><svg width="60px" height="30" viewBox="0 0 60 30"><circle cx="15" cy="15" r="10" fill="red"/></svg>
</figure>
</body></html>
"""


# --------------------------------------------------------------------------------------------------
# Server


@dataclass
class Recorder:
    """Answers DATA from a script (then 250) and records each accepted message."""

    script: list[str] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    rcpt: list[list[str]] = field(default_factory=list)
    attempts: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        reply = self.script.pop(0) if self.script else "250 OK"
        if reply.startswith("250"):
            self.received.append(envelope.content)
            self.rcpt.append(list(envelope.rcpt_tos))
        return reply


@dataclass
class Server:
    port: int
    recorder: Recorder

    def settings(self) -> SmtpSettings:
        return SmtpSettings(host=LOOPBACK, port=self.port, security="none", timeout_seconds=5.0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture
def server() -> Iterator[Server]:
    recorder = Recorder()
    controller = Controller(recorder, hostname=LOOPBACK, port=free_port())
    controller.start()
    try:
        yield Server(controller.port, recorder)
    finally:
        controller.stop()


def parse(content: bytes) -> EmailMessage:
    return email.message_from_bytes(content.replace(b"\r\n", b"\n"), policy=email.policy.default)  # type: ignore[return-value]


@pytest.fixture
def artefacts(tmp_path: Path) -> tuple[Path, Path]:
    html = tmp_path / "report.html"
    html.write_text(PAGE, encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% fake but enough for MIME\n%%EOF\n")
    return html, pdf


def make_message(artefacts: tuple[Path, Path], recipients: list[str] | None = None) -> EmailMessage:
    html, pdf = artefacts
    return report_email(
        html,
        pdf,
        service="checkout",
        report_type="monthly",
        period="2026-10",
        sender=SENDER,
        recipients=recipients or TO,
    )


KEY = delivery_key(service="checkout", report_type="monthly", period="2026-10", recipients=TO)


def deliveries(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT attempt, outcome, service, report_type, period, recipients FROM report_deliveries"
        ' ORDER BY "at", attempt'
    ).fetchall()


# --------------------------------------------------------------------------------------------------
# The message as received


def test_report_arrives_with_html_inline_pngs_and_both_attachments(
    server: Server, artefacts: tuple[Path, Path], warehouse: duckdb.DuckDBPyConnection
) -> None:
    outcome = send_report(warehouse, make_message(artefacts), key=KEY, settings=server.settings(), env={})
    assert outcome == "sent"

    [raw] = server.recorder.received
    received = parse(raw)
    assert received["Subject"] == "[sloscope] checkout — monthly SLO report, October 2026"
    assert [a.addr_spec for a in received["To"].addresses] == ["sre@shop.example", "ana@shop.example"]
    assert server.recorder.rcpt == [["sre@shop.example", "ana@shop.example"]]
    assert received["Message-ID"].endswith(".0@sloscope.invalid>")
    assert received.get_content_type() == "multipart/mixed"

    [alternative, pdf, html_file] = received.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    [plain, related] = alternative.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert "October 2026" in plain.get_content()
    assert related.get_content_type() == "multipart/related"
    [html_part, *images] = related.iter_parts()
    assert html_part.get_content_type() == "text/html"
    body = html_part.get_content()
    assert "<svg" not in body.lower()
    assert "checkout — Verfügbarkeit" in body
    cids = re.findall(r'src="cid:([^"]+)"', body)
    assert len(cids) == 2  # two charts in PAGE
    by_cid = {part["Content-ID"].strip("<>"): part for part in images}
    assert set(cids) == set(by_cid)
    for part in by_cid.values():
        assert part.get_content_type() == "image/png"
        assert part.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert 'alt="Daily SLI"' in body and 'width="120" height="40"' in body
    assert 'width="60" height="30"' in body  # "60px" normalised

    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_filename() == "checkout-monthly-2026-10.pdf"
    assert pdf.get_content().startswith(b"%PDF-")
    assert html_file.get_content_type() == "text/html"
    assert html_file.get_filename() == "checkout-monthly-2026-10.html"
    assert html_file.is_attachment()
    assert "<svg" in html_file.get_content()  # the attached page is the original

    assert deliveries(warehouse) == [
        (1, "sent", "checkout", "monthly", "2026-10", "sre@shop.example,ana@shop.example")
    ]


def test_second_send_of_the_same_key_sends_nothing_and_force_sends_again(
    server: Server, artefacts: tuple[Path, Path], warehouse: duckdb.DuckDBPyConnection
) -> None:
    settings = server.settings()
    assert send_report(warehouse, make_message(artefacts), key=KEY, settings=settings, env={}) == "sent"
    again = send_report(warehouse, make_message(artefacts), key=KEY, settings=settings, env={})
    assert again == "already_sent"
    assert len(server.recorder.received) == 1
    forced = send_report(warehouse, make_message(artefacts), key=KEY, settings=settings, env={}, force=True)
    assert forced == "sent"
    assert len(server.recorder.received) == 2
    ids = [parse(raw)["Message-ID"] for raw in server.recorder.received]
    assert ids[0] != ids[1]  # a forced re-send must not be dropped as a duplicate by the receiver
    assert [row[1] for row in deliveries(warehouse)] == ["sent", "sent"]


def test_different_recipients_are_a_different_delivery() -> None:
    other = delivery_key(service="checkout", report_type="monthly", period="2026-10", recipients=TO[:1])
    same = delivery_key(
        service="checkout", report_type="monthly", period="2026-10", recipients=["ANA@shop.example", TO[0]]
    )
    assert other != KEY
    assert same == KEY  # order, case and display names do not matter


def test_451_twice_then_accepted_is_sent_after_three_attempts(
    server: Server, artefacts: tuple[Path, Path], warehouse: duckdb.DuckDBPyConnection
) -> None:
    server.recorder.script = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
    slept: list[float] = []
    outcome = send_report(
        warehouse, make_message(artefacts), key=KEY, settings=server.settings(), env={}, sleep=slept.append
    )
    assert outcome == "sent"
    assert server.recorder.attempts == 3
    assert slept == [2.0, 4.0]  # exponential backoff from 2 s
    rows = deliveries(warehouse)
    assert [(r[0], r[1]) for r in rows] == [(1, "retryable_error"), (2, "retryable_error"), (3, "sent")]
    details = warehouse.execute("SELECT detail FROM report_deliveries WHERE attempt = 1").fetchone()
    assert "451" in details[0]


def test_retryable_failures_give_up_after_the_last_attempt(
    server: Server, artefacts: tuple[Path, Path], warehouse: duckdb.DuckDBPyConnection
) -> None:
    server.recorder.script = ["451 4.3.0 later"] * 5
    outcome = send_report(
        warehouse, make_message(artefacts), key=KEY, settings=server.settings(), env={}, sleep=lambda _: None
    )
    assert outcome == "failed"
    assert server.recorder.attempts == 3
    # Not sent, so a re-run tries again.
    server.recorder.script = []
    again = send_report(warehouse, make_message(artefacts), key=KEY, settings=server.settings(), env={})
    assert again == "sent"


def test_554_fails_at_once(
    server: Server, artefacts: tuple[Path, Path], warehouse: duckdb.DuckDBPyConnection
) -> None:
    server.recorder.script = ["554 5.7.1 message rejected"]
    slept: list[float] = []
    outcome = send_report(
        warehouse, make_message(artefacts), key=KEY, settings=server.settings(), env={}, sleep=slept.append
    )
    assert outcome == "failed"
    assert server.recorder.attempts == 1
    assert slept == []
    assert [(r[0], r[1]) for r in deliveries(warehouse)] == [(1, "permanent_error")]


def test_unreachable_server_is_retried_and_recorded(
    artefacts: tuple[Path, Path], warehouse: duckdb.DuckDBPyConnection
) -> None:
    settings = SmtpSettings(host=LOOPBACK, port=free_port(), security="none", timeout_seconds=2.0)
    outcome = send_report(
        warehouse,
        make_message(artefacts),
        key=KEY,
        settings=settings,
        env={},
        retries=2,
        sleep=lambda _: None,
    )
    assert outcome == "failed"
    assert [r[1] for r in deliveries(warehouse)] == ["retryable_error", "retryable_error"]


# --------------------------------------------------------------------------------------------------
# Message building


def test_subject_rejects_line_breaks(artefacts: tuple[Path, Path]) -> None:
    html, pdf = artefacts
    with pytest.raises(ValueError, match="line breaks"):
        report_email(
            html,
            pdf,
            service="checkout\r\nBcc: victim@evil.example",
            report_type="monthly",
            period="2026-10",
            sender=SENDER,
            recipients=TO,
        )


def test_bad_recipient_is_rejected(artefacts: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="not-an-address"):
        make_message(artefacts, recipients=["not-an-address"])


@pytest.mark.parametrize(
    ("period", "label"),
    [("2026-10", "October 2026"), ("2026-Q4", "Q4 2026"), ("2026-10-31", "31 October 2026"), ("x", "x")],
)
def test_period_label(period: str, label: str) -> None:
    assert period_label(period) == label


# --------------------------------------------------------------------------------------------------
# Configuration


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_recipients_per_service_override_the_default(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.yaml",
        """
default:
  monthly: [sre@shop.example]
  quarterly: ["Leads <leads@shop.example>"]
services:
  checkout:
    monthly: [payments@shop.example, sre@shop.example]
  search:
    quarterly: []
""",
    )
    recipients = load_recipients(path)
    assert recipients.for_report("checkout", "monthly") == ("payments@shop.example", "sre@shop.example")
    assert recipients.for_report("checkout", "quarterly") == ("Leads <leads@shop.example>",)
    assert recipients.for_report("search", "monthly") == ("sre@shop.example",)
    assert recipients.for_report("search", "quarterly") == ()  # opted out
    with pytest.raises(ValueError, match="unknown report type"):
        recipients.for_report("search", "yearly")


def test_recipients_file_lists_every_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.yaml",
        """
default:
  montly: [sre@shop.example]
  monthly: [sre@shop.example, "SRE@shop.example", "nobody", "x@y.example\\nBcc: z@evil.example"]
services:
  checkout:
    quarterly: sre@shop.example
extra: 1
""",
    )
    with pytest.raises(RecipientsError) as caught:
        load_recipients(path)
    message = str(caught.value)
    assert "6 problem(s)" in message  # extra, montly, the duplicate, nobody, the line break, the str
    assert "'extra': unknown key" in message
    assert "default.montly: unknown report type" in message
    assert "default.monthly[1]: SRE@shop.example is listed twice" in message
    assert "default.monthly[2]" in message and "'nobody'" in message
    assert "default.monthly[3] must not contain CR, LF" in message
    assert "services.checkout.quarterly: expected a list of addresses, got str" in message


def test_missing_explicit_file_is_an_error_but_missing_default_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RecipientsError, match="no such file"):
        load_recipients(tmp_path / "absent.yaml")
    monkeypatch.setattr("pipelines.report_mail.DEFAULT_RECIPIENTS_FILE", tmp_path / "absent.yaml")
    assert load_recipients(None) == Recipients()


def test_smtp_settings_from_env_keeps_only_credential_names() -> None:
    env = {
        "SLOSCOPE_SMTP_HOST": "smtp.shop.example",
        "SLOSCOPE_SMTP_PORT": "587",
        "SLOSCOPE_SMTP_TLS": "starttls",
        "SLOSCOPE_SMTP_SENDER": "Reports <reports@shop.example>",
        "SLOSCOPE_SMTP_USER": "bot",
        "SLOSCOPE_SMTP_PASSWORD": "hunter2-secret",
    }
    settings = smtp_settings_from_env(env)
    assert (settings.host, settings.port, settings.security) == ("smtp.shop.example", 587, "starttls")
    assert (settings.username_env, settings.password_env) == ("SLOSCOPE_SMTP_USER", "SLOSCOPE_SMTP_PASSWORD")
    assert "hunter2-secret" not in repr(settings) and "hunter2-secret" not in settings.model_dump_json()
    assert smtp_sender_from_env(env) == "Reports <reports@shop.example>"


def test_smtp_settings_defaults_without_credentials() -> None:
    settings = smtp_settings_from_env({})
    assert (settings.host, settings.port, settings.security) == ("127.0.0.1", 25, "none")
    assert settings.username_env is None and settings.password_env is None


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"SLOSCOPE_SMTP_PORT": "smtp"}, "SLOSCOPE_SMTP_PORT"),
        ({"SLOSCOPE_SMTP_TLS": "tls"}, "SLOSCOPE_SMTP_TLS"),
        ({"SLOSCOPE_SMTP_PORT": "70000"}, "port"),
    ],
)
def test_bad_smtp_env_names_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        smtp_settings_from_env(env)


def test_credentials_over_plaintext_fail_without_showing_them(
    server: Server, artefacts: tuple[Path, Path], warehouse: duckdb.DuckDBPyConnection
) -> None:
    env = {"SLOSCOPE_SMTP_HOST": LOOPBACK, "SLOSCOPE_SMTP_PORT": str(server.port)}
    secrets = {"SLOSCOPE_SMTP_USER": "bot", "SLOSCOPE_SMTP_PASSWORD": "hunter2-secret"}
    settings = smtp_settings_from_env({**env, **secrets})
    outcome = send_report(warehouse, make_message(artefacts), key=KEY, settings=settings, env=secrets)
    assert outcome == "failed"
    [(detail,)] = warehouse.execute("SELECT detail FROM report_deliveries").fetchall()
    assert "plaintext" in detail and "hunter2-secret" not in detail
    assert server.recorder.received == []

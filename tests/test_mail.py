"""pipelines.slo.mail against real SMTP servers (aiosmtpd) on 127.0.0.1, with a throwaway CA (trustme).

Nothing here leaves the loopback interface. Expected values are written out by hand: the headers and
bodies we put in, the reply codes the test servers are told to send, and what RFC 5321/5322 say a
client must do with them.
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import logging
import pickle
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import ValidationError

from pipelines.slo.mail import MailError, SmtpSettings, build_message, send_message

LOOPBACK = "127.0.0.1"
USER = "alerts-bot"
PASSWORD = "s3cret-Pa55word!"
WRONG_PASSWORD = "wr0ng-Pa55word!"
ENV = {"SMTP_USER": USER, "SMTP_PASSWORD": PASSWORD}
AUTH = {"username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD"}
SENDER = "sloscope alerts <alerts@sloscope.example>"


# --------------------------------------------------------------------------------------------------
# Test servers


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: bytes | None
    starttls: bool


@dataclass
class Recorder:
    """aiosmtpd handler: records each accepted message; can refuse recipients or the DATA."""

    data_reply: str = "250 OK"
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> RCPT reply
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply.startswith("250"):
            self.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    content=envelope.content,
                    login=session.auth_data.login if session.auth_data else None,
                    starttls=session.ssl is not None,
                )
            )
        return self.data_reply


@dataclass
class Authenticator:
    """Accepts exactly USER/PASSWORD and records which mechanism the client used.

    With ``echo``, a refusal quotes the credentials back, as a careless relay might.
    """

    echo: bool = False
    mechanisms: list[str] = field(default_factory=list)

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        self.mechanisms.append(mechanism)
        ok = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == PASSWORD.encode()
        )
        if not ok and self.echo and isinstance(data, LoginPassword):
            message = f"535 5.7.8 bad credentials {data.login.decode()} {data.password.decode()}"
            return AuthResult(success=False, handled=False, message=message)
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


@dataclass
class Server:
    port: int
    recorder: Recorder
    authenticator: Authenticator

    def settings(self, **overrides: Any) -> SmtpSettings:
        return SmtpSettings(**{"host": LOOPBACK, "port": self.port, "timeout_seconds": 5.0, **overrides})


def free_port() -> int:
    """A port nothing listens on (the kernel's pick, released again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """Starts aiosmtpd Controllers on 127.0.0.1; all are stopped at teardown."""
    controllers: list[Controller] = []

    def start(
        recorder: Recorder | None = None, authenticator: Authenticator | None = None, **smtp_kwargs: Any
    ) -> Server:
        recorder = recorder or Recorder()
        authenticator = authenticator or Authenticator()
        controller = Controller(
            recorder, hostname=LOOPBACK, port=free_port(), authenticator=authenticator, **smtp_kwargs
        )
        controller.start()
        controllers.append(controller)
        return Server(controller.port, recorder, authenticator)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """Server side of TLS: a certificate for 127.0.0.1 and localhost signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(LOOPBACK, "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def starttls_server(start: Callable[..., Server], tls: ssl.SSLContext, **kwargs: Any) -> Server:
    """A submission-style server: STARTTLS required, AUTH required and only after TLS."""
    return start(tls_context=tls, require_starttls=True, auth_required=True, auth_require_tls=True, **kwargs)


def simple_message(recipients: list[str] | None = None, **kwargs: Any) -> EmailMessage:
    return build_message(
        sender=SENDER,
        recipients=recipients or ["oncall@payments.example"],
        subject="[FIRING] payments-api availability",
        text="Burn rate 14.4 over 1h.",
        **kwargs,
    )


def parse(content: bytes) -> EmailMessage:
    """The message as a mail store would keep it: SMTP's CRLF line ends turned into LF, then parsed."""
    normalised = content.replace(b"\r\n", b"\n")
    return email.message_from_bytes(normalised, policy=email.policy.default)  # type: ignore[return-value]


def exception_chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


# --------------------------------------------------------------------------------------------------
# Plain SMTP: the message as received


def test_plain_send_delivers_subject_bodies_attachments_and_message_id(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    png = bytes(range(256))  # every byte value, so any encoding slip shows
    page = b"<html><body><h1>Report</h1></body></html>"
    subject = "Budget épuisé — payments-api 🔥"
    message = build_message(
        sender=SENDER,
        recipients=["On-call <oncall@payments.example>", "sre@payments.example"],
        subject=subject,
        text="Burn rate 14.4× over 1h.\nBudget left: 12%",
        html="<p>Burn rate <b>14.4×</b> over 1h.</p>",
        message_id="alert-42@sloscope",
        attachments=[("burn.png", png, "image/png"), ("report.html", page, "text/html")],
    )
    before = datetime.now(UTC).replace(microsecond=0)

    send_message(server.settings(security="none"), message, env={})

    [received] = server.recorder.received
    assert received.mail_from == "alerts@sloscope.example"
    assert received.rcpt_tos == ["oncall@payments.example", "sre@payments.example"]
    assert received.login is None
    # Non-ASCII travels as RFC 2047 encoded words and quoted-printable: the raw message is 7-bit.
    assert received.content.isascii()
    assert b"\n" not in received.content.replace(b"\r\n", b"")  # CRLF only on the wire (RFC 5321 2.3.8)
    got = parse(received.content)
    assert got["Subject"] == subject
    assert got["From"] == "sloscope alerts <alerts@sloscope.example>"
    assert got["To"] == "On-call <oncall@payments.example>, sre@payments.example"
    assert got["Message-ID"] == "<alert-42@sloscope>"
    assert got["Auto-Submitted"] == "auto-generated"
    sent_at = email.utils.parsedate_to_datetime(got["Date"])
    assert before - timedelta(seconds=1) <= sent_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert got.get_content_type() == "multipart/mixed"
    # set_content ends a text body with a newline.
    assert got.get_body(("plain",)).get_content() == "Burn rate 14.4× over 1h.\nBudget left: 12%\n"
    assert got.get_body(("html",)).get_content() == "<p>Burn rate <b>14.4×</b> over 1h.</p>\n"
    attachments = [
        (part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
        for part in got.iter_attachments()
    ]
    assert attachments == [("burn.png", "image/png", png), ("report.html", "text/html", page)]


def test_text_only_message_is_a_single_text_plain_part() -> None:
    message = simple_message()
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content() == "Burn rate 14.4 over 1h.\n"


def test_html_without_attachments_is_multipart_alternative() -> None:
    message = simple_message(html="<p>hi</p>")
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    ("message_id", "header"),
    [
        ("alert-42@sloscope", "<alert-42@sloscope>"),
        # No right-hand side: RFC 5322 requires one, so the reserved .invalid domain is added.
        ("9f86d081884c7d65", "<9f86d081884c7d65@sloscope.invalid>"),
    ],
)
def test_message_id_from_key(message_id: str, header: str) -> None:
    assert simple_message(message_id=message_id)["Message-ID"] == header


def test_message_id_is_generated_under_sloscope_invalid() -> None:
    first, second = simple_message()["Message-ID"], simple_message()["Message-ID"]
    assert first.startswith("<") and first.endswith("@sloscope.invalid>")
    assert first != second


def test_bcc_is_delivered_but_not_transmitted_and_cc_is_kept(start_server: Callable[..., Server]) -> None:
    server = start_server()
    message = simple_message(["to@payments.example"])
    message["Cc"] = "cc@payments.example"
    message["Bcc"] = "hidden@audit.example"

    send_message(server.settings(security="none"), message, env={})

    [received] = server.recorder.received
    assert received.rcpt_tos == ["to@payments.example", "cc@payments.example", "hidden@audit.example"]
    got = parse(received.content)
    assert got["Cc"] == "cc@payments.example"
    assert "Bcc" not in got
    assert b"hidden@audit.example" not in received.content
    assert message["Bcc"] == "hidden@audit.example"  # the caller's message is left as it was


# --------------------------------------------------------------------------------------------------
# STARTTLS and implicit TLS


@pytest.mark.parametrize(("mechanism", "excluded"), [("PLAIN", ["LOGIN"]), ("LOGIN", ["PLAIN"])])
def test_starttls_with_auth_delivers(
    start_server: Callable[..., Server],
    server_tls: ssl.SSLContext,
    ca_file: str,
    mechanism: str,
    excluded: list[str],
) -> None:
    server = starttls_server(start_server, server_tls, auth_exclude_mechanism=excluded)

    send_message(server.settings(security="starttls", ca_file=ca_file, **AUTH), simple_message(), env=ENV)

    assert server.authenticator.mechanisms == [mechanism]
    [received] = server.recorder.received
    assert received.starttls
    assert received.login == USER.encode()
    assert received.rcpt_tos == ["oncall@payments.example"]


def test_wrong_password_is_not_retryable_and_never_shown(
    start_server: Callable[..., Server],
    server_tls: ssl.SSLContext,
    ca_file: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = starttls_server(start_server, server_tls)
    settings = server.settings(security="starttls", ca_file=ca_file, **AUTH)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(MailError) as caught:
        send_message(settings, simple_message(), env={**ENV, "SMTP_PASSWORD": WRONG_PASSWORD})

    error = caught.value
    assert error.retryable is False
    assert error.smtp_code == 535  # aiosmtpd's "535 5.7.8 Authentication credentials invalid"
    assert f"{LOOPBACK}:{server.port}" in str(error)
    assert "SMTP_PASSWORD" in str(error)
    # Neither the password nor the AUTH PLAIN blob carrying it appears anywhere.
    plain_blob = base64.b64encode(f"\0{USER}\0{WRONG_PASSWORD}".encode()).decode()
    shown = [str(error), repr(error), caplog.text, *map(str, exception_chain(error))]
    for secret in (WRONG_PASSWORD, plain_blob):
        assert all(secret not in text for text in shown)
    assert error.__cause__ is None and error.__context__ is None
    assert server.recorder.received == []


def test_credentials_echoed_by_the_server_are_redacted(
    start_server: Callable[..., Server], server_tls: ssl.SSLContext, ca_file: str
) -> None:
    server = starttls_server(start_server, server_tls, authenticator=Authenticator(echo=True))
    settings = server.settings(security="starttls", ca_file=ca_file, **AUTH)

    with pytest.raises(MailError) as caught:
        send_message(settings, simple_message(), env={**ENV, "SMTP_PASSWORD": WRONG_PASSWORD})

    # The reply was "535 5.7.8 bad credentials alerts-bot wr0ng-Pa55word!"; both values are secrets.
    assert str(caught.value).endswith("535 5.7.8 bad credentials [redacted] [redacted]")
    assert caught.value.retryable is False


def test_implicit_ssl_with_auth_delivers(
    start_server: Callable[..., Server], server_tls: ssl.SSLContext, ca_file: str
) -> None:
    # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; this listener is TLS from the first byte.
    server = start_server(ssl_context=server_tls, auth_require_tls=False)

    send_message(server.settings(security="ssl", ca_file=ca_file, **AUTH), simple_message(), env=ENV)

    assert server.authenticator.mechanisms == ["PLAIN"]  # smtplib prefers PLAIN over LOGIN
    [received] = server.recorder.received
    assert received.login == USER.encode()
    assert parse(received.content)["Subject"] == "[FIRING] payments-api availability"


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_untrusted_certificate_is_refused_before_any_credential(
    start_server: Callable[..., Server], server_tls: ssl.SSLContext, security: str
) -> None:
    if security == "ssl":
        server = start_server(ssl_context=server_tls, auth_require_tls=False)
    else:
        server = starttls_server(start_server, server_tls)

    # No ca_file: only the system CAs are trusted, and they did not sign the test certificate.
    with pytest.raises(MailError) as caught:
        send_message(server.settings(security=security, **AUTH), simple_message(), env=ENV)

    assert caught.value.retryable is False
    assert "certificate" in str(caught.value)
    assert server.authenticator.mechanisms == []
    assert server.recorder.received == []


def test_certificate_for_another_host_is_refused(
    start_server: Callable[..., Server], ca: trustme.CA, ca_file: str
) -> None:
    # Signed by the trusted CA, but for mail.example.com: the host name check must reject it.
    other = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mail.example.com").configure_cert(other)
    server = start_server(ssl_context=other)

    with pytest.raises(MailError) as caught:
        send_message(server.settings(security="ssl", ca_file=ca_file), simple_message(), env={})

    assert caught.value.retryable is False
    assert "certificate" in str(caught.value)
    assert server.recorder.received == []


def test_starttls_not_offered_is_a_configuration_error(start_server: Callable[..., Server]) -> None:
    server = start_server()  # plain server without tls_context: no STARTTLS in EHLO

    with pytest.raises(MailError) as caught:
        send_message(server.settings(security="starttls"), simple_message(), env={})

    assert caught.value.retryable is False
    assert "STARTTLS" in str(caught.value)
    assert server.recorder.received == []


def test_missing_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    settings = SmtpSettings(host=LOOPBACK, port=free_port(), ca_file=str(tmp_path / "missing.pem"))

    with pytest.raises(MailError) as caught:
        send_message(settings, simple_message(), env={})

    assert caught.value.retryable is False
    assert "missing.pem" in str(caught.value)


# --------------------------------------------------------------------------------------------------
# Credentials and configuration


def test_missing_env_var_is_named_and_checked_before_connecting() -> None:
    # A closed port: had the client tried to connect, the error would be a retryable connection error.
    settings = SmtpSettings(host=LOOPBACK, port=free_port(), **AUTH)

    with pytest.raises(MailError) as caught:
        send_message(settings, simple_message(), env={"SMTP_USER": USER})

    assert caught.value.retryable is False
    assert "SMTP_PASSWORD" in str(caught.value)
    assert "is not set" in str(caught.value)


def test_empty_env_var_is_rejected() -> None:
    settings = SmtpSettings(host=LOOPBACK, port=free_port(), **AUTH)

    with pytest.raises(MailError, match=r"SMTP_PASSWORD.*empty") as caught:
        send_message(settings, simple_message(), env={**ENV, "SMTP_PASSWORD": ""})

    assert caught.value.retryable is False


def test_non_ascii_password_is_refused_without_showing_it() -> None:
    # smtplib encodes AUTH as ASCII; its own UnicodeEncodeError would carry the password.
    settings = SmtpSettings(host=LOOPBACK, port=free_port(), **AUTH)

    with pytest.raises(MailError) as caught:
        send_message(settings, simple_message(), env={**ENV, "SMTP_PASSWORD": "pässwörd"})

    assert caught.value.retryable is False
    assert "SMTP_PASSWORD" in str(caught.value) and "pässwörd" not in str(caught.value)


def test_message_without_recipients_is_rejected_before_connecting() -> None:
    message = simple_message()
    del message["To"]

    with pytest.raises(ValueError, match="no recipients"):
        send_message(SmtpSettings(host=LOOPBACK, port=free_port(), security="none"), message, env={})


def test_credentials_are_never_sent_over_plaintext(start_server: Callable[..., Server]) -> None:
    server = start_server(auth_require_tls=False)  # a server that would happily take them
    settings = server.settings(security="none", **AUTH)

    with pytest.raises(MailError) as caught:
        send_message(settings, simple_message(), env=ENV)

    assert caught.value.retryable is False
    assert "plaintext" in str(caught.value)
    assert PASSWORD not in str(caught.value) and USER not in str(caught.value)
    assert server.authenticator.mechanisms == []
    assert server.recorder.received == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"host": ""},
        {"host": "smtp.example.com\r\n"},
        {"port": 0},
        {"port": 65536},
        {"port": "587"},  # strict: YAML strings are not coerced
        {"security": "tls"},
        {"timeout_seconds": 0.0},
        {"username_env": "SMTP_USER"},  # without password_env
        {"password_env": "SMTP_PASSWORD"},  # without username_env
        {"ca_file": ""},
        {"password": "x"},  # extra="forbid"
    ],
)
def test_invalid_settings_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SmtpSettings(**{"host": "smtp.example.com", "port": 587, **overrides})


def test_settings_errors_do_not_echo_a_pasted_password() -> None:
    # Someone puts the password itself where the variable name belongs.
    with pytest.raises(ValidationError) as caught:
        SmtpSettings(host="smtp.example.com", port=587, username_env="SMTP_USER", password_env="hunter2 !")

    assert "hunter2" not in str(caught.value)
    assert "password_env" in str(caught.value)


def test_settings_defaults() -> None:
    settings = SmtpSettings(host="smtp.example.com", port=587)
    assert (settings.security, settings.timeout_seconds, settings.ca_file) == ("starttls", 10.0, None)
    assert (settings.username_env, settings.password_env) == (None, None)


# --------------------------------------------------------------------------------------------------
# Header injection and address validation


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hi\r\nBcc: eve@evil.example"},
        {"subject": "Hi\nX-Injected: 1"},
        {"subject": "Hi\rX-Injected: 1"},
        {"subject": "Hi\u2028X-Injected: 1"},
        {"recipients": ["oncall@payments.example\r\nBcc: eve@evil.example"]},
        {"recipients": ["oncall@payments.example\n"]},
        {"sender": "alerts@sloscope.example\nBcc: eve@evil.example"},
        {"message_id": "alert-42\r\nBcc: eve@evil.example"},
        {"attachments": [("report\r\n.html", b"x", "text/html")]},
        {"attachments": [("report.html", b"x", "text/html\r\nX-Injected: 1")]},
    ],
)
def test_line_breaks_in_headers_are_rejected(overrides: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "sender": SENDER,
        "recipients": ["oncall@payments.example"],
        "subject": "ok",
        "text": "body",
        **overrides,
    }
    with pytest.raises(ValueError, match="line breaks"):
        build_message(**kwargs)


@pytest.mark.parametrize(
    "recipients",
    [
        [],
        ["no-at-sign"],
        ["oncall@"],
        ["@payments.example"],
        ["a@payments.example, b@payments.example"],  # two addresses smuggled into one entry
        ['"ceo@bank.example" <eve@evil.example>'],  # display name posing as an address
        ["=?utf-8?q?ceo=40bank.example?= <eve@evil.example>"],  # the same, hidden in an encoded word
        ["oncall@payments.example> <eve@evil.example"],
        ["team: a@payments.example;"],  # a group, not a mailbox
        ["oncall@pay ments.example"],
        ["oncall@payments_example"],
        ["jösé@payments.example"],  # internationalised local parts are not supported
        "oncall@payments.example",  # a str, which is a Sequence[str] of single characters
    ],
)
def test_invalid_recipients_are_rejected(recipients: Any) -> None:
    with pytest.raises(ValueError):
        build_message(sender=SENDER, recipients=recipients, subject="s", text="t")


@pytest.mark.parametrize(
    "message_id", ["has space", "<wrapped@x>", "colon:key", "two@at@signs", "", "x" * 251]
)
def test_invalid_message_ids_are_rejected(message_id: str) -> None:
    with pytest.raises(ValueError):
        simple_message(message_id=message_id)


@pytest.mark.parametrize(
    "attachment",
    [
        ("", b"x", "text/plain"),
        ("reports/2026-05.html", b"x", "text/html"),  # a path, not a file name
        ("a.bin", b"x", "octet-stream"),
        ("a.eml", b"x", "message/rfc822"),
        ("a.bin", b"x", "multipart/mixed"),
    ],
)
def test_invalid_attachments_are_rejected(attachment: tuple[str, bytes, str]) -> None:
    with pytest.raises(ValueError):
        simple_message(attachments=[attachment])


def test_non_ascii_attachment_filename_round_trips() -> None:
    message = simple_message(attachments=[("résumé SLO.pdf", b"%PDF-1.7", "application/pdf")])
    [part] = parse(message.as_bytes()).iter_attachments()
    assert part.get_filename() == "résumé SLO.pdf"
    assert part.get_payload(decode=True) == b"%PDF-1.7"


# --------------------------------------------------------------------------------------------------
# Server replies and network failures -> retryable or not


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        ("451 4.3.0 try later", 451, True),  # 4xx: transient negative completion (RFC 5321 4.2.1)
        ("554 5.7.1 rejected", 554, False),  # 5xx: permanent
    ],
)
def test_data_reply_decides_retryable(
    start_server: Callable[..., Server], reply: str, code: int, retryable: bool
) -> None:
    server = start_server(Recorder(data_reply=reply))

    with pytest.raises(MailError) as caught:
        send_message(server.settings(security="none"), simple_message(), env={})

    error = caught.value
    assert (error.retryable, error.smtp_code) == (retryable, code)
    assert f"{LOOPBACK}:{server.port}" in str(error)
    assert reply[:3] in str(error) and reply[4:] in str(error)


def test_partly_refused_recipients_deliver_to_the_rest_and_raise(start_server: Callable[..., Server]) -> None:
    server = start_server(Recorder(refuse={"gone@payments.example": "550 5.1.1 no such user"}))
    message = simple_message(["oncall@payments.example", "gone@payments.example"])

    with pytest.raises(MailError) as caught:
        send_message(server.settings(security="none"), message, env={})

    error = caught.value
    assert error.retryable is False  # the only refusal is a 5xx
    assert error.refused == {"gone@payments.example": (550, "5.1.1 no such user")}
    assert "delivered to the other 1" in str(error)
    [received] = server.recorder.received
    assert received.rcpt_tos == ["oncall@payments.example"]


def test_all_recipients_greylisted_is_retryable_and_sends_nothing(
    start_server: Callable[..., Server],
) -> None:
    greylisted = "450 4.2.0 greylisted, come back later"
    refuse = {"oncall@payments.example": greylisted, "sre@payments.example": greylisted}
    server = start_server(Recorder(refuse=refuse))
    message = simple_message(["oncall@payments.example", "sre@payments.example"])

    with pytest.raises(MailError) as caught:
        send_message(server.settings(security="none"), message, env={})

    assert caught.value.retryable is True
    assert set(caught.value.refused) == {"oncall@payments.example", "sre@payments.example"}
    assert server.recorder.received == []


def test_connection_refused_is_retryable() -> None:
    port = free_port()

    with pytest.raises(MailError) as caught:
        send_message(SmtpSettings(host=LOOPBACK, port=port, security="none"), simple_message(), env={})

    assert caught.value.retryable is True
    assert f"{LOOPBACK}:{port}" in str(caught.value)


def test_silent_server_times_out_and_is_retryable() -> None:
    # Accepts TCP connections (the kernel completes the handshake) but never sends the 220 greeting.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        port = listener.getsockname()[1]
        settings = SmtpSettings(host=LOOPBACK, port=port, security="none", timeout_seconds=0.3)

        with pytest.raises(MailError) as caught:
            send_message(settings, simple_message(), env={})

    assert caught.value.retryable is True
    assert "timed out after 0.3s" in str(caught.value)


def test_mail_error_survives_pickling() -> None:
    # Errors cross process boundaries in multiprocess executors.
    error = MailError("x", retryable=True, smtp_code=451, refused={"a@b.example": (451, "later")})
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.retryable, copy.smtp_code, copy.refused) == (
        "x",
        True,
        451,
        {"a@b.example": (451, "later")},
    )

"""Email over SMTP: build a safe message, send it, and say whether a failure is worth retrying.

Used by the alert email channel (an SRE's page may go through it) and by emailed reports, so it is
Dagster-free and strict:

* Secrets come only from the environment mapping passed to :func:`send_message`, by the variable
  names in :class:`SmtpSettings`. They never appear in exception messages, reprs or logs; server
  replies are scrubbed of them before being quoted, because a misbehaving relay may echo them.
* Credentials are never sent over a plaintext connection. STARTTLS and implicit TLS verify the
  server certificate and host name against the system CAs, or only against ``ca_file`` when set.
* Headers are built from parsed values, and anything that could inject a header (CR, LF or any other
  line break) or pass one address off as another is a :class:`ValueError` before a socket is opened.
* Every failure is a :class:`MailError` whose ``retryable`` tells the caller whether trying again
  later can help (connection problems, timeouts, 4xx replies) or not (5xx replies, rejected
  credentials, bad configuration).
"""

from __future__ import annotations

import base64
import email.policy
import email.utils
import logging
import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

log = logging.getLogger(__name__)

MESSAGE_ID_DOMAIN = "sloscope.invalid"
"""Right-hand side of generated Message-IDs (``.invalid`` is reserved, RFC 2606: never a real host)."""

# Everything str.splitlines() breaks on. CR and LF are the classic header injection; the others are
# rejected too because some mail software treats them as line ends.
_LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# One label of a host name (RFC 1123 LDH). Address literals and IDNs are not supported in addresses.
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
# RFC 5322 dot-atom-text: the only characters Python's parser keeps intact inside a Message-ID.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+"
_MESSAGE_ID = re.compile(rf"{_ATEXT}(?:@{_ATEXT})?", re.ASCII)
_MESSAGE_ID_MAX = 250  # leaves room for "Message-ID: <>" inside the 998-octet line limit
# RFC 6838 restricted-name characters for MIME type and subtype.
_MIME_TYPE = re.compile(r"([A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126})/([A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126})")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)

# 7bit transfer encodings only (quoted-printable/base64 for non-ASCII text): a relay that does not
# offer 8BITMIME must not mangle a page. Otherwise the modern parser/generator defaults.
_POLICY = email.policy.default.clone(cte_type="7bit")


class SmtpSettings(BaseModel):
    """Where and how to deliver mail. Holds the *names* of the credential variables, never the values.

    ``security``: ``starttls`` (submission, usually port 587), ``ssl`` (implicit TLS, usually 465) or
    ``none`` (plain SMTP, for a local relay; refuses credentials). ``username_env``/``password_env``:
    names of the environment variables holding the credentials, both or neither. ``ca_file``: a PEM
    bundle to verify the server against *instead of* the system CAs (a self-hosted relay's CA, tests).
    ``timeout_seconds``: applies to the connect and to each command separately.
    """

    # strict: a YAML "25" or `true` is a configuration mistake to report, not a value to coerce.
    # hide_input_in_errors: someone pasting a password into `password_env` must not see it echoed
    # in the validation error (and in whatever log captured it).
    model_config = ConfigDict(extra="forbid", strict=True, hide_input_in_errors=True)

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    ca_file: str | None = Field(default=None, min_length=1)
    timeout_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)

    @field_validator("host")
    @classmethod
    def _host_is_one_token(cls, value: str) -> str:
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ValueError("host must be a host name or address without spaces or control characters")
        return value

    @field_validator("username_env", "password_env")
    @classmethod
    def _is_variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError("expected the NAME of an environment variable (letters, digits, _), not a value")
        return value

    @model_validator(mode="after")
    def _both_credentials_or_neither(self) -> SmtpSettings:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env must be set together (or both left out)")
        return self


class MailError(Exception):
    """Sending failed. ``retryable`` says whether the same send may succeed later.

    True for connection errors, timeouts, dropped connections and 4xx SMTP replies; False for 5xx
    replies, rejected credentials, untrusted certificates and configuration problems. ``smtp_code`` is
    the server's reply code when there was one; ``refused`` maps each recipient the server refused to
    its ``(code, reply)``.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        smtp_code: int | None = None,
        refused: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.smtp_code = smtp_code
        self.refused: dict[str, tuple[int, str]] = dict(refused or {})

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments: the default pickling (cls(*args)) would fail in a worker process.
        return (_rebuild_mail_error, (str(self), self.retryable, self.smtp_code, self.refused))


def _rebuild_mail_error(
    message: str, retryable: bool, smtp_code: int | None, refused: dict[str, tuple[int, str]]
) -> MailError:
    return MailError(message, retryable=retryable, smtp_code=smtp_code, refused=refused)


# --------------------------------------------------------------------------------------------------
# Building messages


def build_message(
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    message_id: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
) -> EmailMessage:
    """A UTF-8 message from ``sender`` to ``recipients`` (the To header), ready for :func:`send_message`.

    ``text`` is the text/plain body; with ``html`` the body is multipart/alternative (plain first, so
    clients that cannot show HTML show the text); ``attachments`` — ``(filename, content, mime_type)``
    — make it multipart/mixed. Each address is ``user@example.com`` or ``Name <user@example.com>``.

    ``message_id`` (for example derived from an idempotency key, so a receiver can deduplicate a
    retried send) becomes ``Message-ID: <message_id>``; when it has no ``@``, ``@sloscope.invalid``
    is appended, because a Message-ID without a right-hand side is invalid (RFC 5322 3.6.4) and
    raises spam scores. It may contain letters, digits, ``!#$%&'*+-/=?^_`{|}~.`` and one ``@``: other
    characters (``:`` included) do not survive parsing, so hash such keys first. Without it a random
    ``<...@sloscope.invalid>`` is generated. Date is the current time (UTC).

    Also sets ``Auto-Submitted: auto-generated`` (RFC 3834) and ``X-Auto-Response-Suppress: All`` so
    out-of-office replies do not flood the sender during an incident.

    Raises ValueError on CR/LF (or any line break) in the subject, an address, a filename or the
    message id; on an invalid address, a display name containing ``@``/``<``/``>`` (it could pass for
    a different address), an empty recipient list, or an invalid MIME type. Bcc/Cc can be added
    afterwards (``message["Cc"] = [...]``); :func:`send_message` delivers to them and strips Bcc.
    """
    from_address = _parse_address("sender", sender)
    if isinstance(recipients, str):
        raise ValueError("recipients must be a sequence of addresses, not a single string")
    to = [_parse_address(f"recipients[{i}]", recipient) for i, recipient in enumerate(recipients)]
    if not to:
        raise ValueError("recipients must contain at least one address")
    if not isinstance(subject, str):
        raise TypeError(f"subject must be str, got {type(subject).__name__}")
    _reject_line_breaks("subject", subject)
    checked_attachments = [_check_attachment(i, attachment) for i, attachment in enumerate(attachments)]
    header_id = _message_id_header(message_id)

    message = EmailMessage(policy=_POLICY)
    message["From"] = from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(datetime.now(UTC))
    message["Message-ID"] = header_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(text, subtype="plain", charset="utf-8", cte=_text_cte(text))
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte=_text_cte(html))
    for filename, content, maintype, subtype in checked_attachments:
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # the email package repeats it on sub-parts; it belongs on top only
    return message


def _text_cte(text: str) -> str:
    """7bit when the text allows it, else quoted-printable: readable in the raw source, safe through
    relays without 8BITMIME, and unlike base64 text bodies not a spam-filter signal."""
    if text.isascii() and all(len(line) <= _POLICY.max_line_length for line in text.splitlines()):
        return "7bit"
    return "quoted-printable"


def _reject_line_breaks(field: str, value: str) -> None:
    """Header injection guard: a line break in a header value would start a new header."""
    if any(ch in _LINE_BREAKS for ch in value):
        raise ValueError(f"{field} must not contain CR, LF or other line breaks: {value!r:.120}")
    if any(ch == "\x00" for ch in value):
        raise ValueError(f"{field} must not contain NUL characters: {value!r:.120}")


def _parse_address(field: str, value: object) -> Address:
    """One mailbox, parsed with the RFC 5322 parser and rebuilt, so raw input never reaches a header."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be str, got {type(value).__name__}")
    _reject_line_breaks(field, value)
    try:
        header = _POLICY.header_factory("To", value)
    except Exception as exc:  # the parser raises IndexError and friends on some malformed input
        raise ValueError(f"{field}: {value!r} is not an email address") from exc
    if header.defects:
        raise ValueError(f"{field}: {value!r} is not a valid address ({header.defects[0]})")
    groups = header.groups
    if len(groups) != 1 or groups[0].display_name is not None or len(groups[0].addresses) != 1:
        raise ValueError(
            f"{field}: {value!r} must be exactly one address (no lists or groups; quote display names"
            " with commas)"
        )
    return _check_address(field, groups[0].addresses[0])


def _check_address(field: str, address: Address) -> Address:
    shown = str(address)
    if not address.username or not address.domain:
        raise ValueError(f"{field}: {shown!r} needs the form user@domain")
    if not address.addr_spec.isascii():
        raise ValueError(f"{field}: {shown!r}: internationalised (non-ASCII) addresses are not supported")
    if len(address.domain) > 253 or not all(_HOST_LABEL.fullmatch(p) for p in address.domain.split(".")):
        raise ValueError(f"{field}: {shown!r}: domain {address.domain!r} is not a host name")
    name = address.display_name
    if any(ch in _LINE_BREAKS or not ch.isprintable() for ch in name):
        raise ValueError(f"{field}: {shown!r}: display name contains line breaks or control characters")
    if any(ch in name for ch in "@<>"):
        raise ValueError(
            f"{field}: {shown!r}: display name must not contain '@', '<' or '>' (it could pass for another"
            " address)"
        )
    return Address(display_name=name, username=address.username, domain=address.domain)


def _message_id_header(message_id: str | None) -> str:
    if message_id is None:
        return email.utils.make_msgid(domain=MESSAGE_ID_DOMAIN)
    if not isinstance(message_id, str):
        raise TypeError(f"message_id must be str, got {type(message_id).__name__}")
    _reject_line_breaks("message_id", message_id)
    if len(message_id) > _MESSAGE_ID_MAX or not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError(
            f"message_id {message_id!r:.120}: expected at most {_MESSAGE_ID_MAX} characters from letters,"
            " digits, !#$%&'*+-/=?^_`{|}~. and at most one '@' (hash keys containing other characters)"
        )
    if "@" not in message_id:
        message_id = f"{message_id}@{MESSAGE_ID_DOMAIN}"
    return f"<{message_id}>"


def _check_attachment(index: int, attachment: tuple[str, bytes, str]) -> tuple[str, bytes, str, str]:
    field = f"attachments[{index}]"
    if len(attachment) != 3:
        raise ValueError(
            f"{field}: expected (filename, content bytes, MIME type), got {len(attachment)} items"
        )
    filename, content, mime_type = attachment
    if not isinstance(filename, str) or not filename:
        raise ValueError(f"{field}: filename must be a non-empty str")
    _reject_line_breaks(f"{field} filename", filename)
    if any(not ch.isprintable() for ch in filename) or "/" in filename or "\\" in filename:
        raise ValueError(
            f"{field}: filename {filename!r} must be a plain file name (no path, no control chars)"
        )
    if not isinstance(content, bytes | bytearray | memoryview):
        raise TypeError(f"{field}: content must be bytes, got {type(content).__name__}")
    if not isinstance(mime_type, str):
        raise TypeError(f"{field}: MIME type must be str, got {type(mime_type).__name__}")
    _reject_line_breaks(f"{field} MIME type", mime_type)
    match = _MIME_TYPE.fullmatch(mime_type)
    if match is None:
        raise ValueError(f"{field}: MIME type {mime_type!r} is not of the form type/subtype")
    maintype, subtype = match.group(1).lower(), match.group(2).lower()
    if maintype in ("multipart", "message"):
        raise ValueError(f"{field}: {mime_type!r} cannot be attached as bytes; use application/octet-stream")
    return filename, bytes(content), maintype, subtype


# --------------------------------------------------------------------------------------------------
# Sending


class _Credentials:
    """Username and password, kept out of reprs so a crash report or debugger dump shows neither."""

    __slots__ = ("password", "username")

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password

    def __repr__(self) -> str:
        return "_Credentials(<redacted>)"

    def redact(self, text: str) -> str:
        """``text`` with the secrets, and the base64 forms AUTH PLAIN/LOGIN put on the wire, removed."""
        forms = {self.username, self.password, f"\0{self.username}\0{self.password}"}
        encoded = {base64.b64encode(form.encode()).decode("ascii") for form in forms}
        for secret in sorted((forms | encoded) - {""}, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text


def send_message(settings: SmtpSettings, message: EmailMessage, *, env: Mapping[str, str]) -> None:
    """Deliver ``message`` through the relay in ``settings``; raise :class:`MailError` on any failure.

    Envelope: the sender is the From address; the recipients are To + Cc + Bcc (duplicates sent
    once). The Bcc header is stripped from what is transmitted (``message`` itself is not modified).
    Credentials, when configured, are read from ``env[settings.username_env]`` and
    ``env[settings.password_env]`` and used only after STARTTLS or over implicit TLS.

    Refused recipients: when the server refuses every recipient nothing is sent. When it refuses some,
    the message is still delivered to the others (a page should reach whoever it can) and a MailError
    is raised afterwards listing the refused ones in ``refused``; it is retryable only if every
    refusal was a 4xx (e.g. greylisting). A retry then re-sends to everyone with the same Message-ID,
    which receivers can use to drop the duplicate.

    Failures before the server took the message are safe to retry when ``retryable``; a timeout
    waiting for the reply to the final DATA is retryable too and may deliver twice (same Message-ID).
    A failed QUIT after the server accepted the message is ignored: the message is delivered.

    Raises ValueError (before connecting) when the message has no valid From or no recipients.
    """
    sender, recipients = _envelope(message)
    credentials = _credentials(settings, env)
    context = _tls_context(settings) if settings.security != "none" else None
    where = (
        f"[{settings.host}]:{settings.port}" if ":" in settings.host else f"{settings.host}:{settings.port}"
    )

    try:
        smtp = _connect(settings, context)
    except (smtplib.SMTPException, OSError) as exc:
        raise _mail_error(exc, where, credentials, settings) from exc
    login_error: MailError | None = None
    try:
        if credentials is not None:
            login_error = _login(smtp, credentials, where, settings)
        if login_error is None:
            refused = smtp.send_message(message, from_addr=sender, to_addrs=recipients)
    except (smtplib.SMTPException, OSError) as exc:
        smtp.close()  # no QUIT: after a timeout it would wait for another one
        raise _mail_error(exc, where, credentials, settings) from exc
    except BaseException:
        smtp.close()
        raise
    if login_error is not None:
        smtp.close()
        raise login_error
    _quit_quietly(smtp)

    message_id = message.get("Message-ID", "(no Message-ID)")
    if refused:
        codes = _refusals(refused, credentials)
        delivered = len(recipients) - len(codes)
        log.warning(
            "mail %s sent via %s to %d recipient(s); refused %d", message_id, where, delivered, len(codes)
        )
        raise MailError(
            f"SMTP {where} refused {len(codes)} of {len(recipients)} recipients ({_listing(codes)}); the"
            f" message was delivered to the other {delivered}",
            retryable=all(_is_transient(code) for code, _ in codes.values()),
            smtp_code=next(iter(codes.values()))[0],
            refused=codes,
        )
    log.info("mail %s sent via %s to %d recipient(s)", message_id, where, len(recipients))


def _login(
    smtp: smtplib.SMTP, credentials: _Credentials, where: str, settings: SmtpSettings
) -> MailError | None:
    """AUTH; a failure is returned, not raised, so the caller raises it outside any ``except`` block.

    That way neither ``__cause__`` nor ``__context__`` of the MailError leads into the frames of
    ``smtplib.login``, whose arguments are the username and password: crash reporters that capture
    frame locals would otherwise pick them up.
    """
    try:
        smtp.login(credentials.username, credentials.password)
    except (smtplib.SMTPException, OSError) as exc:
        return _mail_error(exc, where, credentials, settings)
    return None


def _refusals(
    refused: Mapping[str, tuple[int, bytes | str]], credentials: _Credentials | None
) -> dict[str, tuple[int, str]]:
    return {address: (code, _reply_text(reply, credentials)) for address, (code, reply) in refused.items()}


def _listing(codes: Mapping[str, tuple[int, str]]) -> str:
    return "; ".join(f"{address}: {code} {reply}" for address, (code, reply) in codes.items())


def _envelope(message: EmailMessage) -> tuple[str, list[str]]:
    """Envelope sender and recipients from the headers, validated like :func:`build_message` does."""
    senders = _header_addresses(message, "From")
    if len(senders) != 1:
        raise ValueError(f"message must have exactly one From address, found {len(senders)}")
    recipients: list[str] = []
    seen: set[tuple[str, str]] = set()
    for name in ("To", "Cc", "Bcc"):
        for address in _header_addresses(message, name):
            key = (address.username, address.domain.lower())
            if key not in seen:
                seen.add(key)
                recipients.append(address.addr_spec)
    if not recipients:
        raise ValueError("message has no recipients in To, Cc or Bcc")
    return senders[0].addr_spec, recipients


def _header_addresses(message: EmailMessage, name: str) -> list[Address]:
    addresses: list[Address] = []
    for value in message.get_all(name, []):
        raw = str(value)
        header = value
        if not hasattr(header, "addresses"):  # a message with the compat32 policy holds plain strings
            try:
                header = _POLICY.header_factory(name, raw)
            except Exception as exc:  # see _parse_address
                raise ValueError(f"message header {name}: {raw!r} is not an address list") from exc
        if header.defects:
            raise ValueError(
                f"message header {name}: {raw!r} is not a valid address list ({header.defects[0]})"
            )
        addresses.extend(_check_address(f"message header {name}", address) for address in header.addresses)
    return addresses


def _credentials(settings: SmtpSettings, env: Mapping[str, str]) -> _Credentials | None:
    if settings.username_env is None or settings.password_env is None:
        return None
    if settings.security == "none":
        raise MailError(
            f"refusing to send SMTP credentials to {settings.host} over a plaintext connection: set"
            " security to 'starttls' or 'ssl', or drop username_env/password_env",
            retryable=False,
        )
    values = []
    for variable in (settings.username_env, settings.password_env):
        value = env.get(variable)
        if value is None:
            raise MailError(f"environment variable {variable} (SMTP credential) is not set", retryable=False)
        if value == "":
            raise MailError(f"environment variable {variable} (SMTP credential) is empty", retryable=False)
        if not value.isascii():
            # smtplib encodes AUTH strings as ASCII; its UnicodeEncodeError would carry the value.
            raise MailError(
                f"environment variable {variable} (SMTP credential) contains non-ASCII characters, which"
                " SMTP AUTH via smtplib cannot send",
                retryable=False,
            )
        values.append(value)
    return _Credentials(values[0], values[1])


def _tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """A verifying client context: certificate chain and host name checked, TLS 1.2 or newer."""
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise MailError(f"cannot load ca_file {settings.ca_file!r}: {exc}", retryable=False) from exc


def _connect(settings: SmtpSettings, context: ssl.SSLContext | None) -> smtplib.SMTP:
    """An open session, TLS already negotiated for 'ssl' and 'starttls'; closed again if setup fails."""
    smtp: smtplib.SMTP
    if settings.security == "ssl":
        smtp = smtplib.SMTP_SSL(timeout=settings.timeout_seconds, context=context)
    else:
        smtp = smtplib.SMTP(timeout=settings.timeout_seconds)
    # Connecting outside the constructor, so a failed greeting cannot leak an open socket; smtplib
    # checks the certificate against `_host` (set by the constructor only when it connects itself).
    smtp._host = settings.host
    try:
        code, reply = smtp.connect(settings.host, settings.port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, reply)
        if settings.security == "starttls":
            smtp.ehlo()
            smtp.starttls(context=context)  # SMTPNotSupportedError if the server does not offer it
            smtp.ehlo()
    except BaseException:
        smtp.close()
        raise
    return smtp


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def _reply_text(reply: bytes | str, credentials: _Credentials | None) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    text = " ".join(text.split())  # multi-line replies on one line
    return credentials.redact(text) if credentials is not None else text


def _mail_error(
    exc: BaseException, where: str, credentials: _Credentials | None, settings: SmtpSettings
) -> MailError:
    """The MailError for an smtplib/socket/TLS failure: what happened, at which server, retryable or not."""

    def redact(text: str) -> str:
        return credentials.redact(text) if credentials is not None else text

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = _refusals(exc.recipients, credentials)
        return MailError(
            f"SMTP {where} refused every recipient ({_listing(codes)}); nothing was sent",
            retryable=all(_is_transient(code) for code, _ in codes.values()),
            smtp_code=next(iter(codes.values()))[0] if codes else None,
            refused=codes,
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        # 535 is a wrong password (not retryable); 454 is a temporary authentication failure (RFC 4954).
        return MailError(
            f"SMTP {where} rejected the credentials from ${settings.username_env}/${settings.password_env}:"
            f" {exc.smtp_code} {_reply_text(exc.smtp_error, credentials)}",
            retryable=_is_transient(exc.smtp_code),
            smtp_code=exc.smtp_code,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        stage = {
            smtplib.SMTPConnectError: "greeting",
            smtplib.SMTPHeloError: "HELO/EHLO",
            smtplib.SMTPSenderRefused: "MAIL FROM",
            smtplib.SMTPDataError: "DATA",
        }.get(type(exc), "command")
        return MailError(
            f"SMTP {where} replied {exc.smtp_code} to {stage}: {_reply_text(exc.smtp_error, credentials)}",
            retryable=_is_transient(exc.smtp_code),
            smtp_code=exc.smtp_code,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return MailError(f"SMTP {where}: {redact(str(exc))} (check security)", retryable=False)
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError):
        # smtplib turns a socket timeout while waiting for a reply into "Connection unexpectedly closed".
        return _timeout_error(where, settings)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return MailError(f"SMTP {where} closed the connection: {redact(str(exc))}", retryable=True)
    if isinstance(exc, smtplib.SMTPException):
        return MailError(f"SMTP {where}: {redact(str(exc))}", retryable=False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return MailError(
            f"TLS to {where}: server certificate not trusted ({exc.verify_message}); check host and ca_file",
            retryable=False,
        )
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError | ssl.SSLSyscallError):
        return MailError(f"TLS to {where}: connection dropped during TLS ({exc})", retryable=True)
    if isinstance(exc, ssl.SSLError):
        # Protocol/version/cipher mismatch, or TLS spoken to a plaintext port: configuration.
        return MailError(f"TLS to {where} failed: {exc} (check security and port)", retryable=False)
    if isinstance(exc, TimeoutError):
        return _timeout_error(where, settings)
    return MailError(f"SMTP {where}: cannot connect or lost connection: {exc}", retryable=True)


def _timeout_error(where: str, settings: SmtpSettings) -> MailError:
    return MailError(
        f"SMTP {where}: timed out after {settings.timeout_seconds:g}s waiting for the server", retryable=True
    )


def _is_transient(code: int) -> bool:
    """4xx replies are transient by definition (RFC 5321 4.2.1); anything else is not worth retrying."""
    return 400 <= code < 500

"""Emailing report artefacts: who gets which report, the message itself, and an idempotent send.

* Recipients live in ``data/report_recipients.yaml`` per report type, with per-service overrides;
  every problem in the file is reported at once, naming the field.
* SMTP host, port, TLS mode and sender come from ``SLOSCOPE_SMTP_*`` environment variables; the
  credentials stay in ``SLOSCOPE_SMTP_USER``/``SLOSCOPE_SMTP_PASSWORD`` and only their *names* are
  handed to :mod:`pipelines.slo.mail`, which reads them at send time and keeps them out of errors.
* The message is the report page as an HTML body whose inline SVG charts are replaced by PNG images
  in a multipart/related part (Gmail and Outlook drop inline SVG), with the PDF and the original HTML
  page attached.
* Every SMTP attempt is recorded in ``report_deliveries``; a key that was already sent is not sent
  again unless forced, retryable failures are retried with backoff, permanent ones fail at once.

Dagster-free, so the CLI and the assets share it.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines import sqlfiles
from pipelines.settings import REPO_ROOT
from pipelines.settings import SmtpSettings as ConfiguredSmtp
from pipelines.slo import mail
from pipelines.slo.mail import MailError, SmtpSettings

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_RECIPIENTS_FILE",
    "REPORT_TYPES",
    "Recipients",
    "RecipientsError",
    "delivery_key",
    "load_recipients",
    "period_label",
    "report_email",
    "send_report",
    "smtp_sender_from_env",
    "smtp_settings_from_env",
]

DEFAULT_RECIPIENTS_FILE = REPO_ROOT / "data" / "report_recipients.yaml"
REPORT_TYPES: tuple[str, ...] = ("monthly", "quarterly")
"""Report types a recipients file may name; anything else is a typo that would silently mail nobody."""

USER_ENV = "SLOSCOPE_SMTP_USER"
PASSWORD_ENV = "SLOSCOPE_SMTP_PASSWORD"
BACKOFF_BASE_S = 2.0
# Headers carrying the report's identity from report_email to send_report's delivery log.
_H_SERVICE, _H_TYPE, _H_PERIOD = "X-Sloscope-Service", "X-Sloscope-Report-Type", "X-Sloscope-Period"


# --------------------------------------------------------------------------------------------------
# Recipients


class RecipientsError(ValueError):
    """The recipients file is invalid; the message lists every problem with its field."""


@dataclass(frozen=True)
class Recipients:
    """Addresses per report type, with per-service lists that replace (not extend) the default.

    A service list of ``[]`` opts that service out of the report type.
    """

    default: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    services: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def for_report(self, service: str, report_type: str) -> tuple[str, ...]:
        """Who receives ``report_type`` for ``service`` (empty: send nothing)."""
        if report_type not in REPORT_TYPES:
            raise ValueError(
                f"unknown report type {report_type!r}; expected one of {', '.join(REPORT_TYPES)}"
            )
        own = self.services.get(service, {})
        if report_type in own:
            return own[report_type]
        return self.default.get(report_type, ())


def load_recipients(path: Path | None = None) -> Recipients:
    """Read and validate a recipients file (default ``data/report_recipients.yaml``).

    Shape: ``{default: {monthly: [addr, ...], quarterly: [...]}, services: {<name>: {monthly: [...]}}}``.
    A missing default file means nobody is configured (empty Recipients); a missing explicit file is an
    error. Raises RecipientsError listing every problem, so one edit fixes the file.
    """
    source = path or DEFAULT_RECIPIENTS_FILE
    if not source.exists():
        if path is None:
            log.info("no %s: no report recipients configured", source)
            return Recipients()
        raise RecipientsError(f"{source}: no such file")
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipientsError(f"{source}: not valid YAML: {exc}") from exc
    problems: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipientsError(f"{source}: expected a mapping with 'default' and/or 'services'")
    for key in raw:
        if key not in ("default", "services"):
            problems.append(f"{key!r}: unknown key; expected 'default' and/or 'services'")
    default = _by_type(raw.get("default") or {}, "default", problems)
    services: dict[str, dict[str, tuple[str, ...]]] = {}
    raw_services = raw.get("services") or {}
    if not isinstance(raw_services, dict):
        problems.append("services: expected a mapping of service name to report types")
        raw_services = {}
    for name, lists in raw_services.items():
        if not isinstance(name, str) or not name.strip():
            problems.append(f"services: service name {name!r} must be a non-empty string")
            continue
        services[name] = _by_type(lists if lists is not None else {}, f"services.{name}", problems)
    if problems:
        raise RecipientsError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return Recipients(default=default, services=services)


def _by_type(value: Any, where: str, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping of report type to a list of addresses")
        return {}
    result: dict[str, tuple[str, ...]] = {}
    for report_type, addresses in value.items():
        field_name = f"{where}.{report_type}"
        if report_type not in REPORT_TYPES:
            problems.append(f"{field_name}: unknown report type; expected one of {', '.join(REPORT_TYPES)}")
            continue
        if not isinstance(addresses, list):
            problems.append(f"{field_name}: expected a list of addresses, got {type(addresses).__name__}")
            continue
        checked: list[str] = []
        seen: set[str] = set()
        for i, address in enumerate(addresses):
            try:
                parsed = mail._parse_address(f"{field_name}[{i}]", address)
            except (TypeError, ValueError) as exc:
                problems.append(str(exc))
                continue
            lowered = parsed.addr_spec.lower()
            if lowered in seen:
                problems.append(f"{field_name}[{i}]: {parsed.addr_spec} is listed twice")
                continue
            seen.add(lowered)
            checked.append(str(parsed))
        result[report_type] = tuple(checked)
    return result


# --------------------------------------------------------------------------------------------------
# SMTP settings


def smtp_settings_from_env(env: Mapping[str, str], base: ConfiguredSmtp | None = None) -> SmtpSettings:
    """SMTP settings from ``SLOSCOPE_SMTP_HOST``/``_PORT``/``_TLS`` (none|starttls|ssl)/``_CA_FILE``.

    ``base`` (the ``[smtp]`` section of sloscope.toml) supplies what the environment leaves out.
    Credentials are configured when ``SLOSCOPE_SMTP_USER`` or ``SLOSCOPE_SMTP_PASSWORD`` is present: only
    the variable names are stored, the values are read by :func:`pipelines.slo.mail.send_message`.
    Raises ValueError naming the variable that is wrong.
    """
    fallback = base or ConfiguredSmtp()
    host = env.get("SLOSCOPE_SMTP_HOST", fallback.host)
    port_text = env.get("SLOSCOPE_SMTP_PORT", str(fallback.port))
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"SLOSCOPE_SMTP_PORT: expected a port number, got {port_text!r}") from None
    security = env.get("SLOSCOPE_SMTP_TLS", fallback.tls)
    if security not in ("none", "starttls", "ssl"):
        raise ValueError(f"SLOSCOPE_SMTP_TLS: expected none, starttls or ssl; got {security!r}")
    credentials = USER_ENV in env or PASSWORD_ENV in env
    try:
        return SmtpSettings(
            host=host,
            port=port,
            security=security,
            username_env=USER_ENV if credentials else None,
            password_env=PASSWORD_ENV if credentials else None,
            ca_file=env.get("SLOSCOPE_SMTP_CA_FILE") or None,
        )
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"SLOSCOPE_SMTP_* settings are invalid: {fields}") from None


def smtp_sender_from_env(env: Mapping[str, str], base: ConfiguredSmtp | None = None) -> str:
    """The From address: ``SLOSCOPE_SMTP_SENDER``, else the settings file's, validated."""
    sender = env.get("SLOSCOPE_SMTP_SENDER", (base or ConfiguredSmtp()).sender)
    return str(mail._parse_address("SLOSCOPE_SMTP_SENDER", sender))


# --------------------------------------------------------------------------------------------------
# The message

_SVG = re.compile(r"<svg\b[^>]*>.*?</svg\s*>", re.IGNORECASE | re.DOTALL)
_ATTR = r"""\s{name}\s*=\s*(?:"([^"]*)"|'([^']*)')"""


def period_label(period: str) -> str:
    """``2026-10`` → ``October 2026``, ``2026-Q4`` → ``Q4 2026``, ``2026-10-31`` → ``31 October 2026``."""
    if (m := re.fullmatch(r"(\d{4})-(\d{2})", period)) and 1 <= int(m.group(2)) <= 12:
        return f"{calendar.month_name[int(m.group(2))]} {m.group(1)}"
    if m := re.fullmatch(r"(\d{4})-[Qq]([1-4])", period):
        return f"Q{m.group(2)} {m.group(1)}"
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", period):
        try:
            day = datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return period
        return f"{day.day} {calendar.month_name[day.month]} {day.year}"
    return period


def delivery_key(*, service: str, report_type: str, period: str, recipients: Sequence[str]) -> str:
    """The idempotency key: one report for one period to one set of recipients is sent once.

    Recipients are reduced to a hash of their sorted, lower-cased addresses, so the key stays short and
    a changed list (someone added) counts as a new delivery.
    """
    addresses = sorted({mail._parse_address("recipient", r).addr_spec.lower() for r in recipients})
    digest = hashlib.sha256("\n".join(addresses).encode()).hexdigest()[:16]
    return f"{report_type}/{service}/{period}/{digest}"


def report_email(
    html_path: Path,
    pdf_path: Path,
    *,
    service: str,
    report_type: str,
    period: str,
    sender: str,
    recipients: Sequence[str],
) -> EmailMessage:
    """The report as an email (structure below); headers validated by :func:`mail.build_message`.

    ::

        multipart/mixed
          multipart/alternative
            text/plain                 short summary, for clients without HTML
            multipart/related
              text/html                the report page, each <svg> replaced by <img src="cid:...">
              image/png (inline) ...   one per chart, Content-ID referenced by the HTML
          application/pdf              <service>-<type>-<period>.pdf
          text/html                    <service>-<type>-<period>.html (the original, SVG charts intact)

    Raises ValueError on line breaks in subject parts or addresses, invalid addresses, or an SVG chart
    that cannot be rendered; OSError when a file cannot be read.
    """
    from pipelines.slo.report import safe_slug

    page = html_path.read_text(encoding="utf-8")
    pdf = pdf_path.read_bytes()
    label = period_label(period)
    subject = f"[sloscope] {service} — {report_type} SLO report, {label}"
    images: list[tuple[str, bytes]] = []

    def to_img(match: re.Match[str]) -> str:
        index = len(images) + 1
        digest = hashlib.sha256(match.group(0).encode()).hexdigest()[:12]
        cid = f"chart{index}.{digest}@{mail.MESSAGE_ID_DOMAIN}"
        images.append((cid, _svg_png(match.group(0), index)))
        return _img_tag(match.group(0), cid, index)

    body = _SVG.sub(to_img, page)
    text = (
        f"The {report_type} SLO report for {service}, {label}, is attached as PDF and HTML.\n"
        "Open the HTML version of this email to see the charts.\n"
    )
    stem = f"{safe_slug(service)}-{safe_slug(report_type)}-{safe_slug(period)}"
    key = delivery_key(service=service, report_type=report_type, period=period, recipients=recipients)
    message = mail.build_message(
        sender=sender,
        recipients=recipients,
        subject=subject,
        text=text,
        html=body,
        message_id=_message_id(key, 0),
        attachments=[(f"{stem}.pdf", pdf, "application/pdf"), (f"{stem}.html", page.encode(), "text/html")],
    )
    for name, value in ((_H_SERVICE, service), (_H_TYPE, report_type), (_H_PERIOD, period)):
        mail._reject_line_breaks(name, value)
        message[name] = value
    html_part = next(part for part in message.walk() if part.get_content_type() == "text/html")
    for cid, png in images:
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", disposition="inline")
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # as build_message: only the top level carries it
    return message


def _svg_png(svg: str, index: int) -> bytes:
    import vl_convert

    if "xmlns=" not in svg[: svg.find(">")]:
        # Inline SVG in HTML may omit the namespace; the standalone renderer requires it.
        svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)
    try:
        return vl_convert.svg_to_png(svg, scale=2.0)  # 2x: sharp on high-density screens
    except Exception as exc:  # vl_convert raises plain ValueError/RuntimeError from Rust
        raise ValueError(f"chart {index}: cannot render the inline SVG to PNG: {exc}") from exc


def _img_tag(svg: str, cid: str, index: int) -> str:
    """An <img> with the SVG's own size, so the 2x PNG is displayed at the size the page was laid out for."""
    opening = svg[: svg.find(">") + 1]
    attrs = [
        f'src="cid:{cid}"',
        f'alt="{_escape_attr(_svg_attr(opening, "aria-label") or f"Chart {index}")}"',
    ]
    for name in ("width", "height"):
        value = _svg_attr(opening, name)
        if value and re.fullmatch(r"\d+(?:\.\d+)?(?:px)?", value):
            attrs.append(f'{name}="{round(float(value.removesuffix("px")))}"')
    return f'<img {" ".join(attrs)} style="max-width:100%;height:auto">'


def _svg_attr(opening: str, name: str) -> str | None:
    match = re.search(_ATTR.format(name=re.escape(name)), opening, re.IGNORECASE)
    return None if match is None else (match.group(1) if match.group(1) is not None else match.group(2))


def _escape_attr(value: str) -> str:
    from markupsafe import escape

    return str(escape(value))


# --------------------------------------------------------------------------------------------------
# Sending with a delivery log


def _message_id(key: str, generation: int) -> str:
    """Stable per key and forced re-send: retries share it (receivers drop duplicates), a forced
    re-send gets a new one (otherwise Gmail and others would silently drop it as a duplicate)."""
    return f"report.{hashlib.sha256(key.encode()).hexdigest()[:32]}.{generation}@{mail.MESSAGE_ID_DOMAIN}"


def send_report(
    con: Any,
    message: EmailMessage,
    *,
    key: str,
    settings: SmtpSettings,
    env: Mapping[str, str],
    force: bool = False,
    retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Send ``message`` once per ``key``; return ``"sent"``, ``"already_sent"`` or ``"failed"``.

    ``retries`` is the total number of attempts. A retryable MailError (4xx, connection trouble) is
    retried after ``2 s, 4 s, ...`` (``sleep`` is injected for tests); a permanent one ends at once.
    Every attempt is a row in ``report_deliveries``. With ``force`` a key already sent is sent again,
    under a new Message-ID. The Message-ID header of ``message`` is set from the key.

    The check and the send are not one transaction: two processes sending the same key at the same
    moment could both send. DuckDB's single-writer lock makes that unlikely; the Message-ID is what
    lets a receiver drop such a duplicate.
    """
    if retries < 1:
        raise ValueError(f"retries must be at least 1, got {retries}")
    sent_before = con.execute(sqlfiles.sql("report_deliveries_sent"), {"key": key}).fetchone()[0]
    if sent_before and not force:
        log.info("report %s already sent; not sending again", key)
        return "already_sent"
    message_id = _message_id(key, sent_before)
    message.replace_header("Message-ID", f"<{message_id}>")
    _, recipients = mail._envelope(message)
    row = {
        "key": key,
        "service": message.get(_H_SERVICE),
        "report_type": message.get(_H_TYPE),
        "period": message.get(_H_PERIOD),
        "recipients": ",".join(recipients),
        "message_id": message_id,
    }
    for attempt in range(1, retries + 1):
        try:
            mail.send_message(settings, message, env=env)
        except MailError as exc:
            outcome = "retryable_error" if exc.retryable else "permanent_error"
            _record(con, row, attempt, outcome, str(exc))
            if not exc.retryable or attempt == retries:
                log.warning("report %s not sent after %d attempt(s): %s", key, attempt, exc)
                return "failed"
            sleep(BACKOFF_BASE_S * 2 ** (attempt - 1))
            continue
        _record(con, row, attempt, "sent", None)
        return "sent"
    raise AssertionError("unreachable")  # the loop always returns


def _record(con: Any, row: Mapping[str, Any], attempt: int, outcome: str, detail: str | None) -> None:
    con.execute(
        sqlfiles.sql("report_deliveries_insert"),
        {
            **row,
            "attempt": attempt,
            "outcome": outcome,
            "detail": detail,
            "at": datetime.now(UTC).replace(tzinfo=None),
        },
    )

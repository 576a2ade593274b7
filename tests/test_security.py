"""Hostile names across every surface, and secrets nowhere but the environment (README "Guarantees").

One pass over a real pipeline, shared by the tests of this module (the papermill renders are the slow
part, so they happen once): every name of ``HOSTILE`` is a service (in a landing file), an SLO's
``metadata.name``, ``displayName`` and ``spec.service``, and an objective's ``displayName``. The names are

* ingested from an NDJSON counts file and aggregated, evaluated and alerted on (``pipelines.workflows``,
  ``pipelines.alert_workflow``), notified to a Slack-style webhook, a signed webhook and an email channel
  (real HTTP receiver and a real STARTTLS SMTP server with AUTH on 127.0.0.1);
* rendered by the ``service_reports`` and ``slo_dashboard`` assets in a Dagster run (papermill on the
  ``sloscope`` kernel, the offline dashboard page, the reports index);
* mailed as report emails (``pipelines.report_mail``) to the same SMTP server.

Which names can reach the system: ingestion (``sloscope_name_problems`` in ``sql/schema.sql``) quarantines a
service or operation only when it is missing or longer than 200 characters, and trims surrounding spaces;
quotes, SQL, shell and Python metacharacters, path separators, markup, Jinja braces, printf directives,
the RTL override *and CR/LF* are stored verbatim. OpenSLO ``spec.service`` allows 1-200 characters and
``metadata.name`` 1-253, with no character rules. So every name below but the 300-character one reaches
every surface; that one is quarantined with its reason and refused in the SLO file
(``test_overlong_name_is_quarantined_and_refused_in_slo_files``).

Secrets (SMTP password, the signed webhook's secret, the Slack webhook URL) are set to distinctive values
in the environment only; captured logs (root logger at DEBUG), the Dagster run's event log, every file
under the reports folder, every VARCHAR value of every warehouse table and the warehouse file's bytes
must not contain them.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import re
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest
import trustme
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pipelines import alert_workflow, workflows
from pipelines.report_mail import (
    delivery_key,
    report_email,
    send_report,
    smtp_sender_from_env,
    smtp_settings_from_env,
)
from pipelines.slo.alert_config import parse_alerting
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.notify import _one_line, slack_escape
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.report import safe_slug
from pipelines.slo.spec import SpecError, load_slos
from pipelines.warehouse import connect
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.slow

CRLF = "a\r\nBcc: victim@example.com"
HOSTILE = [
    "x'); DROP TABLE raw_events; --",
    "\"; import os; os.system('touch CANARY') #",
    "$(touch CANARY)",
    "`id`",
    "../../etc/passwd",
    "..\\..\\win",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    CRLF,
    "{{7*7}}",
    "%s%n",
    "evil\u202egnp.exe",  # RIGHT-TO-LEFT OVERRIDE: shows as "evilexe.png"
]
OVERLONG = "n" * 300
LOOPBACK = "127.0.0.1"
START = datetime(2026, 3, 1, 10, 0)
MINUTES = 120  # per service: 60 clean minutes, then 60 minutes in which every request fails
REPORT_TO = ["sre@shop.example"]
ALERT_TO = "oncall@shop.example"
SENDER = "sloscope@sloscope.example"

RUN = uuid.uuid4().hex[:12]
SECRETS = {
    "SLOSCOPE_SMTP_USER": "reports-bot",
    "SLOSCOPE_SMTP_PASSWORD": f"smtp-pw-{RUN}",
    "TEST_HOOK_SECRET": f"hook-secret-{RUN}",
}
SLACK_TOKEN = f"slack-token-{RUN}"
SECRET_VALUES = [SECRETS["SLOSCOPE_SMTP_PASSWORD"], SECRETS["TEST_HOOK_SECRET"], SLACK_TOKEN]


def _slo(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {"name": name, "displayName": name},
        "spec": {
            "service": name,
            "indicator": {
                "spec": {
                    "ratioMetric": {
                        "good": {"metricSource": {"type": "sloscope", "spec": {"success": True}}},
                        "total": {"metricSource": {"type": "sloscope", "spec": {"service": name}}},
                    }
                }
            },
            "timeWindow": [{"duration": "1d", "isRolling": True}],
            "budgetingMethod": "Occurrences",
            "objectives": [{"displayName": name, "target": 0.99}],
        },
    }


def _counts_lines(names: list[str]) -> list[str]:
    lines = []
    for name in names:
        for m in range(MINUTES):
            moment = START + timedelta(minutes=m)
            good = 10 if m < 60 else 0
            row = {"timestamp": f"{moment:%Y-%m-%dT%H:%M}:00Z", "service": name, "operation": name}
            lines.append(json.dumps({**row, "total": 10, "good": good}))
    return lines


# ---------------------------------------------------------------------------------------------------------
# SMTP server (STARTTLS + AUTH, so credentials really travel) and log capture


@dataclass
class _Mailbox:
    received: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == SECRETS["SLOSCOPE_SMTP_USER"].encode()
        and data.password == SECRETS["SLOSCOPE_SMTP_PASSWORD"].encode()
    )
    return AuthResult(success=ok, handled=False)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------------------
# The one pass


@dataclass
class World:
    root: Path
    warehouse: Path
    reports: Path
    cwd: Path
    tables_before: set[str]
    tables_after: set[str]
    stored_services: set[str]
    rows_by_service: dict[str, int]
    reports_by_service: dict[str, Path]
    dashboard: Path
    index: Path
    alert_requests: list[Any]
    alert_mails: list[tuple[list[str], bytes]]
    report_mails: list[tuple[list[str], bytes]]
    report_outcomes: dict[str, str]
    crlf_report_error: str
    logs: list[str]
    dagster_log: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from dagster import DagsterInstance, materialize

    from assets.dashboard import slo_dashboard
    from assets.reports import service_reports
    from pipelines.resources import SloscopeResource

    root = tmp_path_factory.mktemp("security")
    warehouse, reports, landing, slos_dir = (
        root / "wh" / "w.duckdb",
        root / "reports",
        root / "landing",
        root / "slos",
    )
    landing.mkdir()
    slos_dir.mkdir()
    (landing / "hostile.ndjson").write_text("\n".join(_counts_lines(HOSTILE)) + "\n", encoding="utf-8")
    (slos_dir / "hostile.yaml").write_text(
        yaml.safe_dump_all([_slo(n) for n in HOSTILE], allow_unicode=True), encoding="utf-8"
    )
    ca = trustme.CA()
    ca_file = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(LOOPBACK).configure_cert(tls)
    mailbox = _Mailbox()
    smtp = Controller(
        mailbox,
        hostname=LOOPBACK,
        port=_free_port(),
        authenticator=_authenticator,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
    )
    smtp.start()
    collect = _Collect()
    rootlog = logging.getLogger()
    old_level = rootlog.level
    rootlog.addHandler(collect)
    rootlog.setLevel(logging.DEBUG)
    cwd = root / "cwd"
    cwd.mkdir()
    old_cwd = Path.cwd()
    os.chdir(cwd)  # anything a shell or Python injection ran would create CANARY here or in a report folder
    try:
        with pytest.MonkeyPatch.context() as mp, Receiver(default=Reply(200, b"ok")) as receiver:
            env = {
                **SECRETS,
                "SLOSCOPE_SMTP_HOST": LOOPBACK,
                "SLOSCOPE_SMTP_PORT": str(smtp.port),
                "SLOSCOPE_SMTP_TLS": "starttls",
                "SLOSCOPE_SMTP_CA_FILE": str(ca_file),
                "SLOSCOPE_SMTP_SENDER": SENDER,
                "TEST_SLACK_URL": receiver.url(f"/slack/{SLACK_TOKEN}"),
            }
            for key, value in env.items():
                mp.setenv(key, value)

            con = connect(warehouse)
            tables_before = set(_tables(con))
            report = ingest_paths(con, [landing], max_clock_skew_seconds=300)
            assert [f.status for f in report.files] == ["loaded"]
            slos = load_slos(slos_dir)
            workflows.refresh(con, slos)
            as_of, statuses = workflows.evaluate_and_store(
                con, slos, as_of=None, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
            )
            workflows.store_hourly(con, slos, as_of)
            alerting = parse_alerting(
                _ALERTING.format(
                    hook=receiver.url("/hook"), port=smtp.port, ca=json.dumps(str(ca_file)), to=ALERT_TO
                ),
                "alerting.yaml",
            )
            alert_workflow.run_alerting(
                con, slos, statuses, as_of, alerting, now=as_of, env=dict(os.environ), sleep=lambda s: None
            )
            stored = {r[0] for r in con.execute("SELECT DISTINCT service FROM raw_counts").fetchall()}
            rows = dict(con.execute("SELECT service, count(*) FROM raw_counts GROUP BY service").fetchall())
            con.close()

            # The Dagster assets, as a run: the service reports (papermill) and the dashboard.
            resource = SloscopeResource(
                warehouse=str(warehouse), landing=str(landing), reports=str(reports), slos=str(slos_dir)
            )
            instance = DagsterInstance.ephemeral()
            result = materialize(
                [service_reports, slo_dashboard], resources={"sloscope": resource}, instance=instance
            )
            assert result.success
            dagster_log = "\n".join(repr(entry) for entry in instance.all_logs(result.run_id))

            # Each service's report as a monthly email, through the real SMTP server with credentials.
            pages = {p.parent.name: p for p in reports.glob("*/*/report.html")}  # folder slug -> page
            by_service = {n: pages[safe_slug(n)] for n in HOSTILE if safe_slug(n) in pages}
            environ = dict(os.environ)
            outcomes: dict[str, str] = {}
            crlf_error = ""
            con = connect(warehouse)
            for name, page in by_service.items():
                pdf = page.with_suffix(".pdf")
                pdf.write_bytes(b"%PDF-1.4\n% stand-in: the PDF converter is not under test here\n%%EOF\n")
                try:
                    message = report_email(
                        page, pdf, service=name, report_type="monthly", period="2026-03",
                        sender=smtp_sender_from_env(environ), recipients=REPORT_TO,
                    )  # fmt: skip
                except ValueError as exc:
                    assert name == CRLF, exc
                    crlf_error = str(exc)
                    continue
                key = delivery_key(
                    service=name, report_type="monthly", period="2026-03", recipients=REPORT_TO
                )
                outcomes[name] = send_report(
                    con, message, key=key, settings=smtp_settings_from_env(environ), env=environ,
                    sleep=lambda s: None,
                )  # fmt: skip
            tables_after = set(_tables(con))
            con.close()
            requests = list(receiver.requests)
        alert_mails = [m for m in mailbox.received if ALERT_TO in m[0]]
        report_mails = [m for m in mailbox.received if m[0] == REPORT_TO]
        yield World(
            root=root,
            warehouse=warehouse,
            reports=reports,
            cwd=cwd,
            tables_before=tables_before,
            tables_after=tables_after,
            stored_services=stored,
            rows_by_service=rows,
            reports_by_service=by_service,
            dashboard=reports / "dashboard" / "index.html",
            index=reports / "index.html",
            alert_requests=requests,
            alert_mails=alert_mails,
            report_mails=report_mails,
            report_outcomes=outcomes,
            crlf_report_error=crlf_error,
            logs=collect.lines,
            dagster_log=dagster_log,
        )
    finally:
        os.chdir(old_cwd)
        rootlog.removeHandler(collect)
        rootlog.setLevel(old_level)
        smtp.stop()


_ALERTING = """
defaults: {{no_data_after: 0m}}
routes:
  default: {{page: [chat, hook, mail], ticket: [chat]}}
channels:
  chat: {{type: slack, webhook_url_env: TEST_SLACK_URL}}
  hook: {{type: webhook, url: "{hook}", secret_env: TEST_HOOK_SECRET}}
  mail:
    type: email
    smtp:
      host: 127.0.0.1
      port: {port}
      security: starttls
      username_env: SLOSCOPE_SMTP_USER
      password_env: SLOSCOPE_SMTP_PASSWORD
      ca_file: {ca}
    sender: alerts@sloscope.example
    recipients: [{to}]
"""


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]


# ---------------------------------------------------------------------------------------------------------
# HTML inspection


class _Page(HTMLParser):
    """Elements, attributes and text of a page as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def _spaced(text: str) -> str:
    return " ".join(text.split())


def _assert_inert(html: str, where: str) -> _Page:
    """No element or attribute a hostile name could have injected."""
    page = _parse(html)
    for tag, attrs in page.elements:
        for attr, _ in attrs:
            assert not attr.startswith("on"), f"{where}: event handler {attr} on <{tag}>"
        assert tag != "img" or not any(a == "src" and v == "x" for a, v in attrs), f"{where}: injected <img>"
    lowered = html.lower()
    assert "<script>alert" not in lowered and "<img src=x" not in lowered, where
    return page


# ---------------------------------------------------------------------------------------------------------
# Tests


def test_overlong_name_is_quarantined_and_refused_in_slo_files(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "long.ndjson").write_text("\n".join(_counts_lines([OVERLONG])[:3]) + "\n", encoding="utf-8")
    con = connect(tmp_path / "w.duckdb")
    try:
        report = ingest_paths(con, [landing], max_clock_skew_seconds=300)
        [f] = report.files
        assert (f.rows_read, f.rows_loaded, f.rows_quarantined) == (3, 0, 3)
        reasons = {r[0] for r in con.execute("SELECT reason FROM quarantine").fetchall()}
        assert reasons == {"service is longer than 200 characters; operation is longer than 200 characters"}
    finally:
        con.close()
    (tmp_path / "slos").mkdir()
    (tmp_path / "slos" / "long.yaml").write_text(yaml.safe_dump(_slo(OVERLONG)), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_slos(tmp_path / "slos")
    assert any("spec.service" in p and "at most 200 characters" in p for p in caught.value.problems)


def test_names_are_stored_verbatim_and_no_table_is_lost(world: World) -> None:
    # SQL: bound parameters and quoted identifiers; the DROP TABLE name is a value like any other.
    assert world.stored_services == set(HOSTILE)  # CR/LF included: ingestion does not quarantine it
    assert world.rows_by_service == {n: MINUTES for n in HOSTILE}
    assert world.tables_before <= world.tables_after
    assert {"raw_events", "raw_counts", "slo_status"} <= world.tables_after
    con = duckdb.connect(str(world.warehouse), read_only=True)
    try:
        status = con.execute(
            "SELECT slo, display_name, service, objective, good, total FROM slo_status"
        ).fetchall()
        incidents = {r[0] for r in con.execute("SELECT DISTINCT service FROM incidents").fetchall()}
    finally:
        con.close()
    # 60 good minutes of 10 requests and 60 failing ones, per service, all inside the 1-day window.
    assert sorted(status) == sorted((n, n, n, n, 600, 1200) for n in HOSTILE)
    assert incidents == set(HOSTILE)


def test_no_injected_command_ran(world: World) -> None:
    # papermill passes parameters as Python literals and nothing hands a name to a shell.
    found = [p for base in (world.root, Path(__file__).resolve().parents[1]) for p in base.rglob("CANARY")]
    assert found == []
    assert not (Path.cwd() / "CANARY").exists()


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_papermill_passes_the_name_as_a_string_literal(world: World, name: str) -> None:
    import ast

    import nbformat

    executed = nbformat.read(world.reports_by_service[name].with_suffix(".ipynb"), as_version=4)
    [cell] = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    tree = ast.parse(cell.source)  # the injected cell is still valid Python: nothing broke out of it
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    assert values["service"] == name
    assert all(isinstance(node, ast.Assign) for node in tree.body)  # assignments only, no calls
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []


def test_every_written_path_stays_inside_the_reports_folder(world: World) -> None:
    root = world.reports.resolve()
    files = [p for p in world.reports.rglob("*")]
    assert files
    for path in files:
        assert not path.is_symlink(), path
        assert path.resolve().is_relative_to(root), path
        for part in path.relative_to(world.reports).parts:
            assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", part, re.I), f"unsafe name {part!r} in {path}"
    # One report folder per service, named by its slug, under the as-of date.
    assert set(world.reports_by_service) == set(HOSTILE)
    for name, page in world.reports_by_service.items():
        assert page.parent.name == safe_slug(name) and page.parent.parent.name == "2026-03-01"
    # Nothing was written beside the reports folder (a traversal would land in its parent).
    beside = sorted(p.name for p in world.root.iterdir())
    assert beside == ["ca.pem", "cwd", "landing", "reports", "slos", "wh"]
    assert list(world.cwd.iterdir()) == []


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_report_page_shows_the_name_only_as_text(world: World, name: str) -> None:
    html = world.reports_by_service[name].read_text(encoding="utf-8")
    page = _assert_inert(html, f"report of {name!r}")
    assert not any(tag == "script" for tag, _ in page.elements)
    text = _spaced(" ".join(page.text))
    # The heading, as written: "{{7*7}}" is not evaluated, "%s%n" not formatted, markup not parsed.
    assert f"{_spaced(name)} — SLO report" in text


def test_dashboard_and_index_show_names_only_as_text(world: World) -> None:
    html = world.dashboard.read_text(encoding="utf-8")
    page = _assert_inert(html, "dashboard")
    # The bundle, the JSON data block and the embedding code; a name with </script> opened none.
    assert [t for t, _ in page.elements].count("script") == 3
    text = _spaced(" ".join(page.text))
    for name in HOSTILE:
        assert _spaced(name) in text, name
    data = next(s for s in page.scripts if s.lstrip().startswith("{"))
    assert json.loads(data)  # the data block is still one JSON document
    index = _assert_inert(world.index.read_text(encoding="utf-8"), "index")
    assert not any(tag == "script" for tag, _ in index.elements)


def _headers_clean(message: email.message.EmailMessage, where: str) -> None:
    for header, value in message.items():
        assert "\r" not in str(value) and "\n" not in str(value), f"{where}: {header}"
    assert message["Bcc"] is None and message["Cc"] is None, where
    for part in message.walk():
        for header in part:
            assert header.lower() not in {"bcc", "cc"}, where


def _parse_mail(content: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(content, policy=email.policy.default)  # type: ignore[return-value]


def test_report_emails_hold_the_name_in_one_subject_line(world: World) -> None:
    mailed = [n for n in HOSTILE if n != CRLF]
    assert world.report_outcomes == {n: "sent" for n in mailed}
    assert len(world.report_mails) == len(mailed)
    subjects = set()
    for rcpt, content in world.report_mails:
        assert rcpt == REPORT_TO  # the envelope: nobody added
        message = _parse_mail(content)
        _headers_clean(message, "report mail")
        subjects.add(message["Subject"])
        assert message["X-Sloscope-Service"] in mailed
    assert subjects == {f"[sloscope] {n} — monthly SLO report, March 2026" for n in mailed}
    # A name with a line break cannot be a header: that report is refused with a reason, not mangled.
    assert "line break" in world.crlf_report_error


def test_notifications_carry_the_name_as_data(world: World) -> None:
    hooks = [r for r in world.alert_requests if r.path == "/hook"]
    slack = [r for r in world.alert_requests if r.path.startswith("/slack/")]
    # Each service pages once (the burn-rate page of its SLO) to the signed webhook.
    assert sorted(json.loads(r.body)["service"] for r in hooks) == sorted(HOSTILE)
    for request in hooks:
        document = json.loads(request.body)
        assert document["slo"] == document["service"]
        assert "\r" not in request.header("Idempotency-Key") and "\n" not in request.header("Idempotency-Key")
    assert slack
    for request in slack:
        payload = json.loads(request.body)  # valid JSON, whatever the name
        # mrkdwn is parsed by Slack (<!channel>, <url|text>): names in it are escaped. plain_text (the
        # header) is shown as it is, so it carries the name unescaped, on one line.
        for text in [payload["text"], *_mrkdwn(payload["blocks"])]:
            assert "<script>" not in text and "<img " not in text, text
    shown = " ".join(_strings([json.loads(r.body) for r in slack]))
    for name in HOSTILE:
        assert slack_escape(_one_line(name)) in shown or slack_escape(name) in shown, name
    # Alert emails: envelope and headers hold only the configured recipient; the subject is one line.
    assert len(world.alert_mails) == len(HOSTILE)
    subjects = []
    for rcpt, content in world.alert_mails:
        assert rcpt == [ALERT_TO]
        message = _parse_mail(content)
        _headers_clean(message, "alert mail")
        subjects.append(message["Subject"])
    for name in HOSTILE:
        assert any(_one_line(name) in s for s in subjects), name


def _mrkdwn(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" else []
        return own + [s for v in value.values() for s in _mrkdwn(v)]
    if isinstance(value, list):
        return [s for v in value for s in _mrkdwn(v)]
    return []


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_secrets_appear_nowhere(world: World) -> None:
    # They were used: the SMTP server authenticated the password, the receiver got the signed webhook.
    assert world.report_mails and world.alert_mails
    assert any(r.path == f"/slack/{SLACK_TOKEN}" for r in world.alert_requests)
    places = {"captured logs": "\n".join(world.logs), "Dagster event log": world.dagster_log}
    for path in world.reports.rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    con = duckdb.connect(str(world.warehouse), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() JOIN duckdb_tables() "
            "USING (database_name, schema_name, table_name) WHERE data_type IN ('VARCHAR', 'JSON')"
        ).fetchall()
        assert ("report_deliveries", "detail") in columns and ("raw_counts", "service") in columns
        for table, column in columns:
            for secret in SECRET_VALUES:
                hits = con.execute(
                    f'SELECT count(*) FROM "{table}" WHERE contains(CAST("{column}" AS VARCHAR), $s)',
                    {"s": secret},
                ).fetchone()[0]
                assert hits == 0, f"{table}.{column} holds a secret"
    finally:
        con.close()
    raw = b"".join(p.read_bytes() for p in world.warehouse.parent.iterdir() if p.is_file())
    for secret in SECRET_VALUES:
        assert secret.encode() not in raw, "the warehouse file holds a secret"
        for where, text in places.items():
            assert secret not in text, f"{where} holds a secret"
    assert len(world.logs) > 0

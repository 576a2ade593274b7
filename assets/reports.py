"""Group ``reports``: rendered HTML SLO reports per service (papermill notebook on a real kernel): the
current one on every run, and monthly and quarterly ones as partitions (schedules and backfills)."""

import os
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    asset,
)
from pydantic import Field

from pipelines.markdown import markdown_table
from pipelines.report_mail import (
    delivery_key,
    load_recipients,
    report_email,
    send_report,
    smtp_sender_from_env,
    smtp_settings_from_env,
)
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.settings import load_settings
from pipelines.slo.artefacts import ArtefactError, html_to_pdf, write_index
from pipelines.slo.budget import ObjectiveStatus, evaluate
from pipelines.slo.portfolio import FOLDER as PORTFOLIO_FOLDER
from pipelines.slo.portfolio import portfolio_inputs, render_portfolio_report
from pipelines.slo.report import render_service_report, report_extras, safe_slug
from pipelines.workflows import current_status, report_hourly

_SETTINGS = load_settings()
# Periods are the team's calendar: a month in Europe/Berlin ends at midnight Berlin time.
monthly_partitions = MonthlyPartitionsDefinition(
    start_date=_SETTINGS.history_start[:7] + "-01", timezone=_SETTINGS.report_time_zone, end_offset=0
)
quarterly_partitions = TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *",
    fmt="%Y-%m-%d",
    start=_SETTINGS.history_start[:7] + "-01",
    timezone=_SETTINGS.report_time_zone,
    end_offset=0,
)


class ReportConfig(Config):
    """Which services to render (all when empty): the breach sensor re-renders only the breached ones."""

    services: list[str] = Field(default_factory=list)


def _render(
    context: AssetExecutionContext,
    sloscope: SloscopeResource,
    statuses: list[ObjectiveStatus],
    as_of: datetime,
    *,
    period: str | None,
    name: str,
    label: str,
    services: list[str] | None = None,
) -> tuple[MaterializeResult, list[tuple[str, str]]]:
    """Render each service's report; the result for the UI, and (service name, page path) pairs."""
    wanted = sorted({s.service for s in statuses} if not services else set(services))
    with sloscope.connect() as con:
        hourly = {service: report_hourly(con, service) for service in wanted}
        # Trends, anomalies, forecasts, backtests and achieved history, cut off at the report's as-of.
        extras = {service: report_extras(con, service, as_of) for service in wanted}
    # The warehouse connection is closed before kernels start: DuckDB allows one process at a time.
    rendered: list[tuple[str, str]] = []
    for service in wanted:
        mine = [{**s.to_json(), "display_name": s.display_name} for s in statuses if s.service == service]
        if not mine:
            context.log.warning(f"no SLOs for service {service!r}; nothing rendered")
            continue
        path = render_service_report(
            service,
            mine,
            hourly[service],
            Path(sloscope.reports),
            as_of=as_of,
            kernel_name=sloscope.kernel_name,
            period=period,
            name=name,
            title=f"{service} — {label}",
            extras=extras[service],
        )
        context.log.info(f"rendered {path}")
        rendered.append((service, str(path)))
    write_index(Path(sloscope.reports))
    result = MaterializeResult(
        metadata={
            "reports": len(rendered),
            "as_of": as_of.isoformat() + "Z",
            "paths": MetadataValue.md(markdown_table(("service", "report"), rendered)),
            "index": MetadataValue.path(str(Path(sloscope.reports) / "index.html")),
            **({"first_report": MetadataValue.path(rendered[0][1])} if rendered else {}),
        }
    )
    return result, rendered


PORTFOLIO = PORTFOLIO_FOLDER


def _portfolio(
    context: AssetExecutionContext, sloscope: SloscopeResource, start: datetime, end: datetime, period: str
) -> dict[str, str]:
    """The executive summary, SLA compliance report and incident digest of the period (all services)."""
    slos = sloscope.load_slos()
    with sloscope.connect(read_only=True) as con:
        inputs = portfolio_inputs(
            con, slos, period_start=start, period_end=end, at_risk_remaining=sloscope.at_risk_remaining,
            policies=sloscope.load_policies(),
        )  # fmt: skip
    pages = {}
    for kind in ("executive", "sla", "incidents"):
        path = render_portfolio_report(
            kind, inputs, Path(sloscope.reports), period=period, kernel_name=sloscope.kernel_name
        )
        context.log.info(f"rendered {path}")
        pages[kind] = str(path)
    return pages


def _publish(
    context: AssetExecutionContext,
    sloscope: SloscopeResource,
    result: MaterializeResult,
    rendered: list[tuple[str, str]],
    *,
    report_type: str,
    period: str,
) -> MaterializeResult:
    """PDF beside each period report, the index, and the email to its recipients (once per period).
    Recipients, subjects and delivery keys use the service's real name, not its folder's slug."""
    metadata = dict(result.metadata or {})
    # The cross-service reports of the period get a PDF too (they are not mailed per service).
    for page in sorted(Path(sloscope.reports).resolve().glob(f"{safe_slug(period)}/{PORTFOLIO}/*.html")):
        try:
            html_to_pdf(page, page.with_suffix(".pdf"))
        except ArtefactError as exc:
            context.log.warning(f"{page}: no PDF: {exc}")
    pdfs, outcomes = 0, {}
    recipients = load_recipients(Path(sloscope.report_recipients) if sloscope.report_recipients else None)
    env = dict(os.environ)
    settings = load_settings()
    for service, page_text in rendered:
        page = Path(page_text)
        pdf: Path | None = page.with_suffix(".pdf")
        try:
            html_to_pdf(page, pdf)  # type: ignore[arg-type]
            pdfs += 1
        except ArtefactError as exc:
            # The HTML report stands alone; a missing PDF converter must not lose it.
            context.log.warning(f"{page}: no PDF: {exc}")
            pdf = None
        to = recipients.for_report(service, report_type)
        if not to:
            continue
        if pdf is None:
            context.log.error(f"{service} {report_type} report for {period}: not emailed, its PDF failed")
            outcomes["not_sent_no_pdf"] = outcomes.get("not_sent_no_pdf", 0) + 1
            continue
        try:
            message = report_email(
                page, pdf, service=service, report_type=report_type, period=period,
                sender=smtp_sender_from_env(env, base=settings.smtp), recipients=to,
            )  # fmt: skip
        except ValueError as exc:
            # One service's unmailable report (a name that cannot be a header) must not stop the others.
            context.log.error(f"{service} {report_type} report for {period}: not emailed: {exc}")
            outcomes["failed"] = outcomes.get("failed", 0) + 1
            continue
        key = delivery_key(service=service, report_type=report_type, period=period, recipients=to)
        with sloscope.connect() as con:
            outcome = send_report(
                con, message, key=key, settings=smtp_settings_from_env(env, base=settings.smtp), env=env
            )
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome == "failed":
            context.log.error(
                f"{service} {report_type} report for {period}: email failed (see report_deliveries)"
            )
    write_index(Path(sloscope.reports))
    metadata.update({"pdfs": pdfs, **{f"emails_{k}": v for k, v in sorted(outcomes.items())}})
    return MaterializeResult(metadata=metadata)


@asset(
    pool=DUCKDB_POOL,
    group_name="reports",
    kinds={"papermill", "html"},
    # The analytics and backtests first, so the report's trend, forecast and recommendation sections are
    # as fresh as its numbers.
    deps=[
        AssetKey("slo_status"),
        AssetKey("slo_hourly"),
        AssetKey("slo_seasonality"),
        AssetKey("slo_anomalies"),
        AssetKey("slo_forecasts"),
        AssetKey("alert_backtest"),
    ],
)
def service_reports(
    context: AssetExecutionContext, sloscope: SloscopeResource, config: ReportConfig
) -> MaterializeResult:
    """One self-contained HTML report per service as of the newest data (SLO table, budget, SLI and
    burn-rate charts)."""
    with sloscope.connect() as con:
        statuses = current_status(con)
    as_of = statuses[0].window_end if statuses else datetime.now(UTC).replace(tzinfo=None)
    result, _ = _render(
        context, sloscope, statuses, as_of, period=None, name="report", label="SLO report",
        services=config.services or None,
    )  # fmt: skip
    return result


def _period_end(context: AssetExecutionContext) -> datetime:
    """The partition's end in naive UTC (the warehouse's time)."""
    return context.partition_time_window.end.astimezone(UTC).replace(tzinfo=None)


def _evaluate_at(sloscope: SloscopeResource, as_of: datetime) -> list[ObjectiveStatus]:
    slos = sloscope.load_slos()
    with sloscope.connect() as con:
        return evaluate(
            con, slos, as_of, at_risk_remaining=sloscope.at_risk_remaining, policies=sloscope.load_policies()
        )


@asset(
    pool=DUCKDB_POOL,
    group_name="reports",
    kinds={"papermill", "html", "pdf"},
    partitions_def=monthly_partitions,
    deps=[AssetKey("slo_hourly")],
)
def monthly_reports(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """Each service's SLO report as of the end of the month (the team's time zone), as HTML and PDF under
    reports/<YYYY-MM>/<service>/, listed in reports/index.html and emailed once to its recipients;
    backfill any past month from the UI."""
    start = context.partition_time_window.start
    as_of = _period_end(context)
    period = start.strftime("%Y-%m")
    portfolio = _portfolio(context, sloscope, start.astimezone(UTC).replace(tzinfo=None), as_of, period)
    result, rendered = _render(
        context, sloscope, _evaluate_at(sloscope, as_of), as_of, period=period,
        name="monthly", label=f"monthly SLO report, {start:%B %Y}",
    )  # fmt: skip
    result = _publish(context, sloscope, result, rendered, report_type="monthly", period=period)
    return MaterializeResult(
        metadata={**(result.metadata or {}), **{kind: MetadataValue.path(p) for kind, p in portfolio.items()}}
    )


@asset(
    pool=DUCKDB_POOL,
    group_name="reports",
    kinds={"papermill", "html", "pdf"},
    partitions_def=quarterly_partitions,
    deps=[AssetKey("slo_hourly")],
)
def quarterly_reports(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """Each service's SLO report as of the end of the quarter, as HTML and PDF under
    reports/<yyyy-qn>/<service>/, indexed and emailed once to its recipients."""
    start = context.partition_time_window.start
    quarter = f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    # Folders are lower-case slugs: "2026-q3" (an upper-case name would be hashed to keep it unique).
    folder = quarter.lower()
    as_of = _period_end(context)
    portfolio = _portfolio(context, sloscope, start.astimezone(UTC).replace(tzinfo=None), as_of, folder)
    result, rendered = _render(
        context, sloscope, _evaluate_at(sloscope, as_of), as_of, period=folder, name="quarterly",
        label=f"quarterly reliability review, {quarter}",
    )  # fmt: skip
    result = _publish(context, sloscope, result, rendered, report_type="quarterly", period=folder)
    return MaterializeResult(
        metadata={**(result.metadata or {}), **{kind: MetadataValue.path(p) for kind, p in portfolio.items()}}
    )

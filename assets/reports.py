"""Group ``reports``: rendered HTML SLO reports per service (papermill notebook on a real kernel): the
current one on every run, and monthly and quarterly ones as partitions (schedules and backfills)."""

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
from pipelines.resources import SloscopeResource
from pipelines.settings import load_settings
from pipelines.slo.budget import ObjectiveStatus, evaluate
from pipelines.slo.report import render_service_report
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
) -> MaterializeResult:
    wanted = sorted({s.service for s in statuses} if not services else set(services))
    with sloscope.connect() as con:
        hourly = {service: report_hourly(con, service) for service in wanted}
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
        )
        context.log.info(f"rendered {path}")
        rendered.append((service, str(path)))
    return MaterializeResult(
        metadata={
            "reports": len(rendered),
            "as_of": as_of.isoformat() + "Z",
            "paths": MetadataValue.md(markdown_table(("service", "report"), rendered)),
            **({"first_report": MetadataValue.path(rendered[0][1])} if rendered else {}),
        }
    )


@asset(
    group_name="reports", kinds={"papermill", "html"}, deps=[AssetKey("slo_status"), AssetKey("slo_hourly")]
)
def service_reports(
    context: AssetExecutionContext, sloscope: SloscopeResource, config: ReportConfig
) -> MaterializeResult:
    """One self-contained HTML report per service as of the newest data (SLO table, budget, SLI and
    burn-rate charts)."""
    with sloscope.connect() as con:
        statuses = current_status(con)
    as_of = statuses[0].window_end if statuses else datetime.now(UTC).replace(tzinfo=None)
    return _render(
        context, sloscope, statuses, as_of, period=None, name="report", label="SLO report",
        services=config.services or None,
    )  # fmt: skip


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
    group_name="reports",
    kinds={"papermill", "html"},
    partitions_def=monthly_partitions,
    deps=[AssetKey("slo_hourly")],
)
def monthly_reports(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """Each service's SLO report as of the end of the month (the team's time zone), under
    reports/<YYYY-MM>/<service>/monthly.html; backfill any past month from the UI."""
    start = context.partition_time_window.start
    as_of = _period_end(context)
    return _render(
        context, sloscope, _evaluate_at(sloscope, as_of), as_of, period=start.strftime("%Y-%m"),
        name="monthly", label=f"monthly SLO report, {start:%B %Y}",
    )  # fmt: skip


@asset(
    group_name="reports",
    kinds={"papermill", "html"},
    partitions_def=quarterly_partitions,
    deps=[AssetKey("slo_hourly")],
)
def quarterly_reports(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """Each service's SLO report as of the end of the quarter, under reports/<YYYY-Qn>/<service>/."""
    start = context.partition_time_window.start
    quarter = f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    as_of = _period_end(context)
    return _render(
        context, sloscope, _evaluate_at(sloscope, as_of), as_of, period=quarter, name="quarterly",
        label=f"quarterly reliability review, {quarter}",
    )  # fmt: skip

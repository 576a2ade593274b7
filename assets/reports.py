"""Group ``reports``: a rendered HTML SLO report per service (papermill notebook on a real kernel)."""

from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from pipelines.markdown import markdown_table
from pipelines.resources import SloscopeResource
from pipelines.slo.report import render_service_report
from pipelines.workflows import current_status, report_hourly


@asset(
    group_name="reports", kinds={"papermill", "html"}, deps=[AssetKey("slo_status"), AssetKey("slo_hourly")]
)
def service_reports(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """One self-contained HTML report per service (SLO table, budget, SLI and burn-rate charts)."""
    with sloscope.connect() as con:
        statuses = current_status(con)
        services = sorted({s.service for s in statuses})
        hourly = {service: report_hourly(con, service) for service in services}
    # The warehouse connection is closed before kernels start: DuckDB allows one process at a time.
    rendered: list[tuple[str, str]] = []
    for service in services:
        mine = [{**s.to_json(), "display_name": s.display_name} for s in statuses if s.service == service]
        as_of = next(s.window_end for s in statuses if s.service == service)
        path = render_service_report(
            service,
            mine,
            hourly[service],
            Path(sloscope.reports),
            as_of=as_of,
            kernel_name=sloscope.kernel_name,
        )
        context.log.info(f"rendered {path}")
        rendered.append((service, str(path)))
    return MaterializeResult(
        metadata={
            "reports": len(rendered),
            "paths": MetadataValue.md(markdown_table(("service", "report"), rendered)),
            **({"first_report": MetadataValue.path(rendered[0][1])} if rendered else {}),
        }
    )

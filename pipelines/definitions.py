"""The one Definitions object: `dagster dev -w workspace.yaml` serves it."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from assets.alerts import ALERT_CHECKS, alert_backtest, incidents
from assets.analytics import ANALYTICS_ASSETS
from assets.budget import slo_alerts, slo_hourly, slo_status
from assets.dashboard import slo_dashboard
from assets.history import slo_history
from assets.ingest import pulled_sources, raw_measurements
from assets.maintenance import retention
from assets.quality import ALL_CHECKS
from assets.reports import monthly_reports, quarterly_reports, service_reports
from assets.scaleout import SCALEOUT_ASSETS, LakeResource
from assets.sli import sli_aggregates
from assets.slo import slo_definitions
from pipelines.jobs import (
    analytics_job,
    evaluate_job,
    history_job,
    lake_job,
    lake_load_job,
    monthly_reports_job,
    quarterly_reports_job,
    reports_job,
    retention_job,
    sloscope_job,
)
from pipelines.quality_summary import QUALITY_SUMMARY_SENSORS, data_quality_summary
from pipelines.resources import SloscopeResource
from pipelines.schedules import (
    daily_history,
    daily_reports,
    daily_retention,
    evaluate_on_interval,
    hourly_analytics,
    monthly_reports_schedule,
    quarterly_reports_schedule,
)
from pipelines.sensors import breach_sensor, landing_sensor, late_data_sensor
from pipelines.settings import load_settings

ALL_ASSETS = [
    pulled_sources,
    raw_measurements,
    slo_definitions,
    sli_aggregates,
    slo_status,
    slo_hourly,
    slo_alerts,
    incidents,
    alert_backtest,
    *ANALYTICS_ASSETS,
    service_reports,
    slo_dashboard,
]
# Partitioned by day, month or quarter: materialised by partition (their jobs, schedules, backfills).
PARTITIONED_ASSETS = [slo_history, monthly_reports, quarterly_reports]
# Scheduled housekeeping, never part of a loading run (tests and the demo materialise ALL_ASSETS).
MAINTENANCE_ASSETS = [retention]


def build_definitions(resource: SloscopeResource | None = None) -> Definitions:
    return Definitions(
        assets=[
            *ALL_ASSETS,
            *PARTITIONED_ASSETS,
            *MAINTENANCE_ASSETS,
            data_quality_summary,
            *SCALEOUT_ASSETS,
        ],
        asset_checks=[*ALL_CHECKS, *ALERT_CHECKS],
        jobs=[
            sloscope_job,
            evaluate_job,
            history_job,
            analytics_job,
            reports_job,
            monthly_reports_job,
            quarterly_reports_job,
            retention_job,
            lake_job,
            lake_load_job,
        ],
        schedules=[
            evaluate_on_interval(),
            hourly_analytics,
            daily_reports,
            daily_history,
            monthly_reports_schedule,
            quarterly_reports_schedule,
            daily_retention,
        ],
        sensors=[landing_sensor, breach_sensor, late_data_sensor, *QUALITY_SUMMARY_SENSORS],
        resources={
            "sloscope": resource or SloscopeResource.from_settings(load_settings()),
            "lake": LakeResource.from_env(),
        },
        # One step at a time in one process: DuckDB allows a single writing process.
        executor=in_process_executor,
    )


defs = build_definitions()

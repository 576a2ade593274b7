"""Schedules. They start stopped; turn them on in the UI (Automation) or with `dagster schedule start`."""

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    build_schedule_from_partitioned_job,
    schedule,
)

from pipelines.jobs import (
    analytics_job,
    evaluate_job,
    history_job,
    monthly_reports_job,
    quarterly_reports_job,
    retention_job,
    sloscope_job,
)
from pipelines.settings import EVALUATE_INTERVALS, load_settings


def interval_cron(minutes: int) -> str:
    """A cron expression ticking every ``minutes`` (a divisor of 60, so ticks fall on the same minutes)."""
    if minutes not in EVALUATE_INTERVALS:
        raise ValueError(f"interval must be one of {EVALUATE_INTERVALS} minutes, got {minutes}")
    return "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"


def evaluate_on_interval(minutes: int | None = None) -> ScheduleDefinition:
    """Re-evaluation every ``[evaluation] interval_minutes`` (sloscope.toml / environment)."""
    every = minutes if minutes is not None else load_settings().evaluate_interval_minutes
    return ScheduleDefinition(
        name="evaluate_on_interval",
        job=evaluate_job,
        cron_schedule=interval_cron(every),
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Every {every} minutes: ingest anything new, re-evaluate every SLO, alert and notify.",
    )


daily_reports = ScheduleDefinition(
    name="daily_reports",
    job=sloscope_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="The whole pipeline, reports included, every day at 06:00 UTC.",
)

daily_history = build_schedule_from_partitioned_job(
    history_job,
    name="daily_history",
    hour_of_day=0,
    minute_of_hour=30,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Yesterday's SLO status, at 00:30 UTC.",
)

hourly_analytics = ScheduleDefinition(
    name="hourly_analytics",
    job=analytics_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Hourly at :05: seasonality, trends, anomalies and forecasts (anomaly alerts read these).",
)

_TIME_ZONE = load_settings().report_time_zone

monthly_reports_schedule = build_schedule_from_partitioned_job(
    monthly_reports_job,
    name="monthly_reports_schedule",
    day_of_month=1,
    hour_of_day=6,
    minute_of_hour=0,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Last month's reports on the 1st at 06:00 in the reports time zone.",
)


@schedule(
    name="quarterly_reports_schedule",
    job=quarterly_reports_job,
    cron_schedule="0 6 1 1,4,7,10 *",
    execution_timezone=_TIME_ZONE,
    default_status=DefaultScheduleStatus.STOPPED,
    description="Last quarter's reviews on the first day of each quarter at 06:00 in the reports time zone.",
)
def quarterly_reports_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    """The quarter that ended at midnight this morning: its partition key is its first day."""
    today = context.scheduled_execution_time
    month = (today.month - 4) % 12 + 1
    year = today.year - (1 if today.month == 1 else 0)
    key = f"{year}-{month:02d}-01"
    return RunRequest(run_key=key, partition_key=key)


daily_retention = ScheduleDefinition(
    name="daily_retention",
    job=retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Retention every day at 03:30 UTC; the tick decides the cutoffs, so a re-run cuts the same.",
)

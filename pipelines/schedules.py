"""Schedules. They start stopped; turn them on in the UI (Automation) or with `dagster schedule start`."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, ScheduleDefinition, build_schedule_from_partitioned_job

from pipelines.jobs import evaluate_job, history_job, sloscope_job

evaluate_every_15_minutes = ScheduleDefinition(
    name="evaluate_every_15_minutes",
    job=evaluate_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Ingest anything new and re-evaluate every SLO.",
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

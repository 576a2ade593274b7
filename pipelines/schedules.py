"""Schedules. They start stopped; turn them on in the UI (Automation) or with `dagster schedule start`."""

from __future__ import annotations

from dagster import DefaultScheduleStatus, ScheduleDefinition

from pipelines.jobs import evaluate_job, sloscope_job

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

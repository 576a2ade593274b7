"""Jobs. The whole graph runs in one process, one step at a time: DuckDB allows a single writer."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job, multiprocess_executor

# Daily history is partitioned; a job mixes partitioned and unpartitioned assets only by partition, so it
# has its own job and the other jobs leave it out.
_HISTORY = AssetSelection.groups("history")
_PERIOD_REPORTS = AssetSelection.assets("monthly_reports", "quarterly_reports")
# Retention deletes old rows on its own schedule; it is never part of a run that loads or evaluates.
_MAINTENANCE = AssetSelection.groups("maintenance")
# The Parquet lake (docs/scale-out.md): built per day in parallel processes, loaded by its own job.
_SCALEOUT = AssetSelection.groups("scaleout")

sloscope_job = define_asset_job(
    "sloscope_job",
    selection=AssetSelection.all() - _HISTORY - _PERIOD_REPORTS - _MAINTENANCE - _SCALEOUT,
    description="Ingest landed files, check them, aggregate SLIs, evaluate SLOs and render reports.",
)

evaluate_job = define_asset_job(
    "evaluate_job",
    selection=AssetSelection.groups("ingest", "slo", "sli", "budget", "alerts", "dashboard"),
    description="Everything but the reports and history: ingest, evaluate, alert, notify, dashboard.",
)

history_job = define_asset_job(
    "history_job",
    selection=_HISTORY,
    description="SLO status as of the end of each day; backfill any range of days.",
)

analytics_job = define_asset_job(
    "analytics_job",
    selection=AssetSelection.groups("analytics"),
    description="Seasonality, trends, change points, anomalies and budget forecasts from the aggregates.",
)

reports_job = define_asset_job(
    "reports_job",
    selection=AssetSelection.assets("service_reports"),
    description="The current report of every service (or of the services given in the run config).",
)

monthly_reports_job = define_asset_job(
    "monthly_reports_job",
    selection=AssetSelection.assets("monthly_reports"),
    description="Monthly SLO reports per service; backfill past months by partition.",
)

quarterly_reports_job = define_asset_job(
    "quarterly_reports_job",
    selection=AssetSelection.assets("quarterly_reports"),
    description="Quarterly reliability reviews per service; backfill past quarters by partition.",
)

retention_job = define_asset_job(
    "retention_job",
    selection=_MAINTENANCE,
    description="Delete what each warehouse tier no longer keeps ([retention]) and record the cutoffs.",
)

lake_job = define_asset_job(
    "lake_job",
    selection=AssetSelection.assets("sli_minute_lake"),
    # Each day of the lake is independent and never opens the warehouse: days run side by side.
    executor_def=multiprocess_executor.configured({"max_concurrent": 4}),
    description="One UTC day of the Parquet lake per partition: 1-minute SLI tables and quarantine.",
)

lake_load_job = define_asset_job(
    "lake_load_job",
    selection=AssetSelection.assets("sli_lake_load"),
    description="Load lake days built since the last load into the warehouse; roll up their hours and days.",
)

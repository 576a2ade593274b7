"""Jobs. The whole graph runs in one process, one step at a time: DuckDB allows a single writer."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

# Daily history is partitioned; a job mixes partitioned and unpartitioned assets only by partition, so it
# has its own job and the other jobs leave it out.
_HISTORY = AssetSelection.groups("history")

sloscope_job = define_asset_job(
    "sloscope_job",
    selection=AssetSelection.all() - _HISTORY,
    description="Ingest landed files, check them, aggregate SLIs, evaluate SLOs and render reports.",
)

evaluate_job = define_asset_job(
    "evaluate_job",
    selection=AssetSelection.groups("ingest", "slo", "sli", "budget", "alerts"),
    description="Everything but the reports and history: ingest, evaluate, alert and notify.",
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

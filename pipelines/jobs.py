"""Jobs. The whole graph runs in one process, one step at a time: DuckDB allows a single writer."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

sloscope_job = define_asset_job(
    "sloscope_job",
    selection=AssetSelection.all(),
    description="Ingest landed files, check them, aggregate SLIs, evaluate SLOs and render reports.",
)

evaluate_job = define_asset_job(
    "evaluate_job",
    selection=AssetSelection.groups("ingest", "slo", "sli", "budget"),
    description="Everything but the reports: for frequent re-evaluation.",
)

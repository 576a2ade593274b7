"""Group ``ingest``: files in the landing folder into the raw tables and the quarantine."""

from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from pipelines import sqlfiles
from pipelines.markdown import markdown_table
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.slo.ingest import ingest_paths
from pipelines.workflows import pull_sources, utc_now


@asset(group_name="ingest", kinds={"prometheus"})
def pulled_sources(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """New data from the pull sources in the sources file (Prometheus), landed as files for ingestion."""
    written = pull_sources(
        Path(sloscope.sources) if sloscope.sources else None,
        Path(sloscope.slos),
        Path(sloscope.landing),
        utc_now(),
    )
    for path in written:
        context.log.info(f"landed {path}")
    return MaterializeResult(metadata={"files_landed": len(written)})


RAW_EVENTS = AssetSpec(
    "raw_events",
    group_name="ingest",
    deps=[AssetKey("pulled_sources")],
    kinds={"duckdb"},
    description="Request events (timestamp, service, operation, status, latency) as loaded.",
)
RAW_COUNTS = AssetSpec(
    "raw_counts",
    group_name="ingest",
    deps=[AssetKey("pulled_sources")],
    kinds={"duckdb"},
    description="Pre-counted buckets (total, good) from sources that already count.",
)
QUARANTINE = AssetSpec(
    "quarantine",
    group_name="ingest",
    kinds={"duckdb"},
    description="Rows that failed validation, with file, row number, reason and the record.",
)


@multi_asset(pool=DUCKDB_POOL, specs=[RAW_EVENTS, RAW_COUNTS, QUARANTINE])
def raw_measurements(context: AssetExecutionContext, sloscope: SloscopeResource):  # type: ignore[no-untyped-def]
    """Load every new or changed file in the landing folder; already-loaded content is skipped."""
    landing = Path(sloscope.landing)
    landing.mkdir(parents=True, exist_ok=True)
    with sloscope.connect() as con:
        report = ingest_paths(
            con,
            [landing],
            max_clock_skew_seconds=sloscope.max_clock_skew_seconds,
            max_latency_ms=sloscope.max_latency_ms,
        )
        events, counts, quarantined = con.execute(sqlfiles.sql("ingest_table_sizes")).fetchall()[0]
        recent = con.execute(sqlfiles.sql("latest_quarantine")).fetchall()
    for failure in (f for f in report.files if f.status == "failed"):
        context.log.error(failure.message)
    files = [
        (
            Path(f.path).name,
            f.status,
            f.schema_kind or "",
            f.rows_read,
            f.rows_loaded,
            f.rows_quarantined,
            f.message,
        )
        for f in report.files
        if f.status != "skipped"
    ]
    run_figures = {
        "files_loaded": report.count("loaded"),
        "files_skipped": report.count("skipped"),
        "files_failed": report.count("failed"),
        "rows_read": report.rows_read,
        "rows_loaded": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
    }
    files_md = markdown_table(("file", "status", "schema", "read", "loaded", "quarantined", "note"), files)
    yield MaterializeResult(
        asset_key="raw_events",
        metadata={"dagster/row_count": events, **run_figures, "files_this_run": MetadataValue.md(files_md)},
    )
    yield MaterializeResult(asset_key="raw_counts", metadata={"dagster/row_count": counts, **run_figures})
    yield MaterializeResult(
        asset_key="quarantine",
        metadata={
            "dagster/row_count": quarantined,
            "rows_quarantined_this_run": report.rows_quarantined,
            "latest": MetadataValue.md(
                markdown_table(("file", "row", "reason"), [(Path(p).name, r, why) for p, r, why in recent])
            ),
        },
    )

"""Group ``sli``: 1-minute SLI aggregates with hourly and daily rollups, refreshed incrementally."""

from dagster import AssetKey, AssetSpec, MaterializeResult, multi_asset

from pipelines import sqlfiles
from pipelines.resources import SloscopeResource
from pipelines.warehouse import query_frame
from pipelines.workflows import refresh

_DESCRIPTIONS = {
    "sli_counts": "Requests per bucket by service, operation, status code and success (exact).",
    "sli_threshold": "Exact counts of requests at or under / under each SLO latency threshold.",
    "latency_histogram": "Mergeable log-bucket latency histogram (percentiles within 1%).",
}
SLI_TABLES = [f"{family}_{grain}" for family in _DESCRIPTIONS for grain in ("minute", "hour", "day")]
_UPSTREAM = [AssetKey("raw_events"), AssetKey("raw_counts"), AssetKey("slo_definitions")]


@multi_asset(
    specs=[
        AssetSpec(
            table,
            group_name="sli",
            kinds={"duckdb"},
            deps=_UPSTREAM,
            description=f"{_DESCRIPTIONS[table.rsplit('_', 1)[0]]} Grain: {table.rsplit('_', 1)[1]}.",
        )
        for table in SLI_TABLES
    ]
)
def sli_aggregates(sloscope: SloscopeResource):  # type: ignore[no-untyped-def]
    """Recompute the minutes touched by newly loaded files, and the hours and days containing them."""
    slos = sloscope.load_slos()
    with sloscope.connect() as con:
        report = refresh(con, slos)
        sizes = query_frame(con, sqlfiles.sql("sli_table_sizes")).row(0, named=True)
    for table in SLI_TABLES:
        yield MaterializeResult(
            asset_key=table,
            metadata={
                "dagster/row_count": sizes[table],
                "ranges_recomputed": len(report.ranges),
                "minutes_recomputed": report.minutes_recomputed,
                "thresholds_rebuilt": report.thresholds_changed,
            },
        )

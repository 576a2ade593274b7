"""Group ``sli``: 1-minute SLI aggregates with hourly and daily rollups, refreshed incrementally."""

from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionsDefinition,
    multi_asset,
)

from assets.reports import monthly_partitions, quarterly_partitions
from pipelines import sqlfiles
from pipelines.late_data import Period, pending_file, refresh_and_mark
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.warehouse import query_frame
from pipelines.workflows import refresh

_DESCRIPTIONS = {
    "sli_counts": "Requests per bucket by service, operation, status code and success (exact).",
    "sli_threshold": "Exact counts of requests at or under / under each SLO latency threshold.",
    "latency_histogram": "Mergeable log-bucket latency histogram (percentiles within 1%).",
}
SLI_TABLES = [f"{family}_{grain}" for family in _DESCRIPTIONS for grain in ("minute", "hour", "day")]
_UPSTREAM = [AssetKey("raw_events"), AssetKey("raw_counts"), AssetKey("slo_definitions")]
_PERIODS = {"monthly": monthly_partitions, "quarterly": quarterly_partitions}


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def report_periods(partitions: TimeWindowPartitionsDefinition, now: datetime | None = None) -> list[Period]:
    """The complete periods of a period report's partitions (the running one is not a partition yet)."""
    periods = []
    for key in partitions.get_partition_keys(current_time=now):
        window = partitions.time_window_for_partition_key(key)
        periods.append(Period(key, _naive_utc(window.start), _naive_utc(window.end)))
    return periods


@multi_asset(
    pool=DUCKDB_POOL,
    specs=[
        AssetSpec(
            table,
            group_name="sli",
            kinds={"duckdb"},
            deps=_UPSTREAM,
            description=f"{_DESCRIPTIONS[table.rsplit('_', 1)[0]]} Grain: {table.rsplit('_', 1)[1]}.",
        )
        for table in SLI_TABLES
    ],
)
def sli_aggregates(context: AssetExecutionContext, sloscope: SloscopeResource):  # type: ignore[no-untyped-def]
    """Recompute the minutes touched by newly loaded files, and the hours and days containing them; leave
    the history days and period reports late data made stale for the late-data sensor."""
    slos = sloscope.load_slos()
    periods = {kind: report_periods(partitions) for kind, partitions in _PERIODS.items()}
    pending = pending_file(Path(sloscope.warehouse))
    with sloscope.connect() as con:
        # Marked while the warehouse is held: no other refresh journals or settles meanwhile.
        report, late = refresh_and_mark(con, slos, pending, periods, lambda: refresh(con, slos))
        sizes = query_frame(con, sqlfiles.sql("sli_table_sizes")).row(0, named=True)
    for note in report.notes:
        context.log.warning(note)
    stale_days = {day.isoformat(): [s.name for s in chosen] for day, chosen in late.history.items()}
    late_metadata = {
        "late_data": f"{len(stale_days)} history days stale",
        "stale_history_days": MetadataValue.json(stale_days),
        "stale_reports": MetadataValue.json({kind: sorted(stale) for kind, stale in late.periods.items()}),
    }
    for table in SLI_TABLES:
        yield MaterializeResult(
            asset_key=table,
            metadata={
                "dagster/row_count": sizes[table],
                "ranges_recomputed": len(report.ranges),
                "minutes_recomputed": report.minutes_recomputed,
                "thresholds_rebuilt": report.thresholds_changed,
                "thresholds_added": ", ".join(f"{s} {t:g} ms" for s, t in report.thresholds_added) or "none",
                "thresholds_removed": ", ".join(f"{s} {t:g} ms" for s, t in report.thresholds_removed)
                or "none",
                "threshold_gaps": len(report.threshold_gaps),
                "notes": MetadataValue.md("\n".join(f"- {n}" for n in report.notes) or "none"),
                "dirty_minutes_skipped": len(report.skipped),
                **late_metadata,
            },
        )

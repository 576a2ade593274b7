"""Group ``history``: SLO status per day, as daily partitions, for compliance over any month or quarter."""

from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from pipelines.late_data import PendingFileError, clear_history_day, history_token, pending_file
from pipelines.markdown import markdown_table
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.settings import load_settings
from pipelines.workflows import store_history

history_partitions = DailyPartitionsDefinition(start_date=load_settings().history_start, timezone="UTC")


@asset(
    pool=DUCKDB_POOL,
    group_name="history",
    kinds={"duckdb"},
    partitions_def=history_partitions,
    deps=[AssetKey("sli_counts_minute"), AssetKey("sli_threshold_minute"), AssetKey("slo_definitions")],
)
def slo_history(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """Every SLO objective evaluated as of the end of the partition's UTC day (table slo_history)."""
    day = context.partition_time_window.start.date()
    slos = sloscope.load_slos()
    pending = pending_file(Path(sloscope.warehouse))
    try:
        # Read before the warehouse: late data marked stale after this point stays pending.
        token = history_token(pending, day)
    except PendingFileError as exc:
        context.log.warning(f"late data: {exc}; the day is recomputed, the file left as it is")
        token = None
    with sloscope.connect() as con:
        results = store_history(
            con, slos, day, at_risk_remaining=sloscope.at_risk_remaining, policies=sloscope.load_policies()
        )
    cleared = clear_history_day(pending, day, token)
    rows = [
        (
            r.slo,
            r.objective,
            "—" if r.sli is None else f"{r.sli:.4%}",
            "—" if r.budget_remaining is None else f"{r.budget_remaining:.1%}",
            r.status,
        )
        for r in results
    ]
    return MaterializeResult(
        metadata={
            "day": day.isoformat(),
            "objectives": len(results),
            "breached": sum(1 for r in results if r.status == "breached"),
            "late_data_cleared": cleared,
            "status": MetadataValue.md(
                markdown_table(("SLO", "objective", "SLI", "budget left", "status"), rows)
            ),
        }
    )

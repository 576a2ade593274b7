"""Group ``scaleout``: SLI minute tables built per day from a Hive-partitioned Parquet lake, in parallel,
then loaded into the warehouse by one writer (docs/scale-out.md; the domain code is
``pipelines/parquet_lake.py``).

``sli_minute_lake`` is daily-partitioned and never opens the warehouse: any number of its partitions run
at once (a backfill's runs, the multiprocess, Kubernetes or Celery executors). ``sli_lake_load`` is the
single DuckDB writer, in the ``duckdb_writer`` pool.
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    ConfigurableResource,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from pipelines.markdown import markdown_table
from pipelines.parquet_lake import LAKE_TABLES, Lake, build_day, lake_root, load_days
from pipelines.resources import SloscopeResource
from pipelines.settings import REPO_ROOT, load_settings
from pipelines.slo.spec import thresholds_of

# The same first day as the history partitions; the running day is a partition too (end_offset=1), so
# today's data can be built while it arrives and rebuilt once it is complete.
lake_partitions = DailyPartitionsDefinition(
    start_date=load_settings().history_start, timezone="UTC", end_offset=1
)


class LakeResource(ConfigurableResource):
    """The lake root: a folder or ``s3://bucket/prefix`` (credentials from the environment only)."""

    root: str

    @classmethod
    def from_env(cls) -> "LakeResource":
        """``SLOSCOPE_LAKE``, else ``data/lake`` in the repository."""
        return cls(root=lake_root(default=REPO_ROOT / "data" / "lake"))

    def lake(self) -> Lake:
        return Lake(self.root)


@asset(
    group_name="scaleout",
    kinds={"duckdb", "parquet"},
    partitions_def=lake_partitions,
    deps=[AssetKey("slo_definitions")],
)
def sli_minute_lake(
    context: AssetExecutionContext, lake: LakeResource, sloscope: SloscopeResource
) -> MaterializeResult:
    """One day's 1-minute SLI tables and quarantine, from that day's raw Parquet, written to the lake."""
    day = context.partition_time_window.start.date()
    result = build_day(
        lake.lake(),
        day,
        thresholds_of(sloscope.load_slos()),
        max_clock_skew_seconds=sloscope.max_clock_skew_seconds,
    )
    if result.files_failed:
        context.log.warning(f"{day}: {result.files_failed} raw files could not be read (see the quarantine)")
    return MaterializeResult(
        metadata={
            "day": day.isoformat(),
            "files": result.files,
            "files_failed": result.files_failed,
            "rows_read": result.rows_read,
            "rows_loaded": result.rows_loaded,
            "rows_quarantined": result.rows_quarantined,
            "dagster/row_count": sum(result.table_rows.values()),
            "token": result.token,
            "pid": result.pid,
            "tables": MetadataValue.md(markdown_table(("table", "rows"), sorted(result.table_rows.items()))),
        }
    )


@asset(
    group_name="scaleout",
    kinds={"duckdb"},
    deps=[sli_minute_lake],
    pool="duckdb_writer",
)
def sli_lake_load(lake: LakeResource, sloscope: SloscopeResource) -> MaterializeResult:
    """Lake days built since the last load, copied into the warehouse minute tables and rolled up."""
    with sloscope.connect() as con:
        report = load_days(con, lake.lake())
    return MaterializeResult(
        metadata={
            "days_loaded": len(report.loaded),
            "days_unchanged": len(report.unchanged),
            "loaded": ", ".join(d.isoformat() for d in report.loaded) or "none",
            "dagster/row_count": sum(report.rows.values()),
            "rows": MetadataValue.md(
                markdown_table(("table", "rows inserted"), [(t, report.rows.get(t, 0)) for t in LAKE_TABLES])
            ),
        }
    )


SCALEOUT_ASSETS = [sli_minute_lake, sli_lake_load]

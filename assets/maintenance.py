"""Group ``maintenance``: retention, deleting what each warehouse tier no longer keeps."""

from datetime import UTC, datetime

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from pipelines.markdown import markdown_table
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.slo.retention import (
    TIER_FILES,
    RetentionReport,
    apply_retention,
    slo_spans,
    tier_tables,
    window_problems,
)
from pipelines.workflows import utc_now

# Where a scheduled run finds its tick. Dagster 1.13's scheduler writes the hidden
# ``.dagster/scheduled_execution_time`` (dagster._core.storage.tags.SCHEDULED_EXECUTION_TIME_TAG); the
# visible spelling is accepted too, for a run launched with the tag set by hand.
SCHEDULED_TIME_TAGS = (".dagster/scheduled_execution_time", "dagster/scheduled_execution_time")


def run_moment(tags: dict[str, str]) -> datetime:
    """The scheduled tick when the run has one (naive UTC), else the wall clock: a re-run of a tick cuts
    at the same place as the tick itself."""
    for tag in SCHEDULED_TIME_TAGS:
        if tags.get(tag):
            moment = datetime.fromisoformat(tags[tag])
            return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return utc_now()


def _day(moment: datetime | None) -> str:
    return "forever" if moment is None else f"{moment:%Y-%m-%d}"


def _tier_rows(report: RetentionReport) -> list[tuple[str, str, str, str, int]]:
    return [
        (
            tier,
            _day(report.requested[tier]),
            _day(report.cutoffs[tier]),
            ", ".join(f"{table} {report.deleted[table]}" for table in tables),
            sum(report.deleted[table] for table in tables),
        )
        for tier, tables in tier_tables().items()
    ]


@asset(
    pool=DUCKDB_POOL,
    group_name="maintenance",
    kinds={"duckdb"},
    deps=[
        AssetKey("raw_events"),
        AssetKey("raw_counts"),
        AssetKey("quarantine"),
        AssetKey("sli_counts_minute"),
        AssetKey("sli_counts_hour"),
        AssetKey("sli_counts_day"),
    ],
)
def retention(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """Deletes rows each tier keeps no longer ([retention]), never data not yet rolled up; records cutoffs."""
    policy = sloscope.retention_policy()
    now = run_moment(context.run.tags)
    windows = slo_spans(sloscope.load_slos(), now)
    problems = window_problems(policy, windows)
    for problem in problems:
        context.log.warning(f"{problem}: its evaluation would count less than its window")
    with sloscope.connect() as con:
        report = apply_retention(con, policy, now=now)
    for note in report.protections:
        context.log.info(note)
    context.log.info(
        f"retention as of {report.now:%Y-%m-%d %H:%M} UTC deleted {report.total_deleted} rows: "
        + ", ".join(f"{tier} {n}" for tier, n in report.deleted_by_tier().items())
    )
    table = markdown_table(
        ("tier", "policy cutoff", "cutoff used", "rows deleted per table", "rows deleted"),
        _tier_rows(report),
    )
    return MaterializeResult(
        metadata={
            **report.as_metadata(),
            "now": report.now.isoformat(),
            **{f"deleted_tier_{tier}": n for tier, n in report.deleted_by_tier().items()},
            **{
                f"watermark_{tier}": report.watermarks[tier].isoformat()
                for tier in TIER_FILES
                if tier in report.watermarks
            },
            "tiers": MetadataValue.md(table),
            "window_problems": len(problems),
            "window_warnings": MetadataValue.md(
                "\n".join(f"- {p}" for p in problems) or "Every SLO window fits in minute retention."
            ),
        }
    )

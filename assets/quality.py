"""Data-quality asset checks. The blocking ones stop downstream assets when the data is wrong.

Great Expectations suites (``pipelines.slo.quality``) run on the counts tables; raw events are checked
with one exact SQL pass, because copying millions of rows into pandas for GX costs more than the check.
"""

from datetime import timedelta
from pathlib import Path

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue, asset_check

from pipelines import sqlfiles
from pipelines.markdown import markdown_table
from pipelines.resources import SloscopeResource
from pipelines.warehouse import query_frame
from pipelines.workflows import utc_now

QUARANTINE_WARN_SHARE = 0.01


def _suite_result(outcome) -> AssetCheckResult:  # type: ignore[no-untyped-def]
    return AssetCheckResult(
        passed=outcome.success,
        metadata={
            "rows_checked": outcome.rows_checked,
            "failed_expectations": len(outcome.failures()),
            "expectations": MetadataValue.md(outcome.as_markdown()),
        },
    )


@asset_check(asset="raw_counts", blocking=True)
def raw_counts_expectations(sloscope: SloscopeResource) -> AssetCheckResult:
    """GX suite: required columns, non-negative counts, good <= total, timestamps present and not future."""
    from pipelines.slo.quality import validate_raw_counts

    with sloscope.connect() as con:
        frame = query_frame(con, sqlfiles.sql("read_raw_counts"))
    return _suite_result(
        validate_raw_counts(frame, utc_now() + timedelta(seconds=sloscope.max_clock_skew_seconds))
    )


@asset_check(asset="sli_counts_hour", blocking=True)
def sli_counts_hour_expectations(sloscope: SloscopeResource) -> AssetCheckResult:
    """GX suite on the hourly rollup: columns, requests >= 0, latency_count <= requests, no future buckets."""
    from pipelines.slo.quality import validate_sli_counts_hour

    with sloscope.connect() as con:
        frame = query_frame(con, sqlfiles.sql("read_sli_counts_hour"))
    return _suite_result(validate_sli_counts_hour(frame, utc_now()))


@asset_check(asset="raw_events", blocking=True)
def raw_events_valid(sloscope: SloscopeResource) -> AssetCheckResult:
    """Timestamps present and not future, a service, latency >= 0, statuses 100-599, an outcome."""
    with sloscope.connect() as con:
        query = sqlfiles.sql("check_raw_events")
        latest = utc_now() + timedelta(seconds=sloscope.max_clock_skew_seconds)
        row = query_frame(con, query, {"latest_allowed": latest}).row(0, named=True)
    problems = {k: v for k, v in row.items() if k != "rows_checked" and v}
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "rows_checked": row["rows_checked"],
            **{k: int(v) for k, v in row.items() if k != "rows_checked"},
        },
    )


@asset_check(asset="sli_counts_day", blocking=True)
def sli_rollups_consistent(sloscope: SloscopeResource) -> AssetCheckResult:
    """Hourly and daily request totals equal the sum of the minutes, per service."""
    with sloscope.connect() as con:
        mismatches = con.execute(sqlfiles.sql("check_rollups")).fetchall()
    return AssetCheckResult(
        passed=not mismatches,
        metadata={
            "mismatched_services": len(mismatches),
            "mismatches": MetadataValue.md(
                markdown_table(("service", "minutes", "hours", "days"), mismatches)
            ),
        },
    )


@asset_check(asset="raw_events")
def landing_files_readable(sloscope: SloscopeResource) -> AssetCheckResult:
    """Every landed file could be opened (a truncated Parquet file is listed here until it is replaced)."""
    with sloscope.connect() as con:
        failed = con.execute(sqlfiles.sql("check_failed_files")).fetchall()
    return AssetCheckResult(
        passed=not failed,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "unreadable_files": len(failed),
            "files": MetadataValue.md(
                markdown_table(("file", "error"), [(Path(p).name, e) for p, e in failed])
            ),
        },
    )


@asset_check(asset="quarantine")
def quarantine_share(sloscope: SloscopeResource) -> AssetCheckResult:
    """Warns when more than 1% of the rows read were quarantined: a source is probably sending bad data."""
    with sloscope.connect() as con:
        read, quarantined = con.execute(sqlfiles.sql("check_quarantine_share")).fetchall()[0]
    share = quarantined / read if read else 0.0
    return AssetCheckResult(
        passed=share <= QUARANTINE_WARN_SHARE,
        severity=AssetCheckSeverity.WARN,
        metadata={"rows_read": int(read), "rows_quarantined": int(quarantined), "share": float(share)},
    )


@asset_check(asset="slo_alerts")
def no_pages_firing(sloscope: SloscopeResource) -> AssetCheckResult:
    """Warns while any page-severity burn-rate rule fires (the SLO budget is burning fast right now)."""
    with sloscope.connect() as con:
        firing = con.execute(sqlfiles.sql("pages_firing")).fetchall()
    return AssetCheckResult(
        passed=not firing,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "pages_firing": len(firing),
            "firing": MetadataValue.md(markdown_table(("SLO", "objective", "windows"), firing)),
        },
    )


ALL_CHECKS = [
    raw_counts_expectations,
    sli_counts_hour_expectations,
    raw_events_valid,
    sli_rollups_consistent,
    landing_files_readable,
    quarantine_share,
    no_pages_firing,
]

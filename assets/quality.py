"""Data-quality asset checks. The blocking ones stop downstream assets when the data is wrong.

Dagster skips the assets downstream of a check only when the check is ``blocking`` *and* fails with
ERROR severity; a failed WARN check is shown and the run goes on (``tests/test_checks_block.py``).

- accuracy: Great Expectations suites (``pipelines.slo.quality``) on the counts tables; raw events are
  checked with one exact SQL pass (copying millions of rows into pandas for GX costs more than the check),
  with a sample of the offending rows (file and row) when it fails.
- completeness and timeliness: figures per series computed in SQL (``sql/quality_*.sql``), judged by a GX
  suite against the ``[quality]`` settings; severity from the settings.
- consistency: rollups equal the sums of their minutes (``sql/check_rollups.sql``).
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    asset_check,
    multi_asset_check,
)

from pipelines import sqlfiles
from pipelines.markdown import markdown_table
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.warehouse import query_frame
from pipelines.workflows import utc_now

QUARANTINE_WARN_SHARE = 0.01
# Completeness of event and ratio series: a run of empty minutes is missing data when the series' rate
# around it would have put at least this many rows into it (sql/quality_completeness.sql explains).
MIN_EXPECTED_ROWS = 20
RATE_MINUTES = 60
# Rows listed in metadata (gaps, sample rows): enough to act on, short enough to read.
MAX_LISTED = 20
# Which source tables each Dagster asset's completeness and freshness results judge.
_SOURCES_OF_ASSET = {"raw_events": ("events", "ratios"), "raw_counts": ("counts",)}


def _suite_result(outcome) -> AssetCheckResult:  # type: ignore[no-untyped-def]
    failed, total = len(outcome.failures()), len(outcome.outcomes)
    return AssetCheckResult(
        passed=outcome.success,
        metadata={
            "rows_checked": outcome.rows_checked,
            "failed_expectations": failed,
            "expectations": MetadataValue.md(outcome.as_markdown()),
            "summary": f"{failed} of {total} expectations failed, {outcome.rows_checked:,} rows",
        },
    )


def _severity(setting: str) -> AssetCheckSeverity:
    return AssetCheckSeverity.WARN if setting == "warn" else AssetCheckSeverity.ERROR


def _capped(rows: list[Any], total: int) -> list[Any]:
    """The first MAX_LISTED rows, and a last row saying how many more there are."""
    shown = rows[:MAX_LISTED]
    if total > len(shown):
        width = len(shown[0]) if shown else 1
        shown = [*shown, (f"… {total - len(shown)} more", *([""] * (width - 1)))]
    return shown


def _pct(share: float) -> str:
    return f"{share:.2%}"


@asset_check(pool=DUCKDB_POOL, asset="raw_counts", blocking=True)
def raw_counts_expectations(sloscope: SloscopeResource) -> AssetCheckResult:
    """GX suite: required columns, non-negative counts, good <= total, timestamps present and not future."""
    from pipelines.slo.quality import validate_raw_counts

    with sloscope.connect() as con:
        frame = query_frame(con, sqlfiles.sql("read_raw_counts"))
    return _suite_result(
        validate_raw_counts(frame, utc_now() + timedelta(seconds=sloscope.max_clock_skew_seconds))
    )


@asset_check(pool=DUCKDB_POOL, asset="sli_counts_hour", blocking=True)
def sli_counts_hour_expectations(sloscope: SloscopeResource) -> AssetCheckResult:
    """GX suite on the hourly rollup: columns, requests >= 0, latency_count <= requests, no future buckets."""
    from pipelines.slo.quality import validate_sli_counts_hour

    with sloscope.connect() as con:
        frame = query_frame(con, sqlfiles.sql("read_sli_counts_hour"))
    return _suite_result(validate_sli_counts_hour(frame, utc_now()))


@asset_check(pool=DUCKDB_POOL, asset="raw_events", blocking=True)
def raw_events_valid(sloscope: SloscopeResource) -> AssetCheckResult:
    """Timestamps present and not future, a service, 0 <= latency <= max, statuses 100-599, an outcome."""
    params = {
        "latest_allowed": utc_now() + timedelta(seconds=sloscope.max_clock_skew_seconds),
        "max_latency_ms": float(sloscope.max_latency_ms),
    }
    with sloscope.connect() as con:
        row = query_frame(con, sqlfiles.sql("check_raw_events"), params).row(0, named=True)
        problems = {k: int(v) for k, v in row.items() if k != "rows_checked" and v}
        samples = (
            con.execute(sqlfiles.sql("check_raw_events_samples"), {**params, "limit": MAX_LISTED}).fetchall()
            if problems
            else []
        )
    sample_rows = [
        (Path(file).name, source_row, ts, service, operation, status, latency, problem)
        for file, source_row, ts, service, operation, status, latency, problem in samples
    ]
    return AssetCheckResult(
        passed=not problems,
        metadata={
            "rows_checked": row["rows_checked"],
            **{k: int(v) for k, v in row.items() if k != "rows_checked"},
            "max_latency_ms": float(sloscope.max_latency_ms),
            "offending_rows": MetadataValue.md(
                markdown_table(
                    ("file", "row", "ts", "service", "operation", "status", "latency_ms", "problem"),
                    sample_rows,
                )
            ),
            "summary": (
                ", ".join(f"{k} {v:,}" for k, v in problems.items())
                if problems
                else f"{row['rows_checked']:,} rows valid"
            ),
        },
    )


@multi_asset_check(
    pool=DUCKDB_POOL,
    specs=[
        AssetCheckSpec(
            "minutes_complete",
            asset=asset,
            blocking=True,
            description=f"Expected 1-minute buckets present per service ({', '.join(sources)} sources).",
        )
        for asset, sources in _SOURCES_OF_ASSET.items()
    ],
)
def minutes_complete(sloscope: SloscopeResource):  # type: ignore[no-untyped-def]
    """Completeness: per series, the share of its expected 1-minute buckets that hold no data.

    Judged over the last ``completeness_hours`` of the series' own data, ending at its newest minute (data
    that stopped arriving is the freshness check's finding, not a gap). A *series* is a service's rows in
    one source table. Expected minutes:

    - counts (``raw_counts``): every minute. A counter export writes a row per operation every interval,
      even when nothing happened, so an empty minute is lost data. The interval is the series' cadence
      (its most common spacing between minutes with data): 1 for a per-minute export, 5 for a Prometheus
      pull with a 5-minute step, whose 4 empty minutes between buckets are expected.
    - events (``raw_events``) and ratios (``raw_ratios``): a source that saw no request writes nothing, so
      a quiet service's empty minutes are legitimate. A run of k empty minutes is missing data when the
      series' rate next to it (the lower of the rows per minute in the hour before and the hour after)
      times k is at least MIN_EXPECTED_ROWS (20): seeing none of 20 expected rows by chance has a
      probability of e^-20. Other empty minutes are quiet and not expected.

    missing share = missing minutes / (minutes with data x cadence + missing minutes); the GX suite fails
    a series whose share exceeds ``completeness_tolerance``. The gaps (runs with missing minutes) are
    listed longest first.
    """
    from pipelines.slo.quality import validate_completeness

    with sloscope.connect() as con:
        frame = query_frame(
            con,
            sqlfiles.sql("quality_completeness"),
            {
                "window_minutes": sloscope.completeness_hours * 60,
                "rate_minutes": RATE_MINUTES,
                "min_expected_rows": MIN_EXPECTED_ROWS,
            },
        )
    severity = _severity(sloscope.completeness_severity)
    for asset, sources in _SOURCES_OF_ASSET.items():
        series = frame.filter(pl.col("source").is_in(sources))
        outcome = validate_completeness(series.drop("gaps"), sloscope.completeness_tolerance)
        yield AssetCheckResult(
            asset_key=asset,
            check_name="minutes_complete",
            passed=outcome.success,
            severity=severity,
            metadata=_completeness_metadata(series, outcome, sloscope),
        )


def _completeness_metadata(series: pl.DataFrame, outcome: Any, sloscope: SloscopeResource) -> dict[str, Any]:
    tolerance = sloscope.completeness_tolerance
    rows = series.to_dicts()
    failing = [r for r in rows if r["missing_share"] > tolerance]
    gaps = sorted(
        (
            (r["service"], r["source"], g["gap_start"], g["gap_end"], g["minutes"])
            for r in rows
            for g in r["gaps"]
        ),
        key=lambda gap: (-gap[4], gap[2], gap[0]),
    )
    worst = max(rows, key=lambda r: r["missing_share"], default=None)
    return {
        "series_checked": len(rows),
        "series_failing": len(failing),
        "worst_missing_share": float(worst["missing_share"]) if worst else 0.0,
        "tolerance": float(tolerance),
        "window_hours": sloscope.completeness_hours,
        "gaps_found": len(gaps),
        "missing_minutes": int(sum(r["missing_minutes"] for r in rows)),
        "series": MetadataValue.md(
            markdown_table(
                (
                    "service",
                    "source",
                    "window (UTC)",
                    "cadence min",
                    "expected min",
                    "missing min",
                    "quiet min",
                    "missing",
                    "result",
                ),
                [
                    (
                        r["service"],
                        r["source"],
                        f"{r['window_start']:%Y-%m-%d %H:%M} – {r['window_end']:%Y-%m-%d %H:%M}",
                        r["cadence_minutes"],
                        f"{r['expected_minutes']:,}",
                        f"{r['missing_minutes']:,}",
                        f"{r['quiet_minutes']:,}",
                        _pct(r["missing_share"]),
                        "**FAIL**" if r["missing_share"] > tolerance else "pass",
                    )
                    for r in rows
                ],
            )
        ),
        "gaps": MetadataValue.md(
            markdown_table(
                ("service", "source", "gap start (UTC)", "gap end (UTC, last minute)", "minutes"),
                _capped(
                    [(s, src, f"{a:%Y-%m-%d %H:%M}", f"{b:%Y-%m-%d %H:%M}", m) for s, src, a, b, m in gaps],
                    len(gaps),
                ),
            )
        ),
        "expectations": MetadataValue.md(outcome.as_markdown()),
        "summary": (
            f"{len(failing)} of {len(rows)} series miss more than {_pct(tolerance)} of their minutes"
            + (
                f"; worst {worst['service']} ({worst['source']}) {_pct(worst['missing_share'])}"
                if worst and worst["missing_share"] > 0
                else ""
            )
        ),
    }


@multi_asset_check(
    pool=DUCKDB_POOL,
    specs=[
        AssetCheckSpec(
            "data_fresh",
            asset=asset,
            blocking=True,
            description=f"Newest data per service no older than the freshness limit ({', '.join(sources)}).",
        )
        for asset, sources in _SOURCES_OF_ASSET.items()
    ],
)
def data_fresh(sloscope: SloscopeResource):  # type: ignore[no-untyped-def]
    """Timeliness: per series, the minutes between its newest row and now, at most ``freshness_minutes``.

    Data time, not materialisation time: a run every minute that loads nothing new is still stale data.
    Severity from the settings, WARN by default: stale data must not stop evaluation, because the
    no-data alert that pages for it is downstream.
    """
    from pipelines.slo.quality import validate_freshness

    now = utc_now()
    with sloscope.connect() as con:
        frame = query_frame(con, sqlfiles.sql("quality_freshness"), {"now": now})
    severity = _severity(sloscope.freshness_severity)
    limit = sloscope.freshness_minutes
    for asset, sources in _SOURCES_OF_ASSET.items():
        series = frame.filter(pl.col("source").is_in(sources))
        outcome = validate_freshness(series, limit)
        rows = series.to_dicts()
        stale = [r for r in rows if r["minutes_behind"] > limit]
        yield AssetCheckResult(
            asset_key=asset,
            check_name="data_fresh",
            passed=outcome.success,
            severity=severity,
            metadata={
                "series_checked": len(rows),
                "stale_series": len(stale),
                "freshness_minutes": limit,
                "max_minutes_behind": float(max((r["minutes_behind"] for r in rows), default=0.0)),
                "checked_at": f"{now:%Y-%m-%d %H:%M:%S} UTC",
                "stale": MetadataValue.md(
                    markdown_table(
                        ("service", "source", "newest (UTC)", "minutes behind"),
                        _capped(
                            [
                                (
                                    r["service"],
                                    r["source"],
                                    f"{r['newest']:%Y-%m-%d %H:%M:%S}",
                                    f"{r['minutes_behind']:,.1f}",
                                )
                                for r in stale
                            ],
                            len(stale),
                        ),
                    )
                ),
                "expectations": MetadataValue.md(outcome.as_markdown()),
                "summary": f"{len(stale)} of {len(rows)} series older than {limit} min"
                + (f"; stalest {stale[0]['service']} {stale[0]['minutes_behind']:,.0f} min" if stale else ""),
            },
        )


@asset_check(pool=DUCKDB_POOL, asset="sli_counts_day", blocking=True)
def sli_rollups_consistent(sloscope: SloscopeResource) -> AssetCheckResult:
    """Hourly and daily request totals equal the sum of the minutes, per service."""
    with sloscope.connect() as con:
        mismatches = con.execute(sqlfiles.sql("check_rollups")).fetchall()
    services = len({row[0] for row in mismatches})
    return AssetCheckResult(
        passed=not mismatches,
        metadata={
            "mismatched_services": services,
            "summary": f"{services} services whose rollups differ from their minutes",
            "mismatches": MetadataValue.md(
                markdown_table(("service", "minutes", "hours", "days"), mismatches)
            ),
        },
    )


@asset_check(pool=DUCKDB_POOL, asset="raw_events")
def landing_files_readable(sloscope: SloscopeResource) -> AssetCheckResult:
    """Every landed file could be opened (a truncated Parquet file is listed here until it is replaced)."""
    with sloscope.connect() as con:
        failed = con.execute(sqlfiles.sql("check_failed_files")).fetchall()
    return AssetCheckResult(
        passed=not failed,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "unreadable_files": len(failed),
            "summary": f"{len(failed)} unreadable files",
            "files": MetadataValue.md(
                markdown_table(("file", "error"), [(Path(p).name, e) for p, e in failed])
            ),
        },
    )


@asset_check(pool=DUCKDB_POOL, asset="quarantine")
def quarantine_share(sloscope: SloscopeResource) -> AssetCheckResult:
    """Warns when more than 1% of the rows read were quarantined: a source is probably sending bad data."""
    with sloscope.connect() as con:
        read, quarantined = con.execute(sqlfiles.sql("check_quarantine_share")).fetchall()[0]
    share = quarantined / read if read else 0.0
    return AssetCheckResult(
        passed=share <= QUARANTINE_WARN_SHARE,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "rows_read": int(read),
            "rows_quarantined": int(quarantined),
            "share": float(share),
            "summary": f"{_pct(share)} of {int(read):,} rows quarantined",
        },
    )


@asset_check(pool=DUCKDB_POOL, asset="slo_alerts")
def no_pages_firing(sloscope: SloscopeResource) -> AssetCheckResult:
    """Warns while any page-severity burn-rate rule fires (the SLO budget is burning fast right now)."""
    with sloscope.connect() as con:
        firing = con.execute(sqlfiles.sql("pages_firing")).fetchall()
    return AssetCheckResult(
        passed=not firing,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "pages_firing": len(firing),
            "summary": f"{len(firing)} page-severity rules firing",
            "firing": MetadataValue.md(markdown_table(("SLO", "objective", "windows"), firing)),
        },
    )


ALL_CHECKS = [
    raw_counts_expectations,
    sli_counts_hour_expectations,
    raw_events_valid,
    minutes_complete,
    data_fresh,
    sli_rollups_consistent,
    landing_files_readable,
    quarantine_share,
    no_pages_firing,
]

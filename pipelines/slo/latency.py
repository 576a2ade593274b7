"""Latency percentiles over any window, from the mergeable histograms.

A window is read from the coarsest tables that tile it exactly (whole days from the daily table, whole
hours from the hourly one, the remaining minutes from the minute table), the bucket counts are summed,
and the percentile is taken from the merged histogram: within 1% of the exact nearest-rank value.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import duckdb

from pipelines import sqlfiles
from pipelines.slo import histogram

_HISTOGRAM_TABLES = {
    "day": "latency_histogram_day",
    "hour": "latency_histogram_hour",
    "minute": "latency_histogram_minute",
}
_STEP = {"day": timedelta(days=1), "hour": timedelta(hours=1)}


def _floor(moment: datetime, grain: str) -> datetime:
    if grain == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil(moment: datetime, grain: str) -> datetime:
    floored = _floor(moment, grain)
    return floored if floored == moment else floored + _STEP[grain]


def grain_spans(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """Disjoint ``(grain, lo, hi)`` spans tiling [start, end) with as few buckets as possible.

    Both ends are taken at the start of their minute (the finest resolution stored).
    """
    lo, hi = start.replace(second=0, microsecond=0), end.replace(second=0, microsecond=0)
    if lo >= hi:
        return []

    def split(lo: datetime, hi: datetime, grains: Sequence[str]) -> list[tuple[str, datetime, datetime]]:
        if lo >= hi:
            return []
        if not grains:
            return [("minute", lo, hi)]
        grain, finer = grains[0], grains[1:]
        inner_lo, inner_hi = _ceil(lo, grain), _floor(hi, grain)
        if inner_lo >= inner_hi:
            return split(lo, hi, finer)
        return [*split(lo, inner_lo, finer), (grain, inner_lo, inner_hi), *split(inner_hi, hi, finer)]

    return split(lo, hi, ("day", "hour"))


def merged_histogram(
    con: duckdb.DuckDBPyConnection,
    services: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    operations: Sequence[str] | None = None,
    success: bool | None = None,
) -> dict[int, int]:
    """Bucket -> count over [start, end) for the services (and operations, and outcome) given."""
    merged: dict[int, int] = {}
    for grain, lo, hi in grain_spans(start, end):
        query = sqlfiles.sql("histogram_window", source=_HISTOGRAM_TABLES[grain])
        params = {
            "start": lo,
            "end": hi,
            "services": list(services),
            "operations": list(operations) if operations else None,
            "success": success,
        }
        for bucket, count in con.execute(query, params).fetchall():
            merged[bucket] = merged.get(bucket, 0) + int(count)
    return merged


def latency_percentiles(
    con: duckdb.DuckDBPyConnection,
    services: Sequence[str],
    start: datetime,
    end: datetime,
    quantiles: Sequence[float] = (0.5, 0.95, 0.99),
    *,
    operations: Sequence[str] | None = None,
    success: bool | None = None,
) -> dict[float, float | None]:
    """Nearest-rank percentiles (ms) of latency in [start, end); None where there were no requests."""
    merged = merged_histogram(con, services, start, end, operations=operations, success=success)
    buckets, counts = list(merged), list(merged.values())
    return {q: histogram.percentile(buckets, counts, q) for q in quantiles}

"""SLI aggregates: exact 1-minute counts, latency-threshold counts and histograms, with hourly and daily
rollups, maintained incrementally.

Ingestion records the minute ranges each file touched (``dirty_ranges``); :func:`refresh_aggregates`
recomputes exactly those minutes from the raw tables (delete, then insert) and the hours and days that
contain them, in one transaction, then clears the ranges. Re-running is idempotent. When the set of
latency thresholds declared by SLOs changes, the threshold tables are rebuilt over all raw data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import polars as pl

from pipelines import sqlfiles
from pipelines.slo import histogram
from pipelines.warehouse import transaction

GRAINS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class AggregateReport:
    ranges: list[tuple[datetime, datetime]]
    thresholds_changed: bool
    minutes_recomputed: int


def merge_ranges(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Union of half-open ranges, as sorted disjoint ranges."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _truncate(moment: datetime, grain: str) -> datetime:
    if grain == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def covering(start: datetime, end: datetime, grain: str) -> tuple[datetime, datetime]:
    """The whole hours or days that contain [start, end)."""
    last = end - timedelta(microseconds=1)
    return _truncate(start, grain), _truncate(last, grain) + GRAINS[grain]


def _recompute(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, *, counts: bool, thresholds: bool
) -> None:
    params = {"start": start, "end": end, **histogram.sql_params()}
    if counts:
        sqlfiles.run(con, "aggregate_minutes", params)
        hour_start, hour_end = covering(start, end, "hour")
        sqlfiles.run(
            con, "aggregate_ratio_minutes", {**params, "hour_start": hour_start, "hour_end": hour_end}
        )
    if thresholds:
        sqlfiles.run(con, "aggregate_threshold_minutes", params)
    for grain, (source_suffix, target_suffix) in (("hour", ("minute", "hour")), ("day", ("hour", "day"))):
        lo, hi = covering(start, end, grain)
        rollup = {"start": lo, "end": hi, "grain": grain}
        if counts:
            sqlfiles.run(
                con,
                "rollup_counts",
                rollup,
                source=f"sli_counts_{source_suffix}",
                target=f"sli_counts_{target_suffix}",
            )
            sqlfiles.run(
                con,
                "rollup_histogram",
                rollup,
                source=f"latency_histogram_{source_suffix}",
                target=f"latency_histogram_{target_suffix}",
            )
        if thresholds:
            sqlfiles.run(
                con,
                "rollup_thresholds",
                rollup,
                source=f"sli_threshold_{source_suffix}",
                target=f"sli_threshold_{target_suffix}",
            )


def _sync_thresholds(con: duckdb.DuckDBPyConnection, wanted: dict[str, set[float]]) -> bool:
    current = {(s, float(t)) for s, t in con.execute(sqlfiles.sql("thresholds_current")).fetchall()}
    target = {(s, float(t)) for s, values in wanted.items() for t in values}
    if current == target:
        return False
    frame = pl.DataFrame(
        {"service": [s for s, _ in sorted(target)], "threshold_ms": [t for _, t in sorted(target)]},
        schema={"service": pl.String, "threshold_ms": pl.Float64},
    )
    con.register("wanted_thresholds", frame)
    try:
        sqlfiles.run(con, "replace_thresholds")
    finally:
        con.unregister("wanted_thresholds")
    return True


def refresh_aggregates(con: duckdb.DuckDBPyConnection, thresholds: dict[str, set[float]]) -> AggregateReport:
    """Bring every aggregate table up to date with the raw tables and the declared thresholds."""
    with transaction(con):
        thresholds_changed = _sync_thresholds(con, thresholds)
        dirty = merge_ranges([(s, e) for s, e in con.execute(sqlfiles.sql("dirty_ranges")).fetchall()])
        minutes = 0
        for start, end in dirty:
            _recompute(con, start, end, counts=True, thresholds=not thresholds_changed)
            minutes += int((end - start).total_seconds() // 60)
        if thresholds_changed:
            # Cleared even when no raw data is left: old threshold rows must not outlive their events.
            sqlfiles.run(con, "clear_threshold_tables")
            lo, hi = con.execute(sqlfiles.sql("raw_time_range")).fetchall()[0]
            if lo is not None:
                _recompute(con, lo, hi, counts=False, thresholds=True)
        sqlfiles.run(con, "clear_dirty_ranges")
    return AggregateReport(dirty, thresholds_changed, minutes)

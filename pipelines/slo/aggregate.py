"""SLI aggregates: exact 1-minute counts, latency-threshold counts and histograms, with hourly and daily
rollups, maintained incrementally.

Ingestion records the minute ranges each file touched (``dirty_ranges``); :func:`refresh_aggregates`
recomputes exactly those minutes from the raw tables (delete, then insert) and the hours and days that
contain them, in one transaction, then clears the ranges. Re-running is idempotent.

When the set of latency thresholds declared by SLOs changes, rows of thresholds no longer declared are
deleted from every grain, and the threshold counts of the raw range (the minutes raw events still cover)
are recomputed for every declared threshold. Rows outside the raw range are kept: retention deletes raw
events long before their aggregates, and those rows could never be rebuilt. A threshold declared after
its service's oldest raw events were deleted therefore has exact counts only from where raw events start;
:class:`ThresholdGap` says so (``AggregateReport.threshold_gaps``).

Dirty minutes before the raw tier's retention watermark are not recomputed: raw rows there were
deleted, so recomputing would replace whole aggregates with partial ones (``AggregateReport.skipped``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import polars as pl

from pipelines import sqlfiles
from pipelines.faults import fault_point
from pipelines.slo import histogram
from pipelines.warehouse import transaction

GRAINS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class ThresholdGap:
    """A declared latency threshold whose exact counts start later than its service's latency data.

    Evaluation reads a threshold's exact counts; an SLO window reaching before ``exact_from`` has no
    exact counts there, so evaluation excludes that time from the SLO's window (an automatic correction,
    ``pipelines.slo.budget.threshold_gap_corrections``) rather than counting it as all slow.
    """

    service: str
    threshold_ms: float
    exact_from: datetime | None  # first UTC day with exact counts; None: no raw events of it kept at all
    history_from: datetime  # first UTC day of the service's latency data (daily histogram)

    def affects(self, window_start: datetime) -> bool:
        """Whether a window starting at ``window_start`` reads minutes without exact counts."""
        return self.exact_from is None or window_start < self.exact_from

    @property
    def note(self) -> str:
        head = f"threshold {self.threshold_ms:g} ms for service {self.service}"
        history = f"latency data of {self.service} goes back to {self.history_from:%Y-%m-%d}"
        if self.exact_from is None:
            return (
                f"{head} has no exact counts: no raw events of {self.service} are kept; SLOs using it "
                f"have no data until new events arrive ({history})"
            )
        return (
            f"{head} has exact counts only from {self.exact_from:%Y-%m-%d}, where raw events start; "
            f"windows reaching before then exclude that time ({history})"
        )


@dataclass(frozen=True)
class AggregateReport:
    ranges: list[tuple[datetime, datetime]]
    thresholds_changed: bool
    minutes_recomputed: int
    thresholds_added: list[tuple[str, float]] = field(default_factory=list)
    thresholds_removed: list[tuple[str, float]] = field(default_factory=list)
    # Every declared threshold whose exact counts start after its service's latency data (not only the
    # ones added by this refresh): shown until the thresholds' history catches up or the SLO changes.
    threshold_gaps: list[ThresholdGap] = field(default_factory=list)
    # Dirty minutes before the raw watermark, left as they were (their raw rows were deleted).
    skipped: list[tuple[datetime, datetime]] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """What an operator should know, in words: threshold gaps, then skipped ranges."""
        skipped = [
            f"dirty minutes {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} lie before the raw retention "
            "watermark and were not recomputed (their raw rows are deleted)"
            for start, end in self.skipped
        ]
        return [gap.note for gap in self.threshold_gaps] + skipped


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


# Raw events per piece a dirty range's 1-minute tables are recomputed in (see chunks).
CHUNK_EVENTS = 1_000_000


def chunks(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, grain: str = "hour"
) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at whole hours (or days) into consecutive pieces of about ``CHUNK_EVENTS`` raw events.

    A latency histogram has nearly as many rows as raw events (a bucket per few events), so one GROUP BY
    over days of events builds a hash table of tens of millions of groups: gigabytes at 100 M events, and
    slower for it. A piece's stays small. Raw events arrive in time order, so each piece reads only its
    own row groups (zone maps on ts). Hours without events never make a piece of their own, so a sparse
    range of months is still a few statements. An hour (or day) with more events than the limit is one
    piece.
    """
    pieces = []
    low, size = start, 0
    for bucket, events in con.execute(
        sqlfiles.sql("aggregate_bucket_sizes"), {"start": start, "end": end, "grain": grain}
    ).fetchall():
        if size and size + events > CHUNK_EVENTS and bucket > low:
            pieces.append((low, bucket))
            low, size = bucket, 0
        size += events
    pieces.append((low, end))
    return pieces


def _recompute(
    con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, *, counts: bool, thresholds: bool
) -> None:
    # Each piece's hours are rolled up right after its minutes, and days in pieces of whole days: one
    # rollup over a month of 2%-bucket histograms is a GROUP BY of ~60 M groups at 100 M events, which
    # spills past the memory limit and took 30 s; a piece's stays small. Pieces end at whole hours, so no
    # hour is rolled up from a partly recomputed piece.
    for low, high in chunks(con, start, end):
        params = {"start": low, "end": high, **histogram.sql_params()}
        if counts:
            sqlfiles.run(con, "aggregate_minutes", params)
        if thresholds:
            sqlfiles.run(con, "aggregate_threshold_minutes", params)
        roll_up(con, "hour", *covering(low, high, "hour"), counts=counts, thresholds=thresholds)
    if counts:
        hour_start, hour_end = covering(start, end, "hour")
        sqlfiles.run(
            con,
            "aggregate_ratio_minutes",
            {"start": start, "end": end, "hour_start": hour_start, "hour_end": hour_end},
        )
    for day_lo, day_hi in chunks(con, *covering(start, end, "day"), grain="day"):
        roll_up(con, "day", day_lo, day_hi, counts=counts, thresholds=thresholds)


# grain -> (source suffix, target suffix) of the rollup tables
_ROLLUP_TIERS = {"hour": ("minute", "hour"), "day": ("hour", "day")}


def roll_up(
    con: duckdb.DuckDBPyConnection,
    grain: str,
    start: datetime,
    end: datetime,
    *,
    counts: bool,
    thresholds: bool,
) -> None:
    """Rebuild the ``grain`` rows of [start, end) (whole hours or days) from the next finer tier: counts and
    histograms with ``counts``, threshold counts with ``thresholds``."""
    source, target = _ROLLUP_TIERS[grain]
    families = [("rollup_counts", "sli_counts"), ("rollup_histogram", "latency_histogram")] if counts else []
    if thresholds:
        families.append(("rollup_thresholds", "sli_threshold"))
    for name, family in families:
        sqlfiles.run(
            con,
            name,
            {"start": start, "end": end, "grain": grain},
            source=f"{family}_{source}",
            target=f"{family}_{target}",
        )


def _sync_thresholds(
    con: duckdb.DuckDBPyConnection, wanted: dict[str, set[float]]
) -> tuple[set[tuple[str, float]], set[tuple[str, float]]]:
    """Make ``sli_thresholds`` the declared set; the (service, threshold) pairs added and removed."""
    current = {(s, float(t)) for s, t in con.execute(sqlfiles.sql("thresholds_current")).fetchall()}
    target = {(s, float(t)) for s, values in wanted.items() for t in values}
    if current == target:
        return set(), set()
    frame = pl.DataFrame(
        {"service": [s for s, _ in sorted(target)], "threshold_ms": [t for _, t in sorted(target)]},
        schema={"service": pl.String, "threshold_ms": pl.Float64},
    )
    con.register("wanted_thresholds", frame)
    try:
        sqlfiles.run(con, "replace_thresholds")
    finally:
        con.unregister("wanted_thresholds")
    return target - current, current - target


def _clamp(
    ranges: list[tuple[datetime, datetime]], floor: datetime | None
) -> tuple[list[tuple[datetime, datetime]], list[tuple[datetime, datetime]]]:
    """(ranges from ``floor`` on, parts before it): minutes before the raw watermark are not recomputed."""
    if floor is None:
        return ranges, []
    kept = [(max(start, floor), end) for start, end in ranges if end > floor]
    skipped = [(start, min(end, floor)) for start, end in ranges if start < floor]
    return kept, skipped


def threshold_gaps(con: duckdb.DuckDBPyConnection) -> list[ThresholdGap]:
    """Declared thresholds whose exact counts start later than their service's latency data."""
    rows = con.execute(sqlfiles.sql("thresholds_gaps")).fetchall()
    return [ThresholdGap(s, float(t), exact, history) for s, t, exact, history in rows]


def refresh_aggregates(con: duckdb.DuckDBPyConnection, thresholds: dict[str, set[float]]) -> AggregateReport:
    """Bring every aggregate table up to date with the raw tables and the declared thresholds."""
    with transaction(con):
        added, removed = _sync_thresholds(con, thresholds)
        thresholds_changed = bool(added or removed)
        fault_point("aggregate.after_sync_thresholds")
        floor = con.execute(sqlfiles.sql("retention_raw_cutoff")).fetchone()[0]  # type: ignore[index]
        dirty, skipped = _clamp(
            merge_ranges([(s, e) for s, e in con.execute(sqlfiles.sql("dirty_ranges")).fetchall()]), floor
        )
        minutes = 0
        for start, end in dirty:
            # Threshold counts too, even when the thresholds changed: rows of superseded raw events in
            # these minutes must go, and the raw range below may not reach them.
            _recompute(con, start, end, counts=True, thresholds=True)
            minutes += int((end - start).total_seconds() // 60)
            fault_point("aggregate.after_range")
        if thresholds_changed:
            # Undeclared thresholds go everywhere; declared ones keep their rows outside the raw range
            # (history whose raw events retention deleted), and the raw range is recomputed for all.
            sqlfiles.run(con, "thresholds_drop_undeclared")
            fault_point("aggregate.after_clear_thresholds")
            lo, hi = con.execute(sqlfiles.sql("raw_time_range")).fetchall()[0]
            if lo is not None:
                _recompute(con, lo, hi, counts=False, thresholds=True)
        fault_point("aggregate.before_clear_dirty")
        sqlfiles.run(con, "clear_dirty_ranges")
        gaps = threshold_gaps(con)
    fault_point("aggregate.after_commit")
    return AggregateReport(dirty, thresholds_changed, minutes, sorted(added), sorted(removed), gaps, skipped)

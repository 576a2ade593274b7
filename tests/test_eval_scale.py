"""Evaluation reads whole days and hours from the rollups: the figures must equal the minute sums exactly.

The warehouse here is filled directly with random 1-minute aggregates (counts and latency-threshold
counts, some status codes NULL, some minutes empty), rolled up with the same SQL aggregation uses. The
reference is the same batched query reading every minute; presence is checked against a count of
distinct minutes taken straight from ``sli_counts_minute``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import sqlfiles
from pipelines.slo.budget import (
    _batched_sums,
    _Window,
    evaluate,
    evaluate_slo,
    grain_ranges,
    presence_by_minute,
    window_ranges,
)
from pipelines.slo.corrections import add_correction, remove_correction
from pipelines.slo.spec import parse_documents
from pipelines.warehouse import connect

START = datetime(2026, 3, 1)
DAYS = 9
SERVICES = ("a", "b", "c")
THRESHOLDS = (100.0, 250.0)

FILTERS = [
    # (good or bad part, total)
    ("good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}", "{service: a}"),
    ("bad: {metricSource: {type: sloscope, spec: {success: false}}}", "{service: [a, b], operation: x}"),
    ("good: {metricSource: {type: sloscope, spec: {latency_ms: {gt: 100, lte: 250}}}}", "{service: b}"),
    ("bad: {metricSource: {type: sloscope, spec: {latency_ms: {gte: 250}}}}", "{service: [b, c]}"),
    ("good: {metricSource: {type: sloscope, spec: {status_code: [200, 404]}}}", "{service: c, operation: y}"),
]


def fill(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """Random minute rows for 3 services x 2 operations x 4 status codes x 2 outcomes, then rollups."""
    rng = np.random.default_rng(seed)
    minutes = DAYS * 1440
    rows = []
    for service in SERVICES:
        # Whole quiet hours and days too, so presence is not always 60 of 60.
        active = rng.random(minutes) < rng.uniform(0.2, 0.9)
        active[rng.integers(0, minutes - 600) :][:300] = False
        for operation in ("x", "y"):
            for status in (200, 404, 500, None):
                for success in (True, False):
                    here = active & (rng.random(minutes) < 0.3)
                    index = np.flatnonzero(here)
                    requests = rng.integers(1, 60, len(index))
                    latency = requests - rng.integers(0, 2, len(index)) * (requests > 1)
                    rows.append(
                        pl.DataFrame(
                            {
                                "bucket_start": [START + timedelta(minutes=int(i)) for i in index],
                                "service": service,
                                "operation": operation,
                                "status_code": status,
                                "success": success,
                                "requests": requests,
                                "latency_count": latency,
                            },
                            schema_overrides={"status_code": pl.Int16},
                        )
                    )
    counts = pl.concat(rows)
    con.register("fill_counts", counts)
    con.execute("INSERT INTO sli_counts_minute SELECT * FROM fill_counts")
    # Per row, the shares at or below each threshold grow with the threshold (as real latencies do).
    latency = counts["latency_count"].to_numpy()
    shares = np.sort(rng.uniform(0, 1, (counts.height, len(THRESHOLDS))), axis=1)
    for column, threshold in enumerate(THRESHOLDS):
        le = (latency * shares[:, column]).astype(np.int64)
        lt = le - (rng.random(counts.height) < 0.2).astype(np.int64) * (le > 0)
        con.register(
            "fill_thresholds",
            counts.select("bucket_start", "service", "operation", "status_code", "success").with_columns(
                threshold_ms=pl.lit(threshold), le_count=le, lt_count=lt
            ),
        )
        con.execute("INSERT INTO sli_threshold_minute SELECT * FROM fill_thresholds")
        con.execute("INSERT INTO sli_thresholds SELECT unnest($s), $t", {"s": list(SERVICES), "t": threshold})
    end = START + timedelta(days=DAYS)
    for grain, source, target in (("hour", "minute", "hour"), ("day", "hour", "day")):
        params = {"start": START, "end": end, "grain": grain}
        for sql_file, table in (("rollup_counts", "sli_counts"), ("rollup_thresholds", "sli_threshold")):
            sqlfiles.run(con, sql_file, params, source=f"{table}_{source}", target=f"{table}_{target}")


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(tmp_path_factory.mktemp("scale") / "warehouse.duckdb")
    fill(con, seed=8)
    yield con
    con.close()


def slo_docs(windows: list[str], methods: dict[int, tuple[str, str]] | None = None) -> str:
    """One SLO per window, cycling through FILTERS; ``methods``: SLO number -> (method, objective)."""
    docs = []
    for i, window in enumerate(windows):
        part, total = FILTERS[i % len(FILTERS)]
        method, objective = (methods or {}).get(i, ("Occurrences", "target: 0.9"))
        docs.append(f"""apiVersion: openslo/v1
kind: SLO
metadata: {{name: s{i}}}
spec:
  service: a
  indicator:
    spec:
      ratioMetric:
        {part}
        total: {{metricSource: {{type: sloscope, spec: {total}}}}}
  timeWindow: [{window}]
  budgetingMethod: {method}
  objectives: [{{displayName: o, {objective}}}]
""")
    return "---\n".join(docs)


def test_rollups_are_exact_sums_of_minutes(filled: duckdb.DuckDBPyConnection) -> None:
    # The premise: the hour and day tiers hold the same totals as the minutes.
    for table in ("sli_counts", "sli_threshold"):
        column = "requests" if table == "sli_counts" else "le_count"
        sums = [
            filled.execute(f"SELECT sum({column}) FROM {table}_{grain}").fetchone()[0]
            for grain in ("minute", "hour", "day")
        ]
        assert sums[0] == sums[1] == sums[2] and sums[0] > 0


def test_grain_ranges_by_hand() -> None:
    # [Mar 1 10:37, Mar 4 10:37): 23 minutes to 11:00, 13 hours to midnight, 2 whole days (2 and 3 March),
    # 10 hours to 10:00 on the 4th, then 37 minutes.
    day = datetime(2026, 3, 1)
    assert grain_ranges(day.replace(hour=10, minute=37), datetime(2026, 3, 4, 10, 37)) == [
        ("minute", datetime(2026, 3, 1, 10, 37), datetime(2026, 3, 1, 11)),
        ("hour", datetime(2026, 3, 1, 11), datetime(2026, 3, 2)),
        ("day", datetime(2026, 3, 2), datetime(2026, 3, 4)),
        ("hour", datetime(2026, 3, 4), datetime(2026, 3, 4, 10)),
        ("minute", datetime(2026, 3, 4, 10), datetime(2026, 3, 4, 10, 37)),
    ]
    # Inside one hour: minutes only; across one hour boundary without a whole hour: minutes only.
    assert grain_ranges(day.replace(minute=5), day.replace(minute=50)) == [
        ("minute", day.replace(minute=5), day.replace(minute=50))
    ]
    assert grain_ranges(day.replace(minute=50), day.replace(hour=1, minute=10)) == [
        ("minute", day.replace(minute=50), day.replace(hour=1, minute=10))
    ]
    # Whole hours inside one day: no day range.
    assert grain_ranges(day.replace(hour=3), day.replace(hour=7)) == [
        ("hour", day.replace(hour=3), day.replace(hour=7))
    ]


minute_offsets = st.integers(min_value=0, max_value=(DAYS + 1) * 1440)


@settings(max_examples=200, deadline=None)
@given(st.lists(minute_offsets, min_size=1, max_size=10), minute_offsets)
def test_window_ranges_tile_every_window(starts: list[int], end: int) -> None:
    as_of = START + timedelta(minutes=end)
    moments = [START + timedelta(minutes=m) for m in starts]
    ranges = window_ranges(moments, as_of)
    live = [m for m in moments if m < as_of]
    if not live:
        assert ranges == []
        return
    # Contiguous and disjoint from the earliest start to as_of, each range aligned to its grain.
    assert ranges[0][1] == min(live) and ranges[-1][2] == as_of
    for (_, _, hi), (_, lo, _) in pairwise(ranges):
        assert hi == lo
    step = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
    for grain, lo, hi in ranges:
        assert lo < hi
        assert (lo - START) % step[grain] == timedelta(0) and (hi - START) % step[grain] == timedelta(0)
    # No bucket read straddles a start: inside a range, a start falls on a bucket boundary of its grain,
    # so `bucket_start >= start` picks exactly the window's buckets.
    for grain, lo, hi in ranges:
        for moment in live:
            if lo < moment < hi:
                assert (moment - START) % step[grain] == timedelta(0)
    # Minutes are read only in hours holding a start or as_of off the hour: at most 60 per such hour.
    minute_reads = sum((hi - lo) // timedelta(minutes=1) for g, lo, hi in ranges if g == "minute")
    ragged = {m.replace(minute=0) for m in [*live, as_of] if m.minute}
    assert minute_reads <= 60 * len(ragged)


windows = st.one_of(
    st.integers(min_value=1, max_value=7 * 1440).map(lambda m: f"{{duration: {m}m, isRolling: true}}"),
    st.sampled_from(["h", "d"]).flatmap(
        lambda unit: st.integers(min_value=1, max_value=150 if unit == "h" else 7).map(
            lambda n: f"{{duration: {n}{unit}, isRolling: true}}"
        )
    ),
    st.sampled_from(
        [
            "{duration: 1d, calendar: {startTime: '2026-01-01 00:00:00', timeZone: UTC}}",
            "{duration: 1w, calendar: {startTime: '2026-01-05 00:00:00', timeZone: America/Chicago}}",
            "{duration: 1M, calendar: {startTime: '2026-01-01 00:00:00', timeZone: Asia/Kolkata}}",
        ]
    ),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(windows, min_size=1, max_size=6), st.integers(min_value=1, max_value=(DAYS + 1) * 1440))
def test_multi_grain_sums_equal_minute_sums(
    filled: duckdb.DuckDBPyConnection, chosen: list[str], end: int
) -> None:
    slos, problems = parse_documents(slo_docs(chosen), "scale.yaml")
    assert problems == []
    as_of = START + timedelta(minutes=end)
    fast = _batched_sums(filled, slos, as_of)
    reference = _batched_sums(filled, slos, as_of, minutes_only=True)
    assert fast == reference
    for slo in slos:
        # Presence: distinct minutes of the window with any row of the SLO's services, from the minutes.
        start = _Window.of(slo, as_of).start
        expected = filled.execute(
            "SELECT count(DISTINCT bucket_start) FROM sli_counts_minute "
            "WHERE list_contains($s, service) AND bucket_start >= $a AND bucket_start < $b",
            {"s": sorted(slo.total.services), "a": start, "b": as_of},
        ).fetchone()[0]
        assert fast[slo.name].present_minutes == expected
        assert int(presence_by_minute(filled, sorted(slo.total.services), start, as_of).sum()) == expected


def test_batched_and_per_minute_paths_agree_on_random_minutes(filled: duckdb.DuckDBPyConnection) -> None:
    # The batched pass (rollups) and the per-SLO pass (dense minute arrays) give identical statuses.
    chosen = [
        "{duration: 7d, isRolling: true}",
        "{duration: 1439m, isRolling: true}",
        "{duration: 1w, calendar: {startTime: '2026-01-05 00:00:00', timeZone: America/Chicago}}",
        "{duration: 2d, isRolling: true}",
        "{duration: 61m, isRolling: true}",
    ]
    slos, problems = parse_documents(slo_docs(chosen), "scale.yaml")
    assert problems == []
    as_of = datetime(2026, 3, 8, 13, 41)
    batched = evaluate(filled, slos, as_of)
    one_by_one = [r for slo in sorted(slos, key=lambda s: s.name) for r in evaluate_slo(filled, slo, as_of)]
    assert batched == one_by_one


def test_presence_kept_by_rollup(tmp_path: Path) -> None:
    # Rows at 10:00, 10:00 (another operation), 10:07 and 10:59 of service a, 10:07 of b: a has 3 minutes
    # of that hour (bits 0, 7, 59), b one (bit 7); re-running the rollup replaces, never doubles.
    con = connect(tmp_path / "w.duckdb")
    hour = datetime(2026, 3, 1, 10)
    for service, operation, minute in (
        ("a", "x", 0),
        ("a", "y", 0),
        ("a", "x", 7),
        ("a", "x", 59),
        ("b", "x", 7),
    ):
        con.execute(
            "INSERT INTO sli_counts_minute VALUES ($t, $s, $o, 200, true, 1, 1)",
            {"t": hour + timedelta(minutes=minute), "s": service, "o": operation},
        )
    params = {"start": hour, "end": hour + timedelta(hours=1), "grain": "hour"}
    for _ in range(2):
        sqlfiles.run(con, "rollup_counts", params, source="sli_counts_minute", target="sli_counts_hour")
    found = con.execute("SELECT service, minutes FROM sli_presence_hour ORDER BY service").fetchall()
    assert found == [("a", 1 + 2**7 + 2**59), ("b", 2**7)]
    # The union of a and b over [10:05, 11:00): minutes 7 and 59.
    present = presence_by_minute(con, ["a", "b"], hour + timedelta(minutes=5), hour + timedelta(hours=1))
    assert np.flatnonzero(present).tolist() == [2, 54]
    con.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(windows, min_size=1, max_size=4), st.integers(min_value=1, max_value=(DAYS + 1) * 1440))
def test_batched_equals_dense_minutes_on_random_windows(
    filled: duckdb.DuckDBPyConnection, chosen: list[str], end: int
) -> None:
    # The independent reference: the per-SLO path sums dense per-minute arrays (sql/objective_counts.sql).
    slos, problems = parse_documents(slo_docs(chosen), "scale.yaml")
    assert problems == []
    as_of = START + timedelta(minutes=end)
    one_by_one = [r for slo in sorted(slos, key=lambda s: s.name) for r in evaluate_slo(filled, slo, as_of)]
    assert evaluate(filled, slos, as_of) == one_by_one


def test_per_minute_slos_read_in_one_pass_agree(filled: duckdb.DuckDBPyConnection) -> None:
    # SLOs that need per-minute arrays (a correction, time slices) are read for all of them in one pass
    # (objective_minute_series.sql); each must equal its own per-SLO read (objective_counts.sql).
    chosen = [
        "{duration: 7d, isRolling: true}",
        "{duration: 1435m, isRolling: true}",
        "{duration: 2d, isRolling: true}",
        "{duration: 1w, calendar: {startTime: '2026-01-05 00:00:00', timeZone: America/Chicago}}",
        "{duration: 3d, isRolling: true}",
    ]
    methods = {
        1: ("Timeslices", "target: 0.8, timeSliceTarget: 0.9, timeSliceWindow: 5m"),
        2: ("RatioTimeslices", "target: 0.9, timeSliceWindow: 1h"),
        3: ("Timeslices", "target: 0.95, timeSliceTarget: 0.95, timeSliceWindow: 1m"),
    }
    slos, problems = parse_documents(slo_docs(chosen, methods), "scale.yaml")
    assert problems == []
    as_of = datetime(2026, 3, 8, 13, 41)
    correction = add_correction(
        filled,
        slo="s0",
        reason="planned failover",
        added_by="test",
        start=datetime(2026, 3, 5, 10, 7),
        end=datetime(2026, 3, 5, 12, 29),
        now=as_of,
    )
    try:
        batched = evaluate(filled, slos, as_of)
        one_by_one = [
            r
            for slo in sorted(slos, key=lambda s: s.name)
            for r in evaluate_slo(filled, slo, as_of, corrections=[correction] if slo.name == "s0" else [])
        ]
    finally:
        remove_correction(filled, correction.correction_id, removed_by="test", now=as_of)
    assert batched == one_by_one
    assert batched[0].corrections_applied["excluded_minutes"] == 142  # 10:07 to 12:29

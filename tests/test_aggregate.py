"""SLI aggregates: exact threshold counts, histogram percentiles within 1%, rollups, incremental refresh."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from pipelines.slo import histogram
from pipelines.slo.aggregate import covering, merge_ranges, refresh_aggregates
from pipelines.slo.ingest import ingest_file
from pipelines.warehouse import query_frame
from tests.conftest import write

NOW = datetime(2026, 3, 5)  # after every event below, so none is "in the future"


def test_histogram_percentiles_within_one_percent() -> None:
    rng = np.random.default_rng(11)
    # Heavy-tailed latencies spanning 0.01 ms to minutes.
    values = np.concatenate(
        [rng.lognormal(4.5, 1.2, 50_000), rng.pareto(1.5, 5_000) * 100 + 0.01, [0.0, 0.0005]]
    )
    buckets: dict[int, int] = {}
    for v in values:
        b = histogram.bucket_of(float(v))
        buckets[b] = buckets.get(b, 0) + 1
    ordered = np.sort(values)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        exact = ordered[math.ceil(q * len(values)) - 1]  # nearest rank, computed independently with numpy
        estimate = histogram.percentile(list(buckets), list(buckets.values()), q)
        assert estimate == pytest.approx(exact, rel=0.01)
    assert histogram.RELATIVE_ERROR < 0.01
    assert histogram.percentile([], [], 0.5) is None


def test_bucket_boundaries() -> None:
    # Bucket i holds (1.02^(i-1), 1.02^i]: 1.0 ms is in bucket 0, just above 1.0 in bucket 1.
    assert histogram.bucket_of(1.0) == 0
    assert histogram.bucket_of(1.0000001) == 1
    assert histogram.bucket_of(0.0) == histogram.ZERO_BUCKET
    assert histogram.representative(histogram.ZERO_BUCKET) == 0.0


def test_merge_and_cover_ranges() -> None:
    t = datetime(2026, 3, 1)
    m = timedelta(minutes=1)
    assert merge_ranges(
        [(t + 5 * m, t + 9 * m), (t, t + 2 * m), (t + 2 * m, t + 3 * m), (t + 8 * m, t + 10 * m)]
    ) == [(t, t + 3 * m), (t + 5 * m, t + 10 * m)]
    assert covering(t + 61 * m, t + 62 * m, "hour") == (t + 60 * m, t + 120 * m)
    assert covering(t + 59 * m, t + 61 * m, "day") == (t, t + timedelta(days=1))


def _events(rows: list[tuple[str, str, int, float]]) -> str:
    return "timestamp,service,operation,status_code,latency_ms\n" + "".join(
        f"{ts},shop,{op},{status},{latency}\n" for ts, op, status, latency in rows
    )


def test_threshold_counts_and_histogram_in_sql(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    latencies = [299.9, 300.0, 300.1, 12.0, 1000.0]
    path = write(tmp_path / "e.csv", _events([("2026-03-01T10:00:30Z", "pay", 200, v) for v in latencies]))
    ingest_file(warehouse, path, now=NOW)
    refresh_aggregates(warehouse, {"shop": {300.0}})
    le, lt = warehouse.execute("SELECT le_count, lt_count FROM sli_threshold_minute").fetchone()
    # <= 300: 299.9, 300.0, 12.0 -> 3; < 300: 299.9, 12.0 -> 2.
    assert (le, lt) == (3, 2)
    # The SQL bucket formula agrees with the Python one for every value.
    sql_buckets = dict(warehouse.execute("SELECT bucket, count FROM latency_histogram_minute").fetchall())
    python_buckets: dict[int, int] = {}
    for v in latencies:
        python_buckets[histogram.bucket_of(v)] = python_buckets.get(histogram.bucket_of(v), 0) + 1
    assert sql_buckets == python_buckets


def test_incremental_refresh_equals_full_rebuild(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = datetime(2026, 3, 1, 22, 0)
    rows = [
        (
            (base + timedelta(seconds=int(s))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            rng.choice(["a", "b"]),
            int(rng.choice([200, 200, 200, 404, 503])),
            round(float(rng.lognormal(5, 1)), 3),
        )
        for s in rng.integers(0, 4 * 3600, 3000)
    ]
    files = [_events(rows[i::3]) for i in range(3)]

    def build(db: Path, batches: list[list[str]]) -> duckdb.DuckDBPyConnection:
        from pipelines.warehouse import connect

        con = connect(db)
        for number, batch in enumerate(batches):
            for index, text in enumerate(batch):
                ingest_file(con, write(db.parent / f"in{number}_{index}.csv", text), now=NOW)
            refresh_aggregates(con, {"shop": {250.0}})
        return con

    stepwise = build(tmp_path / "step" / "w.duckdb", [[files[0]], [files[1]], [files[2]]])
    at_once = build(tmp_path / "once" / "w.duckdb", [files])
    for table in (
        "sli_counts_minute",
        "sli_counts_hour",
        "sli_counts_day",
        "sli_threshold_hour",
        "latency_histogram_day",
    ):
        query = f"SELECT * FROM {table} ORDER BY ALL"
        assert query_frame(stepwise, query).equals(query_frame(at_once, query)), table
    # Rollups equal their minutes, and every event is counted once.
    totals = [
        stepwise.execute(f"SELECT sum(requests) FROM sli_counts_{g}").fetchone()[0]
        for g in ("minute", "hour", "day")
    ]
    assert totals == [3000, 3000, 3000]
    # Adding a threshold later rebuilds the threshold tables over all history.
    refresh_aggregates(stepwise, {"shop": {250.0, 100.0}})
    counted = stepwise.execute(
        "SELECT threshold_ms, sum(le_count) FROM sli_threshold_day GROUP BY 1 ORDER BY 1"
    ).fetchall()
    expected_100 = sum(1 for r in rows if r[3] <= 100.0)
    expected_250 = sum(1 for r in rows if r[3] <= 250.0)
    assert counted == [(100.0, expected_100), (250.0, expected_250)]
    # Refreshing again with nothing new changes nothing.
    before = query_frame(stepwise, "SELECT * FROM sli_counts_minute ORDER BY ALL")
    report = refresh_aggregates(stepwise, {"shop": {250.0, 100.0}})
    assert report.ranges == [] and not report.thresholds_changed
    assert query_frame(stepwise, "SELECT * FROM sli_counts_minute ORDER BY ALL").equals(before)
    assert isinstance(before, pl.DataFrame)


def test_counts_schema_rows(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    path = write(
        tmp_path / "c.csv",
        "timestamp,service,operation,total,bad\n"
        "2026-03-01T00:00:00Z,auth,login,10,3\n2026-03-01T00:00:30Z,auth,login,5,0\n"
        "2026-03-01T00:01:00Z,auth,login,0,0\n",
    )
    ingest_file(warehouse, path, now=NOW)
    refresh_aggregates(warehouse, {})
    rows = warehouse.execute(
        "SELECT bucket_start, success, requests FROM sli_counts_minute ORDER BY 1, 2"
    ).fetchall()
    # Minute 00:00: good 7 + 5 = 12, bad 3. Minute 00:01: zero traffic, but the minute is present.
    assert rows == [
        (datetime(2026, 3, 1, 0, 0), False, 3),
        (datetime(2026, 3, 1, 0, 0), True, 12),
        (datetime(2026, 3, 1, 0, 1), True, 0),
    ]


def test_percentile_rank_is_exact() -> None:
    # 55 requests at 10 ms and 45 at 100 ms: the 55th percentile is rank ceil(0.55 * 100) = 55 -> 10 ms.
    # (In floats 0.55 * 100 = 55.00000000000001, whose ceiling 56 would give 100 ms.)
    ten, hundred = histogram.bucket_of(10.0), histogram.bucket_of(100.0)
    assert histogram.percentile([ten, hundred], [55, 45], 0.55) == pytest.approx(10.0, rel=0.01)
    assert histogram.percentile([ten, hundred], [55, 45], 0.56) == pytest.approx(100.0, rel=0.01)


def test_threshold_rows_do_not_outlive_their_events(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    path = write(tmp_path / "e.csv", _events([("2026-03-01T10:00:30Z", "pay", 200, 100.0)]))
    ingest_file(warehouse, path, now=NOW)
    refresh_aggregates(warehouse, {"shop": {300.0}})
    # The file is re-exported with only an invalid row, and an SLO adds a threshold in the same refresh.
    write(path, "timestamp,service,status_code\nnot-a-time,shop,200\n")
    ingest_file(warehouse, path, now=NOW)
    refresh_aggregates(warehouse, {"shop": {300.0, 500.0}})
    assert warehouse.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 0
    for table in ("sli_threshold_minute", "sli_threshold_hour", "sli_threshold_day", "sli_counts_minute"):
        assert warehouse.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


# Threshold history and retention. Service api: three events on 2026-05-10 (older than the 14-day raw tier
# as of 2026-06-01 12:00, whose cutoff is 2026-05-18) and four on 2026-05-25 (kept).
RETAINED_NOW = datetime(2026, 6, 1, 12, 0)
OLD_DAY, NEW_DAY = datetime(2026, 5, 10), datetime(2026, 5, 25)
API_EVENTS = (
    "timestamp,service,operation,status_code,latency_ms\n"
    "2026-05-10T10:00:10Z,api,get,200,100\n2026-05-10T10:00:20Z,api,get,200,400\n"
    "2026-05-10T10:00:30Z,api,get,200,600\n"
    "2026-05-25T09:00:05Z,api,get,200,200\n2026-05-25T09:00:15Z,api,get,200,450\n"
    "2026-05-25T09:00:25Z,api,get,200,700\n2026-05-25T09:00:35Z,api,get,200,300\n"
)


def _threshold_days(con: duckdb.DuckDBPyConnection, table: str = "sli_threshold_day") -> list[tuple]:
    return con.execute(
        f"SELECT threshold_ms, bucket_start, sum(le_count), sum(lt_count) FROM {table} "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()


@pytest.fixture
def retained(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    from pipelines.slo.retention import RetentionPolicy, apply_retention

    ingest_file(warehouse, write(tmp_path / "api.csv", API_EVENTS), now=RETAINED_NOW)
    refresh_aggregates(warehouse, {"api": {300.0}})
    report = apply_retention(warehouse, RetentionPolicy(), now=RETAINED_NOW)
    assert report.deleted["raw_events"] == 3  # the three 2026-05-10 events
    return warehouse


def test_changing_thresholds_keeps_history_older_than_raw_events(retained: duckdb.DuckDBPyConnection) -> None:
    # 300 ms: 05-10 holds 100 (<= and <), 05-25 holds 200 and 300 (<=), 200 (<).
    before = [(300.0, OLD_DAY, 1, 1), (300.0, NEW_DAY, 2, 1)]
    assert _threshold_days(retained) == before

    report = refresh_aggregates(retained, {"api": {300.0, 500.0}})
    assert report.thresholds_changed and report.thresholds_added == [("api", 500.0)]
    assert report.thresholds_removed == []
    # 300 keeps 05-10 although its raw events are gone; 500 is counted exactly where raw events remain:
    # 05-25 has 200, 450, 300 at or under 500 (and under it), and nothing on 05-10.
    expected = [*before, (500.0, NEW_DAY, 3, 3)]
    for table in ("sli_threshold_minute", "sli_threshold_hour", "sli_threshold_day"):
        assert [
            (t, b.replace(hour=0, minute=0), le, lt) for t, b, le, lt in _threshold_days(retained, table)
        ] == (expected), table
    assert [(g.service, g.threshold_ms, g.exact_from, g.history_from) for g in report.threshold_gaps] == [
        ("api", 500.0, NEW_DAY, OLD_DAY)
    ]
    assert report.notes == [
        "threshold 500 ms for service api has exact counts only from 2026-05-25, where raw events start; "
        "windows reaching before then exclude that time (latency data of api goes back to 2026-05-10)"
    ]
    gap = report.threshold_gaps[0]
    assert gap.affects(datetime(2026, 5, 4, 12)) and not gap.affects(datetime(2026, 5, 25))

    # Dropping 300 deletes its rows at every grain; 500's stay as they were.
    report = refresh_aggregates(retained, {"api": {500.0}})
    assert report.thresholds_removed == [("api", 300.0)] and report.thresholds_added == []
    assert _threshold_days(retained) == [(500.0, NEW_DAY, 3, 3)]
    for table in ("sli_threshold_minute", "sli_threshold_hour"):
        assert retained.execute(f"SELECT count(*) FROM {table} WHERE threshold_ms = 300").fetchone() == (0,)
    # Nothing changed, nothing to say but the gap, which stays until no window reaches before it.
    again = refresh_aggregates(retained, {"api": {500.0}})
    assert not again.thresholds_changed and len(again.threshold_gaps) == 1


def test_threshold_without_any_raw_event_left_is_reported(retained: duckdb.DuckDBPyConnection) -> None:
    retained.execute("DELETE FROM raw_events")  # as retention would, weeks later
    report = refresh_aggregates(retained, {"api": {300.0, 250.0}})
    assert [(g.threshold_ms, g.exact_from) for g in report.threshold_gaps] == [(250.0, None)]
    assert report.notes[0].startswith("threshold 250 ms for service api has no exact counts")
    # 300 still holds both days, none of which raw events could recompute.
    assert _threshold_days(retained) == [(300.0, OLD_DAY, 1, 1), (300.0, NEW_DAY, 2, 1)]


def test_dirty_minutes_before_the_raw_watermark_are_not_recomputed(
    retained: duckdb.DuckDBPyConnection,
) -> None:
    # A dirty range reaching before the raw cutoff (2026-05-18): recomputing 05-10 from raw rows that
    # retention deleted would wipe its three requests.
    retained.execute(
        "INSERT INTO dirty_ranges VALUES ('2026-05-10 10:00', '2026-05-10 10:01', 99), "
        "('2026-05-17 23:59', '2026-05-18 00:01', 99)"
    )
    report = refresh_aggregates(retained, {"api": {300.0}})
    assert report.skipped == [
        (datetime(2026, 5, 10, 10, 0), datetime(2026, 5, 10, 10, 1)),
        (datetime(2026, 5, 17, 23, 59), datetime(2026, 5, 18)),
    ]
    assert report.ranges == [(datetime(2026, 5, 18), datetime(2026, 5, 18, 0, 1))]
    assert "before the raw retention watermark" in report.notes[0]
    query = "SELECT sum(requests) FROM sli_counts_{} WHERE bucket_start < '2026-05-18'"
    assert [retained.execute(query.format(g)).fetchone()[0] for g in ("minute", "hour", "day")] == [3, 3, 3]
    assert retained.execute("SELECT count(*) FROM dirty_ranges").fetchone() == (0,)

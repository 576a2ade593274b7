"""Analytics on a real warehouse: series from slo_hourly, seasonality, trends, change points, anomalies,
forecasts stored in DuckDB, and anomaly alerts reaching the incident engine."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from pipelines import alert_workflow, analytics, workflows
from pipelines.slo.alert_config import parse_alerting
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.spec import load_slos
from tests.conftest import write

SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-availability, displayName: Shop availability}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {success: true}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99%", target: 0.99}]
"""

START = datetime(2026, 3, 2)  # a Monday
DAYS = 21
SHIFT = START + timedelta(days=14)  # traffic doubles from here
SPIKE = START + timedelta(days=18, hours=10)  # one hour with 30% errors


def _landing(tmp_path: Path) -> None:
    # Hourly rows (one per hour, stamped at the hour): a daily traffic cycle, 0.2% errors, a level shift in
    # traffic and one bad hour.
    lines = ["timestamp,service,operation,total,good"]
    for h in range(DAYS * 24):
        moment = START + timedelta(hours=h)
        wobble = 1 + 0.03 * math.sin(h * 12.9898)  # deterministic noise of about 3%
        level = 1000 + 400 * math.sin(2 * math.pi * (h % 24) / 24)
        total = int(level * wobble) * (2 if moment >= SHIFT else 1)
        bad = int(total * 0.3) if moment == SPIKE else 2 + h % 3
        lines.append(f"{moment:%Y-%m-%dT%H:%M}:00Z,shop,pay,{total},{total - bad}")
    write(tmp_path / "landing" / "shop.csv", "\n".join(lines) + "\n")


@pytest.fixture
def analysed(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection):  # type: ignore[no-untyped-def]
    _landing(tmp_path)
    ingest_paths(warehouse, [tmp_path / "landing"], max_clock_skew_seconds=300)
    write(tmp_path / "slos" / "shop.yaml", SLO)
    slos = load_slos(tmp_path / "slos")
    workflows.refresh(warehouse, slos)
    as_of, statuses = workflows.evaluate_and_store(
        warehouse, slos, as_of=None, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
    )
    workflows.store_hourly(warehouse, slos, as_of)
    series = [s for slo in slos for s in analytics.slo_series(warehouse, slo, as_of)]
    return slos, statuses, as_of, series


def test_series_seasonality_and_change_points(analysed, warehouse: duckdb.DuckDBPyConnection) -> None:  # type: ignore[no-untyped-def]
    _, _, _, series = analysed
    kinds = {(s.metric, s.resolution) for s in series}
    assert kinds == {
        ("error_rate", "hour"),
        ("throughput", "hour"),
        ("error_rate", "day"),
        ("throughput", "day"),
    }
    hourly_errors = next(s for s in series if (s.metric, s.resolution) == ("error_rate", "hour"))
    # The newest minute of data is the last hour's first (rows are stamped on the hour), so that hour is
    # still in progress and left out: whole hours only.
    assert len(hourly_errors.values) == DAYS * 24 - 1
    daily_errors = next(s for s in series if (s.metric, s.resolution) == ("error_rate", "day"))
    assert len(daily_errors.values) == DAYS - 1  # the last day is not over either
    # The spike hour: 30% of the requests failed.
    spike_index = int((np.datetime64(SPIKE) - hourly_errors.timestamps[0]) / np.timedelta64(1, "h"))
    assert hourly_errors.values[spike_index] == pytest.approx(0.3, abs=0.001)

    components, trends, shifts = analytics.seasonality_rows(series)
    analytics.store(warehouse, "slo_seasonal", components)
    analytics.store(warehouse, "slo_trends", trends)
    analytics.store(warehouse, "slo_change_points", shifts)
    # Availability is stored as the mirror of the error rate.
    rows = warehouse.execute(
        "SELECT e.observed + a.observed FROM slo_seasonal e "
        "JOIN slo_seasonal a USING (slo, resolution, bucket_start) "
        "WHERE e.metric = 'error_rate' AND a.metric = 'availability' AND e.observed IS NOT NULL"
    ).fetchall()
    assert rows and all(v == pytest.approx(1.0) for (v,) in rows)
    # Traffic doubled at SHIFT: one hourly change point (traffic is analysed on a log scale, where the
    # doubling is a step of log 2) within 3 hours of it, the level roughly doubling.
    throughput = [c for c in shifts if c["metric"] == "throughput" and c["resolution"] == "hour"]
    assert len(throughput) == 1
    assert abs(throughput[0]["changed_at"] - SHIFT) <= timedelta(hours=3)
    assert throughput[0]["level_after"] / throughput[0]["level_before"] == pytest.approx(2, rel=0.15)
    stored = warehouse.execute("SELECT count(*) FROM slo_trends WHERE metric = 'availability'").fetchone()
    assert stored == (2,)


def test_anomalies_are_scored_without_look_ahead(analysed, warehouse: duckdb.DuckDBPyConnection) -> None:  # type: ignore[no-untyped-def]
    _, _, _, series = analysed
    rows = analytics.anomaly_rows(series)
    analytics.store(warehouse, "slo_anomalies", rows)
    flagged = {(r["metric"], r["bucket_start"]) for r in rows if r["is_anomaly"]}
    assert ("error_rate", SPIKE) in flagged
    assert all(0 <= r["score"] <= 1 and 0 <= r["confidence"] <= 1 for r in rows)
    # Scoring a prefix gives the same scores for the prefix.
    hourly = next(s for s in series if (s.metric, s.resolution) == ("error_rate", "hour"))
    cut = analytics.Series(
        hourly.slo, hourly.metric, hourly.resolution, hourly.timestamps[:300], hourly.values[:300]
    )
    prefix = analytics.anomaly_rows([cut])
    full = [r for r in rows if r["metric"] == "error_rate"][:300]
    assert [r["score"] for r in prefix] == [r["score"] for r in full]


def test_forecasts_are_stored_and_reproducible(analysed, warehouse: duckdb.DuckDBPyConnection) -> None:  # type: ignore[no-untyped-def]
    slos, _, as_of, _ = analysed
    first = analytics.forecast_rows(warehouse, slos, as_of, simulations=500)
    again = analytics.forecast_rows(warehouse, slos, as_of, simulations=500)
    assert first == again
    (row,) = first
    assert row["seed"] == analytics.seed_for("shop-availability", "99%")
    assert 0 <= row["probability_exhausted"] <= 1
    assert analytics.store(warehouse, "slo_forecasts", first) == 1


def test_an_anomalous_latest_hour_raises_an_anomaly_alert(
    analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:  # type: ignore[no-untyped-def]
    slos, statuses, as_of, _ = analysed
    last_hour = as_of - timedelta(hours=1)
    # A quiet day (0.3% errors), then an anomalous last hour at 20%.
    history = [
        {
            "slo": "shop-availability",
            "metric": "error_rate",
            "bucket_start": last_hour - timedelta(hours=h),
            "value": 0.003,
            "score": 0.1,
            "confidence": 0.8,
            "is_anomaly": False,
        }
        for h in range(1, 25)
    ]
    analytics.store(
        warehouse,
        "slo_anomalies",
        [
            *history,
            {
                "slo": "shop-availability",
                "metric": "error_rate",
                "bucket_start": last_hour,
                "value": 0.2,
                "score": 0.97,
                "confidence": 0.8,
                "is_anomaly": True,
            },
            {
                "slo": "shop-availability",
                "metric": "throughput",
                "bucket_start": last_hour,
                "value": 10.0,
                "score": 0.99,
                "confidence": 0.9,
                "is_anomaly": True,
            },
        ],
    )
    config = parse_alerting("defaults: {no_data_after: 0m, budget_states: {}}\n", "alerting.yaml")
    run = alert_workflow.run_alerting(warehouse, slos, statuses, as_of, config, now=as_of, env={})
    (anomaly,) = [o for o in run.observations if o.kind == "anomaly"]
    # Only the watched metrics count (error rate and p99 latency by default, not throughput).
    assert anomaly.active and anomaly.severity == "info"
    assert anomaly.title == "Shop availability: unusual error rate (score 0.97, confidence 80%)"
    assert [label for label, _ in anomaly.facts if label.startswith("Unusual")] == ["Unusual error rate"]
    assert [e.event for e in run.result.events] == ["opened", "alert_fired"]
    # An anomalous dip (error rate below its day's median) is not alerted on.
    warehouse.execute(
        "UPDATE slo_anomalies SET value = 0.0 WHERE metric = 'error_rate' AND bucket_start = $h",
        {"h": last_hour},
    )
    dip = alert_workflow.observe(warehouse, slos, statuses, as_of, config)
    assert not next(o for o in dip if o.kind == "anomaly").active
    warehouse.execute(
        "UPDATE slo_anomalies SET value = 0.2 WHERE metric = 'error_rate' AND bucket_start = $h",
        {"h": last_hour},
    )
    # Not confident enough: no alert.
    strict = parse_alerting(
        "defaults: {no_data_after: 0m, budget_states: {}, anomaly_min_confidence: 0.9}\n", "alerting.yaml"
    )
    quiet = alert_workflow.observe(warehouse, slos, statuses, as_of, strict)
    assert not next(o for o in quiet if o.kind == "anomaly").active


def test_latency_percentile_series_hourly_and_daily(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Two hours of 100 requests each, latencies 1..100 ms in the first hour and 101..200 in the second.
    # Nearest rank: p95 = 95 and p99 = 99 ms, then 195 and 199; the day holds 1..200: p95 = 190, p99 = 198.
    lines = ["timestamp,service,operation,status_code,latency_ms"]
    for hour in range(2):
        for i in range(100):
            lines.append(
                f"2026-03-02T{hour:02d}:{i % 60:02d}:{i // 60:02d}Z,api,get,200,{hour * 100 + i + 1}"
            )
    write(tmp_path / "landing" / "events.csv", "\n".join(lines) + "\n")
    ingest_paths(warehouse, [tmp_path / "landing"], max_clock_skew_seconds=300)
    slo = SLO.replace("shop-availability", "api-latency").replace("service: shop", "service: api")
    slo = slo.replace("{success: true}", "{latency_ms: {lte: 150}}").replace(
        "spec: {service: shop}", "spec: {service: api}"
    )
    write(tmp_path / "slos" / "api.yaml", slo)
    slos = load_slos(tmp_path / "slos")
    workflows.refresh(warehouse, slos)
    as_of, _ = workflows.evaluate_and_store(
        warehouse, slos, as_of=None, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
    )
    workflows.store_hourly(warehouse, slos, as_of)
    # As of the next midnight, so both hours and their day are whole.
    midnight = datetime(2026, 3, 3)
    found = {(s.metric, s.resolution): s.values for s in analytics.slo_series(warehouse, slos[0], midnight)}
    # Within the histograms' 1% relative error.
    assert found[("latency_p95", "hour")][:2] == pytest.approx([95, 195], rel=0.01)
    assert found[("latency_p99", "hour")][:2] == pytest.approx([99, 199], rel=0.01)
    assert np.isnan(found[("latency_p95", "hour")][2:]).all()  # hours without requests
    assert found[("latency_p95", "day")] == pytest.approx([190], rel=0.01)
    assert found[("latency_p99", "day")] == pytest.approx([198], rel=0.01)


def test_forecasts_count_the_budget_as_slo_status_does(
    analysed, warehouse: duckdb.DuckDBPyConnection
) -> None:  # type: ignore[no-untyped-def]
    from pipelines.slo.corrections import add_correction

    slos, _, as_of, _ = analysed
    # Excuse the bad hour: the forecast's budget now must match the corrected evaluation.
    add_correction(
        warehouse,
        slo="shop-availability",
        reason="load test",
        added_by="ops",
        start=SPIKE,
        end=SPIKE + timedelta(hours=1),
    )
    _, statuses = workflows.evaluate_and_store(
        warehouse, slos, as_of=None, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
    )
    (row,) = analytics.forecast_rows(warehouse, slos, as_of, simulations=200)
    (status,) = statuses
    # slo_status is as of the newest minute, the forecast as of the last whole hour: they differ by the
    # newest hour's few bad requests at most.
    assert row["budget_remaining_now"] == pytest.approx(status.budget_remaining, abs=0.01)


def test_raw_ratio_error_rates_are_not_rounded(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # One success ratio a minute: 0.995 for an hour, then 0.96 for an hour -> error rates 0.005 and 0.04.
    lines = ["timestamp,service,operation,ratio"]
    for m in range(180):
        ratio = 0.995 if m < 60 else 0.96 if m < 120 else 1.0
        lines.append(f"{START + timedelta(minutes=m):%Y-%m-%dT%H:%M}:00Z,batch,run,{ratio}")
    write(tmp_path / "landing" / "ratios.csv", "\n".join(lines) + "\n")
    ingest_paths(warehouse, [tmp_path / "landing"], max_clock_skew_seconds=300)
    write(
        tmp_path / "slos" / "raw.yaml",
        """
apiVersion: openslo/v1
kind: SLO
metadata: {name: batch-success}
spec:
  service: batch
  indicator:
    spec:
      ratioMetric:
        rawType: success
        raw: {metricSource: {type: sloscope, spec: {service: batch}}}
  timeWindow: [{duration: 7d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99%", target: 0.99}]
""",
    )
    slos = load_slos(tmp_path / "slos")
    workflows.refresh(warehouse, slos)
    series = analytics.slo_series(warehouse, slos[0], START + timedelta(hours=3))
    errors = next(s for s in series if (s.metric, s.resolution) == ("error_rate", "hour"))
    assert errors.values == pytest.approx([0.005, 0.04, 0.0])
    points = next(s for s in series if (s.metric, s.resolution) == ("throughput", "hour"))
    assert points.values == pytest.approx([60, 60, 60])

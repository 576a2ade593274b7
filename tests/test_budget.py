"""Error budget and burn-rate arithmetic, and an exact evaluation on a hand-built warehouse.

Every expected number is worked out by hand in the comments next to it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.slo.aggregate import refresh_aggregates
from pipelines.slo.budget import budget_figures, burn_rate, classify, evaluate
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.spec import parse_documents, thresholds_of
from tests.conftest import write


def test_budget_figures_by_hand() -> None:
    # 1,000,000 requests, 998,000 good, target 99.9%: bad share 0.002 over an allowance of 0.001
    # -> consumed 2.0, remaining -1.0, SLI 0.998.
    sli, consumed, remaining = budget_figures(998_000, 1_000_000, Decimal("0.999"))
    assert sli == pytest.approx(0.998, abs=1e-15)
    assert consumed == pytest.approx(2.0, abs=1e-12)
    assert remaining == pytest.approx(-1.0, abs=1e-12)


def test_budget_is_exact_where_floats_are_not() -> None:
    # 1 - 0.999 is 0.0010000000000000009 in floats; with exact decimals one bad event in 1000 at
    # 99.9% is exactly the whole budget, so remaining is exactly 0.0 (not a tiny negative: not breached).
    _, consumed, remaining = budget_figures(999, 1000, Decimal("0.999"))
    assert consumed == 1.0
    assert remaining == 0.0
    assert classify(1000, remaining, 0.25) == "at_risk"


def test_burn_rate_slo_generator_vector() -> None:
    # google/slo-generator's worked report: good 3,556 and bad 3,556, goal 0.9 -> SLI 0.5, burn rate
    # (0.5 bad share) / (0.1 allowance) = 5.0.
    assert burn_rate(3556, 7112, Decimal("0.9")) == pytest.approx(5.0, abs=1e-12)


def test_no_traffic_is_null_not_nan() -> None:
    assert budget_figures(0, 0, Decimal("0.99")) == (None, None, None)
    assert burn_rate(0, 0, Decimal("0.99")) is None
    assert classify(0, None, 0.25) == "no_data"


@pytest.mark.parametrize(
    ("remaining", "expected"),
    [(0.9, "ok"), (0.25, "ok"), (0.2499, "at_risk"), (0.0, "at_risk"), (-0.01, "breached")],
)
def test_classify_thresholds(remaining: float, expected: str) -> None:
    assert classify(10, remaining, 0.25) == expected


SLO_YAML = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-availability}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 1h, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: ninety, target: 0.9}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-latency}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {latency_ms: {lte: 300}}}}
        total: {metricSource: {type: sloscope, spec: {service: shop, operation: pay}}}
  timeWindow: [{duration: 1h, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: eighty, target: 0.8}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-errors}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        bad: {metricSource: {type: sloscope, spec: {success: false}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 1h, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: ninety, target: 0.9}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: quiet-availability}
spec:
  service: quiet
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}
        total: {metricSource: {type: sloscope, spec: {service: quiet}}}
  timeWindow: [{duration: 1h, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: ninety, target: 0.9}]
"""

# as_of = 12:00; the 1h window is [11:00, 12:00).
EVENTS_CSV = """timestamp,service,operation,status_code,success,latency_ms
2026-03-01T10:59:59.999Z,shop,pay,503,,10
2026-03-01T11:00:00Z,shop,pay,200,,300
2026-03-01T11:10:00+01:00,shop,pay,500,,1
2026-03-01T11:20:00Z,shop,pay,200,,300.1
2026-03-01T11:30:00Z,shop,pay,404,,299.9
2026-03-01T11:40:00Z,shop,browse,200,false,5
2026-03-01T11:56:00Z,shop,browse,503,,2000
2026-03-01T11:59:59.999Z,shop,pay,200,,50
2026-03-01T12:00:00Z,shop,pay,500,,50
"""


@pytest.fixture
def evaluated(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> dict[str, object]:
    write(tmp_path / "landing" / "events.csv", EVENTS_CSV)
    report = ingest_paths(warehouse, [tmp_path / "landing"], now=datetime(2026, 3, 2))
    assert report.rows_loaded == 9
    slos, problems = parse_documents(SLO_YAML, "inline.yaml")
    assert problems == []
    refresh_aggregates(warehouse, thresholds_of(slos))
    results = evaluate(warehouse, slos, datetime(2026, 3, 1, 12, 0))
    return {r.slo: r for r in results}


def test_window_edges_and_availability(evaluated: dict) -> None:
    # In [11:00, 12:00): the 11:00:00 pay 200, the 10:10 UTC event is outside (11:10+01:00 = 10:10Z),
    # 11:20 200, 11:30 404, 11:40 browse 200 with success=false, 11:56 503, 11:59:59.999 200.
    # The 10:59:59.999 and 12:00:00 events fall outside the half-open window.
    # total 6; good for status < 500: 11:00, 11:20, 11:30, 11:40 (status 200 < 500 even though
    # success=false), 11:59 -> 5; bad 1 (the 503).
    r = evaluated["shop-availability"]
    assert (r.good, r.total) == (5, 6)
    assert r.sli == pytest.approx(5 / 6)
    # consumed = (1/6) / 0.1 = 1.6667 -> remaining -0.6667, breached.
    assert r.budget_consumed == pytest.approx(10 / 6)
    assert r.budget_remaining == pytest.approx(1 - 10 / 6)
    assert r.status == "breached"
    # 5m window [11:55, 12:00): the 11:56 503 and the 11:59:59.999 200 -> bad share 1/2, burn 5.0.
    assert r.burn_rates["5m"] == pytest.approx(5.0)
    # 30m window [11:30, 12:00): 11:30 404 (good), 11:40 (good), 11:56 503, 11:59 200 -> 1/4 / 0.1 = 2.5
    assert r.burn_rates["30m"] == pytest.approx(2.5)
    # windows beyond the SLO window still see earlier events: 2h = [10:00, 12:00) holds 8 events
    # (the 6 above, the 10:59:59.999 503 and the 10:10Z 500) -> bad: 503, 500, 503 = 3 of 8.
    assert r.burn_rates["2h"] == pytest.approx((3 / 8) / 0.1)
    assert r.window_start == datetime(2026, 3, 1, 11, 0)
    assert r.burn_rates["window"] == pytest.approx(r.budget_consumed)


def test_latency_threshold_is_exact(evaluated: dict) -> None:
    # pay events in [11:00, 12:00): 11:00 (300 ms), 11:20 (300.1 ms), 11:30 (299.9 ms), 11:59 (50 ms)
    # -> total 4
    # good = latency <= 300: 300 (yes), 300.1 (no), 299.9 (yes), 50 (yes) -> 3.
    r = evaluated["shop-latency"]
    assert (r.good, r.total) == (3, 4)
    # consumed = (1/4) / 0.2 = 1.25
    assert r.budget_remaining == pytest.approx(-0.25)


def test_bad_filter_uses_success_outcome(evaluated: dict) -> None:
    # success=false means: a 5xx, or success given as false. In the window: 11:40 (success=false) and
    # 11:56 (503) -> bad 2 of 6, good 4.
    r = evaluated["shop-errors"]
    assert (r.good, r.total) == (4, 6)


def test_service_without_data_is_no_data(evaluated: dict) -> None:
    r = evaluated["quiet-availability"]
    assert (r.good, r.total) == (0, 0)
    assert r.sli is None and r.budget_remaining is None
    assert all(v is None for v in r.burn_rates.values())
    assert r.status == "no_data"
    payload = r.to_json()
    assert payload["sli"] is None and payload["error_budget"] == {"consumed": None, "remaining": None}


def test_as_of_is_taken_at_its_minute(warehouse: duckdb.DuckDBPyConnection, evaluated: dict) -> None:
    slos, _ = parse_documents(SLO_YAML, "inline.yaml")
    later = evaluate(warehouse, slos, datetime(2026, 3, 1, 12, 0, 42))
    assert later[1].window_end == datetime(2026, 3, 1, 12, 0)
    assert later[1].total == evaluated["shop-availability"].total


def test_window_straddling_more_data_moves(warehouse: duckdb.DuckDBPyConnection, evaluated: dict) -> None:
    # as_of 12:01 -> window [11:01, 12:01): drops the 11:00 200, gains the 12:00 500.
    # total 6, bad: 11:56 503, 12:00 500 -> good 4.
    slos, _ = parse_documents(SLO_YAML, "inline.yaml")
    moved = {r.slo: r for r in evaluate(warehouse, slos, datetime(2026, 3, 1, 12, 1))}
    assert (moved["shop-availability"].good, moved["shop-availability"].total) == (4, 6)
    assert moved["shop-availability"].window_start == datetime(2026, 3, 1, 11, 1)


def test_completeness_is_judged_per_service(evaluated: dict) -> None:
    # Data completeness asks whether the service's data arrived, not whether matching events happened.
    # Minutes of [11:00, 12:00) with any shop row: 11:00, 11:20, 11:30, 11:40, 11:56, 11:59 -> 6 of 60
    # (the 11:10+01:00 event is at 10:10Z). shop-latency's total is operation pay only, which has no event
    # at 11:40 or 11:56, yet those minutes had shop data: 6 of 60 as well, not 4 of 60.
    assert evaluated["shop-availability"].data_completeness == pytest.approx(6 / 60)
    assert evaluated["shop-latency"].data_completeness == pytest.approx(6 / 60)
    assert evaluated["quiet-availability"].data_completeness == 0.0

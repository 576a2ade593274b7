"""The SLO engine end to end on hand-built warehouses: budgeting methods, calendar and rolling windows
across daylight-saving changes, corrections, minimum events. Expected numbers are worked out by hand or
counted by brute force from the rows written, independently of the aggregates."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pipelines.slo.aggregate import refresh_aggregates
from pipelines.slo.budget import evaluate
from pipelines.slo.corrections import add_correction
from pipelines.slo.ingest import ingest_file
from pipelines.slo.spec import parse_documents, thresholds_of
from tests.conftest import write

NOW = datetime(2027, 1, 1)


def slo_yaml(
    window: str, method: str = "Occurrences", objective: str = "target: 0.99", extra: str = ""
) -> str:
    return f"""
apiVersion: openslo/v1
kind: SLO
metadata: {{name: lb, {extra}}}
spec:
  service: lb
  indicator:
    spec:
      ratioMetric:
        good: {{metricSource: {{type: sloscope, spec: {{success: true}}}}}}
        total: {{metricSource: {{type: sloscope, spec: {{service: lb}}}}}}
  timeWindow: [{window}]
  budgetingMethod: {method}
  objectives: [{{displayName: objective, {objective}}}]
"""


def load_counts(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, rows: list[tuple[datetime, int, int]]
) -> None:
    """Per-minute (start, total, good) rows through the real ingestion and aggregation."""
    text = "timestamp,service,total,good\n" + "".join(
        f"{t:%Y-%m-%dT%H:%M:%S}Z,lb,{n},{g}\n" for t, n, g in rows
    )
    ingest_file(con, write(tmp_path / "counts.csv", text), now=NOW)
    refresh_aggregates(con, {})


def evaluate_one(con: duckdb.DuckDBPyConnection, text: str, as_of: datetime):  # type: ignore[no-untyped-def]
    slos, problems = parse_documents(text, "slo.yaml")
    assert problems == []
    refresh_aggregates(con, thresholds_of(slos))
    (result,) = evaluate(con, slos, as_of)
    return result


def test_openslo_timeslices_vector(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # OpenSLO's example: a 2-week rolling window, 95% objective, 1-minute slices = 20,160 slices, and a
    # Timeslices budget of 1,008 bad minutes (16 h 48 min). Make 504 minutes bad (ratio 0.5 < 0.95):
    # half the budget -> remaining 0.5 and 504 bad minutes left.
    start = datetime(2026, 6, 1)
    rows = [(start + timedelta(minutes=m), 10, 5 if m % 40 == 0 else 10) for m in range(20_160)]
    assert sum(1 for _, _, g in rows if g == 5) == 504
    load_counts(warehouse, tmp_path, rows)
    text = slo_yaml(
        "{duration: 2w, isRolling: true}",
        "Timeslices",
        "target: 0.95, timeSliceTarget: 0.95, timeSliceWindow: 1m",
    )
    result = evaluate_one(warehouse, text, start + timedelta(days=14))
    assert result.timeslices == {
        "slice_minutes": 1,
        "slices": 20_160,
        "good": 19_656,
        "bad": 504,
        "empty": 0,
        "period_slices": 20_160,
    }
    assert result.budget_units["budget_minutes"] == pytest.approx(1008.0)
    assert result.budget_units["bad_minutes"] == 504
    assert result.budget_units["bad_minutes_left"] == pytest.approx(504.0)
    assert result.budget_remaining == pytest.approx(0.5)
    # SLI = good slices / slices with traffic = 19,656 / 20,160 = 0.975
    assert result.sli == pytest.approx(0.975)


def test_timeslices_empty_slices_and_burn(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # 1h window, 5-minute slices (12). Minutes 0-29 carry traffic: slices 0-5; slice 1 is bad (one minute
    # with 0 good of 10 -> 40/50 = 0.8 < 0.9). Slices 6-11 are empty: neither good nor bad.
    start = datetime(2026, 6, 1, 10)
    rows = [(start + timedelta(minutes=m), 10, 0 if m == 7 else 10) for m in range(30)]
    load_counts(warehouse, tmp_path, rows)
    text = slo_yaml(
        "{duration: 1h, isRolling: true}",
        "Timeslices",
        "target: 0.8, timeSliceTarget: 0.9, timeSliceWindow: 5m",
    )
    result = evaluate_one(warehouse, text, start + timedelta(hours=1))
    assert (result.timeslices["good"], result.timeslices["bad"], result.timeslices["empty"]) == (5, 1, 6)
    # SLI = 5 / 6; allowed bad slices = 0.2 * 12 = 2.4; consumed = 1 / 2.4.
    assert result.sli == pytest.approx(5 / 6)
    assert result.budget_consumed == pytest.approx(1 / 2.4)
    # 30m burn: the last 6 slices are empty -> 0 bad of 6 -> 0.0; 5m burn: one empty slice -> 0.0.
    assert result.burn_rates["30m"] == 0.0 and result.burn_rates["5m"] == 0.0
    # 1h burn: 1 bad of 12 slices -> (1/12) / 0.2.
    assert result.burn_rates["1h"] == pytest.approx((1 / 12) / 0.2)


def test_ratio_timeslices_average_slice_ratios(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # Two 30-minute slices: the first holds 1 request, not good (ratio 0); the second 90 requests, all good
    # (ratio 1). Occurrences would give 90/91; RatioTimeslices gives the mean of the slice ratios, 0.5.
    start = datetime(2026, 6, 1, 10)
    rows = [(start, 1, 0)] + [(start + timedelta(minutes=30 + m), 3, 3) for m in range(30)]
    load_counts(warehouse, tmp_path, rows)
    text = slo_yaml("{duration: 1h, isRolling: true}", "RatioTimeslices", "target: 0.9, timeSliceWindow: 30m")
    result = evaluate_one(warehouse, text, start + timedelta(hours=1))
    assert result.sli == pytest.approx(0.5)
    assert result.budget_consumed == pytest.approx(0.5 / 0.1)


def test_calendar_month_in_berlin_brute_force(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # Every minute from 2026-02-27 to 2026-04-02 UTC carries traffic: 7 requests, and every 97th minute one
    # fails. The March 2026 period in Europe/Berlin runs from 2026-02-28T23:00Z to 2026-03-31T22:00Z.
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 2, 27)
    rows = [(start + timedelta(minutes=m), 7, 6 if m % 97 == 0 else 7) for m in range(34 * 1440)]
    load_counts(warehouse, tmp_path, rows)
    as_of = datetime(2026, 3, 30, 17, 43)  # inside March, after the change to summer time on 29 March
    text = slo_yaml("{duration: 1M, calendar: {startTime: '2026-01-01 00:00:00', timeZone: Europe/Berlin}}")
    result = evaluate_one(warehouse, text, as_of)

    def in_march_local(moment: datetime) -> bool:
        local = moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(berlin)
        return (local.year, local.month) == (2026, 3)

    counted = [(n, g) for t, n, g in rows if in_march_local(t) and t < as_of]
    assert (result.good, result.total) == (sum(g for _, g in counted), sum(n for n, _ in counted))
    assert (result.period_start, result.period_end) == (datetime(2026, 2, 28, 23), datetime(2026, 3, 31, 22))
    assert result.window_start == datetime(2026, 2, 28, 23) and result.window_end == as_of
    # Every minute of the elapsed part had data.
    assert result.data_completeness == 1.0
    # The whole period is 31 days minus the hour lost to summer time: 44,580 minutes; 1% of it is the budget.
    assert result.budget_units["budget_minutes"] == pytest.approx(445.8)


def test_rolling_window_across_dst_brute_force(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # A rolling 28d window is 28 x 24 hours of absolute time whatever the local clocks do (Berlin changed on
    # 2026-03-29, inside this window).
    start = datetime(2026, 3, 1)
    rows = [(start + timedelta(minutes=m), 3, 2 if m % 50 == 0 else 3) for m in range(30 * 1440)]
    load_counts(warehouse, tmp_path, rows)
    as_of = datetime(2026, 3, 30, 6, 7)
    result = evaluate_one(warehouse, slo_yaml("{duration: 28d, isRolling: true}"), as_of)
    counted = [(n, g) for t, n, g in rows if as_of - timedelta(days=28) <= t < as_of]
    assert len(counted) == 28 * 1440
    assert (result.good, result.total) == (sum(g for _, g in counted), sum(n for n, _ in counted))


def test_corrections_exclude_events(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # 60 minutes of 10 requests; minutes 20-29 all fail (a planned maintenance). Without the correction:
    # 500 good of 600. With the maintenance excluded: 500 of 500, and 10 minutes excluded.
    start = datetime(2026, 6, 1, 10)
    rows = [(start + timedelta(minutes=m), 10, 0 if 20 <= m < 30 else 10) for m in range(60)]
    load_counts(warehouse, tmp_path, rows)
    text = slo_yaml("{duration: 1h, isRolling: true}")
    before = evaluate_one(warehouse, text, start + timedelta(hours=1))
    assert (before.good, before.total) == (500, 600)
    correction = add_correction(
        warehouse,
        slo="lb",
        reason="planned DB failover",
        added_by="alice",
        start=start + timedelta(minutes=20),
        end=start + timedelta(minutes=30),
        now=NOW,
    )
    after = evaluate_one(warehouse, text, start + timedelta(hours=1))
    assert (after.good, after.total) == (500, 500)
    assert after.budget_remaining == 1.0
    assert after.corrections_applied == {
        "count": 1,
        "ids": [correction.correction_id],
        "excluded_minutes": 10,
    }
    # Excluded minutes are not missing data: completeness stays 50 present of 50 expected.
    assert after.data_completeness == 1.0


def test_minimum_events_gives_no_data_with_reason(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    start = datetime(2026, 6, 1, 10)
    load_counts(warehouse, tmp_path, [(start, 40, 39)])
    text = slo_yaml(
        "{duration: 1h, isRolling: true}", extra="annotations: {sloscope.io/minimum-events: '50'}"
    )
    result = evaluate_one(warehouse, text, start + timedelta(hours=1))
    assert result.status == "no_data" and result.policy_state == "no_data"
    assert result.no_data_reason == "40 events in the window, fewer than the minimum of 50"
    assert result.sli is None and (result.good, result.total) == (39, 40)
    # One minute of 60 had data.
    assert result.data_completeness == pytest.approx(1 / 60)


def test_batched_and_per_minute_paths_agree(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from pipelines.slo import budget
    from pipelines.slo.budget import evaluate_slo

    batched_names: list[str] = []
    real_batched_sums = budget._batched_sums

    def spy(con: duckdb.DuckDBPyConnection, slos: list, as_of: datetime) -> dict:
        batched_names.extend(s.name for s in slos)
        return real_batched_sums(con, slos, as_of)

    monkeypatch.setattr(budget, "_batched_sums", spy)

    rng = np.random.default_rng(17)
    start = datetime(2026, 3, 20)
    lines = ["timestamp,service,operation,status_code,latency_ms"]
    for _ in range(30_000):
        t = start + timedelta(seconds=int(rng.integers(0, 12 * 86400)))
        lines.append(
            f"{t:%Y-%m-%dT%H:%M:%S}Z,{rng.choice(['a', 'b'])},{rng.choice(['x', 'y', 'z'])},"
            f"{rng.choice([200, 200, 201, 404, 500, 503])},{rng.lognormal(5, 1):.3f}"
        )
    ingest_file(warehouse, write(tmp_path / "e.csv", "\n".join(lines) + "\n"), now=NOW)
    filters = [
        ("{status_code: {lt: 500}}", "{service: a}", "good"),
        ("{latency_ms: {gt: 100, lte: 400}}", "{service: [a, b], operation: {ne: z}}", "good"),
        ("{status_code: {gte: 500}}", "{service: b, operation: [x, y]}", "bad"),
        ("{latency_ms: {gte: 1000}}", "{service: a}", "bad"),
        ("{success: true, latency_ms: {lt: 250}}", "{service: [a, b]}", "good"),
    ]
    windows = [
        "{duration: 7d, isRolling: true}",
        "{duration: 90m, isRolling: true}",
        "{duration: 1w, calendar: {startTime: '2026-03-02 00:00:00', timeZone: America/Chicago}}",
    ]
    docs = []
    for i, (part, total, role) in enumerate(filters):
        for j, window in enumerate(windows):
            docs.append(f"""
apiVersion: openslo/v1
kind: SLO
metadata: {{name: s{i}-{j}}}
spec:
  service: a
  indicator:
    spec:
      ratioMetric:
        {role}: {{metricSource: {{type: sloscope, spec: {part}}}}}
        total: {{metricSource: {{type: sloscope, spec: {total}}}}}
  timeWindow: [{window}]
  budgetingMethod: Occurrences
  objectives: [{{displayName: o, target: 0.95}}]
""")
    slos, problems = parse_documents("---".join(docs), "many.yaml")
    assert problems == []
    refresh_aggregates(warehouse, thresholds_of(slos))
    as_of = datetime(2026, 3, 29, 3, 17)  # Chicago changed clocks on 8 March; the week period is local
    batched = evaluate(warehouse, slos, as_of)
    assert sorted(batched_names) == sorted(s.name for s in slos)  # every one went through the batched pass
    one_by_one = [
        r for slo in sorted(slos, key=lambda s: s.name) for r in evaluate_slo(warehouse, slo, as_of)
    ]
    assert batched == one_by_one
    assert sum(r.total for r in batched) > 0 and len({r.window_start for r in batched}) >= 3


COMPOSITE = """
apiVersion: openslo/v1
kind: SLI
metadata: {name: b-ok}
spec:
  ratioMetric:
    good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}
    total: {metricSource: {type: sloscope, spec: {service: lb, operation: b}}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: journey}
spec:
  service: lb
  timeWindow: [{duration: 1h, isRolling: true}]
  budgetingMethod: Occurrences
  objectives:
    - displayName: step a
      target: 0.9
      compositeWeight: 1
      indicator:
        spec:
          ratioMetric:
            good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}
            total: {metricSource: {type: sloscope, spec: {service: lb, operation: a}}}
    - displayName: step b
      target: 0.99
      compositeWeight: 3
      indicatorRef: b-ok
"""


def test_composite_slo_components_and_weighted_whole(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Step a: 100 requests, 10 fail -> SLI 0.9, consumed (0.1 / 0.1) = 1.0.
    # Step b: 1,000 requests, 5 fail -> SLI 0.995, consumed (0.005 / 0.01) = 0.5.
    # Whole, weights 1 and 3: SLI (0.9 + 3 * 0.995) / 4 = 0.97125; consumed (1.0 + 3 * 0.5) / 4 = 0.625;
    # remaining 0.375; target (0.9 + 3 * 0.99) / 4 = 0.9675.
    start = datetime(2026, 6, 1, 10)
    lines = ["timestamp,service,operation,status_code"]
    lines += [
        f"{start + timedelta(seconds=20 * i):%Y-%m-%dT%H:%M:%S}Z,lb,a,{503 if i < 10 else 200}"
        for i in range(100)
    ]
    lines += [
        f"{start + timedelta(seconds=3 * i):%Y-%m-%dT%H:%M:%S}Z,lb,b,{500 if i < 5 else 200}"
        for i in range(1000)
    ]
    ingest_file(warehouse, write(tmp_path / "e.csv", "\n".join(lines) + "\n"), now=NOW)
    slos, problems = parse_documents(COMPOSITE, "journey.yaml")
    assert problems == []
    assert [s.name for s in slos] == ["journey/step a", "journey/step b"]
    assert [s.composite_weight for s in slos] == [1.0, 3.0]
    refresh_aggregates(warehouse, thresholds_of(slos))
    results = evaluate(warehouse, slos, start + timedelta(hours=1))
    assert [(r.slo, r.objective) for r in results] == [
        ("journey/step a", "step a"),
        ("journey/step b", "step b"),
        ("journey", "weighted whole"),
    ]
    a, b, whole = results
    assert (a.sli, a.budget_consumed) == (pytest.approx(0.9), pytest.approx(1.0))
    assert (b.sli, b.budget_consumed) == (pytest.approx(0.995), pytest.approx(0.5))
    assert whole.sli == pytest.approx(0.97125)
    assert whole.budget_consumed == pytest.approx(0.625) and whole.budget_remaining == pytest.approx(0.375)
    assert whole.target == pytest.approx(0.9675)
    assert (whole.good, whole.total) == (1085, 1100) and whole.status == "ok"


def test_composite_validation() -> None:
    _, problems = parse_documents(COMPOSITE.replace("compositeWeight: 3", "compositeWeight: 0"), "j.yaml")
    assert problems == ["j.yaml (document 2): spec.objectives[1]: compositeWeight must be positive, got 0.0"]
    mixed = COMPOSITE.replace("      indicatorRef: b-ok\n", "")
    _, problems = parse_documents(mixed, "j.yaml")
    assert problems == [
        "j.yaml (document 2): spec: in a composite SLO every objective needs an indicator or indicatorRef"
    ]


def threshold_slo(spec: str, method: str, objective: str) -> str:
    return f"""
apiVersion: openslo/v1
kind: SLO
metadata: {{name: fast}}
spec:
  service: lb
  indicator:
    spec:
      thresholdMetric:
        metricSource: {{type: sloscope, spec: {spec}}}
  timeWindow: [{{duration: 1h, isRolling: true}}]
  budgetingMethod: {method}
  objectives: [{objective}]
"""


def _latency_events(tmp_path: Path, con: duckdb.DuckDBPyConnection, rows: list[tuple[datetime, str]]) -> None:
    text = "timestamp,service,operation,status_code,latency_ms\n" + "".join(
        f"{t:%Y-%m-%dT%H:%M:%S}Z,lb,a,200,{ms}\n" for t, ms in rows
    )
    ingest_file(con, write(tmp_path / "lat.csv", text), now=NOW)


def test_threshold_metric_per_event(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # Latencies 100, 300, 300.5, 50 and one request without a latency. "lte 300": events with a latency
    # count (4), of which 100, 300 and 50 meet it (3): SLI 0.75.
    start = datetime(2026, 6, 1, 10)
    _latency_events(
        tmp_path,
        warehouse,
        [(start + timedelta(minutes=i), ms) for i, ms in enumerate(["100", "300", "300.5", "50", ""])],
    )
    text = threshold_slo(
        "{metric: latency_ms}", "Occurrences", "{displayName: p, op: lte, value: 300, target: 0.7}"
    )
    result = evaluate_one(warehouse, text, start + timedelta(hours=1))
    assert (result.good, result.total) == (3, 4) and result.sli == pytest.approx(0.75)


def test_percentile_objective_per_slice(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # 1h window of six 10-minute slices; objective: p90 <= 200 ms per slice, 90% of slices.
    # Slice 0: ten requests at 100 ms -> p90 100: good. Slice 1: eight at 100, two at 1000 -> p90 is the 9th
    # value (ceil(0.9 * 10)), 1000: bad. Slice 2: no requests: empty. Slices 3-5: ten at 150: good.
    # -> 4 good, 1 bad, 1 empty: SLI 4/5; allowed bad slices 0.1 * 6 = 0.6; consumed 1 / 0.6.
    start = datetime(2026, 6, 1, 10)
    rows = [(start + timedelta(seconds=30 * i), "100") for i in range(10)]
    rows += [(start + timedelta(minutes=10, seconds=30 * i), "1000" if i >= 8 else "100") for i in range(10)]
    for s in (3, 4, 5):
        rows += [(start + timedelta(minutes=10 * s, seconds=30 * i), "150") for i in range(10)]
    _latency_events(tmp_path, warehouse, rows)
    text = threshold_slo(
        "{metric: latency_ms, percentile: 90}",
        "Timeslices",
        "{displayName: p90, op: lte, value: 200, target: 0.9, timeSliceWindow: 10m}",
    )
    result = evaluate_one(warehouse, text, start + timedelta(hours=1))
    assert (
        result.timeslices["good"] == 4 and result.timeslices["bad"] == 1 and result.timeslices["empty"] == 1
    )
    assert result.sli == pytest.approx(0.8)
    assert result.budget_consumed == pytest.approx(1 / 0.6)
    assert result.budget_units["bad_minutes"] == 10


@pytest.mark.parametrize(
    ("spec", "method", "objective", "problem"),
    [
        (
            "{metric: cpu}",
            "Occurrences",
            "{op: lte, value: 1, target: 0.9}",
            "spec.indicator.spec.thresholdMetric.metricSource.spec.metric: expected latency_ms",
        ),
        (
            "{metric: latency_ms}",
            "Occurrences",
            "{target: 0.9}",
            "spec.objectives[0]: a thresholdMetric objective needs op and value",
        ),
        (
            "{metric: latency_ms, percentile: 95}",
            "Occurrences",
            "{op: lte, value: 300, target: 0.9}",
            "spec.budgetingMethod: percentile objectives are judged per time slice: use Timeslices",
        ),
        (
            "{metric: latency_ms, percentile: 95, status_code: 200}",
            "Timeslices",
            "{op: lte, value: 300, target: 0.9, timeSliceWindow: 5m}",
            "metricSource.spec.status_code: percentile objectives filter by service, operation and success",
        ),
        (
            "{metric: latency_ms, percentile: 101}",
            "Timeslices",
            "{op: lte, value: 300, target: 0.9, timeSliceWindow: 5m}",
            "metricSource.spec.percentile: expected a number in (0, 100], got 101",
        ),
    ],
)
def test_threshold_metric_validation(spec: str, method: str, objective: str, problem: str) -> None:
    _, problems = parse_documents(threshold_slo(spec, method, objective), "t.yaml")
    assert len(problems) == 1 and problem in problems[0], problems


# Regressions from the second review; numbers by hand.


def test_calendar_period_that_just_ended(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # A UTC calendar day evaluated at the next midnight reports the day that ended, not the empty new one.
    start = datetime(2026, 6, 1)
    load_counts(warehouse, tmp_path, [(start + timedelta(minutes=m), 10, 9) for m in range(1440)])
    text = slo_yaml(
        "{duration: 1d, calendar: {startTime: '2026-01-01 00:00:00', timeZone: UTC}}", objective="target: 0.8"
    )
    result = evaluate_one(warehouse, text, datetime(2026, 6, 2))
    assert (result.window_start, result.window_end) == (start, datetime(2026, 6, 2))
    # 14,400 requests, 1,440 bad: SLI 0.9; consumed 0.1 / 0.2 = 0.5.
    assert (result.total, result.sli, result.budget_consumed) == (
        14_400,
        pytest.approx(0.9),
        pytest.approx(0.5),
    )


def test_ratio_timeslices_units_follow_the_slice_sli(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Same data as the ratio-timeslices test: SLI 0.5 at 90% over 60 minutes -> budget 6 minutes,
    # bad minutes (1 - 0.5) * 60 = 30, left -24 (consistent with remaining -4).
    start = datetime(2026, 6, 1, 10)
    rows = [(start, 1, 0)] + [(start + timedelta(minutes=30 + m), 3, 3) for m in range(30)]
    load_counts(warehouse, tmp_path, rows)
    text = slo_yaml("{duration: 1h, isRolling: true}", "RatioTimeslices", "target: 0.9, timeSliceWindow: 30m")
    units = evaluate_one(warehouse, text, start + timedelta(hours=1)).budget_units
    assert units["budget_minutes"] == pytest.approx(6.0) and units["bad_minutes"] == pytest.approx(30.0)
    assert units["bad_minutes_left"] == pytest.approx(-24.0)


def test_percentile_slices_exclude_corrected_minutes(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # The one slow slice (10:10-10:20) of the percentile test is planned maintenance: it becomes empty.
    start = datetime(2026, 6, 1, 10)
    rows = [(start + timedelta(seconds=30 * i), "100") for i in range(10)]
    rows += [(start + timedelta(minutes=10, seconds=30 * i), "1000" if i >= 8 else "100") for i in range(10)]
    _latency_events(tmp_path, warehouse, rows)
    add_correction(
        warehouse,
        slo="fast",
        reason="maintenance",
        added_by="ops",
        start=start + timedelta(minutes=10),
        end=start + timedelta(minutes=20),
        now=NOW,
    )
    text = threshold_slo(
        "{metric: latency_ms, percentile: 90}",
        "Timeslices",
        "{displayName: p90, op: lte, value: 200, target: 0.9, timeSliceWindow: 10m}",
    )
    result = evaluate_one(warehouse, text, start + timedelta(hours=1))
    assert (result.timeslices["good"], result.timeslices["bad"], result.timeslices["empty"]) == (1, 0, 5)


def test_history_of_composites_is_replaced_not_appended(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    from datetime import date

    from pipelines.workflows import history, store_history

    start = datetime(2026, 6, 1, 10)
    lines = ["timestamp,service,operation,status_code"]
    lines += [f"{start + timedelta(seconds=20 * i):%Y-%m-%dT%H:%M:%S}Z,lb,a,200" for i in range(100)]
    lines += [f"{start + timedelta(seconds=3 * i):%Y-%m-%dT%H:%M:%S}Z,lb,b,200" for i in range(1000)]
    ingest_file(warehouse, write(tmp_path / "e.csv", "\n".join(lines) + "\n"), now=NOW)
    slos, _ = parse_documents(COMPOSITE.replace("duration: 1h", "duration: 1d"), "j.yaml")
    refresh_aggregates(warehouse, thresholds_of(slos))
    for _ in range(2):
        store_history(warehouse, slos, date(2026, 6, 1), at_risk_remaining=0.25)
    rows = history(warehouse, date(2026, 6, 1), date(2026, 6, 2))
    assert sorted(status.slo for _, status in rows) == ["journey", "journey/step a", "journey/step b"]


def test_composite_component_names_must_be_unique() -> None:
    other = (
        COMPOSITE
        + """---
apiVersion: openslo/v1
kind: SLO
metadata: {name: journey/step a}
spec:
  service: lb
  indicatorRef: b-ok
  timeWindow: [{duration: 1h, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.9}]
"""
    )
    _, problems = parse_documents(other, "j.yaml")
    assert problems == [
        "j.yaml (document 3): metadata.name: SLO 'journey/step a' is also defined in j.yaml (document 2)"
    ]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "compositeWeight: 3",
            "compositeWeight: .inf",
            "spec.objectives[1].compositeWeight: Input should be a finite number",
        ),
        ("target: 0.9\n", "target: .nan\n", "spec.objectives[0].target: Input should be a finite number"),
    ],
)
def test_non_finite_numbers_are_errors(old: str, new: str, problem: str) -> None:
    _, problems = parse_documents(COMPOSITE.replace(old, new, 1), "j.yaml")
    assert problems == [f"j.yaml (document 2): {problem}"]


def test_calendar_anchor_must_be_a_whole_minute() -> None:
    _, problems = parse_documents(
        slo_yaml("{duration: 1d, calendar: {startTime: '2026-01-01 00:00:30', timeZone: UTC}}"), "c.yaml"
    )
    assert problems == [
        "c.yaml: spec.timeWindow[0]: calendar.startTime '2026-01-01 00:00:30': must be on a "
        "whole minute (seconds 00)"
    ]


def raw_slo(raw_type: str, method: str = "Occurrences", objective: str = "target: 0.7") -> str:
    return f"""
apiVersion: openslo/v1
kind: SLO
metadata: {{name: ratios}}
spec:
  service: lb
  indicator:
    spec:
      ratioMetric:
        rawType: {raw_type}
        raw: {{metricSource: {{type: sloscope, spec: {{service: lb, operation: a}}}}}}
  timeWindow: [{{duration: 1h, isRolling: true}}]
  budgetingMethod: {method}
  objectives: [{{displayName: o, {objective}}}]
"""


def _ratios(tmp_path: Path, con: duckdb.DuckDBPyConnection, values: list[tuple[int, str]]) -> None:
    start = datetime(2026, 6, 1, 10)
    text = "timestamp,service,operation,ratio\n" + "".join(
        f"{start + timedelta(minutes=m):%Y-%m-%dT%H:%M:%S}Z,lb,a,{v}\n" for m, v in values
    )
    ingest_file(con, write(tmp_path / "r.csv", text), now=NOW)


def test_raw_success_ratios(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # Four points 1.0, 0.9, 0.8, 0.5 (and one invalid 1.5, quarantined): the mean is 0.8. At 70%:
    # consumed (1 - 0.8) / 0.3 = 2/3. total = 4 data points, good = round(3.2) = 3.
    _ratios(tmp_path, warehouse, [(0, "1.0"), (10, "0.9"), (40, "0.8"), (50, "0.5"), (55, "1.5")])
    reason = warehouse.execute("SELECT reason FROM quarantine").fetchone()[0]
    assert reason == "ratio '1.5' is not a number between 0 and 1"
    result = evaluate_one(warehouse, raw_slo("success"), datetime(2026, 6, 1, 11))
    assert result.sli == pytest.approx(0.8) and result.budget_consumed == pytest.approx(2 / 3)
    assert (result.good, result.total) == (3, 4)
    assert result.budget_units["bad_events"] is None and result.budget_units[
        "budget_minutes"
    ] == pytest.approx(18.0)


def test_raw_failure_ratios_and_timeslices(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # Failure ratios 0.0, 0.1 (first 30-minute slice: success mean 0.95, good at 0.9) and 0.2, 0.5 (second:
    # success mean 0.65, bad). Timeslices: 1 good, 1 bad -> SLI 0.5; RatioTimeslices: (0.95 + 0.65) / 2.
    _ratios(tmp_path, warehouse, [(0, "0"), (10, "0.1"), (40, "0.2"), (50, "0.5")])
    sliced = evaluate_one(
        warehouse,
        raw_slo("failure", "Timeslices", "target: 0.4, timeSliceTarget: 0.9, timeSliceWindow: 30m"),
        datetime(2026, 6, 1, 11),
    )
    assert (sliced.timeslices["good"], sliced.timeslices["bad"], sliced.sli) == (1, 1, pytest.approx(0.5))
    ratio = evaluate_one(
        warehouse,
        raw_slo("failure", "RatioTimeslices", "target: 0.4, timeSliceWindow: 30m"),
        datetime(2026, 6, 1, 11),
    )
    assert ratio.sli == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("rawType: success\n", "", "give raw and rawType together"),
        (
            "spec: {service: lb, operation: a}",
            "spec: {service: lb, status_code: 200}",
            "raw.metricSource.spec.status_code: raw ratios are filtered by service and operation only",
        ),
    ],
)
def test_raw_ratio_validation(old: str, new: str, problem: str) -> None:
    _, problems = parse_documents(raw_slo("success").replace(old, new), "r.yaml")
    assert len(problems) == 1 and problem in problems[0], problems


@pytest.mark.parametrize(
    ("latency", "op", "value", "good_slices"),
    [
        ("300", "lte", 300, 6),
        ("1000", "lt", 1000, 0),
        ("1003", "lte", 1000, 0),
        ("1000", "gte", 1000, 6),
        ("1000", "gt", 1000, 0),
        ("999.9", "lt", 1000, 6),
    ],
)
def test_percentile_verdicts_are_exact_at_the_bound(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, latency: str, op: str, value: int, good_slices: int
) -> None:
    # Every request at the same latency: p90 equals it exactly, so the verdict is the bare comparison
    # (300 <= 300 good; 1000 < 1000 bad; 1003 <= 1000 bad; 1000 >= 1000 good; 1000 > 1000 bad;
    # 999.9 < 1000 good).
    start = datetime(2026, 6, 1, 10)
    rows = [(start + timedelta(minutes=10 * s, seconds=30 * i), latency) for s in range(6) for i in range(10)]
    _latency_events(tmp_path, warehouse, rows)
    text = threshold_slo(
        "{metric: latency_ms, percentile: 90}",
        "Timeslices",
        f"{{displayName: p90, op: {op}, value: {value}, target: 0.9, timeSliceWindow: 10m}}",
    )
    result = evaluate_one(warehouse, text, start + timedelta(hours=1))
    assert (result.timeslices["good"], result.timeslices["bad"]) == (good_slices, 6 - good_slices)


def test_ratio_only_warehouse_evaluates_at_its_newest_minute(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Only ratio data, 10:00-10:50: as_of defaults to the end of 10:50 and the points are all seen.
    _ratios(tmp_path, warehouse, [(0, "1.0"), (10, "0.9"), (40, "0.8"), (50, "0.5")])
    slos, _ = parse_documents(raw_slo("success"), "r.yaml")
    refresh_aggregates(warehouse, thresholds_of(slos))
    (result,) = evaluate(warehouse, slos)
    assert result.window_end == datetime(2026, 6, 1, 10, 51) and result.total == 4


def test_alert_state_two_minutes_into_an_outage(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    from pipelines.workflows import alert_state

    # Two days of 100 good requests a minute, then a full outage; evaluated 2 minutes into it, 99.9% over 30d.
    # 1h/5m page: the hour holds 58 good and 2 bad minutes -> 200 / 6,000 bad -> burn (1/30) / 0.001 = 33.3;
    # the 5 minutes hold 200 / 500 -> burn 400; both >= 14.4: firing.
    # 3d/6h ticket: the 3 days hold 200 bad of 288,200 -> burn 0.694 < 1: not firing yet (it fires at k = 3).
    start = datetime(2026, 3, 1)
    rows = [(start + timedelta(minutes=m), 100, 100) for m in range(2 * 1440)]
    rows += [(start + timedelta(minutes=2 * 1440 + m), 100, 0) for m in range(2)]
    load_counts(warehouse, tmp_path, rows)
    slos, _ = parse_documents(
        slo_yaml("{duration: 30d, isRolling: true}", objective="target: 0.999"), "a.yaml"
    )
    refresh_aggregates(warehouse, {})
    state = {
        (r["severity"], r["long_window"]): r
        for r in alert_state(warehouse, slos, start + timedelta(days=2, minutes=2))
    }
    page = state[("page", "1h")]
    assert page["firing"] and page["factor"] == pytest.approx(14.4)
    assert page["burn_long"] == pytest.approx(100 / 3) and page["burn_short"] == pytest.approx(400.0)
    ticket = state[("ticket", "3d")]
    assert not ticket["firing"] and ticket["burn_long"] == pytest.approx((200 / 288_200) / 0.001)

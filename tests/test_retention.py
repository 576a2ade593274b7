"""Retention: cutoffs per tier, exact rows deleted, evaluation unchanged, pending data protected."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from pipelines import workflows
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.retention import (
    RetentionError,
    RetentionPolicy,
    apply_retention,
    parse_retention,
    requested_cutoffs,
    window_problems,
)
from pipelines.slo.spec import SloDefinition, load_slos
from tests.conftest import write

SLOS = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-availability}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {success: true}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99%", target: 0.99}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: api-latency}
spec:
  service: api
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {latency_ms: {lte: 300}}}}
        total: {metricSource: {type: sloscope, spec: {service: api}}}
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "40%", target: 0.4}]
"""

NOW = datetime(2026, 6, 1, 12, 0)
DAYS = 500  # day k = 0..499 before NOW holds one row per file, at 06:00 UTC


def _moment(k: int, hour: int = 6) -> datetime:
    return datetime(2026, 6, 1, hour, 0) - timedelta(days=k)


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M}:00Z"


def _land(tmp_path: Path) -> list[SloDefinition]:
    # shop: counts, 100 requests and 1 failure a day -> 2 minute rows a day (a success and a failure row).
    counts = ["timestamp,service,operation,total,good"]
    counts += [f"{_iso(_moment(k))},shop,pay,100,99" for k in range(DAYS)]
    write(tmp_path / "landing" / "shop.csv", "\n".join(counts) + "\n")
    # api: one event a day, latency 100..700 ms in a weekly cycle -> 1 minute row a day per table.
    events = ["timestamp,service,operation,status_code,latency_ms"]
    events += [f"{_iso(_moment(k))},api,get,200,{100 + (k % 7) * 100}" for k in range(DAYS)]
    write(tmp_path / "landing" / "api.csv", "\n".join(events) + "\n")
    write(tmp_path / "slos" / "slos.yaml", SLOS)
    return load_slos(tmp_path / "slos")


@pytest.fixture
def loaded(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> list[SloDefinition]:
    slos = _land(tmp_path)
    ingest_paths(warehouse, [tmp_path / "landing"], now=NOW)
    workflows.refresh(warehouse, slos)
    return slos


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]


def _days(con: duckdb.DuckDBPyConnection, table: str, column: str = "bucket_start") -> int:
    query = f"SELECT count(DISTINCT CAST({column} AS DATE)) FROM {table}"
    return con.execute(query).fetchone()[0]  # type: ignore[index]


def _evaluate(con: duckdb.DuckDBPyConnection, slos: list[SloDefinition]) -> list[dict]:
    _, results = workflows.evaluate_and_store(
        con, slos, as_of=NOW, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
    )
    return [r.to_json() for r in results]


def test_cutoffs_are_now_minus_keep_floored_to_the_utc_day() -> None:
    cutoffs = requested_cutoffs(RetentionPolicy(), NOW)
    # 2026-06-01 12:00 minus 14 / 90 / 400 days, then midnight: 05-18, 03-03, 2025-04-27.
    assert cutoffs == {
        "raw": datetime(2026, 5, 18),
        "quarantine": datetime(2026, 3, 3),
        "minute": datetime(2026, 3, 3),
        "hour": datetime(2025, 4, 27),
        "day": None,
    }
    # An aware `now` is converted to UTC first: 14:00+02:00 is 12:00 UTC.
    aware = datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert requested_cutoffs(RetentionPolicy(), aware) == cutoffs


def test_policy_deletes_each_tier_before_its_cutoff(
    loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection
) -> None:
    before = _evaluate(warehouse, loaded)
    report = apply_retention(warehouse, RetentionPolicy(), now=NOW)

    # Rows sit at 06:00 on day NOW-k and a tier keeping N days cuts at midnight of day NOW-N, so day k is
    # kept exactly when k <= N: raw 15 days (k 0..14), minute 91, hour 401, day all 500.
    assert _count(warehouse, "raw_counts") == 15 and _count(warehouse, "raw_events") == 15
    assert report.deleted["raw_counts"] == 485 and report.deleted["raw_events"] == 485
    assert _days(warehouse, "sli_counts_minute") == 91
    assert _count(warehouse, "sli_counts_minute") == 91 * 3  # shop success + failure rows, api one row
    assert report.deleted["sli_counts_minute"] == (500 - 91) * 3
    assert _count(warehouse, "latency_histogram_minute") == 91
    assert _count(warehouse, "sli_threshold_minute") == 91
    assert _days(warehouse, "sli_counts_hour") == 401 and _count(warehouse, "sli_counts_hour") == 401 * 3
    assert _count(warehouse, "latency_histogram_hour") == 401
    assert _count(warehouse, "sli_threshold_hour") == 401
    assert _days(warehouse, "sli_counts_day") == 500 and _count(warehouse, "sli_counts_day") == 500 * 3
    assert _count(warehouse, "latency_histogram_day") == 500
    assert report.deleted["sli_counts_day"] == 0 and report.cutoffs["day"] is None
    assert report.protections == []
    # Daily totals survive intact: 500 days x 100 shop requests + 500 api events.
    assert warehouse.execute("SELECT sum(requests) FROM sli_counts_day").fetchone() == (500 * 100 + 500,)
    assert _count(warehouse, "ingested_files") == 2  # never pruned: re-landed files stay recognised

    after = _evaluate(warehouse, loaded)
    assert after == before
    by_slo = {s["slo"]: s for s in after}
    # 28-day window [05-04 12:00, 06-01 12:00) holds days k = 0..27: 28 rows.
    assert (by_slo["shop-availability"]["good"], by_slo["shop-availability"]["total"]) == (2772, 2800)
    # Latency 100 + 100 * (k % 7) <= 300 for k % 7 in {0, 1, 2}: 3 of every 7 days, 4 whole weeks.
    assert (by_slo["api-latency"]["good"], by_slo["api-latency"]["total"]) == (12, 28)


def test_reapplying_deletes_nothing(
    loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection
) -> None:
    first = apply_retention(warehouse, RetentionPolicy(), now=NOW)
    assert first.total_deleted > 0
    again = apply_retention(warehouse, RetentionPolicy(), now=NOW + timedelta(hours=11))  # same UTC day
    assert again.total_deleted == 0
    assert again.cutoffs == first.cutoffs


def test_pending_dirty_range_protects_the_rows_it_will_recompute(
    tmp_path: Path, loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection
) -> None:
    # A late file for days 30 and 20 lands and is not aggregated yet: its dirty range starts on day 30,
    # so every tier keeps day 30 onwards (aggregation recomputes those minutes from all raw rows in them).
    late = "timestamp,service,operation,total,good\n"
    late += f"{_iso(_moment(30, hour=7))},shop,pay,10,5\n{_iso(_moment(20, hour=7))},shop,pay,10,5\n"
    write(tmp_path / "late" / "shop-late.csv", late)
    ingest_paths(warehouse, [tmp_path / "late"], now=NOW)

    report = apply_retention(warehouse, RetentionPolicy(), now=NOW)
    day_30 = datetime(2026, 5, 2)
    assert report.cutoffs["raw"] == day_30
    assert report.requested["raw"] == datetime(2026, 5, 18)
    assert any("pending dirty range" in note for note in report.protections)
    # Days 0..30 of the original files (31 rows each) plus the 2 late rows.
    assert _count(warehouse, "raw_counts") == 31 + 2 and _count(warehouse, "raw_events") == 31

    workflows.refresh(warehouse, loaded)
    # Day 20's daily shop total now holds the original 100 and the late 10: nothing recomputed from loss.
    query = "SELECT sum(requests) FROM sli_counts_day WHERE service = 'shop' AND bucket_start = $day"
    assert warehouse.execute(query, {"day": datetime(2026, 5, 12)}).fetchone() == (110,)
    assert warehouse.execute(query, {"day": day_30}).fetchone() == (110,)
    # With nothing pending, the next run cuts at the policy's cutoff again.
    assert apply_retention(warehouse, RetentionPolicy(), now=NOW).cutoffs["raw"] == datetime(2026, 5, 18)
    assert _count(warehouse, "raw_counts") == 15


def test_raw_rows_never_aggregated_are_kept_even_without_dirty_ranges(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    _land(tmp_path)
    ingest_paths(warehouse, [tmp_path / "landing"], now=NOW)
    warehouse.execute("DELETE FROM dirty_ranges")  # simulate ranges lost without aggregating
    report = apply_retention(warehouse, RetentionPolicy(), now=NOW)
    assert report.deleted["raw_counts"] == 0 and report.deleted["raw_events"] == 0
    assert _count(warehouse, "raw_counts") == 500
    assert any("no minute aggregate" in note for note in report.protections)


def test_forever_keeps_everything(loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection) -> None:
    tiers = ("raw", "minute", "hour", "day", "quarantine")
    policy = parse_retention(dict.fromkeys(tiers, "forever"), "test")
    report = apply_retention(warehouse, policy, now=NOW)
    assert report.total_deleted == 0 and set(report.cutoffs.values()) == {None}
    assert _count(warehouse, "raw_counts") == 500


def test_parse_retention_defaults_and_values() -> None:
    assert parse_retention({}, "settings.toml [retention]") == RetentionPolicy()
    policy = parse_retention(
        {"raw": "7d", "minute": "30d", "hour": "365d", "day": "forever", "quarantine": "30d"}, "s"
    )
    assert policy == RetentionPolicy(
        raw=timedelta(days=7),
        minute=timedelta(days=30),
        hour=timedelta(days=365),
        day=None,
        quarantine=timedelta(days=30),
    )


def test_parse_retention_lists_every_problem() -> None:
    with pytest.raises(RetentionError) as info:
        parse_retention(
            {"raw": "2w", "minute": "0d", "hour": 30, "days": "1d", "quarantine": "forever"},
            "settings.toml [retention]",
        )
    problems = info.value.problems
    assert len(problems) == 4, problems
    assert problems[0].startswith("unknown key 'days'")
    assert "raw: expected a number of days such as '14d'" in problems[1]
    assert "minute: must keep at least 1 day" in problems[2]
    assert "hour: expected a number of days" in problems[3]
    assert str(info.value).startswith("settings.toml [retention]: invalid retention policy")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"minute": "90d", "hour": "30d"}, "hour (30d) is kept shorter than minute (90d)"),
        ({"hour": "400d", "day": "100d"}, "day (100d) is kept shorter than hour (400d)"),
        ({"raw": "120d", "minute": "90d"}, "minute (90d) is kept shorter than raw (120d)"),
        ({"raw": "forever"}, "minute (90d) is kept shorter than raw (forever)"),
    ],
)
def test_parse_retention_refuses_tiers_out_of_order(settings: dict, message: str) -> None:
    with pytest.raises(RetentionError) as info:
        parse_retention(settings, "settings.toml [retention]")
    assert any(p.startswith(message) for p in info.value.problems), info.value.problems


def test_apply_refuses_a_policy_out_of_order(warehouse: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(RetentionError, match="hour"):
        apply_retention(warehouse, RetentionPolicy(hour=timedelta(days=10)), now=NOW)


def test_window_problems_name_slos_reading_past_minute_retention() -> None:
    windows = {"quarterly": timedelta(days=92), "monthly": timedelta(days=30)}
    assert window_problems(RetentionPolicy(), windows) == [
        "SLO quarterly reads 92d of 1-minute data but minute aggregates are kept 90d"
    ]
    assert window_problems(RetentionPolicy(minute=None, hour=None), windows) == []

"""Retention: cutoffs per tier, exact rows deleted, evaluation unchanged, pending data protected."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, materialize

from assets.maintenance import retention, run_moment
from pipelines import sqlfiles, workflows
from pipelines.resources import SloscopeResource
from pipelines.slo import retention as retention_module
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.retention import (
    RetentionError,
    RetentionPolicy,
    apply_retention,
    longest_span,
    parse_retention,
    read_watermarks,
    requested_cutoffs,
    slo_spans,
    window_problems,
)
from pipelines.slo.spec import SloDefinition, load_slos
from pipelines.warehouse import connect
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
    # The watermark records the cutoff actually used, not the one the policy asked for.
    assert read_watermarks(warehouse)["raw"] == day_30
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
    assert read_watermarks(warehouse)["raw"] == datetime(2026, 5, 18)


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


# Cutoffs of the default policy as of NOW (see test_cutoffs_are_now_minus_keep_floored_to_the_utc_day).
CUTOFFS = {
    "hour": datetime(2025, 4, 27),
    "minute": datetime(2026, 3, 3),
    "quarantine": datetime(2026, 3, 3),
    "raw": datetime(2026, 5, 18),
}


def _watermark_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("SELECT tier, cutoff, applied_at FROM retention_watermarks ORDER BY tier").fetchall()


def test_watermarks_record_each_cut_tier_and_never_go_back(
    loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection
) -> None:
    report = apply_retention(warehouse, RetentionPolicy(), now=NOW)
    # One row per tier with a cutoff (day is kept forever: no row), applied_at = the run's now.
    assert _watermark_rows(warehouse) == [(tier, cut, NOW) for tier, cut in sorted(CUTOFFS.items())]
    assert report.watermarks == CUTOFFS
    # A run as of 30 days earlier (a re-run of an old tick) asks for older cutoffs: the rows before the
    # newer ones are gone all the same, so the watermarks stay; only applied_at moves.
    earlier = NOW - timedelta(days=30)
    again = apply_retention(warehouse, RetentionPolicy(), now=earlier)
    assert again.cutoffs["raw"] == datetime(2026, 4, 18) and again.total_deleted == 0
    assert _watermark_rows(warehouse) == [(tier, cut, earlier) for tier, cut in sorted(CUTOFFS.items())]
    # A later run moves them forward by a day.
    later = apply_retention(warehouse, RetentionPolicy(), now=NOW + timedelta(days=1))
    assert later.watermarks == {tier: cut + timedelta(days=1) for tier, cut in CUTOFFS.items()}
    # Day k = 14 (raw), 90 (minute: 3 rows) and 400 (hour: 3 rows) went.
    assert later.deleted_by_tier() == {
        "raw": 2,
        "quarantine": 0,
        "minute": 3 + 1 + 1 + 0,
        # ... plus one presence row per service (shop, api) for that day's one hour with data.
        "hour": 3 + 1 + 1 + 2,
        "day": 0,
    }


def test_a_crash_between_tiers_leaves_nothing_deleted_and_no_watermark(
    loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    hits: list[str] = []

    def crash_at_second(name: str) -> None:
        hits.append(name)
        if len(hits) == 2:
            raise RuntimeError("killed")  # stands in for SIGKILL: the transaction never commits

    monkeypatch.setattr(retention_module, "fault_point", crash_at_second)
    with pytest.raises(RuntimeError, match="killed"):
        apply_retention(warehouse, RetentionPolicy(), now=NOW)
    assert hits == ["retention.after_tier", "retention.after_tier"]  # raw deleted, quarantine deleted
    assert _count(warehouse, "raw_counts") == 500 and _watermark_rows(warehouse) == []
    monkeypatch.setattr(retention_module, "fault_point", hits.append)
    apply_retention(warehouse, RetentionPolicy(), now=NOW)
    assert len(hits) == 2 + 5  # once per tier: raw, quarantine, minute, hour, day


def _mismatches(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(sqlfiles.sql("check_rollups")).fetchall()


def _bump(con: duckdb.DuckDBPyConnection, table: str, k: int, by: int = 5) -> None:
    """Adds ``by`` requests to shop's success row of day k in one rollup table."""
    day = datetime(2026, 6, 1) - timedelta(days=k)
    con.execute(
        f"UPDATE {table} SET requests = requests + {by} WHERE service = 'shop' AND success "
        "AND bucket_start >= $day AND bucket_start < $day + INTERVAL 1 DAY",
        {"day": day},
    )


def test_check_rollups_compares_only_the_kept_ranges(
    loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection
) -> None:
    assert _mismatches(warehouse) == []
    apply_retention(warehouse, RetentionPolicy(), now=NOW)
    # Minutes keep days 0..90, hours 0..400, days all 500: without the watermarks, hours would hold
    # 401 - 91 days more than minutes, and days 99 more than hours.
    assert _mismatches(warehouse) == []

    # Shop has 100 requests a day. An hour inside the kept minute range off by 5 fails both comparisons:
    # minutes 91 x 100 = 9100 against hours 9105, and hours 401 x 100 + 5 = 40105 against days 40100.
    _bump(warehouse, "sli_counts_hour", 10)
    assert _mismatches(warehouse) == [("shop", 9100, 9105, None), ("shop", None, 40105, 40100)]
    _bump(warehouse, "sli_counts_hour", 10, by=-5)
    # An hour kept but older than the minutes (day 200) is compared with its day only.
    _bump(warehouse, "sli_counts_hour", 200)
    assert _mismatches(warehouse) == [("shop", None, 40105, 40100)]
    _bump(warehouse, "sli_counts_hour", 200, by=-5)
    # A day older than every kept hour (day 450) has nothing left to be compared with.
    _bump(warehouse, "sli_counts_day", 450)
    assert _mismatches(warehouse) == []


def test_check_rollups_uses_the_watermark_not_the_oldest_minute(
    loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection
) -> None:
    apply_retention(warehouse, RetentionPolicy(), now=NOW)
    # Minutes of days 85..90 vanish without retention (the watermark stays at day 90, 2026-03-03): the
    # oldest minute, floored to its day, would now be day 84 and hide exactly the loss.
    warehouse.execute(
        "DELETE FROM sli_counts_minute WHERE service = 'shop' AND bucket_start < $until",
        {"until": datetime(2026, 6, 1) - timedelta(days=84)},
    )
    assert _mismatches(warehouse) == [("shop", 9100 - 6 * 100, 9100, None)]


def test_check_rollups_without_watermarks_compares_everything(
    loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Nothing was ever cut, so minutes missing anywhere are a real loss: day 300's 100 shop requests.
    warehouse.execute(
        "DELETE FROM sli_counts_minute WHERE service = 'shop' AND CAST(bucket_start AS DATE) = $day",
        {"day": datetime(2026, 6, 1) - timedelta(days=300)},
    )
    assert _mismatches(warehouse) == [("shop", 49900, 50000, None)]


QUARTERLY = """
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-quarterly}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {success: true}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 1Q, calendar: {startTime: '2026-01-01 00:00:00', timeZone: UTC}}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99%", target: 0.99}]
"""


def test_longest_span_of_rolling_and_calendar_windows(tmp_path: Path) -> None:
    write(tmp_path / "slos" / "slos.yaml", SLOS + QUARTERLY)
    spans = slo_spans(load_slos(tmp_path / "slos"), NOW)
    # Rolling 28d reads 28 days (the 3-day burn window is shorter). Quarters from Q2 2026: Apr-Jun 91
    # days, Jul-Sep 92, Oct-Dec 92, Jan-Mar 2027 90: the longest is 92.
    assert spans == {
        "api-latency": timedelta(days=28),
        "shop-availability": timedelta(days=28),
        "shop-quarterly": timedelta(days=92),
    }
    assert window_problems(RetentionPolicy(), spans) == [
        "SLO shop-quarterly reads 92d of 1-minute data but minute aggregates are kept 90d"
    ]
    quarterly = load_slos(tmp_path / "slos")[-1]
    assert longest_span(quarterly, NOW, periods=1) == timedelta(days=91)  # the current quarter only


def test_run_moment_prefers_the_scheduled_tick() -> None:
    tick = {".dagster/scheduled_execution_time": "2026-06-01T05:30:00+02:00"}
    assert run_moment(tick) == datetime(2026, 6, 1, 3, 30)
    assert run_moment({"dagster/scheduled_execution_time": "2026-06-01T03:30:00+00:00"}) == datetime(
        2026, 6, 1, 3, 30
    )
    before = workflows.utc_now()
    assert before <= run_moment({}) <= workflows.utc_now()


def test_retention_asset_deletes_per_tier_and_is_idempotent(tmp_path: Path) -> None:
    _land(tmp_path)
    write(tmp_path / "slos" / "quarterly.yaml", QUARTERLY.lstrip("-\n"))
    db = tmp_path / "warehouse.duckdb"
    con = connect(db)
    ingest_paths(con, [tmp_path / "landing"], now=NOW)
    workflows.refresh(con, load_slos(tmp_path / "slos"))
    con.close()
    resource = SloscopeResource(
        warehouse=str(db),
        landing=str(tmp_path / "landing"),
        reports=str(tmp_path / "reports"),
        slos=str(tmp_path / "slos"),
    )
    # The schedule's tick, not the wall clock, decides the cutoffs: 03:30 on NOW's day.
    tags = {"dagster/scheduled_execution_time": "2026-06-01T03:30:00+00:00"}

    def run() -> dict:
        with DagsterInstance.ephemeral() as instance:
            result = materialize([retention], resources={"sloscope": resource}, instance=instance, tags=tags)
        assert result.success
        (event,) = result.get_asset_materialization_events()
        return {k: v.value for k, v in event.materialization.metadata.items()}

    first = run()
    # As in test_policy_deletes_each_tier_before_its_cutoff: 485 raw rows per file; (500 - 91) days of 3
    # rows per minute table (counts) and 1 row (threshold, histogram); (500 - 401) days at the hour, where
    # each day also has one presence row per service (shop, api).
    assert first["deleted_tier_raw"] == 2 * 485
    assert first["deleted_tier_minute"] == (500 - 91) * (3 + 1 + 1)
    assert first["deleted_tier_hour"] == (500 - 401) * (3 + 1 + 1 + 2)
    assert first["deleted_tier_day"] == 0 and first["deleted_tier_quarantine"] == 0
    assert first["deleted_sli_counts_minute"] == (500 - 91) * 3
    assert first["rows_deleted"] == 970 + 409 * 5 + 99 * 7
    assert first["cutoff_raw"] == "2026-05-18T00:00:00" and first["cutoff_day"] == "forever"
    assert first["watermark_minute"] == "2026-03-03T00:00:00"
    assert first["protections"] == "none" and first["now"] == "2026-06-01T03:30:00"
    assert first["window_problems"] == 1
    assert "shop-quarterly reads 92d" in first["window_warnings"]
    assert (
        "| raw | 2026-05-18 | 2026-05-18 | raw_events 485, raw_counts 485, raw_ratios 0 | 970 |"
        in first["tiers"]
    )

    second = run()
    assert second["rows_deleted"] == 0 and second["cutoff_raw"] == first["cutoff_raw"]
    with connect(db, read_only=True) as check:
        assert _count(check, "raw_counts") == 15
        assert _mismatches(check) == []


LATENCY_500 = """
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: api-latency-500}
spec:
  service: api
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {latency_ms: {lte: 500}}}}
        total: {metricSource: {type: sloscope, spec: {service: api}}}
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "40%", target: 0.4}]
"""


def test_end_to_end_retention_keeps_evaluations_rollups_and_threshold_history(
    tmp_path: Path, loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection
) -> None:
    # 500 days were ingested, aggregated and evaluated (fixture `loaded`); now retention runs.
    before = _evaluate(warehouse, loaded)
    report = apply_retention(warehouse, RetentionPolicy(), now=NOW)
    assert report.total_deleted > 0
    # 28-day windows lie inside the 90 kept days of minutes: every figure is exactly as before.
    assert _evaluate(warehouse, loaded) == before
    assert _mismatches(warehouse) == []

    # An SLO adds a 500 ms threshold for api; 300 ms stays declared.
    write(tmp_path / "slos" / "latency-500.yaml", LATENCY_500.lstrip("-\n"))
    slos = load_slos(tmp_path / "slos")
    aggregated = workflows.refresh(warehouse, slos)
    assert aggregated.thresholds_added == [("api", 500.0)]
    per_threshold = "SELECT threshold_ms, count(*), sum(le_count) FROM {} GROUP BY 1 ORDER BY 1"
    # 300 ms keeps every day the tiers keep (500 days, 401 hours, 91 minutes) although raw events of only
    # 15 days remain; latency 100 + 100 (k % 7) <= 300 on k % 7 in {0, 1, 2}: 500 days hold 71 whole
    # weeks (213) plus k = 497..499 (k % 7 = 0, 1, 2): 216. 500 ms has the 15 raw days (k 0..14): k % 7
    # <= 4 on k 0..4, 7..11, 14: 11 events.
    assert warehouse.execute(per_threshold.format("sli_threshold_day")).fetchall() == [
        (300.0, 500, 216),
        (500.0, 15, 11),
    ]
    assert [row[:2] for row in warehouse.execute(per_threshold.format("sli_threshold_hour")).fetchall()] == [
        (300.0, 401),
        (500.0, 15),
    ]
    assert [
        row[:2] for row in warehouse.execute(per_threshold.format("sli_threshold_minute")).fetchall()
    ] == [
        (300.0, 91),
        (500.0, 15),
    ]
    # The 300 ms SLO evaluates exactly as before; the 500 ms one is told its counts start 2026-05-18.
    after = {s["slo"]: s for s in _evaluate(warehouse, slos)}
    assert {k: v for k, v in after.items() if k != "api-latency-500"} == {s["slo"]: s for s in before}
    (gap,) = aggregated.threshold_gaps
    assert (gap.service, gap.threshold_ms, gap.exact_from) == ("api", 500.0, datetime(2026, 5, 18))
    assert gap.affects(datetime(2026, 5, 4, 12))  # its 28-day window starts 2026-05-04 12:00
    assert _mismatches(warehouse) == []


def test_a_threshold_declared_after_retention_excludes_the_time_without_exact_counts(
    tmp_path: Path, loaded: list[SloDefinition], warehouse: duckdb.DuckDBPyConnection
) -> None:
    apply_retention(warehouse, RetentionPolicy(), now=NOW)
    write(tmp_path / "slos" / "latency-500.yaml", LATENCY_500.lstrip("-\n"))
    slos = load_slos(tmp_path / "slos")
    workflows.refresh(warehouse, slos)
    (status,) = [s for s in _evaluate(warehouse, slos) if s["slo"] == "api-latency-500"]
    # The 28-day window as of 2026-06-01 12:00 starts 2026-05-04 12:00 and holds the events of k = 0..27
    # (06:00 on 2026-06-01 back to 2026-05-05). Exact 500 ms counts start 2026-05-18 (raw events of
    # k = 0..14 were kept), so k = 15..27 are excluded, not counted as slow: total 15. Good (latency
    # 100 + 100 (k % 7) <= 500, i.e. k % 7 <= 4) on k = 0..4, 7..11, 14: 11. Counting the excluded days
    # as all slow would have given 11 of 28 and a breach of the 40% target.
    assert (status["good"], status["total"]) == (11, 15)
    assert status["sli"] == pytest.approx(11 / 15)
    assert status["corrections_applied"]["ids"] == [-1]
    assert status["corrections_applied"]["automatic"] == [
        "no exact latency counts before 2026-05-18: the threshold was declared after retention deleted "
        "the raw events it would be counted from"
    ]
    # 2026-05-04 12:00 .. 2026-05-18 00:00 excluded: 13.5 days of the window's 28.
    assert status["corrections_applied"]["excluded_minutes"] == int(13.5 * 24 * 60)
    assert status["status"] != "breached"

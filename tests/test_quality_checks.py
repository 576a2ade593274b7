"""The completeness, timeliness and accuracy asset checks on hand-built warehouses.

Rows are inserted straight into the raw tables (ingestion is not what is tested), so every expected
figure is counted here: minutes with data, minutes missing, shares, minutes behind.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey

import assets.quality as quality_checks
from assets.quality import data_fresh, minutes_complete, raw_events_valid
from pipelines.resources import SloscopeResource
from pipelines.settings import REPO_ROOT
from pipelines.warehouse import open_warehouse

T0 = datetime(2026, 3, 2, 10, 0)
EVENTS = AssetKey("raw_events")
COUNTS = AssetKey("raw_counts")


def _resource(tmp_path: Path, **settings: Any) -> SloscopeResource:
    return SloscopeResource(
        warehouse=str(tmp_path / "w.duckdb"),
        landing=str(tmp_path / "landing"),
        reports=str(tmp_path / "reports"),
        slos=str(REPO_ROOT / "data" / "slos"),
        **settings,
    )


def _insert_events(resource: SloscopeResource, service: str, per_minute: dict[int, int], **row: Any) -> None:
    """per_minute: minute offset from T0 -> number of events in it (spread over the minute)."""
    values = {"latency_ms": 10.0, "status_code": 200, **row}
    rows = [
        (
            T0 + timedelta(minutes=m, seconds=i * 60 // n),
            service,
            values["status_code"],
            values["latency_ms"],
            m,
        )
        for m, n in per_minute.items()
        for i in range(n)
    ]
    with open_warehouse(resource.warehouse) as con:
        con.executemany(
            "INSERT INTO raw_events (ts, service, operation, status_code, latency_ms, file_id, source_row) "
            "VALUES ($1, $2, 'get', $3, $4, 7, $5)",
            [list(r) for r in rows],
        )


def _insert_counts(resource: SloscopeResource, service: str, minutes: list[int]) -> None:
    # Two operations per minute, as a counter export writes them; total 0 still counts as data.
    with open_warehouse(resource.warehouse) as con:
        con.executemany(
            "INSERT INTO raw_counts (ts, service, operation, total, good, file_id, source_row) "
            "VALUES ($1, $2, $3, $4, $4, 8, $5)",
            [
                [T0 + timedelta(minutes=m), service, op, m % 3, m]
                for m in minutes
                for op in ("login", "refresh")
            ],
        )


def _results(check: Any, resource: SloscopeResource) -> dict[AssetKey, AssetCheckResult]:
    return {result.asset_key: result for result in check(resource)}


def _series(result: AssetCheckResult) -> str:
    return result.metadata["series"].value  # type: ignore[union-attr]


# A 7-minute gap (minutes 20..26) in 60 minutes: 53 minutes with data, 7 missing, share 7/60 = 0.1167.
GAP = range(20, 27)
WITH_GAP = [m for m in range(60) if m not in GAP]


def test_count_series_with_a_seven_minute_gap_misses_7_of_60(tmp_path: Path) -> None:
    resource = _resource(tmp_path, completeness_hours=1, completeness_tolerance=0.11)
    _insert_counts(resource, "auth", WITH_GAP)

    result = _results(minutes_complete, resource)[COUNTS]

    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    assert result.metadata["worst_missing_share"].value == pytest.approx(7 / 60)
    assert result.metadata["missing_minutes"].value == 7
    assert (
        "| auth | counts | 2026-03-02 10:00 – 2026-03-02 10:59 | 1 | 60 | 7 | 0 | 11.67% | **FAIL** |"
        in _series(result)
    )
    gaps = result.metadata["gaps"].value  # type: ignore[union-attr]
    assert "| auth | counts | 2026-03-02 10:20 | 2026-03-02 10:26 | 7 |" in gaps


def test_tolerance_just_above_the_share_passes(tmp_path: Path) -> None:
    # 7/60 = 0.11667 <= 0.12; the gap is still listed for the operator.
    resource = _resource(tmp_path, completeness_hours=1, completeness_tolerance=0.12)
    _insert_counts(resource, "auth", WITH_GAP)

    result = _results(minutes_complete, resource)[COUNTS]

    assert result.passed
    assert result.metadata["gaps_found"].value == 1


def test_event_series_gap_counts_when_its_traffic_makes_silence_implausible(tmp_path: Path) -> None:
    # 5 events a minute around the gap: 7 silent minutes should have held 35 events (>= 20), so all 7
    # are missing: 7 / (53 + 7) = 7/60.
    resource = _resource(tmp_path, completeness_hours=1, completeness_tolerance=0.11)
    _insert_events(resource, "checkout", dict.fromkeys(WITH_GAP, 5))

    result = _results(minutes_complete, resource)[EVENTS]

    assert not result.passed
    assert result.metadata["worst_missing_share"].value == pytest.approx(7 / 60)
    assert (
        "| checkout | events | 2026-03-02 10:00 – 2026-03-02 10:59 | 1 | 60 | 7 | 0 | 11.67% | **FAIL** |"
        in (_series(result))
    )
    assert _results(minutes_complete, _resource(tmp_path, completeness_hours=1, completeness_tolerance=0.12))[
        EVENTS
    ].passed


def test_quiet_event_series_empty_minutes_are_not_missing(tmp_path: Path) -> None:
    # One event every third minute (0, 3, ..., 57): 20 minutes with data, window 10:00-10:57 = 58 minutes,
    # runs of 2 empty minutes at a rate of 1/3 per minute expect 0.67 events: quiet, not missing.
    resource = _resource(tmp_path, completeness_hours=1, completeness_tolerance=0.0)
    _insert_events(resource, "quiet", dict.fromkeys(range(0, 60, 3), 1))

    result = _results(minutes_complete, resource)[EVENTS]

    assert result.passed
    assert (
        "| quiet | events | 2026-03-02 10:00 – 2026-03-02 10:57 | 1 | 20 | 0 | 38 | 0.00% | pass |"
        in _series(result)
    )


@pytest.mark.parametrize(("gap_minutes", "missing"), [(19, 0), (20, 20)])
def test_event_gap_is_missing_from_20_expected_events(tmp_path: Path, gap_minutes: int, missing: int) -> None:
    # One event a minute before and after: a gap of 19 minutes expects 19 events (quiet), of 20 expects 20.
    resource = _resource(tmp_path, completeness_hours=2)
    _insert_events(resource, "api", {m: 1 for m in range(100) if not 40 <= m < 40 + gap_minutes})

    result = _results(minutes_complete, resource)[EVENTS]

    assert result.metadata["missing_minutes"].value == missing


def test_gap_outside_the_window_of_the_newest_data_is_not_judged(tmp_path: Path) -> None:
    # Data 10:00-11:59 with the gap at 10:20-10:26; a 1-hour window ends at 11:59 and starts at 11:00.
    resource = _resource(tmp_path, completeness_hours=1, completeness_tolerance=0.0)
    _insert_counts(resource, "auth", [m for m in range(120) if m not in GAP])

    result = _results(minutes_complete, resource)[COUNTS]

    assert result.passed
    assert "2026-03-02 11:00 – 2026-03-02 11:59 | 1 | 60 | 0 |" in _series(result)


def test_counts_on_a_five_minute_cadence_miss_only_the_absent_bucket(tmp_path: Path) -> None:
    # A Prometheus pull with a 5-minute step: buckets at 10:00, 10:05, ..., 10:55, the 10:25 one missing.
    # The 4 minutes between buckets are expected to be empty; the run 10:21-10:29 (9 minutes) is one
    # missing bucket, 5 minutes. Expected: 11 buckets x 5 + 5 = 60 minutes; share 5/60 = 8.33%. Quiet:
    # the window 10:00-10:55 has 56 - 11 = 45 empty minutes, 5 of them missing, 40 between buckets.
    resource = _resource(tmp_path, completeness_hours=1)
    _insert_counts(resource, "auth", [m for m in range(0, 60, 5) if m != 25])

    result = _results(minutes_complete, resource)[COUNTS]

    assert not result.passed
    assert result.metadata["worst_missing_share"].value == pytest.approx(5 / 60)
    assert "| auth | counts | 2026-03-02 10:00 – 2026-03-02 10:55 | 5 | 60 | 5 | 40 | 8.33% | **FAIL** |" in (
        _series(result)
    )
    gaps = result.metadata["gaps"].value  # type: ignore[union-attr]
    assert "| auth | counts | 2026-03-02 10:21 | 2026-03-02 10:29 | 5 |" in gaps


def test_severity_follows_the_settings(tmp_path: Path) -> None:
    resource = _resource(tmp_path, completeness_hours=1, completeness_severity="warn")
    _insert_counts(resource, "auth", WITH_GAP)

    result = _results(minutes_complete, resource)[COUNTS]

    assert not result.passed and result.severity == AssetCheckSeverity.WARN


def test_gaps_are_listed_longest_first_and_capped(tmp_path: Path) -> None:
    # 25 gaps: minute 2k+1 missing for k < 24 (1 minute each) and one 5-minute gap at 100-104.
    missing = {2 * k + 1 for k in range(24)} | set(range(100, 105))
    resource = _resource(tmp_path, completeness_hours=3)
    _insert_counts(resource, "auth", [m for m in range(120) if m not in missing])

    result = _results(minutes_complete, resource)[COUNTS]

    gaps = result.metadata["gaps"].value.splitlines()  # type: ignore[union-attr]
    assert gaps[2] == "| auth | counts | 2026-03-02 11:40 | 2026-03-02 11:44 | 5 |"
    assert gaps[3] == "| auth | counts | 2026-03-02 10:01 | 2026-03-02 10:01 | 1 |"
    # Header, rule, 20 gaps and the "more" line.
    assert len(gaps) == 2 + quality_checks.MAX_LISTED + 1
    assert gaps[-1].startswith("| … 5 more |")
    assert result.metadata["missing_minutes"].value == 29


def test_stale_service_is_listed_with_its_newest_timestamp(tmp_path: Path, monkeypatch: Any) -> None:
    resource = _resource(tmp_path, freshness_minutes=30)
    _insert_events(resource, "fresh", {60: 1})  # 11:00:00
    _insert_counts(resource, "stale", [28])  # 10:28:00
    monkeypatch.setattr(quality_checks, "utc_now", lambda: T0 + timedelta(minutes=60, seconds=30))

    results = _results(data_fresh, resource)

    # 11:00:30 - 11:00:00 = 0.5 minutes behind; 11:00:30 - 10:28:00 = 32.5 minutes behind.
    assert results[EVENTS].passed
    stale = results[COUNTS]
    assert not stale.passed and stale.severity == AssetCheckSeverity.WARN
    assert stale.metadata["max_minutes_behind"].value == pytest.approx(32.5)
    assert "| stale | counts | 2026-03-02 10:28:00 | 32.5 |" in stale.metadata["stale"].value  # type: ignore[union-attr]


def test_freshness_severity_error_when_configured(tmp_path: Path, monkeypatch: Any) -> None:
    resource = _resource(tmp_path, freshness_minutes=30, freshness_severity="error")
    _insert_counts(resource, "stale", [0])
    monkeypatch.setattr(quality_checks, "utc_now", lambda: T0 + timedelta(minutes=31))

    result = _results(data_fresh, resource)[COUNTS]

    assert not result.passed and result.severity == AssetCheckSeverity.ERROR


def test_latency_above_the_maximum_fails_and_names_file_and_row(tmp_path: Path) -> None:
    resource = _resource(tmp_path, max_latency_ms=600_000.0)
    _insert_events(resource, "api", {0: 1}, latency_ms=600_000.0)  # at the ceiling: fine
    _insert_events(resource, "api", {5: 1}, latency_ms=600_001.0)  # 1 ms above: fails
    with open_warehouse(resource.warehouse) as con:
        con.execute(
            "INSERT INTO ingested_files (file_id, path, sha256, format, status, rows_read, rows_loaded, "
            "rows_quarantined, ingested_at) "
            "VALUES (7, '/landing/api-events.csv', 'x', 'csv', 'loaded', 2, 2, 0, $t)",
            {"t": T0},
        )

    result = raw_events_valid(resource)

    assert not result.passed
    assert result.metadata["latency_above_max"].value == 1
    assert result.metadata["invalid_latency"].value == 0
    rows = result.metadata["offending_rows"].value  # type: ignore[union-attr]
    # source_row is the minute offset in _insert_events: the second event is row 5 of api-events.csv.
    offending = "| api-events.csv | 5 | 2026-03-02 10:05:00 | api | get | 200 | 600001.0 |"
    assert offending + " latency above 600000.0 ms |" in rows.splitlines()

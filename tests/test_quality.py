"""Tests for the Great Expectations data-quality suites over the warehouse tables.

Frames are built by hand with a known number of defective rows, so every expected unexpected_count is
counted here rather than read back from GX.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from pipelines.slo.quality import (
    REQUIRED_COLUMNS,
    ExpectationOutcome,
    SuiteOutcome,
    validate_completeness,
    validate_freshness,
    validate_raw_counts,
    validate_raw_events,
    validate_sli_counts_hour,
)

NOW = datetime(2024, 5, 1, 12, 0, 0)
T0 = NOW - timedelta(hours=3)

TS_NOT_NULL = "expect_column_values_to_not_be_null(ts)"
TS_NOT_FUTURE = "expect_column_values_to_be_between(ts, max now)"
TOTAL_MIN = "expect_column_values_to_be_between(total, min 0)"
GOOD_MIN = "expect_column_values_to_be_between(good, min 0)"
GOOD_LE_TOTAL = "expect_column_pair_values_a_to_be_greater_than_b(total >= good)"
SERVICE_NOT_NULL = "expect_column_values_to_not_be_null(service)"
MAX_LATENCY_MS = 600_000.0  # the default of [quality] max_latency_ms
LATENCY_RANGE = "expect_column_values_to_be_between(latency_ms, 0..600000, nulls allowed)"
STATUS_RANGE = "expect_column_values_to_be_between(status_code, 100..599, nulls allowed)"
BUCKET_NOT_FUTURE = "expect_column_values_to_be_between(bucket_start, max now)"
REQUESTS_MIN = "expect_column_values_to_be_between(requests, min 0)"
LATENCY_COUNT_LE_REQUESTS = "expect_column_pair_values_a_to_be_greater_than_b(requests >= latency_count)"


def _exists(column: str) -> str:
    return f"expect_column_to_exist({column})"


def _raw_counts(**columns: list[Any]) -> pl.DataFrame:
    data: dict[str, Any] = {
        "ts": [T0, T0 + timedelta(minutes=1), T0 + timedelta(hours=1), NOW],  # == now is not future
        "service": ["api", "api", "web", "web"],
        "operation": ["get", "put", "get", "get"],
        "total": [10, 0, 5, 7],
        "good": [10, 0, 4, 0],
        "file_id": [1, 1, 2, 2],
        "source_row": [2, 3, 2, 3],
    }
    data.update(columns)
    return pl.DataFrame(
        data,
        schema={
            "ts": pl.Datetime("us"),
            "service": pl.String,
            "operation": pl.String,
            "total": pl.Int64,
            "good": pl.Int64,
            "file_id": pl.Int32,
            "source_row": pl.Int64,
        },
    )


def _raw_events(**columns: list[Any]) -> pl.DataFrame:
    data: dict[str, Any] = {
        "ts": [T0, T0 + timedelta(seconds=1), T0 + timedelta(minutes=5), T0 + timedelta(hours=2)],
        "service": ["api", "api", "web", "web"],
        "operation": ["get", "get", "get", "put"],
        # Nulls in status_code, success and latency_ms are legitimate and must not fail anything.
        "status_code": [200, None, 503, 100],
        "success": [True, None, False, True],
        "latency_ms": [12.5, None, 0.0, 300.0],
        "file_id": [3, 3, 3, 4],
        "source_row": [2, 3, 4, 2],
    }
    data.update(columns)
    return pl.DataFrame(
        data,
        schema={
            "ts": pl.Datetime("us"),
            "service": pl.String,
            "operation": pl.String,
            "status_code": pl.Int16,
            "success": pl.Boolean,
            "latency_ms": pl.Float64,
            "file_id": pl.Int32,
            "source_row": pl.Int64,
        },
    )


def _sli_counts_hour(**columns: list[Any]) -> pl.DataFrame:
    data: dict[str, Any] = {
        "bucket_start": [T0, T0, T0 + timedelta(hours=1), NOW.replace(minute=0)],
        "service": ["api", "api", "api", "web"],
        "operation": ["get", "get", "get", "get"],
        "status_code": [200, 500, None, 599],
        "success": [True, False, False, False],
        "requests": [100, 3, 0, 8],
        "latency_count": [100, 2, 0, 8],
    }
    data.update(columns)
    return pl.DataFrame(
        data,
        schema={
            "bucket_start": pl.Datetime("us"),
            "service": pl.String,
            "operation": pl.String,
            "status_code": pl.Int16,
            "success": pl.Boolean,
            "requests": pl.Int64,
            "latency_count": pl.Int64,
        },
    )


def _failed(outcome: SuiteOutcome) -> dict[str, int | None]:
    return {failure.expectation: failure.unexpected_count for failure in outcome.failures()}


def _by_name(outcome: SuiteOutcome) -> dict[str, ExpectationOutcome]:
    return {item.expectation: item for item in outcome.outcomes}


def _validate_raw_events(frame: pl.DataFrame, now: datetime) -> SuiteOutcome:
    return validate_raw_events(frame, now, max_latency_ms=MAX_LATENCY_MS)


CLEAN_CASES = [
    ("raw_counts", validate_raw_counts, _raw_counts),
    ("raw_events", _validate_raw_events, _raw_events),
    ("sli_counts_hour", validate_sli_counts_hour, _sli_counts_hour),
]


@pytest.mark.parametrize(("table", "validate", "build"), CLEAN_CASES, ids=[case[0] for case in CLEAN_CASES])
def test_clean_frame_passes_every_expectation(table: str, validate: Any, build: Any) -> None:
    outcome = validate(build(), NOW)

    assert outcome.suite == table
    assert outcome.rows_checked == 4
    assert outcome.success, outcome.as_markdown()
    assert outcome.failures() == []
    names = [item.expectation for item in outcome.outcomes]
    assert len(names) == len(set(names)), "expectation names must be unique within a suite"
    for column in REQUIRED_COLUMNS[table]:
        assert _exists(column) in names


@pytest.mark.parametrize(("table", "validate", "build"), CLEAN_CASES, ids=[case[0] for case in CLEAN_CASES])
def test_empty_frame_succeeds(table: str, validate: Any, build: Any) -> None:
    outcome = validate(build().clear(), NOW)

    assert outcome.success, outcome.as_markdown()
    assert outcome.rows_checked == 0


def test_negative_total_fails_total_range_and_pair() -> None:
    # A negative total with a non-negative good is necessarily also good > total: 2 bad rows each.
    frame = _raw_counts(total=[10, -3, -1, 7], good=[10, 0, 0, 0])

    outcome = validate_raw_counts(frame, NOW)

    assert _failed(outcome) == {TOTAL_MIN: 2, GOOD_LE_TOTAL: 2}
    observed = _by_name(outcome)[TOTAL_MIN].observed or ""
    assert "-3" in observed and "-1" in observed


def test_negative_good_fails_only_good_range() -> None:
    frame = _raw_counts(good=[10, -1, 4, 0])

    assert _failed(validate_raw_counts(frame, NOW)) == {GOOD_MIN: 1}


def test_good_above_total_fails_pair_only() -> None:
    frame = _raw_counts(good=[11, 0, 6, 0])

    outcome = validate_raw_counts(frame, NOW)

    assert _failed(outcome) == {GOOD_LE_TOTAL: 2}
    assert "total=10, good=11" in (_by_name(outcome)[GOOD_LE_TOTAL].observed or "")


def test_future_timestamp_fails_not_future_only() -> None:
    frame = _raw_counts(ts=[T0, NOW + timedelta(seconds=1), T0, datetime(2030, 1, 1)])

    outcome = validate_raw_counts(frame, NOW)

    assert _failed(outcome) == {TS_NOT_FUTURE: 2}
    assert "2030-01-01" in (_by_name(outcome)[TS_NOT_FUTURE].observed or "")


def test_timestamp_beyond_nanosecond_range_is_still_caught() -> None:
    # Year 3000 cannot be held in datetime64[ns], which GX's fast path needs; it must still be judged.
    frame = _raw_counts(ts=[T0, T0, datetime(3000, 1, 1), T0])

    assert _failed(validate_raw_counts(frame, NOW)) == {TS_NOT_FUTURE: 1}


def test_null_timestamp_fails_not_null_only() -> None:
    frame = _raw_counts(ts=[T0, None, T0, T0])

    assert _failed(validate_raw_counts(frame, NOW)) == {TS_NOT_NULL: 1}


def test_unparsed_timestamp_strings_fail_cleanly() -> None:
    frame = _raw_counts().with_columns(pl.col("ts").dt.to_string())

    outcome = validate_raw_counts(frame, NOW)

    failed = _failed(outcome)
    assert set(failed) == {TS_NOT_FUTURE}
    assert failed[TS_NOT_FUTURE] is None
    assert (_by_name(outcome)[TS_NOT_FUTURE].observed or "").startswith("error:")


def test_missing_column_fails_existence_and_skips_dependants() -> None:
    outcome = validate_raw_counts(_raw_counts().drop("good"), NOW)

    assert _failed(outcome) == {_exists("good"): None, GOOD_MIN: None, GOOD_LE_TOTAL: None}
    by_name = _by_name(outcome)
    assert by_name[_exists("good")].observed == "column missing"
    assert by_name[GOOD_LE_TOTAL].observed == "not run: column good missing"
    # Checks on the columns that are present still ran.
    assert by_name[TOTAL_MIN].success and by_name[TOTAL_MIN].unexpected_count == 0


def test_missing_time_column_skips_time_checks() -> None:
    outcome = validate_sli_counts_hour(_sli_counts_hour().drop("bucket_start"), NOW)

    assert _failed(outcome) == {
        _exists("bucket_start"): None,
        "expect_column_values_to_not_be_null(bucket_start)": None,
        BUCKET_NOT_FUTURE: None,
    }


def test_negative_latency_fails_latency_only() -> None:
    frame = _raw_events(latency_ms=[-0.5, None, -10.0, 300.0])

    assert _failed(_validate_raw_events(frame, NOW)) == {LATENCY_RANGE: 2}


def test_latency_above_the_maximum_fails_latency_only() -> None:
    # The ceiling is inclusive: 600000 ms passes, 600000 + 1 ms fails.
    frame = _raw_events(latency_ms=[MAX_LATENCY_MS, None, MAX_LATENCY_MS + 1, 300.0])

    outcome = _validate_raw_events(frame, NOW)

    assert _failed(outcome) == {LATENCY_RANGE: 1}
    assert "600001" in (_by_name(outcome)[LATENCY_RANGE].observed or "")


def test_latency_ceiling_is_a_parameter() -> None:
    frame = _raw_events(latency_ms=[12.5, None, 0.0, 300.0])

    outcome = validate_raw_events(frame, NOW, max_latency_ms=299.0)

    assert _failed(outcome) == {"expect_column_values_to_be_between(latency_ms, 0..299, nulls allowed)": 1}


def test_status_outside_http_range_fails_status_only() -> None:
    frame = _raw_events(status_code=[700, None, 99, 599])

    outcome = _validate_raw_events(frame, NOW)

    assert _failed(outcome) == {STATUS_RANGE: 2}
    observed = _by_name(outcome)[STATUS_RANGE].observed or ""
    assert "700" in observed and "99" in observed


def test_null_service_fails_service_not_null_only() -> None:
    frame = _raw_events(service=["api", None, "web", "web"])

    assert _failed(_validate_raw_events(frame, NOW)) == {SERVICE_NOT_NULL: 1}


def test_future_event_timestamp_fails() -> None:
    frame = _raw_events(ts=[T0, T0, T0, NOW + timedelta(hours=1)])

    assert _failed(_validate_raw_events(frame, NOW)) == {TS_NOT_FUTURE: 1}


def test_latency_count_above_requests_fails_pair_only() -> None:
    frame = _sli_counts_hour(latency_count=[101, 2, 1, 8])

    assert _failed(validate_sli_counts_hour(frame, NOW)) == {LATENCY_COUNT_LE_REQUESTS: 2}


def test_negative_requests_fails_range_and_pair() -> None:
    frame = _sli_counts_hour(requests=[100, -1, 0, 8], latency_count=[100, 0, 0, 8])

    assert _failed(validate_sli_counts_hour(frame, NOW)) == {REQUESTS_MIN: 1, LATENCY_COUNT_LE_REQUESTS: 1}


def test_future_bucket_fails() -> None:
    frame = _sli_counts_hour(bucket_start=[T0, T0, T0, NOW + timedelta(hours=1)])

    assert _failed(validate_sli_counts_hour(frame, NOW)) == {BUCKET_NOT_FUTURE: 1}


def test_aware_now_and_aware_column_compare_as_utc() -> None:
    # 13:30 Paris is 11:30 UTC, before NOW; an aware now for the same instant must behave like NOW.
    paris = [datetime(2024, 5, 1, 13, 30)] * 4
    frame = _raw_counts(ts=paris).with_columns(pl.col("ts").dt.replace_time_zone("Europe/Paris"))

    assert validate_raw_counts(frame, NOW.replace(tzinfo=UTC)).success
    assert _failed(validate_raw_counts(frame, NOW - timedelta(hours=1))) == {TS_NOT_FUTURE: 4}


def _completeness(missing: list[int], expected: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "service": [f"s{i}" for i in range(len(missing))],
            "source": ["counts"] * len(missing),
            "expected_minutes": expected,
            "missing_minutes": missing,
            "missing_share": [m / e for m, e in zip(missing, expected, strict=True)],
        }
    )


SHARE_RANGE_11 = "expect_column_values_to_be_between(missing_share, 0..0.11)"


def test_completeness_share_within_tolerance_passes() -> None:
    # 7 of 60 minutes missing = 0.1167: within a tolerance of 0.12, outside one of 0.11.
    frame = _completeness([7, 0], [60, 60])

    assert validate_completeness(frame, 0.12).success
    outcome = validate_completeness(frame, 0.11)
    assert _failed(outcome) == {SHARE_RANGE_11: 1}
    assert "0.1166" in (_by_name(outcome)[SHARE_RANGE_11].observed or "")


def test_completeness_share_equal_to_tolerance_passes() -> None:
    # 3 of 60 = 0.05 exactly: the tolerance is the largest share allowed.
    assert validate_completeness(_completeness([3], [60]), 0.05).success


def test_completeness_empty_frame_passes() -> None:
    assert validate_completeness(_completeness([], []), 0.05).success


def test_freshness_judges_minutes_behind() -> None:
    frame = pl.DataFrame(
        {
            "service": ["api", "web"],
            "source": ["events", "counts"],
            "newest": [NOW - timedelta(minutes=29), NOW - timedelta(minutes=31)],
            "minutes_behind": [29.0, 31.0],
        }
    )

    outcome = validate_freshness(frame, 30)

    assert _failed(outcome) == {"expect_column_values_to_be_between(minutes_behind, max 30)": 1}
    assert validate_freshness(frame, 31).success


def test_markdown_lists_every_expectation() -> None:
    outcome = validate_raw_counts(_raw_counts(good=[11, 0, 4, 0]), NOW)

    markdown = outcome.as_markdown()

    lines = markdown.splitlines()
    assert lines[0] == "| expectation | result | unexpected | observed |"
    assert len(lines) == 2 + len(outcome.outcomes)
    for item in outcome.outcomes:
        assert item.expectation in markdown
    assert any(GOOD_LE_TOTAL in line and "FAIL" in line for line in lines)


def test_markdown_escapes_pipes() -> None:
    outcome = SuiteOutcome(
        suite="t",
        rows_checked=1,
        outcomes=[ExpectationOutcome("expect_x(a|b)", False, 3, "e.g. x|y")],
    )

    row = outcome.as_markdown().splitlines()[2]

    assert row == "| expect_x(a\\|b) | **FAIL** | 3 | e.g. x\\|y |"
    assert not outcome.success


def test_module_import_stays_light() -> None:
    code = (
        "import sys, pipelines.slo.quality; "
        "assert 'great_expectations' not in sys.modules; assert 'dagster' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

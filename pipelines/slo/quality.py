"""Data-quality suites for the warehouse tables, run with Great Expectations on polars frames.

Each ``validate_*`` function builds a GX ExpectationSuite for one table, validates the frame in a fresh
ephemeral context and flattens the result into plain dataclasses, so callers (Dagster asset checks)
never touch GX objects. Great Expectations is imported lazily inside the functions: its import takes
seconds and most code paths that import this module never validate anything.

GX has no polars backend, so frames are converted to pandas first; see ``_to_pandas`` for the dtype
normalisation that keeps GX on its vectorised code paths.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "raw_counts": ("ts", "service", "operation", "total", "good", "file_id", "source_row"),
    "raw_events": (
        "ts",
        "service",
        "operation",
        "status_code",
        "success",
        "latency_ms",
        "file_id",
        "source_row",
    ),
    "sli_counts_hour": (
        "bucket_start",
        "service",
        "operation",
        "status_code",
        "success",
        "requests",
        "latency_count",
    ),
    # Figures per series computed in SQL (sql/quality_completeness.sql, sql/quality_freshness.sql).
    "completeness": ("service", "source", "expected_minutes", "missing_minutes", "missing_share"),
    "freshness": ("service", "source", "newest", "minutes_behind"),
}

# Results are matched back to checks through this meta key: GX does not return results in suite
# order, and expectations of an unsaved suite have no id.
_META_KEY = "sloscope_check"
_SAMPLE_VALUES = 5
_MAX_OBSERVED_CHARS = 200


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str  # readable, e.g. "expect_column_values_to_be_between(total, min 0)"
    success: bool
    unexpected_count: int | None
    observed: str | None  # short observed value or sample of unexpected values


@dataclass(frozen=True)
class SuiteOutcome:
    suite: str
    rows_checked: int
    outcomes: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        return all(outcome.success for outcome in self.outcomes)

    def failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.success]

    def as_markdown(self) -> str:
        lines = ["| expectation | result | unexpected | observed |", "| --- | --- | --- | --- |"]
        for outcome in self.outcomes:
            cells = (
                outcome.expectation,
                "pass" if outcome.success else "**FAIL**",
                "" if outcome.unexpected_count is None else f"{outcome.unexpected_count:,}",
                outcome.observed or "",
            )
            lines.append("| " + " | ".join(_md_cell(cell) for cell in cells) + " |")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Check:
    """One expectation, described without GX so suites can be declared before GX is imported."""

    kind: str  # class name in gx.expectations
    kwargs: Mapping[str, Any]
    label: str  # readable arguments, appended to the snake_case expectation name

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.kwargs[key] for key in ("column", "column_A", "column_B") if key in self.kwargs)


def validate_raw_counts(frame: pl.DataFrame, now: datetime) -> SuiteOutcome:
    """Counts are non-negative, good <= total, and timestamps are present and not in the future."""
    checks = [
        *_timestamp_checks("ts", now),
        _min_zero("total"),
        _min_zero("good"),
        _a_at_least_b("total", "good"),
    ]
    return _run_suite("raw_counts", frame, checks)


def validate_raw_events(frame: pl.DataFrame, now: datetime, *, max_latency_ms: float) -> SuiteOutcome:
    """Timestamps present and not in the future, service set, latencies in [0, max], HTTP-range status codes.

    Null latency and status code are legitimate (events without a measurement or a status), so the
    range checks only judge the values that are present. A latency above ``max_latency_ms`` is
    implausible (a unit mix-up, a timeout sentinel) and fails like a negative one.
    """
    checks = [
        *_timestamp_checks("ts", now),
        _Check("ExpectColumnValuesToNotBeNull", {"column": "service"}, "service"),
        _Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "latency_ms", "min_value": 0, "max_value": max_latency_ms, "mostly": 1.0},
            f"latency_ms, 0..{max_latency_ms:g}, nulls allowed",
        ),
        _Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "status_code", "min_value": 100, "max_value": 599},
            "status_code, 100..599, nulls allowed",
        ),
    ]
    return _run_suite("raw_events", frame, checks)


def validate_sli_counts_hour(frame: pl.DataFrame, now: datetime) -> SuiteOutcome:
    """Hourly counts are non-negative, latency_count <= requests, buckets present and not in the future."""
    checks = [
        *_timestamp_checks("bucket_start", now),
        _min_zero("requests"),
        _min_zero("latency_count"),
        _a_at_least_b("requests", "latency_count"),
    ]
    return _run_suite("sli_counts_hour", frame, checks)


def validate_completeness(frame: pl.DataFrame, tolerance: float) -> SuiteOutcome:
    """Every series misses at most ``tolerance`` of its expected minutes (one row per series).

    What counts as an expected minute is decided in SQL (sql/quality_completeness.sql); GX judges the
    shares, so a failure reads like every other suite's.
    """
    checks = [
        _Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "missing_share", "min_value": 0, "max_value": tolerance},
            f"missing_share, 0..{tolerance:g}",
        ),
        _a_at_least_b("expected_minutes", "missing_minutes"),
    ]
    return _run_suite("completeness", frame, checks)


def validate_freshness(frame: pl.DataFrame, max_minutes: float) -> SuiteOutcome:
    """The newest row of every series (one row per series) is at most ``max_minutes`` old."""
    checks = [
        _Check("ExpectColumnValuesToNotBeNull", {"column": "newest"}, "newest"),
        _Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "minutes_behind", "max_value": max_minutes},
            f"minutes_behind, max {max_minutes:g}",
        ),
    ]
    return _run_suite("freshness", frame, checks)


def _timestamp_checks(column: str, now: datetime) -> list[_Check]:
    # Between ignores nulls, so a null timestamp is caught only by the not-null check; a column that is
    # not a datetime at all (e.g. unparsed strings) makes the range check fail with GX's type error.
    return [
        _Check("ExpectColumnValuesToNotBeNull", {"column": column}, column),
        _Check(
            "ExpectColumnValuesToBeBetween",
            {"column": column, "max_value": _naive_utc(now)},
            f"{column}, max now",
        ),
    ]


def _min_zero(column: str) -> _Check:
    return _Check("ExpectColumnValuesToBeBetween", {"column": column, "min_value": 0}, f"{column}, min 0")


def _a_at_least_b(column_a: str, column_b: str) -> _Check:
    return _Check(
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": column_a, "column_B": column_b, "or_equal": True},
        f"{column_a} >= {column_b}",
    )


def _naive_utc(moment: datetime) -> datetime:
    # The warehouse stores naive UTC; an aware `now` would make every comparison raise inside GX.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def _run_suite(suite_name: str, frame: pl.DataFrame, checks: list[_Check]) -> SuiteOutcome:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    present = set(frame.columns)
    all_checks = [_Check("ExpectColumnToExist", {"column": c}, c) for c in REQUIRED_COLUMNS[suite_name]]
    all_checks += checks

    # A fresh ephemeral context per call: nothing leaks between calls and names never collide. It must
    # exist before the suite is filled, because add_expectation looks up the process's current context.
    context = gx.get_context(mode="ephemeral")
    # Progress bars would write tqdm noise into Dagster's captured stderr for every validation.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)

    suite = gx.ExpectationSuite(name=suite_name)
    labels: list[str] = []
    skipped: dict[int, str] = {}
    for index, check in enumerate(all_checks):
        expectation = getattr(gx.expectations, check.kind)(**check.kwargs, meta={_META_KEY: index})
        labels.append(f"{expectation.expectation_type}({check.label})")
        missing = [c for c in check.columns if c not in present]
        if check.kind != "ExpectColumnToExist" and missing:
            # GX would report these as failed too, but as a metric-resolution traceback; a plain
            # "not run" is what a reader of the check result needs.
            skipped[index] = f"not run: column {', '.join(missing)} missing"
            continue
        suite.add_expectation(expectation)

    asset = context.data_sources.add_pandas(f"{suite_name}_source").add_dataframe_asset(suite_name)
    batch = asset.add_batch_definition_whole_dataframe("whole_frame").get_batch(
        batch_parameters={"dataframe": _to_pandas(frame)}
    )
    # SUMMARY rather than COMPLETE: we only show a sample, and COMPLETE lists every unexpected row.
    results = batch.validate(suite, result_format="SUMMARY").results
    by_index = {int(result.expectation_config.meta[_META_KEY]): result for result in results}

    outcomes = []
    for index, label in enumerate(labels):
        if index in skipped:
            outcomes.append(ExpectationOutcome(label, False, None, skipped[index]))
        else:
            outcomes.append(_outcome(label, by_index[index], all_checks[index]))
    return SuiteOutcome(suite=suite_name, rows_checked=frame.height, outcomes=outcomes)


def _outcome(label: str, result: Any, check: _Check) -> ExpectationOutcome:
    exception = result.exception_info or {}
    message = _exception_message(exception)
    if message is not None:
        return ExpectationOutcome(label, False, None, _shorten(f"error: {message}"))
    details = result.result or {}
    count = details.get("unexpected_count")
    observed = None
    if check.kind == "ExpectColumnToExist":
        observed = None if result.success else "column missing"
    elif count:
        values = details.get("partial_unexpected_list") or []
        if len(check.columns) == 2:
            # Pair results are bare (a, b) tuples; naming them spares the reader guessing which is which.
            values = [dict(zip(check.columns, pair, strict=True)) for pair in values]
        observed = _shorten(_sample(values, int(count)))
    return ExpectationOutcome(label, bool(result.success), None if count is None else int(count), observed)


def _exception_message(exception: Mapping[str, Any]) -> str | None:
    # exception_info is flat for expectation-level errors but keyed by metric id for metric errors.
    if exception.get("raised_exception"):
        return str(exception.get("exception_message") or "exception")
    for value in exception.values():
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message") or "exception")
    return None


def _to_pandas(frame: pl.DataFrame) -> Any:
    """Convert with dtypes GX's pandas engine compares vectorised.

    GX's between-metric is vectorised only for int64/float64 and datetime64[ns] columns; anything else
    (int16/int32, datetime64[us] which polars produces) falls back to a per-value Python map: at 250k
    rows a suite took 1.4 s that way against 0.2 s vectorised. Timestamps beyond the ns range
    (year > 2262) cannot be cast and stay in microseconds: the slow path still compares them
    correctly, and such values are what the future check exists to catch.
    """
    casts: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            casts.append(pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None))
        elif dtype.is_integer() and dtype != pl.Int64:
            casts.append(pl.col(name).cast(pl.Int64))
        elif dtype.is_float() and dtype != pl.Float64:
            casts.append(pl.col(name).cast(pl.Float64))
    frame = frame.with_columns(casts)
    frame = frame.with_columns(
        pl.col(name).cast(pl.Datetime("ns"))
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_unit != "ns" and _fits_nanoseconds(frame[name])
    )
    return frame.to_pandas()


def _fits_nanoseconds(series: pl.Series) -> bool:
    lowest, highest = series.min(), series.max()
    if lowest is None or highest is None:
        return True
    return datetime(1678, 1, 1) <= lowest and highest <= datetime(2262, 4, 11)  # type: ignore[operator]


def _sample(values: list[Any], unexpected_count: int) -> str:
    distinct = list(dict.fromkeys(_format_value(value) for value in values))
    # The partial list holds only the first unexpected rows, so more may exist beyond it.
    truncated = len(distinct) > _SAMPLE_VALUES or unexpected_count > len(values)
    return "e.g. " + ", ".join(distinct[:_SAMPLE_VALUES]) + (", …" if truncated else "")


def _format_value(value: Any) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{key}={_format_value(item)}" for key, item in value.items()) + ")"
    if isinstance(value, np.generic) and not isinstance(value, np.datetime64 | np.timedelta64):
        value = value.item()  # numpy scalars would print as np.int64(5)
    if value is None or (isinstance(value, float) and value != value):
        return "null"
    text = str(value)
    return "null" if text in ("NaT", "<NA>", "nan") else text


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_OBSERVED_CHARS else text[: _MAX_OBSERVED_CHARS - 1] + "…"


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

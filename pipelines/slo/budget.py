"""Error budgets and burn rates for rolling windows with the Occurrences budgeting method.

For an objective with target ``t`` over the window ``[as_of - W, as_of)``:

* SLI = good / total (traffic-weighted: events are summed, never ratios averaged);
* budget consumed = (bad / total) / (1 - t), remaining = 1 - consumed (below 0 = overspent);
* burn rate over ``w`` = (bad / total over ``[as_of - w, as_of)``) / (1 - t);
* no traffic in a window gives ``None`` (JSON null), never NaN, and status ``no_data``.

Arithmetic is exact (integers and ``Fraction``) until the final conversion to float.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cache
from itertools import pairwise
from typing import Any

import duckdb
import numpy as np
import polars as pl

from pipelines import sqlfiles
from pipelines.slo.corrections import Correction, excluded_minute_mask
from pipelines.slo.corrections import list_corrections as _list_corrections
from pipelines.slo.filters import EventFilter
from pipelines.slo.policies import DEFAULT_POLICIES, PolicySet
from pipelines.slo.spec import Objective, SloDefinition
from pipelines.slo.timeslices import (
    BudgetUnits,
    occurrence_units,
    ratio_timeslices,
    time_to_exhaustion,
    timeslice_burn_rate,
    timeslice_units,
    timeslices,
)
from pipelines.slo.windows import CalendarWindow
from pipelines.warehouse import query_frame

BURN_RATE_WINDOWS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
}
_GRAIN_TABLES = {
    "minute": ("sli_counts_minute", "sli_threshold_minute", timedelta(minutes=1)),
    "hour": ("sli_counts_hour", "sli_threshold_hour", timedelta(hours=1)),
    "day": ("sli_counts_day", "sli_threshold_day", timedelta(days=1)),
}


class EvaluationError(RuntimeError):
    """Evaluation cannot proceed (no data at all, thresholds never aggregated); says what to run."""


@dataclass(frozen=True)
class ObjectiveStatus:
    slo: str
    display_name: str
    service: str
    objective: str
    objective_index: int
    target: float
    budgeting_method: str
    window_start: datetime
    window_end: datetime
    good: int
    total: int
    sli: float | None
    budget_consumed: float | None
    budget_remaining: float | None
    burn_rates: dict[str, float | None]
    status: str
    period_start: datetime | None = None
    period_end: datetime | None = None
    budget_units: dict[str, Any] = field(default_factory=dict)
    time_to_exhaustion: dict[str, float | None] = field(default_factory=dict)
    policy_state: str = "no_data"
    data_completeness: float | None = None
    corrections_applied: dict[str, Any] = field(default_factory=dict)
    timeslices: dict[str, Any] | None = None
    no_data_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``sloscope evaluate --json`` contract."""
        period_start = self.period_start or self.window_start
        period_end = self.period_end or self.window_end
        return {
            "slo": self.slo,
            "service": self.service,
            "objective": self.objective,
            "target": self.target,
            "budgeting_method": self.budgeting_method,
            "window": {"start": _iso(self.window_start), "end": _iso(self.window_end)},
            "period": {"start": _iso(period_start), "end": _iso(period_end)},
            "good": self.good,
            "total": self.total,
            "sli": self.sli,
            "error_budget": {"consumed": self.budget_consumed, "remaining": self.budget_remaining},
            "burn_rates": dict(self.burn_rates),
            "status": self.status,
            "budget_units": dict(self.budget_units),
            "time_to_exhaustion": dict(self.time_to_exhaustion),
            "policy_state": self.policy_state,
            "data_completeness": self.data_completeness,
            "corrections_applied": dict(self.corrections_applied),
            "timeslices": self.timeslices,
            "no_data_reason": self.no_data_reason,
        }

    _DETAILS = (
        "period_start",
        "period_end",
        "budget_units",
        "time_to_exhaustion",
        "corrections_applied",
        "timeslices",
        "no_data_reason",
    )

    def as_row(self) -> dict[str, Any]:
        """A row of the ``slo_status`` table (nested figures as JSON text)."""
        row = {k: v for k, v in asdict(self).items() if k not in self._DETAILS}
        row["burn_rates"] = json.dumps(self.burn_rates)
        details = {k: getattr(self, k) for k in self._DETAILS}
        row["details"] = json.dumps(details, default=lambda v: v.isoformat())
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ObjectiveStatus:
        values = dict(row)
        values["burn_rates"] = json.loads(values["burn_rates"])
        details = json.loads(values.pop("details") or "{}")
        for key in ("period_start", "period_end"):
            if details.get(key):
                details[key] = datetime.fromisoformat(details[key])
        return cls(**values, **details)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@cache
def _allowance(target: Decimal) -> tuple[int, int]:
    """1 - target as an exact fraction n / d (targets are few: computed once each)."""
    allowance = Fraction(1 - target)
    return allowance.numerator, allowance.denominator


# Integer true division rounds correctly, as Fraction's float() does (it divides numerator by denominator
# the same way), so a / b of the unreduced integers gives the same float as the Fraction arithmetic,
# without building Fractions: these run 8 times per objective.


def burn_rate(good: int, total: int, target: Decimal) -> float | None:
    """(bad / total) / (1 - target); None without traffic."""
    if total == 0:
        return None
    n, d = _allowance(target)
    return ((total - good) * d) / (total * n)


def budget_figures(good: int, total: int, target: Decimal) -> tuple[float | None, float | None, float | None]:
    """(SLI, budget consumed, budget remaining) for one window; all None without traffic."""
    if total == 0:
        return None, None, None
    n, d = _allowance(target)
    bad = total - good
    return good / total, (bad * d) / (total * n), (total * n - bad * d) / (total * n)


def classify(total: int, remaining: float | None, at_risk_remaining: float) -> str:
    if total == 0 or remaining is None:
        return "no_data"
    if remaining < 0:
        return "breached"
    if remaining < at_risk_remaining:
        return "at_risk"
    return "ok"


def counts_by_bucket(
    con: duckdb.DuckDBPyConnection,
    event_filter: EventFilter,
    start: datetime,
    end: datetime,
    grain: str = "minute",
) -> pl.DataFrame:
    """``bucket_start, n``: events matching the filter per bucket of the grain, in [start, end)."""
    counts_table, threshold_table, _ = _GRAIN_TABLES[grain]
    _require_thresholds(con, event_filter)
    query = sqlfiles.sql("objective_counts", counts=counts_table, thresholds=threshold_table)
    params = {"start": start, "end": end, **event_filter.sql_params()}
    return query_frame(con, query, sqlfiles.params_for(query, params))


def _require_thresholds(
    con: duckdb.DuckDBPyConnection, event_filter: EventFilter, have: set[tuple[str, float]] | None = None
) -> None:
    """Refuse a filter whose latency thresholds were never aggregated. ``have``: the aggregated
    (service, threshold) pairs, when the caller already read them (one query for a whole batch)."""
    needed = event_filter.thresholds
    if not needed or event_filter.matches_nothing:
        return
    if have is None:
        have = {
            (s, float(t))
            for s, t in con.execute(
                sqlfiles.sql("thresholds_for_services"),
                {"services": sorted(event_filter.services)},
            ).fetchall()
        }
    missing = sorted((s, t) for s in event_filter.services for t in needed if (s, t) not in have)
    if missing:
        pairs = ", ".join(f"{s} {t:g} ms" for s, t in missing)
        raise EvaluationError(
            f"no exact latency counts for {pairs}; refresh the aggregates with these SLOs "
            "(sloscope evaluate does this; in Dagster, materialise sli_aggregates)"
        )


def good_and_total(
    con: duckdb.DuckDBPyConnection, slo: SloDefinition, start: datetime, end: datetime, grain: str = "minute"
) -> pl.DataFrame:
    """``bucket_start, good, total`` for every bucket with data in [start, end)."""
    if slo.raw_type is not None:
        if grain not in ("minute", "hour"):
            raise ValueError(f"raw ratios are kept per minute and hour, not per {grain}")
        query = sqlfiles.sql("ratio_counts", source=f"sli_ratio_{grain}")
        params = {
            "start": start,
            "end": end,
            "scale": RAW_SCALE,
            "failure": slo.raw_type == "failure",
            **slo.total.sql_params(),
        }
        return query_frame(con, query, sqlfiles.params_for(query, params))
    total = counts_by_bucket(con, slo.total, start, end, grain).rename({"n": "total"})
    if slo.good is not None:
        good = counts_by_bucket(con, slo.total.intersect(slo.good), start, end, grain).rename({"n": "good"})
        joined = total.join(good, on="bucket_start", how="left").with_columns(pl.col("good").fill_null(0))
    else:
        bad = counts_by_bucket(con, slo.total.intersect(slo.bad), start, end, grain).rename({"n": "bad"})  # type: ignore[arg-type]
        joined = (
            total.join(bad, on="bucket_start", how="left")
            .with_columns((pl.col("total") - pl.col("bad").fill_null(0)).alias("good"))
            .drop("bad")
        )
    return joined.select("bucket_start", "good", "total").sort("bucket_start")


# A raw ratio data point counts as RAW_SCALE "events", ratio * RAW_SCALE of them good: every point weighs the
# same, and ratios keep six decimals.
RAW_SCALE = 1_000_000


def default_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """The end of the newest minute with data."""
    newest = con.execute(sqlfiles.sql("newest_minute")).fetchone()[0]
    if newest is None:
        raise EvaluationError(
            "the warehouse has no aggregated data yet; ingest files first (sloscope ingest)"
        )
    return newest + timedelta(minutes=1)


@dataclass(frozen=True)
class _Minutes:
    """Dense per-minute arrays over [start, start + len): good, total, and whether data arrived."""

    start: datetime
    good: np.ndarray
    total: np.ndarray
    present: np.ndarray
    excluded: np.ndarray

    def index(self, moment: datetime) -> int:
        return int((moment - self.start).total_seconds() // 60)


def _dense(series: pl.DataFrame, start: datetime, end: datetime, excluded: np.ndarray) -> _Minutes:
    minutes = int((end - start).total_seconds() // 60)
    good = np.zeros(minutes, dtype=np.int64)
    total = np.zeros(minutes, dtype=np.int64)
    present = np.zeros(minutes, dtype=bool)
    if series.height:
        offsets = series.select(((pl.col("bucket_start") - pl.lit(start)).dt.total_minutes()).alias("i"))["i"]
        index = offsets.to_numpy().astype(np.int64)
        good[index] = series["good"].to_numpy()
        total[index] = series["total"].to_numpy()
        present[index] = True
    # Corrected minutes count neither as good nor as total, nor as missing data.
    good[excluded] = 0
    total[excluded] = 0
    present[excluded] = False
    return _Minutes(start, good, total, present, excluded)


@dataclass(frozen=True)
class _Window:
    """Where one SLO's evaluation window and budget period lie for an as-of time."""

    as_of: datetime
    start: datetime
    period_start: datetime
    period_end: datetime

    @classmethod
    def of(cls, slo: SloDefinition, as_of: datetime) -> _Window:
        period_start, period_end = slo.window.period(as_of)
        if isinstance(slo.window, CalendarWindow) and period_start == as_of:
            # At the instant a calendar period ends, report the period that just ended, not the empty new
            # one: end-of-day history and an as-of at midnight must see the finished day, month, quarter.
            period_start, period_end = slo.window.period(as_of - timedelta(minutes=1))
            return cls(as_of, period_start, period_start, period_end)
        start, _ = slo.window.bounds(as_of)
        return cls(as_of, start, period_start, period_end)

    @property
    def minutes(self) -> int:
        return int((self.as_of - self.start).total_seconds() // 60)

    @property
    def period_minutes(self) -> int:
        return int((self.period_end - self.period_start).total_seconds() // 60)

    @property
    def lookback_start(self) -> datetime:
        return min(self.start, self.as_of - max(BURN_RATE_WINDOWS.values()))


@dataclass(frozen=True)
class _Sums:
    """Event sums an Occurrences evaluation needs: the window, each burn-rate window, data presence."""

    window_good: int
    window_total: int
    burn: dict[str, tuple[int, int]]
    present_minutes: int
    excluded_minutes: int = 0


def presence_by_minute(
    con: duckdb.DuckDBPyConnection, services: list[str], start: datetime, end: datetime
) -> np.ndarray:
    """Per minute of [start, end), whether any aggregated row of one of ``services`` arrived.

    Completeness is judged per service, not per filter: it asks whether the service's data arrived (the
    pipeline's health), and a quiet minute of one operation or status code is zero events, not missing
    data. That is also what the hourly bitmasks of ``sli_presence_hour`` can answer exactly.
    """
    first_hour = _floor(start, _HOUR)
    query = sqlfiles.sql("presence_minutes")
    found = con.execute(query, {"start": first_hour, "end": end, "services": services}).fetchall()
    hours = int((_ceil(end, _HOUR) - first_hour).total_seconds() // 3600)
    masks = np.zeros(hours, dtype=np.uint64)
    for bucket_start, minutes in found:
        masks[int((bucket_start - first_hour).total_seconds() // 3600)] = minutes
    bits = (masks[:, None] >> np.arange(60, dtype=np.uint64)) & np.uint64(1)
    offset = int((start - first_hour).total_seconds() // 60)
    length = int((end - start).total_seconds() // 60)
    return bits.reshape(-1).astype(bool)[offset : offset + length]


def minute_series(
    con: duckdb.DuckDBPyConnection,
    slo: SloDefinition,
    start: datetime,
    end: datetime,
    corrections: list[Correction] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense per-minute good and total over [start, end) with corrected minutes removed (for replays)."""
    start, end = floor_minute(start), floor_minute(end)
    minutes = int((end - start).total_seconds() // 60)
    excluded = excluded_minute_mask(corrections or [], start, minutes)
    data = _dense(good_and_total(con, slo, start, end), start, end, excluded)
    return data.good, data.total


def correction_applies(correction: Correction, slo: SloDefinition) -> bool:
    """A correction names an SLO (or '*'); a composite's components answer to the composite's name too."""
    if correction.applies_to(slo.name, slo.service):
        return True
    return slo.composite is not None and correction.applies_to(slo.composite, slo.service)


def evaluation_span(slo: SloDefinition, as_of: datetime) -> tuple[datetime, datetime]:
    """Every minute an evaluation as of ``as_of`` reads: the window and the longest burn-rate window."""
    window = _Window.of(slo, floor_minute(as_of))
    return window.lookback_start, window.as_of


def _units_json(units: BudgetUnits, *, raw: bool) -> dict[str, Any]:
    figures = units.to_json()
    if raw:
        # Scaled data points are not events: only the budget in minutes means something for raw ratios.
        figures.update(allowed_bad_events=None, bad_events=None, bad_events_left=None)
    return figures


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _exhaustion_seconds(remaining: float | None, rate: float | None, period: timedelta) -> float | None:
    """Seconds until the budget is gone at this burn rate: 0 once exhausted, None if it never would be."""
    if remaining is not None and remaining <= 0:
        return 0.0
    return _seconds(time_to_exhaustion(remaining, rate, period))


Figures = tuple[
    float | None, float | None, float | None, dict[str, float | None], BudgetUnits, dict[str, Any] | None
]


def _occurrence_figures(sums: _Sums, target: Decimal, period_minutes: int) -> Figures:
    sli, consumed, remaining = budget_figures(sums.window_good, sums.window_total, target)
    rates: dict[str, float | None] = {label: burn_rate(g, t, target) for label, (g, t) in sums.burn.items()}
    rates["window"] = burn_rate(sums.window_good, sums.window_total, target)
    units = occurrence_units(sums.window_good, sums.window_total, target, period_minutes)
    return sli, consumed, remaining, rates, units, None


def _statuses(
    slo: SloDefinition,
    window: _Window,
    sums: _Sums,
    figures_of: Any,
    corrections_applied: dict[str, Any],
    at_risk_remaining: float,
    policies: PolicySet | None,
) -> list[ObjectiveStatus]:
    """One status per objective; ``figures_of(objective)`` gives the method-specific figures."""
    expected = window.minutes - sums.excluded_minutes
    completeness = float(Fraction(sums.present_minutes, expected)) if expected else None
    # Raw ratios: report data points (total) and the sum of their good ratios (good), not scaled units.
    good_out, total_out = sums.window_good, sums.window_total
    if slo.raw_type is not None:
        good_out, total_out = round(sums.window_good / RAW_SCALE), sums.window_total // RAW_SCALE
    noun = "data points" if slo.raw_type is not None else "events"
    no_data_reason = None
    if total_out == 0:
        no_data_reason = f"no {noun} in the window"
    elif total_out < slo.minimum_events:
        no_data_reason = f"{total_out} {noun} in the window, fewer than the minimum of {slo.minimum_events}"
    policy = (policies or DEFAULT_POLICIES).for_slo(slo.name)
    period = window.period_end - window.period_start
    results = []
    for objective in slo.objectives:
        sli, consumed, remaining, rates, units, slices = figures_of(objective)
        reason = no_data_reason
        if reason:
            sli = consumed = remaining = None
            rates = {**rates, "window": None}  # the window's burn rate is its budget consumed: none either
        elif remaining is None:
            reason = "no complete time slice with traffic in the window yet"
        exhaustion = {
            label: _exhaustion_seconds(remaining, rates.get(label), period) for label in ("1h", "1d")
        }
        results.append(
            ObjectiveStatus(
                slo=slo.name,
                display_name=slo.display_name,
                service=slo.service,
                objective=objective.name,
                objective_index=objective.index,
                target=float(objective.target),
                budgeting_method=slo.budgeting_method,
                window_start=window.start,
                window_end=window.as_of,
                good=good_out,
                total=total_out,
                sli=sli,
                budget_consumed=consumed,
                budget_remaining=remaining,
                burn_rates=rates,
                status="no_data" if reason else classify(total_out, remaining, at_risk_remaining),
                period_start=window.period_start,
                period_end=window.period_end,
                budget_units=_units_json(units, raw=slo.raw_type is not None),
                time_to_exhaustion=exhaustion,
                policy_state=policy.state(remaining, rates),
                data_completeness=completeness,
                corrections_applied=corrections_applied,
                timeslices=slices,
                no_data_reason=reason,
            )
        )
    return results


def _percentile_minutes(slo: SloDefinition, data: _Minutes, as_of: datetime, slice_minutes: int) -> _Minutes:
    """Per-minute arrays that make each slice good (1 of 1) or bad (0 of 1) by its percentile verdict, at
    the slice's first minute, so the Timeslices arithmetic judges percentile objectives unchanged.

    The verdict is exact. ``data`` holds, per minute, the requests with a latency (total) and those
    meeting the bound (good: latency <= v for ``lte``, >= v for ``gte``...). The nearest-rank q-percentile
    of n requests is the r-th smallest, r = ceil(q * n): it is <= v (or < v) exactly when at least r
    requests are, and >= v (or > v) exactly when fewer than r requests miss the bound.
    """
    assert slo.threshold is not None and slo.percentile is not None
    op, _ = slo.threshold
    quantile = Fraction(slo.percentile) / 100
    minutes = len(data.good)
    count = -(-minutes // slice_minutes)  # whole slices ending at as_of, covering the lookback
    offset = count * slice_minutes - minutes  # minutes of the first slice before the lookback starts
    padded_good = np.concatenate([np.zeros(offset, dtype=np.int64), data.good])
    padded_total = np.concatenate([np.zeros(offset, dtype=np.int64), data.total])
    slice_good = padded_good.reshape(count, slice_minutes).sum(axis=1)
    slice_total = padded_total.reshape(count, slice_minutes).sum(axis=1)
    good = np.zeros(minutes, dtype=np.int64)
    total = np.zeros(minutes, dtype=np.int64)
    for index in range(count):
        n = int(slice_total[index])
        at = index * slice_minutes - offset
        if n == 0 or at < 0:
            continue
        rank = max(1, -(-(quantile.numerator * n) // quantile.denominator))
        meeting = int(slice_good[index])
        verdict = meeting >= rank if op in ("lte", "lt") else n - meeting < rank
        total[at] = 1
        good[at] = 1 if verdict else 0
    return _Minutes(data.start, good, total, data.present, data.excluded)


def evaluate_slo(
    con: duckdb.DuckDBPyConnection,
    slo: SloDefinition,
    as_of: datetime,
    *,
    at_risk_remaining: float = 0.25,
    corrections: list[Correction] | None = None,
    policies: PolicySet | None = None,
    series: pl.DataFrame | None = None,
) -> list[ObjectiveStatus]:
    """Every objective of one SLO as of ``as_of``, from per-minute counts (any method, any corrections).

    ``series``: the SLO's per-minute counts over its lookback when already read (``evaluate`` reads them
    for all such SLOs in one pass); read here otherwise.
    """
    window = _Window.of(slo, floor_minute(as_of))  # minute buckets: a window starts and ends on a minute
    lookback = window.lookback_start
    minutes_total = int((window.as_of - lookback).total_seconds() // 60)
    applied = corrections or []
    excluded = excluded_minute_mask(applied, lookback, minutes_total)
    if series is None:
        series = good_and_total(con, slo, lookback, window.as_of)
    data = _dense(series, lookback, window.as_of, excluded)
    if slo.raw_type is None:
        present = np.zeros(minutes_total, dtype=bool)
        if not slo.total.sql_params()["matches_nothing"]:
            present = presence_by_minute(con, sorted(slo.total.services), lookback, window.as_of)
        present[excluded] = False
        data = _Minutes(data.start, data.good, data.total, present, data.excluded)
    first = data.index(window.start)
    n = len(data.good)
    burn = {}
    for label, span in BURN_RATE_WINDOWS.items():
        k = int(span.total_seconds() // 60)
        burn[label] = (int(data.good[n - k :].sum()), int(data.total[n - k :].sum()))
    sums = _Sums(
        window_good=int(data.good[first:].sum()),
        window_total=int(data.total[first:].sum()),
        burn=burn,
        present_minutes=int(data.present[first:].sum()),
        excluded_minutes=int(data.excluded[first:].sum()),
    )
    overlapping = [c for c in applied if c.intervals(window.start, window.as_of)]
    corrections_applied = {
        "count": len(overlapping),
        "ids": [c.correction_id for c in overlapping],
        "excluded_minutes": sums.excluded_minutes,
    }
    automatic = [c.reason for c in overlapping if c.correction_id < 0]
    if automatic:
        corrections_applied["automatic"] = automatic

    slice_data = data
    if slo.percentile is not None:
        slice_minutes = slo.objectives[0].time_slice_minutes
        assert slice_minutes is not None
        slice_data = _percentile_minutes(slo, data, window.as_of, slice_minutes)

    def figures_of(objective: Objective) -> Figures:
        if slo.budgeting_method == "Occurrences":
            return _occurrence_figures(sums, objective.target, window.period_minutes)
        return _slice_figures(slo, objective, slice_data, first, window.minutes, window.period_minutes)

    return _statuses(slo, window, sums, figures_of, corrections_applied, at_risk_remaining, policies)


def _slice_burn_rates(data: _Minutes, slice_minutes: int, burn: Any) -> dict[str, float | None]:
    """Burn rate per window over the whole slices ending at as_of; None for a window shorter than a slice."""
    n = len(data.good)
    rates: dict[str, float | None] = {}
    for label, span in BURN_RATE_WINDOWS.items():
        k = int(span.total_seconds() // 60) // slice_minutes
        rates[label] = (
            burn(data.good[n - k * slice_minutes :], data.total[n - k * slice_minutes :]) if k else None
        )
    return rates


def _slice_figures(
    slo: SloDefinition,
    objective: Objective,
    data: _Minutes,
    first: int,
    window_minutes: int,
    period_minutes: int,
) -> Figures:
    """Timeslices and RatioTimeslices figures from per-minute counts."""
    target = objective.target
    good, total = data.good[first:], data.total[first:]
    window_good, window_total = int(good.sum()), int(total.sum())
    slice_minutes = objective.time_slice_minutes
    assert slice_minutes is not None
    # Only whole slices are judged: a calendar period's current slice is still open.
    complete = window_minutes - window_minutes % slice_minutes
    period_slices = period_minutes // slice_minutes
    g, t = good[:complete], total[:complete]
    if slo.budgeting_method == "Timeslices":
        assert objective.time_slice_target is not None
        result = timeslices(
            g,
            t,
            slice_minutes=slice_minutes,
            slice_target=objective.time_slice_target,
            target=target,
            total_slices=period_slices,
        )
        slice_target = objective.time_slice_target

        def burn(good: np.ndarray, total: np.ndarray) -> float | None:
            recent = timeslices(
                good, total, slice_minutes=slice_minutes, slice_target=slice_target, target=target
            )
            return timeslice_burn_rate(recent.bad_slices, recent.slices, target)

        rates = _slice_burn_rates(data, slice_minutes, burn)
        rates["window"] = result.consumed
        slices = {
            "slice_minutes": slice_minutes,
            "slices": result.slices,
            "good": result.good_slices,
            "bad": result.bad_slices,
            "empty": result.empty_slices,
            "period_slices": period_slices,
        }
        units = timeslice_units(result, window_good, window_total, target, period_slices * slice_minutes)
        return result.sli, result.consumed, result.remaining, rates, units, slices

    ratio = ratio_timeslices(g, t, slice_minutes=slice_minutes, target=target)
    rates = _slice_burn_rates(
        data,
        slice_minutes,
        lambda good, total: (
            ratio_timeslices(good, total, slice_minutes=slice_minutes, target=target).consumed
        ),
    )
    rates["window"] = ratio.consumed
    slices = {
        "slice_minutes": slice_minutes,
        "slices": ratio.slices,
        "with_traffic": ratio.slices_with_traffic,
        "empty": ratio.empty_slices,
        "period_slices": period_slices,
    }
    # In slice-ratio terms, like the SLI and budget: the bad share is 1 - mean slice ratio.
    budget_minutes = float(Fraction(1 - target) * period_minutes)
    bad_minutes = None if ratio.sli is None else (1 - ratio.sli) * period_minutes
    units = BudgetUnits(
        allowed_bad_events=None,
        bad_events=window_total - window_good,
        bad_events_left=None,
        budget_minutes=budget_minutes,
        bad_minutes=bad_minutes,
        bad_minutes_left=None if bad_minutes is None else budget_minutes - bad_minutes,
    )
    return ratio.sli, ratio.consumed, ratio.remaining, rates, units, slices


_BATCH_SCHEMA = {
    "entry_id": pl.Int64,
    "service": pl.String,
    "window_start": pl.Datetime("us"),
    "operations_in": pl.List(pl.String),
    "operations_not_in": pl.List(pl.String),
    "status_in": pl.List(pl.Int32),
    "status_not_in": pl.List(pl.Int32),
    "status_min": pl.Int32,
    "status_max": pl.Int32,
    "success": pl.Boolean,
    "has_upper": pl.Boolean,
    "upper": pl.Float64,
    "upper_inclusive": pl.Boolean,
    "has_lower": pl.Boolean,
    "lower": pl.Float64,
    "lower_inclusive": pl.Boolean,
    "matches_nothing": pl.Boolean,
}


_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


def _floor(moment: datetime, step: timedelta) -> datetime:
    if step == _DAY:
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + step


def grain_ranges(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """[start, end) as (grain, lo, hi) ranges: minutes up to the first whole hour, hours up to the first
    whole UTC day, whole days, then hours and minutes up to ``end`` (both on minutes)."""
    if start >= end:
        return []
    first_hour, last_hour = _ceil(start, _HOUR), _floor(end, _HOUR)
    if first_hour >= last_hour:
        return [("minute", start, end)]
    ranges = [("minute", start, first_hour)] if start < first_hour else []
    first_day, last_day = _ceil(first_hour, _DAY), _floor(last_hour, _DAY)
    if first_day >= last_day:
        ranges.append(("hour", first_hour, last_hour))
    else:
        if first_hour < first_day:
            ranges.append(("hour", first_hour, first_day))
        ranges.append(("day", first_day, last_day))
        if last_day < last_hour:
            ranges.append(("hour", last_day, last_hour))
    if last_hour < end:
        ranges.append(("minute", last_hour, end))
    return ranges


def window_ranges(starts: list[datetime], as_of: datetime) -> list[tuple[str, datetime, datetime]]:
    """Disjoint (grain, lo, hi) ranges covering [min(starts), as_of), none holding a start inside it, so
    every window [start, as_of) is exactly a union of them: the span is cut at every start and each piece
    is read as coarsely as its alignment allows (:func:`grain_ranges`).

    Only the hours holding a start not on the hour are read per minute, and only the days holding one not
    on a day per hour: the cost follows the number of distinct starts, not the length of the windows.
    """
    cuts = sorted({s for s in starts if s < as_of} | {as_of})
    return [piece for lo, hi in pairwise(cuts) for piece in grain_ranges(lo, hi)]


_SUM_COLUMNS = ["n_window", *(f"n_{label}" for label in BURN_RATE_WINDOWS)]


def _window_sums(
    con: duckdb.DuckDBPyConnection,
    ranges: list[tuple[str, datetime, datetime]],
    as_of: datetime,
) -> dict[int, dict[str, int]]:
    """Per entry of ``batch_filters``, the window and burn-window sums over the ranges, added up."""
    parts = []
    for grain, lo, hi in ranges:
        counts_table, threshold_table, _ = _GRAIN_TABLES[grain]
        query = sqlfiles.sql("objective_window_sums", counts=counts_table, thresholds=threshold_table)
        parts.append(query_frame(con, query, {"lo": lo, "hi": hi, "as_of": as_of}))
    parts = [part for part in parts if part.height]
    if not parts:
        return {}
    added = pl.concat(parts).group_by("entry_id").agg(pl.col(c).sum() for c in _SUM_COLUMNS)
    return {row["entry_id"]: row for row in added.iter_rows(named=True)}


def _presence(
    con: duckdb.DuckDBPyConnection, entries: pl.DataFrame, lo: datetime, as_of: datetime
) -> dict[int, int]:
    """Per entry, the minutes of its window in which data of any of its services arrived."""
    con.register("presence_entries", entries)
    try:
        query = sqlfiles.sql("objective_presence")
        found = con.execute(query, {"lo": _floor(lo, _HOUR), "as_of": as_of}).fetchall()
    finally:
        con.unregister("presence_entries")
    return {int(entry): int(n) for entry, n in found}


@contextmanager
def _batch_table(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> Iterator[None]:
    """``frame`` as the temporary table ``batch_filters`` for the duration of the block."""
    con.register("batch_filters_frame", frame)
    try:
        sqlfiles.run(con, "batch_filters_create")
    finally:
        con.unregister("batch_filters_frame")
    try:
        yield
    finally:
        sqlfiles.run(con, "batch_filters_drop")


def _batch_filters(
    con: duckdb.DuckDBPyConnection, slos: list[SloDefinition], starts: list[datetime]
) -> tuple[pl.DataFrame, dict[str, tuple[int, int, bool]]]:
    """The ``batch_filters`` rows of many SLOs (entry 2i: SLO i's total filter, 2i + 1: its good or bad
    part), each from the SLO's start, and per SLO (total entry, part entry, whether the part is bad)."""
    aggregated = {(s, float(t)) for s, t in con.execute(sqlfiles.sql("thresholds_current")).fetchall()}
    rows: list[dict[str, Any]] = []
    roles: dict[str, tuple[int, int, bool]] = {}
    for number, (slo, start) in enumerate(zip(slos, starts, strict=True)):
        part = slo.good if slo.good is not None else slo.bad
        assert part is not None
        entries = [(2 * number, slo.total), (2 * number + 1, slo.total.intersect(part))]
        roles[slo.name] = (2 * number, 2 * number + 1, slo.good is None)
        for entry_id, event_filter in entries:
            _require_thresholds(con, event_filter, aggregated)
            params = event_filter.sql_params()
            for service in params.pop("services"):
                rows.append({"entry_id": entry_id, "service": service, "window_start": start, **params})
    return pl.DataFrame(rows, schema=_BATCH_SCHEMA), roles


def _batched_series(
    con: duckdb.DuckDBPyConnection, slos: list[SloDefinition], as_of: datetime
) -> dict[str, pl.DataFrame]:
    """Per SLO, ``bucket_start, good, total`` for every minute with data in its lookback (what
    :func:`good_and_total` gives), for many SLOs in one pass over the minute tables."""
    if not slos:
        return {}
    starts = [_Window.of(slo, as_of).lookback_start for slo in slos]
    frame, roles = _batch_filters(con, slos, starts)
    with _batch_table(con, frame):
        query = sqlfiles.sql("objective_minute_series")
        found = query_frame(con, query, {"lo": min(starts), "as_of": as_of})
    by_entry = dict(found.partition_by("entry_id", as_dict=True, include_key=False)) if found.height else {}
    empty = pl.DataFrame(schema={"bucket_start": pl.Datetime("us"), "n": pl.Int64})
    series: dict[str, pl.DataFrame] = {}
    for slo in slos:
        total_id, part_id, is_bad = roles[slo.name]
        total = by_entry.get((total_id,), empty).rename({"n": "total"})
        part = by_entry.get((part_id,), empty).rename({"n": "part"})
        joined = total.join(part, on="bucket_start", how="left").with_columns(pl.col("part").fill_null(0))
        good = pl.col("total") - pl.col("part") if is_bad else pl.col("part")
        series[slo.name] = joined.select("bucket_start", good.alias("good"), "total").sort("bucket_start")
    return series


def _batched_sums(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    as_of: datetime,
    *,
    minutes_only: bool = False,
) -> dict[str, _Sums]:
    """Occurrences sums of many SLOs in one batch (no corrections may apply).

    Whole days are read from the daily rollups, whole hours from the hourly ones and only the ragged
    edges from the minute tables (:func:`window_ranges`); the rollups are exact sums of the minutes, so
    the figures are the minute sums exactly. ``minutes_only`` reads the same ranges from the minute
    tables instead (the reference the tests compare against).
    """
    if not slos:
        return {}
    window_starts = [_Window.of(slo, as_of).start for slo in slos]
    frame, roles = _batch_filters(con, slos, window_starts)
    ranges = window_ranges([*window_starts, *(as_of - span for span in BURN_RATE_WINDOWS.values())], as_of)
    if minutes_only:
        ranges = [("minute", lo, hi) for _, lo, hi in ranges]
    with _batch_table(con, frame):
        by_entry = _window_sums(con, ranges, as_of)
    totals = frame.filter((pl.col("entry_id") % 2 == 0) & ~pl.col("matches_nothing"))
    present = _presence(con, totals.select("entry_id", "service", "window_start"), min(window_starts), as_of)
    empty = dict.fromkeys(_SUM_COLUMNS, 0)
    sums: dict[str, _Sums] = {}
    for slo in slos:
        total_id, part_id, is_bad = roles[slo.name]
        total, part = by_entry.get(total_id, empty), by_entry.get(part_id, empty)

        def good_of(key: str, total: dict = total, part: dict = part, is_bad: bool = is_bad) -> int:
            return int(total[key] - part[key]) if is_bad else int(part[key])

        sums[slo.name] = _Sums(
            window_good=good_of("n_window"),
            window_total=int(total["n_window"]),
            burn={label: (good_of(f"n_{label}"), int(total[f"n_{label}"])) for label in BURN_RATE_WINDOWS},
            present_minutes=present.get(total_id, 0),
        )
    return sums


def floor_minute(moment: datetime) -> datetime:
    """Evaluation resolution is one minute: an as-of time is taken at the start of its minute."""
    return moment.replace(second=0, microsecond=0)


# Exclusions sloscope adds itself carry this id: an operator's corrections have positive ids.
THRESHOLD_GAP_CORRECTION_ID = -1
_FAR_PAST = datetime(1970, 1, 1)
_FAR_FUTURE = datetime(9999, 1, 1)


def threshold_gap_corrections(
    con: duckdb.DuckDBPyConnection, slos: list[SloDefinition]
) -> dict[str, list[Correction]]:
    """Per SLO, an exclusion of the time before all its latency thresholds have exact counts.

    A threshold declared after retention deleted a service's older raw events has exact counts only
    where raw events remained (sql/thresholds_gaps.sql). Counting the minutes before as "every request
    slower than the threshold" would burn budget that was never burnt and page on it; excluding them,
    as a correction would, leaves the window shorter and says so (data completeness, corrections).
    """
    gaps = {
        (service, float(threshold)): exact_from
        for service, threshold, exact_from, _ in con.execute(sqlfiles.sql("thresholds_gaps")).fetchall()
    }
    if not gaps:
        return {}
    found: dict[str, list[Correction]] = {}
    for slo in slos:
        starts = [
            gaps[(service, float(threshold))] or _FAR_FUTURE
            for service, thresholds in slo.thresholds.items()
            for threshold in thresholds
            if (service, float(threshold)) in gaps
        ]
        if not starts:
            continue
        exact_from = max(starts)
        since = "at all" if exact_from == _FAR_FUTURE else f"before {exact_from:%Y-%m-%d}"
        found[slo.name] = [
            Correction(
                correction_id=THRESHOLD_GAP_CORRECTION_ID,
                slo=slo.name,
                service=None,
                start=_FAR_PAST,
                end=exact_from,
                rrule=None,
                duration_minutes=None,
                time_zone="UTC",
                reason=(
                    f"no exact latency counts {since}: the threshold was declared after retention "
                    "deleted the raw events it would be counted from"
                ),
                added_by="sloscope",
                added_at=exact_from if exact_from != _FAR_FUTURE else _FAR_PAST,
                removed_by=None,
                removed_at=None,
            )
        ]
    return found


def active_corrections_all(con: duckdb.DuckDBPyConnection) -> list[Correction]:
    """Every correction not removed, read once per evaluation."""
    return _list_corrections(con)


def evaluate(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    as_of: datetime | None = None,
    *,
    at_risk_remaining: float = 0.25,
    policies: PolicySet | None = None,
) -> list[ObjectiveStatus]:
    """Every objective of every SLO, with the corrections recorded in the warehouse applied.

    Occurrences SLOs without corrections are summed for all SLOs in one batch, reading whole days and hours
    from the rollups (the common case, and what keeps thousands of objectives fast); the rest are evaluated
    from per-minute counts, read for all of them in one pass over the minute tables.
    """
    moment = floor_minute(as_of) if as_of else default_as_of(con)
    active = active_corrections_all(con)
    gap_exclusions = threshold_gap_corrections(con, slos)
    corrections = {
        slo.name: [c for c in active if correction_applies(c, slo)] + gap_exclusions.get(slo.name, [])
        for slo in slos
    }
    batched = [
        s
        for s in slos
        if s.budgeting_method == "Occurrences" and not corrections[s.name] and s.raw_type is None
    ]
    sums = _batched_sums(con, batched, moment)
    dense = _batched_series(con, [s for s in slos if s.name not in sums and s.raw_type is None], moment)
    results: list[ObjectiveStatus] = []
    for slo in sorted(slos, key=lambda s: s.name):
        if slo.name in sums:
            window = _Window.of(slo, moment)
            slo_sums = sums[slo.name]
            results.extend(
                _statuses(
                    slo,
                    window,
                    slo_sums,
                    lambda o, w=window, t=slo_sums: _occurrence_figures(t, o.target, w.period_minutes),
                    {"count": 0, "ids": [], "excluded_minutes": 0},
                    at_risk_remaining,
                    policies,
                )
            )
        else:
            results.extend(
                evaluate_slo(
                    con,
                    slo,
                    moment,
                    at_risk_remaining=at_risk_remaining,
                    corrections=corrections[slo.name],
                    policies=policies,
                    series=dense.get(slo.name),
                )
            )
    return _with_composite_wholes(slos, results, at_risk_remaining, policies)


COMPOSITE_WHOLE = "weighted whole"


def _weighted_mean(pairs: list[tuple[float, float | None]]) -> float | None:
    """Mean of the values that exist, weighted; None when none does."""
    present = [(w, v) for w, v in pairs if v is not None]
    weight = sum(w for w, _ in present)
    return sum(w * v for w, v in present) / weight if present and weight else None


def composite_whole(
    name: str,
    components: list[tuple[SloDefinition, ObjectiveStatus]],
    *,
    at_risk_remaining: float = 0.25,
    policies: PolicySet | None = None,
) -> ObjectiveStatus:
    """The weighted whole of a composite SLO: SLI, budget consumed and burn rates are the means of the
    components' figures weighted by ``compositeWeight``, over the components that have data."""
    weights = [float(slo.composite_weight or 1.0) for slo, _ in components]
    statuses = [status for _, status in components]
    pairs = list(zip(weights, statuses, strict=True))
    first_slo, first = components[0]
    consumed = _weighted_mean([(w, s.budget_consumed) for w, s in pairs])
    remaining = None if consumed is None else 1 - consumed
    rates = {
        label: _weighted_mean([(w, s.burn_rates.get(label)) for w, s in pairs]) for label in first.burn_rates
    }
    total = sum(s.total for s in statuses)
    period = (first.period_end or first.window_end) - (first.period_start or first.window_start)
    return ObjectiveStatus(
        slo=name,
        display_name=first_slo.display_name,
        service=first_slo.service,
        objective=COMPOSITE_WHOLE,
        objective_index=len(components),
        target=sum(w * s.target for w, s in pairs) / sum(weights),
        budgeting_method=first.budgeting_method,
        window_start=first.window_start,
        window_end=first.window_end,
        good=sum(s.good for s in statuses),
        total=total,
        sli=_weighted_mean([(w, s.sli) for w, s in pairs]),
        budget_consumed=consumed,
        budget_remaining=remaining,
        burn_rates=rates,
        status="no_data" if remaining is None else classify(total, remaining, at_risk_remaining),
        period_start=first.period_start,
        period_end=first.period_end,
        budget_units={"components": len(components), "weights": weights},
        time_to_exhaustion={
            label: _exhaustion_seconds(remaining, rates.get(label), period) for label in ("1h", "1d")
        },
        policy_state=(policies or DEFAULT_POLICIES).for_slo(name).state(remaining, rates),
        data_completeness=_weighted_mean([(w, s.data_completeness) for w, s in pairs]),
        corrections_applied={
            "count": len({i for s in statuses for i in s.corrections_applied.get("ids", [])}),
            "ids": sorted({i for s in statuses for i in s.corrections_applied.get("ids", [])}),
            "excluded_minutes": sum(s.corrections_applied.get("excluded_minutes", 0) for s in statuses),
        },
        no_data_reason=None if remaining is not None else "no component has data",
    )


def _with_composite_wholes(
    slos: list[SloDefinition],
    results: list[ObjectiveStatus],
    at_risk_remaining: float,
    policies: PolicySet | None,
) -> list[ObjectiveStatus]:
    """The results with each composite SLO's weighted whole inserted right after its components."""
    by_name = {slo.name: slo for slo in slos}
    groups: dict[str, list[tuple[SloDefinition, ObjectiveStatus]]] = {}
    for status in results:
        slo = by_name[status.slo]
        if slo.composite:
            groups.setdefault(slo.composite, []).append((slo, status))
    out = list(results)
    for name, components in sorted(groups.items()):
        whole = composite_whole(name, components, at_risk_remaining=at_risk_remaining, policies=policies)
        last = max(
            i
            for i, s in enumerate(out)
            if by_name.get(s.slo) is not None and by_name[s.slo].composite == name
        )
        out.insert(last + 1, whole)
    return out

"""Analytics as pipeline steps (shared by the Dagster assets and the CLI): per SLO, the SLI series (error
rate, availability, throughput, and latency p95/p99 for latency SLOs) at hourly and daily resolution,
decomposed with their trends and change points; streaming anomaly scores; Monte Carlo budget forecasts.

Series come from ``slo_hourly`` (good and total per SLO per hour, corrections not applied: the analytics
describe what the service did) and, for latency, from the hourly log-bucket histograms of the SLO's
services. Error rate and availability are one series seen two ways: error rate is analysed, availability
is its mirror (1 - value), so both are stored without fitting twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl

from pipelines import sqlfiles
from pipelines.slo import histogram
from pipelines.slo.anomaly import score_series
from pipelines.slo.budget import (
    RAW_SCALE,
    active_corrections_all,
    correction_applies,
    floor_minute,
    good_and_total,
    minute_series,
)
from pipelines.slo.forecast import BudgetForecast, forecast_for_window, hourly_arrays
from pipelines.slo.seasonal import Analysis, SeasonalError, analyse
from pipelines.slo.spec import SloDefinition
from pipelines.warehouse import transaction

HOURLY, DAILY = "hour", "day"
DEFAULT_SEED = 20261001
# History a forecast reads: its 28 days of blocks and the 56 days its trend is fitted on, with margin.
FORECAST_HISTORY = timedelta(days=63)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Series:
    slo: str
    metric: str  # error_rate | throughput | latency_p95 | latency_p99
    resolution: str  # hour | day
    timestamps: np.ndarray  # datetime64[us], regular, NaN-free grid not required
    values: np.ndarray


def _hourly_counts(con: duckdb.DuckDBPyConnection, slo: SloDefinition, end: datetime) -> pl.DataFrame:
    """``bucket_start, good, total`` per whole hour before ``end`` (uncorrected: what the service did).
    Raw ratios come as unrounded scaled points, so their error rate is exact."""
    first = con.execute(sqlfiles.sql("raw_first_minute")).fetchall()[0][0]
    if first is None or first >= end:
        return pl.DataFrame(schema={"bucket_start": pl.Datetime("us"), "good": pl.Int64, "total": pl.Int64})
    return good_and_total(con, slo, first.replace(minute=0, second=0, microsecond=0), end, grain="hour")


def _daily(stamps: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    days = stamps.astype("datetime64[D]")
    unique, inverse = np.unique(days, return_inverse=True)
    sums = [np.bincount(inverse, weights=a.astype(float), minlength=len(unique)) for a in arrays]
    return (unique.astype("datetime64[us]"), *sums)


def _error_rate(good: np.ndarray, total: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, (total - good) / np.where(total > 0, total, 1), np.nan)


def whole_hour(as_of: datetime) -> datetime:
    """The end of the last whole hour at ``as_of``: the hour in progress is not analysed (its score would
    change as it fills)."""
    return floor_minute(as_of).replace(minute=0)


def slo_series(
    con: duckdb.DuckDBPyConnection, slo: SloDefinition, as_of: datetime, *, days: int | None = 90
) -> list[Series]:
    """Every analysed series of one SLO over whole hours (and whole days) before ``as_of``: the last
    ``days`` of history, or all of it with None."""
    end = whole_hour(as_of)
    frame = _hourly_counts(con, slo, end)
    if frame.is_empty():
        return []
    # Every hour from the first with data up to the end: silent hours are hours without traffic.
    good, total, first = hourly_arrays(frame, end=end)
    stamps = np.datetime64(first, "us") + np.arange(len(total)) * np.timedelta64(1, "h")
    if days is not None and len(stamps) > days * 24:
        stamps, good, total = stamps[-days * 24 :], good[-days * 24 :], total[-days * 24 :]
    points = total / RAW_SCALE if slo.raw_type is not None else total.astype(float)
    out = [
        Series(slo.name, "error_rate", HOURLY, stamps, _error_rate(good, total)),
        Series(slo.name, "throughput", HOURLY, stamps, points),
    ]
    # Whole days only: a day ends with its 24th hour.
    whole = stamps < np.datetime64(end, "D").astype("datetime64[us]")
    if whole.any():
        day_stamps, day_good, day_total = _daily(stamps[whole], good[whole], total[whole])
        day_points = day_total / RAW_SCALE if slo.raw_type is not None else day_total
        out += [
            Series(slo.name, "error_rate", DAILY, day_stamps, _error_rate(day_good, day_total)),
            Series(slo.name, "throughput", DAILY, day_stamps, day_points),
        ]
    if slo.thresholds and slo.raw_type is None:
        out += _latency_series(con, slo, stamps, whole)
    return out


def _latency_series(
    con: duckdb.DuckDBPyConnection, slo: SloDefinition, stamps: np.ndarray, whole_days: np.ndarray
) -> list[Series]:
    """p95 and p99 latency of the SLO's services, hourly and daily, from the log-bucket histograms (within
    1% of exact); hours and days without requests are NaN."""
    out = []
    for resolution, source, unit in (
        (HOURLY, "latency_histogram_hour", "h"),
        (DAILY, "latency_histogram_day", "D"),
    ):
        hours = stamps if resolution == HOURLY else stamps[whole_days]
        if not len(hours):
            continue
        grid = np.unique(hours.astype(f"datetime64[{unit}]")).astype("datetime64[us]")
        rows = con.execute(
            sqlfiles.sql("analytics_latency", source=source),
            {"services": sorted(slo.total.services), "start": grid[0].astype(datetime)},
        ).fetchall()
        position = {np.datetime64(r[0], "us"): r for r in rows}
        p95 = np.full(len(grid), np.nan)
        p99 = np.full(len(grid), np.nan)
        for i, stamp in enumerate(grid):
            row = position.get(stamp)
            if row is not None:
                p95[i] = histogram.representative(int(row[1]))
                p99[i] = histogram.representative(int(row[2]))
        out += [
            Series(slo.name, "latency_p95", resolution, grid, p95),
            Series(slo.name, "latency_p99", resolution, grid, p99),
        ]
    return out


# ---------------------------------------------------------------------------------------------------------
# Seasonality, trends and change points


def _analyse(series: Series) -> Analysis | None:
    step = _HOUR if series.resolution == HOURLY else timedelta(days=1)
    finite = np.isfinite(series.values)
    if finite.sum() < 4:
        return None
    try:
        return analyse(series.timestamps, series.values, step=step)
    except SeasonalError:
        return None


def _mirror(metric: str) -> str | None:
    return "availability" if metric == "error_rate" else None


# Traffic and latency vary multiplicatively (a busy hour is busier by a factor, a slow deploy slows every
# request by a factor): they are analysed on a log scale, where their seasonality and shifts are additive.
LOG_METRICS = frozenset({"throughput", "latency_p95", "latency_p99"})


def seasonality_rows(series_list: list[Series]) -> tuple[list[dict], list[dict], list[dict]]:
    """Rows of ``slo_seasonal``, ``slo_trends`` and ``slo_change_points`` for the series given.

    Error rates are analysed as they are (availability is their mirror, 1 - value). Log-scale metrics
    (``scale = 'log'``) are stored in their own units for observed, trend and change-point levels, with
    seasonal and residual components as factors and the trend slope as a relative change per day."""
    components: list[dict] = []
    trends: list[dict] = []
    shifts: list[dict] = []
    for series in series_list:
        log = series.metric in LOG_METRICS
        values = series.values
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.where(values > 0, np.log(values), np.nan)
        result = _analyse(Series(series.slo, series.metric, series.resolution, series.timestamps, values))
        if result is None:
            continue
        views = [(series.metric, 1.0, 0.0)]
        mirror = _mirror(series.metric)
        if mirror:
            views.append((mirror, -1.0, 1.0))
        for metric, sign, offset in views:
            components += _component_rows(series, metric, result, sign, offset, log)
            if result.trend is not None:
                trends.append(_trend_row(series, metric, result, sign, log))
            for shift in result.change_points:
                before, after = (
                    (float(np.exp(shift.before)), float(np.exp(shift.after)))
                    if log
                    else (offset + sign * shift.before, offset + sign * shift.after)
                )
                shifts.append(
                    {
                        "slo": series.slo,
                        "metric": metric,
                        "resolution": series.resolution,
                        "changed_at": shift.at,
                        "level_before": before,
                        "level_after": after,
                        "size": after - before,
                        "z": shift.z,
                    }
                )
    return components, trends, shifts


def _component_rows(
    series: Series, metric: str, result: Analysis, sign: float, offset: float, log: bool
) -> list[dict]:
    d = result.decomposition
    daily = d.seasonal.get(next((p for p in d.seasonal if p in (24, 1)), -1))
    weekly = d.seasonal.get(next((p for p in d.seasonal if p in (168, 7)), -1))

    def level(v: float) -> float | None:
        return _num(np.exp(v)) if log else _num(offset + sign * v)

    def part(v: float) -> float | None:
        return _num(np.exp(v)) if log else _num(sign * v)

    return [
        {
            "slo": series.slo,
            "metric": metric,
            "resolution": series.resolution,
            "scale": "log" if log else "linear",
            "bucket_start": stamp.astype(datetime),
            "observed": level(d.observed[i]),
            "trend": level(d.trend[i]),
            "seasonal_daily": part(daily[i]) if daily is not None else None,
            "seasonal_weekly": part(weekly[i]) if weekly is not None else None,
            "residual": part(d.residual[i]),
            "filled": bool(d.filled[i]),
        }
        for i, stamp in enumerate(d.timestamps)
    ]


def _trend_row(series: Series, metric: str, result: Analysis, sign: float, log: bool) -> dict:
    t = result.trend
    assert t is not None
    if log:
        # A slope b of the log is a relative change of e^b - 1 a day.
        slope, low, high = (float(np.expm1(v)) for v in (t.slope_per_day, t.ci_low, t.ci_high))
    else:
        slope = sign * t.slope_per_day
        low, high = sorted((sign * t.ci_low, sign * t.ci_high))
    return {
        "slo": series.slo,
        "metric": metric,
        "resolution": series.resolution,
        "scale": "log" if log else "linear",
        "slope_per_day": slope,
        "ci_low": low,
        "ci_high": high,
        "p_value": t.p_value,
        "significant": t.significant,
        "points": t.points,
    }


def _num(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


# ---------------------------------------------------------------------------------------------------------
# Anomalies


def anomaly_rows(series_list: list[Series], *, keep_days: int | None = None) -> list[dict]:
    """One scored row per hourly point of every hourly series (streaming scores: no look-ahead), keeping
    the last ``keep_days``. Score whole histories and keep the recent part, so that a stored score never
    changes when the window slides (the detector's warm-up stays anchored at the first data)."""
    rows: list[dict] = []
    for series in series_list:
        if series.resolution != HOURLY or not np.isfinite(series.values).any():
            continue
        scores = score_series(series.timestamps, series.values)
        first = 0 if keep_days is None else max(0, len(series.timestamps) - keep_days * 24)
        for i in range(first, len(series.timestamps)):
            stamp = series.timestamps[i]
            rows.append(
                {
                    "slo": series.slo,
                    "metric": series.metric,
                    "bucket_start": stamp.astype(datetime),
                    "value": _num(series.values[i]),
                    "score": float(scores.score[i]),
                    "confidence": float(scores.confidence[i]),
                    "is_anomaly": bool(scores.is_anomaly[i]),
                }
            )
    return rows


# ---------------------------------------------------------------------------------------------------------
# Forecasts


def seed_for(slo: str, objective: str, base: int = DEFAULT_SEED) -> int:
    """A stable per-objective seed: reruns reproduce, objectives do not share random streams."""
    digest = hashlib.sha256(f"{slo}\x00{objective}".encode()).digest()
    return (base + int.from_bytes(digest[:4], "big")) % 2**32


def forecast_rows(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    as_of: datetime,
    *,
    simulations: int = 2000,
    base_seed: int = DEFAULT_SEED,
) -> list[dict]:
    """A budget forecast per Occurrences objective as of the last whole hour of data (see
    :func:`pipelines.slo.forecast.forecast_for_window` for what the horizon is per kind of window)."""
    hour = whole_hour(as_of)
    first = con.execute(sqlfiles.sql("raw_first_minute")).fetchall()[0][0]
    if first is None:
        return []
    first_hour = first.replace(minute=0, second=0, microsecond=0)
    corrections = active_corrections_all(con)
    rows: list[dict] = []
    for slo in slos:
        # The history the forecast learns from, and all of a calendar period elapsed so far.
        period_start, _ = slo.window.period(hour)
        start = max(first_hour, min(hour - FORECAST_HISTORY, period_start.replace(minute=0)))
        if slo.budgeting_method != "Occurrences" or slo.raw_type is not None or start >= hour:
            continue
        # Corrected minutes, as the budget counts them (an excused outage is neither spent budget nor a
        # past incident to learn from), summed per hour.
        minutes_good, minutes_total = minute_series(
            con, slo, start, hour, [c for c in corrections if correction_applies(c, slo)]
        )
        good = minutes_good.reshape(-1, 60).sum(axis=1)
        total = minutes_total.reshape(-1, 60).sum(axis=1)
        if not total.any():
            continue
        hours_start = start
        for objective in slo.objectives:
            seed = seed_for(slo.name, objective.name, base_seed)
            try:
                result = forecast_for_window(
                    slo.window,
                    good,
                    total,
                    hours_start,
                    target=objective.target,
                    as_of=hour,
                    seed=seed,
                    simulations=simulations,
                )
            except ValueError as exc:
                # A calendar period that does not start on the hour (a half-hour time zone): hourly
                # simulation cannot represent it; such an objective gets no forecast. Anything else is a bug.
                if "window_start" not in str(exc):
                    raise
                continue
            rows.append(_forecast_row(slo, objective.name, result))
    return rows


def _forecast_row(slo: SloDefinition, objective: str, f: BudgetForecast) -> dict[str, Any]:
    quantiles = f.exhaustion_quantiles
    return {
        "slo": slo.name,
        "service": slo.service,
        "objective": objective,
        "as_of": f.as_of,
        "window_start": f.window_start,
        "window_end": f.window_end,
        "rolling": f.rolling,
        "seed": f.seed,
        "simulations": f.simulations,
        "budget_remaining_now": f.budget_remaining_now,
        "probability_exhausted": f.probability_exhausted,
        "probability_already_exhausted": f.probability_already_exhausted,
        "remaining_p10": f.remaining_p10,
        "remaining_p50": f.remaining_p50,
        "remaining_p90": f.remaining_p90,
        "exhaustion_p10": quantiles.get("p10"),
        "exhaustion_p50": quantiles.get("p50"),
        "exhaustion_p90": quantiles.get("p90"),
        "next_window_end": f.next_window_end,
        "next_window_probability_exhausted": f.next_window_probability_exhausted,
        "incidents_detected": f.incidents_detected,
        "trend_weight": f.trend_weight,
        "exhaustion_histogram": _histogram_json(f.exhaustion_histogram),
    }


def _histogram_json(histogram_rows: list[tuple[datetime, float]]) -> str:
    import json

    return json.dumps([[day.isoformat(), share] for day, share in histogram_rows])


# ---------------------------------------------------------------------------------------------------------
# Storing


_SCHEMAS: dict[str, dict[str, Any]] = {
    "slo_seasonal": {
        "slo": pl.String,
        "metric": pl.String,
        "resolution": pl.String,
        "scale": pl.String,
        "bucket_start": pl.Datetime("us"),
        "observed": pl.Float64,
        "trend": pl.Float64,
        "seasonal_daily": pl.Float64,
        "seasonal_weekly": pl.Float64,
        "residual": pl.Float64,
        "filled": pl.Boolean,
    },
    "slo_trends": {
        "slo": pl.String,
        "metric": pl.String,
        "resolution": pl.String,
        "scale": pl.String,
        "slope_per_day": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "p_value": pl.Float64,
        "significant": pl.Boolean,
        "points": pl.Int64,
    },
    "slo_change_points": {
        "slo": pl.String,
        "metric": pl.String,
        "resolution": pl.String,
        "changed_at": pl.Datetime("us"),
        "level_before": pl.Float64,
        "level_after": pl.Float64,
        "size": pl.Float64,
        "z": pl.Float64,
    },
    "slo_anomalies": {
        "slo": pl.String,
        "metric": pl.String,
        "bucket_start": pl.Datetime("us"),
        "value": pl.Float64,
        "score": pl.Float64,
        "confidence": pl.Float64,
        "is_anomaly": pl.Boolean,
    },
    "slo_forecasts": {
        "slo": pl.String,
        "service": pl.String,
        "objective": pl.String,
        "as_of": pl.Datetime("us"),
        "window_start": pl.Datetime("us"),
        "window_end": pl.Datetime("us"),
        "rolling": pl.Boolean,
        "seed": pl.Int64,
        "simulations": pl.Int64,
        "budget_remaining_now": pl.Float64,
        "probability_exhausted": pl.Float64,
        "probability_already_exhausted": pl.Float64,
        "remaining_p10": pl.Float64,
        "remaining_p50": pl.Float64,
        "remaining_p90": pl.Float64,
        "exhaustion_p10": pl.Datetime("us"),
        "exhaustion_p50": pl.Datetime("us"),
        "exhaustion_p90": pl.Datetime("us"),
        "next_window_end": pl.Datetime("us"),
        "next_window_probability_exhausted": pl.Float64,
        "incidents_detected": pl.Int64,
        "trend_weight": pl.Float64,
        "exhaustion_histogram": pl.String,
    },
}


def store(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict]) -> int:
    """Replace ``table`` with ``rows`` in one transaction (every analytics table is recomputed whole)."""
    frame = pl.DataFrame(rows, schema=_SCHEMAS[table]) if rows else pl.DataFrame(schema=_SCHEMAS[table])
    with transaction(con):
        con.register("new_rows", frame)
        try:
            sqlfiles.run(con, f"store_{table}")
        finally:
            con.unregister("new_rows")
    return frame.height

"""Backtests of budget-exhaustion forecasts: are the probabilities honest?

A forecast that says "30 % chance of running out" is only useful if, of all the times it said about
30 %, about 30 % ran out. This module checks that on recorded history. At many forecast *origins* it
forecasts with :func:`forecast_for_window` using only the hours before the origin, then reads the
outcome from the hours after it, exactly as the forecast defines it (calendar: the period's remaining
budget at its end is <= 0; rolling: the trailing window is exhausted at some hour boundary within one
window length of the origin). The pairs give a reliability table and a Brier score.

Two cautions the report should repeat:

* Origins a day apart share most of their horizon, so their outcomes are strongly correlated: the
  counts in the table overstate how much independent evidence there is.
* Forecasts made when the budget was already gone at the origin (``decided``) are right by construction;
  they are kept in the rows but left out of the table and the score by default, so they cannot flatter
  the calibration.

Synthetic histories with known generating parameters ("labelled") let calibration be checked on
behaviours the demo lacks: recurring incidents, trends, strong seasonality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

from pipelines.slo.forecast import forecast_for_window
from pipelines.slo.windows import CalendarWindow, RollingWindow, Window

__all__ = [
    "SYNTHETIC_KINDS",
    "BacktestRow",
    "BrierDecomposition",
    "ReliabilityBin",
    "SyntheticHistory",
    "backtest",
    "brier_decomposition",
    "brier_score",
    "format_reliability",
    "reliability_table",
    "synthetic_history",
]

_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class BacktestRow:
    """One forecast and what happened."""

    origin: datetime
    window_end: datetime  # the end of the forecast horizon (calendar: the period's end)
    predicted: float  # probability_exhausted
    outcome: bool  # the budget was exhausted before window_end
    decided: bool  # every simulated path had it exhausted at the origin already
    seed: int
    remaining_p50: float | None = None
    actual_remaining: float | None = None  # at window_end, from the data


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_predicted: float | None  # None for an empty bin
    observed_frequency: float | None


@dataclass(frozen=True)
class BrierDecomposition:
    """Murphy's decomposition over the reliability bins: brier ≈ reliability - resolution + uncertainty.

    ``reliability`` (lower is better) is the miscalibration; ``resolution`` (higher is better) how much
    the forecasts separate outcomes; ``uncertainty`` the base rate's own variance. The identity is exact
    only when forecasts within a bin are equal; ``brier`` is the exact score.
    """

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    base_rate: float
    count: int
    skill: float | None  # 1 - brier / brier of always forecasting the base rate; None if that is 0


def _allowance(target: Decimal) -> tuple[int, int]:
    allowance = Fraction(Decimal(1) - target)
    return allowance.numerator, allowance.denominator


def _cumulative(values: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(values, dtype=np.int64)])


def backtest(
    hourly_good: np.ndarray,
    hourly_total: np.ndarray,
    hours_start: datetime,
    *,
    target: Decimal,
    window: Window,
    every_hours: int = 24,
    warmup_days: int = 28,
    seed: int = 0,
    simulations: int = 500,
    **forecast_options: Any,
) -> list[BacktestRow]:
    """Forecast at every ``every_hours`` from ``hours_start + warmup_days`` while the outcome is observable.

    The forecast at an origin sees only the hours before it; forecast ``i`` uses seed ``seed + i``, so a
    backtest is as reproducible as one forecast. ``forecast_options`` go to :func:`forecast_budget`
    (``next_window`` defaults to False here: the next window is not scored and costs half the time).
    """
    good = np.asarray(hourly_good, dtype=np.int64)
    total = np.asarray(hourly_total, dtype=np.int64)
    bad = total - good
    n_hours = total.shape[0]
    data_end = hours_start + n_hours * _HOUR
    p, q = _allowance(target)
    cum_bad, cum_total = _cumulative(bad), _cumulative(total)
    forecast_options.setdefault("next_window", False)

    def sums(start: datetime, end: datetime) -> tuple[int, int]:
        lo = min(max((start - hours_start) // _HOUR, 0), n_hours)
        hi = min(max((end - hours_start) // _HOUR, 0), n_hours)
        return int(cum_bad[hi] - cum_bad[lo]), int(cum_total[hi] - cum_total[lo])

    rows: list[BacktestRow] = []
    origin = hours_start + timedelta(days=warmup_days)
    index = 0
    while origin < data_end:
        if isinstance(window, RollingWindow):
            horizon_end = origin + window.length
            if horizon_end > data_end:
                break
            outcome, actual = _rolling_outcome(bad, total, hours_start, origin, window.length, p, q)
        elif isinstance(window, CalendarWindow):
            period_start, horizon_end = window.period(origin)
            if horizon_end > data_end:
                break
            b, t = sums(period_start, horizon_end)
            outcome = t > 0 and q * b >= p * t
            actual = None if t == 0 else 1.0 - (q * b) / (p * t)
        else:
            raise TypeError(f"window: expected a RollingWindow or CalendarWindow, got {window!r}")
        upto = (origin - hours_start) // _HOUR
        forecast = forecast_for_window(
            window,
            good[:upto],
            total[:upto],
            hours_start,
            target=target,
            as_of=origin,
            seed=seed + index,
            simulations=simulations,
            **forecast_options,
        )
        rows.append(
            BacktestRow(
                origin=origin,
                window_end=forecast.window_end,
                predicted=forecast.probability_exhausted,
                outcome=bool(outcome),
                decided=forecast.probability_already_exhausted >= 1.0,
                seed=seed + index,
                remaining_p50=forecast.remaining_p50,
                actual_remaining=actual,
            )
        )
        origin += timedelta(hours=every_hours)
        index += 1
    return rows


def _rolling_outcome(
    bad: np.ndarray,
    total: np.ndarray,
    hours_start: datetime,
    origin: datetime,
    length: timedelta,
    p: int,
    q: int,
) -> tuple[bool, float | None]:
    """Was the trailing window exhausted at any hour boundary in [origin, origin + length]? And the
    remaining budget of the trailing window at origin + length."""
    w = length // _HOUR
    lo = (origin - hours_start) // _HOUR - w  # index of the first hour of the trailing window at origin
    span = np.arange(lo, lo + 2 * w)
    inside = (span >= 0) & (span < total.shape[0])
    b = np.where(inside, bad[np.clip(span, 0, total.shape[0] - 1)], 0)
    t = np.where(inside, total[np.clip(span, 0, total.shape[0] - 1)], 0)
    cb, ct = _cumulative(b), _cumulative(t)
    trailing_bad = cb[w:] - cb[: w + 1]
    trailing_total = ct[w:] - ct[: w + 1]
    exhausted = (trailing_total > 0) & (q * trailing_bad >= p * trailing_total)
    end_bad, end_total = int(trailing_bad[-1]), int(trailing_total[-1])
    actual = None if end_total == 0 else 1.0 - (q * end_bad) / (p * end_total)
    return bool(exhausted.any()), actual


def _scored(
    rows: Sequence[BacktestRow] | None,
    predicted: Sequence[float] | np.ndarray | None,
    outcomes: Sequence[bool] | np.ndarray | None,
    include_decided: bool,
) -> tuple[np.ndarray, np.ndarray]:
    if rows is not None:
        kept = [r for r in rows if include_decided or not r.decided]
        return np.array([r.predicted for r in kept], dtype=float), np.array(
            [r.outcome for r in kept], dtype=float
        )
    if predicted is None or outcomes is None:
        raise ValueError("give either rows, or both predicted and outcomes")
    forecasts, observed = np.asarray(predicted, dtype=float), np.asarray(outcomes, dtype=float)
    if forecasts.shape != observed.shape or forecasts.ndim != 1:
        raise ValueError(
            f"predicted and outcomes: expected equal 1-D shapes, got {forecasts.shape} and {observed.shape}"
        )
    if forecasts.size and (forecasts.min() < 0 or forecasts.max() > 1):
        raise ValueError("predicted: probabilities must lie in [0, 1]")
    if not np.all((observed == 0) | (observed == 1)):
        raise ValueError("outcomes: expected 0/1 or booleans")
    return forecasts, observed


def brier_score(
    predicted: Sequence[float] | np.ndarray | None = None,
    outcomes: Sequence[bool] | np.ndarray | None = None,
    *,
    rows: Sequence[BacktestRow] | None = None,
    include_decided: bool = False,
) -> float | None:
    """Mean squared difference between forecast probability and outcome (0 perfect, 0.25 a coin flip);
    None with nothing to score."""
    forecasts, observed = _scored(rows, predicted, outcomes, include_decided)
    if forecasts.size == 0:
        return None
    return float(np.mean((forecasts - observed) ** 2))


def reliability_table(
    predicted: Sequence[float] | np.ndarray | None = None,
    outcomes: Sequence[bool] | np.ndarray | None = None,
    *,
    rows: Sequence[BacktestRow] | None = None,
    bins: int = 10,
    include_decided: bool = False,
) -> list[ReliabilityBin]:
    """Equal-width bins of forecast probability, ``[k/bins, (k+1)/bins)`` with the last one closed.

    Calibrated forecasts have ``observed_frequency ≈ mean_predicted`` in every bin with enough forecasts.
    """
    if bins < 1:
        raise ValueError(f"bins: expected at least 1, got {bins}")
    forecasts, observed = _scored(rows, predicted, outcomes, include_decided)
    which = np.minimum((forecasts * bins).astype(np.int64), bins - 1)
    table = []
    for k in range(bins):
        members = which == k
        count = int(members.sum())
        table.append(
            ReliabilityBin(
                lower=k / bins,
                upper=(k + 1) / bins,
                count=count,
                mean_predicted=float(forecasts[members].mean()) if count else None,
                observed_frequency=float(observed[members].mean()) if count else None,
            )
        )
    return table


def brier_decomposition(
    predicted: Sequence[float] | np.ndarray | None = None,
    outcomes: Sequence[bool] | np.ndarray | None = None,
    *,
    rows: Sequence[BacktestRow] | None = None,
    bins: int = 10,
    include_decided: bool = False,
) -> BrierDecomposition | None:
    """The Brier score with its reliability / resolution / uncertainty parts; None with nothing to score."""
    forecasts, observed = _scored(rows, predicted, outcomes, include_decided)
    n = forecasts.size
    if n == 0:
        return None
    base = float(observed.mean())
    table = reliability_table(forecasts, observed, bins=bins)
    reliability = sum(b.count * (b.mean_predicted - b.observed_frequency) ** 2 for b in table if b.count) / n  # type: ignore[operator]
    resolution = sum(b.count * (b.observed_frequency - base) ** 2 for b in table if b.count) / n  # type: ignore[operator]
    uncertainty = base * (1.0 - base)
    brier = float(np.mean((forecasts - observed) ** 2))
    return BrierDecomposition(
        brier=brier,
        reliability=float(reliability),
        resolution=float(resolution),
        uncertainty=uncertainty,
        base_rate=base,
        count=n,
        skill=None if uncertainty == 0 else 1.0 - brier / uncertainty,
    )


def format_reliability(table: Sequence[ReliabilityBin]) -> str:
    """A fixed-width text table (benchmarks, logs, asset metadata)."""
    lines = ["  predicted      n   mean predicted   observed"]
    for b in table:
        mean = "-" if b.mean_predicted is None else f"{b.mean_predicted:.3f}"
        observed = "-" if b.observed_frequency is None else f"{b.observed_frequency:.3f}"
        lines.append(f"  {b.lower:.1f}-{b.upper:.1f}  {b.count:6d}   {mean:>14}   {observed:>8}")
    return "\n".join(lines)


# Synthetic histories ---------------------------------------------------------------------------------

SYNTHETIC_KINDS: tuple[str, ...] = ("stationary", "incidents", "trend_up", "trend_down", "seasonal")
_SYNTHETIC_START = datetime(2026, 1, 5)  # a Monday
_SYNTHETIC_TARGET = Decimal("0.999")


@dataclass(frozen=True)
class SyntheticHistory:
    """A generated hourly history and the truth it was generated from."""

    kind: str
    seed: int
    hours_start: datetime
    good: np.ndarray
    total: np.ndarray
    target: Decimal
    truth: dict[str, Any] = field(default_factory=dict)  # parameters; "incidents": [(start, hours, excess)]
    expected_bad_ratio: np.ndarray | None = None  # the true hourly bad probability, incidents included


def synthetic_history(
    kind: str, *, days: int = 180, seed: int = 0, requests_per_hour: float = 600.0
) -> SyntheticHistory:
    """One labelled history of ``days`` days for a 99.9 % objective (allowance 0.1 %).

    Each history draws its own parameters (recorded in ``truth``) from the ranges below, because a
    calibration test on many histories that all share one true burn rate rewards a forecaster that knows
    that number, not one that reads the history well. Kinds (burn rate = bad ratio / allowance):

    * ``stationary`` — a constant burn rate in U(0.6, 1.3) with a day-to-day lognormal wobble
      (σ in U(0.15, 0.45)): whether the budget lasts depends on the level and on bad days;
    * ``incidents`` — baseline burn in U(0.3, 0.8) plus incidents at one per U(5, 20) days, 1-6 hours
      long, 0.5-10 % errors (log-uniform): outcomes hinge on the next incident;
    * ``trend_up`` / ``trend_down`` — burn rate moving linearly between U(0.3, 0.8) and U(1.2, 1.8) over
      the history, which a forecast that resamples the past can only lag;
    * ``seasonal`` — strong daily and weekly traffic cycles (weekend traffic 30 %), a bad ratio that rises
      with load (× traffic^0.5, traffic-weighted burn in U(0.5, 1.1)) and incidents at one per 30 days.

    Traffic is Poisson around ``requests_per_hour`` × a diurnal/weekly shape (start on a Monday) with a
    small daily wobble; bad events are binomial given the hour's true bad ratio (``expected_bad_ratio``).
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"kind: expected one of {', '.join(SYNTHETIC_KINDS)}, got {kind!r}")
    if days < 1:
        raise ValueError(f"days: expected at least 1, got {days}")
    rng = np.random.default_rng([seed, SYNTHETIC_KINDS.index(kind)])
    hours = days * 24
    h = np.arange(hours)
    hour_of_day = h % 24
    day = h // 24
    weekend = (day % 7) >= 5  # the start is a Monday
    allowance = float(1 - _SYNTHETIC_TARGET)

    diurnal_trough, weekend_factor = (0.35, 0.65) if kind != "seasonal" else (0.15, 0.3)
    diurnal = diurnal_trough + (1 - diurnal_trough) * 0.5 * (1 + np.cos(2 * np.pi * (hour_of_day - 14) / 24))
    shape = diurnal * np.where(weekend, weekend_factor, 1.0)
    shape = shape / shape.mean()
    daily_traffic = rng.lognormal(0.0, 0.05, days)[day]
    expected_total = requests_per_hour * shape * daily_traffic

    sigma = float(rng.uniform(0.15, 0.45)) if kind == "stationary" else 0.3
    wobble = rng.lognormal(-0.5 * sigma**2, sigma, days)[day]  # mean 1
    truth: dict[str, Any] = {
        "target": str(_SYNTHETIC_TARGET),
        "requests_per_hour": requests_per_hour,
        "daily_wobble_sigma": sigma,
    }
    incident_rate_per_day = 0.0
    if kind == "stationary":
        level = float(rng.uniform(0.6, 1.3))
        burn = np.full(hours, level)
        truth["burn_rate"] = level
    elif kind == "incidents":
        level = float(rng.uniform(0.3, 0.8))
        burn = np.full(hours, level)
        incident_rate_per_day = 1 / float(rng.uniform(5, 20))
        truth["burn_rate"] = level
    elif kind in ("trend_up", "trend_down"):
        low, high = float(rng.uniform(0.3, 0.8)), float(rng.uniform(1.2, 1.8))
        first, last = (low, high) if kind == "trend_up" else (high, low)
        burn = np.linspace(first, last, hours)
        truth["burn_rate"] = f"{first:.3f} -> {last:.3f} linear"
    else:
        level = float(rng.uniform(0.5, 1.1))
        load = np.sqrt(shape)
        burn = level * load / np.average(load, weights=shape)
        incident_rate_per_day = 1 / 30
        truth["burn_rate"] = f"{level:.3f} x (traffic/mean)^0.5 / its traffic-weighted mean"
    ratio = allowance * burn * wobble

    incidents: list[tuple[datetime, int, float]] = []
    if incident_rate_per_day:
        count = rng.poisson(incident_rate_per_day * days)
        starts = np.sort(rng.integers(0, hours, count))
        for start in starts.tolist():
            length = int(rng.integers(1, 7))
            excess = float(np.exp(rng.uniform(np.log(0.005), np.log(0.1))))
            ratio[start : start + length] += excess
            incidents.append((_SYNTHETIC_START + start * _HOUR, length, excess))
        truth["incident_rate_per_day"] = incident_rate_per_day
    truth["incidents"] = incidents
    ratio = np.minimum(ratio, 1.0)

    total = rng.poisson(expected_total).astype(np.int64)
    bad = rng.binomial(total, ratio).astype(np.int64)
    return SyntheticHistory(
        kind=kind,
        seed=seed,
        hours_start=_SYNTHETIC_START,
        good=total - bad,
        total=total,
        target=_SYNTHETIC_TARGET,
        truth=truth,
        expected_bad_ratio=ratio,
    )

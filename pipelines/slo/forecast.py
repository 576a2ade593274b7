"""Monte Carlo forecasts of error-budget exhaustion for Occurrences SLOs, from hourly good/total history.

The question an on-call engineer asks is not "what is the burn rate" but "will we run out, and when".
This module answers it with a distribution rather than a straight-line extrapolation: it simulates the
rest of the budget window (and the next one) thousands of times from the SLO's own history and reports
how often, and when, the budget ran out.

Budget arithmetic (exact, in events)
------------------------------------
With target ``t`` the allowance is ``a = 1 - t`` (an exact fraction ``p/q`` from the Decimal target).
A window's budget in events is ``a × (total events in the whole window)``; it is *exhausted* from the
first hour boundary at which the window's bad events reach that budget (``q·bad >= p·total``, compared
in integers or integer-valued floats, so 720 bad events against a 720-event budget count as exhausted),
and the budget remaining at the window's end is ``1 - (bad / total) / a`` as in :mod:`budget`.
A window without traffic has no budget and is never exhausted; its remaining budget is None.

What "window end" means
-----------------------
* **Calendar windows** (a month, a quarter, a calendar week): the forecast covers the current period
  ``[window_start, window_end)``. Its budget is the allowance on the period's *whole* total, which is
  only known at the end, so it is simulated too: the budget is exhausted before ``window_end`` exactly
  when the remaining budget at ``window_end`` is <= 0. Exhaustion can therefore lie before ``as_of``
  (the bad events so far already exceed the allowance of any plausible period total); those
  simulations count in ``probability_exhausted`` and in ``probability_already_exhausted``.
  ``budget_remaining_now`` is what ``slo_status`` shows: the budget of the elapsed part of the period.
  The *next window* is the next calendar period, simulated on from the same paths.
* **Rolling windows** (``[as_of - W, as_of)``): the window never ends, it slides. The horizon is one
  window length, ``(as_of, as_of + W]``: by its end every event in today's window has rolled out, so
  the forecast covers the whole life of today's data. The budget is exhausted at the first hour boundary
  ``u`` in ``[as_of, as_of + W]`` at which the trailing window ``[u - W, u)`` is exhausted (``u = as_of``
  when it already is; trailing budgets recover, so only the first time is reported). The remaining
  budget "at the window's end" is that of the trailing window at ``as_of + W``, which is made of
  simulated hours only. ``window_end`` in the result is ``as_of + W``; the *next window* is the second
  horizon ``(as_of + W, as_of + 2W]``.

Simulation
----------
Every simulated path is built from the last ``history_days`` of data before ``as_of`` (the "fit span"):

1. **Incidents are separated from the baseline.** An hour is an incident hour when its bad events far
   exceed what the local baseline bad ratio explains (a day-level rolling median, so slow drifts stay
   baseline); runs of such hours (gaps of up to two hours merged) are incident *episodes*, kept as
   sequences of excess bad ratios. The baseline series keeps the ordinary hours and replaces the excess.
   Episodes are looked for over all the history given (``incident_history_days`` to limit it), because
   incidents are rare and 28 days rarely hold enough of them.
2. **Traffic** is a block bootstrap of past hourly totals with blocks aligned to the hour of the week:
   a future Tuesday is filled with a past Tuesday (24-hour blocks by default), so the diurnal and weekly
   cycle is kept. When the fit span has no block for a slot (under a week of history) the slot widens to
   the time of day, then to any block.
3. **Baseline bad ratios** are a block bootstrap of the cleaned hourly ratios, drawn independently of
   the traffic blocks but aligned the same way (hour of the week, widening to the time of day), because
   error ratios often differ between busy weekdays and quiet weekends (backtests on load-dependent
   ratios under-forecast when any day could fill any day).
4. **Parameter uncertainty**: both bootstraps are *double* bootstraps. Each simulation first resamples
   the fit span's blocks (its own "plausible history"), then draws the future from that resample. A
   plain bootstrap treats the 28 observed days as the truth and is overconfident about the mean rate.
5. **Incidents** arrive as a Poisson process whose rate is drawn per simulation from its posterior
   (``Gamma(k + 1/2, hours)`` for ``k`` episodes in ``hours`` of history, the Jeffreys prior) and whose
   shapes are resampled from the past episodes and scaled by a lognormal factor (a kernel-smoothed
   bootstrap on a log scale, so an incident bigger than any seen so far stays possible); their excess
   ratios are added to the baseline ratios. With no episode in the history no incident is injected:
   there is nothing to size one from.
6. **Trend**: a Poisson log-linear trend of the daily baseline ratio over the last ``trend_days``
   (56) days (:func:`fit_trend`). A path follows it with the trend model's BIC weight against a flat
   ratio, with a slope drawn from its sampling distribution; a resampled hour's ratio is moved along the
   slope from when it was seen to when it is reused. Without it, backtests on rising or falling ratios
   lagged badly; with the weight, stationary histories are barely affected.
7. Future bad events (expected counts, not integers) = future total × min(baseline ratio + incident
   excess, 1). With a constant history every path is the same, so the forecast of a constant bad rate
   is exactly the hand-computed one.

Known limit: a kind of incident the history has never shown cannot be forecast (no episode, no size);
on the demo, whose four incidents are one-offs, forecasts made before each first incident said ~0 %.
Pooling incident episodes across SLOs or services would be the next step.

Everything is numpy over ``simulations × hours`` arrays; a run is seeded with
``numpy.random.Generator(PCG64(seed))`` and the seed is part of the result, so a forecast can be
reproduced bit for bit.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl

from pipelines.slo.windows import CalendarWindow, RollingWindow, Window

__all__ = [
    "BLOCK_HOURS",
    "BudgetForecast",
    "IncidentCatalogue",
    "Trend",
    "detect_incidents",
    "fit_trend",
    "forecast_budget",
    "forecast_for_window",
    "hourly_arrays",
]

_HOUR = timedelta(hours=1)
# A Monday: hour-of-week 0 is Monday 00:00 UTC, and 24-hour blocks are UTC days.
_WEEK_ANCHOR = datetime(1970, 1, 5)
_HOURS_PER_DAY = 24
_HOURS_PER_WEEK = 168
# Block lengths that tile both the day and the week, so a block always covers the same hours of the day
# (and, for traffic, of the week) wherever it is placed.
BLOCK_HOURS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 24, 168)
QUANTILES: dict[str, float] = {"p10": 0.1, "p50": 0.5, "p90": 0.9}

# Incident detection: an hour is an incident hour when its bad events exceed
# max(FACTOR × expected, expected + Z × sqrt(expected)) + SLACK. The factor keeps ordinary day-to-day
# swings of the bad ratio (easily ±50 %) in the baseline, the z term keeps Poisson noise of busy hours in
# it, and the slack keeps a stray bad request in a quiet hour from becoming an "incident".
_INCIDENT_FACTOR = 4.0
_INCIDENT_Z = 6.0
_INCIDENT_SLACK = 3.0
_INCIDENT_MERGE_GAP_HOURS = 2


@dataclass(frozen=True)
class IncidentCatalogue:
    """What the history says about incidents, and the history's bad ratios with incidents taken out.

    ``episodes`` hold the excess bad ratio (above the baseline) of each hour of each incident;
    ``clean_ratio`` is the hourly bad ratio with that excess removed (the baseline ratio where an hour
    had no traffic), i.e. the series the baseline bootstrap resamples.
    """

    baseline_ratio: np.ndarray  # per hour: the local baseline bad ratio
    clean_ratio: np.ndarray
    incident_hour: np.ndarray  # bool per hour: part of an episode
    episodes: list[np.ndarray]
    episode_starts: list[int]


@dataclass(frozen=True)
class BudgetForecast:
    """One Monte Carlo forecast of an objective's error budget (see the module docstring for meanings)."""

    seed: int
    simulations: int
    as_of: datetime  # naive UTC, on an hour boundary
    window_end: datetime  # calendar: the period's end; rolling: as_of + window length (the horizon)
    budget_remaining_now: float | None  # what slo_status shows now; None without traffic
    probability_exhausted: float  # P(exhausted before window_end), already exhausted included
    remaining_p10: float | None  # budget remaining at window_end; None when no path has traffic
    remaining_p50: float | None
    remaining_p90: float | None
    exhaustion_quantiles: dict[str, datetime | None]  # over all paths; None: that share never runs out
    # (UTC day of the hour in which the budget ran out, share of all paths); shares sum to the probability
    exhaustion_histogram: list[tuple[datetime, float]]
    next_window_probability_exhausted: float | None  # None when the next window was not simulated
    window_start: datetime | None = None  # calendar: the period's start; rolling: as_of - window length
    rolling: bool = False
    next_window_end: datetime | None = None
    probability_already_exhausted: float = 0.0  # share of paths whose exhaustion is at or before as_of
    baseline_burn_rate: float | None = None  # the fit span's baseline bad ratio / allowance
    incidents_detected: int = 0  # incident episodes found in the history
    incident_rate_per_week: float = 0.0  # their posterior mean rate, per 168 hours
    trend_per_week: float = 0.0  # fitted relative change of the baseline bad ratio per week
    trend_weight: float = 0.0  # share of paths that follow the trend (0: the history shows none)
    history_hours: int = 0  # hours of data in the fit span
    block_hours: int = 24
    history_days: int = 28

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types (ISO timestamps with Z), for a table column or an API."""

        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        return {
            "seed": self.seed,
            "simulations": self.simulations,
            "as_of": iso(self.as_of),
            "window_start": iso(self.window_start),
            "window_end": iso(self.window_end),
            "rolling": self.rolling,
            "budget_remaining_now": self.budget_remaining_now,
            "probability_exhausted": self.probability_exhausted,
            "probability_already_exhausted": self.probability_already_exhausted,
            "remaining": {"p10": self.remaining_p10, "p50": self.remaining_p50, "p90": self.remaining_p90},
            "exhaustion_quantiles": {k: iso(v) for k, v in self.exhaustion_quantiles.items()},
            "exhaustion_histogram": [[iso(day), share] for day, share in self.exhaustion_histogram],
            "next_window_end": iso(self.next_window_end),
            "next_window_probability_exhausted": self.next_window_probability_exhausted,
            "baseline_burn_rate": self.baseline_burn_rate,
            "incidents_detected": self.incidents_detected,
            "incident_rate_per_week": self.incident_rate_per_week,
            "trend_per_week": self.trend_per_week,
            "trend_weight": self.trend_weight,
            "history_hours": self.history_hours,
            "block_hours": self.block_hours,
            "history_days": self.history_days,
        }


def _hours_between(start: datetime, end: datetime) -> int:
    return (end - start) // _HOUR


def _abs_hour(moment: datetime) -> int:
    """Hours since the Monday anchor: ``% 168`` is the hour of the week, ``% 24`` the hour of the day."""
    return (moment - _WEEK_ANCHOR) // _HOUR


def _require_hour(value: datetime, name: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is not None:
        raise ValueError(f"{name}: expected a naive UTC datetime, got {value!r}")
    if value.minute or value.second or value.microsecond:
        # The history is hourly; a boundary inside an hour cannot be honoured exactly.
        raise ValueError(f"{name}: expected a whole hour (minutes and seconds 0), got {value.isoformat()}")


def _as_counts(values: Any, name: str, hours: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != hours:
        raise ValueError(
            f"{name}: expected one value per hour of [hours_start, as_of), i.e. {hours}, "
            f"got shape {array.shape}"
        )
    whole = np.issubdtype(array.dtype, np.integer) or (
        np.all(np.isfinite(array)) and np.all(array == np.round(array))
    )
    if array.size and not whole:
        raise ValueError(f"{name}: expected whole event counts")
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise ValueError(f"{name}: expected counts >= 0, got {array.min()}")
    return array


def _daily_baseline(bad: np.ndarray, total: np.ndarray, days: int) -> np.ndarray:
    """Per hour, the median of the daily bad ratios over a centred span of ``days`` days.

    A median of days rather than a pooled ratio: one outage day would otherwise lift the baseline of
    the whole month and hide itself. Days without traffic are ignored; no traffic at all gives 0.
    """
    hours = total.shape[0]
    if hours == 0:
        return np.zeros(0)
    n_days = -(-hours // _HOURS_PER_DAY)
    pad = n_days * _HOURS_PER_DAY - hours
    day_bad = np.pad(bad, (0, pad)).reshape(n_days, _HOURS_PER_DAY).sum(axis=1)
    day_total = np.pad(total, (0, pad)).reshape(n_days, _HOURS_PER_DAY).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(day_total > 0, day_bad / np.maximum(day_total, 1), np.nan)
    if np.all(np.isnan(ratio)):
        return np.zeros(hours)
    half = max(days, 1) // 2
    padded = np.pad(ratio, (half, max(days, 1) - 1 - half), constant_values=np.nan)
    spans = np.lib.stride_tricks.sliding_window_view(padded, max(days, 1))
    with warnings.catch_warnings():
        # All-NaN spans (a long gap in the data) warn, and are filled just below.
        warnings.simplefilter("ignore", RuntimeWarning)
        local = np.nanmedian(spans, axis=1)
    overall = float(np.nanmedian(ratio))
    local = np.where(np.isnan(local), overall, local)
    return np.repeat(local, _HOURS_PER_DAY)[:hours]


def detect_incidents(bad: np.ndarray, total: np.ndarray, *, baseline_days: int = 28) -> IncidentCatalogue:
    """Split an hourly history into a baseline and incident episodes (see the module docstring).

    Pure function of the counts, so tests and the calibration report can look at what was detected.
    """
    bad = np.asarray(bad, dtype=np.int64)
    total = np.asarray(total, dtype=np.int64)
    baseline = _daily_baseline(bad, total, baseline_days)
    expected = baseline * total
    threshold = np.maximum(_INCIDENT_FACTOR * expected, expected + _INCIDENT_Z * np.sqrt(expected))
    flagged = (bad > threshold + _INCIDENT_SLACK) & (total > 0)

    incident_hour = np.zeros_like(flagged)
    episodes: list[np.ndarray] = []
    starts: list[int] = []
    hits = np.flatnonzero(flagged)
    if hits.size:
        # Runs of flagged hours, merged across short gaps: a flapping outage is one incident, not three.
        breaks = np.flatnonzero(np.diff(hits) > _INCIDENT_MERGE_GAP_HOURS + 1)
        run_starts = np.concatenate([[hits[0]], hits[breaks + 1]])
        run_ends = np.concatenate([hits[breaks], [hits[-1]]]) + 1
        for lo, hi in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
            incident_hour[lo:hi] = True
            t = total[lo:hi]
            excess = np.where(t > 0, np.maximum(bad[lo:hi] - expected[lo:hi], 0.0) / np.maximum(t, 1), 0.0)
            episodes.append(excess)
            starts.append(lo)

    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(total > 0, bad / np.maximum(total, 1), baseline)
    clean = np.where(incident_hour, np.minimum(ratio, baseline), ratio)
    return IncidentCatalogue(baseline, clean, incident_hour, episodes, starts)


def _block_indices(
    rng: np.random.Generator,
    *,
    fit_start: int,
    fit_end: int,
    future_start: int,
    future_hours: int,
    block: int,
    periods: tuple[int, ...],
    simulations: int,
) -> np.ndarray:
    """Absolute past hours (anchor-relative) filling each future hour of each simulation.

    Blocks of ``block`` hours are aligned to the anchor; a future block may be filled by a past block in
    the same slot of the first period in ``periods`` whose slots all have a candidate (hour of week, time
    of day, anything). Double bootstrap: each simulation draws from its own resample of the candidates.
    """
    first = -(-fit_start // block)
    last = fit_end // block  # exclusive: blocks ending at or before fit_end
    future = future_start + np.arange(future_hours)
    if last <= first:
        # Less than one block of history: hourly blocks, no seasonality (all there is to go on).
        block, first, last, periods = 1, fit_start, fit_end, (1,)
    candidates = np.arange(first, last)
    future_block = future // block
    offset = future % block
    unique_blocks, block_of_hour = np.unique(future_block, return_inverse=True)
    for period in (*periods, block):
        slots = max(period // block, 1)
        needed = np.unique(unique_blocks % slots)
        cand_slot = candidates % slots
        counts = np.bincount(cand_slot, minlength=slots)
        if np.all(counts[needed] > 0):
            break
    order = np.argsort(cand_slot, kind="stable")
    sorted_candidates = candidates[order]
    slot_offset = np.concatenate([[0], np.cumsum(counts)[:-1]])
    widest = int(counts.max())
    # The simulation's own resample of each slot's candidates: world[s, slot, i] for i < counts[slot].
    draws = np.floor(rng.random((simulations, slots, widest)) * counts[None, :, None]).astype(np.int64)
    draws = np.minimum(draws, np.maximum(counts[None, :, None] - 1, 0))
    world = sorted_candidates[np.minimum(slot_offset[None, :, None] + draws, sorted_candidates.size - 1)]
    future_slot = unique_blocks % slots
    pick = np.floor(rng.random((simulations, unique_blocks.size)) * counts[future_slot][None, :])
    pick = np.minimum(pick.astype(np.int64), counts[future_slot][None, :] - 1)
    chosen = world[np.arange(simulations)[:, None], future_slot[None, :], pick]
    return chosen[:, block_of_hour] * block + offset[None, :]


def _first_true(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(any, index of the first True) per row."""
    if mask.shape[1] == 0:
        return np.zeros(mask.shape[0], dtype=bool), np.full(mask.shape[0], -1)
    hit = mask.any(axis=1)
    return hit, np.where(hit, mask.argmax(axis=1), -1)


def _nearest_rank(sorted_values: np.ndarray, q: float) -> float:
    """The ``q`` quantile as an actual simulated value (nearest rank), so exhaustion times stay on hours."""
    index = max(math.ceil(q * sorted_values.size) - 1, 0)
    return float(sorted_values[index])


def forecast_budget(
    hourly_good: np.ndarray,
    hourly_total: np.ndarray,
    hours_start: datetime,
    *,
    target: Decimal,
    window_start: datetime,
    window_end: datetime,
    as_of: datetime,
    seed: int,
    simulations: int = 2000,
    block_hours: int = 24,
    history_days: int = 28,
    rolling: bool = False,
    next_window_end: datetime | None = None,
    next_window: bool = True,
    incident_history_days: int | None = None,
    trend_days: int = 56,
) -> BudgetForecast:
    """Forecast one objective's budget by simulating ``simulations`` futures from its hourly history.

    ``hourly_good``/``hourly_total`` are event counts per hour of ``[hours_start, as_of)``; hours before
    ``hours_start`` count as no traffic. ``[window_start, window_end)`` is the budget window as
    ``SloDefinition.window.period(as_of)`` gives it: for a rolling window (``rolling=True``) that is
    ``[as_of - W, as_of)``. ``next_window_end`` ends the next calendar period (default: one more period
    of the same length; ignored for rolling windows). ``trend_days`` is the span the bad-ratio trend is
    fitted on (0: no trend). Same inputs and seed give an identical result.
    """
    for name, value in (
        ("hours_start", hours_start),
        ("window_start", window_start),
        ("window_end", window_end),
        ("as_of", as_of),
    ):
        _require_hour(value, name)
    if not isinstance(target, Decimal) or not Decimal(0) < target < Decimal(1):
        raise ValueError(f"target: expected a Decimal strictly between 0 and 1, got {target!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if isinstance(simulations, bool) or not isinstance(simulations, int) or simulations < 1:
        raise ValueError(f"simulations: expected a positive integer, got {simulations!r}")
    if block_hours not in BLOCK_HOURS:
        raise ValueError(f"block_hours: expected one of {BLOCK_HOURS}, got {block_hours!r}")
    if isinstance(history_days, bool) or not isinstance(history_days, int) or history_days < 1:
        raise ValueError(f"history_days: expected a positive number of days, got {history_days!r}")
    if isinstance(trend_days, bool) or not isinstance(trend_days, int) or trend_days < 0:
        raise ValueError(f"trend_days: expected a number of days >= 0, got {trend_days!r}")
    if hours_start > as_of:
        raise ValueError(f"hours_start {hours_start.isoformat()} is after as_of {as_of.isoformat()}")
    if window_end <= window_start:
        raise ValueError(f"window [{window_start}, {window_end}) is empty")
    if rolling:
        if window_end != as_of:
            raise ValueError(
                f"rolling window: window_end must equal as_of ({as_of.isoformat()}), got {window_end}"
            )
    elif not window_start <= as_of <= window_end:
        raise ValueError(f"as_of {as_of.isoformat()} lies outside the period [{window_start}, {window_end})")

    n_hours = _hours_between(hours_start, as_of)
    good = _as_counts(hourly_good, "hourly_good", n_hours)
    total = _as_counts(hourly_total, "hourly_total", n_hours)
    if np.any(good > total):
        first = int(np.argmax(good > total))
        raise ValueError(f"hourly_good exceeds hourly_total at hour {first} ({hours_start + first * _HOUR})")
    bad = total - good

    allowance = Fraction(Decimal(1) - target)
    p, q = allowance.numerator, allowance.denominator

    # Where the simulated future lies.
    length = window_end - window_start
    if rolling:
        horizon_end = as_of + length
        next_end = horizon_end + length
    else:
        horizon_end = window_end
        next_end = next_window_end if next_window_end is not None else window_end + length
        _require_hour(next_end, "next_window_end")
        if next_end <= window_end:
            raise ValueError(f"next_window_end {next_end} is not after window_end {window_end}")
    f1 = _hours_between(as_of, horizon_end)
    f2 = _hours_between(horizon_end, next_end) if next_window else 0
    future_hours = f1 + f2

    # The history model.
    fit_lo = max(0, n_hours - history_days * _HOURS_PER_DAY)
    inc_start = 0
    if incident_history_days is not None:
        # Never shorter than the fit span: the baseline bootstrap resamples the cleaned ratios.
        inc_start = min(max(0, n_hours - incident_history_days * _HOURS_PER_DAY), fit_lo)
    catalogue = detect_incidents(bad[inc_start:], total[inc_start:], baseline_days=history_days)
    clean_ratio = np.concatenate([np.zeros(inc_start), catalogue.clean_ratio])
    fit_hours = n_hours - fit_lo
    a_hours_start = _abs_hour(hours_start)
    a_as_of = _abs_hour(as_of)
    fit_total = int(total[fit_lo:].sum())
    baseline_ratio = (
        float((clean_ratio[fit_lo:] * total[fit_lo:]).sum() / fit_total) if fit_total > 0 else None
    )

    trend_lo = max(0, n_hours - trend_days * _HOURS_PER_DAY)
    trend = (
        fit_trend(clean_ratio[trend_lo:] * total[trend_lo:], total[trend_lo:]) if trend_days else _NO_TREND
    )

    rng = np.random.Generator(np.random.PCG64(seed))
    sims = simulations
    if future_hours and fit_hours and fit_total > 0:
        kwargs = {
            "fit_start": a_hours_start + fit_lo,
            "fit_end": a_as_of,
            "future_start": a_as_of,
            "future_hours": future_hours,
            "block": block_hours,
            "simulations": sims,
        }
        seasonal = (_HOURS_PER_WEEK, _HOURS_PER_DAY)
        traffic_hours = _block_indices(rng, periods=seasonal, **kwargs)
        ratio_hours = _block_indices(rng, periods=seasonal, **kwargs)
        future_total = total[traffic_hours - a_hours_start].astype(np.float64)
        future_ratio = clean_ratio[ratio_hours - a_hours_start]
        # Drawn whether or not the trend is used, so the random stream does not depend on it.
        use_trend = rng.random(sims) < trend.weight
        slope = np.where(use_trend, trend.slope + trend.slope_se * rng.standard_normal(sims), 0.0)
        if np.any(slope != 0.0):
            # A sampled hour's ratio moves along the path's trend from when it was seen to when it is
            # reused; capped at ×/÷ e^3 so a steep short-lived trend cannot run away over two windows.
            days_ahead = (a_as_of + np.arange(future_hours)[None, :] - ratio_hours) / _HOURS_PER_DAY
            future_ratio *= np.exp(np.clip(slope[:, None] * days_ahead, -3.0, 3.0))
        del traffic_hours, ratio_hours
        _inject_incidents(rng, future_ratio, catalogue, inc_hours=n_hours - inc_start)
        future_bad = future_total * np.minimum(future_ratio, 1.0)
        del future_ratio
    else:
        future_total = np.zeros((sims, future_hours))
        future_bad = np.zeros((sims, future_hours))

    episodes = len(catalogue.episodes)
    inc_hours = n_hours - inc_start
    rate_per_week = (episodes + 0.5) / inc_hours * _HOURS_PER_WEEK if episodes and inc_hours else 0.0
    common: dict[str, Any] = {
        "seed": seed,
        "simulations": sims,
        "as_of": as_of,
        "rolling": rolling,
        "baseline_burn_rate": None if baseline_ratio is None else float(baseline_ratio / allowance),
        "incidents_detected": episodes,
        "incident_rate_per_week": float(rate_per_week),
        "trend_per_week": float(math.expm1(7 * trend.slope)),
        "trend_weight": trend.weight,
        "history_hours": fit_hours,
        "block_hours": block_hours,
        "history_days": history_days,
    }
    if rolling:
        return _rolling_result(
            bad, total, hours_start, as_of, length, p, q, future_bad, future_total, f1, f2, common
        )
    return _calendar_result(
        bad, total, hours_start, window_start, window_end, next_end, as_of, p, q, future_bad, future_total,
        f1, f2, common,
    )  # fmt: skip


@dataclass(frozen=True)
class Trend:
    """A log-linear trend of the daily bad ratio: slope per day (natural log), its standard error, and
    the weight of the trend model against a flat one (the share of simulated paths that use it)."""

    slope: float
    slope_se: float
    weight: float
    days: int


_NO_TREND = Trend(0.0, 0.0, 0.0, 0)
_MIN_TREND_DAYS = 7


def fit_trend(bad: np.ndarray, total: np.ndarray) -> Trend:
    """Fit ``bad_day ~ Poisson(total_day · exp(a + b·day))`` to the hourly series' last whole days.

    Why a trend at all: resampling the past can only lag a bad ratio that keeps rising (or falling), and
    backtests on trending histories showed exactly that. Why hedged: 28-56 noisy days can rarely tell a
    trend from a run of bad days, so a path uses the trend with the model's posterior weight against a
    flat ratio (BIC with the deviance scaled by the overdispersion), and with a slope drawn from its
    sampling distribution. Days are counted back from the end of the series; days without traffic are
    left out. A flat or constant series gives weight 0, so constant inputs stay deterministic.
    """
    hours = total.shape[0] - total.shape[0] % _HOURS_PER_DAY
    if hours < _MIN_TREND_DAYS * _HOURS_PER_DAY:
        return _NO_TREND
    start = total.shape[0] - hours
    b = np.asarray(bad, dtype=np.float64)[start:].reshape(-1, _HOURS_PER_DAY).sum(axis=1)
    t = np.asarray(total, dtype=np.float64)[start:].reshape(-1, _HOURS_PER_DAY).sum(axis=1)
    x = np.arange(b.size, dtype=np.float64)
    keep = t > 0
    b, t, x = b[keep], t[keep], x[keep]
    n = b.size
    if n < _MIN_TREND_DAYS or b.sum() <= 0:
        return _NO_TREND
    x = x - x.mean()
    design = np.column_stack([np.ones(n), x])
    coef = np.array([math.log(b.sum() / t.sum()), 0.0])
    # Newton-Raphson on the Poisson log-likelihood with log(total) as offset (two parameters).
    for _ in range(50):
        mu = t * np.exp(np.clip(design @ coef, -50, 50))
        step = np.linalg.solve(design.T @ (design * mu[:, None]) + 1e-12 * np.eye(2), design.T @ (b - mu))
        coef = coef + step
        if np.max(np.abs(step)) < 1e-10:
            break
    mu = t * np.exp(np.clip(design @ coef, -50, 50))
    flat = t * (b.sum() / t.sum())

    def deviance(fitted: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(b > 0, b * np.log(b / fitted), 0.0) - (b - fitted)
        return float(2 * terms.sum())

    gain = max(deviance(flat) - deviance(mu), 0.0)
    dispersion = float(((b - mu) ** 2 / mu).sum() / (n - 2))
    if gain <= 0 or dispersion <= 0:
        return Trend(0.0, 0.0, 0.0, n)
    covariance = np.linalg.inv(design.T @ (design * mu[:, None]))
    slope_se = math.sqrt(dispersion * covariance[1, 1])
    evidence = gain / dispersion - math.log(n)  # BIC(flat) - BIC(trend)
    weight = 1.0 / (1.0 + math.exp(-0.5 * evidence)) if evidence > -700 else 0.0
    return Trend(float(coef[1]), slope_se, weight, n)


def _size_bandwidth(episodes: list[np.ndarray]) -> float:
    """Log-scale kernel bandwidth for resampling incident sizes (Silverman's rule).

    A handful of past incidents rarely includes the largest one to come, and a plain resample can never
    produce anything bigger than the biggest seen, which made forecasts overconfident exactly when a
    bigger incident arrived. Smoothing on a log scale extends the tail in proportion to how varied the
    past sizes were. The spread is pooled with a prior of 1.0 (sizes within about e^±1 of each other)
    worth two incidents, so one or two incidents still get a sensible width.
    """
    sizes = np.log(np.array([max(float(e.sum()), 1e-12) for e in episodes]))
    k = sizes.size
    prior_sd, prior_weight = 1.0, 2.0
    spread = float(np.var(sizes, ddof=1)) * (k - 1) if k > 1 else 0.0
    sd = math.sqrt((spread + prior_weight * prior_sd**2) / (k - 1 + prior_weight))
    return 1.06 * sd * k ** (-0.2)


def _inject_incidents(
    rng: np.random.Generator, ratio: np.ndarray, catalogue: IncidentCatalogue, *, inc_hours: int
) -> None:
    """Add Poisson-arriving incidents, shaped like past episodes, to the simulated ratios (in place).

    Each injected incident is a past episode's hourly excess ratios scaled by a lognormal factor
    (:func:`_size_bandwidth`); the total ratio is capped at 1 by the caller.
    """
    k = len(catalogue.episodes)
    sims, hours = ratio.shape
    if k == 0 or inc_hours <= 0 or hours == 0:
        return
    # The rate's posterior under the Jeffreys prior: a path with a "bad quarter" sees more incidents.
    rate = rng.gamma(k + 0.5, 1.0 / inc_hours, size=sims)
    count = rng.poisson(rate * hours)
    most = int(count.max())
    if most == 0:
        return
    longest = max(e.size for e in catalogue.episodes)
    shapes = np.zeros((k, longest))
    lengths = np.array([e.size for e in catalogue.episodes])
    for i, episode in enumerate(catalogue.episodes):
        shapes[i, : episode.size] = episode
    # Draw for the largest count on every path so the stream does not depend on which paths got fewer.
    starts = rng.integers(0, hours, size=(sims, most))
    which = rng.integers(0, k, size=(sims, most))
    scale = np.exp(_size_bandwidth(catalogue.episodes) * rng.standard_normal((sims, most)))
    steps = np.arange(longest)
    for j in range(most):
        rows = np.flatnonzero(count > j)
        if rows.size == 0:
            continue
        cols = starts[rows, j][:, None] + steps[None, :]
        shape = which[rows, j]
        valid = (cols < hours) & (steps[None, :] < lengths[shape][:, None])
        excess = shapes[shape] * scale[rows, j][:, None]
        # Within one j every (path, hour) pair appears once, so a plain fancy-index += is exact.
        r = np.broadcast_to(rows[:, None], cols.shape)
        ratio[r[valid], cols[valid]] += excess[valid]


def _past_window(values: np.ndarray, hours_start: datetime, start: datetime, end: datetime) -> np.ndarray:
    """Hourly values over [start, end), zero where the history does not reach (no data = no events)."""
    n = _hours_between(start, end)
    out = np.zeros(n, dtype=np.int64)
    lo = _hours_between(hours_start, start)
    src_lo, src_hi = max(lo, 0), min(lo + n, values.shape[0])
    if src_hi > src_lo:
        out[src_lo - lo : src_hi - lo] = values[src_lo:src_hi]
    return out


def _remaining(bad: float | int, total: float | int, p: int, q: int) -> float | None:
    return None if total <= 0 else 1.0 - (q * bad) / (p * total)


def _remaining_quantiles(bad: np.ndarray, total: np.ndarray, p: int, q: int) -> dict[str, float | None]:
    has = total > 0
    if not has.any():
        return dict.fromkeys(QUANTILES)
    remaining = 1.0 - (q * bad[has]) / (p * total[has])
    return {name: float(np.quantile(remaining, level)) for name, level in QUANTILES.items()}


def _exhaustion_summary(
    hit: np.ndarray, moment_hours: np.ndarray, as_of: datetime, sims: int
) -> tuple[dict[str, datetime | None], list[tuple[datetime, float]]]:
    """Quantiles over all paths (never = +inf) and the per-day histogram of exhaustion moments.

    ``moment_hours`` are hours from ``as_of`` (negative: before it) for the paths in ``hit``.
    """
    offsets = np.where(hit, moment_hours, np.inf).astype(np.float64)
    ordered = np.sort(offsets)
    quantiles: dict[str, datetime | None] = {}
    for name, level in QUANTILES.items():
        value = _nearest_rank(ordered, level)
        quantiles[name] = None if math.isinf(value) else as_of + int(value) * _HOUR
    histogram: list[tuple[datetime, float]] = []
    if hit.any():
        day0 = datetime(as_of.year, as_of.month, as_of.day)
        # Bucketed by the hour in which the budget ran out (the hour before the moment): a budget gone at
        # midnight ran out on the day that just ended, and never lands on the day after a calendar period.
        hours_from_day0 = moment_hours[hit].astype(np.int64) - 1 + _hours_between(day0, as_of)
        days, counts = np.unique(np.floor_divide(hours_from_day0, _HOURS_PER_DAY), return_counts=True)
        histogram = [
            (day0 + timedelta(days=int(d)), float(c) / sims) for d, c in zip(days, counts, strict=True)
        ]
    return quantiles, histogram


def _calendar_result(
    bad: np.ndarray,
    total: np.ndarray,
    hours_start: datetime,
    window_start: datetime,
    window_end: datetime,
    next_end: datetime,
    as_of: datetime,
    p: int,
    q: int,
    future_bad: np.ndarray,
    future_total: np.ndarray,
    f1: int,
    f2: int,
    common: dict[str, Any],
) -> BudgetForecast:
    sims = future_bad.shape[0]
    past_bad = _past_window(bad, hours_start, window_start, as_of)
    past_total = _past_window(total, hours_start, window_start, as_of)
    bad_now, total_now = int(past_bad.sum()), int(past_total.sum())
    window_total = total_now + future_total[:, :f1].sum(axis=1)  # the whole period's total, per path
    cum_future = bad_now + np.cumsum(future_bad[:, :f1], axis=1)
    budget = p * window_total  # in units of 1/q events
    has_budget = window_total > 0

    # Exhausted already: the first past hour whose cumulative bad events reach this path's budget.
    past_cum = q * np.cumsum(past_bad).astype(np.float64)
    past_index = np.searchsorted(past_cum, budget, side="left")
    past_hit = has_budget & (past_index < past_cum.size)
    future_hit, future_index = _first_true((q * cum_future >= budget[:, None]) & has_budget[:, None])
    future_hit &= ~past_hit
    hit = past_hit | future_hit
    elapsed = past_cum.size
    # Moments are hour *ends*: the budget is gone once the exhausting hour is over.
    moment = np.where(past_hit, past_index + 1 - elapsed, future_index + 1).astype(np.int64)

    end_bad = cum_future[:, -1] if f1 else np.full(sims, float(bad_now))
    remaining = _remaining_quantiles(end_bad, window_total, p, q)
    quantiles, histogram = _exhaustion_summary(hit, moment, as_of, sims)

    next_probability = None
    if f2:
        next_bad = future_bad[:, f1:].sum(axis=1)
        next_total = future_total[:, f1:].sum(axis=1)
        next_probability = float(np.mean((next_total > 0) & (q * next_bad >= p * next_total)))
    return BudgetForecast(
        window_start=window_start,
        window_end=window_end,
        next_window_end=next_end,
        budget_remaining_now=_remaining(bad_now, total_now, p, q),
        probability_exhausted=float(hit.mean()),
        probability_already_exhausted=float(past_hit.mean()),
        remaining_p10=remaining["p10"],
        remaining_p50=remaining["p50"],
        remaining_p90=remaining["p90"],
        exhaustion_quantiles=quantiles,
        exhaustion_histogram=histogram,
        next_window_probability_exhausted=next_probability,
        **common,
    )


def _rolling_result(
    bad: np.ndarray,
    total: np.ndarray,
    hours_start: datetime,
    as_of: datetime,
    length: timedelta,
    p: int,
    q: int,
    future_bad: np.ndarray,
    future_total: np.ndarray,
    f1: int,
    f2: int,
    common: dict[str, Any],
) -> BudgetForecast:
    sims = future_bad.shape[0]
    w = _hours_between(as_of - length, as_of)
    past_bad = _past_window(bad, hours_start, as_of - length, as_of)
    past_total = _past_window(total, hours_start, as_of - length, as_of)
    bad_now, total_now = int(past_bad.sum()), int(past_total.sum())

    def trailing(past: np.ndarray, future: np.ndarray, upto: int) -> np.ndarray:
        """Trailing-window sums at the boundaries as_of + u hours, u = 0..upto, per path."""
        u = np.arange(upto + 1)
        past_cum = np.concatenate([[0], np.cumsum(past)])
        past_part = past_cum[w] - past_cum[np.minimum(u, w)]
        future_cum = np.concatenate([np.zeros((sims, 1)), np.cumsum(future[:, :upto], axis=1)], axis=1)
        return past_part[None, :] + future_cum[:, u] - future_cum[:, np.maximum(u - w, 0)]

    upto = f1 + f2
    tb = trailing(past_bad, future_bad, upto)
    tt = trailing(past_total, future_total, upto)
    exhausted = (tt > 0) & (q * tb >= p * tt)
    hit, index = _first_true(exhausted[:, : f1 + 1])
    quantiles, histogram = _exhaustion_summary(hit, index, as_of, sims)
    remaining = _remaining_quantiles(tb[:, f1], tt[:, f1], p, q)
    next_probability = float(exhausted[:, f1 + 1 :].any(axis=1).mean()) if f2 else None
    return BudgetForecast(
        window_start=as_of - length,
        window_end=as_of + length,
        next_window_end=as_of + 2 * length if f2 else None,
        budget_remaining_now=_remaining(bad_now, total_now, p, q),
        probability_exhausted=float(hit.mean()),
        probability_already_exhausted=float(exhausted[:, 0].mean()),
        remaining_p10=remaining["p10"],
        remaining_p50=remaining["p50"],
        remaining_p90=remaining["p90"],
        exhaustion_quantiles=quantiles,
        exhaustion_histogram=histogram,
        next_window_probability_exhausted=next_probability,
        **common,
    )


def forecast_for_window(
    window: Window,
    hourly_good: np.ndarray,
    hourly_total: np.ndarray,
    hours_start: datetime,
    *,
    target: Decimal,
    as_of: datetime,
    seed: int,
    **options: Any,
) -> BudgetForecast:
    """:func:`forecast_budget` for an SLO's window: works out the period, the horizon and the next period.

    At the instant a calendar period ends the forecast is of the period starting then (the one whose
    budget is still open), unlike ``slo_status``, which reports the period that just closed.
    """
    if isinstance(window, RollingWindow):
        start, end = window.bounds(as_of)
        return forecast_budget(
            hourly_good, hourly_total, hours_start, target=target, window_start=start, window_end=end,
            as_of=as_of, seed=seed, rolling=True, **options,
        )  # fmt: skip
    if isinstance(window, CalendarWindow):
        start, end = window.period(as_of)
        _, next_end = window.period(end)
        return forecast_budget(
            hourly_good, hourly_total, hours_start, target=target, window_start=start, window_end=end,
            as_of=as_of, seed=seed, next_window_end=next_end, **options,
        )  # fmt: skip
    raise TypeError(f"window: expected a RollingWindow or CalendarWindow, got {window!r}")


def hourly_arrays(
    frame: pl.DataFrame, *, end: datetime, start: datetime | None = None
) -> tuple[np.ndarray, np.ndarray, datetime]:
    """Dense ``(good, total, hours_start)`` over ``[start, end)`` from ``bucket_start, good, total`` rows.

    The ``slo_hourly`` table stores only hours with data; the forecast wants one value per hour, with
    missing hours as no traffic. ``start`` defaults to the first row's hour (``end`` when there is none);
    rows outside the span are ignored.
    """
    _require_hour(end, "end")
    for column in ("bucket_start", "good", "total"):
        if column not in frame.columns:
            raise ValueError(f"hourly frame: missing column {column!r} (expected bucket_start, good, total)")
    if start is None:
        first = frame["bucket_start"].min() if frame.height else None
        start = min(first, end) if isinstance(first, datetime) else end
    _require_hour(start, "start")
    hours = max(_hours_between(start, end), 0)
    good = np.zeros(hours, dtype=np.int64)
    total = np.zeros(hours, dtype=np.int64)
    if frame.height and hours:
        rows = frame.filter((pl.col("bucket_start") >= start) & (pl.col("bucket_start") < end)).with_columns(
            ((pl.col("bucket_start") - pl.lit(start)).dt.total_hours()).alias("_i")
        )
        index = rows["_i"].to_numpy().astype(np.int64)
        np.add.at(good, index, rows["good"].to_numpy().astype(np.int64))
        np.add.at(total, index, rows["total"].to_numpy().astype(np.int64))
    return good, total, start

"""Monte Carlo budget forecasts and their calibration harness, on inputs small enough to work out by hand."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from pipelines.slo.calibration import (
    SYNTHETIC_KINDS,
    backtest,
    brier_decomposition,
    brier_score,
    reliability_table,
    synthetic_history,
)
from pipelines.slo.forecast import (
    BudgetForecast,
    _abs_hour,
    _block_indices,
    detect_incidents,
    fit_trend,
    forecast_budget,
    forecast_for_window,
    hourly_arrays,
)
from pipelines.slo.windows import CalendarWindow, Duration, RollingWindow

H = timedelta(hours=1)
TARGET = Decimal("0.999")
# A 30-day calendar period starting on a Thursday at midnight UTC.
START = datetime(2026, 1, 1)
END = START + timedelta(days=30)


def constant(hours: int, total: int, bad: int) -> tuple[np.ndarray, np.ndarray]:
    """(good, total) with the same counts every hour."""
    return np.full(hours, total - bad), np.full(hours, total)


def calendar_forecast(
    good: np.ndarray, total: np.ndarray, as_of: datetime, **options: object
) -> BudgetForecast:
    return forecast_budget(
        good, total, START, target=TARGET, window_start=START, window_end=END, as_of=as_of, seed=1,
        simulations=200, **options,  # type: ignore[arg-type]
    )  # fmt: skip


# Constant bad rate: every path is the same, so the forecast is the hand-computed answer -------------------


def test_constant_rate_exhaustion_hour_worked_out_by_hand() -> None:
    # 99.9 % over a 30-day period at 1000 requests/hour: the budget is 0.001 × 720 h × 1000 = 720 bad
    # events. At 5 bad/hour (burn rate 5) it is gone after 720 / 5 = 144 hours, i.e. at START + 6 days.
    as_of = START + timedelta(days=3)
    good, total = constant(72, 1000, 5)
    forecast = calendar_forecast(good, total, as_of)
    exhausted_at = START + timedelta(hours=144)
    assert forecast.probability_exhausted == 1.0
    assert forecast.probability_already_exhausted == 0.0
    assert forecast.exhaustion_quantiles == {"p10": exhausted_at, "p50": exhausted_at, "p90": exhausted_at}
    # The hour that used the last of the budget is 23:00-24:00 on January 6.
    assert forecast.exhaustion_histogram == [(datetime(2026, 1, 6), 1.0)]
    # 3600 bad of 720,000: consumed (0.005 / 0.001) = 5, remaining 1 - 5 = -4, now and at the end.
    assert forecast.budget_remaining_now == -4.0
    assert forecast.remaining_p10 == forecast.remaining_p50 == forecast.remaining_p90 == -4.0
    # The next period burns at 5 too.
    assert forecast.next_window_probability_exhausted == 1.0
    assert forecast.window_end == END and forecast.next_window_end == END + timedelta(days=30)


def test_already_exhausted_calendar_budget_has_probability_one_and_a_past_date() -> None:
    # Same series seen at day 10: 1200 bad events already exceed the 720-event budget of any path.
    as_of = START + timedelta(days=10)
    good, total = constant(240, 1000, 5)
    forecast = calendar_forecast(good, total, as_of)
    assert forecast.probability_exhausted == 1.0
    assert forecast.probability_already_exhausted == 1.0
    assert forecast.exhaustion_quantiles["p50"] == START + timedelta(hours=144)


def test_burn_rate_exactly_one_runs_out_in_the_last_hour() -> None:
    # 1 bad per 1000 is exactly the allowance: the 720th bad event arrives in the period's last hour, and
    # a budget with nothing left counts as exhausted (remaining 0).
    good, total = constant(72, 1000, 1)
    forecast = calendar_forecast(good, total, START + timedelta(days=3))
    assert forecast.probability_exhausted == 1.0
    assert forecast.exhaustion_quantiles["p50"] == END
    assert forecast.remaining_p50 == 0.0


def test_burn_rate_one_half_never_runs_out() -> None:
    # 1 bad in 2000 = burn rate 0.5: half the budget is left at the end; no path ever runs out.
    good, total = constant(72, 2000, 1)
    forecast = calendar_forecast(good, total, START + timedelta(days=3))
    assert forecast.probability_exhausted == 0.0
    assert forecast.exhaustion_quantiles == {"p10": None, "p50": None, "p90": None}
    assert forecast.exhaustion_histogram == []
    assert forecast.remaining_p10 == forecast.remaining_p50 == forecast.remaining_p90 == 0.5
    assert forecast.baseline_burn_rate == 0.5
    assert forecast.next_window_probability_exhausted == 0.0


def test_rolling_window_horizon_and_exhaustion_by_hand() -> None:
    # 28-day rolling window, 1000 requests/hour. No errors until 7 days ago, then 2 bad/hour.
    # Now: 336 bad in 672,000 -> consumed 0.5, remaining 0.5. The trailing window only drops error-free
    # hours for the next 21 days, so with 2 more bad per hour it holds 336 + 2u bad after u hours and
    # reaches the 672-event budget at u = 168: as_of + 7 days. At the horizon end (as_of + 28 d) the
    # trailing window is all future hours at 2/hour: consumed 2, remaining -1.
    as_of = datetime(2026, 3, 1)
    hours = 35 * 24
    total = np.full(hours, 1000)
    bad = np.zeros(hours, dtype=np.int64)
    bad[-7 * 24 :] = 2
    forecast = forecast_for_window(
        RollingWindow(Duration(28, "d")), total - bad, total, as_of - hours * H, target=TARGET, as_of=as_of,
        seed=3, simulations=200,
        # Fit on the constant last week only, and no trend: a step from 0 to 2/hour would read as one.
        history_days=7, trend_days=0,
    )  # fmt: skip
    assert forecast.rolling
    assert forecast.window_start == as_of - timedelta(days=28)
    assert forecast.window_end == as_of + timedelta(days=28)
    assert forecast.budget_remaining_now == 0.5
    assert forecast.probability_exhausted == 1.0 and forecast.probability_already_exhausted == 0.0
    assert set(forecast.exhaustion_quantiles.values()) == {as_of + timedelta(days=7)}
    assert forecast.remaining_p50 == -1.0
    assert forecast.next_window_probability_exhausted == 1.0


def test_rolling_window_already_exhausted_is_exhausted_now() -> None:
    as_of = datetime(2026, 3, 1)
    good, total = constant(28 * 24, 1000, 5)
    forecast = forecast_for_window(
        RollingWindow(Duration(28, "d")), good, total, as_of - 28 * 24 * H, target=TARGET, as_of=as_of,
        seed=0, simulations=100,
    )  # fmt: skip
    assert forecast.probability_exhausted == forecast.probability_already_exhausted == 1.0
    assert forecast.exhaustion_quantiles["p10"] == as_of


def test_zero_traffic_gives_none_and_zero_not_nan() -> None:
    zeros = np.zeros(72, dtype=np.int64)
    forecast = calendar_forecast(zeros, zeros, START + timedelta(days=3))
    assert forecast.probability_exhausted == 0.0
    assert forecast.budget_remaining_now is None
    assert (forecast.remaining_p10, forecast.remaining_p50, forecast.remaining_p90) == (None, None, None)
    assert forecast.exhaustion_quantiles == {"p10": None, "p50": None, "p90": None}
    assert forecast.next_window_probability_exhausted == 0.0
    assert forecast.baseline_burn_rate is None
    json.dumps(forecast.to_json(), allow_nan=False)  # raises on NaN


def test_empty_history_at_the_period_start() -> None:
    empty = np.zeros(0, dtype=np.int64)
    forecast = calendar_forecast(empty, empty, START)
    assert forecast.probability_exhausted == 0.0 and forecast.remaining_p50 is None


# Reproducibility ---------------------------------------------------------------------------------------


def test_same_seed_same_forecast_and_different_seed_differs() -> None:
    history = synthetic_history("incidents", days=60, seed=3)
    as_of = history.hours_start + timedelta(days=45)
    n = 45 * 24

    def run(seed: int) -> BudgetForecast:
        return forecast_budget(
            history.good[:n], history.total[:n], history.hours_start, target=history.target,
            window_start=as_of - timedelta(days=10), window_end=as_of + timedelta(days=20), as_of=as_of,
            seed=seed, simulations=500,
        )  # fmt: skip

    first, again, other = run(42), run(42), run(43)
    assert first.incidents_detected > 0  # the incident injection is part of what must repeat
    assert first == again
    assert first.seed == 42 and first.to_json()["seed"] == 42
    assert 0.0 < first.probability_exhausted < 1.0
    assert (first.probability_exhausted, first.remaining_p50, first.exhaustion_histogram) != (
        other.probability_exhausted,
        other.remaining_p50,
        other.exhaustion_histogram,
    )


def test_histogram_shares_add_up_to_the_probability() -> None:
    history = synthetic_history("stationary", days=40, seed=5)
    as_of = history.hours_start + timedelta(days=40)
    forecast = forecast_for_window(
        RollingWindow(Duration(28, "d")), history.good, history.total, history.hours_start,
        target=history.target, as_of=as_of, seed=9, simulations=400,
    )  # fmt: skip
    assert math.isclose(sum(s for _, s in forecast.exhaustion_histogram), forecast.probability_exhausted)


# The simulation's parts ----------------------------------------------------------------------------------


def test_blocks_keep_the_hour_of_the_week() -> None:
    # Three weeks of history: every future hour is filled from a past hour at the same hour of the week.
    as_of = datetime(2026, 3, 4, 13)  # a Wednesday afternoon, mid-block
    fit_start = _abs_hour(as_of) - 21 * 24
    rng = np.random.Generator(np.random.PCG64(0))
    for block in (1, 6, 24, 168):
        source = _block_indices(
            rng, fit_start=fit_start, fit_end=_abs_hour(as_of), future_start=_abs_hour(as_of),
            future_hours=500, block=block, periods=(168, 24), simulations=50,
        )  # fmt: skip
        future = _abs_hour(as_of) + np.arange(500)
        assert np.all((future[None, :] - source) % 168 == 0)
        assert source.min() >= fit_start and source.max() < _abs_hour(as_of)


def test_incident_episodes_are_found_and_sized() -> None:
    # 5000 requests/hour with 1 bad (ratio 0.0002); a 2-hour outage at 10 % (500 bad/hour) every 7 days.
    hours = 28 * 24
    total = np.full(hours, 5000)
    bad = np.ones(hours, dtype=np.int64)
    for day in (3, 10, 17, 24):
        bad[day * 24 + 12 : day * 24 + 14] = 500
    catalogue = detect_incidents(bad, total)
    assert catalogue.episode_starts == [3 * 24 + 12, 10 * 24 + 12, 17 * 24 + 12, 24 * 24 + 12]
    # Excess over the baseline: (500 - 0.0002 × 5000) / 5000 = 0.0998 in each hour.
    for episode in catalogue.episodes:
        np.testing.assert_allclose(episode, [0.0998, 0.0998])
    assert np.all(catalogue.clean_ratio == 0.0002)

    # Baseline burn 0.2 cannot exhaust a 30-day budget (3600 events at 5000/hour); four outages of 1000
    # bad events in four weeks would. The forecast must see them coming, and without them see nothing.
    as_of = START + timedelta(days=28)
    window = {"window_start": as_of, "window_end": as_of + timedelta(days=30), "as_of": as_of}
    with_incidents = forecast_budget(
        total - bad, total, START, target=TARGET, seed=1, simulations=500, **window
    )
    clean = np.ones(hours, dtype=np.int64)
    without = forecast_budget(total - clean, total, START, target=TARGET, seed=1, simulations=500, **window)
    assert with_incidents.incidents_detected == 4
    # Posterior mean rate (4 + 1/2) per 672 hours, per week of 168 hours.
    assert math.isclose(with_incidents.incident_rate_per_week, 4.5 / 672 * 168)
    assert with_incidents.probability_exhausted > 0.3
    assert without.probability_exhausted == 0.0 and without.remaining_p50 == 0.8


def test_trend_is_found_in_a_rising_ratio_and_not_in_a_flat_one() -> None:
    days = 56
    total = np.full(days * 24, 10_000)
    rising = np.repeat(np.round(np.linspace(20, 60, days)).astype(np.int64), 24)  # per hour, tripling
    trend = fit_trend(rising, total)
    assert trend.weight > 0.99 and 0.015 < trend.slope < 0.025  # ln(3) / 55 days = 0.020 per day
    flat = fit_trend(np.full(days * 24, 40), total)
    assert flat.weight == 0.0 and flat.slope_se == 0.0


# Inputs ---------------------------------------------------------------------------------------------------


def test_bad_inputs_name_the_argument() -> None:
    good, total = constant(72, 1000, 5)
    as_of = START + timedelta(days=3)
    with pytest.raises(ValueError, match="as_of"):
        calendar_forecast(good, total, as_of + timedelta(minutes=30))
    with pytest.raises(ValueError, match="hourly_good"):
        calendar_forecast(good[:-1], total, as_of)
    with pytest.raises(ValueError, match="exceeds hourly_total"):
        calendar_forecast(total + 1, total, as_of)
    with pytest.raises(ValueError, match="block_hours"):
        calendar_forecast(good, total, as_of, block_hours=5)
    with pytest.raises(ValueError, match="window_end must equal as_of"):
        calendar_forecast(good, total, as_of, rolling=True)


def test_calendar_window_supplies_the_period_and_the_next_one() -> None:
    window = CalendarWindow(Duration(1, "M"), datetime(2026, 1, 1))
    good, total = constant(31 * 24, 1000, 0)
    forecast = forecast_for_window(
        window, good, total, START, target=TARGET, as_of=datetime(2026, 2, 1), seed=0, simulations=50
    )
    # At the instant January ends the open budget is February's (28 days), and the next one is March's.
    assert forecast.window_start == datetime(2026, 2, 1) and forecast.window_end == datetime(2026, 3, 1)
    assert forecast.next_window_end == datetime(2026, 4, 1)
    assert forecast.budget_remaining_now is None and forecast.remaining_p50 == 1.0


def test_hourly_arrays_fill_missing_hours_with_no_traffic() -> None:
    frame = pl.DataFrame(
        {
            "bucket_start": [START, START + 2 * H, START + 5 * H],
            "good": [9, 7, 1],
            "total": [10, 8, 1],
        }
    )
    good, total, start = hourly_arrays(frame, end=START + 4 * H)
    assert start == START
    assert good.tolist() == [9, 0, 7, 0] and total.tolist() == [10, 0, 8, 0]


# Calibration ---------------------------------------------------------------------------------------------


def test_brier_score_by_hand() -> None:
    # ((0.1 - 0)² + (0.9 - 1)² + (0.5 - 1)²) / 3 = (0.01 + 0.01 + 0.25) / 3 = 0.09
    assert math.isclose(brier_score([0.1, 0.9, 0.5], [False, True, True]), 0.09)
    assert brier_score([], []) is None
    with pytest.raises(ValueError, match="probabilities"):
        brier_score([1.2], [1])


def test_reliability_table_and_decomposition_by_hand() -> None:
    predicted = [0.05, 0.15, 0.12, 0.95, 1.0]
    outcomes = [0, 1, 0, 1, 1]
    table = reliability_table(predicted, outcomes)
    filled = {round(b.lower, 1): (b.count, b.mean_predicted, b.observed_frequency) for b in table if b.count}
    assert filled.keys() == {0.0, 0.1, 0.9}  # 1.0 belongs to the last, closed bin
    assert filled[0.0] == (1, 0.05, 0.0)
    assert filled[0.1][0] == 2 and math.isclose(filled[0.1][1], 0.135) and filled[0.1][2] == 0.5
    assert filled[0.9][0] == 2 and math.isclose(filled[0.9][1], 0.975) and filled[0.9][2] == 1.0
    parts = brier_decomposition(predicted, outcomes)
    assert parts is not None
    # Brier: (0.05² + 0.85² + 0.12² + 0.05² + 0²) / 5 = 0.7419 / 5
    assert math.isclose(parts.brier, 0.14838)
    # Base rate 3/5; uncertainty 0.6 × 0.4.
    assert math.isclose(parts.base_rate, 0.6) and math.isclose(parts.uncertainty, 0.24)
    # Reliability: (1 × 0.05² + 2 × (0.135 - 0.5)² + 2 × (0.975 - 1)²) / 5 = 0.2702 / 5
    assert math.isclose(parts.reliability, 0.05404)
    # Resolution: (1 × 0.6² + 2 × 0.1² + 2 × 0.4²) / 5 = 0.7 / 5
    assert math.isclose(parts.resolution, 0.14)
    assert math.isclose(parts.skill, 1 - 0.14838 / 0.24)


def test_backtest_outcomes_by_hand() -> None:
    # 21 days at 1000 requests/hour, a 7-day rolling window (budget 168 bad events). No errors for 14
    # days, then 2 bad/hour: the trailing window runs out 84 hours into day 14, at day 17.5. Forecasts
    # at days 7..14 (the last origin whose horizon the data covers) see no errors and say 0; the ones at
    # days 11..14 see their horizon reach day 17.5.
    hours = 21 * 24
    total = np.full(hours, 1000)
    bad = np.zeros(hours, dtype=np.int64)
    bad[14 * 24 :] = 2
    rows = backtest(
        total - bad, total, START, target=TARGET, window=RollingWindow(Duration(7, "d")), warmup_days=7,
        simulations=100,
    )  # fmt: skip
    assert [r.origin for r in rows] == [START + timedelta(days=d) for d in range(7, 15)]
    assert [r.outcome for r in rows] == [False] * 4 + [True] * 4
    assert all(r.predicted == 0.0 and not r.decided for r in rows)
    assert [r.seed for r in rows] == list(range(8))
    assert brier_score(rows=rows) == 0.5
    # Day 14's forecast window ends at day 21; the trailing window there holds 7 days at 2/hour:
    # consumed 2, remaining -1.
    assert rows[-1].actual_remaining == -1.0


def test_backtest_calendar_outcomes_and_decided_rows() -> None:
    # Weekly calendar periods; burn rate 2 all along: every period is exhausted, and from the middle of a
    # week on every path already has it exhausted (decided) — those rows are left out of the score.
    hours = 21 * 24
    good, total = constant(hours, 1000, 2)
    rows = backtest(
        good, total, START, target=TARGET, window=CalendarWindow(Duration(1, "w"), START), warmup_days=7,
        every_hours=24, simulations=50,
    )  # fmt: skip
    assert all(r.outcome and r.predicted == 1.0 for r in rows)
    assert [r.decided for r in rows[:7]] == [False, False, False, False, True, True, True]
    assert brier_score(rows=rows) == 0.0
    assert brier_score(rows=rows, include_decided=True) == 0.0


def test_synthetic_histories_are_labelled_and_reproducible() -> None:
    for kind in SYNTHETIC_KINDS:
        a = synthetic_history(kind, days=14, seed=1)
        b = synthetic_history(kind, days=14, seed=1)
        assert np.array_equal(a.good, b.good) and np.array_equal(a.total, b.total)
        assert a.total.shape == (14 * 24,) and np.all(a.good <= a.total) and np.all(a.good >= 0)
        assert "burn_rate" in a.truth and "incidents" in a.truth
    many = synthetic_history("incidents", days=200, seed=2)
    assert len(many.truth["incidents"]) > 0
    with pytest.raises(ValueError, match="kind"):
        synthetic_history("sawtooth")

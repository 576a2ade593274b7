"""Seasonal decomposition, trend and change points recover known components within stated tolerances."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from pipelines.slo.seasonal import SeasonalError, analyse, change_points, decompose, regular_grid, trend_slope

HOUR = np.timedelta64(1, "h")
START = np.datetime64("2026-01-05T00:00")  # a Monday


def hourly(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n)
    return START + t * HOUR, t


def test_daily_and_weekly_seasonality_and_trend_are_recovered() -> None:
    # 8 weeks hourly: level 10, trend 0.24/day, daily amplitude 2, weekly amplitude 1, noise sd 0.2.
    stamps, t = hourly(24 * 7 * 8)
    rng = np.random.default_rng(7)
    daily, weekly = 2 * np.sin(2 * np.pi * t / 24), np.sin(2 * np.pi * t / 168)
    values = 10 + 0.01 * t + daily + weekly + rng.normal(0, 0.2, len(t))
    result = analyse(stamps, values, step=timedelta(hours=1))
    parts = result.decomposition.seasonal
    assert sorted(parts) == [24, 168]
    # Tolerances: components within 0.15 RMS of the truth (noise sd 0.2), slope within 5%.
    assert np.sqrt(np.mean((parts[24] - daily) ** 2)) < 0.15
    assert np.sqrt(np.mean((parts[168] - weekly) ** 2)) < 0.15
    assert result.trend is not None and result.trend.significant
    assert result.trend.slope_per_day == pytest.approx(0.24, rel=0.05)
    assert result.change_points == []


def test_level_shift_is_found_with_its_time_and_size_and_kept_out_of_the_trend() -> None:
    stamps, t = hourly(24 * 7 * 8)
    rng = np.random.default_rng(1)
    values = 10 + 0.01 * t + 2 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.2, len(t))
    values[500:] += 3  # a deploy at 2026-01-25 20:00 raises the level by 3
    result = analyse(stamps, values, step=timedelta(hours=1))
    (shift,) = result.change_points
    # Within 3 hours of the deploy; the size within 0.5 of 3 (the trend adds 0.24 over a day's window).
    assert abs(shift.at - datetime(2026, 1, 25, 20)) <= timedelta(hours=3)
    assert shift.size == pytest.approx(3, abs=0.5)
    assert result.trend is not None and result.trend.slope_per_day == pytest.approx(0.24, rel=0.05)


def test_flat_noise_has_no_trend_and_no_change_points() -> None:
    stamps, t = hourly(24 * 30)
    values = 5 + 2 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(3).normal(0, 0.3, len(t))
    result = analyse(stamps, values, step=timedelta(hours=1))
    assert result.trend is not None and not result.trend.significant
    assert result.change_points == []


def test_a_burst_of_spikes_is_not_a_level_shift() -> None:
    stamps, t = hourly(24 * 14)
    values = 1 + np.random.default_rng(5).normal(0, 0.1, len(t))
    values[100:104] = 50  # four hours of outliers
    assert change_points(stamps, values) == []


def test_gaps_are_interpolated_for_the_fit_and_reported() -> None:
    stamps, t = hourly(24 * 21)
    values = 3 + np.sin(2 * np.pi * t / 24)
    keep = np.ones(len(t), dtype=bool)
    keep[50:60] = False  # ten hours without data: absent rows, not NaN
    result = decompose(stamps[keep], values[keep], step=timedelta(hours=1))
    assert len(result.timestamps) == len(t)
    assert result.filled[50:60].all() and not result.filled[:50].any()
    assert np.isnan(result.observed[55])


def test_short_series_without_full_cycles_have_no_seasonality() -> None:
    stamps, _ = hourly(30)
    result = decompose(stamps, np.linspace(0, 1, 30), step=timedelta(hours=1))
    assert result.seasonal == {}


def test_daily_series_use_weekly_seasonality() -> None:
    days = np.datetime64("2026-01-05") + np.arange(70) * np.timedelta64(1, "D")
    weekly = np.tile([1.0, 1, 1, 1, 1, -2.5, -2.5], 10)
    result = decompose(days, 20 + weekly, step=timedelta(days=1))
    assert list(result.seasonal) == [7]
    assert np.max(np.abs(result.seasonal[7] - weekly)) < 0.2


def test_irregular_or_unsorted_timestamps_are_refused() -> None:
    stamps, _ = hourly(5)
    with pytest.raises(SeasonalError, match="regular"):
        regular_grid(stamps + np.array([0, 0, 30, 0, 0], dtype="timedelta64[m]"), np.ones(5), HOUR)
    with pytest.raises(SeasonalError, match="increasing"):
        regular_grid(stamps[::-1], np.ones(5), HOUR)
    with pytest.raises(SeasonalError, match="no values"):
        decompose(stamps, np.full(5, np.nan), step=timedelta(hours=1))


def test_trend_of_an_exact_line() -> None:
    days = np.datetime64("2026-01-01") + np.arange(10) * np.timedelta64(1, "D")
    trend = trend_slope(days, 2.0 + 0.5 * np.arange(10))
    assert trend is not None and trend.slope_per_day == pytest.approx(0.5)
    assert trend_slope(days[:2], np.ones(2)) is None


def test_trend_interval_accounts_for_autocorrelated_noise() -> None:
    # AR(1) noise (phi 0.8) around a slope of 0.05 a day: a textbook interval would be ~3x too narrow.
    # Over 200 seeds the widened 95% interval covers the true slope in 88% of them (the lag-1 estimate from
    # residuals is biased low); the textbook interval covers 52%. Require at least 85%.
    stamps, t = hourly(24 * 20)
    covered = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        noise = np.zeros(len(t))
        shocks = rng.normal(0, 0.1, len(t))
        for i in range(1, len(t)):
            noise[i] = 0.8 * noise[i - 1] + shocks[i]
        trend = trend_slope(stamps, 1 + 0.05 * t / 24 + noise)
        assert trend is not None
        covered += trend.ci_low <= 0.05 <= trend.ci_high
    assert covered >= 170

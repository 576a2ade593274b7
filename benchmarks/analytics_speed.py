"""Analytics speed: fit and score 100 SLI series x 90 days of hourly points (target: under 60 s on 2
cores), and one Monte Carlo forecast. Prints figures; asserts nothing.

Each series is what sloscope fits per SLO metric: MSTL seasonality (daily and weekly), the robust trend,
change points, and the streaming anomaly scores. Series are synthetic and seeded: an error-rate-like level
with daily and weekly cycles, heavy-tailed noise, and the odd spike or level shift.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from pipelines.slo.anomaly import score_series
from pipelines.slo.forecast import forecast_budget
from pipelines.slo.seasonal import analyse

SERIES = 100
HOURS = 90 * 24


def series(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(HOURS)
    level = rng.uniform(0.5, 5.0)
    values = level * (1 + 0.3 * np.sin(2 * np.pi * t / 24) + 0.1 * np.sin(2 * np.pi * t / 168))
    values = values + rng.standard_t(3, HOURS) * 0.05 * level
    if seed % 3 == 0:
        values[rng.integers(HOURS // 2, HOURS) :] += level
    if seed % 4 == 0:
        values[rng.integers(0, HOURS)] *= 8
    return values


def main() -> None:
    stamps = np.datetime64("2026-07-01T00:00") + np.arange(HOURS) * np.timedelta64(1, "h")
    data = [series(seed) for seed in range(SERIES)]
    started = time.perf_counter()
    fit = score = 0.0
    flagged = shifts = 0
    for values in data:
        t0 = time.perf_counter()
        result = analyse(stamps, values, step=timedelta(hours=1))
        t1 = time.perf_counter()
        scores = score_series(stamps, values)
        t2 = time.perf_counter()
        fit += t1 - t0
        score += t2 - t1
        flagged += int(scores.is_anomaly.sum())
        shifts += len(result.change_points)
    total = time.perf_counter() - started
    print(f"analytics: {SERIES} series x {HOURS} hourly points")
    print(f"  seasonality + trend + change points: {fit:6.1f} s")
    print(f"  streaming anomaly scores:            {score:6.1f} s")
    print(f"  total:                               {total:6.1f} s (target < 60 s)")
    print(f"  ({shifts} change points, {flagged} anomalous points found)")

    rng = np.random.default_rng(1)
    total_hourly = rng.poisson(1000, 28 * 24)
    good = total_hourly - rng.binomial(total_hourly, 0.0008)
    as_of = datetime(2026, 9, 15)
    t0 = time.perf_counter()
    forecast = forecast_budget(
        good,
        total_hourly,
        as_of - timedelta(days=28),
        target=Decimal("0.999"),
        window_start=datetime(2026, 9, 1),
        window_end=datetime(2026, 10, 1),
        as_of=as_of,
        seed=20261001,
    )
    elapsed = time.perf_counter() - t0
    print(
        f"forecast: {forecast.simulations} paths over {(forecast.window_end - as_of) // timedelta(hours=1)} "
        f"hours in {elapsed * 1000:.0f} ms (P(exhausted) {forecast.probability_exhausted:.2f})"
    )


if __name__ == "__main__":
    main()

"""Timeslices and RatioTimeslices budgeting, budget units and time to exhaustion.

Every expected number is worked out by hand in the comments next to it; two are published vectors
(OpenSLO's budgeting-method example and google/slo-generator's worked report).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from pipelines.slo.timeslices import (
    BudgetUnits,
    occurrence_units,
    ratio_timeslices,
    slice_sums,
    time_to_exhaustion,
    timeslice_burn_rate,
    timeslice_units,
    timeslices,
)

TWO_WEEKS = 14 * 24 * 60  # 20,160 minutes


def minutes(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(good, total) per minute -> the two int64 arrays."""
    good = np.array([g for g, _ in pairs], dtype=np.int64)
    total = np.array([t for _, t in pairs], dtype=np.int64)
    return good, total


def two_weeks_with_bad_minutes(bad: int) -> tuple[np.ndarray, np.ndarray]:
    # 100 requests a minute; a bad minute has 90 good (0.90 < 0.95), a good one 100.
    total = np.full(TWO_WEEKS, 100, dtype=np.int64)
    good = total.copy()
    good[:bad] = 90
    return good, total


def assert_no_nan(value: object) -> None:
    for field, item in (asdict(value) if not isinstance(value, dict) else value).items():  # type: ignore[call-overload]
        assert not (isinstance(item, float) and math.isnan(item)), field


# --- slice sums -----------------------------------------------------------------------------------------


def test_five_minute_slices_over_an_hour() -> None:
    # Minute i has total i and good i // 2: slice k sums minutes 5k..5k+4.
    total = np.arange(60, dtype=np.int64)
    good = total // 2
    goods, totals = slice_sums(good, total, 5)
    assert len(totals) == 12
    assert totals[0] == 0 + 1 + 2 + 3 + 4 == 10
    assert goods[0] == 0 + 0 + 1 + 1 + 2 == 4
    assert totals[11] == 55 + 56 + 57 + 58 + 59 == 285
    assert totals.sum() == total.sum() and goods.sum() == good.sum()
    assert totals.dtype == np.int64


def test_length_must_be_a_multiple_of_the_slice() -> None:
    good, total = minutes([(1, 1)] * 62)
    with pytest.raises(ValueError, match=r"62 minutes .* not a multiple of the 5-minute slice"):
        slice_sums(good, total, 5)
    with pytest.raises(ValueError, match="not a multiple"):
        timeslices(good, total, slice_minutes=5, slice_target=Decimal("0.9"), target=Decimal("0.9"))


@pytest.mark.parametrize(
    ("good", "total", "message"),
    [
        (np.array([2]), np.array([1]), "0 <= good <= total"),
        (np.array([-1]), np.array([1]), "0 <= good <= total"),
        (np.array([1.0]), np.array([1.0]), "integer counts"),
        (np.array([1, 1]), np.array([1]), "same length"),
    ],
)
def test_invalid_counts_are_rejected(good: np.ndarray, total: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slice_sums(good, total, 1)


def test_slice_minutes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        slice_sums(*minutes([(1, 1)]), 0)


# --- Timeslices ------------------------------------------------------------------------------------------


def test_openslo_two_week_example_budget() -> None:
    # OpenSLO: 2-week rolling window, 95% objective, 1-minute slices = 20,160 slices; the budget is
    # 5% of them = 1,008 bad minutes (16 h 48 min).
    result = timeslices(
        *two_weeks_with_bad_minutes(0), slice_minutes=1, slice_target=Decimal("0.95"), target=Decimal("0.95")
    )
    assert result.slices == 20_160
    assert result.allowed_bad_slices == 1008.0
    assert result.allowed_bad_minutes == 1008.0
    assert timedelta(minutes=result.allowed_bad_minutes) == timedelta(hours=16, minutes=48)
    assert (result.sli, result.consumed, result.remaining) == (1.0, 0.0, 1.0)


def test_openslo_example_exactly_consumed_and_half_consumed() -> None:
    # 1,008 bad minutes of 1,008 allowed: consumed exactly 1, remaining exactly 0.0 (not -1e-16).
    spent = timeslices(
        *two_weeks_with_bad_minutes(1008),
        slice_minutes=1,
        slice_target=Decimal("0.95"),
        target=Decimal("0.95"),
    )
    assert (spent.good_slices, spent.bad_slices, spent.empty_slices) == (19_152, 1008, 0)
    assert spent.consumed == 1.0
    assert spent.remaining == 0.0
    assert spent.bad_minutes == 1008
    assert spent.bad_minutes_left == 0.0
    # SLI = 19,152 / 20,160 = 0.95 exactly.
    assert spent.sli == 0.95

    # 504 bad minutes: half the budget.
    half = timeslices(
        *two_weeks_with_bad_minutes(504),
        slice_minutes=1,
        slice_target=Decimal("0.95"),
        target=Decimal("0.95"),
    )
    assert half.consumed == 0.5
    assert half.remaining == 0.5
    assert half.bad_minutes_left == 504.0


def test_empty_slices_are_neither_good_nor_bad() -> None:
    # Eight 1-minute slices: four empty, three good (10/10), one bad (5/10). Target 0.75.
    good, total = minutes([(0, 0), (10, 10), (0, 0), (10, 10), (0, 0), (10, 10), (0, 0), (5, 10)])
    result = timeslices(good, total, slice_minutes=1, slice_target=Decimal("0.9"), target=Decimal("0.75"))
    assert (result.slices, result.good_slices, result.bad_slices, result.empty_slices) == (8, 3, 1, 4)
    # SLI over the slices with traffic only: 3 / 4.
    assert result.sli == 0.75
    # The allowance uses all eight slices: 0.25 x 8 = 2; consumed counts the one bad slice: 1 / 2.
    assert result.allowed_bad_slices == 2.0
    assert result.consumed == 0.5
    assert result.remaining == 0.5


def test_slice_target_boundary_is_exact() -> None:
    # 950/1000 is exactly 0.95: good. 9499/10000 is below: bad. Two slices, target 0.999.
    good, total = minutes([(950, 1000), (9499, 10_000)])
    result = timeslices(good, total, slice_minutes=1, slice_target=Decimal("0.95"), target=Decimal("0.999"))
    assert (result.good_slices, result.bad_slices) == (1, 1)
    # allowance 0.001 x 2 = 0.002 slices; 1 bad slice consumes 500 of it.
    assert result.allowed_bad_slices == 0.002
    assert result.consumed == 500.0
    assert result.remaining == -499.0


def test_slice_target_at_0_999_and_floats_refused() -> None:
    # 999/1000 is exactly 0.999: good; 998/1000 bad. A float 0.999 is really 0.99899999999999999911...,
    # so targets must be Decimals and a float is refused rather than compared inexactly.
    good, total = minutes([(999, 1000), (998, 1000)])
    result = timeslices(good, total, slice_minutes=1, slice_target=Decimal("0.999"), target=Decimal("0.999"))
    assert (result.good_slices, result.bad_slices) == (1, 1)
    with pytest.raises(TypeError, match="Decimal"):
        timeslices(good, total, slice_minutes=1, slice_target=0.999, target=Decimal("0.999"))  # type: ignore[arg-type]


def test_fine_target_does_not_overflow_int64() -> None:
    # slice_target 0.9999999999 has denominator 10^10; total 10^12 a slice: good * 10^10 is 10^22, beyond
    # int64. 999,999,999,900 / 10^12 == 0.9999999999 exactly: good; one event fewer: bad.
    good, total = minutes([(999_999_999_900, 10**12), (999_999_999_899, 10**12)])
    result = timeslices(
        good, total, slice_minutes=1, slice_target=Decimal("0.9999999999"), target=Decimal("0.5")
    )
    assert (result.good_slices, result.bad_slices) == (1, 1)


def test_five_minute_slices_sum_before_comparing() -> None:
    # One hour of 5-minute slices at target 0.9. Slice 0: minutes 100/100 x4 and 0/100 -> 400/500 = 0.8,
    # bad, though four of its minutes are perfect. The other 11 slices are perfect.
    pairs = [(100, 100)] * 60
    pairs[4] = (0, 100)
    result = timeslices(*minutes(pairs), slice_minutes=5, slice_target=Decimal("0.9"), target=Decimal("0.9"))
    assert (result.slices, result.good_slices, result.bad_slices) == (12, 11, 1)
    assert result.bad_minutes == 5
    # allowance 0.1 x 12 = 1.2 slices = 6 minutes; 5 spent -> 1 left, consumed 1 / 1.2.
    assert result.allowed_bad_minutes == 6.0
    assert result.bad_minutes_left == 1.0
    assert result.consumed == pytest.approx(1 / 1.2, abs=1e-15)


def test_total_slices_for_a_partly_elapsed_calendar_period() -> None:
    # A 30-day month at 1-hour slices is 720 slices; 10 days (240 slices) have elapsed, 3 of them bad.
    # Target 0.99: budget 0.01 x 720 = 7.2 slices (not 0.01 x 240 = 2.4); consumed 3 / 7.2.
    total = np.full(240 * 60, 10, dtype=np.int64)
    good = total.copy()
    good[: 3 * 60] = 0
    elapsed = timeslices(good, total, slice_minutes=60, slice_target=Decimal("0.99"), target=Decimal("0.99"))
    whole = timeslices(
        good, total, slice_minutes=60, slice_target=Decimal("0.99"), target=Decimal("0.99"), total_slices=720
    )
    assert elapsed.allowed_bad_slices == 2.4
    assert whole.allowed_bad_slices == 7.2
    assert (whole.slices, whole.period_slices, whole.bad_slices) == (240, 720, 3)
    assert whole.consumed == pytest.approx(3 / 7.2, abs=1e-15)
    assert whole.allowed_bad_minutes == 432.0  # 7.2 x 60
    assert whole.bad_minutes_left == 252.0  # 432 - 180
    with pytest.raises(ValueError, match="smaller than the 240 slices"):
        timeslices(
            good,
            total,
            slice_minutes=60,
            slice_target=Decimal("0.99"),
            target=Decimal("0.99"),
            total_slices=239,
        )


def test_no_traffic_gives_none_not_nan() -> None:
    empty = np.zeros(0, dtype=np.int64)
    for good, total in [(empty, empty), (np.zeros(10, dtype=np.int64), np.zeros(10, dtype=np.int64))]:
        result = timeslices(good, total, slice_minutes=1, slice_target=Decimal("0.9"), target=Decimal("0.9"))
        assert (result.sli, result.consumed, result.remaining) == (None, None, None)
        assert result.bad_slices == 0
        assert_no_nan(result)
        ratio = ratio_timeslices(good, total, slice_minutes=1, target=Decimal("0.9"))
        assert (ratio.sli, ratio.consumed, ratio.remaining) == (None, None, None)
        assert ratio.empty_slices == len(total)
        assert_no_nan(ratio)
    assert (
        timeslices(
            empty, empty, slice_minutes=1, slice_target=Decimal("0.9"), target=Decimal("0.9")
        ).allowed_bad_slices
        == 0.0
    )


@pytest.mark.parametrize("target", [Decimal("-0.1"), Decimal(1), Decimal("1.5"), Decimal("NaN")])
def test_target_must_lie_in_zero_to_one(target: Decimal) -> None:
    # OpenSLO v1 allows targets in [0, 1): 0 is accepted (its allowance, 1, is still positive), 1 is not.
    with pytest.raises(ValueError, match="target"):
        timeslices(*minutes([(1, 1)]), slice_minutes=1, slice_target=Decimal("0.9"), target=target)


def test_slice_target_of_one_needs_every_event_good() -> None:
    result = timeslices(
        *minutes([(10, 10), (9, 10)]), slice_minutes=1, slice_target=Decimal(1), target=Decimal("0.5")
    )
    assert (result.good_slices, result.bad_slices) == (1, 1)


# --- RatioTimeslices -------------------------------------------------------------------------------------


def test_ratio_timeslices_mean_skips_empty_slices() -> None:
    # Slices 1/2, 1, empty, 3/4: mean of the three with traffic = (0.5 + 1 + 0.75) / 3 = 0.75.
    # Target 0.9: consumed (1 - 0.75) / 0.1 = 2.5, remaining -1.5.
    good, total = minutes([(1, 2), (4, 4), (0, 0), (3, 4)])
    result = ratio_timeslices(good, total, slice_minutes=1, target=Decimal("0.9"))
    assert (result.slices, result.slices_with_traffic, result.empty_slices) == (4, 3, 1)
    assert result.sli == 0.75
    assert result.consumed == 2.5
    assert result.remaining == -1.5


def test_ratio_timeslices_is_not_traffic_weighted() -> None:
    # 0/1 and 1000/1000: Occurrences would say 1000/1001; the mean of ratios is 0.5.
    result = ratio_timeslices(*minutes([(0, 1), (1000, 1000)]), slice_minutes=1, target=Decimal("0.5"))
    assert result.sli == 0.5
    assert result.consumed == 1.0
    assert result.remaining == 0.0


def test_ratio_timeslices_exact_where_floats_are_not() -> None:
    # 2-minute slices (1+0)/(2+1) = 1/3, (2+2)/(3+3) = 2/3, (3+3)/(3+3) = 1: mean 2/3. Target 0.5:
    # consumed (1/3) / 0.5 = 2/3, remaining 1/3, each the float nearest the exact value.
    good, total = minutes([(1, 2), (0, 1), (2, 3), (2, 3), (3, 3), (3, 3)])
    result = ratio_timeslices(good, total, slice_minutes=2, target=Decimal("0.5"))
    assert result.sli == 2 / 3
    assert result.consumed == 2 / 3
    assert result.remaining == 1 / 3


def test_ratio_timeslices_many_distinct_totals_stay_exact() -> None:
    # 2,000 slices with pairwise different totals t and good t - 1: mean of 1 - 1/t, compared with a
    # Fraction sum done the slow way.
    from fractions import Fraction

    total = np.arange(2, 2002, dtype=np.int64)
    good = total - 1
    expected = sum(Fraction(int(g), int(t)) for g, t in zip(good, total, strict=True)) / 2000
    result = ratio_timeslices(good, total, slice_minutes=1, target=Decimal("0.99"))
    assert result.sli == float(expected)
    assert result.consumed == float((1 - expected) / Fraction(1, 100))
    assert result.remaining == float(1 - (1 - expected) / Fraction(1, 100))


# --- burn rate, units, exhaustion ------------------------------------------------------------------------


def test_timeslice_burn_rate() -> None:
    # 3 bad of 60 slices = 0.05, over a 0.01 allowance = 5.0; exact at 0.999: 1 of 1000 = 1.0.
    assert timeslice_burn_rate(3, 60, Decimal("0.99")) == 5.0
    assert timeslice_burn_rate(1, 1000, Decimal("0.999")) == 1.0
    assert timeslice_burn_rate(0, 60, Decimal("0.99")) == 0.0
    assert timeslice_burn_rate(0, 0, Decimal("0.99")) is None


def test_slo_generator_worked_report() -> None:
    # google/slo-generator: good 3,556, bad 3,556, 12-hour window (720 min), goal 0.9 -> SLI 0.5, burn
    # rate 0.5 / 0.1 = 5.0, budget 0.1 x 720 = 72 minutes, error minutes 0.5 x 720 = 360, left 72 - 360.
    from pipelines.slo.budget import burn_rate  # imported here: budget.py is the shared module under edit

    units = occurrence_units(3556, 7112, Decimal("0.9"), 720)
    assert burn_rate(3556, 7112, Decimal("0.9")) == 5.0
    assert units.budget_minutes == 72.0
    assert units.bad_minutes == 360.0
    assert units.bad_minutes_left == -288.0
    # In events: 0.1 x 7,112 = 711.2 allowed, 3,556 bad, 711.2 - 3,556 = -2,844.8 left.
    assert units.bad_events == 3556
    assert units.allowed_bad_events == 711.2
    assert units.bad_events_left == -2844.8


def test_occurrence_units_exact_and_without_traffic() -> None:
    # 1 bad in 1000 at 99.9% over 28 days (40,320 min): allowed 1.0 event, 0 left; budget 40.32 min,
    # bad minutes 40,320 / 1000 = 40.32, 0.0 left (exactly, as 1 - 0.999 is exact).
    units = occurrence_units(999, 1000, Decimal("0.999"), 40_320)
    assert (units.allowed_bad_events, units.bad_events_left) == (1.0, 0.0)
    assert (units.budget_minutes, units.bad_minutes, units.bad_minutes_left) == (40.32, 40.32, 0.0)

    empty = occurrence_units(0, 0, Decimal("0.999"), 40_320)
    assert empty == BudgetUnits(None, 0, None, 40.32, None, None)
    assert_no_nan(empty.to_json())
    with pytest.raises(ValueError, match="good <= total"):
        occurrence_units(5, 4, Decimal("0.9"), 60)


def test_timeslice_units() -> None:
    # OpenSLO example with 504 bad minutes: budget 1,008 minutes, 504 spent, 504 left; no event budget.
    good, total = two_weeks_with_bad_minutes(504)
    result = timeslices(good, total, slice_minutes=1, slice_target=Decimal("0.95"), target=Decimal("0.95"))
    units = timeslice_units(result, int(good.sum()), int(total.sum()), Decimal("0.95"), TWO_WEEKS)
    # bad events: 504 minutes x 10 failed requests.
    assert units == BudgetUnits(None, 5040, None, 1008.0, 504.0, 504.0)
    assert units.to_json() == {
        "allowed_bad_events": None,
        "bad_events": 5040,
        "bad_events_left": None,
        "budget_minutes": 1008.0,
        "bad_minutes": 504.0,
        "bad_minutes_left": 504.0,
    }
    with pytest.raises(ValueError, match="window_minutes"):
        timeslice_units(result, int(good.sum()), int(total.sum()), Decimal("0.95"), TWO_WEEKS - 1)
    with pytest.raises(ValueError, match="target"):
        timeslice_units(result, int(good.sum()), int(total.sum()), Decimal("0.9"), TWO_WEEKS)


def test_timeslice_units_without_traffic() -> None:
    zeros = np.zeros(60, dtype=np.int64)
    result = timeslices(zeros, zeros, slice_minutes=5, slice_target=Decimal("0.9"), target=Decimal("0.9"))
    units = timeslice_units(result, 0, 0, Decimal("0.9"), 60)
    assert units == BudgetUnits(None, 0, None, 6.0, None, None)


def test_time_to_exhaustion() -> None:
    # Half the budget left, burning at 2x: the whole 28-day budget lasts 14 days, half of it 7 days.
    assert time_to_exhaustion(0.5, 2.0, timedelta(days=28)) == timedelta(days=7)
    # At 1x the full budget lasts exactly the period.
    assert time_to_exhaustion(1.0, 1.0, timedelta(days=30)) == timedelta(days=30)
    # 0.25 left at 10x over 28 days: 0.25 x 28 / 10 = 0.7 days = 16 h 48 min.
    assert time_to_exhaustion(0.25, 10.0, timedelta(days=28)) == timedelta(hours=16, minutes=48)
    assert time_to_exhaustion(0.5, 0.0, timedelta(days=28)) is None
    assert time_to_exhaustion(0.5, None, timedelta(days=28)) is None
    assert time_to_exhaustion(None, 2.0, timedelta(days=28)) is None
    assert time_to_exhaustion(-0.1, 2.0, timedelta(days=28)) == timedelta(0)
    assert time_to_exhaustion(0.0, 2.0, timedelta(days=28)) == timedelta(0)
    # Beyond what a timedelta holds: effectively never.
    assert time_to_exhaustion(1.0, 1e-300, timedelta(days=28)) is None
    with pytest.raises(ValueError, match="finite"):
        time_to_exhaustion(float("nan"), 2.0, timedelta(days=28))

"""The Timeslices and RatioTimeslices budgeting methods, and error budgets in events and minutes.

Inputs are per-minute ``good`` and ``total`` counts (integer numpy arrays) covering consecutive minutes
of a window, index 0 being the window start. The window is cut into slices of ``slice_minutes``:

* **Timeslices** (OpenSLO): a slice with traffic is *good* when good / total >= the slice target and
  *bad* otherwise; a slice without traffic is *empty*, neither good nor bad. SLI = good slices / slices
  with traffic; the budget is (1 - target) x all slices of the budget period, empty ones included,
  so consumed = bad slices / allowed bad slices.
* **RatioTimeslices** (OpenSLO): SLI = the mean of good / total over the slices with traffic; consumed =
  (1 - SLI) / (1 - target), as for Occurrences.

Arithmetic is exact (integers, ``Fraction``, ``Decimal`` targets) until the final conversion to float.
Nothing here returns NaN: no traffic gives ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np

_ONE_MICROSECOND = timedelta(microseconds=1)


def exact_fraction(value: Decimal | Fraction | int, name: str) -> Fraction:
    # A float target such as 0.999 is really 0.99899999999999999911..., which moves a slice or a
    # budget across its boundary; callers must say what they mean with a Decimal.
    if isinstance(value, bool) or not isinstance(value, Decimal | Fraction | int):
        raise TypeError(f"{name} must be a Decimal (such as Decimal('0.999')), got {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value}")
    return Fraction(value)


def _allowance(target: Decimal) -> Fraction:
    """1 - target, exactly; the target must lie in [0, 1) (OpenSLO) so the allowance is positive."""
    exact = exact_fraction(target, "target")
    if not 0 <= exact < 1:
        raise ValueError(f"target must lie in [0, 1), got {target}")
    return 1 - exact


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def checked_counts(good: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-minute good/total as int64, refusing anything but whole counts with 0 <= good <= total."""
    good, total = np.asarray(good), np.asarray(total)
    if good.ndim != 1 or total.ndim != 1 or good.shape != total.shape:
        raise ValueError(
            f"good and total must be one-dimensional arrays of the same length, got shapes "
            f"{good.shape} and {total.shape}"
        )
    for name, array in (("good", good), ("total", total)):
        if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{name} must hold integer counts, got dtype {array.dtype}")
        if not np.can_cast(array.dtype, np.int64, casting="safe"):
            raise ValueError(f"{name} must fit int64 counts, got dtype {array.dtype}")
    good, total = good.astype(np.int64, copy=False), total.astype(np.int64, copy=False)
    if (good < 0).any() or (good > total).any():
        raise ValueError("counts must satisfy 0 <= good <= total in every minute")
    return good, total


def slice_sums(good: np.ndarray, total: np.ndarray, slice_minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice sums of good and total (int64) over consecutive slices of ``slice_minutes``."""
    size = _positive_int(slice_minutes, "slice_minutes")
    good, total = checked_counts(good, total)
    if len(total) % size:
        raise ValueError(
            f"{len(total)} minutes of counts is not a multiple of the {size}-minute slice; "
            "the window must hold a whole number of slices"
        )
    return good.reshape(-1, size).sum(axis=1), total.reshape(-1, size).sum(axis=1)


def _float(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class TimesliceResult:
    """One window under the Timeslices budgeting method.

    ``slices`` counts the slices the counts cover (``good_slices + bad_slices + empty_slices``);
    ``period_slices`` is the number the budget is computed over, larger than ``slices`` when the counts
    cover only the elapsed part of a calendar period.
    """

    slices: int
    good_slices: int
    bad_slices: int
    empty_slices: int
    sli: float | None
    allowed_bad_slices: float
    consumed: float | None
    remaining: float | None
    slice_minutes: int
    period_slices: int
    target: Decimal

    def _allowed_minutes(self) -> Fraction:
        return _allowance(self.target) * self.period_slices * self.slice_minutes

    @property
    def bad_minutes(self) -> int:
        return self.bad_slices * self.slice_minutes

    @property
    def allowed_bad_minutes(self) -> float:
        return float(self._allowed_minutes())

    @property
    def bad_minutes_left(self) -> float:
        """Negative when the budget is overspent."""
        return float(self._allowed_minutes() - self.bad_minutes)


def timeslices(
    good: np.ndarray,
    total: np.ndarray,
    *,
    slice_minutes: int,
    slice_target: Decimal,
    target: Decimal,
    total_slices: int | None = None,
) -> TimesliceResult:
    """Evaluate the Timeslices budgeting method.

    ``total_slices`` is the number of slices in the whole budget period when the counts cover only its
    elapsed part (a calendar month on the 10th); the budget is (1 - target) x ``total_slices``.
    """
    goods, totals = slice_sums(good, total, slice_minutes)
    allowance = _allowance(target)
    threshold = exact_fraction(slice_target, "slice_target")
    if not 0 < threshold <= 1:
        raise ValueError(f"slice_target must lie in (0, 1], got {slice_target}")
    observed = len(totals)
    if total_slices is None:
        period = observed
    else:
        if isinstance(total_slices, bool) or not isinstance(total_slices, int | np.integer):
            raise ValueError(f"total_slices must be an integer, got {total_slices!r}")
        period = int(total_slices)
        if period < observed:
            raise ValueError(
                f"total_slices ({period}) is smaller than the {observed} slices the counts already cover"
            )

    with_traffic = totals > 0
    # good / total >= num / den  <=>  good * den >= num * total; Python ints (object arrays) so that a
    # fine-grained target's denominator cannot overflow int64.
    meets = goods.astype(object) * threshold.denominator >= totals.astype(object) * threshold.numerator
    good_slices = int(np.count_nonzero(with_traffic & meets.astype(bool)))
    traffic_slices = int(np.count_nonzero(with_traffic))
    bad_slices = traffic_slices - good_slices
    allowed = allowance * period
    consumed = Fraction(bad_slices) / allowed if traffic_slices else None
    return TimesliceResult(
        slices=observed,
        good_slices=good_slices,
        bad_slices=bad_slices,
        empty_slices=observed - traffic_slices,
        sli=float(Fraction(good_slices, traffic_slices)) if traffic_slices else None,
        allowed_bad_slices=float(allowed),
        consumed=_float(consumed),
        remaining=_float(None if consumed is None else 1 - consumed),
        slice_minutes=int(slice_minutes),
        period_slices=period,
        target=target,
    )


@dataclass(frozen=True)
class RatioTimesliceResult:
    slices: int
    slices_with_traffic: int
    empty_slices: int
    sli: float | None
    consumed: float | None
    remaining: float | None


def _sum_of_ratios(numerators: list[int], denominators: list[int]) -> tuple[int, int]:
    """Exact sum of numerators[i] / denominators[i] as an unreduced (numerator, denominator).

    Summed pairwise (a product tree) without reducing: the common denominator of tens of thousands of
    distinct slice totals runs to hundreds of thousands of digits, and adding Fractions one at a time
    (a gcd per step) or through their lcm takes minutes where this takes about a second.
    """
    pairs = list(zip(numerators, denominators, strict=True))
    while len(pairs) > 1:
        merged = [(a * d + c * b, b * d) for (a, b), (c, d) in zip(pairs[::2], pairs[1::2], strict=False)]
        if len(pairs) % 2:
            merged.append(pairs[-1])
        pairs = merged
    return pairs[0] if pairs else (0, 1)


def ratio_timeslices(
    good: np.ndarray, total: np.ndarray, *, slice_minutes: int, target: Decimal
) -> RatioTimesliceResult:
    """Evaluate the RatioTimeslices budgeting method: the SLI is the mean of the slices' ratios."""
    goods, totals = slice_sums(good, total, slice_minutes)
    allowance = _allowance(target)
    with_traffic = totals > 0
    goods, totals = goods[with_traffic], totals[with_traffic]
    count = len(totals)
    empty = len(with_traffic) - count
    if count == 0:
        return RatioTimesliceResult(len(with_traffic), 0, empty, None, None, None)
    # Slices with the same total share a denominator: add their numerators first (exact in int64, since
    # they are counts), so the product tree below has one leaf per distinct total.
    order = np.argsort(totals, kind="stable")
    totals, goods = totals[order], goods[order]
    starts = np.flatnonzero(np.r_[True, totals[1:] != totals[:-1]])
    num, den = _sum_of_ratios(np.add.reduceat(goods, starts).tolist(), totals[starts].tolist())
    den *= count  # the mean: sum / count
    # consumed = (1 - num/den) / (p/q) = (den - num) * q / (den * p). Python's int / int is correctly
    # rounded however large the operands, so there is no need to reduce these (a slow gcd) first.
    p, q = allowance.numerator, allowance.denominator
    consumed_num, consumed_den = (den - num) * q, den * p
    return RatioTimesliceResult(
        slices=len(with_traffic),
        slices_with_traffic=count,
        empty_slices=empty,
        sli=num / den,
        consumed=consumed_num / consumed_den,
        remaining=(consumed_den - consumed_num) / consumed_den,
    )


def timeslice_burn_rate(bad_slices: int, slices: int, target: Decimal) -> float | None:
    """(bad slices / slices) / (1 - target); None when there are no slices."""
    if slices == 0:
        return None
    if bad_slices < 0 or slices < 0 or bad_slices > slices:
        raise ValueError(f"expected 0 <= bad_slices <= slices, got {bad_slices} of {slices}")
    return float(Fraction(bad_slices, slices) / _allowance(target))


@dataclass(frozen=True)
class BudgetUnits:
    """An error budget in events and in minutes; the ``*_left`` fields are negative when overspent.

    Under Timeslices the budget is counted in slices, not events, so the event fields are None.
    """

    allowed_bad_events: float | None
    bad_events: int
    bad_events_left: float | None
    budget_minutes: float
    bad_minutes: float | None
    bad_minutes_left: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed_bad_events": self.allowed_bad_events,
            "bad_events": self.bad_events,
            "bad_events_left": self.bad_events_left,
            "budget_minutes": self.budget_minutes,
            "bad_minutes": self.bad_minutes,
            "bad_minutes_left": self.bad_minutes_left,
        }


def _event_counts(good: int, total: int) -> tuple[int, int]:
    good, total = int(good), int(total)
    if not 0 <= good <= total:
        raise ValueError(f"expected 0 <= good <= total, got good {good} and total {total}")
    return good, total


def _window_minutes(window_minutes: int) -> int:
    if isinstance(window_minutes, bool) or not isinstance(window_minutes, int | np.integer):
        raise ValueError(f"window_minutes must be an integer, got {window_minutes!r}")
    if window_minutes < 0:
        raise ValueError(f"window_minutes must not be negative, got {window_minutes}")
    return int(window_minutes)


def occurrence_units(good: int, total: int, target: Decimal, window_minutes: int) -> BudgetUnits:
    """The Occurrences budget in events, and in minutes as slo-generator reports it.

    "Bad minutes" are the window's bad share times its length: the time the window would have been
    down had its failures been concentrated. Without traffic every figure but the budget is None.
    """
    good, total = _event_counts(good, total)
    allowance = _allowance(target)
    minutes = _window_minutes(window_minutes)
    budget_minutes = allowance * minutes
    bad = total - good
    if total == 0:
        return BudgetUnits(None, 0, None, float(budget_minutes), None, None)
    allowed_events = allowance * total
    bad_minutes = Fraction(bad, total) * minutes
    return BudgetUnits(
        allowed_bad_events=float(allowed_events),
        bad_events=bad,
        bad_events_left=float(allowed_events - bad),
        budget_minutes=float(budget_minutes),
        bad_minutes=float(bad_minutes),
        bad_minutes_left=float(budget_minutes - bad_minutes),
    )


def timeslice_units(
    result: TimesliceResult, good: int, total: int, target: Decimal, window_minutes: int
) -> BudgetUnits:
    """The Timeslices budget in minutes: bad slices x slice length against (1 - target) x the period.

    ``window_minutes`` is the whole budget period and must match the result's; ``good`` and ``total``
    are the window's event counts, reported as ``bad_events`` only.
    """
    good, total = _event_counts(good, total)
    minutes = _window_minutes(window_minutes)
    if exact_fraction(target, "target") != Fraction(result.target):
        raise ValueError(f"target {target} differs from the result's target {result.target}")
    if minutes != result.period_slices * result.slice_minutes:
        raise ValueError(
            f"window_minutes ({minutes}) differs from the result's period of {result.period_slices} "
            f"slices of {result.slice_minutes} minutes"
        )
    budget_minutes = _allowance(target) * minutes
    no_traffic = result.sli is None
    return BudgetUnits(
        allowed_bad_events=None,
        bad_events=total - good,
        bad_events_left=None,
        budget_minutes=float(budget_minutes),
        bad_minutes=None if no_traffic else float(result.bad_minutes),
        bad_minutes_left=None if no_traffic else float(budget_minutes - result.bad_minutes),
    )


def time_to_exhaustion(
    remaining: float | None, burn_rate: float | None, period: timedelta
) -> timedelta | None:
    """How long the remaining budget lasts at a burn rate.

    At burn rate ``b`` the budget of the whole period lasts ``period / b``, so the remaining fraction ``r``
    lasts ``r * period / b``. None when either input is None or the rate is not positive (the budget
    never runs out at that rate), or when the answer exceeds what a timedelta holds (millions of years);
    ``timedelta(0)`` when nothing is left.
    """
    if remaining is None or burn_rate is None:
        return None
    if not (math.isfinite(remaining) and math.isfinite(burn_rate)):
        raise ValueError(f"remaining and burn_rate must be finite, got {remaining} and {burn_rate}")
    if period <= timedelta(0):
        raise ValueError(f"period must be positive, got {period}")
    if burn_rate <= 0:
        return None
    if remaining <= 0:
        return timedelta(0)
    microseconds = Fraction(period // _ONE_MICROSECOND) * Fraction(remaining) / Fraction(burn_rate)
    if microseconds > timedelta.max // _ONE_MICROSECOND:
        return None
    return timedelta(microseconds=round(microseconds))

"""Multiwindow, multi-burn-rate alerting: rule factors, minute-by-minute replay, backtests.

Every expected number is worked out by hand in the comment next to it. Notation: O is the first bad
minute's start, E the end of the last bad minute; "boundary O + k" is the minute boundary k minutes after O,
where a rule judges the minutes [O + k - w, O + k).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from pipelines.slo.alerting import (
    AlertEpisode,
    BacktestResult,
    BurnRateRule,
    backtest,
    firing,
    replay,
    workbook_rules,
)

START = datetime(2026, 9, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES  # 10,080
TARGET = Decimal("0.999")
THIRTY_DAYS = timedelta(days=30)


def at(minutes: int) -> datetime:
    return START + minutes * MINUTE


def steady(minutes: int, per_minute: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """All-good traffic, ``per_minute`` requests every minute; returns (good, total)."""
    total = np.full(minutes, per_minute, dtype=np.int64)
    return total.copy(), total


def page_fast() -> BurnRateRule:
    return workbook_rules()[0]


# --- factors ----------------------------------------------------------------------------------------------


def test_three_pair_factors_for_30_days() -> None:
    # 2% x 720 h / 1 h = 14.4; 5% x 720 h / 6 h = 6; 10% x 30 d / 3 d = 1.
    factors = [rule.factor(THIRTY_DAYS) for rule in workbook_rules()]
    assert factors == [Fraction(72, 5), Fraction(6), Fraction(1)]
    assert all(isinstance(f, Fraction) for f in factors)
    assert [r.severity for r in workbook_rules()] == ["page", "page", "ticket"]


def test_four_pair_factors_for_30_days() -> None:
    # ... plus 10% x 30 d / 1 d = 3 for the 1-day ticket pair (short window 2 h).
    rules = workbook_rules(four_pairs=True)
    assert [rule.factor(THIRTY_DAYS) for rule in rules] == [Fraction(72, 5), 6, 3, 1]
    assert [(r.severity, r.long_window, r.short_window) for r in rules] == [
        ("page", timedelta(hours=1), timedelta(minutes=5)),
        ("page", timedelta(hours=6), timedelta(minutes=30)),
        ("ticket", timedelta(days=1), timedelta(hours=2)),
        ("ticket", timedelta(days=3), timedelta(hours=6)),
    ]


def test_factors_for_28_days() -> None:
    # 28 d = 672 h: 2% x 672 = 13.44; 5% x 672 / 6 = 5.6; 10% x 28 = 2.8; 10% x 28 / 3 = 14/15 = 0.9333...
    period = timedelta(days=28)
    assert [r.factor(period) for r in workbook_rules()] == [
        Fraction(1344, 100),
        Fraction(56, 10),
        Fraction(14, 15),
    ]
    assert [r.factor(period) for r in workbook_rules(four_pairs=True)] == [
        Fraction(336, 25),
        Fraction(28, 5),
        Fraction(14, 5),
        Fraction(14, 15),
    ]


def test_rules_reject_floats_and_nonsense() -> None:
    with pytest.raises(TypeError, match="must be a Decimal"):
        BurnRateRule("page", timedelta(hours=1), timedelta(minutes=5), 0.02)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be longer"):
        BurnRateRule("page", timedelta(minutes=5), timedelta(hours=1), Fraction(2, 100))
    with pytest.raises(ValueError, match=r"lie in \(0, 1\]"):
        BurnRateRule("page", timedelta(hours=1), timedelta(minutes=5), Fraction(0))
    with pytest.raises(ValueError, match="positive timedelta"):
        page_fast().factor(timedelta(0))
    # A Decimal share is normalised to the same Fraction, so the rules compare equal.
    assert BurnRateRule("page", timedelta(hours=1), timedelta(minutes=5), Decimal("0.02")) == page_fast()


# --- a full outage, by hand ---------------------------------------------------------------------------------

# 100 requests a minute, all good for 2 days, then 60 minutes of 100% errors, then good to the end of a
# week: O = minute 2,880, E = minute 2,940, data [0, 10,080) minutes.
OUTAGE_START, OUTAGE_END = 2 * DAY_MINUTES, 2 * DAY_MINUTES + 60


def outage() -> tuple[np.ndarray, np.ndarray]:
    good, total = steady(WEEK_MINUTES)
    good[OUTAGE_START:OUTAGE_END] = 0
    return good, total


def test_full_outage_fast_page_rule_alone() -> None:
    # Factor 14.4 at 99.9%: both windows need a bad share >= 14.4 x 0.001 = 1.44%.
    # Start: at boundary O + k the 1 h window holds k bad minutes of 60: k / 60 >= 0.0144 <=> k >= 0.864,
    #   so k = 1 (1/60 = 1.67%); the 5 m window then holds 1/5 = 20%. Fires at O + 1: detection 1 minute.
    # End: at boundary E + j the 5 m window holds 5 - j bad minutes of 5: (5 - j)/5 >= 0.0144 <=> j <= 4
    #   (the 1 h window holds all 60 bad minutes until E + 60, far longer). First non-firing boundary:
    #   E + 5, the first whose 5 m window is all good. Reset 5 minutes.
    episodes = replay(*outage(), START, TARGET, THIRTY_DAYS, [page_fast()])
    assert episodes == [AlertEpisode("page", at(OUTAGE_START + 1), at(OUTAGE_END + 5))]
    [page] = backtest(episodes, [(at(OUTAGE_START), at(OUTAGE_END))], START, at(WEEK_MINUTES))
    assert page == BacktestResult(
        severity="page",
        alerts=1,
        true_alerts=1,
        precision=1.0,
        recall=1.0,
        detection_minutes=[1.0],
        reset_minutes=[5.0],
        pages_per_week=1.0,  # one alert in exactly one week of data
    )


def test_full_outage_each_workbook_rule() -> None:
    good, total = outage()
    fast, slow, ticket = firing(good, total, TARGET, THIRTY_DAYS, workbook_rules())
    # firing()[i - 1] is boundary i. Fast page: boundaries O + 1 .. E + 4 (above).
    assert np.flatnonzero(fast).tolist() == list(range(OUTAGE_START, OUTAGE_END + 4))
    # Slow page, factor 6 -> 0.6%. Start: 6 h window k/360 >= 0.006 <=> k >= 2.16 -> k = 3 (30 m: 3/30).
    #   End: 30 m window (30 - j)/30 >= 0.006 <=> j <= 29.82 -> last firing E + 29, stops at E + 30
    #   (the 6 h window holds 60/360 = 16.7% then).
    assert np.flatnonzero(slow).tolist() == list(range(OUTAGE_START + 2, OUTAGE_END + 29))
    # Ticket, factor 1 -> 0.1%. Start: the 3 d window reaches before the data, so it holds the 2,880 + k
    #   minutes available: k/(2,880 + k) >= 0.001 <=> k >= 2.883 -> k = 3 (3/2,883 = 0.104%; k = 2 gives
    #   2/2,882 = 0.069%). End: 6 h window (360 - j)/360 >= 0.001 <=> j <= 359.64 -> stops at E + 360
    #   (3 d window then 60/3,300 = 1.8%).
    assert np.flatnonzero(ticket).tolist() == list(range(OUTAGE_START + 2, OUTAGE_END + 359))


def test_full_outage_workbook_rules_merge_per_severity_and_backtest() -> None:
    # The two page rules overlap ([O+1, E+5) and [O+3, E+30)) and merge into one page [O+1, E+30): with
    # the default rules the page resets after 30 minutes, the slow rule's short window, not 5.
    episodes = replay(*outage(), START, TARGET, THIRTY_DAYS, workbook_rules())
    assert episodes == [
        AlertEpisode("page", at(OUTAGE_START + 1), at(OUTAGE_END + 30)),
        AlertEpisode("ticket", at(OUTAGE_START + 3), at(OUTAGE_END + 360)),
    ]
    page, ticket = backtest(episodes, [(at(OUTAGE_START), at(OUTAGE_END))], START, at(WEEK_MINUTES))
    assert (page.precision, page.recall, page.detection_minutes, page.reset_minutes) == (
        1.0,
        1.0,
        [1.0],
        [30.0],
    )
    assert ticket == BacktestResult("ticket", 1, 1, 1.0, 1.0, [3.0], [360.0], 1.0)


# --- quiet data, blips, slow burns ------------------------------------------------------------------------


def test_no_traffic_never_fires() -> None:
    good, total = steady(WEEK_MINUTES, per_minute=0)
    assert replay(good, total, START, TARGET, THIRTY_DAYS, workbook_rules(four_pairs=True)) == []
    assert replay(good[:0], total[:0], START, TARGET, THIRTY_DAYS, workbook_rules()) == []


def test_windows_without_traffic_do_not_fire_even_after_an_outage() -> None:
    # 10 minutes of 100% errors, then silence: once the 5 m window is empty (E + 5) the rule cannot fire,
    # though the 1 h window is still 100% bad; before that the 5 m window holds only bad minutes.
    good = np.zeros(120, dtype=np.int64)
    total = np.zeros(120, dtype=np.int64)
    total[:10] = 100
    assert replay(good, total, START, TARGET, THIRTY_DAYS, [page_fast()]) == [
        AlertEpisode("page", at(1), at(15))
    ]


def test_a_partly_bad_minute_in_heavy_traffic_does_not_page() -> None:
    # 10,000 requests a minute for 4 days; at minute 3 d (all windows full of data), half of one minute
    # fails: 5,000 bad. Largest bad shares: 1 h 5,000/600,000 = 0.83% < 1.44%; 6 h 5,000/3,600,000 =
    # 0.14% < 0.6%; 3 d 5,000/43,200,000 = 0.012% < 0.1%. Nothing fires (the 5 m window alone, at 10%,
    # would).
    good, total = steady(4 * DAY_MINUTES, per_minute=10_000)
    good[3 * DAY_MINUTES] = 5_000
    assert replay(good, total, START, TARGET, THIRTY_DAYS, workbook_rules(four_pairs=True)) == []


def test_a_fully_failed_minute_does_page() -> None:
    # One minute of 100% errors is 1/60 = 1.67% of the hour >= 1.44%: a 30-day 99.9% budget is 43.2
    # minutes of full outage, and one minute spends 2.3% of it, more than the 2% the rule allows in 1 h.
    # Fires at the boundary just after the minute, stops when it leaves the 5 m window (5 minutes on).
    good, total = steady(4 * DAY_MINUTES, per_minute=10_000)
    minute = 3 * DAY_MINUTES
    good[minute] = 0
    assert replay(good, total, START, TARGET, THIRTY_DAYS, [page_fast()]) == [
        AlertEpisode("page", at(minute + 1), at(minute + 6))
    ]


def test_windows_reaching_before_the_data_use_the_minutes_available() -> None:
    # The same half-failed minute as minute 10 of the data: at boundary 11 the "1 h" window holds 11
    # minutes, 5,000 bad of 110,000 = 4.5% >= 1.44%, and the 5 m window 5,000/50,000 = 10%: it pages.
    # It stops when the 5 m window drops it (boundary 16: all good).
    good, total = steady(DAY_MINUTES, per_minute=10_000)
    good[10] = 5_000
    assert replay(good, total, START, TARGET, THIRTY_DAYS, [page_fast()]) == [
        AlertEpisode("page", at(11), at(16))
    ]


# Slow burns: 3 days all good, then 600 minutes (10 h) at a steady error rate, then 2,000 good minutes.
# 100 requests a minute; O = minute 4,320, E = minute 4,920.
BURN_START, BURN_END = 3 * DAY_MINUTES, 3 * DAY_MINUTES + 600


def slow_burn(errors_per_minute: int) -> tuple[np.ndarray, np.ndarray]:
    good, total = steady(BURN_END + 2_000)
    good[BURN_START:BURN_END] = 100 - errors_per_minute
    return good, total


def test_one_percent_errors_for_ten_hours_pages_on_the_six_hour_rule_only() -> None:
    # Burn rate 10 (1% / 0.1%): below 14.4, so the 1 h rule never fires (no window exceeds 1%).
    # 6 h rule (0.6%): at O + k the 6 h window holds k bad minutes: k/36,000 >= 0.006 <=> k >= 216, exactly
    #   at k = 216 (216 errors of 36,000 is 0.6% on the nose, and equality fires); 30 m window 1%.
    #   End: 30 m window (30 - j)/3,000 >= 0.006 <=> j <= 12 -> stops at E + 13.
    # Ticket (3 d / 6 h, 0.1%): the 3 d window is full (4,320 minutes before O): k/432,000 >= 0.001 <=>
    #   k >= 432, exactly at 432. End: 6 h window (360 - j)/36,000 >= 0.001 <=> j <= 324 -> E + 325.
    good, total = slow_burn(1)
    fast, slow, _ = firing(good, total, TARGET, THIRTY_DAYS, workbook_rules())
    assert not fast.any()
    assert np.flatnonzero(slow)[0] + 1 == BURN_START + 216
    assert not slow[BURN_START + 216 - 2]  # boundary O + 215: 215/36,000 < 0.6%
    assert replay(good, total, START, TARGET, THIRTY_DAYS, workbook_rules()) == [
        AlertEpisode("page", at(BURN_START + 216), at(BURN_END + 13)),
        AlertEpisode("ticket", at(BURN_START + 432), at(BURN_END + 325)),
    ]


def test_two_percent_errors_for_ten_hours_pages_on_both_rules() -> None:
    # Burn rate 20 >= 14.4, so the 1 h rule fires too, and first.
    # 1 h rule (1.44%): 2k/6,000 >= 0.0144 <=> k >= 43.2 -> O + 44; 5 m window 2%.
    #   End: 5 m window 2(5 - j)/500 >= 0.0144 <=> j <= 1.4 -> stops at E + 2.
    # 6 h rule (0.6%): 2k/36,000 >= 0.006 <=> k >= 108, exactly at 108 (216/36,000 = 0.6%).
    #   End: 30 m window 2(30 - j)/3,000 >= 0.006 <=> j <= 21 -> E + 22. Merged page: [O + 44, E + 22).
    # Ticket (0.1%): 2k/432,000 >= 0.001 <=> k >= 216. End: 2(360 - j)/36,000 >= 0.001 <=> j <= 342
    #   -> E + 343.
    good, total = slow_burn(2)
    fast, slow, _ = firing(good, total, TARGET, THIRTY_DAYS, workbook_rules())
    assert np.flatnonzero(fast).tolist() == list(range(BURN_START + 44 - 1, BURN_END + 2 - 1))
    assert np.flatnonzero(slow).tolist() == list(range(BURN_START + 108 - 1, BURN_END + 22 - 1))
    episodes = replay(good, total, START, TARGET, THIRTY_DAYS, workbook_rules())
    assert episodes == [
        AlertEpisode("page", at(BURN_START + 44), at(BURN_END + 22)),
        AlertEpisode("ticket", at(BURN_START + 216), at(BURN_END + 343)),
    ]


def test_exact_threshold_is_not_lost_to_floats() -> None:
    # 6 errors of 1,000 at 99.9% is burn rate exactly 6, but in floats 0.006 / (1 - 0.999) is
    # 6.0000000000000053: a threshold test in floats can go either way. A one-window rule (1 m / 1 m)
    # spending 1/7,200 of the budget: factor 1/7,200 x 43,200 min / 1 min = 6.
    rule = BurnRateRule("page", MINUTE, MINUTE, Fraction(1, 7200))
    assert rule.factor(THIRTY_DAYS) == 6
    fires = firing(np.array([994, 995]), np.array([1000, 1000]), TARGET, THIRTY_DAYS, [rule])[0]
    assert fires.tolist() == [True, False]  # 6/1,000 = 0.6% fires (equality); 5/1,000 does not


def test_still_firing_at_the_end_of_the_data() -> None:
    good, total = steady(120)
    good[100:] = 0
    assert replay(good, total, START, TARGET, THIRTY_DAYS, [page_fast()]) == [
        AlertEpisode("page", at(101), None)
    ]


def test_rules_of_one_severity_that_touch_merge() -> None:
    # Target 0 makes the allowance 1, so a rule needs a bad share of its factor itself.
    # 100 requests a minute; minutes 5 and 6 are 100% bad, minute 7 is 40% bad, the rest good.
    # A (1 m / 1 m, share 1/86,400: factor 1/86,400 x 43,200 = 0.5) fires at boundaries 6 and 7, not at 8
    #   (minute 7: 40% < 50%): episode [6, 8).
    # B (1 h / 1 m, share 1/2,400: factor 1/2,400 x 720 = 0.3): at boundary 7 the hour (minutes 0-6) is
    #   200/700 = 28.6% < 30%; at 8 it is 240/800 = 30% exactly, and minute 7 alone 40%: fires at 8 only,
    #   episode [8, 9). A stops exactly when B starts: one uninterrupted page [6, 9).
    a = BurnRateRule("page", MINUTE, MINUTE, Fraction(1, 86_400))
    b = BurnRateRule("page", timedelta(hours=1), MINUTE, Fraction(1, 2_400))
    assert (a.factor(THIRTY_DAYS), b.factor(THIRTY_DAYS)) == (Fraction(1, 2), Fraction(3, 10))
    good, total = steady(30)
    good[5:7] = 0
    good[7] = 60
    fires_a, fires_b = firing(good, total, Decimal(0), THIRTY_DAYS, [a, b])
    assert np.flatnonzero(fires_a).tolist() == [5, 6]  # boundaries 6, 7
    assert np.flatnonzero(fires_b).tolist() == [7]  # boundary 8
    assert replay(good, total, START, Decimal(0), THIRTY_DAYS, [a, b]) == [AlertEpisode("page", at(6), at(9))]


# --- exactness against a brute-force replay ---------------------------------------------------------------


def brute_force(
    good: list[int], total: list[int], target: Decimal, period: timedelta, rule: BurnRateRule
) -> list[bool]:
    """The definition, one boundary and one window at a time, in Fractions."""
    factor = rule.factor(period)
    allowance = 1 - Fraction(target)

    def burns(i: int, window: timedelta) -> bool:
        lo = max(0, i - window // MINUTE)
        t = sum(total[lo:i])
        return t > 0 and Fraction(t - sum(good[lo:i]), t) / allowance >= factor

    return [burns(i, rule.long_window) and burns(i, rule.short_window) for i in range(1, len(total) + 1)]


@pytest.mark.parametrize("seed", range(5))
def test_cumulative_sums_match_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    minutes = 400
    total = rng.integers(0, 50, minutes)
    total[rng.random(minutes) < 0.2] = 0  # gaps without traffic
    good = total - rng.binomial(total, rng.choice([0.0, 0.01, 0.2, 1.0], minutes))
    # Short windows and a 1-day period so that thresholds are crossed both ways often.
    rules = [
        BurnRateRule("page", timedelta(minutes=60), timedelta(minutes=5), Fraction(2, 100)),
        BurnRateRule("ticket", timedelta(minutes=30), timedelta(minutes=30), Fraction(1, 3)),
    ]
    target = Decimal("0.95")
    got = firing(good, total, target, timedelta(days=1), rules)
    for rule, fires in zip(rules, got, strict=True):
        assert fires.tolist() == brute_force(good.tolist(), total.tolist(), target, timedelta(days=1), rule)


def test_huge_counts_and_fine_targets_do_not_overflow() -> None:
    # 10^17 requests a minute for 100 minutes and a 99.99999999% target (allowance 10^-10). The threshold
    # share is 14.4 x 10^-10 = 9/6,250,000,000; an hour holds 6 x 10^18 requests, and 6 x 10^18 x 9 (let
    # alone the 10^19 running total) is past int64's 9.2 x 10^18, so the comparison runs on Python ints.
    # Bad requests needed in the hour: 6 x 10^18 x 14.4 x 10^-10 = 8,640,000,000 (the 5 m window, 12 times
    # smaller, then has 12 times the share): that many in one minute fires, one fewer does not.
    target = Decimal("0.9999999999")
    total = np.full(100, 10**17, dtype=np.int64)
    good = total.copy()
    good[90] -= 8_640_000_000
    fires = firing(good, total, target, THIRTY_DAYS, [page_fast()])[0]
    assert np.flatnonzero(fires).tolist() == [90, 91, 92, 93, 94]  # boundaries 91..95 (5 m window)
    good[90] += 1
    assert not firing(good, total, target, THIRTY_DAYS, [page_fast()])[0].any()


def test_invalid_inputs_are_rejected() -> None:
    good, total = steady(10)
    with pytest.raises(TypeError, match="Decimal"):
        replay(good, total, START, 0.999, THIRTY_DAYS, workbook_rules())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        replay(good, total, START, Decimal(1), THIRTY_DAYS, workbook_rules())
    with pytest.raises(ValueError, match="0 <= good <= total"):
        replay(total + 1, total, START, TARGET, THIRTY_DAYS, workbook_rules())
    with pytest.raises(ValueError, match="integer counts"):
        replay(good.astype(float), total, START, TARGET, THIRTY_DAYS, workbook_rules())
    odd = BurnRateRule("page", timedelta(seconds=90), timedelta(seconds=90), Fraction(1, 100))
    with pytest.raises(ValueError, match="whole number of minutes"):
        replay(good, total, START, TARGET, THIRTY_DAYS, [odd])


def test_ninety_days_of_minutes_with_four_rules() -> None:
    # 129,600 minutes x 4 rules: one vectorised pass per window (tens of milliseconds), not timed here.
    # 2,000 requests a minute with 1 bad (0.05%, burn 0.5: never fires), and a 2-hour burst of 100 bad
    # (5%) on day 45, O = its first minute, E = its end. At O + k (k <= 120):
    # * 1 h page (1.44%): 100k + (60 - k) = 99k + 60 bad of 120,000 >= 1,728 <=> k >= 16.8 -> O + 17.
    # * 6 h page (0.6%) ends it: 30 m window at E + j: 100(30 - j) + j = 3,000 - 99j bad of 60,000 >= 360
    #   <=> j <= 26.7 -> stops at E + 27 (the 1 h rule's 5 m window stopped at E + 4).
    # * 3 d ticket (0.1%): 99k + 4,320 of 8,640,000 >= 8,640 <=> k >= 43.6 -> O + 44 (6 h: 99k + 360 of
    #   720,000, already >= 720); 6 h window at E + j (240 <= j <= 360) holds 360 - j burst minutes:
    #   36,000 - 99j of 720,000 >= 720 <=> j <= 356.4 -> stops at E + 357. The 1 d ticket (0.3%, from
    #   O + 73 to E + 114) lies inside it.
    minutes = 90 * DAY_MINUTES
    good, total = steady(minutes, per_minute=2_000)
    good -= 1
    burst = 45 * DAY_MINUTES
    good[burst : burst + 120] = 1_900
    episodes = replay(good, total, START, TARGET, THIRTY_DAYS, workbook_rules(four_pairs=True))
    assert episodes == [
        AlertEpisode("page", at(burst + 17), at(burst + 120 + 27)),
        AlertEpisode("ticket", at(burst + 44), at(burst + 120 + 357)),
    ]


# --- backtest ---------------------------------------------------------------------------------------------


def test_backtest_counts_false_alerts_and_missed_incidents() -> None:
    # Two weeks of data. Pages: one during incident 1, one with no incident (false); incident 2 has none.
    # precision 1/2, recall 1/2, 2 pages in 2 weeks = 1 a week. Detection 10 - 0 = 10 min; reset
    # 75 - 60 = 15 min. The ticket overlaps incident 2, which it detects: precision 1, recall 1/2.
    incidents = [(at(0), at(60)), (at(5_000), at(5_100))]
    episodes = [
        AlertEpisode("page", at(10), at(75)),
        AlertEpisode("page", at(3_000), at(3_030)),
        AlertEpisode("ticket", at(5_050), None),
    ]
    page, ticket = backtest(episodes, incidents, START, at(2 * WEEK_MINUTES))
    assert page == BacktestResult("page", 2, 1, 0.5, 0.5, [10.0], [15.0], 1.0)
    # Still firing at the end of the data: reset unknown (None). Detection 5,050 - 5,000 = 50.
    assert ticket == BacktestResult("ticket", 1, 1, 1.0, 0.5, [50.0], [None], 0.5)


def test_backtest_without_alerts_or_incidents_gives_none_not_nan() -> None:
    [page] = backtest([], [], START, at(WEEK_MINUTES))
    assert page == BacktestResult("page", 0, 0, None, None, [], [], 0.0)
    [page] = backtest([], [(at(0), at(10))], START, at(WEEK_MINUTES))
    assert (page.precision, page.recall) == (None, 0.0)


def test_backtest_matching_edges() -> None:
    incident = (at(100), at(101))
    # A one-minute outage is first seen at the boundary that ends it: an alert starting exactly at the
    # incident end detects it (detection 1 minute). An alert that stopped exactly when the incident began
    # does not overlap it; one already firing when it began detects it at once (floored at 0, not -20),
    # and its reset may be negative when it cleared before the incident ended.
    assert backtest([AlertEpisode("page", at(101), at(106))], [incident], START, at(200))[
        0
    ].detection_minutes == [1.0]
    assert backtest([AlertEpisode("page", at(50), at(100))], [incident], START, at(200))[0].recall == 0.0
    long_incident = (at(100), at(200))
    [page] = backtest([AlertEpisode("page", at(80), at(150))], [long_incident], START, at(300))
    assert (page.detection_minutes, page.reset_minutes) == ([0.0], [-50.0])


def test_backtest_severity_order_and_validation() -> None:
    episodes = [AlertEpisode("warn", at(1), at(2)), AlertEpisode("ticket", at(1), at(2))]
    assert [r.severity for r in backtest(episodes, [], START, at(10))] == ["page", "ticket", "warn"]
    with pytest.raises(ValueError, match="data_end"):
        backtest([], [], START, START)
    with pytest.raises(ValueError, match="incident end"):
        backtest([], [(at(5), at(5))], START, at(10))


# --- OpenSLO conditions, alertAfter and hysteresis -------------------------------------------------------


def test_sustained_needs_every_boundary_of_the_span() -> None:
    from pipelines.slo.alerting import sustained

    held = np.array([False, True, True, True, False, True])
    # minutes=2: held at i-2, i-1 and i; only i=3 has three in a row.
    assert sustained(held, 2).tolist() == [False, False, False, True, False, False]
    assert sustained(held, 0).tolist() == held.tolist()


def test_hysteresis_keeps_an_alert_until_quiet_long_enough() -> None:
    from pipelines.slo.alerting import with_hysteresis

    fires = np.array([True, False, True, False, False, False, False])
    # resolve_after 3 minutes: the alert resolves 3 boundaries later than it would otherwise; the blip at 1
    # is bridged, and after the last firing boundary (index 2) it stays active at 3, 4 and 5.
    assert with_hysteresis(fires, 3).tolist() == [True, True, True, True, True, True, False]
    assert with_hysteresis(fires, 0).tolist() == fires.tolist()


def test_condition_rule_alert_after_delays_the_alert() -> None:
    from pipelines.slo.alerting import ConditionRule

    # 60 clean minutes of 1000 requests, then 10 minutes of total failure, target 99.9%.
    good = np.array([1000] * 60 + [0] * 10)
    total = np.array([1000] * 70)
    rule = ConditionRule(
        "fast-burn", "page", "gte", Fraction(144, 10), timedelta(hours=1), timedelta(minutes=5)
    )
    (fires,) = firing(good, total, Decimal("0.999"), timedelta(days=30), [rule])
    # Boundary 61 (index 60) sees 1000 bad of 60,000: burn (1/60)/0.001 = 16.7 >= 14.4, and so does every
    # later boundary. alertAfter 5m: held at boundaries 61..66 -> first fires at boundary 66 (index 65).
    assert np.flatnonzero(fires).tolist() == list(range(65, 70))
    instant = ConditionRule("fast-burn", "page", "gte", Fraction(144, 10), timedelta(hours=1))
    (now,) = firing(good, total, Decimal("0.999"), timedelta(days=30), [instant])
    assert np.flatnonzero(now).tolist() == list(range(60, 70))


@pytest.mark.parametrize(
    ("op", "threshold", "fires"),
    [
        ("gte", "14.4", True),
        ("gt", "14.4", False),
        ("lte", "14.4", True),
        ("lt", "14.4", False),
        ("lt", "20", True),
    ],
)
def test_condition_rule_operators_at_the_exact_threshold(op: str, threshold: str, fires: bool) -> None:
    from pipelines.slo.alerting import ConditionRule

    # 144 bad of 10,000 at target 99.9%: burn = 0.0144 / 0.001 = 14.4 exactly.
    rule = ConditionRule("c", "page", op, Fraction(threshold), timedelta(minutes=1))
    (result,) = firing(
        np.array([10_000 - 144]), np.array([10_000]), Decimal("0.999"), timedelta(days=30), [rule]
    )
    assert result.tolist() == [fires]


def test_condition_rule_without_traffic_never_fires_even_for_lt() -> None:
    from pipelines.slo.alerting import ConditionRule

    rule = ConditionRule("c", "page", "lt", Fraction(1), timedelta(minutes=5))
    (result,) = firing(np.array([0, 0]), np.array([0, 0]), Decimal("0.99"), timedelta(days=30), [rule])
    assert result.tolist() == [False, False]


def test_condition_rule_rejects_bad_values() -> None:
    from pipelines.slo.alerting import ConditionRule

    with pytest.raises(ValueError, match="op"):
        ConditionRule("c", "page", "eq", Fraction(1), timedelta(hours=1))
    with pytest.raises(ValueError, match="threshold"):
        ConditionRule("c", "page", "gte", Fraction(0), timedelta(hours=1))
    with pytest.raises(ValueError, match="alert_after"):
        ConditionRule("c", "page", "gte", Fraction(1), timedelta(hours=1), timedelta(seconds=30))


def test_replay_with_resolve_after_merges_flaps_and_delays_the_reset() -> None:
    from pipelines.slo.alerting import ConditionRule

    # One-minute window at 99%: minutes 0,1 bad, 2 good, 3 bad, then good. Without hysteresis the alert
    # fires at boundaries 1,2 and 4 (two episodes); with resolve_after 3m it is one episode from boundary 1
    # that resolves 3 minutes later than the plain end (5): at boundary 8.
    good = np.array([0, 0, 10, 0, 10, 10, 10, 10, 10])
    total = np.array([10] * 9)
    rule = ConditionRule("c", "page", "gte", Fraction(1), timedelta(minutes=1))
    start = datetime(2026, 1, 1)
    plain = replay(good, total, start, Decimal("0.99"), timedelta(days=30), [rule])
    assert [(e.start.minute, e.end.minute if e.end else None) for e in plain] == [(1, 3), (4, 5)]
    held = replay(
        good, total, start, Decimal("0.99"), timedelta(days=30), [rule], resolve_after=timedelta(minutes=3)
    )
    assert [(e.start.minute, e.end.minute if e.end else None) for e in held] == [(1, 8)]


def test_trailing_start_finds_the_current_run() -> None:
    from pipelines.slo.alerting import trailing_start

    start = datetime(2026, 1, 1)
    # Element i is boundary start + (i + 1) minutes; the trailing run starts at index 3 -> 4 minutes in.
    assert trailing_start(np.array([True, False, False, True, True]), start) == start + timedelta(minutes=4)
    assert trailing_start(np.array([True, True]), start) == start + timedelta(minutes=1)
    assert trailing_start(np.array([True, False]), start) is None

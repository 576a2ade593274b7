"""OpenSLO time windows: durations, rolling and calendar periods, DST edges, parsing from a spec.

Every expected boundary is worked out by hand in the comments next to it; where a brute-force check is
possible (walking minute by minute through local time), it is done as well, independently of the code
under test.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from pipelines.slo import windows
from pipelines.slo.windows import (
    CalendarWindow,
    Duration,
    RollingWindow,
    Window,
    WindowError,
    parse_duration,
    window_from_openslo,
)

MINUTE = timedelta(minutes=1)
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def local(instant: datetime, zone: str) -> datetime:
    """Naive UTC -> naive wall time, the test's own conversion (not the module's)."""
    return instant.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def minutes(start: datetime, end: datetime) -> list[datetime]:
    out, t = [], start
    while t < end:
        out.append(t)
        t += MINUTE
    return out


# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "unit", "fixed"),
    [
        ("5m", 5, "m", timedelta(minutes=5)),
        ("1h", 1, "h", timedelta(hours=1)),
        ("28d", 28, "d", timedelta(days=28)),
        ("4w", 4, "w", timedelta(days=28)),
        ("1M", 1, "M", None),
        ("1Q", 1, "Q", None),
        ("1Y", 1, "Y", None),
    ],
)
def test_durations_parse_and_round_trip(text: str, count: int, unit: str, fixed: timedelta | None) -> None:
    duration = parse_duration(text)
    assert duration == Duration(count, unit)
    assert duration.fixed() == fixed
    assert str(duration) == text
    assert parse_duration(str(duration)) == duration


def test_minutes_and_months_are_different_units() -> None:
    # `m` is 5 minutes; `M` is 5 calendar months, which has no fixed length.
    assert parse_duration("5m").fixed() == timedelta(minutes=5)
    assert parse_duration("5M") == Duration(5, "M")
    assert parse_duration("5M").fixed() is None
    assert parse_duration("5M").months() == 5
    assert parse_duration("2Q").months() == 6
    assert parse_duration("1Y").months() == 12
    assert parse_duration(" 28d ") == Duration(28, "d")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.5h", "duration '1.5h': expected a whole number followed by m, h, d, w, M, Q or Y"),
        ("0d", "duration '0d': expected a count of at least 1"),
        ("-1d", "duration '-1d': expected a count of at least 1"),
        ("d", "duration 'd': expected a whole number followed by"),
        ("28", "duration '28': expected a whole number followed by"),
        ("1x", "duration '1x': expected a whole number followed by"),
        ("28D", "duration '28D': expected"),
        ("1 d", "duration '1 d': expected"),
        ("028d", "duration '028d': expected"),
        ("", "duration '': expected"),
        (28, "duration 28: expected"),
    ],
)
def test_bad_durations_are_rejected_with_what_was_expected(text: object, message: str) -> None:
    with pytest.raises(WindowError) as info:
        parse_duration(text)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_duration_fields_are_validated() -> None:
    with pytest.raises(WindowError, match="positive whole number"):
        Duration(0, "d")
    with pytest.raises(WindowError, match="positive whole number"):
        Duration(True, "d")  # type: ignore[arg-type]
    with pytest.raises(WindowError, match="one of m, h, d, w, M, Q or Y"):
        Duration(1, "s")


# --- rolling windows -----------------------------------------------------------------------------


def test_rolling_bounds_by_hand() -> None:
    # 28 days before 2026-03-29 12:00 is 2026-03-01 12:00 (March 29 - 28 = March 1).
    window = RollingWindow(parse_duration("28d"))
    as_of = datetime(2026, 3, 29, 12)
    assert window.bounds(as_of) == (datetime(2026, 3, 1, 12), as_of)
    assert window.period(as_of) == window.bounds(as_of)
    assert RollingWindow(parse_duration("90m")).bounds(as_of) == (datetime(2026, 3, 29, 10, 30), as_of)


def test_rolling_window_is_absolute_time_across_dst() -> None:
    # Berlin springs forward on 2026-03-29 at 01:00 UTC, inside this window. A rolling window is absolute
    # time, so it still holds exactly 28 × 1440 = 40,320 minutes, although in Berlin wall time it spans
    # 2026-03-01 13:00 CET .. 2026-03-29 14:00 CEST, i.e. 28 days and 1 hour on the clock.
    window = RollingWindow(parse_duration("28d"))
    as_of = datetime(2026, 3, 29, 12)
    start, end = window.bounds(as_of)
    inside = [t for t in minutes(datetime(2026, 2, 25), datetime(2026, 3, 31)) if start <= t < end]
    assert len(inside) == 28 * 1440
    assert local(end, BERLIN) - local(start, BERLIN) == timedelta(days=28, hours=1)


def test_rolling_window_rejects_calendar_units() -> None:
    for text in ("1M", "1Q", "1Y"):
        with pytest.raises(WindowError, match="a rolling window needs minutes, hours, days or weeks"):
            RollingWindow(parse_duration(text))


def test_aware_instants_are_rejected() -> None:
    aware = datetime(2026, 3, 29, 12, tzinfo=UTC)
    with pytest.raises(WindowError, match="naive UTC"):
        RollingWindow(parse_duration("1d")).bounds(aware)
    with pytest.raises(WindowError, match="naive UTC"):
        CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1), BERLIN).period(aware)
    with pytest.raises(WindowError, match="naive datetime"):
        CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1, tzinfo=UTC), BERLIN)


# --- calendar windows ----------------------------------------------------------------------------


def test_calendar_month_in_berlin_by_hand_and_minute_by_minute() -> None:
    # March 1 00:00 CET (UTC+1) = Feb 28 23:00 UTC; April 1 00:00 CEST (UTC+2) = March 31 22:00 UTC.
    # Length: 31 days minus the hour lost on March 29 = 31 × 1440 − 60 = 44,580 minutes.
    window = CalendarWindow(parse_duration("1M"), datetime(2026, 1, 1), BERLIN)
    as_of = datetime(2026, 3, 15, 12)
    start, end = window.period(as_of)
    assert (start, end) == (datetime(2026, 2, 28, 23), datetime(2026, 3, 31, 22))
    assert (end - start) // MINUTE == 44_580
    assert window.bounds(as_of) == (datetime(2026, 2, 28, 23), as_of)

    # Independent check: every UTC minute whose Berlin wall time is in March, and only those.
    march = [t for t in minutes(datetime(2026, 2, 27), datetime(2026, 4, 3)) if local(t, BERLIN).month == 3]
    assert len(march) == 44_580
    assert march[0] == start
    assert march[-1] + MINUTE == end
    assert all(start <= t < end for t in march)


def test_calendar_day_across_us_dst_changes() -> None:
    window = CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1), NEW_YORK)
    # Fall back: Nov 1 00:00 EDT (UTC−4) = 04:00 UTC; Nov 2 00:00 EST (UTC−5) = 05:00 UTC -> 25 hours.
    start, end = window.period(datetime(2026, 11, 1, 12))
    assert (start, end) == (datetime(2026, 11, 1, 4), datetime(2026, 11, 2, 5))
    assert end - start == timedelta(hours=25)
    # Spring forward: Mar 8 00:00 EST = 05:00 UTC; Mar 9 00:00 EDT = 04:00 UTC -> 23 hours.
    start, end = window.period(datetime(2026, 3, 8, 12))
    assert (start, end) == (datetime(2026, 3, 8, 5), datetime(2026, 3, 9, 4))
    assert end - start == timedelta(hours=23)


def test_calendar_week_anchored_on_a_monday() -> None:
    # 2026-01-05 is a Monday (Jan 1 2026 is a Thursday). Thursday 2026-03-19 is in the week of Monday
    # March 16 (Jan 5 + 70 days: 26 days to Jan 31, 28 in February, 16 in March).
    window = CalendarWindow(parse_duration("1w"), datetime(2026, 1, 5), "UTC")
    assert window.period(datetime(2026, 3, 19, 10)) == (datetime(2026, 3, 16), datetime(2026, 3, 23))
    # In Berlin the week of Monday March 23 contains the spring change: Mon 23 00:00 CET = 22 23:00 UTC,
    # Mon 30 00:00 CEST = 29 22:00 UTC, so 7 days minus an hour.
    berlin = CalendarWindow(parse_duration("1w"), datetime(2026, 1, 5), BERLIN)
    start, end = berlin.period(datetime(2026, 3, 26))
    assert (start, end) == (datetime(2026, 3, 22, 23), datetime(2026, 3, 29, 22))
    assert end - start == timedelta(days=7) - timedelta(hours=1)
    # Two-week grid: Jan 5 + 2 × 35 days = Mar 16 -> [Mar 16, Mar 30).
    fortnight = CalendarWindow(parse_duration("2w"), datetime(2026, 1, 5), "UTC")
    assert fortnight.period(datetime(2026, 3, 19)) == (datetime(2026, 3, 16), datetime(2026, 3, 30))


def test_calendar_quarter_anchored_on_january_first() -> None:
    window = CalendarWindow(parse_duration("1Q"), datetime(2026, 1, 1), NEW_YORK)
    # Q2 = Apr 1 00:00 EDT (04:00 UTC) .. Jul 1 00:00 EDT (04:00 UTC).
    assert window.period(datetime(2026, 5, 20)) == (datetime(2026, 4, 1, 4), datetime(2026, 7, 1, 4))
    # Q1 starts Jan 1 00:00 EST = 05:00 UTC. 2026-04-01 03:59 UTC is still Mar 31 23:59 EDT: Q1.
    assert window.period(datetime(2026, 4, 1, 3, 59)) == (datetime(2026, 1, 1, 5), datetime(2026, 4, 1, 4))
    # Q4 ends Jan 1 2027 00:00 EST = 05:00 UTC.
    assert window.period(datetime(2026, 12, 31, 23)) == (datetime(2026, 10, 1, 4), datetime(2027, 1, 1, 5))


def test_calendar_year() -> None:
    window = CalendarWindow(parse_duration("1Y"), datetime(2022, 1, 1), "UTC")
    assert window.period(datetime(2026, 6, 30)) == (datetime(2026, 1, 1), datetime(2027, 1, 1))
    # Anchored on Feb 29: 2021 clamps to Feb 28, 2024 (anchor + 4 years) is Feb 29 again.
    leap = CalendarWindow(parse_duration("1Y"), datetime(2020, 2, 29), "UTC")
    assert leap.period(datetime(2021, 6, 1)) == (datetime(2021, 2, 28), datetime(2022, 2, 28))
    assert leap.period(datetime(2024, 3, 1)) == (datetime(2024, 2, 29), datetime(2025, 2, 28))


def test_month_end_anchor_clamps_without_drifting() -> None:
    # anchor + k months, clamped: Jan 31, Feb 28, Mar 31, Apr 30, May 31, Jun 30. Repeated addition
    # would have given Feb 28, Mar 28, Apr 28, ...
    window = CalendarWindow(parse_duration("1M"), datetime(2026, 1, 31), "UTC")
    assert window.period(datetime(2026, 3, 15)) == (datetime(2026, 2, 28), datetime(2026, 3, 31))
    assert window.period(datetime(2026, 5, 1)) == (datetime(2026, 4, 30), datetime(2026, 5, 31))
    assert window.periods(datetime(2026, 1, 31), datetime(2026, 6, 30)) == [
        (datetime(2026, 1, 31), datetime(2026, 2, 28)),
        (datetime(2026, 2, 28), datetime(2026, 3, 31)),
        (datetime(2026, 3, 31), datetime(2026, 4, 30)),
        (datetime(2026, 4, 30), datetime(2026, 5, 31)),
        (datetime(2026, 5, 31), datetime(2026, 6, 30)),
    ]
    # 25 months on: Feb 2028 is a leap February -> Feb 29 .. Mar 31.
    assert window.period(datetime(2028, 3, 1)) == (datetime(2028, 2, 29), datetime(2028, 3, 31))
    # And backwards (k = -1, -2): Dec 31 2025, Nov 30 2025.
    assert window.period(datetime(2025, 12, 15)) == (datetime(2025, 11, 30), datetime(2025, 12, 31))


def test_as_of_before_the_anchor() -> None:
    # k = -6: July 2025 in Berlin, Jul 1 00:00 CEST = Jun 30 22:00 UTC .. Aug 1 00:00 CEST = Jul 31 22:00.
    window = CalendarWindow(parse_duration("1M"), datetime(2026, 1, 1), BERLIN)
    assert window.period(datetime(2025, 7, 10, 12)) == (datetime(2025, 6, 30, 22), datetime(2025, 7, 31, 22))
    # Day grid anchored 2026-01-01 in UTC, 1000 days earlier.
    days = CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1), "UTC")
    assert days.period(datetime(2023, 4, 7, 6)) == (datetime(2023, 4, 7), datetime(2023, 4, 8))
    # Hour grid anchored at 00:30 in Kolkata (UTC+5:30), i.e. 2025-12-31 19:00 UTC; hours step in absolute
    # time, so every period starts on a whole UTC hour, also half a year before the anchor.
    hours = CalendarWindow(parse_duration("1h"), datetime(2026, 1, 1, 0, 30), "Asia/Kolkata")
    assert hours.period(datetime(2025, 6, 1, 12, 15)) == (datetime(2025, 6, 1, 12), datetime(2025, 6, 1, 13))


def test_boundary_instant_belongs_to_the_new_period() -> None:
    window = CalendarWindow(parse_duration("1M"), datetime(2026, 1, 1), BERLIN)
    # April 1 00:00 CEST = March 31 22:00 UTC starts April; a microsecond earlier is still March.
    april = (datetime(2026, 3, 31, 22), datetime(2026, 4, 30, 22))
    assert window.period(datetime(2026, 3, 31, 22)) == april
    assert window.period(datetime(2026, 3, 31, 21, 59, 59, 999_999))[1] == datetime(2026, 3, 31, 22)
    assert window.bounds(datetime(2026, 3, 31, 22)) == (datetime(2026, 3, 31, 22), datetime(2026, 3, 31, 22))
    # The anchor itself is the start of period 0.
    assert window.period(datetime(2025, 12, 31, 23))[0] == datetime(2025, 12, 31, 23)


def test_periods_over_2026_q1() -> None:
    months = CalendarWindow(parse_duration("1M"), datetime(2026, 1, 1), "UTC")
    jan = (datetime(2026, 1, 1), datetime(2026, 2, 1))
    feb = (datetime(2026, 2, 1), datetime(2026, 3, 1))
    mar = (datetime(2026, 3, 1), datetime(2026, 4, 1))
    assert months.periods(datetime(2026, 1, 1), datetime(2026, 4, 1)) == [jan, feb, mar]
    # Partial edges still bring in the whole period they overlap.
    assert months.periods(datetime(2026, 1, 15), datetime(2026, 3, 10)) == [jan, feb, mar]
    # Half-open: ending on March 1 does not touch March; an empty range has no periods.
    assert months.periods(datetime(2026, 1, 1), datetime(2026, 3, 1)) == [jan, feb]
    assert months.periods(datetime(2026, 1, 1), datetime(2026, 1, 1)) == []
    assert months.periods(datetime(2026, 2, 1), datetime(2026, 1, 1)) == []
    # Berlin months against UTC Q1: January starts Dec 31 23:00 UTC (contains Jan 1 00:00 UTC), and
    # April starts Mar 31 22:00 UTC, which is before the end (Apr 1 00:00 UTC), so it overlaps too.
    berlin = CalendarWindow(parse_duration("1M"), datetime(2026, 1, 1), BERLIN)
    assert berlin.periods(datetime(2026, 1, 1), datetime(2026, 4, 1)) == [
        (datetime(2025, 12, 31, 23), datetime(2026, 1, 31, 23)),
        (datetime(2026, 1, 31, 23), datetime(2026, 2, 28, 23)),
        (datetime(2026, 2, 28, 23), datetime(2026, 3, 31, 22)),
        (datetime(2026, 3, 31, 22), datetime(2026, 4, 30, 22)),
    ]


# --- nonexistent and ambiguous wall times --------------------------------------------------------


def test_wall_time_in_the_gap_resolves_to_the_change() -> None:
    ny = ZoneInfo(NEW_YORK)
    # New York springs forward at 2026-03-08 02:00 EST = 07:00 UTC; 02:00..02:59:59 do not exist and
    # all resolve to 07:00 UTC (= 03:00 EDT), as does 03:00 itself.
    for wall in (
        datetime(2026, 3, 8, 2),
        datetime(2026, 3, 8, 2, 30),
        datetime(2026, 3, 8, 2, 59, 59, 999_999),
    ):
        assert windows._to_utc(wall, ny) == datetime(2026, 3, 8, 7)
    assert windows._to_utc(datetime(2026, 3, 8, 3), ny) == datetime(2026, 3, 8, 7)
    assert windows._to_utc(datetime(2026, 3, 8, 1, 59), ny) == datetime(2026, 3, 8, 6, 59)
    # Lord Howe moves only 30 minutes: 2026-10-04 02:00 at UTC+10:30 = Oct 3 15:30 UTC; 02:15 is skipped.
    assert windows._to_utc(datetime(2026, 10, 4, 2, 15), ZoneInfo("Australia/Lord_Howe")) == datetime(
        2026, 10, 3, 15, 30
    )
    # Ambiguous 01:30 on 2026-11-01 in New York: the first occurrence is EDT (UTC−4) -> 05:30 UTC.
    assert windows._to_utc(datetime(2026, 11, 1, 1, 30), ny) == datetime(2026, 11, 1, 5, 30)


def test_daily_grid_anchored_in_the_gap() -> None:
    # Anchored at 02:30 New York time. Mar 7 02:30 EST = 07:30 UTC; Mar 8 02:30 does not exist -> 03:00 EDT
    # = 07:00 UTC; Mar 9 02:30 EDT = 06:30 UTC. Both days around the change are 23.5 hours in UTC.
    window = CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1, 2, 30), NEW_YORK)
    assert window.period(datetime(2026, 3, 8, 6)) == (datetime(2026, 3, 7, 7, 30), datetime(2026, 3, 8, 7))
    assert window.period(datetime(2026, 3, 8, 7)) == (datetime(2026, 3, 8, 7), datetime(2026, 3, 9, 6, 30))


def test_daily_grid_anchored_in_the_overlap() -> None:
    # Anchored at 01:30 New York time; Nov 1 01:30 happens twice and the first (EDT) is used: 05:30 UTC.
    # Oct 31 01:30 EDT = 05:30 UTC, Nov 2 01:30 EST = 06:30 UTC: 24 hours, then 25.
    window = CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1, 1, 30), NEW_YORK)
    assert window.period(datetime(2026, 11, 1, 5)) == (
        datetime(2026, 10, 31, 5, 30),
        datetime(2026, 11, 1, 5, 30),
    )
    # 06:00 UTC is the second 01:00 (EST), after the first 01:30: already the Nov 1 period.
    assert window.period(datetime(2026, 11, 1, 6)) == (
        datetime(2026, 11, 1, 5, 30),
        datetime(2026, 11, 2, 6, 30),
    )


def test_skipped_local_day_gives_an_empty_period_that_periods_leaves_out() -> None:
    # Samoa skipped 2011-12-30: Dec 29 23:59:59 UTC−10 was followed by Dec 31 00:00 UTC+14, both at
    # Dec 30 10:00 UTC. Dec 29 00:00 −10 = Dec 29 10:00 UTC; Jan 1 00:00 +14 = Dec 31 10:00 UTC.
    window = CalendarWindow(parse_duration("1d"), datetime(2011, 12, 1), "Pacific/Apia")
    dec29 = (datetime(2011, 12, 29, 10), datetime(2011, 12, 30, 10))
    dec31 = (datetime(2011, 12, 30, 10), datetime(2011, 12, 31, 10))
    assert window.period(datetime(2011, 12, 30, 9, 59)) == dec29
    assert window.period(datetime(2011, 12, 30, 10)) == dec31
    assert window.periods(datetime(2011, 12, 29, 12), datetime(2011, 12, 30, 12)) == [dec29, dec31]


# --- efficiency and consistency ------------------------------------------------------------------


def test_period_does_not_walk_from_the_anchor(monkeypatch: pytest.MonkeyPatch) -> None:
    # 60 years of days from the anchor: the estimate lands within a step, so only a handful of
    # boundaries are computed (2 for the answer, up to ~2 more for the correction).
    calls = 0
    original = CalendarWindow._boundary

    def counting(self: CalendarWindow, k: int) -> datetime:
        nonlocal calls
        calls += 1
        return original(self, k)

    monkeypatch.setattr(CalendarWindow, "_boundary", counting)
    for text in ("1d", "1M", "1w", "5m"):
        window = CalendarWindow(parse_duration(text), datetime(2000, 1, 31, 2, 30), NEW_YORK)
        for as_of in (datetime(2060, 3, 8, 7), datetime(1950, 11, 1, 6), datetime(2026, 3, 31, 5)):
            calls = 0
            window.period(as_of)
            assert calls <= 6, (text, as_of, calls)


PROPERTY_WINDOWS: list[CalendarWindow] = [
    CalendarWindow(parse_duration("1M"), datetime(2026, 1, 1), BERLIN),
    CalendarWindow(parse_duration("1M"), datetime(2026, 1, 31, 2, 30), BERLIN),
    CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1), NEW_YORK),
    CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1, 2, 30), NEW_YORK),
    CalendarWindow(parse_duration("3d"), datetime(2026, 1, 1, 1, 30), NEW_YORK),
    CalendarWindow(parse_duration("1Q"), datetime(2026, 1, 1), NEW_YORK),
    CalendarWindow(parse_duration("1Y"), datetime(2020, 2, 29, 2, 15), "Australia/Lord_Howe"),
    CalendarWindow(parse_duration("1w"), datetime(2026, 1, 5), "Australia/Lord_Howe"),
    CalendarWindow(parse_duration("7h"), datetime(2026, 1, 1, 0, 30), "Asia/Kolkata"),
    CalendarWindow(parse_duration("5m"), datetime(2026, 1, 1, 0, 2, 17), "UTC"),
    CalendarWindow(parse_duration("1d"), datetime(2011, 12, 1), "Pacific/Apia"),
]


@pytest.mark.parametrize(
    "window", PROPERTY_WINDOWS, ids=lambda w: f"{w.duration}-{w.time_zone}-{w.start_time}"
)
def test_periods_contain_as_of_and_tile_time(window: CalendarWindow) -> None:
    rng = random.Random(20260329)
    low, high = datetime(2000, 1, 1), datetime(2040, 1, 1)
    span_us = (high - low) // timedelta(microseconds=1)
    for _ in range(500):
        as_of = low + timedelta(microseconds=rng.randrange(span_us))
        start, end = window.period(as_of)
        assert start <= as_of < end
        # The next period starts where this one ends, and the one before ends where this one starts.
        assert window.period(end)[0] == end
        assert window.period(start - timedelta(microseconds=1))[1] == start
        assert window.bounds(as_of) == (start, as_of)


def test_midnight_grids_match_the_local_calendar() -> None:
    # An oracle independent of the module: midnight never falls in a DST gap in Berlin or New York, so
    # the period is simply local midnight of the first of the month (or of the day), converted to UTC.
    rng = random.Random(7)
    months = CalendarWindow(parse_duration("1M"), datetime(2026, 1, 1), BERLIN)
    days = CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1), NEW_YORK)

    def to_utc(wall: datetime, zone: str) -> datetime:
        return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)

    for _ in range(500):
        as_of = datetime(2000, 1, 1) + timedelta(minutes=rng.randrange(40 * 365 * 1440))
        wall = local(as_of, BERLIN)
        first = wall.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
        assert months.period(as_of) == (to_utc(first, BERLIN), to_utc(following, BERLIN))
        wall = local(as_of, NEW_YORK)
        midnight = wall.replace(hour=0, minute=0, second=0, microsecond=0)
        assert days.period(as_of) == (
            to_utc(midnight, NEW_YORK),
            to_utc(midnight + timedelta(days=1), NEW_YORK),
        )


def test_periods_match_repeated_period_calls() -> None:
    window = CalendarWindow(parse_duration("1d"), datetime(2026, 1, 1, 2, 30), NEW_YORK)
    listed = window.periods(datetime(2026, 1, 1), datetime(2027, 1, 1))
    assert listed[0][0] <= datetime(2026, 1, 1) < listed[0][1]
    assert listed[-1][0] < datetime(2027, 1, 1) <= listed[-1][1]
    for (_, end), (start, _) in itertools.pairwise(listed):
        assert end == start
    # 2026-01-01 00:00 UTC is Dec 31 2025 19:00 EST, in the period of local day Dec 31 2025 (from 02:30);
    # the end, 2027-01-01 00:00 UTC, is in the period of Dec 31 2026: 1 + 365 local days = 366 periods.
    assert len(listed) == 366
    assert all(window.period(start) == (start, end) for start, end in listed)


# --- from OpenSLO --------------------------------------------------------------------------------


def test_window_from_openslo_rolling() -> None:
    window = window_from_openslo({"duration": "28d", "isRolling": True})
    assert window == RollingWindow(Duration(28, "d"))


def test_window_from_openslo_calendar() -> None:
    spec = {"duration": "1M", "calendar": {"startTime": "2022-01-01 12:00:00", "timeZone": NEW_YORK}}
    assert window_from_openslo(spec) == CalendarWindow(Duration(1, "M"), datetime(2022, 1, 1, 12), NEW_YORK)
    iso = {"duration": "1w", "isRolling": False, "calendar": {"startTime": "2022-01-03T00:00:00"}}
    # Missing timeZone means UTC.
    assert window_from_openslo(iso) == CalendarWindow(Duration(1, "w"), datetime(2022, 1, 3), "UTC")


def test_window_from_openslo_accepts_the_datetime_yaml_makes() -> None:
    # Unquoted, YAML reads `2022-01-01 12:00:00` as a datetime rather than a string.
    spec = yaml.safe_load(
        "duration: 1Q\n"
        "isRolling: false\n"
        "calendar:\n"
        "  startTime: 2022-01-01 12:00:00\n"
        "  timeZone: Europe/Berlin\n"
    )
    assert isinstance(spec["calendar"]["startTime"], datetime)
    assert window_from_openslo(spec) == CalendarWindow(Duration(1, "Q"), datetime(2022, 1, 1, 12), BERLIN)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"duration": "28d", "isRolling": True, "calendar": {"startTime": "2022-01-01 00:00:00"}},
            "calendar is given with isRolling: true",
        ),
        (
            {"duration": "1M", "calendar": {"startTime": "2022-01-01 00:00:00", "timeZone": "Mars/Olympus"}},
            "calendar.timeZone: unknown time zone 'Mars/Olympus'",
        ),
        (
            {"duration": "1M", "calendar": {"startTime": "2022-01-01 00:00:00", "timeZone": ""}},
            "calendar.timeZone: unknown time zone ''",
        ),
        (
            {"duration": "1M", "calendar": {"startTime": "2022-01-01 00:00:00", "timeZone": "../etc"}},
            "calendar.timeZone: unknown time zone '../etc'",
        ),
        ({"duration": "1M", "isRolling": True}, "duration '1M': a rolling window needs minutes, hours, days"),
        ({"duration": "1.5h", "isRolling": True}, "duration '1.5h': expected a whole number"),
        ({"isRolling": True}, "duration: required"),
        ({"duration": "1M"}, "calendar: required unless isRolling: true"),
        ({"duration": "1M", "isRolling": False}, "calendar: required unless isRolling: true"),
        ({"duration": "1d", "isRolling": "yes"}, "isRolling: expected true or false, got 'yes'"),
        ({"duration": "1d", "isrolling": True}, "isrolling: unknown field"),
        ({"duration": "1M", "calendar": "2022-01-01"}, "calendar: expected a mapping"),
        ({"duration": "1M", "calendar": {"timeZone": "UTC"}}, "calendar.startTime: required"),
        (
            {"duration": "1M", "calendar": {"startTime": "2022-01-01 00:00:00", "timezone": "UTC"}},
            "calendar.timezone: unknown field",
        ),
        (
            {"duration": "1M", "calendar": {"startTime": "2022-01-01T00:00:00Z"}},
            "calendar.startTime '2022-01-01T00:00:00Z': expected local wall time 'YYYY-MM-DD HH:MM:SS' or "
            "'YYYY-MM-DDTHH:MM:SS' without an offset",
        ),
        (
            {"duration": "1M", "calendar": {"startTime": "2022-01-01 00:00:00+01:00"}},
            "calendar.startTime '2022-01-01 00:00:00+01:00': expected local wall time",
        ),
        (
            {"duration": "1M", "calendar": {"startTime": "2022-02-30 00:00:00"}},
            "calendar.startTime '2022-02-30 00:00:00': not a valid date and time",
        ),
        (
            {"duration": "1M", "calendar": {"startTime": "2022-01-01"}},
            "calendar.startTime '2022-01-01': expected",
        ),
        (["1M"], "timeWindow: expected a mapping"),
    ],
)
def test_window_from_openslo_errors_name_the_field(spec: object, message: str) -> None:
    with pytest.raises(WindowError) as info:
        window_from_openslo(spec)  # type: ignore[arg-type]
    assert str(info.value).startswith(message), str(info.value)


def test_window_error_is_a_value_error() -> None:
    # Callers that already catch ValueError from spec parsing keep working.
    assert issubclass(WindowError, ValueError)
    window: Window = window_from_openslo({"duration": "1h", "isRolling": True})
    assert isinstance(window, RollingWindow)

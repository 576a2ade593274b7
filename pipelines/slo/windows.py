"""OpenSLO v1 time windows: rolling and calendar-aligned, with exact period boundaries.

A ``timeWindow`` is either rolling (``duration`` with ``isRolling: true``) or calendar-aligned
(``duration`` with ``calendar: {startTime, timeZone}``). Durations are a positive whole number followed
by ``m`` minutes, ``h`` hours, ``d`` days, ``w`` weeks, ``M`` months, ``Q`` quarters or ``Y`` years.

Every datetime going in or out is naive UTC (the warehouse convention), and every interval is half-open
``[start, end)``, so an instant exactly on a boundary belongs to the period that starts there.

Rolling windows are absolute time: ``[as_of - duration, as_of)``, where a day is always 24 hours. Only
m, h, d and w are allowed, because "the last month" has no fixed length.

Calendar windows cut time into a grid anchored at ``startTime``, a wall time in ``timeZone``: period
``k`` (any integer, so instants before the anchor work too) is ``[anchor + k*duration,
anchor + (k+1)*duration)``, computed as follows, then converted to UTC:

* ``M``, ``Q`` (3 months) and ``Y`` use calendar arithmetic on the local wall time, always as
  ``anchor + k*step`` from the anchor, so a grid anchored on Jan 31 gives Feb 28 (29), Mar 31, Apr 30,
  ... without drifting to the 28th;
* ``d`` and ``w`` step in local calendar days, so a day that contains a DST change lasts 23 or 25 hours;
* ``m`` and ``h`` step in absolute time from the anchor's UTC instant, so every period is equally long.

Local wall times that do not exist (the spring-forward gap) resolve forward to the first valid instant
after the gap, i.e. the instant of the change itself: a daily grid anchored at 02:30 in New York starts
the 2026-03-08 period at 03:00 EDT. Ambiguous wall times (the fall-back hour, which happens twice) take
the first occurrence (``fold=0``), i.e. the one still on daylight time.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

UNITS = "mhdwMQY"
_FIXED_UNITS = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_MONTHS_PER_UNIT = {"M": 1, "Q": 3, "Y": 12}
# [0-9] rather than \d: \d also matches other scripts' digits, which int() would silently accept.
# No leading zeros, so that str(parse_duration(text)) gives text back (and as spec.py already enforces).
_DURATION = re.compile(r"([1-9][0-9]*)([mhdwMQY])")
_SIGNED_DURATION = re.compile(r"([+-]?[0-9]+)([mhdwMQY])")
_EXPECTED_DURATION = "expected a whole number followed by m, h, d, w, M, Q or Y (m is minutes, M is months)"
_START_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})")
_WITH_OFFSET = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)"
)
_EXPECTED_START = "expected local wall time 'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DDTHH:MM:SS'"
_WINDOW_FIELDS = ("duration", "isRolling", "calendar")
_CALENDAR_FIELDS = ("startTime", "timeZone")


class WindowError(ValueError):
    """A time window, duration or instant is invalid; the message says what was expected."""


@dataclass(frozen=True)
class Duration:
    """An OpenSLO duration such as ``28d``; ``str()`` gives the shorthand back."""

    count: int
    unit: str

    def __post_init__(self) -> None:
        # bool is an int subclass; Duration(True, "d") is a bug, not "1d".
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 1:
            raise WindowError(f"duration count: expected a positive whole number, got {self.count!r}")
        if not isinstance(self.unit, str) or len(self.unit) != 1 or self.unit not in UNITS:
            raise WindowError(f"duration unit: expected one of m, h, d, w, M, Q or Y, got {self.unit!r}")

    def fixed(self) -> timedelta | None:
        """The absolute length for m, h, d (24 h) and w; None for M, Q and Y, whose length varies."""
        step = _FIXED_UNITS.get(self.unit)
        return None if step is None else self.count * step

    def months(self) -> int | None:
        """The calendar length in months for M, Q and Y; None for the fixed units."""
        per_unit = _MONTHS_PER_UNIT.get(self.unit)
        return None if per_unit is None else self.count * per_unit

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


def parse_duration(text: str) -> Duration:
    """``"28d"`` -> ``Duration(28, "d")``; ``M`` is months, ``m`` minutes; surrounding spaces are ignored."""
    if not isinstance(text, str):
        raise WindowError(f"duration {text!r}: {_EXPECTED_DURATION}, as a string such as '28d'")
    stripped = text.strip()
    match = _DURATION.fullmatch(stripped)
    if match:
        return Duration(int(match.group(1)), match.group(2))
    signed = _SIGNED_DURATION.fullmatch(stripped)
    if signed and int(signed.group(1)) < 1:
        raise WindowError(f"duration {text!r}: expected a count of at least 1")
    raise WindowError(f"duration {text!r}: {_EXPECTED_DURATION}")


def _require_naive(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise WindowError(f"{name}: expected a naive UTC datetime, got {value!r}")
    if value.tzinfo is not None:
        # Mixing aware and naive values would fail later with a less helpful TypeError, or worse,
        # silently be read in the wrong zone by a caller that forgot to convert.
        raise WindowError(f"{name}: expected a naive UTC datetime, got one with tzinfo {value.tzinfo}")


def _load_zone(name: str) -> ZoneInfo:
    if not isinstance(name, str):
        raise WindowError(f"expected an IANA time zone name such as 'Europe/Berlin', got {name!r}")
    try:
        return ZoneInfo(name)
    # ValueError: malformed keys ('', absolute paths, '..'); OSError: a key naming a directory.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise WindowError(f"unknown time zone {name!r}") from None


def _to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    """Naive UTC -> naive local wall time in ``zone``."""
    return instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall time -> naive UTC: gaps resolve forward to the change, ambiguous times to fold=0."""
    before = wall.replace(tzinfo=zone, fold=0).utcoffset()
    after = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None and after is not None  # ZoneInfo always knows its offset
    if before >= after:
        # Equal: an ordinary wall time. Greater: the fall-back overlap, where fold=0 is the earlier
        # (daylight-time) occurrence.
        return wall - before
    # In the gap, fold=1 reads the wall time with the new offset (an instant just before the change)
    # and fold=0 with the old one (an instant at or after it). The change is the first instant whose
    # local time is not before `wall`; zoneinfo does not expose transitions, so bisect for it.
    low, high = wall - after, wall - before
    low_us, high_us = 0, (high - low) // timedelta(microseconds=1)
    while low_us < high_us:
        mid_us = (low_us + high_us) // 2
        if _to_local(low + timedelta(microseconds=mid_us), zone) >= wall:
            high_us = mid_us
        else:
            low_us = mid_us + 1
    return low + timedelta(microseconds=low_us)


@dataclass(frozen=True)
class RollingWindow:
    """``[as_of - duration, as_of)`` in absolute time; the duration must be m, h, d or w."""

    duration: Duration

    def __post_init__(self) -> None:
        if not isinstance(self.duration, Duration):
            raise WindowError(f"duration: expected a Duration, got {self.duration!r}")
        if self.duration.fixed() is None:
            raise WindowError(
                f"duration '{self.duration}': a rolling window needs minutes, hours, days or weeks; "
                "months, quarters and years need a calendar window"
            )

    @property
    def length(self) -> timedelta:
        length = self.duration.fixed()
        assert length is not None  # guaranteed by __post_init__
        return length

    def bounds(self, as_of: datetime) -> tuple[datetime, datetime]:
        """``[as_of - duration, as_of)``: a 28d window is exactly 28 × 24 h, DST or not."""
        _require_naive(as_of, "as_of")
        try:
            return as_of - self.length, as_of
        except OverflowError:
            raise WindowError(
                f"as_of {as_of}: the {self.duration} window before it precedes year 1"
            ) from None

    def period(self, as_of: datetime) -> tuple[datetime, datetime]:
        """The whole window the budget covers; for a rolling window that is :meth:`bounds`."""
        return self.bounds(as_of)


@dataclass(frozen=True)
class CalendarWindow:
    """A grid of calendar periods anchored at ``start_time`` (naive local wall time in ``time_zone``).

    Period ``k`` is ``[anchor + k*duration, anchor + (k+1)*duration)`` for any integer ``k``; see the
    module docstring for how each unit steps, and for wall times that fall in a DST gap (forward to the
    change) or overlap (first occurrence, fold=0). All arguments and results are naive UTC except
    ``start_time``.
    """

    duration: Duration
    start_time: datetime
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        if not isinstance(self.duration, Duration):
            raise WindowError(f"duration: expected a Duration, got {self.duration!r}")
        if not isinstance(self.start_time, datetime) or self.start_time.tzinfo is not None:
            raise WindowError(
                f"start_time: expected a naive datetime (wall time in {self.time_zone!r}), "
                f"got {self.start_time!r}"
            )
        _load_zone(self.time_zone)

    @property
    def _zoneinfo(self) -> ZoneInfo:
        # ZoneInfo caches instances per key, so this is a lookup, not a file read.
        return ZoneInfo(self.time_zone)

    def _boundary(self, k: int) -> datetime:
        """Start of period ``k`` in naive UTC; non-decreasing in ``k`` (equal only across a skipped day)."""
        return _period_start(self, k)

    def _compute_boundary(self, k: int) -> datetime:
        duration, zone = self.duration, self._zoneinfo
        try:
            months = duration.months()
            if months is not None:
                # Always from the anchor: relativedelta clamps Jan 31 + 1 month to Feb 28, and stepping
                # from there would pin every later period to the 28th.
                return _to_utc(self.start_time + relativedelta(months=k * months), zone)
            if duration.unit in ("d", "w"):
                days = duration.count * (7 if duration.unit == "w" else 1)
                return _to_utc(self.start_time + timedelta(days=k * days), zone)
            fixed = duration.fixed()
            assert fixed is not None
            return _to_utc(self.start_time, zone) + k * fixed
        except (OverflowError, ValueError):
            raise WindowError(
                f"the {duration} calendar anchored at {self.start_time} {self.time_zone}: "
                f"period {k} falls outside the years 1 to 9999"
            ) from None

    def _estimate(self, as_of: datetime) -> int:
        """A period index within a step or two of the right one, without walking from the anchor."""
        duration, zone = self.duration, self._zoneinfo
        months = duration.months()
        if months is not None:
            local = _to_local(as_of, zone)
            elapsed = (local.year - self.start_time.year) * 12 + (local.month - self.start_time.month)
            return elapsed // months
        if duration.unit in ("d", "w"):
            days = duration.count * (7 if duration.unit == "w" else 1)
            return (_to_local(as_of, zone) - self.start_time) // timedelta(days=days)
        fixed = duration.fixed()
        assert fixed is not None
        # Absolute steps: this is exact, the correction below never moves.
        return (as_of - self._boundary(0)) // fixed

    def _index(self, as_of: datetime) -> int:
        """The ``k`` with ``boundary(k) <= as_of < boundary(k + 1)``."""
        try:
            k = self._estimate(as_of)
        except OverflowError:
            raise WindowError(f"as_of {as_of}: too close to year 1 or 9999 to place in a period") from None
        # The estimate reads wall times, which DST offsets and month-end clamping shift by hours or a few
        # days, so it can be off by one (two across a skipped day); boundaries are monotonic, so walk.
        while self._boundary(k) > as_of:
            k -= 1
        while self._boundary(k + 1) <= as_of:
            k += 1
        return k

    def period(self, as_of: datetime) -> tuple[datetime, datetime]:
        """The calendar period containing ``as_of``, as naive UTC ``[start, end)``."""
        _require_naive(as_of, "as_of")
        k = self._index(as_of)
        return self._boundary(k), self._boundary(k + 1)

    def bounds(self, as_of: datetime) -> tuple[datetime, datetime]:
        """``[period start, as_of)``: the part of the current period evaluated so far."""
        start, _ = self.period(as_of)
        return start, as_of

    def periods(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Every period overlapping ``[start, end)``, in order, including partial ones at either edge.

        A period that is empty (a whole local day skipped by a date-line change) overlaps nothing and is
        left out; consecutive entries still share a boundary, because the skipped period has no length.
        """
        _require_naive(start, "start")
        _require_naive(end, "end")
        if end <= start:
            return []
        k = self._index(start)
        result: list[tuple[datetime, datetime]] = []
        lower = self._boundary(k)
        while lower < end:
            upper = self._boundary(k + 1)
            if lower < upper:
                result.append((lower, upper))
            k, lower = k + 1, upper
        return result


Window: TypeAlias = RollingWindow | CalendarWindow


@functools.lru_cache(maxsize=1 << 16)
def _period_start(window: CalendarWindow, k: int) -> datetime:
    # Evaluations ask for the same few boundaries over and over (every minute of a day falls in the same
    # period), and each costs a zone lookup or two plus relativedelta; windows are frozen and hashable.
    return window._compute_boundary(k)


def _parse_start_time(value: Any) -> datetime:
    # YAML turns an unquoted `2022-01-01 12:00:00` into a datetime before we see it.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise WindowError(
                f"calendar.startTime {value}: {_EXPECTED_START} without an offset; "
                "the zone is calendar.timeZone"
            )
        if value.microsecond:
            raise WindowError(f"calendar.startTime {value}: {_EXPECTED_START}, whole seconds")
        return value
    if not isinstance(value, str):
        raise WindowError(f"calendar.startTime {value!r}: {_EXPECTED_START}")
    text = value.strip()
    match = _START_TIME.fullmatch(text)
    if not match:
        if _WITH_OFFSET.fullmatch(text):
            raise WindowError(
                f"calendar.startTime {value!r}: {_EXPECTED_START} without an offset; "
                "the zone is calendar.timeZone"
            )
        raise WindowError(f"calendar.startTime {value!r}: {_EXPECTED_START}")
    try:
        return datetime(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise WindowError(f"calendar.startTime {value!r}: not a valid date and time ({exc})") from None


def _reject_unknown(mapping: Mapping[Any, Any], known: tuple[str, ...], prefix: str) -> None:
    # A misspelt key (`isrolling`, `timezone`) would otherwise silently fall back to a default.
    for key in mapping:
        if key not in known:
            raise WindowError(f"{prefix}{key}: unknown field; expected {', '.join(known)}")


def window_from_openslo(spec: Mapping[str, Any]) -> Window:
    """One OpenSLO ``timeWindow`` entry -> a window; errors name the offending field."""
    if not isinstance(spec, Mapping):
        raise WindowError(
            f"timeWindow: expected a mapping with duration and isRolling or calendar, got {spec!r}"
        )
    _reject_unknown(spec, _WINDOW_FIELDS, "")
    if "duration" not in spec:
        raise WindowError("duration: required, e.g. 28d or 1M")
    duration = parse_duration(spec["duration"])
    is_rolling = spec.get("isRolling", False)
    if not isinstance(is_rolling, bool):
        raise WindowError(f"isRolling: expected true or false, got {is_rolling!r}")
    calendar = spec.get("calendar")
    if is_rolling:
        if calendar is not None:
            raise WindowError(
                "calendar is given with isRolling: true; a window is either rolling or calendar"
            )
        return RollingWindow(duration)
    if calendar is None:
        raise WindowError("calendar: required unless isRolling: true (startTime and timeZone)")
    if not isinstance(calendar, Mapping):
        raise WindowError(f"calendar: expected a mapping with startTime and timeZone, got {calendar!r}")
    _reject_unknown(calendar, _CALENDAR_FIELDS, "calendar.")
    if "startTime" not in calendar:
        raise WindowError("calendar.startTime: required, e.g. '2022-01-01 00:00:00'")
    start_time = _parse_start_time(calendar["startTime"])
    if start_time.second:
        # Evaluation runs on whole minutes; a period grid anchored mid-minute could not be evaluated exactly.
        raise WindowError(
            f"calendar.startTime {calendar['startTime']!r}: must be on a whole minute (seconds 00)"
        )
    time_zone = calendar.get("timeZone", "UTC")
    try:
        _load_zone(time_zone)
    except WindowError as exc:
        raise WindowError(f"calendar.timeZone: {exc}") from None
    return CalendarWindow(duration, start_time, time_zone)

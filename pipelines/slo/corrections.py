"""SLO corrections: periods excluded from error budgets.

Planned maintenance and known-bad periods do not count against an SLO: events in corrected minutes count
neither as good nor as total. A correction is a one-off window or a recurring one (an RFC 5545 RRULE),
kept in ``slo_corrections`` (``sql/corrections_schema.sql``) with who added it, why and when. Removing
one records who removed it and when; rows are never deleted, so the table is its own audit trail.

Times
  The warehouse holds naive UTC. Every datetime argument may be naive or timezone-aware (converted);
  what a naive one means:

  * one-off (``start`` + ``end``): UTC, covering ``[start, end)``. ``time_zone`` is only recorded; a naive
    window with a zone other than UTC is refused, because it is almost certainly meant as local time.
  * recurring (``start`` + ``rrule`` + ``duration_minutes``): ``start`` is a LOCAL wall time in
    ``time_zone`` and must be the rule's first occurrence (RFC 5545 makes DTSTART the first instance,
    dateutil does not; requiring both to agree removes the difference). Occurrences are local wall times
    in ``time_zone``; each covers ``[occurrence, occurrence + duration)`` of local time, converted to UTC,
    so "Sundays 02:00-04:00 Europe/Berlin" is 01:00-03:00Z in winter and 00:00-02:00Z in summer. A local
    time that does not exist (the spring-forward gap) resolves forward to the end of the gap, the first
    instant that exists; an ambiguous one (the repeated autumn hour) is its first instant (fold=0). So an
    occurrence keeps the part of its local span that happened (02:00-04:00 on the spring-forward night
    is 03:00-04:00 CEST) and never reaches past its local end, which shifting gap times by the gap's
    length (PEP 495's fold=0 reading: 02:30 -> 03:30) would do. A start inside a gap is refused, since
    it could not be read back unchanged. ``start_ts`` stores the first occurrence in UTC.
  * ``UNTIL`` ending in ``Z`` is a UTC instant (as RFC 5545 requires with a zone); without ``Z`` it is a
    local wall time. Unbounded rules (no COUNT, no UNTIL) are fine: expansion is always clipped to the
    requested range.

Minute resolution
  The warehouse aggregates by minute, so :func:`excluded_intervals` widens every interval to whole
  minutes (start floored, end ceiled): a minute any part of which is corrected is excluded entirely.
  :meth:`Correction.intervals` stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateutil.rrule
import duckdb
import numpy as np

from pipelines import sqlfiles
from pipelines.slo.aggregate import merge_ranges
from pipelines.warehouse import transaction

ALL_SLOS = "*"
MINUTE = timedelta(minutes=1)
_RESOLUTION = timedelta(microseconds=1)

# A longer occurrence is surely a mistake, and the bound keeps date arithmetic far from overflowing.
_MAX_DURATION_MINUTES = 366 * 24 * 60
# Slack, in local time, around a requested UTC range: UTC offsets differ from local time by up to a day.
_MARGIN = timedelta(days=2)
# Frequencies whose occurrence set is unchanged by moving DTSTART a whole number of INTERVAL periods
# later (the defaults dateutil takes from DTSTART, time of day and weekday, survive such a move).
_FIXED_PERIODS = {
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}


class CorrectionError(ValueError):
    """A correction is invalid or cannot be changed; the message says what and why."""


@dataclass(frozen=True)
class Correction:
    """One row of ``slo_corrections``; all datetimes naive UTC."""

    correction_id: int
    slo: str
    service: str | None
    start: datetime
    end: datetime | None
    rrule: str | None
    duration_minutes: int | None
    time_zone: str
    reason: str
    added_by: str
    added_at: datetime
    removed_by: str | None
    removed_at: datetime | None

    @property
    def recurring(self) -> bool:
        return self.rrule is not None

    @property
    def removed(self) -> bool:
        return self.removed_at is not None

    def applies_to(self, slo: str, service: str) -> bool:
        """Whether this correction covers the SLO ``slo`` of ``service`` (removal is not considered)."""
        return (self.slo == ALL_SLOS or self.slo == slo) and (self.service is None or self.service == service)

    def intervals(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """This correction's excluded UTC intervals overlapping ``[start, end)``, clipped, merged, sorted.

        Exact (not widened to minutes). Removal is not considered: the intervals of a removed correction
        are what history must be recomputed for.
        """
        start, end = _utc(start, "start"), _utc(end, "end")
        if end <= start:
            return []
        if self.rrule is None:
            assert self.end is not None  # the table's CHECK: a one-off row has an end
            low, high = max(self.start, start), min(self.end, end)
            return [(low, high)] if low < high else []
        return merge_ranges(self._occurrences(start, end))

    def _occurrences(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        assert self.rrule is not None and self.duration_minutes is not None
        rule = _parse_rule(self.rrule)
        zone = _zone(self.time_zone)
        duration = timedelta(minutes=self.duration_minutes)
        first = _to_local(self.start, zone)
        after = _to_local(start, zone) - duration - _MARGIN
        before = _to_local(end, zone) + _MARGIN
        if before < first:
            return []
        found: list[tuple[datetime, datetime]] = []
        # between() still walks every occurrence from DTSTART, hence the anchor near the range.
        for occurrence in _build(rule, _anchor(rule, first, after)).between(after, before, inc=True):
            occurrence_start = _to_utc(occurrence, zone)
            # Local-to-UTC never goes backwards (a gap collapses onto its end, a fold takes the first
            # instant), so occurrences stay in UTC order and the first one past UNTIL ends the rule.
            if rule.until_utc is not None and occurrence_start > rule.until_utc:
                break
            low = max(occurrence_start, start)
            high = min(_to_utc(occurrence + duration, zone), end)
            if low < high:
                found.append((low, high))
        return found


def add_correction(
    con: duckdb.DuckDBPyConnection,
    *,
    slo: str,
    reason: str,
    added_by: str,
    start: datetime,
    end: datetime | None = None,
    rrule: str | None = None,
    duration_minutes: int | None = None,
    time_zone: str = "UTC",
    service: str | None = None,
    now: datetime | None = None,
) -> Correction:
    """Record a correction and return it as stored.

    One-off: ``start`` and ``end`` (UTC when naive). Recurring: ``start`` (the first occurrence, a LOCAL
    wall time in ``time_zone`` when naive), ``rrule`` and ``duration_minutes``. See the module docstring.
    ``slo`` is an SLO name or ``'*'`` for every SLO; ``service`` narrows it to that service's SLOs.
    """
    _require_text(slo, "slo", hint=" (an SLO name, or '*' for every SLO)")
    _require_text(reason, "reason")
    _require_text(added_by, "added_by")
    if service is not None:
        _require_text(service, "service", hint=" when given (None means every service)")
    zone = _zone(time_zone)
    if rrule is None:
        if duration_minutes is not None:
            raise CorrectionError(
                "duration_minutes is for recurring corrections (with rrule); a one-off correction takes end"
            )
        if end is None:
            raise CorrectionError(
                "a one-off correction needs end; a recurring one needs rrule and duration_minutes"
            )
        start_ts = _one_off_bound(start, "start", time_zone)
        end_ts: datetime | None = _one_off_bound(end, "end", time_zone)
        assert end_ts is not None
        if end_ts <= start_ts:
            raise CorrectionError("end must be after start")
    else:
        if end is not None:
            raise CorrectionError(
                "a recurring correction takes duration_minutes, not end; bound the rule with COUNT or UNTIL"
            )
        if duration_minutes is None:
            raise CorrectionError("a recurring correction needs duration_minutes (each occurrence's length)")
        if _positive_int(duration_minutes) is None or duration_minutes > _MAX_DURATION_MINUTES:
            raise CorrectionError(
                "duration_minutes must be a whole number of minutes from 1 to "
                f"{_MAX_DURATION_MINUTES} (366 days), got {duration_minutes!r}"
            )
        start_ts = _first_occurrence_utc(rrule, start, zone, time_zone)
        end_ts = None
    params = {
        "slo": slo,
        "service": service,
        "start_ts": start_ts,
        "end_ts": end_ts,
        "rrule": rrule,
        "duration_minutes": duration_minutes,
        "time_zone": time_zone,
        "reason": reason,
        "added_by": added_by,
        "added_at": _now(now),
    }
    sqlfiles.run(con, "corrections_schema")
    with transaction(con):
        row = _fetch(con, "corrections_insert", params)[0]
    return Correction(*row)


def remove_correction(
    con: duckdb.DuckDBPyConnection, correction_id: int, *, removed_by: str, now: datetime | None = None
) -> Correction:
    """Mark a correction removed (the row stays); an error if it is unknown or already removed."""
    if isinstance(correction_id, bool) or not isinstance(correction_id, int):
        raise CorrectionError(f"correction_id must be an integer, got {correction_id!r}")
    _require_text(removed_by, "removed_by")
    params = {"correction_id": correction_id, "removed_by": removed_by, "removed_at": _now(now)}
    sqlfiles.run(con, "corrections_schema")
    with transaction(con):
        rows = _fetch(con, "corrections_remove", params)
        existing = [] if rows else _fetch(con, "corrections_get", params)
    if rows:
        return Correction(*rows[0])
    if not existing:
        raise CorrectionError(f"no correction with id {correction_id}")
    earlier = Correction(*existing[0])
    assert earlier.removed_at is not None
    raise CorrectionError(
        f"correction {correction_id} was already removed by {earlier.removed_by!r} "
        f"at {earlier.removed_at.isoformat(timespec='seconds')}Z"
    )


def list_corrections(
    con: duckdb.DuckDBPyConnection, *, slo: str | None = None, include_removed: bool = False
) -> list[Correction]:
    """Corrections in id order; ``slo`` matches the stored name exactly (``'*'`` lists the every-SLO ones).

    Use :func:`active_corrections` for the corrections that apply to an SLO.
    """
    if not _schema_ready(con):
        return []
    rows = _fetch(con, "corrections_list", {"slo": slo, "include_removed": bool(include_removed)})
    return [Correction(*row) for row in rows]


def active_corrections(con: duckdb.DuckDBPyConnection, slo: str, service: str) -> list[Correction]:
    """Corrections not removed that apply to the SLO ``slo`` of ``service`` (its own, '*', service-wide)."""
    return [c for c in list_corrections(con) if c.applies_to(slo, service)]


def excluded_intervals(
    corrections: list[Correction], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Union of the corrections' intervals in ``[start, end)``: merged, sorted, widened to whole minutes.

    Widened because the warehouse aggregates by minute: an interval's start is floored and its end ceiled
    to the minute, so 10:00:30-10:02:10 excludes the minutes 10:00, 10:01 and 10:02. The result is then
    clipped to ``[start, end)``, so its bounds are whole minutes whenever ``start`` and ``end`` are.
    """
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        return []
    widened = [
        (_floor_minute(low), _ceil_minute(high))
        for correction in corrections
        for low, high in correction.intervals(start, end)
    ]
    return [(max(low, start), min(high, end)) for low, high in merge_ranges(widened)]


def excluded_minute_mask(corrections: list[Correction], start: datetime, minutes: int) -> np.ndarray:
    """One bool per minute from ``start`` (a whole minute, UTC): True where the minute is excluded."""
    start = _utc(start, "start")
    if start != _floor_minute(start):
        raise CorrectionError(f"start must be a whole minute, got {start.isoformat()}")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
        raise CorrectionError(f"minutes must be a non-negative integer, got {minutes!r}")
    mask = np.zeros(minutes, dtype=bool)
    for low, high in excluded_intervals(corrections, start, start + minutes * MINUTE):
        mask[(low - start) // MINUTE : (high - start) // MINUTE] = True
    return mask


def affected_days(correction: Correction, start: datetime, end: datetime) -> list[date]:
    """The UTC days the correction touches within ``[start, end)``, to recompute history for them."""
    days: set[date] = set()
    for low, high in excluded_intervals([correction], start, end):
        day, last = low.date(), (high - timedelta(microseconds=1)).date()  # the end is exclusive
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return sorted(days)


# --- recurrence rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    source: str  # as given, for messages
    parts: tuple[tuple[str, str], ...]  # NAME=VALUE in order, names upper-case, a UTC UNTIL taken out
    freq: str
    interval: int
    has_count: bool
    until_utc: datetime | None  # UNTIL given in UTC; applied after local-to-UTC conversion

    def text(self, *, drop: frozenset[str] = frozenset()) -> str:
        return ";".join(f"{name}={value}" for name, value in self.parts if name not in drop)

    def invalid(self, why: str) -> CorrectionError:
        return CorrectionError(f"rrule {self.source!r}: not a valid RFC 5545 rule: {why}")

    def error(self, why: str) -> CorrectionError:
        return CorrectionError(f"rrule {self.source!r}: {why}")


def _parse_rule(source: str) -> _Rule:
    """Structural checks dateutil leaves out (it accepts COUNT=0, INTERVAL=0, COUNT with UNTIL, DTSTART)."""
    if not isinstance(source, str) or not source.strip():
        raise CorrectionError("rrule must be a non-empty RFC 5545 rule such as 'FREQ=WEEKLY;BYDAY=SU'")
    rule = _Rule(source, (), "", 1, False, None)
    body = source.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if any(ch.isspace() for ch in body):
        raise rule.invalid("spaces and line breaks are not allowed inside a rule")
    if ":" in body:
        # More properties would make dateutil build an rruleset, its DTSTART competing with start.
        raise rule.invalid("give one RRULE only, without DTSTART (start is the first occurrence) or EXDATE")
    parts: dict[str, str] = {}
    for part in body.split(";"):
        name, sep, value = part.partition("=")
        if not sep or not name or not value:
            raise rule.invalid(f"{part!r} is not NAME=VALUE")
        name = name.upper()
        if name in parts:
            raise rule.invalid(f"{name} is given twice")
        parts[name] = value
    if "FREQ" not in parts:
        raise rule.invalid("FREQ is required")
    freq = parts["FREQ"].upper()
    if "COUNT" in parts and "UNTIL" in parts:
        raise rule.invalid("COUNT and UNTIL cannot both be given")
    numbers = {name: _positive_int(_as_int(parts.get(name, "1"))) for name in ("COUNT", "INTERVAL")}
    for name, number in numbers.items():
        if number is None:
            raise rule.invalid(f"{name} must be a positive integer, got {parts[name]!r}")
    if freq == "SECONDLY":
        raise rule.error("FREQ=SECONDLY is finer than the one-minute resolution of corrections; use MINUTELY")
    until_utc = None
    until = parts.get("UNTIL", "")
    if until.upper().endswith("Z"):
        try:
            until_utc = datetime.strptime(until.upper(), "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise rule.invalid(f"UNTIL {until!r} is not a UTC date-time such as 20261231T235959Z") from None
        # dateutil refuses a UTC UNTIL with a naive (local wall time) DTSTART; it is applied in UTC instead.
        del parts["UNTIL"]
    interval = numbers["INTERVAL"]
    assert interval is not None
    return _Rule(source, tuple(parts.items()), freq, interval, "COUNT" in parts, until_utc)


def _as_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _positive_int(value: object) -> int | None:
    """``value`` if it is an int of at least 1 (and not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def _build(rule: _Rule, dtstart: datetime, *, drop: frozenset[str] = frozenset()) -> dateutil.rrule.rrule:
    """The dateutil rule over naive local wall times (naive arithmetic is what keeps 02:00 at 02:00)."""
    try:
        parsed = dateutil.rrule.rrulestr(rule.text(drop=drop), dtstart=dtstart)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise rule.invalid(str(exc) or type(exc).__name__) from exc
    if not isinstance(parsed, dateutil.rrule.rrule):
        raise rule.invalid("give one RRULE only")
    return parsed


def _anchor(rule: _Rule, first: datetime, after: datetime) -> datetime:
    """A DTSTART just before ``after`` giving the same occurrences from there on, when one exists.

    Moving DTSTART by whole INTERVAL periods keeps every occurrence from the new DTSTART on for
    fixed-length frequencies; COUNT counts from the first occurrence, so such rules are not moved.
    """
    unit = _FIXED_PERIODS.get(rule.freq)
    if unit is None or rule.has_count or after <= first:
        return first
    period = unit * rule.interval
    return first + ((after - first) // period) * period


def _first_occurrence_utc(source: str, start: datetime, zone: ZoneInfo, time_zone: str) -> datetime:
    """Validate a recurring correction; its first occurrence (``start``) in UTC."""
    rule = _parse_rule(source)
    if not isinstance(start, datetime):
        raise CorrectionError(f"start must be a datetime, got {type(start).__name__}")
    local = start if start.tzinfo is None else start.astimezone(zone).replace(tzinfo=None)
    local = local.replace(fold=0)
    if local.microsecond:
        # dateutil drops microseconds from DTSTART, so such a start could never be the first occurrence.
        raise CorrectionError("a recurring correction's start must be a whole second")
    start_utc = _to_utc(local, zone)
    shown = f"{local.isoformat(sep=' ', timespec='seconds')} ({time_zone})"
    if _to_local(start_utc, zone) != local:
        raise CorrectionError(
            f"start {shown} does not exist (clocks skip it for daylight saving); choose one outside the gap"
        )
    _build(rule, local)  # every rule part, as dateutil reads it
    # The first occurrence ignoring COUNT and UNTIL (COUNT is at least 1, so only UNTIL can remove it).
    # For a rule that can never match (BYMONTH=2;BYMONTHDAY=30) dateutil scans to the year 9999 before
    # giving up, up to seconds for a MINUTELY rule: acceptable once, when the correction is added.
    first = next(iter(_build(rule, local, drop=frozenset({"COUNT", "UNTIL"}))), None)
    if first is None:
        raise rule.error("never occurs: no date-time matches every part of the rule")
    if first != local:
        raise rule.error(
            f"start {shown} is not an occurrence of the rule; the first occurrence after it is "
            f"{first.isoformat(sep=' ', timespec='seconds')}: give that as start"
        )
    until_passed = rule.until_utc is not None and start_utc > rule.until_utc
    if until_passed or next(iter(_build(rule, local)), None) is None:
        raise rule.error(f"UNTIL is before start {shown}, so the rule never occurs")
    return start_utc


# --- helpers --------------------------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise CorrectionError(f"unknown time zone {name!r}: give an IANA name such as 'Europe/Berlin' or 'UTC'")


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """Naive local wall time to naive UTC: a fold's first instant, a gap's end (see the module docstring)."""
    # The hot path of expansion: utcoffset() of the wall time, instead of two conversions.
    if local.fold:
        local = local.replace(fold=0)
    before = zone.utcoffset(local)  # fold=0: in a gap or a fold, the offset in force before it
    after = zone.utcoffset(local.replace(fold=1))  # differs from ``before`` only in a gap or a fold
    assert before is not None and after is not None
    moment = local - before
    if after == before or _to_local(moment, zone) == local:  # not a gap
        return moment
    # A gap: ``local - before`` lies past the transition and ``local - after`` before it. The transition,
    # where the gap ends, is found by bisection; gaps are rare, so the cost does not matter.
    low, high = local - after, moment
    while high - low > _RESOLUTION:
        middle = low + (high - low) / 2
        if zone.utcoffset(middle.replace(tzinfo=UTC).astimezone(zone)) == before:
            low = middle
        else:
            high = middle
    return high


def _to_local(moment: datetime, zone: ZoneInfo) -> datetime:
    """Naive UTC to naive local wall time."""
    return moment.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None, fold=0)


def _utc(moment: datetime, what: str) -> datetime:
    """Naive UTC from a naive (already UTC) or aware datetime."""
    if not isinstance(moment, datetime):
        raise CorrectionError(f"{what} must be a datetime, got {type(moment).__name__}")
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _one_off_bound(moment: datetime, what: str, time_zone: str) -> datetime:
    if isinstance(moment, datetime) and moment.tzinfo is None and time_zone != "UTC":
        raise CorrectionError(
            f"a one-off correction's {what} is UTC: give a timezone-aware datetime, or a naive UTC one with "
            f"time_zone 'UTC' (time_zone {time_zone!r} places only recurring occurrences)"
        )
    return _utc(moment, what)


def _now(now: datetime | None) -> datetime:
    return _utc(now or datetime.now(UTC), "now")


def _require_text(value: object, name: str, *, hint: str = "") -> None:
    if not isinstance(value, str) or not value.strip():
        raise CorrectionError(f"{name} is required{hint}")


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _ceil_minute(moment: datetime) -> datetime:
    floor = _floor_minute(moment)
    return floor if floor == moment else floor + MINUTE


def _fetch(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    statement = sqlfiles.sql(name)
    return con.execute(statement, sqlfiles.params_for(statement, params)).fetchall()


def _schema_ready(con: duckdb.DuckDBPyConnection) -> bool:
    """Create the table if needed; False on a read-only connection to a warehouse without it."""
    exists, read_only = con.execute(sqlfiles.sql("corrections_schema_state")).fetchall()[0]
    if not exists and read_only:
        return False  # nothing was ever corrected there, and CREATE is refused on read-only opens
    if not exists:
        sqlfiles.run(con, "corrections_schema")
    return True

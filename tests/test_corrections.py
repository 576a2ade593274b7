"""SLO corrections: the audit table, validation, RRULE expansion across DST, minute masks, affected days.

Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pytest
from dateutil.rrule import rrulestr

from pipelines.slo.aggregate import merge_ranges
from pipelines.slo.corrections import (
    Correction,
    CorrectionError,
    active_corrections,
    add_correction,
    affected_days,
    excluded_intervals,
    excluded_minute_mask,
    list_corrections,
    remove_correction,
)
from pipelines.warehouse import connect

NOW = datetime(2026, 3, 2, 9, 0)
LATER = datetime(2026, 3, 3, 17, 30)
BERLIN_SUNDAYS = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0"


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect(tmp_path / "w.duckdb")
    yield connection
    connection.close()


def one_off(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, **kwargs: object) -> Correction:
    fields: dict = {"slo": "checkout-availability", "reason": "maintenance", "added_by": "alice", "now": NOW}
    fields.update(kwargs)
    return add_correction(con, start=start, end=end, **fields)


def berlin_sundays(con: duckdb.DuckDBPyConnection) -> Correction:
    return add_correction(
        con,
        slo="checkout-availability",
        reason="weekly database maintenance",
        added_by="alice",
        start=datetime(2026, 3, 1, 2, 0),  # a Sunday, 02:00 local: the rule's first occurrence
        rrule=BERLIN_SUNDAYS,
        duration_minutes=120,
        time_zone="Europe/Berlin",
        now=NOW,
    )


def table_rows(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT count(*) FROM slo_corrections").fetchone()[0]


# --- the audit table -------------------------------------------------------------------------------------


def test_one_off_is_stored_and_listed_with_who_why_and_when(con: duckdb.DuckDBPyConnection) -> None:
    added = one_off(
        con, datetime(2026, 3, 1, 10, 0), datetime(2026, 3, 1, 11, 30), reason="db failover drill"
    )
    assert added == Correction(
        correction_id=1,
        slo="checkout-availability",
        service=None,
        start=datetime(2026, 3, 1, 10, 0),
        end=datetime(2026, 3, 1, 11, 30),
        rrule=None,
        duration_minutes=None,
        time_zone="UTC",
        reason="db failover drill",
        added_by="alice",
        added_at=NOW,
        removed_by=None,
        removed_at=None,
    )
    assert list_corrections(con) == [added]
    assert list_corrections(con, slo="checkout-availability") == [added]
    assert list_corrections(con, slo="search-latency") == []


def test_aware_datetimes_are_stored_in_utc(con: duckdb.DuckDBPyConnection) -> None:
    india = ZoneInfo("Asia/Kolkata")  # +05:30, no DST
    added = one_off(
        con,
        datetime(2026, 3, 1, 15, 30, tzinfo=india),  # 10:00Z
        datetime(2026, 3, 1, 17, 0, tzinfo=india),  # 11:30Z
        time_zone="Asia/Kolkata",  # recorded; naive one-off bounds would be refused with it
        now=datetime(2026, 3, 2, 14, 30, tzinfo=india),  # 09:00Z
    )
    assert (added.start, added.end, added.added_at) == (
        datetime(2026, 3, 1, 10, 0),
        datetime(2026, 3, 1, 11, 30),
        NOW,
    )


def test_remove_keeps_the_row_and_hides_it_by_default(con: duckdb.DuckDBPyConnection) -> None:
    added = one_off(con, datetime(2026, 3, 1, 10, 0), datetime(2026, 3, 1, 11, 0))
    removed = remove_correction(con, added.correction_id, removed_by="bob", now=LATER)
    assert (removed.removed_by, removed.removed_at) == ("bob", LATER)
    assert removed.removed
    # Everything else is unchanged: the audit trail keeps who added it and why.
    assert (removed.slo, removed.reason, removed.added_by, removed.added_at) == (
        "checkout-availability",
        "maintenance",
        "alice",
        NOW,
    )
    assert list_corrections(con) == []
    assert list_corrections(con, include_removed=True) == [removed]
    assert table_rows(con) == 1
    assert active_corrections(con, "checkout-availability", "checkout") == []

    with pytest.raises(
        CorrectionError, match=r"correction 1 was already removed by 'bob' at 2026-03-03T17:30:00Z"
    ):
        remove_correction(con, added.correction_id, removed_by="carol", now=LATER + timedelta(days=1))
    assert list_corrections(con, include_removed=True) == [removed]  # the first removal is kept
    with pytest.raises(CorrectionError, match=r"no correction with id 99"):
        remove_correction(con, 99, removed_by="bob")
    with pytest.raises(CorrectionError, match=r"removed_by is required"):
        remove_correction(con, added.correction_id, removed_by=" ")


def test_ids_and_rows_survive_reconnecting(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with connect(path) as first:  # the corrections schema is created on first use, then left alone
        one_off(first, datetime(2026, 3, 1, 10, 0), datetime(2026, 3, 1, 11, 0))
    with connect(path) as second:
        again = one_off(second, datetime(2026, 3, 2, 10, 0), datetime(2026, 3, 2, 11, 0))
        assert again.correction_id == 2
        assert [c.correction_id for c in list_corrections(second)] == [1, 2]


def test_reading_a_read_only_warehouse(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    connect(path).close()  # a warehouse from before corrections existed
    with connect(path, read_only=True) as reader:
        assert list_corrections(reader) == []  # nothing to read, and CREATE is refused there
        assert active_corrections(reader, "checkout-availability", "checkout") == []
    with connect(path) as writer:
        added = one_off(writer, datetime(2026, 3, 1, 10, 0), datetime(2026, 3, 1, 11, 0))
    with connect(path, read_only=True) as reader:
        assert list_corrections(reader) == [added]


def test_active_corrections_honour_every_slo_and_service(con: duckdb.DuckDBPyConnection) -> None:
    window = (datetime(2026, 3, 1, 10, 0), datetime(2026, 3, 1, 11, 0))
    own = one_off(con, *window, slo="checkout-availability")
    everything = one_off(con, *window, slo="*")
    search_wide = one_off(con, *window, slo="*", service="search")
    other_service = one_off(con, *window, slo="checkout-availability", service="payments")
    other_slo = one_off(con, *window, slo="checkout-latency")
    gone = one_off(con, *window, slo="*")
    remove_correction(con, gone.correction_id, removed_by="bob", now=LATER)

    assert active_corrections(con, "checkout-availability", "checkout") == [own, everything]
    assert active_corrections(con, "search-latency", "search") == [everything, search_wide]
    assert active_corrections(con, "checkout-availability", "payments") == [own, everything, other_service]
    assert active_corrections(con, "checkout-latency", "checkout") == [everything, other_slo]
    # list_corrections matches the stored name exactly: '*' lists the every-SLO corrections.
    assert list_corrections(con, slo="*") == [everything, search_wide]
    assert own.applies_to("checkout-availability", "checkout")
    assert not search_wide.applies_to("checkout-availability", "checkout")


# --- validation ------------------------------------------------------------------------------------------

START = datetime(2026, 3, 1, 2, 0)  # Sunday 1 March 2026


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"end": START}, r"^end must be after start$"),
        ({"end": START - timedelta(minutes=1)}, r"^end must be after start$"),
        ({"end": START + timedelta(hours=1), "reason": ""}, r"^reason is required$"),
        ({"end": START + timedelta(hours=1), "reason": " \t"}, r"^reason is required$"),
        ({"end": START + timedelta(hours=1), "added_by": ""}, r"^added_by is required$"),
        ({"end": START + timedelta(hours=1), "slo": ""}, r"^slo is required"),
        ({"end": START + timedelta(hours=1), "service": ""}, r"^service is required"),
        ({}, r"a one-off correction needs end"),
        ({"end": START + timedelta(hours=1), "duration_minutes": 30}, r"duration_minutes is for recurring"),
        (
            {"end": START + timedelta(hours=1), "time_zone": "Europe/Berlin"},
            r"a one-off correction's start is UTC",
        ),
        (
            {"rrule": "FREQ=SOMETIMES", "duration_minutes": 60},
            r"^rrule 'FREQ=SOMETIMES': not a valid RFC 5545 rule: invalid 'FREQ': SOMETIMES$",
        ),
        ({"rrule": "FREQ=DAILY;BYHOUR=25", "duration_minutes": 60}, r"not a valid RFC 5545 rule: hour must"),
        ({"rrule": "FREQ=DAILY;COUNT=0", "duration_minutes": 60}, r"COUNT must be a positive integer"),
        ({"rrule": "FREQ=DAILY;INTERVAL=0", "duration_minutes": 60}, r"INTERVAL must be a positive integer"),
        (
            {"rrule": "FREQ=DAILY;COUNT=3;UNTIL=20261231", "duration_minutes": 60},
            r"COUNT and UNTIL cannot both",
        ),
        ({"rrule": "BYDAY=SU", "duration_minutes": 60}, r"FREQ is required"),
        ({"rrule": "FREQ=DAILY;FREQ=WEEKLY", "duration_minutes": 60}, r"FREQ is given twice"),
        ({"rrule": "FREQ=DAILY;", "duration_minutes": 60}, r"'' is not NAME=VALUE"),
        (
            {"rrule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY", "duration_minutes": 60},
            r"spaces and line breaks are not allowed",
        ),
        ({"rrule": "DTSTART:20260101T000000", "duration_minutes": 60}, r"give one RRULE only"),
        ({"rrule": "FREQ=SECONDLY", "duration_minutes": 60}, r"FREQ=SECONDLY is finer than"),
        ({"rrule": "", "duration_minutes": 60}, r"rrule must be a non-empty RFC 5545 rule"),
        ({"rrule": BERLIN_SUNDAYS}, r"a recurring correction needs duration_minutes"),
        ({"rrule": BERLIN_SUNDAYS, "duration_minutes": 0}, r"duration_minutes must be a whole number"),
        ({"rrule": BERLIN_SUNDAYS, "duration_minutes": 1.5}, r"duration_minutes must be a whole number"),
        ({"rrule": BERLIN_SUNDAYS, "duration_minutes": 60, "end": START}, r"takes duration_minutes, not end"),
        (
            {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=2;BYMINUTE=0", "duration_minutes": 60},
            r"start 2026-03-01 02:00:00 \(UTC\) is not an occurrence of the rule; the first occurrence "
            r"after it is 2026-03-02 02:00:00: give that as start",
        ),
        (
            {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "duration_minutes": 60},
            r"never occurs",
        ),
        (
            {"rrule": "FREQ=DAILY;UNTIL=20260228T000000Z", "duration_minutes": 60},
            r"UNTIL is before start",
        ),
        ({"rrule": "FREQ=DAILY;UNTIL=20260228", "duration_minutes": 60}, r"UNTIL is before start"),
        (
            {"rrule": "FREQ=DAILY;UNTIL=2026Z", "duration_minutes": 60},
            r"UNTIL '2026Z' is not a UTC date-time",
        ),
        (
            # Berlin's clocks jump from 02:00 to 03:00 on 29 March 2026: 02:30 never happens.
            {
                "rrule": "FREQ=DAILY",
                "duration_minutes": 60,
                "time_zone": "Europe/Berlin",
                "start": datetime(2026, 3, 29, 2, 30),
            },
            r"start 2026-03-29 02:30:00 \(Europe/Berlin\) does not exist",
        ),
        (
            {"rrule": BERLIN_SUNDAYS, "duration_minutes": 60, "time_zone": "Mars/Olympus_Mons"},
            r"^unknown time zone 'Mars/Olympus_Mons'",
        ),
        ({"end": START + timedelta(hours=1), "time_zone": "../../etc/passwd"}, r"^unknown time zone"),
        ({"end": START + timedelta(hours=1), "time_zone": "Europe"}, r"^unknown time zone 'Europe'"),
        ({"end": START + timedelta(hours=1), "start": date(2026, 3, 1)}, r"start must be a datetime"),
    ],
)
def test_invalid_corrections_are_refused_and_nothing_is_stored(
    con: duckdb.DuckDBPyConnection, fields: dict, message: str
) -> None:
    arguments: dict = {
        "slo": "checkout-availability",
        "reason": "maintenance",
        "added_by": "alice",
        "start": START,
        "now": NOW,
    }
    arguments.update(fields)
    with pytest.raises(CorrectionError, match=message):
        add_correction(con, **arguments)
    assert list_corrections(con, include_removed=True) == []


def test_correction_error_is_a_value_error() -> None:
    assert issubclass(CorrectionError, ValueError)


# --- recurring corrections -------------------------------------------------------------------------------


def test_weekly_rule_keeps_local_time_across_the_spring_dst_change(con: duckdb.DuckDBPyConnection) -> None:
    correction = berlin_sundays(con)
    # Stored start: Sunday 1 March 02:00 CET (UTC+1) is 01:00Z.
    assert correction.start == datetime(2026, 3, 1, 1, 0)
    assert (correction.end, correction.rrule, correction.duration_minutes) == (None, BERLIN_SUNDAYS, 120)
    # Sundays in March-April 2026: 1, 8, 15, 22, 29 March; 5, 12, 19, 26 April. Each occurrence is
    # 02:00-04:00 Berlin wall time.
    # * 1-22 March, CET (UTC+1): 02:00-04:00 local = 01:00-03:00Z.
    # * 29 March: clocks go from 02:00 CET straight to 03:00 CEST (at 01:00Z). 02:00 local does not exist
    #   and moves forward to 03:00 CEST = 01:00Z; the end, 04:00 CEST (UTC+2), is 02:00Z. The window
    #   loses the skipped hour, like every wall-clock event that night: 01:00-02:00Z.
    # * April, CEST (UTC+2): 02:00-04:00 local = 00:00-02:00Z.
    expected = [(datetime(2026, 3, day, 1), datetime(2026, 3, day, 3)) for day in (1, 8, 15, 22)]
    expected.append((datetime(2026, 3, 29, 1), datetime(2026, 3, 29, 2)))
    expected += [(datetime(2026, 4, day, 0), datetime(2026, 4, day, 2)) for day in (5, 12, 19, 26)]
    assert correction.intervals(datetime(2026, 3, 1), datetime(2026, 5, 1)) == expected


def test_weekly_rule_across_the_autumn_dst_change(con: duckdb.DuckDBPyConnection) -> None:
    correction = berlin_sundays(con)
    # 18 October, CEST: 00:00-02:00Z. 25 October: clocks go back from 03:00 CEST to 02:00 CET (at 01:00Z),
    # so 02:00 local happens twice; the first (CEST, 00:00Z) is taken. The end, 04:00 CET, is 03:00Z: a
    # three-hour window. 1 November, CET: 01:00-03:00Z.
    assert correction.intervals(datetime(2026, 10, 18), datetime(2026, 11, 2)) == [
        (datetime(2026, 10, 18, 0), datetime(2026, 10, 18, 2)),
        (datetime(2026, 10, 25, 0), datetime(2026, 10, 25, 3)),
        (datetime(2026, 11, 1, 1), datetime(2026, 11, 1, 3)),
    ]


def test_an_occurrence_in_the_gap_keeps_the_part_that_happened(con: duckdb.DuckDBPyConnection) -> None:
    correction = add_correction(
        con,
        slo="*",
        reason="nightly batch",
        added_by="alice",
        start=datetime(2026, 3, 28, 2, 30),
        rrule="FREQ=DAILY",
        duration_minutes=60,
        time_zone="Europe/Berlin",
    )
    # Daily 02:30-03:30 Berlin time. 28 March, CET: 01:30-02:30Z. 29 March: 02:00-03:00 does not exist,
    # so 02:30 resolves to the end of the gap, 03:00 CEST = 01:00Z, and the window is what remains of it,
    # 03:00-03:30 CEST = 01:00-01:30Z (not 03:30-04:30 CEST, past its local end). 30 March, CEST:
    # 00:30-01:30Z.
    assert correction.intervals(datetime(2026, 3, 28), datetime(2026, 3, 31)) == [
        (datetime(2026, 3, 28, 1, 30), datetime(2026, 3, 28, 2, 30)),
        (datetime(2026, 3, 29, 1, 0), datetime(2026, 3, 29, 1, 30)),
        (datetime(2026, 3, 30, 0, 30), datetime(2026, 3, 30, 1, 30)),
    ]


def test_intervals_are_clipped_to_the_range(con: duckdb.DuckDBPyConnection) -> None:
    correction = berlin_sundays(con)
    # 8 March 01:00-03:00Z cut at both ends; nothing before the first occurrence (1 March).
    assert correction.intervals(datetime(2026, 3, 8, 1, 30), datetime(2026, 3, 8, 2, 15)) == [
        (datetime(2026, 3, 8, 1, 30), datetime(2026, 3, 8, 2, 15))
    ]
    assert correction.intervals(datetime(2026, 2, 1), datetime(2026, 3, 1)) == []
    assert correction.intervals(datetime(2026, 3, 2), datetime(2026, 3, 2)) == []
    one = one_off(con, datetime(2026, 3, 1, 10, 0), datetime(2026, 3, 1, 11, 0))
    assert one.intervals(datetime(2026, 3, 1, 10, 30), datetime(2026, 3, 2)) == [
        (datetime(2026, 3, 1, 10, 30), datetime(2026, 3, 1, 11, 0))
    ]
    assert one.intervals(datetime(2026, 3, 1, 11, 0), datetime(2026, 3, 2)) == []  # [start, end) is half-open


def test_aware_start_of_a_recurring_correction_is_converted_to_local_time(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # 01:00Z on 1 March is 02:00 in Berlin (CET): the same correction as a naive local 02:00.
    aware = add_correction(
        con,
        slo="checkout-availability",
        reason="maintenance",
        added_by="alice",
        start=datetime(2026, 3, 1, 1, 0, tzinfo=UTC),
        rrule=BERLIN_SUNDAYS,
        duration_minutes=120,
        time_zone="Europe/Berlin",
    )
    assert aware.start == berlin_sundays(con).start == datetime(2026, 3, 1, 1, 0)


@pytest.mark.parametrize(
    ("until", "days"),
    [
        ("20260303T010000Z", [1, 2, 3]),  # 3 March 02:00 CET is exactly 01:00Z; UNTIL is inclusive
        ("20260303T005959Z", [1, 2]),
        ("20260303T020000", [1, 2, 3]),  # no Z: Berlin wall time
        ("20260303T015959", [1, 2]),
    ],
)
def test_until_in_utc_or_local_time(con: duckdb.DuckDBPyConnection, until: str, days: list[int]) -> None:
    correction = add_correction(
        con,
        slo="checkout-availability",
        reason="maintenance",
        added_by="alice",
        start=datetime(2026, 3, 1, 2, 0),
        rrule=f"FREQ=DAILY;UNTIL={until}",
        duration_minutes=30,
        time_zone="Europe/Berlin",
    )
    assert correction.intervals(datetime(2026, 2, 1), datetime(2026, 4, 1)) == [
        (datetime(2026, 3, day, 1, 0), datetime(2026, 3, day, 1, 30)) for day in days
    ]


def test_count_bounds_the_rule(con: duckdb.DuckDBPyConnection) -> None:
    correction = add_correction(
        con,
        slo="*",
        reason="three nightly restarts",
        added_by="alice",
        start=datetime(2026, 3, 1, 23, 50),
        rrule="RRULE:FREQ=DAILY;COUNT=3",
        duration_minutes=20,
    )
    # UTC: 23:50 on 1, 2 and 3 March, 20 minutes each, crossing midnight.
    assert correction.intervals(datetime(2026, 1, 1), datetime(2027, 1, 1)) == [
        (datetime(2026, 3, day, 23, 50), datetime(2026, 3, day + 1, 0, 10)) for day in (1, 2, 3)
    ]
    assert correction.intervals(datetime(2026, 6, 1), datetime(2026, 7, 1)) == []


def _reference_intervals(
    rule: str, first_local: datetime, minutes: int, zone: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The slow way: dateutil from DTSTART (no anchoring); a wall time that does not exist is stepped
    forward minute by minute to the first that does; the union by the aggregate module's merge."""
    tz = ZoneInfo(zone)

    def utc(local: datetime) -> datetime:
        while local.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local:
            local += timedelta(minutes=1)
        return local.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)

    found = []
    for occurrence in rrulestr(rule, dtstart=first_local).between(
        start - timedelta(days=3), end + timedelta(days=3), inc=True
    ):
        low, high = max(utc(occurrence), start), min(utc(occurrence + timedelta(minutes=minutes)), end)
        if low < high:
            found.append((low, high))
    return merge_ranges(found)


@pytest.mark.parametrize(
    ("rule", "first_local", "minutes"),
    [
        ("FREQ=MINUTELY;INTERVAL=7", datetime(2025, 1, 1, 0, 3), 2),
        ("FREQ=HOURLY;INTERVAL=5;BYMINUTE=10", datetime(2025, 1, 1, 3, 10), 15),
        ("FREQ=DAILY;INTERVAL=3;BYHOUR=1,13", datetime(2025, 1, 2, 1, 0), 45),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;BYHOUR=2;BYMINUTE=30", datetime(2025, 1, 5, 2, 30), 90),
        ("FREQ=WEEKLY;INTERVAL=2", datetime(2025, 1, 8, 22, 0), 180),  # Wednesdays 1 April, 28 October
        ("FREQ=MONTHLY;BYDAY=-1SU;BYHOUR=2", datetime(2025, 1, 26, 2, 0), 120),  # 29 March, 25 October
    ],
)
def test_expansion_from_a_moved_anchor_matches_expansion_from_the_start(
    con: duckdb.DuckDBPyConnection, rule: str, first_local: datetime, minutes: int
) -> None:
    correction = add_correction(
        con,
        slo="*",
        reason="x",
        added_by="alice",
        start=first_local,
        rrule=rule,
        duration_minutes=minutes,
        time_zone="Europe/Berlin",
    )
    # Both 2026 DST changes, far from the 2025 first occurrence.
    for start, end in [
        (datetime(2026, 3, 27, 5, 17), datetime(2026, 4, 3)),
        (datetime(2026, 10, 20), datetime(2026, 10, 30, 11, 59)),
    ]:
        expected = _reference_intervals(rule, first_local, minutes, "Europe/Berlin", start, end)
        assert expected
        assert correction.intervals(start, end) == expected


def test_a_five_minute_rule_over_ninety_days_is_fast(con: duckdb.DuckDBPyConnection) -> None:
    correction = add_correction(
        con,
        slo="*",
        reason="synthetic probe storm",
        added_by="alice",
        start=datetime(2006, 1, 1),  # twenty years of occurrences before the range
        rrule="FREQ=MINUTELY;INTERVAL=5",
        duration_minutes=1,
        time_zone="Europe/Berlin",
    )
    began = time.perf_counter()
    mask = excluded_minute_mask([correction], datetime(2026, 1, 1), 90 * 24 * 60)
    elapsed = time.perf_counter() - began
    # Every fifth UTC minute: 90 days * 288 a day = 25 920. On the spring-forward night (29 March) the
    # twelve local times 02:00-02:55 never happen and cover nothing, but every UTC minute still has a
    # local time on the grid (offsets are whole hours), so no slot is lost.
    assert int(mask.sum()) == 25_920
    assert mask[:10].tolist() == [True, False, False, False, False] * 2
    # Walking twenty years from DTSTART takes several seconds; anchoring near the range well under one.
    assert elapsed < 2.0


# --- minute masks and days -------------------------------------------------------------------------------


def test_partial_minutes_are_excluded_whole(con: duckdb.DuckDBPyConnection) -> None:
    correction = one_off(con, datetime(2026, 3, 2, 10, 0, 30), datetime(2026, 3, 2, 10, 2, 10))
    # 10:00:30 floors to 10:00, 10:02:10 ceils to 10:03: minutes 10:00, 10:01 and 10:02.
    assert excluded_intervals([correction], datetime(2026, 3, 2), datetime(2026, 3, 3)) == [
        (datetime(2026, 3, 2, 10, 0), datetime(2026, 3, 2, 10, 3))
    ]
    mask = excluded_minute_mask([correction], datetime(2026, 3, 2, 9, 58), 6)
    # minutes:             09:58  09:59  10:00 10:01 10:02 10:03
    assert mask.tolist() == [False, False, True, True, True, False]
    assert mask.dtype == np.bool_


def test_overlapping_and_touching_corrections_merge(con: duckdb.DuckDBPyConnection) -> None:
    first = one_off(con, datetime(2026, 3, 2, 10, 0, 30), datetime(2026, 3, 2, 10, 2, 10))  # 10:00-10:03
    overlapping = one_off(con, datetime(2026, 3, 2, 10, 2), datetime(2026, 3, 2, 10, 4))  # 10:02-10:04
    touching = one_off(con, datetime(2026, 3, 2, 10, 4), datetime(2026, 3, 2, 10, 5))  # 10:04-10:05
    apart = one_off(con, datetime(2026, 3, 2, 10, 6, 59), datetime(2026, 3, 2, 10, 7))  # 10:06-10:07
    corrections = [apart, touching, first, overlapping]
    assert excluded_intervals(corrections, datetime(2026, 3, 2), datetime(2026, 3, 3)) == [
        (datetime(2026, 3, 2, 10, 0), datetime(2026, 3, 2, 10, 5)),
        (datetime(2026, 3, 2, 10, 6), datetime(2026, 3, 2, 10, 7)),
    ]
    mask = excluded_minute_mask(corrections, datetime(2026, 3, 2, 10, 0), 8)
    # minutes: 10:00-10:04 excluded, 10:05 kept, 10:06 excluded, 10:07 kept
    assert mask.tolist() == [True, True, True, True, True, False, True, False]
    # Clipped to the range asked for.
    assert excluded_intervals(corrections, datetime(2026, 3, 2, 10, 1), datetime(2026, 3, 2, 10, 3)) == [
        (datetime(2026, 3, 2, 10, 1), datetime(2026, 3, 2, 10, 3))
    ]
    assert excluded_intervals([], datetime(2026, 3, 2), datetime(2026, 3, 3)) == []


def test_recurring_mask_across_dst(con: duckdb.DuckDBPyConnection) -> None:
    correction = berlin_sundays(con)
    # From Saturday 28 March 00:00Z, three days: only 29 March 01:00-02:00Z (minutes 1500-1559, since
    # 29 March 00:00Z is minute 1440).
    mask = excluded_minute_mask([correction], datetime(2026, 3, 28), 3 * 24 * 60)
    assert np.flatnonzero(mask).tolist() == list(range(1500, 1560))


def test_mask_needs_a_whole_minute_start() -> None:
    with pytest.raises(CorrectionError, match="start must be a whole minute"):
        excluded_minute_mask([], datetime(2026, 3, 2, 10, 0, 30), 5)
    with pytest.raises(CorrectionError, match="minutes must be a non-negative integer"):
        excluded_minute_mask([], datetime(2026, 3, 2, 10, 0), -1)
    assert excluded_minute_mask([], datetime(2026, 3, 2, 10, 0), 0).tolist() == []


def test_affected_days(con: duckdb.DuckDBPyConnection) -> None:
    # 23:59:30 on 1 March to midnight on 3 March: 1 and 2 March. The end is exclusive, so 3 March is not
    # touched; widening 23:59:30 down to 23:59 stays on 1 March.
    spanning = one_off(con, datetime(2026, 3, 1, 23, 59, 30), datetime(2026, 3, 3, 0, 0))
    assert affected_days(spanning, datetime(2026, 1, 1), datetime(2027, 1, 1)) == [
        date(2026, 3, 1),
        date(2026, 3, 2),
    ]
    assert affected_days(spanning, datetime(2026, 3, 2), datetime(2026, 4, 1)) == [date(2026, 3, 2)]
    assert affected_days(spanning, datetime(2026, 4, 1), datetime(2026, 5, 1)) == []
    # Berlin Sundays 02:00-04:00: the UTC intervals (01:00-03:00Z, later 00:00-02:00Z) stay on the Sunday.
    assert affected_days(berlin_sundays(con), datetime(2026, 3, 1), datetime(2026, 4, 13)) == [
        date(2026, 3, 1),
        date(2026, 3, 8),
        date(2026, 3, 15),
        date(2026, 3, 22),
        date(2026, 3, 29),
        date(2026, 4, 5),
        date(2026, 4, 12),
    ]


def test_affected_days_of_a_window_crossing_utc_midnight(con: duckdb.DuckDBPyConnection) -> None:
    # Saturdays 23:00-01:00 New York (UTC-5 in January): 04:00-06:00Z on the Sunday, one UTC day each.
    new_york = add_correction(
        con,
        slo="*",
        reason="x",
        added_by="alice",
        start=datetime(2026, 1, 3, 23, 0),
        rrule="FREQ=WEEKLY;BYDAY=SA;BYHOUR=23;BYMINUTE=0",
        duration_minutes=120,
        time_zone="America/New_York",
    )
    assert affected_days(new_york, datetime(2026, 1, 1), datetime(2026, 1, 12)) == [
        date(2026, 1, 4),
        date(2026, 1, 11),
    ]
    # Sunday 22:30 UTC for 3 hours: Sunday and Monday.
    late = add_correction(
        con,
        slo="*",
        reason="x",
        added_by="alice",
        start=datetime(2026, 3, 1, 22, 30),
        rrule="FREQ=WEEKLY;COUNT=1",
        duration_minutes=180,
    )
    assert affected_days(late, datetime(2026, 1, 1), datetime(2027, 1, 1)) == [
        date(2026, 3, 1),
        date(2026, 3, 2),
    ]


# --- hostile strings -------------------------------------------------------------------------------------


def test_hostile_strings_are_stored_verbatim(con: duckdb.DuckDBPyConnection) -> None:
    slo = "checkout'; DROP TABLE slo_corrections; --"
    service = 'svc" OR 1=1 --\r\n'
    reason = "it's \"planned\"\r\nline two; DELETE FROM slo_corrections WHERE '1'='1' -- $slo {source}"
    added_by = "Robert'); DROP TABLE raw_events;--\x00\u202e"
    added = one_off(
        con,
        datetime(2026, 3, 1, 10, 0),
        datetime(2026, 3, 1, 11, 0),
        slo=slo,
        service=service,
        reason=reason,
        added_by=added_by,
    )
    assert (added.slo, added.service, added.reason, added.added_by) == (slo, service, reason, added_by)
    assert list_corrections(con, slo=slo) == [added]
    assert active_corrections(con, slo, service) == [added]
    removed = remove_correction(con, added.correction_id, removed_by=added_by, now=LATER)
    assert removed.removed_by == added_by
    assert table_rows(con) == 1
    assert con.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 0  # still there

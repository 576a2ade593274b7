"""Event ids: a repeated (service, event_id) is loaded once, the repeats are quarantined with a reason.

Every expected number below is worked out by hand from the rows written in the test. CSV row numbers are
line numbers (the header is line 1), NDJSON row numbers are line numbers, Parquet rows count from 1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.slo import ingest
from pipelines.slo.aggregate import refresh_aggregates
from pipelines.slo.ingest import ingest_file, ingest_paths
from pipelines.sources import StagedRecords
from pipelines.warehouse import connect
from tests.conftest import write

NOW = datetime(2026, 3, 2)
HEADER = "timestamp,service,status_code,event_id\n"


def _csv(rows: list[tuple[str, str, str, str]]) -> str:
    """Rows of (time of day on 2026-03-01, service, status_code, event_id); line 2 is the first row."""
    return HEADER + "".join(f"2026-03-01T{t}Z,{s},{code},{eid}\n" for t, s, code, eid in rows)


def _quarantine(con: duckdb.DuckDBPyConnection, file_id: int | None = None) -> dict[int, str]:
    rows = con.execute(
        "SELECT source_row, reason FROM quarantine WHERE $f IS NULL OR file_id = $f ORDER BY source_row",
        {"f": file_id},
    ).fetchall()
    return dict(rows)


def _loaded_ids(con: duckdb.DuckDBPyConnection, file_id: int) -> list[tuple[int, str | None]]:
    return con.execute(
        "SELECT source_row, event_id FROM raw_events WHERE file_id = $f ORDER BY source_row", {"f": file_id}
    ).fetchall()


def test_within_a_file_the_first_occurrence_loads(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # ids [a, b, a, "", "", c] for one service, on lines 2-7. The second `a` (line 4) repeats line 2's
    # event; blank ids are no ids, so lines 5 and 6 are two distinct events. 6 read, 5 loaded, 1 quarantined.
    text = _csv(
        [
            ("10:00:00", "checkout", "200", "a"),
            ("10:00:10", "checkout", "200", "b"),
            ("10:00:20", "checkout", "500", "a"),
            ("10:00:30", "checkout", "200", ""),
            ("10:00:40", "checkout", "200", ""),
            ("10:00:50", "checkout", "200", "c"),
        ]
    )
    result = ingest_file(warehouse, write(tmp_path / "e.csv", text), now=NOW)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (6, 5, 1)
    assert _quarantine(warehouse) == {
        4: "duplicate event_id 'a' for service 'checkout' (first at row 2 of this file)"
    }
    assert _loaded_ids(warehouse, result.file_id) == [(2, "a"), (3, "b"), (5, None), (6, None), (7, "c")]
    # The duplicate keeps its original record, like every quarantined row.
    (record,) = warehouse.execute("SELECT record FROM quarantine").fetchone()
    assert json.loads(record) == {
        "timestamp": "2026-03-01T10:00:20Z",
        "service": "checkout",
        "status_code": "500",
        "event_id": "a",
    }


def test_a_rows_own_problems_come_first(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # line 2: id x, status 'abc'  -> quarantined for the status; an invalid row is no "first" of its id
    # line 3: id x                -> the first valid x: loads
    # line 4: id " x " (trimmed)  -> x again: duplicate of line 3
    # line 5: id "   "            -> blank after trimming: no id, loads
    # line 6: id x, status 'abc'  -> quarantined for the status only (not also as a duplicate)
    # 5 read, 2 loaded (lines 3 and 5), 3 quarantined.
    text = _csv(
        [
            ("10:00:00", "checkout", "abc", "x"),
            ("10:00:01", "checkout", "200", "x"),
            ("10:00:02", "checkout", "200", " x "),
            ("10:00:03", "checkout", "200", "   "),
            ("10:00:04", "checkout", "abc", "x"),
        ]
    )
    result = ingest_file(warehouse, write(tmp_path / "e.csv", text), now=NOW)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (5, 2, 3)
    status = "status_code 'abc' is not an HTTP status (an integer 100-599)"
    assert _quarantine(warehouse) == {
        2: status,
        4: "duplicate event_id 'x' for service 'checkout' (first at row 3 of this file)",
        6: status,
    }
    assert _loaded_ids(warehouse, result.file_id) == [(3, "x"), (5, None)]


def test_the_same_id_in_two_services_is_two_events(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Identity is (service, event_id): checkout/a and search/a differ; line 4 repeats checkout/a.
    # 3 read, 2 loaded, 1 quarantined.
    text = _csv(
        [
            ("10:00:00", "checkout", "200", "a"),
            ("10:00:00", "search", "200", "a"),
            ("10:00:00", "checkout", "200", "a"),
        ]
    )
    result = ingest_file(warehouse, write(tmp_path / "e.csv", text), now=NOW)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert _quarantine(warehouse) == {
        4: "duplicate event_id 'a' for service 'checkout' (first at row 2 of this file)"
    }


def test_an_id_loaded_from_another_file_is_a_duplicate(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    day1 = write(
        tmp_path / "land" / "day1.csv",
        _csv([("10:00:00", "checkout", "200", "a"), ("10:00:01", "checkout", "200", "b")]),
    )
    write(
        tmp_path / "land" / "day2.csv",
        _csv(
            [
                ("10:00:01", "checkout", "200", "b"),  # line 2: b is loaded from day1.csv line 3
                ("10:00:02", "checkout", "200", "c"),  # line 3: new
                ("10:00:01", "checkout", "200", "b"),  # line 4: b again: names the loaded one too
                ("10:00:01", "search", "200", "b"),  # line 5: another service: a new event
            ]
        ),
    )
    report = ingest_paths(warehouse, [tmp_path / "land"], now=NOW)
    # day1: 2 read, 2 loaded. day2: 4 read, 2 loaded (lines 3 and 5), 2 quarantined (lines 2 and 4).
    assert [(f.rows_read, f.rows_loaded, f.rows_quarantined) for f in report.files] == [(2, 2, 0), (4, 2, 2)]
    second = report.files[1].file_id
    expected = f"duplicate event_id 'b' for service 'checkout' already loaded from {day1.resolve()} row 3"
    assert _quarantine(warehouse, second) == {2: expected, 4: expected}
    assert _loaded_ids(warehouse, second) == [(3, "c"), (5, "b")]
    assert warehouse.execute("SELECT count(*) FROM raw_events WHERE event_id = 'b'").fetchone()[0] == 2


def test_rerunning_changes_nothing(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    write(tmp_path / "land" / "day1.csv", _csv([("10:00:00", "checkout", "200", "a")] * 3))
    write(tmp_path / "land" / "day2.csv", _csv([("10:00:00", "checkout", "200", "a")]))
    first = ingest_paths(warehouse, [tmp_path / "land"], now=NOW)
    # day1: the first `a` loads, the two repeats are quarantined; day2's `a` is already loaded.
    assert (first.rows_read, first.rows_loaded, first.rows_quarantined) == (4, 1, 3)
    tables = (
        "SELECT (SELECT count(*) FROM raw_events), (SELECT count(*) FROM quarantine), "
        "(SELECT count(*) FROM ingested_files)"
    )
    before = warehouse.execute(tables).fetchone()
    again = ingest_paths(warehouse, [tmp_path / "land"], now=NOW)
    assert [f.status for f in again.files] == ["skipped", "skipped"]
    assert warehouse.execute(tables).fetchone() == before == (1, 3, 2)
    # The same bytes at another path are recognised as a copy, not quarantined again as duplicates.
    write(tmp_path / "copy" / "day1.csv", _csv([("10:00:00", "checkout", "200", "a")] * 3))
    copy = ingest_paths(warehouse, [tmp_path / "copy"], now=NOW)
    assert copy.files[0].status == "skipped" and "same content" in copy.files[0].message
    assert warehouse.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 3


def test_a_changed_file_never_counts_its_own_events_as_duplicates(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    path = write(
        tmp_path / "events.csv",
        _csv([("10:00:00", "checkout", "200", "a"), ("10:00:01", "checkout", "500", "b")]),
    )
    ingest_file(warehouse, path, now=NOW)
    # The corrected export: b's status fixed, c added. Its earlier version goes first, so a and b are not
    # "already loaded": 3 read, 3 loaded, 0 quarantined.
    write(
        path,
        _csv(
            [
                ("10:00:00", "checkout", "200", "a"),
                ("10:00:01", "checkout", "200", "b"),
                ("10:00:02", "checkout", "200", "c"),
            ]
        ),
    )
    result = ingest_file(warehouse, path, now=NOW)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == (
        "loaded",
        3,
        3,
        0,
    )
    assert warehouse.execute("SELECT event_id, status_code FROM raw_events ORDER BY event_id").fetchall() == [
        ("a", 200),
        ("b", 200),
        ("c", 200),
    ]
    assert _quarantine(warehouse) == {}
    # Another file with `a` now names the corrected version (line 2 of the same path).
    other = ingest_file(
        warehouse, write(tmp_path / "other.csv", _csv([("10:00:00", "checkout", "200", "a")])), now=NOW
    )
    assert _quarantine(warehouse, other.file_id) == {
        2: f"duplicate event_id 'a' for service 'checkout' already loaded from {path.resolve()} row 2"
    }


def test_a_duplicate_stays_quarantined_when_its_original_is_superseded(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # The chosen behaviour: a quarantined duplicate is a record of what arrived, never loaded later by
    # itself. a.csv loads x and y; b.csv's x is a duplicate. a.csv is then corrected without x: x leaves
    # raw_events and b.csv's x stays in the quarantine. The same bytes as b.csv elsewhere are a copy of a
    # file already ingested (skipped); b.csv re-landed with new content is ingested again and x loads.
    a = write(
        tmp_path / "a.csv", _csv([("10:00:00", "checkout", "200", "x"), ("10:00:01", "checkout", "200", "y")])
    )
    ingest_file(warehouse, a, now=NOW)
    b_path = write(tmp_path / "b.csv", _csv([("10:00:00", "checkout", "200", "x")]))
    b = ingest_file(warehouse, b_path, now=NOW)
    assert (b.rows_loaded, b.rows_quarantined) == (0, 1)
    write(a, _csv([("10:00:01", "checkout", "200", "y")]))
    assert ingest_file(warehouse, a, now=NOW).rows_loaded == 1
    assert warehouse.execute("SELECT list(event_id ORDER BY event_id) FROM raw_events").fetchone()[0] == ["y"]
    assert list(_quarantine(warehouse, b.file_id)) == [2]
    copy = ingest_file(warehouse, write(tmp_path / "c.csv", b_path.read_text()), now=NOW)
    assert copy.status == "skipped" and "same content" in copy.message
    write(b_path, _csv([("10:00:00", "checkout", "200", "x"), ("10:00:02", "checkout", "200", "z")]))
    relanded = ingest_file(warehouse, b_path, now=NOW)
    assert (relanded.rows_loaded, relanded.rows_quarantined) == (2, 0)
    assert warehouse.execute("SELECT list(event_id ORDER BY event_id) FROM raw_events").fetchone()[0] == [
        "x",
        "y",
        "z",
    ]


def test_parquet_and_ndjson_ids(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    t = datetime(2026, 3, 1, 10, tzinfo=UTC)
    (tmp_path / "land").mkdir()
    pl.DataFrame(
        {
            "timestamp": [t, t, t, t],
            "service": ["checkout"] * 4,
            "status_code": [200, 200, 200, 200],
            "event_id": pl.Series([1, 2, 1, None], dtype=pl.Int64),  # integer ids compare as their text
        }
    ).write_parquet(tmp_path / "land" / "a.parquet")
    lines = [
        {"event_id": 2},  # line 1: "2" is loaded from a.parquet row 2
        {"event_id": "3"},  # line 2: new
        {"event_id": None},  # line 3: no id
        {"event_id": {"id": 4}},  # line 4: not a single value: quarantined for that
        {"event_id": 3},  # line 5: "3" again: duplicate of line 2
    ]
    write(
        tmp_path / "land" / "b.ndjson",
        "".join(
            json.dumps({"timestamp": "2026-03-01T10:00:00Z", "service": "checkout", "status_code": 200, **r})
            + "\n"
            for r in lines
        ),
    )
    report = ingest_paths(warehouse, [tmp_path / "land"], now=NOW)
    # a.parquet: 4 read, 3 loaded (rows 1, 2, 4), 1 quarantined (row 3 repeats row 1).
    # b.ndjson: 5 read, 2 loaded (lines 2, 3), 3 quarantined (lines 1, 4, 5).
    assert [(f.rows_read, f.rows_loaded, f.rows_quarantined) for f in report.files] == [(4, 3, 1), (5, 2, 3)]
    parquet, ndjson = (f.file_id for f in report.files)
    assert _quarantine(warehouse, parquet) == {
        3: "duplicate event_id '1' for service 'checkout' (first at row 1 of this file)"
    }
    assert _quarantine(warehouse, ndjson) == {
        1: "duplicate event_id '2' for service 'checkout' already loaded from "
        f"{(tmp_path / 'land' / 'a.parquet').resolve()} row 2",
        4: "field 'event_id' is a JSON dict, expected a single value",
        5: "duplicate event_id '3' for service 'checkout' (first at row 2 of this file)",
    }
    assert _loaded_ids(warehouse, parquet) == [(1, "1"), (2, "2"), (4, None)]
    assert _loaded_ids(warehouse, ndjson) == [(2, "3"), (3, None)]


class _EventPlugin:
    """A file source plugin whose records carry an event id (like a request id in an access log)."""

    name = "evt"
    suffixes = (".evt",)

    def read(self, raw: bytes, path: Path) -> StagedRecords:
        lines = raw.decode().splitlines()
        fields = [line.split(" ") for line in lines]
        return StagedRecords(
            columns={
                "timestamp": [f[0] for f in fields],
                "service": [f[1] for f in fields],
                "status_code": [f[2] for f in fields],
                "event_id": [f[3] for f in fields],
            },
            row_numbers=list(range(1, len(lines) + 1)),
            raw=lines,
            problems=[None] * len(lines),
        )


def test_plugin_records_with_ids(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ingest._PLUGINS, ".evt", _EventPlugin())
    monkeypatch.setitem(ingest.FORMATS, ".evt", "plugin:evt")
    text = (
        "2026-03-01T10:00:00Z api 200 r1\n2026-03-01T10:00:01Z api 200 r1\n2026-03-01T10:00:02Z api 503 r2\n"
    )
    result = ingest_file(warehouse, write(tmp_path / "x.evt", text), now=NOW)
    # r1 twice: line 2 repeats line 1. 3 read, 2 loaded, 1 quarantined, with the plugin's raw line kept.
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert warehouse.execute("SELECT source_row, reason, record FROM quarantine").fetchall() == [
        (
            2,
            "duplicate event_id 'r1' for service 'api' (first at row 1 of this file)",
            "2026-03-01T10:00:01Z api 200 r1",
        )
    ]


def test_count_files_ignore_event_ids(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # Counts have no event identity: an event_id column is an ignored extra, repeats are not rejected.
    text = (
        "timestamp,service,total,good,event_id\n"
        "2026-03-01T10:00:00Z,lb,10,9,k\n2026-03-01T10:01:00Z,lb,10,9,k\n"
    )
    result = ingest_file(warehouse, write(tmp_path / "c.csv", text), now=NOW)
    assert (result.schema_kind, result.rows_read, result.rows_loaded, result.rows_quarantined) == (
        "counts",
        2,
        2,
        0,
    )


def test_aggregates_count_each_event_once(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    write(
        tmp_path / "land" / "day1.csv",
        _csv(
            [
                ("10:00:00", "checkout", "200", "a"),
                ("10:00:10", "checkout", "500", "b"),
                ("10:00:20", "checkout", "200", "a"),  # repeat of a: not counted
                ("10:01:00", "checkout", "200", "c"),
            ]
        ),
    )
    write(
        tmp_path / "land" / "day2.csv",
        _csv(
            [
                ("10:00:30", "checkout", "500", "b"),  # b is loaded from day1.csv: not counted
                ("10:01:10", "checkout", "200", "d"),
                ("10:01:20", "checkout", "200", ""),  # no id: always counted
                ("10:01:30", "checkout", "200", ""),
            ]
        ),
    )
    ingest_paths(warehouse, [tmp_path / "land"], now=NOW)
    refresh_aggregates(warehouse, {})
    # By hand: minute 10:00 holds a (200) and b (500); minute 10:01 holds c, d and the two id-less events
    # (all 200). Without dedup 10:00 would read 2 successes and 2 failures.
    rows = warehouse.execute(
        "SELECT bucket_start, status_code, success, requests FROM sli_counts_minute "
        "WHERE service = 'checkout' ORDER BY bucket_start, status_code"
    ).fetchall()
    assert rows == [
        (datetime(2026, 3, 1, 10, 0), 200, True, 1),
        (datetime(2026, 3, 1, 10, 0), 500, False, 1),
        (datetime(2026, 3, 1, 10, 1), 200, True, 4),
    ]


def test_long_event_ids_are_refused(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # 200 characters is the limit, as for service and operation names.
    text = _csv([("10:00:00", "checkout", "200", "i" * 200), ("10:00:01", "checkout", "200", "j" * 201)])
    result = ingest_file(warehouse, write(tmp_path / "e.csv", text), now=NOW)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert _quarantine(warehouse) == {3: "event_id is longer than 200 characters"}


def test_a_warehouse_from_before_event_ids_gains_the_column(tmp_path: Path) -> None:
    # raw_events as it was created before event ids existed (8 columns), with one loaded event.
    db = tmp_path / "old.duckdb"
    old = duckdb.connect(str(db))
    old.execute(
        "CREATE TABLE raw_events (ts TIMESTAMP NOT NULL, service VARCHAR NOT NULL, "
        "operation VARCHAR NOT NULL, status_code SMALLINT, success BOOLEAN, latency_ms DOUBLE, "
        "file_id INTEGER NOT NULL, source_row BIGINT NOT NULL)"
    )
    old.execute("INSERT INTO raw_events VALUES ('2026-03-01 09:00:00', 'checkout', '', 200, NULL, 1.0, 1, 2)")
    old.close()
    con = connect(db)
    try:
        # The old row has no id; a file with ids loads next to it and its repeat is still caught.
        text = _csv([("10:00:00", "checkout", "200", "a"), ("10:00:01", "checkout", "200", "a")])
        result = ingest_file(con, write(tmp_path / "e.csv", text), now=NOW)
        assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
        assert con.execute("SELECT source_row, event_id FROM raw_events ORDER BY ts").fetchall() == [
            (2, None),
            (2, "a"),
        ]
    finally:
        con.close()

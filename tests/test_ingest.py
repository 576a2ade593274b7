"""Ingestion: every row read is loaded or quarantined with a reason; re-ingestion changes nothing."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.slo.aggregate import refresh_aggregates
from pipelines.slo.ingest import IngestError, ingest_file, ingest_paths
from tests.conftest import write

NOW = datetime(2026, 3, 2)

MALFORMED_CSV = """timestamp,service,operation,status_code,success,latency_ms
2026-03-01T00:00:00Z,shop,pay,200,,12.5
2026-03-01T00:00:01Z,shop,pay,abc,,12.5
yesterday,shop,pay,200,,1
2026-03-01T00:00:02,shop,pay,200,,1
2026-03-01T00:00:03Z,,pay,200,,1
2026-03-01T00:00:04Z,shop,pay,,,1
2026-03-01T00:00:05Z,shop,pay,200,,-4
2026-03-01T00:00:06Z,shop,pay,200,,NaN
2026-03-01T00:00:07Z,shop,pay,200,maybe,1
2026-03-01T00:00:08Z,shop
2099-01-01T00:00:00Z,shop,pay,200,,1
1772323209,shop,pay,200,,1
1772323210000,shop,pay,201,,inf

2026-03-01T00:00:11+05:30,shop,"pay, refund",200,true,
"""


def test_malformed_rows_are_quarantined_with_reasons(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    path = write(tmp_path / "events.csv", MALFORMED_CSV)
    result = ingest_file(warehouse, path, now=NOW)
    # Records are lines 2-14 and 16 (line 15 is blank, not a record): 14. Loaded: line 2 (ISO Z), line 13
    # (epoch seconds), line 16 (+05:30, quoted comma in operation, no latency). The other 11 have a problem.
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (14, 3, 11)
    reasons = dict(
        warehouse.execute("SELECT source_row, reason FROM quarantine ORDER BY source_row").fetchall()
    )
    assert set(reasons) == {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14}
    assert "status_code 'abc'" in reasons[3]
    assert "timestamp 'yesterday'" in reasons[4]
    assert reasons[5] == "timestamp '2026-03-01T00:00:02' has no UTC offset; write e.g. 2026-03-01T00:00:02Z"
    assert reasons[6] == "service is missing"
    assert reasons[7] == "neither status_code nor success is given"
    assert "latency_ms '-4'" in reasons[8]
    assert "latency_ms 'NaN'" in reasons[9]
    assert "success 'maybe'" in reasons[10]
    assert reasons[11] == "expected 6 fields, found 2"
    assert "is in the future" in reasons[12]
    assert "latency_ms 'inf'" in reasons[14]
    # The record is kept so nothing is lost.
    record = json.loads(warehouse.execute("SELECT record FROM quarantine WHERE source_row = 3").fetchone()[0])
    assert record["status_code"] == "abc"
    loaded = warehouse.execute(
        "SELECT ts, operation, success, latency_ms FROM raw_events ORDER BY ts"
    ).fetchall()
    assert loaded == [
        (
            datetime(2026, 2, 28, 18, 30, 11),
            "pay, refund",
            True,
            None,
        ),  # 00:00:11+05:30 = 18:30:11Z the day before
        (datetime(2026, 3, 1, 0, 0), "pay", None, 12.5),
        (datetime(2026, 3, 1, 0, 0, 9), "pay", None, 1.0),  # 1772323209 s since the epoch
    ]


def test_accounting_holds_per_file(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    write(tmp_path / "land" / "a.csv", MALFORMED_CSV)
    write(
        tmp_path / "land" / "b.ndjson",
        '{"timestamp": 1772323200000, "service": "auth", "success": true}\n'
        '{"timestamp": "x", "service": "auth", "success": true}\n'
        '{"timestamp": 17\n'
        "[1, 2]\n"
        "\n"
        '{"timestamp": "2026-03-01T00:00:00Z", "service": "auth", "status_code": 503, "latency_ms": 3}\n',
    )
    write(
        tmp_path / "land" / "c.csv",
        "timestamp,service,operation,total,good\n"
        "2026-03-01T00:01:00Z,auth,login,10,9\n"
        "2026-03-01T00:01:00Z,auth,login,10,11\n"
        "2026-03-01T00:02:00Z,auth,login,-1,0\n"
        "2026-03-01T00:03:00Z,auth,login,5,\n",
    )
    ingest_paths(warehouse, [tmp_path / "land"], now=NOW)
    rows = warehouse.execute(
        "SELECT f.path, f.rows_read, f.rows_loaded, f.rows_quarantined, "
        "(SELECT count(*) FROM quarantine q WHERE q.file_id = f.file_id), "
        "(SELECT count(*) FROM raw_events e WHERE e.file_id = f.file_id) + "
        "(SELECT count(*) FROM raw_counts c WHERE c.file_id = f.file_id) "
        "FROM ingested_files f ORDER BY path"
    ).fetchall()
    by_name = {Path(r[0]).name: r[1:] for r in rows}
    # a.csv: see above. b.ndjson: 5 records (blank line skipped), 2 valid. c.csv: 4 records, 1 valid.
    assert by_name["a.csv"] == (14, 3, 11, 11, 3)
    assert by_name["b.ndjson"] == (5, 2, 3, 3, 2)
    assert by_name["c.csv"] == (4, 1, 3, 3, 1)
    reasons = [
        r[0]
        for r in warehouse.execute(
            "SELECT reason FROM quarantine q JOIN ingested_files f USING (file_id) "
            "WHERE f.path LIKE '%c.csv' "
            "ORDER BY source_row"
        ).fetchall()
    ]
    assert reasons == [
        "good 11 exceeds total 10",
        "total '-1' is not a whole number >= 0",
        "neither good nor bad is given",
    ]


def test_reingesting_changes_nothing(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    write(tmp_path / "land" / "a.csv", MALFORMED_CSV)
    first = ingest_paths(warehouse, [tmp_path / "land"], now=NOW)
    snapshot = warehouse.execute("SELECT count(*), sum(hash(ts)) FROM raw_events").fetchone()
    again = ingest_paths(warehouse, [tmp_path / "land"], now=NOW)
    assert [f.status for f in again.files] == ["skipped"]
    assert warehouse.execute("SELECT count(*), sum(hash(ts)) FROM raw_events").fetchone() == snapshot
    assert warehouse.execute("SELECT count(*) FROM quarantine").fetchone()[0] == first.rows_quarantined
    # The same bytes under another name are recognised too.
    write(tmp_path / "land2" / "copy.csv", MALFORMED_CSV)
    copy = ingest_paths(warehouse, [tmp_path / "land2"], now=NOW)
    assert copy.files[0].status == "skipped" and "same content" in copy.files[0].message
    assert warehouse.execute("SELECT count(*) FROM raw_events").fetchone()[0] == snapshot[0]


def test_changed_file_replaces_its_previous_rows(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    header = "timestamp,service,status_code\n"
    path = write(
        tmp_path / "a.csv", header + "2026-03-01T00:00:00Z,shop,200\n2026-03-01T00:00:01Z,shop,500\n"
    )
    ingest_file(warehouse, path, now=NOW)
    write(path, header + "2026-03-01T00:00:00Z,shop,200\n")
    result = ingest_file(warehouse, path, now=NOW)
    assert result.status == "loaded"
    assert warehouse.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 1
    statuses = warehouse.execute("SELECT status FROM ingested_files ORDER BY file_id").fetchall()
    assert statuses == [("superseded",), ("loaded",)]
    # The old version's minutes are marked for re-aggregation.
    assert warehouse.execute("SELECT count(*) FROM dirty_ranges").fetchone()[0] == 3


def test_parquet_types_and_naive_timestamps(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    frame = pl.DataFrame(
        {
            "Timestamp": pl.Series([datetime(2026, 3, 1, 1), datetime(2026, 3, 1, 2)]).dt.replace_time_zone(
                "UTC"
            ),
            "service": ["shop", "shop"],
            "status_code": pl.Series([200, 502], dtype=pl.Int16),
            "latency_ms": [1.5, float("nan")],
        }
    )
    frame.write_parquet(tmp_path / "aware.parquet")
    frame.with_columns(pl.col("Timestamp").dt.replace_time_zone(None)).write_parquet(
        tmp_path / "naive.parquet"
    )
    aware = ingest_file(warehouse, tmp_path / "aware.parquet", now=NOW)
    naive = ingest_file(warehouse, tmp_path / "naive.parquet", now=NOW)
    # Header names are case-insensitive. The NaN latency quarantines row 2 in both files.
    assert (aware.rows_loaded, aware.rows_quarantined) == (1, 1)
    # Naive Parquet timestamps do not say they are UTC (isAdjustedToUTC=false): all quarantined.
    assert (naive.rows_loaded, naive.rows_quarantined) == (0, 2)
    assert warehouse.execute("SELECT ts, status_code FROM raw_events").fetchall() == [
        (datetime(2026, 3, 1, 1), 200)
    ]


def test_truncated_parquet_fails_clearly_and_once(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    pl.DataFrame({"timestamp": ["2026-03-01T00:00:00Z"], "service": ["a"], "success": [True]}).write_parquet(
        tmp_path / "ok.parquet"
    )
    data = (tmp_path / "ok.parquet").read_bytes()
    (tmp_path / "broken.parquet").write_bytes(data[: len(data) // 2])
    result = ingest_file(warehouse, tmp_path / "broken.parquet", now=NOW)
    assert result.status == "failed" and "broken.parquet" in result.message and "Parquet" in result.message
    again = ingest_file(warehouse, tmp_path / "broken.parquet", now=NOW)
    assert again.status == "skipped"
    assert warehouse.execute("SELECT status, rows_read FROM ingested_files").fetchall() == [("failed", 0)]


def test_file_level_problems_quarantine_every_row(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    dup = ingest_file(
        warehouse,
        write(
            tmp_path / "dup.csv",
            "timestamp,service,Service,status_code\n"
            "2026-03-01T00:00:00Z,a,b,200\n2026-03-01T00:00:01Z,a,b,200\n",
        ),
        now=NOW,
    )
    assert (dup.rows_read, dup.rows_quarantined) == (2, 2)
    assert "duplicate column 'service'" in dup.message
    none = ingest_file(
        warehouse,
        write(tmp_path / "none.csv", "timestamp,service,value\n2026-03-01T00:00:00Z,a,1\n"),
        now=NOW,
    )
    assert none.rows_quarantined == 1 and "neither event columns" in none.message
    empty = ingest_file(warehouse, write(tmp_path / "empty.csv", ""), now=NOW)
    assert (empty.status, empty.rows_read) == ("loaded", 0)


def test_invalid_utf8_is_quarantined_not_fatal(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        b"timestamp,service,status_code\n2026-03-01T00:00:00Z,caf\xe9,200\n2026-03-01T00:00:01Z,cafe,200\n"
    )
    result = ingest_file(warehouse, path, now=NOW)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    reason, record = warehouse.execute("SELECT reason, record FROM quarantine").fetchone()
    assert reason == "not valid UTF-8" and "\\xe9" in record


def test_unsupported_and_missing_paths_are_errors(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    with pytest.raises(IngestError, match="unsupported file type"):
        ingest_paths(warehouse, [write(tmp_path / "notes.txt", "x")])
    with pytest.raises(IngestError, match="no such file"):
        ingest_paths(warehouse, [tmp_path / "missing.csv"])


# Regressions found in review; expected numbers worked out by hand.


def test_ndjson_records_end_at_newlines_only(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # U+2028 and U+0085 inside a JSON string are not line ends: 3 records, all valid.
    text = (
        '{"timestamp": "2026-03-01T00:00:00Z", "service": "a\u2028b", "status_code": 200}\n'
        '{"timestamp": "2026-03-01T00:00:01Z", "service": "c\u0085d", "status_code": 503}\r\n'
        '{"timestamp": "2026-03-01T00:00:02Z", "service": "e", "status_code": 200}\n'
    )
    result = ingest_file(warehouse, write(tmp_path / "u.ndjson", text), now=NOW)
    assert (result.rows_read, result.rows_loaded) == (3, 3)
    assert warehouse.execute("SELECT source_row FROM raw_events ORDER BY 1").fetchall() == [(1,), (2,), (3,)]


def test_ndjson_duplicate_keys_and_nested_values(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    text = (
        '{"timestamp": "2026-03-01T00:00:00Z", "service": "a", "status_code": 503, "status_code": 200}\n'
        '{"timestamp": "2026-03-01T00:00:00Z", "service": {"name": "a"}, "status_code": 200}\n'
        '{"timestamp": "2026-03-01T00:00:00Z", "service": "a", "status_code": 200, "_row": 7}\n'
    )
    ingest_file(warehouse, write(tmp_path / "d.ndjson", text), now=NOW)
    reasons = [
        r[0] for r in warehouse.execute("SELECT reason FROM quarantine ORDER BY source_row").fetchall()
    ]
    assert reasons == [
        "key 'status_code' is given more than once",
        "field 'service' is a JSON dict, expected a single value",
        "field '_row' uses a name reserved by sloscope",
    ]


def test_reserved_csv_columns_quarantine_the_file(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    text = "timestamp,service,status_code,_row\n2026-03-01T00:00:00Z,a,200,7\n2026-03-01T00:00:01Z,a,200,7\n"
    result = ingest_file(warehouse, write(tmp_path / "r.csv", text), now=NOW)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 0, 2)
    assert warehouse.execute(
        "SELECT count(*), min(source_row), max(source_row) FROM quarantine"
    ).fetchone() == (2, 2, 3)
    assert result.message == "column '_row' uses a name reserved by sloscope"


def test_parquet_categorical_and_unsupported_types(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    ts = pl.Series([datetime(2026, 3, 1, 1), datetime(2026, 3, 1, 2)]).dt.replace_time_zone("UTC")
    categorical = pl.DataFrame(
        {
            "timestamp": ts,
            "service": pl.Series(["svc", "svc"], dtype=pl.Categorical),
            "status_code": [200, 503],
        }
    )
    categorical.write_parquet(tmp_path / "cat.parquet")
    assert ingest_file(warehouse, tmp_path / "cat.parquet", now=NOW).rows_loaded == 2
    assert warehouse.execute("SELECT DISTINCT service FROM raw_events").fetchall() == [("svc",)]
    listed = pl.DataFrame({"timestamp": ts, "service": [["svc"], ["svc"]], "status_code": [200, 503]})
    listed.write_parquet(tmp_path / "list.parquet")
    result = ingest_file(warehouse, tmp_path / "list.parquet", now=NOW)
    assert (result.rows_loaded, result.rows_quarantined) == (0, 2)
    assert "column 'service' has Parquet type List" in result.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01t10:00:00z", datetime(2026, 3, 1, 10)),
        ("2026-03-01T10:00:00 Z", datetime(2026, 3, 1, 10)),
        ("2026-03-01 10:00:00 +02:00", datetime(2026, 3, 1, 8)),
        ("2026-03-01T10:00:00,250-0130", datetime(2026, 3, 1, 11, 30, 0, 250000)),
        ("2026-03-01T10:00:00+99:99", None),
        ("2026-03-01T10:00:00+15:00", None),
        ("2026-03-01", None),
    ],
)
def test_timestamp_forms(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, text: str, expected: object
) -> None:
    path = write(tmp_path / "t.csv", f'timestamp,service,status_code\n"{text}",a,200\n')
    result = ingest_file(warehouse, path, now=NOW)
    loaded = warehouse.execute("SELECT ts FROM raw_events").fetchall()
    assert loaded == ([(expected,)] if expected else [])
    assert result.rows_quarantined == (0 if expected else 1)


def test_csv_row_numbers_are_where_records_start(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Line 2 holds a record whose quoted operation spans lines 2-3; line 4 is whitespace only (no record);
    # line 5 is bad.
    text = 'timestamp,service,operation,status_code\n2026-03-01T00:00:00Z,a,"x\ny",200\n   \nnope,a,b,200\n'
    result = ingest_file(warehouse, write(tmp_path / "m.csv", text), now=NOW)
    assert (result.rows_read, result.rows_loaded) == (2, 1)
    assert warehouse.execute("SELECT source_row FROM raw_events").fetchall() == [(2,)]
    assert warehouse.execute("SELECT source_row FROM quarantine").fetchall() == [(5,)]


def test_path_rewritten_with_bytes_loaded_elsewhere(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    header = "timestamp,service,status_code\n"
    a = write(tmp_path / "a.csv", header + "2026-03-01T00:00:00Z,a,200\n")
    b = write(tmp_path / "b.csv", header + "2026-03-01T00:00:05Z,a,503\n")
    ingest_file(warehouse, a, now=NOW)
    ingest_file(warehouse, b, now=NOW)
    write(a, b.read_text())  # a.csv now holds exactly b.csv's bytes
    result = ingest_file(warehouse, a, now=NOW)
    assert result.status == "skipped" and "earlier rows were removed" in result.message
    # Only b's event is left: a's old event is gone and b's is not counted twice.
    assert warehouse.execute("SELECT status_code FROM raw_events").fetchall() == [(503,)]


def test_one_failing_file_does_not_stop_the_others(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.slo import ingest

    write(tmp_path / "land" / "a.csv", "timestamp,service,status_code\n2026-03-01T00:00:00Z,a,200\n")
    write(
        tmp_path / "land" / "b.ndjson",
        '{"timestamp": "2026-03-01T00:00:00Z", "service": "a", "success": true}\n',
    )

    def explode(raw: bytes) -> object:
        raise RuntimeError("disk went away")

    monkeypatch.setitem(ingest._READERS, "csv", explode)
    report = ingest_paths(warehouse, [tmp_path / "land"], now=NOW)
    assert [(Path(f.path).name, f.status) for f in report.files] == [
        ("a.csv", "failed"),
        ("b.ndjson", "loaded"),
    ]
    assert "disk went away" in report.files[0].message
    # Not remembered as failed: the next run tries a.csv again.
    assert warehouse.execute("SELECT count(*) FROM ingested_files WHERE status = 'failed'").fetchone()[0] == 0


def test_cumulative_counters_become_interval_counts(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Samples of one series (a 1-minute scrape). Deltas go to the previous sample's minute:
    #   00:00  total 100, good  90  -> baseline: 0 / 0 at 00:00
    #   00:01  total 160, good 145  -> 60 / 55 at 00:00
    #   00:02  total  30, good  28  -> total fell: a reset; counts since restart 30 / 28 at 00:01
    #   00:03  total  50, good  20  -> good fell while total grew: data error, quarantined
    #   00:04  total  70, good  70  -> vs 00:02 (the last loaded sample): 40 / 42: good grew faster: error
    #   00:05  total  80, good  60  -> vs 00:02: 50 / 32 at 00:02
    text = (
        "timestamp,service,operation,total_cumulative,good_cumulative\n"
        "2026-03-01T00:00:00Z,lb,a,100,90\n2026-03-01T00:01:00Z,lb,a,160,145\n"
        "2026-03-01T00:02:00Z,lb,a,30,28\n2026-03-01T00:03:00Z,lb,a,50,20\n"
        "2026-03-01T00:04:00Z,lb,a,70,70\n2026-03-01T00:05:00Z,lb,a,80,60\n"
    )
    result = ingest_file(warehouse, write(tmp_path / "c1.csv", text), now=NOW)
    assert (result.schema_kind, result.rows_read, result.rows_loaded, result.rows_quarantined) == (
        "counters",
        6,
        4,
        2,
    )
    rows = warehouse.execute("SELECT ts, total, good FROM raw_counts ORDER BY source_row").fetchall()
    assert rows == [
        (datetime(2026, 3, 1, 0, 0), 0, 0),
        (datetime(2026, 3, 1, 0, 0), 60, 55),
        (datetime(2026, 3, 1, 0, 1), 30, 28),
        (datetime(2026, 3, 1, 0, 2), 50, 32),
    ]
    reasons = [
        r for (r,) in warehouse.execute("SELECT reason FROM quarantine ORDER BY source_row").fetchall()
    ]
    assert reasons == [
        "good counter fell from 28 to 20 while total did not reset",
        "good grew by 42 but total only by 40",
    ]
    # The next file continues from the last loaded sample (00:05, 80 / 60); a sample older than it is
    # out of order.
    later = (
        "timestamp,service,operation,total_cumulative,good_cumulative\n"
        "2026-03-01T00:06:00Z,lb,a,95,74\n2026-03-01T00:04:30Z,lb,a,75,70\n"
    )
    second = ingest_file(warehouse, write(tmp_path / "c2.csv", later), now=NOW)
    assert (second.rows_loaded, second.rows_quarantined) == (1, 1)
    assert warehouse.execute(
        "SELECT ts, total, good FROM raw_counts WHERE file_id = $f", {"f": second.file_id}
    ).fetchall() == [(datetime(2026, 3, 1, 0, 5), 15, 14)]
    (reason,) = warehouse.execute(
        "SELECT reason FROM quarantine WHERE file_id = $f", {"f": second.file_id}
    ).fetchone()
    assert reason.endswith(
        "is older than the last one loaded for this series (2026-03-01T00:05:00Z): out of order"
    )


def test_counter_files_refuse_replacement_and_labels(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    header = "timestamp,service,operation,total_cumulative,good_cumulative\n"
    path = write(
        tmp_path / "c.csv", header + "2026-03-01T00:00:00Z,lb,a,100,100\n2026-03-01T00:01:00Z,lb,a,150,150\n"
    )
    ingest_file(warehouse, path, now=NOW)
    # A corrected version at the same path: refused, and the loaded rows (0 + 50 events) stay.
    write(path, header + "2026-03-01T00:00:00Z,lb,a,100,100\n2026-03-01T00:01:00Z,lb,a,150,125\n")
    refused = ingest_file(warehouse, path, now=NOW)
    assert refused.status == "failed" and "cannot be replaced" in refused.message
    assert warehouse.execute("SELECT sum(total), sum(good) FROM raw_counts").fetchone() == (50, 50)
    # Two pods' counters in one file would read as resets: the whole file is quarantined instead.
    labelled = ingest_file(
        warehouse,
        write(
            tmp_path / "pods.csv",
            "timestamp,service,operation,instance,"
            "total_cumulative,good_cumulative\n"
            "2026-03-01T00:02:00Z,lb,a,pod-1,10,10\n"
            "2026-03-01T00:02:00Z,lb,a,pod-2,9000,9000\n",
        ),
        now=NOW,
    )
    assert (labelled.rows_loaded, labelled.rows_quarantined) == (0, 2)
    assert labelled.message.startswith("column 'instance' is not part of a counter series")


def test_counter_samples_at_the_same_instant(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    # 00:00 baseline 1000; 00:01 1010 (delta 10); a repeat of 00:01 with the same values is a duplicate,
    # one with other values (1008) a conflict: at most the 10 events are counted, never a "reset".
    text = (
        "timestamp,service,operation,total_cumulative,good_cumulative\n"
        "2026-03-01T00:00:00Z,lb,a,1000,1000\n2026-03-01T00:01:00Z,lb,a,1010,1009\n"
        "2026-03-01T00:01:00Z,lb,a,1010,1009\n2026-03-01T00:01:00Z,lb,a,1008,1008\n"
    )
    result = ingest_file(warehouse, write(tmp_path / "eq.csv", text), now=NOW)
    assert (result.rows_loaded, result.rows_quarantined) == (2, 2)
    assert warehouse.execute("SELECT sum(total), sum(good) FROM raw_counts").fetchone() == (10, 9)
    reasons = sorted(r for (r,) in warehouse.execute("SELECT reason FROM quarantine").fetchall())
    assert reasons == [
        "conflicting counter samples at 2026-03-01T00:01:00Z: 1010/1009 and 1008/1008",
        "duplicate counter sample at 2026-03-01T00:01:00Z",
    ]


def _raw_cutoff(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> None:
    """What retention leaves behind: raw rows before the cutoff deleted, and the raw tier's watermark."""
    for table in ("raw_events", "raw_counts", "raw_ratios"):
        con.execute(f"DELETE FROM {table} WHERE ts < $c", {"c": cutoff})
    con.execute("INSERT OR REPLACE INTO retention_watermarks VALUES ('raw', $c, $c)", {"c": cutoff})


RETENTION_NOTE = "(raw rows before it were deleted; its minute can no longer be recomputed)"


def test_rows_before_the_raw_retention_cutoff_are_quarantined(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    _raw_cutoff(warehouse, datetime(2026, 3, 1))
    # Each file: one row a second before the cutoff (quarantined), one at the cutoff (kept: rows strictly
    # before it were deleted, so the minute 00:00 is whole).
    files = {
        "e.csv": "timestamp,service,status_code\n{early},shop,200\n{late},shop,200\n",
        "c.csv": "timestamp,service,total,good\n{early},shop,10,9\n{late},shop,10,9\n",
        "r.csv": "timestamp,service,ratio\n{early},shop,0.5\n{late},shop,0.5\n",
    }
    for name, text in files.items():
        path = write(tmp_path / name, text.format(early="2026-02-28T23:59:59Z", late="2026-03-01T00:00:00Z"))
        result = ingest_file(warehouse, path, now=NOW)
        assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (2, 1, 1), name
        (reason,) = warehouse.execute(
            "SELECT reason FROM quarantine WHERE file_id = $f", {"f": result.file_id}
        ).fetchone()
        assert reason == (
            "timestamp 2026-02-28T23:59:59Z is older than the raw-data retention cutoff 2026-03-01 "
            + RETENTION_NOTE
        )
    assert warehouse.execute("SELECT min(ts) FROM raw_events").fetchone()[0] == datetime(2026, 3, 1)


def test_a_cutoff_inside_a_minute_refuses_that_whole_minute(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Retention cuts whole days; should a cutoff ever fall inside a minute, that minute lost some raw rows
    # too, so a late row in it is refused as well.
    _raw_cutoff(warehouse, datetime(2026, 3, 1, 10, 0, 30))
    text = "timestamp,service,status_code\n2026-03-01T10:00:45Z,shop,200\n2026-03-01T10:01:00Z,shop,200\n"
    result = ingest_file(warehouse, write(tmp_path / "e.csv", text), now=NOW)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert warehouse.execute("SELECT reason FROM quarantine").fetchone()[0] == (
        "timestamp 2026-03-01T10:00:45Z falls in the minute of the raw-data retention cutoff "
        "2026-03-01T10:00:30Z " + RETENTION_NOTE
    )


def test_counter_interval_before_the_raw_cutoff_is_quarantined(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    header = "timestamp,service,operation,total_cumulative,good_cumulative\n"
    ingest_file(
        warehouse, write(tmp_path / "c1.csv", header + "2026-02-28T23:58:00Z,lb,a,100,100\n"), now=NOW
    )
    _raw_cutoff(warehouse, datetime(2026, 3, 1))
    # 23:59 sample: before the cutoff itself, quarantined by validation (the state stays at 23:58).
    # 00:01 sample: its delta (30 / 29) goes to the previous sample's minute, 23:58, before the cutoff:
    #               quarantined, and the series' state moves to it (a true reading).
    # 00:02 sample: delta 10 / 9 against 00:01, at 00:01: loads.
    text = header + (
        "2026-02-28T23:59:00Z,lb,a,110,110\n2026-03-01T00:01:00Z,lb,a,130,129\n2026-03-01T00:02:00Z,lb,a,140,138\n"
    )
    result = ingest_file(warehouse, write(tmp_path / "c2.csv", text), now=NOW)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 1, 2)
    assert warehouse.execute(
        "SELECT ts, total, good FROM raw_counts WHERE file_id = $f", {"f": result.file_id}
    ).fetchall() == [(datetime(2026, 3, 1, 0, 1), 10, 9)]
    reasons = warehouse.execute(
        "SELECT reason FROM quarantine WHERE file_id = $f ORDER BY source_row", {"f": result.file_id}
    ).fetchall()
    assert reasons == [
        (
            "timestamp 2026-02-28T23:59:00Z is older than the raw-data retention cutoff 2026-03-01 "
            + RETENTION_NOTE,
        ),
        (
            "counter interval starting at 2026-02-28T23:58:00Z (the previous sample) is older than the "
            "raw-data retention cutoff 2026-03-01 " + RETENTION_NOTE,
        ),
    ]


def test_a_file_replaced_after_retention_keeps_its_old_minutes(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    header = "timestamp,service,status_code\n"
    path = write(
        tmp_path / "e.csv", header + "2026-02-28T12:00:00Z,shop,200\n2026-03-01T12:00:00Z,shop,200\n"
    )
    ingest_file(warehouse, path, now=NOW)
    refresh_aggregates(warehouse, {})
    _raw_cutoff(warehouse, datetime(2026, 3, 1))
    # A corrected version: the 02-28 row (before the cutoff) is quarantined, the two 03-01 rows load.
    write(
        path,
        header
        + "2026-02-28T12:00:00Z,shop,500\n2026-03-01T12:00:00Z,shop,200\n2026-03-01T12:00:30Z,shop,200\n",
    )
    result = ingest_file(warehouse, path, now=NOW)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    # The old version's minutes are recomputed from the cutoff on only (02-28 12:00 has no raw rows left:
    # recomputing it would replace its count with nothing); the new version's own range is 12:00-12:01.
    assert warehouse.execute(
        "SELECT start_minute, end_minute FROM dirty_ranges ORDER BY file_id"
    ).fetchall() == [
        (datetime(2026, 3, 1), datetime(2026, 3, 1, 12, 1)),
        (datetime(2026, 3, 1, 12), datetime(2026, 3, 1, 12, 1)),
    ]
    refresh_aggregates(warehouse, {})
    assert warehouse.execute(
        "SELECT bucket_start, status_code, requests FROM sli_counts_minute ORDER BY bucket_start"
    ).fetchall() == [
        (datetime(2026, 2, 28, 12), 200, 1),  # the old version's count, kept
        (datetime(2026, 3, 1, 12), 200, 2),
    ]


def test_implausible_latencies_are_quarantined_at_the_configured_ceiling(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # Ceiling 1000 ms: 1000 itself is plausible, 1000.5 and 10^12 (a timeout sentinel) are not.
    path = write(
        tmp_path / "e.csv",
        "timestamp,service,status_code,latency_ms\n"
        "2026-03-01T00:00:00Z,shop,200,1000\n"
        "2026-03-01T00:00:01Z,shop,200,1000.5\n"
        "2026-03-01T00:00:02Z,shop,200,1000000000000\n"
        "2026-03-01T00:00:03Z,shop,200,\n",
    )
    result = ingest_file(warehouse, path, now=NOW, max_latency_ms=1000.0)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 2, 2)
    reasons = [
        r for (r,) in warehouse.execute("SELECT reason FROM quarantine ORDER BY source_row").fetchall()
    ]
    assert reasons == [
        "latency_ms 1000.5 is above the plausible maximum of 1000.0 ms ([quality] max_latency_ms)",
        "latency_ms 1000000000000.0 is above the plausible maximum of 1000.0 ms ([quality] max_latency_ms)",
    ]


def test_unchanged_files_are_recognised_by_size_and_mtime_without_reading(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    import os

    path = write(
        tmp_path / "landing" / "e.csv", "timestamp,service,status_code\n2026-03-01T00:00:00Z,shop,200\n"
    )
    assert ingest_paths(warehouse, [tmp_path / "landing"], now=NOW).files[0].status == "loaded"
    stat = path.stat()
    # Same size, same modification time, other bytes (503 instead of 200): taken as unchanged, not read.
    path.write_text("timestamp,service,status_code\n2026-03-01T00:00:00Z,shop,503\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (again,) = ingest_paths(warehouse, [tmp_path / "landing"], now=NOW).files
    assert (again.status, again.message) == ("skipped", "already loaded")
    assert warehouse.execute("SELECT status_code FROM raw_events").fetchall() == [(200,)]
    # A new modification time makes it read again: the new content replaces the path's rows.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    (changed,) = ingest_paths(warehouse, [tmp_path / "landing"], now=NOW).files
    assert changed.status == "loaded"
    assert warehouse.execute("SELECT status_code FROM raw_events").fetchall() == [(503,)]
    # Touched but unchanged content: read once, recognised by content, and stamped again.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    (touched,) = ingest_paths(warehouse, [tmp_path / "landing"], now=NOW).files
    assert (touched.status, touched.message) == ("skipped", "already loaded")
    assert warehouse.execute("SELECT mtime_ns FROM landing_stamps").fetchall() == [
        (stat.st_mtime_ns + 2_000_000_000,)
    ]


def test_a_run_over_many_unchanged_files_reads_the_stamps_once(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines import sqlfiles

    for hour in range(5):
        write(
            tmp_path / "landing" / f"h{hour}.csv",
            f"timestamp,service,status_code\n2026-03-01T0{hour}:00:00Z,shop,200\n",
        )
    first = ingest_paths(warehouse, [tmp_path / "landing"], now=NOW)
    assert [f.status for f in first.files] == ["loaded"] * 5
    asked: list[str] = []
    real_sql = sqlfiles.sql

    def recording(name: str, **tables: str) -> str:
        asked.append(name)
        return real_sql(name, **tables)

    monkeypatch.setattr(sqlfiles, "sql", recording)
    again = ingest_paths(warehouse, [tmp_path / "landing"], now=NOW)
    # Each file skipped as the one loaded before, from one query for all of them.
    assert [(f.status, f.message, f.file_id) for f in again.files] == [
        ("skipped", "already loaded", f.file_id) for f in first.files
    ]
    assert asked == ["landing_stamps_loaded"]
    # A single file on its own still looks its stamp up, with the same answer.
    alone = ingest_file(warehouse, tmp_path / "landing" / "h2.csv", now=NOW)
    assert (alone.status, alone.file_id) == ("skipped", first.files[2].file_id)
    assert asked[1:] == ["landing_stamp_get", "files_by_hash"]

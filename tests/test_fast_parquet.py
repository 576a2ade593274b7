"""The typed Parquet fast path leaves the warehouse exactly as the text path does.

Every file is ingested twice, into two warehouses: once as sloscope does it (events Parquet files with
native types validated by DuckDB from ``read_parquet``) and once with the fast path switched off (every
Parquet file converted to text and validated by ``sql/ingest_validate_events.sql``). The raw rows, the
quarantine (reasons, row numbers, records), the file bookkeeping and the dirty ranges must be identical,
row for row. The corpus: every Parquet case of tests/test_bad_input.py, and seeded files of typed rows
with every kind of bad value mixed in (NaN, infinities, negatives, out-of-range statuses, missing and
over-long names, future and pre-1970 timestamps, nanosecond and non-UTC zones, float32 latencies, event
id repeats within and across files), loaded before and after a raw retention cutoff and a replaced file.
"""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.slo import ingest
from pipelines.slo.ingest import ingest_paths
from pipelines.warehouse import connect
from tests.conftest import CallCounter
from tests.test_bad_input import CORPUS, NOW

BASE = datetime(2026, 3, 1, tzinfo=UTC)

# Every column of every table ingestion writes, in a fixed order.
TABLES = {
    "raw_events": "file_id, source_row, ts, service, operation, status_code, success, latency_ms, event_id",
    "quarantine": "file_id, source_row, path, reason, record, quarantined_at",
    "ingested_files": (
        "file_id, path, sha256, format, schema_kind, status, rows_read, rows_loaded, rows_quarantined, "
        "min_ts, max_ts, error, ingested_at"
    ),
    "dirty_ranges": "start_minute, end_minute, file_id",
}


def _contents(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {
        table: con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
        for table, columns in TABLES.items()
    }


def _messy_table(seed: int, rows: int, *, ids: str | None = None) -> pa.Table:
    """Typed events, about a third of them invalid in one way or another (seeded)."""
    rng = random.Random(seed)
    stamps, services, operations, statuses, successes, latencies, event_ids = [], [], [], [], [], [], []
    for _ in range(rows):
        ts: datetime | None = BASE + timedelta(
            seconds=rng.randrange(0, 86_400), microseconds=rng.randrange(10**6)
        )
        service: str | None = rng.choice(["shop", "auth", " padded ", "x" * 200])
        operation: str | None = rng.choice(["pay", "list", None, ""])
        status: int | None = rng.choice([200, 201, 404, 500, 503, None])
        success: bool | None = rng.choice([True, False, None])
        latency: float | None = round(rng.lognormvariate(3, 1), rng.choice([0, 1, 3, 9]))
        event_id = f"{ids}-{rng.randrange(rows)}" if ids else None
        fault = rng.randrange(24)
        if fault == 0:
            ts = None
        elif fault == 1:
            ts = datetime(2200, 1, 1, tzinfo=UTC)  # in the future
        elif fault == 2:
            ts = datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)  # before 1970: deferred
        elif fault == 3:
            service = rng.choice([None, "", "   ", "y" * 201])
        elif fault == 4:
            operation = "o" * 201
        elif fault == 5:
            status = rng.choice([99, 600, 0, -1, 2**40])
        elif fault == 6:
            status, success = None, None
        elif fault == 7:
            latency = rng.choice([float("nan"), float("inf"), float("-inf"), -0.5, 600_000.5, 1e300])
        elif fault == 8:
            latency = rng.choice([None, -0.0, 0.0, 600_000.0, 1e-9])  # valid edge values
        elif fault == 9 and ids:
            event_id = rng.choice(["", "  ", "z" * 201, f"{ids}-0"])
        stamps.append(ts)
        services.append(service)
        operations.append(operation)
        statuses.append(status)
        successes.append(success)
        latencies.append(latency)
        event_ids.append(event_id)
    columns = {
        "timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        "service": pa.array(services, pa.string()),
        "operation": pa.array(operations, pa.string()),
        "status_code": pa.array(statuses, pa.int64()),
        "success": pa.array(successes, pa.bool_()),
        "latency_ms": pa.array(latencies, pa.float64()),
    }
    if ids:
        columns["event_id"] = pa.array(event_ids, pa.string())
    return pa.table(columns)


def _typed_corpus() -> dict[str, pa.Table]:
    """Seeded typed files: the messy rows under several physical types and column layouts."""
    messy = _messy_table(1, 400)
    rng = random.Random(7)
    tables = {
        "messy_plain": messy,
        "messy_ids_a": _messy_table(2, 300, ids="a"),
        "messy_ids_b": _messy_table(3, 300, ids="a"),  # the same ids: repeats across files
        # Nanoseconds in another zone, float statuses.
        "messy_ns_paris": messy.set_column(
            0, "timestamp", messy["timestamp"].cast(pa.timestamp("ns", tz="Europe/Paris"))
        ).set_column(3, "status_code", messy["status_code"].cast(pa.float64())),
        # float32 latencies: the text path reads them through their shortest decimal (it stores 33377.688
        # for the float32 33377.6875), so such files keep the text path.
        "messy_float32": messy.set_column(5, "latency_ms", messy["latency_ms"].cast(pa.float32())),
        "messy_ms_int_latency": pa.table(
            {
                "Timestamp": messy["timestamp"].cast(
                    pa.timestamp("ms", tz="UTC"), safe=False
                ),  # names are case-folded
                " Service ": messy["service"].cast(pa.large_string()),
                "status_code": pa.array([rng.choice([200, 503, 700, None]) for _ in range(400)], pa.uint16()),
                "latency_ms": pa.array([rng.choice([0, 5, 2**40, None]) for _ in range(400)], pa.uint64()),
                "success": messy["success"],
                "region": pa.array([rng.choice(["eu", None]) for _ in range(400)]),  # an extra column
                "weight": pa.array([rng.random() for _ in range(400)], pa.float32()),  # another
            }
        ),
        "float32_latencies": pa.table(
            {
                "timestamp": pa.array(
                    [BASE + timedelta(seconds=i) for i in range(500)], pa.timestamp("s", tz="UTC")
                ),
                "service": ["shop"] * 500,
                "success": [True] * 500,
                "latency_ms": pa.array(
                    [rng.uniform(0, 700_000) * rng.random() ** 6 for _ in range(500)], pa.float32()
                ),
            }
        ),
        "success_only_no_operation": pa.table(
            {
                "timestamp": pa.array([BASE, None, BASE], pa.timestamp("us", tz="UTC")),
                "service": ["shop", "shop", None],
                "success": [False, True, None],
            }
        ),
        "all_valid": pa.table(
            {
                "timestamp": pa.array(
                    [BASE + timedelta(minutes=i) for i in range(50)], pa.timestamp("us", tz="UTC")
                ),
                "service": ["auth"] * 50,
                "operation": ["login"] * 50,
                "status_code": pa.array([200] * 49 + [500], pa.int16()),
                "latency_ms": [float(i) for i in range(50)],
            }
        ),
    }
    return tables


def _write(folder: Path, name: str, table: pa.Table) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{name}.parquet")


def _landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    # Invalid UTF-8 in a string column: DuckDB refuses it too, so the file fails as the text path says.
    _write(
        landing,
        "invalid_utf8",
        pa.table(
            {
                "timestamp": pa.array([BASE, BASE], pa.timestamp("us", tz="UTC")),
                "service": pa.array([b"ok", b"\xff\xfe"], pa.binary()).view(pa.string()),
                "success": [True, True],
            }
        ),
    )
    for case in CORPUS:
        if case.suffix in (".parquet", ".pq"):
            landing.mkdir(parents=True, exist_ok=True)
            (landing / f"{case.name}{case.suffix}").write_bytes(case.content)
    for name, table in _typed_corpus().items():
        _write(landing, name, table)
    return landing


def _run_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list, landing: Path | None = None
) -> tuple[dict[str, list[tuple]], dict[str, list[tuple]], int]:
    """Run ``steps`` (callables taking a connection) on two warehouses, fast path on and off.

    ``landing``, when given, is emptied before each run: the steps write their files there.
    """
    counting = CallCounter(ingest._load_typed_parquet)
    results = []
    for fast in (True, False):
        if landing is not None:
            shutil.rmtree(landing, ignore_errors=True)
        con = connect(tmp_path / f"warehouse-{fast}.duckdb")
        with monkeypatch.context() as patch:
            if fast:
                patch.setattr(ingest, "_load_typed_parquet", counting)
            else:
                patch.setattr(ingest, "_parquet_plan", lambda path: None)
            for step in steps:
                step(con)
        results.append(_contents(con))
        con.close()
    return results[0], results[1], counting.calls


def _assert_same(fast: dict[str, list[tuple]], text: dict[str, list[tuple]]) -> None:
    for table in TABLES:
        assert len(fast[table]) == len(text[table]), table
        for left, right in zip(fast[table], text[table], strict=True):
            assert left == right, (table, left, right)


def test_typed_parquet_corpus_loads_exactly_as_the_text_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = _landing(tmp_path)
    fast, text, typed_files = _run_both(
        tmp_path, monkeypatch, [lambda con: ingest_paths(con, [landing], now=NOW)]
    )
    _assert_same(fast, text)
    # The typed files and the well-typed cases of the bad-input corpus took the fast path.
    # 7 typed files here (not the float32 ones, nor the one DuckDB and polars refuse to read) and 4 of
    # the bad-input corpus (far-future timestamp, float statuses, huge integers, zero rows).
    assert typed_files == 11
    # The corpus really has bad rows of every kind, and the fast path loaded rows too.
    reasons = " | ".join(r[3] for r in fast["quarantine"])
    for expected in (
        "timestamp is missing",
        "is in the future",
        "service is missing",
        "service is longer than 200 characters",
        "operation is longer than 200 characters",
        "is not an HTTP status",
        "neither status_code nor success is given",
        "is not a finite number >= 0",
        "is above the plausible maximum",
        "event_id is longer than 200 characters",
        "(first at row",
        "already loaded from",
    ):
        assert expected in reasons, expected
    assert len(fast["raw_events"]) > 1000


def test_retention_cutoff_and_replaced_files_match_the_text_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    corpus = _typed_corpus()
    cutoff = BASE + timedelta(hours=12, seconds=30)  # inside a minute: that minute is refused too

    def first(con: duckdb.DuckDBPyConnection) -> None:
        for name in ("messy_plain", "messy_ids_a", "all_valid"):
            _write(landing, name, corpus[name])
        ingest_paths(con, [landing], now=NOW)

    def cut_and_replace(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "INSERT INTO retention_watermarks VALUES ('raw', ?, ?)",
            [cutoff.replace(tzinfo=None), NOW.replace(tzinfo=None)],
        )
        _write(landing, "messy_plain", _messy_table(11, 300))  # a changed file at a loaded path
        _write(landing, "messy_ids_a", _messy_table(12, 300, ids="a"))  # its own ids never count against it
        _write(landing, "messy_late", _messy_table(13, 300, ids="a"))
        ingest_paths(con, [landing], now=NOW)

    fast, text, typed_files = _run_both(tmp_path, monkeypatch, [first, cut_and_replace], landing)
    _assert_same(fast, text)
    assert typed_files == 6
    reasons = " | ".join(r[3] for r in fast["quarantine"])
    assert "the raw-data retention cutoff" in reasons
    assert {r[5] for r in fast["ingested_files"]} == {"loaded", "superseded"}


def test_unusual_types_take_the_text_path(tmp_path: Path) -> None:
    """Decimals, dictionaries, text in numeric columns and zoneless timestamps are not read typed."""
    stamps = pa.array([BASE], pa.timestamp("us", tz="UTC"))
    cases = {
        "decimal": {
            "timestamp": stamps,
            "service": ["s"],
            "status_code": pa.array([200], pa.decimal128(5, 0)),
        },
        "dictionary": {
            "timestamp": stamps,
            "service": pa.array(["s"]).dictionary_encode(),
            "status_code": pa.array([200], pa.int32()),
        },
        "text_status": {"timestamp": stamps, "service": ["s"], "status_code": ["200"]},
        "zoneless": {
            "timestamp": pa.array([datetime(2026, 3, 1)], pa.timestamp("us")),
            "service": ["s"],
            "success": [True],
        },
        "counts": {"timestamp": stamps, "service": ["s"], "total": [1], "good": [1]},
        "float32_latency": {
            "timestamp": stamps,
            "service": ["s"],
            "success": [True],
            "latency_ms": pa.array([1.5], pa.float32()),
        },
        "nested_extra": {"timestamp": stamps, "service": ["s"], "success": [True], "tags": [[1, 2]]},
    }
    for name, columns in cases.items():
        _write(tmp_path, name, pa.table(columns))
        assert ingest._parquet_plan(tmp_path / f"{name}.parquet") is None, name
    _write(tmp_path, "typed", _typed_corpus()["all_valid"])
    assert ingest._parquet_plan(tmp_path / "typed.parquet") is not None


def test_aggregates_are_the_same_whatever_the_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """refresh_aggregates cuts a dirty range into pieces of about CHUNK_EVENTS raw events: any cut gives
    the same tables as one piece for the whole range."""
    from pipelines.slo import aggregate

    landing = tmp_path / "landing"
    _write(landing, "messy", _messy_table(21, 400))
    _write(landing, "valid", _typed_corpus()["all_valid"])
    thresholds = {"shop": {10.0, 25.5}, "auth": {20.0}}
    tables = (
        "sli_counts_minute",
        "sli_counts_hour",
        "sli_counts_day",
        "sli_threshold_minute",
        "sli_threshold_hour",
        "sli_threshold_day",
        "latency_histogram_minute",
        "latency_histogram_hour",
        "latency_histogram_day",
    )
    results = []
    for limit in (10**9, 37, 1):
        con = connect(tmp_path / f"warehouse-{limit}.duckdb")
        ingest_paths(con, [landing], now=NOW)
        monkeypatch.setattr(aggregate, "CHUNK_EVENTS", limit)
        lo, hi = con.execute("SELECT min(ts), max(ts) + INTERVAL 1 MINUTE FROM raw_events").fetchall()[0]
        pieces = aggregate.chunks(con, lo, hi)
        # Consecutive, covering the range, cut at whole hours; the day rollups' pieces at whole days.
        assert pieces[0][0] == lo and pieces[-1][1] == hi
        assert all(a[1] == b[0] and b[0].minute == 0 for a, b in pairwise(pieces))
        assert len(pieces) == 1 if limit == 10**9 else len(pieces) > 5
        day_lo, day_hi = aggregate.covering(lo, hi, "day")
        days = aggregate.chunks(con, day_lo, day_hi, grain="day")
        assert days[0][0] == day_lo and days[-1][1] == day_hi
        assert all(a[1] == b[0] and b[0].hour == 0 for a, b in pairwise(days))
        assert len(days) == 1 if limit == 10**9 else len(days) > 1
        aggregate.refresh_aggregates(con, thresholds)
        results.append({t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables})
        con.close()
    assert results[0]["latency_histogram_minute"]
    # Several days, so the day rollups (one statement per day) are cut too.
    assert len({row[0] for row in results[0]["sli_counts_day"]}) > 1
    assert results[0] == results[1] == results[2]

"""The shortcuts of Parquet ingestion leave the warehouse exactly as the full path does.

Two shortcuts, each compared with the path it skips:

- A clean events Parquet file with several row groups per DuckDB thread is checked in one aggregate pass
  and inserted straight from the file (sql/ingest_parquet_check.sql, sql/ingest_load_parquet.sql),
  without the temp table `validated`. Every file is ingested three ways (direct load allowed, direct load
  refused, the text path) and every table ingestion writes must be identical, row for row.
- ``ingest_supersede`` (which scans raw_events) runs only for a path that has a loaded version.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import sqlfiles
from pipelines.slo import ingest
from pipelines.slo.ingest import ingest_paths
from pipelines.warehouse import connect
from tests.conftest import CallCounter
from tests.test_bad_input import NOW
from tests.test_fast_parquet import BASE, _assert_same, _contents, _messy_table

ROW_GROUP = 64  # rows per row group: every file below has many row groups per thread


def _clean_table(seed: int, rows: int) -> pa.Table:
    """Valid events only, with the edge values the rules still accept (padding, blank operation...)."""
    services = ["shop", " padded ", "s" * 200]
    operations = ["pay", "", None, "  list  ", "o" * 200]
    return pa.table(
        {
            "timestamp": pa.array(
                [BASE + timedelta(seconds=seed * 1000 + i, microseconds=i * 7) for i in range(rows)],
                pa.timestamp("us", tz="UTC"),
            ),
            "service": [services[(i + seed) % len(services)] for i in range(rows)],
            "operation": [operations[i % len(operations)] for i in range(rows)],
            "status_code": pa.array([[200, 404, 503, None][i % 4] for i in range(rows)], pa.int64()),
            # Never both status and success missing.
            "success": pa.array(
                [True if i % 4 == 3 else [True, None, False][i % 3] for i in range(rows)], pa.bool_()
            ),
            "latency_ms": pa.array(
                [[0.0, 1e-9, 12.5, 600_000.0, None][i % 5] for i in range(rows)], pa.float64()
            ),
        }
    )


def _clean_corpus() -> dict[str, pa.Table]:
    clean = _clean_table(1, 700)
    return {
        "clean_a": clean,
        "clean_b": _clean_table(2, 1000),
        # Nanoseconds in another zone, small integer statuses, a large_string service, an extra column.
        "clean_ns_paris": clean.set_column(
            0, "timestamp", clean["timestamp"].cast(pa.timestamp("ns", tz="Europe/Paris"))
        )
        .set_column(3, "status_code", clean["status_code"].cast(pa.uint16()))
        .set_column(1, "service", clean["service"].cast(pa.large_string()))
        .append_column("region", pa.array(["eu"] * clean.num_rows)),
        # No operation and no status column.
        "clean_success_only": clean.drop_columns(["operation", "status_code", "success"]).append_column(
            "success", pa.array([True] * clean.num_rows)
        ),
    }


def _write(folder: Path, name: str, table: pa.Table) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{name}.parquet", row_group_size=ROW_GROUP)


def _run_three(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list[Callable[[duckdb.DuckDBPyConnection], None]]
) -> tuple[list[dict[str, list[tuple]]], int]:
    """Run ``steps`` with the direct load allowed, refused, and with the typed path off; (contents, direct
    loads). The landing folder is emptied before each run: the steps write their files."""
    counting = CallCounter(ingest._load_parquet_directly)
    results = []
    for mode in ("direct", "validated", "text"):
        landing = tmp_path / "landing"
        if landing.exists():
            for file in landing.iterdir():
                file.unlink()
        con = connect(tmp_path / f"warehouse-{mode}.duckdb")
        con.execute("SET threads = 2")  # the row-group rule depends on it
        with monkeypatch.context() as patch:
            if mode == "direct":
                patch.setattr(ingest, "_load_parquet_directly", counting)
            elif mode == "validated":
                patch.setattr(ingest, "_direct_load_pays", lambda con, path, plan: False)
            else:
                patch.setattr(ingest, "_parquet_plan", lambda path: None)
            for step in steps:
                step(con)
        results.append(_contents(con))
        con.close()
    return results, counting.calls


def test_direct_load_matches_the_validated_and_text_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    corpus = _clean_corpus()
    cutoff = BASE + timedelta(seconds=2100)  # inside clean_b's range: its replacement is partly refused

    def first(con: duckdb.DuckDBPyConnection) -> None:
        for name, table in corpus.items():
            _write(landing, name, table)
        _write(landing, "messy", _messy_table(5, 600))  # bad rows: the check pass sends it the long way
        _write(landing, "with_ids", _clean_table(3, 600).append_column("event_id", pa.array(["x"] * 600)))
        ingest_paths(con, [landing], now=NOW)

    def replace(con: duckdb.DuckDBPyConnection) -> None:
        for name, table in corpus.items():
            _write(landing, name, table)
        _write(landing, "messy", _messy_table(5, 600))
        _write(landing, "with_ids", _clean_table(3, 600).append_column("event_id", pa.array(["x"] * 600)))
        _write(landing, "clean_a", _clean_table(4, 500))  # a changed file at a loaded path: still direct
        ingest_paths(con, [landing], now=NOW)

    def cut_and_replace(con: duckdb.DuckDBPyConnection) -> None:
        replace(con)
        con.execute(
            "INSERT INTO retention_watermarks VALUES ('raw', ?, ?)",
            [cutoff.replace(tzinfo=None), NOW.replace(tzinfo=None)],
        )
        _write(landing, "clean_b", _clean_table(2, 900))  # rows before the cutoff: not direct
        _write(landing, "clean_late", _clean_table(9, 300))  # all after it: direct
        ingest_paths(con, [landing], now=NOW)

    (direct, validated, text), direct_loads = _run_three(tmp_path, monkeypatch, [first, cut_and_replace])
    _assert_same(direct, validated)
    _assert_same(direct, text)
    # The four clean files, then the replaced clean_a, then clean_late.
    assert direct_loads == 6
    assert {r[5] for r in direct["ingested_files"]} == {"loaded", "superseded"}
    assert "the raw-data retention cutoff" in " | ".join(r[3] for r in direct["quarantine"])
    assert len(direct["raw_events"]) > 3000


def test_a_file_with_one_row_group_per_thread_is_not_loaded_directly(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    pq.write_table(_clean_table(1, 500), landing / "one.parquet")  # a single row group
    con = connect(tmp_path / "warehouse.duckdb")
    con.execute("SET threads = 2")
    plan = ingest._parquet_plan(landing / "one.parquet")
    assert plan is not None
    assert not ingest._direct_load_pays(con, landing / "one.parquet", plan)
    _write(landing, "many", _clean_table(1, 500))
    many = ingest._parquet_plan(landing / "many.parquet")
    assert many is not None
    assert ingest._direct_load_pays(con, landing / "many.parquet", many)
    con.close()


def test_a_file_changed_before_its_direct_load_is_not_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check pass saw a clean file; by the load it holds a bad row: nothing of it commits."""
    landing = tmp_path / "landing"
    _write(landing, "clean", _clean_table(1, 500))
    real = ingest._load_parquet_directly

    def swapped(con, path, plan, params):  # type: ignore[no-untyped-def]
        table = _clean_table(1, 500)
        bad = table.set_column(1, "service", pa.array([None, *table["service"].to_pylist()[1:]]))
        _write(landing, "clean", bad)  # the same size, maybe not the same mtime: the count catches it
        return real(con, path, plan, params)

    monkeypatch.setattr(ingest, "_load_parquet_directly", swapped)
    con = connect(tmp_path / "warehouse.duckdb")
    con.execute("SET threads = 2")
    report = ingest_paths(con, [landing], now=NOW)
    assert [f.status for f in report.files] == ["failed"]
    assert "changed while it was being read" in report.files[0].message
    for table in ("raw_events", "ingested_files", "dirty_ranges", "quarantine", "landing_stamps"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)], table
    monkeypatch.undo()
    report = ingest_paths(con, [landing], now=NOW)  # read again next run, the long way (a bad row)
    assert [(f.status, f.rows_loaded, f.rows_quarantined) for f in report.files] == [("loaded", 499, 1)]
    con.close()


def test_direct_load_statements_share_the_validation_rules() -> None:
    """The check pass and the direct load decide with the very rules of the typed validation."""
    rules = " ".join(sqlfiles.sql("ingest_parquet_rules").split())
    assert "accepted" in rules
    for name in ("ingest_validate_parquet", "ingest_parquet_check", "ingest_load_parquet"):
        assert rules in " ".join(sqlfiles.sql(name).split()), name


def test_supersede_runs_only_for_a_path_with_a_loaded_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str] = []
    real = sqlfiles.run

    def counting(con, name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "ingest_supersede":
            runs.append(name)
        return real(con, name, *args, **kwargs)

    monkeypatch.setattr(sqlfiles, "run", counting)
    landing = tmp_path / "landing"
    con = connect(tmp_path / "warehouse.duckdb")
    _write(landing, "a", _clean_table(1, 100))
    landing.joinpath("b.csv").write_text("timestamp,service,success\n2026-03-01T00:00:00Z,shop,true\n")
    ingest_paths(con, [landing], now=NOW)
    assert runs == []
    _write(landing, "a", _clean_table(2, 100))
    landing.joinpath("b.csv").write_text("timestamp,service,success\n2026-03-01T00:01:00Z,shop,true\n")
    ingest_paths(con, [landing], now=NOW)
    assert runs == ["ingest_supersede", "ingest_supersede"]
    assert con.execute("SELECT count(*), count(DISTINCT file_id) FROM raw_events").fetchall() == [(101, 2)]
    assert con.execute(
        "SELECT status, count(*) FROM ingested_files GROUP BY ALL ORDER BY ALL"
    ).fetchall() == [("loaded", 2), ("superseded", 2)]
    con.close()

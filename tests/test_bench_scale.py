"""The scale benchmark's claims, at a tiny scale: sloscope's 1-minute SLI tables equal the ones plain
pandas and bare DuckDB SQL build from the same Parquet files, and the harness runs end to end.
Correctness only: no timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from benchmarks import pandas_baseline, scale, scale_data
from pipelines.slo.aggregate import refresh_aggregates
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.spec import parse_documents, thresholds_of
from pipelines.warehouse import connect


def test_generator_is_seeded_and_typed(tmp_path: Path) -> None:
    first = scale_data.generate(tmp_path / "a", events=5_000, days=1, services=4)
    second = scale_data.generate(tmp_path / "b", events=5_000, days=1, services=4)
    assert len(first.files) == 24  # one file per hour of the day
    assert [f.read_bytes() for f in first.files] == [f.read_bytes() for f in second.files]
    assert first.files[0].relative_to(tmp_path / "a").as_posix() == "date=2026-10-01/hour=00/part-0.parquet"
    schema = pq.read_schema(first.files[0])
    assert {name: str(schema.field(name).type) for name in schema.names} == {
        "timestamp": "timestamp[us, tz=UTC]",
        "service": "string",
        "operation": "string",
        "status_code": "int16",
        "success": "bool",
        "latency_ms": "double",
    }
    slos, problems = parse_documents(scale_data.slo_yaml(10, 4), "scale.yaml")
    assert not problems
    # 10 objectives at 3 per SLO: three SLOs of 3 and one of 1.
    assert [len(s.objectives) for s in slos] == [3, 3, 3, 1]


def test_three_ways_to_the_minute_tables_agree(tmp_path: Path) -> None:
    events = 20_000
    manifest = scale_data.generate(tmp_path / "landing" / "raw", events=events, days=1, services=8)
    slos, problems = parse_documents(scale_data.slo_yaml(30, 8), "scale.yaml")
    assert not problems
    thresholds = thresholds_of(slos)
    assert thresholds  # the latency SLOs declare some

    con = connect(tmp_path / "warehouse.duckdb")
    report = ingest_paths(con, [tmp_path / "landing"])
    assert (report.rows_loaded, report.rows_quarantined) == (events, 0)
    refresh_aggregates(con, thresholds)
    ours = {t: scale.canonical(t, scale.table_frame(con, t)) for t in scale.TABLE_KEYS}
    con.close()

    bare_con = scale.bare_duckdb_tables(manifest.files, thresholds)
    bare = {t: scale.canonical(t, scale.table_frame(bare_con, t)) for t in scale.TABLE_KEYS}
    bare_con.close()
    frames = pandas_baseline.minute_tables(manifest.files, thresholds)
    pandas = {t: scale.canonical(t, f) for t, f in zip(scale.TABLE_KEYS, frames, strict=True)}

    for table in scale.TABLE_KEYS:
        assert ours[table].height > 0, table
        assert_frame_equal(ours[table], bare[table])
        assert_frame_equal(ours[table], pandas[table])

    # Totals checked against the files themselves: every event is counted once, every non-null latency
    # once in the histograms, and a threshold row never counts more requests below it than it has.
    timed = sum(pq.read_table(f, columns=["latency_ms"]).column(0).null_count for f in manifest.files)
    counts = ours["sli_counts_minute"]
    assert counts["requests"].sum() == events
    assert counts["latency_count"].sum() == events - timed
    assert ours["latency_histogram_minute"]["count"].sum() == events - timed
    levels = ours["sli_threshold_minute"]
    assert (levels["lt_count"] <= levels["le_count"]).all()
    # Latencies are rounded to 0.1 ms, so some sit exactly on a threshold: <= and < must differ somewhere.
    assert (levels["le_count"] > levels["lt_count"]).any()


@pytest.mark.slow
def test_harness_runs_end_to_end(tmp_path: Path) -> None:
    text = scale.main(
        [
            *("--events", "3000", "--days", "1", "--services", "3", "--objectives", "9"),
            *("--keep", str(tmp_path / "work")),
        ]
    )
    for stage in ("ingest", "SLI aggregation", "bare DuckDB", "plain pandas", "evaluate 9 objectives"):
        assert stage in text
    assert "ratio end to end / bare DuckDB" in text
    assert "ratio plain pandas / sloscope end to end" in text
    assert "ingest loaded 3,000, quarantined 0" in text

"""The Dagster definitions load, the jobs resolve, and the landing sensor's listing logic."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey

from pipelines.definitions import defs
from pipelines.sensors import changed_files, landing_snapshot
from tests.conftest import write


def test_definitions_load_and_jobs_resolve() -> None:
    assert defs.resolve_job_def("sloscope_job").name == "sloscope_job"
    assert defs.resolve_job_def("evaluate_job").name == "evaluate_job"
    keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    expected = {
        "raw_events",
        "raw_counts",
        "quarantine",
        "slo_definitions",
        "sli_counts_minute",
        "sli_counts_hour",
        "sli_counts_day",
        "sli_threshold_minute",
        "latency_histogram_minute",
        "slo_status",
        "slo_hourly",
        "service_reports",
    }
    assert {AssetKey(k) for k in expected} <= keys
    assert defs.resolve_job_def("history_job").name == "history_job"
    assert AssetKey("slo_history") in keys
    assert {s.name for s in defs.schedules} == {
        "evaluate_on_interval",
        "daily_reports",
        "daily_history",
        "hourly_analytics",
    }  # type: ignore[union-attr]
    assert {s.name for s in defs.sensors} == {"landing_sensor"}  # type: ignore[union-attr]


def test_landing_snapshot_detects_new_and_changed_files(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "x")
    write(tmp_path / "notes.txt", "ignored")
    first = landing_snapshot(tmp_path)
    assert list(first) == [str(tmp_path / "a.csv")]
    assert changed_files({}, first) == [str(tmp_path / "a.csv")]
    assert changed_files(first, first) == []
    write(tmp_path / "sub" / "b.parquet", "y")
    write(tmp_path / "a.csv", "xx")
    assert changed_files(first, landing_snapshot(tmp_path)) == [
        str(tmp_path / "a.csv"),
        str(tmp_path / "sub" / "b.parquet"),
    ]
    assert landing_snapshot(tmp_path / "missing") == {}

"""The Dagster definitions load, the jobs resolve, and the landing sensor's listing logic."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey

from pipelines.definitions import defs
from pipelines.sensors import changed_files, landing_snapshot
from pipelines.settings import REPO_ROOT
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
        "monthly_reports_schedule",
        "quarterly_reports_schedule",
        "daily_retention",
    }  # type: ignore[union-attr]
    assert {s.name for s in defs.sensors} == {
        "landing_sensor",
        "breach_sensor",
        "late_data_sensor",
        "data_quality_summary_on_success",
        "data_quality_summary_on_failure",
    }  # type: ignore[union-attr]
    for job in ("reports_job", "monthly_reports_job", "quarterly_reports_job", "analytics_job"):
        assert defs.resolve_job_def(job).name == job
    # Retention runs only on its own job: a loading run must never delete anything.
    retention_steps = {n.name for n in defs.resolve_job_def("retention_job").graph.node_defs}
    assert retention_steps == {"retention"}
    assert "retention" not in {n.name for n in defs.resolve_job_def("sloscope_job").graph.node_defs}


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


def test_quarterly_schedule_asks_for_the_quarter_that_just_ended() -> None:
    from datetime import datetime

    from dagster import build_schedule_context

    from pipelines.schedules import quarterly_reports_schedule

    for scheduled, key in ((datetime(2026, 10, 1, 6), "2026-07-01"), (datetime(2027, 1, 1, 6), "2026-10-01")):
        request = quarterly_reports_schedule(build_schedule_context(scheduled_execution_time=scheduled))
        assert request.partition_key == key


def test_breach_sensor_rerenders_only_newly_breached_services(tmp_path: Path) -> None:
    import json

    from dagster import SkipReason, build_sensor_context

    from pipelines.resources import SloscopeResource
    from pipelines.sensors import breach_sensor, new_breaches

    assert new_breaches({"a": ["x / 1"]}, {"a": ["x / 1"], "b": ["y / 1"]}) == ["b"]
    assert new_breaches({"a": ["x / 1"]}, {"a": ["x / 1", "x / 2"]}) == ["a"]
    assert new_breaches({"a": ["x / 1"]}, {}) == []
    resource = SloscopeResource(
        warehouse=str(tmp_path / "w.duckdb"), landing=str(tmp_path), reports=str(tmp_path), slos=str(tmp_path)
    )
    context = build_sensor_context(resources={"sloscope": resource})
    assert isinstance(breach_sensor(context), SkipReason)
    write(tmp_path / "breaches.json", json.dumps({"as_of": "x", "breached": {"checkout": ["a / 99%"]}}))
    request = breach_sensor(build_sensor_context(resources={"sloscope": resource}))
    assert request.run_config == {"ops": {"service_reports": {"config": {"services": ["checkout"]}}}}
    seen = build_sensor_context(
        cursor=json.dumps({"checkout": ["a / 99%"]}), resources={"sloscope": resource}
    )
    assert isinstance(breach_sensor(seen), SkipReason)


def test_breach_sensor_fires_again_after_a_recovery_and_survives_odd_cursors(tmp_path: Path) -> None:
    import json

    from dagster import SkipReason, build_sensor_context

    from pipelines.resources import SloscopeResource
    from pipelines.sensors import breach_sensor

    resource = SloscopeResource(
        warehouse=str(tmp_path / "w.duckdb"), landing=str(tmp_path), reports=str(tmp_path), slos=str(tmp_path)
    )

    def tick(as_of: str, breached: dict, cursor: str | None):  # type: ignore[no-untyped-def]
        write(tmp_path / "breaches.json", json.dumps({"as_of": as_of, "breached": breached}))
        context = build_sensor_context(cursor=cursor, resources={"sloscope": resource})
        return breach_sensor(context), context.cursor

    first, cursor = tick("2026-10-01T00:00:00Z", {"checkout": ["a / 99%"]}, None)
    recovered, cursor = tick("2026-10-01T01:00:00Z", {}, cursor)
    again, cursor = tick("2026-10-01T02:00:00Z", {"checkout": ["a / 99%"]}, cursor)
    assert isinstance(recovered, SkipReason)
    assert first.run_key != again.run_key  # a new breach is a new run, not a duplicate Dagster drops
    for odd in ('["checkout"]', '{"checkout": true}', "not json"):
        result, _ = tick("2026-10-01T03:00:00Z", {"checkout": ["a / 99%"]}, odd)
        assert result.run_config == {"ops": {"service_reports": {"config": {"services": ["checkout"]}}}}


def test_every_warehouse_step_is_in_the_duckdb_pool_and_the_pool_has_one_slot(tmp_path: Path) -> None:
    from dagster import DagsterInstance

    from pipelines.resources import DUCKDB_POOL

    repository = defs.get_repository_def()
    executable = {id(a): a for a in repository.assets_defs_by_key.values() if a.is_executable}.values()
    # The two steps that never open the warehouse: Prometheus pulls land files, lake days write Parquet.
    outside = {"pulled_sources", "sli_minute_lake"}
    for assets_def in executable:
        expected = None if assets_def.node_def.name in outside else DUCKDB_POOL
        assert assets_def.node_def.pool == expected, assets_def.node_def.name
    for check in repository.asset_checks_defs_by_key.values():
        assert check.node_def.pool == DUCKDB_POOL, check.node_def.name

    # The deployment's dagster.yaml: one warehouse step at a time across runs, one run at a time.
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    with DagsterInstance.from_config(str(home)) as instance:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.run_queue_config.max_concurrent_runs == 1

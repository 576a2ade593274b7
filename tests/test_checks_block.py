"""Blocking asset checks stop downstream assets when the data under them is wrong.

Dagster skips the assets downstream of a check only when the check is blocking *and* fails with ERROR
severity (dagster/_core/execution/plan/execute_step.py raises DagsterAssetCheckFailedError for exactly
those); a failed WARN check is recorded and the run goes on. Both halves are shown here, and the per-run
data-quality summary built from such runs' event logs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    build_run_status_sensor_context,
    materialize,
)

from assets.ingest import raw_measurements
from assets.quality import ALL_CHECKS, data_fresh, minutes_complete, raw_events_valid, sli_rollups_consistent
from assets.sli import sli_aggregates
from assets.slo import slo_definitions
from pipelines.definitions import ALL_ASSETS
from pipelines.quality_summary import (
    SUMMARY_ASSET,
    build_quality_summary,
    data_quality_summary_on_failure,
    data_quality_summary_on_success,
)
from pipelines.resources import SloscopeResource
from pipelines.settings import REPO_ROOT
from pipelines.warehouse import open_warehouse
from tests.conftest import write


@pytest.mark.slow
def test_future_timestamp_in_raw_events_blocks_aggregation(tmp_path: Path) -> None:
    write(
        tmp_path / "landing" / "e.csv", "timestamp,service,status_code\n2026-03-01T00:00:00Z,checkout,200\n"
    )
    resource = SloscopeResource(
        warehouse=str(tmp_path / "w.duckdb"),
        landing=str(tmp_path / "landing"),
        reports=str(tmp_path / "reports"),
        slos=str(REPO_ROOT / "data" / "slos"),
    )
    # Ingestion never lets such a row in; simulate a corrupted warehouse (a bad manual load, a bug).
    with open_warehouse(resource.warehouse) as con:
        con.execute(
            "INSERT INTO raw_events (ts, service, operation, status_code, latency_ms, file_id, source_row) "
            "VALUES ($ts, 'checkout', '', 200, 1.0, 999, 1)",
            {"ts": datetime(2099, 1, 1)},
        )
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            resources={"sloscope": resource},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert "raw_events_valid" in failed
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert AssetKey("raw_events") in materialized
    assert AssetKey("sli_counts_minute") not in materialized
    assert AssetKey("slo_status") not in materialized


# Ingestion, aggregation and the checks on them: enough graph to see what a check blocks, fast to run.
INGEST_AND_SLI = [raw_measurements, slo_definitions, sli_aggregates]
T0 = datetime(2026, 3, 2, 10, 0)


def _resource(tmp_path: Path, **settings: Any) -> SloscopeResource:
    return SloscopeResource(
        warehouse=str(tmp_path / "w.duckdb"),
        landing=str(tmp_path / "landing"),
        reports=str(tmp_path / "reports"),
        slos=str(REPO_ROOT / "data" / "slos"),
        **settings,
    )


def _counts_with_gap(resource: SloscopeResource) -> None:
    """auth counts for 10:00-10:59 with minutes 10:20-10:26 missing: 7/60 = 11.7% of the minutes."""
    with open_warehouse(resource.warehouse) as con:
        con.executemany(
            "INSERT INTO raw_counts (ts, service, operation, total, good, file_id, source_row) "
            "VALUES ($1, 'auth', 'login', 5, 5, 999, $2)",
            [[T0 + timedelta(minutes=m), m] for m in range(60) if not 20 <= m < 27],
        )


def _run(resource: SloscopeResource, instance: DagsterInstance) -> ExecuteInProcessResult:
    return materialize(
        [*INGEST_AND_SLI, raw_events_valid, minutes_complete, data_fresh, sli_rollups_consistent],
        resources={"sloscope": resource},
        instance=instance,
        raise_on_error=False,
    )


def _materialized(result: ExecuteInProcessResult) -> set[AssetKey]:
    return {e.asset_key for e in result.get_asset_materialization_events()}


def _evaluations(result: ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}


@pytest.mark.slow
def test_incomplete_counts_block_aggregation(tmp_path: Path) -> None:
    resource = _resource(tmp_path, completeness_hours=1)  # tolerance 0.05 < 7/60, severity error
    _counts_with_gap(resource)

    with DagsterInstance.ephemeral() as instance:
        result = _run(resource, instance)

        assert not result.success
        check = _evaluations(result)[("raw_counts", "minutes_complete")]
        assert not check.passed and check.severity.value == "ERROR"
        assert AssetKey("raw_counts") in _materialized(result)
        assert AssetKey("sli_counts_minute") not in _materialized(result)

        # The summary of the failed run: the failed check, the warned freshness, and what never ran.
        summary = build_quality_summary(instance, result.run_id)
        lines = {(line.asset, line.check): line for line in summary.lines}
        assert lines[("raw_counts", "minutes_complete")].result == "failed"
        assert "worst auth (counts) 11.67%" in lines[("raw_counts", "minutes_complete")].figure
        assert lines[("raw_events", "minutes_complete")].result == "passed"
        assert lines[("raw_counts", "data_fresh")].result == "warned"  # 2026-03-02 is long past
        assert lines[("raw_events", "raw_events_valid")].result == "passed"
        # sli_rollups_consistent checks sli_counts_day, which was skipped: planned, never evaluated.
        assert lines[("sli_counts_day", "sli_rollups_consistent")].result == "not run"
        assert (summary.checks_run, summary.count("failed"), summary.count("warned")) == (5, 1, 1)
        assert summary.job == "__ephemeral_asset_job__" and summary.status == "FAILURE"

        # The failure sensor records it as a materialisation of the external summary asset.
        run = instance.get_run_by_id(result.run_id)
        failure = instance.get_records_for_run(result.run_id, of_type=DagsterEventType.RUN_FAILURE).records
        context = build_run_status_sensor_context(
            sensor_name="data_quality_summary_on_failure",
            dagster_event=failure[0].event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=run,
        ).for_run_failure()
        data_quality_summary_on_failure(context)
        event = instance.get_latest_materialization_event(AssetKey(SUMMARY_ASSET))
        assert event is not None
        metadata = event.asset_materialization.metadata  # type: ignore[union-attr]
        assert metadata["checks_failed"].value == 1 and metadata["checks_not_run"].value == 1
        assert metadata["run_id"].value == result.run_id
        table = metadata["checks"].value.splitlines()
        assert table[2].startswith("| minutes_complete | raw_counts | ERROR | **failed** |")


@pytest.mark.slow
def test_warn_severity_failures_do_not_block(tmp_path: Path) -> None:
    # The same gap with completeness at "warn", and stale data (freshness warns by default).
    resource = _resource(tmp_path, completeness_hours=1, completeness_severity="warn")
    _counts_with_gap(resource)

    with DagsterInstance.ephemeral() as instance:
        result = _run(resource, instance)

        assert result.success
        evaluations = _evaluations(result)
        for key in [("raw_counts", "minutes_complete"), ("raw_counts", "data_fresh")]:
            assert not evaluations[key].passed and evaluations[key].severity.value == "WARN"
        assert AssetKey("sli_counts_minute") in _materialized(result)

        summary = build_quality_summary(instance, result.run_id)
        assert summary.count("failed") == 0 and summary.count("warned") == 2
        assert summary.count("not run") == 0 and summary.status == "SUCCESS"

        context = build_run_status_sensor_context(
            sensor_name="data_quality_summary_on_success",
            dagster_event=result.get_run_success_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )
        data_quality_summary_on_success(context)
        event = instance.get_latest_materialization_event(AssetKey(SUMMARY_ASSET))
        metadata = event.asset_materialization.metadata  # type: ignore[union-attr]
        # Passed: raw_events_valid, both raw_events results (no events: nothing to judge), the rollups.
        assert metadata["checks_warned"].value == 2 and metadata["checks_passed"].value == 4

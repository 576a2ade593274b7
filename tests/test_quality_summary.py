"""The per-run data-quality summary, built from a real (ephemeral) instance's event log.

Toy assets and checks keep these fast; tests/test_checks_block.py builds summaries of real pipeline runs.
"""

from __future__ import annotations

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    SkipReason,
    asset,
    asset_check,
    build_run_status_sensor_context,
    materialize,
)

from pipelines.quality_summary import (
    SUMMARY_ASSET,
    build_quality_summary,
    data_quality_summary_on_success,
    report_quality_summary,
)


@asset
def numbers() -> int:
    return 3


@asset_check(asset=numbers, blocking=True)
def numbers_counted() -> AssetCheckResult:
    return AssetCheckResult(passed=True, metadata={"summary": "3 numbers", "rows_checked": 3})


@asset_check(asset=numbers)
def numbers_quiet() -> AssetCheckResult:
    return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN, metadata={"pages_firing": 2})


def test_summary_lists_every_check_with_result_and_key_figure() -> None:
    with DagsterInstance.ephemeral() as instance:
        result = materialize([numbers, numbers_counted, numbers_quiet], instance=instance)

        summary = build_quality_summary(instance, result.run_id)

        assert [(line.check, line.severity, line.result, line.figure) for line in summary.lines] == [
            ("numbers_counted", "ERROR", "passed", "3 numbers"),  # the "summary" entry wins
            ("numbers_quiet", "WARN", "warned", "pages_firing: 2"),  # else the first number
        ]
        metadata = summary.metadata()
        assert (metadata["checks_run"], metadata["checks_passed"], metadata["checks_warned"]) == (2, 1, 1)
        assert metadata["checks_failed"] == 0 and metadata["run_status"] == "SUCCESS"
        # Failures and warnings first: the line an operator looks for is at the top.
        rows = metadata["checks"].value.splitlines()
        assert rows[2] == "| numbers_quiet | numbers | WARN | **warned** | pages_firing: 2 |"
        assert rows[3] == "| numbers_counted | numbers | ERROR | passed | 3 numbers |"


def test_sensor_reports_a_materialisation_of_the_summary_asset() -> None:
    with DagsterInstance.ephemeral() as instance:
        result = materialize([numbers, numbers_counted, numbers_quiet], instance=instance)
        context = build_run_status_sensor_context(
            sensor_name="data_quality_summary_on_success",
            dagster_event=result.get_run_success_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )

        assert data_quality_summary_on_success(context) is None

        event = instance.get_latest_materialization_event(AssetKey(SUMMARY_ASSET))
        assert event is not None and event.run_id == ""  # runless: reported by the sensor, not a run
        materialization = event.asset_materialization
        assert materialization is not None
        assert materialization.metadata["run_id"].value == result.run_id
        assert materialization.description == "__ephemeral_asset_job__: 2 checks run, 0 failed, 1 warned"


def test_run_without_checks_reports_nothing() -> None:
    with DagsterInstance.ephemeral() as instance:
        result = materialize([numbers], instance=instance)
        context = build_run_status_sensor_context(
            sensor_name="data_quality_summary_on_success",
            dagster_event=result.get_run_success_event(),
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )

        assert report_quality_summary(instance, result.run_id) is None
        assert isinstance(data_quality_summary_on_success(context), SkipReason)
        assert instance.get_latest_materialization_event(AssetKey(SUMMARY_ASSET)) is None

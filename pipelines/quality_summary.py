"""A data-quality summary per run, shown in the Dagster UI as materialisations of ``data_quality_summary``.

A summary *asset* downstream of the checks would be skipped exactly when it matters: a failed blocking
check skips everything downstream of its asset. So the summary is an external asset, reported by two
run-status sensors (run succeeded, run failed) from the run's asset-check events in Dagster's event log.
The sensors never open the warehouse (DuckDB's single-writer lock stays free for runs).

Checks a run planned but never evaluated (their asset or an upstream check failed first) are listed as
"not run", so a blocked run's summary still says what was not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckSeverity,
    AssetMaterialization,
    AssetSpec,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    MetadataValue,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SkipReason,
    run_failure_sensor,
    run_status_sensor,
)

from pipelines.markdown import markdown_table

SUMMARY_ASSET = "data_quality_summary"

data_quality_summary = AssetSpec(
    SUMMARY_ASSET,
    group_name="quality",
    kinds={"dagster"},
    description=(
        "Data-quality summary of each run: every asset check's result, severity and key figure "
        "(reported by the data_quality_summary_on_* sensors from the run's event log)."
    ),
)

# Metadata entries tried in order for a check's key figure when it sets no "summary" entry.
_FALLBACK_FIGURES = ("rows_checked", "dagster/row_count")


@dataclass(frozen=True)
class CheckLine:
    check: str
    asset: str
    severity: str  # ERROR | WARN | "" when not run
    result: str  # passed | failed | warned | not run
    figure: str


@dataclass(frozen=True)
class QualitySummary:
    run_id: str
    job: str
    status: str
    lines: list[CheckLine]

    def count(self, result: str) -> int:
        return sum(1 for line in self.lines if line.result == result)

    @property
    def checks_run(self) -> int:
        return sum(1 for line in self.lines if line.result != "not run")

    def metadata(self) -> dict[str, Any]:
        failed_first = sorted(
            self.lines, key=lambda line: (_RESULT_ORDER.get(line.result, 9), line.asset, line.check)
        )
        return {
            "run_id": MetadataValue.dagster_run(self.run_id),
            "job": self.job,
            "run_status": self.status,
            "checks_run": self.checks_run,
            "checks_passed": self.count("passed"),
            "checks_failed": self.count("failed"),
            "checks_warned": self.count("warned"),
            "checks_not_run": self.count("not run"),
            "checks": MetadataValue.md(
                markdown_table(
                    ("check", "asset", "severity", "result", "key figure"),
                    [
                        (
                            line.check,
                            line.asset,
                            line.severity,
                            f"**{line.result}**" if line.result in ("failed", "warned") else line.result,
                            line.figure,
                        )
                        for line in failed_first
                    ],
                )
            ),
        }


_RESULT_ORDER = {"failed": 0, "warned": 1, "not run": 2, "passed": 3}


def build_quality_summary(instance: DagsterInstance, run_id: str) -> QualitySummary:
    """The summary of one run from its ASSET_CHECK_EVALUATION(_PLANNED) events (no warehouse access)."""
    run = instance.get_run_by_id(run_id)
    records = instance.get_records_for_run(
        run_id,
        of_type={DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED},
    ).records
    planned: dict[tuple[str, str], None] = {}
    evaluated: dict[tuple[str, str], CheckLine] = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        key = (data.asset_key.to_user_string(), data.check_name)  # type: ignore[union-attr]
        if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            planned.setdefault(key, None)
        else:
            evaluated[key] = _line(data)
    lines = list(evaluated.values())
    lines += [
        CheckLine(check, asset, "", "not run", "")
        for asset, check in planned
        if (asset, check) not in evaluated
    ]
    return QualitySummary(
        run_id=run_id,
        job=run.job_name if run else "",
        status=run.status.value if run else "",
        lines=sorted(lines, key=lambda line: (line.asset, line.check)),
    )


def _line(evaluation: Any) -> CheckLine:
    severity = evaluation.severity
    failed = "warned" if severity == AssetCheckSeverity.WARN else "failed"
    result = "passed" if evaluation.passed else failed
    return CheckLine(
        check=evaluation.check_name,
        asset=evaluation.asset_key.to_user_string(),
        severity=severity.value,
        result=result,
        figure=_key_figure(evaluation.metadata),
    )


def _key_figure(metadata: Mapping[str, Any]) -> str:
    for key in ("summary", *_FALLBACK_FIGURES):
        if key in metadata:
            value = getattr(metadata[key], "value", metadata[key])
            return f"{value:,}" if isinstance(value, int) else str(value)
    # Any other numeric entry, e.g. "pages_firing: 2".
    for key, entry in metadata.items():
        value = getattr(entry, "value", entry)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{key}: {value:,}" if isinstance(value, int) else f"{key}: {value:.4g}"
    return ""


def report_quality_summary(instance: DagsterInstance, run_id: str) -> QualitySummary | None:
    """Record the run's summary as a materialisation of data_quality_summary; None if it ran no checks."""
    summary = build_quality_summary(instance, run_id)
    if not summary.lines:
        return None
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=SUMMARY_ASSET,
            description=(
                f"{summary.job}: {summary.checks_run} checks run, {summary.count('failed')} failed, "
                f"{summary.count('warned')} warned"
            ),
            metadata=summary.metadata(),
        )
    )
    return summary


def _report(context: RunStatusSensorContext) -> SkipReason | None:
    summary = report_quality_summary(context.instance, context.dagster_run.run_id)
    if summary is None:
        return SkipReason(f"run {context.dagster_run.run_id} ran no asset checks")
    context.log.info(
        f"data-quality summary of {summary.job} run {summary.run_id}: {summary.checks_run} checks run, "
        f"{summary.count('failed')} failed, {summary.count('warned')} warned"
    )
    return None


# Running by default: they read Dagster's own event log only, never the warehouse or a source.
@run_status_sensor(
    run_status=DagsterRunStatus.SUCCESS,
    name="data_quality_summary_on_success",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def data_quality_summary_on_success(context: RunStatusSensorContext) -> SkipReason | None:
    """Records the data-quality summary of every successful run that evaluated asset checks."""
    return _report(context)


@run_failure_sensor(
    name="data_quality_summary_on_failure",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def data_quality_summary_on_failure(context: RunFailureSensorContext) -> SkipReason | None:
    """Records the data-quality summary of every failed run (a blocking check failing fails the run)."""
    return _report(context)


QUALITY_SUMMARY_SENSORS = [data_quality_summary_on_success, data_quality_summary_on_failure]

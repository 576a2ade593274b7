"""Sensors. They look at the landing folder's file listing only, never at the warehouse (DuckDB's
single-writer lock must stay free for runs)."""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from assets.history import history_partitions
from pipelines.jobs import evaluate_job, history_job, monthly_reports_job, quarterly_reports_job, reports_job
from pipelines.late_data import PERIOD_KINDS, PendingFileError, clear, pending_file, read_pending, run_key
from pipelines.resources import SloscopeResource
from pipelines.slo.ingest import FORMATS
from pipelines.workflows import breaches_file


def landing_snapshot(folder: Path) -> dict[str, list[int]]:
    """Data files in the folder with (size, modification time in ns)."""
    if not folder.is_dir():
        return {}
    snapshot = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in FORMATS:
            stat = path.stat()
            snapshot[str(path)] = [stat.st_size, stat.st_mtime_ns]
    return snapshot


def changed_files(previous: dict[str, list[int]], current: dict[str, list[int]]) -> list[str]:
    return sorted(path for path, signature in current.items() if previous.get(path) != signature)


# Every 10 s: a file landing must become a notification within a minute (benchmarks/alert_latency.py,
# part of `make bench`, measures it with the real daemon).
@sensor(job=evaluate_job, minimum_interval_seconds=10, default_status=DefaultSensorStatus.STOPPED)
def landing_sensor(context: SensorEvaluationContext, sloscope: SloscopeResource):  # type: ignore[no-untyped-def]
    """Starts ingestion, evaluation, alerting and notification when files land (or change) in the landing
    folder."""
    previous = json.loads(context.cursor) if context.cursor else {}
    current = landing_snapshot(Path(sloscope.landing))
    changed = changed_files(previous, current)
    context.update_cursor(json.dumps(current))
    if not changed:
        return SkipReason("no new or changed files in the landing folder")
    run_key = hashlib.sha256(json.dumps({p: current[p] for p in changed}).encode()).hexdigest()[:16]
    return RunRequest(run_key=run_key, tags={"sloscope/changed_files": str(len(changed))})


def _json_or_none(text: str | None) -> object:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _breached(value: object) -> dict[str, list[str]]:
    """A ``service -> [objective, ...]`` mapping from JSON, anything else (an older cursor) as empty."""
    if not isinstance(value, dict):
        return {}
    return {
        str(service): [str(o) for o in objectives]
        for service, objectives in value.items()
        if isinstance(objectives, list)
    }


def new_breaches(previous: dict[str, list[str]], current: dict[str, list[str]]) -> list[str]:
    """Services with an objective breached now that was not breached at the last look."""
    return sorted(
        service for service, objectives in current.items() if set(objectives) - set(previous.get(service, []))
    )


@sensor(job=reports_job, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED)
def breach_sensor(context: SensorEvaluationContext, sloscope: SloscopeResource):  # type: ignore[no-untyped-def]
    """Re-renders a service's report when one of its SLO objectives becomes breached (reads the breaches
    file slo_status writes, never the warehouse)."""
    path = breaches_file(Path(sloscope.warehouse))
    if not path.exists():
        return SkipReason(f"no evaluation yet ({path} does not exist)")
    try:
        written = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return SkipReason(f"cannot read {path}: {exc}")
    current = _breached(written.get("breached") if isinstance(written, dict) else None)
    previous = _breached(_json_or_none(context.cursor))
    services = new_breaches(previous, current)
    context.update_cursor(json.dumps(current, sort_keys=True))
    if not services:
        return SkipReason("no newly breached objectives")
    # The evaluation time is part of the key: a service that recovers and breaches again is a new run.
    stamp = json.dumps({"as_of": written.get("as_of"), "breached": current}, sort_keys=True)
    run_key = hashlib.sha256(stamp.encode()).hexdigest()[:16]
    return RunRequest(
        run_key=run_key,
        run_config={"ops": {"service_reports": {"config": {"services": services}}}},
        tags={"sloscope/breached_services": ",".join(services)[:200]},
    )


_PERIOD_JOBS = {"monthly": monthly_reports_job, "quarterly": quarterly_reports_job}
_PERIOD_ASSETS = {"monthly": AssetKey("monthly_reports"), "quarterly": AssetKey("quarterly_reports")}


def _rendered_since(instance: DagsterInstance, asset: AssetKey, key: str, marked_at: float) -> bool:
    """Whether a materialisation of the partition came from a run that started after ``marked_at`` (one
    that started before may have read the warehouse before the late data was in)."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset, asset_partitions=[key], after_timestamp=marked_at), limit=1
    ).records
    for record in records:
        entry = record.event_log_entry
        run = instance.get_run_record_by_id(entry.run_id) if entry.run_id else None
        started = run.start_time if run is not None and run.start_time is not None else entry.timestamp
        if started >= marked_at:
            return True
    return False


@sensor(
    jobs=[history_job, monthly_reports_job, quarterly_reports_job],
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
)
def late_data_sensor(context: SensorEvaluationContext, sloscope: SloscopeResource):  # type: ignore[no-untyped-def]
    """Re-materialises the daily history partitions late data made stale, then the monthly and quarterly
    reports already rendered for complete periods that read them (reads the pending file sli_aggregates
    writes and the Dagster instance, never the warehouse)."""
    path = pending_file(Path(sloscope.warehouse))
    if not path.exists():
        return SkipReason(f"no late data recorded ({path} does not exist)")
    try:
        pending = read_pending(path)
    except PendingFileError as exc:
        return SkipReason(f"cannot read the pending file: {exc}")
    requests, outside = [], []
    for day, entry in sorted(pending["history"].items()):
        if not history_partitions.has_partition_key(day):
            outside.append(day)
            continue
        requests.append(
            RunRequest(
                run_key=run_key("history", day, entry),
                job_name=history_job.name,
                partition_key=day,
                tags={
                    "sloscope/late_data": entry["token"],
                    "sloscope/stale_slos": ",".join(entry["slos"])[:200],
                },
            )
        )
    for day in outside:
        # Stored outside the partitions (a day before history_start, or today, from the CLI): nothing a
        # run could do; dropped so reports that read it do not wait forever.
        context.log.warning(f"history day {day} is not a slo_history partition; recompute it with the CLI")
        clear(path, "history", day, pending["history"][day]["token"])
    still_stale = set(pending["history"]) - set(outside)
    now = datetime.now(UTC).replace(tzinfo=None)
    waiting = 0
    for kind in PERIOD_KINDS:
        asset = _PERIOD_ASSETS[kind]
        rendered = context.instance.get_materialized_partitions(asset) if pending[kind] else set()
        for key, entry in sorted(pending[kind].items()):
            # Never rendered: a backfill renders it from complete data; re-rendered since: done.
            if key not in rendered or _rendered_since(context.instance, asset, key, entry["marked_at"]):
                clear(path, kind, key, entry["token"])
                continue
            # The running period is rendered when it ends; a report waits for the history days it reads.
            if datetime.fromisoformat(entry["end"]) > now or still_stale & set(entry["waits_for"]):
                waiting += 1
                continue
            requests.append(
                RunRequest(
                    run_key=run_key(kind, key, entry),
                    job_name=_PERIOD_JOBS[kind].name,
                    partition_key=key,
                    tags={"sloscope/late_data": entry["token"]},
                )
            )
    context.update_cursor(str(pending["generation"]))
    if not requests:
        return SkipReason(f"nothing to re-materialise ({waiting} reports waiting for history days)")
    return requests

"""Sensors. They look at the landing folder's file listing only, never at the warehouse (DuckDB's
single-writer lock must stay free for runs)."""

import hashlib
import json
from pathlib import Path

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from pipelines.jobs import evaluate_job, reports_job
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

"""Named crash points for fault-injection tests.

``fault_point("ingest.after_validate")`` does nothing unless the environment variable
``SLOSCOPE_KILL_AT`` names that point: then the process kills itself with SIGKILL, as an OOM killer,
a node drain or ``kill -9`` would, with no ``finally`` block, ``atexit`` hook or buffered write run.
``SLOSCOPE_KILL_AT=name#N`` kills at the N-th time the point is reached (1-based), so a point inside a
loop can be hit after earlier iterations committed.

Every point is declared in ``POINTS``: ``tests/test_faults.py`` kills a real process at each of them
and checks that a re-run leaves the warehouse exactly as an uninterrupted run does. An undeclared name
is a programming error and raises, so a test can never silently skip a point that was renamed.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "SLOSCOPE_KILL_AT"

# point -> where it is and what a crash there would leave half done.
POINTS: dict[str, str] = {
    # pipelines/slo/ingest.py
    "ingest.before_file": "a file discovered, nothing of it read or written",
    "ingest.after_supersede": "inside the file's transaction: the path's earlier rows deleted",
    "ingest.after_validate": "inside the file's transaction: rows validated into the temp table",
    "ingest.after_load": "inside the file's transaction: good rows inserted, quarantine not yet",
    "ingest.after_quarantine": "inside the file's transaction: rows and quarantine inserted",
    "ingest.after_record_file": "inside the file's transaction: bookkeeping row written",
    "ingest.after_commit": "the file's transaction committed, temp tables not yet dropped",
    "ingest.after_duplicate": "a same-content file at a new path recorded as a duplicate",
    # pipelines/slo/aggregate.py
    "aggregate.after_sync_thresholds": "inside the rollup transaction: threshold set replaced",
    "aggregate.after_range": "inside the rollup transaction: one dirty range recomputed",
    "aggregate.after_clear_thresholds": "inside the rollup transaction: threshold tables cleared",
    "aggregate.before_clear_dirty": "inside the rollup transaction: every range recomputed",
    "aggregate.after_commit": "the rollup transaction committed",
    # pipelines/workflows.py and pipelines/alert_workflow.py
    "evaluate.after_objectives": "objective catalogue stored, status not yet",
    "evaluate.after_status": "slo_status stored, hourly series and breaches file not yet",
    "evaluate.after_hourly": "hourly series stored",
    "history.after_day": "one history day stored, the next not yet",
    "alerts.after_state": "alert state stored, incidents not yet updated",
    "incidents.after_upsert": "incidents updated, notifications not yet queued",
    "notify.after_outbox": "notifications queued in the outbox, none sent",
    "notify.after_send": "a notification delivered, its delivery not yet recorded",
    # pipelines/slo/retention.py
    "retention.after_tier": "one retention tier deleted, the next not yet",
}

_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Kill this process here if ``SLOSCOPE_KILL_AT`` asks for it; otherwise do nothing."""
    if name not in POINTS:
        raise KeyError(f"undeclared fault point {name!r}; add it to pipelines.faults.POINTS")
    wanted = os.environ.get(ENV_VAR)
    if not wanted:
        return
    target, _, nth = wanted.partition("#")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= (int(nth) if nth else 1):
        os.kill(os.getpid(), signal.SIGKILL)

"""One scheduled sloscope run in its own process, for the crash tests of tests/test_faults.py.

    python tests/fault_run.py dagster   # ingest → evaluate → alert → notify through dagster.materialize
    python tests/fault_run.py domain    # the same domain calls the assets make, without Dagster

Then, in both modes: the daily history of the days in ``FAULT_HISTORY_DAYS`` (comma-separated ISO dates,
as ``sloscope backfill`` stores them) and, when ``FAULT_RETENTION_NOW`` is set, retention at that tick.
Settings come from ``SLOSCOPE_SETTINGS`` and the other ``SLOSCOPE_*`` variables; ``SLOSCOPE_KILL_AT``
makes :func:`pipelines.faults.fault_point` SIGKILL the process at a named point. Exit code 0: the run
completed; anything else is a failure (a kill shows as -9 to the parent).
"""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from pipelines.settings import Settings, load_settings


class Config:
    """What the runs read from the settings, as :class:`pipelines.resources.SloscopeResource` gives it to
    the assets, without importing Dagster (two seconds a process) in the domain mode."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.warehouse = str(settings.warehouse)
        self.landing = str(settings.landing)
        self.at_risk_remaining = settings.at_risk_remaining
        self.max_clock_skew_seconds = settings.max_clock_skew_seconds

    def connect(self):  # type: ignore[no-untyped-def]
        from pipelines.warehouse import open_warehouse

        return open_warehouse(self.warehouse)

    def load_slos(self):  # type: ignore[no-untyped-def]
        from pipelines.slo.spec import load_slos

        return load_slos(self.settings.slos)

    def load_policies(self):  # type: ignore[no-untyped-def]
        from pipelines.slo.policies import load_policies

        return load_policies(self.settings.policies)

    def load_alerting(self):  # type: ignore[no-untyped-def]
        from pipelines.slo.alert_config import load_alerting

        return load_alerting(self.settings.alerting)

    def retention_policy(self):  # type: ignore[no-untyped-def]
        from pipelines.slo.retention import parse_retention

        return parse_retention(self.settings.retention, "settings [retention]")


def run_dagster(config: Config) -> None:
    """What the evaluate_on_interval schedule runs: evaluate_job's assets, materialised in-process."""
    from dagster import DagsterInstance, materialize

    from pipelines.definitions import ALL_ASSETS
    from pipelines.jobs import evaluate_job
    from pipelines.resources import SloscopeResource

    # Asset checks (GX suites) are left out: they only read the warehouse, and importing GX costs seconds.
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            ALL_ASSETS,
            selection=evaluate_job.selection,
            resources={"sloscope": SloscopeResource.from_settings(config.settings)},
            instance=instance,
            raise_on_error=True,
        )
    if not result.success:
        raise SystemExit("materialize failed")


def run_domain(resource: Config) -> None:
    """The calls the evaluate_job assets make, in their dependency order, without Dagster."""
    from pipelines import alert_workflow
    from pipelines.slo.budget import default_as_of
    from pipelines.slo.ingest import ingest_paths
    from pipelines.workflows import (
        alert_state,
        backtest_all,
        breaches_file,
        current_status,
        evaluate_and_store,
        refresh,
        store_alerts,
        store_backtests,
        store_hourly,
        store_objectives,
        write_breaches,
    )

    slos = resource.load_slos()
    config = resource.load_alerting()
    with resource.connect() as con:
        ingest_paths(con, [Path(resource.landing)], max_clock_skew_seconds=resource.max_clock_skew_seconds)
        store_objectives(con, slos)
        refresh(con, slos)
        as_of, results = evaluate_and_store(
            con,
            slos,
            as_of=None,
            at_risk_remaining=resource.at_risk_remaining,
            policies=resource.load_policies(),
        )
    write_breaches(breaches_file(Path(resource.warehouse)), results, as_of)
    with resource.connect() as con:
        store_hourly(con, slos, default_as_of(con))
        moment = default_as_of(con)
        store_alerts(con, alert_state(con, slos, moment, config=config), moment)
        statuses = current_status(con)
        alert_workflow.run_alerting(con, slos, statuses, statuses[0].window_end, config)
        moment = default_as_of(con)
        replay_start, rows = backtest_all(con, slos, config, moment)
        store_backtests(con, rows, moment, replay_start)


def run_history_and_retention(resource: Config) -> None:
    from pipelines.workflows import store_history

    days = [date.fromisoformat(d) for d in os.environ.get("FAULT_HISTORY_DAYS", "").split(",") if d]
    slos = resource.load_slos()
    with resource.connect() as con:
        for day in days:
            store_history(
                con,
                slos,
                day,
                at_risk_remaining=resource.at_risk_remaining,
                policies=resource.load_policies(),
            )
        tick = os.environ.get("FAULT_RETENTION_NOW")
        if tick:
            from pipelines.slo.retention import apply_retention

            apply_retention(con, resource.retention_policy(), now=datetime.fromisoformat(tick))


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else "domain"
    config = Config(load_settings())
    {"dagster": run_dagster, "domain": run_domain}[mode](config)
    run_history_and_retention(config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

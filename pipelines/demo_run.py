"""`make demo`: generate the demo data, materialise every asset in-process, print a summary."""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

from dagster import DagsterInstance, materialize

from pipelines.settings import Settings

HISTORY_DAYS = 28


def run_demo(settings: Settings, *, scale: float = 1.0, days: int = 90) -> int:
    from assets.quality import ALL_CHECKS
    from pipelines.cli import format_table
    from pipelines.definitions import ALL_ASSETS
    from pipelines.resources import SloscopeResource
    from pipelines.slo.demo import generate_demo
    from pipelines.slo.report import safe_slug
    from pipelines.warehouse import open_warehouse
    from pipelines.workflows import current_status, store_history

    started = time.monotonic()
    manifest = generate_demo(settings.landing, days=days, scale=scale)
    print(
        f"demo data: {len(manifest.files)} files, {manifest.events:,} events, "
        f"{manifest.count_rows:,} count rows "
        f"in {settings.landing}"
    )
    resource = SloscopeResource.from_settings(settings)
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            resources={"sloscope": resource},
            instance=instance,
            raise_on_error=False,
        )
        from pipelines.quality_summary import build_quality_summary

        quality = build_quality_summary(instance, result.run_id)
    if not result.success:
        print("error: the pipeline failed; see the log above", file=sys.stderr)
        return 1
    with open_warehouse(settings.warehouse) as con:
        statuses = current_status(con)
        # Daily history for the last four weeks, as `sloscope backfill` or a Dagster backfill would store it.
        slos = resource.load_slos()
        last_day = statuses[0].window_end.date() - timedelta(days=1) if statuses else None
        for offset in range(HISTORY_DAYS if last_day else 0):
            store_history(
                con,
                slos,
                last_day - timedelta(days=offset),  # type: ignore[operator]
                at_risk_remaining=settings.at_risk_remaining,
                policies=resource.load_policies(),
            )
    print()
    print(format_table(statuses))
    if statuses:
        day = statuses[0].window_end.strftime("%Y-%m-%d")
        print("\nreports:")
        for service in sorted({s.service for s in statuses}):
            print(f"  {Path(settings.reports) / day / safe_slug(service) / 'report.html'}")
        print(f"\ndashboard (offline): {Path(settings.reports) / 'dashboard' / 'index.html'}")
    print(
        f"\ndaily history: the last {HISTORY_DAYS} days in slo_history (sloscope history --from ... --to ...)"
    )
    print(
        f"\ndata quality: {quality.checks_run} checks run, {quality.count('passed')} passed, "
        f"{quality.count('warned')} warned, {quality.count('failed')} failed"
    )
    for line in quality.lines:
        if line.result in ("warned", "failed"):
            print(f"  {line.result}: {line.check} on {line.asset}: {line.figure}")
    print(f"\nwarehouse: {settings.warehouse}  ({time.monotonic() - started:.0f} s)")
    return 0

"""Calibration of the Monte Carlo budget forecasts: reliability tables and Brier scores, plus timings.

Usage: python benchmarks/forecast_calibration.py [--days 90] [--scale 1] [--simulations 500]
       [--synthetic-seeds 8] [--synthetic-days 120] [--quick]

(a) The demo history: generated with ``generate_demo``, ingested and aggregated with the project's own
code, and turned into hourly good/total per SLO exactly as the ``slo_hourly`` table holds it
(``store_hourly``). Every Occurrences objective is backtested over its own window with daily origins.
(b) Labelled synthetic histories (pipelines.slo.calibration.synthetic_history), each with its own drawn
parameters, backtested on a 28-day rolling window and a calendar month.

Forecasts made when every simulated path had the budget exhausted already are right by construction;
they are counted but left out of the tables and scores. Origins a day or two apart share most of their
horizon, so the counts overstate the independent evidence. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import numpy as np

from pipelines.settings import REPO_ROOT
from pipelines.slo.aggregate import refresh_aggregates
from pipelines.slo.calibration import (
    SYNTHETIC_KINDS,
    BacktestRow,
    backtest,
    brier_decomposition,
    format_reliability,
    reliability_table,
    synthetic_history,
)
from pipelines.slo.demo import InjectedIncident, generate_demo
from pipelines.slo.forecast import forecast_budget, forecast_for_window, hourly_arrays
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.spec import SloDefinition, load_slos, thresholds_of
from pipelines.slo.windows import CalendarWindow, Duration, RollingWindow
from pipelines.warehouse import connect, query_frame
from pipelines.workflows import store_hourly, store_objectives


def summary(label: str, rows: list[BacktestRow]) -> str:
    decided = sum(r.decided for r in rows)
    scored = brier_decomposition(rows=rows)
    if scored is None:
        return f"  {label:<44} {len(rows):5d} forecasts, {decided:4d} decided, nothing left to score"
    return (
        f"  {label:<44} {len(rows):5d} forecasts, {decided:4d} decided; scored {scored.count:5d}: "
        f"Brier {scored.brier:.4f}  base rate {scored.base_rate:.3f}  mean forecast "
        f"{np.mean([r.predicted for r in rows if not r.decided]):.3f}"
    )


def report(title: str, rows: list[BacktestRow]) -> None:
    print(f"\n{title}")
    print(format_reliability(reliability_table(rows=rows)))
    scored = brier_decomposition(rows=rows)
    if scored is None:
        print("  nothing to score")
        return
    skill = "n/a" if scored.skill is None else f"{scored.skill:.3f}"
    print(
        f"  Brier score {scored.brier:.4f} over {scored.count} forecasts "
        f"(reliability {scored.reliability:.4f}, resolution {scored.resolution:.4f}, "
        f"uncertainty {scored.uncertainty:.4f}; skill vs the base rate {skill})"
    )


def demo_hourly(
    work: Path, days: int, scale: float
) -> tuple[list[SloDefinition], dict, datetime, list[InjectedIncident]]:
    """Generate, ingest and aggregate the demo; hourly good/total per SLO from slo_hourly."""
    manifest = generate_demo(work / "landing", days=days, scale=scale)
    con = connect(work / "warehouse.duckdb")
    ingest_paths(con, [work / "landing"])
    slos = load_slos(REPO_ROOT / "data" / "slos")
    store_objectives(con, slos)
    refresh_aggregates(con, thresholds_of(slos))
    end = manifest.end.replace(tzinfo=None)
    start = manifest.start.replace(tzinfo=None)
    store_hourly(con, slos, end)
    hourly = {}
    for slo in slos:
        frame = query_frame(
            con,
            "SELECT bucket_start, good, total FROM slo_hourly WHERE slo = $slo ORDER BY bucket_start",
            {"slo": slo.name},
        )
        hourly[slo.name] = hourly_arrays(frame, start=start, end=end)
    con.close()
    print(
        f"demo: {days} days at scale {scale}, {manifest.events + manifest.count_rows:,} rows, "
        f"{start:%Y-%m-%d} to {end:%Y-%m-%d}; incidents: "
        + ", ".join(f"{i.kind} {i.service} {i.start:%m-%d %H:%M}" for i in manifest.incidents)
    )
    return slos, hourly, end, manifest.incidents


def first_incident_ahead(row: BacktestRow, slo: SloDefinition, incidents: list[InjectedIncident]) -> bool:
    """An injected failure of the SLO's service starts inside the forecast's horizon (missing data is
    not a failure: it removes events, it adds no bad ones)."""
    return any(
        i.service == slo.service
        and i.kind != "missing_data"
        and row.origin < i.start.replace(tzinfo=None) < row.window_end
        for i in incidents
    )


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90, help="demo history length")
    parser.add_argument("--scale", type=float, default=1.0, help="demo traffic scale")
    parser.add_argument("--simulations", type=int, default=500, help="paths per backtest forecast")
    parser.add_argument("--synthetic-seeds", type=int, default=12, help="histories per synthetic kind")
    parser.add_argument("--synthetic-days", type=int, default=120)
    parser.add_argument("--synthetic-every-hours", type=int, default=48)
    parser.add_argument("--quick", action="store_true", help="fewer synthetic histories and paths")
    args = parser.parse_args()
    if args.quick:
        args.synthetic_seeds, args.simulations = 2, 300
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as scratch:
        slos, hourly, end, incidents = demo_hourly(Path(scratch), args.days, args.scale)

    # One forecast, timed: 2000 paths on the demo's checkout availability.
    good, total, start = hourly["checkout-availability"]
    target = next(s for s in slos if s.name == "checkout-availability").objectives[0].target
    as_of = end

    def rolling() -> object:
        return forecast_for_window(
            RollingWindow(Duration(28, "d")), good, total, start, target=target, as_of=as_of, seed=1
        )

    def calendar_30d() -> object:
        return forecast_budget(
            good, total, start, target=target, window_start=as_of, window_end=as_of + timedelta(days=30),
            as_of=as_of, seed=1, next_window=False,
        )  # fmt: skip

    print("\none forecast, 2000 paths (median of 5):")
    print(f"  30-day calendar period ahead (720 future hours)          {1000 * timed(calendar_30d):7.1f} ms")
    print(f"  28-day rolling, horizon + next window (1344 future hours) {1000 * timed(rolling):6.1f} ms")
    example = rolling()
    print(f"  e.g. {example.to_json()}")  # type: ignore[attr-defined]

    # (a) The demo.
    demo_rows: list[BacktestRow] = []
    surprised: list[BacktestRow] = []
    print(f"\n(a) demo history: daily origins after 28 days of warm-up, {args.simulations} paths each")
    for slo in slos:
        if slo.budgeting_method != "Occurrences" or slo.raw_type is not None:
            continue
        good, total, start = hourly[slo.name]
        for objective in slo.objectives:
            rows = backtest(
                good, total, start, target=objective.target, window=slo.window, seed=7,
                simulations=args.simulations,
            )  # fmt: skip
            demo_rows += rows
            surprised += [r for r in rows if first_incident_ahead(r, slo, incidents)]
            print(summary(f"{slo.name} {objective.target} {slo.window_text}", rows))
    report("demo, all objectives: reliability (undecided forecasts)", demo_rows)
    # The demo's incidents are one-offs injected late in the history: a forecast made before one has
    # never seen anything like it. The manifest says which forecasts that was; score the two groups apart.
    ahead = {id(r) for r in surprised}
    report(
        "demo, forecasts WITHOUT a first-ever injected incident of their service ahead",
        [r for r in demo_rows if id(r) not in ahead],
    )
    print(summary("forecasts WITH a first-ever incident ahead", surprised))

    # (b) Synthetic histories.
    windows = {
        "28d rolling": RollingWindow(Duration(28, "d")),
        "1M calendar": CalendarWindow(Duration(1, "M"), datetime(2026, 1, 1)),
    }
    print(
        f"\n(b) synthetic histories: {args.synthetic_seeds} per kind, {args.synthetic_days} days, origins "
        f"every {args.synthetic_every_hours} h after 28 days, {args.simulations} paths each"
    )
    all_synthetic: list[BacktestRow] = []
    for kind in SYNTHETIC_KINDS:
        for label, window in windows.items():
            rows = []
            for seed in range(args.synthetic_seeds):
                history = synthetic_history(kind, days=args.synthetic_days, seed=seed)
                rows += backtest(
                    history.good, history.total, history.hours_start, target=history.target, window=window,
                    every_hours=args.synthetic_every_hours, seed=seed, simulations=args.simulations,
                )  # fmt: skip
            all_synthetic += rows
            print(summary(f"{kind}, {label}", rows))
    report("synthetic, all kinds and windows: reliability (undecided forecasts)", all_synthetic)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

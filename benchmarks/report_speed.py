"""`make bench`: seconds per report notebook, kernel start included (target: under 10 s each).

Usage: python benchmarks/report_speed.py [--scale N] [--days N] [--keep DIR]
Builds a demo warehouse in a temporary folder, renders every service's report as the pipeline does
(papermill starts a fresh kernel per report, so its start-up is part of what a report costs), then runs
the analyst notebook (`notebooks/explore_slos.ipynb`) on the same warehouse. Prints figures; asserts none.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from pipelines.settings import REPO_ROOT
from pipelines.slo.demo import generate_demo
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.spec import load_slos
from pipelines.warehouse import connect
from pipelines.workflows import evaluate_and_store, refresh, report_hourly, store_hourly, store_objectives

TARGET_SECONDS = 10.0
EXPLORE_NOTEBOOK = REPO_ROOT / "notebooks" / "explore_slos.ipynb"


def build_warehouse(work: Path, *, days: int, scale: float) -> tuple[Path, dict[str, list[dict]], dict]:
    """The demo warehouse, and per service the statuses and hourly frame its report is rendered from."""
    generate_demo(work / "landing", days=days, scale=scale)
    db = work / "warehouse.duckdb"
    con = connect(db)
    try:
        ingest_paths(con, [work / "landing"])
        slos = load_slos(REPO_ROOT / "data" / "slos")
        store_objectives(con, slos)
        refresh(con, slos)
        as_of, results = evaluate_and_store(
            con, slos, as_of=None, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
        )
        store_hourly(con, slos, as_of)
        statuses: dict[str, list[dict]] = {}
        for r in results:
            statuses.setdefault(r.service, []).append({**r.to_json(), "display_name": r.display_name})
        hourly = {service: report_hourly(con, service) for service in statuses}
    finally:
        # Closed before any notebook runs: the reports and the analyst notebook must not meet a writer.
        con.close()
    return db, statuses, {"as_of": as_of, "hourly": hourly}


def time_explore(db: Path, work: Path) -> float:
    """The analyst notebook, run as an analyst would (papermill CLI, own process, fresh kernel)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    subprocess.run(
        [
            *(sys.executable, "-m", "papermill", str(EXPLORE_NOTEBOOK), str(work / "explore.ipynb")),
            *(
                "-k",
                "sloscope",
                "--cwd",
                str(EXPLORE_NOTEBOOK.parent),
                "--no-progress-bar",
                "--no-log-output",
            ),
            *("-p", "warehouse", str(db)),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--keep", help="work in this folder instead of a temporary one")
    args = parser.parse_args()
    from pipelines.slo.report import render_service_report

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.keep) if args.keep else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        db, statuses, extra = build_warehouse(work, days=args.days, scale=args.scale)
        build_seconds = time.perf_counter() - started
        for service in sorted(statuses):
            began = time.perf_counter()
            render_service_report(
                service, statuses[service], extra["hourly"][service], work / "reports", as_of=extra["as_of"]
            )
            rows.append((f"report {service}", time.perf_counter() - began))
        explore_seconds = time_explore(db, work)
    reports = [seconds for _, seconds in rows]
    print(f"report notebooks: scale {args.scale}, {args.days} days, {len(reports)} services")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    width = max(len(label) for label, _ in rows) if rows else 20
    width = max(width, len("explore_slos notebook (snapshot included)"))
    print(f"  {'build demo warehouse (not a report cost)':<{width}}  {build_seconds:8.2f} s")
    for label, seconds in rows:
        print(f"  {label:<{width}}  {seconds:8.2f} s")
    if reports:
        print(f"  {'max per report (target < 10 s)':<{width}}  {max(reports):8.2f} s")
        print(f"  {'mean per report':<{width}}  {sum(reports) / len(reports):8.2f} s")
    print(f"  {'explore_slos notebook (snapshot included)':<{width}}  {explore_seconds:8.2f} s")


if __name__ == "__main__":
    main()

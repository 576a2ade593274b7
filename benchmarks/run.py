"""`make bench`: time each stage of the pipeline on generated data and print the figures.

Usage: python benchmarks/run.py [--scale N] [--days N] [--keep DIR]
Nothing here asserts a time; it prints what it measured on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from pipelines.settings import REPO_ROOT
from pipelines.slo.aggregate import refresh_aggregates
from pipelines.slo.budget import default_as_of, evaluate
from pipelines.slo.demo import generate_demo
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.latency import latency_percentiles
from pipelines.slo.spec import load_slos, parse_documents, thresholds_of
from pipelines.warehouse import connect
from pipelines.workflows import report_hourly, store_hourly, store_objectives

T = TypeVar("T")


def timed(
    label: str, rows: list[tuple[str, str]], fn: Callable[[], T], per: tuple[int, str] | None = None
) -> T:
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    figure = f"{seconds:8.2f} s"
    if per:
        count, unit = per
        figure += f"   {count / seconds:>12,.0f} {unit}/s" if seconds else ""
    rows.append((label, figure))
    return value


OPERATIONS = {
    "checkout": ["place-order", "view-cart", "apply-coupon"],
    "search": ["query", "suggest"],
    "payments-api": ["authorize", "capture", "refund"],
}
THRESHOLDS = [100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500]


def many_slos(count: int) -> str:
    """``count`` OpenSLO documents with 4 objectives each, over the demo services: availability, error-rate
    and latency SLOs per operation, with different thresholds and windows."""
    docs = []
    combos = [
        (service, operation, kind, threshold, window)
        for service, operations in OPERATIONS.items()
        for operation in operations
        for kind in ("availability", "errors", "latency")
        for threshold in (THRESHOLDS if kind == "latency" else [None])
        for window in ("28d", "7d")
    ]
    for number in range(count):
        service, operation, kind, threshold, window = combos[number % len(combos)]
        if kind == "availability":
            ratio = "good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}"
        elif kind == "errors":
            ratio = "bad: {metricSource: {type: sloscope, spec: {success: false}}}"
        else:
            ratio = f"good: {{metricSource: {{type: sloscope, spec: {{latency_ms: {{lte: {threshold}}}}}}}}}"
        docs.append(f"""apiVersion: openslo/v1
kind: SLO
metadata: {{name: bench-{number}}}
spec:
  service: {service}
  indicator:
    spec:
      ratioMetric:
        {ratio}
        total: {{metricSource: {{type: sloscope, spec: {{service: {service}, operation: {operation}}}}}}}
  timeWindow: [{{duration: {window}, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives:
    - {{displayName: a, target: 0.9}}
    - {{displayName: b, target: 0.99}}
    - {{displayName: c, target: 0.995}}
    - {{displayName: d, target: 0.999}}
""")
    return "---\n".join(docs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--keep", help="work in this folder instead of a temporary one")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.keep) if args.keep else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        manifest = timed(
            "generate demo data",
            rows,
            lambda: generate_demo(work / "landing", days=args.days, scale=args.scale),
        )
        rows_in = manifest.events + manifest.count_rows + manifest.malformed_rows
        con = connect(work / "warehouse.duckdb")
        report = timed(
            "ingest (CSV, Parquet, NDJSON)",
            rows,
            lambda: ingest_paths(con, [work / "landing"]),
            (rows_in, "rows"),
        )
        slos = load_slos(REPO_ROOT / "data" / "slos")
        store_objectives(con, slos)
        timed(
            "aggregate (minute, hour, day; counts, thresholds, histograms)",
            rows,
            lambda: refresh_aggregates(con, thresholds_of(slos)),
            (report.rows_loaded, "rows"),
        )
        as_of = default_as_of(con)
        objectives = sum(len(s.objectives) for s in slos)
        results = timed(
            f"evaluate {objectives} objectives, all burn-rate windows",
            rows,
            lambda: evaluate(con, slos, as_of),
        )
        rows.append(("  per objective", f"{1000 * float(rows[-1][1].split()[0]) / len(results):8.1f} ms"))
        timed("hourly history of every SLO", rows, lambda: store_hourly(con, slos, as_of))
        bench_slos, problems = parse_documents(many_slos(250), "bench.yaml")
        assert not problems, problems
        bench_objectives = sum(len(s.objectives) for s in bench_slos)
        timed(
            f"aggregate {len(thresholds_of(bench_slos)['checkout'])} more latency thresholds per service",
            rows,
            lambda: refresh_aggregates(con, thresholds_of([*slos, *bench_slos])),
        )
        timed(
            f"evaluate {bench_objectives} objectives (250 SLOs), 28d/7d windows, all burn rates",
            rows,
            lambda: evaluate(con, bench_slos, as_of),
        )
        rows.append(("  per objective", f"{1000 * float(rows[-1][1].split()[0]) / bench_objectives:8.1f} ms"))
        timed(
            "p50/p95/p99 over 28 days, one service",
            rows,
            lambda: latency_percentiles(con, ["checkout"], as_of - timedelta(days=28), as_of),
        )
        hourly: Any = report_hourly(con, "checkout")
        con.close()
        from pipelines.slo.report import render_service_report

        statuses = [
            {**r.to_json(), "display_name": r.display_name} for r in results if r.service == "checkout"
        ]
        timed(
            "render one report notebook (kernel start included)",
            rows,
            lambda: render_service_report("checkout", statuses, hourly, work / "reports", as_of=as_of),
        )
        size_mb = (work / "warehouse.duckdb").stat().st_size / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"sloscope benchmark: scale {args.scale}, {args.days} days, {rows_in:,} rows in "
        f"{len(manifest.files)} files"
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    width = max(len(label) for label, _ in rows)
    for label, figure in rows:
        print(f"  {label:<{width}}  {figure}")
    print(f"  {'warehouse size':<{width}}  {size_mb:8.1f} MB")
    print(f"  {'peak memory (RSS)':<{width}}  {peak_mb:8.0f} MB")


if __name__ == "__main__":
    main()

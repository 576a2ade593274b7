"""Evaluation speed at fleet scale: 3,000 objectives (750 SLOs x 4) over 30+ days of 1-minute data, cold
and warm, then incrementally after one more minute lands. Targets (issue 8): all windows in under 10 s;
one new minute re-evaluated in under 2 s, not in proportion to history. Prints figures; asserts nothing.

Aggregates are generated straight into the minute tables (no raw events: ingestion has its own
benchmark) and rolled up with the SQL aggregation runs (sql/rollup_*.sql). Density: every service has
1-2 operations; each operation-minute has a 200 row, a 404 row half the time, a 5xx row one time in ten
and a failed 200 one time in fifty (about 1.6 rows per operation-minute, 2,600 rows a minute for 750
services); latency SLOs (a third) get exact counts for their 250 ms threshold. SLOs alternate 28d and 7d
rolling windows, one in ten a calendar month.

    .venv/bin/python benchmarks/eval_speed.py                  # 750 services, 30 days
    .venv/bin/python benchmarks/eval_speed.py --days 90        # the same with 90 days of history
    .venv/bin/python benchmarks/eval_speed.py --minutes-only   # the same ranges read from minute tables
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import duckdb

from pipelines import sqlfiles
from pipelines.slo import budget
from pipelines.slo.budget import evaluate, evaluate_slo
from pipelines.slo.spec import parse_documents
from pipelines.warehouse import connect

T = TypeVar("T")
END = datetime(2026, 11, 1, 13, 37)  # as_of: not on an hour, so every window has ragged minutes


def generate(con: duckdb.DuckDBPyConnection, services: int, days: int) -> int:
    """Minute rows for ``days`` days before END, day by day in time order, then hour and day rollups."""
    con.execute("SELECT setseed(0.42)")
    con.execute(
        """CREATE OR REPLACE TABLE bench_series AS
           SELECT s AS sid, 'svc-' || lpad(s::VARCHAR, 4, '0') AS service, 'op' || o AS operation
           FROM range($n) a(s), range(2) b(o) WHERE o = 0 OR s % 2 = 0""",
        {"n": services},
    )
    con.execute(
        "INSERT INTO sli_thresholds SELECT service, 250.0 FROM bench_series "
        "WHERE sid % 3 = 2 GROUP BY service"
    )
    start = END - timedelta(days=days)
    first = start.replace(hour=0, minute=0)
    day = first
    while day < END:
        insert_minutes(con, max(day, start), min(day + timedelta(days=1), END))
        day += timedelta(days=1)
    rollup(con, first, END)
    return con.execute("SELECT count(*) FROM sli_counts_minute").fetchone()[0]  # type: ignore[index]


def insert_minutes(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> None:
    con.execute(
        """INSERT INTO sli_counts_minute
           SELECT t.ts, s.service, s.operation, c.status, c.success, r.requests, r.requests
           FROM (SELECT $lo + to_minutes(m) AS ts FROM range($n) r(m)) t
           CROSS JOIN bench_series s
           CROSS JOIN (VALUES (200, true, 1.0), (404, true, 0.5), (503, false, 0.1), (200, false, 0.02))
                c(status, success, p)
           CROSS JOIN LATERAL (SELECT CASE WHEN c.status = 200 AND c.success
                                           THEN 20 + (random() * 200)::BIGINT
                                           ELSE 1 + (random() * 5)::BIGINT END AS requests) r
           WHERE c.p = 1.0 OR random() < c.p
           ORDER BY t.ts""",
        {"lo": lo, "n": int((hi - lo).total_seconds() // 60)},
    )
    con.execute(
        """INSERT INTO sli_threshold_minute
           SELECT m.bucket_start, m.service, m.operation, m.status_code, m.success, 250.0,
                  (m.latency_count * 0.97)::BIGINT, (m.latency_count * 0.96)::BIGINT
           FROM sli_counts_minute m SEMI JOIN sli_thresholds t ON t.service = m.service
           WHERE m.bucket_start >= $lo AND m.bucket_start < $hi
           ORDER BY m.bucket_start""",
        {"lo": lo, "hi": hi},
    )


def rollup(con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime) -> None:
    """The hours and days holding [lo, hi), as aggregation's _recompute rolls them up."""
    for grain, source, target, step in (
        ("hour", "minute", "hour", timedelta(hours=1)),
        ("day", "hour", "day", timedelta(days=1)),
    ):
        a = lo.replace(minute=0) if grain == "hour" else lo.replace(hour=0, minute=0)
        last = hi - timedelta(minutes=1)
        b = (last.replace(minute=0) if grain == "hour" else last.replace(hour=0, minute=0)) + step
        params = {"start": a, "end": b, "grain": grain}
        for sql_file, table in (("rollup_counts", "sli_counts"), ("rollup_thresholds", "sli_threshold")):
            sqlfiles.run(con, sql_file, params, source=f"{table}_{source}", target=f"{table}_{target}")


def slo_documents(services: int, method: str = "Occurrences", every: int = 1) -> str:
    """One SLO of 4 objectives per ``every``-th service; Timeslices judges 5-minute slices at 95%."""
    slices = ", timeSliceTarget: 0.95, timeSliceWindow: 5m" if method == "Timeslices" else ""
    docs = []
    for s in range(0, services, every):
        service = f"svc-{s:04d}"
        if s % 3 == 0:
            part = "good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}"
        elif s % 3 == 1:
            part = "bad: {metricSource: {type: sloscope, spec: {success: false}}}"
        else:
            part = "good: {metricSource: {type: sloscope, spec: {latency_ms: {lte: 250}}}}"
        if s % 10 == 9:
            window = "{duration: 1M, calendar: {startTime: '2026-01-01 00:00:00', timeZone: UTC}}"
        else:
            window = "{duration: 28d, isRolling: true}" if s % 2 == 0 else "{duration: 7d, isRolling: true}"
        docs.append(f"""apiVersion: openslo/v1
kind: SLO
metadata: {{name: bench-{s}}}
spec:
  service: {service}
  indicator:
    spec:
      ratioMetric:
        {part}
        total: {{metricSource: {{type: sloscope, spec: {{service: {service}, operation: op0}}}}}}
  timeWindow: [{window}]
  budgetingMethod: {method}
  objectives:
    - {{displayName: a, target: 0.9{slices}}}
    - {{displayName: b, target: 0.99{slices}}}
    - {{displayName: c, target: 0.995{slices}}}
    - {{displayName: d, target: 0.999{slices}}}
""")
    return "---\n".join(docs)


def timed(label: str, action: Callable[[], T], width: int = 62) -> T:
    started = time.perf_counter()
    result = action()
    print(f"  {label:<{width}} {time.perf_counter() - started:7.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=750)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--minutes-only", action="store_true", help="read the ranges from minute tables")
    parser.add_argument("--keep", help="work in this folder (reuses a warehouse generated there)")
    args = parser.parse_args()
    if args.minutes_only and hasattr(budget, "window_ranges"):
        real = budget._batched_sums
        budget._batched_sums = lambda con, slos, as_of: real(con, slos, as_of, minutes_only=True)  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.keep or scratch)
        work.mkdir(parents=True, exist_ok=True)
        path = work / f"eval-{args.services}-{args.days}d.duckdb"
        fresh = not path.exists()
        con = connect(path)
        print(f"evaluation speed: {args.services} services, {args.days} days of 1-minute data")
        if fresh:
            rows = timed(
                "generate minute rows, roll up hours and days",
                lambda: generate(con, args.services, args.days),
            )
        else:  # a kept warehouse: drop the minute an earlier run added
            for table in ("sli_counts_minute", "sli_threshold_minute"):
                con.execute(f"DELETE FROM {table} WHERE bucket_start >= $t", {"t": END})
            rollup(con, END, END + timedelta(minutes=1))
            rows = con.execute("SELECT count(*) FROM sli_counts_minute").fetchone()[0]  # type: ignore[index]
        sizes = {
            grain: con.execute(f"SELECT count(*) FROM sli_counts_{grain}").fetchone()[0]  # type: ignore[index]
            for grain in ("hour", "day")
        }
        print(f"  ({rows:,} minute rows, {sizes['hour']:,} hour rows, {sizes['day']:,} day rows)")
        slos, problems = parse_documents(slo_documents(args.services), "bench.yaml")
        assert not problems, problems
        objectives = sum(len(s.objectives) for s in slos)
        con.close()
        con = connect(path)  # cold: a new connection, nothing cached
        new_plan = hasattr(budget, "window_ranges") and not args.minutes_only
        plan = "days + hours + ragged minutes" if new_plan else "every minute"
        timed(f"evaluate {objectives} objectives, cold ({plan})", lambda: evaluate(con, slos, END))
        warm = timed(f"evaluate {objectives} objectives, warm", lambda: evaluate(con, slos, END))
        print(f"  ({len(warm)} statuses, {sum(r.status == 'breached' for r in warm)} breached)")
        timed(
            "one more minute lands: insert it, roll up its hour and day",
            lambda: (
                insert_minutes(con, END, END + timedelta(minutes=1)),
                rollup(con, END, END + timedelta(minutes=1)),
            ),
        )
        timed(
            f"re-evaluate {objectives} objectives as of the new minute",
            lambda: evaluate(con, slos, END + timedelta(minutes=1)),
        )
        # SLOs needing per-minute arrays (corrections, time slices, percentiles): one in ten as Timeslices.
        sliced, problems = parse_documents(slo_documents(args.services, "Timeslices", every=10), "ts.yaml")
        assert not problems, problems
        timed(
            f"evaluate {len(sliced)} Timeslices SLOs (per-minute arrays, {4 * len(sliced)} objectives)",
            lambda: evaluate(con, sliced, END),
        )
        started = time.perf_counter()
        for slo in sliced[:10]:
            evaluate_slo(con, slo, END)
        each = (time.perf_counter() - started) / 10
        print(f"  {'  one of them on its own (evaluate_slo reads its minutes)':<62} {each:7.2f} s")
        con.close()


if __name__ == "__main__":
    main()

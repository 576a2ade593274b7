"""Raw events from Parquet to every 1-minute SLI table: sloscope end to end against bare DuckDB.

Usage: python benchmarks/ingest_speed.py [--events N] [--days N] [--services N] [--data DIR] [--skip-bare]
       [--skip-check]

The issue-8 measurement is the default: 20 M events over 2 days for about 250 service/operation series
(125 services with 1-3 operations each, ~28 events per series-minute), one threshold per service.
Events come from benchmarks/scale_data.py (typed Parquet, one file per UTC hour); ``--data DIR`` keeps
them there and reuses them on the next run.

Two stages, each in its own child process so each peak RSS is its own:
  bare      one DuckDB file, under the warehouse's memory limit, building sli_counts_minute,
            sli_threshold_minute and latency_histogram_minute straight from the files with plain GROUP BY
            (no validation, no bookkeeping, no rollups): the reference
  sloscope  pipelines.slo.ingest.ingest_paths on the folder (validation, quarantine, bookkeeping) then
            pipelines.slo.aggregate.refresh_aggregates (the same three tables, plus hour and day rollups),
            into an on-disk warehouse
Both write their tables to a DuckDB file and the time includes closing it. Then the three 1-minute tables
of both are compared row for row (``--skip-check`` skips it). Each stage prints wall time, CPU time (all
threads; steadier than wall time on a shared machine) and peak RSS. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` is a folder, not installed

import duckdb

from benchmarks import scale, scale_data
from pipelines.slo import histogram
from pipelines.warehouse import memory_limit_from_env

NOW = datetime(2027, 1, 1, tzinfo=UTC)  # after every generated event

# The bare reference is scale.py's: the three 1-minute tables straight from the Parquet files.
BARE_SQL = "SET TimeZone = 'UTC';" + scale.BARE_SQL

TABLES = {
    "sli_counts_minute": "bucket_start, service, operation, status_code, success, requests, latency_count",
    "sli_threshold_minute": (
        "bucket_start, service, operation, status_code, success, threshold_ms, le_count, lt_count"
    ),
    "latency_histogram_minute": "bucket_start, service, operation, success, bucket, count",
}


def thresholds_of(services: int) -> dict[str, set[float]]:
    """One declared latency threshold per service, cycling through scale_data's thresholds."""
    limits = scale_data.THRESHOLDS_MS
    return {scale_data.service_name(i): {limits[i % len(limits)]} for i in range(services)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """CPU time of this process, every thread: less sensitive than wall time to a busy machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stage_bare(files: list[str], services: int, db: Path) -> dict[str, float]:
    con = duckdb.connect(str(db))
    limit = memory_limit_from_env()  # the warehouse's, so both sides may use the same memory
    if limit:
        con.execute("SET memory_limit = $limit", {"limit": limit})
    rows = sorted((s, t) for s, values in thresholds_of(services).items() for t in values)
    con.execute("CREATE TABLE thresholds (service VARCHAR, threshold_ms DOUBLE)")
    con.executemany("INSERT INTO thresholds VALUES (?, ?)", rows)
    params = histogram.sql_params()
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    started, cpu = time.perf_counter(), _cpu_seconds()
    for statement in BARE_SQL.replace("{files}", listed).split(";"):
        if not statement.strip():
            continue
        names = {k: v for k, v in params.items() if f"${k}" in statement}
        if names:
            con.execute(statement, names)
        else:
            con.execute(statement)
    con.close()  # the tables on disk, as sloscope's are
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_seconds": _cpu_seconds() - cpu, "peak_rss_mb": _peak_rss_mb()}


def stage_sloscope(folder: Path, services: int, db: Path) -> dict[str, float]:
    from pipelines.slo.aggregate import refresh_aggregates
    from pipelines.slo.ingest import ingest_paths
    from pipelines.warehouse import connect

    con = connect(db)
    started, cpu = time.perf_counter(), _cpu_seconds()
    report = ingest_paths(con, [folder], now=NOW)
    ingested = time.perf_counter()
    refresh_aggregates(con, thresholds_of(services))
    con.close()
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "cpu_seconds": _cpu_seconds() - cpu,
        "ingest_seconds": ingested - started,
        "aggregate_seconds": done - ingested,
        "rows_loaded": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
        "failed_files": report.count("failed"),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _child(stage: str, args: argparse.Namespace, db: Path) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--stage",
        stage,
        "--data",
        str(args.data),
        "--services",
        str(args.services),
        "--db",
        str(db),
    ]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"stage {stage} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _figures(events: int, stage: dict[str, float]) -> str:
    return (
        f"{stage['seconds']:7.2f} s ({stage['cpu_seconds']:.2f} CPU s)  "
        f"{events / stage['seconds'] / 1e6:6.2f} M events/s  peak RSS {stage['peak_rss_mb']:,.0f} MB"
    )


def compare(bare_db: Path, ours_db: Path) -> list[str]:
    """Differences between the two warehouses' 1-minute tables (empty when they are equal)."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{bare_db}' AS bare (READ_ONLY)")
    con.execute(f"ATTACH '{ours_db}' AS ours (READ_ONLY)")
    problems = []
    for table, columns in TABLES.items():
        for left, right in (("bare", "ours"), ("ours", "bare")):
            extra = con.execute(
                f"SELECT count(*) FROM (SELECT {columns} FROM {left}.{table} "
                f"EXCEPT ALL SELECT {columns} FROM {right}.{table})"
            ).fetchone()[0]  # type: ignore[index]
            if extra:
                problems.append(f"{table}: {extra} rows in {left} and not in {right}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--services", type=int, default=125)
    parser.add_argument("--data", type=Path, help="folder for the generated Parquet (kept, reused)")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--stage", choices=("bare", "sloscope"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage:
        files = sorted(str(p) for p in args.data.rglob("*.parquet"))
        if args.stage == "bare":
            result = stage_bare(files, args.services, args.db)
        else:
            result = stage_sloscope(args.data, args.services, args.db)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="sloscope-ingest-speed-") as tmp:
        work = Path(tmp)
        args.data = args.data or work / "landing"
        marker = args.data / f"events-{args.events}-{args.days}-{args.services}.json"
        if not marker.exists():
            started = time.perf_counter()
            manifest = scale_data.generate(
                args.data, events=args.events, days=args.days, services=args.services
            )
            marker.write_text(json.dumps({"series": manifest.series}))
            print(f"generated {args.events:,} events in {time.perf_counter() - started:.1f} s")
        series = json.loads(marker.read_text())["series"]
        minutes = args.days * 24 * 60
        print(
            f"events: {args.events:,} over {args.days} days, {series} series "
            f"(~{args.events / series / minutes:.0f} events per series-minute), {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        bare = None
        if not args.skip_bare:
            bare = _child("bare", args, work / "bare.duckdb")
            print(f"bare DuckDB:         {_figures(args.events, bare)}")
        ours = _child("sloscope", args, work / "warehouse.duckdb")
        print(
            f"sloscope end to end: {_figures(args.events, ours)}"
            f"  (ingest {ours['ingest_seconds']:.2f} s, aggregate {ours['aggregate_seconds']:.2f} s;"
            f" {ours['rows_loaded']:,} loaded, {ours['rows_quarantined']:,} quarantined,"
            f" {ours['failed_files']} files failed)"
        )
        if bare is not None:
            print(
                f"ratio sloscope / bare: {ours['seconds'] / bare['seconds']:.2f} wall, "
                f"{ours['cpu_seconds'] / bare['cpu_seconds']:.2f} CPU"
            )
            if not args.skip_check:
                problems = compare(work / "bare.duckdb", work / "warehouse.duckdb")
                print("1-minute tables equal to bare DuckDB's" if not problems else "\n".join(problems))


if __name__ == "__main__":
    main()

"""`make bench`: sloscope at scale, every stage timed in one run, with a bare DuckDB and a pandas reference.

Usage: python benchmarks/scale.py [--events N] [--days N] [--services N] [--objectives N]
       [--keep DIR] [--skip-pandas] [--skip-bare] [--skip-report] [--seed N]

The issue's full measurement: --events 100000000 --days 30 --services 1000 --objectives 3000.

Stages, in order, each in its own child process (so each one's peak RSS is its own):
  generate      seeded events as Hive-partitioned Parquet, one file per hour (benchmarks/scale_data.py)
  ingest        pipelines.slo.ingest.ingest_paths on the landing folder (validation, bookkeeping)
  aggregate     pipelines.slo.aggregate.refresh_aggregates for the declared thresholds: 1-minute counts,
                exact threshold counts, latency histograms, and their hour and day rollups
  bare DuckDB   one DuckDB file building the same three 1-minute tables straight from the files, under
                the same memory limit as the warehouse ([warehouse] memory_limit, SLOSCOPE_MEMORY_LIMIT)
  pandas        benchmarks/pandas_baseline.py: read_parquet + groupby, one file at a time
  evaluate      pipelines.slo.budget.evaluate of every objective, all burn-rate windows
  incremental   one more minute lands as a new file: ingest of the landing folder (as the raw_measurements
                asset does) + refresh + evaluate
  models        seasonality, trends, change points and anomaly scores of 20 SLOs (pipelines.analytics)
  forecasts     Monte Carlo budget forecasts of the same 20 SLOs' objectives
  report        one service's report notebook with papermill (kernel start included)
End to end = ingest + aggregate (Parquet to every SLI table). The bare DuckDB reference builds only the
1-minute tables, so the ratio is an upper bound on sloscope's overhead for them. Nothing here asserts a
time; it prints what it measured, with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `benchmarks` is a folder, not installed

import duckdb
import polars as pl

from benchmarks import scale_data
from pipelines.slo import histogram
from pipelines.warehouse import memory_limit_from_env

STAGES = (
    "generate",
    "ingest",
    "aggregate",
    "bare",
    "pandas",
    "evaluate",
    "incremental",
    "models",
    "forecasts",
    "report",
)
SUBSET = 20  # SLOs for models and forecasts
FULL = "--events 100000000 --days 30 --services 1000 --objectives 3000"

# The three 1-minute tables, as sql/aggregate_minutes.sql and sql/aggregate_threshold_minutes.sql define
# them, straight from the Parquet files: no validation, no bookkeeping, no rollups.
BARE_SQL = """
CREATE TEMP VIEW events AS
SELECT CAST("timestamp" AS TIMESTAMP) AS ts, service, operation, status_code, success, latency_ms
FROM read_parquet({files}, hive_partitioning = false);
CREATE TABLE sli_counts_minute AS
SELECT date_trunc('minute', ts) AS bucket_start, service, operation, status_code,
       coalesce(status_code < 500, true) AND coalesce(success, true) AS success,
       count(*) AS requests, count(latency_ms) AS latency_count
FROM events
GROUP BY ALL;
CREATE TABLE sli_threshold_minute AS
SELECT date_trunc('minute', e.ts) AS bucket_start, e.service, e.operation, e.status_code,
       coalesce(e.status_code < 500, true) AND coalesce(e.success, true) AS success,
       t.threshold_ms,
       count(*) FILTER (WHERE e.latency_ms <= t.threshold_ms) AS le_count,
       count(*) FILTER (WHERE e.latency_ms < t.threshold_ms) AS lt_count
FROM events e
JOIN thresholds t ON t.service = e.service
WHERE e.latency_ms IS NOT NULL
GROUP BY ALL;
CREATE TABLE latency_histogram_minute AS
SELECT date_trunc('minute', ts) AS bucket_start, service, operation,
       coalesce(status_code < 500, true) AND coalesce(success, true) AS success,
       CASE WHEN latency_ms < $min_latency THEN $zero_bucket
            ELSE CAST(ceil(ln(latency_ms) / $ln_gamma) AS INTEGER) END AS bucket,
       count(*) AS count
FROM events
WHERE latency_ms IS NOT NULL
GROUP BY ALL;
"""
TABLE_KEYS = {
    "sli_counts_minute": ["bucket_start", "service", "operation", "status_code", "success"],
    "sli_threshold_minute": [
        "bucket_start",
        "service",
        "operation",
        "status_code",
        "success",
        "threshold_ms",
    ],
    "latency_histogram_minute": ["bucket_start", "service", "operation", "success", "bucket"],
}
TABLE_VALUES = {
    "sli_counts_minute": ["requests", "latency_count"],
    "sli_threshold_minute": ["le_count", "lt_count"],
    "latency_histogram_minute": ["count"],
}
_SCHEMA = {
    "bucket_start": pl.Datetime("us"),
    "service": pl.String,
    "operation": pl.String,
    "status_code": pl.Int16,
    "success": pl.Boolean,
    "threshold_ms": pl.Float64,
    "bucket": pl.Int32,
    "requests": pl.Int64,
    "latency_count": pl.Int64,
    "le_count": pl.Int64,
    "lt_count": pl.Int64,
    "count": pl.Int64,
}


# ---------------------------------------------------------------------------------------------------------
# The three ways to the 1-minute tables, and a canonical form to compare them in


def canonical(table: str, frame: pl.DataFrame | Any) -> pl.DataFrame:
    """The table's rows with its key and value columns, typed alike and sorted by key."""
    if not isinstance(frame, pl.DataFrame):
        frame = pl.from_pandas(frame)
    columns = TABLE_KEYS[table] + TABLE_VALUES[table]
    return frame.select([pl.col(c).cast(_SCHEMA[c]) for c in columns]).sort(
        TABLE_KEYS[table], nulls_last=True
    )


def event_files(landing: Path) -> list[Path]:
    return sorted(landing.rglob("*.parquet"))


def bare_duckdb_tables(
    files: list[Path],
    thresholds: dict[str, set[float]],
    spent: dict[str, float] | None = None,
    database: Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB holding the three 1-minute tables built straight from ``files`` (with the seconds each
    statement took in ``spent``): in the file ``database`` under the warehouse's memory limit, as
    sloscope's own tables are, or in memory when None."""
    con = duckdb.connect(str(database) if database else ":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if database is not None:
        limit = memory_limit_from_env()
        if limit:
            con.execute("SET memory_limit = $limit", {"limit": limit})
    pairs = sorted((s, float(t)) for s, values in thresholds.items() for t in values)
    declared = pl.DataFrame(
        {"service": [s for s, _ in pairs], "threshold_ms": [t for _, t in pairs]},
        schema={"service": pl.String, "threshold_ms": pl.Float64},
    )
    con.register("thresholds_frame", declared)
    con.execute("CREATE TEMP TABLE thresholds AS SELECT * FROM thresholds_frame")
    con.unregister("thresholds_frame")
    params: dict[str, Any] = histogram.sql_params()
    listed = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    for statement in BARE_SQL.replace("{files}", listed).split(";"):
        if statement.strip():
            used = {k: v for k, v in params.items() if f"${k}" in statement}
            started = time.perf_counter()
            con.execute(statement, used)
            if spent is not None:
                label = " ".join(statement.split()[:3])
                spent[label] = time.perf_counter() - started
    return con


def table_frame(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    columns = ", ".join(f'"{c}"' for c in TABLE_KEYS[table] + TABLE_VALUES[table])
    return con.sql(f"SELECT {columns} FROM {table}").pl()


# ---------------------------------------------------------------------------------------------------------
# Stages (each runs in a child process: `scale.py --stage NAME --work DIR ...`, JSON on the last line)


def _slos(work: Path) -> list[Any]:
    from pipelines.slo.spec import load_slos

    return load_slos(work / "slos")


def _warehouse(work: Path) -> duckdb.DuckDBPyConnection:
    from pipelines.warehouse import connect

    return connect(work / "warehouse.duckdb")


def _manifest(work: Path) -> scale_data.Manifest:
    saved = json.loads((work / "manifest.json").read_text())
    return scale_data.Manifest(
        events=saved["events"],
        files=[Path(p) for p in saved["files"]],
        services=saved["services"],
        series=saved["series"],
        start=datetime.fromisoformat(saved["start"]),
        end=datetime.fromisoformat(saved["end"]),
    )


def _subset(slos: list[Any]) -> list[Any]:
    """SUBSET SLOs of different services where possible, chosen by name (deterministic)."""
    chosen, services = [], set()
    for slo in sorted(slos, key=lambda s: s.name):
        if slo.service not in services:
            chosen.append(slo)
            services.add(slo.service)
        if len(chosen) == SUBSET:
            break
    return chosen


class Clock:
    """Wall and CPU seconds (all threads of this process; not its children, such as a report's kernel)."""

    def __enter__(self) -> Clock:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu

    def figures(self, **extra: Any) -> dict[str, Any]:
        return {"seconds": self.seconds, "cpu": self.cpu, **extra}


@contextmanager
def breakdown() -> Iterator[dict[str, float]]:
    """Seconds per SQL file run through ``pipelines.sqlfiles.run``, and in the Parquet reader of ingest."""
    from pipelines import sqlfiles
    from pipelines.slo import ingest

    spent: dict[str, float] = {}

    def timing(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                name = label or (f"{a[1]}" + (f" {k['target']}" if "target" in k else ""))
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    original_run, original_reader = sqlfiles.run, ingest._READERS["parquet"]
    sqlfiles.run = timing("", original_run)  # type: ignore[assignment]
    ingest._READERS["parquet"] = timing("read Parquet into text staging (polars)", original_reader)
    try:
        yield spent
    finally:
        sqlfiles.run = original_run  # type: ignore[assignment]
        ingest._READERS["parquet"] = original_reader


def stage_generate(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    with Clock() as clock:
        manifest = scale_data.generate(
            work / "landing" / "raw",
            events=args.events,
            days=args.days,
            services=args.services,
            seed=args.seed,
        )
    (work / "slos").mkdir(parents=True, exist_ok=True)
    (work / "slos" / "scale.yaml").write_text(scale_data.slo_yaml(args.objectives, args.services, args.seed))
    (work / "manifest.json").write_text(
        json.dumps(
            {
                "events": manifest.events,
                "files": [str(f) for f in manifest.files],
                "services": manifest.services,
                "series": manifest.series,
                "start": manifest.start.isoformat(),
                "end": manifest.end.isoformat(),
            }
        )
    )
    size = sum(f.stat().st_size for f in manifest.files)
    return clock.figures(
        events=manifest.events, files=len(manifest.files), series=manifest.series, parquet_mb=size / 1e6
    )


def stage_ingest(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from pipelines.slo.ingest import ingest_paths

    con = _warehouse(work)
    with breakdown() as spent, Clock() as clock:
        report = ingest_paths(con, [work / "landing"])
    con.close()
    failed = [f.message for f in report.files if f.status == "failed"]
    return clock.figures(
        loaded=report.rows_loaded, quarantined=report.rows_quarantined, failed=failed[:3], breakdown=spent
    )


def stage_aggregate(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from pipelines.slo.aggregate import refresh_aggregates
    from pipelines.slo.spec import thresholds_of
    from pipelines.workflows import store_objectives

    slos = _slos(work)
    con = _warehouse(work)
    store_objectives(con, slos)
    with breakdown() as spent, Clock() as clock:
        refresh_aggregates(con, thresholds_of(slos))
    rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLE_KEYS}  # type: ignore[index]
    con.close()
    objectives = sum(len(s.objectives) for s in slos)
    return clock.figures(rows=rows, objectives=objectives, breakdown=spent)


def stage_bare(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from pipelines.slo.spec import thresholds_of

    thresholds = thresholds_of(_slos(work))
    files = _manifest(work).files
    spent: dict[str, float] = {}
    with Clock() as clock:
        con = bare_duckdb_tables(files, thresholds, spent, database=work / "bare.duckdb")
    rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLE_KEYS}  # type: ignore[index]
    con.close()
    return clock.figures(rows=rows, breakdown=spent)


def stage_pandas(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.pandas_baseline import write_minute_tables
    from pipelines.slo.spec import thresholds_of

    thresholds = thresholds_of(_slos(work))
    files = _manifest(work).files
    with Clock() as clock:
        rows = write_minute_tables(files, thresholds, work / "pandas")
    return clock.figures(rows=dict(zip(TABLE_KEYS, rows, strict=True)))


def stage_evaluate(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from pipelines.slo.budget import evaluate

    slos = _slos(work)
    con = _warehouse(work)
    with Clock() as clock:
        results = evaluate(con, slos)
    con.close()
    return clock.figures(objectives=len(results))


def stage_incremental(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from pipelines.slo.aggregate import refresh_aggregates
    from pipelines.slo.budget import evaluate
    from pipelines.slo.ingest import ingest_paths
    from pipelines.slo.spec import thresholds_of

    slos = _slos(work)
    _, events = scale_data.one_more_minute(work / "landing" / "raw", _manifest(work), seed=args.seed)
    con = _warehouse(work)
    with Clock() as clock:
        with Clock() as ingest_clock:
            report = ingest_paths(con, [work / "landing"])
        with Clock() as refresh_clock:
            refresh_aggregates(con, thresholds_of(slos))
        with Clock() as evaluate_clock:
            results = evaluate(con, slos)
    con.close()
    return clock.figures(
        events=events,
        loaded=report.rows_loaded,
        skipped_files=report.count("skipped"),
        ingest=ingest_clock.seconds,
        refresh=refresh_clock.seconds,
        evaluate=evaluate_clock.seconds,
        objectives=len(results),
    )


def stage_models(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from pipelines import analytics
    from pipelines.slo.budget import default_as_of

    slos = _subset(_slos(work))
    con = _warehouse(work)
    as_of = default_as_of(con)
    with Clock() as clock:
        series = [s for slo in slos for s in analytics.slo_series(con, slo, as_of, days=90)]
        components, trends, shifts = analytics.seasonality_rows(series)
        anomalies = analytics.anomaly_rows(series, keep_days=90)
    con.close()
    return clock.figures(
        slos=len(slos),
        series=len(series),
        trends=len(trends),
        change_points=len(shifts),
        anomaly_rows=len(anomalies),
        components=len(components),
    )


def stage_forecasts(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from pipelines import analytics
    from pipelines.slo.budget import default_as_of

    slos = _subset(_slos(work))
    con = _warehouse(work)
    as_of = default_as_of(con)
    with Clock() as clock:
        rows = analytics.forecast_rows(con, slos, as_of)
    con.close()
    return clock.figures(slos=len(slos), forecasts=len(rows))


def stage_report(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from pipelines.slo.budget import default_as_of, evaluate
    from pipelines.slo.report import render_service_report
    from pipelines.workflows import report_hourly, store_hourly

    slos = _slos(work)
    service = sorted(slos, key=lambda s: s.name)[0].service
    mine = [s for s in slos if s.service == service]
    con = _warehouse(work)
    as_of = default_as_of(con)
    with Clock() as clock:
        store_hourly(con, mine, as_of)
        statuses = [{**r.to_json(), "display_name": r.display_name} for r in evaluate(con, mine, as_of)]
        hourly = report_hourly(con, service)
        con.close()  # the kernel must not meet a writer
        with Clock() as render:
            render_service_report(service, statuses, hourly, work / "reports", as_of=as_of)
    return clock.figures(service=service, slos=len(mine), render=render.seconds)


def run_stage(name: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    result = globals()[f"stage_{name}"](work, args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return result


# ---------------------------------------------------------------------------------------------------------
# The harness


def _child(name: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--stage", name, "--work", str(work)),
        *("--events", str(args.events), "--days", str(args.days)),
        *("--services", str(args.services), "--objectives", str(args.objectives), "--seed", str(args.seed)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"stage {name} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> str:
    cpu = "unknown CPU"
    memory = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1]) / 1024**2
                break
    except OSError:
        pass
    import pandas

    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, {platform.system()} {platform.machine()}; "
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, polars {pl.__version__}, "
        f"pandas {pandas.__version__}"
    )


def code_version() -> str:
    """The commit measured, and whether the working tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" with uncommitted changes" if dirty else "")


def _rate(count: float, seconds: float, unit: str) -> str:
    return f"{count / seconds:>12,.0f} {unit}/s" if seconds > 0 else ""


def harness(args: argparse.Namespace, work: Path) -> dict[str, dict[str, Any]]:
    skip = {
        "pandas": args.skip_pandas,
        "bare": args.skip_bare,
        "report": args.skip_report,
        "models": args.skip_models,
        "forecasts": args.skip_models,
    }
    results: dict[str, dict[str, Any]] = {}
    for name in STAGES:
        if skip.get(name):
            continue
        results[name] = _child(name, work, args) if not args.in_process else run_stage(name, work, args)
        print(f"  ... {name}: {results[name]['seconds']:.2f} s", file=sys.stderr, flush=True)
    return results


def table(args: argparse.Namespace, results: dict[str, dict[str, Any]], load: tuple[float, ...]) -> str:
    n = args.events
    r = results
    rows: list[tuple[str, ...]] = []

    def add(label: str, stage: str | None, seconds: float, rate: str, cpu: float | None = None) -> None:
        rss = f"{r[stage]['peak_rss_mb']:8,.0f} MB" if stage in r else ""
        cpu = r[stage]["cpu"] if stage in r else cpu
        rows.append((label, f"{seconds:8.2f} s", f"{cpu:8.2f} s" if cpu is not None else "", rate, rss))

    gen = r["generate"]
    add(
        f"generate ({gen['files']} Parquet files, {gen['parquet_mb']:,.0f} MB)",
        "generate",
        gen["seconds"],
        "",
    )
    add(
        "ingest (Parquet -> raw_events)",
        "ingest",
        r["ingest"]["seconds"],
        _rate(n, r["ingest"]["seconds"], "events"),
    )
    add(
        "SLI aggregation (minute/hour/day counts, thresholds, histograms)",
        "aggregate",
        r["aggregate"]["seconds"],
        _rate(n, r["aggregate"]["seconds"], "events"),
    )
    e2e = r["ingest"]["seconds"] + r["aggregate"]["seconds"]
    e2e_cpu = r["ingest"]["cpu"] + r["aggregate"]["cpu"]
    add("end to end: Parquet -> every SLI table", None, e2e, _rate(n, e2e, "events"), e2e_cpu)
    if "bare" in r:
        add(
            "bare DuckDB SQL: Parquet -> 1-minute tables",
            "bare",
            r["bare"]["seconds"],
            _rate(n, r["bare"]["seconds"], "events"),
        )
    if "pandas" in r:
        add(
            "plain pandas: Parquet -> 1-minute tables",
            "pandas",
            r["pandas"]["seconds"],
            _rate(n, r["pandas"]["seconds"], "events"),
        )
    ev = r["evaluate"]
    add(
        f"evaluate {ev['objectives']:,} objectives, all windows",
        "evaluate",
        ev["seconds"],
        _rate(ev["objectives"], ev["seconds"], "objectives"),
    )
    inc = r["incremental"]
    add(
        f"one new minute ({inc['events']:,} events): ingest + refresh + evaluate",
        "incremental",
        inc["seconds"],
        f"{inc['ingest']:.2f} + {inc['refresh']:.2f} + {inc['evaluate']:.2f} s",
    )
    if "models" in r:
        m = r["models"]
        add(
            f"models: {m['series']} series of {m['slos']} SLOs (seasonality, trend, anomalies)",
            "models",
            m["seconds"],
            "",
        )
    if "forecasts" in r:
        f = r["forecasts"]
        add(
            f"forecasts: {f['forecasts']} objectives of {f['slos']} SLOs (Monte Carlo)",
            "forecasts",
            f["seconds"],
            "",
        )
    if "report" in r:
        p = r["report"]
        add(
            f"report: one service, {p['slos']} SLO(s), papermill, kernel start included",
            "report",
            p["seconds"],
            f"render {p['render']:.2f} s",
        )

    agg_rows = r["aggregate"]["rows"]
    lines = [
        f"sloscope at scale: {n:,} events, {args.days} days, {args.services:,} services "
        f"({gen['series']:,} service/operation series), {r['aggregate']['objectives']:,} objectives",
        f"machine: {machine()}",
        f"code: sloscope {code_version()}",
        f"DuckDB memory limit of the warehouse and bare DuckDB connections: "
        f"{memory_limit_from_env() or 'DuckDB default (80% of RAM)'} (SLOSCOPE_MEMORY_LIMIT)",
        f"load average (1, 5, 15 min) at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    header = ("stage", "wall", "CPU", "rate", "peak RSS")
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    lines.append(("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))).rstrip())
    for row in rows:
        lines.append(("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip())
    lines.append(
        f"minute tables: {agg_rows['sli_counts_minute']:,} count rows, {agg_rows['sli_threshold_minute']:,} "
        f"threshold rows, {agg_rows['latency_histogram_minute']:,} histogram rows; ingest loaded "
        f"{r['ingest']['loaded']:,}, quarantined {r['ingest']['quarantined']:,}"
    )
    if "bare" in r:
        lines.append(f"ratio end to end / bare DuckDB: {e2e / r['bare']['seconds']:.2f}x (target <= 1.5x)")
    if "pandas" in r:
        lines.append(
            f"ratio plain pandas / sloscope end to end: {r['pandas']['seconds'] / e2e:.1f}x (target >= 10x)"
        )
    peak = max(v["peak_rss_mb"] for v in r.values())
    lines.append(f"peak RSS of any stage: {peak:,.0f} MB (CPU: all threads of the stage's process)")
    for stage in ("ingest", "aggregate", "bare"):
        if stage in r and r[stage].get("breakdown"):
            spent = r[stage]["breakdown"]
            top = sorted(spent.items(), key=lambda kv: -kv[1])[:5]
            rest = r[stage]["seconds"] - sum(spent.values())
            parts = [f"{name} {seconds:.1f} s" for name, seconds in top]
            if rest > 0.05 * r[stage]["seconds"]:
                parts.append(f"outside these {rest:.1f} s")
            lines.append(f"where {stage} spends its time: " + "; ".join(parts))
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--services", type=int, default=125, help="each with 1-3 operations")
    parser.add_argument("--objectives", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20261001)
    parser.add_argument("--keep", help="work in this folder (kept) instead of a temporary one")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--skip-bare", action="store_true")
    parser.add_argument("--skip-models", action="store_true", help="skip models and forecasts")
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--in-process", action="store_true", help="run stages here (no per-stage RSS)")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse(argv)
    if args.stage:
        print(json.dumps(run_stage(args.stage, Path(args.work), args), default=str))
        return ""
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sloscope-scale-") as scratch:
        work = Path(args.keep) if args.keep else Path(scratch)
        if work.exists() and any(work.iterdir()) and args.keep:
            raise SystemExit(
                f"{work}: --keep needs an empty or new folder (the run writes a warehouse there)"
            )
        work.mkdir(parents=True, exist_ok=True)
        results = harness(args, work)
    text = table(args, results, load)
    print(text)
    if args.events < 100_000_000:
        print(f"full run (the issue's figures): python benchmarks/scale.py {FULL}")
    return text


if __name__ == "__main__":
    main()

"""Scale-out: the Parquet lake built day by day with Dagster's multiprocess executor, on a real PostgreSQL
instance storage, gives exactly what the in-process executor gives.

A PostgreSQL server from Debian's packages (installed by .ci/run) is started here on a free 127.0.0.1
port, in a temporary folder, as the ``postgres`` OS user when running as root (postgres refuses root).
"""

from __future__ import annotations

import glob
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.fs as pafs
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    Definitions,
    RunsFilter,
    define_asset_job,
    in_process_executor,
    multiprocess_executor,
)

from assets.scaleout import LakeResource, sli_lake_load, sli_minute_lake
from pipelines.parquet_lake import LAKE_TABLES, Lake, build_day, load_days
from pipelines.resources import SloscopeResource
from pipelines.settings import REPO_ROOT
from pipelines.slo import histogram
from pipelines.warehouse import open_warehouse, query_frame

pytestmark = pytest.mark.slow

DAYS = [date(2026, 9, 1), date(2026, 9, 2), date(2026, 9, 3), date(2026, 9, 4)]
SERVICES = ("checkout", "search")
SLOS = REPO_ROOT / "data" / "slos"  # thresholds: checkout 300 ms; search 0, 300 and 1000 ms
# Every table the comparison covers: the lake's, and the rollups the loader rebuilds.
COMPARED = [
    *LAKE_TABLES,
    *(
        f"{family}_{grain}"
        for family in ("sli_counts", "sli_threshold", "latency_histogram")
        for grain in ("hour", "day")
    ),
]


# --- PostgreSQL ---------------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, object]]:
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
            "(.ci/run installs Debian's postgresql)"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    base = Path(tempfile.mkdtemp(prefix="sloscope-pg-"))
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    port = _free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60"]
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"])
        _run([*ctl, "-o", options, "start"], log=base / "server.log")
        _run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "dagster"])
        yield {"host": "127.0.0.1", "port": port, "user": "postgres", "db": "dagster"}
    finally:
        subprocess.run(
            _as_postgres([*ctl, "-m", "fast", "stop"]), check=False, capture_output=True, timeout=60
        )
        shutil.rmtree(base, ignore_errors=True)


def _run(command: list[str], log: Path | None = None) -> None:
    """Run a PostgreSQL tool (as the postgres user when root); fail with its output, and the server log."""
    done = subprocess.run(_as_postgres(command), capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
        pytest.fail(f"{' '.join(command)} exited {done.returncode}: {done.stdout}{done.stderr}{server_log}")


@pytest.fixture(scope="module")
def dagster_home(postgres: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(
        f"""
storage:
  postgres:
    postgres_db:
      hostname: {postgres["host"]}
      port: {postgres["port"]}
      username: {postgres["user"]}
      password: ""
      db_name: {postgres["db"]}
      # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; dagster-postgres installs psycopg2.
      scheme: postgresql+psycopg2
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
""",
        encoding="utf-8",
    )
    return home


# --- The lake -----------------------------------------------------------------------------------------

# The known slice: checkout / pay on the first day at 10:00, three requests (its only traffic).
SLICE_MINUTE = datetime(2026, 9, 1, 10, 0)
SLICE = [(200, 120.0), (200, 450.0), (503, 80.0)]


def _write_parquet(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(
        rows,
        schema={
            "timestamp": pl.Datetime("us", "UTC"),
            "service": pl.String,
            "operation": pl.String,
            "status_code": pl.Int64,
            "latency_ms": pl.Float64,
        },
        orient="row",
    )
    frame.write_parquet(path)


def make_lake(root: Path) -> None:
    """Four days, two services (one file per service folder), seeded random traffic, and three bad rows."""
    rng = random.Random(8)
    for day in DAYS:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for service in SERVICES:
            rows = []
            for _ in range(600):
                moment = start + timedelta(seconds=rng.randrange(86_400))
                status = 503 if rng.random() < 0.03 else 200
                latency = round(rng.lognormvariate(5.0, 0.8), 3)
                rows.append(
                    {
                        "timestamp": moment,
                        "service": service,
                        "operation": rng.choice(["browse", "list"]),
                        "status_code": status,
                        "latency_ms": latency,
                    }
                )
            if day == DAYS[0] and service == "checkout":
                for status, latency in SLICE:
                    rows.append(
                        {
                            "timestamp": SLICE_MINUTE.replace(tzinfo=UTC) + timedelta(seconds=10),
                            "service": service,
                            "operation": "pay",
                            "status_code": status,
                            "latency_ms": latency,
                        }
                    )
                # Quarantined: a negative latency, a time in the next day, a service of another folder.
                rows.append(
                    {
                        "timestamp": start + timedelta(hours=1),
                        "service": service,
                        "operation": "pay",
                        "status_code": 200,
                        "latency_ms": -5.0,
                    }
                )
                rows.append(
                    {
                        "timestamp": start + timedelta(days=1, minutes=5),
                        "service": service,
                        "operation": "pay",
                        "status_code": 200,
                        "latency_ms": 10.0,
                    }
                )
                rows.append(
                    {
                        "timestamp": start + timedelta(hours=2),
                        "service": "search",
                        "operation": "pay",
                        "status_code": 200,
                        "latency_ms": 10.0,
                    }
                )
            _write_parquet(
                root / "raw" / f"date={day.isoformat()}" / f"service={service}" / "part-0.parquet", rows
            )
        # A ratios file (precomputed ratios, one per sample): sli_ratio_minute and sli_ratio_hour.
        ratios = pl.DataFrame(
            {
                "timestamp": [start + timedelta(minutes=7 * i) for i in range(20)],
                "service": ["search"] * 20,
                "operation": ["index"] * 20,
                "ratio": [round(rng.random(), 4) for _ in range(20)],
            },
            schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
        )
        ratios.write_parquet(root / "raw" / f"date={day.isoformat()}" / "service=search" / "ratios.parquet")


# --- Dagster wiring -----------------------------------------------------------------------------------


def _resources(lake: Path, warehouse: Path) -> dict[str, object]:
    return {
        "lake": LakeResource(root=str(lake)),
        "sloscope": SloscopeResource(
            warehouse=str(warehouse),
            landing=str(lake / "landing"),
            reports=str(lake / "reports"),
            slos=str(SLOS),
        ),
    }


def lake_definitions(executor=multiprocess_executor) -> Definitions:  # type: ignore[no-untyped-def]
    """Rebuilt in each step process from SLOSCOPE_TEST_LAKE / SLOSCOPE_TEST_WAREHOUSE."""
    lake, warehouse = Path(os.environ["SLOSCOPE_TEST_LAKE"]), Path(os.environ["SLOSCOPE_TEST_WAREHOUSE"])
    return Definitions(
        assets=[sli_minute_lake, sli_lake_load],
        jobs=[
            define_asset_job("lake_build", selection=[sli_minute_lake]),
            define_asset_job("lake_load", selection=[sli_lake_load]),
        ],
        resources=_resources(lake, warehouse),
        executor=executor,
    )


def lake_build_job():  # type: ignore[no-untyped-def]
    return lake_definitions().resolve_job_def("lake_build")


def lake_load_job():  # type: ignore[no-untyped-def]
    return lake_definitions().resolve_job_def("lake_load")


def _step_windows(instance: DagsterInstance, run_id: str) -> tuple[int, float, float]:
    """(pid of the step process, when the worker was launched, when the step succeeded) of a one-step run."""
    events = {
        e.dagster_event.event_type: e
        for e in instance.all_logs(run_id)
        if e.dagster_event is not None
        and e.dagster_event.event_type
        in (DagsterEventType.STEP_WORKER_STARTING, DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS)
    }
    return (
        events[DagsterEventType.STEP_START].dagster_event.pid,
        events[DagsterEventType.STEP_WORKER_STARTING].timestamp,
        events[DagsterEventType.STEP_SUCCESS].timestamp,
    )


def _table(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    return query_frame(con, f"SELECT * FROM {table} ORDER BY ALL")


# --- The test -----------------------------------------------------------------------------------------


def test_multiprocess_on_postgres_equals_in_process(
    dagster_home: Path, postgres: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    multi_lake, single_lake = tmp_path / "lake-multi", tmp_path / "lake-single"
    make_lake(multi_lake)
    make_lake(single_lake)
    multi_wh, single_wh = tmp_path / "multi.duckdb", tmp_path / "single.duckdb"
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("SLOSCOPE_TEST_LAKE", str(multi_lake))
    monkeypatch.setenv("SLOSCOPE_TEST_WAREHOUSE", str(multi_wh))
    instance = DagsterInstance.get()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"

    # Every day a run of its own (a backfill's shape), all four started together by `dagster job execute`
    # in processes of their own (Dagster's run machinery is not thread-safe); each run's step goes to a
    # worker process of the multiprocess executor (max_concurrent 2).
    config = tmp_path / "run_config.yaml"
    config.write_text("execution:\n  config:\n    max_concurrent: 2\n", encoding="utf-8")
    dagster = [
        str(Path(sys.executable).parent / "dagster"),
        "job",
        "execute",
        "-f",
        __file__,
        "-c",
        str(config),
    ]
    processes = [
        subprocess.Popen(
            [*dagster, "-a", "lake_build_job", "--tags", json.dumps({"dagster/partition": day.isoformat()})],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in DAYS
    ]
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-3000:]
    build_runs = [r.run_id for r in instance.get_runs(filters=RunsFilter(job_name="lake_build"))]
    assert len(build_runs) == len(DAYS)
    loaded = subprocess.run(
        [*dagster, "-a", "lake_load_job"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert loaded.returncode == 0, (loaded.stdout + loaded.stderr)[-3000:]

    # Several partitions really ran at once, each in its own process.
    windows = [_step_windows(instance, run_id) for run_id in build_runs]
    pids = {pid for pid, _, _ in windows}
    assert len(pids) == len(DAYS) and os.getpid() not in pids
    overlapping = [
        (a, b) for i, a in enumerate(windows) for b in windows[i + 1 :] if a[1] < b[2] and b[1] < a[2]
    ]
    assert overlapping, windows

    # The same, in process, one day after another, into a second lake and warehouse (same instance).
    monkeypatch.setenv("SLOSCOPE_TEST_LAKE", str(single_lake))
    monkeypatch.setenv("SLOSCOPE_TEST_WAREHOUSE", str(single_wh))
    in_process = lake_definitions(in_process_executor)
    for day in DAYS:
        assert (
            in_process.resolve_job_def("lake_build")
            .execute_in_process(instance=instance, partition_key=day.isoformat())
            .success
        )
    assert in_process.resolve_job_def("lake_load").execute_in_process(instance=instance).success

    # Exactly the same tables, and the same quarantine, either way.
    with open_warehouse(multi_wh) as multi, open_warehouse(single_wh) as single:
        for table in COMPARED:
            left, right = _table(multi, table), _table(single, table)
            assert left.height > 0, table
            assert left.equals(right), table
        counts = _table(multi, "sli_counts_minute")
    for day in DAYS:
        for lake in (multi_lake, single_lake):
            assert (lake / "sli" / "_manifest" / f"date={day.isoformat()}.json").is_file()
        assert pl.read_parquet(Lake(multi_lake).quarantine_file(day)).equals(
            pl.read_parquet(Lake(single_lake).quarantine_file(day)).with_columns(
                pl.col("path").str.replace(str(single_lake), str(multi_lake), literal=True)
            )
        )

    # The known slice, by hand: at 10:00 checkout/pay had 200/120 ms, 200/450 ms and 503/80 ms.
    slice_rows = counts.filter(
        (pl.col("bucket_start") == SLICE_MINUTE)
        & (pl.col("service") == "checkout")
        & (pl.col("operation") == "pay")
    ).sort("status_code")
    assert slice_rows.select("status_code", "success", "requests", "latency_count").rows() == [
        (200, True, 2, 2),
        (503, False, 1, 1),
    ]
    with open_warehouse(multi_wh) as con:
        thresholds = con.execute(
            "SELECT status_code, threshold_ms, le_count, lt_count FROM sli_threshold_minute "
            "WHERE bucket_start = $m AND service = 'checkout' AND operation = 'pay' ORDER BY ALL",
            {"m": SLICE_MINUTE},
        ).fetchall()
        buckets = con.execute(
            "SELECT success, bucket, count FROM latency_histogram_minute "
            "WHERE bucket_start = $m AND service = 'checkout' AND operation = 'pay' ORDER BY ALL",
            {"m": SLICE_MINUTE},
        ).fetchall()
        day_total = con.execute(
            "SELECT sum(requests) FROM sli_counts_day WHERE bucket_start = $d AND service = 'checkout'",
            {"d": datetime(2026, 9, 1)},
        ).fetchone()[0]
    # checkout declares one threshold, 300 ms: 120 ms is under it, 450 ms is not; the 503 took 80 ms.
    assert thresholds == [(200, 300.0, 1, 1), (503, 300.0, 1, 1)]
    # Bucket = ceil(ln(ms) / ln(1.02)): ln 120 / ln 1.02 = 241.8 -> 242, ln 450 / ln 1.02 = 308.5 -> 309,
    # ln 80 / ln 1.02 = 221.3 -> 222 (pipelines/slo/histogram.py).
    assert buckets == [(False, 222, 1), (True, 242, 1), (True, 309, 1)]
    assert [histogram.bucket_of(ms) for _, ms in SLICE] == [242, 309, 222]
    # 600 generated + 3 slice rows; the negative latency, the next-day row and the search row are quarantined.
    assert day_total == 603
    quarantine = pl.read_parquet(Lake(multi_lake).quarantine_file(DAYS[0]))
    reasons = sorted(quarantine["reason"].to_list())
    assert len(reasons) == 3
    assert "latency_ms '-5.0' is not a finite number >= 0" in reasons[0]
    assert reasons[1].startswith("service 'search' differs from the folder service=checkout")
    assert reasons[2].startswith("timestamp 2026-09-02T00:05:") and "partition date=2026-09-01" in reasons[2]

    # The run records live in PostgreSQL.
    import psycopg2

    with (
        psycopg2.connect(
            host=postgres["host"], port=postgres["port"], user=postgres["user"], dbname=postgres["db"]
        ) as pg,
        pg.cursor() as cur,
    ):
        cur.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")
        assert cur.fetchone()[0] >= len(DAYS) * 2 + 2
        cur.execute("SELECT count(*) FROM runs WHERE run_id = ANY(%s)", (build_runs,))
        assert cur.fetchone()[0] == len(DAYS)
        cur.execute(
            "SELECT count(DISTINCT run_id) FROM event_logs "
            "WHERE dagster_event_type = 'STEP_SUCCESS' AND run_id = ANY(%s)",
            (build_runs,),
        )
        assert cur.fetchone()[0] == len(DAYS)


def test_late_data_rebuilds_and_reloads_only_its_day(tmp_path: Path) -> None:
    """A late file for one day: that day's partition is rebuilt, and the loader copies that day alone."""
    lake = Lake(tmp_path / "lake")
    make_lake(tmp_path / "lake")
    thresholds = {"checkout": {300.0}}
    for day in DAYS:
        build_day(lake, day, thresholds)
    with open_warehouse(tmp_path / "wh.duckdb") as con:
        first = load_days(con, lake)
        assert first.loaded == DAYS
        before = _table(con, "sli_counts_day")
    late_day = DAYS[2]
    _write_parquet(
        tmp_path / "lake" / "raw" / f"date={late_day.isoformat()}" / "service=checkout" / "late.parquet",
        [
            {
                "timestamp": datetime(2026, 9, 3, 23, 59, tzinfo=UTC),
                "service": "checkout",
                "operation": "browse",
                "status_code": 500,
                "latency_ms": 40.0,
            }
        ],
    )
    build_day(lake, late_day, thresholds)
    with open_warehouse(tmp_path / "wh.duckdb") as con:
        second = load_days(con, lake)
        after = _table(con, "sli_counts_day")
        assert load_days(con, lake).loaded == []  # idempotent: nothing new, nothing loaded
    assert second.loaded == [late_day] and second.unchanged == [d for d in DAYS if d != late_day]
    # Only the late day changed, by the one failed request.
    key = pl.col("bucket_start") == datetime(2026, 9, 3)
    assert before.filter(~key).equals(after.filter(~key))
    failed = (pl.col("service") == "checkout") & (pl.col("status_code") == 500)
    assert after.filter(key & failed)["requests"].sum() == before.filter(key & failed)["requests"].sum() + 1


def test_object_store_gives_what_a_folder_gives(tmp_path: Path) -> None:
    """The object-store code path (fetch to scratch, one PUT per file, object names in the quarantine),
    on pyarrow's in-memory filesystem, builds and loads exactly what the folder path does."""
    make_lake(tmp_path / "lake")
    store = pafs._MockFileSystem()  # pyarrow's own in-memory test filesystem: no S3 server here
    pafs.copy_files(
        str(tmp_path / "lake"),
        "bucket/lake",
        source_filesystem=pafs.LocalFileSystem(),
        destination_filesystem=store,
    )
    remote, local = Lake("s3://bucket/lake", filesystem=store), Lake(tmp_path / "lake")
    assert not remote.local
    thresholds = {"checkout": {300.0}, "search": {300.0, 1000.0}}
    day = DAYS[0]
    assert build_day(remote, day, thresholds).table_rows == build_day(local, day, thresholds).table_rows
    for table in LAKE_TABLES:
        assert remote.read_table(remote.table_file(table, day)).equals(
            local.read_table(local.table_file(table, day))
        )
    paths = remote.read_table(remote.quarantine_file(day)).column("path").to_pylist()
    assert paths == ["s3://bucket/lake/raw/date=2026-09-01/service=checkout/part-0.parquet"] * 3
    with open_warehouse(tmp_path / "remote.duckdb") as con:
        assert load_days(con, remote).loaded == [day]

"""The Parquet lake: raw data as Hive-partitioned files, 1-minute SLI tables computed one day at a time.

Layout under the lake root (a folder, or ``s3://bucket/prefix``)::

    raw/date=YYYY-MM-DD/[service=NAME/]*.parquet     landed raw data (events, counts or ratios files)
    sli/<table>/date=YYYY-MM-DD/part.parquet          that day's rows of each table in LAKE_TABLES
    quarantine/date=YYYY-MM-DD/part.parquet           every row of the day that was not loaded, with why
    sli/_manifest/date=YYYY-MM-DD.json                written last: the day is complete; a fresh token

:func:`build_day` processes one day on its own, in an in-memory DuckDB: it runs the day's files through
the same ingestion code as the warehouse (``pipelines.slo.ingest.ingest_file``: the same validation,
quarantine reasons and duplicate rules) and the same aggregation (``refresh_aggregates``: the SQL of
``sql/aggregate_*.sql`` and the histogram formula of ``pipelines/slo/histogram.py``). Rows whose time is
not in the partition's day, or whose service differs from a ``service=`` folder, are quarantined too.
Days share nothing, so any number of them can run at once, on any number of machines.

:func:`load_days` is the single writer: it copies the days whose manifest token changed into the
warehouse (delete, then insert, per day, in one transaction per day) and rebuilds their hourly and daily
rollups with ``sql/rollup_*.sql``. Late data for a day is that day rebuilt, then loaded again.

Object stores go through ``pyarrow.fs`` (S3 credentials from the environment only: ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for MinIO and other
S3-compatible stores, or an instance/pod role). Every file is written whole: to a temporary name and
renamed on a filesystem, a single PUT on an object store; a reader never sees half a file.

Not covered: cumulative counter files (their deltas chain across days; they are quarantined whole, with
that reason), and event-id duplicates across different days (each day is deduplicated on its own).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines import sqlfiles
from pipelines.slo.aggregate import refresh_aggregates, roll_up
from pipelines.slo.ingest import FORMATS, ingest_file
from pipelines.warehouse import transaction

# The tables a day's partition writes, and the warehouse loads for that day.
LAKE_TABLES = (
    "sli_counts_minute",
    "sli_threshold_minute",
    "latency_histogram_minute",
    "sli_ratio_minute",
    "sli_ratio_hour",
)
# A total order per table, so the files (and their comparison across executors) are deterministic.
_ORDER = {
    "sli_counts_minute": "bucket_start, service, operation, status_code NULLS FIRST, success",
    "sli_threshold_minute": (
        "bucket_start, service, operation, status_code NULLS FIRST, success, threshold_ms"
    ),
    "latency_histogram_minute": "bucket_start, service, operation, success, bucket",
    "sli_ratio_minute": "bucket_start, service, operation",
    "sli_ratio_hour": "bucket_start, service, operation",
}
QUARANTINE_SCHEMA = pa.schema(
    [("path", pa.string()), ("source_row", pa.int64()), ("reason", pa.string()), ("record", pa.string())]
)
_SERVICE_DIR = re.compile(r"(?:^|/)service=([^/]+)(?:/|$)")
_MANIFEST_NAME = re.compile(r"date=(\d{4}-\d{2}-\d{2})\.json$")

# Rows of the day's raw tables outside the partition (wrong day, wrong service folder): moved to the
# quarantine with a reason, so they are counted, never dropped. $day_start/$day_end bound the day.
_MISPLACED = """
CREATE OR REPLACE TEMP TABLE misplaced AS
SELECT r.file_id, f.path, r.source_row, CASE
         WHEN r.ts < $day_start OR r.ts >= $day_end
           THEN 'timestamp ' || strftime(r.ts, '%Y-%m-%dT%H:%M:%SZ') || ' is not in the partition date='
                || strftime($day_start, '%Y-%m-%d') || ' it was landed in'
         ELSE 'service ''' || r.service || ''' differs from the folder service=' || d.folder_service
       END AS reason,
       r.record
FROM (
    SELECT file_id, source_row, ts, service,
           CAST(to_json({ts: ts, service: service, operation: operation, status_code: status_code,
                         success: success, latency_ms: latency_ms, event_id: event_id}) AS VARCHAR) AS record
    FROM raw_events
    UNION ALL
    SELECT file_id, source_row, ts, service,
           CAST(to_json({ts: ts, service: service, operation: operation, total: total, good: good})
                AS VARCHAR)
    FROM raw_counts
    UNION ALL
    SELECT file_id, source_row, ts, service,
           CAST(to_json({ts: ts, service: service, operation: operation, ratio: ratio}) AS VARCHAR)
    FROM raw_ratios
) r
JOIN ingested_files f ON f.file_id = r.file_id
LEFT JOIN folder_services d ON d.file_id = r.file_id
WHERE r.ts < $day_start OR r.ts >= $day_end
   OR (d.folder_service IS NOT NULL AND r.service <> d.folder_service)
"""
_MISPLACED_DELETE = [
    f"DELETE FROM {table} USING misplaced m WHERE {table}.file_id = m.file_id "
    f"AND {table}.source_row = m.source_row"
    for table in ("raw_events", "raw_counts", "raw_ratios")
]
_MISPLACED_QUARANTINE = """
INSERT INTO quarantine (file_id, path, source_row, reason, record, quarantined_at)
SELECT file_id, path, source_row, reason, record, $now FROM misplaced
"""
# Cumulative counters chain deltas from the previous sample, which may lie in another day: not in the lake.
_COUNTER_FILE_QUARANTINE = """
INSERT INTO quarantine (file_id, path, source_row, reason, record, quarantined_at)
SELECT $file_id, $path, 0, $reason, NULL, $now
"""
_COUNTER_FILE_DELETE = "DELETE FROM raw_counts WHERE file_id = $file_id"
_QUARANTINE_ROWS = """
SELECT path, source_row, reason, record FROM quarantine
UNION ALL
SELECT path, 0, coalesce(error, 'the file could not be read'), NULL
FROM ingested_files WHERE status = 'failed'
ORDER BY path, source_row
"""
# Which manifest token the warehouse holds for each lake day (created by the loader, never by schema.sql:
# a warehouse that never loads a lake has no such table).
_LOADED_SCHEMA = """
CREATE TABLE IF NOT EXISTS lake_loaded_days (
    day       DATE PRIMARY KEY,
    token     VARCHAR NOT NULL,
    loaded_at TIMESTAMP NOT NULL
)
"""
_LOADED_TOKENS = "SELECT day, token FROM lake_loaded_days"
_LOADED_UPSERT = "INSERT OR REPLACE INTO lake_loaded_days VALUES ($day, $token, $now)"


class LakeError(ValueError):
    """The lake cannot be read or written; the message names the path."""


@dataclass(frozen=True)
class DayResult:
    """What one day's partition read and wrote."""

    day: date
    token: str
    files: int
    files_failed: int
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    table_rows: dict[str, int]
    started_at: datetime
    finished_at: datetime
    pid: int

    def manifest(self) -> dict:
        return {
            "day": self.day.isoformat(),
            "token": self.token,
            "files": self.files,
            "files_failed": self.files_failed,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "tables": self.table_rows,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "pid": self.pid,
        }


@dataclass
class LoadReport:
    loaded: list[date] = field(default_factory=list)  # days copied into the warehouse by this call
    unchanged: list[date] = field(default_factory=list)  # days whose manifest token was already loaded
    rows: dict[str, int] = field(default_factory=dict)  # rows inserted per table


def lake_root(environ: dict[str, str] | None = None, default: str | Path = "data/lake") -> str:
    """``SLOSCOPE_LAKE`` (a folder or ``s3://bucket/prefix``), else ``default``."""
    env = os.environ if environ is None else environ
    return env.get("SLOSCOPE_LAKE", "").strip() or str(default)


class Lake:
    """A lake root on a filesystem or object store, with the layout of the module docstring."""

    def __init__(self, root: str | Path, filesystem: pafs.FileSystem | None = None) -> None:
        """``filesystem``: serve ``scheme://path`` from this one (tests, custom stores)."""
        text = str(root)
        try:
            if filesystem is not None:
                self.fs, base = filesystem, text.split("://", 1)[-1]
            elif "://" in text:
                self.fs, base = pafs.FileSystem.from_uri(text)
            else:
                self.fs, base = pafs.LocalFileSystem(), str(Path(text).resolve())
        except (pa.ArrowInvalid, OSError) as exc:
            raise LakeError(f"lake root {text!r} cannot be opened: {exc}") from exc
        self.root = text
        self.base = base.rstrip("/")
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.base, *parts])

    def raw_day(self, day: date) -> str:
        return self.path("raw", f"date={day.isoformat()}")

    def table_file(self, table: str, day: date) -> str:
        return self.path("sli", table, f"date={day.isoformat()}", "part.parquet")

    def quarantine_file(self, day: date) -> str:
        return self.path("quarantine", f"date={day.isoformat()}", "part.parquet")

    def manifest_file(self, day: date) -> str:
        return self.path("sli", "_manifest", f"date={day.isoformat()}.json")

    def raw_files(self, day: date) -> list[str]:
        """The day's data files (any format ingestion reads), sorted."""
        selector = pafs.FileSelector(self.raw_day(day), recursive=True, allow_not_found=True)
        infos = self.fs.get_file_info(selector)
        return sorted(
            i.path
            for i in infos
            if i.type == pafs.FileType.File
            and PurePosixPath(i.path).suffix.lower() in FORMATS
            and not PurePosixPath(i.path).name.startswith((".", "_"))
        )

    def raw_days(self) -> list[date]:
        """Days with a ``raw/date=`` folder."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.path("raw"), allow_not_found=True))
        days = []
        for info in infos:
            match = re.fullmatch(r"date=(\d{4}-\d{2}-\d{2})", info.base_name)
            if info.type == pafs.FileType.Directory and match:
                days.append(date.fromisoformat(match.group(1)))
        return sorted(days)

    def manifests(self) -> dict[date, dict]:
        """Every complete day's manifest."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.path("sli", "_manifest"), allow_not_found=True))
        found = {}
        for info in infos:
            match = _MANIFEST_NAME.search(info.base_name)
            if info.type == pafs.FileType.File and match:
                with self.fs.open_input_stream(info.path) as stream:
                    found[date.fromisoformat(match.group(1))] = json.loads(stream.read())
        return found

    def write_bytes(self, path: str, data: bytes) -> None:
        """Whole or not at all: a temporary name renamed over the target (one PUT on an object store)."""
        parent = str(PurePosixPath(path).parent)
        self.fs.create_dir(parent, recursive=True)
        if not self.local:
            with self.fs.open_output_stream(path) as out:
                out.write(data)
            return
        tmp = f"{parent}/.{PurePosixPath(path).name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def write_table(self, path: str, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.write_bytes(path, sink.getvalue().to_pybytes())

    def read_table(self, path: str) -> pa.Table:
        try:
            with self.fs.open_input_file(path) as source:
                return pq.read_table(source)
        except (OSError, pa.ArrowInvalid) as exc:
            raise LakeError(f"{self.display(path)}: cannot be read as Parquet: {exc}") from exc

    def delete(self, path: str) -> None:
        if self.fs.get_file_info(path).type == pafs.FileType.File:
            self.fs.delete_file(path)

    def display(self, path: str) -> str:
        """A lake path as a person would write it (the scheme kept for object stores)."""
        if self.local:
            return path
        return self.root.rstrip("/") + path[len(self.base) :]


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day)
    return start, start + timedelta(days=1)


def _folder_service(relative: str) -> str | None:
    match = _SERVICE_DIR.search(relative)
    return match.group(1) if match else None


def build_day(
    lake: Lake,
    day: date,
    thresholds: dict[str, set[float]],
    *,
    now: datetime | None = None,
    max_clock_skew_seconds: int = 300,
) -> DayResult:
    """Compute and write one day's SLI tables and quarantine; see the module docstring."""
    started = datetime.now(UTC)
    now_utc = (now or started).astimezone(UTC)
    day_start, day_end = _day_bounds(day)
    # The manifest goes first and comes back last: a crash in between leaves the day incomplete, and the
    # loader skips incomplete days instead of mixing two builds' tables.
    lake.delete(lake.manifest_file(day))
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        sqlfiles.run(con, "schema")
        with tempfile.TemporaryDirectory(prefix="sloscope-lake-") as scratch:
            files, failed = _ingest_day(lake, day, con, Path(scratch), now_utc, max_clock_skew_seconds)
        params = {"day_start": day_start, "day_end": day_end, "now": now_utc.replace(tzinfo=None)}
        with transaction(con):
            con.execute(_MISPLACED, sqlfiles.params_for(_MISPLACED, params))
            for statement in _MISPLACED_DELETE:
                con.execute(statement)
            con.execute(_MISPLACED_QUARANTINE, sqlfiles.params_for(_MISPLACED_QUARANTINE, params))
        refresh_aggregates(con, thresholds)
        table_rows = {}
        for table in LAKE_TABLES:
            data = con.sql(
                f"SELECT * FROM {table} WHERE bucket_start >= $s AND bucket_start < $e "
                f"ORDER BY {_ORDER[table]}",
                params={"s": day_start, "e": day_end},
            ).to_arrow_table()
            lake.write_table(lake.table_file(table, day), data)
            table_rows[table] = data.num_rows
        quarantined = con.sql(_QUARANTINE_ROWS).to_arrow_table()
        lake.write_table(lake.quarantine_file(day), quarantined.cast(QUARANTINE_SCHEMA))
        rows_read, rows_loaded = con.execute(
            "SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0) FROM ingested_files"
        ).fetchone()  # type: ignore[misc]
        rows_loaded -= con.execute("SELECT count(*) FROM misplaced").fetchone()[0]  # type: ignore[index]
    finally:
        con.close()
    result = DayResult(
        day=day,
        token=uuid.uuid4().hex,
        files=files,
        files_failed=failed,
        rows_read=int(rows_read),
        rows_loaded=int(rows_loaded),
        rows_quarantined=int(rows_read) - int(rows_loaded),
        table_rows=table_rows,
        started_at=started,
        finished_at=datetime.now(UTC),
        pid=os.getpid(),
    )
    lake.write_bytes(lake.manifest_file(day), json.dumps(result.manifest(), indent=2).encode())
    return result


def _ingest_day(
    lake: Lake,
    day: date,
    con: duckdb.DuckDBPyConnection,
    scratch: Path,
    now: datetime,
    max_clock_skew_seconds: int,
) -> tuple[int, int]:
    """Every raw file of the day through ``ingest_file``; (files, files that failed whole)."""
    day_dir = lake.raw_day(day)
    folders: list[tuple[int, str]] = []
    failed = 0
    paths = lake.raw_files(day)
    for path in paths:
        relative = path[len(day_dir) :].lstrip("/")
        if lake.local:
            local = Path(path)
        else:  # ingestion reads local bytes: fetch the object under the same relative name
            local = scratch / relative
            local.parent.mkdir(parents=True, exist_ok=True)
            with lake.fs.open_input_stream(path) as stream:
                local.write_bytes(stream.read())
        result = ingest_file(con, local, now=now, max_clock_skew_seconds=max_clock_skew_seconds)
        if result.status == "failed":
            failed += 1
        if result.file_id is None:
            continue
        if not lake.local:  # name the object, not the scratch copy, in the quarantine
            names = {"p": lake.display(path), "f": result.file_id, "local": str(local.resolve())}
            con.execute("UPDATE quarantine SET path = $p WHERE file_id = $f AND path = $local", names)
            con.execute("UPDATE ingested_files SET path = $p WHERE file_id = $f AND path = $local", names)
        if result.status != "loaded":  # failed (in the quarantine), or the same bytes as a loaded file
            continue
        if result.schema_kind == "counters":
            reason = (
                f"cumulative counter file with {result.rows_read} rows: the lake builds each day on its own, "
                "and counter deltas need the previous day's last sample; land counts (total, good) instead"
            )
            with transaction(con):
                con.execute(_COUNTER_FILE_DELETE, {"file_id": result.file_id})
                con.execute("DELETE FROM quarantine WHERE file_id = $file_id", {"file_id": result.file_id})
                con.execute(
                    _COUNTER_FILE_QUARANTINE,
                    {
                        "file_id": result.file_id,
                        "path": lake.display(path),
                        "reason": reason,
                        "now": now.replace(tzinfo=None),
                    },
                )
                con.execute(
                    "UPDATE ingested_files SET rows_loaded = 0, rows_quarantined = rows_read "
                    "WHERE file_id = $file_id",
                    {"file_id": result.file_id},
                )
        service = _folder_service(relative)
        if service is not None:
            folders.append((result.file_id, service))
    con.execute("CREATE OR REPLACE TEMP TABLE folder_services (file_id INTEGER, folder_service VARCHAR)")
    if folders:
        con.executemany("INSERT INTO folder_services VALUES (?, ?)", folders)
    return len(paths), failed


def load_days(con: duckdb.DuckDBPyConnection, lake: Lake, days: list[date] | None = None) -> LoadReport:
    """Copy complete lake days whose build the warehouse does not hold yet; one transaction per day.

    ``days``: only these (default: every day with a manifest). Each loaded day's minute tables are
    replaced whole (delete, then insert) and its hours and day rolled up again with ``sql/rollup_*``.
    """
    con.execute(_LOADED_SCHEMA)
    loaded = {d: t for d, t in con.execute(_LOADED_TOKENS).fetchall()}
    manifests = lake.manifests()
    report = LoadReport(rows={table: 0 for table in LAKE_TABLES})
    for day in sorted(manifests if days is None else [d for d in days if d in manifests]):
        token = manifests[day]["token"]
        if loaded.get(day) == token:
            report.unchanged.append(day)
            continue
        tables = {table: lake.read_table(lake.table_file(table, day)) for table in LAKE_TABLES}
        start, end = _day_bounds(day)
        with transaction(con):
            for table, data in tables.items():
                columns = [
                    c
                    for (c,) in con.execute(
                        "SELECT column_name FROM duckdb_columns() "
                        "WHERE table_name = $t ORDER BY column_index",
                        {"t": table},
                    ).fetchall()
                ]
                missing = sorted(set(columns) - set(data.column_names))
                if missing:
                    raise LakeError(
                        f"{lake.display(lake.table_file(table, day))}: no column {missing[0]!r}; "
                        f"expected the columns of warehouse table {table}: {', '.join(columns)}"
                    )
                con.execute(
                    f"DELETE FROM {table} WHERE bucket_start >= $s AND bucket_start < $e",
                    {"s": start, "e": end},
                )
                con.register("lake_day", data.select(columns))
                try:
                    names = ", ".join(columns)
                    con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM lake_day")
                finally:
                    con.unregister("lake_day")
                report.rows[table] += data.num_rows
            # The day's hours from its minutes, then the day from its hours.
            roll_up(con, "hour", start, end, counts=True, thresholds=True)
            roll_up(con, "day", start, end, counts=True, thresholds=True)
            con.execute(
                _LOADED_UPSERT, {"day": day, "token": token, "now": datetime.now(UTC).replace(tzinfo=None)}
            )
        report.loaded.append(day)
    return report

"""Ingestion of landed files (CSV, Parquet, NDJSON) into the warehouse.

Every record read from a file ends in ``raw_events``/``raw_counts`` or in ``quarantine`` with its row
number and a reason, and a file's rows are written in one transaction together with its bookkeeping
row, so ``rows_loaded + rows_quarantined == rows_read`` holds per file even if the process dies.
Files are identified by content (SHA-256): the same bytes are never loaded twice, and a file at an
already-loaded path with new content replaces that path's previous rows.

Row numbers (``source_row``) are line numbers for CSV (the header is line 1) and NDJSON, and 1-based
row positions for Parquet.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines import sqlfiles
from pipelines.warehouse import transaction

EVENT_COLUMNS = ("timestamp", "service", "operation", "status_code", "success", "latency_ms")
COUNT_COLUMNS = ("timestamp", "service", "operation", "total", "good", "bad")
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".ndjson": "ndjson", ".jsonl": "ndjson"}
_MAX_RECORD_CHARS = 4000
_SURROGATE = re.compile("[\udc80-\udcff]")


class IngestError(ValueError):
    """A path cannot be ingested at all (not found, unsupported format); the message names it."""


class UnreadableFile(ValueError):
    """The file's container cannot be read (truncated Parquet, not a Parquet file)."""


@dataclass(frozen=True)
class FileResult:
    path: str
    status: str  # loaded | skipped | failed
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    schema_kind: str | None = None
    file_id: int | None = None
    message: str = ""


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)


@dataclass
class _Staging:
    """One file's records as text: ``_row``, ``_pre_reason``, ``_raw`` and the data columns."""

    frame: pl.DataFrame
    columns: list[str]
    file_problem: str | None = None


def discover(paths: list[Path]) -> list[Path]:
    """Data files under the given paths, sorted; a directory is searched recursively."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
        elif path.is_file():
            if path.suffix.lower() not in FORMATS:
                raise IngestError(
                    f"{path}: unsupported file type; expected one of {', '.join(sorted(FORMATS))}"
                )
            found.append(path)
        else:
            raise IngestError(f"{path}: no such file or directory")
    return sorted({p.resolve() for p in found})


def _clean_text(value: str) -> str:
    """Undecodable bytes (kept as surrogates) rendered as \\xNN, so the text can be stored."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _frame(
    columns: list[str],
    rows: list[list[str | None]],
    pre: list[str | None],
    raw: list[str | None],
    numbers: list[int],
) -> pl.DataFrame:
    data: dict[str, Any] = {
        "_row": pl.Series(numbers, dtype=pl.Int64),
        "_pre_reason": pl.Series(pre, dtype=pl.String),
        "_raw": pl.Series(raw, dtype=pl.String),
    }
    for index, name in enumerate(columns):
        data[name] = pl.Series([r[index] if index < len(r) else None for r in rows], dtype=pl.String)
    return pl.DataFrame(data)


def _normalise_header(names: list[str]) -> tuple[list[str], str | None]:
    normalised = [_clean_text(n).strip().lower().lstrip("\ufeff") for n in names]
    seen: set[str] = set()
    for name in normalised:
        if name in seen:
            return normalised, f"duplicate column '{name}' in the header"
        seen.add(name)
    return normalised, None


def _read_csv(raw: bytes) -> _Staging:
    text = raw.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str | None]] = []
    pre: list[str | None] = []
    raws: list[str | None] = []
    numbers: list[int] = []
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if header is None:
                raise UnreadableFile(f"the CSV header cannot be parsed: {exc}") from exc
            rows.append([])
            pre.append(f"malformed CSV: {exc}")
            raws.append(None)
            numbers.append(reader.line_num)
            continue
        if header is None:
            if not record or all(not cell.strip() for cell in record):
                continue
            header = record
            continue
        if not record:
            continue  # blank line: not a record
        line = reader.line_num
        problem: str | None = None
        if len(record) != len(header):
            problem = f"expected {len(header)} fields, found {len(record)}"
        elif any(_SURROGATE.search(cell) for cell in record):
            problem = "not valid UTF-8"
        if problem:
            rows.append([])
            raws.append(_clean_text(json.dumps(record, ensure_ascii=False))[:_MAX_RECORD_CHARS])
        else:
            rows.append(list(record))
            raws.append(None)
        pre.append(problem)
        numbers.append(line)
    if header is None:
        return _Staging(_frame([], [], [], [], []), [], None)
    columns, header_problem = _normalise_header(header)
    if header_problem:
        columns = [f"_col{i}" for i in range(len(columns))]
    return _Staging(_frame(columns, rows, pre, raws, numbers), columns, header_problem)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def _read_ndjson(raw: bytes) -> _Staging:
    text = raw.decode("utf-8-sig", errors="surrogateescape")
    objects: list[dict[str, Any] | None] = []
    pre: list[str | None] = []
    raws: list[str | None] = []
    numbers: list[int] = []
    columns: list[str] = []
    known: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        numbers.append(number)
        problem: str | None = None
        obj: Any = None
        if _SURROGATE.search(line):
            problem = "not valid UTF-8"
        else:
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                problem = (
                    f"not valid JSON: {exc.msg if isinstance(exc, json.JSONDecodeError) else 'too deep'}"
                )
            else:
                if not isinstance(obj, dict):
                    problem = f"expected a JSON object, found {type(obj).__name__}"
        if problem:
            objects.append(None)
            raws.append(_clean_text(line)[:_MAX_RECORD_CHARS])
        else:
            lowered = {str(k).strip().lower(): v for k, v in obj.items()}
            if len(lowered) != len(obj):
                problem = "duplicate keys differing only in case"
                objects.append(None)
                raws.append(_clean_text(line)[:_MAX_RECORD_CHARS])
            else:
                objects.append(lowered)
                raws.append(None)
                for key in lowered:
                    if key not in known:
                        known.add(key)
                        columns.append(key)
        pre.append(problem)
    rows = [[_json_text(o.get(c)) for c in columns] if o is not None else [] for o in objects]
    return _Staging(_frame(columns, rows, pre, raws, numbers), columns)


def _parquet_text(series: pl.Series) -> pl.Series:
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return series.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")  # no zone: quarantined by validation
        return series.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
    if dtype == pl.Boolean:
        return series.map_elements(lambda v: "true" if v else "false", return_dtype=pl.String)
    if dtype == pl.String:
        return series
    if dtype.is_numeric() or isinstance(dtype, pl.Date | pl.Decimal):
        return series.cast(pl.String)
    return pl.Series(series.name, [f"<unsupported Parquet type {dtype}>"] * len(series), dtype=pl.String).set(
        series.is_null(), None
    )


def _read_parquet(raw: bytes) -> _Staging:
    try:
        table = pl.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # polars raises several error types for damaged files
        raise UnreadableFile(f"not a readable Parquet file: {str(exc).splitlines()[0][:200]}") from exc
    columns, header_problem = _normalise_header(table.columns)
    if header_problem:
        columns = [f"_col{i}" for i in range(len(columns))]
    data = {name: _parquet_text(table.to_series(i)).alias(name) for i, name in enumerate(columns)}
    frame = pl.DataFrame(
        {
            "_row": pl.int_range(1, table.height + 1, eager=True, dtype=pl.Int64),
            "_pre_reason": pl.Series([None] * table.height, dtype=pl.String),
            "_raw": pl.Series([None] * table.height, dtype=pl.String),
            **data,
        }
    )
    return _Staging(frame, columns, header_problem)


_READERS = {"csv": _read_csv, "ndjson": _read_ndjson, "parquet": _read_parquet}


def _schema_of(columns: list[str]) -> tuple[str | None, str | None]:
    """(schema kind, problem that quarantines every row) from a file's columns."""
    present = set(columns)
    if "total" in present:
        kind, required = "counts", ["timestamp", "service", "total"]
        if not present & {"good", "bad"}:
            return kind, "the counts file has neither a 'good' nor a 'bad' column"
    elif present & {"status_code", "success"}:
        kind, required = "events", ["timestamp", "service"]
    else:
        return None, (
            "the file has neither event columns (status_code or success) "
            "nor count columns (total with good or bad)"
        )
    missing = [c for c in required if c not in present]
    if missing:
        return kind, f"the file has no '{missing[0]}' column"
    return kind, None


def _prepare(staging: _Staging, kind: str | None, file_problem: str | None) -> pl.DataFrame:
    frame = staging.frame
    expected = COUNT_COLUMNS if kind == "counts" else EVENT_COLUMNS
    missing = [pl.lit(None, dtype=pl.String).alias(c) for c in expected if c not in frame.columns]
    if missing:
        frame = frame.with_columns(missing)
    if file_problem:
        frame = frame.with_columns(
            pl.coalesce(pl.col("_pre_reason"), pl.lit(file_problem)).alias("_pre_reason")
        )
    return frame


def _rejected_records(frame: pl.DataFrame, data_columns: list[str]) -> pl.DataFrame:
    """The original record of each row, as JSON text, for the quarantine."""
    if data_columns:
        encoded = pl.struct([pl.col(c) for c in data_columns]).struct.json_encode()
    else:
        encoded = pl.lit("{}")
    return frame.select(
        pl.col("_row"),
        pl.coalesce(pl.col("_raw"), encoded).str.slice(0, _MAX_RECORD_CHARS).alias("_record"),
    )


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    now: datetime | None = None,
    max_clock_skew_seconds: int = 300,
) -> FileResult:
    """Load one file; see the module docstring for the guarantees."""
    now_utc = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    path = path.resolve()
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(f"{path}: unsupported file type; expected one of {', '.join(sorted(FORMATS))}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read: {exc.strerror}") from exc
    digest = hashlib.sha256(raw).hexdigest()
    path_text = str(path)

    seen = con.execute(
        sqlfiles.sql("files_by_hash"),
        {"sha": digest},
    ).fetchall()
    for file_id, seen_path, status in seen:
        if status == "loaded":
            same = (
                "already loaded" if seen_path == path_text else f"same content as {seen_path}, already loaded"
            )
            return FileResult(path_text, "skipped", file_id=file_id, message=same)
        if status == "failed" and seen_path == path_text:
            return FileResult(
                path_text, "skipped", file_id=file_id, message="already failed with this content"
            )

    base = {"path": path_text, "sha256": digest, "format": fmt, "now": now_utc}
    try:
        staging = _READERS[fmt](raw)
    except UnreadableFile as exc:
        with transaction(con):
            file_id = con.execute(sqlfiles.sql("next_file_id")).fetchall()[0][0]
            sqlfiles.run(
                con,
                "ingest_record_file",
                {
                    **base,
                    "file_id": file_id,
                    "schema_kind": None,
                    "status": "failed",
                    "rows_read": 0,
                    "rows_loaded": 0,
                    "rows_quarantined": 0,
                    "min_ts": None,
                    "max_ts": None,
                    "error": str(exc),
                },
            )
        return FileResult(path_text, "failed", file_id=file_id, message=f"{path}: {exc}")

    kind, schema_problem = _schema_of(staging.columns)
    file_problem = staging.file_problem or schema_problem
    frame = _prepare(staging, kind, file_problem)
    rows_read = frame.height
    data_columns = [c for c in staging.columns if not c.startswith("_")]
    staging_view = frame.drop("_raw")
    rejected = _rejected_records(frame, data_columns)
    latest_allowed = now_utc + timedelta(seconds=max_clock_skew_seconds)

    with transaction(con):
        file_id = con.execute(sqlfiles.sql("next_file_id")).fetchall()[0][0]
        sqlfiles.run(con, "ingest_supersede", {"path": path_text})
        con.register("staging", staging_view)
        con.register("rejected_records", rejected)
        try:
            validate = "ingest_validate_counts" if kind == "counts" else "ingest_validate_events"
            sqlfiles.run(con, validate, {"latest_allowed": latest_allowed})
            loaded, quarantined, min_ts, max_ts = con.execute(
                sqlfiles.sql("ingest_validated_summary")
            ).fetchone()
            if loaded + quarantined != rows_read:
                raise RuntimeError(f"{path}: accounting mismatch: {loaded} + {quarantined} != {rows_read}")
            params = {**base, "file_id": file_id}
            sqlfiles.run(con, "ingest_load_counts" if kind == "counts" else "ingest_load_events", params)
            sqlfiles.run(con, "ingest_quarantine", params)
            sqlfiles.run(
                con,
                "ingest_record_file",
                {
                    **params,
                    "schema_kind": kind,
                    "status": "loaded",
                    "rows_read": rows_read,
                    "rows_loaded": loaded,
                    "rows_quarantined": quarantined,
                    "min_ts": min_ts,
                    "max_ts": max_ts,
                    "error": file_problem,
                },
            )
            sqlfiles.run(con, "ingest_mark_dirty", {"file_id": file_id, "min_ts": min_ts, "max_ts": max_ts})
        finally:
            con.unregister("staging")
            con.unregister("rejected_records")
            con.execute("DROP TABLE IF EXISTS validated")
    message = file_problem or ("empty file" if rows_read == 0 else "")
    return FileResult(path_text, "loaded", rows_read, loaded, quarantined, kind, file_id, message)


def ingest_paths(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    *,
    now: datetime | None = None,
    max_clock_skew_seconds: int = 300,
) -> IngestReport:
    """Ingest every data file under ``paths``; one file's failure does not stop the others."""
    report = IngestReport()
    for path in discover(paths):
        report.files.append(ingest_file(con, path, now=now, max_clock_skew_seconds=max_clock_skew_seconds))
    return report

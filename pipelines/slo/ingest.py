"""Ingestion of landed files (CSV, Parquet, NDJSON) into the warehouse.

Every record read from a file ends in ``raw_events``/``raw_counts`` or in ``quarantine`` with its row
number and a reason, and a file's rows are written in one transaction together with its bookkeeping
row, so ``rows_loaded + rows_quarantined == rows_read`` holds per file even if the process dies.
Files are identified by content (SHA-256): the same bytes are never loaded twice, and a file at an
already-loaded path with new content replaces that path's previous rows.

Row numbers (``source_row``) are line numbers for CSV (the header is line 1) and NDJSON, and 1-based
row positions for Parquet.

Every file is read as text and validated by SQL string parsing, except events Parquet files with native
column types: DuckDB validates those straight from the file, with the same outcome row for row (see "The
typed Parquet fast path" below; tests/test_fast_parquet.py compares the two).

Event files may carry an ``event_id`` column (a blank value is no id). Identity is (service, event_id):
the first valid row of an id in a file loads; a later row of the same id in the file, or an id already
loaded from another file, goes to the quarantine as a duplicate, naming where the first one is. A changed
file at a loaded path drops its earlier version first, so its own events never count against it. A row's
own validation problems come first: an invalid row is quarantined for them, and is no "first" of its id.
Count and ratio files have no event ids: an ``event_id`` column there is an ignored extra (a counter file
refuses every extra column, this one included).

Once retention has cut raw rows (``retention_watermarks``, tier ``raw``), a row of any kind whose minute
starts before the cutoff is quarantined: aggregation recomputes a minute from raw rows only, and that
minute's other raw rows are gone.
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
from pipelines.faults import fault_point
from pipelines.slo.counters import Sample, differences
from pipelines.sources import StagedRecords, load_registry
from pipelines.warehouse import query_frame, transaction

EVENT_COLUMNS = ("timestamp", "service", "operation", "status_code", "success", "latency_ms", "event_id")
COUNT_COLUMNS = ("timestamp", "service", "operation", "total", "good", "bad")
RATIO_COLUMNS = ("timestamp", "service", "operation", "ratio")
COUNTER_COLUMNS = (
    "timestamp",
    "service",
    "operation",
    "total_cumulative",
    "good_cumulative",
    "bad_cumulative",
)
_VALIDATORS = {
    "counts": "ingest_validate_counts",
    "counters": "ingest_validate_counts",
    "ratios": "ingest_validate_ratios",
}
_LOADERS = {"counts": "ingest_load_counts", "counters": "ingest_load_counts", "ratios": "ingest_load_ratios"}
BUILT_IN_FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}
# File source plugins (pipelines.sources) add their suffixes; their format name is the plugin's name.
_PLUGINS = load_registry().file_sources
FORMATS = {**BUILT_IN_FORMATS, **{suffix: f"plugin:{source.name}" for suffix, source in _PLUGINS.items()}}
_MAX_RECORD_CHARS = 4000
# Latencies above this are implausible (a unit mix-up, a timeout sentinel): quarantined, not counted.
# The same default as [quality] max_latency_ms, which the callers pass.
DEFAULT_MAX_LATENCY_MS = 600_000.0
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


_RESERVED = frozenset({"_row", "_pre_reason", "_raw", "_record"})
_KNOWN_COLUMNS = frozenset((*EVENT_COLUMNS, *COUNT_COLUMNS, *RATIO_COLUMNS, *COUNTER_COLUMNS))


def _normalise_header(names: list[str]) -> tuple[list[str], str | None]:
    """Lower-cased, stripped names, and a problem that quarantines every row (duplicate, reserved)."""
    normalised = [_clean_text(n).strip().lower().lstrip("\ufeff") for n in names]
    seen: set[str] = set()
    for name in normalised:
        if name in _RESERVED:
            problem = f"column '{name}' uses a name reserved by sloscope"
            break
        if name in seen:
            problem = f"duplicate column '{name}' in the header"
            break
        seen.add(name)
    else:
        return normalised, None
    # Positional names for every column: no data column can then collide with another or an internal one.
    return [f"_col{i}" for i in range(len(normalised))], problem


def _read_csv(raw: bytes) -> _Staging:
    text = raw.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str | None]] = []
    pre: list[str | None] = []
    raws: list[str | None] = []
    numbers: list[int] = []
    last_line = 0
    while True:
        first_line = last_line + 1  # a quoted field may span lines: report where the record starts
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            last_line = reader.line_num
            if header is None:
                raise UnreadableFile(f"the CSV header cannot be parsed: {exc}") from exc
            rows.append([])
            pre.append(f"malformed CSV: {exc}")
            raws.append(None)
            numbers.append(first_line)
            continue
        last_line = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # a blank or whitespace-only line is not a record
        if header is None:
            header = record
            continue
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
        numbers.append(first_line)
    if header is None:
        return _Staging(_frame([], [], [], [], []), [], None)
    columns, header_problem = _normalise_header(header)
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


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads hook: a key given twice (or twice up to case) makes the record ambiguous."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        folded = str(key).strip().lower()
        if folded in seen:
            raise _DuplicateKey(folded)
        seen[folded] = value
    return seen


def _ndjson_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return f"expected a JSON object, found {type(obj).__name__}"
    reserved = sorted(_RESERVED & obj.keys())
    if reserved:
        return f"field '{reserved[0]}' uses a name reserved by sloscope"
    nested = sorted(k for k in _KNOWN_COLUMNS & obj.keys() if isinstance(obj[k], dict | list))
    if nested:
        return f"field '{nested[0]}' is a JSON {type(obj[nested[0]]).__name__}, expected a single value"
    return None


def _read_ndjson(raw: bytes) -> _Staging:
    text = raw.decode("utf-8-sig", errors="surrogateescape")
    objects: list[dict[str, Any] | None] = []
    pre: list[str | None] = []
    raws: list[str | None] = []
    numbers: list[int] = []
    columns: list[str] = []
    known: set[str] = set()
    # Records end at "\n" only: str.splitlines() would also split on U+2028, U+0085 inside strings.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        numbers.append(number)
        problem: str | None = None
        obj: Any = None
        if _SURROGATE.search(line):
            problem = "not valid UTF-8"
        else:
            try:
                obj = json.loads(line, object_pairs_hook=_unique_keys)
            except _DuplicateKey as exc:
                problem = f"key '{exc}' is given more than once"
            except json.JSONDecodeError as exc:
                problem = f"not valid JSON: {exc.msg}"
            except RecursionError:
                problem = "not valid JSON: nested too deeply"
            else:
                problem = _ndjson_problem(obj)
        if problem:
            objects.append(None)
            raws.append(_clean_text(line)[:_MAX_RECORD_CHARS])
        else:
            objects.append(obj)
            raws.append(None)
            for key in obj:
                if key not in known:
                    known.add(key)
                    columns.append(key)
        pre.append(problem)
    rows = [[_json_text(o.get(c)) for c in columns] if o is not None else [] for o in objects]
    return _Staging(_frame(columns, rows, pre, raws, numbers), columns)


def _parquet_text(series: pl.Series) -> pl.Series | None:
    """The column as text for validation; None for a type that has no faithful text form."""
    dtype = series.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return series.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")  # no zone: quarantined by validation
        return series.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
    if dtype == pl.Boolean:
        return series.replace_strict({True: "true", False: "false"}, return_dtype=pl.String)
    if dtype == pl.String:
        return series
    if isinstance(dtype, pl.Categorical | pl.Enum):  # dictionary-encoded strings (pandas "category")
        return series.cast(pl.String)
    if dtype.is_numeric() or isinstance(dtype, pl.Date | pl.Decimal):
        return series.cast(pl.String)
    return None


def _read_parquet(raw: bytes) -> _Staging:
    try:
        table = pl.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # polars raises several error types for damaged files
        raise UnreadableFile(f"not a readable Parquet file: {str(exc).splitlines()[0][:200]}") from exc
    return _parquet_staging(table, pl.int_range(1, table.height + 1, eager=True, dtype=pl.Int64))


def _parquet_staging(table: pl.DataFrame, rows: pl.Series) -> _Staging:
    """Parquet rows as text for validation; ``rows`` are their 1-based positions in the file."""
    names, problem = _normalise_header(table.columns)
    data: dict[str, pl.Series] = {}
    for index, name in enumerate(names):
        source = table.to_series(index)
        text = _parquet_text(source)
        if text is None:
            if name in _KNOWN_COLUMNS and problem is None:
                problem = (
                    f"column '{name}' has Parquet type {source.dtype}, which has no text form to validate"
                )
            text = pl.Series([None] * table.height, dtype=pl.String)  # an ignored extra column
        data[name] = text.alias(name)
    frame = pl.DataFrame(
        {
            "_row": rows.cast(pl.Int64).alias("_row"),
            "_pre_reason": pl.Series([None] * table.height, dtype=pl.String),
            "_raw": pl.Series([None] * table.height, dtype=pl.String),
            **data,
        }
    )
    return _Staging(frame, names, problem)


_READERS = {"csv": _read_csv, "ndjson": _read_ndjson, "parquet": _read_parquet}


def _staging_of(records: StagedRecords) -> _Staging:
    """A plugin's records in the shape the readers produce (text columns, reserved bookkeeping)."""
    columns = list(records.columns)
    rows = [list(values) for values in zip(*records.columns.values(), strict=True)] if columns else []
    if not rows:
        rows = [[] for _ in records.row_numbers]
    return _Staging(
        _frame(columns, rows, list(records.problems), list(records.raw), list(records.row_numbers)),
        columns,
        records.file_problem,
    )


def _schema_of(columns: list[str]) -> tuple[str | None, str | None]:
    """(schema kind, problem that quarantines every row) from a file's columns."""
    present = set(columns)
    if "total_cumulative" in present:
        kind, required = "counters", ["timestamp", "service", "total_cumulative"]
        if not present & {"good_cumulative", "bad_cumulative"}:
            return kind, "the counter file has neither a 'good_cumulative' nor a 'bad_cumulative' column"
        unknown = sorted(present - set(COUNTER_COLUMNS))
        if unknown:
            # An extra label (instance, pod...) would merge several counters into one series, and their
            # differences would read as resets.
            return kind, (
                f"column '{unknown[0]}' is not part of a counter series (service, operation): "
                "sum per series first, or fold it into operation"
            )
    elif "ratio" in present and not present & {"total", "status_code", "success"}:
        kind, required = "ratios", ["timestamp", "service", "ratio"]
    elif "total" in present:
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
    if kind == "counters":
        # Cumulative samples pass the counts validation (whole numbers, good <= total) under those names.
        renames = {f"{c}_cumulative": c for c in ("total", "good", "bad")}
        frame = frame.drop([c for c in renames.values() if c in frame.columns]).rename(
            {k: v for k, v in renames.items() if k in frame.columns}
        )
    expected = {"counts": COUNT_COLUMNS, "counters": COUNT_COLUMNS, "ratios": RATIO_COLUMNS}.get(
        kind or "", EVENT_COLUMNS
    )
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


# --- The typed Parquet fast path -------------------------------------------------------------------------
#
# An events Parquet file whose columns have native types is validated inside DuckDB straight from
# read_parquet (streamed, no text conversion, no per-row Python): sql/ingest_validate_parquet.sql loads a
# row as it is only when it certainly passes every rule of the text validation, and defers every other
# row to the text validation itself, on those rows only, read with the same polars code as the text path.
# Reasons, records, row numbers and accounting are therefore the text path's, by construction. Files of
# other shapes (decimals, dictionaries, text in numeric columns, nested or binary columns, timestamps
# without a zone, a header problem) take the text path whole. A file with many row groups whose rows all
# load as they are (the check pass, sql/ingest_parquet_check.sql) skips the temp table `validated`: the
# same expressions insert it straight from the file (sql/ingest_load_parquet.sql).

# DuckDB's type names of the columns the typed validation reads.
_DUCKDB_NUMBERS = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT"}
    | {"UHUGEINT", "FLOAT", "DOUBLE"}
)


@dataclass(frozen=True)
class _ParquetPlan:
    """How the typed validation reads one events Parquet file."""

    select: str  # projection over read_parquet giving parquet_source's columns
    rows: int  # rows in the file, from its footer
    has_event_id: bool
    stamp: tuple[int, int]  # (size, mtime) when planned: the file must not change while it is read
    checks: dict[str, str]  # original column name -> the kind of DuckDB type it must read as


def _plain_polars_type(dtype: pl.DataType) -> bool:
    """A type polars reads and ``_parquet_text`` renders without loss of meaning (extra columns)."""
    return (
        dtype.is_integer()
        or dtype in (pl.Float32, pl.Float64, pl.Boolean, pl.String, pl.Date)
        or isinstance(dtype, pl.Datetime)
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parquet_plan(path: Path) -> _ParquetPlan | None:
    """The typed reading of an events file, or None when the file must take the text path."""
    try:
        stat = path.stat()
        schema = pl.read_parquet_schema(path)
        rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    except Exception:  # unreadable: the text path records what is wrong with it
        return None
    originals = list(schema.names())
    if any("\x00" in name for name in originals) or any(c in str(path) for c in "*?[]{}"):
        return None  # a NUL in a name fails the file; read_parquet would take the path for a glob
    names, header_problem = _normalise_header(originals)
    kind, schema_problem = _schema_of(names)
    if header_problem or schema_problem or kind != "events":
        return None
    dtypes = dict(zip(names, schema.dtypes(), strict=True))
    if not all(_plain_polars_type(dtype) for dtype in dtypes.values()):
        return None
    column = {name: _quoted(original) for name, original in zip(names, originals, strict=True)}
    stamp_type = dtypes["timestamp"]
    if not isinstance(stamp_type, pl.Datetime) or stamp_type.time_zone is None:
        return None  # a timestamp without a zone quarantines every row: the text path says so
    if dtypes["service"] != pl.String:
        return None
    original = dict(zip(names, originals, strict=True))
    checks = {original["timestamp"]: "timestamptz", original["service"]: "string"}
    parts = ["file_row_number + 1 AS _row", f"CAST({column['timestamp']} AS TIMESTAMPTZ) AS ts"]
    parts.append(f"{column['service']} AS service")
    for name in ("operation", "event_id"):
        if name in dtypes and dtypes[name] != pl.String:
            return None
        parts.append(f"{column[name] if name in dtypes else 'CAST(NULL AS VARCHAR)'} AS {name}")
        if name in dtypes:
            checks[original[name]] = "string"
    for name, alias in (("status_code", "status_number"), ("latency_ms", "latency_number")):
        dtype = dtypes.get(name)
        if dtype is None:
            parts.append(f"CAST(NULL AS DOUBLE) AS {alias}")
        elif not (dtype.is_integer() or dtype in (pl.Float32, pl.Float64)):
            return None
        elif dtype == pl.Float32 and name == "latency_ms":
            # The text path reads a float32 through its shortest decimal (33377.688, not 33377.6875), a
            # double DuckDB has no cast to: such files keep the text path.
            return None
        else:
            parts.append(f"CAST({column[name]} AS DOUBLE) AS {alias}")
        if dtype is not None:
            checks[original[name]] = "number"
    if "success" in dtypes and dtypes["success"] != pl.Boolean:
        return None
    parts.append(f"{column['success'] if 'success' in dtypes else 'CAST(NULL AS BOOLEAN)'} AS success")
    if "success" in dtypes:
        checks[original["success"]] = "boolean"
    stamp = (stat.st_size, stat.st_mtime_ns)
    return _ParquetPlan(", ".join(parts), rows, "event_id" in dtypes, stamp, checks)


def _duckdb_types_agree(relation: duckdb.DuckDBPyRelation, plan: _ParquetPlan) -> bool:
    """DuckDB reads the columns the typed validation uses with the types polars reported."""
    types = dict(zip(relation.columns, (str(t) for t in relation.types), strict=True))
    expected = {
        "timestamptz": lambda t: t.startswith(("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")),
        "number": lambda t: t in _DUCKDB_NUMBERS,
        "boolean": lambda t: t == "BOOLEAN",
        "string": lambda t: t == "VARCHAR",
    }
    return all(name in types and expected[kind](types[name]) for name, kind in plan.checks.items())


@dataclass
class _TypedParquet:
    """The typed validation's outcome: `validated` holds every row, deferred ones marked.

    Or, with ``direct`` set, no `validated` at all: the check pass found every row valid and without an
    event id, and the load reads the file again straight into raw_events (see ``_direct_load_pays``).
    """

    deferred: pl.DataFrame  # text staging of the deferred rows (prepared for ingest_validate_events)
    records: pl.DataFrame  # their original records (_row, _record), as the text path writes them
    params: dict[str, Any]  # the validation's parameters
    direct: tuple[datetime | None, datetime | None] | None = None  # (min_ts, max_ts) of a direct load


# What the typed validation leaves for the text rules when it defers no row (the usual case).
_NO_DEFERRED = pl.DataFrame(schema={"_row": pl.Int64})
_NO_RECORDS = pl.DataFrame(schema={"_row": pl.Int64, "_record": pl.String})


def _parquet_rows(path: Path, rows: pl.DataFrame) -> _Staging:
    """Some rows of a Parquet file (``rows._row``, 1-based) as the text path stages them."""
    if rows.height == 0:  # nothing to read but the names and types
        table = pl.DataFrame(schema=pl.read_parquet_schema(path)).with_columns(
            pl.lit(None, dtype=pl.Int64).alias("_row")
        )
    else:
        table = (
            pl.scan_parquet(path)
            .with_row_index("_row", offset=1)
            .with_columns(pl.col("_row").cast(pl.Int64))
            .join(rows.lazy().select(pl.col("_row").cast(pl.Int64)), on="_row", how="semi")
            .sort("_row")
            .collect(engine="streaming")  # a few rows of a file that may be larger than memory
        )
    return _parquet_staging(table.drop("_row"), table["_row"])


def _records_of(staging: _Staging) -> pl.DataFrame:
    return _rejected_records(staging.frame, [c for c in staging.columns if c not in _RESERVED])


# A file read straight into raw_events is read by one thread per row group, and the insert (compressing
# the rows into the warehouse) runs on that thread too. Going through `validated` instead costs a
# single-threaded copy but inserts on every thread. Measured on 2 threads: with one row group per file
# the direct load is 30% slower; with five it is 12% faster (its check pass included).
_DIRECT_ROW_GROUPS_PER_THREAD = 2


def _direct_load_pays(con: duckdb.DuckDBPyConnection, path: Path, plan: _ParquetPlan) -> bool:
    """Whether a file the check pass finds clean should skip `validated` (see above)."""
    if plan.has_event_id:
        return False  # ids are checked on `validated` (sql/ingest_dedup_events.sql)
    try:
        row_groups, threads = con.execute(
            sqlfiles.sql("ingest_parquet_row_groups"), {"path": str(path)}
        ).fetchall()[0]
    except duckdb.Error:
        return False  # the validation through `validated` reads the file and says what is wrong with it
    return int(row_groups or 0) >= _DIRECT_ROW_GROUPS_PER_THREAD * int(threads)


def _parquet_source(con: duckdb.DuckDBPyConnection, path: Path, plan: _ParquetPlan) -> bool:
    """The temp view `parquet_source` over the file; False when DuckDB reads other types than planned."""
    relation = con.read_parquet(str(path), file_row_number=True, hive_partitioning=False)
    if not _duckdb_types_agree(relation, plan):
        return False
    relation.project(plan.select).create_view("parquet_source", replace=True)
    return True


def _validate_typed_parquet(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    plan: _ParquetPlan,
    params: dict[str, Any],
) -> _TypedParquet | None:
    """Typed validation into the temp table `validated`; None when the file must take the text path."""
    try:
        if not _parquet_source(con, path, plan):
            return None
        try:
            if _direct_load_pays(con, path, plan):
                not_direct, rows, min_ts, max_ts = con.execute(
                    sqlfiles.sql("ingest_parquet_check"), params
                ).fetchall()[0]
                if not_direct == 0 and rows == plan.rows:
                    return _TypedParquet(_NO_DEFERRED, _NO_RECORDS, params, direct=(min_ts, max_ts))
            sqlfiles.run(con, "ingest_validate_parquet", params)
        finally:
            sqlfiles.run(con, "ingest_drop_parquet_source")
        deferred_rows = query_frame(con, sqlfiles.sql("ingest_parquet_deferred"))
        if deferred_rows.height == 0:
            # The usual case. The plan admitted only plain column types and a clean header, so the text
            # staging of no rows could raise no file problem: nothing to read again.
            return _TypedParquet(_NO_DEFERRED, _NO_RECORDS, params)
        staging = _parquet_rows(path, deferred_rows)
    except (duckdb.Error, pl.exceptions.PolarsError, OSError):
        # DuckDB or polars cannot read it after all: the text path reads it again and says why.
        return None
    if staging.frame.height != deferred_rows.height or staging.file_problem:
        return None
    return _TypedParquet(_prepare(staging, "events", None), _records_of(staging), params)


def _finish_typed_parquet(
    con: duckdb.DuckDBPyConnection, path: Path, plan: _ParquetPlan, typed: _TypedParquet
) -> None:
    """Inside the file's transaction: text rules on the deferred rows, then event ids, then records."""
    if typed.deferred.height:
        sqlfiles.run(con, "ingest_parquet_rename")
        con.register("staging", typed.deferred.drop("_raw"))
        try:
            sqlfiles.run(con, "ingest_validate_events", typed.params)
        finally:
            con.unregister("staging")
        sqlfiles.run(con, "ingest_parquet_merge")
        unchecked = con.execute(sqlfiles.sql("ingest_parquet_unchecked")).fetchall()[0][0]
        if unchecked:
            raise RuntimeError(f"{path}: {unchecked} deferred rows were not validated")
    if plan.has_event_id:
        sqlfiles.run(con, "ingest_dedup_events")
        duplicates = query_frame(con, sqlfiles.sql("ingest_parquet_unrecorded"))
        if duplicates.height:
            typed.records = pl.concat([typed.records, _records_of(_parquet_rows(path, duplicates))])
            con.unregister("rejected_records")
            con.register("rejected_records", typed.records)


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    now: datetime | None = None,
    max_clock_skew_seconds: int = 300,
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS,
    loaded_stamps: LoadedStamps | None = None,
) -> FileResult:
    """Load one file; see the module docstring for the guarantees.

    A path whose size and modification time are those it had when its content was last found loaded is
    skipped without being read (``landing_stamps``): a run over a landing folder of a thousand files
    reads only the new and changed ones. Like make or rsync, this trusts that content does not change
    without its size or modification time changing. ``loaded_stamps`` (from :func:`loaded_stamps`, read
    once by a caller loading many files) replaces the two look-ups per file.
    """
    fault_point("ingest.before_file")
    resolved = path.resolve()
    try:
        before = resolved.stat()
    except OSError:
        before = None  # the full path below says what is wrong with it
    stamp = None
    if before is not None:
        stamp = {"path": str(resolved), "size": before.st_size, "mtime": before.st_mtime_ns}
        if loaded_stamps is not None:
            size, mtime, file_id = loaded_stamps.get(stamp["path"], (None, None, None))
            if (size, mtime) == (stamp["size"], stamp["mtime"]):
                return FileResult(stamp["path"], "skipped", file_id=file_id, message="already loaded")
            known = []
        else:
            known = con.execute(sqlfiles.sql("landing_stamp_get"), stamp).fetchall()
        if known:
            seen = con.execute(sqlfiles.sql("files_by_hash"), {"sha": known[0][0]}).fetchall()
            for file_id, seen_path, status in seen:
                if status == "loaded" and seen_path == stamp["path"]:
                    return FileResult(seen_path, "skipped", file_id=file_id, message="already loaded")
    result = _ingest_file(
        con, path, now=now, max_clock_skew_seconds=max_clock_skew_seconds, max_latency_ms=max_latency_ms
    )
    if stamp is not None and result.file_id is not None and result.status in ("loaded", "skipped"):
        loaded = con.execute(
            sqlfiles.sql("loaded_file_of_path"), {"file_id": result.file_id, "path": stamp["path"]}
        ).fetchall()
        if loaded:
            # The stamp taken before reading: content changed since makes the next run read it again.
            sqlfiles.run(con, "landing_stamp_put", {**stamp, "sha": loaded[0][0]})
    return result


def _ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    now: datetime | None,
    max_clock_skew_seconds: int,
    max_latency_ms: float,
) -> FileResult:
    now_utc = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    path = path.resolve()
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise IngestError(f"{path}: unsupported file type; expected one of {', '.join(sorted(FORMATS))}")
    # An events Parquet file with native types is validated by DuckDB from the file itself (see the typed
    # fast path above): it is hashed without being held in memory.
    plan = _parquet_plan(path) if fmt == "parquet" else None
    raw: bytes | None = None
    try:
        if plan is None:
            raw = path.read_bytes()
            digest = hashlib.sha256(raw).hexdigest()
        else:
            digest = _file_digest(path)
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read: {exc.strerror}") from exc
    path_text = str(path)

    seen = con.execute(sqlfiles.sql("files_by_hash"), {"sha": digest}).fetchall()
    base = {"path": path_text, "sha256": digest, "format": fmt, "now": now_utc}
    for file_id, seen_path, status in seen:
        if status == "loaded" and seen_path == path_text:
            return FileResult(path_text, "skipped", file_id=file_id, message="already loaded")
        if status == "loaded":
            # The same bytes are loaded from another path: never count them twice. If this path held
            # other content before, that content is gone from the folder, so its rows go too.
            replaced = _record_duplicate(con, base, seen_path)
            note = f"same content as {seen_path}, already loaded"
            return FileResult(
                path_text,
                "skipped",
                file_id=file_id,
                message=note + ("; this path's earlier rows were removed" if replaced else ""),
            )
        if status == "failed" and seen_path == path_text:
            return FileResult(
                path_text, "skipped", file_id=file_id, message="already failed with this content"
            )

    if _loaded_kind(con, path_text) == "counters":
        # Counter deltas chain from sample to sample across files: replacing a loaded file would need every
        # later delta of its series recomputed. Refuse, loudly, rather than lose or double-count events.
        reason = (
            "a loaded cumulative counter file cannot be replaced; land the corrected samples as a new file"
        )
        file_id = _record_file(con, base, status="failed", error=reason)
        return FileResult(path_text, "failed", file_id=file_id, message=f"{path}: {reason}")
    latest_allowed = now_utc + timedelta(seconds=max_clock_skew_seconds)
    typed: _TypedParquet | None = None
    if plan is not None:
        params = {
            "latest_allowed": latest_allowed,
            "raw_cutoff": _raw_cutoff(con),
            "max_latency_ms": max_latency_ms,
        }
        typed = _validate_typed_parquet(con, path, plan, params)
        try:
            stat = path.stat()
            if typed is None:
                raw = path.read_bytes()
        except OSError as exc:
            raise IngestError(f"{path}: cannot be read: {exc.strerror}") from exc
        changed = (stat.st_size, stat.st_mtime_ns) != plan.stamp
        if changed or (raw is not None and hashlib.sha256(raw).hexdigest() != digest):
            # Not recorded: the next run reads the file again, once it is complete.
            raise IngestError(f"{path}: the file changed while it was being read; it is read again next run")
    if plan is not None and typed is not None:
        return _load_typed_parquet(con, path, plan, typed, base)
    assert raw is not None  # read above by every path that reaches here
    try:
        if fmt.startswith("plugin:"):
            plugin = _PLUGINS[path.suffix.lower()]
            try:
                records = plugin.read(raw, path)
            except Exception as exc:  # a plugin may fail in any way: this file fails, the others load
                raise UnreadableFile(f"source plugin {plugin.name!r} could not read it: {exc}") from exc
            staging = _staging_of(records)
        else:
            staging = _READERS[fmt](raw)
        if any("\x00" in name for name in staging.frame.columns):
            # A UTF-16 file or binary junk read as text: DuckDB and polars cannot even name such a column.
            raise UnreadableFile("a column name contains a NUL character (a UTF-16 file, or not text?)")
    except UnreadableFile as exc:
        file_id = _record_file(con, base, status="failed", error=str(exc))
        return FileResult(path_text, "failed", file_id=file_id, message=f"{path}: {exc}")

    kind, schema_problem = _schema_of(staging.columns)
    file_problem = staging.file_problem or schema_problem
    frame = _prepare(staging, kind, file_problem)
    rows_read = frame.height
    data_columns = [c for c in staging.columns if c not in _RESERVED]
    # The records as they were in the file (before any renaming), for the quarantine.
    rejected = _rejected_records(staging.frame, data_columns)

    con.register("staging", frame.drop("_raw"))
    con.register("rejected_records", rejected)
    try:
        with transaction(con):
            file_id = con.execute(sqlfiles.sql("next_file_id")).fetchall()[0][0]
            raw_cutoff = _raw_cutoff(con)
            _supersede(con, path_text, raw_cutoff)
            fault_point("ingest.after_supersede")
            validate = _VALIDATORS.get(kind or "", "ingest_validate_events")
            sqlfiles.run(
                con,
                validate,
                {
                    "latest_allowed": latest_allowed,
                    "raw_cutoff": raw_cutoff,
                    "max_latency_ms": max_latency_ms,
                },
            )
            if validate == "ingest_validate_events":
                sqlfiles.run(con, "ingest_dedup_events")
            if kind == "counters":
                _apply_counter_deltas(con, raw_cutoff)
            fault_point("ingest.after_validate")
            loaded, quarantined, min_ts, max_ts = con.execute(
                sqlfiles.sql("ingest_validated_summary")
            ).fetchall()[0]
            if loaded + quarantined != rows_read:
                raise RuntimeError(f"{path}: accounting mismatch: {loaded} + {quarantined} != {rows_read}")
            params = {**base, "file_id": file_id}
            sqlfiles.run(con, _LOADERS.get(kind or "", "ingest_load_events"), params)
            fault_point("ingest.after_load")
            _record_loaded(
                con,
                params,
                error=file_problem,
                schema_kind=kind,
                rows_read=rows_read,
                rows_loaded=loaded,
                rows_quarantined=quarantined,
                min_ts=min_ts,
                max_ts=max_ts,
            )
    finally:
        # After the transaction has committed or rolled back: cleanup must never mask the real error.
        con.unregister("staging")
        con.unregister("rejected_records")
    fault_point("ingest.after_commit")
    sqlfiles.run(con, "ingest_drop_validated")
    message = file_problem or ("empty file" if rows_read == 0 else "")
    return FileResult(path_text, "loaded", rows_read, loaded, quarantined, kind, file_id, message)


def _load_typed_parquet(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    plan: _ParquetPlan,
    typed: _TypedParquet,
    base: dict[str, Any],
) -> FileResult:
    """The rest of ``ingest_file`` for a file the typed validation read: the same transaction and steps."""
    path_text = base["path"]
    con.register("rejected_records", typed.records)
    try:
        with transaction(con):
            file_id = con.execute(sqlfiles.sql("next_file_id")).fetchall()[0][0]
            _supersede(con, path_text, typed.params["raw_cutoff"])
            fault_point("ingest.after_supersede")
            if typed.direct is None:
                _finish_typed_parquet(con, path, plan, typed)
                loaded, quarantined, min_ts, max_ts = con.execute(
                    sqlfiles.sql("ingest_validated_summary")
                ).fetchall()[0]
            else:
                loaded, quarantined, (min_ts, max_ts) = plan.rows, 0, typed.direct
            fault_point("ingest.after_validate")
            if loaded + quarantined != plan.rows:
                raise RuntimeError(f"{path}: accounting mismatch: {loaded} + {quarantined} != {plan.rows}")
            params = {**base, "file_id": file_id}
            if typed.direct is None:
                sqlfiles.run(con, "ingest_load_events", params)
            else:
                _load_parquet_directly(con, path, plan, {**typed.params, "file_id": file_id})
            fault_point("ingest.after_load")
            _record_loaded(
                con,
                params,
                error=None,
                schema_kind="events",
                rows_read=plan.rows,
                rows_loaded=loaded,
                rows_quarantined=quarantined,
                min_ts=min_ts,
                max_ts=max_ts,
            )
    finally:
        con.unregister("rejected_records")
    fault_point("ingest.after_commit")
    sqlfiles.run(con, "ingest_drop_validated")
    message = "empty file" if plan.rows == 0 else ""
    return FileResult(path_text, "loaded", plan.rows, loaded, quarantined, "events", file_id, message)


def _record_loaded(
    con: duckdb.DuckDBPyConnection,
    params: dict[str, Any],
    *,
    error: str | None,
    schema_kind: str | None,
    rows_read: int,
    rows_loaded: int,
    rows_quarantined: int,
    min_ts: datetime | None,
    max_ts: datetime | None,
) -> None:
    """Inside a loaded file's transaction, after its rows: its quarantine, bookkeeping and dirty minutes.

    ``params``: the file's base bookkeeping (path, sha, format, now) with its ``file_id``.
    """
    if rows_quarantined:
        sqlfiles.run(con, "ingest_quarantine", params)
    fault_point("ingest.after_quarantine")
    _record_file(
        con,
        params,
        status="loaded",
        error=error,
        file_id=params["file_id"],
        schema_kind=schema_kind,
        rows_read=rows_read,
        rows_loaded=rows_loaded,
        rows_quarantined=rows_quarantined,
        min_ts=min_ts,
        max_ts=max_ts,
    )
    dirty = {"file_id": params["file_id"], "min_ts": min_ts, "max_ts": max_ts}
    sqlfiles.run(con, "ingest_mark_dirty", dirty)
    fault_point("ingest.after_record_file")


def _load_parquet_directly(
    con: duckdb.DuckDBPyConnection, path: Path, plan: _ParquetPlan, params: dict[str, Any]
) -> None:
    """Inside the file's transaction: the file's rows straight into raw_events (sql/ingest_load_parquet.sql).

    The file is read a second time here, after the check pass and the change check of ``_ingest_file``:
    whatever it holds now must still be every row of the planned file, all valid, or nothing commits.
    """
    if not _parquet_source(con, path, plan):
        raise IngestError(f"{path}: the file changed while it was being read; it is read again next run")
    try:
        statement = sqlfiles.sql("ingest_load_parquet")
        inserted = con.execute(statement, sqlfiles.params_for(statement, params)).fetchall()[0][0]
    finally:
        sqlfiles.run(con, "ingest_drop_parquet_source")
    try:
        stat = path.stat()
    except OSError as exc:
        raise IngestError(f"{path}: cannot be read: {exc.strerror}") from exc
    if inserted != plan.rows or (stat.st_size, stat.st_mtime_ns) != plan.stamp:
        raise IngestError(f"{path}: the file changed while it was being read; it is read again next run")


def _apply_counter_deltas(con: duckdb.DuckDBPyConnection, raw_cutoff: datetime | None) -> None:
    """Replace the validated cumulative samples by per-interval counts (see pipelines.slo.counters)."""
    samples = query_frame(con, sqlfiles.sql("ingest_counter_samples"))
    series_keys = sorted({f"{s}\x00{o}" for s, o in samples.select("service", "operation").iter_rows()})
    state_rows = query_frame(con, sqlfiles.sql("ingest_counter_state"), {"series": series_keys})
    states = {
        (r["service"], r["operation"]): Sample(-1, r["ts"], r["total"], r["good"])
        for r in state_rows.iter_rows(named=True)
    }
    deltas: list[dict[str, Any]] = []
    new_state: list[dict[str, Any]] = []
    for (service, operation), group in samples.group_by(["service", "operation"], maintain_order=True):
        ordered = [Sample(r["_row"], r["ts"], r["total"], r["good"]) for r in group.iter_rows(named=True)]
        found, last = differences(ordered, states.get((service, operation)))
        deltas.extend(
            {"_row": d.row, "ts": d.ts, "total": d.total, "good": d.good, "reason": d.reason} for d in found
        )
        if last is not None:
            new_state.append(
                {
                    "service": service,
                    "operation": operation,
                    "ts": last.ts,
                    "total": last.total,
                    "good": last.good,
                }
            )
    delta_schema = {
        "_row": pl.Int64,
        "ts": pl.Datetime("us"),
        "total": pl.Int64,
        "good": pl.Int64,
        "reason": pl.String,
    }
    state_schema = {
        "service": pl.String,
        "operation": pl.String,
        "ts": pl.Datetime("us"),
        "total": pl.Int64,
        "good": pl.Int64,
    }
    con.register("counter_deltas", pl.DataFrame(deltas, schema=delta_schema))
    con.register("new_counter_state", pl.DataFrame(new_state, schema=state_schema))
    try:
        sqlfiles.run(con, "ingest_counter_deltas", {"raw_cutoff": raw_cutoff})
    finally:
        con.unregister("counter_deltas")
        con.unregister("new_counter_state")


def _record_file(
    con: duckdb.DuckDBPyConnection,
    base: dict[str, Any],
    *,
    status: str,
    error: str | None,
    file_id: int | None = None,
    schema_kind: str | None = None,
    rows_read: int = 0,
    rows_loaded: int = 0,
    rows_quarantined: int = 0,
    min_ts: datetime | None = None,
    max_ts: datetime | None = None,
) -> int:
    """One row of ``ingested_files``; in its own transaction unless the caller's is open."""

    def write() -> int:
        number = file_id or con.execute(sqlfiles.sql("next_file_id")).fetchall()[0][0]
        sqlfiles.run(
            con,
            "ingest_record_file",
            {
                **base,
                "file_id": number,
                "schema_kind": schema_kind,
                "status": status,
                "rows_read": rows_read,
                "rows_loaded": rows_loaded,
                "rows_quarantined": rows_quarantined,
                "min_ts": min_ts,
                "max_ts": max_ts,
                "error": error,
            },
        )
        return number

    if file_id is not None:
        return write()
    with transaction(con):
        return write()


def _supersede(con: duckdb.DuckDBPyConnection, path: str, raw_cutoff: datetime | None) -> None:
    """Drop the path's loaded version, if it has one (sql/ingest_supersede.sql).

    Its deletes scan all of raw_events (seconds at 100 M rows) even when they find nothing, and most files
    land at a new path: the bookkeeping lookup first keeps that cost to the paths that were replaced.
    """
    if con.execute(sqlfiles.sql("loaded_versions_of_path"), {"path": path}).fetchall()[0][0]:
        sqlfiles.run(con, "ingest_supersede", {"path": path, "raw_cutoff": raw_cutoff})


def _raw_cutoff(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The raw tier's retention cutoff: raw rows before it were deleted (None when never cut)."""
    return con.execute(sqlfiles.sql("ingest_raw_cutoff")).fetchall()[0][0]


def _loaded_kind(con: duckdb.DuckDBPyConnection, path: str) -> str | None:
    found = con.execute(sqlfiles.sql("loaded_kind_of_path"), {"path": path}).fetchall()
    return found[0][0] if found else None


def _record_duplicate(con: duckdb.DuckDBPyConnection, base: dict[str, Any], original: str) -> bool:
    """Record a path whose bytes are already loaded from ``original``; drop the path's earlier rows."""
    earlier = con.execute(sqlfiles.sql("loaded_versions_of_path"), {"path": base["path"]}).fetchall()[0][0]
    if not earlier or _loaded_kind(con, base["path"]) == "counters":
        return False  # a counter file's samples stay: see the refusal in ingest_file
    with transaction(con):
        sqlfiles.run(con, "ingest_supersede", {"path": base["path"], "raw_cutoff": _raw_cutoff(con)})
        number = con.execute(sqlfiles.sql("next_file_id")).fetchall()[0][0]
        sqlfiles.run(
            con,
            "ingest_record_file",
            {
                **base,
                "file_id": number,
                "schema_kind": None,
                "status": "duplicate",
                "rows_read": 0,
                "rows_loaded": 0,
                "rows_quarantined": 0,
                "min_ts": None,
                "max_ts": None,
                "error": f"same content as {original}",
            },
        )
    fault_point("ingest.after_duplicate")
    return True


# path -> (size in bytes, modification time in ns, file id) of paths whose stamped content is loaded
LoadedStamps = dict[str, tuple[int, int, int]]


def loaded_stamps(con: duckdb.DuckDBPyConnection) -> LoadedStamps:
    """Every stamped path whose content is its loaded version (``sql/landing_stamps_loaded.sql``)."""
    rows = con.execute(sqlfiles.sql("landing_stamps_loaded")).fetchall()
    return {path: (size, mtime, file_id) for path, size, mtime, file_id in rows}


def ingest_paths(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    *,
    now: datetime | None = None,
    max_clock_skew_seconds: int = 300,
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS,
) -> IngestReport:
    """Ingest every data file under ``paths``; one file's failure does not stop the others."""
    report = IngestReport()
    # Read once: loading one file changes no other path's stamp or loaded version.
    stamps = loaded_stamps(con)
    for path in discover(paths):
        try:
            result = ingest_file(
                con,
                path,
                now=now,
                max_clock_skew_seconds=max_clock_skew_seconds,
                max_latency_ms=max_latency_ms,
                loaded_stamps=stamps,
            )
        except (IngestError, OSError, duckdb.Error, pl.exceptions.PolarsError, RuntimeError) as exc:
            # Not recorded as failed in the warehouse: the cause may be transient (a full disk, a lock),
            # and the next run must try the file again. The transaction left nothing of it behind.
            result = FileResult(str(path), "failed", message=f"{path}: {type(exc).__name__}: {exc}")
        report.files.append(result)
    return report

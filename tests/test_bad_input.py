"""A corpus of malformed input files: each gets a clear error or goes to the quarantine, nothing is lost.

Every case is ingested into a fresh warehouse with ``ingest_paths``: no exception may escape, a loaded
file must account for every row (``rows_loaded + rows_quarantined == rows_read``, each quarantined row
with a reason), and a file that cannot be read at all must be recorded ``failed`` with its reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.slo.ingest import FileResult, ingest_paths
from pipelines.warehouse import connect

NOW = datetime(2026, 3, 2, tzinfo=UTC)
EVENTS = "timestamp,service,operation,status_code,success,latency_ms\n"
EVENTS_WITH_ID = "timestamp,service,operation,status_code,success,latency_ms,event_id\n"
COUNTS = "timestamp,service,operation,total,good,bad\n"
RATIOS = "timestamp,service,operation,ratio\n"
TS = "2026-03-01T10:00:00Z"


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    content: bytes
    status: str = "loaded"
    # Substrings that must each appear in some quarantine reason (or in the failure message).
    reasons: tuple[str, ...] = ()
    # (rows_read, rows_loaded, rows_quarantined), derived by hand where given.
    counts: tuple[int, int, int] | None = None
    # A known product bug this case exposes (the case is a strict xfail until it is fixed).
    bug: str | None = None


# A column name containing NUL (UTF-16 CSV, binary junk, NUL in an NDJSON key or a Parquet column name):
# the file cannot be staged at all, so it is recorded as failed with this reason.
NUL_REASON = "a column name contains a NUL character"


def _csv(
    name: str, text: str, reasons: tuple[str, ...] = (), counts: tuple[int, int, int] | None = None
) -> Case:
    return Case(name, ".csv", text.encode("utf-8"), reasons=reasons, counts=counts)


def _ndjson(
    name: str, text: str, reasons: tuple[str, ...] = (), counts: tuple[int, int, int] | None = None
) -> Case:
    return Case(name, ".ndjson", text.encode("utf-8"), reasons=reasons, counts=counts)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _parquet(
    name: str,
    table: pa.Table,
    reasons: tuple[str, ...] = (),
    counts: tuple[int, int, int] | None = None,
    status: str = "loaded",
) -> Case:
    return Case(name, ".parquet", _parquet_bytes(table), status=status, reasons=reasons, counts=counts)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


_GOOD_EVENTS = pa.table(
    {
        "timestamp": pa.array([_utc(2026, 3, 1, 10), _utc(2026, 3, 1, 11)], pa.timestamp("us", tz="UTC")),
        "service": ["shop", "shop"],
        "status_code": pa.array([200, 503], pa.int32()),
        "latency_ms": [1.5, 2.5],
    }
)
_VALID_PARQUET = _parquet_bytes(_GOOD_EVENTS)
_TS2 = pa.array([_utc(2026, 3, 1, 10), _utc(2026, 3, 1, 11)], pa.timestamp("us", tz="UTC"))
_BINARY_JUNK = bytes(range(256)) * 4 + b"\x00\xff\xfe" * 50


def _corpus() -> list[Case]:
    cases = [
        # --- CSV events: wrong types, NaN and infinities, huge values --------------------------------------
        _csv("csv_status_text", EVENTS + f"{TS},shop,pay,abc,,1\n", ("status_code 'abc'",), (1, 0, 1)),
        _csv(
            "csv_status_fraction", EVENTS + f"{TS},shop,pay,200.5,,1\n", ("is not an HTTP status",), (1, 0, 1)
        ),
        _csv(
            "csv_status_out_of_range",
            EVENTS + f"{TS},shop,pay,99,,1\n{TS},shop,pay,600,,1\n{TS},shop,pay,-200,,1\n",
            ("status_code '99'", "status_code '600'", "status_code '-200'"),
            (3, 0, 3),
        ),
        _csv(
            "csv_status_huge",
            EVENTS + f"{TS},shop,pay,{'9' * 40},,1\n{TS},shop,pay,1e308,,1\n",
            ("is not an HTTP status",),
            (2, 0, 2),
        ),
        _csv(
            "csv_status_nan_inf",
            EVENTS + f"{TS},shop,pay,NaN,,1\n{TS},shop,pay,inf,,1\n{TS},shop,pay,-Infinity,,1\n",
            ("status_code 'NaN'", "status_code 'inf'", "status_code '-Infinity'"),
            (3, 0, 3),
        ),
        _csv(
            "csv_latency_nan",
            EVENTS + f"{TS},shop,pay,200,,NaN\n{TS},shop,pay,200,,nan\n",
            ("latency_ms 'NaN' is not a finite number",),
            (2, 0, 2),
        ),
        _csv(
            "csv_latency_infinities",
            EVENTS + f"{TS},shop,pay,200,,inf\n{TS},shop,pay,200,,-inf\n{TS},shop,pay,200,,Infinity\n",
            ("latency_ms 'inf' is not a finite number", "latency_ms '-inf'", "latency_ms 'Infinity'"),
            (3, 0, 3),
        ),
        _csv(
            "csv_latency_huge",
            EVENTS + f"{TS},shop,pay,200,,1e400\n{TS},shop,pay,200,,{'9' * 400}\n",
            ("latency_ms '1e400' is not a finite number",),
            (2, 0, 2),
        ),
        _csv(
            "csv_latency_negative_and_text",
            EVENTS + f"{TS},shop,pay,200,,-4\n{TS},shop,pay,200,,12ms\n",
            ("latency_ms '-4'", "latency_ms '12ms'"),
            (2, 0, 2),
        ),
        _csv(
            "csv_success_not_boolean",
            EVENTS + f"{TS},shop,pay,,maybe,1\n{TS},shop,pay,,2,1\n",
            ("success 'maybe' is not a boolean", "success '2'"),
            (2, 0, 2),
        ),
        _csv(
            "csv_neither_status_nor_success",
            EVENTS + f"{TS},shop,pay,,,1\n",
            ("neither status_code nor success is given",),
            (1, 0, 1),
        ),
        # --- CSV timestamps -------------------------------------------------------------------------------
        _csv(
            "csv_timestamp_without_zone",
            EVENTS + "2026-03-01T10:00:00,shop,pay,200,,1\n2026-03-01 10:00:00,shop,pay,200,,1\n",
            ("has no UTC offset",),
            (2, 0, 2),
        ),
        _csv(
            "csv_timestamp_far_future",
            EVENTS + "2099-01-01T00:00:00Z,shop,pay,200,,1\n9999-12-31T23:59:59Z,shop,pay,200,,1\n",
            ("timestamp 2099-01-01T00:00:00Z is in the future",),
            (2, 0, 2),
        ),
        _csv(
            "csv_timestamp_future_epoch",
            # 2100-01-01 in epoch seconds and milliseconds, and beyond the epoch range.
            EVENTS
            + "4102444800,shop,pay,200,,1\n"
            + "4102444800000,shop,pay,200,,1\n"
            + "99999999999999999,shop,pay,200,,1\n",
            ("in the future",),
            (3, 0, 3),
        ),
        _csv(
            "csv_timestamp_garbage",
            EVENTS + "yesterday,shop,pay,200,,1\n2026-02-30T00:00:00Z,shop,pay,200,,1\n,shop,pay,200,,1\n",
            (
                "timestamp 'yesterday' is not ISO-8601",
                "timestamp '2026-02-30T00:00:00Z'",
                "timestamp is missing",
            ),
            (3, 0, 3),
        ),
        _csv(
            "csv_timestamp_nan_inf",
            EVENTS + "NaN,shop,pay,200,,1\ninf,shop,pay,200,,1\n-1,shop,pay,200,,1\n",
            ("timestamp 'NaN'", "timestamp 'inf'"),
            (3, 0, 3),
        ),
        # --- CSV structure: missing columns, duplicate headers, ragged rows -------------------------------
        _csv(
            "csv_missing_service_column",
            "timestamp,status_code\n" + f"{TS},200\n{TS},500\n",
            ("the file has no 'service' column",),
            (2, 0, 2),
        ),
        _csv(
            "csv_missing_timestamp_column",
            "service,status_code\nshop,200\n",
            ("the file has no 'timestamp' column",),
            (1, 0, 1),
        ),
        _csv(
            "csv_no_schema_columns",
            "a,b,c\n1,2,3\n4,5,6\n",
            ("neither event columns",),
            (2, 0, 2),
        ),
        _csv(
            "csv_duplicate_header",
            "timestamp,service,status_code,status_code\n" + f"{TS},shop,200,500\n",
            ("duplicate column 'status_code'",),
            (1, 0, 1),
        ),
        _csv(
            "csv_duplicate_header_by_case",
            "timestamp,Service,service,status_code\n" + f"{TS},a,b,200\n{TS},a,b,200\n",
            ("duplicate column 'service'",),
            (2, 0, 2),
        ),
        _csv(
            "csv_reserved_column",
            "timestamp,service,status_code,_row\n" + f"{TS},shop,200,1\n",
            ("name reserved by sloscope",),
            (1, 0, 1),
        ),
        _csv(
            "csv_ragged_rows",
            EVENTS + f"{TS},shop\n{TS},shop,pay,200,,1,extra\n{TS},shop,pay,200,,1\n",
            ("expected 6 fields, found 2", "expected 6 fields, found 7"),
            (3, 1, 2),
        ),
        _csv(
            "csv_unterminated_quote",
            EVENTS + f'{TS},shop,pay,200,,1\n{TS},"shop,pay,200,,1\n',
            (),
            (2, 1, 1),
        ),
        _csv(
            "csv_service_too_long",
            EVENTS + f"{TS},{'s' * 201},pay,200,,1\n{TS},shop,{'o' * 201},200,,1\n{TS},   ,pay,200,,1\n",
            ("service is longer than 200", "operation is longer than 200", "service is missing"),
            (3, 0, 3),
        ),
        # --- empty files ------------------------------------------------------------------------------------
        Case("csv_empty_file", ".csv", b"", counts=(0, 0, 0)),
        _csv("csv_header_only", EVENTS, counts=(0, 0, 0)),
        _csv("csv_blank_lines_only", "\n\n   \n\r\n", counts=(0, 0, 0)),
        Case("ndjson_empty_file", ".jsonl", b"", counts=(0, 0, 0)),
        _ndjson("ndjson_blank_lines_only", "\n  \n\n", counts=(0, 0, 0)),
        # --- bad encodings ----------------------------------------------------------------------------------
        Case(
            "csv_latin1_bytes",
            ".csv",
            EVENTS.encode()
            + f"{TS},caf".encode()
            + b"\xe9,pay,200,,1\n"
            + f"{TS},shop,pay,200,,1\n".encode(),
            reasons=("not valid UTF-8",),
            counts=(2, 1, 1),
        ),
        Case(
            "csv_utf16_file",
            ".csv",
            (EVENTS + f"{TS},shop,pay,200,,1\n").encode("utf-16"),
            status="failed",
            reasons=(NUL_REASON,),
        ),
        Case("csv_binary_junk", ".csv", _BINARY_JUNK, status="failed", reasons=(NUL_REASON,)),
        Case(
            "csv_nul_in_header",
            ".csv",
            f"timestamp,service,status_code,x\x00y\n{TS},shop,200,1\n".encode(),
            counts=(1, 0, 1),
            status="failed",
            reasons=(NUL_REASON,),
        ),
        Case(
            "csv_nul_in_value",
            ".csv",
            f"timestamp,service,status_code\n{TS},sh\x00op,200\n".encode(),
            counts=(1, 1, 0),
        ),
        Case(
            "ndjson_nul_in_key",
            ".ndjson",
            b'{"timestamp": "' + TS.encode() + b'", "service": "shop", "status_code": 200, "x\\u0000y": 1}\n',
            counts=(1, 0, 1),
            status="failed",
            reasons=(NUL_REASON,),
        ),
        Case(
            "ndjson_invalid_utf8",
            ".ndjson",
            b'{"timestamp": "' + TS.encode() + b'", "service": "caf\xe9", "status_code": 200}\n',
            reasons=("not valid UTF-8",),
            counts=(1, 0, 1),
        ),
        Case("ndjson_binary_junk", ".ndjson", _BINARY_JUNK),
        # --- CSV counts and ratios --------------------------------------------------------------------------
        _csv(
            "counts_good_exceeds_total",
            COUNTS + f"{TS},shop,pay,10,11,\n{TS},shop,pay,10,,11\n",
            ("good 11 exceeds total 10", "bad 11 exceeds total 10"),
            (2, 0, 2),
        ),
        _csv(
            "counts_not_whole_numbers",
            COUNTS + f"{TS},shop,pay,-5,0,\n{TS},shop,pay,1.5,1,\n{TS},shop,pay,abc,1,\n",
            ("total '-5' is not a whole number", "total '1.5'", "total 'abc'"),
            (3, 0, 3),
        ),
        _csv(
            "counts_huge_values",
            COUNTS + f"{TS},shop,pay,{'9' * 30},1,\n{TS},shop,pay,10,{'9' * 20},\n",
            ("is not a whole number",),
            (2, 0, 2),
        ),
        _csv(
            "counts_nan_inf",
            COUNTS + f"{TS},shop,pay,NaN,1,\n{TS},shop,pay,10,inf,\n",
            ("total 'NaN' is not a whole number", "good 'inf'"),
            (2, 0, 2),
        ),
        _csv(
            "counts_sum_mismatch",
            COUNTS + f"{TS},shop,pay,10,4,5\n{TS},shop,pay,10,,\n",
            ("good 4 + bad 5 is not total 10", "neither good nor bad is given"),
            (2, 0, 2),
        ),
        _csv(
            "counts_without_good_or_bad_column",
            "timestamp,service,total\n" + f"{TS},shop,10\n",
            ("neither a 'good' nor a 'bad' column",),
            (1, 0, 1),
        ),
        _csv(
            "ratios_out_of_range",
            RATIOS + f"{TS},shop,pay,1.5\n{TS},shop,pay,-0.1\n{TS},shop,pay,\n",
            ("ratio '1.5' is not a number between 0 and 1", "ratio '-0.1'", "ratio is missing"),
            (3, 0, 3),
        ),
        _csv(
            "ratios_nan_inf_text",
            RATIOS + f"{TS},shop,pay,NaN\n{TS},shop,pay,inf\n{TS},shop,pay,half\n",
            ("ratio 'NaN'", "ratio 'inf'", "ratio 'half'"),
            (3, 0, 3),
        ),
        # --- NDJSON -----------------------------------------------------------------------------------------
        _ndjson(
            "ndjson_not_json",
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": 200}\n{not json\n[1, 2\n',
            ("not valid JSON",),
            (3, 1, 2),
        ),
        _ndjson(
            "ndjson_not_objects",
            '[1, 2, 3]\n"text"\n42\nnull\n',
            ("expected a JSON object, found list", "found str", "found int", "found NoneType"),
            (4, 0, 4),
        ),
        _ndjson(
            "ndjson_duplicate_key",
            '{"timestamp": "' + TS + '", "service": "a", "Service": "b", "status_code": 200}\n',
            ("key 'service' is given more than once",),
            (1, 0, 1),
        ),
        _ndjson(
            "ndjson_nested_values",
            '{"timestamp": "' + TS + '", "service": {"name": "shop"}, "status_code": 200}\n'
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": [200]}\n',
            ("field 'service' is a JSON dict", "field 'status_code' is a JSON list"),
            (2, 0, 2),
        ),
        _ndjson(
            "ndjson_nan_infinity_literals",
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": 200, "latency_ms": NaN}\n'
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": 200, "latency_ms": Infinity}\n'
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": NaN}\n',
            ("latency_ms 'nan' is not a finite number", "latency_ms 'inf'", "status_code 'nan'"),
            (3, 0, 3),
        ),
        _ndjson(
            "ndjson_wrong_types",
            '{"timestamp": true, "service": "shop", "status_code": 200}\n'
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": true}\n'
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": "200", "latency_ms": "fast"}\n'
            '{"timestamp": "' + TS + '", "service": 42, "status_code": 200.0, "latency_ms": 1}\n',
            ("timestamp 'true'", "status_code 'true'", "latency_ms 'fast'"),
            (4, 1, 3),
        ),
        _ndjson(
            "ndjson_huge_numbers",
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": ' + "9" * 50 + "}\n"
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": 200, "latency_ms": 1e999}\n',
            ("is not an HTTP status", "is not a finite number"),
            (2, 0, 2),
        ),
        _ndjson(
            "ndjson_deeply_nested",
            "[" * 100_000 + "]" * 100_000 + "\n" + '{"a": ' * 5000 + "1" + "}" * 5000 + "\n",
            ("not valid JSON: nested too deeply",),
            (2, 0, 2),
        ),
        _ndjson(
            "ndjson_truncated_last_record",
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": 200}\n{"timestamp": "20',
            ("not valid JSON",),
            (2, 1, 1),
        ),
        _ndjson(
            "ndjson_reserved_key",
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": 200, "_row": 7}\n',
            ("field '_row' uses a name reserved by sloscope",),
            (1, 0, 1),
        ),
        _ndjson(
            "ndjson_timestamp_without_zone_and_future",
            '{"timestamp": "2026-03-01T10:00:00", "service": "shop", "status_code": 200}\n'
            '{"timestamp": "2999-01-01T00:00:00+00:00", "service": "shop", "status_code": 200}\n',
            ("has no UTC offset", "is in the future"),
            (2, 0, 2),
        ),
        # --- Parquet ----------------------------------------------------------------------------------------
        Case(
            "parquet_truncated",
            ".parquet",
            _VALID_PARQUET[: len(_VALID_PARQUET) // 2],
            status="failed",
            reasons=("not a readable Parquet file",),
        ),
        Case(
            "parquet_footer_cut",
            ".parquet",
            _VALID_PARQUET[:-5],
            status="failed",
            reasons=("not a readable Parquet file",),
        ),
        Case(
            "parquet_binary_junk",
            ".pq",
            b"PAR1" + _BINARY_JUNK + b"PAR1",
            status="failed",
            reasons=("not a readable Parquet file",),
        ),
        Case(
            "parquet_csv_in_disguise",
            ".parquet",
            (EVENTS + f"{TS},shop,pay,200,,1\n").encode(),
            status="failed",
            reasons=("not a readable Parquet file",),
        ),
        _parquet(
            "parquet_timestamp_without_zone",
            pa.table(
                {
                    "timestamp": pa.array(
                        [datetime(2026, 3, 1, 10), datetime(2026, 3, 1, 11)], pa.timestamp("us")
                    ),
                    "service": ["shop", "shop"],
                    "status_code": pa.array([200, 500], pa.int16()),
                }
            ),
            ("has no UTC offset",),
            (2, 0, 2),
        ),
        _parquet(
            "parquet_timestamp_far_future",
            pa.table(
                {
                    "timestamp": pa.array([_utc(2200, 1, 1), _utc(2026, 3, 1)], pa.timestamp("us", tz="UTC")),
                    "service": ["shop", "shop"],
                    "status_code": pa.array([200, 200], pa.int32()),
                }
            ),
            ("timestamp 2200-01-01T00:00:00Z is in the future",),
            (2, 1, 1),
        ),
        _parquet(
            "parquet_timestamp_as_text_and_numbers",
            pa.table(
                {
                    "timestamp": ["yesterday", TS, "2026-03-01T10:00:00"],
                    "service": ["shop", "shop", "shop"],
                    "status_code": pa.array([200, 200, 200], pa.int64()),
                }
            ),
            ("timestamp 'yesterday'", "has no UTC offset"),
            (3, 1, 2),
        ),
        _parquet(
            "parquet_timestamp_as_date",
            pa.table(
                {
                    "timestamp": pa.array([datetime(2026, 3, 1).date()], pa.date32()),
                    "service": ["shop"],
                    "status_code": pa.array([200], pa.int64()),
                }
            ),
            ("timestamp '2026-03-01'",),
            (1, 0, 1),
        ),
        _parquet(
            "parquet_status_as_text",
            pa.table({"timestamp": _TS2, "service": ["shop", "shop"], "status_code": ["OK", "200"]}),
            ("status_code 'OK'",),
            (2, 1, 1),
        ),
        _parquet(
            "parquet_status_float_nan_inf",
            pa.table(
                {
                    "timestamp": pa.array([_utc(2026, 3, 1)] * 4, pa.timestamp("ms", tz="UTC")),
                    "service": ["shop"] * 4,
                    "status_code": pa.array([float("nan"), float("inf"), 200.0, 404.5], pa.float64()),
                }
            ),
            ("status_code 'NaN'", "status_code 'inf'", "status_code '404.5'"),
            (4, 1, 3),
        ),
        _parquet(
            "parquet_latency_nan_inf_negative",
            pa.table(
                {
                    "timestamp": pa.array([_utc(2026, 3, 1)] * 4, pa.timestamp("ns", tz="Europe/Paris")),
                    "service": ["shop"] * 4,
                    "status_code": pa.array([200] * 4, pa.int32()),
                    "latency_ms": pa.array([float("nan"), float("-inf"), -1.0, 3.0], pa.float32()),
                }
            ),
            ("is not a finite number",),
            (4, 1, 3),
        ),
        _parquet(
            "parquet_huge_integers",
            pa.table(
                {
                    "timestamp": _TS2,
                    "service": ["shop", "shop"],
                    "status_code": pa.array([2**63 - 1, 200], pa.int64()),
                    "latency_ms": pa.array([2**64 - 1, 2**64 - 1], pa.uint64()),
                }
            ),
            # 2**64 - 1 ms is a finite number but no plausible latency: above the 600,000 ms ceiling.
            ("status_code '9223372036854775807' is not an HTTP status", "is above the plausible maximum"),
            (2, 0, 2),
        ),
        _parquet(
            "parquet_decimal_latency",
            pa.table(
                {
                    "timestamp": _TS2,
                    "service": ["shop", "shop"],
                    "status_code": pa.array([200, 200], pa.int32()),
                    "latency_ms": pa.array([None, None], pa.decimal128(38, 2)).fill_null(0),
                }
            ),
            (),
            (2, 2, 0),
        ),
        _parquet(
            "parquet_status_as_list",
            pa.table({"timestamp": _TS2, "service": ["shop", "shop"], "status_code": [[200], [500, 501]]}),
            ("column 'status_code' has Parquet type",),
            (2, 0, 2),
        ),
        _parquet(
            "parquet_service_as_struct",
            pa.table(
                {
                    "timestamp": _TS2,
                    "service": [{"name": "shop"}, {"name": "auth"}],
                    "status_code": pa.array([200, 200], pa.int32()),
                }
            ),
            ("no text form to validate",),
            (2, 0, 2),
        ),
        _parquet(
            "parquet_service_as_binary",
            pa.table(
                {
                    "timestamp": _TS2,
                    "service": pa.array([b"shop", b"\xff\xfe"], pa.binary()),
                    "status_code": pa.array([200, 200], pa.int32()),
                }
            ),
            ("column 'service' has Parquet type",),
            (2, 0, 2),
        ),
        _parquet(
            "parquet_missing_service_column",
            pa.table({"timestamp": _TS2, "status_code": pa.array([200, 200], pa.int32())}),
            ("the file has no 'service' column",),
            (2, 0, 2),
        ),
        _parquet(
            "parquet_duplicate_column_by_case",
            pa.table(
                {
                    "timestamp": _TS2,
                    "service": ["shop", "shop"],
                    "SERVICE": ["auth", "auth"],
                    "status_code": pa.array([200, 200], pa.int32()),
                }
            ),
            ("duplicate column 'service'",),
            (2, 0, 2),
        ),
        Case(
            "parquet_nul_in_column_name",
            ".parquet",
            _parquet_bytes(
                pa.table(
                    {
                        "timestamp": _TS2,
                        "service": ["shop", "shop"],
                        "status_code": [200, 200],
                        "x\x00y": [1, 2],
                    }
                )
            ),
            counts=(2, 0, 2),
            status="failed",
            reasons=(NUL_REASON,),
        ),
        _parquet(
            "parquet_zero_rows",
            _GOOD_EVENTS.slice(0, 0),
            (),
            (0, 0, 0),
        ),
        _parquet(
            "parquet_counts_negative_and_nulls",
            pa.table(
                {
                    "timestamp": pa.array([_utc(2026, 3, 1)] * 3, pa.timestamp("s", tz="UTC")),
                    "service": ["shop", None, "shop"],
                    "total": pa.array([-1, 10, None], pa.int64()),
                    "good": pa.array([0, 5, 5], pa.int64()),
                }
            ),
            ("total '-1' is not a whole number", "service is missing", "total is missing"),
            (3, 0, 3),
        ),
        _parquet(
            "parquet_ratios_nan_out_of_range",
            pa.table(
                {
                    "timestamp": pa.array([_utc(2026, 3, 1)] * 3, pa.timestamp("s", tz="UTC")),
                    "service": ["shop"] * 3,
                    "ratio": [float("nan"), 1.0000001, 0.5],
                }
            ),
            ("ratio 'NaN'", "is not a number between 0 and 1"),
            (3, 1, 2),
        ),
        # --- mixed files, counts derived by hand --------------------------------------------------------
        _csv(
            # Lines 2-7 are records: 2 valid; 3 no zone; 4 NaN latency; 5 valid (epoch ms, success only);
            # 6 ragged; 7 valid (+05:30, quoted comma). Loaded 3, quarantined 3.
            "csv_mixed_events",
            EVENTS
            + f"{TS},shop,pay,200,,12.5\n"
            + "2026-03-01T10:00:01,shop,pay,200,,1\n"
            + f"{TS},shop,pay,500,,NaN\n"
            + "1772359200000,shop,pay,,false,\n"
            + f"{TS},shop,pay\n"
            + '2026-03-01T15:30:00+05:30,shop,"pay, refund",201,true,0\n',
            ("has no UTC offset", "latency_ms 'NaN'", "expected 6 fields, found 3"),
            (6, 3, 3),
        ),
        _csv(
            # 4 records: good-only valid, bad-only valid, both consistent valid, huge total invalid.
            "csv_mixed_counts",
            COUNTS
            + f"{TS},shop,pay,10,9,\n"
            + f"{TS},shop,pay,10,,1\n"
            + f"{TS},shop,pay,10,9,1\n"
            + f"{TS},shop,pay,{'1' * 25},1,\n",
            ("is not a whole number",),
            (4, 3, 1),
        ),
        _ndjson(
            # Lines 1, 3 and 5 are records (2 and 4 blank): 1 valid, 3 duplicate key, 5 infinite latency.
            "ndjson_mixed_events",
            '{"timestamp": "' + TS + '", "service": "shop", "success": "yes"}\n\n'
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": 200, "status_code": 500}\n\n'
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": 200, "latency_ms": -Infinity}\n',
            ("key 'status_code' is given more than once", "latency_ms '-inf'"),
            (3, 1, 2),
        ),
        # --- Event ids (ids are unique to each case: the whole corpus also loads into one warehouse) ------
        _csv(
            # ids [dup-1, dup-1, "", " "]: line 3 repeats line 2; blank ids are no ids and never repeat.
            "csv_event_id_repeated",
            EVENTS_WITH_ID + f"{TS},shop,pay,200,,1,dup-1\n{TS},shop,pay,200,,1,dup-1\n"
            f"{TS},shop,pay,200,,1,\n{TS},shop,pay,200,,1, \n",
            ("duplicate event_id 'dup-1' for service 'shop' (first at row 2 of this file)",),
            (4, 3, 1),
        ),
        _csv(
            "csv_event_id_too_long",
            EVENTS_WITH_ID + f"{TS},shop,pay,200,,1,{'L' * 201}\n",
            ("event_id is longer than 200 characters",),
            (1, 0, 1),
        ),
        _ndjson(
            "ndjson_event_id_nested",
            '{"timestamp": "' + TS + '", "service": "shop", "status_code": 200, "event_id": ["n-1"]}\n',
            ("field 'event_id' is a JSON list, expected a single value",),
            (1, 0, 1),
        ),
        _parquet(
            # A binary id has no faithful text form to compare: the whole file is quarantined, not loaded
            # with its ids silently ignored.
            "parquet_event_id_binary",
            pa.table({**_GOOD_EVENTS.to_pydict(), "event_id": pa.array([b"\x01", b"\x02"], pa.binary())}),
            ("column 'event_id' has Parquet type Binary",),
            (2, 0, 2),
        ),
    ]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


CORPUS = _corpus()


def _file_name(case: Case) -> str:
    return f"{case.name}{case.suffix}"


def _check_result(con: duckdb.DuckDBPyConnection, case: Case, result: FileResult) -> None:
    """The per-file guarantees: full accounting and a reason for every quarantined row, or a clear failure."""
    assert result.status == case.status, (case.name, result)
    recorded = con.execute(
        "SELECT status, rows_read, rows_loaded, rows_quarantined, error FROM ingested_files WHERE path = ?",
        [result.path],
    ).fetchall()
    # A failure must be recorded with its reason (an exception caught by ingest_paths is not recorded).
    assert len(recorded) == 1, (case.name, result, recorded)
    status, read, loaded, quarantined, error = recorded[0]
    if case.status == "failed":
        assert status == "failed" and error and result.message, (case.name, result)
        for expected in case.reasons:
            assert expected in error and expected in result.message, (case.name, expected, error)
        return
    assert (read, loaded, quarantined) == (result.rows_read, result.rows_loaded, result.rows_quarantined)
    assert result.rows_loaded + result.rows_quarantined == result.rows_read, (case.name, result)
    if case.counts is not None:
        assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == case.counts, (
            case.name,
            result,
        )
    reasons = [
        r
        for (r,) in con.execute(
            "SELECT reason FROM quarantine WHERE file_id = ? ORDER BY source_row", [result.file_id]
        ).fetchall()
    ]
    assert len(reasons) == result.rows_quarantined, (case.name, reasons)
    assert all(r and r.strip() for r in reasons), (case.name, reasons)
    for expected in case.reasons:
        assert any(expected in r for r in reasons), (case.name, expected, reasons)
    stored = con.execute(
        """
        SELECT (SELECT count(*) FROM raw_events WHERE file_id = $id)
             + (SELECT count(*) FROM raw_counts WHERE file_id = $id)
             + (SELECT count(*) FROM raw_ratios WHERE file_id = $id)
        """,
        {"id": result.file_id},
    ).fetchall()[0][0]
    assert stored == result.rows_loaded, (case.name, stored, result)


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 50
    assert {c.suffix for c in CORPUS} >= {".csv", ".ndjson", ".parquet"}


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(reason=case.bug, strict=True)] if case.bug else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CORPUS])
def test_malformed_file_is_quarantined_or_fails_clearly(
    case: Case, tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    path = tmp_path / "landing" / _file_name(case)
    path.parent.mkdir(parents=True)
    path.write_bytes(case.content)
    report = ingest_paths(warehouse, [path.parent], now=NOW)
    (result,) = report.files
    _check_result(warehouse, case, result)
    # Ingesting the same bytes again changes nothing.
    again = ingest_paths(warehouse, [path.parent], now=NOW)
    assert [f.status for f in again.files] == ["skipped"], again


def test_whole_corpus_in_one_landing_folder(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    for case in CORPUS:
        (landing / _file_name(case)).write_bytes(case.content)
    con = connect(tmp_path / "warehouse.duckdb")
    try:
        report = ingest_paths(con, [landing], now=NOW)
        assert len(report.files) == len(CORPUS)
        by_name = {Path(f.path).name: f for f in report.files}
        first_with_bytes: dict[bytes, str] = {}
        for case in sorted(CORPUS, key=_file_name):  # the order ingest_paths uses
            result = by_name[_file_name(case)]
            twin = first_with_bytes.setdefault(case.content, case.name)
            if twin != case.name and result.status == "skipped":
                continue  # the same bytes as an earlier file (e.g. two empty files): never counted twice
            _check_result(con, case, result)
        # Accounting over the whole batch.
        assert report.rows_read == report.rows_loaded + report.rows_quarantined
        assert report.rows_read == sum(
            c.counts[0] if c.counts is not None and c.status != "failed" else by_name[_file_name(c)].rows_read
            for c in CORPUS
        )
        totals = con.execute(
            """
            SELECT sum(rows_read), sum(rows_loaded), sum(rows_quarantined)
            FROM ingested_files WHERE status = 'loaded'
            """
        ).fetchall()[0]
        stored = con.execute(
            "SELECT (SELECT count(*) FROM raw_events) + (SELECT count(*) FROM raw_counts)"
            " + (SELECT count(*) FROM raw_ratios), (SELECT count(*) FROM quarantine)"
        ).fetchall()[0]
        assert totals == (report.rows_read, report.rows_loaded, report.rows_quarantined)
        assert stored == (report.rows_loaded, report.rows_quarantined)
        assert report.count("failed") == sum(1 for c in CORPUS if c.status == "failed")
    finally:
        con.close()

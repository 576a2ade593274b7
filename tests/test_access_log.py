"""The access-log file source: each format parsed as worked out by hand, malformed lines quarantined with
their line numbers, and real ingestion into a temporary warehouse (UTC conversion, accounting, re-runs)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pipelines import sources
from pipelines.slo import ingest
from pipelines.sources.access_log import INVALID_REQUEST, SOURCE, service_of

NOW = datetime(2026, 3, 2)
SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "access-logs" / "hackers-access.log"
HOST = '10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "'
AGENT = '"http://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"'


@pytest.fixture
def with_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugin as the entry point would register it (the lead adds that to pyproject.toml)."""
    monkeypatch.setattr(ingest, "_PLUGINS", {".log": SOURCE})
    monkeypatch.setattr(ingest, "FORMATS", {**ingest.BUILT_IN_FORMATS, ".log": "plugin:access-log"})


def read(text: str | bytes, name: str = "shop.access.log") -> dict[str, list[str | None]]:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return SOURCE.read(raw, Path(name)).columns


def test_source_satisfies_the_plugin_interface() -> None:
    assert isinstance(SOURCE, sources.FileSource)
    assert SOURCE.name == "access-log"
    assert SOURCE.suffixes == (".log",)


@pytest.mark.parametrize(
    ("line", "timestamp", "operation", "status", "latency"),
    [
        # Apache common (the example of the Apache docs); "-" bytes.
        (
            '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 -',
            "2000-10-10T13:55:36-07:00",
            "GET /apache_pb.gif",
            "200",
            None,
        ),
        # Combined, +0100; numeric id and query string.
        (
            '1.2.3.4 - - [25/Oct/2015:04:11:25 +0100] "GET /orders/12345?page=2 HTTP/1.1" 404 512 ' + AGENT,
            "2015-10-25T04:11:25+01:00",
            "GET /orders/:id",
            "404",
            None,
        ),
        # Combined + "$request_time $upstream_response_time": request_time wins; UUID segment.
        (
            HOST
            + 'POST /api/v1/users/550e8400-e29b-41d4-a716-446655440000/cart HTTP/2.0" 503 12 '
            + AGENT
            + " 0.250 0.248",
            "2000-10-10T13:55:36-07:00",
            "POST /api/v1/users/:id/cart",
            "503",
            "250.0",
        ),
        # Several upstreams; request_time of 0.105 s.
        (
            HOST + 'GET / HTTP/1.1" 200 5 ' + AGENT + " 0.105 0.050, 0.040 : 0.010",
            None,
            "GET /",
            "200",
            "105.0",
        ),
        # An extra quoted field ($http_x_forwarded_for) before the times; no upstream ("-").
        (HOST + 'GET /a HTTP/1.1" 200 5 ' + AGENT + ' "203.0.113.9" 0.007 -', None, "GET /a", "200", "7.0"),
        # rt=/urt= with the nginx docs' missing space after the user agent.
        (
            HOST + 'GET /a HTTP/1.1" 200 5 ' + AGENT + 'rt=1.5 uct="0.001" uht="0.002" urt="0.003"',
            None,
            "GET /a",
            "200",
            "1500.0",
        ),
        # No request_time: the first upstream time, and a long hex segment.
        (
            HOST + 'GET /blobs/0123456789abcdef0123 HTTP/1.1" 200 5 ' + AGENT + ' urt="0.012, 0.020"',
            None,
            "GET /blobs/:id",
            "200",
            "12.0",
        ),
        # rt= with every upstream time missing: still a latency from rt.
        (HOST + 'GET /a HTTP/1.1" 499 0 ' + AGENT + ' rt=0.000 urt="-"', None, "GET /a", "499", "0.0"),
        # request_time missing in the positional form: the upstream time.
        (HOST + 'GET /a HTTP/1.1" 200 5 ' + AGENT + " - 0.031", None, "GET /a", "200", "31.0"),
        # Common + times (no referer/agent).
        (HOST + 'GET /a/7/b/8 HTTP/1.1" 201 5 0.120 0.110', None, "GET /a/:id/b/:id", "201", "120.0"),
        # Proxy request with an absolute URI; a word that looks like hex but is short stays.
        (HOST + 'GET http://example.com/cafe/42#x HTTP/1.1" 200 5', None, "GET /cafe/:id", "200", None),
        (HOST + 'OPTIONS * HTTP/1.1" 200 0', None, "OPTIONS *", "200", None),
        # A TLS handshake sent to the plain port, escaped by nginx: answered 400, so counted.
        (HOST + r'\x16\x03\x01\x02\x00\x01\x00" 400 157 "-" "-"', None, INVALID_REQUEST, "400", None),
        (HOST + '-" 408 0 "-" "-"', None, INVALID_REQUEST, "408", None),
    ],
)
def test_formats_are_parsed_per_line(
    line: str, timestamp: str | None, operation: str, status: str, latency: str | None
) -> None:
    columns = read(line + "\r\n")
    assert columns["timestamp"] == [timestamp or "2000-10-10T13:55:36-07:00"]
    assert columns["service"] == ["shop"]
    assert columns["operation"] == [operation]
    assert columns["status_code"] == [status]
    assert columns["success"] == [None]
    assert columns["latency_ms"] == [latency]


def test_service_is_the_file_name_up_to_the_first_dot() -> None:
    assert service_of(Path("/landing/checkout.access.log")) == "checkout"
    assert service_of(Path("checkout.2026-10-01.log")) == "checkout"
    assert service_of(Path("payments-api.log")) == "payments-api"
    assert service_of(Path("x/.log")) is None
    line = HOST + 'GET / HTTP/1.1" 200 5\n'
    records = SOURCE.read(line.encode(), Path(".access.log"))
    assert records.file_problem == "the service cannot be told from the file name '.access.log'"


MALFORMED = [
    (HOST + 'GET /ok HTTP/1.1" 200 5 ' + AGENT + " 0.010 0.009", None),  # 1
    ("this is not a log line", "not an access log line (common, combined or combined with request times)"),
    ("", None),  # 3: blank, not a record
    (
        '1.2.3.4 - - [2015-10-25 04:11:25] "GET / HTTP/1.1" 200 5',
        "timestamp [2015-10-25 04:11:25] is not in the form [25/Oct/2015:04:11:25 +0100]",
    ),
    (
        '1.2.3.4 - - [31/Feb/2015:04:11:25 +0100] "GET / HTTP/1.1" 200 5',
        "timestamp [31/Feb/2015:04:11:25 +0100] is not a valid date, time and UTC offset",
    ),
    (
        '1.2.3.4 - - [01/Foo/2015:04:11:25 +0100] "GET / HTTP/1.1" 200 5',
        "timestamp [01/Foo/2015:04:11:25 +0100] is not a valid date, time and UTC offset",
    ),
    (HOST + 'GET / HTTP/1.1" OK 5', "status 'OK' is not a 3-digit HTTP status"),
    (HOST + 'GET / HTTP/1.1" 200 many', "response size 'many' is not a number of bytes or '-'"),
    (
        HOST + 'GET / HTTP/1.1" 200 5 ' + AGENT + " fast",
        "unrecognised fields after the request: 'fast' (expected '$request_time "
        "$upstream_response_time', 'rt=... urt=...' or quoted fields)",
    ),
    (HOST + 'GET / HTTP/1.1" 200 5 ' + AGENT + " rt=soon", "rt='soon' is not a number of seconds"),
    # 11: a status the warehouse refuses (not 100-599).
    (HOST + 'GET / HTTP/1.1" 999 5', "status_code '999' is not an HTTP status (an integer 100-599)"),
    (  # 12: in the future relative to NOW: refused by the warehouse.
        '1.2.3.4 - - [01/Jan/2030:00:00:00 +0000] "GET / HTTP/1.1" 200 5',
        "timestamp 2030-01-01T00:00:00Z is in the future",
    ),
    ("   ", None),  # 13: whitespace only, not a record
    ('1.2.3.4 - - [25/Oct/2015:04:11:25 +0100] "GET /last HTTP/1.1" 500 5 ' + AGENT + " 2 -", None),
]
BINARY = b"\x00\xff\xfe\x13 binary junk"
BAD_UTF8 = (HOST + 'GET /caf\xe9 HTTP/1.1" 200 5').encode("latin-1")


def malformed_file(tmp_path: Path) -> Path:
    lines = [line.encode() for line, _ in MALFORMED] + [BINARY, BAD_UTF8]
    path = tmp_path / "landing" / "shop.access.log"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_undecodable_bytes_do_not_crash_and_are_kept_readable(tmp_path: Path) -> None:
    path = malformed_file(tmp_path)
    records = SOURCE.read(path.read_bytes(), path)
    assert records.row_numbers[-2:] == [15, 16]
    assert records.problems[-2:] == ["not valid UTF-8", "not valid UTF-8"]
    assert records.raw[-2] == "\x00\ufffd\ufffd\x13 binary junk"
    assert records.raw[-1] == HOST + 'GET /caf\ufffd HTTP/1.1" 200 5'


def test_malformed_lines_are_quarantined_with_line_numbers(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, with_plugin: None
) -> None:
    path = malformed_file(tmp_path)
    result = ingest.ingest_file(warehouse, path, now=NOW)
    records = len([line for line, _ in MALFORMED if line.strip()]) + 2  # blank lines are not records
    assert (result.status, result.schema_kind, result.rows_read) == ("loaded", "events", records)
    assert result.rows_loaded + result.rows_quarantined == result.rows_read
    assert result.rows_loaded == 2
    quarantined = warehouse.execute(
        "SELECT source_row, reason, record FROM quarantine ORDER BY source_row"
    ).fetchall()
    expected = [(n, reason) for n, (_, reason) in enumerate(MALFORMED, start=1) if reason]
    expected += [(15, "not valid UTF-8"), (16, "not valid UTF-8")]
    assert [(row, reason) for row, reason, _ in quarantined] == expected
    by_row = {row: record for row, _, record in quarantined}
    assert by_row[2] == "this is not a log line"  # the line itself, not a reconstruction
    assert by_row[16] == HOST + 'GET /caf\ufffd HTTP/1.1" 200 5'
    files = warehouse.execute(
        "SELECT rows_read, rows_loaded, rows_quarantined FROM ingested_files"
    ).fetchall()
    assert files == [(records, 2, records - 2)]


def test_events_land_in_utc_and_reingestion_is_a_no_op(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, with_plugin: None
) -> None:
    path = tmp_path / "checkout.2015-10-25.log"
    path.write_text(
        '1.2.3.4 - - [25/Oct/2015:04:11:25 +0100] "GET /cart/991?x=1 HTTP/1.1" 200 5 ' + AGENT + " 0.042 -\n"
        '1.2.3.4 - - [24/Oct/2015:20:30:00 -0700] "POST /pay HTTP/1.1" 502 0 '
        + AGENT
        + ' rt=1.25 urt="1.2"\n'
        '1.2.3.4 - - [24/Oct/2015:23:59:59 +0000] "GET /cart HTTP/1.1" 304 0\n'
    )
    first = ingest.ingest_file(warehouse, path, now=NOW)
    assert (first.status, first.rows_read, first.rows_loaded, first.rows_quarantined) == ("loaded", 3, 3, 0)
    rows = warehouse.execute(
        "SELECT ts, service, operation, status_code, success, latency_ms, source_row FROM raw_events "
        "ORDER BY source_row"
    ).fetchall()
    assert rows == [
        (datetime(2015, 10, 25, 3, 11, 25), "checkout", "GET /cart/:id", 200, None, 42.0, 1),  # 04:11 +01
        (datetime(2015, 10, 25, 3, 30, 0), "checkout", "POST /pay", 502, None, 1250.0, 2),  # 20:30 -07
        (datetime(2015, 10, 24, 23, 59, 59), "checkout", "GET /cart", 304, None, None, 3),
    ]
    again = ingest.ingest_file(warehouse, path, now=NOW)
    assert (again.status, again.message) == ("skipped", "already loaded")
    assert warehouse.execute("SELECT count(*) FROM raw_events").fetchone() == (3,)
    assert warehouse.execute("SELECT count(*) FROM ingested_files").fetchone() == (1,)


def test_empty_log_loads_nothing(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, with_plugin: None
) -> None:
    path = tmp_path / "quiet.log"
    path.write_bytes(b"\n\n")
    result = ingest.ingest_file(warehouse, path, now=NOW)
    assert (result.status, result.rows_read, result.rows_loaded) == ("loaded", 0, 0)


@pytest.mark.skipif(not SAMPLE.exists(), reason=f"the shared access-log sample is not at {SAMPLE}")
def test_real_combined_sample_loads_completely(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, with_plugin: None
) -> None:
    path = tmp_path / "hackers.access.log"
    path.write_bytes(SAMPLE.read_bytes())
    result = ingest.ingest_file(warehouse, path, now=NOW)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3456, 3456, 0)
    # First line [25/Oct/2015:04:11:25 +0100], last line [30/Oct/2015:15:59:39 +0100]: one hour back.
    first, last = warehouse.execute(
        "SELECT min(ts), max(ts) FROM raw_events WHERE source_row IN (1, 3456)"
    ).fetchone() or (None, None)
    assert first == datetime(2015, 10, 25, 3, 11, 25)
    assert last == datetime(2015, 10, 30, 14, 59, 39)
    assert warehouse.execute("SELECT min(ts), max(ts) FROM raw_events").fetchone() == (first, last)
    services, operations, statuses = warehouse.execute(
        "SELECT count(DISTINCT service), count(DISTINCT operation), count(DISTINCT status_code) "
        "FROM raw_events"
    ).fetchone() or (0, 0, 0)
    assert (services, statuses) == (1, 4)  # hackers; 200, 302, 403, 404
    assert operations < 50  # templates keep the operations few

"""Property-based tests (hypothesis) over ingestion and SLO parsing.

Ingestion never raises, accounts for every row, loads exactly the valid rows (an independent oracle
decides validity for a restricted generator) and re-ingesting the same bytes is a no-op. SLO parsing
returns SLOs or problems for any document, and valid generated SLOs round-trip through the export.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.slo.ingest import ingest_paths
from pipelines.slo.spec import SpecError, build_catalog, export_yaml, parse_documents
from pipelines.warehouse import connect

NOW = datetime(2026, 3, 2, tzinfo=UTC)
SKEW = 300
PROFILE = settings(
    deadline=None,
    max_examples=25,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Each generated cell is (text, valid?): the oracle is the generator's own label, not a parser.
Cell = tuple[str, bool]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_PAST = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2026, 3, 1, 23, 59)).map(
    lambda d: (_iso(d), True)
)
_FUTURE = st.datetimes(min_value=datetime(2026, 3, 2, 0, 5, 1), max_value=datetime(2200, 1, 1)).map(
    lambda d: (_iso(d), False)
)
_NO_ZONE = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2026, 3, 1)).map(
    lambda d: (d.strftime("%Y-%m-%dT%H:%M:%S"), False)
)
TIMESTAMPS: st.SearchStrategy[Cell] = st.one_of(
    _PAST,
    _FUTURE,
    _NO_ZONE,
    st.sampled_from(["", "yesterday", "NaN", "inf", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z"]).map(
        lambda t: (t, False)
    ),
)
SERVICES: st.SearchStrategy[Cell] = st.one_of(
    st.text(alphabet="abcxyzé-_,\"' ", min_size=0, max_size=12).map(lambda s: (s, bool(s.strip(" ")))),
    st.just(("s" * 201, False)),
)
STATUSES: st.SearchStrategy[Cell] = st.one_of(
    st.integers(100, 599).map(lambda n: (str(n), True)),
    st.integers(100, 599).map(lambda n: (f"{n}.0", True)),
    st.integers(-(10**30), 99).map(lambda n: (str(n), False)),
    st.integers(600, 10**30).map(lambda n: (str(n), False)),
    st.sampled_from(["", "abc", "NaN", "inf", "-inf", "200.5", "1e308", "2xx"]).map(lambda t: (t, False)),
)
# Valid up to the default plausibility ceiling (600,000 ms, [quality] max_latency_ms), invalid above it.
LATENCIES: st.SearchStrategy[Cell] = st.one_of(
    st.floats(min_value=0, max_value=600_000, allow_nan=False, allow_infinity=False).map(
        lambda x: (repr(x), True)
    ),
    st.integers(0, 600_000).map(lambda n: (str(n), True)),
    st.floats(min_value=600_000.001, max_value=1e300, allow_nan=False, allow_infinity=False).map(
        lambda x: (repr(x), False)
    ),
    st.integers(600_001, 10**12).map(lambda n: (str(n), False)),
    st.just(("", True)),  # latency is optional
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False).map(lambda x: (repr(x), False)),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "9" * 400, "12ms", "abc"]).map(
        lambda t: (t, False)
    ),
)
ROWS = st.lists(st.tuples(TIMESTAMPS, SERVICES, STATUSES, LATENCIES), min_size=0, max_size=30)


def _csv_bytes(rows: list[tuple[Cell, Cell, Cell, Cell]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["timestamp", "service", "status_code", "latency_ms"])
    for row in rows:
        writer.writerow([text for text, _ in row])
    return buffer.getvalue().encode("utf-8")


@contextmanager
def _fresh() -> Iterator[tuple[Path, duckdb.DuckDBPyConnection]]:
    # A fresh warehouse per example: function-scoped fixtures are not reset between hypothesis examples.
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        con = connect(root / "warehouse.duckdb")
        try:
            (root / "landing").mkdir()
            yield root / "landing", con
        finally:
            con.close()


def _table_counts(con: duckdb.DuckDBPyConnection) -> tuple[int, ...]:
    return tuple(
        con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        for table in ("raw_events", "quarantine", "ingested_files")
    )


@PROFILE
@given(rows=ROWS)
def test_generated_event_rows_load_exactly_the_valid_ones(rows: list[tuple[Cell, Cell, Cell, Cell]]) -> None:
    with _fresh() as (landing, con):
        (landing / "events.csv").write_bytes(_csv_bytes(rows))
        report = ingest_paths(con, [landing], now=NOW, max_clock_skew_seconds=SKEW)
        (result,) = report.files
        assert result.status == "loaded", result
        assert result.rows_read == len(rows)
        assert result.rows_loaded + result.rows_quarantined == result.rows_read
        valid_lines = {i + 2 for i, row in enumerate(rows) if all(ok for _, ok in row)}
        # Cells never contain newlines, so record i is on line i + 2 (the header is line 1).
        loaded = {r for (r,) in con.execute("SELECT source_row FROM raw_events").fetchall()}
        quarantined = dict(con.execute("SELECT source_row, reason FROM quarantine").fetchall())
        assert loaded == valid_lines
        assert set(quarantined) == set(range(2, len(rows) + 2)) - valid_lines
        assert all(reason.strip() for reason in quarantined.values())


@PROFILE
@given(rows=ROWS, copy=st.booleans())
def test_reingesting_the_same_bytes_is_a_no_op(rows: list[tuple[Cell, Cell, Cell, Cell]], copy: bool) -> None:
    with _fresh() as (landing, con):
        content = _csv_bytes(rows)
        (landing / "a.csv").write_bytes(content)
        first = ingest_paths(con, [landing], now=NOW)
        before = _table_counts(con)
        if copy:  # the same bytes under another name are not counted twice either
            (landing / "b.csv").write_bytes(content)
        second = ingest_paths(con, [landing], now=NOW)
        assert [f.status for f in first.files] == ["loaded"]
        assert {f.status for f in second.files} == {"skipped"}
        assert second.rows_read == second.rows_loaded == second.rows_quarantined == 0
        after = _table_counts(con)
        # Only a skipped copy may add nothing at all; the warehouse content is unchanged.
        assert after == before


# --- SLO documents ---------------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "name",
        "displayName",
        "spec",
        "service",
        "indicator",
        "indicatorRef",
        "ratioMetric",
        "good",
        "bad",
        "total",
        "metricSource",
        "type",
        "timeWindow",
        "duration",
        "isRolling",
        "calendar",
        "budgetingMethod",
        "objectives",
        "target",
        "targetPercent",
        "op",
        "value",
        "thresholdMetric",
        "timeSliceTarget",
        "timeSliceWindow",
        "alertPolicies",
        "annotations",
        "status_code",
        "lt",
        "counter",
        "raw",
        "rawType",
        "compositeWeight",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "openslo/v1",
            "SLO",
            "SLI",
            "Service",
            "AlertPolicy",
            "DataSource",
            "sloscope",
            "28d",
            "1M",
            "0.999",
            "Occurrences",
            "Timeslices",
            "RatioTimeslices",
            "lt",
            "gte",
            "",
            "-1d",
            "99999999999d",
        ]
    ),
    st.text(max_size=8),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(_KEYS, st.text(max_size=5)), children, max_size=4),
    ),
    max_leaves=25,
)
_DOCUMENTS = st.dictionaries(_KEYS, _VALUES, max_size=8).map(
    lambda d: {"apiVersion": "openslo/v1", **d} if "kind" in d else d
)

_BASE_SLO: dict[str, Any] = {
    "apiVersion": "openslo/v1",
    "kind": "SLO",
    "metadata": {"name": "checkout-availability", "displayName": "Checkout"},
    "spec": {
        "service": "checkout",
        "indicator": {
            "metadata": {"name": "checkout-good"},
            "spec": {
                "ratioMetric": {
                    "counter": True,
                    "good": {
                        "metricSource": {
                            "type": "sloscope",
                            "spec": {"service": "checkout", "status_code": {"lt": 500}},
                        }
                    },
                    "total": {"metricSource": {"type": "sloscope", "spec": {"service": "checkout"}}},
                }
            },
        },
        "timeWindow": [{"duration": "28d", "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [{"displayName": "three nines", "target": 0.999}],
    },
}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a nested document (mappings and lists)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


_BASE_PATHS = _paths(_BASE_SLO)


def _mutated(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = yaml.safe_load(yaml.safe_dump(_BASE_SLO))  # a deep copy
    node = document
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return document


def _parse_never_raises(text: str) -> None:
    try:
        slos, problems = parse_documents(text, "generated.yaml")
    except SpecError as exc:  # the documented error type; parse_documents itself promises problems instead
        assert exc.problems
        return
    assert isinstance(problems, list) and all(isinstance(p, str) and p for p in problems)
    assert problems or isinstance(slos, list)


@PROFILE
@given(documents=st.lists(_DOCUMENTS, min_size=1, max_size=3))
def test_random_documents_give_slos_or_problems(documents: list[dict[str, Any]]) -> None:
    _parse_never_raises(yaml.safe_dump_all(documents, allow_unicode=True))


@settings(PROFILE, max_examples=60)
@given(path=st.sampled_from(_BASE_PATHS), value=_VALUES)
def test_a_valid_slo_with_one_field_replaced_gives_slos_or_problems(
    path: tuple[Any, ...], value: Any
) -> None:
    _parse_never_raises(yaml.safe_dump(_mutated(path, value), allow_unicode=True))


@PROFILE
@given(
    text=st.text(
        alphabet=st.sampled_from([*list("kind: SLO\n-[]{}&*!'\"#%@`|>?,0.9d"), "\t", "é"]), max_size=60
    )
)
def test_arbitrary_text_gives_slos_or_problems(text: str) -> None:
    _parse_never_raises(text)


@pytest.mark.parametrize("text", ["kind: []\n", "kind: {a: 1}\n"])
def test_unhashable_kind_is_a_problem(text: str) -> None:
    slos, problems = parse_documents(text, "kind.yaml")
    assert slos == [] and problems


_NAMES = st.tuples(
    st.sampled_from("abcxyz"), st.text(alphabet="abcz0129-", max_size=12), st.sampled_from("az09")
).map("".join)


@PROFILE
@given(
    name=_NAMES,
    service=_NAMES,
    target=st.decimals(min_value="0.5", max_value="0.99999", places=5),
    days=st.integers(1, 90),
    method=st.sampled_from(["Occurrences", "Timeslices"]),
    bad_from=st.integers(400, 599),
)
def test_valid_generated_slos_round_trip_through_export(
    name: str, service: str, target: Any, days: int, method: str, bad_from: int
) -> None:
    document = _mutated(("metadata", "name"), name)
    spec = document["spec"]
    spec["service"] = service
    spec["timeWindow"] = [{"duration": f"{days}d", "isRolling": True}]
    spec["budgetingMethod"] = method
    objective: dict[str, Any] = {"displayName": "objective", "target": float(target)}
    if method == "Timeslices":
        objective["timeSliceTarget"] = 0.95
        objective["timeSliceWindow"] = "1m"
    spec["objectives"] = [objective]
    ratio = spec["indicator"]["spec"]["ratioMetric"]
    ratio["good"]["metricSource"]["spec"] = {"service": service, "status_code": {"lt": bad_from}}
    ratio["total"]["metricSource"]["spec"] = {"service": service}
    catalog, problems = build_catalog([(yaml.safe_dump(document), "generated.yaml")])
    assert problems == []
    exported = export_yaml(catalog)
    again, problems_again = build_catalog([(exported, "generated.yaml")])
    assert problems_again == []
    assert again.slos == catalog.slos
    assert export_yaml(again) == exported

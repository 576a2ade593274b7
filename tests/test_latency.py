"""Percentiles over arbitrary windows from the histogram tables, against an exact count from raw events."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from pipelines.slo.aggregate import refresh_aggregates
from pipelines.slo.ingest import ingest_file
from pipelines.slo.latency import grain_spans, latency_percentiles
from tests.conftest import write

T0 = datetime(2026, 3, 1)


def test_grain_spans_tile_the_window_exactly() -> None:
    start, end = datetime(2026, 3, 1, 22, 17), datetime(2026, 3, 4, 1, 43)
    spans = grain_spans(start, end)
    # 22:17-23:00 minutes, 23:00-00:00 one hour, Mar 2-3 two days, 00:00-01:00 an hour, 01:00-01:43 minutes.
    assert spans == [
        ("minute", start, datetime(2026, 3, 1, 23)),
        ("hour", datetime(2026, 3, 1, 23), datetime(2026, 3, 2)),
        ("day", datetime(2026, 3, 2), datetime(2026, 3, 4)),
        ("hour", datetime(2026, 3, 4), datetime(2026, 3, 4, 1)),
        ("minute", datetime(2026, 3, 4, 1), end),
    ]
    assert grain_spans(datetime(2026, 3, 1, 10, 5), datetime(2026, 3, 1, 10, 50)) == [
        ("minute", datetime(2026, 3, 1, 10, 5), datetime(2026, 3, 1, 10, 50))
    ]
    assert grain_spans(T0, T0) == []


@pytest.fixture
def latencies(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> list[tuple[datetime, str, float]]:
    rng = np.random.default_rng(5)
    rows = []
    for offset, op in zip(rng.integers(0, 3 * 86400, 20_000), rng.choice(["a", "b"], 20_000), strict=True):
        rows.append((T0 + timedelta(seconds=int(offset)), str(op), round(float(rng.lognormal(5.0, 0.9)), 3)))
    text = "timestamp,service,operation,status_code,latency_ms\n" + "".join(
        f"{ts:%Y-%m-%dT%H:%M:%S}Z,svc,{op},200,{ms}\n" for ts, op, ms in rows
    )
    ingest_file(warehouse, write(tmp_path / "e.csv", text), now=datetime(2026, 4, 1))
    refresh_aggregates(warehouse, {})
    return rows


@pytest.mark.parametrize(
    ("start", "end", "operations"),
    [
        (datetime(2026, 3, 1, 22, 17), datetime(2026, 3, 3, 1, 43), None),
        (datetime(2026, 3, 2, 5, 0), datetime(2026, 3, 2, 6, 0), ["a"]),
        (T0, datetime(2026, 3, 4), ["a", "b"]),
    ],
)
def test_percentiles_within_one_percent_of_exact(
    warehouse: duckdb.DuckDBPyConnection,
    latencies: list[tuple[datetime, str, float]],
    start: datetime,
    end: datetime,
    operations: list[str] | None,
) -> None:
    inside = np.sort(
        [ms for ts, op, ms in latencies if start <= ts < end and (operations is None or op in operations)]
    )
    result = latency_percentiles(warehouse, ["svc"], start, end, (0.5, 0.9, 0.99), operations=operations)
    for q, value in result.items():
        exact = inside[math.ceil(q * len(inside)) - 1]  # nearest rank, from the raw values
        assert value == pytest.approx(exact, rel=0.01)


def test_empty_window_has_no_percentile(warehouse: duckdb.DuckDBPyConnection, latencies: list) -> None:
    assert latency_percentiles(warehouse, ["svc"], datetime(2027, 1, 1), datetime(2027, 1, 2)) == {
        0.5: None,
        0.95: None,
        0.99: None,
    }

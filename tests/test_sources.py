"""The source plugin point: registration through entry points, and a file source's records going through
the one ingestion path (validated, loaded, or quarantined with their line numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines import sources
from pipelines.slo import ingest
from pipelines.sources import StagedRecords, load_registry
from tests.conftest import write


class PipeSource:
    """A toy format: ``time|service|operation|status`` per line."""

    name = "pipes"
    suffixes = (".pipes",)

    def read(self, raw: bytes, path: Path) -> StagedRecords:
        lines = raw.decode("utf-8", errors="replace").splitlines()
        columns: dict[str, list[str | None]] = {
            "timestamp": [],
            "service": [],
            "operation": [],
            "status_code": [],
        }
        problems: list[str | None] = []
        for line in lines:
            parts = line.split("|")
            ok = len(parts) == 4
            for name, value in zip(columns, parts if ok else [None] * 4, strict=True):
                columns[name].append(value)
            problems.append(None if ok else f"expected 4 fields separated by |, got {len(parts)}")
        return StagedRecords(columns, list(range(1, len(lines) + 1)), list(lines), problems)


class EntryPoint:
    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value, self._value = name, str(value), value

    def load(self) -> Any:
        if isinstance(self._value, Exception):
            raise self._value
        return self._value


def test_registry_loads_file_sources_and_reports_broken_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [EntryPoint("pipes", PipeSource()), EntryPoint("broken", ImportError("no module named x"))]
    monkeypatch.setattr(sources, "entry_points", lambda group: found if group == sources.GROUP else [])
    registry = load_registry()
    assert list(registry.file_sources) == [".pipes"]
    assert registry.problems == [
        "source plugin 'broken' (no module named x) failed to load: no module named x"
    ]


def test_staged_records_must_line_up() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        StagedRecords({"timestamp": ["a"]}, [1, 2], ["a", "b"], [None, None])


def test_a_plugin_file_is_ingested_and_its_bad_lines_quarantined(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "_PLUGINS", {".pipes": PipeSource()})
    monkeypatch.setattr(ingest, "FORMATS", {**ingest.BUILT_IN_FORMATS, ".pipes": "plugin:pipes"})
    path = write(
        tmp_path / "api.pipes",
        "2026-03-01T10:00:00Z|api|get|200\n"
        "not a record\n"
        "2026-03-01T10:00:01Z|api|get|999\n"
        "2026-03-01T10:00:02Z|api|get|503\n",
    )
    result = ingest.ingest_file(warehouse, path)
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == (
        "loaded",
        4,
        2,
        2,
    )
    quarantined = warehouse.execute(
        "SELECT source_row, record FROM quarantine ORDER BY source_row"
    ).fetchall()
    assert quarantined == [(2, "not a record"), (3, "2026-03-01T10:00:01Z|api|get|999")]
    loaded = warehouse.execute("SELECT status_code FROM raw_events ORDER BY ts").fetchall()
    assert loaded == [(200,), (503,)]
    assert ingest.ingest_file(warehouse, path).status == "skipped"

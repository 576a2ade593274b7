"""Shared fixtures: a fresh warehouse per test, and helpers to write landing files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from pipelines.warehouse import connect

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(tmp_path / "warehouse.duckdb")
    yield con
    con.close()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class CallCounter:
    """A function wrapped to count its calls: which ingestion path ran, when a test patches it in."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.function(*args, **kwargs)

"""Blocking asset checks stop downstream assets when the data under them is wrong."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize

from assets.quality import ALL_CHECKS
from pipelines.definitions import ALL_ASSETS
from pipelines.resources import SloscopeResource
from pipelines.settings import REPO_ROOT
from pipelines.warehouse import open_warehouse
from tests.conftest import write


@pytest.mark.slow
def test_future_timestamp_in_raw_events_blocks_aggregation(tmp_path: Path) -> None:
    write(
        tmp_path / "landing" / "e.csv", "timestamp,service,status_code\n2026-03-01T00:00:00Z,checkout,200\n"
    )
    resource = SloscopeResource(
        warehouse=str(tmp_path / "w.duckdb"),
        landing=str(tmp_path / "landing"),
        reports=str(tmp_path / "reports"),
        slos=str(REPO_ROOT / "data" / "slos"),
    )
    # Ingestion never lets such a row in; simulate a corrupted warehouse (a bad manual load, a bug).
    with open_warehouse(resource.warehouse) as con:
        con.execute(
            "INSERT INTO raw_events VALUES ($ts, 'checkout', '', 200, NULL, 1.0, 999, 1)",
            {"ts": datetime(2099, 1, 1)},
        )
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            resources={"sloscope": resource},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert "raw_events_valid" in failed
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert AssetKey("raw_events") in materialized
    assert AssetKey("sli_counts_minute") not in materialized
    assert AssetKey("slo_status") not in materialized

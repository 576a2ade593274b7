"""End to end: the whole asset graph materialised in-process on a small generated data set."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from assets.quality import ALL_CHECKS
from pipelines.cli import main
from pipelines.definitions import ALL_ASSETS
from pipelines.resources import SloscopeResource
from pipelines.settings import REPO_ROOT
from pipelines.slo.demo import generate_demo
from pipelines.warehouse import open_warehouse
from pipelines.workflows import current_status


@pytest.mark.slow
def test_materialize_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = generate_demo(tmp_path / "landing", days=14, scale=0.1)
    resource = SloscopeResource(
        warehouse=str(tmp_path / "w.duckdb"),
        landing=str(tmp_path / "landing"),
        reports=str(tmp_path / "reports"),
        slos=str(REPO_ROOT / "data" / "slos"),
    )
    with DagsterInstance.ephemeral() as instance:
        result = materialize([*ALL_ASSETS, *ALL_CHECKS], resources={"sloscope": resource}, instance=instance)
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks if c.severity.value == "ERROR")
        # A second run over the same landing folder loads nothing new and changes no number.
        with open_warehouse(resource.warehouse) as con:
            before = con.execute("SELECT slo, objective, good, total FROM slo_status ORDER BY ALL").fetchall()
        again = materialize([*ALL_ASSETS, *ALL_CHECKS], resources={"sloscope": resource}, instance=instance)
        assert again.success

    with open_warehouse(resource.warehouse) as con:
        after = con.execute("SELECT slo, objective, good, total FROM slo_status ORDER BY ALL").fetchall()
        assert after == before
        read, loaded, quarantined = con.execute(
            "SELECT sum(rows_read), sum(rows_loaded), sum(rows_quarantined) FROM ingested_files"
        ).fetchone()
        # The generator writes exactly `malformed_rows` bad lines; everything else loads.
        assert quarantined == manifest.malformed_rows == 3
        assert loaded == manifest.events + manifest.count_rows and read == loaded + quarantined

        # Brute force from raw events, independent of the aggregates: checkout availability.
        status = con.execute(
            "SELECT window_start, window_end, good, total FROM slo_status WHERE slo = 'checkout-availability'"
        ).fetchone()
        start, end, good, total = status
        assert end - start == timedelta(days=28)
        raw_total, raw_good = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status_code < 500) FROM raw_events "
            "WHERE service = 'checkout' AND ts >= $s AND ts < $e",
            {"s": start, "e": end},
        ).fetchone()
        assert (good, total) == (raw_good, raw_total)
        # Checkout latency: good = status < 500 AND latency <= 300 ms.
        lat = con.execute("SELECT good, total FROM slo_status WHERE slo = 'checkout-latency'").fetchone()
        raw_fast = con.execute(
            "SELECT count(*) FILTER (WHERE status_code < 500 AND latency_ms <= 300) FROM raw_events "
            "WHERE service = 'checkout' AND ts >= $s AND ts < $e",
            {"s": start, "e": end},
        ).fetchone()[0]
        assert lat == (raw_fast, raw_total)
        # Auth counts: good = sum(good) of the counts rows.
        auth = con.execute("SELECT good, total FROM slo_status WHERE slo = 'auth-availability'").fetchone()
        raw_auth = con.execute(
            "SELECT sum(good), sum(total) FROM raw_counts WHERE ts >= $s AND ts < $e", {"s": start, "e": end}
        ).fetchone()
        assert auth == tuple(int(v) for v in raw_auth)

    # The CLI gives the same numbers as the asset.
    assert main(["evaluate", "--db", resource.warehouse, "--slos", resource.slos, "--json"]) == 0
    cli = {(o["slo"], o["objective"]): (o["good"], o["total"]) for o in json.loads(capsys.readouterr().out)}
    assert cli == {(slo, objective): (g, t) for slo, objective, g, t in after}

    # An analyst's evaluation at a later time is stored, but does not become what reports show.
    assert (
        main(
            ["evaluate", "--db", resource.warehouse, "--slos", resource.slos, "--as-of", "2030-01-01T00:00Z"]
        )
        == 0
    )
    with open_warehouse(resource.warehouse) as con:
        assert {s.window_end for s in current_status(con)} == {manifest.end.replace(tzinfo=None)}

    reports = sorted((tmp_path / "reports").rglob("report.html"))
    assert {p.parent.name for p in reports} == {"auth", "checkout", "payments-api", "search"}
    html = reports[0].read_text(encoding="utf-8")
    assert "<svg" in html and "<script" not in html

"""Cross-service period reports (pipelines/slo/portfolio.py) on a real warehouse: gathering, narratives with
numbers worked out by hand, and the three notebooks really executed by papermill."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import nbformat
import pytest

from pipelines import alert_workflow, workflows
from pipelines.slo import portfolio
from pipelines.slo.alert_config import parse_alerting
from pipelines.slo.corrections import add_correction
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.spec import load_slos
from pipelines.warehouse import connect
from tests.conftest import write

HOSTILE = "<b>x</b>"
# 31-day rolling windows: evaluated as of 1 April, the window is exactly March.
SLOS = f"""
apiVersion: openslo/v1
kind: SLO
metadata: {{name: shop-availability, displayName: Shop availability}}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {{metricSource: {{type: sloscope, spec: {{success: true}}}}}}
        total: {{metricSource: {{type: sloscope, spec: {{service: shop}}}}}}
  timeWindow: [{{duration: 31d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{displayName: "99.9%", target: 0.999}}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: search-availability, displayName: "{HOSTILE}"}}
spec:
  service: search
  indicator:
    spec:
      ratioMetric:
        good: {{metricSource: {{type: sloscope, spec: {{success: true}}}}}}
        total: {{metricSource: {{type: sloscope, spec: {{service: search}}}}}}
  timeWindow: [{{duration: 31d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{displayName: "99%", target: 0.99}}]
"""

DAY0 = datetime(2026, 3, 1)
OUTAGE = datetime(2026, 3, 3)  # shop fails completely for 30 minutes from here
T = OUTAGE + timedelta(minutes=30)  # newest data minute ends here
PERIOD_START, PERIOD_END, PERIOD = datetime(2026, 3, 1), datetime(2026, 4, 1), "March 2026"
# Data that fails the first 10 outage minutes is excluded by a correction.
FIX_START, FIX_END = OUTAGE, OUTAGE + timedelta(minutes=10)


def _counts(path: Path, start: datetime, minutes: int, rows) -> None:  # type: ignore[no-untyped-def]
    lines = ["timestamp,service,operation,total,good"]
    for m in range(minutes):
        moment = start + timedelta(minutes=m)
        lines += [f"{moment:%Y-%m-%dT%H:%M}:00Z,{row}" for row in rows(moment)]
    write(path, "\n".join(lines) + "\n")


def _shop(moment: datetime) -> list[str]:
    failing = OUTAGE <= moment < OUTAGE + timedelta(minutes=30)
    return [f"shop,pay,100,{0 if failing else 100}"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, duckdb.DuckDBPyConnection, list]]:
    """Two days and 30 minutes of traffic, a correction, daily history for 1-3 March and an incident."""
    tmp = tmp_path_factory.mktemp("portfolio")
    con = connect(tmp / "warehouse.duckdb")
    landing = tmp / "landing"
    # shop: 100 requests a minute from 1 March 00:00 to 3 March 00:30 (2,910 minutes), all failing in
    # the outage minutes 3 March 00:00-00:30.
    _counts(landing / "shop.csv", DAY0, 2 * 1440 + 30, _shop)
    # search: 10 good requests a minute that stop at 2 March 22:00.
    _counts(landing / "search.csv", DAY0, 2 * 1440 - 120, lambda m: ["search,query,10,10"])
    ingest_paths(con, [landing], max_clock_skew_seconds=300)
    write(tmp / "slos" / "slos.yaml", SLOS)
    slos = load_slos(tmp / "slos")
    workflows.refresh(con, slos)
    add_correction(
        con,
        slo="shop-availability",
        reason="upstream DNS provider outage",
        added_by="sre@example.com",
        start=FIX_START,
        end=FIX_END,
        now=T,
    )
    for day in (datetime(2026, 3, 1).date(), datetime(2026, 3, 2).date(), datetime(2026, 3, 3).date()):
        workflows.store_history(con, slos, day, at_risk_remaining=0.25, policies=DEFAULT_POLICIES)
    as_of, statuses = workflows.evaluate_and_store(
        con, slos, as_of=T, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
    )
    config = parse_alerting("", "alerting.yaml")
    alert_workflow.run_alerting(con, slos, statuses, as_of, config, deliver=False, now=T)
    yield tmp, con, slos
    con.close()


@pytest.fixture(scope="module")
def inputs(world: tuple[Path, duckdb.DuckDBPyConnection, list]) -> dict[str, Any]:
    _, con, slos = world
    return portfolio.portfolio_inputs(con, slos, period_start=PERIOD_START, period_end=PERIOD_END)


def test_inputs_gather_the_period(inputs: dict[str, Any]) -> None:
    by_slo = {s["slo"]: s for s in inputs["statuses"]}
    shop = by_slo["shop-availability"]
    # 2,910 minutes x 100 = 291,000 requests; the correction drops 10 minutes (1,000 requests, all bad):
    # 290,000 requests, 2,000 bad; allowed 0.1% = 290, so 2,000 / 290 = 6.897 of the budget is used.
    assert (shop["good"], shop["total"]) == (288_000, 290_000)
    assert shop["error_budget"]["consumed"] == pytest.approx(2000 / 290)
    assert shop["status"] == "breached"
    assert by_slo["search-availability"]["display_name"] == HOSTILE
    assert by_slo["search-availability"]["status"] != "breached"
    assert sorted({h["day"] for h in inputs["history"]}) == ["2026-03-01", "2026-03-02", "2026-03-03"]
    [fix] = inputs["corrections"]
    assert fix["minutes"] == 10 and fix["reason"] == "upstream DNS provider outage"
    assert shop["corrections_applied"]["ids"] == [fix["correction_id"]]
    assert inputs["incidents"], "the outage opened an incident"
    assert all(i["events"] for i in inputs["incidents"])
    assert inputs["forecasts"] == []  # no forecasts stored in this warehouse
    assert inputs["period_start"] == "2026-03-01T00:00:00Z" and inputs["period_end"] == "2026-04-01T00:00:00Z"


def test_executive_narrative_numbers(inputs: dict[str, Any]) -> None:
    text = portfolio.executive_narrative(inputs, PERIOD)
    assert text.startswith("In March 2026, 1 of 2 objectives met their targets.")
    # 6.897 -> 690%. Budget minutes: 0.1% of 31 days (44,640 minutes) = 44.6 -> 45.
    assert "Shop availability (99.9%) missed 99.9%: it used 690% of its error budget" in text
    assert "of 45 budget minutes" in text


def test_sla_narrative_numbers(inputs: dict[str, Any]) -> None:
    text = portfolio.sla_narrative(inputs, PERIOD)
    assert text.startswith("In March 2026, 1 of 2 objectives violated their targets.")
    # SLI 288,000 / 290,000 = 99.310%; the history rows as of 2 and 3 March end hold no failures, the one
    # as of 4 March 00:00 (day 3 March) holds the outage.
    assert "SLI 99.310% against 99.9%, 690% of the error budget used, over budget from 2026-03-03." in text
    assert "1 correction excluded 10 minutes from its budget (upstream DNS provider outage)." in text


def test_incident_narrative_counts(inputs: dict[str, Any]) -> None:
    incidents = inputs["incidents"]
    text = portfolio.incident_narrative(inputs, PERIOD)
    pages = sum(1 for i in incidents if i["severity"] == "page")
    assert text.startswith(f"In March 2026, there were {len(incidents)} incident")
    assert f"{pages} page" in text
    assert "shop" in text.split("By service:")[1]
    # No alert resolved (the data stops at the outage), so both run to the period's end.
    assert text.endswith("2 of them were still open at the period's end (counted up to it).")


def test_narratives_on_hand_made_inputs() -> None:
    """Numbers chosen so every figure is checkable by eye."""
    inputs = {
        "period_start": "2026-10-01T00:00:00Z",
        "period_end": "2026-11-01T00:00:00Z",
        "statuses": [
            {
                "slo": "checkout",
                "display_name": "checkout",
                "objective": "availability",
                "target": 0.999,
                "sli": 0.99831,
                "status": "breached",
                "error_budget": {"consumed": 1.69, "remaining": -0.69},
                "budget_units": {"bad_minutes": 73.0, "budget_minutes": 43.2},
            },
            *[
                {"slo": f"s{i}", "objective": "o", "target": 0.99, "status": "ok", "error_budget": {}}
                for i in range(3)
            ],
        ],
        "incidents": [
            {
                "incident_id": 7,
                "service": "checkout",
                "severity": "page",
                "title": "down",
                "alerts": [],
                "opened_at": "2026-10-14T10:00:00Z",
                "resolved_at": "2026-10-14T12:30:00Z",
            },
            {
                "incident_id": 8,
                "service": "search",
                "severity": "ticket",
                "title": "slow",
                "alerts": [],
                "opened_at": "2026-10-20T10:00:00Z",
                "resolved_at": "2026-10-20T10:45:00Z",
            },
        ],
        "forecasts": [{"display_name": "s1", "objective": "o", "probability_exhausted": 0.42}],
        "history": [],
        "corrections": [],
    }
    text = portfolio.executive_narrative(inputs, "October 2026")
    assert "In October 2026, 3 of 4 objectives met their targets." in text
    assert (
        "checkout (availability) missed 99.9%: it used 169% of its error budget (73 of 43 budget minutes)."
        in text
    )
    assert "There were 2 incidents, 1 of them paged." in text
    assert "Top risk: s1 (o) has a 42% chance" in text
    # 150 + 45 = 195 minutes = 3 h 15 min; the longest is #7 at 2 h 30 min.
    digest = portfolio.incident_narrative(inputs, "October 2026")
    assert digest == (
        "In October 2026, there were 2 incidents lasting 3 h 15 min in total: 1 page and 1 ticket. "
        "The longest was #7 (down, checkout), 2 h 30 min. By service: checkout 1, search 1."
    )


def test_tables_escape_hostile_names(inputs: dict[str, Any]) -> None:
    html = portfolio.objectives_table_html(inputs) + portfolio.header_html("executive", inputs, HOSTILE)
    assert HOSTILE not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def _no_refs(html: str) -> None:
    # SVG namespaces are identifiers, not fetched; anything else with a scheme would be a network reference.
    stripped = re.sub(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"', "", html)
    assert "http://" not in stripped and "https://" not in stripped
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()


@pytest.fixture(scope="module")
def rendered(inputs: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    reports = tmp_path_factory.mktemp("reports")
    out = {}
    for kind in portfolio.KINDS:
        path = portfolio.render_portfolio_report(kind, inputs, reports, period=PERIOD)
        assert path == reports.resolve() / portfolio.safe_slug(PERIOD) / "All-services" / f"{kind}.html"
        out[kind] = path.read_text(encoding="utf-8")
        executed = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
        outputs = [o for c in executed.cells for o in c.get("outputs", [])]
        # Warnings or tracebacks would end up in the emailed page.
        assert [o for o in outputs if o["output_type"] in ("stream", "error")] == [], kind
    return out


@pytest.mark.slow
def test_rendered_pages(rendered: dict[str, str]) -> None:
    for kind, html in rendered.items():
        assert html.startswith("<!DOCTYPE html>"), kind
        assert "<svg" in html, kind
        assert HOSTILE not in html, kind
        _no_refs(html)
        assert "inputs_path" not in html and "import" not in html  # no code on the page
    assert "1 of 2 objectives met their targets" in rendered["executive"]
    assert "it used 690% of its error budget" in rendered["executive"]
    assert "&lt;b&gt;x&lt;/b&gt;" in rendered["executive"]
    assert "over budget from 2026-03-03" in rendered["sla"]
    assert "upstream DNS provider outage" in rendered["sla"]
    assert "By service:" in rendered["incidents"]


@pytest.mark.slow
def test_render_degrades_on_an_empty_period(world: tuple[Path, duckdb.DuckDBPyConnection, list]) -> None:
    tmp, con, slos = world
    # A year before any data: every objective has no data, no history, incidents or corrections.
    empty = portfolio.portfolio_inputs(
        con, slos, period_start=datetime(2025, 1, 1), period_end=datetime(2025, 2, 1)
    )
    assert empty["history"] == [] and empty["incidents"] == [] and empty["corrections"] == []
    for kind in portfolio.KINDS:
        html = portfolio.render_portfolio_report(kind, empty, tmp / "reports", period="2025-01").read_text()
        assert "No data to chart for this period." in html, kind
        _no_refs(html)

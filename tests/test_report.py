"""Tests for the per-service report: path safety, escaping, the narrative's numbers and an end-to-end render.

Expected figures are derived by hand from the budget definitions in ``pipelines.slo.budget`` (stated in
comments), never copied from the report's output. The end-to-end tests start a real kernel (``sloscope``
kernelspec) through papermill and are marked slow.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import nbformat
import polars as pl
import pytest

from pipelines.slo.budget import BURN_RATE_WINDOWS, budget_figures, burn_rate, classify
from pipelines.slo.report import (
    budget_remaining_frame,
    daily_sli_frame,
    hourly_burn_frame,
    narrative,
    render_service_report,
    safe_slug,
    status_table_html,
    write_report_inputs,
)

REPO = Path(__file__).resolve().parents[1]
AS_OF = datetime(2026, 10, 1)
WINDOW = timedelta(days=28)
HOSTILE = "<script>alert(1)</script>"
HOSTILE_NAMES = [
    "../../etc/passwd",
    "a/b",
    "<script>",
    "x\r\nBcc: y",
    "'; DROP TABLE x; --",
    "...",
    "..",
    ".",
    "a\\b",
    "",
    "A/B",
    "a-b",
    "Payments-API",
    "x" * 200,
    "x" * 199 + "y",
    "café",
    "-rf",
    " ",
]


def _status(
    slo: str,
    objective: str,
    target: str,
    good: int,
    total: int,
    *,
    service: str = "checkout",
    display_name: str | None = None,
    rates: dict[str, tuple[int, int]] | None = None,
) -> dict:
    """A status dict as ObjectiveStatus.to_json() plus display_name, from the budget module's own math."""
    exact = Decimal(target)
    sli, consumed, remaining = budget_figures(good, total, exact)
    spans = rates or {}
    burn_rates = {label: burn_rate(*spans.get(label, (0, 0)), exact) for label in BURN_RATE_WINDOWS}
    burn_rates["window"] = burn_rate(good, total, exact)
    return {
        "slo": slo,
        "display_name": display_name or slo,
        "service": service,
        "objective": objective,
        "target": float(exact),
        "budgeting_method": "Occurrences",
        "window": {"start": f"{AS_OF - WINDOW:%Y-%m-%dT%H:%M:%SZ}", "end": f"{AS_OF:%Y-%m-%dT%H:%M:%SZ}"},
        "good": good,
        "total": total,
        "sli": sli,
        "error_budget": {"consumed": consumed, "remaining": remaining},
        "burn_rates": burn_rates,
        "status": classify(total, remaining, 0.25),
    }


def _no_refs(html: str) -> None:
    # SVG namespaces are identifiers, not fetched; anything else with a scheme would be a network reference.
    stripped = re.sub(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"', "", html)
    assert "http://" not in stripped
    assert "https://" not in stripped
    assert "<script" not in html.lower()
    assert "cdn" not in html.lower()
    assert "url(" not in html.lower()


def test_module_does_not_import_dagster() -> None:
    # The report runs inside the notebook kernel, which must not pay for (or depend on) Dagster.
    code = "import sys, pipelines.slo.report; sys.exit('dagster' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------------------
# safe_slug


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_safe_slug_is_a_single_safe_path_component(name: str, tmp_path: Path) -> None:
    slug = safe_slug(name)
    assert slug
    assert re.fullmatch(r"[a-z0-9._-]{1,80}", slug)
    assert ".." not in slug
    assert slug not in {".", ".."}
    assert not slug.startswith((".", "-"))
    assert (tmp_path / slug).resolve().parent == tmp_path.resolve()


def test_safe_slug_distinct_names_give_distinct_slugs() -> None:
    slugs = [safe_slug(n) for n in HOSTILE_NAMES]
    assert len(set(slugs)) == len(HOSTILE_NAMES)


def test_safe_slug_keeps_safe_names_and_is_stable() -> None:
    assert safe_slug("payments-api") == "payments-api"
    assert safe_slug("auth_v2.internal") == "auth_v2.internal"
    assert safe_slug("a/b") == safe_slug("a/b")
    # Changed names carry the hash of the original, so the reduction cannot merge two services.
    assert re.fullmatch(r"a-b-[0-9a-f]{8}", safe_slug("a/b"))
    assert safe_slug("Payments-API") != "payments-api"


# ---------------------------------------------------------------------------------------------------------
# Table and narrative


def test_status_table_escapes_hostile_names() -> None:
    status = _status(HOSTILE, HOSTILE, "0.999", 998_000, 1_000_000, service=HOSTILE, display_name=HOSTILE)
    html = status_table_html([status])
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.lstrip().startswith("<table")


def test_status_table_shows_values_and_no_data() -> None:
    # 998,000 good of 1,000,000: SLI 99.800%, consumed (2,000 / 1,000,000) / 0.001 = 2.0, remaining -100.0%.
    breached = _status(
        "checkout-availability", "99.9% succeed", "0.999", 998_000, 1_000_000, rates={"1h": (9_000, 10_000)}
    )
    empty = _status("checkout-latency", "p99 < 300 ms", "0.99", 0, 0)
    html = status_table_html([breached, empty])
    assert "99.9%" in html and "99.800%" in html and "-100.0%" in html
    # 1h: (1,000 / 10,000) / 0.001 = 100.00.
    assert "100.00" in html
    assert "Breached" in html and "No data" in html
    assert html.count("no data") >= 4  # SLI, budget and both burn rates of the empty objective


def test_narrative_states_budget_used_derived_by_hand() -> None:
    # target 0.999 allows 0.1% bad; 998,000 good of 1,000,000 is 2,000 bad = 0.2%, so consumed = 0.2 / 0.1
    # = 2.0, i.e. 200% of the budget, and the objective is breached (remaining -1.0 < 0).
    statuses = [
        _status(
            "checkout-availability",
            "99.9% of requests succeed",
            "0.999",
            998_000,
            1_000_000,
            display_name="Checkout availability",
        ),
        # 995 of 1,000 good against 0.99: 0.5% bad of 1% allowed = 50% used, remaining 0.5 -> ok.
        _status("checkout-latency", "p99 under 300 ms", "0.99", 995, 1_000, display_name="Checkout latency"),
    ]
    text = narrative("checkout", statuses)
    assert text.startswith("checkout: 1 of 2 objectives breached.")
    assert (
        "Checkout availability (99.9% of requests succeed) has used 200% of its error budget over the "
        "28-day window ending 2026-10-01 00:00 UTC."
    ) in text
    assert "50%" not in text  # only the worst objective is spelled out
    assert 1 <= text.count(". ") + 1 <= 3


def test_narrative_small_consumption_and_no_data() -> None:
    # 9,996 of 10,000 good against 0.999: 0.04% bad of 0.1% allowed = 40% used.
    statuses = [_status("api", "fast", "0.999", 9_996, 10_000), _status("batch", "done", "0.99", 0, 0)]
    text = narrative("svc", statuses)
    assert text.startswith("svc: 1 of 2 objectives within budget, 1 with no data.")
    assert "has used 40% of its error budget" in text
    assert "No data in the window for batch (done)." in text
    only_empty = [_status("batch", "done", "0.99", 0, 0)]
    assert narrative("svc", only_empty) == "svc: no data for any of its 1 objective."
    assert "no SLOs" in narrative("svc", [])


def test_narrative_escapes_nothing_itself_but_table_and_header_do() -> None:
    from pipelines.slo.report import header_html

    status = _status(HOSTILE, "o", "0.999", 998_000, 1_000_000, service=HOSTILE, display_name=HOSTILE)
    text = narrative(HOSTILE, [status])
    assert HOSTILE in text  # plain text by contract; escaping belongs to whoever puts it into HTML
    html = header_html(HOSTILE, AS_OF, [status])
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# ---------------------------------------------------------------------------------------------------------
# Chart data


def _hourly_rows(
    slo: str, objectives: list[tuple[str, float]], hours: int, total: int, bad_at: dict[int, int]
) -> list[dict]:
    """One row per objective per hour ending at AS_OF; ``bad_at`` maps hours-before-AS_OF to bad events."""
    rows = []
    for back in range(hours, 0, -1):
        start = AS_OF - timedelta(hours=back)
        bad = bad_at.get(back, 0)
        for objective, target in objectives:
            rows.append(
                {
                    "slo": slo,
                    "objective": objective,
                    "target": target,
                    "bucket_start": start,
                    "good": total - bad,
                    "total": total,
                }
            )
    return rows


def _hourly(rows: list[dict]) -> pl.DataFrame:
    schema = {
        "slo": pl.String,
        "objective": pl.String,
        "target": pl.Float64,
        "bucket_start": pl.Datetime("us"),
        "good": pl.Int64,
        "total": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def test_chart_frames_follow_the_definitions() -> None:
    statuses = [_status("avail", "three nines", "0.999", 0, 0)]
    # 30 days of 1,000 events an hour; 5 bad in the hour starting 2 h before AS_OF.
    hourly = _hourly(_hourly_rows("avail", [("three nines", 0.999)], 30 * 24, 1_000, {2: 5}))

    daily = daily_sli_frame(hourly, statuses, AS_OF)
    assert daily.height == 28  # only the last 28 days
    last = daily.filter(pl.col("day") == "2026-09-30T00:00:00Z")
    # 24,000 events that day, 5 bad: SLI = 23,995 / 24,000.
    assert last["sli"].item() == pytest.approx(23_995 / 24_000)

    burn = hourly_burn_frame(hourly, statuses, AS_OF)
    assert burn.height == 7 * 24
    # (5 / 1,000) / 0.001 = 5.0 in that hour, 0 elsewhere.
    assert burn.filter(pl.col("hour") == "2026-09-30T22:00:00Z")["burn_rate"].item() == pytest.approx(5.0)
    assert burn["burn_rate"].sum() == pytest.approx(5.0)

    budget = budget_remaining_frame(hourly, statuses)
    assert budget.height == 28 * 24  # the window only
    # Budget = 0.001 x 672,000 events = 672 bad events; 5 spent -> 1 - 5/672 remaining at the end.
    assert budget["remaining"].to_list()[-1] == pytest.approx(1 - 5 / 672)
    assert budget["remaining"].to_list()[0] == pytest.approx(1.0)
    for frame in (daily, burn, budget):
        assert all(dtype in (pl.String, pl.Float64) for dtype in frame.schema.values())


def test_two_objectives_of_one_slo_stay_separate() -> None:
    statuses = [_status("avail", "three nines", "0.999", 0, 0), _status("avail", "two nines", "0.99", 0, 0)]
    hourly = _hourly(_hourly_rows("avail", [("three nines", 0.999), ("two nines", 0.99)], 48, 100, {1: 1}))
    burn = hourly_burn_frame(hourly, statuses, AS_OF)
    peaks = dict(burn.group_by("series").agg(pl.col("burn_rate").max()).iter_rows())
    # 1 bad of 100 = 1%: 10x a 0.1% allowance, 1x a 1% allowance.
    assert peaks == {"avail · three nines": pytest.approx(10.0), "avail · two nines": pytest.approx(1.0)}


def test_write_report_inputs_round_trips(tmp_path: Path) -> None:
    statuses = [_status("avail", "o", "0.999", 0, 0)]
    hourly = _hourly(_hourly_rows("avail", [("o", 0.999)], 3, 10, {}))
    statuses_path, hourly_path = write_report_inputs(tmp_path / "data", "checkout", statuses, hourly)
    assert (statuses_path.name, hourly_path.name) == ("statuses.json", "hourly.parquet")
    assert json.loads(statuses_path.read_text()) == statuses
    assert pl.read_parquet(hourly_path).equals(hourly)
    with pytest.raises(ValueError, match="other services"):
        write_report_inputs(tmp_path / "other", "payments", statuses, hourly)


# ---------------------------------------------------------------------------------------------------------
# End to end (real kernel)


def _service_inputs(service: str) -> tuple[list[dict], pl.DataFrame]:
    """Two SLOs of one service: availability (two objectives, with an incident) and latency (no data)."""
    objectives = [("99.9% of requests succeed", 0.999), ("99% of requests succeed", 0.99)]
    # 28 days x 24 h x 1,000 events; an incident 30 h before AS_OF with 300 bad events an hour for 4 hours.
    incident = {h: 300 for h in range(27, 31)}
    rows = _hourly_rows("checkout-availability", objectives, 28 * 24, 1_000, incident)
    total, bad = 28 * 24 * 1_000, 4 * 300
    availability = [
        _status(
            "checkout-availability",
            name,
            str(target),
            total - bad,
            total,
            service=service,
            display_name="Checkout availability",
            rates={"1h": (1_000, 1_000), "1d": (24_000, 24_000)},
        )
        for name, target in objectives
    ]
    latency = _status(
        "checkout-latency", "p99 under 300 ms", "0.99", 0, 0, service=service, display_name="Checkout latency"
    )
    return [*availability, latency], _hourly(rows)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict], pl.DataFrame]:
    reports = tmp_path_factory.mktemp("reports")
    statuses, hourly = _service_inputs("checkout")
    html_path = render_service_report("checkout", statuses, hourly, reports, as_of=AS_OF)
    return reports, html_path, statuses, hourly


@pytest.mark.slow
def test_render_produces_a_self_contained_page(rendered: tuple[Path, Path, list[dict], pl.DataFrame]) -> None:
    reports, html_path, _, _ = rendered
    assert html_path == reports.resolve() / "2026-10-01" / "checkout" / "report.html"
    html = html_path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "checkout — SLO report" in html
    assert "as of 2026-10-01 00:00 UTC" in html
    for name in ("Checkout availability", "checkout-availability", "Checkout latency", "checkout-latency"):
        assert name in html
    assert html.count("<svg") >= 3
    assert 'viewBox="' in html and "viewbox=" not in html  # charts keep scaling in strict XML renderers
    assert "No data" in html and "no data" in html.lower()
    # 1,200 bad of 672,000 against 0.999: (1,200 / 672,000) / 0.001 = 1.786 -> 179% used, breached.
    assert "has used 179% of its error budget" in html
    _no_refs(html)
    # Code never shows; papermill's parameter cell would reveal paths.
    assert "statuses_path" not in html and "import" not in html

    folder = html_path.parent
    assert (folder / "data" / "statuses.json").exists() and (folder / "data" / "hourly.parquet").exists()
    executed = nbformat.read(folder / "report.ipynb", as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    streams = [o for o in outputs if o["output_type"] in ("stream", "error")]
    assert streams == []  # warnings or tracebacks would end up in the emailed page


@pytest.mark.slow
def test_render_again_overwrites(rendered: tuple[Path, Path, list[dict], pl.DataFrame]) -> None:
    reports, html_path, statuses, hourly = rendered
    before = html_path.stat().st_mtime_ns
    again = render_service_report("checkout", statuses, hourly, reports, as_of=AS_OF)
    assert again == html_path
    assert again.stat().st_mtime_ns >= before
    html = again.read_text(encoding="utf-8")
    assert html.count("<svg") >= 3
    _no_refs(html)
    assert sorted(p.name for p in again.parent.iterdir()) == ["data", "report.html", "report.ipynb"]


@pytest.mark.slow
def test_render_hostile_service_name(tmp_path: Path) -> None:
    name = "../../" + HOSTILE
    statuses, hourly = _service_inputs(name)
    statuses[0]["display_name"] = HOSTILE
    html_path = render_service_report(name, statuses, hourly, tmp_path / "reports", as_of=AS_OF)
    assert html_path.resolve().is_relative_to((tmp_path / "reports").resolve())
    assert html_path.parent.parent.name == "2026-10-01"
    html = html_path.read_text(encoding="utf-8")
    assert "../../&lt;script&gt;alert(1)&lt;/script&gt; — SLO report" in html
    _no_refs(html)
    assert html.count("<svg") >= 3


@pytest.mark.slow
def test_render_with_no_data_at_all(tmp_path: Path) -> None:
    statuses = [_status("checkout-latency", "p99 under 300 ms", "0.99", 0, 0)]
    html_path = render_service_report("checkout", statuses, _hourly([]), tmp_path, as_of=AS_OF)
    html = html_path.read_text(encoding="utf-8")
    assert "no data for any of its 1 objective" in html
    assert "No data in the last 28 days" in html
    assert "<svg" not in html
    _no_refs(html)


@pytest.mark.slow
def test_monthly_report_partition_renders_the_month(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import email
    import email.policy
    import shutil
    from datetime import timedelta

    from dagster import DagsterInstance, materialize

    from assets.reports import monthly_reports
    from pipelines import workflows
    from pipelines.resources import SloscopeResource
    from pipelines.slo.ingest import ingest_paths
    from pipelines.slo.spec import load_slos
    from pipelines.warehouse import open_warehouse
    from tests.conftest import write

    # June 2026, one row an hour: 100 requests, 1 failing.
    lines = ["timestamp,service,operation,total,good"]
    start = datetime(2026, 6, 1)
    for h in range(30 * 24):
        lines.append(f"{start + timedelta(hours=h):%Y-%m-%dT%H:%M}:00Z,shop,pay,100,99")
    write(tmp_path / "landing" / "shop.csv", "\n".join(lines) + "\n")
    write(
        tmp_path / "slos" / "shop.yaml",
        """
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-availability, displayName: Shop availability}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {success: true}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "98%", target: 0.98}]
""",
    )
    write(tmp_path / "recipients.yaml", "default: {monthly: [sre@example.com]}\n")
    resource = SloscopeResource(
        warehouse=str(tmp_path / "w.duckdb"),
        landing=str(tmp_path / "landing"),
        reports=str(tmp_path / "reports"),
        slos=str(tmp_path / "slos"),
        report_recipients=str(tmp_path / "recipients.yaml"),
    )
    slos = load_slos(tmp_path / "slos")
    with open_warehouse(resource.warehouse) as con:
        ingest_paths(con, [tmp_path / "landing"])
        workflows.refresh(con, slos)
        workflows.store_objectives(con, slos)
        workflows.store_hourly(con, slos, datetime(2026, 7, 1))
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            received.append(envelope.content)
            return "250 OK"

    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("SLOSCOPE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SLOSCOPE_SMTP_PORT", str(port))
    monkeypatch.setenv("SLOSCOPE_SMTP_TLS", "none")
    monkeypatch.setenv("SLOSCOPE_SMTP_SENDER", "sloscope@example.com")
    try:
        for _ in range(2):  # a re-run of the same month renders again but does not mail twice
            with DagsterInstance.ephemeral() as instance:
                result = materialize(
                    [monthly_reports],
                    resources={"sloscope": resource},
                    instance=instance,
                    partition_key="2026-06-01",
                )
            assert result.success
    finally:
        controller.stop()
    page = tmp_path / "reports" / "2026-06" / "shop" / "monthly.html"
    html = page.read_text(encoding="utf-8")
    assert "shop — monthly SLO report, June 2026" in html
    # As of 1 July 00:00: the 28 days before hold 99 good of every 100, an SLI of 99.000%.
    assert "99.000%" in html
    index = (tmp_path / "reports" / "index.html").read_text(encoding="utf-8")
    assert "2026-06/shop/monthly.html" in index
    # The month's cross-service reports, beside the per-service ones.
    for kind in ("executive", "sla", "incidents"):
        assert (tmp_path / "reports" / "2026-06" / "All-services" / f"{kind}.html").exists()
        assert f"2026-06/All-services/{kind}.html" in index
    if shutil.which("chromium"):
        assert page.with_suffix(".pdf").read_bytes().startswith(b"%PDF-")
        assert "2026-06/shop/monthly.pdf" in index
        assert len(received) == 1
        message = email.message_from_bytes(received[0], policy=email.policy.default)
        assert message["Subject"] == "[sloscope] shop — monthly SLO report, June 2026"
        names = sorted(part.get_filename() for part in message.iter_attachments())
        assert names == ["shop-monthly-2026-06.html", "shop-monthly-2026-06.pdf"]

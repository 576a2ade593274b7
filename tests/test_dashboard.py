"""The interactive SLO dashboard: safe JSON in <script>, graceful degradation, and the page rendered in a real
headless Chromium (no console errors, the expected charts and marks, no script injected by a hostile name)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import duckdb
import pytest

from pipelines import workflows
from pipelines.slo import dashboard
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.spec import load_slos
from tests.conftest import write

HOSTILE = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"

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
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{displayName: "99%", target: 0.99}}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {{name: evil-availability, displayName: {json.dumps(HOSTILE)}}}
spec:
  service: evil
  indicator:
    spec:
      ratioMetric:
        good: {{metricSource: {{type: sloscope, spec: {{success: true}}}}}}
        total: {{metricSource: {{type: sloscope, spec: {{service: evil}}}}}}
  timeWindow: [{{duration: 30d, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{displayName: "99.9%", target: 0.999}}]
"""

START = datetime(2026, 3, 1)
DAYS = 10
SPIKE = START + timedelta(days=8, hours=5)  # shop: one hour with 20% errors
ANOMALIES = [SPIKE, SPIKE + timedelta(hours=3), START + timedelta(days=2)]  # three flagged shop hours
HISTOGRAM = [["2026-03-20", 0.1], ["2026-03-21", 0.25], ["2026-03-22", 0.05], ["2026-03-23", 0.02]]


def _build(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> datetime:
    # One row per hour per service: shop loses 1 in 1000 requests (20% in the spike hour), evil 1 in 5000.
    lines = ["timestamp,service,operation,total,good"]
    for h in range(DAYS * 24):
        moment = START + timedelta(hours=h)
        shop_bad = 200 if moment == SPIKE else 1
        lines.append(f"{moment:%Y-%m-%dT%H:%M}:00Z,shop,pay,1000,{1000 - shop_bad}")
        lines.append(f"{moment:%Y-%m-%dT%H:%M}:00Z,evil,get,5000,4999")
    write(tmp_path / "landing" / "counts.csv", "\n".join(lines) + "\n")
    ingest_paths(con, [tmp_path / "landing"], max_clock_skew_seconds=300)
    write(tmp_path / "slos" / "slos.yaml", SLOS)
    slos = load_slos(tmp_path / "slos")
    workflows.refresh(con, slos)
    as_of, _ = workflows.evaluate_and_store(
        con, slos, as_of=None, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
    )
    workflows.store_hourly(con, slos, as_of)
    for stamp in ANOMALIES:
        con.execute(
            "INSERT INTO slo_anomalies VALUES ('shop-availability', 'error_rate', $t, 0.2, 0.99, 0.9, true)",
            {"t": stamp},
        )
    # A non-anomalous score must not be drawn.
    con.execute(
        "INSERT INTO slo_anomalies VALUES ('shop-availability', 'error_rate', $t, 0.001, 0.1, 0.9, false)",
        {"t": START + timedelta(days=3)},
    )
    con.execute(
        """INSERT INTO slo_forecasts (slo, service, objective, as_of, window_start, window_end, rolling, seed,
               simulations, budget_remaining_now, probability_exhausted, probability_already_exhausted,
               remaining_p10, remaining_p50, remaining_p90, exhaustion_histogram)
           VALUES ('shop-availability', 'shop', $objective, $as_of, $ws, $we, true, 1, 1000, 0.6, 0.42, 0,
                   -0.2, 0.1, 0.4, $hist)""",
        {
            "objective": _objective(con, "shop-availability"),
            "as_of": as_of,
            "ws": as_of - timedelta(days=30),
            "we": as_of + timedelta(days=30),
            "hist": json.dumps(HISTOGRAM),
        },
    )
    for alert_id, (slo, title) in enumerate(
        [
            ("shop-availability", "Shop burns fast"),
            ("shop-availability", "Shop burns slowly"),
            ("evil-availability", HOSTILE),
        ]
    ):
        con.execute(
            """INSERT INTO alert_instances VALUES ($id, $key, $slo, $slo, 'svc', $objective, 'burn_rate',
                   'page', 1, 'firing', $t, $t, NULL, NULL, $title, 'd', '[]', '{}', NULL, true, true, 0)""",
            {
                "id": alert_id,
                "key": f"k{alert_id}",
                "slo": slo,
                "objective": _objective(con, slo),
                "t": SPIKE,
                "title": title,
            },
        )
    return as_of


def _objective(con: duckdb.DuckDBPyConnection, slo: str) -> str:
    row = con.execute("SELECT objective FROM slo_status WHERE slo = $slo LIMIT 1", {"slo": slo}).fetchone()
    assert row is not None
    return str(row[0])


# ---------------------------------------------------------------------------------------------------------
# Safe JSON


def test_script_json_cannot_close_the_script_element() -> None:
    value = {"name": HOSTILE, "sep": "a\u2028b\u2029c", "amp": "x&y", "comment": "<!-- -->"}
    text = dashboard.script_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert "\\u003c/script\\u003e" in text
    # The escapes are JSON escapes: parsing gives back exactly the original value.
    assert json.loads(text) == value


def test_script_json_rejects_nan() -> None:
    # NaN is not JSON; JSON.parse would fail in the browser with no hint of where it came from.
    with pytest.raises(ValueError):
        dashboard.script_json({"x": float("nan")})


def test_bundle_is_inlinable_and_offline() -> None:
    bundle = dashboard.javascript_bundle()
    assert "</script" not in bundle.lower()
    assert "window.vegaEmbed" in bundle
    assert len(bundle) > 100_000  # the real libraries, not a loader stub


# ---------------------------------------------------------------------------------------------------------
# The page as HTML text


def test_empty_warehouse_gives_a_page_with_a_note(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    path = dashboard.build_dashboard(warehouse, tmp_path / "out" / "dashboard.html", as_of=START)
    html = path.read_text(encoding="utf-8")
    assert "no current evaluation" in html
    assert "No SLO objectives have been evaluated yet." in html
    assert list(path.parent.iterdir()) == [path]  # the temp file was renamed, nothing left behind


def test_missing_optional_tables_degrade(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    _build(tmp_path, warehouse)
    for table in ("slo_hourly", "slo_history", "slo_anomalies", "slo_forecasts", "alert_instances"):
        warehouse.execute(f"DROP TABLE {table}")
    out = tmp_path / "site"
    out.mkdir()
    path = dashboard.build_dashboard(warehouse, out)
    assert path == out / "index.html"
    html = path.read_text(encoding="utf-8")
    assert "table slo_forecasts does not exist" in html
    data = _page_data(html)
    # Only the two gauges remain: no hourly or daily series, no forecast.
    assert [c["id"] for c in data["charts"]] == ["chart-0", "chart-1"]


def test_page_has_no_external_references_and_escapes_names(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    _build(tmp_path, warehouse)
    html = dashboard.build_dashboard(warehouse, tmp_path / "d.html").read_text(encoding="utf-8")
    assert not re.search(
        r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I
    )
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    # Exactly three script elements: the bundle, the JSON data block, the embedding code.
    assert len(re.findall(r"<script\b", html, re.I)) == 3
    data = _page_data(html)
    roles = [(c["spec"]["layer"][0]["name"]) for c in data["charts"]]
    # Two cards (gauge + sparkline each); shop has history, fan and histogram, evil has history only.
    assert sorted(roles) == sorted(
        ["gauge_bar", "spark_line"] * 2 + ["sli_line"] * 2 + ["fan_band", "exhaustion"]
    )


def test_specs_are_valid_vega_lite(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    import altair as alt

    _build(tmp_path, warehouse)
    data = dashboard.collect(warehouse)
    for view in data.views:
        for spec in dashboard.specs_for(view).values():
            if spec is not None:
                alt.LayerChart.from_dict(spec)  # validates against Altair's Vega-Lite schema


def _page_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S)
    assert match
    return json.loads(match.group(1))


# ---------------------------------------------------------------------------------------------------------
# Rendered in headless Chromium


class _Dom(HTMLParser):
    """Counts the rendered SVG marks under each chart container of a dumped DOM."""

    VOID: ClassVar[set[str]] = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.charts: dict[str, dict] = {}
        self.scripts: list[dict[str, str]] = []
        self.alert_rows = 0
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script":
            self.scripts.append(a)
        if tag == "img":
            self.images += 1
        if a.get("class") == "alert-row":
            self.alert_rows += 1
        if "data-role" in a:
            self.charts[a["id"]] = {
                "role": a["data-role"],
                "slo": a["data-slo"],
                "rendered": a.get("data-rendered"),
                "marks": {},
            }
        chart = next((self.charts[x["id"]] for _, x in reversed(self.stack) if "data-role" in x), None)
        if chart is not None and tag == "svg" and "marks" in a.get("class", ""):
            chart["svg"] = chart.get("svg", 0) + 1
        if chart is not None and tag in ("path", "line"):  # rules are <line>, everything else <path>
            group = next((x.get("class", "") for t, x in reversed(self.stack) if t == "g"), "")
            for name in group.split():
                if name.endswith("_marks"):
                    chart["marks"][name] = chart["marks"].get(name, 0) + 1
        if tag not in self.VOID:
            self.stack.append((tag, a))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break


CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium on PATH (apt install chromium)"
)


def _chromium(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran (10 s of virtual time) and the page's console messages.

    Chromium logs every console message, whatever its level, and every uncaught exception as
    ``[pid:tid:time:INFO:CONSOLE:line] "message", source: URL (line)`` on stderr; the level is not shown,
    so the page is required to log nothing at all.
    """
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.slow
@needs_chromium
def test_chromium_harness_sees_console_errors(tmp_path: Path) -> None:
    # The harness itself: an error and an uncaught exception must be caught, or the real test proves nothing.
    page = write(
        tmp_path / "p.html", "<html><body><script>console.error('boom'); nope();</script></body></html>"
    )
    _, console = _chromium(page, tmp_path / "profile")
    assert len(console) == 2
    assert '"boom"' in console[0] and "ReferenceError" in console[1]


@pytest.mark.slow
@needs_chromium
def test_dashboard_renders_in_headless_chromium(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection) -> None:
    _build(tmp_path, warehouse)
    path = dashboard.build_dashboard(warehouse, tmp_path / "dashboard.html")
    dom_text, console = _chromium(path, tmp_path / "profile")
    assert console == [], "\n".join(console)
    dom = _Dom()
    dom.feed(dom_text)
    # No script injected by the hostile name: only the page's three.
    assert len(dom.scripts) == 3
    assert dom.images == 0  # the name's <img onerror=...> stayed text
    charts = list(dom.charts.values())
    assert len(charts) == 8  # 2 gauges + 2 sparklines + 2 histories + shop's fan and exhaustion histogram
    assert all(c["rendered"] == "true" and c.get("svg") == 1 for c in charts), charts
    by_role: dict[str, list[dict]] = {}
    by_slo: dict[tuple[str, str], dict] = {}
    for chart in charts:
        by_role.setdefault(chart["role"], []).append(chart["marks"])
        by_slo[(chart["slo"], chart["role"])] = chart["marks"]
    # One bar per gauge; one line path per sparkline and history (a line is a single path).
    assert by_role["gauge"] == [{"gauge_bar_marks": 1, "gauge_zero_marks": 1}] * 2
    assert [m["spark_line_marks"] for m in by_role["sparkline"]] == [1, 1]
    shop_history = by_slo[("shop-availability", "history")]
    evil_history = by_slo[("evil-availability", "history")]
    # The three flagged hours are drawn; the unflagged score is not. Evil has no anomalies layer at all.
    assert shop_history["anomalies_marks"] == len(ANOMALIES)
    assert "anomalies_marks" not in evil_history
    # One bar per histogram day; the fan is one area and one median line.
    assert by_role["histogram"] == [{"exhaustion_marks": len(HISTOGRAM)}]
    assert by_role["fan"][0]["fan_band_marks"] == 1 and by_role["fan"][0]["fan_median_marks"] == 1
    assert dom.alert_rows == 3  # two shop alerts, one evil alert (its hostile title shown as text)

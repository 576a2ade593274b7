"""A self-contained interactive HTML SLO dashboard, regenerated on every evaluation.

One page, no server and no network: an overview grid (a card per SLO objective with its status, SLI against
target, a budget-remaining gauge and a 7-day burn-rate sparkline) and a drill-down per objective (SLI
history with anomalies, alerts, a forecast fan and the exhaustion histogram).

Charts are Vega-Lite specs rendered in the browser by vega-embed. The Vega, Vega-Lite and vega-embed sources
are inlined from vl-convert's bundle, because Altair's default HTML loads them from a CDN and the page must
work offline and behind strict proxies (see STYLE.md). All data reaches the page as one JSON block in a
``<script type="application/json">`` that is read with ``JSON.parse``, never evaluated; names only enter the
HTML through jinja2 autoescaping, so a hostile SLO name cannot inject markup or script.

Every optional table (``slo_hourly``, ``slo_history``, ``alert_instances``, ``slo_anomalies``,
``slo_forecasts``) may be empty or missing in an older warehouse: the section says so instead of failing.
This module is Dagster-free and only reads the warehouse.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment

from pipelines.slo.budget import EvaluationError, ObjectiveStatus
from pipelines.slo.report import safe_slug
from pipelines.warehouse import optional_rows

__all__ = [
    "BURN_DAYS",
    "HISTORY_DAYS",
    "DashboardData",
    "ObjectiveView",
    "build_dashboard",
    "collect",
    "javascript_bundle",
    "render_html",
    "script_json",
    "specs_for",
]

BURN_DAYS = 7
HISTORY_DAYS = 28
ALERT_LIMIT = 50
CARD_WIDTH = 240
DETAIL_WIDTH = 640

# Autoescaping is the point: display names, objectives and alert titles come from files we do not control.
_JINJA = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)

_BADGES = {
    "ok": ("OK", "#1e7b34"),
    "at_risk": ("At risk", "#9a5b00"),
    "breached": ("Breached", "#b3261e"),
    "no_data": ("No data", "#5f6368"),
}

# Characters that could end the <script> element or start an HTML comment/CDATA inside it, plus the two
# line separators that older JavaScript parsers treat as newlines inside string literals.
_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe to place verbatim inside a ``<script>`` element.

    ``json.dumps`` alone is not: a string holding ``</script>`` would close the element and whatever follows
    would run as markup. Escaping ``<``, ``>`` and ``&`` as ``\\u00XX`` keeps the JSON identical after
    ``JSON.parse`` while leaving nothing the HTML tokenizer can act on. NaN is rejected because it is not
    JSON and ``JSON.parse`` would throw in the browser, far from the cause.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in _SCRIPT_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


@cache
def javascript_bundle() -> str:
    """vega-embed, Vega-Lite and Vega as one classic script that sets ``window.vegaEmbed``.

    Built once per process by vl-convert (about 0.9 MB, two seconds). Checked for anything that would end
    the inline ``<script>`` early, since the bundle is inlined without escaping.
    """
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    lowered = bundle.lower()
    if "</script" in lowered or "<!--" in lowered:
        raise RuntimeError("vl-convert's JavaScript bundle contains '</script' or '<!--'; cannot inline it")
    return bundle


# ---------------------------------------------------------------------------------------------------------
# Reading the warehouse


@dataclass
class ObjectiveView:
    """Everything the page shows for one SLO objective, as JSON-ready values."""

    status: ObjectiveStatus
    anchor: str
    burn: list[dict[str, Any]] = field(default_factory=list)
    sli: list[dict[str, Any]] = field(default_factory=list)
    sli_resolution: str = "hour"
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    forecast: dict[str, Any] | None = None
    histogram: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        name = self.status.display_name or self.status.slo
        objective = self.status.objective
        return f"{name} ({objective})" if objective and objective != name else name


@dataclass
class DashboardData:
    """The page's inputs: the moment it describes, one view per objective, and notes on what is missing."""

    as_of: datetime
    views: list[ObjectiveView]
    notes: list[str]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _finite(value: Any) -> float | None:
    """A float for the page, or None: DuckDB may hand over Decimal, and NaN is not JSON."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# The dashboard's own wording for what is left out.
_rows = functools.partial(
    optional_rows,
    missing="table {table} does not exist in this warehouse; its charts are left out",
    unreadable="could not read {table}: {error}",
)


def collect(con: duckdb.DuckDBPyConnection, *, as_of: datetime | None = None) -> DashboardData:
    """Read the current status and every optional series the page charts (read-only queries)."""
    from pipelines.workflows import current_status, utc_now

    notes: list[str] = []
    try:
        statuses = current_status(con)
    except (EvaluationError, duckdb.Error) as exc:
        statuses = []
        notes.append(f"no current evaluation: {exc}")
    if as_of is None:
        as_of = max((s.window_end for s in statuses), default=None) or utc_now()
    elif as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)

    names = sorted({s.slo for s in statuses})
    burn_start = as_of - timedelta(days=BURN_DAYS)
    history_start = as_of - timedelta(days=HISTORY_DAYS)
    hourly = _rows(
        con,
        "slo_hourly",
        "SELECT slo, bucket_start, good, total FROM slo_hourly "
        "WHERE slo IN (SELECT unnest($slos)) AND bucket_start >= $start AND bucket_start < $end "
        "AND total > 0 ORDER BY slo, bucket_start",
        {"slos": names, "start": history_start, "end": as_of},
        notes,
    )
    daily = _rows(
        con,
        "slo_history",
        "SELECT slo, objective_index, day, sli FROM slo_history "
        "WHERE slo IN (SELECT unnest($slos)) AND day >= $start AND day < $end AND sli IS NOT NULL "
        "ORDER BY slo, objective_index, day",
        {"slos": names, "start": history_start.date(), "end": as_of.date() + timedelta(days=1)},
        notes,
    )
    anomalies = _rows(
        con,
        "slo_anomalies",
        "SELECT slo, metric, bucket_start, value, score FROM slo_anomalies "
        "WHERE is_anomaly AND slo IN (SELECT unnest($slos)) "
        "AND bucket_start >= $start AND bucket_start < $end ORDER BY slo, bucket_start, metric",
        {"slos": names, "start": history_start, "end": as_of},
        notes,
    )
    alerts = _rows(
        con,
        "alert_instances",
        "SELECT slo, objective, severity, kind, state, started_at, resolved_at, title FROM alert_instances "
        "WHERE slo IN (SELECT unnest($slos)) AND started_at <= $end ORDER BY started_at DESC, alert_id DESC",
        {"slos": names, "end": as_of},
        notes,
    )
    forecasts = _rows(
        con,
        "slo_forecasts",
        "SELECT * FROM slo_forecasts WHERE slo IN (SELECT unnest($slos)) AND as_of <= $end "
        "QUALIFY row_number() OVER (PARTITION BY slo, objective ORDER BY as_of DESC) = 1",
        {"slos": names, "end": as_of},
        notes,
    )

    views: list[ObjectiveView] = []
    for i, status in enumerate(statuses):
        # The index keeps anchors unique; the slug keeps them readable and safe in an href.
        anchor = f"slo-{i}-{safe_slug(status.slo + '-' + status.objective)}"
        view = ObjectiveView(status=status, anchor=anchor)
        span = 1 - status.target
        for row in hourly:
            if row["slo"] != status.slo:
                continue
            sli = row["good"] / row["total"]
            view.sli.append({"t": _iso(row["bucket_start"]), "sli": sli})
            if row["bucket_start"] >= burn_start and span > 0:
                view.burn.append({"t": _iso(row["bucket_start"]), "burn": (1 - sli) / span})
        if not view.sli:
            view.sli_resolution = "day"
            view.sli = [
                {"t": _iso(datetime.combine(r["day"], datetime.min.time())), "sli": _finite(r["sli"])}
                for r in daily
                if r["slo"] == status.slo and r["objective_index"] == status.objective_index
            ]
        on_series = {p["t"]: p["sli"] for p in view.sli}
        for row in anomalies:
            stamp = _iso(row["bucket_start"])
            if row["slo"] == status.slo and stamp in on_series:
                # Drawn on the SLI line at its hour, whatever metric flagged it; the tooltip names the metric.
                view.anomalies.append(
                    {
                        "t": stamp,
                        "sli": on_series[stamp],
                        "metric": row["metric"],
                        "score": _finite(row["score"]),
                    }
                )
        view.alerts = [
            {
                "started_at": _iso(r["started_at"]),
                "resolved_at": _iso(r["resolved_at"]) if r["resolved_at"] else "",
                "severity": r["severity"],
                "kind": r["kind"],
                "state": r["state"],
                "title": r["title"],
            }
            for r in alerts
            if r["slo"] == status.slo and r["objective"] == status.objective
        ][:ALERT_LIMIT]
        forecast = next(
            (f for f in forecasts if f["slo"] == status.slo and f["objective"] == status.objective), None
        )
        if forecast is not None:
            view.forecast, view.histogram = _forecast_view(forecast, notes)
        views.append(view)
    return DashboardData(as_of=as_of, views=views, notes=notes)


def _forecast_view(row: dict[str, Any], notes: list[str]) -> tuple[dict[str, Any] | None, list[dict]]:
    """The fan's two ends (now, and the window end with p10/p50/p90) and the exhaustion histogram."""
    fan = None
    now = _finite(row.get("budget_remaining_now"))
    quantiles = [_finite(row.get(f"remaining_p{q}")) for q in (10, 50, 90)]
    if now is not None and None not in quantiles:
        start, end = _iso(row["as_of"]), _iso(row["window_end"])
        fan = {
            "points": [
                {"t": start, "p10": now, "p50": now, "p90": now},
                {"t": end, "p10": quantiles[0], "p50": quantiles[1], "p90": quantiles[2]},
            ],
            "probability_exhausted": _finite(row.get("probability_exhausted")),
        }
    histogram: list[dict] = []
    try:
        for day, share in json.loads(row.get("exhaustion_histogram") or "[]"):
            if _finite(share):
                histogram.append({"day": str(day)[:10], "share": float(share)})
    except (ValueError, TypeError) as exc:
        slo = row.get("slo")
        notes.append(f"slo_forecasts.exhaustion_histogram of {slo!r} is not [[day, share], ...]: {exc}")
    return fan, histogram


# ---------------------------------------------------------------------------------------------------------
# Vega-Lite specs


# No "$schema": it is a URL the page would carry for nothing; the embed call names the mode instead.
_BASE = {
    "config": {"view": {"stroke": None}, "axis": {"labelFontSize": 10, "titleFontSize": 11}},
}


def _spec(**body: Any) -> dict[str, Any]:
    return {**_BASE, **body}


def gauge_spec(remaining: float, status: str) -> dict[str, Any]:
    """Budget remaining as one bar from 0 on a fixed -100%..100% axis (overspend beyond -100% is clipped)."""
    colour = _BADGES.get(status, _BADGES["no_data"])[1]
    return _spec(
        width=CARD_WIDTH,
        height=18,
        data={"values": [{"remaining": remaining, "shown": max(-1.0, min(1.0, remaining))}]},
        layer=[
            {
                "name": "gauge_bar",
                "mark": {"type": "bar", "color": colour, "clip": True},
                "encoding": {
                    "x": {
                        "field": "shown",
                        "type": "quantitative",
                        "scale": {"domain": [-1, 1]},
                        "axis": {"format": "%", "values": [-1, -0.5, 0, 0.5, 1], "title": None},
                    },
                    "tooltip": [{"field": "remaining", "format": ".1%", "title": "budget remaining"}],
                },
            },
            {
                "name": "gauge_zero",
                "mark": {"type": "rule", "color": "#1f2328"},
                "encoding": {"x": {"datum": 0}},
            },
        ],
    )


def sparkline_spec(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Hourly burn rate over the last days; the dashed rule at 1 spends the budget exactly over the window."""
    return _spec(
        width=CARD_WIDTH,
        height=50,
        data={"values": points},
        layer=[
            {
                "name": "spark_line",
                "mark": {"type": "line", "strokeWidth": 1.2, "interpolate": "step-after"},
                "encoding": {
                    "x": {"field": "t", "type": "temporal", "axis": None},
                    "y": {"field": "burn", "type": "quantitative", "axis": None},
                    "tooltip": [
                        {"field": "t", "type": "temporal", "format": "%Y-%m-%d %H:00", "title": "hour (UTC)"},
                        {"field": "burn", "type": "quantitative", "format": ".2f", "title": "burn rate"},
                    ],
                },
            },
            {
                "name": "spark_one",
                "mark": {"type": "rule", "strokeDash": [3, 3], "color": "#9a5b00"},
                "encoding": {"y": {"datum": 1}},
            },
        ],
    )


def history_spec(view: ObjectiveView) -> dict[str, Any]:
    """SLI per hour (or per day) with the target as a rule and anomalies as red points on the line."""
    unit = "%Y-%m-%d %H:00" if view.sli_resolution == "hour" else "%Y-%m-%d"
    layers: list[dict[str, Any]] = [
        {
            "name": "sli_line",
            "data": {"values": view.sli},
            "mark": {"type": "line", "strokeWidth": 1.2},
            "encoding": {
                "x": {"field": "t", "type": "temporal", "title": f"{view.sli_resolution} (UTC)"},
                "y": {
                    "field": "sli",
                    "type": "quantitative",
                    "scale": {"zero": False},
                    "axis": {"format": ".2%"},
                    "title": "SLI",
                },
                "tooltip": [
                    {"field": "t", "type": "temporal", "format": unit, "title": view.sli_resolution},
                    {"field": "sli", "type": "quantitative", "format": ".3%", "title": "SLI"},
                ],
            },
        },
        {
            "name": "sli_target",
            "data": {"values": [{"target": view.status.target}]},
            "mark": {"type": "rule", "strokeDash": [4, 3], "color": "#b3261e"},
            "encoding": {"y": {"field": "target", "type": "quantitative"}},
        },
    ]
    if view.anomalies:
        layers.append(
            {
                "name": "anomalies",
                "data": {"values": view.anomalies},
                "mark": {"type": "point", "filled": True, "color": "#b3261e", "size": 50},
                "encoding": {
                    "x": {"field": "t", "type": "temporal"},
                    "y": {"field": "sli", "type": "quantitative"},
                    "tooltip": [
                        {"field": "t", "type": "temporal", "format": unit, "title": "anomaly at"},
                        {"field": "metric", "type": "nominal"},
                        {"field": "score", "type": "quantitative", "format": ".2f"},
                    ],
                },
            }
        )
    return _spec(width=DETAIL_WIDTH, height=200, layer=layers)


def fan_spec(forecast: dict[str, Any]) -> dict[str, Any]:
    """Budget remaining from now to the window end: the p10-p90 band and the median line."""
    x = {"field": "t", "type": "temporal", "title": None}
    return _spec(
        width=DETAIL_WIDTH,
        height=160,
        data={"values": forecast["points"]},
        layer=[
            {
                "name": "fan_band",
                "mark": {"type": "area", "opacity": 0.3, "color": "#4c78a8"},
                "encoding": {
                    "x": x,
                    "y": {
                        "field": "p10",
                        "type": "quantitative",
                        "axis": {"format": "%"},
                        "title": "budget remaining",
                    },
                    "y2": {"field": "p90"},
                },
            },
            {
                "name": "fan_median",
                "mark": {"type": "line", "color": "#4c78a8", "point": False},
                "encoding": {
                    "x": x,
                    "y": {"field": "p50", "type": "quantitative"},
                    "tooltip": [
                        {"field": "t", "type": "temporal", "format": "%Y-%m-%d %H:%M"},
                        {"field": "p10", "format": ".1%"},
                        {"field": "p50", "format": ".1%"},
                        {"field": "p90", "format": ".1%"},
                    ],
                },
            },
            {
                "name": "fan_zero",
                "mark": {"type": "rule", "color": "#b3261e"},
                "encoding": {"y": {"datum": 0}},
            },
        ],
    )


def histogram_spec(histogram: list[dict[str, Any]]) -> dict[str, Any]:
    """The share of simulations that exhaust the budget on each day."""
    return _spec(
        width=DETAIL_WIDTH,
        height=120,
        data={"values": histogram},
        layer=[
            {
                "name": "exhaustion",
                "mark": {"type": "bar", "color": "#b3261e"},
                "encoding": {
                    "x": {"field": "day", "type": "ordinal", "title": "exhaustion day (UTC)"},
                    "y": {
                        "field": "share",
                        "type": "quantitative",
                        "axis": {"format": "%"},
                        "title": "share of simulations",
                    },
                    "tooltip": [{"field": "day"}, {"field": "share", "format": ".1%"}],
                },
            }
        ],
    )


def specs_for(view: ObjectiveView) -> dict[str, dict[str, Any] | None]:
    """The chart specs of one objective by role; None where the data is missing (the page shows a note)."""
    status = view.status
    return {
        "gauge": gauge_spec(status.budget_remaining, status.status)
        if status.budget_remaining is not None
        else None,
        "sparkline": sparkline_spec(view.burn) if view.burn else None,
        "history": history_spec(view) if view.sli else None,
        "fan": fan_spec(view.forecast) if view.forecast else None,
        "histogram": histogram_spec(view.histogram) if view.histogram else None,
    }


# ---------------------------------------------------------------------------------------------------------
# The page


_PAGE = _JINJA.from_string("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="sloscope">
<title>SLO dashboard — {{ as_of }}</title>
<style>
body { margin: 0; background: #f6f7f9; color: #1f2328;
  font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 24px; margin: 4px 0; }
h2 { font-size: 18px; margin: 28px 0 8px; }
.as-of, .note { color: #59636e; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr)); gap: 12px; }
.card { background: #fff; border: 1px solid #d8dee4; border-radius: 8px; padding: 10px 12px; }
.card h3 { font-size: 15px; margin: 0 0 4px; overflow-wrap: anywhere; }
.card a { color: inherit; }
.badge { display: inline-block; color: #fff; border-radius: 10px; padding: 0 8px; font-size: 12px; }
.figures { margin: 4px 0; font-variant-numeric: tabular-nums; }
.label { color: #59636e; font-size: 12px; margin: 6px 0 0; }
details.slo { background: #fff; border: 1px solid #d8dee4; border-radius: 8px; margin: 10px 0;
  padding: 8px 14px; }
details.slo > summary { cursor: pointer; font-weight: 600; overflow-wrap: anywhere; }
details.slo:target { border-color: #4c78a8; }
table.alerts { border-collapse: collapse; width: 100%; font-size: 13px; }
table.alerts th, table.alerts td { padding: 4px 6px; border-bottom: 1px solid #e4e7eb; text-align: left; }
.chart { min-height: 20px; }
</style>
<script>{{ bundle }}</script>
</head>
<body>
<main>
<h1>SLO dashboard</h1>
<p class="as-of">As of {{ as_of }} UTC · {{ views | length }}
 objective{{ "" if views | length == 1 else "s" }}</p>
{% for note in notes %}
<p class="note">{{ note }}</p>
{% endfor %}
{% if not views %}
<p class="note">No SLO objectives have been evaluated yet.</p>
{% endif %}
<section class="grid" aria-label="overview">
{% for v in views %}
<article class="card" data-slo-card="{{ loop.index0 }}">
<h3><a href="#{{ v.anchor }}">{{ v.title }}</a></h3>
<span class="badge" style="background: {{ v.badge_colour }}">{{ v.badge }}</span>
<p class="figures">SLI {{ v.sli_text }} · target {{ v.target_text }}</p>
<p class="label">Budget remaining {{ v.remaining_text }}</p>
{% if v.charts.gauge %}<div class="chart" id="{{ v.charts.gauge }}" data-role="gauge"
 data-slo="{{ v.slo }}"></div>
{% else %}<p class="note">No budget figure (no traffic in the window).</p>{% endif %}
<p class="label">Burn rate, last {{ burn_days }} days (hourly)</p>
{% if v.charts.sparkline %}<div class="chart" id="{{ v.charts.sparkline }}" data-role="sparkline"
 data-slo="{{ v.slo }}"></div>
{% else %}<p class="note">No hourly data (slo_hourly) for the last {{ burn_days }} days.</p>{% endif %}
</article>
{% endfor %}
</section>
{% if views %}<h2>Details</h2>{% endif %}
{% for v in views %}
<details class="slo" id="{{ v.anchor }}">
<summary>{{ v.title }} — {{ v.badge }}</summary>
<p class="note">SLO {{ v.slo }} · service {{ v.service }} · {{ v.budgeting_method }}
 · window {{ v.window }}</p>
<h3>SLI history ({{ v.resolution }})</h3>
{% if v.charts.history %}<div class="chart" id="{{ v.charts.history }}" data-role="history"
 data-slo="{{ v.slo }}"
 data-anomalies="{{ v.anomaly_count }}"></div>
{% else %}<p class="note">No SLI history (slo_hourly and slo_history are empty for this SLO).</p>{% endif %}
<h3>Alerts</h3>
{% if v.alerts %}
<table class="alerts"><thead><tr><th>Started (UTC)</th><th>Resolved</th><th>Severity</th><th>Kind</th>
<th>State</th><th>Title</th></tr></thead><tbody>
{% for a in v.alerts %}
<tr class="alert-row"><td>{{ a.started_at }}</td><td>{{ a.resolved_at }}</td><td>{{ a.severity }}</td>
<td>{{ a.kind }}</td><td>{{ a.state }}</td><td>{{ a.title }}</td></tr>
{% endfor %}
</tbody></table>
{% else %}<p class="note">No alerts for this objective.</p>{% endif %}
<h3>Forecast</h3>
{% if v.probability_text %}
<p>Probability the budget is exhausted by the window end: {{ v.probability_text }}</p>
{% endif %}
{% if v.charts.fan %}<div class="chart" id="{{ v.charts.fan }}" data-role="fan" data-slo="{{ v.slo }}"></div>
{% else %}<p class="note">No forecast (slo_forecasts has no row for this objective).</p>{% endif %}
{% if v.charts.histogram %}
<div class="chart" id="{{ v.charts.histogram }}" data-role="histogram" data-slo="{{ v.slo }}"></div>
{% endif %}
</details>
{% endfor %}
</main>
<script type="application/json" id="dashboard-data">{{ data }}</script>
<script>
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);
  data.charts.forEach(function (chart) {
    var el = document.getElementById(chart.id);
    vegaEmbed(el, chart.spec, {mode: "vega-lite", renderer: "svg", actions: false})
      .then(function () { el.setAttribute("data-rendered", "true"); })
      .catch(function (err) { console.error("chart " + chart.id + " failed: " + err); });
  });
  // Drill-down by hash: open the <details> a card links to, also on load and on back/forward.
  function openTarget() {
    var id;
    try { id = decodeURIComponent(window.location.hash.slice(1)); } catch (e) { return; }  // a malformed hash
    var el = id ? document.getElementById(id) : null;
    if (el && el.tagName === "DETAILS") { el.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
</script>
</body>
</html>
""")


def _pct(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def render_html(data: DashboardData) -> str:
    """The whole page as text: chart specs go into the JSON block, names only through autoescaping."""
    from markupsafe import Markup

    charts: list[dict[str, Any]] = []
    rows = []
    for view in data.views:
        ids: dict[str, str | None] = {}
        for role, spec in specs_for(view).items():
            if spec is None:
                ids[role] = None
                continue
            chart_id = f"chart-{len(charts)}"
            charts.append({"id": chart_id, "spec": spec})
            ids[role] = chart_id
        s = view.status
        badge, colour = _BADGES.get(s.status, (s.status, _BADGES["no_data"][1]))
        probability = (view.forecast or {}).get("probability_exhausted")
        rows.append(
            {
                "anchor": view.anchor,
                "title": view.title,
                "slo": s.slo,
                "service": s.service,
                "budgeting_method": s.budgeting_method,
                "window": f"{_iso(s.window_start)} – {_iso(s.window_end)}",
                "badge": badge,
                "badge_colour": colour,
                "sli_text": _pct(s.sli),
                "target_text": _pct(s.target),
                "remaining_text": _pct(s.budget_remaining, 1),
                "resolution": "hourly" if view.sli_resolution == "hour" else "daily",
                "anomaly_count": len(view.anomalies),
                "alerts": view.alerts,
                "probability_text": _pct(probability, 1) if probability is not None else "",
                "charts": ids,
            }
        )
    return _PAGE.render(
        as_of=data.as_of.strftime("%Y-%m-%d %H:%M"),
        notes=data.notes,
        views=rows,
        burn_days=BURN_DAYS,
        # Both are trusted to be inert inside <script>: the bundle is checked, the data escaped.
        bundle=Markup(javascript_bundle()),
        data=Markup(script_json({"charts": charts})),
    )


def build_dashboard(con: duckdb.DuckDBPyConnection, out: Path, *, as_of: datetime | None = None) -> Path:
    """Write the dashboard to ``out`` (a file, or ``index.html`` inside an existing folder) and return it.

    Written to a temporary file beside the target and renamed into place, so a browser or web server never
    sees half a page, and a failed build leaves the previous dashboard intact.
    """
    target = out / "index.html" if out.is_dir() else out
    target.parent.mkdir(parents=True, exist_ok=True)
    page = render_html(collect(con, as_of=as_of))
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp_name, 0o644)  # mkstemp's 0600 would hide the page from a web server's user
        os.replace(tmp_name, target)
    except BaseException as exc:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk: say which page could not be written
            raise OSError(exc.errno, exc.strerror, str(target)) from exc
        raise
    return target

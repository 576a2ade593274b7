"""Cross-service reports for a period (month or quarter): executive summary, SLA compliance, incident digest.

Same delivery contract as the per-service report (:mod:`pipelines.slo.report`): a parameterised notebook
run by papermill, charts rendered to inline SVG by vl-convert inside the kernel, the outputs wrapped into
one standalone HTML page (no CDN, no script) written atomically to
``reports/<period>/All-services/<kind>.html``.

:func:`portfolio_inputs` gathers everything with read-only queries into one JSON-able dict, so the
notebooks never touch DuckDB (a kernel holding a connection would block the single writer). Data shaping,
narrative sentences, tables and charts live here, testable without a kernel; the notebooks only call them.
Optional tables (incidents, forecasts, corrections, history) may be missing or empty in older warehouses:
the gathering records a note and the report says so instead of failing.

This module must not import Dagster: it runs inside the kernel as well as in the code location.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import escape

from pipelines.slo.report import (
    _JINJA,
    KERNEL_NAME,
    REPO_ROOT,
    _kernel_manager_class,
    _naive_utc,
    chart_svg,
    figure_html,
    note_html,
    notebook_to_html,
    safe_slug,
    section_heading_html,
)

if TYPE_CHECKING:
    import altair as alt
    import duckdb

    from pipelines.slo.policies import PolicySet
    from pipelines.slo.spec import SloDefinition

__all__ = [
    "KINDS",
    "NOTEBOOKS",
    "budget_remaining_chart",
    "corrections_table_html",
    "executive_narrative",
    "forecast_table_html",
    "header_html",
    "incident_narrative",
    "incident_table_html",
    "incident_timelines_html",
    "incidents_per_day_chart",
    "load_inputs",
    "objectives_table_html",
    "portfolio_inputs",
    "render_portfolio_report",
    "service_breakdown_html",
    "sla_narrative",
    "sla_sli_chart",
    "sla_timelines_html",
]

NOTEBOOKS: dict[str, Path] = {
    "executive": REPO_ROOT / "notebooks" / "executive_summary.ipynb",
    "sla": REPO_ROOT / "notebooks" / "sla_compliance.ipynb",
    "incidents": REPO_ROOT / "notebooks" / "incident_digest.ipynb",
}
KINDS = tuple(NOTEBOOKS)
TITLES = {
    "executive": "Executive summary",
    "sla": "SLA compliance",
    "incidents": "Incident digest",
}
# Upper-case letters: safe_slug never produces them, so no service's folder can be this one.
FOLDER = "All-services"
TOP_RISKS = 5
CHART_WIDTH = 600
_MAX_EVENTS = 40  # per incident in the digest: a flapping incident must not bury the rest of the page


# ---------------------------------------------------------------------------------------------------------
# Gathering (read-only)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else _naive_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return _naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _jsonable(value: Any) -> Any:
    """DuckDB hands back datetimes, dates and Decimals; the inputs file is JSON without NaN."""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _rows(
    con: duckdb.DuckDBPyConnection, table: str, sql: str, params: dict[str, Any], notes: list[str]
) -> list[dict[str, Any]]:
    """Rows of an optional table (see :func:`pipelines.warehouse.optional_rows`), JSON-able."""
    from pipelines.warehouse import optional_rows

    return [_jsonable(row) for row in optional_rows(con, table, sql, params, notes)]


def _json_field(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None


def portfolio_inputs(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    *,
    period_start: datetime,
    period_end: datetime,
    at_risk_remaining: float = 0.25,
    policies: PolicySet | None = None,
) -> dict[str, Any]:
    """Everything the three reports show for ``[period_start, period_end)`` (naive UTC), as JSON-able data.

    Statuses are evaluated as of ``period_end`` (at a calendar period's end the evaluator reports the period
    that just ended). Only SELECTs are run, so this is safe next to a writer holding no lock.
    """
    import duckdb

    from pipelines.slo.budget import EvaluationError, evaluate
    from pipelines.slo.corrections import list_corrections

    start, end = _naive_utc(period_start), _naive_utc(period_end)
    if end <= start:
        raise ValueError(
            f"period_end {end:%Y-%m-%dT%H:%M}Z must be after period_start {start:%Y-%m-%dT%H:%M}Z"
        )
    notes: list[str] = []
    names = sorted({s.name for s in slos} | {s.composite for s in slos if s.composite})

    statuses: list[dict[str, Any]] = []
    try:
        for status in evaluate(con, slos, end, at_risk_remaining=at_risk_remaining, policies=policies):
            statuses.append(_jsonable({**status.to_json(), "display_name": status.display_name}))
    except (EvaluationError, duckdb.Error) as exc:
        notes.append(f"The objectives could not be evaluated as of the period's end: {exc}")

    history = _rows(
        con,
        "slo_history",
        "SELECT day, slo, display_name, service, objective, objective_index, target::DOUBLE AS target, "
        "good, total, sli, budget_consumed, budget_remaining, status FROM slo_history "
        "WHERE day + INTERVAL 12 HOUR >= $start AND day + INTERVAL 12 HOUR < $end "
        "AND slo IN (SELECT unnest($slos)) ORDER BY slo, objective_index, day",
        # History days are UTC days; a period in another time zone takes the days whose middle falls
        # inside it (a Berlin March: 1 to 31 March, not 28 February).
        {"start": start, "end": end, "slos": names},
        notes,
    )

    incidents = _rows(
        con,
        "incidents",
        "SELECT incident_id, service, severity, state, title, opened_at, acknowledged_at, acknowledged_by, "
        "resolved_at, resolved_by, escalation_level FROM incidents "
        "WHERE opened_at < $end AND (resolved_at IS NULL OR resolved_at >= $start) "
        "ORDER BY opened_at, incident_id",
        {"start": start, "end": end},
        notes,
    )
    ids = [i["incident_id"] for i in incidents]
    alerts = (
        _rows(
            con,
            "alert_instances",
            "SELECT alert_id, incident_id, slo, slo_display_name, service, objective, kind, severity, state, "
            "started_at, resolved_at, title, details FROM alert_instances "
            "WHERE list_contains($ids, incident_id) ORDER BY started_at, alert_id",
            {"ids": ids},
            notes,
        )
        if ids
        else []
    )
    for alert in alerts:
        details = _json_field(alert.pop("details")) or {}
        impact = details.get("impact") if isinstance(details, dict) else None
        alert["budget_consumed"] = impact.get("budget_consumed") if isinstance(impact, dict) else None
    events = (
        _rows(
            con,
            "incident_events",
            "SELECT incident_id, event_at, event, actor, alert_id, detail FROM incident_events "
            "WHERE list_contains($ids, incident_id) ORDER BY incident_id, event_at, recorded_at",
            {"ids": ids},
            notes,
        )
        if ids
        else []
    )
    for incident in incidents:
        incident["alerts"] = [a for a in alerts if a["incident_id"] == incident["incident_id"]]
        incident["events"] = [e for e in events if e["incident_id"] == incident["incident_id"]]

    corrections: list[dict[str, Any]] = []
    try:
        for c in list_corrections(con, include_removed=True):
            intervals = c.intervals(start, end)
            if not intervals:
                continue
            corrections.append(
                _jsonable(
                    {
                        "correction_id": c.correction_id,
                        "slo": c.slo,
                        "service": c.service,
                        "reason": c.reason,
                        "added_by": c.added_by,
                        "recurring": c.recurring,
                        "removed": c.removed,
                        "intervals": [list(i) for i in intervals],
                        "minutes": sum((b - a).total_seconds() for a, b in intervals) / 60,
                    }
                )
            )
    except duckdb.Error as exc:
        notes.append(f"Could not read slo_corrections: {exc}")

    forecasts = _rows(
        con,
        "slo_forecasts",
        "SELECT slo, service, objective, as_of, probability_exhausted, budget_remaining_now, "
        "exhaustion_p50, window_end FROM slo_forecasts WHERE slo IN (SELECT unnest($slos)) AND as_of <= $end "
        "QUALIFY row_number() OVER (PARTITION BY slo, objective ORDER BY as_of DESC) = 1 "
        "ORDER BY probability_exhausted DESC, slo, objective",
        {"slos": names, "end": end},
        notes,
    )
    display = {s["slo"]: s.get("display_name") or s["slo"] for s in statuses}
    for f in forecasts:
        f["display_name"] = display.get(f["slo"], f["slo"])

    return {
        "period_start": _iso(start),
        "period_end": _iso(end),
        "statuses": statuses,
        "history": history,
        "incidents": incidents,
        "corrections": corrections,
        "forecasts": forecasts[:TOP_RISKS],
        "notes": notes,
    }


def write_inputs(path: Path, inputs: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # allow_nan=False: the contract uses null for "no data"; a NaN here is an upstream bug.
    tmp.write_text(json.dumps(inputs, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_inputs(path: str | Path) -> dict[str, Any]:
    """The inputs file; an empty path gives empty inputs so a bare notebook still runs."""
    if not str(path):
        return {
            "statuses": [],
            "history": [],
            "incidents": [],
            "corrections": [],
            "forecasts": [],
            "notes": [],
        }
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------------
# Figures and sentences


def _label(s: dict[str, Any]) -> str:
    name = s.get("display_name") or s.get("slo") or "?"
    objective = s.get("objective")
    return f"{name} ({objective})" if objective and objective != name else str(name)


def _target(target: float | None) -> str:
    if target is None:
        return "no data"
    return f"{target * 100:.4f}".rstrip("0").rstrip(".") + "%"


def _share(fraction: float | None) -> str:
    """Budget shares: whole percent once large, one decimal below 10% so small burns still show."""
    if fraction is None:
        return "no data"
    value = fraction * 100
    return f"{value:.0f}%" if abs(value) >= 10 else f"{value:.1f}%"


def _minute(text: str | None) -> str:
    """'2026-03-03T00:01:00Z' -> '2026-03-03 00:01': the inputs' ISO text, shown to the minute."""
    return (text or "?")[:16].replace("T", " ")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _duration(minutes: float) -> str:
    minutes = round(minutes)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def missed(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """Objectives over budget at the period's end, worst first (the ones a reader acts on)."""
    out = [s for s in inputs.get("statuses", []) if s.get("status") == "breached"]
    return sorted(out, key=lambda s: -((s.get("error_budget") or {}).get("consumed") or 0))


def _met_count(statuses: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(met, missed, no data): at risk still meets its target, only an overspent budget misses it."""
    counts = Counter(s.get("status") for s in statuses)
    return len(statuses) - counts["breached"] - counts["no_data"], counts["breached"], counts["no_data"]


def _minutes_phrase(s: dict[str, Any]) -> str:
    units = s.get("budget_units") or {}
    bad, budget = units.get("bad_minutes"), units.get("budget_minutes")
    if bad is None or not budget:
        return ""
    return f" ({bad:.0f} of {budget:.0f} budget minutes)"


def incident_minutes(incident: dict[str, Any], period_end: datetime | None) -> float:
    """Open to resolved; an unresolved incident counts up to the period's end."""
    opened = _parse(incident.get("opened_at"))
    closed = _parse(incident.get("resolved_at")) or period_end
    if opened is None or closed is None:
        return 0.0
    return max((closed - opened).total_seconds() / 60, 0.0)


def _largest_incident(inputs: dict[str, Any], s: dict[str, Any]) -> tuple[dict, float] | None:
    """The incident whose alerts on this objective consumed the most budget (from the alert's impact)."""
    best: tuple[dict, float] | None = None
    for incident in inputs.get("incidents", []):
        for alert in incident.get("alerts", []):
            if alert.get("slo") != s.get("slo") or alert.get("budget_consumed") is None:
                continue
            if best is None or alert["budget_consumed"] > best[1]:
                best = (incident, float(alert["budget_consumed"]))
    return best


def executive_narrative(inputs: dict[str, Any], period: str) -> str:
    """Plain sentences (escape for HTML): objectives met, who missed and by how much, incidents, top risk."""
    statuses = inputs.get("statuses", [])
    if not statuses:
        return f"In {period}, no objectives could be evaluated: there is no data for the period."
    met, n_missed, no_data = _met_count(statuses)
    sentences = [f"In {period}, {met} of {_plural(len(statuses), 'objective')} met their targets."]
    if no_data:
        sentences.append(f"{_plural(no_data, 'objective')} had no data.")
    for s in missed(inputs)[:3]:
        consumed = (s.get("error_budget") or {}).get("consumed")
        sentence = (
            f"{_label(s)} missed {_target(s.get('target'))}: it used {_share(consumed)} of its error "
            f"budget{_minutes_phrase(s)}."
        )
        largest = _largest_incident(inputs, s)
        if largest:
            incident, impact = largest
            sentence += (
                f" Incident #{incident['incident_id']} (opened {_minute(incident['opened_at'])} UTC) "
                f"alone consumed {_share(impact)} of the budget."
            )
        sentences.append(sentence)
    if n_missed > 3:
        sentences.append(f"{n_missed - 3} more objectives missed their targets.")
    incidents = inputs.get("incidents", [])
    if incidents:
        pages = sum(1 for i in incidents if i.get("severity") == "page")
        sentences.append(f"There were {_plural(len(incidents), 'incident')}, {pages} of them paged.")
    else:
        sentences.append("There were no incidents.")
    risks = [f for f in inputs.get("forecasts", []) if (f.get("probability_exhausted") or 0) > 0]
    if risks:
        top = risks[0]
        sentences.append(
            f"Top risk: {top['display_name']} ({top['objective']}) has a "
            f"{top['probability_exhausted'] * 100:.0f}% chance of exhausting its budget before its "
            "window ends."
        )
    return " ".join(sentences)


def history_of(inputs: dict[str, Any], s: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        h
        for h in inputs.get("history", [])
        if h.get("slo") == s.get("slo") and h.get("objective") == s.get("objective")
    ]


def corrections_for(inputs: dict[str, Any], s: dict[str, Any]) -> list[dict[str, Any]]:
    """The period's corrections the evaluator applied to this objective (ids from its status)."""
    applied = set((s.get("corrections_applied") or {}).get("ids") or [])
    return [c for c in inputs.get("corrections", []) if c["correction_id"] in applied]


def sla_narrative(inputs: dict[str, Any], period: str) -> str:
    """Per violated objective: how far over, the first day over budget, and the corrections applied."""
    statuses = inputs.get("statuses", [])
    if not statuses:
        return f"In {period}, no objectives could be evaluated: there is no data for the period."
    violated = missed(inputs)
    if not violated:
        return f"In {period}, all {_plural(len(statuses), 'objective')} with data met their SLA targets."
    sentences = [
        f"In {period}, {len(violated)} of {_plural(len(statuses), 'objective')} violated their targets."
    ]
    for s in violated:
        consumed = (s.get("error_budget") or {}).get("consumed")
        sli = s.get("sli")
        sli_text = "no data" if sli is None else f"{sli * 100:.3f}%"
        sentence = (
            f"{_label(s)}: SLI {sli_text} against {_target(s.get('target'))}, "
            f"{_share(consumed)} of the error budget used"
        )
        over = [h for h in history_of(inputs, s) if (h.get("budget_remaining") or 0) < 0]
        sentence += f", over budget from {over[0]['day']}." if over else "."
        fixes = corrections_for(inputs, s)
        if fixes:
            minutes = sum(c["minutes"] for c in fixes)
            reasons = "; ".join(c["reason"] for c in fixes)
            sentence += (
                f" {_plural(len(fixes), 'correction')} excluded {minutes:.0f} minutes from its budget "
                f"({reasons})."
            )
        sentences.append(sentence)
    return " ".join(sentences)


def incident_narrative(inputs: dict[str, Any], period: str) -> str:
    """Count, total duration, pages vs tickets, the longest incident and the per-service breakdown."""
    incidents = inputs.get("incidents", [])
    if not incidents:
        return f"In {period}, there were no incidents."
    end = _parse(inputs.get("period_end"))
    total = sum(incident_minutes(i, end) for i in incidents)
    severities = Counter(i.get("severity") for i in incidents)
    longest = max(incidents, key=lambda i: incident_minutes(i, end))
    by_service = Counter(i.get("service") for i in incidents)
    breakdown = ", ".join(
        f"{svc} {n}" for svc, n in sorted(by_service.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return (
        f"In {period}, there were {_plural(len(incidents), 'incident')} lasting {_duration(total)} in total: "
        f"{_plural(severities['page'], 'page')} and {_plural(severities['ticket'], 'ticket')}. "
        f"The longest was #{longest['incident_id']} ({longest.get('title')}, {longest.get('service')}), "
        f"{_duration(incident_minutes(longest, end))}. By service: {breakdown}.{_open_clause(incidents)}"
    )


def _open_clause(incidents: list[dict[str, Any]]) -> str:
    # Unresolved incidents are counted up to the period's end; say so, or the total reads as measured.
    still_open = sum(1 for i in incidents if not i.get("resolved_at"))
    if not still_open:
        return ""
    verb = "was" if still_open == 1 else "were"
    return f" {still_open} of them {verb} still open at the period's end (counted up to it)."


NARRATIVES = {"executive": executive_narrative, "sla": sla_narrative, "incidents": incident_narrative}


# ---------------------------------------------------------------------------------------------------------
# HTML (autoescaped: every value comes from SLO files, incident titles and reasons we do not control)

_HEADER = _JINJA.from_string(
    "<h1>{{ title }} — {{ period }}</h1>\n"
    '<p class="as-of">All services, {{ start }} to {{ end }} UTC</p>\n'
    '<p class="narrative">{{ text }}</p>\n'
    '{% for note in notes %}<p class="note">{{ note }}</p>\n{% endfor %}'
)


def header_html(kind: str, inputs: dict[str, Any], period: str) -> str:
    """Title, period and the data-generated narrative; gathering notes (missing tables) follow it."""
    return _HEADER.render(
        title=TITLES[kind],
        period=period,
        start=(inputs.get("period_start") or "?")[:16].replace("T", " "),
        end=(inputs.get("period_end") or "?")[:16].replace("T", " "),
        text=NARRATIVES[kind](inputs, period),
        notes=inputs.get("notes", []),
    )


_TABLE = _JINJA.from_string("""<table class="slo-status">
<thead><tr>{% for h in heads %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}
<tr>{% for cell in row %}<td{% if loop.index0 in numeric %} class="num"{% endif %}>{{ cell }}</td>
{%- endfor %}</tr>
{% else %}
<tr><td colspan="{{ heads|length }}">{{ empty }}</td></tr>
{% endfor %}
</tbody>
</table>
""")


def _table(heads: list[str], rows: list[list[Any]], empty: str, numeric: tuple[int, ...] = ()) -> str:
    return _TABLE.render(heads=heads, rows=rows, empty=empty, numeric=set(numeric))


_STATUS_TEXT = {"ok": "Met", "at_risk": "Met (at risk)", "breached": "Missed", "no_data": "No data"}


def objectives_table_html(inputs: dict[str, Any]) -> str:
    rows = []
    for s in inputs.get("statuses", []):
        budget = s.get("error_budget") or {}
        sli = s.get("sli")
        rows.append(
            [
                _label(s),
                s.get("service"),
                _target(s.get("target")),
                "no data" if sli is None else f"{sli * 100:.3f}%",
                _share(budget.get("consumed")),
                _share(budget.get("remaining")),
                _STATUS_TEXT.get(s.get("status") or "", s.get("status")),
            ]
        )
    return _table(
        ["Objective", "Service", "Target", "SLI", "Budget used", "Budget left", "Result"],
        rows,
        "No objectives were evaluated.",
        numeric=(2, 3, 4, 5),
    )


def forecast_table_html(inputs: dict[str, Any]) -> str:
    rows = [
        [
            f"{f['display_name']} ({f['objective']})",
            f"{(f.get('probability_exhausted') or 0) * 100:.0f}%",
            _share(f.get("budget_remaining_now")),
            (f.get("exhaustion_p50") or "—")[:10],
        ]
        for f in inputs.get("forecasts", [])
    ]
    return _table(
        ["Objective", "P(budget exhausted)", "Budget left now", "Median exhaustion"],
        rows,
        "No forecasts are stored for this period.",
        numeric=(1, 2),
    )


def corrections_table_html(corrections: list[dict[str, Any]]) -> str:
    rows = [
        [
            f"#{c['correction_id']}",
            c["slo"] if c.get("service") is None else f"{c['slo']} ({c['service']})",
            "; ".join(
                f"{a[:16].replace('T', ' ')} – {b[:16].replace('T', ' ')}" for a, b in c["intervals"][:5]
            )
            + (" …" if len(c["intervals"]) > 5 else ""),
            f"{c['minutes']:.0f}",
            c["reason"],
            c["added_by"],
            "removed" if c.get("removed") else "active",
        ]
        for c in corrections
    ]
    return _table(
        ["Id", "SLO", "Excluded (UTC)", "Minutes", "Reason", "Added by", "State"],
        rows,
        "No corrections overlap the period.",
        numeric=(3,),
    )


def sla_timelines_html(inputs: dict[str, Any]) -> str:
    """Each violated objective's daily budget consumption (from the daily history) and its corrections."""
    parts: list[str] = []
    for s in missed(inputs):
        parts.append(f"<h3>{escape(_label(s))}</h3>")
        days = history_of(inputs, s)
        rows = [
            [
                h["day"],
                "no data" if h.get("sli") is None else f"{h['sli'] * 100:.3f}%",
                _share(h.get("budget_consumed")),
                _STATUS_TEXT.get(h.get("status") or "", h.get("status")),
            ]
            for h in days
        ]
        parts.append(
            _table(
                ["Day (UTC)", "SLI over window", "Budget used", "Result"],
                rows,
                "No daily history is stored for this period.",
                numeric=(1, 2),
            )
        )
        fixes = corrections_for(inputs, s)
        parts.append(corrections_table_html(fixes) if fixes else note_html("No corrections were applied."))
    return "".join(parts) or note_html("No objective violated its target in this period.")


def incident_table_html(inputs: dict[str, Any]) -> str:
    end = _parse(inputs.get("period_end"))
    rows = [
        [
            f"#{i['incident_id']}",
            i.get("service"),
            i.get("severity"),
            i.get("title"),
            (i.get("opened_at") or "")[:16].replace("T", " "),
            _duration(incident_minutes(i, end)) + ("" if i.get("resolved_at") else " (ongoing)"),
            i.get("state"),
        ]
        for i in inputs.get("incidents", [])
    ]
    return _table(
        ["Id", "Service", "Severity", "Title", "Opened (UTC)", "Duration", "State"],
        rows,
        "No incidents in this period.",
        numeric=(5,),
    )


def service_breakdown_html(inputs: dict[str, Any]) -> str:
    end = _parse(inputs.get("period_end"))
    by: dict[str, list[dict]] = {}
    for i in inputs.get("incidents", []):
        by.setdefault(str(i.get("service")), []).append(i)
    rows = [
        [
            svc,
            len(items),
            sum(1 for i in items if i.get("severity") == "page"),
            sum(1 for i in items if i.get("severity") == "ticket"),
            _duration(sum(incident_minutes(i, end) for i in items)),
        ]
        for svc, items in sorted(by.items())
    ]
    return _table(
        ["Service", "Incidents", "Pages", "Tickets", "Total duration"],
        rows,
        "No incidents.",
        numeric=(1, 2, 3, 4),
    )


def incident_timelines_html(inputs: dict[str, Any]) -> str:
    parts: list[str] = []
    for i in inputs.get("incidents", []):
        parts.append(f"<h3>#{escape(i['incident_id'])} {escape(i.get('title'))}</h3>")
        events = i.get("events", [])
        rows = [
            [
                (e.get("event_at") or "")[:16].replace("T", " "),
                e.get("event"),
                e.get("actor"),
                e.get("detail"),
            ]
            for e in events[:_MAX_EVENTS]
        ]
        parts.append(_table(["Time (UTC)", "Event", "Actor", "Detail"], rows, "No events recorded."))
        if len(events) > _MAX_EVENTS:
            parts.append(note_html(f"{len(events) - _MAX_EVENTS} later events are not shown."))
    return "".join(parts) or note_html("No incidents in this period.")


# ---------------------------------------------------------------------------------------------------------
# Chart data and charts (rendered with chart_svg inside the kernel)


def budget_remaining_rows(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "objective": _label(s),
            "remaining": float(s["error_budget"]["remaining"]),
            "result": _STATUS_TEXT[s["status"]],
        }
        for s in inputs.get("statuses", [])
        if (s.get("error_budget") or {}).get("remaining") is not None and s.get("status") in _STATUS_TEXT
    ]


def budget_remaining_chart(rows: list[dict[str, Any]]) -> alt.LayerChart:
    """One bar per objective on a shared scale: remaining budget is a share, comparable across targets."""
    import altair as alt

    bars = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            y=alt.Y("objective:N", title=None, sort=None, axis=alt.Axis(labelLimit=260)),
            x=alt.X("remaining:Q", title="Error budget remaining", axis=alt.Axis(format="%")),
            color=alt.Color(
                "result:N",
                title=None,
                scale=alt.Scale(
                    domain=["Met", "Met (at risk)", "Missed"], range=["#1e7b34", "#9a5b00", "#b3261e"]
                ),
                legend=alt.Legend(orient="bottom"),
            ),
        )
    )
    zero = alt.Chart(alt.Data(values=[{"x": 0.0}])).mark_rule(color="#1f2328").encode(x="x:Q")
    return alt.layer(bars, zero).properties(
        width=CHART_WIDTH - 200,
        title=alt.Title("Error budget remaining at the period's end", anchor="start"),
    )


def sla_sli_rows(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in missed(inputs):
        for h in history_of(inputs, s):
            if h.get("sli") is not None:
                rows.append(
                    {
                        "series": _label(s),
                        "day": f"{h['day']}T00:00:00Z",
                        "sli": h["sli"],
                        "target": h["target"],
                    }
                )
    return rows


def sla_sli_chart(rows: list[dict[str, Any]]) -> alt.FacetChart:
    """One panel per violated objective, own y scale: targets differ and a shared one would flatten them."""
    import altair as alt

    x = alt.X(
        "day:T", title="Day (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%b %d", labelAngle=0)
    )
    line = (
        alt.Chart()
        .mark_line(point=True, color="#1f6feb")
        .encode(x=x, y=alt.Y("sli:Q", title="SLI", scale=alt.Scale(zero=False), axis=alt.Axis(format=".3~%")))
    )
    target = alt.Chart().mark_rule(color="#b3261e", strokeDash=[5, 4]).encode(y="mean(target):Q")
    return (
        alt.layer(line, target, data=alt.Data(values=rows))
        .properties(width=CHART_WIDTH, height=130)
        .facet(
            row=alt.Row(
                "series:N",
                title=None,
                header=alt.Header(
                    labelAngle=0, labelAnchor="start", labelOrient="top", labelLimit=CHART_WIDTH
                ),
            )
        )
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title(
                "SLI over the SLO window, as of each day's end",
                anchor="start",
                subtitle="Dashed red line: the objective's target.",
            )
        )
    )


def incidents_per_day_rows(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    counts = Counter(
        ((i.get("opened_at") or "")[:10], str(i.get("severity"))) for i in inputs.get("incidents", [])
    )
    return [
        {"day": f"{d}T00:00:00Z", "severity": sev, "incidents": n} for (d, sev), n in sorted(counts.items())
    ]


def incidents_per_day_chart(rows: list[dict[str, Any]]) -> alt.Chart:
    import altair as alt

    return (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            x=alt.X(
                "utcyearmonthdate(day):O",
                title="Day opened (UTC)",
                axis=alt.Axis(format="%b %d", labelAngle=0),
            ),
            y=alt.Y("sum(incidents):Q", title="Incidents", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color(
                "severity:N",
                title=None,
                scale=alt.Scale(domain=["page", "ticket", "info"], range=["#b3261e", "#9a5b00", "#5f6368"]),
                legend=alt.Legend(orient="bottom"),
            ),
        )
        .properties(
            width=CHART_WIDTH, height=200, title=alt.Title("Incidents opened per day", anchor="start")
        )
    )


def chart_html(kind: str, inputs: dict[str, Any]) -> str:
    """The kind's chart as an inline SVG figure, or a note when there is nothing to draw."""
    if kind == "executive":
        rows, heading = budget_remaining_rows(inputs), "Error budget"
        make, caption = budget_remaining_chart, "Below zero the objective missed its target."
    elif kind == "sla":
        rows, heading = sla_sli_rows(inputs), "Violations over time"
        make, caption = sla_sli_chart, "From the daily SLO history (each day's evaluation of the SLO window)."
    else:
        rows, heading = incidents_per_day_rows(inputs), "Incidents per day"
        make, caption = incidents_per_day_chart, "Stacked by severity."
    if not rows:
        return section_heading_html(heading) + note_html("No data to chart for this period.")
    return section_heading_html(heading) + figure_html(chart_svg(make(rows)), caption)  # type: ignore[operator]


# ---------------------------------------------------------------------------------------------------------
# Rendering


def render_portfolio_report(
    kind: str,
    inputs: dict[str, Any],
    reports_dir: Path,
    *,
    period: str,
    kernel_name: str = KERNEL_NAME,
    timeout_s: int = 300,
) -> Path:
    """Execute the kind's notebook and return ``reports_dir/<period>/All-services/<kind>.html``.

    The executed notebook (``<kind>.ipynb``) and its inputs (``data/<kind>.json``) stay beside the page for
    debugging. papermill changes the working directory while the kernel runs: do not render from several
    threads of one process at once.
    """
    import papermill as pm

    if kind not in NOTEBOOKS:
        raise ValueError(f"report kind {kind!r} is not one of {', '.join(KINDS)}")
    root = reports_dir.resolve()
    folder = root / safe_slug(period) / FOLDER
    if not folder.resolve().is_relative_to(root):  # safe_slug guarantees this; a report must never escape.
        raise ValueError(f"report folder {folder} is outside {root}")
    inputs_path = write_inputs(folder / "data" / f"{kind}.json", inputs)
    notebook_path = folder / f"{kind}.ipynb"
    html_path = folder / f"{kind}.html"
    # A failed re-run must not leave the previous page looking current to whoever mails it.
    html_path.unlink(missing_ok=True)
    pm.execute_notebook(
        str(NOTEBOOKS[kind]),
        str(notebook_path),
        parameters={"inputs_path": inputs_path.relative_to(folder).as_posix(), "period": period},
        kernel_name=kernel_name,
        cwd=str(folder),
        log_output=False,
        progress_bar=False,
        execution_timeout=timeout_s,
        kernel_manager_class=_kernel_manager_class(),
    )
    page = notebook_to_html(notebook_path, title=f"{TITLES[kind]} — {period}")
    tmp = html_path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(html_path)
    return html_path

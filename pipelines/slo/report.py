"""Per-service SLO reports: a parameterised notebook run by papermill, rendered to one standalone HTML file.

Reports are emailed, so the page must stand alone: no CDN, no external references, no JavaScript. Charts
are rendered to inline SVG by vl-convert inside the kernel, and nbconvert's ``basic`` template (cells only,
no page chrome that would pull in MathJax or RequireJS) is wrapped into a small page of our own.

The notebook (``notebooks/service_report.ipynb``) stays thin: the data shaping, charts and HTML snippets
live here so they can be tested without a kernel. This module must not import Dagster: it runs inside the
kernel as well as inside the code location. Heavy libraries (altair, vl-convert, papermill, nbconvert) are
imported where they are used so that importing the code location stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from jinja2 import Environment
from markupsafe import Markup, escape

if TYPE_CHECKING:
    import altair as alt

__all__ = [
    "KERNEL_NAME",
    "NOTEBOOK",
    "budget_chart",
    "budget_remaining_frame",
    "burn_rate_chart",
    "chart_svg",
    "daily_sli_chart",
    "daily_sli_frame",
    "figure_html",
    "header_html",
    "hourly_burn_frame",
    "load_inputs",
    "narrative",
    "note_html",
    "parse_as_of",
    "render_service_report",
    "safe_slug",
    "section_heading_html",
    "status_table_html",
    "write_report_inputs",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK: Path = REPO_ROOT / "notebooks" / "service_report.ipynb"
KERNEL_NAME = "sloscope"

CHART_WIDTH = 640
SLI_DAYS = 28
BURN_DAYS = 7
_SLUG_MAX = 80
_SLUG_OK = re.compile(r"[a-z0-9._-]+")
_HOURLY_SCHEMA: dict[str, pl.DataType] = {
    "slo": pl.String(),
    "objective": pl.String(),
    "target": pl.Float64(),
    "bucket_start": pl.Datetime("us"),
    "good": pl.Int64(),
    "total": pl.Int64(),
}
# Colours chosen to keep white text readable (WCAG AA) in mail clients that drop <style> blocks.
_BADGES = {
    "ok": ("OK", "#1e7b34"),
    "at_risk": ("At risk", "#9a5b00"),
    "breached": ("Breached", "#b3261e"),
    "no_data": ("No data", "#5f6368"),
}
NO_DATA = "no data"

# Autoescaping is the point: every value in a report comes from SLO files or service names we do not control.
_JINJA = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


# ---------------------------------------------------------------------------------------------------------
# Paths and inputs


def safe_slug(name: str) -> str:
    """A folder name for ``name`` that is safe on every filesystem and cannot escape its parent.

    Names that are already safe are kept as they are, so folders stay recognisable. Anything else is
    lowered, reduced to ``[a-z0-9._-]`` and suffixed with a hash of the original, because the reduction is
    lossy (``A/B`` and ``a-b`` would otherwise share a folder).
    """
    if len(name) <= _SLUG_MAX and _SLUG_OK.fullmatch(name) and ".." not in name and name.strip(".-") == name:
        return name
    base = re.sub(r"[^a-z0-9._-]+", "-", name.lower())
    base = re.sub(r"\.{2,}", ".", base)
    base = re.sub(r"-{2,}", "-", base)
    suffix = "-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    # Leading dots would hide the folder and leading dashes read as options to shell tools.
    base = base[: _SLUG_MAX - len(suffix)].strip(".-") or "service"
    return base + suffix


def _normalise_hourly(hourly: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in _HOURLY_SCHEMA if c not in hourly.columns]
    if missing:
        raise ValueError(f"hourly data lacks columns {missing}; expected {list(_HOURLY_SCHEMA)}")
    frame = hourly.select(list(_HOURLY_SCHEMA))
    if isinstance(frame.schema["bucket_start"], pl.Datetime) and frame.schema["bucket_start"].time_zone:
        # The contract is naive UTC; an aware column is converted rather than silently shifted.
        naive = pl.col("bucket_start").dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        frame = frame.with_columns(naive)
    # Float64 for target: DuckDB may hand over DECIMAL, which Altair and JSON cannot serialise as numbers.
    return frame.cast(_HOURLY_SCHEMA)  # type: ignore[arg-type]


def write_report_inputs(
    out_dir: Path, service: str, statuses: list[dict], hourly: pl.DataFrame
) -> tuple[Path, Path]:
    """Write the notebook's inputs: ``statuses.json`` (the list as given) and ``hourly.parquet``."""
    foreign = sorted({str(s.get("service")) for s in statuses if s.get("service", service) != service})
    if foreign:
        # A report that silently mixes services would be wrong in a way nobody reading it could notice.
        raise ValueError(f"statuses for the {service!r} report include other services: {foreign}")
    out_dir.mkdir(parents=True, exist_ok=True)
    statuses_path = out_dir / "statuses.json"
    hourly_path = out_dir / "hourly.parquet"
    # allow_nan=False: the status contract uses null for "no data"; a NaN here is an upstream bug.
    statuses_path.write_text(json.dumps(statuses, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    _normalise_hourly(hourly).write_parquet(hourly_path)
    return statuses_path, hourly_path


def load_inputs(statuses_path: str | Path, hourly_path: str | Path) -> tuple[list[dict], pl.DataFrame]:
    """Read what :func:`write_report_inputs` wrote; empty paths give an empty report rather than an error."""
    statuses = json.loads(Path(statuses_path).read_text(encoding="utf-8")) if str(statuses_path) else []
    if str(hourly_path):
        hourly = _normalise_hourly(pl.read_parquet(hourly_path))
    else:
        hourly = pl.DataFrame(schema=_HOURLY_SCHEMA)
    return statuses, hourly


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _parse_iso(text: str) -> datetime:
    return _naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def parse_as_of(as_of: str, statuses: list[dict]) -> datetime:
    """The report's moment as naive UTC; without one, the newest window end, so a bare notebook still runs."""
    if as_of:
        return _parse_iso(as_of)
    ends = [_parse_iso(s["window"]["end"]) for s in statuses if (s.get("window") or {}).get("end")]
    return max(ends) if ends else _naive_utc(datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------------------------------------------------
# Rendering


def _kernel_pythonpath(current: str | None) -> str:
    entries = [p for p in (current or "").split(os.pathsep) if p]
    if any(Path(p).resolve() == REPO_ROOT for p in entries):
        return os.pathsep.join(entries)
    return os.pathsep.join([str(REPO_ROOT), *entries])


@cache
def _kernel_manager_class() -> type:
    import zmq
    from jupyter_client.manager import AsyncKernelManager

    class ReportKernelManager(AsyncKernelManager):
        """Starts the kernel with this checkout on PYTHONPATH.

        The kernel runs in the report folder, so neither the caller's working directory nor a relative
        PYTHONPATH reaches the repository; without an editable install the notebook could not import
        this module, or would import a different copy of it than the caller uses.
        """

        async def start_kernel(self, **kw: Any) -> None:  # type: ignore[override]
            env = dict(kw.pop("env", None) or os.environ)
            env["PYTHONPATH"] = _kernel_pythonpath(env.get("PYTHONPATH"))
            if zmq.has("curve"):
                # Encrypt the local TCP link when the kernelspec supports it (ipykernel 7 does); otherwise
                # every render logs an eavesdropping warning to stderr.
                kw.setdefault("transport_encryption", "auto")
            await super().start_kernel(env=env, **kw)

    return ReportKernelManager


def render_service_report(
    service: str,
    statuses: list[dict],
    hourly: pl.DataFrame,
    reports_dir: Path,
    *,
    as_of: datetime,
    kernel_name: str = KERNEL_NAME,
    timeout_s: int = 300,
    period: str | None = None,
    name: str = "report",
    title: str | None = None,
) -> Path:
    """Execute the report notebook for one service and return the path of its self-contained HTML page.

    Layout: ``reports_dir/<period>/<slug>/`` (period defaults to the as-of date, ``YYYY-MM-DD``; monthly
    reports use ``YYYY-MM``, quarterly ``YYYY-Qn``) with ``data/`` (inputs), ``<name>.ipynb`` (executed,
    for debugging) and ``<name>.html``. Re-running overwrites the same files. ``timeout_s`` bounds each
    cell.

    papermill changes the process's working directory while the kernel runs, so do not render from
    several threads of one process at once (separate processes are fine).
    """
    import papermill as pm

    moment = _naive_utc(as_of)
    root = reports_dir.resolve()
    folder = root / safe_slug(period or moment.strftime("%Y-%m-%d")) / safe_slug(service)
    if not folder.resolve().is_relative_to(root):  # safe_slug guarantees this; a report must never escape.
        raise ValueError(f"report folder {folder} is outside {root}")
    data_dir = folder / "data"
    statuses_path, hourly_path = write_report_inputs(data_dir, service, statuses, hourly)
    notebook_path = folder / f"{safe_slug(name)}.ipynb"
    html_path = folder / f"{safe_slug(name)}.html"
    # A failed re-run must not leave the previous page looking current to whoever mails it.
    html_path.unlink(missing_ok=True)
    pm.execute_notebook(
        str(NOTEBOOK),
        str(notebook_path),
        parameters={
            "service": service,
            # Relative to the kernel's working directory (the folder), so the folder can be moved and the
            # saved notebook re-run as it is.
            "statuses_path": statuses_path.relative_to(folder).as_posix(),
            "hourly_path": hourly_path.relative_to(folder).as_posix(),
            "as_of": moment.isoformat(),
        },
        kernel_name=kernel_name,
        cwd=str(folder),
        log_output=False,
        progress_bar=False,
        execution_timeout=timeout_s,
        kernel_manager_class=_kernel_manager_class(),
    )
    page = notebook_to_html(notebook_path, title=title or f"{service} — SLO report")
    # Write then rename: a mailer polling the folder sees no page or a whole one, never half of it.
    tmp = html_path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(html_path)
    return html_path


_PAGE = _JINJA.from_string("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="sloscope">
<title>{{ title }}</title>
<style>
body { margin: 0; background: #f6f7f9; color: #1f2328;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 760px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 2px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d8dee4; }
p { margin: 8px 0; }
.as-of { color: #59636e; margin-top: 0; }
.narrative { font-size: 16px; }
.note { color: #59636e; font-size: 14px; }
table.slo-status { border-collapse: collapse; width: 100%; font-size: 14px; margin: 8px 0; }
table.slo-status th, table.slo-status td { padding: 6px 8px; border-bottom: 1px solid #e4e7eb;
  text-align: left; vertical-align: top; }
table.slo-status th { background: #f0f2f5; font-weight: 600; white-space: nowrap; }
table.slo-status td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.slo-status tbody tr:nth-child(even) { background: #fafbfc; }
.slo-id { color: #59636e; font-size: 12px; }
figure { margin: 12px 0 24px; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #59636e; font-size: 13px; margin-top: 4px; }
</style>
</head>
<body>
<main>
{{ body }}
</main>
</body>
</html>
""")


def notebook_to_html(notebook_path: Path, *, title: str) -> str:
    """The executed notebook's outputs (no code, no prompts) inside a standalone page."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="basic", exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nbformat.read(notebook_path, as_version=4))
    # nbconvert re-serialises through BeautifulSoup, which lower-cases attribute names. Browsers repair
    # viewBox when parsing HTML, but XHTML-strict mail clients do not and the charts would stop scaling.
    # (Text content cannot match: quotes in it are escaped.)
    body = re.sub(r'(<svg\b[^>]*?\s)viewbox="', r'\1viewBox="', body)
    # The body is nbconvert's rendering of outputs we produced (already escaped); the title is not trusted.
    return _PAGE.render(title=title, body=Markup(body))


# ---------------------------------------------------------------------------------------------------------
# Text and tables


def _name_of(status: dict) -> str:
    display = status.get("display_name") or status.get("slo") or "?"
    objective = status.get("objective")
    return f"{display} ({objective})" if objective and objective != display else str(display)


def _percent(fraction: float) -> str:
    """Budget shares: whole percent once they are large, one decimal below 10% so small burns still show."""
    value = fraction * 100
    return f"{value:.0f}%" if abs(value) >= 10 else f"{value:.1f}%"


def _target_percent(target: float | None) -> str:
    if target is None:
        return NO_DATA
    return f"{target * 100:.4f}".rstrip("0").rstrip(".") + "%"


def _window_phrase(status: dict) -> str:
    window = status.get("window") or {}
    try:
        start, end = _parse_iso(window["start"]), _parse_iso(window["end"])
    except (KeyError, TypeError, ValueError):
        return "its window"
    length = end - start
    if length % timedelta(days=1) == timedelta(0):
        span = f"{length // timedelta(days=1)}-day"
    elif length % timedelta(hours=1) == timedelta(0):
        span = f"{length // timedelta(hours=1)}-hour"
    else:
        span = f"{length // timedelta(minutes=1)}-minute"
    return f"the {span} window ending {end:%Y-%m-%d %H:%M} UTC"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def narrative(service: str, statuses: list[dict]) -> str:
    """One to three plain sentences summarising the service's objectives (plain text: escape it for HTML)."""
    total = len(statuses)
    if total == 0:
        return f"{service}: no SLOs are defined for this service."
    counts = Counter(s.get("status") for s in statuses)
    breached, at_risk, no_data = counts["breached"], counts["at_risk"], counts["no_data"]
    noun = "objective" if total == 1 else "objectives"
    if no_data == total:
        return f"{service}: no data for any of its {_plural(total, 'objective')}."
    parts = []
    if breached:
        parts.append(f"{breached} of {total} {noun} breached")
    if at_risk:
        parts.append(f"{at_risk} at risk" if parts else f"{at_risk} of {total} {noun} at risk")
    if not parts:
        parts = [f"{counts['ok']} of {total} {noun} within budget"]
    if no_data:
        parts.append(f"{no_data} with no data")
    sentences = [f"{service}: {', '.join(parts)}."]

    with_data = [s for s in statuses if (s.get("error_budget") or {}).get("consumed") is not None]
    if with_data:
        # The objective closest to (or furthest past) exhausting its budget is the one a reader acts on.
        worst = max(with_data, key=lambda s: s["error_budget"]["consumed"])
        consumed = worst["error_budget"]["consumed"]
        sentences.append(
            f"{_name_of(worst)} has used {_percent(consumed)} of its error budget over "
            f"{_window_phrase(worst)}."
        )
    missing = [s for s in statuses if s.get("status") == "no_data"]
    burning = [s for s in with_data if ((s.get("burn_rates") or {}).get("1h") or 0) > 1]
    if missing:
        names = ", ".join(_name_of(s) for s in missing[:3]) + (" and others" if len(missing) > 3 else "")
        sentences.append(f"No data in the window for {names}.")
    elif burning:
        fastest = max(burning, key=lambda s: s["burn_rates"]["1h"])
        sentences.append(
            f"{_name_of(fastest)} is burning budget at {fastest['burn_rates']['1h']:.1f}× the "
            "sustainable rate over the last hour."
        )
    return " ".join(sentences)


_TABLE = _JINJA.from_string("""<table class="slo-status">
<thead><tr><th>SLO</th><th>Objective</th><th>Target</th><th>SLI</th><th>Budget remaining</th>
<th>Burn 1h</th><th>Burn 1d</th><th>Status</th><th>Policy</th></tr></thead>
<tbody>
{% for row in rows %}
<tr><td>{{ row.display }}
{%- if row.slo != row.display %}<br><span class="slo-id">{{ row.slo }}</span>{% endif %}</td>
<td>{{ row.objective }}</td><td class="num">{{ row.target }}</td><td class="num">{{ row.sli }}</td>
<td class="num">{{ row.remaining }}</td>
<td class="num">{{ row.burn_1h }}</td><td class="num">{{ row.burn_1d }}</td>
<td><span class="badge" style="display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;\
font-weight:600;color:#fff;background:{{ row.colour }};white-space:nowrap">{{ row.label }}</span></td>
<td>{{ row.policy }}</td></tr>
{% else %}
<tr><td colspan="9">No SLOs are defined for this service.</td></tr>
{% endfor %}
</tbody>
</table>
""")


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return NO_DATA if value is None else f"{value:{spec}}{suffix}"


def status_table_html(statuses: list[dict]) -> str:
    """The objectives as an HTML table; every value is escaped, the status is a colour badge."""
    rows = []
    for s in statuses:
        budget = s.get("error_budget") or {}
        rates = s.get("burn_rates") or {}
        label, colour = _BADGES.get(s.get("status") or "", (str(s.get("status")), "#5f6368"))
        remaining = budget.get("remaining")
        sli = s.get("sli")
        rows.append(
            {
                "slo": s.get("slo"),
                "display": s.get("display_name") or s.get("slo"),
                "objective": s.get("objective"),
                "target": _target_percent(s.get("target")),
                # Three decimals: SLIs live in the last few tenths of a percent, where targets differ.
                "sli": _fmt(None if sli is None else sli * 100, ".3f", "%"),
                "remaining": _fmt(None if remaining is None else remaining * 100, ".1f", "%"),
                "burn_1h": _fmt(rates.get("1h"), ".2f"),
                "burn_1d": _fmt(rates.get("1d"), ".2f"),
                "label": label,
                "colour": colour,
                # Older stored evaluations carry no policy state.
                "policy": s.get("policy_state") or NO_DATA,
            }
        )
    return _TABLE.render(rows=rows)


_HEADER = _JINJA.from_string(
    '<h1>{{ service }} — SLO report</h1>\n<p class="as-of">as of {{ as_of }} UTC</p>\n'
    '<p class="narrative">{{ text }}</p>\n'
)


def header_html(service: str, as_of: datetime, statuses: list[dict]) -> str:
    return _HEADER.render(service=service, as_of=f"{as_of:%Y-%m-%d %H:%M}", text=narrative(service, statuses))


def section_heading_html(title: str) -> str:
    return f"<h2>{escape(title)}</h2>"


def note_html(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def figure_html(svg: str, caption: str) -> str:
    # vl-convert emits a bare <svg>; any XML prolog would be invalid inside an HTML body.
    body = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", svg)
    return f"<figure>{body}<figcaption>{escape(caption)}</figcaption></figure>"


def missing_series_note(statuses: list[dict], frame: pl.DataFrame, period: str) -> str:
    """A note naming the objectives without points in a chart ('' when all have some), so an absent line
    reads as "no data" rather than as a rendering fault."""
    present = set(frame["series"].unique().to_list()) if frame.height else set()
    missing = [label for label in _labels(statuses).values() if label not in present]
    if missing:
        return note_html(f"{NO_DATA.capitalize()} {period} for: {'; '.join(missing)}.")
    return "" if frame.height else note_html(f"{NO_DATA.capitalize()} {period}.")


# ---------------------------------------------------------------------------------------------------------
# Chart data


def _labels(statuses: Iterable[dict]) -> dict[tuple[str, str], str]:
    """One legend label per (slo, objective), made unique when display names clash."""
    names = {
        (str(s.get("slo")), str(s.get("objective"))): str(s.get("display_name") or s.get("slo"))
        for s in statuses
    }
    keys = list(names)
    base = {k: f"{names[k]} · {k[1]}" for k in keys}
    clashes = Counter(base.values())
    return {k: (f"{names[k]} [{k[0]}] · {k[1]}" if clashes[base[k]] > 1 else base[k]) for k in keys}


def _with_series(statuses: list[dict], hourly: pl.DataFrame) -> pl.DataFrame:
    """Hourly rows of the report's objectives, with their legend label; rows of other objectives dropped."""
    labels = _labels(statuses)
    lookup = pl.DataFrame(
        {
            "slo": [k[0] for k in labels],
            "objective": [k[1] for k in labels],
            "series": list(labels.values()),
            "series_order": list(range(len(labels))),
        },
        schema={"slo": pl.String, "objective": pl.String, "series": pl.String, "series_order": pl.Int64},
    )
    return _normalise_hourly(hourly).join(lookup, on=["slo", "objective"], how="inner")


def _utc_text(column: str) -> pl.Expr:
    # Vega parses "2026-10-01T00:00:00" as local time of the renderer; the Z pins it to UTC.
    return pl.col(column).dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _hours_in(start: datetime | pl.Expr, end: datetime | pl.Expr) -> pl.Expr:
    # Half-open like the evaluator's windows: an hour starting exactly at as_of is outside.
    return pl.col("bucket_start").is_between(start, end, closed="left")


def daily_sli_frame(
    hourly: pl.DataFrame, statuses: list[dict], as_of: datetime, days: int = SLI_DAYS
) -> pl.DataFrame:
    """``series, day, sli, target`` for each UTC day with traffic in ``[as_of - days, as_of)``.

    Days are summed from hours before dividing (traffic-weighted, like the SLI itself).
    """
    start = as_of - timedelta(days=days)
    rows = _with_series(statuses, hourly).filter(_hours_in(start, as_of))
    return (
        rows.group_by("series_order", "series", pl.col("bucket_start").dt.truncate("1d").alias("day"))
        .agg(pl.col("good").sum(), pl.col("total").sum(), pl.col("target").first())
        .filter(pl.col("total") > 0)
        .sort("series_order", "day")
        .select(
            "series",
            _utc_text("day").alias("day"),
            (pl.col("good") / pl.col("total")).cast(pl.Float64).alias("sli"),
            pl.col("target").cast(pl.Float64),
        )
    )


def hourly_burn_frame(
    hourly: pl.DataFrame, statuses: list[dict], as_of: datetime, days: int = BURN_DAYS
) -> pl.DataFrame:
    """``series, hour, burn_rate, sustainable``: (bad / total) / (1 - target) for each hour with traffic."""
    start = as_of - timedelta(days=days)
    rows = _with_series(statuses, hourly).filter(
        _hours_in(start, as_of), pl.col("total") > 0, pl.col("target") < 1
    )
    bad_share = (pl.col("total") - pl.col("good")) / pl.col("total")
    return rows.sort("series_order", "bucket_start").select(
        "series",
        _utc_text("bucket_start").alias("hour"),
        (bad_share / (1 - pl.col("target"))).cast(pl.Float64).alias("burn_rate"),
        # A column rather than a constant rule so each facet draws exactly one line at 1.0.
        pl.lit(1.0).alias("sustainable"),
    )


def budget_remaining_frame(hourly: pl.DataFrame, statuses: list[dict]) -> pl.DataFrame:
    """``series, hour, remaining``: share of the window's error budget left after each hour of the window.

    The budget is (1 - target) × all events of the window, so the line runs down from 100% and ends at the
    window's remaining budget (at hour resolution; the table's figures are exact to the minute).
    """
    windows = pl.DataFrame(
        [
            {
                "slo": str(s.get("slo")),
                "objective": str(s.get("objective")),
                "window_start": _parse_iso(s["window"]["start"]),
                "window_end": _parse_iso(s["window"]["end"]),
            }
            for s in statuses
            if (s.get("window") or {}).get("start") and s["window"].get("end")
        ],
        schema={
            "slo": pl.String,
            "objective": pl.String,
            "window_start": pl.Datetime("us"),
            "window_end": pl.Datetime("us"),
        },
    )
    rows = (
        _with_series(statuses, hourly)
        .join(windows, on=["slo", "objective"], how="inner")
        .filter(_hours_in(pl.col("window_start"), pl.col("window_end")), pl.col("target") < 1)
        .sort("series_order", "bucket_start")
    )
    budget = (1 - pl.col("target")) * pl.col("total").sum().over("series")
    # cum_sum over a window keeps row order within each series, which the sort above makes chronological.
    spent = (pl.col("total") - pl.col("good")).cum_sum().over("series")
    return rows.filter(pl.col("total").sum().over("series") > 0).select(
        "series",
        _utc_text("bucket_start").alias("hour"),
        (1 - spent / budget).cast(pl.Float64).alias("remaining"),
    )


# ---------------------------------------------------------------------------------------------------------
# Charts


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document, rendered offline (no browser, no Vega from a CDN)."""
    import vl_convert

    return vl_convert.vegalite_to_svg(chart.to_json())


def _time_axis(field: str, title: str, fmt: str) -> alt.X:
    import altair as alt

    return alt.X(
        f"{field}:T", title=title, scale=alt.Scale(type="utc"), axis=alt.Axis(format=fmt, labelAngle=0)
    )


def _facet_row(order: list[str]) -> alt.Row:
    import altair as alt

    return alt.Row(
        "series:N",
        sort=order,
        title=None,
        header=alt.Header(
            labelOrient="top",
            labelAnchor="start",
            labelAngle=0,
            labelFontWeight="bold",
            labelFontSize=12,
            labelLimit=CHART_WIDTH,
        ),
    )


def _series_order(frame: pl.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["series"].to_list()))


def daily_sli_chart(frame: pl.DataFrame) -> alt.FacetChart:
    """One panel per objective with its own y scale: targets differ, and a shared scale would flatten them."""
    import altair as alt

    line = (
        alt.Chart()
        .mark_line(point=alt.OverlayMarkDef(size=18), color="#1f6feb")
        .encode(
            x=_time_axis("day", "Day (UTC)", "%b %d"),
            y=alt.Y(
                "sli:Q", title="SLI", scale=alt.Scale(zero=False), axis=alt.Axis(format=".3~%", tickCount=4)
            ),
        )
    )
    target = alt.Chart().mark_rule(color="#b3261e", strokeDash=[5, 4]).encode(y="mean(target):Q")
    return (
        alt.layer(line, target, data=frame)
        .properties(width=CHART_WIDTH, height=130)
        .facet(row=_facet_row(_series_order(frame)))
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title(
                f"Daily SLI, last {SLI_DAYS} days",
                anchor="start",
                subtitle="Dashed red line: the objective's target.",
            )
        )
    )


def burn_rate_chart(frame: pl.DataFrame) -> alt.FacetChart:
    import altair as alt

    line = (
        alt.Chart()
        .mark_line(color="#8250df", strokeWidth=1.5)
        .encode(
            x=_time_axis("hour", "Hour (UTC)", "%a %d"),
            y=alt.Y(
                "burn_rate:Q", title="Burn rate", scale=alt.Scale(domainMin=0), axis=alt.Axis(tickCount=4)
            ),
        )
    )
    sustainable = alt.Chart().mark_rule(color="#b3261e", strokeDash=[5, 4]).encode(y="max(sustainable):Q")
    return (
        alt.layer(line, sustainable, data=frame)
        .properties(width=CHART_WIDTH, height=120)
        .facet(row=_facet_row(_series_order(frame)))
        .resolve_scale(y="independent")
        .properties(
            title=alt.Title(
                f"Hourly burn rate, last {BURN_DAYS} days",
                anchor="start",
                subtitle="Bad share per hour ÷ (1 − target). Above the dashed line at 1 the budget runs out "
                "before the window ends.",
            )
        )
    )


def budget_chart(frame: pl.DataFrame) -> alt.LayerChart:
    """All objectives on one scale: remaining budget is a share, comparable across targets."""
    import altair as alt

    order = _series_order(frame)
    lines = (
        alt.Chart(frame)
        .mark_line(strokeWidth=2)
        .encode(
            x=_time_axis("hour", "Time (UTC)", "%b %d"),
            y=alt.Y("remaining:Q", title="Error budget remaining", axis=alt.Axis(format="%")),
            color=alt.Color(
                "series:N",
                sort=order,
                title=None,
                scale=alt.Scale(scheme="tableau10"),
                legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=CHART_WIDTH),
            ),
        )
    )
    exhausted = (
        alt.Chart(alt.Data(values=[{"y": 0.0}])).mark_rule(color="#b3261e", strokeDash=[5, 4]).encode(y="y:Q")
    )
    return alt.layer(lines, exhausted).properties(
        width=CHART_WIDTH,
        height=260,
        title=alt.Title(
            "Error budget remaining over the window",
            anchor="start",
            subtitle="Cumulative, hour by hour; below the dashed line at 0% the objective is breached.",
        ),
    )

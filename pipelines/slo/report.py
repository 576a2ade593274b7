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
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from jinja2 import Environment
from markupsafe import Markup, escape

if TYPE_CHECKING:
    import altair as alt
    import duckdb

__all__ = [
    "KERNEL_NAME",
    "NOTEBOOK",
    "Recommendation",
    "anomalies_section_html",
    "backtest_recommendations",
    "budget_chart",
    "budget_policy_recommendations",
    "budget_remaining_frame",
    "burn_rate_chart",
    "chart_svg",
    "daily_sli_chart",
    "daily_sli_frame",
    "figure_html",
    "forecast_chart",
    "forecast_frame",
    "forecast_section_html",
    "header_html",
    "hourly_burn_frame",
    "incident_share",
    "load_extras",
    "load_inputs",
    "narrative",
    "note_html",
    "parse_as_of",
    "period_narrative",
    "recommendations",
    "recommendations_html",
    "render_service_report",
    "report_extras",
    "safe_slug",
    "section_heading_html",
    "status_table_html",
    "target_recommendations",
    "trend_section_html",
    "write_extras",
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


def _replace_file(target: Path, write: Callable[[Path], object]) -> Path:
    """Write ``target`` through a temporary file beside it, then rename it into place: a reader (the
    mailer, the index, a browser) sees the old file or the whole new one, never half of one, and a
    failure (a full disk) leaves no temporary file behind. An OSError names ``target`` and the reason."""
    tmp: Path | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a web server's user
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return target


def _write_text(target: Path, text: str) -> Path:
    return _replace_file(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


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
    _write_text(statuses_path, json.dumps(statuses, indent=2, allow_nan=False) + "\n")
    frame = _normalise_hourly(hourly)
    _replace_file(hourly_path, frame.write_parquet)
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
    extras: dict | None = None,
) -> Path:
    """Execute the report notebook for one service and return the path of its self-contained HTML page.

    Layout: ``reports_dir/<period>/<slug>/`` (period defaults to the as-of date, ``YYYY-MM-DD``; monthly
    reports use ``YYYY-MM``, quarterly ``YYYY-Qn``) with ``data/`` (inputs), ``<name>.ipynb`` (executed,
    for debugging) and ``<name>.html``. Re-running overwrites the same files. ``timeout_s`` bounds each
    cell.

    ``extras`` is :func:`report_extras`'s dict (trends, anomalies, forecasts, backtests, achieved history);
    without it the analytics sections say they are not available yet and how to produce them.

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
    notebook_path = folder / f"{safe_slug(name)}.ipynb"
    html_path = folder / f"{safe_slug(name)}.html"
    # A failed re-run must not leave the previous page looking current to whoever mails it: removed
    # before anything else is written, so a failure at any step (a full disk) leaves no page.
    html_path.unlink(missing_ok=True)
    statuses_path, hourly_path = write_report_inputs(data_dir, service, statuses, hourly)
    extras_path = data_dir / "extras.json"
    if extras is None:
        # A stale file from an earlier render would otherwise be mistaken for this one's analytics.
        extras_path.unlink(missing_ok=True)
    else:
        write_extras(extras_path, extras)
    pm.execute_notebook(
        str(NOTEBOOK),
        str(notebook_path),
        parameters={
            "service": service,
            # Relative to the kernel's working directory (the folder), so the folder can be moved and the
            # saved notebook re-run as it is.
            "statuses_path": statuses_path.relative_to(folder).as_posix(),
            "hourly_path": hourly_path.relative_to(folder).as_posix(),
            "extras_path": extras_path.relative_to(folder).as_posix() if extras is not None else "",
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
    return _write_text(html_path, page)


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


def header_html(
    service: str, as_of: datetime, statuses: list[dict], *, hourly: pl.DataFrame | None = None
) -> str:
    """Title, as-of line and narrative; with ``hourly`` the narrative adds budget minutes and the outage."""
    text = narrative(service, statuses) if hourly is None else period_narrative(service, statuses, hourly)
    return _HEADER.render(service=service, as_of=f"{as_of:%Y-%m-%d %H:%M}", text=text)


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


# ---------------------------------------------------------------------------------------------------------
# Period narrative: budget minutes and the outage that spent them

# A day holding at least this share of the window's bad events is reported as the outage. A 28-day window
# with evenly spread failures puts about 3.6% on each day; 25% is seven times that, so only a real
# concentration (an incident) is named, not an ordinary noisy day.
INCIDENT_MIN_SHARE = 0.25


def _minutes_text(minutes: float) -> str:
    return f"{minutes:.0f}" if abs(minutes) >= 10 else f"{minutes:.1f}"


def _clock(moment: datetime, day_start: datetime) -> str:
    # The end of the last hour of a day reads 24:00, not 00:00, so a range never appears to run backwards.
    return "24:00" if moment - day_start == timedelta(days=1) else f"{moment:%H:%M}"


def incident_share(hourly: pl.DataFrame, status: dict) -> dict | None:
    """The UTC day of the status window with the largest share of the objective's bad events, when it
    holds at least :data:`INCIDENT_MIN_SHARE` of them; None otherwise (no bad events, a single day of
    traffic, or failures spread out).

    ``hours`` is the outage within that day: the run of consecutive hours around the day's worst hour
    (ties: the earliest) whose bad share exceeds the allowance (1 - target), i.e. hours that burned budget
    faster than sustainable; just the worst hour when none did. ``share`` is the day's bad events over the
    window's, which is also its share of the budget minutes used (bad minutes are proportional to bad
    events under the Occurrences method).
    """
    window = status.get("window") or {}
    target = status.get("target")
    if not window.get("start") or not window.get("end") or target is None:
        return None
    start, end = _parse_iso(window["start"]), _parse_iso(window["end"])
    rows = (
        _normalise_hourly(hourly)
        .filter(
            pl.col("slo") == str(status.get("slo")),
            pl.col("objective") == str(status.get("objective")),
            _hours_in(start, end),
            pl.col("total") > 0,
        )
        .with_columns(
            (pl.col("total") - pl.col("good")).alias("bad"),
            pl.col("bucket_start").dt.truncate("1d").alias("day"),
        )
        .sort("bucket_start")
    )
    total_bad = int(rows["bad"].sum()) if rows.height else 0
    if total_bad <= 0 or rows["day"].n_unique() < 2:
        return None
    days = rows.group_by("day").agg(pl.col("bad").sum()).sort("bad", "day", descending=[True, False])
    day, day_bad = days.row(0)
    share = day_bad / total_bad
    if share < INCIDENT_MIN_SHARE:
        return None
    hours = rows.filter(pl.col("day") == day).to_dicts()
    worst = max(range(len(hours)), key=lambda i: (hours[i]["bad"], -i))
    allowance = 1 - float(target)

    def burning(i: int) -> bool:
        return hours[i]["bad"] / hours[i]["total"] > allowance

    first = last = worst
    while (
        first > 0
        and burning(first - 1)
        and hours[first]["bucket_start"] - hours[first - 1]["bucket_start"] == timedelta(hours=1)
    ):
        first -= 1
    while (
        last < len(hours) - 1
        and burning(last + 1)
        and hours[last + 1]["bucket_start"] - hours[last]["bucket_start"] == timedelta(hours=1)
    ):
        last += 1
    return {
        "day": day,
        "share": share,
        "day_bad": int(day_bad),
        "total_bad": total_bad,
        "hours_start": hours[first]["bucket_start"],
        "hours_end": hours[last]["bucket_start"] + timedelta(hours=1),
    }


def _incident_phrase(incident: dict) -> str:
    day: datetime = incident["day"]
    hours = f"{_clock(incident['hours_start'], day)}–{_clock(incident['hours_end'], day)} UTC"
    return f"{_percent(incident['share'])} of it during {day.day} {day:%B} ({hours})"


def period_narrative(service: str, statuses: list[dict], hourly: pl.DataFrame) -> str:
    """:func:`narrative` plus, for the objective it names, the budget in minutes used of those allowed and
    the share spent on the worst day, e.g. "41 of 43 budget minutes used, 70% of it during 14 October
    (09:00–13:00 UTC)". Plain text: escape it for HTML.

    Minutes come from the status's ``budget_units`` (exact, from the evaluator); the share comes from the
    hourly frame (hour resolution), so a minute count and a share never mix sources in one figure.
    """
    text = narrative(service, statuses)
    with_data = [s for s in statuses if (s.get("error_budget") or {}).get("consumed") is not None]
    if not with_data:
        return text
    worst = max(with_data, key=lambda s: s["error_budget"]["consumed"])
    units = worst.get("budget_units") or {}
    used, allowed = units.get("bad_minutes"), units.get("budget_minutes")
    incident = incident_share(hourly, worst)
    if used is not None and allowed:
        sentence = f"{_minutes_text(used)} of {_minutes_text(allowed)} budget minutes used"
        if incident:
            sentence += ", " + _incident_phrase(incident)
        return f"{text} {sentence[0].upper()}{sentence[1:]}."
    if incident:
        day: datetime = incident["day"]
        hours = f"{_clock(incident['hours_start'], day)}–{_clock(incident['hours_end'], day)} UTC"
        return (
            f"{text} {_percent(incident['share'])} of {_name_of(worst)}'s bad events in the window came on "
            f"{day.day} {day:%B} ({hours})."
        )
    return text


# ---------------------------------------------------------------------------------------------------------
# Analytics extras: read from the warehouse before the kernel starts, passed to the notebook as JSON

ANALYTICS_DAYS = 28
HISTORY_DAYS = 90
TOP_ANOMALIES = 5
_HOW_ANALYTICS = (
    "materialise the analytics assets (slo_trends, slo_change_points, slo_anomalies) and re-render"
)
_HOW_FORECAST = "materialise the slo_forecasts asset and re-render"
_HOW_BACKTEST = "run the alert backtests (the alert_backtest asset or `sloscope backtest`) and re-render"
_HOW_HISTORY = "materialise the daily slo_history partitions for the last 90 days and re-render"
EXTRAS_TABLES = (
    "slo_trends",
    "slo_change_points",
    "slo_anomalies",
    "slo_forecasts",
    "alert_backtests",
    "slo_history",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return _naive_utc(value).isoformat()
    if hasattr(value, "isoformat"):  # date
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN: the JSON contract uses null
        return None
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return float(value)  # Decimal from DuckDB literals; Altair and JSON need plain numbers


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict]:
    """Rows as JSON-able dicts; [] when a table or column is missing (an older warehouse)."""
    import duckdb

    try:
        cursor = con.execute(sql, params)
        names = [d[0] for d in cursor.description or []]
        return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]
    except (duckdb.CatalogException, duckdb.BinderException):
        return []


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = current_schema()"
    ).fetchall()
    return {r[0] for r in rows}


def report_extras(con: duckdb.DuckDBPyConnection, service: str, as_of: datetime) -> dict:
    """The analytics a report shows beyond the status table, for the service's SLOs, as JSON-able lists.

    Read-only. Every table is optional: a table that is missing (a warehouse older than the analytics) or
    has no rows for the service gives empty lists and ``available[table] = False``, never an exception,
    so a report renders wherever the analytics have not run yet. Analytics tables are recomputed whole on
    each run and carry no as-of; windowed rows (change points, anomalies, forecasts, backtests, history)
    are limited to what lay before ``as_of`` so a back-filled month does not cite later events.
    """
    moment = _naive_utc(as_of)
    present = _tables(con)
    params: dict[str, Any] = {"service": service}
    slos: set[str] = set()
    for table in ("slo_objectives", "slo_status", "slo_history", "slo_forecasts"):
        if table in present:
            sql = f"SELECT DISTINCT slo FROM {table} WHERE service = $service"
            slos.update(r["slo"] for r in _query(con, sql, params))
    p = {"slos": sorted(slos), "end": moment, "start": moment - timedelta(days=ANALYTICS_DAYS)}
    h = {"slos": sorted(slos), "end": moment, "start": moment - timedelta(days=HISTORY_DAYS)}

    def rows(table: str, sql: str, values: dict[str, Any]) -> list[dict]:
        return _query(con, sql, values) if table in present and slos else []

    def has_rows(table: str) -> bool:
        sql = f"SELECT 1 AS one FROM {table} WHERE list_contains($slos, slo) LIMIT 1"
        return bool(rows(table, sql, {"slos": sorted(slos)}))

    extras: dict[str, Any] = {
        "service": service,
        "as_of": moment.isoformat(),
        "slos": sorted(slos),
        "available": {table: has_rows(table) for table in EXTRAS_TABLES},
        "trends": rows(
            "slo_trends",
            """SELECT slo, metric, scale, slope_per_day, ci_low, ci_high, p_value, points FROM slo_trends
               WHERE list_contains($slos, slo) AND resolution = 'day' AND significant ORDER BY slo, metric""",
            {"slos": p["slos"]},
        ),
        "change_points": rows(
            "slo_change_points",
            """SELECT slo, metric, resolution, changed_at, level_before, level_after, size, z
               FROM slo_change_points
               WHERE list_contains($slos, slo) AND changed_at >= $start AND changed_at < $end
               ORDER BY changed_at DESC, slo, metric LIMIT 20""",
            p,
        ),
        "anomaly_counts": rows(
            "slo_anomalies",
            """SELECT slo, metric, count(*) AS anomalies FROM slo_anomalies
               WHERE list_contains($slos, slo) AND is_anomaly
                 AND bucket_start >= $start AND bucket_start < $end
               GROUP BY slo, metric ORDER BY anomalies DESC, slo, metric""",
            p,
        ),
        "top_anomalies": rows(
            "slo_anomalies",
            f"""SELECT slo, metric, bucket_start, value, score, confidence FROM slo_anomalies
               WHERE list_contains($slos, slo) AND is_anomaly
                 AND bucket_start >= $start AND bucket_start < $end
               ORDER BY score DESC, bucket_start, slo, metric LIMIT {TOP_ANOMALIES}""",
            p,
        ),
        "forecasts": rows(
            "slo_forecasts",
            """SELECT slo, objective, as_of, window_end, budget_remaining_now, probability_exhausted,
                      probability_already_exhausted, remaining_p10, remaining_p50, remaining_p90,
                      exhaustion_p50
               FROM slo_forecasts WHERE list_contains($slos, slo) AND as_of <= $end
               QUALIFY row_number() OVER (PARTITION BY slo, objective ORDER BY as_of DESC) = 1
               ORDER BY slo, objective""",
            {"slos": p["slos"], "end": moment},
        ),
        "backtests": rows(
            "alert_backtests",
            """SELECT slo, objective, policy, severity, incidents, alerts, true_alerts, alert_precision,
                      recall,
                      mean_detection_minutes, mean_reset_minutes, pages_per_week, as_of
               FROM alert_backtests
               WHERE list_contains($slos, slo) AND as_of = (
                   SELECT max(as_of) FROM alert_backtests WHERE list_contains($slos, slo) AND as_of <= $end)
               ORDER BY slo, objective, policy, severity""",
            {"slos": p["slos"], "end": moment},
        ),
        # A history row for day d is the window evaluated as of the end of d; only days ended by as_of count.
        "achieved": rows(
            "slo_history",
            """SELECT slo, objective, arg_max(target, day) AS target, count(*) AS days,
                      min(sli) AS min_sli, median(sli) AS median_sli
               FROM slo_history
               WHERE list_contains($slos, slo) AND sli IS NOT NULL
                 AND day + INTERVAL 1 DAY <= $end AND day + INTERVAL 1 DAY > $start
               GROUP BY slo, objective ORDER BY slo, objective""",
            h,
        ),
    }
    return extras


def write_extras(path: Path, extras: dict) -> Path:
    """``extras.json`` beside the other inputs; NaN is refused (the contract uses null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_text(path, json.dumps(extras, indent=2, allow_nan=False, default=_jsonable) + "\n")


def load_extras(extras_path: str | Path) -> dict | None:
    """The notebook's extras, or None when none were passed (the sections then say how to produce them)."""
    if not str(extras_path):
        return None
    return json.loads(Path(extras_path).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------------------
# Recommendations: pure rules over statuses and extras, each citing the figures it rests on

MIN_HISTORY_DAYS = 28  # fewer daily evaluations than one window say too little about what is achievable
NOISY_PAGES_PER_WEEK = 2.0  # the Workbook's guide: more than a couple of pages a week wears on-call down
SLOW_DETECTION_MINUTES = 15.0  # a page later than this loses much of a fast burn's budget before anyone looks
QUIET_POLICY_STATES = frozenset({"healthy", "no_data"})
POLICY_MEANINGS = {
    "exhausted": "the error budget is spent; freeze feature releases and put reliability work first until it "
    "recovers",
    "freeze-releases": "the budget is nearly spent; hold risky releases until it recovers",
    "warn": "budget is going faster than planned; review recent changes and incidents before it runs out",
}


@dataclass(frozen=True)
class Recommendation:
    """One recommendation: which rule fired, for which objective, the sentence, and the figures behind it."""

    rule: str
    slo: str
    objective: str
    text: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _display(slo: str, objective: str, statuses: list[dict]) -> str:
    for s in statuses:
        if s.get("slo") == slo and s.get("objective") == objective:
            return _name_of(s)
    return f"{slo} ({objective})" if objective and objective != slo else slo


def _pct(value: float, places: int = 3) -> str:
    return f"{value * 100:.{places}f}%"


def target_recommendations(achieved: list[dict], statuses: list[dict] | None = None) -> list[Recommendation]:
    """Targets out of line with achieved history (the window SLI evaluated at the end of each day, 90 days).

    * tighten — the worst day beat the target by more than half the allowance (1 - target): even then
      the service stayed inside a budget half the size, so the target can be tightened to
      target + allowance / 2 (99% with a worst day of 99.8% → 99.5%) without having breached it once.
    * loosen — the median day missed the target: the objective failed more often than it held, so it
      measures aspiration, not reliability; suggest the median rounded down to 0.01 points.

    Both need :data:`MIN_HISTORY_DAYS` days; the two cannot fire together (worst <= median).
    """
    out: list[Recommendation] = []
    for row in achieved:
        target, worst, median, days = (
            row.get("target"),
            row.get("min_sli"),
            row.get("median_sli"),
            row.get("days"),
        )
        if None in (target, worst, median, days) or days < MIN_HISTORY_DAYS or target >= 1:
            continue
        name = _display(row["slo"], row["objective"], statuses or [])
        allowance = 1 - target
        evidence = {"target": target, "min_sli": worst, "median_sli": median, "days": days}
        if worst > target + allowance / 2:
            suggested = target + allowance / 2
            out.append(
                Recommendation(
                    "tighten_target",
                    row["slo"],
                    row["objective"],
                    f"{name}: the target of {_target_percent(target)} is far looser than achieved — "
                    f"the worst of {days} days was {_pct(worst)}, more than half the "
                    f"{_target_percent(allowance)} allowance above it; "
                    f"could tighten to {_target_percent(suggested)}.",
                    {**evidence, "suggested_target": suggested},
                )
            )
        elif median < target:
            suggested = int(median * 10_000) / 10_000
            out.append(
                Recommendation(
                    "loosen_target",
                    row["slo"],
                    row["objective"],
                    f"{name}: the target of {_target_percent(target)} is unrealistic — the median of {days} "
                    f"days achieved {_pct(median)}, below it; consider {_target_percent(suggested)} or "
                    "reliability work before holding the team to it.",
                    {**evidence, "suggested_target": suggested},
                )
            )
    return out


def _is_configured(policy: str) -> bool:
    return policy == "configured" or policy.endswith(" (configured)")


def _policy_rows(backtests: list[dict]) -> list[dict]:
    """The page rows of the policy each objective runs (``configured`` / ``<catalog> (configured)``); the
    Workbook policy where the configured one was not replayed."""
    pages = [r for r in backtests if r.get("severity") == "page"]
    configured = {(r["slo"], r["objective"]) for r in pages if _is_configured(str(r.get("policy")))}
    return [
        r
        for r in pages
        if _is_configured(str(r.get("policy")))
        or (r.get("policy") == "workbook" and (r["slo"], r["objective"]) not in configured)
    ]


def backtest_recommendations(
    backtests: list[dict], statuses: list[dict] | None = None
) -> list[Recommendation]:
    """Paging that is too noisy (more than :data:`NOISY_PAGES_PER_WEEK` pages a week) or too slow (mean
    detection above :data:`SLOW_DETECTION_MINUTES` minutes) in the backtest of the policy in use."""
    out: list[Recommendation] = []
    for row in _policy_rows(backtests):
        name = _display(row["slo"], row["objective"], statuses or [])
        policy, pages = row["policy"], row.get("pages_per_week")
        precision, detection = row.get("alert_precision"), row.get("mean_detection_minutes")
        evidence = {
            "policy": policy,
            "pages_per_week": pages,
            "alert_precision": precision,
            "recall": row.get("recall"),
            "mean_detection_minutes": detection,
        }
        if pages is not None and pages > NOISY_PAGES_PER_WEEK:
            prec = "n/a" if precision is None else f"{precision * 100:.0f}%"
            out.append(
                Recommendation(
                    "noisy_alerting",
                    row["slo"],
                    row["objective"],
                    f"{name}: paging is too noisy under the {policy} policy — {pages:.1f} pages a week "
                    f"in the backtest (more than {NOISY_PAGES_PER_WEEK:g}), precision {prec}; consider "
                    "longer windows or a higher burn-rate threshold for pages.",
                    evidence,
                )
            )
        if detection is not None and detection > SLOW_DETECTION_MINUTES:
            out.append(
                Recommendation(
                    "slow_alerting",
                    row["slo"],
                    row["objective"],
                    f"{name}: pages come too late under the {policy} policy — {detection:.0f} minutes mean "
                    f"detection in the backtest (more than {SLOW_DETECTION_MINUTES:g}); consider a shorter "
                    "fast-burn window or a lower page threshold.",
                    evidence,
                )
            )
    return out


def budget_policy_recommendations(statuses: list[dict]) -> list[Recommendation]:
    """Budget-policy actions that are due: every objective whose policy state is not healthy or no_data."""
    out: list[Recommendation] = []
    for s in statuses:
        state = s.get("policy_state")
        if not state or state in QUIET_POLICY_STATES:
            continue
        remaining = (s.get("error_budget") or {}).get("remaining")
        meaning = POLICY_MEANINGS.get(
            state, "a state of the team's error budget policy; follow the runbook it names"
        )
        left = "" if remaining is None else f" (budget remaining {_percent(remaining)})"
        out.append(
            Recommendation(
                "policy_action",
                str(s.get("slo")),
                str(s.get("objective")),
                f"{_name_of(s)}: policy says {state}: {meaning}{left}.",
                {"policy_state": state, "budget_remaining": remaining},
            )
        )
    return out


def recommendations(statuses: list[dict], extras: dict | None) -> list[Recommendation]:
    """All rules, most urgent first: due policy actions, then targets, then alerting."""
    extras = extras or {}
    return [
        *budget_policy_recommendations(statuses),
        *target_recommendations(extras.get("achieved") or [], statuses),
        *backtest_recommendations(extras.get("backtests") or [], statuses),
    ]


# ---------------------------------------------------------------------------------------------------------
# Section HTML

_SIMPLE_TABLE = _JINJA.from_string("""<table class="slo-status">
<thead><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}
<tr>{% for cell in row %}<td{% if loop.index > numeric_from %} class="num"{% endif %}>{{ cell }}</td>
{%- endfor %}</tr>
{% endfor %}
</tbody>
</table>
""")
_LIST = _JINJA.from_string(
    '<ul class="recommendations">\n{% for item in items %}<li>{{ item }}</li>\n{% endfor %}</ul>\n'
)


def _table(header: list[str], rows: list[list[Any]], numeric_from: int = 1) -> str:
    return _SIMPLE_TABLE.render(header=header, rows=rows, numeric_from=numeric_from)


def _not_available(what: str, how: str) -> str:
    return note_html(f"{what} not available yet: {how}.")


def _available(extras: dict | None, *tables: str) -> bool:
    return extras is not None and any((extras.get("available") or {}).get(t) for t in tables)


def _slo_label(slo: str, statuses: list[dict]) -> str:
    for s in statuses:
        if s.get("slo") == slo:
            return str(s.get("display_name") or slo)
    return slo


# Which way is better for each metric: error rate and latency should fall, availability should rise.
_BETTER_WHEN_UP = {"availability": True, "error_rate": False, "latency_p95": False, "latency_p99": False}


def _trend_words(row: dict) -> str:
    metric, slope = row["metric"], row["slope_per_day"]
    rising = slope > 0
    verb = "rising" if rising else "falling"
    better = _BETTER_WHEN_UP.get(metric)
    judgement = "" if better is None else (" (improving)" if rising == better else " (worsening)")
    if row.get("scale") == "log":
        low, high = row["ci_low"] * 100, row["ci_high"] * 100
        size = f"{abs(slope) * 100:.2f}% a day (95% CI {low:+.2f}% to {high:+.2f}%)"
    else:
        size = (
            f"{abs(slope) * 100:.4f} percentage points a day "
            f"(95% CI {row['ci_low'] * 100:+.4f} to {row['ci_high'] * 100:+.4f})"
        )
    return f"{metric.replace('_', ' ')} is {verb}{judgement} by {size}"


def trend_section_html(extras: dict | None, statuses: list[dict]) -> str:
    """Significant daily trends in words and recent change points; a note when analytics have not run."""
    parts = [section_heading_html("Trend")]
    if not _available(extras, "slo_trends", "slo_change_points"):
        return "".join([*parts, _not_available("Trend analysis", _HOW_ANALYTICS)])
    assert extras is not None
    trends = extras.get("trends") or []
    if trends:
        items = [f"{_slo_label(r['slo'], statuses)}: {_trend_words(r)}." for r in trends]
        parts.append(_LIST.render(items=items))
    else:
        parts.append(note_html("No significant trend in the daily series (5% level)."))
    points = extras.get("change_points") or []
    if points:
        rows = [
            [
                _slo_label(r["slo"], statuses),
                r["metric"],
                f"{_parse_iso(r['changed_at']):%Y-%m-%d %H:%M}",
                f"{r['level_before']:.4g}",
                f"{r['level_after']:.4g}",
                f"{r['z']:.1f}",
            ]
            for r in points
        ]
        parts.append(
            _table(["SLO", "Metric", "Changed at (UTC)", "Before", "After", "z"], rows, numeric_from=3)
        )
    else:
        parts.append(note_html(f"No change points in the last {ANALYTICS_DAYS} days."))
    return "".join(parts)


def anomalies_section_html(extras: dict | None, statuses: list[dict]) -> str:
    """Anomaly counts per metric over the last 28 days and the top ones by score."""
    parts = [section_heading_html("Anomalies")]
    if not _available(extras, "slo_anomalies"):
        return "".join([*parts, _not_available("Anomaly detection", _HOW_ANALYTICS)])
    assert extras is not None
    counts = extras.get("anomaly_counts") or []
    if not counts:
        return "".join([*parts, note_html(f"No anomalies flagged in the last {ANALYTICS_DAYS} days.")])
    total = sum(r["anomalies"] for r in counts)
    summary = ", ".join(f"{r['anomalies']} in {_slo_label(r['slo'], statuses)} {r['metric']}" for r in counts)
    noun = "anomaly" if total == 1 else "anomalies"
    parts.append(f"<p>{escape(f'{total} {noun} flagged in the last {ANALYTICS_DAYS} days: {summary}.')}</p>")
    rows = [
        [
            _slo_label(r["slo"], statuses),
            r["metric"],
            f"{_parse_iso(r['bucket_start']):%Y-%m-%d %H:%M}",
            _fmt(r.get("value"), ".4g"),
            f"{r['score']:.2f}",
            f"{r['confidence'] * 100:.0f}%",
        ]
        for r in extras.get("top_anomalies") or []
    ]
    parts.append(
        _table(["SLO", "Metric", "Hour (UTC)", "Value", "Score", "Confidence"], rows, numeric_from=3)
    )
    return "".join(parts)


def forecast_frame(extras: dict | None, statuses: list[dict]) -> pl.DataFrame:
    """``series, p10, p50, p90``: the forecast budget remaining at the window's end, per objective."""
    schema = {"series": pl.String, "p10": pl.Float64, "p50": pl.Float64, "p90": pl.Float64}
    rows = [
        {
            "series": _display(r["slo"], r["objective"], statuses),
            "p10": r["remaining_p10"],
            "p50": r["remaining_p50"],
            "p90": r["remaining_p90"],
        }
        for r in (extras or {}).get("forecasts") or []
        if None not in (r.get("remaining_p10"), r.get("remaining_p50"), r.get("remaining_p90"))
    ]
    return pl.DataFrame(rows, schema=schema)


def forecast_chart(frame: pl.DataFrame) -> alt.LayerChart:
    """p10–p90 range bars of the budget left at the window's end, a tick at the median, a rule at 0."""
    import altair as alt

    y = alt.Y("series:N", title=None, sort=frame["series"].to_list(), axis=alt.Axis(labelLimit=300))
    bars = (
        alt.Chart(frame)
        .mark_bar(height=10, color="#9ec5fe")
        .encode(
            x=alt.X("p10:Q", title="Error budget remaining at the window's end", axis=alt.Axis(format="%")),
            x2="p90:Q",
            y=y,
        )
    )
    median = alt.Chart(frame).mark_tick(color="#1f6feb", thickness=2, size=16).encode(x="p50:Q", y=y)
    zero = (
        alt.Chart(alt.Data(values=[{"x": 0.0}])).mark_rule(color="#b3261e", strokeDash=[5, 4]).encode(x="x:Q")
    )
    return alt.layer(bars, median, zero).properties(
        width=CHART_WIDTH - 200,
        height=alt.Step(28),
        title=alt.Title(
            "Forecast budget remaining at the window's end",
            anchor="start",
            subtitle="Bar: 10th to 90th percentile of the simulations; tick: median; left of the dashed line "
            "the budget is exhausted.",
        ),
    )


def _when(value: str | None) -> str:
    return "—" if not value else f"{_parse_iso(value):%Y-%m-%d %H:%M}"


def forecast_section_html(extras: dict | None, statuses: list[dict]) -> str:
    """The forecast table (without the chart, which the notebook renders to SVG beside it)."""
    parts = [section_heading_html("Forecast")]
    if not _available(extras, "slo_forecasts"):
        return "".join([*parts, _not_available("Budget forecasts", _HOW_FORECAST)])
    assert extras is not None
    rows = [
        [
            _display(r["slo"], r["objective"], statuses),
            _percent(r["probability_exhausted"]),
            " – ".join(
                _fmt(None if r.get(k) is None else r[k] * 100, ".1f", "%")
                for k in ("remaining_p10", "remaining_p90")
            ),
            _fmt(None if r.get("remaining_p50") is None else r["remaining_p50"] * 100, ".1f", "%"),
            _when(r.get("exhaustion_p50")),
        ]
        for r in extras.get("forecasts") or []
    ]
    if not rows:
        return "".join([*parts, note_html("No forecast as of this report's date.")])
    parts.append(
        _table(
            [
                "Objective",
                "P(budget exhausted by window end)",
                "Remaining p10 – p90",
                "Remaining p50",
                "Exhausted at (p50, UTC)",
            ],
            rows,
        )
    )
    return "".join(parts)


def recommendations_html(recs: list[Recommendation], extras: dict | None) -> str:
    """The bulleted recommendations, and notes naming the inputs a rule could not see."""
    parts = [section_heading_html("Recommendations")]
    if recs:
        parts.append(_LIST.render(items=[r.text for r in recs]))
    else:
        parts.append(note_html("No recommendations: targets, alerting and budget policy look in line."))
    if not _available(extras, "slo_history"):
        parts.append(_not_available("Target recommendations (achieved history)", _HOW_HISTORY))
    if not _available(extras, "alert_backtests"):
        parts.append(_not_available("Alerting recommendations (backtests)", _HOW_BACKTEST))
    return "".join(parts)

"""Charts of the analytics tables, rendered to SVG offline (vl-convert; no CDN), for the assets' UI links
and reports. Each takes the rows the analytics steps store and returns SVG text."""

from __future__ import annotations

from datetime import datetime, timedelta

import altair as alt
import polars as pl

from pipelines.slo.report import chart_svg

_WIDTH = 640
# Series names above each panel, horizontal: long SLO names do not fit a rotated side label.
_HEADER = alt.Header(
    labelAngle=0, labelAlign="left", labelAnchor="start", labelOrient="top", labelFontWeight="bold"
)


def forecast_chart(rows: list[dict]) -> str:
    """Probability of exhausting each objective's budget before its window ends, with the budget left at
    the end (p10 to p90) as a second panel."""
    if not rows:
        return _empty("No forecasts (no Occurrences objective with data)")
    frame = pl.DataFrame(
        [
            {
                "objective": f"{r['slo']} / {r['objective']}",
                "probability": r["probability_exhausted"],
                "p10": r["remaining_p10"],
                "p50": r["remaining_p50"],
                "p90": r["remaining_p90"],
            }
            for r in rows
        ]
    ).to_pandas()
    order = alt.EncodingSortField(field="probability", order="descending")
    bars = (
        alt.Chart(frame, title="P(budget exhausted before the window ends)")
        .mark_bar()
        .encode(
            y=alt.Y("objective:N", sort=order, title=None),
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title=None),
            tooltip=["objective", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(width=_WIDTH // 2)
    )
    spread = alt.Chart(frame, title="Budget left at the window's end (p10 to p90, p50 marked)").encode(
        y=alt.Y("objective:N", sort=order, title=None, axis=None)
    )
    ranges = spread.mark_rule().encode(
        x=alt.X("p10:Q", axis=alt.Axis(format="%"), title=None), x2="p90:Q"
    ) + spread.mark_point(filled=True).encode(x="p50:Q")
    return chart_svg(alt.hconcat(bars, ranges.properties(width=_WIDTH // 2)))


def anomaly_chart(rows: list[dict], *, days: int = 14, most: int = 6) -> str:
    """Anomaly scores of the last ``days`` for the series with the most flagged points (up to ``most``)."""
    if not rows:
        return _empty("No anomaly scores yet")
    frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.concat_str(["slo", "metric"], separator=" / ").alias("series")
    )
    end = frame["bucket_start"].max()
    assert isinstance(end, datetime)
    recent = frame.filter(pl.col("bucket_start") >= end - timedelta(days=days))
    ranked = (
        recent.group_by("series")
        .agg(pl.col("is_anomaly").sum().alias("flags"), pl.col("score").max().alias("top"))
        .sort(["flags", "top"], descending=True)
        .head(most)["series"]
        .to_list()
    )
    shown = recent.filter(pl.col("series").is_in(ranked)).to_pandas()
    base = alt.Chart(shown).encode(x=alt.X("bucket_start:T", title=None))
    lines = base.mark_line(strokeWidth=1).encode(
        y=alt.Y("score:Q", scale=alt.Scale(domain=[0, 1]), title=None)
    )
    flags = (
        base.transform_filter("datum.is_anomaly").mark_point(color="#c0392b", filled=True).encode(y="score:Q")
    )
    return chart_svg(
        (lines + flags)
        .properties(width=_WIDTH, height=90)
        .facet(
            row=alt.Row("series:N", title=None, header=_HEADER),
            title=f"Anomaly scores, last {days} days (flags in red)",
        )
    )


def trend_chart(components: list[dict], *, metric: str = "availability", most: int = 8) -> str:
    """Daily observed values and trend of one metric for up to ``most`` SLOs."""
    frame = pl.DataFrame(components, infer_schema_length=None) if components else pl.DataFrame()
    if frame.is_empty():
        return _empty("No series analysed yet")
    chosen = frame.filter((pl.col("metric") == metric) & (pl.col("resolution") == "day"))
    slos = sorted(chosen["slo"].unique().to_list())[:most]
    shown = chosen.filter(pl.col("slo").is_in(slos)).to_pandas()
    base = alt.Chart(shown).encode(x=alt.X("bucket_start:T", title=None))
    observed = base.mark_point(size=12, opacity=0.6).encode(
        y=alt.Y("observed:Q", title=metric, scale=alt.Scale(zero=False))
    )
    trend = base.mark_line(color="#2c3e50").encode(y="trend:Q")
    return chart_svg(
        (observed + trend)
        .properties(width=_WIDTH, height=90)
        .facet(row=alt.Row("slo:N", title=None, header=_HEADER), title=f"Daily {metric} and its trend")
        .resolve_scale(y="independent")
    )


def _empty(message: str) -> str:
    return chart_svg(
        alt.Chart(pl.DataFrame({"m": [message]}).to_pandas()).mark_text(size=14).encode(text="m:N")
    )

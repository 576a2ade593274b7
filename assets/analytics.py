"""Group ``analytics``: seasonality, trends, change points, anomalies and budget forecasts per SLO."""

from datetime import datetime
from pathlib import Path

from dagster import AssetKey, MaterializeResult, MetadataValue, asset

from pipelines import analytics
from pipelines.markdown import markdown_table
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.slo import analytics_charts
from pipelines.slo.budget import default_as_of


def _series(sloscope: SloscopeResource, days: int | None = 90) -> list[analytics.Series]:
    slos = sloscope.load_slos()
    with sloscope.connect(read_only=True) as con:
        as_of = default_as_of(con)
        return [s for slo in slos for s in analytics.slo_series(con, slo, as_of, days=days)]


def _chart(sloscope: SloscopeResource, name: str, svg: str) -> MetadataValue:
    """Write a chart under <reports>/analytics/ (the latest run's) and return a link for the UI."""
    folder = Path(sloscope.reports) / "analytics"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.svg"
    path.write_text(svg, encoding="utf-8")
    return MetadataValue.path(str(path))


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


@asset(
    pool=DUCKDB_POOL,
    group_name="analytics",
    kinds={"duckdb", "statsmodels"},
    deps=[AssetKey("sli_counts_hour")],
)
def slo_seasonality(sloscope: SloscopeResource) -> MaterializeResult:
    """Daily and weekly seasonality (MSTL), robust trends with 95% intervals and level-shift change points of
    every SLO's error rate, availability, throughput and latency p95/p99, hourly and daily (90 days)."""
    components, trends, shifts = analytics.seasonality_rows(_series(sloscope))
    with sloscope.connect() as con:
        analytics.store(con, "slo_seasonal", components)
        analytics.store(con, "slo_trends", trends)
        analytics.store(con, "slo_change_points", shifts)
    significant = [t for t in trends if t["significant"] and t["resolution"] == analytics.DAILY]
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(components),
            "series": len(trends),
            "significant_daily_trends": len(significant),
            "change_points": len(shifts),
            "chart": _chart(sloscope, "availability_trends", analytics_charts.trend_chart(components)),
            "trends": MetadataValue.md(
                markdown_table(
                    ("SLO", "metric", "slope / day", "95% interval", "p"),
                    [
                        (
                            t["slo"],
                            t["metric"],
                            f"{t['slope_per_day']:.3g}",
                            f"[{t['ci_low']:.3g}, {t['ci_high']:.3g}]",
                            f"{t['p_value']:.2g}",
                        )
                        for t in significant
                    ],
                )
            ),
            "change_points_table": MetadataValue.md(
                markdown_table(
                    ("SLO", "metric", "resolution", "at", "before", "after"),
                    [
                        (
                            c["slo"],
                            c["metric"],
                            c["resolution"],
                            _when(c["changed_at"]),
                            f"{c['level_before']:.4g}",
                            f"{c['level_after']:.4g}",
                        )
                        for c in shifts
                    ],
                )
            ),
        }
    )


@asset(
    pool=DUCKDB_POOL, group_name="analytics", kinds={"duckdb", "numpy"}, deps=[AssetKey("sli_counts_hour")]
)
def slo_anomalies(sloscope: SloscopeResource) -> MaterializeResult:
    """A streaming anomaly score in [0, 1] with a confidence and a flag for every hourly point of every SLO
    series (each score uses only the points before it)."""
    rows = analytics.anomaly_rows(_series(sloscope, days=None), keep_days=90)
    with sloscope.connect() as con:
        analytics.store(con, "slo_anomalies", rows)
    flagged = [r for r in rows if r["is_anomaly"]]
    recent = sorted(flagged, key=lambda r: r["bucket_start"], reverse=True)[:20]
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "anomalies": len(flagged),
            "chart": _chart(sloscope, "anomaly_scores", analytics_charts.anomaly_chart(rows)),
            "latest_anomalies": MetadataValue.md(
                markdown_table(
                    ("SLO", "metric", "hour", "value", "score", "confidence"),
                    [
                        (
                            r["slo"],
                            r["metric"],
                            _when(r["bucket_start"]),
                            "—" if r["value"] is None else f"{r['value']:.4g}",
                            f"{r['score']:.2f}",
                            f"{r['confidence']:.2f}",
                        )
                        for r in recent
                    ],
                )
            ),
        }
    )


@asset(
    pool=DUCKDB_POOL,
    group_name="analytics",
    kinds={"duckdb", "numpy"},
    deps=[AssetKey("sli_counts_minute"), AssetKey("slo_status")],
)
def slo_forecasts(sloscope: SloscopeResource) -> MaterializeResult:
    """Monte Carlo forecast of every Occurrences objective's error budget: the probability of exhausting it
    before the window ends, the budget left at the end (p10/p50/p90) and when it would run out (seeded)."""
    slos = sloscope.load_slos()
    with sloscope.connect() as con:
        rows = analytics.forecast_rows(con, slos, default_as_of(con))
        analytics.store(con, "slo_forecasts", rows)
    at_risk = sorted(rows, key=lambda r: -r["probability_exhausted"])
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "objectives_likely_exhausted": sum(1 for r in rows if r["probability_exhausted"] >= 0.5),
            "chart": _chart(sloscope, "budget_forecasts", analytics_charts.forecast_chart(rows)),
            "forecasts": MetadataValue.md(
                markdown_table(
                    ("SLO", "objective", "P(exhausted)", "left p10 / p50 / p90", "runs out (p50)", "seed"),
                    [
                        (
                            r["slo"],
                            r["objective"],
                            f"{r['probability_exhausted']:.0%}",
                            " / ".join(
                                "—" if r[k] is None else f"{r[k]:.0%}"
                                for k in ("remaining_p10", "remaining_p50", "remaining_p90")
                            ),
                            _when(r["exhaustion_p50"]),
                            r["seed"],
                        )
                        for r in at_risk
                    ],
                )
            ),
        }
    )


ANALYTICS_ASSETS = [slo_seasonality, slo_anomalies, slo_forecasts]

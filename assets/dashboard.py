"""Group ``dashboard``: the self-contained interactive SLO dashboard, rebuilt on every evaluation."""

from pathlib import Path

from dagster import AssetKey, MaterializeResult, MetadataValue, asset

from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.slo.dashboard import build_dashboard


@asset(
    pool=DUCKDB_POOL,
    group_name="dashboard",
    kinds={"html", "vega"},
    deps=[AssetKey("slo_status"), AssetKey("slo_hourly"), AssetKey("incidents")],
)
def slo_dashboard(sloscope: SloscopeResource) -> MaterializeResult:
    """One offline HTML page (Vega bundled, no CDN): a card per SLO objective (status, SLI against target,
    budget gauge, burn-rate sparkline) and a drill-down each (history, alerts, anomalies, forecast fan)."""
    out = Path(sloscope.reports) / "dashboard" / "index.html"
    with sloscope.connect(read_only=True) as con:
        path = build_dashboard(con, out)
    return MaterializeResult(
        metadata={"dashboard": MetadataValue.path(str(path)), "size_kb": round(path.stat().st_size / 1024)}
    )

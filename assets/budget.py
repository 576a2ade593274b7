"""Group ``budget``: error budgets, burn rates and status per SLO objective."""

from pathlib import Path

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from pipelines.markdown import markdown_table
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.slo.budget import default_as_of
from pipelines.workflows import (
    alert_state,
    breaches_file,
    evaluate_and_store,
    store_alerts,
    store_hourly,
    write_breaches,
)


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


@asset(
    pool=DUCKDB_POOL,
    group_name="budget",
    kinds={"duckdb"},
    deps=[AssetKey("sli_counts_minute"), AssetKey("sli_threshold_minute"), AssetKey("slo_definitions")],
)
def slo_status(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """SLI, error budget, burn rates and status of every objective, as of the newest minute of data."""
    slos = sloscope.load_slos()
    with sloscope.connect() as con:
        as_of, results = evaluate_and_store(
            con,
            slos,
            as_of=None,
            at_risk_remaining=sloscope.at_risk_remaining,
            policies=sloscope.load_policies(),
        )
    write_breaches(breaches_file(Path(sloscope.warehouse)), results, as_of)
    by_status = {
        s: sum(1 for r in results if r.status == s) for s in ("ok", "at_risk", "breached", "no_data")
    }
    for r in results:
        if r.status == "breached":
            context.log.warning(
                f"{r.slo} / {r.objective}: budget overspent ({_pct(r.budget_remaining)} left)"
            )
    rows = [
        (
            r.slo,
            r.objective,
            _pct(r.target),
            _pct(r.sli, 3),
            _pct(r.budget_remaining, 1),
            "—" if r.burn_rates["1h"] is None else f"{r.burn_rates['1h']:.2f}",
            _pct(r.data_completeness, 1),
            r.status,
            r.policy_state,
        )
        for r in results
    ]
    return MaterializeResult(
        metadata={
            "as_of": as_of.isoformat() + "Z",
            "objectives": len(results),
            **{f"objectives_{k}": v for k, v in by_status.items()},
            "status": MetadataValue.md(
                markdown_table(
                    (
                        "SLO",
                        "objective",
                        "target",
                        "SLI",
                        "budget left",
                        "burn 1h",
                        "data",
                        "status",
                        "policy",
                    ),
                    rows,
                )
            ),
        }
    )


@asset(
    pool=DUCKDB_POOL,
    group_name="budget",
    kinds={"duckdb", "polars"},
    deps=[AssetKey("sli_counts_hour"), AssetKey("sli_threshold_hour"), AssetKey("slo_definitions")],
)
def slo_hourly(sloscope: SloscopeResource) -> MaterializeResult:
    """Hourly good and total events of every SLO indicator over all history (charts, models)."""
    slos = sloscope.load_slos()
    with sloscope.connect() as con:
        rows = store_hourly(con, slos, default_as_of(con))
    return MaterializeResult(metadata={"dagster/row_count": rows, "slos": len(slos)})


@asset(
    pool=DUCKDB_POOL,
    group_name="budget",
    kinds={"duckdb"},
    deps=[AssetKey("sli_counts_minute"), AssetKey("sli_threshold_minute"), AssetKey("slo_definitions")],
)
def slo_alerts(sloscope: SloscopeResource) -> MaterializeResult:
    """Every burn-rate rule per objective as of the newest minute (the alerting file's catalogs and the SLOs'
    OpenSLO conditions): burn over each window, the factor, and whether the rule fires right now."""
    slos = sloscope.load_slos()
    config = sloscope.load_alerting()
    with sloscope.connect() as con:
        as_of = default_as_of(con)
        rows = alert_state(con, slos, as_of, config=config)
        store_alerts(con, rows, as_of)
    firing_rows = [r for r in rows if r["firing"]]
    table = [
        (
            r["slo"],
            r["objective"],
            r["severity"],
            f"{r['long_window']}/{r['short_window']}",
            f"{r['factor']:.2f}",
            "—" if r["burn_long"] is None else f"{r['burn_long']:.2f}",
            "—" if r["burn_short"] is None else f"{r['burn_short']:.2f}",
        )
        for r in firing_rows
    ]
    return MaterializeResult(
        metadata={
            "as_of": as_of.isoformat() + "Z",
            "rules_evaluated": len(rows),
            "pages_firing": sum(1 for r in firing_rows if r["severity"] == "page"),
            "tickets_firing": sum(1 for r in firing_rows if r["severity"] == "ticket"),
            "firing": MetadataValue.md(
                markdown_table(
                    ("SLO", "objective", "severity", "windows", "factor", "burn long", "burn short"), table
                )
            ),
        }
    )

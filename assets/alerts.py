"""Group ``alerts``: alerts become incidents and notifications reach people."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from pipelines import alert_workflow, sqlfiles
from pipelines.markdown import markdown_table
from pipelines.resources import DUCKDB_POOL, SloscopeResource
from pipelines.slo.budget import default_as_of
from pipelines.workflows import backtest_all, current_status, store_backtests


@asset(
    pool=DUCKDB_POOL,
    group_name="alerts",
    kinds={"duckdb"},
    deps=[AssetKey("slo_status"), AssetKey("slo_definitions")],
)
def incidents(context: AssetExecutionContext, sloscope: SloscopeResource) -> MaterializeResult:
    """Burn-rate, no-data and budget alerts as of the newest minute, grouped per service into incidents
    (open, acknowledged, resolved), with notifications delivered to the configured channels."""
    slos = sloscope.load_slos()
    config = sloscope.load_alerting()
    with sloscope.connect() as con:
        statuses = current_status(con)
        as_of = statuses[0].window_end if statuses else None
        run = alert_workflow.run_alerting(con, slos, statuses, as_of, config)
        live = alert_workflow.list_incidents(con, states=["open", "acknowledged"])
    for event in run.result.events:
        context.log.info(f"incident {event.incident_id}: {event.event} {event.detail}")
    outcomes = run.delivery.outcomes if run.delivery else {}
    if outcomes.get("failed"):
        context.log.error(
            f"{outcomes['failed']} notification(s) could not be delivered; see notification_log"
        )
    active = [o for o in run.observations if o.active]
    rows = [
        (
            i["incident_id"],
            i["service"],
            i["severity"],
            i["state"],
            i["title"],
            f"{i['opened_at']:%Y-%m-%d %H:%M}",
            i["alerts_firing"],
        )
        for i in live
    ]
    return MaterializeResult(
        metadata={
            "as_of": run.as_of.isoformat() + "Z",
            "alerts_active": len(active),
            "pages_active": sum(1 for o in active if o.severity == "page"),
            "incidents_live": len(live),
            "incident_events": len(run.result.events),
            "notifications_queued": run.queued,
            **{f"notifications_{k}": v for k, v in sorted(outcomes.items())},
            "incidents": MetadataValue.md(
                markdown_table(("id", "service", "severity", "state", "title", "opened", "firing"), rows)
            ),
        }
    )


def _figure(value: float | None, pattern: str = "{:.0%}") -> str:
    return "—" if value is None else pattern.format(value)


@asset(
    pool=DUCKDB_POOL,
    group_name="alerts",
    kinds={"duckdb"},
    deps=[AssetKey("sli_counts_minute"), AssetKey("sli_threshold_minute"), AssetKey("incidents")],
)
def alert_backtest(sloscope: SloscopeResource) -> MaterializeResult:
    """Alert policies replayed minute by minute over the last 28 days against labelled incidents (the
    known-incidents file and resolved incidents): precision, recall, detection and reset time, pages
    a week."""
    slos = sloscope.load_slos()
    config = sloscope.load_alerting()
    with sloscope.connect() as con:
        as_of = default_as_of(con)
        replay_start, rows = backtest_all(con, slos, config, as_of)
        store_backtests(con, rows, as_of, replay_start)
    table = [
        (
            r["slo"],
            r["objective"],
            r["policy"],
            r["severity"],
            f"{r['true_alerts']}/{r['alerts']}",
            _figure(r["alert_precision"]),
            _figure(r["recall"]),
            _figure(r["mean_detection_minutes"], "{:.0f} min"),
            _figure(r["mean_reset_minutes"], "{:.0f} min"),
            f"{r['pages_per_week']:.2f}",
        )
        for r in rows
    ]
    header = (
        "SLO",
        "objective",
        "policy",
        "severity",
        "true/alerts",
        "precision",
        "recall",
        "detection",
        "reset",
        "per week",
    )
    return MaterializeResult(
        metadata={
            "as_of": as_of.isoformat() + "Z",
            "replay_from": replay_start.isoformat() + "Z",
            "dagster/row_count": len(rows),
            "slos_backtested": len({r["slo"] for r in rows}),
            "backtests": MetadataValue.md(markdown_table(header, table)),
        }
    )


@asset_check(
    pool=DUCKDB_POOL,
    asset=incidents,
    description="Every notification queued so far was delivered or deliberately held.",
)
def notifications_delivered(sloscope: SloscopeResource) -> AssetCheckResult:
    with sloscope.connect(read_only=True) as con:
        failed = con.execute(sqlfiles.sql("check_failed_notifications")).fetchall()
    return AssetCheckResult(
        passed=not failed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "failed_notifications": sum(n for _, n in failed),
            "by_channel": MetadataValue.md(markdown_table(("channel", "failed"), failed)),
        },
    )


@asset_check(
    pool=DUCKDB_POOL,
    asset=incidents,
    description="No incident is open at page severity (a warning, for the UI).",
)
def no_open_pages(sloscope: SloscopeResource) -> AssetCheckResult:
    with sloscope.connect(read_only=True) as con:
        pages = [
            (i["incident_id"], i["service"], i["title"], i["state"])
            for i in alert_workflow.list_incidents(con, states=["open", "acknowledged"])
            if i["severity"] == "page"
        ]
    return AssetCheckResult(
        passed=not pages,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "page_incidents": len(pages),
            "incidents": MetadataValue.md(markdown_table(("id", "service", "title", "state"), pages)),
        },
    )


ALERT_CHECKS = [notifications_delivered, no_open_pages]

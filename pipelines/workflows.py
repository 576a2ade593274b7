"""The steps of the pipeline as plain functions: the Dagster assets and the ``sloscope`` CLI both call
these, so there is one implementation of each step."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipelines import sqlfiles
from pipelines.alert_workflow import (
    at_least_a_slice,
    burn_series,
    labelled_incidents,
    read_known_incidents,
    rules_for,
)
from pipelines.faults import fault_point
from pipelines.slo.aggregate import AggregateReport, refresh_aggregates
from pipelines.slo.alert_config import AlertingConfig
from pipelines.slo.alerting import (
    AlertEpisode,
    AlertRule,
    BacktestResult,
    backtest,
    firing,
    replay,
    rule_threshold,
    rule_windows,
    workbook_rules,
)
from pipelines.slo.budget import (
    RAW_SCALE,
    EvaluationError,
    ObjectiveStatus,
    active_corrections_all,
    burn_rate,
    correction_applies,
    default_as_of,
    evaluate,
    floor_minute,
    good_and_total,
    minute_series,
)
from pipelines.slo.corrections import Correction
from pipelines.slo.policies import PolicySet
from pipelines.slo.spec import SloDefinition, thresholds_of
from pipelines.slo.windows import RollingWindow
from pipelines.warehouse import query_frame, transaction


def utc_now() -> datetime:
    """Naive UTC, the warehouse's time representation."""
    return datetime.now(UTC).replace(tzinfo=None)


def _replace_from_frame(
    con: duckdb.DuckDBPyConnection, name: str, view: str, frame: pl.DataFrame, params: dict | None = None
) -> None:
    with transaction(con):
        con.register(view, frame)
        try:
            sqlfiles.run(con, name, params or {})
        finally:
            con.unregister(view)


def _fixed_seconds(slo: SloDefinition) -> int | None:
    fixed = slo.window.duration.fixed() if isinstance(slo.window, RollingWindow) else None
    return int(fixed.total_seconds()) if fixed else None


def store_objectives(con: duckdb.DuckDBPyConnection, slos: list[SloDefinition]) -> int:
    rows = [
        {
            "slo": slo.name,
            "display_name": slo.display_name,
            "service": slo.service,
            "objective": o.name,
            "objective_index": o.index,
            "target": float(o.target),
            "budgeting_method": slo.budgeting_method,
            "window_seconds": _fixed_seconds(slo),
            "time_window": slo.window_text,
            "source_file": slo.source_file,
            "definition": json.dumps(slo.document, default=str),
        }
        for slo in slos
        for o in slo.objectives
    ]
    schema = {
        "slo": pl.String,
        "display_name": pl.String,
        "service": pl.String,
        "objective": pl.String,
        "objective_index": pl.Int32,
        "target": pl.Float64,
        "budgeting_method": pl.String,
        "window_seconds": pl.Int64,
        "time_window": pl.String,
        "source_file": pl.String,
        "definition": pl.String,
    }
    _replace_from_frame(con, "store_objectives", "new_objectives", pl.DataFrame(rows, schema=schema))
    fault_point("evaluate.after_objectives")
    return len(rows)


def refresh(con: duckdb.DuckDBPyConnection, slos: list[SloDefinition]) -> AggregateReport:
    return refresh_aggregates(con, thresholds_of(slos))


def evaluate_and_store(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    *,
    as_of: datetime | None,
    at_risk_remaining: float,
    policies: PolicySet | None = None,
) -> tuple[datetime, list[ObjectiveStatus]]:
    moment = floor_minute(as_of) if as_of else default_as_of(con)
    results = evaluate(con, slos, moment, at_risk_remaining=at_risk_remaining, policies=policies)
    frame = pl.DataFrame([r.as_row() for r in results]) if results else pl.DataFrame()
    if results:
        _replace_from_frame(
            con, "store_status", "new_status", frame, {"as_of": moment, "evaluated_at": utc_now()}
        )
    fault_point("evaluate.after_status")
    return moment, results


def store_hourly(con: duckdb.DuckDBPyConnection, slos: list[SloDefinition], as_of: datetime) -> int:
    """Hourly good/total of every SLO's indicator over all history up to ``as_of``."""
    first = con.execute(sqlfiles.sql("raw_first_minute")).fetchall()[0][0]
    frames = []
    if first is not None:
        for slo in slos:
            series = good_and_total(con, slo, first, as_of, grain="hour")
            if slo.raw_type is not None:
                # Raw ratios are evaluated as scaled points; history shows points and summed ratios.
                series = series.with_columns(
                    (pl.col("good") / RAW_SCALE).round().cast(pl.Int64), pl.col("total") // RAW_SCALE
                )
            frames.append(series.with_columns(pl.lit(slo.name).alias("slo")))
    schema = {"bucket_start": pl.Datetime("us"), "good": pl.Int64, "total": pl.Int64, "slo": pl.String}
    frame = pl.concat([f.cast(schema) for f in frames]) if frames else pl.DataFrame(schema=schema)  # type: ignore[arg-type]
    _replace_from_frame(con, "store_hourly", "new_hourly", frame)
    fault_point("evaluate.after_hourly")
    return frame.height


def report_hourly(con: duckdb.DuckDBPyConnection, service: str) -> pl.DataFrame:
    return query_frame(con, sqlfiles.sql("report_hourly"), {"service": service})


def current_status(con: duckdb.DuckDBPyConnection) -> list[ObjectiveStatus]:
    """The stored evaluation as of the newest data minute (what ``slo_status`` computes).

    Not simply the greatest stored ``as_of``: an analyst's ``sloscope evaluate --as-of`` in the future
    must not become what reports show.
    """
    as_of = default_as_of(con)
    frame = query_frame(con, sqlfiles.sql("status_as_of"), {"as_of": as_of})
    if frame.is_empty():
        raise EvaluationError(
            f"no evaluation as of the newest data ({as_of:%Y-%m-%dT%H:%M}Z); materialise slo_status first"
        )
    return [ObjectiveStatus.from_row(row) for row in frame.iter_rows(named=True)]


def store_history(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    day: date,
    *,
    at_risk_remaining: float,
    policies: PolicySet | None = None,
) -> list[ObjectiveStatus]:
    """Evaluate the SLOs as of the end of ``day`` (UTC) and store that day's history rows."""
    as_of = datetime.combine(day + timedelta(days=1), datetime.min.time())
    results = evaluate(con, slos, as_of, at_risk_remaining=at_risk_remaining, policies=policies)
    rows = [r.as_row() for r in results]
    frame = pl.DataFrame(rows) if rows else pl.DataFrame()
    if rows:
        _replace_from_frame(
            con,
            "store_history",
            "new_history",
            frame,
            # Composite wholes are stored under the composite's own name: replace those rows too.
            {
                "day": day,
                "slos": sorted({s.name for s in slos} | {s.composite for s in slos if s.composite}),
                "evaluated_at": utc_now(),
            },
        )
    fault_point("history.after_day")
    return results


def history_days_affected(
    con: duckdb.DuckDBPyConnection, slos: list[SloDefinition], correction: Correction
) -> dict[date, list[SloDefinition]]:
    """Stored history days whose evaluation window overlaps the correction, with the SLOs to recompute
    (the same span logic late data uses; composites recomputed together)."""
    from pipelines.late_data import history_days_touched, stored_history_days

    return history_days_touched(
        stored_history_days(con, date.min),
        slos,
        lambda slo, start, end: (
            correction_applies(correction, slo) and bool(correction.intervals(start, end))
        ),
    )


def recompute_history_for(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    correction: Correction,
    *,
    at_risk_remaining: float,
    policies: PolicySet | None = None,
) -> list[date]:
    """Re-evaluate the stored history a correction changes (after adding or removing it)."""
    affected = history_days_affected(con, slos, correction)
    for day, day_slos in sorted(affected.items()):
        store_history(con, day_slos, day, at_risk_remaining=at_risk_remaining, policies=policies)
    return sorted(affected)


def history(
    con: duckdb.DuckDBPyConnection, start: date, end: date, slos: list[str] | None = None
) -> list[tuple[date, ObjectiveStatus]]:
    frame = query_frame(con, sqlfiles.sql("history_range"), {"start": start, "end": end, "slos": slos})
    out = []
    for row in frame.iter_rows(named=True):
        day = row.pop("day")
        out.append((day, ObjectiveStatus.from_row(row)))
    return out


def backtest_slo(
    con: duckdb.DuckDBPyConnection,
    slo: SloDefinition,
    incidents: list[tuple[datetime, datetime]],
    start: datetime,
    end: datetime,
    *,
    objective_index: int = 0,
    four_pairs: bool = False,
    rules: list[AlertRule] | None = None,
    resolve_after: timedelta = timedelta(0),
) -> tuple[list[AlertEpisode], list[BacktestResult]]:
    """Replay [start, end) minute by minute through burn-rate rules (default: the SRE Workbook's) for one
    objective and score the alerts against known incidents. Factors use the SLO's window length (for a
    calendar window, the period that contains ``end``); corrections recorded for the SLO are applied;
    ``resolve_after`` applies the incident engine's hysteresis."""
    objective = slo.objectives[objective_index]
    corrections = [c for c in active_corrections_all(con) if correction_applies(c, slo)]
    good, total = minute_series(con, slo, start, end, corrections)
    # Timeslices objectives burn slices, not events (as their alerts do).
    good, total, size = burn_series(slo, objective, good, total)
    chosen = rules if rules is not None else workbook_rules(four_pairs)
    period_start, period_end = slo.window.period(floor_minute(end))
    episodes = replay(
        good,
        total,
        floor_minute(start),
        objective.target,
        period_end - period_start,
        [at_least_a_slice(rule, size) for rule in chosen],
        resolve_after=resolve_after,
    )
    return episodes, backtest(episodes, incidents, floor_minute(start), floor_minute(end))


def policy_catalog(slo: SloDefinition, config: AlertingConfig) -> dict[str, list[AlertRule]]:
    """The alert policies a backtest can compare for an SLO: what it is configured with, the built-in
    Workbook catalogs, every catalog of the alerting file, and its OpenSLO conditions alone."""
    configured = [w.rule for w in rules_for(slo, config)]
    candidates: dict[str, list[AlertRule]] = {}
    for name in ("workbook", "workbook-4", *sorted(config.catalogs)):
        candidates[name] = list(config.catalog_rules(name))
    openslo = [w.rule for w in rules_for(slo, config) if w.policy is not None]
    if openslo:
        candidates["openslo"] = openslo
    # The configured policy is named after the catalog it is, so the same rules are replayed once.
    same = next((name for name, rules in candidates.items() if rules == configured), None)
    out = {f"{same} (configured)" if same else "configured": configured}
    out.update((name, rules) for name, rules in candidates.items() if name != same)
    return {name: rules for name, rules in out.items() if rules}


def backtest_all(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    config: AlertingConfig,
    as_of: datetime,
    *,
    days: int = 28,
) -> tuple[datetime, list[dict]]:
    """Every Occurrences objective with labelled incidents in the last ``days`` replayed through every
    policy of :func:`policy_catalog` (with the engine's hysteresis): one row per policy and severity."""
    end = floor_minute(as_of)
    start = end - timedelta(days=days)
    known = []
    if config.known_incidents is not None and config.known_incidents.exists():
        known = read_known_incidents(config.known_incidents)
    rows: list[dict] = []
    for slo in slos:
        if slo.percentile is not None:
            continue
        incidents = [(a, b) for a, b in labelled_incidents(con, slo.service, known) if a < end and b > start]
        if not incidents:
            continue
        for policy, rules in policy_catalog(slo, config).items():
            for objective in slo.objectives:
                _, results = backtest_slo(
                    con,
                    slo,
                    incidents,
                    start,
                    end,
                    objective_index=objective.index,
                    rules=rules,
                    resolve_after=config.resolve_after,
                )
                for r in results:
                    resets = [m for m in r.reset_minutes if m is not None]
                    rows.append(
                        {
                            "slo": slo.name,
                            "objective": objective.name,
                            "policy": policy,
                            "severity": r.severity,
                            "incidents": len(incidents),
                            "alerts": r.alerts,
                            "true_alerts": r.true_alerts,
                            "alert_precision": r.precision,
                            "recall": r.recall,
                            "mean_detection_minutes": (
                                sum(r.detection_minutes) / len(r.detection_minutes)
                                if r.detection_minutes
                                else None
                            ),
                            "mean_reset_minutes": sum(resets) / len(resets) if resets else None,
                            "pages_per_week": r.pages_per_week,
                        }
                    )
    return start, rows


def store_backtests(
    con: duckdb.DuckDBPyConnection, rows: list[dict], as_of: datetime, replay_start: datetime
) -> None:
    schema = {
        "as_of": pl.Datetime("us"),
        "replay_start": pl.Datetime("us"),
        "slo": pl.String,
        "objective": pl.String,
        "policy": pl.String,
        "severity": pl.String,
        "incidents": pl.Int32,
        "alerts": pl.Int32,
        "true_alerts": pl.Int32,
        "alert_precision": pl.Float64,
        "recall": pl.Float64,
        "mean_detection_minutes": pl.Float64,
        "mean_reset_minutes": pl.Float64,
        "pages_per_week": pl.Float64,
    }
    full = [{"as_of": floor_minute(as_of), "replay_start": replay_start, **row} for row in rows]
    _replace_from_frame(con, "store_backtests", "new_backtests", pl.DataFrame(full, schema=schema))


def _span_text(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def alert_state(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    as_of: datetime,
    *,
    four_pairs: bool = False,
    config: AlertingConfig | None = None,
) -> list[dict]:
    """Each Occurrences objective's burn-rate rules as of ``as_of``: both windows' burn rates, the factor,
    and whether the rule fires right now (no hysteresis: this is the rules' raw state). With ``config``,
    the rules are those the alerting file and the SLO's OpenSLO policies give it (an OpenSLO condition
    has one window, shown as both); without, the SRE Workbook's. Timeslices and percentile objectives
    budget slices, not events, and have no burn-rate alerts."""
    moment = floor_minute(as_of)
    active = active_corrections_all(con)
    rows: list[dict] = []
    for slo in slos:
        if slo.budgeting_method != "Occurrences":
            continue
        if config is None:
            rules: list[AlertRule] = list(workbook_rules(four_pairs))
        else:
            rules = [w.rule for w in rules_for(slo, config)]
        if not rules:
            continue
        lookback = max(max(rule_windows(r)) + getattr(r, "alert_after", timedelta(0)) for r in rules)
        corrections = [c for c in active if correction_applies(c, slo)]
        good, total = minute_series(con, slo, moment - lookback, moment, corrections)
        period_start, period_end = slo.window.period(moment - timedelta(minutes=1))
        period = period_end - period_start
        for objective in slo.objectives:
            fires = firing(good, total, objective.target, period, rules)
            for rule, state in zip(rules, fires, strict=True):
                windows = rule_windows(rule)
                long_window, short_window = windows[0], windows[-1]
                long_k, short_k = (int(w.total_seconds() // 60) for w in (long_window, short_window))
                rows.append(
                    {
                        "slo": slo.name,
                        "service": slo.service,
                        "objective": objective.name,
                        "severity": rule.severity,
                        "long_window": _span_text(long_window),
                        "short_window": _span_text(short_window),
                        "factor": float(rule_threshold(rule, period)),
                        "burn_long": burn_rate(
                            int(good[-long_k:].sum()), int(total[-long_k:].sum()), objective.target
                        ),
                        "burn_short": burn_rate(
                            int(good[-short_k:].sum()), int(total[-short_k:].sum()), objective.target
                        ),
                        "firing": bool(state[-1]) if len(state) else False,
                    }
                )
    return rows


def store_alerts(con: duckdb.DuckDBPyConnection, rows: list[dict], as_of: datetime) -> None:
    schema = {
        "slo": pl.String,
        "service": pl.String,
        "objective": pl.String,
        "severity": pl.String,
        "long_window": pl.String,
        "short_window": pl.String,
        "factor": pl.Float64,
        "burn_long": pl.Float64,
        "burn_short": pl.Float64,
        "firing": pl.Boolean,
    }
    _replace_from_frame(
        con, "store_alerts", "new_alerts", pl.DataFrame(rows, schema=schema), {"as_of": floor_minute(as_of)}
    )


def pull_sources(sources_file: Path | None, slos_dir: Path, landing: Path, until: datetime) -> list[Path]:
    """Pull every configured source into the landing folder (new ranges only); the files it wrote."""
    from pipelines.slo.spec import load_catalog
    from pipelines.sources.config import load_sources

    configured = load_sources(sources_file, load_catalog(slos_dir))
    moment = until if until.tzinfo else until.replace(tzinfo=UTC)  # the warehouse's naive times are UTC
    written: list[Path] = []
    for source in configured.sources:
        written += source.pull(landing, moment)
    return written


def breaches_file(warehouse: Path) -> Path:
    """Where slo_status leaves the breached objectives for the breach sensor (sensors stay off DuckDB)."""
    return Path(warehouse).parent / "breaches.json"


def write_breaches(path: Path, statuses: list[ObjectiveStatus], as_of: datetime) -> None:
    """The breached objectives per service, atomically (a sensor never reads half a file)."""
    breached: dict[str, list[str]] = {}
    for s in statuses:
        if s.status == "breached":
            breached.setdefault(s.service, []).append(f"{s.slo} / {s.objective}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"as_of": as_of.isoformat() + "Z", "breached": breached}, sort_keys=True))
    tmp.replace(path)

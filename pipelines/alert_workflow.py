"""Alerting as a pipeline step, shared by the Dagster assets and the ``sloscope`` CLI: observe every alert
as of the newest minute, advance incidents (:mod:`pipelines.slo.incidents`), queue notifications in the
outbox and deliver them (:mod:`pipelines.slo.notify`).

Two clocks: alerts are *observed* as of the newest minute of data (``as_of``), as everywhere in sloscope,
so when an alert started comes from the data. Incidents live on the wall clock (never earlier than
``as_of``): when sloscope opened, escalated or resolved them, and when people acknowledged them, so
"unacknowledged for 15 minutes" means fifteen real minutes even if data arrives late.

Delivery is at most once per idempotency key and channel: the outbox holds one row per (key, channel), the
log records every attempt, and :func:`pipelines.slo.notify.dispatch` refuses a key already delivered. A crash
between a send and its recording (one transaction per outbox row) leaves the row pending: the next run sends
it again with the same key and payload, so receivers deduplicate by the idempotency key.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from pipelines import sqlfiles
from pipelines.faults import fault_point
from pipelines.slo.alert_config import AlertingConfig
from pipelines.slo.alerting import (
    AlertRule,
    BurnRateRule,
    ConditionRule,
    rule_threshold,
    rule_windows,
    severity_activity,
    trailing_start,
)
from pipelines.slo.budget import (
    ObjectiveStatus,
    active_corrections_all,
    burn_rate,
    correction_applies,
    floor_minute,
    minute_series,
)
from pipelines.slo.corrections import excluded_minute_mask
from pipelines.slo.filters import EventFilter
from pipelines.slo.incidents import (
    SEVERITY_RANK,
    AlertRecord,
    EngineState,
    IncidentEvent,
    IncidentRecord,
    Intent,
    Observation,
    StepResult,
    acknowledge,
    dedup_key,
    resolve,
    step,
)
from pipelines.slo.notify import Attempt, Notification, dispatch
from pipelines.slo.spec import AlertPolicy, Objective, SloDefinition, parse_rolling_duration
from pipelines.slo.timeslices import exact_fraction, slice_sums
from pipelines.warehouse import query_frame, transaction

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
RUNBOOK_ANNOTATION = "sloscope.io/runbook-url"
# Alertmanager forgets a firing alert that is not re-sent before its endsAt; evaluations run at least
# hourly, so every evaluation re-sends firing alerts with this much headroom.
ALERTMANAGER_HOLD = timedelta(minutes=90)
REFRESH_EVERY = timedelta(minutes=30)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def _naive(moment: datetime | None) -> datetime | None:
    return (
        None if moment is None else moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    )


def wall_clock() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _span(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes and minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _human_span(span: timedelta) -> str:
    """``3d 3h 49m``: durations people read in a page."""
    minutes = int(span.total_seconds() // 60)
    parts = [(minutes // 1440, "d"), (minutes % 1440 // 60, "h"), (minutes % 60, "m")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n) or "0m"


def _runbook(slo: SloDefinition) -> str | None:
    annotations = (slo.document.get("metadata") or {}).get("annotations") or {}
    url = annotations.get(RUNBOOK_ANNOTATION)
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None


def _condition_rule(policy: AlertPolicy) -> ConditionRule:
    c = policy.condition
    after = timedelta(0) if c.alert_after in ("0m", "0s") else parse_rolling_duration(c.alert_after)
    return ConditionRule(
        name=c.name,
        severity=c.severity,
        op=c.op,
        threshold=Fraction(str(c.threshold)),
        lookback=parse_rolling_duration(c.lookback_window),
        alert_after=after,
    )


@dataclass(frozen=True)
class WatchedRule:
    rule: AlertRule
    policy: AlertPolicy | None  # the OpenSLO policy it comes from; None for a catalog rule


def rules_for(slo: SloDefinition, config: AlertingConfig) -> list[WatchedRule]:
    """The catalog rules and OpenSLO policy conditions watching an SLO (see alert_config)."""
    watched = [WatchedRule(r, None) for r in config.rules_for(slo.name, bool(slo.alert_policies))]
    watched += [WatchedRule(_condition_rule(p), p) for p in slo.alert_policies]
    return watched


def _lookback(watched: list[WatchedRule], config: AlertingConfig) -> timedelta:
    longest = max(
        (max(rule_windows(w.rule)) + getattr(w.rule, "alert_after", timedelta(0)) for w in watched),
        default=timedelta(0),
    )
    return max(longest + config.resolve_after, config.no_data_after) + _MINUTE


def _filter_counts(
    con: duckdb.DuckDBPyConnection, event_filter: EventFilter, start: datetime, end: datetime
) -> dict[tuple[str, int | None], int]:
    query = sqlfiles.sql("objective_causes")
    params = {"start": start, "end": end, **event_filter.sql_params()}
    rows = con.execute(query, sqlfiles.params_for(query, params)).fetchall()
    return {(operation, status): int(n) for operation, status, n in rows if n}


def attribution(
    con: duckdb.DuckDBPyConnection, slo: SloDefinition, start: datetime, end: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Bad events in [start, end) by operation and by status code, largest first, with their shares of all
    bad events (raw ratios have no events to attribute: empty)."""
    if slo.raw_type is not None:
        return {"operations": [], "status_codes": []}
    if slo.good is not None:
        total = _filter_counts(con, slo.total, start, end)
        good = _filter_counts(con, slo.total.intersect(slo.good), start, end)
        bad = {cause: n - good.get(cause, 0) for cause, n in total.items()}
    else:
        bad = _filter_counts(con, slo.total.intersect(slo.bad), start, end)  # type: ignore[arg-type]
    bad = {cause: n for cause, n in bad.items() if n > 0}
    all_bad = sum(bad.values())

    def ranked(index: int) -> list[dict[str, Any]]:
        sums: dict[Any, int] = {}
        for cause, n in bad.items():
            sums[cause[index]] = sums.get(cause[index], 0) + n
        top = sorted(sums.items(), key=lambda kv: (-kv[1], str(kv[0])))[:3]
        return [{"value": value, "bad_events": n, "share": n / all_bad} for value, n in top]

    return {"operations": ranked(0), "status_codes": ranked(1)}


def _burn_facts(
    good: np.ndarray, total: np.ndarray, target: Any, period: timedelta, watched: list[WatchedRule]
) -> list[tuple[str, str]]:
    facts = []
    for w in watched:
        threshold = float(rule_threshold(w.rule, period))
        rates = []
        for window in rule_windows(w.rule):
            k = window // _MINUTE
            rate = burn_rate(int(good[-k:].sum()), int(total[-k:].sum()), target)
            rates.append("—" if rate is None else f"{rate:.2f}×")
        label = "/".join(_span(window) for window in rule_windows(w.rule))
        op = (
            "≥"
            if isinstance(w.rule, ConditionRule) is False
            else {"gte": "≥", "gt": ">", "lt": "<", "lte": "≤"}[w.rule.op]
        )
        facts.append((f"Burn rate {label}", f"{' / '.join(rates)} (alerts at {op} {threshold:.4g}×)"))
    return facts


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def observe(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    statuses: list[ObjectiveStatus],
    as_of: datetime,
    config: AlertingConfig,
    now: datetime | None = None,
) -> list[Observation]:
    """Every alert sloscope watches, active or not, as of ``as_of``: burn-rate alerts (Occurrences
    objectives), no-data alerts, and error budget policy alerts. No data is judged at ``now`` (the wall
    clock, when later than the data): a feed that stops entirely must still raise it."""
    moment = floor_minute(as_of)
    quiet_until = max(moment, floor_minute(now)) if now is not None else moment
    by_objective = {(s.slo, s.objective): s for s in statuses}
    active_corrections = active_corrections_all(con)
    anomalies: dict[str, list[tuple]] = {}
    if config.anomaly_severity is not None:
        # Hourly scores from the analytics run; an hour older than 3 hours is not "now".
        for row in con.execute(sqlfiles.sql("latest_anomalies"), {"since": moment - 3 * _HOUR}).fetchall():
            anomalies.setdefault(row[0], []).append(row)
    out: list[Observation] = []
    for slo in slos:
        watched = rules_for(slo, config)
        corrections = [c for c in active_corrections if correction_applies(c, slo)]
        lookback = _lookback(watched, config)
        series_start = moment - lookback
        good, total = minute_series(con, slo, series_start, moment, corrections)
        mine = [by_objective.get((slo.name, o.name)) for o in slo.objectives]
        base = {
            "slo": slo.name,
            "slo_display_name": slo.display_name,
            "service": slo.service,
            "runbook_url": _runbook(slo),
        }
        if slo.percentile is None and watched:
            out += _burn_observations(
                con, slo, watched, good, total, series_start, moment, mine, config, base
            )
        # Minutes with events, or excluded by a correction, up to the moment silence is judged at.
        present = excluded_minute_mask(corrections, series_start, (quiet_until - series_start) // _MINUTE)
        present[: len(total)] |= total > 0
        out += _no_data_observations(slo, watched, present, series_start, quiet_until, mine, config, base)
        out += _budget_observations(slo, mine, moment, config, base)
        out += _anomaly_observations(slo, anomalies.get(slo.name, []), config, base)
    _add_correlation(con, out, moment)
    return out


RATIO_SCALE = 1_000_000  # RatioTimeslices: a slice's bad share in millionths


def burn_series(
    slo: SloDefinition, objective: Objective, good: np.ndarray, total: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """The per-minute counts burn-rate rules read for an objective, and its slice length in minutes.

    Occurrences: the events themselves. Timeslices: one unit per whole slice (counted back from the end
    of the series, as evaluation does), placed at the slice's last minute, bad when the slice had traffic
    and missed its ``timeSliceTarget``; empty slices count as good, as the budget counts every slice.
    RatioTimeslices: each slice with traffic weighs RATIO_SCALE, of which its failure share is bad.
    """
    size = objective.time_slice_minutes
    if slo.budgeting_method == "Occurrences" or not size:
        return good, total, 1
    n = len(total)
    offset = n % size
    goods, totals = slice_sums(good[offset:], total[offset:], size)
    ends = offset + (np.arange(len(totals)) + 1) * size - 1
    out_good = np.zeros(n, dtype=np.int64)
    out_total = np.zeros(n, dtype=np.int64)
    traffic = totals > 0
    if slo.budgeting_method == "Timeslices":
        threshold = exact_fraction(objective.time_slice_target, "time_slice_target")  # type: ignore[arg-type]
        meets = goods.astype(object) * threshold.denominator >= totals.astype(object) * threshold.numerator
        bad = traffic & ~meets.astype(bool)
        out_total[ends] = 1
        out_good[ends] = (~bad).astype(np.int64)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(traffic, goods / np.where(traffic, totals, 1), 0.0)
        out_total[ends] = np.where(traffic, RATIO_SCALE, 0)
        out_good[ends] = np.where(traffic, np.round(share * RATIO_SCALE).astype(np.int64), 0)
    return out_good, out_total, size


def at_least_a_slice(rule: AlertRule, size: int) -> AlertRule:
    """A rule whose windows are shorter than a slice would see no slice end at most boundaries: widen them
    to one slice (the factor of a burn-rate rule depends on its long window only, which is wider)."""
    floor = timedelta(minutes=size)
    if size <= 1:
        return rule
    if isinstance(rule, BurnRateRule):
        return BurnRateRule(
            rule.severity, max(rule.long_window, floor), max(rule.short_window, floor), rule.budget_share
        )
    return replace(rule, lookback=max(rule.lookback, floor))


def _burn_observations(
    con: duckdb.DuckDBPyConnection,
    slo: SloDefinition,
    watched: list[WatchedRule],
    good: np.ndarray,
    total: np.ndarray,
    series_start: datetime,
    moment: datetime,
    statuses: list[ObjectiveStatus | None],
    config: AlertingConfig,
    base: dict[str, Any],
) -> list[Observation]:
    period_start, period_end = slo.window.period(moment - _MINUTE)
    period = period_end - period_start
    out = []
    for severity in sorted({w.rule.severity for w in watched}, key=lambda s: -SEVERITY_RANK.get(s, -1)):
        of_severity = [w for w in watched if w.rule.severity == severity]
        policies = [w.policy for w in of_severity if w.policy is not None]
        catalog = any(w.policy is None for w in of_severity)
        notify_trigger = catalog or any(p.alert_when_breaching for p in policies)
        notify_resolve = catalog or any(p.alert_when_resolved for p in policies)
        started: list[datetime] = []
        firing_objectives = []
        per_objective = {o.index: burn_series(slo, o, good, total) for o in slo.objectives}
        for objective in slo.objectives:
            g, t, size = per_objective[objective.index]
            activity = severity_activity(
                g,
                t,
                objective.target,
                period,
                [at_least_a_slice(w.rule, size) for w in of_severity],
                resolve_after=config.resolve_after,
            )[severity]
            start = trailing_start(activity, series_start)
            if start is not None:
                started.append(start)
                firing_objectives.append(objective)
        objective_names = ", ".join(o.name for o in (firing_objectives or slo.objectives))
        key = dedup_key(slo.name, "burn_rate", severity)
        if not firing_objectives:
            out.append(
                Observation(
                    key, objective=objective_names, kind="burn_rate", severity=severity, active=False, **base
                )
            )
            continue
        objective = firing_objectives[0]
        status = statuses[objective.index] if objective.index < len(statuses) else None
        started_at = min(started)
        g, t, size = per_objective[objective.index]
        rules = [at_least_a_slice(w.rule, size) for w in of_severity]
        facts = _burn_facts(
            g,
            t,
            objective.target,
            period,
            [replace(w, rule=r) for w, r in zip(of_severity, rules, strict=True)],
        )
        impact_from = started_at - min(max(rule_windows(r)) for r in rules)
        i0 = max(0, (impact_from - series_start) // _MINUTE)
        bad_events = int((total[i0:] - good[i0:]).sum())
        events = int(total[i0:].sum())
        allowed = (status.budget_units or {}).get("allowed_bad_events") if status else None
        consumed = bad_events / allowed if allowed else None
        if slo.budgeting_method == "Timeslices":
            # The budget is slices: the episode's bad slices against the period's allowed bad slices.
            bad_slices = int((t[i0:] - g[i0:]).sum())
            allowed_slices = (
                float(1 - exact_fraction(objective.target, "target")) * (period // _MINUTE) / size
            )
            consumed = bad_slices / allowed_slices if allowed_slices else None
        causes = attribution(con, slo, impact_from, moment)
        latency = any(f is not None and f.thresholds for f in (slo.total, slo.good, slo.bad))
        kind_of_bad = "slow" if latency else "failed"
        facts += [
            ("Target", f"{float(objective.target):.3%} ({objective.name})"),
            ("Budget left", _share(status.budget_remaining if status else None)),
        ]
        if slo.raw_type is None:
            facts.append(
                (
                    f"{kind_of_bad.capitalize()} requests",
                    f"{bad_events:,} of {events:,} in the last {_human_span(moment - impact_from)}",
                )
            )
            if slo.budgeting_method == "Timeslices":
                slices = int(t[i0:].sum())
                facts.append((f"Bad {size}-minute slices", f"{int((t[i0:] - g[i0:]).sum()):,} of {slices:,}"))
            facts.append(("Budget consumed by this episode", _share(consumed)))
        else:
            # Raw ratios are scaled data points, not requests: say what share of the points' weight was bad.
            consumed = None
            share = bad_events / events if events else None
            facts.append((f"Bad share in the last {_human_span(moment - impact_from)}", _share(share)))
            bad_events = events = None  # type: ignore[assignment]
        facts.append(("Firing for", _human_span(moment - started_at)))
        if causes["operations"]:
            facts.append(
                ("Top operations", ", ".join(f"{c['value']} {c['share']:.0%}" for c in causes["operations"]))
            )
        if causes["status_codes"]:
            facts.append(
                (
                    "Top status codes",
                    ", ".join(
                        f"{'no status' if c['value'] is None else c['value']} {c['share']:.0%}"
                        for c in causes["status_codes"]
                    ),
                )
            )
        top_rate = facts[0][1].split(" ")[0]
        title = f"{slo.display_name}: error budget burning {top_rate} ({severity})"
        details = {
            "objectives": [o.name for o in firing_objectives],
            "impact": {
                "from": impact_from.isoformat(),
                "bad_events": bad_events,
                "events": events,
                "kind": kind_of_bad,
                "budget_consumed": consumed,
                "duration_minutes": (moment - started_at) // _MINUTE,
            },
            "attribution": causes,
        }
        out.append(
            Observation(
                key,
                objective=objective_names,
                kind="burn_rate",
                severity=severity,
                active=True,
                started_at=started_at,
                title=title,
                description="\n".join(f"{label}: {value}" for label, value in facts),
                facts=tuple(facts),
                details=details,
                notify_trigger=notify_trigger,
                notify_resolve=notify_resolve,
                **base,
            )
        )
    return out


def _no_data_observations(
    slo: SloDefinition,
    watched: list[WatchedRule],
    present: np.ndarray,
    series_start: datetime,
    moment: datetime,
    statuses: list[ObjectiveStatus | None],
    config: AlertingConfig,
    base: dict[str, Any],
) -> list[Observation]:
    """No events for longer than ``no_data_after`` (or a policy's lookback with ``alertWhenNoData``), for an
    SLO that has data in its window: a source that stopped, not one that never started. ``present`` marks
    minutes with events or excluded by a correction (maintenance is not missing data); ``moment`` is the
    time the silence is measured to, which may lie after the series."""
    with_data = np.flatnonzero(present)
    last_data_end = series_start + (int(with_data[-1]) + 1) * _MINUTE if len(with_data) else None
    quiet_since = last_data_end or series_start
    had_data = any(s is not None and s.total > 0 for s in statuses) or last_data_end is not None
    thresholds: dict[str, timedelta] = {}
    if config.no_data_after > timedelta(0):
        thresholds[config.no_data_severity] = config.no_data_after
    for w in watched:
        if w.policy is not None and w.policy.alert_when_no_data:
            lookback = rule_windows(w.rule)[0]
            severity = w.rule.severity
            thresholds[severity] = min(thresholds.get(severity, lookback), lookback)
    out = []
    for severity, after in sorted(thresholds.items()):
        active = had_data and moment - quiet_since >= after
        title = f"{slo.display_name}: no data for {_human_span(moment - quiet_since)}"
        facts = (
            (
                "Last data",
                f"{quiet_since:%Y-%m-%d %H:%M} UTC"
                if last_data_end
                else f"before {quiet_since:%Y-%m-%d %H:%M} UTC",
            ),
            ("Alerts after", _span(after)),
        )
        out.append(
            Observation(
                dedup_key(slo.name, "no_data", severity),
                objective=", ".join(o.name for o in slo.objectives),
                kind="no_data",
                severity=severity,
                active=active,
                started_at=quiet_since + after if active else None,
                title=title if active else "",
                description="\n".join(f"{k}: {v}" for k, v in facts) if active else "",
                facts=facts if active else (),
                details={"last_data_end": last_data_end.isoformat() if last_data_end else None},
                **base,
            )
        )
    return out


def _budget_observations(
    slo: SloDefinition,
    statuses: list[ObjectiveStatus | None],
    moment: datetime,
    config: AlertingConfig,
    base: dict[str, Any],
) -> list[Observation]:
    out = []
    for severity in sorted(set(config.budget_states.values())):
        matching = [
            s for s in statuses if s is not None and config.budget_states.get(s.policy_state) == severity
        ]
        key = dedup_key(slo.name, "budget", severity)
        objectives = ", ".join(o.name for o in slo.objectives)
        if not matching:
            out.append(
                Observation(key, objective=objectives, kind="budget", severity=severity, active=False, **base)
            )
            continue
        worst = min(matching, key=lambda s: s.budget_remaining if s.budget_remaining is not None else 1.0)
        facts = (
            ("Policy state", worst.policy_state),
            ("Budget left", _share(worst.budget_remaining)),
            ("SLI", "—" if worst.sli is None else f"{worst.sli:.4%}"),
            ("Target", f"{worst.target:.3%} ({worst.objective})"),
        )
        out.append(
            Observation(
                key,
                objective=", ".join(s.objective for s in matching),
                kind="budget",
                severity=severity,
                active=True,
                started_at=moment,
                title=f"{slo.display_name}: error budget {worst.policy_state} "
                f"({_share(worst.budget_remaining)} left)",
                description="\n".join(f"{k}: {v}" for k, v in facts),
                facts=facts,
                details={"policy_state": worst.policy_state, "budget_remaining": worst.budget_remaining},
                **base,
            )
        )
    return out


_METRIC_NAMES = {
    "error_rate": "error rate",
    "availability": "availability",
    "throughput": "throughput",
    "latency_p95": "p95 latency",
    "latency_p99": "p99 latency",
}


def _anomaly_observations(
    slo: SloDefinition, latest: list[tuple], config: AlertingConfig, base: dict[str, Any]
) -> list[Observation]:
    """One anomaly alert per SLO: active while the newest scored hour of a watched metric is anomalous with
    at least ``anomaly_min_confidence`` and above its median of the day before (scores from the
    slo_anomalies asset)."""
    if config.anomaly_severity is None:
        return []
    key = dedup_key(slo.name, "anomaly", config.anomaly_severity)
    objectives = ", ".join(o.name for o in slo.objectives)
    # Error rate and latency are only bad when high (a dip to zero errors after an outage is no news);
    # traffic is news either way (a drop is often lost users).
    hits = [
        row[:7]
        for row in latest
        if row[1] in config.anomaly_metrics
        and row[6]
        and row[5] >= config.anomaly_min_confidence
        and row[3] is not None
        and (row[7] is None or row[1] == "throughput" or row[3] > row[7])
    ]
    if not hits:
        return [
            Observation(
                key,
                objective=objectives,
                kind="anomaly",
                severity=config.anomaly_severity,
                active=False,
                **base,
            )
        ]
    worst = max(hits, key=lambda row: row[4])
    facts = tuple(
        (
            f"Unusual {_METRIC_NAMES.get(metric, metric)}",
            f"{'—' if value is None else f'{value:.4g}'} at {hour:%Y-%m-%d %H:00} UTC "
            f"(score {score:.2f}, confidence {confidence:.0%})",
        )
        for _, metric, hour, value, score, confidence, _ in hits
    )
    return [
        Observation(
            key,
            objective=objectives,
            kind="anomaly",
            severity=config.anomaly_severity,
            active=True,
            started_at=worst[2],
            title=f"{slo.display_name}: unusual {_METRIC_NAMES.get(worst[1], worst[1])} "
            f"(score {worst[4]:.2f}, confidence {worst[5]:.0%})",
            description="\n".join(f"{k}: {v}" for k, v in facts),
            facts=facts,
            details={
                "anomalies": [
                    {"metric": m, "hour": h.isoformat(), "score": sc, "confidence": c}
                    for _, m, h, _, sc, c, _ in hits
                ]
            },
            **base,
        )
    ]


def _add_correlation(
    con: duckdb.DuckDBPyConnection, observations: list[Observation], moment: datetime
) -> None:
    """Name, with each active alert, the other SLOs alerting over the same period (now or stored)."""
    active_now = {o.slo for o in observations if o.active}
    for i, obs in enumerate(observations):
        if not obs.active:
            continue
        start = obs.started_at or moment
        stored = con.execute(
            sqlfiles.sql("alerts_overlapping"), {"slo": obs.slo, "start": start, "end": moment + _MINUTE}
        ).fetchall()
        others = sorted((active_now - {obs.slo}) | {slo for slo, _, _ in stored})
        if not others:
            continue
        facts = (*obs.facts, ("Also alerting", ", ".join(others)))
        observations[i] = replace(
            obs,
            facts=facts,
            description=obs.description + f"\nAlso alerting: {', '.join(others)}",
            details={**obs.details, "correlated_slos": others},
        )


# ---------------------------------------------------------------------------------------------------------
# State in the warehouse


def _alert_from_row(row: dict[str, Any]) -> AlertRecord:
    values = dict(row)
    values["facts"] = tuple(tuple(pair) for pair in json.loads(values["facts"]))
    values["details"] = json.loads(values["details"])
    return AlertRecord(**values)


def load_state(con: duckdb.DuckDBPyConnection, now: datetime, cooldown: timedelta) -> EngineState:
    alerts = [
        _alert_from_row(r) for r in query_frame(con, sqlfiles.sql("alerts_firing")).iter_rows(named=True)
    ]
    incidents = [
        IncidentRecord(**r)
        for r in query_frame(con, sqlfiles.sql("incidents_live"), {"since": now - cooldown}).iter_rows(
            named=True
        )
    ]
    next_alert_id, next_incident_id = con.execute(sqlfiles.sql("incidents_next_ids")).fetchone()  # type: ignore[misc]
    return EngineState(alerts, incidents, int(next_alert_id), int(next_incident_id))


def _save(con: duckdb.DuckDBPyConnection, result: StepResult, recorded_at: datetime) -> None:
    for alert in result.alerts:
        row = asdict(alert)
        row["facts"] = json.dumps([list(pair) for pair in alert.facts])
        row["details"] = json.dumps(alert.details, default=str)
        con.execute(sqlfiles.sql("alert_instance_upsert"), row)
    fault_point("alerts.after_state")
    for incident in result.incidents:
        con.execute(sqlfiles.sql("incident_upsert"), asdict(incident))
    for event in result.events:
        row = asdict(event)
        row["event_at"] = row.pop("at")
        con.execute(sqlfiles.sql("incident_event_insert"), {**row, "recorded_at": recorded_at})


def notification_for(
    intent: Intent, at: datetime, config: AlertingConfig, *, purpose: str = "notify"
) -> Notification:
    alert, incident = intent.alert, intent.incident
    suffix = f"{intent.action}/L{intent.level}" if purpose == "notify" else purpose
    return Notification(
        key=f"{alert.dedup_key}#{alert.alert_id}/{suffix}",
        action=intent.action,  # type: ignore[arg-type]
        dedup_key=alert.dedup_key,
        incident_id=incident.incident_id,
        severity=alert.severity,
        service=alert.service,
        slo=alert.slo,
        slo_display_name=alert.slo_display_name,
        objective=alert.objective,
        kind=alert.kind,
        title=alert.title,
        description=alert.description,
        started_at=_utc(alert.started_at),
        at=_utc(at),
        resolved_at=_utc(alert.resolved_at) if alert.resolved_at else None,
        facts=alert.facts,
        runbook_url=alert.runbook_url,
        source_url=config.dashboard_url,
        escalation_level=intent.level,
    )


def notification_json(notification: Notification) -> str:
    return json.dumps(asdict(notification), default=lambda v: v.isoformat())


def notification_from_json(text: str) -> Notification:
    raw = json.loads(text)
    for f in fields(Notification):
        if (f.name == "at" or f.name.endswith("_at")) and raw.get(f.name):
            raw[f.name] = datetime.fromisoformat(raw[f.name])
    raw["facts"] = tuple(tuple(pair) for pair in raw.get("facts", ()))
    return Notification(**raw)


def _enqueue(
    con: duckdb.DuckDBPyConnection,
    notification: Notification,
    channel: str,
    intent: Intent,
    *,
    purpose: str,
    dry_run: bool,
    created_at: datetime,
) -> None:
    con.execute(
        sqlfiles.sql("outbox_insert"),
        {
            "key": notification.key,
            "channel": channel,
            "incident_id": intent.incident.incident_id,
            "alert_id": intent.alert.alert_id,
            "action": intent.action,
            "level": intent.level,
            "purpose": purpose,
            "dry_run": dry_run,
            "notification": notification_json(notification),
            "created_at": created_at,
        },
    )


def enqueue_intents(
    con: duckdb.DuckDBPyConnection, intents: list[Intent], at: datetime, config: AlertingConfig
) -> int:
    """Route each intent to its channels (and remediation hooks) in the outbox; returns rows queued."""
    queued = 0
    hold_until = _utc(at + ALERTMANAGER_HOLD)
    for intent in intents:
        notification = notification_for(intent, at, config)
        for channel in config.channels_for(intent.alert.service, intent.alert.severity, intent.level):
            kind = config.channels[channel].type
            sent = (
                replace(notification, expires_at=hold_until)
                if kind == "alertmanager" and intent.action == "trigger"
                else notification
            )
            _enqueue(con, sent, channel, intent, purpose="notify", dry_run=False, created_at=at)
            queued += 1
        hook = config.remediation.get(intent.alert.severity)
        if hook is not None and intent.action == "trigger" and intent.level == 1:
            call = notification_for(intent, at, config, purpose="remediate")
            _enqueue(
                con, call, hook.channel, intent, purpose="remediate", dry_run=hook.dry_run, created_at=at
            )
            queued += 1
    return queued


def enqueue_refreshes(
    con: duckdb.DuckDBPyConnection,
    state_alerts: list[AlertRecord],
    incidents: dict[int, IncidentRecord],
    at: datetime,
    config: AlertingConfig,
) -> int:
    """Re-send firing alerts to Alertmanager channels, which expire alerts not refreshed before endsAt."""
    queued = 0
    hold_until = _utc(at + ALERTMANAGER_HOLD)
    for alert in state_alerts:
        if alert.state != "firing" or alert.notified_level == 0 or alert.incident_id not in incidents:
            continue
        for level in range(1, alert.notified_level + 1):
            for channel in config.channels_for(alert.service, alert.severity, level):
                if config.channels[channel].type != "alertmanager":
                    continue
                recent = con.execute(
                    sqlfiles.sql("outbox_recent_for_alert"),
                    {"alert_id": alert.alert_id, "channel": channel, "since": at - REFRESH_EVERY},
                ).fetchone()
                if recent and recent[0]:
                    continue
                intent = Intent(alert, incidents[alert.incident_id], "trigger", level)
                refresh = replace(
                    notification_for(intent, at, config, purpose=f"refresh/{at:%Y%m%dT%H%M}/L{level}"),
                    expires_at=hold_until,
                )
                _enqueue(con, refresh, channel, intent, purpose="refresh", dry_run=False, created_at=at)
                queued += 1
    return queued


class WarehouseDeliveryLog:
    """The notification log in the warehouse, as :class:`pipelines.slo.notify.DeliveryLog`."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.attempts: list[Attempt] = []

    def delivered(self, key: str, channel: str) -> bool:
        row = self.con.execute(
            sqlfiles.sql("notification_delivered"), {"key": key, "channel": channel}
        ).fetchone()
        return bool(row and row[0])

    def delivered_since(self, channel: str, since: datetime) -> int:
        row = self.con.execute(
            sqlfiles.sql("notification_delivered_since"), {"channel": channel, "since": _naive(since)}
        ).fetchone()
        return int(row[0]) if row else 0

    def record(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        row = asdict(attempt)
        row["key"] = row.pop("notification_key")
        row["attempted_at"] = _naive(row.pop("at"))
        self.con.execute(sqlfiles.sql("notification_log_insert"), row)


@dataclass
class DeliverySummary:
    outcomes: dict[str, int]
    attempts: list[Attempt]

    @property
    def delivered(self) -> int:
        return self.outcomes.get("delivered", 0)


def deliver_pending(
    con: duckdb.DuckDBPyConnection,
    config: AlertingConfig,
    *,
    env: Mapping[str, str] | None = None,
    sleep: Any = None,
) -> DeliverySummary:
    """Send every pending outbox row once (retries with backoff inside), recording each attempt."""
    env = os.environ if env is None else env
    log = WarehouseDeliveryLog(con)
    outcomes: dict[str, int] = {}
    pending = con.execute(sqlfiles.sql("outbox_pending")).fetchall()
    for key, channel_name, _purpose, dry_run, payload in pending:
        # One transaction per row: the attempts logged and the outbox status commit together, so a crash
        # between sending and recording leaves the row pending and a re-run sends it again (at least once,
        # same key and payload) instead of logging it as a duplicate of a delivery it never recorded.
        with transaction(con):
            channel = config.channels.get(channel_name)
            now = wall_clock()
            if channel is None:
                outcome = "failed"
                log.record(
                    Attempt(
                        key,
                        channel_name,
                        "unknown",
                        1,
                        _utc(now),
                        "failed",
                        None,
                        f"channel {channel_name!r} is no longer configured",
                        0.0,
                    )
                )
            else:
                kwargs: dict[str, Any] = {"env": env, "log": log, "dry_run": bool(dry_run)}
                if sleep is not None:
                    kwargs["sleep"] = sleep
                if _purpose == "refresh":
                    # Keeping a firing alert alive in Alertmanager is not a new notification: no rate limit.
                    channel = channel.model_copy(update={"rate_limit": None})
                outcome = dispatch(notification_from_json(payload), channel_name, channel, **kwargs)
            if outcome == "delivered":
                fault_point("notify.after_send")
            con.execute(
                sqlfiles.sql("outbox_update"),
                {"status": outcome, "updated_at": wall_clock(), "key": key, "channel": channel_name},
            )
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return DeliverySummary(outcomes, log.attempts)


# ---------------------------------------------------------------------------------------------------------
# Labelled incidents for backtests


class IncidentFileError(ValueError):
    """A known-incidents CSV that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class KnownIncident:
    start: datetime  # naive UTC
    end: datetime
    service: str | None = None  # None: applies to every service
    description: str = ""


def _csv_time(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise IncidentFileError(
            f"{where}: {text!r} is not an ISO-8601 time such as 2026-09-30T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise IncidentFileError(f"{where}: {text!r} has no UTC offset; write e.g. {text.strip()}Z")
    return moment.astimezone(UTC).replace(tzinfo=None)


def read_known_incidents(path: Path) -> list[KnownIncident]:
    """Known incidents from a CSV with ``start`` and ``end`` columns (ISO-8601 with offsets) and optional
    ``service`` and ``description`` columns."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = set(reader.fieldnames or ())
    except OSError as exc:
        raise IncidentFileError(f"{path}: {exc.strerror}") from None
    missing = {"start", "end"} - columns
    if missing:
        raise IncidentFileError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    found = []
    for number, row in enumerate(rows, start=2):
        where = f"{path} line {number}"
        first, last = _csv_time(row.get("start") or "", where), _csv_time(row.get("end") or "", where)
        if last <= first:
            raise IncidentFileError(f"{where}: end must be after start")
        found.append(
            KnownIncident(
                first, last, (row.get("service") or "").strip() or None, row.get("description") or ""
            )
        )
    return found


def labelled_incidents(
    con: duckdb.DuckDBPyConnection, service: str, known: list[KnownIncident]
) -> list[tuple[datetime, datetime]]:
    """A service's labelled incident windows: the known incidents for it (or for every service) and its
    resolved incidents in the incident table (from opening to resolution)."""
    windows = {(k.start, k.end) for k in known if k.service in (None, service)}
    rows = con.execute(sqlfiles.sql("incidents_resolved_of_service"), {"service": service}).fetchall()
    windows |= {(start, end) for start, end in rows if end > start}
    return sorted(windows)


# ---------------------------------------------------------------------------------------------------------
# The steps


@dataclass
class AlertingRun:
    as_of: datetime
    observations: list[Observation]
    result: StepResult
    queued: int
    delivery: DeliverySummary | None


def _escalates(config: AlertingConfig):  # type: ignore[no-untyped-def]
    return lambda service, severity: bool(config.channels_for(service, severity, 2))


def run_alerting(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    statuses: list[ObjectiveStatus],
    as_of: datetime,
    config: AlertingConfig,
    *,
    deliver: bool = True,
    env: Mapping[str, str] | None = None,
    sleep: Any = None,
    now: datetime | None = None,
) -> AlertingRun:
    """Observe as of ``as_of``, advance incidents at ``now`` (default: the wall clock, or ``as_of`` if
    that is later), queue notifications (one transaction), then deliver the outbox."""
    moment = floor_minute(as_of)
    now = max(wall_clock(), moment) if now is None else now
    observations = observe(con, slos, statuses, moment, config, now)
    with transaction(con):
        state = load_state(con, now, config.cooldown)
        result = step(
            state,
            observations,
            now,
            cooldown=config.cooldown,
            escalation_after=config.escalation_after,
            escalates=_escalates(config),
        )
        _save(con, result, wall_clock())
        fault_point("incidents.after_upsert")
        queued = enqueue_intents(con, result.intents, now, config)
        changed = {a.alert_id: a for a in result.alerts}
        firing = [changed.get(a.alert_id, a) for a in state.alerts] + [
            a for a in result.alerts if a.alert_id not in {s.alert_id for s in state.alerts}
        ]
        incidents = {i.incident_id: i for i in state.incidents} | {i.incident_id: i for i in result.incidents}
        # Alerts that fired in this step were just sent with the same hold; refresh only the older ones.
        new_ids = {i.alert.alert_id for i in result.intents if i.action == "trigger"}
        queued += enqueue_refreshes(
            con, [a for a in firing if a.alert_id not in new_ids], incidents, now, config
        )
    fault_point("notify.after_outbox")
    delivery = deliver_pending(con, config, env=env, sleep=sleep) if deliver else None
    return AlertingRun(moment, observations, result, queued, delivery)


def _lifecycle(
    con: duckdb.DuckDBPyConnection,
    config: AlertingConfig,
    incident_id: int,
    actor: str,
    note: str,
    action: str,
    *,
    deliver: bool,
    env: Mapping[str, str] | None,
) -> tuple[IncidentRecord, DeliverySummary | None]:
    if not actor or any(ch in actor for ch in "\r\n"):
        raise ValueError("the actor must be a non-empty single line (who acknowledges or resolves)")
    now = wall_clock()
    with transaction(con):
        # Any incident can be acted on, however long ago it resolved: the lifecycle function refuses what
        # does not apply.
        state = load_state(con, now, timedelta(days=36500))
        if action == "acknowledge":
            result = acknowledge(state, incident_id, now, actor, note)
        else:
            result = resolve(state, incident_id, now, actor, note)
        _save(con, result, now)
        enqueue_intents(con, result.intents, now, config)
    delivery = deliver_pending(con, config, env=env) if deliver else None
    incident = next(i for i in result.incidents if i.incident_id == incident_id)
    return incident, delivery


def acknowledge_incident(
    con: duckdb.DuckDBPyConnection,
    config: AlertingConfig,
    incident_id: int,
    actor: str,
    note: str = "",
    *,
    deliver: bool = True,
    env: Mapping[str, str] | None = None,
) -> tuple[IncidentRecord, DeliverySummary | None]:
    return _lifecycle(con, config, incident_id, actor, note, "acknowledge", deliver=deliver, env=env)


def resolve_incident(
    con: duckdb.DuckDBPyConnection,
    config: AlertingConfig,
    incident_id: int,
    actor: str,
    note: str = "",
    *,
    deliver: bool = True,
    env: Mapping[str, str] | None = None,
) -> tuple[IncidentRecord, DeliverySummary | None]:
    return _lifecycle(con, config, incident_id, actor, note, "resolve", deliver=deliver, env=env)


def list_incidents(
    con: duckdb.DuckDBPyConnection,
    *,
    states: list[str] | None = None,
    service: str | None = None,
    incident_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    params = {"states": states, "service": service, "incident_id": incident_id, "limit": limit}
    frame = query_frame(con, sqlfiles.sql("incidents_list"), params)
    return list(frame.iter_rows(named=True))


def incident_detail(con: duckdb.DuckDBPyConnection, incident_id: int) -> dict[str, Any] | None:
    found = list_incidents(con, incident_id=incident_id, limit=1)
    if not found:
        return None
    incident = found[0]
    alerts = [
        _alert_from_row(r)
        for r in query_frame(con, sqlfiles.sql("incident_alerts"), {"incident_id": incident_id}).iter_rows(
            named=True
        )
    ]
    events = [
        IncidentEvent(incident_id, **r)
        for r in query_frame(con, sqlfiles.sql("incident_events"), {"incident_id": incident_id}).iter_rows(
            named=True
        )
    ]
    notifications = list(
        query_frame(con, sqlfiles.sql("incident_notifications"), {"incident_id": incident_id}).iter_rows(
            named=True
        )
    )
    return {"incident": incident, "alerts": alerts, "events": events, "notifications": notifications}

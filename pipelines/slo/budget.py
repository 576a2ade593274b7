"""Error budgets and burn rates for rolling windows with the Occurrences budgeting method.

For an objective with target ``t`` over the window ``[as_of - W, as_of)``:

* SLI = good / total (traffic-weighted: events are summed, never ratios averaged);
* budget consumed = (bad / total) / (1 - t), remaining = 1 - consumed (below 0 = overspent);
* burn rate over ``w`` = (bad / total over ``[as_of - w, as_of)``) / (1 - t);
* no traffic in a window gives ``None`` (JSON null), never NaN, and status ``no_data``.

Arithmetic is exact (integers and ``Fraction``) until the final conversion to float.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import duckdb
import numpy as np
import polars as pl

from pipelines import sqlfiles
from pipelines.slo.filters import EventFilter
from pipelines.slo.spec import SloDefinition
from pipelines.warehouse import query_frame

BURN_RATE_WINDOWS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "6h": timedelta(hours=6),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
}
STATUSES = ("ok", "at_risk", "breached", "no_data")
_GRAIN_TABLES = {
    "minute": ("sli_counts_minute", "sli_threshold_minute", timedelta(minutes=1)),
    "hour": ("sli_counts_hour", "sli_threshold_hour", timedelta(hours=1)),
    "day": ("sli_counts_day", "sli_threshold_day", timedelta(days=1)),
}


class EvaluationError(RuntimeError):
    """Evaluation cannot proceed (no data at all, thresholds never aggregated); says what to run."""


@dataclass(frozen=True)
class ObjectiveStatus:
    slo: str
    display_name: str
    service: str
    objective: str
    objective_index: int
    target: float
    budgeting_method: str
    window_start: datetime
    window_end: datetime
    good: int
    total: int
    sli: float | None
    budget_consumed: float | None
    budget_remaining: float | None
    burn_rates: dict[str, float | None]
    status: str

    def to_json(self) -> dict[str, Any]:
        """The ``sloscope evaluate --json`` contract."""
        return {
            "slo": self.slo,
            "service": self.service,
            "objective": self.objective,
            "target": self.target,
            "budgeting_method": self.budgeting_method,
            "window": {"start": _iso(self.window_start), "end": _iso(self.window_end)},
            "good": self.good,
            "total": self.total,
            "sli": self.sli,
            "error_budget": {"consumed": self.budget_consumed, "remaining": self.budget_remaining},
            "burn_rates": dict(self.burn_rates),
            "status": self.status,
        }

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["burn_rates"] = json.dumps(self.burn_rates)
        return row


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def burn_rate(good: int, total: int, target: Decimal) -> float | None:
    """(bad / total) / (1 - target); None without traffic."""
    if total == 0:
        return None
    return float(Fraction(total - good, total) / Fraction(1 - target))


def budget_figures(good: int, total: int, target: Decimal) -> tuple[float | None, float | None, float | None]:
    """(SLI, budget consumed, budget remaining) for one window; all None without traffic."""
    if total == 0:
        return None, None, None
    consumed = Fraction(total - good, total) / Fraction(1 - target)
    return float(Fraction(good, total)), float(consumed), float(1 - consumed)


def classify(total: int, remaining: float | None, at_risk_remaining: float) -> str:
    if total == 0 or remaining is None:
        return "no_data"
    if remaining < 0:
        return "breached"
    if remaining < at_risk_remaining:
        return "at_risk"
    return "ok"


def counts_by_bucket(
    con: duckdb.DuckDBPyConnection,
    event_filter: EventFilter,
    start: datetime,
    end: datetime,
    grain: str = "minute",
) -> pl.DataFrame:
    """``bucket_start, n``: events matching the filter per bucket of the grain, in [start, end)."""
    counts_table, threshold_table, _ = _GRAIN_TABLES[grain]
    _require_thresholds(con, event_filter)
    query = sqlfiles.sql("objective_counts", counts=counts_table, thresholds=threshold_table)
    params = {"start": start, "end": end, **event_filter.sql_params()}
    return query_frame(con, query, sqlfiles.params_for(query, params))


def _require_thresholds(con: duckdb.DuckDBPyConnection, event_filter: EventFilter) -> None:
    needed = event_filter.thresholds
    if not needed or event_filter.matches_nothing:
        return
    have = {
        (s, float(t))
        for s, t in con.execute(
            sqlfiles.sql("thresholds_for_services"),
            {"services": sorted(event_filter.services)},
        ).fetchall()
    }
    missing = sorted((s, t) for s in event_filter.services for t in needed if (s, t) not in have)
    if missing:
        pairs = ", ".join(f"{s} {t:g} ms" for s, t in missing)
        raise EvaluationError(
            f"no exact latency counts for {pairs}; refresh the aggregates with these SLOs "
            "(sloscope evaluate does this; in Dagster, materialise sli_aggregates)"
        )


def good_and_total(
    con: duckdb.DuckDBPyConnection, slo: SloDefinition, start: datetime, end: datetime, grain: str = "minute"
) -> pl.DataFrame:
    """``bucket_start, good, total`` for every bucket with data in [start, end)."""
    total = counts_by_bucket(con, slo.total, start, end, grain).rename({"n": "total"})
    if slo.good is not None:
        good = counts_by_bucket(con, slo.total.intersect(slo.good), start, end, grain).rename({"n": "good"})
        joined = total.join(good, on="bucket_start", how="left").with_columns(pl.col("good").fill_null(0))
    else:
        bad = counts_by_bucket(con, slo.total.intersect(slo.bad), start, end, grain).rename({"n": "bad"})  # type: ignore[arg-type]
        joined = (
            total.join(bad, on="bucket_start", how="left")
            .with_columns((pl.col("total") - pl.col("bad").fill_null(0)).alias("good"))
            .drop("bad")
        )
    return joined.select("bucket_start", "good", "total").sort("bucket_start")


def default_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    """The end of the newest minute with data."""
    newest = con.execute(sqlfiles.sql("newest_minute")).fetchone()[0]
    if newest is None:
        raise EvaluationError(
            "the warehouse has no aggregated data yet; ingest files first (sloscope ingest)"
        )
    return newest + timedelta(minutes=1)


def evaluate_slo(
    con: duckdb.DuckDBPyConnection, slo: SloDefinition, as_of: datetime, *, at_risk_remaining: float = 0.25
) -> list[ObjectiveStatus]:
    """Every objective of one SLO as of ``as_of`` (exclusive end of the window)."""
    as_of = floor_minute(as_of)  # minute buckets: a window must start and end on a minute
    lookback = max([slo.window, *BURN_RATE_WINDOWS.values()])
    series = good_and_total(con, slo, as_of - lookback, as_of)
    age = (pl.lit(as_of) - pl.col("bucket_start")).dt.total_minutes()
    ages = series.select(age.alias("age"))["age"].to_numpy()
    good = series["good"].to_numpy().astype(np.int64)
    total = series["total"].to_numpy().astype(np.int64)

    def window_sums(span: timedelta) -> tuple[int, int]:
        inside = ages <= span.total_seconds() / 60
        return int(good[inside].sum()), int(total[inside].sum())

    window_good, window_total = window_sums(slo.window)
    spans = {label: window_sums(span) for label, span in BURN_RATE_WINDOWS.items()}
    results = []
    for objective in slo.objectives:
        sli, consumed, remaining = budget_figures(window_good, window_total, objective.target)
        rates = {label: burn_rate(g, t, objective.target) for label, (g, t) in spans.items()}
        rates["window"] = burn_rate(window_good, window_total, objective.target)
        results.append(
            ObjectiveStatus(
                slo=slo.name,
                display_name=slo.display_name,
                service=slo.service,
                objective=objective.name,
                objective_index=objective.index,
                target=float(objective.target),
                budgeting_method=slo.budgeting_method,
                window_start=as_of - slo.window,
                window_end=as_of,
                good=window_good,
                total=window_total,
                sli=sli,
                budget_consumed=consumed,
                budget_remaining=remaining,
                burn_rates=rates,
                status=classify(window_total, remaining, at_risk_remaining),
            )
        )
    return results


def floor_minute(moment: datetime) -> datetime:
    """Evaluation resolution is one minute: an as-of time is taken at the start of its minute."""
    return moment.replace(second=0, microsecond=0)


def evaluate(
    con: duckdb.DuckDBPyConnection,
    slos: list[SloDefinition],
    as_of: datetime | None = None,
    *,
    at_risk_remaining: float = 0.25,
) -> list[ObjectiveStatus]:
    moment = floor_minute(as_of) if as_of else default_as_of(con)
    results: list[ObjectiveStatus] = []
    for slo in sorted(slos, key=lambda s: s.name):
        results.extend(evaluate_slo(con, slo, moment, at_risk_remaining=at_risk_remaining))
    return results

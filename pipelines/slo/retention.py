"""Retention: how long each tier of the warehouse keeps its rows, and a safe way to apply it.

Tiers, finest first: raw rows (``raw_events``, ``raw_counts``, ``raw_ratios``), 1-minute aggregates,
hourly aggregates, and the coarsest grain of each family (daily aggregates, and ``sli_ratio_hour`` since
ratios have no daily table). Quarantined records have their own horizon.

A tier's cutoff is ``now - keep`` floored to a whole UTC day; rows strictly before it are deleted, so
re-applying the same policy deletes nothing. Data that has not been summarised into the next tier is
never deleted: every cutoff is lowered to the start of the UTC day holding the earliest pending
``dirty_ranges`` minute (aggregation will recompute those minutes from raw rows, their hours from minutes
and their days from hours), and below the oldest row that has no row in the next tier at all (a second
line of defence should ``dirty_ranges`` ever be cleared without aggregating).

Each tier cut leaves a row in ``retention_watermarks`` (tier, cutoff used, when), written in the same
transaction as the deletes and never moved backwards: it tells ingestion which raw rows are gone, and the
rollup check (``sql/check_rollups.sql``) from where each tier is still whole.

Never touched: ``ingested_files`` (re-landed files must stay recognised as loaded), ``counter_state``,
``dirty_ranges``, ``sli_thresholds``, and every derived table (``slo_status``, ``slo_hourly``,
``slo_history``, alerts, incidents, notifications, analytics, report deliveries).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from pipelines import sqlfiles
from pipelines.faults import fault_point
from pipelines.slo.budget import evaluation_span, floor_minute
from pipelines.slo.spec import SloDefinition
from pipelines.slo.windows import RollingWindow
from pipelines.warehouse import transaction

# Tier -> the SQL file deleting it; the tables are named in those files, never substituted.
TIER_FILES: dict[str, str] = {
    "raw": "retention_raw",
    "quarantine": "retention_quarantine",
    "minute": "retention_minute",
    "hour": "retention_hour",
    "day": "retention_day",
}
# Tiers that must be kept at least as long as the one before: a finer tier outliving a coarser one means
# the coarser rows are gone while nothing will ever rebuild them (rollups only recompute dirty ranges).
_ORDER = ("raw", "minute", "hour", "day")
_FOREVER = frozenset({"forever", "none", "never"})
_DURATION = re.compile(r"\s*([0-9]+)\s*d\s*")
_DELETE = re.compile(r"DELETE\s+FROM\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


class RetentionError(ValueError):
    """A retention policy is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: invalid retention policy:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each tier is kept; ``None`` keeps it forever."""

    raw: timedelta | None = timedelta(days=14)
    minute: timedelta | None = timedelta(days=90)
    hour: timedelta | None = timedelta(days=400)
    day: timedelta | None = None
    # Quarantined records are what an operator investigates after a bad export, often weeks later.
    quarantine: timedelta | None = timedelta(days=90)


@dataclass(frozen=True)
class RetentionReport:
    """What one application of a policy did, for the asset's metadata and the logs."""

    now: datetime
    requested: dict[str, datetime | None]  # tier -> now - keep, floored to the day
    cutoffs: dict[str, datetime | None]  # tier -> cutoff actually used (lowered to protect pending data)
    deleted: dict[str, int]  # table -> rows deleted
    protections: list[str] = field(default_factory=list)  # why a cutoff was lowered, in words
    # tier -> the watermark after this run: the newest cutoff ever applied (never moves backwards).
    watermarks: dict[str, datetime] = field(default_factory=dict)

    @property
    def total_deleted(self) -> int:
        return sum(self.deleted.values())

    def as_metadata(self) -> dict[str, Any]:
        """Plain figures an operator reads: rows deleted per table, cutoffs used, protections applied."""
        return {
            "rows_deleted": self.total_deleted,
            **{f"deleted_{table}": n for table, n in self.deleted.items()},
            **{
                f"cutoff_{tier}": cutoff.isoformat() if cutoff else "forever"
                for tier, cutoff in self.cutoffs.items()
            },
            "protections": "; ".join(self.protections) or "none",
        }

    def deleted_by_tier(self) -> dict[str, int]:
        """Rows deleted per tier (the tables of each tier are named in its SQL file)."""
        return {tier: sum(self.deleted[t] for t in tables) for tier, tables in tier_tables().items()}


def _parse_keep(value: object, key: str) -> tuple[timedelta | None, str | None]:
    if isinstance(value, str) and value.strip().lower() in _FOREVER:
        return None, None
    if value is None:
        return None, None
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None, f"{key}: expected a number of days such as '14d', or 'forever'; got {value!r}"
    days = int(match.group(1))
    if days < 1:
        return None, f"{key}: must keep at least 1 day ('1d'), or 'forever'; got {value!r}"
    return timedelta(days=days), None


def _longer(a: timedelta | None, b: timedelta | None) -> bool:
    """Whether ``a`` keeps rows longer than ``b`` (``None`` is forever)."""
    if a is None:
        return b is not None
    return b is not None and a > b


def _label(keep: timedelta | None) -> str:
    return "forever" if keep is None else f"{keep.days}d"


def order_problems(policy: RetentionPolicy) -> list[str]:
    """Tiers kept shorter than a finer tier: the coarser rows would go first and never be rebuilt."""
    problems = []
    for finer, coarser in itertools.pairwise(_ORDER):
        a, b = getattr(policy, finer), getattr(policy, coarser)
        if _longer(a, b):
            problems.append(
                f"{coarser} ({_label(b)}) is kept shorter than {finer} ({_label(a)}): {coarser} rows "
                f"would be deleted while their {finer} rows remain, and rollups never rebuild them, so "
                f"that history would be lost; keep {coarser} at least {_label(a)}"
            )
    return problems


def parse_retention(raw: Mapping[str, Any], source: str) -> RetentionPolicy:
    """A policy from settings such as ``{"raw": "14d", "minute": "90d", "day": "forever"}``.

    Missing keys take the defaults of :class:`RetentionPolicy`. Raises :class:`RetentionError` listing
    every problem: unknown keys, values that are not ``<N>d`` or ``forever``, and tiers out of order.
    """
    if not isinstance(raw, Mapping):
        raise RetentionError(source, [f"expected a table of tier = duration, got {type(raw).__name__}"])
    names = [f.name for f in fields(RetentionPolicy)]
    problems = [f"unknown key {key!r}; expected one of {', '.join(names)}" for key in raw if key not in names]
    values: dict[str, timedelta | None] = {}
    for name in names:
        if name in raw:
            keep, problem = _parse_keep(raw[name], name)
            if problem:
                problems.append(problem)
            else:
                values[name] = keep
    policy = RetentionPolicy(**values)  # type: ignore[arg-type]
    problems.extend(order_problems(policy))
    if problems:
        raise RetentionError(source, problems)
    return policy


def window_problems(policy: RetentionPolicy, windows: Mapping[str, timedelta]) -> list[str]:
    """SLOs whose window (plus burn-rate windows) reaches further back than minute aggregates are kept.

    Evaluation reads 1-minute aggregates, so an objective whose window is longer than the minute tier's
    retention would silently count less than its window. ``windows`` maps an SLO name to the longest span
    it reads; the lead wires this against the loaded SLOs.
    """
    if policy.minute is None:
        return []
    return [
        f"SLO {name} reads {_label(span) if span.days else span} of 1-minute data but minute aggregates are "
        f"kept {_label(policy.minute)}"
        for name, span in sorted(windows.items())
        if span > policy.minute
    ]


def longest_span(slo: SloDefinition, now: datetime, periods: int = 13) -> timedelta:
    """The most 1-minute data one evaluation of ``slo`` reads: its window plus the longest burn-rate window.

    A rolling window always reads the same span. A calendar window reads most at the instant a period
    ends, and periods differ in length (a 92-day quarter, a leap year), so the current period and the
    ``periods - 1`` after it are measured and the longest is returned.
    """
    as_of = floor_minute(_utc_naive(now))
    if isinstance(slo.window, RollingWindow):
        start, end = evaluation_span(slo, as_of)
        return end - start
    longest = timedelta(0)
    for _ in range(periods):
        _, as_of = slo.window.period(as_of)
        start, end = evaluation_span(slo, as_of)  # at the instant a period ends it reads all of it
        longest = max(longest, end - start)
    return longest


def slo_spans(slos: list[SloDefinition], now: datetime) -> dict[str, timedelta]:
    """SLO name -> :func:`longest_span`, the ``windows`` argument of :func:`window_problems`."""
    return {slo.name: longest_span(slo, now) for slo in slos}


def _utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def requested_cutoffs(policy: RetentionPolicy, now: datetime) -> dict[str, datetime | None]:
    """Each tier's cutoff before any protection: ``now - keep`` floored to a whole UTC day."""
    moment = _utc_naive(now)
    return {
        tier: None if getattr(policy, tier) is None else _floor_day(moment - getattr(policy, tier))
        for tier in TIER_FILES
    }


def _scalar(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> Any:
    statement = sqlfiles.sql(name)
    return con.execute(statement, sqlfiles.params_for(statement, params)).fetchone()[0]  # type: ignore[index]


def _lower(
    cutoffs: dict[str, datetime | None], tier: str, limit: datetime | None, why: str, notes: list[str]
) -> None:
    current = cutoffs[tier]
    if current is None or limit is None:
        return
    floor = _floor_day(limit)
    if floor < current:
        cutoffs[tier] = floor
        notes.append(f"{tier} cutoff lowered from {current:%Y-%m-%d} to {floor:%Y-%m-%d}: {why}")


def _protected_cutoffs(
    con: duckdb.DuckDBPyConnection, requested: dict[str, datetime | None]
) -> tuple[dict[str, datetime | None], list[str]]:
    cutoffs = dict(requested)
    notes: list[str] = []
    pending = _scalar(con, "retention_pending", {})
    if pending is not None:
        # Aggregation recomputes the pending minutes from raw rows, their hours from minutes and their
        # days from hours: every tier must still hold that day's rows.
        for tier in _ORDER:
            _lower(cutoffs, tier, pending, f"a pending dirty range starts at {pending:%Y-%m-%d %H:%M}", notes)
    # Computed before any delete, so a tier's deletions cannot make the finer tier look unrolled.
    checks = (
        ("raw", "retention_unaggregated_raw", "raw rows from {} have no minute aggregate"),
        ("minute", "retention_unrolled_minute", "minute aggregates from {} are not rolled up into hours"),
        ("hour", "retention_unrolled_hour", "hourly aggregates from {} are not rolled up into days"),
    )
    for tier, name, why in checks:
        cutoff = cutoffs[tier]
        if cutoff is not None:
            oldest = _scalar(con, name, {"cutoff": cutoff})
            if oldest is not None:
                _lower(cutoffs, tier, oldest, why.format(f"{oldest:%Y-%m-%d %H:%M}"), notes)
    return cutoffs, notes


def _deletes(name: str) -> list[tuple[str, str]]:
    """(table, statement) of each DELETE in ``sql/<name>.sql``; anything else there is a mistake."""
    found = []
    for statement in sqlfiles.statements(name):
        table = _DELETE.search(statement)
        if table is None:
            raise ValueError(f"sql/{name}.sql: expected only DELETE statements, got {statement[:60]!r}")
        found.append((table.group(1), statement))
    return found


def tier_tables() -> dict[str, list[str]]:
    """Tier -> the tables its SQL file deletes from, in order."""
    return {tier: [table for table, _ in _deletes(name)] for tier, name in TIER_FILES.items()}


def read_watermarks(con: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    """Tier -> the newest cutoff retention ever applied to it (tiers never cut are absent)."""
    return dict(con.execute(sqlfiles.sql("retention_watermarks")).fetchall())


def apply_retention(
    con: duckdb.DuckDBPyConnection, policy: RetentionPolicy, *, now: datetime
) -> RetentionReport:
    """Delete rows older than each tier's cutoff, in one transaction, never data not yet rolled up.

    ``now`` is explicit so a schedule's tick (not the wall clock at run time) decides the cutoffs, and a
    re-run of the same tick deletes nothing more. Every tier with a cutoff gets its watermark raised to
    that cutoff (``applied_at = now``) in the same transaction; a lower cutoff (a protection, a longer
    policy) leaves the watermark where it was, since the rows before it are gone all the same.
    """
    problems = order_problems(policy)
    if problems:
        raise RetentionError("retention policy", problems)
    moment = _utc_naive(now)
    requested = requested_cutoffs(policy, moment)
    deleted: dict[str, int] = {}
    with transaction(con):
        cutoffs, notes = _protected_cutoffs(con, requested)
        for tier, name in TIER_FILES.items():
            cutoff = cutoffs[tier]
            for table, statement in _deletes(name):
                if cutoff is None:
                    deleted[table] = 0
                    continue
                row = con.execute(statement, sqlfiles.params_for(statement, {"cutoff": cutoff})).fetchone()
                deleted[table] = int(row[0]) if row else 0
            if cutoff is not None:
                sqlfiles.run(
                    con, "retention_watermark_raise", {"tier": tier, "cutoff": cutoff, "applied_at": moment}
                )
            fault_point("retention.after_tier")
        watermarks = read_watermarks(con)
    return RetentionReport(moment, requested, cutoffs, deleted, notes, watermarks)

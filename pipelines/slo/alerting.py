"""Multiwindow, multi-burn-rate alerts on SLOs (Google SRE Workbook, "Alerting on SLOs"), replayed and
backtested against labelled incidents.

A rule spends ``budget_share`` of the period's error budget over its long window before it fires, so its
burn-rate threshold is ``factor = budget_share x period / long_window`` (2% of a 30-day budget in 1 hour
is a burn rate of 14.4). It fires only while *both* the long and the short window burn at or above the
factor: the long window keeps a brief blip from paging, the short one makes the alert reset soon after
the errors stop.

Replay works on per-minute ``good`` and ``total`` counts (integer numpy arrays, index 0 being the minute
that starts at ``start``). Rules are evaluated at every minute boundary ``t = start + i minutes``
(``i = 1 .. n``) over the minutes ``[t - w, t)``; a window that reaches before the data uses the
minutes available, and a window without traffic does not fire.

Comparisons are exact (integers, ``Fraction``, ``Decimal`` targets): a burn rate exactly at the factor
fires. Nothing here returns NaN: no alerts or no incidents give ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np

from pipelines.slo.timeslices import checked_counts, exact_fraction

_MINUTE = timedelta(minutes=1)
_MICROSECOND = timedelta(microseconds=1)
_WEEK = timedelta(weeks=1)
_INT64_LIMIT = 2**63 - 1
SEVERITY_ORDER = ("page", "ticket")


def _ratio(numerator: timedelta, denominator: timedelta) -> Fraction:
    # timedelta / timedelta is a float; counting microseconds keeps it exact.
    return Fraction(numerator // _MICROSECOND, denominator // _MICROSECOND)


def _whole_minutes(span: timedelta, name: str) -> int:
    if span <= timedelta(0) or span % _MINUTE:
        raise ValueError(f"{name} must be a positive whole number of minutes, got {span}")
    return span // _MINUTE


@dataclass(frozen=True)
class BurnRateRule:
    """Fire when both windows burn at least ``factor(period)`` times the sustainable rate."""

    severity: str
    long_window: timedelta
    short_window: timedelta
    budget_share: Fraction

    def __post_init__(self) -> None:
        if not isinstance(self.severity, str) or not self.severity:
            raise ValueError(f"severity must be a non-empty string, got {self.severity!r}")
        for name in ("long_window", "short_window"):
            span = getattr(self, name)
            if not isinstance(span, timedelta) or span <= timedelta(0):
                raise ValueError(f"{name} must be a positive timedelta, got {span!r}")
        if self.short_window > self.long_window:
            raise ValueError(
                f"short_window ({self.short_window}) must not be longer than long_window ({self.long_window})"
            )
        share = exact_fraction(self.budget_share, "budget_share")
        if not 0 < share <= 1:
            raise ValueError(f"budget_share must lie in (0, 1], got {self.budget_share}")
        # Normalised so that equal rules compare and hash equal whatever exact type they were given.
        object.__setattr__(self, "budget_share", share)

    def factor(self, period: timedelta) -> Fraction:
        """Burn-rate threshold: budget_share x period / long_window, exactly."""
        if not isinstance(period, timedelta) or period <= timedelta(0):
            raise ValueError(f"period must be a positive timedelta, got {period!r}")
        return self.budget_share * _ratio(period, self.long_window)


def workbook_rules(four_pairs: bool = False) -> list[BurnRateRule]:
    """The SRE Workbook's recommended windows (30-day factors 14.4, 6, 1; with four pairs 14.4, 6, 3, 1)."""
    page_fast = BurnRateRule("page", timedelta(hours=1), timedelta(minutes=5), Fraction(2, 100))
    page_slow = BurnRateRule("page", timedelta(hours=6), timedelta(minutes=30), Fraction(5, 100))
    ticket_3d = BurnRateRule("ticket", timedelta(days=3), timedelta(hours=6), Fraction(10, 100))
    if not four_pairs:
        return [page_fast, page_slow, ticket_3d]
    ticket_1d = BurnRateRule("ticket", timedelta(days=1), timedelta(hours=2), Fraction(10, 100))
    return [page_fast, page_slow, ticket_1d, ticket_3d]


_OPS = {"gt", "gte", "lt", "lte"}


@dataclass(frozen=True)
class ConditionRule:
    """An OpenSLO ``AlertCondition`` of kind ``burnrate``: the burn rate over ``lookback`` compared with
    ``threshold`` by ``op``, and it must hold at every minute boundary for ``alert_after`` before it fires
    (so ``alertAfter: 5m`` fires at the sixth consecutive boundary at which the comparison held).

    Unlike a :class:`BurnRateRule` the threshold is given, not derived from the period, and there is one
    window. A window without traffic has no burn rate: the comparison does not hold, whatever ``op`` says
    (no data is ``alertWhenNoData``'s business).
    """

    name: str
    severity: str
    op: str
    threshold: Fraction
    lookback: timedelta
    alert_after: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not isinstance(self.severity, str) or not self.severity:
            raise ValueError(f"severity must be a non-empty string, got {self.severity!r}")
        if self.op not in _OPS:
            raise ValueError(f"op must be one of {', '.join(sorted(_OPS))}, got {self.op!r}")
        threshold = exact_fraction(self.threshold, "threshold")
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {self.threshold}")
        object.__setattr__(self, "threshold", threshold)
        _whole_minutes(self.lookback, "lookback")
        if self.alert_after < timedelta(0) or self.alert_after % _MINUTE:
            raise ValueError(f"alert_after must be a whole number of minutes >= 0, got {self.alert_after}")


AlertRule = BurnRateRule | ConditionRule


def rule_threshold(rule: AlertRule, period: timedelta) -> Fraction:
    """The burn rate a rule compares against: the derived factor, or the condition's own threshold."""
    return rule.factor(period) if isinstance(rule, BurnRateRule) else rule.threshold


def rule_windows(rule: AlertRule) -> tuple[timedelta, ...]:
    """The windows whose burn rates the rule reads, longest first."""
    if isinstance(rule, BurnRateRule):
        return (rule.long_window, rule.short_window)
    return (rule.lookback,)


def sustained(condition: np.ndarray, minutes: int) -> np.ndarray:
    """True at boundary i when ``condition`` held at boundaries i - minutes .. i (all of them); boundaries
    before the data count as not holding."""
    held = np.asarray(condition, dtype=bool)
    if minutes == 0:
        return held
    counts = np.cumsum(held, dtype=np.int64)
    last_break = np.maximum.accumulate(np.where(held, 0, counts))
    return (counts - last_break) >= minutes + 1


def with_hysteresis(fires: np.ndarray, resolve_after_minutes: int) -> np.ndarray:
    """Keep an alert active ``resolve_after_minutes`` longer after it stops firing: it resolves at the
    last firing boundary + 1 + resolve_after, so a condition that flaps within that time stays one alert."""
    fires = np.asarray(fires, dtype=bool)
    if resolve_after_minutes <= 0:
        return fires
    cum = np.concatenate(([0], np.cumsum(fires, dtype=np.int64)))
    ends = np.arange(1, len(fires) + 1)
    starts = np.maximum(ends - resolve_after_minutes - 1, 0)
    return (cum[ends] - cum[starts]) > 0


@dataclass(frozen=True)
class AlertEpisode:
    """One continuous stretch of one severity firing.

    ``start`` is the first minute boundary at which it fired, ``end`` the first at which it no longer did
    (``None`` when it was still firing at the end of the data): the episode is ``[start, end)``.
    """

    severity: str
    start: datetime
    end: datetime | None


def _cumulative(values: np.ndarray, exact_ints: bool) -> np.ndarray:
    """Prefix sums with a leading 0, so a window's sum is ``cum[end] - cum[start]``."""
    out = np.zeros(len(values) + 1, dtype=object if exact_ints else np.int64)
    np.cumsum(values.astype(out.dtype, copy=False), out=out[1:])
    return out


def firing(
    good: np.ndarray,
    total: np.ndarray,
    target: Decimal,
    period: timedelta,
    rules: list[AlertRule],
) -> list[np.ndarray]:
    """Per rule, a boolean array whose element ``i - 1`` says whether it fires at boundary ``start + i``
    minutes, for ``i = 1 .. n``. Burn-rate rules fire at or above their factor over both windows; OpenSLO
    conditions compare their one window by their ``op`` and must hold for ``alert_after``."""
    good, total = checked_counts(good, total)
    allowance = 1 - exact_fraction(target, "target")
    if not 0 < allowance <= 1:
        raise ValueError(f"target must lie in [0, 1), got {target}")
    n = len(total)
    bad = total - good
    # int64 unless a window sum times a threshold's numerator or denominator could overflow; then Python
    # ints (object arrays), slower but still one vectorised pass.
    thresholds = [rule_threshold(rule, period) * allowance for rule in rules]
    largest = max((max(t.numerator, t.denominator) for t in thresholds), default=1)
    grand_total = int(total.astype(object).sum())  # Python ints: the check itself must not overflow
    exact_ints = grand_total * largest > _INT64_LIMIT
    cum_bad, cum_total = _cumulative(bad, exact_ints), _cumulative(total, exact_ints)
    ends = np.arange(1, n + 1)

    def meets(minutes: int, threshold: Fraction, op: str = "gte") -> np.ndarray:
        starts = np.maximum(ends - minutes, 0)
        window_bad = cum_bad[ends] - cum_bad[starts]
        window_total = cum_total[ends] - cum_total[starts]
        # burn = (bad / total) / allowance  vs  factor  <=>  bad * den  vs  num * total  (total > 0)
        left = window_bad * threshold.denominator
        right = window_total * threshold.numerator
        compared = {"gte": left >= right, "gt": left > right, "lte": left <= right, "lt": left < right}[op]
        return (window_total > 0).astype(bool) & compared.astype(bool)

    out = []
    for rule, threshold in zip(rules, thresholds, strict=True):
        if isinstance(rule, ConditionRule):
            held = meets(_whole_minutes(rule.lookback, "lookback"), threshold, rule.op)
            out.append(sustained(held, rule.alert_after // _MINUTE))
            continue
        long_minutes = _whole_minutes(rule.long_window, "long_window")
        short_minutes = _whole_minutes(rule.short_window, "short_window")
        out.append(meets(long_minutes, threshold) & meets(short_minutes, threshold))
    return out


def _episodes(severity: str, fires: np.ndarray, start: datetime) -> list[AlertEpisode]:
    # Rising and falling edges of the firing array padded with "not firing" on both sides; element j is
    # boundary j + 1, so a rise at j starts an episode at start + (j + 1) minutes.
    edges = np.diff(np.concatenate(([0], fires.astype(np.int8), [0])))
    rises = np.flatnonzero(edges == 1)
    falls = np.flatnonzero(edges == -1)
    n = len(fires)
    return [
        AlertEpisode(
            severity,
            start + (int(rise) + 1) * _MINUTE,
            None if fall == n else start + (int(fall) + 1) * _MINUTE,
        )
        for rise, fall in zip(rises, falls, strict=True)
    ]


def _severity_key(severity: str) -> tuple[int, str]:
    return (SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER), severity)


def severity_activity(
    good: np.ndarray,
    total: np.ndarray,
    target: Decimal,
    period: timedelta,
    rules: list[AlertRule],
    *,
    resolve_after: timedelta = timedelta(0),
) -> dict[str, np.ndarray]:
    """Per severity, whether any of its rules keeps it active at each boundary (hysteresis applied)."""
    if resolve_after < timedelta(0) or resolve_after % _MINUTE:
        raise ValueError(f"resolve_after must be a whole number of minutes >= 0, got {resolve_after}")
    per_rule = firing(good, total, target, period, rules)
    n = len(np.asarray(total))
    combined: dict[str, np.ndarray] = {}
    for rule, fires in zip(rules, per_rule, strict=True):
        combined[rule.severity] = combined.get(rule.severity, np.zeros(n, dtype=bool)) | fires
    return {
        severity: with_hysteresis(fires, resolve_after // _MINUTE) for severity, fires in combined.items()
    }


def trailing_start(active: np.ndarray, start: datetime) -> datetime | None:
    """When the run of activity that reaches the last boundary began; None when inactive at the end."""
    active = np.asarray(active, dtype=bool)
    if not len(active) or not active[-1]:
        return None
    quiet = np.flatnonzero(~active)
    first = int(quiet[-1]) + 1 if len(quiet) else 0
    return start + (first + 1) * _MINUTE


def replay(
    good: np.ndarray,
    total: np.ndarray,
    start: datetime,
    target: Decimal,
    period: timedelta,
    rules: list[AlertRule],
    *,
    resolve_after: timedelta = timedelta(0),
) -> list[AlertEpisode]:
    """Alert episodes the rules would have raised over the data, ordered by start then severity.

    Rules of one severity are combined: the severity fires at a boundary when any of its rules does, so
    episodes of different rules merge when they overlap *or touch* (one rule taking over at the boundary
    where another stops is one uninterrupted alert to whoever is paged). ``resolve_after`` keeps an alert
    active that long after it last fired (see :func:`with_hysteresis`), as the incident engine does.
    """
    combined = severity_activity(good, total, target, period, rules, resolve_after=resolve_after)
    episodes = [e for severity, fires in combined.items() for e in _episodes(severity, fires, start)]
    return sorted(episodes, key=lambda e: (e.start, _severity_key(e.severity)))


@dataclass(frozen=True)
class BacktestResult:
    """How one severity's alerts matched labelled incidents (SRE Workbook definitions).

    ``detection_minutes`` and ``reset_minutes`` hold one entry per detected incident, in the order of the
    incidents given; a reset is ``None`` when the alert was still firing at the end of the data.
    ``pages_per_week`` is this severity's alerts per week of data (tickets too, despite the name).
    """

    severity: str
    alerts: int
    true_alerts: int
    precision: float | None
    recall: float | None
    detection_minutes: list[float]
    reset_minutes: list[float | None]
    pages_per_week: float


def _overlaps(episode: AlertEpisode, incident: tuple[datetime, datetime]) -> bool:
    # The incident is closed at its end: an alert evaluated at boundary t judges the minutes before t, so
    # one that first fires exactly at the end of a short incident (a one-minute outage) did detect it.
    incident_start, incident_end = incident
    still_firing_at_start = episode.end is None or episode.end > incident_start
    return episode.start <= incident_end and still_firing_at_start


def _minutes(span: timedelta) -> float:
    return float(_ratio(span, _MINUTE))


def backtest(
    episodes: list[AlertEpisode],
    incidents: list[tuple[datetime, datetime]],
    data_start: datetime,
    data_end: datetime,
) -> list[BacktestResult]:
    """Precision, recall, detection and reset times, and alert rate per severity.

    One matching rule serves precision and recall alike: an episode and an incident ``[start, end]``
    correspond when they overlap. Hence:

    * ``true_alerts`` counts episodes overlapping at least one incident, precision = true / all alerts;
    * an incident is detected when an episode overlaps it, recall = detected / incidents;
    * detection time = first overlapping episode's start - incident start, floored at 0: an alert already
      firing when the incident began had detected it at once (a negative figure would only say the
      incident was labelled late, and would flatter the mean);
    * reset time = end of the last overlapping episode - incident end; negative when the alert cleared
      before the incident ended, ``None`` when it was still firing at the end of the data.

    Results come for "page" always, then every other severity present ("ticket" first, then by name).
    """
    if data_end <= data_start:
        raise ValueError(f"data_end ({data_end}) must be after data_start ({data_start})")
    for incident_start, incident_end in incidents:
        if incident_end <= incident_start:
            raise ValueError(f"incident end ({incident_end}) must be after its start ({incident_start})")
    weeks = _ratio(data_end - data_start, _WEEK)
    severities = sorted({"page", *(e.severity for e in episodes)}, key=_severity_key)
    results = []
    for severity in severities:
        mine = sorted((e for e in episodes if e.severity == severity), key=lambda e: e.start)
        true_alerts = sum(1 for e in mine if any(_overlaps(e, incident) for incident in incidents))
        detection: list[float] = []
        reset: list[float | None] = []
        for incident in incidents:
            matched = [e for e in mine if _overlaps(e, incident)]
            if not matched:
                continue
            detection.append(max(0.0, _minutes(matched[0].start - incident[0])))
            last_end = matched[-1].end
            reset.append(None if last_end is None else _minutes(last_end - incident[1]))
        results.append(
            BacktestResult(
                severity=severity,
                alerts=len(mine),
                true_alerts=true_alerts,
                precision=float(Fraction(true_alerts, len(mine))) if mine else None,
                recall=float(Fraction(len(detection), len(incidents))) if incidents else None,
                detection_minutes=detection,
                reset_minutes=reset,
                pages_per_week=float(len(mine) / weeks),
            )
        )
    return results

"""OpenSLO v1: parsing, validation, references across files, and the domain objects evaluation uses.

Every problem is reported as ``<file>: <path>: <what was expected>``, and all problems of a folder are
collected before raising, so a user fixes them in one pass.

Kinds: SLO, SLI, Service, DataSource, AlertPolicy, AlertCondition, AlertNotificationTarget, in files of
one or more YAML documents (or YAML lists of documents). ``indicatorRef``, ``metricSourceRef``,
``alertPolicyRef``, ``conditionRef`` and ``targetRef`` are resolved across every file of a folder.
:func:`export_yaml` writes the canonical form back out; loading it again gives the same objects.

Evaluated: rolling and calendar windows, the Occurrences, Timeslices and RatioTimeslices budgeting
methods, and ratio indicators (``good`` or ``bad`` over ``total``) whose metric source is
``type: sloscope`` with a declarative filter, and composite SLOs (an indicator per objective, weighted
by ``compositeWeight``), and threshold metrics on latency: per event (``op``/``value``) or as a
percentile judged per time slice, and raw ratio metrics (``raw`` with ``rawType``) over precomputed
ratios.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from pipelines.slo.filters import EventFilter, FilterError, compile_filter
from pipelines.slo.windows import (
    CalendarWindow,
    RollingWindow,
    Window,
    WindowError,
    parse_duration,
    window_from_openslo,
)

SUPPORTED_SOURCE_TYPES = ("sloscope",)
KINDS = ("SLO", "SLI", "Service", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget")
MINIMUM_EVENTS_ANNOTATION = "sloscope.io/minimum-events"


class SpecError(ValueError):
    """One or more SLO files are invalid; ``problems`` lists each as file: path: message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_rolling_duration(text: str) -> timedelta:
    """``28d`` -> 28 days. ``M``, ``Q`` and ``Y`` are calendar units, meaningless for a rolling window."""
    try:
        duration = parse_duration(text)
    except WindowError as exc:
        raise ValueError(str(exc)) from exc
    fixed = duration.fixed()
    if fixed is None:
        raise ValueError(
            f"unit {duration.unit!r} (months, quarters, years) needs a calendar window, not a rolling one"
        )
    return fixed


# ---------------------------------------------------------------------------------------------------------
# Document models (camelCase on the wire, unknown fields rejected so typos are caught)


class _Model(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` in a target or weight is an error, not a NaN in every figure.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", allow_inf_nan=False
    )


class Metadata(_Model):
    name: str = Field(min_length=1, max_length=253)
    display_name: str | None = None
    labels: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None


class MetricSource(_Model):
    metric_source_ref: str | None = None
    type: str | None = None
    spec: dict[str, Any] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in SUPPORTED_SOURCE_TYPES:
            raise ValueError(f"metric source type {value!r} is not supported; expected 'sloscope'")
        return value

    @model_validator(mode="after")
    def _typed(self) -> MetricSource:
        if self.metric_source_ref is None and self.type is None:
            raise ValueError("give type (sloscope) or metricSourceRef")
        return self


class Metric(_Model):
    metric_source: MetricSource


class RatioMetric(_Model):
    counter: bool = True
    good: Metric | None = None
    bad: Metric | None = None
    total: Metric | None = None
    raw_type: Literal["success", "failure"] | None = None
    raw: Metric | None = None

    @model_validator(mode="after")
    def _shape(self) -> RatioMetric:
        if self.raw is not None or self.raw_type is not None:
            if self.raw is None or self.raw_type is None:
                raise ValueError("give raw and rawType together")
            if self.good is not None or self.bad is not None or self.total is not None:
                raise ValueError("a raw ratio metric has no good, bad or total")
            return self
        if self.total is None:
            raise ValueError("total is required")
        if (self.good is None) == (self.bad is None):
            raise ValueError("give exactly one of good or bad")
        return self


class ThresholdMetric(_Model):
    metric_source: MetricSource


class IndicatorSpec(_Model):
    description: str | None = None
    ratio_metric: RatioMetric | None = None
    threshold_metric: ThresholdMetric | None = None

    @model_validator(mode="after")
    def _one_metric(self) -> IndicatorSpec:
        if (self.ratio_metric is None) == (self.threshold_metric is None):
            raise ValueError("give exactly one of ratioMetric or thresholdMetric")
        return self


class Indicator(_Model):
    metadata: Metadata | None = None
    spec: IndicatorSpec


class SliDocument(_Model):
    api_version: Literal["openslo/v1"]
    kind: Literal["SLI"]
    metadata: Metadata
    spec: IndicatorSpec


class Calendar(_Model):
    start_time: str | datetime
    time_zone: str = "UTC"


class TimeWindow(_Model):
    duration: str
    is_rolling: bool = False
    calendar: Calendar | None = None


class ObjectiveModel(_Model):
    display_name: str | None = None
    name: str | None = None
    op: Literal["lte", "gte", "lt", "gt"] | None = None
    value: float | None = None
    target: float | None = None
    target_percent: float | None = None
    time_slice_target: float | None = None
    time_slice_window: str | int | None = None  # a bare number is minutes (OpenSLO v1)
    indicator: Indicator | None = None
    indicator_ref: str | None = None
    composite_weight: float | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ObjectiveModel:
        if (self.target is None) == (self.target_percent is None):
            raise ValueError("give exactly one of target or targetPercent")
        exact = self.exact_target()
        if not Decimal(0) <= exact < Decimal(1):
            raise ValueError(f"target must lie in [0, 1) (targetPercent in [0, 100)), got {exact}")
        if self.time_slice_target is not None and not 0 < self.time_slice_target <= 1:
            raise ValueError(f"timeSliceTarget must lie in (0, 1], got {self.time_slice_target}")
        if self.indicator is not None and self.indicator_ref is not None:
            raise ValueError("give at most one of indicator or indicatorRef")
        if self.composite_weight is not None and not self.composite_weight > 0:
            raise ValueError(f"compositeWeight must be positive, got {self.composite_weight}")
        if (self.op is None) != (self.value is None):
            raise ValueError("op and value go together (a threshold objective)")
        return self

    def exact_target(self) -> Decimal:
        # str() of the float YAML gave us recovers the decimal the user wrote (0.999, not 0.99899...).
        try:
            if self.target is not None:
                return Decimal(str(self.target))
            return Decimal(str(self.target_percent)) / 100
        except InvalidOperation as exc:
            raise ValueError("target is not a number") from exc


class AlertPolicyRef(_Model):
    alert_policy_ref: str


class SloSpec(_Model):
    description: str | None = None
    service: str = Field(min_length=1, max_length=200)
    indicator: Indicator | None = None
    indicator_ref: str | None = None
    time_window: list[TimeWindow] = Field(min_length=1, max_length=1)
    budgeting_method: Literal["Occurrences", "Timeslices", "RatioTimeslices"]
    objectives: list[ObjectiveModel] = Field(min_length=1)
    alert_policies: list[AlertPolicyRef | AlertPolicyDocument] | None = None

    @model_validator(mode="after")
    def _indicator(self) -> SloSpec:
        per_objective = [o.indicator is not None or o.indicator_ref is not None for o in self.objectives]
        if any(per_objective):
            # A composite SLO: every objective measures its own indicator, weighted by compositeWeight.
            if self.indicator is not None or self.indicator_ref is not None:
                raise ValueError("a composite SLO gives indicators per objective, not for the whole SLO")
            if not all(per_objective):
                raise ValueError("in a composite SLO every objective needs an indicator or indicatorRef")
            return self
        if any(o.composite_weight is not None for o in self.objectives):
            raise ValueError("compositeWeight needs an indicator per objective (a composite SLO)")
        if (self.indicator is None) == (self.indicator_ref is None):
            raise ValueError("give exactly one of indicator or indicatorRef")
        return self

    @property
    def is_composite(self) -> bool:
        return any(o.indicator is not None or o.indicator_ref is not None for o in self.objectives)


class SloDocument(_Model):
    api_version: Literal["openslo/v1"]
    kind: Literal["SLO"]
    metadata: Metadata
    spec: SloSpec


class ServiceSpec(_Model):
    description: str | None = None


class ServiceDocument(_Model):
    api_version: Literal["openslo/v1"]
    kind: Literal["Service"]
    metadata: Metadata
    spec: ServiceSpec = Field(default_factory=ServiceSpec)


class DataSourceSpec(_Model):
    description: str | None = None
    type: str
    connection_details: dict[str, Any] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in DATASOURCE_TYPES:
            raise ValueError(
                f"data source type {value!r} is not supported; expected one of {', '.join(DATASOURCE_TYPES)}"
            )
        return value


# A Prometheus data source is a connection the Prometheus pull source lands data from
# (pipelines/sources/prometheus.py); SLOs still read that data from the warehouse (type sloscope).
DATASOURCE_TYPES = ("sloscope", "prometheus")


class DataSourceDocument(_Model):
    api_version: Literal["openslo/v1"]
    kind: Literal["DataSource"]
    metadata: Metadata
    spec: DataSourceSpec


class BurnRateCondition(_Model):
    kind: Literal["burnrate"] = "burnrate"
    # Not in every OpenSLO v1 example; without it, alert when the burn rate is >= the threshold.
    op: Literal["lte", "gte", "lt", "gt"] = "gte"
    threshold: float = Field(gt=0)
    lookback_window: str
    alert_after: str = "0m"

    @field_validator("lookback_window")
    @classmethod
    def _lookback(cls, value: str) -> str:
        parse_rolling_duration(value)
        return value

    @field_validator("alert_after")
    @classmethod
    def _alert_after(cls, value: str) -> str:
        if value in ("0m", "0s"):
            return value
        parse_rolling_duration(value)
        return value


# sloscope routes three severities; common names from other tools are read as their nearest one.
ALERT_SEVERITIES = {
    "page": "page",
    "critical": "page",
    "high": "page",
    "ticket": "ticket",
    "warning": "ticket",
    "medium": "ticket",
    "info": "info",
    "low": "info",
}


class AlertConditionSpec(_Model):
    description: str | None = None
    severity: str = Field(min_length=1)
    condition: BurnRateCondition

    @field_validator("severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        if value.lower() not in ALERT_SEVERITIES:
            raise ValueError(
                "severity must be page, ticket or info (or critical/high, warning/medium, low), "
                f"got {value!r}"
            )
        return value


class AlertConditionDocument(_Model):
    api_version: Literal["openslo/v1"] | None = None
    kind: Literal["AlertCondition"]
    metadata: Metadata
    spec: AlertConditionSpec


class ConditionRef(_Model):
    condition_ref: str


class NotificationTargetSpec(_Model):
    description: str | None = None
    target: str = Field(min_length=1)


class NotificationTargetDocument(_Model):
    api_version: Literal["openslo/v1"] | None = None
    kind: Literal["AlertNotificationTarget"]
    metadata: Metadata
    spec: NotificationTargetSpec


class TargetRef(_Model):
    target_ref: str


class AlertPolicySpec(_Model):
    description: str | None = None
    alert_when_no_data: bool = False
    alert_when_resolved: bool = False
    alert_when_breaching: bool = True
    conditions: list[ConditionRef | AlertConditionDocument] = Field(min_length=1, max_length=1)
    notification_targets: list[TargetRef | NotificationTargetDocument] = Field(default_factory=list)


class AlertPolicyDocument(_Model):
    api_version: Literal["openslo/v1"] | None = None
    kind: Literal["AlertPolicy"]
    metadata: Metadata
    spec: AlertPolicySpec


SloSpec.model_rebuild()

_MODELS: dict[str, type[_Model]] = {
    "SLO": SloDocument,
    "SLI": SliDocument,
    "Service": ServiceDocument,
    "DataSource": DataSourceDocument,
    "AlertPolicy": AlertPolicyDocument,
    "AlertCondition": AlertConditionDocument,
    "AlertNotificationTarget": NotificationTargetDocument,
}


# ---------------------------------------------------------------------------------------------------------
# Domain objects


@dataclass(frozen=True)
class Objective:
    name: str
    index: int
    target: Decimal
    time_slice_target: Decimal | None = None
    time_slice_minutes: int | None = None


@dataclass(frozen=True)
class AlertCondition:
    name: str
    severity: str
    op: str
    threshold: float
    lookback_window: str
    alert_after: str


@dataclass(frozen=True)
class AlertPolicy:
    name: str
    alert_when_no_data: bool
    alert_when_resolved: bool
    alert_when_breaching: bool
    condition: AlertCondition
    targets: tuple[str, ...]


@dataclass(frozen=True)
class SloDefinition:
    name: str
    display_name: str
    service: str
    window: Window
    budgeting_method: str
    total: EventFilter
    good: EventFilter | None
    bad: EventFilter | None
    objectives: tuple[Objective, ...]
    source_file: str
    document: dict[str, Any] = field(compare=False)
    indicator_name: str | None = None
    description: str | None = None
    minimum_events: int = 1
    alert_policies: tuple[AlertPolicy, ...] = ()
    composite: str | None = None  # the composite SLO this is a component of (named "<composite>/<objective>")
    composite_weight: float | None = None
    raw_type: str | None = (
        None  # a raw ratio metric: "success" or "failure" ratios, precomputed by the source
    )
    percentile: Decimal | None = None  # thresholdMetric percentile objective: a slice is good when its
    threshold: tuple[str, float] | None = None  # latency percentile satisfies (op, value)

    @property
    def window_text(self) -> str:
        window = self.window
        if isinstance(window, CalendarWindow):
            return f"{window.duration} calendar ({window.time_zone})"
        return str(window.duration)

    @property
    def thresholds(self) -> dict[str, set[float]]:
        """Latency thresholds (ms) this SLO needs exact counts for, per service."""
        needed: dict[str, set[float]] = {}
        for part in (self.good, self.bad):
            if part is None:
                continue
            combined = self.total.intersect(part)
            for service in combined.services:
                needed.setdefault(service, set()).update(combined.thresholds)
        for service in self.total.services:
            needed.setdefault(service, set()).update(self.total.thresholds)
        return {s: t for s, t in needed.items() if t}


@dataclass
class Catalog:
    """Every valid document of a folder, by kind and name, and the SLOs built from them."""

    documents: dict[str, dict[str, tuple[str, _Model]]] = field(default_factory=dict)
    slos: list[SloDefinition] = field(default_factory=list)

    def get(self, kind: str, name: str) -> _Model | None:
        found = self.documents.get(kind, {}).get(name)
        return found[1] if found else None


# ---------------------------------------------------------------------------------------------------------
# Parsing


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part) in _MODELS or str(part).startswith(("ConditionRef", "TargetRef", "AlertPolicyRef")):
            continue  # pydantic's union-branch names are noise in a path
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


def _pydantic_problems(source: str, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required field is missing"
        elif err["type"] == "literal_error":
            message = f"expected {err['ctx']['expected']}, got {err.get('input')!r}"
        problem = f"{source}: {_location(err['loc'])}: {message}"
        if problem not in problems:
            problems.append(problem)
    return problems


def _documents_of(text: str, source: str) -> tuple[list[tuple[str, Any]], list[str]]:
    try:
        loaded = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [], [f"{source}: not valid YAML: {exc}"]
    documents: list[Any] = []
    for item in loaded:
        documents.extend(item if isinstance(item, list) else [item])
    located = [
        (source if len(documents) == 1 else f"{source} (document {i + 1})", d)
        for i, d in enumerate(documents)
    ]
    return located, []


def _validate(where: str, raw: Any) -> tuple[_Model | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"{where}: expected a mapping (an OpenSLO document), got {type(raw).__name__}"]
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in _MODELS:  # a list or mapping kind is unhashable
        return None, [f"{where}: kind: expected one of {', '.join(KINDS)}, got {kind!r}"]
    try:
        return _MODELS[kind].model_validate(raw), []
    except ValidationError as exc:
        return None, _pydantic_problems(where, exc)


class _Builder:
    """Turns validated documents into domain objects, resolving references against the catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def _ref(self, kind: str, name: str, path: str) -> _Model:
        found = self.catalog.get(kind, name)
        if found is None:
            known = sorted(self.catalog.documents.get(kind, {}))
            listed = f" (defined: {', '.join(known)})" if known else ""
            raise FilterError(path, f"no {kind} named {name!r}{listed}")
        return found

    def _metric_filter(self, metric: Metric, services: frozenset[str], path: str) -> EventFilter:
        source = metric.metric_source
        if source.metric_source_ref is not None:
            self._ref("DataSource", source.metric_source_ref, f"{path}.metricSourceRef")
        return compile_filter(source.spec, default_services=services, path=f"{path}.spec")

    def _alert_policy(self, entry: AlertPolicyRef | AlertPolicyDocument, path: str) -> AlertPolicy:
        if isinstance(entry, AlertPolicyRef):
            policy = self._ref("AlertPolicy", entry.alert_policy_ref, f"{path}.alertPolicyRef")
        else:
            policy = entry
        assert isinstance(policy, AlertPolicyDocument)
        condition_entry = policy.spec.conditions[0]
        if isinstance(condition_entry, ConditionRef):
            condition = self._ref(
                "AlertCondition", condition_entry.condition_ref, f"{path}.conditions[0].conditionRef"
            )
        else:
            condition = condition_entry
        assert isinstance(condition, AlertConditionDocument)
        targets = []
        for i, target in enumerate(policy.spec.notification_targets):
            if isinstance(target, TargetRef):
                self._ref(
                    "AlertNotificationTarget", target.target_ref, f"{path}.notificationTargets[{i}].targetRef"
                )
                targets.append(target.target_ref)
            else:
                targets.append(target.metadata.name)
        burn = condition.spec.condition
        return AlertPolicy(
            name=policy.metadata.name,
            alert_when_no_data=policy.spec.alert_when_no_data,
            alert_when_resolved=policy.spec.alert_when_resolved,
            alert_when_breaching=policy.spec.alert_when_breaching,
            condition=AlertCondition(
                name=condition.metadata.name,
                severity=ALERT_SEVERITIES[condition.spec.severity.lower()],
                op=burn.op,
                threshold=burn.threshold,
                lookback_window=burn.lookback_window,
                alert_after=burn.alert_after,
            ),
            targets=tuple(targets),
        )

    def _indicator(
        self, inline: Indicator | None, ref: str | None, where: str
    ) -> tuple[IndicatorSpec, str | None, str]:
        if ref is not None:
            sli = self._ref("SLI", ref, f"{where}.indicatorRef")
            assert isinstance(sli, SliDocument)
            return sli.spec, sli.metadata.name, f"{where}.indicatorRef"
        assert inline is not None
        return inline.spec, inline.metadata.name if inline.metadata else None, f"{where}.indicator.spec"

    def _threshold(
        self, metric: ThresholdMetric, model: ObjectiveModel, service: str, base: str, where: str
    ) -> tuple[EventFilter, EventFilter, Decimal | None, tuple[str, float]]:
        """(total, good, percentile, (op, value)) of a thresholdMetric indicator with its one objective."""
        path = f"{base}.thresholdMetric.metricSource.spec"
        source = metric.metric_source
        if source.metric_source_ref is not None:
            self._ref(
                "DataSource", source.metric_source_ref, f"{base}.thresholdMetric.metricSource.metricSourceRef"
            )
        spec = dict(source.spec or {})
        metric_name = spec.pop("metric", None)
        if metric_name != "latency_ms":
            raise FilterError(
                f"{path}.metric", f"expected latency_ms (the measured value), got {metric_name!r}"
            )
        percentile_raw = spec.pop("percentile", None)
        percentile = None
        if percentile_raw is not None:
            if (
                isinstance(percentile_raw, bool)
                or not isinstance(percentile_raw, int | float)
                or not (0 < percentile_raw <= 100)
            ):
                raise FilterError(
                    f"{path}.percentile", f"expected a number in (0, 100], got {percentile_raw!r}"
                )
            percentile = Decimal(str(percentile_raw))
            histogram_grain = {"service", "operation", "success"}
            if set(spec) - histogram_grain:
                extra = sorted(set(spec) - histogram_grain)[0]
                raise FilterError(
                    f"{path}.{extra}",
                    "percentile objectives filter by service, operation and "
                    "success only (the latency histograms' grain)",
                )
        if model.op is None or model.value is None:
            raise FilterError(
                where, "a thresholdMetric objective needs op and value (e.g. op: lte, value: 300)"
            )
        # Events without a latency cannot meet or miss a latency threshold: they are not counted.
        measured = compile_filter(
            {**spec, "latency_ms": {"gte": 0}}, default_services=frozenset({service}), path=path
        )
        bound = compile_filter(
            {"latency_ms": {model.op: model.value}}, default_services=measured.services, path=f"{where}.value"
        )
        return measured, measured.intersect(bound), percentile, (model.op, float(model.value))

    def _filters(
        self, indicator_spec: IndicatorSpec, service: str, base: str
    ) -> tuple[EventFilter, EventFilter | None, EventFilter | None]:
        ratio = indicator_spec.ratio_metric
        assert ratio is not None
        if ratio.raw is not None:
            path = f"{base}.ratioMetric.raw.metricSource"
            spec = ratio.raw.metric_source.spec or {}
            extra = sorted(set(spec) - {"service", "operation"})
            if extra:
                raise FilterError(
                    f"{path}.spec.{extra[0]}", "raw ratios are filtered by service and operation only"
                )
            return self._metric_filter(ratio.raw, frozenset({service}), path), None, None
        assert ratio.total is not None
        # The total defaults to the SLO's service; good and bad default to the total's services, so that the
        # good and the bad form of one SLO count the same events.
        total = self._metric_filter(
            ratio.total, frozenset({service}), f"{base}.ratioMetric.total.metricSource"
        )
        good = bad = None
        if ratio.good is not None:
            good = self._metric_filter(ratio.good, total.services, f"{base}.ratioMetric.good.metricSource")
        if ratio.bad is not None:
            bad = self._metric_filter(ratio.bad, total.services, f"{base}.ratioMetric.bad.metricSource")
        return total, good, bad

    def slo(self, doc: SloDocument, source: str) -> list[SloDefinition]:
        """The SLO; for a composite, one component SLO per objective (named ``<slo>/<objective>``)."""
        spec = doc.spec
        services_known = self.catalog.documents.get("Service", {})
        if services_known and spec.service not in services_known:
            raise FilterError(
                "spec.service",
                f"no Service named {spec.service!r} (defined: {', '.join(sorted(services_known))})",
            )
        raw_window = spec.time_window[0].model_dump(by_alias=True, exclude_none=True)
        try:
            window = window_from_openslo(raw_window)
        except WindowError as exc:
            raise FilterError("spec.timeWindow[0]", str(exc)) from exc
        threshold_indicator = None
        if not spec.is_composite:
            indicator_spec, indicator_name, base = self._indicator(spec.indicator, spec.indicator_ref, "spec")
            threshold_indicator = indicator_spec.threshold_metric
        if threshold_indicator is not None and len(spec.objectives) != 1:
            raise FilterError("spec.objectives", "a thresholdMetric SLO has exactly one objective (OpenSLO)")
        percentile_source = (threshold_indicator.metric_source.spec or {}) if threshold_indicator else {}
        is_percentile = "percentile" in percentile_source
        objectives = tuple(
            self._objective(o, i, spec.budgeting_method, window, percentile=is_percentile)
            for i, o in enumerate(spec.objectives)
        )
        names = [o.name for o in objectives]
        if len(set(names)) != len(names):
            raise FilterError("spec.objectives", "objective names (displayName) must be unique within an SLO")
        if threshold_indicator is None:
            self.ratio_objectives_have_no_threshold(spec)
        if spec.is_composite:
            measured = []
            for model, objective in zip(spec.objectives, objectives, strict=True):
                where = f"spec.objectives[{objective.index}]"
                indicator_spec, indicator_name, base = self._indicator(
                    model.indicator, model.indicator_ref, where
                )
                if indicator_spec.ratio_metric is not None and indicator_spec.ratio_metric.raw is not None:
                    raise FilterError(
                        where,
                        "composite components use good/bad over total; raw ratios are not "
                        "supported in a composite SLO",
                    )
                if indicator_spec.threshold_metric is not None:
                    raise FilterError(
                        where,
                        "composite components use ratio metrics; thresholdMetric is not "
                        "supported in a composite SLO",
                    )
                measured.append(
                    (model, objective, indicator_name, self._filters(indicator_spec, spec.service, base))
                )
        elif threshold_indicator is not None:
            total_f, good_f, percentile, threshold = self._threshold(
                threshold_indicator, spec.objectives[0], spec.service, base, "spec.objectives[0]"
            )
            if percentile is not None:
                if spec.budgeting_method != "Timeslices":
                    raise FilterError(
                        "spec.budgetingMethod",
                        "percentile objectives are judged per time slice: use Timeslices",
                    )
                if not isinstance(window, RollingWindow):
                    raise FilterError("spec.timeWindow[0]", "percentile objectives need a rolling window")
        else:
            filters = self._filters(indicator_spec, spec.service, base)
        policies = tuple(
            self._alert_policy(entry, f"spec.alertPolicies[{i}]")
            for i, entry in enumerate(spec.alert_policies or [])
        )
        common = {
            "display_name": doc.metadata.display_name or doc.metadata.name,
            "service": spec.service,
            "window": window,
            "budgeting_method": spec.budgeting_method,
            "source_file": source,
            "document": canonical(doc),
            "description": spec.description,
            "minimum_events": _minimum_events(doc.metadata),
            "alert_policies": policies,
        }
        if not spec.is_composite:
            if threshold_indicator is not None:
                filters = (total_f, good_f, None)
                extras: dict[str, Any] = {"percentile": percentile, "threshold": threshold}
            else:
                ratio = indicator_spec.ratio_metric
                extras = {"raw_type": ratio.raw_type if ratio else None}
            total, good, bad = filters
            return [
                SloDefinition(
                    name=doc.metadata.name,
                    total=total,
                    good=good,
                    bad=bad,
                    objectives=objectives,
                    indicator_name=indicator_name,
                    **extras,
                    **common,
                )
            ]
        return [
            SloDefinition(
                name=f"{doc.metadata.name}/{objective.name}",
                total=total,
                good=good,
                bad=bad,
                objectives=(replace(objective, index=0),),
                indicator_name=name,
                composite=doc.metadata.name,
                composite_weight=model.composite_weight or 1.0,
                **common,
            )
            for model, objective, name, (total, good, bad) in measured
        ]

    @staticmethod
    def ratio_objectives_have_no_threshold(spec: SloSpec) -> None:
        for i, model in enumerate(spec.objectives):
            if model.op is not None:
                raise FilterError(
                    f"spec.objectives[{i}].op",
                    "op and value apply to a thresholdMetric indicator; "
                    "a ratio metric's objective has only a target",
                )

    @staticmethod
    def _objective(
        model: ObjectiveModel, index: int, method: str, window: Window, *, percentile: bool = False
    ) -> Objective:
        where = f"spec.objectives[{index}]"
        name = model.display_name or model.name or f"target {model.exact_target()}"
        if percentile and method == "Timeslices":
            # The slice's verdict is its percentile against op/value; no share of good events to compare.
            if model.time_slice_target is not None:
                raise FilterError(
                    f"{where}.timeSliceTarget",
                    "does not apply to a percentile objective (op/value judges each slice)",
                )
            model = model.model_copy(update={"time_slice_target": 1.0})
        if method == "Occurrences":
            if model.time_slice_target is not None or model.time_slice_window is not None:
                raise FilterError(
                    where, "timeSliceTarget and timeSliceWindow apply to Timeslices budgeting only"
                )
            return Objective(name, index, model.exact_target())
        if model.time_slice_window is None:
            raise FilterError(f"{where}.timeSliceWindow", f"required with budgetingMethod {method}")
        if method == "Timeslices" and model.time_slice_target is None:
            raise FilterError(f"{where}.timeSliceTarget", "required with budgetingMethod Timeslices")
        if method == "RatioTimeslices" and model.time_slice_target is not None:
            raise FilterError(
                f"{where}.timeSliceTarget", "does not apply to RatioTimeslices (slice ratios are averaged)"
            )
        window_text = model.time_slice_window
        if isinstance(window_text, int) and not isinstance(window_text, bool):
            window_text = f"{window_text}m"
        try:
            slice_length = parse_rolling_duration(str(window_text))
        except ValueError as exc:
            raise FilterError(f"{where}.timeSliceWindow", str(exc)) from exc
        minutes = int(slice_length.total_seconds() // 60)
        if isinstance(window, RollingWindow):
            window_minutes = int(window.duration.fixed().total_seconds() // 60)  # type: ignore[union-attr]
            if window_minutes % minutes:
                raise FilterError(
                    f"{where}.timeSliceWindow",
                    f"{model.time_slice_window} does not divide the {window.duration} window",
                )
        elif 60 % minutes:
            # Calendar periods start on local wall-clock boundaries and DST days last 23 or 25 hours:
            # slices that divide an hour tile every period exactly.
            raise FilterError(
                f"{where}.timeSliceWindow",
                f"with a calendar window the slice must divide one hour, got {model.time_slice_window}",
            )
        slice_target = Decimal(str(model.time_slice_target)) if model.time_slice_target is not None else None
        return Objective(name, index, model.exact_target(), slice_target, minutes)


def _minimum_events(metadata: Metadata) -> int:
    value = (metadata.annotations or {}).get(MINIMUM_EVENTS_ANNOTATION, 1)
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if number < 1:
        raise FilterError(
            f"metadata.annotations.{MINIMUM_EVENTS_ANNOTATION}",
            f"expected a whole number >= 1, got {value!r}",
        )
    return number


def canonical(model: _Model) -> dict[str, Any]:
    """The document as sloscope writes it: camelCase keys, nothing unset."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def build_catalog(sources: Iterable[tuple[str, str]]) -> tuple[Catalog, list[str]]:
    """A catalog from (text, source name) pairs; problems instead of exceptions."""
    catalog = Catalog()
    problems: list[str] = []
    slo_docs: list[tuple[str, SloDocument]] = []
    for text, source in sources:
        located, file_problems = _documents_of(text, source)
        problems.extend(file_problems)
        for where, raw in located:
            model, doc_problems = _validate(where, raw)
            problems.extend(doc_problems)
            if model is None:
                continue
            kind, name = raw["kind"], model.metadata.name  # type: ignore[attr-defined]
            by_name = catalog.documents.setdefault(kind, {})
            if name in by_name:
                problems.append(
                    f"{where}: metadata.name: {kind} {name!r} is already defined in {by_name[name][0]}"
                )
                continue
            by_name[name] = (where, model)
            if isinstance(model, SloDocument):
                slo_docs.append((where, model))
    builder = _Builder(catalog)
    built_at: dict[str, str] = {}
    for where, doc in slo_docs:
        try:
            built = builder.slo(doc, where.split(" (document")[0])
        except FilterError as exc:
            problems.append(f"{where}: {exc.path}: {exc.message}")
            continue
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        # A composite's components are named "<slo>/<objective>": they must not collide with another SLO.
        clashes = [s.name for s in built if s.name in built_at]
        if clashes:
            problems.append(
                f"{where}: metadata.name: SLO {clashes[0]!r} is also defined in {built_at[clashes[0]]}"
            )
            continue
        built_at.update({s.name: where for s in built})
        catalog.slos.extend(built)
    return catalog, problems


def parse_documents(text: str, source: str) -> tuple[list[SloDefinition], list[str]]:
    """SLOs in one YAML text (references resolved within it); problems instead of exceptions."""
    catalog, problems = build_catalog([(text, source)])
    return catalog.slos, problems


def yaml_files(directory: Path) -> list[Path]:
    if directory.is_file():
        return [directory]
    if directory.is_dir():
        return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    raise SpecError([f"{directory}: no such file or directory"])


def load_catalog(directory: Path) -> Catalog:
    """Every OpenSLO document under a folder (or in one file); raises :class:`SpecError`."""
    files = yaml_files(directory)
    if not files:
        raise SpecError([f"{directory}: no SLO files (*.yaml, *.yml) found"])
    sources: list[tuple[str, str]] = []
    problems: list[str] = []
    for path in files:
        try:
            sources.append((path.read_text(encoding="utf-8"), str(path)))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot be read: {exc}")
    catalog, build_problems = build_catalog(sources)
    problems.extend(build_problems)
    if problems:
        raise SpecError(problems)
    return catalog


def load_slos(directory: Path) -> list[SloDefinition]:
    return load_catalog(directory).slos


def export_yaml(catalog: Catalog) -> str:
    """Every document in canonical form, kinds in a fixed order, names sorted: loads back to the same."""
    docs = [
        canonical(model)
        for kind in KINDS
        for _, (_, model) in sorted(catalog.documents.get(kind, {}).items())
    ]
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True)


def thresholds_of(slos: list[SloDefinition]) -> dict[str, set[float]]:
    merged: dict[str, set[float]] = {}
    for slo in slos:
        for service, values in slo.thresholds.items():
            merged.setdefault(service, set()).update(values)
    return merged

"""OpenSLO v1 ``kind: SLO`` documents: parsing, validation and the domain objects evaluation uses.

Every problem is reported as ``<file>: <path>: <what was expected>``, and all problems of a folder
are collected before raising, so a user fixes them in one pass.

Supported in this version: rolling time windows (m, h, d, w), the Occurrences budgeting method and
ratio indicators (``good`` or ``bad`` over ``total``) whose metric source is ``type: sloscope`` with a
declarative filter. Calendar windows, timeslices, threshold metrics and references to separate SLI
documents are rejected with an error that says so, rather than being evaluated wrongly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from pipelines.slo.filters import EventFilter, FilterError, compile_filter

_DURATION = re.compile(r"^([1-9][0-9]*)([mhdwMQY])$")
_UNIT = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
SUPPORTED_SOURCE_TYPES = ("sloscope",)


class SpecError(ValueError):
    """One or more SLO files are invalid; ``problems`` lists each as file: path: message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_rolling_duration(text: str) -> timedelta:
    """``28d`` -> 28 days. ``M``, ``Q`` and ``Y`` are calendar units, meaningless for a rolling window."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"expected a duration such as 5m, 1h, 28d or 4w, got {text!r}")
    count, unit = int(match.group(1)), match.group(2)
    if unit not in _UNIT:
        raise ValueError(
            f"unit {unit!r} (months, quarters, years) needs a calendar window, not a rolling one"
        )
    return count * _UNIT[unit]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Metadata(_Model):
    name: str = Field(min_length=1, max_length=253)
    display_name: str | None = None
    labels: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None


class MetricSource(_Model):
    type: str
    spec: dict[str, Any] | None = None
    metric_source_ref: str | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in SUPPORTED_SOURCE_TYPES:
            raise ValueError(f"metric source type {value!r} is not supported; expected 'sloscope'")
        return value


class Metric(_Model):
    metric_source: MetricSource


class RatioMetric(_Model):
    counter: bool = True
    good: Metric | None = None
    bad: Metric | None = None
    total: Metric

    @model_validator(mode="after")
    def _one_of_good_bad(self) -> RatioMetric:
        if (self.good is None) == (self.bad is None):
            raise ValueError("give exactly one of good or bad")
        return self


class IndicatorSpec(_Model):
    ratio_metric: RatioMetric | None = None
    threshold_metric: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _ratio_only(self) -> IndicatorSpec:
        if self.threshold_metric is not None:
            raise ValueError("thresholdMetric indicators are not supported yet; use ratioMetric")
        if self.ratio_metric is None:
            raise ValueError("expected ratioMetric")
        return self


class Indicator(_Model):
    metadata: Metadata | None = None
    spec: IndicatorSpec


class TimeWindow(_Model):
    duration: str
    is_rolling: bool = False
    calendar: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _rolling(self) -> TimeWindow:
        if self.calendar is not None and self.is_rolling:
            raise ValueError("calendar is given with isRolling: true; a window is either rolling or calendar")
        if not self.is_rolling:
            raise ValueError("calendar windows are not supported yet; use isRolling: true")
        parse_rolling_duration(self.duration)
        return self


class ObjectiveModel(_Model):
    display_name: str | None = None
    name: str | None = None
    target: float | None = None
    target_percent: float | None = None
    op: str | None = None
    value: float | None = None
    time_slice_target: float | None = None
    time_slice_window: str | None = None
    composite_weight: float | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ObjectiveModel:
        if (self.target is None) == (self.target_percent is None):
            raise ValueError("give exactly one of target or targetPercent")
        exact = self.exact_target()
        if not Decimal(0) < exact < Decimal(1):
            raise ValueError(f"target must lie strictly between 0 and 1 (0% and 100%), got {exact}")
        return self

    def exact_target(self) -> Decimal:
        # str() of the float YAML gave us recovers the decimal the user wrote (0.999, not 0.99899...).
        try:
            if self.target is not None:
                return Decimal(str(self.target))
            return Decimal(str(self.target_percent)) / 100
        except InvalidOperation as exc:
            raise ValueError("target is not a number") from exc


class SloSpec(_Model):
    description: str | None = None
    service: str = Field(min_length=1, max_length=200)
    indicator: Indicator | None = None
    indicator_ref: str | None = None
    time_window: list[TimeWindow] = Field(min_length=1, max_length=1)
    budgeting_method: Literal["Occurrences", "Timeslices", "RatioTimeslices"]
    objectives: list[ObjectiveModel] = Field(min_length=1)
    alert_policies: list[Any] | None = None

    @model_validator(mode="after")
    def _supported(self) -> SloSpec:
        if self.indicator_ref is not None:
            raise ValueError("indicatorRef is not supported yet; give the indicator inline")
        if self.indicator is None:
            raise ValueError("indicator is required")
        if self.budgeting_method != "Occurrences":
            raise ValueError(f"budgetingMethod {self.budgeting_method} is not supported yet; use Occurrences")
        return self


class SloDocument(_Model):
    api_version: Literal["openslo/v1"]
    kind: Literal["SLO"]
    metadata: Metadata
    spec: SloSpec


@dataclass(frozen=True)
class Objective:
    name: str
    index: int
    target: Decimal


@dataclass(frozen=True)
class SloDefinition:
    name: str
    display_name: str
    service: str
    window: timedelta
    window_text: str
    budgeting_method: str
    total: EventFilter
    good: EventFilter | None
    bad: EventFilter | None
    objectives: tuple[Objective, ...]
    source_file: str
    document: dict[str, Any]

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


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
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
        problems.append(f"{source}: {_location(err['loc'])}: {message}")
    return problems


def _definition(doc: SloDocument, raw: dict[str, Any], source: str) -> SloDefinition:
    spec = doc.spec
    ratio = spec.indicator.spec.ratio_metric  # type: ignore[union-attr]
    base = "spec.indicator.spec.ratioMetric"

    def compile_part(metric: Metric | None, part: str, services: frozenset[str]) -> EventFilter | None:
        if metric is None:
            return None
        return compile_filter(
            metric.metric_source.spec, default_services=services, path=f"{base}.{part}.metricSource.spec"
        )

    # The total defaults to the SLO's service; good and bad default to the total's services, so that the
    # good and the bad form of one SLO count the same events.
    total = compile_part(ratio.total, "total", frozenset({spec.service}))
    assert total is not None

    window = spec.time_window[0]
    objectives = tuple(
        Objective(
            name=o.display_name or o.name or f"target {o.exact_target()}", index=i, target=o.exact_target()
        )
        for i, o in enumerate(spec.objectives)
    )
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise FilterError("spec.objectives", "objective names (displayName) must be unique within an SLO")
    return SloDefinition(
        name=doc.metadata.name,
        display_name=doc.metadata.display_name or doc.metadata.name,
        service=spec.service,
        window=parse_rolling_duration(window.duration),
        window_text=window.duration,
        budgeting_method=spec.budgeting_method,
        total=total,
        good=compile_part(ratio.good, "good", total.services),
        bad=compile_part(ratio.bad, "bad", total.services),
        objectives=objectives,
        source_file=source,
        document=raw,
    )


def parse_documents(text: str, source: str) -> tuple[list[SloDefinition], list[str]]:
    """SLOs in one YAML text (one or more documents, or a list); problems instead of exceptions."""
    try:
        loaded = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [], [f"{source}: not valid YAML: {exc}"]
    documents: list[Any] = []
    for item in loaded:
        documents.extend(item if isinstance(item, list) else [item])
    slos: list[SloDefinition] = []
    problems: list[str] = []
    for position, raw in enumerate(documents):
        where = source if len(documents) == 1 else f"{source} (document {position + 1})"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a mapping (an OpenSLO document), got {type(raw).__name__}")
            continue
        if raw.get("kind") != "SLO" and raw.get("apiVersion") == "openslo/v1":
            problems.append(
                f"{where}: kind: {raw.get('kind')!r} documents are not supported yet; expected SLO"
            )
            continue
        try:
            doc = SloDocument.model_validate(raw)
            slos.append(_definition(doc, raw, source))
        except ValidationError as exc:
            problems.extend(_pydantic_problems(where, exc))
        except FilterError as exc:
            problems.append(f"{where}: {exc.path}: {exc.message}")
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return slos, problems


def load_slos(directory: Path) -> list[SloDefinition]:
    """All SLOs in ``*.yaml``/``*.yml`` under a folder (or one file); raises :class:`SpecError`."""
    if directory.is_file():
        files = [directory]
    elif directory.is_dir():
        files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    else:
        raise SpecError([f"{directory}: no such file or directory"])
    if not files:
        raise SpecError([f"{directory}: no SLO files (*.yaml, *.yml) found"])
    slos: list[SloDefinition] = []
    problems: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: cannot be read: {exc}")
            continue
        found, file_problems = parse_documents(text, str(path))
        slos.extend(found)
        problems.extend(file_problems)
    first_seen: dict[str, str] = {}
    for slo in slos:
        if slo.name in first_seen:
            problems.append(
                f"{slo.source_file}: metadata.name: SLO {slo.name!r} is already defined in "
                f"{first_seen[slo.name]}"
            )
        first_seen.setdefault(slo.name, slo.source_file)
    if problems:
        raise SpecError(problems)
    return slos


def thresholds_of(slos: list[SloDefinition]) -> dict[str, set[float]]:
    merged: dict[str, set[float]] = {}
    for slo in slos:
        for service, values in slo.thresholds.items():
            merged.setdefault(service, set()).update(values)
    return merged

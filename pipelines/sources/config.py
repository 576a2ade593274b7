"""Which pull sources to pull from: ``data/sources.yaml`` (setting ``sources``)::

    prometheus:
      - datasource: prometheus-main      # an OpenSLO DataSource (spec.type: prometheus) in the SLO folder
        initial_lookback: 1d             # how far back the first pull goes
        series:                          # request counters: good and total selectors of raw counters
          - {service: api, operation: all, total: 'http_requests_total{job="api"}',
             good: 'http_requests_total{job="api",code!~"5.."}'}
        histograms:                      # latency thresholds from classic histograms (le buckets)
          - {service: api, operation: "all under 300ms", metric: http_request_duration_seconds,
             labels: {job: api}, threshold_ms: 300}

Every problem is reported at once (``<file>: <path>: <message>``). Without the file nothing is pulled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.slo.alert_config import parse_duration
from pipelines.slo.policies import DuplicateKeyError, StrictLoader
from pipelines.slo.spec import Catalog
from pipelines.sources import PullSource, load_registry
from pipelines.sources.prometheus import HistogramSpec, SeriesSpec, from_datasource


class SourcesError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


_Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Series(_Model):
    service: _Name
    operation: _Name
    total: _Name
    good: _Name


class _Histogram(_Model):
    service: _Name
    operation: _Name
    metric: _Name = "http_request_duration_seconds"
    labels: dict[str, str] = Field(default_factory=dict)
    threshold_ms: Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Prometheus(_Model):
    datasource: _Name
    initial_lookback: str = "1d"
    series: list[_Series] = Field(default_factory=list)
    histograms: list[_Histogram] = Field(default_factory=list)


@dataclass(frozen=True)
class PullSources:
    sources: tuple[PullSource, ...] = ()


class _PrometheusKind:
    """The ``prometheus`` section of the sources file: one entry per Prometheus DataSource."""

    name = "prometheus"

    def build(self, entries: Any, catalog: Catalog, where: str) -> list[PullSource]:
        try:
            models = [_Prometheus.model_validate(e) for e in (entries or [])]
        except ValidationError as exc:
            raise SourcesError(
                [f"{where}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            ) from None
        problems: list[str] = []
        pulls: list[PullSource] = []
        for i, entry in enumerate(models):
            place = f"{where}[{i}]"
            document = catalog.get("DataSource", entry.datasource)
            if document is None:
                problems.append(
                    f"{place}.datasource: no DataSource named {entry.datasource!r} in the SLO folder"
                )
                continue
            try:
                lookback = parse_duration(entry.initial_lookback)
            except ValueError as exc:
                problems.append(f"{place}.initial_lookback: {exc}")
                continue
            specs: list[SeriesSpec | HistogramSpec] = [
                SeriesSpec(s.service, s.operation, s.total, s.good) for s in entry.series
            ]
            specs += [
                HistogramSpec(h.service, h.operation, h.metric, dict(h.labels), h.threshold_ms)
                for h in entry.histograms
            ]
            try:
                doc = document.model_dump(by_alias=True, exclude_none=True)
                pulls.append(
                    from_datasource(doc, specs, initial_lookback=max(lookback, timedelta(minutes=1)))
                )
            except (ValueError, RuntimeError) as exc:
                problems.append(f"{place}: {exc}")
        if problems:
            raise SourcesError(problems)
        return pulls


PROMETHEUS = _PrometheusKind()


def load_sources(path: Path | None, catalog: Catalog) -> PullSources:
    """The pull sources configured in ``path`` (none when it is None or absent): each top-level key names
    a registered pull source kind (``prometheus``, or a plugin's)."""
    if path is None or not path.exists():
        return PullSources()
    source = str(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=StrictLoader) or {}
    except DuplicateKeyError as exc:
        raise SourcesError([f"{source}: {exc}"]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SourcesError([f"{source}: cannot be read: {exc}"]) from None
    if not isinstance(raw, dict):
        raise SourcesError([f"{source}: expected a mapping of source kinds, got {type(raw).__name__}"])
    kinds = {"prometheus": PROMETHEUS, **load_registry().pull_kinds}
    problems: list[str] = []
    pulls: list[PullSource] = []
    for key, entries in raw.items():
        kind = kinds.get(str(key))
        if kind is None:
            problems.append(f"{source}: {key}: unknown source kind; known: {', '.join(sorted(kinds))}")
            continue
        try:
            pulls += kind.build(entries, catalog, f"{source}: {key}")
        except SourcesError as exc:
            problems += exc.problems
        except ValueError as exc:
            problems.append(f"{source}: {key}: {exc}")
    if problems:
        raise SourcesError(problems)
    return PullSources(tuple(pulls))

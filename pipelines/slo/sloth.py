"""Sloth ``prometheus/v1`` specs in and out of OpenSLO, so teams on Sloth can move SLOs to sloscope and back.

Supported Sloth fields: ``version`` (``prometheus/v1`` only), ``service``, ``labels``, and per SLO ``name``,
``objective``, ``description``, ``labels``, ``sli.events`` (``error_query``/``total_query``), ``sli.raw``
(``error_ratio_query``) and ``alerting`` (``name``, ``labels``, ``annotations``, ``page_alert`` and
``ticket_alert`` with ``labels``, ``annotations``, ``disable``). Not supported, and reported as problems:
``sli.plugin`` and SLO ``plugins`` (their PromQL is produced by Go code sloscope cannot run), and any other
field (a typo is an error, as in the rest of sloscope). Sloth SLOs span 30 days unless the Sloth CLI is told
otherwise, and the spec cannot say so: imports are ``30d`` rolling windows.

**Where the PromQL lives.** sloscope's OpenSLO parser accepts only ``type: sloscope`` metric sources whose
``spec`` is a declarative event filter, so a ``type: prometheus`` source with ``spec.query`` would not load.
An imported SLO therefore carries its queries as annotations (``sloscope.io/prometheus-error-query``,
``…-total-query``, ``…-error-ratio-query``, the ``{{.window}}`` placeholder kept), and its indicator is the
nearest sloscope filter (bad = ``success: false`` of the service over all its events; a raw SLI becomes a
``rawType: failure`` ratio of the service), which lets sloscope evaluate the SLO if that service's events
are ingested. :func:`prometheus_queries` reads either form, so a future ``type: prometheus`` source works
unchanged. Sloth's alerting block is kept as JSON in ``sloscope.io/sloth-alerting`` (OpenSLO annotations
are strings), so :func:`export_sloth` restores it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from pipelines.slo.policies import DuplicateKeyError, StrictLoader
from pipelines.slo.spec import SloDefinition, parse_documents
from pipelines.slo.windows import RollingWindow

SLOTH_VERSION = "prometheus/v1"
SLOTH_WINDOW = "30d"
ERROR_QUERY_ANNOTATION = "sloscope.io/prometheus-error-query"
TOTAL_QUERY_ANNOTATION = "sloscope.io/prometheus-total-query"
ERROR_RATIO_QUERY_ANNOTATION = "sloscope.io/prometheus-error-ratio-query"
SLOTH_NAME_ANNOTATION = "sloscope.io/sloth-slo"
SLOTH_ALERTING_ANNOTATION = "sloscope.io/sloth-alerting"
IMPORTED_FROM_ANNOTATION = "sloscope.io/imported-from"
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

_TOP_FIELDS = {"version", "service", "labels", "slos"}
_SLO_FIELDS = {"name", "objective", "description", "labels", "sli", "alerting"}
_ALERTING_FIELDS = {"name", "labels", "annotations", "page_alert", "ticket_alert"}
_ALERT_FIELDS = {"labels", "annotations", "disable"}


class _Dumper(yaml.SafeDumper):
    """Multi-line PromQL as ``|`` blocks, so the YAML reads like the query a person wrote."""


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _represent_text)


def dump_yaml(documents: list[Any]) -> str:
    """YAML as sloscope writes it: key order kept, Unicode as is, multi-line text as ``|`` blocks."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


class SlothError(ValueError):
    """A Sloth spec (or an SLO to export) is invalid; ``problems`` lists each as source: path: message."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PrometheusQueries:
    """An SLO's PromQL with ``{{.window}}`` placeholders: error and total counts, or an error ratio."""

    error_query: str | None = None
    total_query: str | None = None
    error_ratio_query: str | None = None
    good_query: str | None = None  # only from a type: prometheus ``good`` source; error = 1 - good/total

    def error_ratio(self, window: str) -> str:
        """The SLI's error ratio over ``window`` (a Prometheus duration such as ``5m``) as one expression."""

        def at(query: str) -> str:
            return WINDOW_PLACEHOLDER.sub(window, query.strip())

        if self.error_ratio_query is not None:
            return f"({at(self.error_ratio_query)})"
        assert self.total_query is not None
        if self.error_query is not None:
            return f"({at(self.error_query)})\n/\n({at(self.total_query)})"
        assert self.good_query is not None
        return f"1 - (\n({at(self.good_query)})\n/\n({at(self.total_query)})\n)"


def prometheus_queries(document: dict[str, Any]) -> PrometheusQueries | None:
    """The PromQL of a canonical OpenSLO SLO document (``SloDefinition.document``), or None if it has none.

    Annotations (what :func:`import_sloth` writes) win; otherwise ``type: prometheus`` metric sources with a
    ``spec.query`` are read, should the project's parser ever accept them.
    """
    annotations = (document.get("metadata") or {}).get("annotations") or {}
    ratio = annotations.get(ERROR_RATIO_QUERY_ANNOTATION)
    if isinstance(ratio, str) and ratio.strip():
        return PrometheusQueries(error_ratio_query=ratio)
    error, total = annotations.get(ERROR_QUERY_ANNOTATION), annotations.get(TOTAL_QUERY_ANNOTATION)
    if isinstance(error, str) and isinstance(total, str) and error.strip() and total.strip():
        return PrometheusQueries(error_query=error, total_query=total)
    indicator = ((document.get("spec") or {}).get("indicator") or {}).get("spec") or {}
    metric = indicator.get("ratioMetric") or {}

    def query(part: str) -> str | None:
        source = (metric.get(part) or {}).get("metricSource") or {}
        text = (source.get("spec") or {}).get("query")
        if source.get("type") == "prometheus" and isinstance(text, str) and text.strip():
            return text
        return None

    if query("raw") is not None and metric.get("rawType") == "failure":
        return PrometheusQueries(error_ratio_query=query("raw"))
    total_query = query("total")
    if total_query is not None and query("bad") is not None:
        return PrometheusQueries(error_query=query("bad"), total_query=total_query)
    if total_query is not None and query("good") is not None:
        return PrometheusQueries(good_query=query("good"), total_query=total_query)
    return None


# ---------------------------------------------------------------------------------------------------------
# Import


class _Problems:
    """Collects every problem of one file, so a user fixes them in one pass."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{self.source}: {path}: {message}")


def _text(value: Any, path: str, problems: _Problems, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.add(path, "required field is missing" if value is None else f"expected text, got {value!r}")
        return None
    return value


def _unknown(raw: dict[str, Any], known: set[str], path: str, problems: _Problems) -> None:
    for key in raw:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            if key == "plugins":
                problems.add(where, "SLO plugins are not supported by sloscope's import")
            else:
                problems.add(where, f"unknown field; expected one of {', '.join(sorted(known))}")


def _labels(value: Any, path: str, problems: _Problems) -> dict[str, str]:
    """Prometheus labels: names in ``[a-zA-Z_][a-zA-Z0-9_]*``, scalar values (kept as text)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping of label name to value, got {type(value).__name__}")
        return {}
    labels: dict[str, str] = {}
    for key, item in value.items():
        name = str(key)
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            problems.add(
                f"{path}.{name}", "not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no '__' prefix)"
            )
        elif isinstance(item, dict | list) or item is None:
            problems.add(f"{path}.{name}", f"expected a text value, got {item!r}")
        else:
            labels[name] = item if isinstance(item, str) else json.dumps(item)
    return labels


def _annotations(value: Any, path: str, problems: _Problems) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping of annotation name to text, got {type(value).__name__}")
        return {}
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, dict | list) or item is None:
            problems.add(f"{path}.{key}", f"expected a text value, got {item!r}")
        else:
            out[str(key)] = item if isinstance(item, str) else json.dumps(item)
    return out


def _objective(value: Any, path: str, problems: _Problems) -> Decimal | None:
    """The objective in percent, exactly as written (99.9 stays 99.9, not 99.90000000000000568)."""
    if value is None:
        problems.add(path, "required field is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems.add(path, f"expected a percentage such as 99.9, got {value!r}")
        return None
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        problems.add(path, f"expected a percentage such as 99.9, got {value!r}")
        return None
    if not exact.is_finite() or not Decimal(0) < exact < Decimal(100):
        # 100 is a zero error budget: every burn rate is infinite, so no alert or budget makes sense.
        problems.add(path, f"must lie in (0, 100) percent, got {value!r}")
        return None
    return exact


def _query(value: Any, path: str, problems: _Problems) -> str | None:
    text = _text(value, path, problems)
    if text is not None and not WINDOW_PLACEHOLDER.search(text):
        problems.add(path, "the query must use the {{.window}} placeholder (Sloth renders it per window)")
        return None
    return text


def _sli(value: Any, path: str, problems: _Problems) -> dict[str, str] | None:
    """The queries as annotations, or None after reporting why not."""
    if not isinstance(value, dict):
        problems.add(path, "required field is missing" if value is None else "expected a mapping")
        return None
    kinds = [k for k in ("events", "raw", "plugin") if k in value]
    _unknown(value, {"events", "raw", "plugin"}, path, problems)
    if len(kinds) != 1:
        problems.add(path, "give exactly one of events, raw or plugin")
        return None
    kind = kinds[0]
    body = value[kind]
    if kind == "plugin":
        problems.add(f"{path}.plugin", "SLI plugins are not supported (their PromQL is generated by Go code)")
        return None
    if not isinstance(body, dict):
        problems.add(f"{path}.{kind}", "expected a mapping")
        return None
    if kind == "raw":
        _unknown(body, {"error_ratio_query"}, f"{path}.raw", problems)
        ratio = _query(body.get("error_ratio_query"), f"{path}.raw.error_ratio_query", problems)
        return None if ratio is None else {ERROR_RATIO_QUERY_ANNOTATION: ratio}
    _unknown(body, {"error_query", "total_query"}, f"{path}.events", problems)
    error = _query(body.get("error_query"), f"{path}.events.error_query", problems)
    total = _query(body.get("total_query"), f"{path}.events.total_query", problems)
    if error is None or total is None:
        return None
    return {ERROR_QUERY_ANNOTATION: error, TOTAL_QUERY_ANNOTATION: total}


def _alerting(value: Any, path: str, problems: _Problems) -> dict[str, Any] | None:
    """Sloth's alerting block, normalised (empty parts dropped) so export gives back what was meant."""
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.add(path, "expected a mapping")
        return None
    _unknown(value, _ALERTING_FIELDS, path, problems)
    out: dict[str, Any] = {}
    name = _text(value.get("name"), f"{path}.name", problems, required=False)
    if name is not None:
        out["name"] = name
    labels = _labels(value.get("labels"), f"{path}.labels", problems)
    if labels:
        out["labels"] = labels
    annotations = _annotations(value.get("annotations"), f"{path}.annotations", problems)
    if annotations:
        out["annotations"] = annotations
    for part in ("page_alert", "ticket_alert"):
        raw = value.get(part)
        if raw is None:
            continue
        where = f"{path}.{part}"
        if not isinstance(raw, dict):
            problems.add(where, "expected a mapping")
            continue
        _unknown(raw, _ALERT_FIELDS, where, problems)
        alert: dict[str, Any] = {}
        disable = raw.get("disable", False)
        if not isinstance(disable, bool):
            problems.add(f"{where}.disable", f"expected true or false, got {disable!r}")
        elif disable:
            alert["disable"] = True
        labels = _labels(raw.get("labels"), f"{where}.labels", problems)
        if labels:
            alert["labels"] = labels
        annotations = _annotations(raw.get("annotations"), f"{where}.annotations", problems)
        if annotations:
            alert["annotations"] = annotations
        if alert:
            out[part] = alert
    return out or None


def _slo_document(
    service: str, common_labels: dict[str, str], raw: Any, path: str, source: str, problems: _Problems
) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        problems.add(path, f"expected a mapping (one SLO), got {type(raw).__name__}")
        return None
    _unknown(raw, _SLO_FIELDS, path, problems)
    name = _text(raw.get("name"), f"{path}.name", problems)
    objective = _objective(raw.get("objective"), f"{path}.objective", problems)
    description = _text(raw.get("description"), f"{path}.description", problems, required=False)
    labels = {**common_labels, **_labels(raw.get("labels"), f"{path}.labels", problems)}
    queries = _sli(raw.get("sli"), f"{path}.sli", problems)
    alerting = _alerting(raw.get("alerting"), f"{path}.alerting", problems)
    if name is None or objective is None or queries is None:
        return None
    annotations: dict[str, str] = {
        IMPORTED_FROM_ANNOTATION: f"sloth {SLOTH_VERSION}",
        SLOTH_NAME_ANNOTATION: name,
    }
    annotations.update(queries)
    if alerting is not None:
        annotations[SLOTH_ALERTING_ANNOTATION] = json.dumps(alerting, sort_keys=True)
    metadata: dict[str, Any] = {"name": f"{service}-{name}"}
    if labels:
        metadata["labels"] = dict(sorted(labels.items()))
    metadata["annotations"] = annotations
    if ERROR_RATIO_QUERY_ANNOTATION in queries:
        ratio_metric: dict[str, Any] = {
            "counter": False,
            "rawType": "failure",
            "raw": {"metricSource": {"type": "sloscope", "spec": {"service": service}}},
        }
    else:
        ratio_metric = {
            "counter": True,
            "bad": {"metricSource": {"type": "sloscope", "spec": {"success": False}}},
            "total": {"metricSource": {"type": "sloscope", "spec": {"service": service}}},
        }
    spec: dict[str, Any] = {}
    if description is not None:
        spec["description"] = description
    spec.update(
        {
            "service": service,
            "indicator": {
                "metadata": {"name": f"{service}-{name}-sli"},
                "spec": {"ratioMetric": ratio_metric},
            },
            "timeWindow": [{"duration": SLOTH_WINDOW, "isRolling": True}],
            "budgetingMethod": "Occurrences",
            # float() of the exact quotient: YAML writes the shortest repr, 0.999, which spec.py reads back
            # exactly through str().
            "objectives": [{"displayName": f"{objective}% good", "target": float(objective.scaleb(-2))}],
        }
    )
    return {"apiVersion": "openslo/v1", "kind": "SLO", "metadata": metadata, "spec": spec}


def import_sloth(text: str, source: str) -> str:
    """OpenSLO v1 YAML (one SLO per Sloth SLO, named ``<service>-<slo>``) from a Sloth ``prometheus/v1`` file.

    Several YAML documents in one file are several Sloth specs. Raises :class:`SlothError` listing every
    problem; the output is checked with sloscope's own parser before it is returned, so it always loads.
    """
    try:
        # StrictLoader (a SafeLoader): a key given twice is an error, not "the last one wins".
        loaded = [d for d in yaml.load_all(text, Loader=StrictLoader) if d is not None]
    except DuplicateKeyError as exc:
        raise SlothError([f"{source}: {exc}"]) from exc
    except yaml.YAMLError as exc:
        raise SlothError([f"{source}: not valid YAML: {exc}"]) from exc
    problems = _Problems(source)
    if not loaded:
        problems.add("(document)", "no Sloth spec found")
    documents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for index, spec in enumerate(loaded):
        base = f"(document {index + 1})." if len(loaded) > 1 else ""
        if not isinstance(spec, dict):
            problems.add(base + "(document)", f"expected a mapping (a Sloth spec), got {type(spec).__name__}")
            continue
        _unknown(spec, _TOP_FIELDS, base.rstrip("."), problems)
        version = spec.get("version")
        if version != SLOTH_VERSION:
            problems.add(f"{base}version", f"expected {SLOTH_VERSION!r}, got {version!r}")
        service = _text(spec.get("service"), f"{base}service", problems)
        common = _labels(spec.get("labels"), f"{base}labels", problems)
        slos = spec.get("slos")
        if not isinstance(slos, list) or not slos:
            problems.add(f"{base}slos", "expected a non-empty list of SLOs")
            continue
        for i, raw in enumerate(slos):
            path = f"{base}slos[{i}]"
            document = _slo_document(service or "?", common, raw, path, source, problems)
            if document is None or service is None:
                continue
            name = document["metadata"]["name"]
            if name in names:
                problems.add(f"{path}.name", f"SLO {name!r} is already defined at {names[name]}")
                continue
            names[name] = path
            documents.append(document)
    if problems.items:
        raise SlothError(problems.items)
    out = dump_yaml(documents)
    _, parse_problems = parse_documents(out, f"{source} (as OpenSLO)")
    if parse_problems:  # a bug here, not in the user's file; still, say what sloscope refused
        raise SlothError(parse_problems)
    return out


# ---------------------------------------------------------------------------------------------------------
# Export


def _sloth_slo(slo: SloDefinition) -> tuple[dict[str, Any] | None, list[str]]:
    where = f"{slo.source_file}: SLO {slo.name!r}"
    problems = []
    queries = prometheus_queries(slo.document)
    if queries is None:
        problems.append(
            f"{where}: has no Prometheus queries "
            f"(annotation {ERROR_QUERY_ANNOTATION}, or a type: prometheus source)"
        )
    if queries is not None and queries.good_query is not None:
        problems.append(f"{where}: Sloth needs an error query; a good-events query cannot be exported")
    if not (isinstance(slo.window, RollingWindow) and str(slo.window.duration) == SLOTH_WINDOW):
        problems.append(
            f"{where}: Sloth specs are over a {SLOTH_WINDOW} rolling window, got {slo.window_text}"
        )
    if slo.budgeting_method != "Occurrences":
        problems.append(
            f"{where}: Sloth counts occurrences; budgetingMethod {slo.budgeting_method} cannot be exported"
        )
    if slo.composite is not None or len(slo.objectives) != 1:
        problems.append(f"{where}: Sloth SLOs have exactly one objective")
    if problems or queries is None:
        return None, problems
    metadata = slo.document.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    name = annotations.get(SLOTH_NAME_ANNOTATION) or slo.name.removeprefix(f"{slo.service}-")
    out: dict[str, Any] = {"name": name, "objective": float(slo.objectives[0].target.scaleb(2))}
    if slo.description is not None:
        out["description"] = slo.description
    if metadata.get("labels"):
        out["labels"] = {str(k): str(v) for k, v in metadata["labels"].items()}
    if queries.error_ratio_query is not None:
        out["sli"] = {"raw": {"error_ratio_query": queries.error_ratio_query}}
    else:
        out["sli"] = {"events": {"error_query": queries.error_query, "total_query": queries.total_query}}
    alerting = annotations.get(SLOTH_ALERTING_ANNOTATION)
    if alerting:
        try:
            out["alerting"] = json.loads(alerting)
        except json.JSONDecodeError as exc:
            return None, [f"{where}: annotation {SLOTH_ALERTING_ANNOTATION} is not JSON: {exc}"]
    return out, []


def sloth_specs(slos: Iterable[SloDefinition]) -> list[dict[str, Any]]:
    """Sloth ``prometheus/v1`` specs, one per service (sorted), from SLOs with Prometheus queries."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for slo in slos:
        exported, slo_problems = _sloth_slo(slo)
        problems.extend(slo_problems)
        if exported is not None:
            by_service.setdefault(slo.service, []).append(exported)
    if problems:
        raise SlothError(problems)
    return [
        {"version": SLOTH_VERSION, "service": service, "slos": by_service[service]}
        for service in sorted(by_service)
    ]


def export_sloth(text: str, source: str = "<openslo>") -> str:
    """Sloth YAML (a document per service) from OpenSLO YAML, after validating it with sloscope's parser.

    Raises :class:`SlothError` listing every invalid document and every SLO Sloth cannot express.
    """
    slos, problems = parse_documents(text, source)
    if problems:
        raise SlothError(problems)
    if not slos:
        raise SlothError([f"{source}: no SLO documents to export"])
    return dump_yaml(sloth_specs(slos))

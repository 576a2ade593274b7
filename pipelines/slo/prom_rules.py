"""Prometheus recording and multiwindow, multi-burn-rate alert rules from sloscope's SLO definitions.

For teams that want real-time alerting inside Prometheus rather than sloscope's batch evaluation. Only SLOs
whose indicator is PromQL (see :func:`pipelines.slo.sloth.prometheus_queries`; what :mod:`sloth` imports)
can be translated; :func:`skipped_slos` says which others were left out and why.

Per SLO, two groups:

* ``sloscope-sli-recordings-<slo>``: ``slo:sli_error:ratio_rate<w>`` for every window ``w`` the burn-rate
  catalog uses (the workbook's 5m, 30m, 1h, 6h, 3d; with four pairs also 2h and 1d), labelled
  ``sloscope_slo``, ``sloscope_service`` and the SLO's metadata labels (sanitised to Prometheus' charset).
* ``sloscope-alerts-<slo>``: one alert per catalog rule, firing while both windows burn at or above the
  rule's factor: ``ratio_rate<long> >= factor * (1 - target)`` and the same for the short window. The
  factor is :meth:`BurnRateRule.factor` for the SLO's period, exactly (30d: 14.4, 6, 1). ``>=`` matches
  sloscope's own replay and backtests (:mod:`pipelines.slo.alerting`), where a burn rate exactly at the
  factor fires; a window without traffic is 0/0 = NaN in PromQL and never fires, as in the replay.

Alert labels: ``severity`` (the catalog's ``page``/``ticket``, unless a Sloth ``alerting`` block sets one),
``sloscope_severity``, ``sloscope_long_window``/``sloscope_short_window``, plus the recording labels. Sloth
``page_alert``/``ticket_alert`` ``disable: true`` drops that severity's alerts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from pipelines.slo.alerting import BurnRateRule, workbook_rules
from pipelines.slo.sloth import SLOTH_ALERTING_ANNOTATION, PrometheusQueries, dump_yaml, prometheus_queries
from pipelines.slo.spec import SloDefinition
from pipelines.slo.windows import RollingWindow

RUNBOOK_ANNOTATION = "sloscope.io/runbook-url"  # the key pipelines.alert_workflow reads; kept Dagster-free
RECORD_PREFIX = "slo:sli_error:ratio_rate"
_SLOTH_PART = {"page": "page_alert", "ticket": "ticket_alert"}


class PromRulesError(ValueError):
    """No SLO could be translated; ``problems`` says why for each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def label_name(text: str) -> str:
    """A valid Prometheus label name: other characters become ``_``; no leading digit or ``__`` (reserved)."""
    name = re.sub(r"[^a-zA-Z0-9_]", "_", text)
    if not name or name[0].isdigit():
        name = "_" + name
    if name.startswith("__"):
        name = "l" + name
    return name


def alert_name(text: str) -> str:
    """CamelCase metric-name charset: ``payments-api availability`` -> ``PaymentsApiAvailability``."""
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^a-zA-Z0-9_:]+", text) if part)
    return name if name and not name[0].isdigit() else "Slo" + name


def promql_string(value: str) -> str:
    """A double-quoted PromQL string literal (Go escapes, which JSON's are a subset of)."""
    return json.dumps(value, ensure_ascii=False)


def _template_literal(text: str) -> str:
    # Prometheus runs annotations through Go templates: text of ours must not open an action.
    return text.replace("{{", '{{ "{{" }}')


def prom_duration(span: timedelta) -> str:
    """``timedelta(hours=1)`` -> ``1h``: the largest of d, h, m, s that divides the span."""
    seconds = int(span.total_seconds())
    if seconds <= 0 or span != timedelta(seconds=seconds):
        raise ValueError(f"a Prometheus window must be a positive whole number of seconds, got {span}")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable")


def _number(value: Fraction | Decimal) -> str:
    """An exact PromQL number: a terminating decimal as such, otherwise ``(n / d)``."""
    fraction = Fraction(value)
    denominator = fraction.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator != 1:
        return f"({fraction.numerator} / {fraction.denominator})"
    text = format(Decimal(fraction.numerator) / Decimal(fraction.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _why_skipped(slo: SloDefinition) -> str | None:
    if prometheus_queries(slo.document) is None:
        return "its indicator has no Prometheus queries"
    if not isinstance(slo.window, RollingWindow) or slo.window.duration.fixed() is None:
        return f"burn-rate factors need a fixed rolling period, got {slo.window_text}"
    if slo.budgeting_method != "Occurrences":
        return f"burn rates are ratios of events; budgetingMethod {slo.budgeting_method} is not supported"
    if slo.composite is not None or len(slo.objectives) != 1:
        return "only SLOs with a single objective are supported"
    return None


def skipped_slos(slos: Sequence[SloDefinition]) -> list[str]:
    """``<file>: SLO <name>: skipped: <why>`` for every SLO :func:`prometheus_rules` cannot translate."""
    notes = []
    for slo in slos:
        why = _why_skipped(slo)
        if why is not None:
            notes.append(f"{slo.source_file}: SLO {slo.name!r}: skipped: {why}")
    return notes


def _slo_labels(slo: SloDefinition) -> dict[str, str]:
    labels: dict[str, str] = {}
    for key, value in ((slo.document.get("metadata") or {}).get("labels") or {}).items():
        labels[label_name(str(key))] = value if isinstance(value, str) else json.dumps(value)
    # Ours last: a metadata label cannot redirect the selectors the alerts rely on.
    labels.update({"sloscope_service": slo.service, "sloscope_slo": slo.name})
    return labels


def _sloth_alerting(slo: SloDefinition) -> dict[str, Any]:
    annotations = (slo.document.get("metadata") or {}).get("annotations") or {}
    try:
        alerting = json.loads(annotations.get(SLOTH_ALERTING_ANNOTATION) or "{}")
    except json.JSONDecodeError:
        return {}
    return alerting if isinstance(alerting, dict) else {}


def _recording_group(slo: SloDefinition, queries: PrometheusQueries, windows: list[str]) -> dict[str, Any]:
    labels = _slo_labels(slo)
    return {
        "name": f"sloscope-sli-recordings-{slo.name}",
        "rules": [
            {
                "record": f"{RECORD_PREFIX}{window}",
                "expr": queries.error_ratio(window),
                "labels": dict(labels),
            }
            for window in windows
        ],
    }


def _alert_group(slo: SloDefinition, catalog: Sequence[BurnRateRule]) -> dict[str, Any]:
    period = slo.window.duration.fixed()  # type: ignore[union-attr]  # checked by _why_skipped
    assert period is not None
    target = slo.objectives[0].target
    budget = _number(Decimal(1) - target)
    labels = _slo_labels(slo)
    selector = (
        "{" + ", ".join(f"{k}={promql_string(labels[k])}" for k in ("sloscope_service", "sloscope_slo")) + "}"
    )
    sloth = _sloth_alerting(slo)
    name = alert_name(sloth.get("name") or f"{slo.name} error budget burn")
    runbook = ((slo.document.get("metadata") or {}).get("annotations") or {}).get(RUNBOOK_ANNOTATION)
    rules = []
    for rule in catalog:
        part = sloth.get(_SLOTH_PART.get(rule.severity, ""), {}) or {}
        if part.get("disable"):
            continue
        factor = rule.factor(period)
        long_w, short_w = prom_duration(rule.long_window), prom_duration(rule.short_window)
        threshold = f"({_number(factor)} * {budget})"
        expr = (
            f"({RECORD_PREFIX}{long_w}{selector} >= {threshold})\n"
            f"and\n"
            f"({RECORD_PREFIX}{short_w}{selector} >= {threshold})"
        )
        alert_labels = {
            # Prometheus expands templates in alert labels: names from config must stay literal.
            **{k: _template_literal(v) for k, v in labels.items()},
            "severity": rule.severity,
            **{label_name(k): str(v) for k, v in (sloth.get("labels") or {}).items()},
            **{label_name(k): str(v) for k, v in (part.get("labels") or {}).items()},
            "sloscope_severity": rule.severity,
            "sloscope_long_window": long_w,
            "sloscope_short_window": short_w,
        }
        share = format(
            Decimal(rule.budget_share.numerator) / Decimal(rule.budget_share.denominator) * 100, "f"
        )
        annotations = {
            "summary": _template_literal(
                f"{slo.display_name}: error budget burning {_number(factor)}x too fast "
                f"over {long_w} and {short_w}"
            ),
            "description": _template_literal(
                f"SLO {slo.name} (service {slo.service}, target {target} over {slo.window_text}) would spend "
                f"{share.rstrip('0').rstrip('.')}% of its error budget in {long_w} at this rate."
            ),
        }
        if runbook:
            annotations["runbook_url"] = _template_literal(str(runbook))
        # Sloth annotations are written as templates on purpose: kept as they are.
        annotations.update({str(k): str(v) for k, v in (sloth.get("annotations") or {}).items()})
        annotations.update({str(k): str(v) for k, v in (part.get("annotations") or {}).items()})
        rules.append({"alert": name, "expr": expr, "labels": alert_labels, "annotations": annotations})
    return {"name": f"sloscope-alerts-{slo.name}", "rules": rules}


def catalog_windows(catalog: Sequence[BurnRateRule]) -> list[str]:
    """Every long and short window of the catalog as Prometheus durations, shortest first."""
    spans = sorted({rule.long_window for rule in catalog} | {rule.short_window for rule in catalog})
    return [prom_duration(span) for span in spans]


def prometheus_rules(
    slos: Sequence[SloDefinition], *, catalog: Sequence[BurnRateRule] | None = None
) -> dict[str, Any]:
    """A Prometheus rule file (``{"groups": [...]}``) for every SLO with Prometheus queries.

    Others are left out (list them with :func:`skipped_slos`); if none is left, :class:`PromRulesError`
    says why for each, since an empty rule file would pass ``promtool`` and alert on nothing.
    """
    rules = list(catalog) if catalog is not None else workbook_rules()
    if not rules:
        raise PromRulesError(["the burn-rate catalog is empty: there would be nothing to alert on"])
    windows = catalog_windows(rules)
    groups: list[dict[str, Any]] = []
    for slo in slos:
        queries = prometheus_queries(slo.document)
        if _why_skipped(slo) is not None or queries is None:
            continue
        groups.append(_recording_group(slo, queries, windows))
        alerts = _alert_group(slo, rules)
        if alerts["rules"]:
            groups.append(alerts)
    if not groups:
        raise PromRulesError(skipped_slos(slos) or ["no SLOs given"])
    return {"groups": groups}


def rules_yaml(rules: dict[str, Any]) -> str:
    """The rule file as YAML (multi-line PromQL as ``|`` blocks), ready for ``promtool check rules``."""
    return dump_yaml([rules])

"""Sloth prometheus/v1 import and export: output loads with sloscope's parser and survives a round trip."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from pipelines.slo.sloth import (
    ERROR_QUERY_ANNOTATION,
    ERROR_RATIO_QUERY_ANNOTATION,
    TOTAL_QUERY_ANNOTATION,
    SlothError,
    export_sloth,
    import_sloth,
    prometheus_queries,
)
from pipelines.slo.spec import build_catalog, parse_documents

FIXTURE = Path(__file__).parent / "fixtures" / "sloth" / "myservice.yaml"


@pytest.fixture
def sloth_text() -> str:
    return FIXTURE.read_text(encoding="utf-8")


def test_import_loads_with_the_project_parser(sloth_text: str) -> None:
    out = import_sloth(sloth_text, "myservice.yaml")
    slos, problems = parse_documents(out, "imported.yaml")
    assert problems == []
    by_name = {s.name: s for s in slos}
    assert sorted(by_name) == ["myservice-requests-availability", "myservice-requests-latency"]
    availability = by_name["myservice-requests-availability"]
    assert availability.service == "myservice"
    assert availability.budgeting_method == "Occurrences"
    assert str(availability.window.duration) == "30d"  # type: ignore[union-attr]
    assert availability.description == "Common SLO based on availability for HTTP request responses."
    assert availability.document["metadata"]["labels"] == {
        "category": "availability",
        "owner": "myteam",
        "tier": "2",
    }
    assert by_name["myservice-requests-latency"].raw_type == "failure"


def test_target_is_the_exact_decimal(sloth_text: str) -> None:
    slos, _ = parse_documents(import_sloth(sloth_text, "s.yaml"), "s")
    targets = {s.name: s.objectives[0].target for s in slos}
    assert targets["myservice-requests-availability"] == Decimal("0.999")
    assert targets["myservice-requests-latency"] == Decimal("0.9995")
    raw = yaml.safe_load_all(import_sloth(sloth_text, "s.yaml"))
    assert [d["spec"]["objectives"][0]["target"] for d in raw] == [0.999, 0.9995]


def test_queries_keep_the_window_placeholder(sloth_text: str) -> None:
    slos, _ = parse_documents(import_sloth(sloth_text, "s.yaml"), "s")
    by_name = {s.name: s for s in slos}
    annotations = by_name["myservice-requests-availability"].document["metadata"]["annotations"]
    assert annotations[ERROR_QUERY_ANNOTATION] == (
        'sum(rate(http_requests_total{job="myservice",code=~"(5..|429)"}[{{.window}}]))'
    )
    assert (
        annotations[TOTAL_QUERY_ANNOTATION] == 'sum(rate(http_requests_total{job="myservice"}[{{.window}}]))'
    )
    latency = by_name["myservice-requests-latency"].document["metadata"]["annotations"]
    assert "[{{.window}}]" in latency[ERROR_RATIO_QUERY_ANNOTATION]
    queries = prometheus_queries(by_name["myservice-requests-availability"].document)
    assert queries is not None
    assert queries.error_ratio("5m") == (
        '(sum(rate(http_requests_total{job="myservice",code=~"(5..|429)"}[5m])))\n/\n'
        '(sum(rate(http_requests_total{job="myservice"}[5m])))'
    )


def test_prometheus_sources_are_read_too() -> None:
    """A future ``type: prometheus`` source with ``spec.query`` is understood without the annotations."""
    document = {
        "metadata": {"name": "x"},
        "spec": {
            "indicator": {
                "spec": {
                    "ratioMetric": {
                        "good": {
                            "metricSource": {"type": "prometheus", "spec": {"query": "ok[{{.window}}]"}}
                        },
                        "total": {
                            "metricSource": {"type": "prometheus", "spec": {"query": "all[{{.window}}]"}}
                        },
                    }
                }
            }
        },
    }
    queries = prometheus_queries(document)
    assert queries is not None
    assert queries.error_ratio("1h") == "1 - (\n(ok[1h])\n/\n(all[1h])\n)"


def test_every_problem_is_reported_at_once() -> None:
    broken = """
version: prometheus/v2
service: myservice
labels: {bad-label: x}
slos:
  - name: no-objective
    sli: {events: {error_query: 'sum(rate(e[{{.window}}]))', total_query: 'sum(rate(t[{{.window}}]))'}}
  - name: too-high
    objective: 100.5
    sli: {raw: {error_ratio_query: 'r[{{.window}}]'}}
  - name: no-queries
    objective: 99
    sli: {events: {}}
  - name: no-window
    objective: 99
    sli: {events: {error_query: 'sum(rate(e[5m]))', total_query: 'sum(rate(t[{{.window}}]))'}}
  - name: plugin
    objective: 99
    sli: {plugin: {id: sloth-common/availability}}
  - name: typo
    objectiv: 99
    objective: 99
    sli: {raw: {error_ratio_query: 'r[{{.window}}]'}}
"""
    with pytest.raises(SlothError) as caught:
        import_sloth(broken, "broken.yaml")
    assert caught.value.problems == [
        "broken.yaml: version: expected 'prometheus/v1', got 'prometheus/v2'",
        "broken.yaml: labels.bad-label: not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no '__' prefix)",
        "broken.yaml: slos[0].objective: required field is missing",
        "broken.yaml: slos[1].objective: must lie in (0, 100) percent, got 100.5",
        "broken.yaml: slos[2].sli.events.error_query: required field is missing",
        "broken.yaml: slos[2].sli.events.total_query: required field is missing",
        "broken.yaml: slos[3].sli.events.error_query: the query must use the {{.window}} placeholder "
        "(Sloth renders it per window)",
        "broken.yaml: slos[4].sli.plugin: SLI plugins are not supported "
        "(their PromQL is generated by Go code)",
        "broken.yaml: slos[5].objectiv: unknown field; expected one of alerting, description, labels, name, "
        "objective, sli",
    ]


def test_not_a_spec() -> None:
    with pytest.raises(SlothError) as caught:
        import_sloth("slos: [", "bad.yaml")
    assert caught.value.problems[0].startswith("bad.yaml: not valid YAML:")
    with pytest.raises(SlothError) as caught:
        import_sloth("service: s\n", "empty.yaml")
    assert caught.value.problems == [
        "empty.yaml: version: expected 'prometheus/v1', got None",
        "empty.yaml: slos: expected a non-empty list of SLOs",
    ]


def test_round_trip(sloth_text: str) -> None:
    imported = import_sloth(sloth_text, "myservice.yaml")
    exported = export_sloth(imported, "imported.yaml")
    spec = yaml.safe_load(exported)
    assert spec["version"] == "prometheus/v1"
    assert spec["service"] == "myservice"
    assert [s["objective"] for s in spec["slos"]] == [99.9, 99.95]
    assert spec["slos"][0]["alerting"]["name"] == "MyServiceHighErrorRate"
    assert spec["slos"][1]["alerting"]["page_alert"] == {"disable": True}
    assert import_sloth(exported, "exported.yaml") == imported
    # And the OpenSLO catalog it loads into is the same one.
    first, _ = build_catalog([(imported, "a")])
    second, _ = build_catalog([(import_sloth(exported, "b"), "a")])
    assert [s.document for s in first.slos] == [s.document for s in second.slos]


def test_export_refuses_slos_sloth_cannot_express() -> None:
    native = (Path(__file__).parents[1] / "data" / "slos" / "payments-api.yaml").read_text(encoding="utf-8")
    with pytest.raises(SlothError) as caught:
        export_sloth(native, "payments-api.yaml")
    first = caught.value.problems[0]
    assert first.startswith(
        "payments-api.yaml: SLO 'payments-authorize-error-rate': has no Prometheus queries"
    )
    assert any("Sloth specs are over a 30d rolling window, got 28d" in p for p in caught.value.problems)

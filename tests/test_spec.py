"""OpenSLO parsing and the declarative filter language."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.slo.filters import Bound, EventFilter, FilterError, compile_filter
from pipelines.slo.spec import (
    SpecError,
    export_yaml,
    load_catalog,
    load_slos,
    parse_documents,
    parse_rolling_duration,
)
from pipelines.slo.windows import CalendarWindow, Duration, RollingWindow
from tests.conftest import REPO_ROOT, write

ISSUE_EXAMPLE = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  displayName: Checkout availability
spec:
  service: checkout
  indicator:
    metadata:
      name: checkout-good-requests
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: sloscope
            spec: {service: checkout, status_code: {lt: 500}}
        total:
          metricSource:
            type: sloscope
            spec: {service: checkout}
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: 99.9% of requests succeed
      target: 0.999
"""


def test_the_issue_example_loads_as_is() -> None:
    slos, problems = parse_documents(ISSUE_EXAMPLE, "checkout.yaml")
    assert problems == []
    (slo,) = slos
    assert slo.name == "checkout-availability" and slo.service == "checkout"
    assert slo.window == RollingWindow(Duration(28, "d"))
    assert slo.objectives[0].target == Decimal("0.999")
    # lt 500 on integer status codes is "at most 499".
    assert slo.good == EventFilter(services=frozenset({"checkout"}), status_max=499)


def test_repository_slos_are_valid() -> None:
    slos = load_slos(REPO_ROOT / "data" / "slos")
    assert {s.name for s in slos} >= {"checkout-availability", "checkout-latency", "auth-availability"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("28d", timedelta(days=28)),
        ("2w", timedelta(days=14)),
    ],
)
def test_rolling_durations(text: str, expected: timedelta) -> None:
    assert parse_rolling_duration(text) == expected


@pytest.mark.parametrize("text", ["1M", "1Q", "1Y", "0d", "28", "d", "-1h", "1.5h"])
def test_rolling_durations_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rolling_duration(text)


def _broken(replace_from: str, replace_to: str) -> list[str]:
    slos, problems = parse_documents(ISSUE_EXAMPLE.replace(replace_from, replace_to), "bad.yaml")
    assert slos == []
    return problems


def test_errors_name_file_field_and_expectation() -> None:
    assert _broken("target: 0.999", "target: 1.5") == [
        "bad.yaml: spec.objectives[0]: target must lie in [0, 1) (targetPercent in [0, 100)), got 1.5"
    ]
    assert _broken("isRolling: true", "isRolling: true\n      calendar: {startTime: '2026-01-01'}") == [
        "bad.yaml: spec.timeWindow[0]: calendar is given with isRolling: true; a window is either rolling or "
        "calendar"
    ]
    (problem,) = _broken("status_code: {lt: 500}", "status_code: {lt: '500; DROP TABLE raw_events'}")
    assert problem.startswith(
        "bad.yaml: spec.indicator.spec.ratioMetric.good.metricSource.spec.status_code.lt: "
        "expected an HTTP status code"
    )
    (problem,) = _broken("status_code: {lt: 500}", "query: 'select 1'")
    assert "good.metricSource.spec.query: unknown field" in problem
    assert _broken("budgetingMethod: Occurrences", "budgetingMethods: Occurrences") == [
        "bad.yaml: spec.budgetingMethod: required field is missing",
        "bad.yaml: spec.budgetingMethods: unknown field",
    ]
    (problem,) = _broken(
        "type: sloscope\n            spec: {service: checkout}",
        "type: prometheus\n            spec: {service: checkout}",
    )
    assert "total.metricSource.type: metric source type 'prometheus' is not supported" in problem
    (problem,) = _broken("status_code: {lt: 500}", "latency_ms: {eq: 3}")
    assert "latency_ms.eq: operator not allowed for latency_ms" in problem


def test_folder_errors_are_collected_and_duplicates_named(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", ISSUE_EXAMPLE)
    write(tmp_path / "b.yaml", ISSUE_EXAMPLE)
    write(tmp_path / "c.yml", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\n")
    write(tmp_path / "d.yaml", "key: [unclosed")
    with pytest.raises(SpecError) as caught:
        load_slos(tmp_path)
    problems = caught.value.problems
    assert any(p.startswith(f"{tmp_path / 'c.yml'}: spec: required field is missing") for p in problems)
    assert any(p.startswith(f"{tmp_path / 'd.yaml'}: not valid YAML") for p in problems)
    assert any("SLO 'checkout-availability' is already defined in" in p for p in problems)


def test_filter_shorthand_and_operators() -> None:
    f = compile_filter(
        {
            "operation": ["pay", "refund"],
            "status_code": {"gte": 200, "lt": 400},
            "latency_ms": {"gt": 10, "lte": 250},
            "success": True,
        },
        default_services=frozenset({"shop"}),
    )
    assert f == EventFilter(
        services=frozenset({"shop"}),
        operations_in=frozenset({"pay", "refund"}),
        status_min=200,
        status_max=399,
        success=True,
        latency_upper=Bound(250.0, True),
        latency_lower=Bound(10.0, False),
    )


def test_filter_intersection() -> None:
    a = compile_filter(
        {"status_code": {"lt": 500}, "latency_ms": {"lte": 300}}, default_services=frozenset({"shop"})
    )
    b = compile_filter(
        {"status_code": {"gte": 200}, "latency_ms": {"lt": 300}, "success": True},
        default_services=frozenset({"shop"}),
    )
    both = a.intersect(b)
    assert (both.status_min, both.status_max) == (200, 499)
    assert both.latency_upper == Bound(300.0, False)  # lt 300 is tighter than lte 300
    contradiction = b.intersect(compile_filter({"success": False}, default_services=frozenset({"shop"})))
    assert contradiction.sql_params()["matches_nothing"] is True


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"service": {"ne": "x"}}, "spec.service.ne"),
        ({"status_code": 99}, "spec.status_code"),
        ({"status_code": {"in": []}}, "spec.status_code.in"),
        ({"success": "yes"}, "spec.success"),
        ({"latency_ms": {"lte": -1}}, "spec.latency_ms.lte"),
        ({"latency_ms": {"lte": float("nan")}}, "spec.latency_ms.lte"),
        ({"operation": {"like": "%"}}, "spec.operation.like"),
        ("status_code < 500", "spec"),
    ],
)
def test_filter_errors(spec: object, path: str) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(spec, default_services=frozenset({"shop"}))
    assert caught.value.path == path


def test_empty_latency_interval_matches_nothing() -> None:
    # total: latency < 300; bad: latency > 300 -> good = total minus (total AND bad); "total AND bad"
    # is empty, so it must count 0 events, not le(300) - le(300)... a negative number.
    below = compile_filter({"latency_ms": {"lt": 300}}, default_services=frozenset({"shop"}))
    above = compile_filter({"latency_ms": {"gt": 300}}, default_services=frozenset({"shop"}))
    assert below.intersect(above).sql_params()["matches_nothing"] is True
    exactly = compile_filter({"latency_ms": {"gte": 300, "lte": 300}}, default_services=frozenset({"shop"}))
    assert exactly.sql_params()["matches_nothing"] is False  # [300, 300] holds exactly 300 ms
    half_open = compile_filter({"latency_ms": {"gte": 300, "lt": 300}}, default_services=frozenset({"shop"}))
    assert half_open.sql_params()["matches_nothing"] is True


def test_good_and_bad_inherit_the_total_services() -> None:
    text = ISSUE_EXAMPLE.replace("spec: {service: checkout}", "spec: {service: [checkout, cart]}").replace(
        "spec: {service: checkout, status_code: {lt: 500}}", "spec: {status_code: {lt: 500}}"
    )
    (slo,), problems = parse_documents(text, "x.yaml")
    assert problems == []
    assert slo.total.services == slo.good.services == frozenset({"checkout", "cart"})


CATALOG = {
    "services.yaml": """
apiVersion: openslo/v1
kind: Service
metadata: {name: checkout}
spec: {description: Checkout flow}
---
apiVersion: openslo/v1
kind: DataSource
metadata: {name: warehouse}
spec: {type: sloscope, connectionDetails: {}}
""",
    "indicators.yaml": """
- apiVersion: openslo/v1
  kind: SLI
  metadata: {name: checkout-ok}
  spec:
    ratioMetric:
      good: {metricSource: {metricSourceRef: warehouse, spec: {status_code: {lt: 500}}}}
      total: {metricSource: {metricSourceRef: warehouse, spec: {service: checkout}}}
""",
    "alerts.yaml": """
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: fast-burn}
spec:
  severity: page
  condition: {kind: burnrate, op: gte, threshold: 14.4, lookbackWindow: 1h, alertAfter: 5m}
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata: {name: oncall}
spec: {target: pagerduty, description: primary on-call}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: page-fast-burn}
spec:
  alertWhenNoData: true
  conditions: [{conditionRef: fast-burn}]
  notificationTargets: [{targetRef: oncall}]
""",
    "slo.yaml": """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-monthly
  annotations: {sloscope.io/minimum-events: "100"}
spec:
  service: checkout
  indicatorRef: checkout-ok
  timeWindow:
    - duration: 1M
      calendar: {startTime: "2026-01-01 00:00:00", timeZone: Europe/Berlin}
  budgetingMethod: Timeslices
  objectives:
    - {displayName: good minutes, target: 0.99, timeSliceTarget: 0.95, timeSliceWindow: 1m}
  alertPolicies: [{alertPolicyRef: page-fast-burn}]
""",
}


def _catalog_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        write(tmp_path / "slos" / name, text)
    return tmp_path / "slos"


def test_references_resolve_across_files(tmp_path: Path) -> None:
    (slo,) = load_slos(_catalog_dir(tmp_path, CATALOG))
    assert slo.indicator_name == "checkout-ok"
    assert slo.window == CalendarWindow(Duration(1, "M"), datetime(2026, 1, 1), "Europe/Berlin")
    assert slo.budgeting_method == "Timeslices"
    assert (
        slo.objectives[0].time_slice_target == Decimal("0.95") and slo.objectives[0].time_slice_minutes == 1
    )
    assert slo.minimum_events == 100
    (policy,) = slo.alert_policies
    assert (policy.name, policy.alert_when_no_data, policy.targets) == ("page-fast-burn", True, ("oncall",))
    assert (policy.condition.severity, policy.condition.threshold, policy.condition.lookback_window) == (
        "page",
        14.4,
        "1h",
    )


def test_unresolved_references_are_named(tmp_path: Path) -> None:
    broken = dict(CATALOG)
    broken["slo.yaml"] = (
        CATALOG["slo.yaml"]
        .replace("indicatorRef: checkout-ok", "indicatorRef: nope")
        .replace("alertPolicyRef: page-fast-burn", "alertPolicyRef: missing")
    )
    with pytest.raises(SpecError) as caught:
        load_slos(_catalog_dir(tmp_path, broken))
    (problem,) = caught.value.problems
    assert problem.endswith("slo.yaml: spec.indicatorRef: no SLI named 'nope' (defined: checkout-ok)")
    broken["slo.yaml"] = CATALOG["slo.yaml"].replace("service: checkout", "service: cart")
    with pytest.raises(SpecError) as caught:
        load_slos(_catalog_dir(tmp_path / "b", broken))
    assert caught.value.problems[0].endswith("spec.service: no Service named 'cart' (defined: checkout)")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "timeSliceTarget: 0.95, timeSliceWindow: 1m",
            "timeSliceTarget: 0.95",
            "spec.objectives[0].timeSliceWindow: required with budgetingMethod Timeslices",
        ),
        (
            "timeSliceWindow: 1m",
            "timeSliceWindow: 7m",
            "spec.objectives[0].timeSliceWindow: with a calendar window the slice must divide one hour, "
            "got 7m",
        ),
        (
            'sloscope.io/minimum-events: "100"',
            'sloscope.io/minimum-events: "lots"',
            "metadata.annotations.sloscope.io/minimum-events: expected a whole number >= 1, got 'lots'",
        ),
        (
            "budgetingMethod: Timeslices",
            "budgetingMethod: Occurrences",
            "spec.objectives[0]: timeSliceTarget and timeSliceWindow apply to Timeslices budgeting only",
        ),
    ],
)
def test_timeslice_validation(tmp_path: Path, old: str, new: str, message: str) -> None:
    broken = dict(CATALOG)
    broken["slo.yaml"] = CATALOG["slo.yaml"].replace(old, new)
    with pytest.raises(SpecError) as caught:
        load_slos(_catalog_dir(tmp_path, broken))
    assert caught.value.problems[0].endswith(message)


def test_rolling_window_must_be_a_multiple_of_the_slice() -> None:
    text = ISSUE_EXAMPLE.replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices").replace(
        "target: 0.999", "target: 0.999\n      timeSliceTarget: 0.9\n      timeSliceWindow: 5h"
    )
    _, problems = parse_documents(text, "x.yaml")
    assert problems == ["x.yaml: spec.objectives[0].timeSliceWindow: 5h does not divide the 28d window"]


def test_export_round_trips(tmp_path: Path) -> None:
    catalog = load_catalog(_catalog_dir(tmp_path, CATALOG))
    exported = export_yaml(catalog)
    write(tmp_path / "again" / "all.yaml", exported)
    again = load_catalog(tmp_path / "again")
    assert export_yaml(again) == exported
    assert [replace(s, source_file="") for s in again.slos] == [
        replace(s, source_file="") for s in catalog.slos
    ]
    # One document per kind defined above (the nested "kind: burnrate" is indented).
    assert sorted(line for line in exported.splitlines() if line.startswith("kind:")) == sorted(
        f"kind: {k}"
        for k in (
            "SLO",
            "SLI",
            "Service",
            "DataSource",
            "AlertPolicy",
            "AlertCondition",
            "AlertNotificationTarget",
        )
    )

"""The alerting file: catalogs, assignments, routes, escalation, remediation, and precise errors."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from pipelines.slo.alert_config import (
    DEFAULT_ALERTING,
    AlertConfigError,
    load_alerting,
    parse_alerting,
    parse_duration,
)
from pipelines.slo.alerting import BurnRateRule

GOOD = """
defaults:
  {catalog: tight, resolve_after: 10m, cooldown: 1h, no_data_after: 0m, budget_states: {exhausted: page}}
catalogs:
  tight:
    - {severity: page, long_window: 1h, short_window: 5m, budget_share: 0.01}
assignments: {search-latency: workbook-4, batch: none}
routes:
  default: {page: [pager], ticket: [chat]}
  checkout: {page: [chat]}
escalation: {after: 20m, routes: {default: {page: [pager]}}}
remediation: {page: {channel: hook}}
channels:
  pager: {type: pagerduty, routing_key_env: PD_KEY}
  chat: {type: slack, webhook_url_env: SLACK_URL}
  hook: {type: webhook, url: "https://automation.example/restart", secret_env: HOOK_SECRET}
"""


def test_a_full_file_is_read() -> None:
    config = parse_alerting(GOOD, "alerting.yaml")
    assert config.catalogs["tight"] == (
        BurnRateRule("page", timedelta(hours=1), timedelta(minutes=5), Fraction(1, 100)),
    )
    # A 1% budget share over 1 hour of 30 days: factor 0.01 x 720 = 7.2.
    assert config.catalogs["tight"][0].factor(timedelta(days=30)) == Fraction(36, 5)
    assert (config.resolve_after, config.cooldown, config.no_data_after) == (
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(0),
    )
    assert config.escalation_after == timedelta(minutes=20)
    assert config.remediation["page"].dry_run is True  # dry run unless said otherwise
    # A service's routes replace the default for the severities they name, and only those.
    assert config.channels_for("checkout", "page", 1) == ("chat",)
    assert config.channels_for("checkout", "ticket", 1) == ("chat",)
    assert config.channels_for("search", "page", 1) == ("pager",)
    assert config.channels_for("search", "info", 1) == ()
    assert config.channels_for("search", "page", 2) == ("pager",)


def test_catalog_choice_per_slo() -> None:
    config = parse_alerting(GOOD, "alerting.yaml")
    assert len(config.rules_for("search-latency", has_alert_policies=False)) == 4
    assert config.rules_for("batch", has_alert_policies=False) == ()
    assert config.rules_for("other", has_alert_policies=False) == config.catalogs["tight"]
    # OpenSLO alert policies replace the default catalog unless one is assigned explicitly.
    assert config.rules_for("other", has_alert_policies=True) == ()
    assert len(config.rules_for("search-latency", has_alert_policies=True)) == 4


def test_defaults_without_a_file(tmp_path: Path) -> None:
    assert load_alerting(None) is DEFAULT_ALERTING
    assert load_alerting(tmp_path / "missing.yaml") is DEFAULT_ALERTING
    rules = DEFAULT_ALERTING.rules_for("anything", has_alert_policies=False)
    assert [float(r.factor(timedelta(days=30))) for r in rules] == [14.4, 6.0, 1.0]
    assert DEFAULT_ALERTING.channels == {} and DEFAULT_ALERTING.no_data_after == timedelta(minutes=60)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("defaults: {catalog: nope}", "alerting.yaml: defaults.catalog: unknown catalog 'nope'"),
        ("assignments: {a: nope}", "alerting.yaml: assignments.a: unknown catalog 'nope'"),
        ("routes: {default: {page: [ghost]}}", "alerting.yaml: routes.default.page: unknown channel 'ghost'"),
        (
            "routes: {default: {urgent: []}}",
            "alerting.yaml: routes.default.urgent: expected one of page, ticket, info",
        ),
        (
            "defaults: {cooldown: 30 minutes}",
            "alerting.yaml: defaults.cooldown: expected a duration such as 5m",
        ),
        (
            "catalogs: {workbook: [{severity: page, long_window: 1h, short_window: 5m, budget_share: 0.02}]}",
            "alerting.yaml: catalogs.workbook: 'workbook' is a built-in catalog",
        ),
        (
            "catalogs: {c: [{severity: page, long_window: 5m, short_window: 1h, budget_share: 0.02}]}",
            "alerting.yaml: catalogs.c[0]: short_window must be positive and not longer than long_window",
        ),
        (
            "catalogs: {c: [{severity: page, long_window: 1h, short_window: 5m, budget_share: 2}]}",
            "alerting.yaml: catalogs.c.0.budget_share",
        ),
        (
            "remediation: {page: {channel: chat}}\nchannels: {chat: {type: slack, webhook_url_env: S}}",
            "remediation.page.channel: 'chat' is a slack channel; remediation calls a webhook channel",
        ),
        ("escalation: {after: 0m}", "alerting.yaml: escalation.after: must be longer than 0m"),
        ("routez: {}", "alerting.yaml: routez: unknown field"),
        ("defaults: {catalog: a}\ndefaults: {catalog: b}", "key 'defaults' is given twice"),
        ("- a list", "expected a mapping, got list"),
    ],
)
def test_every_problem_is_reported_with_its_place(text: str, problem: str) -> None:
    with pytest.raises(AlertConfigError) as caught:
        parse_alerting(text, "alerting.yaml")
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_durations() -> None:
    assert parse_duration("0m") == timedelta(0)
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("3d") == timedelta(days=3)
    for bad in ("1w", "5", "-5m", "1.5h", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_shipped_files_are_valid() -> None:
    repo = Path(__file__).resolve().parent.parent
    shipped = load_alerting(repo / "data" / "alerting.yaml")
    assert shipped.assignments  # the demo's configuration
    example = load_alerting(repo / "data" / "alerting.example.yaml")
    assert {c.type for c in example.channels.values()} == {
        "slack",
        "pagerduty",
        "webhook",
        "email",
        "sms",
        "alertmanager",
    }


def test_known_incidents_file_matches_the_demo() -> None:
    from datetime import timedelta as td

    from pipelines.alert_workflow import read_known_incidents
    from pipelines.slo.demo import DEMO_END, _plan_incidents

    repo = Path(__file__).resolve().parent.parent
    config = load_alerting(repo / "data" / "alerting.yaml")
    assert config.known_incidents == repo / "data" / "known_incidents.csv"
    known = [(k.service, k.start, k.end) for k in read_known_incidents(config.known_incidents)]
    planned = [
        (i.service, i.start.replace(tzinfo=None), i.end.replace(tzinfo=None))
        for i in _plan_incidents(DEMO_END - td(days=90), DEMO_END, 90)
    ]
    assert known == planned

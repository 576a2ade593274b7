"""The incident engine: dedup, grouping per service, lifecycle, cooldown, escalation (pure, no warehouse)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pipelines.slo.incidents import (
    EngineState,
    IncidentError,
    Observation,
    StepResult,
    acknowledge,
    dedup_key,
    resolve,
    step,
)

T0 = datetime(2026, 10, 1, 12, 0)
COOLDOWN = timedelta(minutes=30)
ESCALATE = timedelta(minutes=15)


def obs(slo: str, severity: str, active: bool, service: str = "checkout", **extra: object) -> Observation:
    return Observation(
        dedup_key=dedup_key(slo, "burn_rate", severity),
        slo=slo,
        slo_display_name=slo.title(),
        service=service,
        objective="99.9%",
        kind="burn_rate",
        severity=severity,
        active=active,
        started_at=T0 - timedelta(minutes=3) if active else None,
        title=f"{slo} burning ({severity})",
        **extra,  # type: ignore[arg-type]
    )


class Engine:
    """Carries state from step to step the way the warehouse does between evaluations."""

    def __init__(self, level2: bool = True) -> None:
        self.state = EngineState([], [])
        self.level2 = level2

    def apply(self, result: StepResult) -> StepResult:
        alerts = {a.alert_id: a for a in self.state.alerts} | {a.alert_id: a for a in result.alerts}
        incidents = {i.incident_id: i for i in self.state.incidents} | {
            i.incident_id: i for i in result.incidents
        }
        self.state = EngineState(
            [a for a in alerts.values() if a.state == "firing"],
            list(incidents.values()),
            max([*alerts, 0]) + 1,
            max([*incidents, 0]) + 1,
        )
        return result

    def step(self, observations: list[Observation], now: datetime) -> StepResult:
        return self.apply(
            step(
                self.state,
                observations,
                now,
                cooldown=COOLDOWN,
                escalation_after=ESCALATE,
                escalates=lambda service, severity: self.level2 and severity == "page",
            )
        )

    def incident(self, incident_id: int):  # type: ignore[no-untyped-def]
        return next(i for i in self.state.incidents if i.incident_id == incident_id)


def events(result: StepResult) -> list[tuple[int, str]]:
    return [(e.incident_id, e.event) for e in result.events]


def intents(result: StepResult) -> list[tuple[str, str, int]]:
    return [(i.alert.slo, i.action, i.level) for i in result.intents]


def test_an_alert_opens_an_incident_once_and_repeats_are_deduplicated() -> None:
    engine = Engine()
    first = engine.step([obs("cart", "page", True)], T0)
    assert events(first) == [(1, "opened"), (1, "alert_fired")]
    assert intents(first) == [("cart", "trigger", 1)]
    alert = first.alerts[0]
    assert (alert.alert_id, alert.incident_id, alert.state, alert.started_at) == (
        1,
        1,
        "firing",
        T0 - timedelta(minutes=3),
    )
    again = engine.step([obs("cart", "page", True)], T0 + timedelta(minutes=1))
    assert events(again) == [] and intents(again) == []
    assert again.alerts[0].last_seen_at == T0 + timedelta(minutes=1)


def test_alerts_of_one_service_share_an_incident_and_its_severity_rises() -> None:
    engine = Engine()
    engine.step([obs("cart", "ticket", True)], T0)
    second = engine.step(
        [
            obs("cart", "ticket", True),
            obs("orders", "page", True),
            obs("search", "ticket", True, service="search"),
        ],
        T0 + timedelta(minutes=1),
    )
    assert events(second) == [(1, "severity_raised"), (1, "alert_fired"), (2, "opened"), (2, "alert_fired")]
    assert engine.incident(1).severity == "page"
    # cart's record changed too (seen again); the two new alerts joined incidents 1 and 2.
    assert {(a.slo, a.alert_id, a.incident_id) for a in second.alerts} == {
        ("cart", 1, 1),
        ("orders", 2, 1),
        ("search", 3, 2),
    }


def test_the_incident_resolves_when_its_last_alert_clears() -> None:
    engine = Engine()
    engine.step([obs("cart", "page", True), obs("orders", "ticket", True)], T0)
    one_clears = engine.step(
        [obs("cart", "page", False), obs("orders", "ticket", True)], T0 + timedelta(minutes=5)
    )
    assert events(one_clears) == [(1, "alert_resolved")]
    assert intents(one_clears) == [("cart", "resolve", 1)]
    assert engine.incident(1).state == "open"
    all_clear = engine.step(
        [obs("cart", "page", False), obs("orders", "ticket", False)], T0 + timedelta(minutes=6)
    )
    assert events(all_clear) == [(1, "alert_resolved"), (1, "resolved")]
    incident = engine.incident(1)
    assert (incident.state, incident.resolved_at, incident.resolved_by) == (
        "resolved",
        T0 + timedelta(minutes=6),
        "sloscope",
    )


def test_firing_again_within_the_cooldown_reopens_after_it_opens_anew() -> None:
    engine = Engine()
    engine.step([obs("cart", "page", True)], T0)
    engine.step([obs("cart", "page", False)], T0 + timedelta(minutes=5))
    # 30 minutes after the resolution is still within the cooldown (inclusive).
    again = engine.step([obs("cart", "page", True)], T0 + timedelta(minutes=35))
    assert events(again) == [(1, "reopened"), (1, "alert_fired")]
    assert again.alerts[0].alert_id == 2 and again.alerts[0].incident_id == 1
    assert intents(again) == [("cart", "trigger", 1)]
    engine.step([obs("cart", "page", False)], T0 + timedelta(minutes=40))
    later = engine.step([obs("cart", "page", True)], T0 + timedelta(minutes=71))
    assert events(later) == [(2, "opened"), (2, "alert_fired")]


def test_unacknowledged_page_escalates_once_and_resolve_reaches_both_levels() -> None:
    engine = Engine()
    engine.step([obs("cart", "page", True)], T0)
    assert intents(engine.step([obs("cart", "page", True)], T0 + timedelta(minutes=14))) == []
    escalated = engine.step([obs("cart", "page", True)], T0 + timedelta(minutes=15))
    assert events(escalated) == [(1, "escalated")]
    assert intents(escalated) == [("cart", "trigger", 2)]
    assert engine.incident(1).escalation_level == 2
    assert events(engine.step([obs("cart", "page", True)], T0 + timedelta(minutes=30))) == []
    # An alert joining an escalated incident goes to both levels at once.
    joined = engine.step([obs("cart", "page", True), obs("orders", "page", True)], T0 + timedelta(minutes=31))
    assert intents(joined) == [("orders", "trigger", 1), ("orders", "trigger", 2)]
    cleared = engine.step(
        [obs("cart", "page", False), obs("orders", "page", False)], T0 + timedelta(minutes=40)
    )
    assert sorted(intents(cleared)) == [
        ("cart", "resolve", 1),
        ("cart", "resolve", 2),
        ("orders", "resolve", 1),
        ("orders", "resolve", 2),
    ]


def test_acknowledged_incidents_do_not_escalate() -> None:
    engine = Engine()
    engine.step([obs("cart", "page", True)], T0)
    acked = engine.apply(acknowledge(engine.state, 1, T0 + timedelta(minutes=2), "alice", "looking"))
    assert [(e.event, e.actor, e.detail) for e in acked.events] == [("acknowledged", "alice", "looking")]
    later = engine.step([obs("cart", "page", True)], T0 + timedelta(minutes=60))
    assert events(later) == [] and intents(later) == []
    with pytest.raises(IncidentError, match="acknowledged"):
        acknowledge(engine.state, 1, T0 + timedelta(minutes=61), "bob")


def test_no_escalation_without_a_level_two_route() -> None:
    engine = Engine(level2=False)
    engine.step([obs("cart", "page", True)], T0)
    assert events(engine.step([obs("cart", "page", True)], T0 + timedelta(hours=2))) == []


def test_resolving_by_hand_resolves_firing_alerts_and_tells_receivers() -> None:
    engine = Engine()
    engine.step([obs("cart", "page", True)], T0)
    done = engine.apply(resolve(engine.state, 1, T0 + timedelta(minutes=3), "alice", "fixed the deploy"))
    assert [(e.event, e.actor) for e in done.events] == [("alert_resolved", "alice"), ("resolved", "alice")]
    assert intents(done) == [("cart", "resolve", 1)]
    assert done.alerts[0].resolved_by == "alice"
    with pytest.raises(IncidentError, match="already resolved"):
        resolve(engine.state, 1, T0 + timedelta(minutes=4), "bob")


def test_an_alert_nobody_observes_any_more_resolves() -> None:
    engine = Engine()
    engine.step([obs("cart", "page", True)], T0)
    gone = engine.step([], T0 + timedelta(minutes=1))
    assert next((e.event, e.detail) for e in gone.events) == (
        "alert_resolved",
        "no longer evaluated (its SLO or rule was removed)",
    )
    assert events(gone)[-1] == (1, "resolved")


def test_openslo_flags_suppress_trigger_or_resolve_notifications() -> None:
    engine = Engine()
    quiet = engine.step([obs("cart", "page", True, notify_trigger=False)], T0)
    assert intents(quiet) == [] and events(quiet) == [(1, "opened"), (1, "alert_fired")]
    assert (
        intents(engine.step([obs("cart", "page", False, notify_trigger=False)], T0 + timedelta(minutes=1)))
        == []
    )
    engine2 = Engine()
    engine2.step([obs("cart", "page", True, notify_resolve=False)], T0)
    assert (
        intents(engine2.step([obs("cart", "page", False, notify_resolve=False)], T0 + timedelta(minutes=1)))
        == []
    )


def test_two_observations_with_one_dedup_key_are_refused() -> None:
    with pytest.raises(ValueError, match="dedup key"):
        Engine().step([obs("cart", "page", True), obs("cart", "page", True)], T0)


def test_a_page_joining_a_ticket_incident_gets_the_full_delay_and_level_two_hears_only_pages() -> None:
    engine = Engine()
    engine.step([obs("cart", "ticket", True)], T0)
    joined = engine.step(
        [obs("cart", "ticket", True), obs("orders", "page", True)], T0 + timedelta(minutes=60)
    )
    assert events(joined) == [(1, "severity_raised"), (1, "alert_fired")]
    assert intents(joined) == [("orders", "trigger", 1)]
    both = [obs("cart", "ticket", True), obs("orders", "page", True)]
    assert events(engine.step(both, T0 + timedelta(minutes=74))) == []
    escalated = engine.step(both, T0 + timedelta(minutes=75))
    assert events(escalated) == [(1, "escalated")]
    assert intents(escalated) == [("orders", "trigger", 2)]

"""Alerts into incidents: deduplication, grouping, lifecycle and escalation, as a pure state machine.

Each evaluation hands :func:`step` one :class:`Observation` per alert it watches (active or not). An alert
is identified by its *dedup key*, one per SLO, kind and severity (``sloscope/<slo>/<kind>/<severity>``),
so an alert that keeps firing across evaluations stays one :class:`AlertRecord`; it becomes a new record
only after it resolved. Alerts of one service share one open incident. The lifecycle:

* an alert fires and its service has an open or acknowledged incident: it joins it (the incident's
  severity rises to the alert's if higher); otherwise, when the service's last incident resolved less than
  ``cooldown`` ago, that incident is *reopened*; otherwise a new incident opens;
* an alert resolves when its observation is no longer active (hysteresis is applied upstream, see
  :func:`pipelines.slo.alerting.with_hysteresis`), or when nothing observes it any more (its SLO or rule
  was removed); an incident whose alerts have all resolved is resolved by sloscope;
* an open (unacknowledged) incident older than ``escalation_after`` escalates once to level 2;
* people acknowledge and resolve incidents (:func:`acknowledge`, :func:`resolve`); resolving by hand
  resolves its firing alerts too.

Every change appends an :class:`IncidentEvent`; the history is never rewritten. Notifications come out as
:class:`Intent` (which alert, trigger or resolve, which escalation level); routing them to channels is
the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

SEVERITY_RANK = {"info": 0, "ticket": 1, "page": 2}
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
FIRING = "firing"
SLOSCOPE = "sloscope"


class IncidentError(ValueError):
    """A lifecycle request that cannot be carried out (unknown incident, already resolved, ...)."""


def dedup_key(slo: str, kind: str, severity: str) -> str:
    return f"sloscope/{slo}/{kind}/{severity}"


@dataclass(frozen=True)
class Observation:
    """One alert's state as of an evaluation."""

    dedup_key: str
    slo: str
    slo_display_name: str
    service: str
    objective: str
    kind: str  # burn_rate | budget | no_data
    severity: str
    active: bool
    started_at: datetime | None = None  # when the current activity began, from the data
    title: str = ""
    description: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    runbook_url: str | None = None
    notify_trigger: bool = True  # OpenSLO alertWhenBreaching
    notify_resolve: bool = True  # OpenSLO alertWhenResolved


@dataclass(frozen=True)
class AlertRecord:
    alert_id: int
    dedup_key: str
    slo: str
    slo_display_name: str
    service: str
    objective: str
    kind: str
    severity: str
    incident_id: int
    state: str  # firing | resolved
    started_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    title: str = ""
    description: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    runbook_url: str | None = None
    notify_trigger: bool = True
    notify_resolve: bool = True
    notified_level: int = 0  # highest escalation level a trigger went to (0: none)


@dataclass(frozen=True)
class IncidentRecord:
    incident_id: int
    service: str
    severity: str
    state: str  # open | acknowledged | resolved
    title: str
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    escalation_level: int = 1
    escalated_at: datetime | None = None
    # When the incident reached its current severity: escalation waits from here, so a page joining an
    # hour-old ticket incident still gives people the full delay to acknowledge it.
    severity_since: datetime | None = None


@dataclass(frozen=True)
class IncidentEvent:
    incident_id: int
    at: datetime
    event: str  # opened | reopened | alert_fired | alert_resolved | severity_raised | escalated | ...
    actor: str
    alert_id: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Intent:
    """A notification to route: ``action`` for the alert, to the channels of ``level``."""

    alert: AlertRecord
    incident: IncidentRecord
    action: str  # trigger | resolve
    level: int


@dataclass
class EngineState:
    """What the engine remembers: firing alerts, and incidents not resolved or resolved recently enough
    to be reopened. Ids continue from ``next_alert_id`` / ``next_incident_id``."""

    alerts: list[AlertRecord]
    incidents: list[IncidentRecord]
    next_alert_id: int = 1
    next_incident_id: int = 1


@dataclass
class StepResult:
    alerts: list[AlertRecord] = field(default_factory=list)  # new or changed, final versions
    incidents: list[IncidentRecord] = field(default_factory=list)
    events: list[IncidentEvent] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)


def _higher(a: str, b: str) -> str:
    return a if SEVERITY_RANK.get(a, -1) >= SEVERITY_RANK.get(b, -1) else b


class _Step:
    def __init__(self, state: EngineState, now: datetime, actor: str) -> None:
        self.now = now
        self.actor = actor
        self.alerts = {a.alert_id: a for a in state.alerts}
        self.incidents = {i.incident_id: i for i in state.incidents}
        self.next_alert_id = state.next_alert_id
        self.next_incident_id = state.next_incident_id
        self.changed_alerts: set[int] = set()
        self.changed_incidents: set[int] = set()
        self.result = StepResult()

    def event(self, incident_id: int, event: str, alert_id: int | None = None, detail: str = "") -> None:
        self.result.events.append(IncidentEvent(incident_id, self.now, event, self.actor, alert_id, detail))

    def put_alert(self, alert: AlertRecord) -> None:
        self.alerts[alert.alert_id] = alert
        self.changed_alerts.add(alert.alert_id)

    def put_incident(self, incident: IncidentRecord) -> None:
        self.incidents[incident.incident_id] = replace(incident, updated_at=self.now)
        self.changed_incidents.add(incident.incident_id)

    def incident_for(self, service: str, severity: str, title: str) -> IncidentRecord:
        live = [i for i in self.incidents.values() if i.service == service and i.state != RESOLVED]
        if live:
            incident = min(live, key=lambda i: i.incident_id)
            if SEVERITY_RANK.get(severity, -1) > SEVERITY_RANK.get(incident.severity, -1):
                self.put_incident(replace(incident, severity=severity, title=title, severity_since=self.now))
                self.event(
                    incident.incident_id, "severity_raised", detail=f"{incident.severity} -> {severity}"
                )
            return self.incidents[incident.incident_id]
        recent = [
            i
            for i in self.incidents.values()
            if i.service == service and i.state == RESOLVED and i.resolved_at is not None
        ]
        if recent:
            last = max(recent, key=lambda i: (i.resolved_at, i.incident_id))
            reopened = replace(
                last,
                state=OPEN,
                severity=_higher(last.severity, severity),
                resolved_at=None,
                resolved_by=None,
                acknowledged_at=None,
                acknowledged_by=None,
                escalation_level=1,
                escalated_at=None,
                severity_since=self.now,
            )
            self.put_incident(reopened)
            self.event(last.incident_id, "reopened", detail=f"within the cooldown after {last.resolved_at}")
            return self.incidents[last.incident_id]
        incident = IncidentRecord(
            incident_id=self.next_incident_id,
            service=service,
            severity=severity,
            state=OPEN,
            title=title,
            opened_at=self.now,
            updated_at=self.now,
            severity_since=self.now,
        )
        self.next_incident_id += 1
        self.put_incident(incident)
        self.event(incident.incident_id, "opened", detail=title)
        return incident

    def resolve_alert(self, alert: AlertRecord, by: str, reason: str) -> None:
        resolved = replace(alert, state=RESOLVED, resolved_at=self.now, resolved_by=by, last_seen_at=self.now)
        self.put_alert(resolved)
        self.event(alert.incident_id, "alert_resolved", alert.alert_id, reason)
        if resolved.notify_resolve and resolved.notified_level > 0:
            incident = self.incidents[alert.incident_id]
            for level in range(1, resolved.notified_level + 1):
                self.result.intents.append(Intent(resolved, incident, "resolve", level))

    def finish(self) -> StepResult:
        self.result.alerts = [self.alerts[i] for i in sorted(self.changed_alerts)]
        self.result.incidents = [self.incidents[i] for i in sorted(self.changed_incidents)]
        # Intents carry the incident as it ended the step (a severity raised later in the step shows).
        self.result.intents = [
            replace(
                intent,
                incident=self.incidents[intent.incident.incident_id],
                alert=self.alerts[intent.alert.alert_id],
            )
            for intent in self.result.intents
        ]
        return self.result


def step(
    state: EngineState,
    observations: list[Observation],
    now: datetime,
    *,
    cooldown: timedelta,
    escalation_after: timedelta,
    escalates: Callable[[str, str], bool],
) -> StepResult:
    """Advance alerts and incidents to ``now``. ``escalates(service, severity)`` says whether level 2 has
    any channel for them (an incident escalates only if someone is there to be told)."""
    run = _Step(state, now, SLOSCOPE)
    # Incidents resolved longer ago than the cooldown cannot be reopened: forget them for this step.
    for incident in list(run.incidents.values()):
        if incident.state == RESOLVED and (
            incident.resolved_at is None or now - incident.resolved_at > cooldown
        ):
            del run.incidents[incident.incident_id]
    firing_by_key = {a.dedup_key: a for a in run.alerts.values() if a.state == FIRING}
    seen: set[str] = set()

    # Most severe first, so an incident opened by this step starts at its highest severity.
    ordered = sorted(observations, key=lambda o: (-SEVERITY_RANK.get(o.severity, -1), o.dedup_key))
    for obs in ordered:
        if obs.dedup_key in seen:
            raise ValueError(f"two observations share the dedup key {obs.dedup_key!r}")
        seen.add(obs.dedup_key)
        current = firing_by_key.get(obs.dedup_key)
        if obs.active and current is None:
            incident = run.incident_for(obs.service, obs.severity, obs.title)
            alert = AlertRecord(
                alert_id=run.next_alert_id,
                dedup_key=obs.dedup_key,
                slo=obs.slo,
                slo_display_name=obs.slo_display_name,
                service=obs.service,
                objective=obs.objective,
                kind=obs.kind,
                severity=obs.severity,
                incident_id=incident.incident_id,
                state=FIRING,
                started_at=min(obs.started_at or now, now),
                last_seen_at=now,
                title=obs.title,
                description=obs.description,
                facts=obs.facts,
                details=obs.details,
                runbook_url=obs.runbook_url,
                notify_trigger=obs.notify_trigger,
                notify_resolve=obs.notify_resolve,
                notified_level=1 if obs.notify_trigger else 0,
            )
            run.next_alert_id += 1
            run.put_alert(alert)
            run.event(incident.incident_id, "alert_fired", alert.alert_id, obs.title)
            if obs.notify_trigger:
                levels = [1]
                if (
                    incident.state == OPEN
                    and incident.escalation_level >= 2
                    and escalates(obs.service, obs.severity)
                ):
                    levels.append(2)
                for level in levels:
                    run.result.intents.append(Intent(alert, incident, "trigger", level))
                run.put_alert(replace(alert, notified_level=max(levels)))
        elif obs.active and current is not None:
            run.put_alert(
                replace(
                    current,
                    last_seen_at=now,
                    title=obs.title,
                    description=obs.description,
                    facts=obs.facts,
                    details=obs.details,
                    runbook_url=obs.runbook_url,
                )
            )
        elif not obs.active and current is not None:
            run.resolve_alert(current, SLOSCOPE, "the condition cleared")

    for key, alert in firing_by_key.items():
        if key not in seen:
            run.resolve_alert(alert, SLOSCOPE, "no longer evaluated (its SLO or rule was removed)")

    _close_and_escalate(run, escalation_after, escalates)
    return run.finish()


def _close_and_escalate(
    run: _Step, escalation_after: timedelta, escalates: Callable[[str, str], bool]
) -> None:
    firing = [a for a in run.alerts.values() if a.state == FIRING]
    for incident in list(run.incidents.values()):
        if incident.state == RESOLVED:
            continue
        mine = [a for a in firing if a.incident_id == incident.incident_id]
        if not mine:
            run.put_incident(replace(incident, state=RESOLVED, resolved_at=run.now, resolved_by=SLOSCOPE))
            run.event(incident.incident_id, "resolved", detail="every alert of the incident resolved")
            continue
        since = incident.severity_since or incident.opened_at
        due = run.now - since >= escalation_after
        if (
            incident.state == OPEN
            and incident.escalation_level < 2
            and due
            and escalates(incident.service, incident.severity)
        ):
            escalated = replace(incident, escalation_level=2, escalated_at=run.now)
            run.put_incident(escalated)
            run.event(incident.incident_id, "escalated", detail=f"unacknowledged for {run.now - since}")
            # Level 2 hears only of the alerts its routes cover (a page's manager, not every ticket).
            for alert in mine:
                if alert.notify_trigger and escalates(alert.service, alert.severity):
                    run.result.intents.append(Intent(alert, escalated, "trigger", 2))
                    run.put_alert(replace(alert, notified_level=2))


def acknowledge(
    state: EngineState, incident_id: int, now: datetime, actor: str, note: str = ""
) -> StepResult:
    """Acknowledge an open incident: escalation stops; alerts keep firing until they clear."""
    run = _Step(state, now, actor)
    incident = run.incidents.get(incident_id)
    if incident is None:
        raise IncidentError(f"incident {incident_id} does not exist or is already closed")
    if incident.state != OPEN:
        raise IncidentError(
            f"incident {incident_id} is {incident.state}; only an open incident can be acknowledged"
        )
    run.put_incident(replace(incident, state=ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor))
    run.event(incident_id, "acknowledged", detail=note)
    return run.finish()


def resolve(state: EngineState, incident_id: int, now: datetime, actor: str, note: str = "") -> StepResult:
    """Resolve an incident by hand; its firing alerts resolve with it (receivers are told). If a condition
    still holds at the next evaluation its alert fires anew and reopens the incident."""
    run = _Step(state, now, actor)
    incident = run.incidents.get(incident_id)
    if incident is None or incident.state == RESOLVED:
        raise IncidentError(f"incident {incident_id} does not exist or is already resolved")
    for alert in [a for a in run.alerts.values() if a.incident_id == incident_id and a.state == FIRING]:
        run.resolve_alert(alert, actor, "resolved with the incident")
    run.put_incident(replace(run.incidents[incident_id], state=RESOLVED, resolved_at=now, resolved_by=actor))
    run.event(incident_id, "resolved", detail=note)
    return run.finish()

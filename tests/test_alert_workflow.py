"""Alerting end to end on a real warehouse: observations with impact, incidents, routing, delivery to a real
HTTP receiver on 127.0.0.1, idempotency across evaluations, escalation, acknowledgement and recovery."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines import alert_workflow, workflows
from pipelines.slo.alert_config import parse_alerting
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.spec import load_slos
from tests.conftest import write
from tests.receivers import Receiver, Reply

SLOS = """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: shop-availability
  displayName: Shop availability
  annotations: {sloscope.io/runbook-url: "https://runbooks.example/shop"}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {success: true}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99.9%", target: 0.999}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: search-availability}
spec:
  service: search
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {success: true}}}
        total: {metricSource: {type: sloscope, spec: {service: search}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99%", target: 0.99}]
"""

ALERTING = """
routes:
  default: {page: [pager, chat], ticket: [chat]}
escalation:
  after: 15m
  routes: {default: {page: [hook]}}
remediation:
  page: {channel: hook, dry_run: true}
channels:
  pager: {type: pagerduty, routing_key_env: TEST_PD_KEY, url: "RECEIVER/pd"}
  chat: {type: slack, webhook_url_env: TEST_SLACK_URL}
  hook: {type: webhook, url: "RECEIVER/hook", secret_env: TEST_HOOK_SECRET}
"""

DAY0 = datetime(2026, 3, 1)
OUTAGE = datetime(2026, 3, 3)  # shop fails completely for 30 minutes from here
T = OUTAGE + timedelta(minutes=30)  # newest data minute ends here


def _counts(path: Path, start: datetime, minutes: int, rows) -> None:  # type: ignore[no-untyped-def]
    lines = ["timestamp,service,operation,total,good"]
    for m in range(minutes):
        moment = start + timedelta(minutes=m)
        lines += [f"{moment:%Y-%m-%dT%H:%M}:00Z,{row}" for row in rows(moment)]
    write(path, "\n".join(lines) + "\n")


def _shop(moment: datetime) -> list[str]:
    # 60 pay + 40 browse requests a minute; in the outage every one fails.
    failing = OUTAGE <= moment < OUTAGE + timedelta(minutes=30)
    return [f"shop,pay,60,{0 if failing else 60}", f"shop,browse,40,{0 if failing else 40}"]


@pytest.fixture
def setup(tmp_path: Path, warehouse: duckdb.DuckDBPyConnection):  # type: ignore[no-untyped-def]
    landing = tmp_path / "landing"
    _counts(landing / "shop.csv", DAY0, 2 * 1440 + 30, _shop)
    # search: 10 good requests a minute that stop at 2026-03-02 22:00.
    _counts(landing / "search.csv", DAY0, 2 * 1440 - 120, lambda m: ["search,query,10,10"])
    ingest_paths(warehouse, [landing], max_clock_skew_seconds=300)
    write(tmp_path / "slos" / "slos.yaml", SLOS)
    slos = load_slos(tmp_path / "slos")
    workflows.refresh(warehouse, slos)
    return tmp_path, slos


def _run(con, slos, config, now, env, as_of=None):  # type: ignore[no-untyped-def]
    as_of, statuses = workflows.evaluate_and_store(
        con, slos, as_of=as_of, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
    )
    return alert_workflow.run_alerting(
        con, slos, statuses, as_of, config, now=now, env=env, sleep=lambda s: None
    )


def test_outage_pages_escalates_and_recovers(setup, warehouse: duckdb.DuckDBPyConnection) -> None:  # type: ignore[no-untyped-def]
    tmp_path, slos = setup
    with Receiver(default=Reply(202, b'{"status":"success"}')) as receiver:
        config = parse_alerting(ALERTING.replace("RECEIVER", receiver.url("").rstrip("/")), "alerting.yaml")
        env = {
            "TEST_PD_KEY": "pd-routing-key-1",
            "TEST_SLACK_URL": receiver.url("/slack"),
            "TEST_HOOK_SECRET": "s3cr3t",
        }
        run = _run(warehouse, slos, config, T, env)

        active = {o.dedup_key: o for o in run.observations if o.active}
        assert sorted(active) == [
            "sloscope/search-availability/no_data/ticket",
            "sloscope/shop-availability/budget/ticket",
            "sloscope/shop-availability/burn_rate/page",
            "sloscope/shop-availability/burn_rate/ticket",
        ]
        page = active["sloscope/shop-availability/burn_rate/page"]
        # 1h/5m at factor 14.4: one outage minute puts 100 bad of 6,000 (1.67% >= 1.44%) in the hour and
        # 100 of 500 in 5 minutes, so the page fired at boundary 00:01.
        assert page.started_at == OUTAGE + timedelta(minutes=1)
        # Impact from one long window (1h) before the page: 23:01..00:30 is 89 minutes of 100 requests, of
        # which the 30 outage minutes (3,000) failed. The 30-day budget: 0.1% of the 291,000 requests in it.
        impact = page.details["impact"]
        assert (impact["bad_events"], impact["events"]) == (3000, 8900)
        assert impact["budget_consumed"] == pytest.approx(3000 / 291)
        assert impact["duration_minutes"] == 29
        assert page.details["attribution"]["operations"] == [
            {"value": "pay", "bad_events": 1800, "share": 0.6},
            {"value": "browse", "bad_events": 1200, "share": 0.4},
        ]
        assert page.details["correlated_slos"] == ["search-availability"]
        assert page.runbook_url == "https://runbooks.example/shop"
        # Ticket 3d/6h at factor 1: 3 outage minutes give 300 bad of 288,300 (>= 0.1%) -> 00:03.
        assert active["sloscope/shop-availability/burn_rate/ticket"].started_at == OUTAGE + timedelta(
            minutes=3
        )
        # search went quiet at 22:00; no-data after 60 minutes: from 23:00.
        assert active["sloscope/search-availability/no_data/ticket"].started_at == OUTAGE - timedelta(hours=1)

        incidents = {i["service"]: i for i in alert_workflow.list_incidents(warehouse)}
        assert {s: (i["severity"], i["state"], i["alerts_firing"]) for s, i in incidents.items()} == {
            "shop": ("page", "open", 3),
            "search": ("ticket", "open", 1),
        }
        # Page -> pager and chat; each ticket -> chat; the remediation hook is a dry run (nothing sent).
        paths = sorted(r.path for r in receiver.requests)
        assert paths == ["/pd", "/slack", "/slack", "/slack", "/slack"]
        assert run.delivery is not None and run.delivery.outcomes == {"delivered": 5, "dry_run": 1}
        pd = next(r for r in receiver.requests if r.path == "/pd").json
        assert (pd["routing_key"], pd["event_action"], pd["dedup_key"]) == (
            "pd-routing-key-1",
            "trigger",
            "sloscope/shop-availability/burn_rate/page",
        )
        assert pd["payload"]["severity"] == "critical"

        # The next evaluation changes nothing and sends nothing again.
        again = _run(warehouse, slos, config, T + timedelta(minutes=1), env)
        assert again.result.events == [] and len(receiver.requests) == 5

        # 15 minutes unacknowledged: level 2 (the signed webhook) hears about the page.
        escalated = _run(warehouse, slos, config, T + timedelta(minutes=15), env)
        assert [(e.incident_id, e.event) for e in escalated.result.events] == [
            (incidents["shop"]["incident_id"], "escalated")
        ]
        hook = [r for r in receiver.requests if r.path == "/hook"]
        assert len(hook) == 1
        stamp = hook[0].header("X-Sloscope-Timestamp")
        expected = hmac.new(b"s3cr3t", f"{stamp}.".encode() + hook[0].body, hashlib.sha256).hexdigest()
        assert hook[0].header("X-Sloscope-Signature") == f"v1={expected}"
        assert hook[0].json["escalation_level"] == 2

        # Someone acknowledges search's incident; it stays open in the tool but stops escalating.
        incident, _ = alert_workflow.acknowledge_incident(
            warehouse, config, incidents["search"]["incident_id"], "alice", "feed paused", env=env
        )
        assert (incident.state, incident.acknowledged_by) == ("acknowledged", "alice")

        # Seven clean hours later the burn-rate alerts have cleared; the budget stays exhausted.
        _counts(
            tmp_path / "more" / "shop-later.csv", T, 7 * 60, lambda m: ["shop,pay,60,60", "shop,browse,40,40"]
        )
        ingest_paths(warehouse, [tmp_path / "more"], max_clock_skew_seconds=300)
        workflows.refresh(warehouse, slos)
        before = len(receiver.requests)
        later = _run(warehouse, slos, config, T + timedelta(hours=7), env)
        resolved = sorted(
            (e.event, next(a.dedup_key for a in later.result.alerts if a.alert_id == e.alert_id))
            for e in later.result.events
            if e.event == "alert_resolved"
        )
        assert resolved == [
            ("alert_resolved", "sloscope/shop-availability/burn_rate/page"),
            ("alert_resolved", "sloscope/shop-availability/burn_rate/ticket"),
        ]
        sent = receiver.requests[before:]
        # page resolve -> pager, chat (level 1) and hook (level 2); ticket resolve -> chat.
        assert sorted(r.path for r in sent) == ["/hook", "/pd", "/slack", "/slack"]
        pd_resolve = next(r for r in sent if r.path == "/pd").json
        assert pd_resolve == {
            "routing_key": "pd-routing-key-1",
            "event_action": "resolve",
            "dedup_key": "sloscope/shop-availability/burn_rate/page",
        }
        shop = next(i for i in alert_workflow.list_incidents(warehouse) if i["service"] == "shop")
        assert (shop["state"], shop["alerts_firing"]) == ("open", 1)  # the budget alert remains

        detail = alert_workflow.incident_detail(warehouse, shop["incident_id"])
        assert detail is not None
        assert [e.event for e in detail["events"]][:3] == ["opened", "alert_fired", "alert_fired"]
        # Secrets never reach the warehouse.
        dump = str(warehouse.execute("SELECT * FROM notification_outbox").fetchall()) + str(
            warehouse.execute("SELECT * FROM notification_log").fetchall()
        )
        assert "pd-routing-key-1" not in dump and "s3cr3t" not in dump and "/slack" not in dump


def test_failed_delivery_is_retried_then_logged_and_not_resent(
    setup, warehouse: duckdb.DuckDBPyConnection
) -> None:  # type: ignore[no-untyped-def]
    _, slos = setup
    with Receiver(default=Reply(503, b"unavailable")) as receiver:
        config = parse_alerting(
            "routes: {default: {page: [pager]}}\ndefaults: {no_data_after: 0m, budget_states: {}}\n"
            f"channels: {{pager: {{type: pagerduty, routing_key_env: K, url: '{receiver.url('/pd')}'}}}}\n",
            "alerting.yaml",
        )
        run = _run(warehouse, slos, config, T, {"K": "key"})
        assert run.delivery is not None and run.delivery.outcomes == {"failed": 1}
        assert len(receiver.requests) == 4  # max_attempts
        log = warehouse.execute(
            "SELECT attempt, outcome, http_status FROM notification_log ORDER BY attempt"
        ).fetchall()
        assert log == [(1, "retrying", 503), (2, "retrying", 503), (3, "retrying", 503), (4, "failed", 503)]
        _run(warehouse, slos, config, T + timedelta(minutes=1), {"K": "key"})
        assert len(receiver.requests) == 4


def test_no_data_is_judged_on_the_wall_clock_and_maintenance_is_not_silence(  # type: ignore[no-untyped-def]
    setup, warehouse: duckdb.DuckDBPyConnection
) -> None:
    from pipelines.slo.corrections import add_correction

    _, slos = setup
    config = parse_alerting("defaults: {no_data_after: 60m, budget_states: {}}\n", "alerting.yaml")
    # Every feed has stopped: the newest data minute stays at T (shop's last minute ends there), but three
    # hours later shop has been silent for 3h >= 60 minutes since T: the alert started at T + 60 minutes.
    run = _run(warehouse, slos, config, T + timedelta(hours=3), {})
    shop = next(o for o in run.observations if o.dedup_key == "sloscope/shop-availability/no_data/ticket")
    assert (shop.active, shop.started_at) == (True, T + timedelta(hours=1))
    assert shop.title == "Shop availability: no data for 3h"
    # Maintenance declared from T for four hours: the silence is planned, so no alert.
    add_correction(
        warehouse,
        slo="shop-availability",
        reason="migration",
        added_by="ops",
        start=T,
        end=T + timedelta(hours=4),
    )
    planned = _run(warehouse, slos, config, T + timedelta(hours=3, minutes=1), {})
    shop = next(o for o in planned.observations if o.dedup_key == "sloscope/shop-availability/no_data/ticket")
    assert not shop.active


TIMESLICES = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-good-minutes}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {success: true}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Timeslices
  objectives: [{displayName: "99% of minutes good", target: 0.99, timeSliceTarget: 0.95, timeSliceWindow: 1m}]
"""


def test_timeslices_objectives_alert_on_bad_slices(
    tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    # shop's data (fixture layout): clean minutes, then every request fails from OUTAGE for 30 minutes.
    _counts(tmp_path / "landing" / "shop.csv", DAY0, 2 * 1440 + 30, _shop)
    ingest_paths(warehouse, [tmp_path / "landing"], max_clock_skew_seconds=300)
    write(tmp_path / "slos" / "s.yaml", TIMESLICES)
    slos = load_slos(tmp_path / "slos")
    workflows.refresh(warehouse, slos)
    config = parse_alerting("defaults: {no_data_after: 0m, budget_states: {}}\n", "alerting.yaml")
    run = _run(warehouse, slos, config, T, {})
    page = next(o for o in run.observations if o.dedup_key == "sloscope/shop-good-minutes/burn_rate/page")
    # A 1-minute slice is bad below 95% good. Page 1h/5m at factor 14.4 against 1 - 0.99 = 1% bad slices:
    # k bad slices in the hour burn (k / 60) / 0.01 >= 14.4 from k = 9, so the page fired at OUTAGE + 9 min.
    assert page.active and page.started_at == OUTAGE + timedelta(minutes=9)
    # Impact from one long window (1h) before the page: OUTAGE - 51 min to T, 81 slices, 30 of them bad.
    assert ("Bad 1-minute slices", "30 of 81") in page.facts
    # The episode's 30 bad slices against the period's 0.01 x 43,200 = 432 allowed.
    assert page.details["impact"]["budget_consumed"] == pytest.approx(30 / 432)

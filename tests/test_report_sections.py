"""Tests for the report's analytics sections: report_extras on a tiny warehouse, the recommendation rules,
the period narrative's numbers, and (slow) the notebook rendering the sections with and without extras.

Every expected figure is worked out by hand in a comment next to it, never copied from the output.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.slo.budget import budget_figures
from pipelines.slo.report import (
    EXTRAS_TABLES,
    anomalies_section_html,
    backtest_recommendations,
    budget_policy_recommendations,
    forecast_frame,
    forecast_section_html,
    incident_share,
    narrative,
    period_narrative,
    recommendations,
    recommendations_html,
    render_service_report,
    report_extras,
    target_recommendations,
    trend_section_html,
)
from pipelines.slo.timeslices import occurrence_units

AS_OF = datetime(2026, 10, 1)
WINDOW = timedelta(days=28)
HOSTILE = "<script>alert(1)</script>"
SERVICE = "checkout"
SLO = "checkout-availability"
OBJECTIVE = "99.9% of requests succeed"


# ---------------------------------------------------------------------------------------------------------
# Helpers


def _status(
    good: int,
    total: int,
    *,
    target: str = "0.999",
    slo: str = SLO,
    objective: str = OBJECTIVE,
    display_name: str = "Checkout availability",
    units: bool = True,
    policy_state: str = "healthy",
) -> dict:
    """A status as ObjectiveStatus.to_json() gives it (the fields the report reads), 28-day window."""
    exact = Decimal(target)
    sli, consumed, remaining = budget_figures(good, total, exact)
    status = {
        "slo": slo,
        "display_name": display_name,
        "service": SERVICE,
        "objective": objective,
        "target": float(exact),
        "window": {"start": f"{AS_OF - WINDOW:%Y-%m-%dT%H:%M:%SZ}", "end": f"{AS_OF:%Y-%m-%dT%H:%M:%SZ}"},
        "good": good,
        "total": total,
        "sli": sli,
        "error_budget": {"consumed": consumed, "remaining": remaining},
        "burn_rates": {},
        "status": "breached" if remaining is not None and remaining < 0 else "ok",
        "policy_state": policy_state,
    }
    if units:
        minutes = int(WINDOW / timedelta(minutes=1))
        status["budget_units"] = occurrence_units(good, total, exact, minutes).to_json()
    return status


def _hourly(per_hour: int, bad_at: dict[datetime, int], background_bad: int = 0) -> pl.DataFrame:
    """28 days of hours ending at AS_OF, ``per_hour`` events each; ``bad_at`` overrides an hour's bad."""
    rows = []
    for back in range(28 * 24, 0, -1):
        start = AS_OF - timedelta(hours=back)
        bad = bad_at.get(start, background_bad)
        rows.append(
            {
                "slo": SLO,
                "objective": OBJECTIVE,
                "target": 0.999,
                "bucket_start": start,
                "good": per_hour - bad,
                "total": per_hour,
            }
        )
    schema = {
        "slo": pl.String,
        "objective": pl.String,
        "target": pl.Float64,
        "bucket_start": pl.Datetime("us"),
        "good": pl.Int64,
        "total": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


# The outage: 14 September 09:00-13:00 UTC, 300 bad of 2,000 events an hour (15% bad, 150x the 0.1%
# allowance); every other hour has 1 bad of 2,000 (0.05%, under the allowance, so not "burning").
OUTAGE = {datetime(2026, 9, 14, 9) + timedelta(hours=h): 300 for h in range(4)}


def _outage_inputs() -> tuple[dict, pl.DataFrame]:
    hourly = _hourly(2_000, OUTAGE, background_bad=1)
    # 672 hours x 2,000 = 1,344,000 events; bad = 668 background + 4 x 300 = 1,868.
    status = _status(1_344_000 - 1_868, 1_344_000)
    return status, hourly


# ---------------------------------------------------------------------------------------------------------
# Narrative


def test_budget_units_are_the_hand_derived_minutes() -> None:
    status, _ = _outage_inputs()
    # 28 days = 40,320 minutes; budget = 0.1% of it = 40.32 minutes. Bad minutes = bad share x window
    # = 1,868 / 1,344,000 x 40,320 = 1,868 x 0.03 = 56.04 minutes.
    assert status["budget_units"]["budget_minutes"] == pytest.approx(40.32)
    assert status["budget_units"]["bad_minutes"] == pytest.approx(56.04)


def test_incident_share_finds_the_outage_day_and_hours() -> None:
    status, hourly = _outage_inputs()
    found = incident_share(hourly, status)
    assert found is not None
    # 14 September: 20 background hours x 1 + 4 x 300 = 1,220 of 1,868 bad events = 0.65310...
    assert found["day"] == datetime(2026, 9, 14)
    assert found["day_bad"] == 1_220 and found["total_bad"] == 1_868
    assert found["share"] == pytest.approx(1_220 / 1_868)
    # Worst hour 09:00 (ties: earliest); 09:00-12:00 burn above the allowance, 08:00 and 13:00 do not.
    assert found["hours_start"] == datetime(2026, 9, 14, 9)
    assert found["hours_end"] == datetime(2026, 9, 14, 13)


def test_period_narrative_states_minutes_and_the_outage_share() -> None:
    status, hourly = _outage_inputs()
    text = period_narrative(SERVICE, [status], hourly)
    # The existing narrative is kept as it is and extended: consumed = (1,868 / 1,344,000) / 0.001 = 1.39.
    assert text.startswith(narrative(SERVICE, [status]))
    assert "has used 139% of its error budget" in text
    # 56.04 -> "56", 40.32 -> "40"; 1,220 / 1,868 = 65.3% -> "65%".
    assert text.endswith("56 of 40 budget minutes used, 65% of it during 14 September (09:00–13:00 UTC).")


def test_period_narrative_without_budget_units_still_names_the_outage() -> None:
    status, hourly = _outage_inputs()
    del status["budget_units"]
    text = period_narrative(SERVICE, [status], hourly)
    assert "budget minutes" not in text
    assert text.endswith(
        "65% of Checkout availability (99.9% of requests succeed)'s bad events in the window came on "
        "14 September (09:00–13:00 UTC)."
    )


def test_period_narrative_spread_failures_name_no_day() -> None:
    # 1 bad an hour everywhere: each day holds 24 / 672 = 3.6% of the bad events, below the 25% threshold.
    hourly = _hourly(2_000, {}, background_bad=1)
    status = _status(1_344_000 - 672, 1_344_000)
    assert incident_share(hourly, status) is None
    text = period_narrative(SERVICE, [status], hourly)
    # 672 / 1,344,000 x 40,320 = 20.16 bad minutes of 40.32.
    assert text.endswith("20 of 40 budget minutes used.")
    assert "during" not in text


def test_outage_ending_at_midnight_reads_24_00() -> None:
    # 22:00 and 23:00 on 30 September: 500 bad each, nothing else. One day holds all of it (100%).
    bad = {datetime(2026, 9, 30, 22): 500, datetime(2026, 9, 30, 23): 500}
    hourly = _hourly(1_000, bad)
    status = _status(672_000 - 1_000, 672_000)
    text = period_narrative(SERVICE, [status], hourly)
    # 1,000 / 672,000 x 40,320 = 60 bad minutes of 40.32.
    assert text.endswith("60 of 40 budget minutes used, 100% of it during 30 September (22:00–24:00 UTC).")


def test_period_narrative_no_data_is_the_plain_narrative() -> None:
    status = _status(0, 0)
    assert period_narrative(SERVICE, [status], _hourly(0, {})) == narrative(SERVICE, [status])
    assert period_narrative(SERVICE, [], _hourly(0, {})) == narrative(SERVICE, [])


# ---------------------------------------------------------------------------------------------------------
# Recommendation rules


def _achieved(target: float, min_sli: float, median_sli: float, days: int = 90) -> dict:
    return {
        "slo": SLO,
        "objective": OBJECTIVE,
        "target": target,
        "min_sli": min_sli,
        "median_sli": median_sli,
        "days": days,
    }


def test_tighten_rule_uses_half_the_allowance() -> None:
    # Target 99%: allowance 1%, half of it 0.5%, threshold 99.5%. Worst day 99.8% > 99.5% -> tighten to 99.5%.
    (rec,) = target_recommendations([_achieved(0.99, 0.998, 0.999)])
    assert rec.rule == "tighten_target"
    assert "could tighten to 99.5%" in rec.text
    assert "the worst of 90 days was 99.800%" in rec.text
    assert rec.evidence["suggested_target"] == pytest.approx(0.995)
    # Just either side of the 99.5% threshold.
    assert target_recommendations([_achieved(0.99, 0.9951, 0.999)])[0].rule == "tighten_target"
    assert target_recommendations([_achieved(0.99, 0.9949, 0.999)]) == []
    # Fewer than 28 days of history: no opinion.
    assert target_recommendations([_achieved(0.99, 0.998, 0.999, days=27)]) == []


def test_loosen_rule_when_the_median_day_misses() -> None:
    # Target 99.9%, median day 99.874% < 99.9% -> unrealistic; suggest 99.874% rounded down to 99.87%.
    (rec,) = target_recommendations([_achieved(0.999, 0.99, 0.99874, days=60)])
    assert rec.rule == "loosen_target"
    assert "unrealistic" in rec.text and "consider 99.87%" in rec.text
    assert "the median of 60 days achieved 99.874%" in rec.text
    # Median exactly on target: held half the time or more, no recommendation.
    assert target_recommendations([_achieved(0.999, 0.998, 0.999)]) == []


def _backtest(
    policy: str, severity: str, pages: float, detection: float | None, objective: str = OBJECTIVE
) -> dict:
    return {
        "slo": SLO,
        "objective": objective,
        "policy": policy,
        "severity": severity,
        "alert_precision": 0.5,
        "recall": 1.0,
        "mean_detection_minutes": detection,
        "pages_per_week": pages,
    }


def test_backtest_rules_read_the_configured_page_rows() -> None:
    rows = [
        _backtest("workbook (configured)", "page", 2.5, 16.0),  # noisy (2.5 > 2) and slow (16 > 15)
        _backtest("workbook (configured)", "ticket", 9.0, 60.0),  # tickets are not pages
        _backtest("workbook-4", "page", 10.0, 90.0),  # not the policy in use
        _backtest("workbook", "page", 2.0, 15.0, objective="other"),  # no configured row: workbook; at limits
        _backtest("workbook", "page", 3.0, 5.0, objective="third"),  # no configured row: workbook, noisy
    ]
    recs = backtest_recommendations(rows)
    assert [(r.rule, r.objective) for r in recs] == [
        ("noisy_alerting", OBJECTIVE),
        ("slow_alerting", OBJECTIVE),
        ("noisy_alerting", "third"),
    ]
    assert "2.5 pages a week" in recs[0].text and "precision 50%" in recs[0].text
    assert "workbook (configured) policy" in recs[0].text
    assert "16 minutes mean detection" in recs[1].text
    assert "3.0 pages a week" in recs[2].text and "workbook policy" in recs[2].text
    assert backtest_recommendations([]) == []


def test_policy_rule_explains_due_states() -> None:
    statuses = [
        _status(998_000, 1_000_000, policy_state="exhausted"),  # 200% used: remaining -1.0 -> "-100%"
        _status(999_800, 1_000_000, objective="b", policy_state="healthy"),
        _status(0, 0, objective="c", policy_state="no_data"),
        _status(999_400, 1_000_000, objective="d", policy_state="page-the-vp"),  # 60% used, 40% left
    ]
    recs = budget_policy_recommendations(statuses)
    assert [r.objective for r in recs] == [OBJECTIVE, "d"]
    assert "policy says exhausted: the error budget is spent" in recs[0].text
    assert "(budget remaining -100%)" in recs[0].text
    assert "policy says page-the-vp: a state of the team's error budget policy" in recs[1].text
    assert "(budget remaining 40%)" in recs[1].text
    assert recs[1].evidence == {"policy_state": "page-the-vp", "budget_remaining": pytest.approx(0.4)}


def test_recommendations_order_and_json() -> None:
    statuses = [_status(998_000, 1_000_000, policy_state="warn")]
    extras = {
        "achieved": [_achieved(0.999, 0.99, 0.998)],
        "backtests": [_backtest("configured", "page", 5, 1)],
    }
    recs = recommendations(statuses, extras)
    assert [r.rule for r in recs] == ["policy_action", "loosen_target", "noisy_alerting"]
    json.dumps([r.to_json() for r in recs], allow_nan=False)
    # Without extras only the policy rule can speak; the section says what the others need.
    only = recommendations(statuses, None)
    assert [r.rule for r in only] == ["policy_action"]
    html = recommendations_html(only, None)
    assert "Target recommendations (achieved history) not available yet" in html
    assert "Alerting recommendations (backtests) not available yet" in html


# ---------------------------------------------------------------------------------------------------------
# report_extras on a tiny warehouse


def _seed(con: duckdb.DuckDBPyConnection) -> None:
    """One SLO of the service and one of another service, with rows in and out of the report's windows."""
    for slo, service in ((SLO, SERVICE), ("search-latency", "search")):
        con.execute(
            "INSERT INTO slo_objectives (slo, display_name, service, objective, objective_index, target, "
            "budgeting_method, window_seconds, source_file, definition) "
            "VALUES (?, ?, ?, ?, 0, 0.999, 'Occurrences', 2419200, 'x.yaml', '{}')",
            [slo, slo, service, OBJECTIVE],
        )
    con.execute(f"""
        INSERT INTO slo_trends VALUES
          ('{SLO}', 'availability', 'day', 'linear', 0.0001, 0.00005, 0.00015, 0.001, true, 60),
          ('{SLO}', 'error_rate', 'day', 'linear', -0.0001, -0.00015, -0.00005, 0.001, true, 60),
          ('{SLO}', 'throughput', 'day', 'log', 0.02, 0.01, 0.03, 0.2, false, 60),
          ('{SLO}', 'availability', 'hour', 'linear', 0.0001, 0.00005, 0.00015, 0.001, true, 1440),
          ('search-latency', 'latency_p99', 'day', 'log', 0.05, 0.01, 0.09, 0.01, true, 60);
        INSERT INTO slo_change_points VALUES
          ('{SLO}', 'error_rate', 'day', '2026-09-20 00:00', 0.0005, 0.002, 0.0015, 4.2),
          ('{SLO}', 'error_rate', 'day', '2026-08-01 00:00', 0.001, 0.0005, -0.0005, -3.0),
          ('{SLO}', 'error_rate', 'day', '2026-10-02 00:00', 0.001, 0.0005, -0.0005, -3.0);
        INSERT INTO slo_forecasts (slo, service, objective, as_of, window_start, window_end, rolling, seed,
            simulations, budget_remaining_now, probability_exhausted, probability_already_exhausted,
            remaining_p10, remaining_p50, remaining_p90, exhaustion_p50, exhaustion_histogram) VALUES
          ('{SLO}', '{SERVICE}', '{OBJECTIVE}', '2026-09-30 00:00', '2026-09-03', '2026-10-01', true, 1, 1000,
           0.4, 0.35, 0.0, -0.2, 0.1, 0.3, '2026-10-20 06:00', '[]'),
          ('{SLO}', '{SERVICE}', '{OBJECTIVE}', '2026-09-01 00:00', '2026-08-04', '2026-09-01', true, 1, 1000,
           0.9, 0.01, 0.0, 0.5, 0.6, 0.7, NULL, '[]'),
          ('{SLO}', '{SERVICE}', '{OBJECTIVE}', '2026-10-05 00:00', '2026-09-07', '2026-10-05', true, 1, 1000,
           0.1, 0.99, 0.0, -0.9, -0.5, -0.1, NULL, '[]');
        INSERT INTO alert_backtests VALUES
          ('2026-09-30 00:00', '2026-09-02', '{SLO}', '{OBJECTIVE}', 'workbook (configured)', 'page', 2, 5, 1,
           0.2, 0.5, 20.0, 30.0, 2.5),
          ('2026-09-30 00:00', '2026-09-02', '{SLO}', '{OBJECTIVE}', 'workbook-4', 'page', 2, 1, 1,
           1.0, 0.5, 4.0, 30.0, 0.25),
          ('2026-09-01 00:00', '2026-08-04', '{SLO}', '{OBJECTIVE}', 'workbook (configured)', 'page',
           2, 50, 1, 0.02, 0.5, 4.0, 30.0, 12.5);
    """)
    # Anomalies: scores 1..7 flagged inside the last 28 days, plus one unflagged and one too old.
    for i in range(1, 8):
        con.execute(
            "INSERT INTO slo_anomalies VALUES (?, ?, ?, ?, ?, 0.9, true)",
            [SLO, "error_rate" if i <= 5 else HOSTILE, AS_OF - timedelta(hours=i), 0.01 * i, float(i)],
        )
    con.execute("INSERT INTO slo_anomalies VALUES (?, 'error_rate', ?, 1.0, 99.0, 0.9, false)", [SLO, AS_OF])
    con.execute(
        "INSERT INTO slo_anomalies VALUES (?, 'error_rate', ?, 1.0, 50.0, 0.9, true)",
        [SLO, AS_OF - timedelta(days=29)],
    )
    # History: 26-30 September count (5 days); 2 July (ended 3 July 00:00, 90 days before AS_OF: outside
    # the half-open window) and 1 October (ends after AS_OF) do not.
    slis = {
        datetime(2026, 9, 26): 0.9990,
        datetime(2026, 9, 27): 0.9995,
        datetime(2026, 9, 28): 0.9980,
        datetime(2026, 9, 29): 0.9999,
        datetime(2026, 9, 30): 0.9993,
        datetime(2026, 7, 2): 0.4,
        datetime(2026, 10, 1): 0.5,
    }
    for day, sli in slis.items():
        con.execute(
            "INSERT INTO slo_history (day, slo, display_name, service, objective, objective_index, target, "
            "budgeting_method, window_start, window_end, good, total, sli, burn_rates, status, evaluated_at) "
            "VALUES (?, ?, 'Checkout availability', ?, ?, 0, 0.999, 'Occurrences', ?, ?, 0, 0, ?, '{}', "
            "'ok', ?)",
            [day.date(), SLO, SERVICE, OBJECTIVE, day - WINDOW, day + timedelta(days=1), sli, AS_OF],
        )


def test_report_extras_selects_the_service_and_windows(warehouse: duckdb.DuckDBPyConnection) -> None:
    _seed(warehouse)
    extras = report_extras(warehouse, SERVICE, AS_OF)
    json.dumps(extras, allow_nan=False)  # JSON-able as it is
    assert extras["slos"] == [SLO]
    assert all(extras["available"][t] for t in EXTRAS_TABLES)
    # Significant daily trends only: the hourly, the non-significant and the other service's are left out.
    assert [(r["metric"], r["slope_per_day"]) for r in extras["trends"]] == [
        ("availability", 0.0001),
        ("error_rate", -0.0001),
    ]
    # Change points in [AS_OF - 28 d, AS_OF): 20 September only.
    assert [r["changed_at"] for r in extras["change_points"]] == ["2026-09-20T00:00:00"]
    # 7 flagged in the window: 5 error_rate, 2 of the hostile metric; top 5 by score are 7, 6, 5, 4, 3.
    assert {(r["metric"], r["anomalies"]) for r in extras["anomaly_counts"]} == {
        ("error_rate", 5),
        (HOSTILE, 2),
    }
    assert [r["score"] for r in extras["top_anomalies"]] == [7.0, 6.0, 5.0, 4.0, 3.0]
    # The newest forecast not after AS_OF (30 September), not the later one.
    (forecast,) = extras["forecasts"]
    assert forecast["as_of"] == "2026-09-30T00:00:00"
    assert forecast["probability_exhausted"] == 0.35
    assert (forecast["remaining_p10"], forecast["remaining_p50"], forecast["remaining_p90"]) == (
        -0.2,
        0.1,
        0.3,
    )
    assert forecast["exhaustion_p50"] == "2026-10-20T06:00:00"
    # The newest backtest run not after AS_OF: its two rows.
    assert {(r["policy"], r["pages_per_week"]) for r in extras["backtests"]} == {
        ("workbook (configured)", 2.5),
        ("workbook-4", 0.25),
    }
    # History: min of the five days 0.998; median of 0.998, 0.999, 0.9993, 0.9995, 0.9999 is 0.9993.
    (achieved,) = extras["achieved"]
    assert achieved["days"] == 5
    assert achieved["min_sli"] == pytest.approx(0.998)
    assert achieved["median_sli"] == pytest.approx(0.9993)
    assert achieved["target"] == pytest.approx(0.999)


def test_report_extras_on_an_old_warehouse_is_empty(warehouse: duckdb.DuckDBPyConnection) -> None:
    _seed(warehouse)
    for table in EXTRAS_TABLES:
        warehouse.execute(f"DROP TABLE {table}")
    extras = report_extras(warehouse, SERVICE, AS_OF)
    assert extras["slos"] == [SLO]  # still known from slo_objectives
    assert not any(extras["available"].values())
    for key in (
        "trends",
        "change_points",
        "anomaly_counts",
        "top_anomalies",
        "forecasts",
        "backtests",
        "achieved",
    ):
        assert extras[key] == []
    # Sections degrade to notes saying how to produce them.
    assert "Trend analysis not available yet: materialise the analytics assets" in trend_section_html(
        extras, []
    )
    assert "Budget forecasts not available yet" in forecast_section_html(extras, [])


def test_report_extras_unknown_service_and_missing_column(warehouse: duckdb.DuckDBPyConnection) -> None:
    _seed(warehouse)
    extras = report_extras(warehouse, "nobody", AS_OF)
    assert extras["slos"] == [] and extras["trends"] == [] and not any(extras["available"].values())
    # A table from before a column existed: the query fails to bind and gives [] instead of raising.
    warehouse.execute("ALTER TABLE slo_trends DROP COLUMN significant")
    assert report_extras(warehouse, SERVICE, AS_OF)["trends"] == []


def test_sections_from_extras_say_it_in_words(warehouse: duckdb.DuckDBPyConnection) -> None:
    _seed(warehouse)
    extras = report_extras(warehouse, SERVICE, AS_OF)
    statuses = [_status(998_000, 1_000_000, display_name=HOSTILE)]
    trend = trend_section_html(extras, statuses)
    # +0.0001 a day of a 0-1 fraction = +0.0100 percentage points; CI 0.00005..0.00015 -> +0.0050..+0.0150.
    assert (
        "availability is rising (improving) by 0.0100 percentage points a day (95% CI +0.0050 to +0.0150)"
        in trend
    )
    assert "error rate is falling (improving)" in trend
    assert "2026-09-20 00:00" in trend
    anomalies = anomalies_section_html(extras, statuses)
    assert "7 anomalies flagged in the last 28 days" in anomalies
    assert "<script" not in trend + anomalies and "&lt;script&gt;" in anomalies
    forecast = forecast_section_html(extras, statuses)
    # probability 0.35 -> "35%"; p10 -0.2 and p90 0.3 -> "-20.0% – 30.0%".
    assert "35%" in forecast and "-20.0% – 30.0%" in forecast and "2026-10-20 06:00" in forecast
    assert forecast_frame(extras, statuses).rows() == [
        (HOSTILE + " (99.9% of requests succeed)", -0.2, 0.1, 0.3)
    ]


# ---------------------------------------------------------------------------------------------------------
# End to end (real kernel)


def _text(html: str) -> str:
    """Visible text with whitespace collapsed, for phrases that may wrap across template lines."""
    return re.sub(r"\s+", " ", html)


@pytest.mark.slow
def test_render_with_and_without_extras(warehouse: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    _seed(warehouse)
    extras = report_extras(warehouse, SERVICE, AS_OF)
    status, hourly = _outage_inputs()
    status["display_name"] = HOSTILE
    status["policy_state"] = "exhausted"
    html_path = render_service_report(SERVICE, [status], hourly, tmp_path, as_of=AS_OF, extras=extras)
    html = _text(html_path.read_text(encoding="utf-8"))
    for heading in ("Trend", "Anomalies", "Forecast", "Recommendations"):
        assert f"<h2>{heading}</h2>" in html
    assert "not available yet" not in html
    assert "56 of 40 budget minutes used, 65% of it during 14 September (09:00–13:00 UTC)." in html
    assert "availability is rising (improving)" in html
    assert "7 anomalies flagged in the last 28 days" in html
    assert "Forecast budget remaining at the window" in html  # the chart's title, inside its SVG
    assert html.count("<svg") >= 4  # three status charts and the forecast
    # Recommendations: policy (exhausted), alerting (2.5 pages a week, 20 min detection); 5 days of history
    # are too few for a target rule.
    assert "policy says exhausted" in html
    assert "2.5 pages a week in the backtest" in html
    assert "20 minutes mean detection" in html
    assert "<script" not in html.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert (html_path.parent / "data" / "extras.json").exists()

    again = render_service_report(SERVICE, [status], hourly, tmp_path, as_of=AS_OF)
    bare = _text(again.read_text(encoding="utf-8"))
    assert "Trend analysis not available yet: materialise the analytics assets" in bare
    assert "Anomaly detection not available yet" in bare
    assert "Budget forecasts not available yet: materialise the slo_forecasts asset" in bare
    assert "Alerting recommendations (backtests) not available yet: run the alert backtests" in bare
    assert "policy says exhausted" in bare  # needs only the statuses
    assert not (again.parent / "data" / "extras.json").exists()

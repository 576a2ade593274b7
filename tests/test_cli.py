"""The `sloscope` command: ingest and evaluate, the JSON contract, errors on stderr with non-zero exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.cli import main, parse_as_of
from tests.conftest import write

SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: "shop-availability"}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 1d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99%", target: 0.99}, {displayName: "90%", target: 0.9}]
"""


def _landing(tmp_path: Path) -> Path:
    # 200 requests at 2026-03-01 10:00-10:19, 1 in 20 is a 503: minutes 0..19, 10 requests each.
    lines = ["timestamp,service,operation,status_code,latency_ms"]
    for minute in range(20):
        for second in range(10):
            status = 503 if second == 0 and minute % 2 == 0 else 200
            lines.append(f"2026-03-01T10:{minute:02d}:{second:02d}Z,shop,pay,{status},25")
    return write(tmp_path / "landing" / "events.csv", "\n".join(lines) + "\n")


def test_ingest_then_evaluate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "w.duckdb"
    _landing(tmp_path)
    write(tmp_path / "slos" / "shop.yaml", SLO)
    assert main(["ingest", str(tmp_path / "landing"), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "200 read = 200 loaded + 0 quarantined" in out

    assert main(["evaluate", "--db", str(db), "--slos", str(tmp_path / "slos"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [p["objective"] for p in payload] == ["99%", "90%"]
    first = payload[0]
    assert set(first) == {
        "slo",
        "service",
        "objective",
        "target",
        "budgeting_method",
        "window",
        "period",
        "good",
        "total",
        "sli",
        "error_budget",
        "burn_rates",
        "status",
        "budget_units",
        "time_to_exhaustion",
        "policy_state",
        "data_completeness",
        "corrections_applied",
        "timeslices",
        "no_data_reason",
    }
    assert set(first["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d", "window"}
    # as_of defaults to the end of the newest minute, 10:20; the 1d window is [2026-02-28T10:20, 10:20).
    assert first["window"] == {"start": "2026-02-28T10:20:00Z", "end": "2026-03-01T10:20:00Z"}
    # 10 503s (even minutes 0..18) in 200: SLI 0.95; at 99%: consumed 0.05/0.01 = 5, remaining -4.
    assert (first["good"], first["total"], first["sli"]) == (190, 200, pytest.approx(0.95))
    assert first["error_budget"]["remaining"] == pytest.approx(-4.0)
    assert first["status"] == "breached"
    # 5m = minutes 15..19: 503s at minutes 16 and 18 -> 2 of 50 = 0.04, / 0.01 = 4.0.
    assert first["burn_rates"]["5m"] == pytest.approx(4.0)
    # Budget units at 99% over the 1,440-minute window: allowed bad events 0.01 * 200 = 2, bad 10, left -8;
    # budget minutes 0.01 * 1440 = 14.4; bad minutes (10/200) * 1440 = 72; left 14.4 - 72 = -57.6.
    units = first["budget_units"]
    assert units["allowed_bad_events"] == pytest.approx(2.0) and units["bad_events"] == 10
    assert units["bad_events_left"] == pytest.approx(-8.0)
    assert units["budget_minutes"] == pytest.approx(14.4) and units["bad_minutes"] == pytest.approx(72.0)
    assert units["bad_minutes_left"] == pytest.approx(-57.6)
    # Already overspent: exhausted now at any burn rate; the default policy says so.
    assert first["time_to_exhaustion"] == {"1h": 0.0, "1d": 0.0}
    assert first["policy_state"] == "exhausted"
    # Data arrived in 20 of the window's 1,440 minutes.
    assert first["data_completeness"] == pytest.approx(20 / 1440)
    assert first["corrections_applied"] == {"count": 0, "ids": [], "excluded_minutes": 0}
    assert (
        first["period"] == first["window"] and first["timeslices"] is None and first["no_data_reason"] is None
    )
    # At 90%: consumed 0.05 / 0.1 = 0.5 -> remaining 0.5, ok. Policy: 0.5 is not below 0.5, and the 6h burn
    # rate 0.5 is not above 6 -> healthy. At burn 1d = 0.5, the remaining half lasts 0.5 * 1 d / 0.5 = 1 day.
    assert payload[1]["policy_state"] == "healthy"
    assert payload[1]["time_to_exhaustion"]["1d"] == pytest.approx(86400.0)
    assert payload[1]["error_budget"]["remaining"] == pytest.approx(0.5)
    assert payload[1]["status"] == "ok"


def test_evaluate_as_of_with_no_data_gives_nulls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "w.duckdb"
    _landing(tmp_path)
    write(tmp_path / "slos" / "shop.yaml", SLO)
    main(["ingest", str(tmp_path / "landing"), "--db", str(db)])
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--db",
                str(db),
                "--slos",
                str(tmp_path / "slos"),
                "--json",
                "--as-of",
                "2026-03-05T00:00:00+02:00",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "NaN" not in text
    first = json.loads(text)[0]
    # 2026-03-05T00:00+02:00 = 2026-03-04T22:00Z; the 1d window has no data.
    assert first["window"]["end"] == "2026-03-04T22:00:00Z"
    assert first["sli"] is None and first["status"] == "no_data" and first["burn_rates"]["3d"] is None


def test_errors_go_to_stderr_with_non_zero_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "slos" / "bad.yaml", SLO.replace("target: 0.99}", "target: 99}"))
    assert main(["evaluate", "--db", str(tmp_path / "w.duckdb"), "--slos", str(tmp_path / "slos")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: spec.objectives[0]: target must lie in [0, 1)" in err
    assert main(["ingest", str(tmp_path / "nope.csv"), "--db", str(tmp_path / "w.duckdb")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    write(tmp_path / "slos2" / "ok.yaml", SLO)
    assert main(["evaluate", "--db", str(tmp_path / "empty.duckdb"), "--slos", str(tmp_path / "slos2")]) == 2
    assert "no aggregated data yet" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "--db",
                str(tmp_path / "w.duckdb"),
                "--slos",
                str(tmp_path / "slos2"),
                "--as-of",
                "2026-03-01T10:00:00",
            ]
        )
        == 2
    )
    assert "has no UTC offset" in capsys.readouterr().err


def test_unreadable_file_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    assert main(["ingest", str(tmp_path / "bad.parquet"), "--db", str(tmp_path / "w.duckdb")]) == 1
    assert "bad.parquet" in capsys.readouterr().err


def test_parse_as_of() -> None:
    from datetime import datetime

    assert parse_as_of("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, 0)
    assert parse_as_of("2026-03-01T12:30:00+02:30") == datetime(2026, 3, 1, 10, 0)


def test_console_script_is_installed(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "sloscope"
    result = subprocess.run(
        [str(script), "validate", str(Path(__file__).parent.parent / "data" / "slos")],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "SLOs with" in result.stdout and "are valid" in result.stdout


def test_latency_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "w.duckdb"
    _landing(tmp_path)
    write(tmp_path / "slos" / "shop.yaml", SLO)
    main(["ingest", str(tmp_path / "landing"), "--db", str(db)])
    main(["evaluate", "--db", str(db), "--slos", str(tmp_path / "slos")])  # aggregates
    capsys.readouterr()
    args = ["latency", "--db", str(db), "--service", "shop", "--from", "2026-03-01T10:00:00Z"]
    assert main([*args, "--to", "2026-03-01T11:00:00Z", "--json"]) == 0
    # Every request took 25 ms: every percentile is 25 ms within the histogram's 1%.
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"p50", "p95", "p99"}
    assert all(v == pytest.approx(25.0, rel=0.01) for v in result.values())
    assert main([*args, "--to", "2026-03-01T09:00:00Z"]) == 2
    assert "--from must be before --to" in capsys.readouterr().err


def test_hostile_names_are_data_not_sql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hostile = "x'); DROP TABLE raw_events; --"
    write(
        tmp_path / "landing" / "e.ndjson",
        json.dumps(
            {"timestamp": "2026-03-01T10:00:00Z", "service": hostile, "operation": "<b>", "status_code": 200}
        )
        + "\n"
        + json.dumps({"timestamp": "2026-03-01T10:00:01Z", "service": hostile, "status_code": 503})
        + "\n",
    )
    slo = SLO.replace('name: "shop-availability"', 'name: "evil"').replace(
        "service: shop", f'service: "{hostile}"'
    )
    slo = slo.replace("spec: {service: shop}", "spec: {}")
    write(tmp_path / "slos" / "evil.yaml", slo)
    db = tmp_path / "w.duckdb"
    assert main(["ingest", str(tmp_path / "landing"), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--db", str(db), "--slos", str(tmp_path / "slos"), "--json"]) == 0
    only = json.loads(capsys.readouterr().out)[0]
    # One 200 and one 503 for the hostile service; the raw table is still there to count them.
    assert only["service"] == hostile and (only["good"], only["total"]) == (1, 2)


def test_backfill_history_and_corrections_recompute_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three days of traffic, 1 request a minute; on 2026-03-02 the hour 10:00-11:00 fails entirely.
    lines = ["timestamp,service,total,good"]
    start = datetime(2026, 3, 1)
    for m in range(3 * 1440):
        t = start + timedelta(minutes=m)
        failing = t.date() == date(2026, 3, 2) and t.hour == 10
        lines.append(f"{t:%Y-%m-%dT%H:%M}:00Z,shop,1,{0 if failing else 1}")
    write(tmp_path / "landing" / "c.csv", "\n".join(lines) + "\n")
    slo = SLO.replace("{status_code: {lt: 500}}", "{success: true}")
    write(tmp_path / "slos" / "shop.yaml", slo)
    db, slos = str(tmp_path / "w.duckdb"), str(tmp_path / "slos")
    assert main(["ingest", str(tmp_path / "landing"), "--db", db]) == 0
    assert main(["backfill", "--from", "2026-03-01", "--to", "2026-03-03", "--db", db, "--slos", slos]) == 0
    capsys.readouterr()

    def day_figures() -> dict[str, tuple[int, int, str]]:
        assert main(["history", "--from", "2026-03-01", "--to", "2026-03-03", "--db", db, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        return {
            r["period"]["end"][:10]: (r["good"], r["total"], r["status"])
            for r in rows
            if r["objective"] == "99%"
        }

    # 1d windows ending at each midnight: day 2 has 1,440 requests with 60 bad -> 1,380 good (4.2% bad:
    # breached at 99%); days 1 and 3 are clean.
    assert day_figures() == {
        "2026-03-02": (1440, 1440, "ok"),
        "2026-03-03": (1380, 1440, "breached"),
        "2026-03-04": (1440, 1440, "ok"),
    }
    # The failing hour was planned maintenance: excluding it recomputes the affected days.
    assert (
        main(
            [
                "corrections",
                "add",
                "--slo",
                "shop-availability",
                "--reason",
                "planned failover",
                "--by",
                "bob",
                "--start",
                "2026-03-02T10:00:00Z",
                "--end",
                "2026-03-02T11:00:00Z",
                "--db",
                db,
                "--slos",
                slos,
            ]
        )
        == 0
    )
    # Recomputed: the day whose 1d window holds the hour, and the next day, whose stored 3d burn rate
    # reads back over it. (The first day's row ends before the hour.)
    assert "2 days of stored history were recomputed" in capsys.readouterr().out
    assert day_figures()["2026-03-03"] == (1380, 1380, "ok")
    assert main(["corrections", "list", "--db", db, "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["reason"], listed["added_by"], listed["removed_by"]) == ("planned failover", "bob", None)
    # Removing it (kept for audit) restores the original figures.
    assert (
        main(["corrections", "remove", str(listed["id"]), "--by", "carol", "--db", db, "--slos", slos]) == 0
    )
    capsys.readouterr()
    assert day_figures()["2026-03-03"] == (1380, 1440, "breached")


def test_corrections_refuse_unknown_slos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "slos" / "shop.yaml", SLO)
    args = [
        "corrections",
        "add",
        "--reason",
        "x",
        "--start",
        "2026-03-01T00:00:00Z",
        "--end",
        "2026-03-01T01:00:00Z",
        "--db",
        str(tmp_path / "w.duckdb"),
        "--slos",
        str(tmp_path / "slos"),
    ]
    assert main([*args, "--slo", "shop-availabilty"]) == 2
    assert "no SLO named 'shop-availabilty'" in capsys.readouterr().err
    assert main([*args, "--slo", "*"]) == 0


def _outage_backtest(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    """``sloscope backtest --json`` over 3 days of 100 requests/minute at 99.9% over 30 days, all good except
    a full outage on day 3 00:00-01:00 (the one known incident)."""
    start = datetime(2026, 3, 1)
    lines = ["timestamp,service,total,good"]
    for m in range(3 * 1440):
        outage = 2 * 1440 <= m < 2 * 1440 + 60
        lines.append(f"{start + timedelta(minutes=m):%Y-%m-%dT%H:%M}:00Z,shop,100,{0 if outage else 100}")
    write(tmp_path / "landing" / "c.csv", "\n".join(lines) + "\n")
    slo = SLO.replace("{status_code: {lt: 500}}", "{success: true}").replace("duration: 1d", "duration: 30d")
    slo = slo.replace(
        '[{displayName: "99%", target: 0.99}, {displayName: "90%", target: 0.9}]',
        '[{displayName: "99.9%", target: 0.999}]',
    )
    write(tmp_path / "slos" / "shop.yaml", slo)
    write(tmp_path / "incidents.csv", "start,end\n2026-03-03T00:00:00Z,2026-03-03T01:00:00Z\n")
    db = str(tmp_path / "w.duckdb")
    assert main(["ingest", str(tmp_path / "landing"), "--db", db]) == 0
    capsys.readouterr()
    args = ["backtest", "--slo", "shop-availability", "--incidents", str(tmp_path / "incidents.csv")]
    args += ["--from", "2026-03-01T00:00:00Z", "--to", "2026-03-04T00:00:00Z", "--db", db]
    args += ["--slos", str(tmp_path / "slos"), "--json", *extra]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_backtest_full_outage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Page rules (factors 14.4 over 1h/5m and 6 over 6h/30m): after 1 outage minute the 1h window holds
    # 100 bad of 6,000 (1.67% >= 1.44%) and the 5m window 100 of 500 -> paged 1 minute in. After the
    # outage the 5m window clears 5 minutes later, but the 6h/30m rule keeps firing until its 30-minute window
    # holds no outage minute: the page resets 30 minutes after the end.
    # Ticket (factor 1 over 3d/6h): the 3d window reaches 0.1% bad when 100k >= 0.001 * (288,000 + 100k),
    # k >= 2.9 -> 3 minutes in; its 6h window clears 360 minutes after the end.
    # Alerts per week: 1 page over 3 days = 7/3.
    report = _outage_backtest(tmp_path, capsys)
    page, ticket = report["results"]
    assert (page["severity"], page["alerts"], page["precision"], page["recall"]) == ("page", 1, 1.0, 1.0)
    assert (page["detection_minutes"], page["reset_minutes"]) == ([1.0], [30.0])
    assert page["pages_per_week"] == pytest.approx(7 / 3)
    assert (ticket["detection_minutes"], ticket["reset_minutes"]) == ([3.0], [360.0])


def test_backtest_compares_policies_with_hysteresis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "alerting.yaml", "defaults: {resolve_after: 5m}\n")
    alerting = ["--alerting", str(tmp_path / "alerting.yaml")]
    report = _outage_backtest(tmp_path, capsys, "--policy", "workbook", "--policy", "workbook-4", *alerting)
    by_policy = {p["policy"]: {r["severity"]: r for r in p["results"]} for p in report["policies"]}
    assert list(by_policy) == ["workbook", "workbook-4"]
    # Same outage as above, with the engine's 5-minute hysteresis: every reset is 5 minutes later.
    page = by_policy["workbook"]["page"]
    assert (page["detection_minutes"], page["reset_minutes"]) == ([1.0], [35.0])
    assert by_policy["workbook"]["ticket"]["reset_minutes"] == [365.0]
    # The 4-pair catalog adds a ticket at factor 0.1 x 30d / 1d = 3 over 1d/2h: 100k bad of 144,000 in the
    # day reaches 0.3% at k = 5, later than 3d/6h's 3 minutes, and its 2h window clears before the 6h one,
    # so the ticket's detection (3) and reset (365) stay those of the 3d/6h pair.
    ticket = by_policy["workbook-4"]["ticket"]
    assert (ticket["alerts"], ticket["detection_minutes"], ticket["reset_minutes"]) == (1, [3.0], [365.0])


def test_detect_scores_a_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 10 days of an hourly daily cycle, then one hour ten times its usual value.
    lines = ["timestamp,value"]
    for h in range(240):
        value = 100 + 30 * ((h % 24) in range(8, 20)) + (h * 7919 % 13) / 13
        if h == 200:
            value = 1000
        lines.append(f"{datetime(2026, 1, 1) + timedelta(hours=h):%Y-%m-%dT%H:%M}:00Z,{value}")
    write(tmp_path / "in.csv", "\n".join(lines) + "\n")
    assert main(["detect", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]) == 0
    assert "scored 240 points" in capsys.readouterr().out
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert rows[0] == "timestamp,value,score,is_anomaly"
    flagged = [r.split(",")[0] for r in rows[1:] if r.split(",")[3] == "true"]
    assert "2026-01-09T08:00:00Z" in flagged
    write(tmp_path / "bad.csv", "when,value\n2026-01-01T00:00:00Z,1\n")
    assert main(["detect", "--input", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "o.csv")]) == 2
    assert "timestamp" in capsys.readouterr().err


def test_every_help_page_renders(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse formats help lazily with %-interpolation: a bare "%" in one subcommand's help once made
    # `sloscope --help` itself crash with a TypeError.
    with pytest.raises(SystemExit) as top:
        main(["--help"])
    assert top.value.code == 0
    listing = capsys.readouterr().out
    commands = listing.split("{", 1)[1].split("}", 1)[0].split(",")
    assert "ingest" in commands and "evaluate" in commands
    for command in commands:
        with pytest.raises(SystemExit) as sub:
            main([command, "--help"])
        assert sub.value.code == 0, command
        assert "usage: sloscope" in capsys.readouterr().out


def test_late_data_through_the_cli_marks_and_backfill_clears_the_stale_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipelines.late_data import pending_file, read_pending

    # Counts for 2026-03-01 and 03-03 (one request a minute); 03-02 arrives late.
    def day_lines(day: date, good: int) -> list[str]:
        start = datetime.combine(day, datetime.min.time())
        return [f"{start + timedelta(minutes=m):%Y-%m-%dT%H:%M}:00Z,shop,1,{good}" for m in range(1440)]

    header = "timestamp,service,total,good"
    lines = [header, *day_lines(date(2026, 3, 1), 1), *day_lines(date(2026, 3, 3), 1)]
    write(tmp_path / "landing" / "a.csv", "\n".join(lines) + "\n")
    write(tmp_path / "slos" / "shop.yaml", SLO.replace("{status_code: {lt: 500}}", "{success: true}"))
    db, slos = tmp_path / "w.duckdb", str(tmp_path / "slos")
    assert main(["ingest", str(tmp_path / "landing"), "--db", str(db)]) == 0
    span = ["--from", "2026-03-01", "--to", "2026-03-04", "--db", str(db), "--slos", slos]
    assert main(["backfill", *span]) == 0
    assert read_pending(pending_file(db))["history"] == {}

    # 03-02 lands late with every request failing. The 1-day window (3-day burn-rate span) of the
    # history days 03-02 .. 03-04 reads it; 03-01 (as of 03-02 00:00) does not.
    write(tmp_path / "late" / "b.csv", "\n".join([header, *day_lines(date(2026, 3, 2), 0)]) + "\n")
    assert main(["ingest", str(tmp_path / "late"), "--db", str(db)]) == 0
    assert main(["evaluate", "--db", str(db), "--slos", slos]) == 0
    assert sorted(read_pending(pending_file(db))["history"]) == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert main(["backfill", *span]) == 0
    assert read_pending(pending_file(db))["history"] == {}
    capsys.readouterr()
    assert main(["history", "--from", "2026-03-02", "--to", "2026-03-02", "--db", str(db), "--json"]) == 0
    (row,) = [r for r in json.loads(capsys.readouterr().out) if r["objective"] == "99%"]
    # As of 03-03 00:00 the 1-day window is all of 03-02: 1,440 requests, none good.
    assert (row["good"], row["total"], row["status"]) == (0, 1440, "breached")

"""Late and out-of-order data: the stored history days and rendered period reports a late file makes
stale, the pending file that carries them, the sensor that re-materialises them, and end to end that the
re-materialised history equals a warehouse that had every file from the start.

Spans are worked out by hand: a history row for day d is evaluated as of d + 1 day 00:00 UTC and reads
the SLO window before it, widened to the longest burn-rate window (3 days)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetMaterialization, DagsterInstance, SkipReason, build_sensor_context, materialize

from assets.history import slo_history
from assets.ingest import raw_measurements
from assets.sli import sli_aggregates
from assets.slo import slo_definitions
from pipelines.late_data import (
    PendingFileError,
    Period,
    clear_history_day,
    history_days_touched,
    history_token,
    mark_stale,
    overlaps,
    pending_file,
    read_pending,
    stale_periods,
)
from pipelines.resources import SloscopeResource
from pipelines.sensors import late_data_sensor
from pipelines.slo.spec import parse_documents
from pipelines.warehouse import open_warehouse
from tests.conftest import write
from tests.test_engine import COMPOSITE, slo_yaml

ROLLING_28D = slo_yaml("{duration: 28d, isRolling: true}")
# D1..D10: history stored for 1 to 10 July 2026.
DAYS = [date(2026, 7, d) for d in range(1, 11)]


def _slos(text: str):  # type: ignore[no-untyped-def]
    slos, problems = parse_documents(text, "slo.yaml")
    assert problems == []
    return slos


def _late(slos, stored, ranges):  # type: ignore[no-untyped-def]
    touched = history_days_touched(stored, slos, lambda _slo, s, e: overlaps((s, e), ranges))
    return {day: sorted(s.name for s in chosen) for day, chosen in touched.items()}


def test_a_late_file_makes_exactly_the_days_whose_window_reads_it_stale() -> None:
    slos = _slos(ROLLING_28D)
    stored = {"lb": DAYS}
    # Late rows on D3 (3 July 10:00-10:05). Day d reads [d + 1 - 28 days, d + 1): D1 ends 2 July 00:00
    # and D2 3 July 00:00, before the rows; D10 starts 13 June, before them. Stale: D3..D10.
    on_d3 = [(datetime(2026, 7, 3, 10), datetime(2026, 7, 3, 10, 5))]
    assert _late(slos, stored, on_d3) == {day: ["lb"] for day in DAYS[2:]}
    # Late rows on 8 June 12:00, before every stored day. Windows start 28 days before d + 1: D1 4 June,
    # D5 8 June 00:00 (contains 12:00), D6 9 June 00:00 (after it). Stale: D1..D5.
    before_all = [(datetime(2026, 6, 8, 12), datetime(2026, 6, 8, 12, 5))]
    assert _late(slos, stored, before_all) == {day: ["lb"] for day in DAYS[:5]}
    # Rows after D10 ended (11 July) are not late for any stored day; nor are rows for another SLO's day.
    assert _late(slos, stored, [(datetime(2026, 7, 11), datetime(2026, 7, 11, 0, 1))]) == {}
    assert _late(slos, {"other": DAYS}, on_d3) == {}
    # The boundary is half-open: rows ending exactly where D1's window starts (4 June 00:00) are outside.
    assert _late(slos, stored, [(datetime(2026, 6, 3, 23, 59), datetime(2026, 6, 4))]) == {}


def test_burn_rate_windows_widen_the_span_and_composites_are_recomputed_together() -> None:
    slos = _slos(COMPOSITE)
    names = sorted(s.name for s in slos)
    stored = {name: DAYS for name in names}
    # A 1 h window alone would make D3 stale only; the 3-day burn-rate window makes day d read
    # [d + 1 - 3 days, d + 1): D3 [1 Jul, 4 Jul), D4 [2 Jul, 5 Jul), D5 [3 Jul, 6 Jul), D6 from 4 Jul.
    ranges = [(datetime(2026, 7, 3, 10), datetime(2026, 7, 3, 10, 5))]
    touched = history_days_touched(
        stored, slos, lambda slo, s, e: slo.name == names[0] and overlaps((s, e), ranges)
    )
    # Only one component's data is late, but the whole needs both: both are recomputed.
    assert {day: sorted(s.name for s in chosen) for day, chosen in touched.items()} == {
        date(2026, 7, 3): names,
        date(2026, 7, 4): names,
        date(2026, 7, 5): names,
    }


MONTHS = [
    Period(f"2026-{m:02d}-01", datetime(2026, m, 1), datetime(2026 + m // 12, m % 12 + 1, 1))
    for m in range(6, 11)
]
Q3 = Period("2026-07-01", datetime(2026, 7, 1), datetime(2026, 10, 1))


def test_period_reports_that_read_a_stale_day_or_a_late_minute() -> None:
    slos = _slos(ROLLING_28D)
    on_d3 = [(datetime(2026, 7, 3, 10), datetime(2026, 7, 3, 10, 5))]
    stale_days = DAYS[2:]
    # June: evaluated as of 1 July, reads [3 Jun, 1 Jul); reads no July day. Not stale.
    # July: its portfolio reads the July days (middle inside July); the late minute is before its window
    # [4 Jul, 1 Aug). Stale, waiting for D3..D10.
    # August and September: the achieved history reads days ended in the 90 days before the period's
    # end (from 3 June, resp. from 3 July exclusive: D3 ends 4 July). October: from 3 August: nothing.
    stale = stale_periods(MONTHS, slos, on_d3, stale_days)
    assert {key: waits for key, (_, waits) in stale.items()} == {
        "2026-07-01": stale_days,
        "2026-08-01": stale_days,
        "2026-09-01": stale_days,
    }
    assert list(stale_periods([Q3], slos, on_d3, stale_days)) == ["2026-07-01"]
    # A late minute inside a month's own window (evaluated as of 1 Aug: [4 Jul, 1 Aug)) with no stored
    # history day: the July report alone is stale, and waits for nothing.
    late_july = [(datetime(2026, 7, 20), datetime(2026, 7, 20, 0, 1))]
    assert {k: w for k, (_, w) in stale_periods(MONTHS, slos, late_july, []).items()} == {"2026-07-01": []}


def _resource(tmp_path: Path, slo_text: str = ROLLING_28D) -> SloscopeResource:
    write(tmp_path / "slos" / "lb.yaml", slo_text)
    return SloscopeResource(
        warehouse=str(tmp_path / "w" / "w.duckdb"),
        landing=str(tmp_path / "landing"),
        reports=str(tmp_path / "reports"),
        slos=str(tmp_path / "slos"),
    )


def _tick(resource: SloscopeResource, instance: DagsterInstance):  # type: ignore[no-untyped-def]
    context = build_sensor_context(instance=instance, resources={"sloscope": resource})
    result = late_data_sensor(context)
    return [] if isinstance(result, SkipReason) else list(result)


def test_pending_file_merges_markings_and_clears_only_what_was_recomputed(tmp_path: Path) -> None:
    path = pending_file(tmp_path / "w.duckdb")
    assert read_pending(path)["history"] == {}
    july = {"2026-07-01": (MONTHS[1], [DAYS[2]])}
    first = mark_stale(path, {DAYS[2]: ["a"], DAYS[3]: ["a"]}, {"monthly": july}, now=100.0)
    # A second late file before the sensor ran: nothing of the first is dropped.
    second = mark_stale(path, {DAYS[3]: ["b"], DAYS[4]: ["b"]}, {"monthly": {}}, now=200.0)
    pending = read_pending(path)
    assert {day: (e["token"], e["slos"]) for day, e in pending["history"].items()} == {
        "2026-07-03": (first, ["a"]),
        "2026-07-04": (second, ["a", "b"]),
        "2026-07-05": (second, ["b"]),
    }
    assert pending["monthly"]["2026-07-01"]["waits_for"] == ["2026-07-03"]
    assert pending["generation"] == 2
    assert mark_stale(path, {}, {"monthly": {}}) is None  # nothing stale: file untouched
    assert read_pending(path)["generation"] == 2
    # D4 was re-evaluated with the token read before the second marking: it stays pending.
    assert not clear_history_day(path, DAYS[3], first)
    assert clear_history_day(path, DAYS[3], history_token(path, DAYS[3]))
    assert clear_history_day(path, DAYS[2], first)
    assert not clear_history_day(path, DAYS[2], first)  # already gone
    assert list(read_pending(path)["history"]) == ["2026-07-05"]
    assert not list(tmp_path.glob("*.tmp"))


def _mark_many(path: Path, first: int) -> None:
    for offset in range(10):
        mark_stale(path, {date(2026, 6, 1) + timedelta(days=first + offset): ["lb"]}, {"monthly": {}})


def test_concurrent_markings_lose_nothing(tmp_path: Path) -> None:
    import multiprocessing

    path = pending_file(tmp_path / "w.duckdb")
    # Four processes mark ten different days each, at once: 40 read-modify-writes, 40 days, none lost.
    workers = [multiprocessing.Process(target=_mark_many, args=(path, 10 * n)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    pending = read_pending(path)
    assert len(pending["history"]) == 40 and pending["generation"] == 40


def test_sensor_requests_history_then_rendered_reports_idempotently(tmp_path: Path) -> None:
    resource = _resource(tmp_path)
    path = pending_file(Path(resource.warehouse))
    with DagsterInstance.ephemeral() as instance:
        assert _tick(resource, instance) == []  # no file yet
        # July was rendered before; August never was (a backfill, not a re-render).
        instance.report_runless_asset_event(AssetMaterialization("monthly_reports", partition="2026-07-01"))
        stale = {p.key: (p, DAYS[2:]) for p in MONTHS[1:3]}
        mark_stale(path, {day: ["lb"] for day in DAYS[2:]}, {"monthly": stale, "quarterly": {}})

        requests = _tick(resource, instance)
        assert [(r.job_name, r.partition_key) for r in requests] == [
            ("history_job", day.isoformat()) for day in DAYS[2:]
        ]  # July waits for its history days
        assert [r.run_key for r in _tick(resource, instance)] == [r.run_key for r in requests]
        assert list(read_pending(path)["monthly"]) == ["2026-07-01"]  # August dropped

        # A new late file for D3: D3 is asked again, the other days keep their keys.
        mark_stale(path, {DAYS[2]: ["lb"]}, {"monthly": {}})
        again = {r.partition_key: r.run_key for r in _tick(resource, instance)}
        before = {r.partition_key: r.run_key for r in requests}
        assert again["2026-07-03"] != before["2026-07-03"]
        assert {k: v for k, v in again.items() if k != "2026-07-03"} == {
            k: v for k, v in before.items() if k != "2026-07-03"
        }

        # Once the history days are recomputed, the July report is re-rendered, once.
        for day in DAYS[2:]:
            assert clear_history_day(path, day, history_token(path, day))
        (report,) = _tick(resource, instance)
        assert (report.job_name, report.partition_key) == ("monthly_reports_job", "2026-07-01")
        assert [r.run_key for r in _tick(resource, instance)] == [report.run_key]
        instance.report_runless_asset_event(AssetMaterialization("monthly_reports", partition="2026-07-01"))
        assert _tick(resource, instance) == []
        assert read_pending(path)["monthly"] == {}


def test_a_damaged_pending_file_is_named_and_never_overwritten(tmp_path: Path) -> None:
    resource = _resource(tmp_path)
    path = pending_file(Path(resource.warehouse))
    write(path, '{"history": {"2026-07-03": "not an object"}}')
    with pytest.raises(PendingFileError, match=r"stale_partitions.json: history: expected partition key"):
        mark_stale(path, {DAYS[2]: ["lb"]}, {"monthly": {}})
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, resources={"sloscope": resource})
        skipped = late_data_sensor(context)
    assert isinstance(skipped, SkipReason) and "stale_partitions.json" in (skipped.skip_message or "")
    assert json.loads(path.read_text()) == {"history": {"2026-07-03": "not an object"}}


def _counts(rows: list[tuple[datetime, int, int]]) -> str:
    return "timestamp,service,total,good\n" + "".join(
        f"{t:%Y-%m-%dT%H:%M:%S}Z,lb,{n},{g}\n" for t, n, g in rows
    )


# On time: every hour from 20 June to 7 July, 100 requests, 1 bad. Late: on 3 July at :30, 50 requests,
# 10 bad (so the late rows change every SLI that reads them).
ON_TIME = [(datetime(2026, 6, 20) + timedelta(hours=h), 100, 99) for h in range(17 * 24)]
LATE = [(datetime(2026, 7, 3, h, 30), 50, 40) for h in range(24)]
STORED = [date(2026, 7, d) for d in range(1, 6)]


def _history_rows(resource: SloscopeResource) -> list[tuple]:
    with open_warehouse(resource.warehouse) as con:
        return con.execute("SELECT * EXCLUDE (evaluated_at) FROM slo_history ORDER BY ALL").fetchall()


def _evaluated_at(resource: SloscopeResource) -> dict[date, object]:
    with open_warehouse(resource.warehouse) as con:
        return dict(con.execute("SELECT day, max(evaluated_at) FROM slo_history GROUP BY day").fetchall())


def _ingest(resource: SloscopeResource, instance: DagsterInstance) -> dict:
    assets = [raw_measurements, slo_definitions, sli_aggregates]
    result = materialize(assets, resources={"sloscope": resource}, instance=instance)
    assert result.success
    (counts,) = [
        m for m in result.get_asset_materialization_events() if m.asset_key.path == ["sli_counts_minute"]
    ]
    return counts.materialization.metadata


def _history(resource: SloscopeResource, instance: DagsterInstance, day: str) -> None:
    result = materialize(
        [slo_history], partition_key=day, resources={"sloscope": resource}, instance=instance
    )
    assert result.success


@pytest.mark.slow
def test_late_file_end_to_end_equals_a_warehouse_that_had_it_from_the_start(tmp_path: Path) -> None:
    late = _resource(tmp_path / "late")
    write(Path(late.landing) / "on_time.csv", _counts(ON_TIME))
    with DagsterInstance.ephemeral() as instance:
        _ingest(late, instance)
        for day in STORED:
            _history(late, instance, day.isoformat())
        assert read_pending(pending_file(Path(late.warehouse)))["history"] == {}  # nothing was late yet
        first = _evaluated_at(late)

        write(Path(late.landing) / "late.csv", _counts(LATE))
        metadata = _ingest(late, instance)
        assert metadata["late_data"].value == "3 history days stale"
        assert metadata["stale_history_days"].value == {
            day: ["lb"] for day in ("2026-07-03", "2026-07-04", "2026-07-05")
        }
        # The late rows lie in [3 Jul 00:30, 3 Jul 23:31): days 3, 4 and 5 July read them; 1 and 2 July
        # ended before them.
        requests = _tick(late, instance)
        assert [(r.job_name, r.partition_key) for r in requests] == [
            ("history_job", "2026-07-03"),
            ("history_job", "2026-07-04"),
            ("history_job", "2026-07-05"),
        ]
        for request in requests:
            _history(late, instance, request.partition_key)
        pending = read_pending(pending_file(Path(late.warehouse)))
        assert pending["history"] == {}
        assert _tick(late, instance) == []
        again = _evaluated_at(late)
        assert [day for day in STORED if again[day] != first[day]] == STORED[2:]

    whole = _resource(tmp_path / "whole")
    write(Path(whole.landing) / "on_time.csv", _counts(ON_TIME))
    write(Path(whole.landing) / "late.csv", _counts(LATE))
    with DagsterInstance.ephemeral() as instance:
        _ingest(whole, instance)
        for day in STORED:
            _history(whole, instance, day.isoformat())
    expected = _history_rows(whole)
    assert _history_rows(late) == expected
    # The late rows did change those days (the check above is not vacuous): 3 July's window has the
    # 24 late hours' 1,200 requests on top of 14 days x 24 h x 100 before 4 July 00:00.
    with open_warehouse(whole.warehouse) as con:
        total = con.execute("SELECT total FROM slo_history WHERE day = '2026-07-03'").fetchone()[0]
    assert total == 14 * 24 * 100 + 24 * 50
    assert json.loads(Path(late.warehouse).with_name("stale_partitions.json").read_text())["generation"] == 2


@pytest.mark.slow
def test_a_refresh_killed_after_its_commit_loses_no_staleness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import assets.sli

    resource = _resource(tmp_path)
    path = pending_file(Path(resource.warehouse))
    write(Path(resource.landing) / "on_time.csv", _counts(ON_TIME))
    with DagsterInstance.ephemeral() as instance:
        _ingest(resource, instance)
        for day in STORED:
            _history(resource, instance, day.isoformat())
        write(Path(resource.landing) / "late.csv", _counts(LATE))
        real = assets.sli.refresh

        def killed(con, slos):  # type: ignore[no-untyped-def]
            real(con, slos)  # the aggregates commit, and the process dies before the marking
            raise RuntimeError("killed after the commit")

        monkeypatch.setattr(assets.sli, "refresh", killed)
        assets_ = [raw_measurements, slo_definitions, sli_aggregates]
        crashed = materialize(
            assets_, resources={"sloscope": resource}, instance=instance, raise_on_error=False
        )
        assert not crashed.success
        left = read_pending(path)
        assert left["history"] == {} and len(left["unsettled"]) == 1
        monkeypatch.undo()
        # Nothing is dirty any more; the next refresh marks the journaled ranges: 3, 4 and 5 July.
        metadata = _ingest(resource, instance)
        assert metadata["minutes_recomputed"].value == 0
        assert metadata["late_data"].value == "3 history days stale"
        pending = read_pending(path)
        assert list(pending["history"]) == ["2026-07-03", "2026-07-04", "2026-07-05"]
        assert pending["unsettled"] == {}

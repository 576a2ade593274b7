"""Crash consistency: a real sloscope run SIGKILLed at each declared fault point, then run again, leaves the
warehouse exactly as one uninterrupted run does, and never sends a notification with a different payload.

The scenario is a scheduled run that follows an earlier one: the base warehouse already holds a first run
over part of the landing folder; then new files land (CSV counts with an outage, Parquet events with a
latency regression), one file is corrected in place (its rows are superseded) and one path is overwritten
with the bytes of a file already loaded (a duplicate). The run under test (tests/fault_run.py) ingests,
aggregates, evaluates, stores the hourly series, alerts, opens incidents, delivers webhooks to a real HTTP
receiver on 127.0.0.1, stores three days of history and applies retention at a fixed tick.

Every case runs twice in its own copy of the base: with ``SLOSCOPE_KILL_AT`` (must die by SIGKILL: exit
-9; exit 0 means the point was never reached), then without (must succeed). The cases run in a module
fixture, two processes at a time; each parametrised test then checks its own outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import polars as pl
import pytest

from pipelines.faults import POINTS
from tests.conftest import REPO_ROOT, write
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("fault_run.py")

# The kill specification per point: ``name#N`` kills at the N-th hit, so a point inside a loop is hit after
# earlier iterations committed; the mode says whether the run goes through dagster.materialize or the same
# domain calls without Dagster (a few seconds cheaper a run).
KILLS: dict[str, tuple[str, str]] = {
    # Files in discovery order: api/events-1.ndjson (already loaded: skipped), api/events-2.parquet (new),
    # api/late.csv (corrected: supersedes), api/scratch.csv (duplicate), shop/2026-03-01.csv (skipped),
    # shop/2026-03-03.csv (new). The #2 of a point inside the file transaction is late.csv, after
    # events-2.parquet committed; before_file#3 is before late.csv.
    "ingest.before_file": ("ingest.before_file#3", "dagster"),
    "ingest.after_supersede": ("ingest.after_supersede#2", "domain"),
    "ingest.after_validate": ("ingest.after_validate#2", "domain"),
    "ingest.after_load": ("ingest.after_load", "domain"),
    "ingest.after_quarantine": ("ingest.after_quarantine#2", "domain"),
    "ingest.after_record_file": ("ingest.after_record_file", "domain"),
    "ingest.after_commit": ("ingest.after_commit#2", "domain"),
    "ingest.after_duplicate": ("ingest.after_duplicate", "domain"),
    "aggregate.after_sync_thresholds": ("aggregate.after_sync_thresholds", "domain"),
    "aggregate.after_range": ("aggregate.after_range#2", "domain"),
    "aggregate.after_clear_thresholds": ("aggregate.after_clear_thresholds", "domain"),
    "aggregate.before_clear_dirty": ("aggregate.before_clear_dirty", "domain"),
    "aggregate.after_commit": ("aggregate.after_commit", "domain"),
    "evaluate.after_objectives": ("evaluate.after_objectives", "dagster"),
    "evaluate.after_status": ("evaluate.after_status", "domain"),
    "evaluate.after_hourly": ("evaluate.after_hourly", "domain"),
    # Three history days are stored: kill after the second, the first and second committed.
    "history.after_day": ("history.after_day#2", "domain"),
    "alerts.after_state": ("alerts.after_state", "domain"),
    "incidents.after_upsert": ("incidents.after_upsert", "domain"),
    "notify.after_outbox": ("notify.after_outbox", "domain"),
    # Several notifications are delivered: kill after the second was sent, the first recorded.
    "notify.after_send": ("notify.after_send#2", "dagster"),
    "retention.after_tier": ("retention.after_tier#2", "domain"),
}

# Columns that hold the wall-clock time of the run (or a duration measured on it), not a result: a re-run
# after a crash necessarily happens later. Everything else - ids, counts, data times - must be equal.
WALL_CLOCK_COLUMNS: dict[str, set[str]] = {
    # when the file was loaded (datetime.now in ingest_file)
    "ingested_files": {"ingested_at"},
    # when the record was quarantined (the retention tier's clock, see sql/retention_quarantine.sql)
    "quarantine": {"quarantined_at"},
    # utc_now() when the evaluation was stored
    "slo_status": {"evaluated_at"},
    "slo_history": {"evaluated_at"},
    # the incident engine runs on the wall clock (pipelines/alert_workflow.py docstring): when an alert was
    # last seen or resolved, incidents opened/updated/escalated, events happened and were recorded
    "alert_instances": {"last_seen_at", "resolved_at"},
    "incidents": {
        "opened_at",
        "updated_at",
        "acknowledged_at",
        "resolved_at",
        "escalated_at",
        "severity_since",
    },
    "incident_events": {"event_at", "recorded_at"},
    # queued and last updated at the engine's wall-clock "now"
    "notification_outbox": {"created_at", "updated_at"},
    # when each attempt was made, and how long the HTTP request took
    "notification_log": {"attempted_at", "duration_ms"},
    # when retention ran (the cutoff itself comes from the fixed tick and is compared)
    "retention_watermarks": {"applied_at"},
}
# Inside a queued notification's JSON: the engine's wall-clock "now", and the Alertmanager hold after it.
NOTIFICATION_WALL_CLOCK_FIELDS = ("at", "expires_at")

DAY0 = datetime(2026, 3, 1)
END = datetime(2026, 3, 3, 1, 0)  # the newest data minute ends here
OUTAGE = datetime(2026, 3, 3, 0, 20)  # shop fails completely for 30 minutes from here
HISTORY_DAYS = "2026-03-01,2026-03-02,2026-03-03"
# Retention tick: raw rows before 2026-03-03 (2d), minute aggregates before 2026-03-02 (3d) and quarantine
# older than 2 days by the quarantine's own clock (none: it is written at run time) go.
RETENTION_NOW = "2026-03-05T12:00:00"
SECRET = "fault-test-secret"

SETTINGS = """
[paths]
warehouse = "warehouse/sloscope.duckdb"
landing = "landing"
reports = "reports"
slos = "slos"
policies = "policies.yaml"
alerting = "alerting.yaml"
sources = "sources.yaml"

[history]
start_date = "2026-02-01"

[retention]
raw = "2d"
minute = "3d"
hour = "400d"
day = "forever"
quarantine = "2d"
"""

SLOS = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-availability, displayName: Shop availability}
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
metadata: {name: api-availability}
spec:
  service: api
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {service: api, status_code: {lt: 500}}}}
        total: {metricSource: {type: sloscope, spec: {service: api}}}
  timeWindow: [{duration: 7d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "99%", target: 0.99}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: api-latency}
spec:
  service: api
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}, latency_ms: {lte: 300}}}}
        total: {metricSource: {type: sloscope, spec: {service: api}}}
  timeWindow: [{duration: 7d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "95% under 300 ms", target: 0.95}]
"""

# Added between the two runs: a new latency threshold (1 s) the aggregates must be rebuilt for.
CONTRACT_SLO = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: api-latency-contract}
spec:
  service: api
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {latency_ms: {lte: 1000}}}}
        total: {metricSource: {type: sloscope, spec: {service: api}}}
  timeWindow: [{duration: 7d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: "90% under 1 s", target: 0.9}]
"""

# Two webhook channels, so a page is delivered twice per alert (and notify.after_send#2 has a target). No-data
# alerts are off: the data is in the past, and silence judged on the wall clock is not what is under test.
ALERTING = """
defaults: {no_data_after: 0m}
routes:
  default: {page: [hook, audit], ticket: [hook]}
channels:
  hook: {type: webhook, url_env: FAULT_HOOK_URL, secret_env: FAULT_HOOK_SECRET}
  audit: {type: webhook, url_env: FAULT_AUDIT_URL, secret_env: FAULT_HOOK_SECRET}
"""


def _iso(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M}:00Z"


def _minutes(start: datetime, end: datetime) -> list[datetime]:
    return [start + timedelta(minutes=m) for m in range((end - start) // timedelta(minutes=1))]


def _shop_counts(path: Path, start: datetime, end: datetime, extra: list[str] = ()) -> None:  # type: ignore[assignment]
    lines = ["timestamp,service,operation,total,good"]
    for moment in _minutes(start, end):
        failing = OUTAGE <= moment < OUTAGE + timedelta(minutes=30)
        lines += [
            f"{_iso(moment)},shop,pay,6,{0 if failing else 6}",
            f"{_iso(moment)},shop,browse,4,{0 if failing else 4}",
        ]
    write(path, "\n".join([*lines, *extra]) + "\n")


def _api_event(moment: datetime, i: int) -> dict[str, Any]:
    # One 5xx every 50 events; latency 40-290 ms, except a regression to 450 ms on day 3 after 00:30.
    slow = moment >= datetime(2026, 3, 3, 0, 30)
    return {
        "timestamp": _iso(moment),
        "service": "api",
        "operation": "get" if i % 3 else "put",
        "status_code": 503 if (moment.minute * 7 + i) % 50 == 0 else 200,
        "latency_ms": 450.0 if slow and i % 2 == 0 else 40.0 + (moment.minute * 13 + i * 31) % 250,
    }


def _phase_a(landing: Path) -> None:
    """What the earlier run found: two days of shop counts and api events, a file later corrected, and a
    file whose path later receives another file's bytes."""
    _shop_counts(
        landing / "shop" / "2026-03-01.csv",
        DAY0,
        DAY0 + timedelta(days=2),
        extra=["not-a-time,shop,pay,6,6", "2026-03-01T00:00:00Z,,pay,6,6"],  # quarantined: time, service
    )
    lines = [json.dumps(_api_event(m, i)) for m in _minutes(DAY0, DAY0 + timedelta(days=2)) for i in range(2)]
    lines += [
        "{not json",
        json.dumps({**_api_event(DAY0, 0), "status_code": "abc"}),
        json.dumps({**_api_event(DAY0, 0), "timestamp": "2099-01-01T00:00:00Z"}),  # in the future
    ]
    write(landing / "api" / "events-1.ndjson", "\n".join(lines) + "\n")
    write(landing / "api" / "late.csv", _late_csv(extra_bad=False))
    write(landing / "api" / "scratch.csv", _late_csv(extra_bad=False).replace(",200,", ",201,"))


def _late_csv(*, extra_bad: bool) -> str:
    rows = ["timestamp,service,operation,status_code,latency_ms"]
    for moment in _minutes(datetime(2026, 3, 2, 12), datetime(2026, 3, 2, 13)):
        rows.append(f"{_iso(moment)},api,batch,200,120")
    if extra_bad:
        rows += [f"{_iso(datetime(2026, 3, 2, 12))},api,batch,200,-5", "2026-03-02T12:00:00Z,api,batch,2x0,1"]
    return "\n".join(rows) + "\n"


def _phase_b(landing: Path) -> None:
    """What landed since: day 3 of shop (with the outage), api events of day 3 as Parquet (with a latency
    regression), a corrected late.csv (its earlier rows superseded), and scratch.csv overwritten with the
    bytes of the already-loaded shop file (recorded as a duplicate, its earlier rows removed); and a new
    SLO with a new latency threshold."""
    _shop_counts(landing / "shop" / "2026-03-03.csv", DAY0 + timedelta(days=2), END)
    rows = [_api_event(m, i) for m in _minutes(DAY0 + timedelta(days=2), END) for i in range(4)]
    frame = pl.DataFrame(rows).with_columns(pl.col("status_code").cast(pl.Int64))
    bad = pl.DataFrame(
        [{**rows[0], "service": None}, {**rows[1], "latency_ms": -1.0}],
        schema=frame.schema,
    )
    (landing / "api").mkdir(parents=True, exist_ok=True)
    pl.concat([frame, bad]).write_parquet(landing / "api" / "events-2.parquet")
    write(landing / "api" / "late.csv", _late_csv(extra_bad=True))
    shutil.copyfile(landing / "shop" / "2026-03-01.csv", landing / "api" / "scratch.csv")
    write(landing.parent / "slos" / "contract.yaml", CONTRACT_SLO)


# ---------------------------------------------------------------------------------------------------------
# Running and comparing


def _env(root: Path, receiver: Receiver, case: str, kill_at: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOSCOPE_")}
    env.update(
        SLOSCOPE_SETTINGS=str(root / "sloscope.toml"),
        FAULT_HOOK_URL=receiver.url(f"/{case}/hook"),
        FAULT_AUDIT_URL=receiver.url(f"/{case}/audit"),
        FAULT_HOOK_SECRET=SECRET,
        FAULT_HISTORY_DAYS=HISTORY_DAYS,
        FAULT_RETENTION_NOW=RETENTION_NOW,
        GX_ANALYTICS_ENABLED="false",
        PYTHONPATH=str(REPO_ROOT),
    )
    if kill_at:
        env["SLOSCOPE_KILL_AT"] = kill_at
    return env


def _run(root: Path, mode: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUNNER), mode],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _copy_base(base: Path, root: Path) -> None:
    """A copy of the base scenario at ``root``, its warehouse moved with it: ingestion identifies files by
    absolute path, so the earlier run's paths are rewritten to the copy's (as if the whole deployment had
    always lived there)."""
    shutil.copytree(base, root)
    with duckdb.connect(str(root / "warehouse" / "sloscope.duckdb")) as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE data_type = 'VARCHAR' AND NOT internal"
        ).fetchall()
        for table, column in columns:
            con.execute(
                f'UPDATE "{table}" SET "{column}" = replace("{column}", $base, $root) '
                f'WHERE contains("{column}", $base)',
                {"base": str(base), "root": str(root)},
            )


def _normalise(table: str, column: str, value: Any, root: str) -> Any:
    if isinstance(value, str):
        value = value.replace(root, "<root>")
        if table == "notification_outbox" and column == "notification":
            document = json.loads(value)
            for name in NOTIFICATION_WALL_CLOCK_FIELDS:
                document.pop(name, None)
            value = json.dumps(document, sort_keys=True)
    return value


def snapshot(warehouse: Path, root: Path) -> dict[str, Counter]:
    """Every table as a multiset of rows, without the wall-clock columns, paths relative to the scenario."""
    out: dict[str, Counter] = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        for table in tables:
            columns = [d[0] for d in con.execute(f'SELECT * FROM "{table}" LIMIT 0').description]
            kept = [c for c in columns if c not in WALL_CLOCK_COLUMNS.get(table, set())]
            select = ", ".join(f'"{c}"' for c in kept)
            rows = con.execute(f'SELECT {select} FROM "{table}"').fetchall()
            out[table] = Counter(
                tuple(_normalise(table, c, v, str(root)) for c, v in zip(kept, row, strict=True))
                for row in rows
            )
    return out


def crash_invariants(warehouse: Path) -> list[str]:
    """What must hold in the warehouse a crash left behind, before anything repairs it: it opens, and every
    loaded file's rows are all there (raw rows and quarantine records match its accounting)."""
    problems = []
    with duckdb.connect(str(warehouse)) as con:
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            con.execute(f'SELECT count(*) FROM "{table}"').fetchall()
        bad = con.execute(
            """
            SELECT f.file_id, f.path, f.rows_read, f.rows_loaded, f.rows_quarantined,
                   (SELECT count(*) FROM raw_events e WHERE e.file_id = f.file_id)
                   + (SELECT count(*) FROM raw_counts c WHERE c.file_id = f.file_id) AS raw_rows,
                   (SELECT count(*) FROM quarantine q WHERE q.file_id = f.file_id) AS quarantined
            FROM ingested_files f
            WHERE f.status = 'loaded'
              AND (f.rows_read <> f.rows_loaded + f.rows_quarantined
                   OR raw_rows <> f.rows_loaded OR quarantined <> f.rows_quarantined)
            """
        ).fetchall()
        problems += [f"file accounting broken: {row}" for row in bad]
        orphans = con.execute(
            """
            SELECT 'raw_events', file_id FROM raw_events WHERE file_id NOT IN
                (SELECT file_id FROM ingested_files WHERE status = 'loaded')
            UNION ALL SELECT 'raw_counts', file_id FROM raw_counts WHERE file_id NOT IN
                (SELECT file_id FROM ingested_files WHERE status = 'loaded')
            UNION ALL SELECT 'quarantine', file_id FROM quarantine WHERE file_id NOT IN
                (SELECT file_id FROM ingested_files)
            LIMIT 5
            """
        ).fetchall()
        problems += [f"rows of no loaded file: {row}" for row in orphans]
    return problems


def accounting_problems(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "SELECT path, rows_read, rows_loaded, rows_quarantined FROM ingested_files "
            "WHERE rows_read <> rows_loaded + rows_quarantined"
        ).fetchall()


@dataclass
class Deliveries:
    """The webhook requests of one case, per (channel, idempotency key): the bodies received."""

    by_key: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)

    @classmethod
    def of(cls, receiver: Receiver, case: str) -> Deliveries:
        out = cls()
        for request in list(receiver.requests):
            prefix, _, channel = request.path.strip("/").partition("/")
            if prefix == case:
                key = unquote(request.header("Idempotency-Key") or "")
                out.by_key.setdefault((channel, key), []).append(request.body)
        return out

    def by_key_of_log(self) -> list[tuple[str, str]]:
        """(key, channel) of every request, as notification_log names a delivery."""
        return [(key, channel) for channel, key in self.by_key]

    def documents(self) -> dict[tuple[str, str], str]:
        """One body per key (the first), without the wall-clock fields, for comparison across runs."""
        out = {}
        for key, bodies in self.by_key.items():
            document = json.loads(bodies[0])
            for name in NOTIFICATION_WALL_CLOCK_FIELDS:
                document.pop(name, None)
            out[key] = json.dumps(document, sort_keys=True)
        return out


@dataclass
class Outcome:
    point: str
    kill_at: str
    mode: str
    killed: subprocess.CompletedProcess[str]
    rerun: subprocess.CompletedProcess[str] | None
    after_crash: list[str]
    root: Path
    seconds: float


def _log_tail(process: subprocess.CompletedProcess[str]) -> str:
    return (process.stdout[-1500:] + "\n" + process.stderr[-3000:]).strip()


@dataclass
class Harness:
    base: Path
    work: Path
    receiver: Receiver
    reference: dict[str, Counter]
    reference_deliveries: Deliveries
    reference_seconds: float
    outcomes: dict[str, Outcome]


def _case(base: Path, work: Path, receiver: Receiver, point: str) -> Outcome:
    kill_at, mode = KILLS[point]
    root = work / point.replace(".", "_")
    _copy_base(base, root)
    started = time.monotonic()
    killed = _run(root, mode, _env(root, receiver, root.name, kill_at))
    after_crash: list[str] = []
    rerun = None
    if killed.returncode == -9:
        after_crash = crash_invariants(root / "warehouse" / "sloscope.duckdb")
        rerun = _run(root, mode, _env(root, receiver, root.name, None))
    return Outcome(point, kill_at, mode, killed, rerun, after_crash, root, time.monotonic() - started)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("faults")
    base = work / "base"
    write(base / "sloscope.toml", SETTINGS)
    write(base / "slos" / "slos.yaml", SLOS)
    write(base / "alerting.yaml", ALERTING)
    _phase_a(base / "landing")
    with Receiver(default=Reply(200, b"ok")) as receiver:
        # The earlier run: phase A's files, one history day, no retention yet.
        env = _env(base, receiver, "base", None)
        env.update(FAULT_HISTORY_DAYS="2026-03-01")
        env.pop("FAULT_RETENTION_NOW")
        first = _run(base, "domain", env)
        assert first.returncode == 0, _log_tail(first)
        _phase_b(base / "landing")

        reference_root = work / "reference"
        _copy_base(base, reference_root)

        def reference_run() -> tuple[subprocess.CompletedProcess[str], float]:
            started = time.monotonic()
            ran = _run(reference_root, "dagster", _env(reference_root, receiver, "reference", None))
            return ran, time.monotonic() - started

        # Two processes at a time (two cores): the uninterrupted run first, then the cases.
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending_reference = pool.submit(reference_run)
            futures = {p: pool.submit(_case, base, work, receiver, p) for p in POINTS}
            ref, reference_seconds = pending_reference.result()
            outcomes = {p: f.result() for p, f in futures.items()}
        assert ref.returncode == 0, _log_tail(ref)
        reference = snapshot(reference_root / "warehouse" / "sloscope.duckdb", reference_root)
        yield Harness(
            base,
            work,
            receiver,
            reference,
            Deliveries.of(receiver, "reference"),
            reference_seconds,
            outcomes,
        )


def test_every_point_has_a_kill() -> None:
    assert set(KILLS) == set(POINTS)


def test_reference_run_is_non_trivial(harness: Harness) -> None:
    """The scenario exercises what the points guard: quarantine, supersede, duplicate, alerts, retention."""
    ref = harness.reference
    statuses = Counter(row[5] for row in ref["ingested_files"])  # the status column
    # Loaded: events-1, shop 03-01 (earlier run), events-2, late.csv v2, shop 03-03. Superseded: late.csv v1
    # and scratch.csv v1. Duplicate: scratch.csv v2 (the bytes of shop 03-01).
    assert (statuses["loaded"], statuses["superseded"], statuses["duplicate"]) == (5, 2, 1), statuses
    # Bad rows written by _phase_a and _phase_b: shop 03-01 2, events-1 3, events-2 2, late.csv v2 2.
    assert sum(ref["quarantine"].values()) == 9
    # The SLO added before this run declared a new latency threshold: the threshold aggregates were rebuilt.
    assert any(1000.0 in row for row in ref["sli_thresholds"]), ref["sli_thresholds"]
    # Retention removed the raw rows before 2026-03-03 (2 days before the tick, floored to the day).
    assert ref["raw_counts"] and not [r for r in ref["raw_counts"] if r[0] < datetime(2026, 3, 3)]
    # This run delivered pages and tickets on both channels (the earlier run's deliveries are in the log too).
    before = snapshot(harness.base / "warehouse" / "sloscope.duckdb", harness.base)["notification_log"]
    delivered = Counter(r[:2] for r in ref["notification_log"] - before if r[4] == "delivered")
    assert sorted(delivered) == sorted(harness.reference_deliveries.by_key_of_log())
    assert {channel for _, channel in delivered} == {"hook", "audit"} and len(delivered) >= 4
    assert accounting_problems(harness.work / "reference" / "warehouse" / "sloscope.duckdb") == []
    cases = ", ".join(f"{o.kill_at} {o.seconds:.0f} s" for o in harness.outcomes.values())
    print(f"\nreference run: {harness.reference_seconds:.1f} s; kill + re-run: {cases}")


@pytest.mark.parametrize("point", list(POINTS))
def test_crash_and_rerun_match_an_uninterrupted_run(harness: Harness, point: str) -> None:
    outcome = harness.outcomes[point]
    killed = outcome.killed
    assert killed.returncode != 0, (
        f"fault point {point} ({outcome.kill_at}, {outcome.mode} run) was never reached: the run completed. "
        f"Insert fault_point({point!r}) where POINTS says ({POINTS[point]})."
    )
    assert killed.returncode == -9, (
        f"expected SIGKILL at {outcome.kill_at}, got exit {killed.returncode}:\n" + (_log_tail(killed))
    )
    assert outcome.after_crash == [], outcome.after_crash
    assert outcome.rerun is not None and outcome.rerun.returncode == 0, _log_tail(outcome.rerun)  # type: ignore[arg-type]

    warehouse = outcome.root / "warehouse" / "sloscope.duckdb"
    assert accounting_problems(warehouse) == []
    got = snapshot(warehouse, outcome.root)
    assert set(got) == set(harness.reference)
    for table, rows in harness.reference.items():
        missing = rows - got[table]
        extra = got[table] - rows
        assert not missing and not extra, (
            f"{table} differs from the uninterrupted run after a crash at {outcome.kill_at}: "
            f"{sum(missing.values())} row(s) missing, e.g. {list(missing)[:2]}; "
            f"{sum(extra.values())} extra, e.g. {list(extra)[:2]}"
        )

    # The breach sensor's file (written after slo_status, off the warehouse) is the same too.
    breaches = outcome.root / "warehouse" / "breaches.json"
    assert json.loads(breaches.read_text()) == json.loads(
        (harness.work / "reference" / "warehouse" / "breaches.json").read_text()
    )

    # Notifications: every key the uninterrupted run delivered arrives, with the same payload; a key is
    # received twice only when the crash fell between sending it and recording it (notify.after_send), and
    # then both copies are byte-identical (the body comes from the outbox, not recomputed).
    deliveries = Deliveries.of(harness.receiver, outcome.root.name)
    assert deliveries.documents() == harness.reference_deliveries.documents()
    repeated = {key: bodies for key, bodies in deliveries.by_key.items() if len(bodies) > 1}
    for key, bodies in repeated.items():
        assert len(set(bodies)) == 1, f"{key} was sent twice with different payloads"
    if point == "notify.after_send":
        assert len(repeated) == 1 and all(len(b) == 2 for b in repeated.values()), repeated
    else:
        assert repeated == {}, f"sent more than once after a crash at {outcome.kill_at}: {list(repeated)}"

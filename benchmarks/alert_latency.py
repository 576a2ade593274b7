"""Alert latency: from a file landing in the folder to the notification arriving at the receiver.

Usage: .venv/bin/python benchmarks/alert_latency.py [--repeats N] [--timeout SECONDS] [--keep]

What it measures. The issue asks that a file landing in the landing folder becomes a notification at the
receiver in under 60 s with the Dagster daemon running. This script runs the real thing on this machine and
prints the figure; it asserts no time (it is deliberately not a timed test):

1. A throwaway workspace in a temporary folder: ``sloscope.toml`` (absolute paths: a fresh warehouse,
   landing and reports folders, the repository's ``data/slos`` and ``data/policies.yaml``), an
   ``alerting.yaml`` with one signed ``webhook`` channel for pages and tickets, and a ``DAGSTER_HOME`` with
   a copy of the repository's ``dagster.yaml`` (one run at a time, as ``make ui`` uses).
2. A recording HTTP receiver on 127.0.0.1 (stdlib, in a thread) that notes the arrival time of every POST
   and checks its ``X-Sloscope-Signature``.
3. A seed file with two hours of healthy traffic for checkout, search and payments-api lands first; then
   ``dagster dev -w workspace.yaml`` starts, ``landing_sensor`` is switched on through GraphQL, and the
   seed's ``evaluate_job`` run is awaited, so the warehouse is warm and no alert is firing.
4. Each measured step lands an outage file atomically (written outside the folder, then ``os.replace``)
   with ten minutes of HTTP 500s for one service, so the 1h/5m burn rate is far above the page factor.
   t0 is taken right after ``os.replace``; t1 is the arrival of the first ``trigger`` notification for that
   service. Each step uses another service (checkout, search, payments-api), so each opens its own incident.

The breakdown of each step comes from Dagster's own records (GraphQL): the sensor tick that saw the file,
the run's enqueued, dequeued, starting and started events, and the step timings of the run.
Only 127.0.0.1 is contacted. ``dagster dev`` and the receiver are always shut down; the exit status is 1
when a notification did not arrive within the bound (its log is kept and named).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from pipelines.slo.alert_config import load_alerting
from pipelines.slo.notify import verify_signature

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 60.0
SECRET_ENV = "SLOSCOPE_BENCH_WEBHOOK_SECRET"
CHANNEL = "bench-webhook"
SENSOR = "landing_sensor"
JOB = "evaluate_job"
# Operations per service, as the demo data and data/slos/*.yaml name them.
SERVICES: dict[str, tuple[str, ...]] = {
    "checkout": ("view-cart", "place-order", "apply-coupon"),
    "search": ("query", "suggest"),
    "payments-api": ("authorize", "capture", "refund"),
}
REQUESTS_PER_MINUTE = 30  # per service
SEED_MINUTES = 120
OUTAGE_MINUTES = 10
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
# Never through a proxy: everything here is on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---------------------------------------------------------------------------------------------------------
# The receiver


@dataclass(frozen=True)
class Delivery:
    arrived: float  # time.time() when the request was read
    path: str
    body: dict[str, Any]
    signature_ok: bool


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every POST (arrival time, JSON body, signature check)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode("utf-8")
        self.deliveries: list[Delivery] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                arrived = time.time()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode("utf-8", "replace")}
                signed = verify_signature(
                    receiver.secret,
                    self.headers.get("X-Sloscope-Timestamp", ""),
                    raw,
                    self.headers.get("X-Sloscope-Signature", ""),
                    now=datetime.now(UTC),
                )
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver._changed:
                    receiver.deliveries.append(Delivery(arrived, self.path, body, signed))
                    receiver._changed.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="receiver", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for_trigger(self, service: str, since: float, timeout: float) -> Delivery | None:
        """The first ``trigger`` notification for ``service`` that arrived at or after ``since``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for d in self.deliveries:
                    if (
                        d.arrived >= since
                        and d.body.get("action") == "trigger"
                        and d.body.get("service") == service
                    ):
                        return d
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(min(left, 1.0))


# ---------------------------------------------------------------------------------------------------------
# Data files (events schema: timestamp, service, operation, status_code, latency_ms)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_rows(
    services: list[str], start: datetime, end: datetime, status: int, rng: random.Random
) -> list[tuple[str, str, str, int, float]]:
    """``REQUESTS_PER_MINUTE`` requests per service per minute in [start, end), evenly spaced, operations in
    turn; healthy latencies stay under 300 ms so only availability can page."""
    rows = []
    step = timedelta(seconds=60 / REQUESTS_PER_MINUTE)
    for service in services:
        operations = SERVICES[service]
        moment, number = start, 0
        while moment < end:
            latency = round(rng.uniform(20, 250), 1)
            rows.append((_stamp(moment), service, operations[number % len(operations)], status, latency))
            moment += step
            number += 1
    return rows


def write_events(path: Path, rows: list[tuple[str, str, str, int, float]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(("timestamp", "service", "operation", "status_code", "latency_ms"))
        writer.writerows(rows)


def land_atomically(
    rows: list[tuple[str, str, str, int, float]], staging: Path, landing: Path, name: str
) -> float:
    """Write the file outside the landing folder, then rename it in; returns time.time() after the rename."""
    scratch = staging / name
    write_events(scratch, rows)
    os.replace(scratch, landing / name)
    return time.time()


# ---------------------------------------------------------------------------------------------------------
# Dagster over GraphQL


class Dagster:
    """``dagster dev`` in its own process group, and the few GraphQL calls this benchmark needs."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.port = port
        self.log_path = log_path
        self._log = log_path.open("wb")
        dagster = Path(sys.executable).with_name("dagster")
        self.process = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: webserver, daemon and code server stop with it
        )
        self.location = ""
        self.repository = ""

    def query(
        self, text: str, variables: dict[str, Any] | None = None, timeout: float = 30
    ) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"query": text, "variables": variables or {}}).encode("utf-8"),
            headers={"Content-Type": "application/json"},
        )
        with _OPENER.open(request, timeout=timeout) as response:
            document = json.load(response)
        if document.get("errors"):
            raise RuntimeError(f"GraphQL errors: {document['errors']}")
        return document["data"]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"dagster dev exited with status {self.process.returncode}; see {self.log_path}"
            )

    def wait_until_loaded(self, timeout: float) -> float:
        """Wait for the webserver and the code location; returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        query = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
            name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                entries = self.query(query, timeout=5)["workspaceOrError"].get("locationEntries") or []
            except (OSError, urllib.error.URLError, RuntimeError, ValueError):
                time.sleep(0.5)
                continue
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                problems = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                if problems:
                    raise RuntimeError(f"code location failed to load: {problems[0]['locationOrLoadError']}")
                break
            time.sleep(0.5)
        else:
            raise TimeoutError(
                f"dagster dev did not load the workspace in {timeout:.0f} s; see {self.log_path}"
            )
        repos = self.query(
            "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
        )["repositoriesOrError"]["nodes"]
        self.repository, self.location = repos[0]["name"], repos[0]["location"]["name"]
        return time.monotonic() - started

    def _sensor_selector(self) -> dict[str, str]:
        return {
            "repositoryLocationName": self.location,
            "repositoryName": self.repository,
            "sensorName": SENSOR,
        }

    def start_sensor(self) -> None:
        result = self.query(
            """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {
                __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }""",
            {"s": self._sensor_selector()},
        )["startSensor"]
        if result["__typename"] != "Sensor" or result["sensorState"]["status"] != "RUNNING":
            raise RuntimeError(f"could not start {SENSOR}: {result}")

    def runs(self) -> list[dict[str, Any]]:
        """Runs of the job, newest first."""
        data = self.query(
            """query($f: RunsFilter) { runsOrError(filter: $f, limit: 20) { __typename ... on Runs {
                results { runId status creationTime startTime endTime } } } }""",
            {"f": {"pipelineName": JOB}},
        )["runsOrError"]
        return data.get("results") or []

    def wait_for_run_after(self, created_after: float, timeout: float) -> dict[str, Any]:
        """The first run created after ``created_after``, once it has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            mine = [r for r in self.runs() if r["creationTime"] >= created_after]
            if mine:
                run = min(mine, key=lambda r: r["creationTime"])
                if run["status"] in TERMINAL:
                    return run
            time.sleep(1.0)
        raise TimeoutError(f"no {JOB} run created after t0 finished within {timeout:.0f} s")

    def tick_of(self, run_id: str) -> dict[str, Any] | None:
        ticks = self.query(
            """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor {
                sensorState { ticks(limit: 50) { timestamp endTimestamp status runIds } } } } }""",
            {"s": self._sensor_selector()},
        )["sensorOrError"]["sensorState"]["ticks"]
        return next((t for t in ticks if run_id in t["runIds"]), None)

    def events(self, run_id: str) -> list[dict[str, Any]]:
        data = self.query(
            """query($id: ID!) { logsForRun(runId: $id, limit: 5000) { __typename ... on EventConnection {
                events { __typename ... on MessageEvent { timestamp } ... on StepEvent { stepKey } } } } }""",
            {"id": run_id},
        )["logsForRun"]
        return data.get("events") or []

    def stop(self) -> None:
        """SIGTERM to dagster dev's process group; SIGKILL after 20 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log.close()


# ---------------------------------------------------------------------------------------------------------
# One measurement


@dataclass
class Measurement:
    service: str
    t0: float
    delivery: Delivery
    run: dict[str, Any]
    tick: dict[str, Any] | None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.delivery.arrived - self.t0

    def _first(self, typename: str, step: str | None = None) -> float | None:
        for e in self.events:
            if e["__typename"] == typename and (step is None or e.get("stepKey") == step):
                return int(e["timestamp"]) / 1000
        return None

    def steps(self) -> list[tuple[str, float, float]]:
        """(step, start, end) in execution order."""
        starts: dict[str, float] = {}
        out = []
        for e in self.events:
            key, kind = e.get("stepKey"), e["__typename"]
            if not key:
                continue
            if kind == "ExecutionStepStartEvent":
                starts[key] = int(e["timestamp"]) / 1000
            elif kind in ("ExecutionStepSuccessEvent", "ExecutionStepFailureEvent") and key in starts:
                out.append((key, starts[key], int(e["timestamp"]) / 1000))
        return out

    def breakdown(self) -> list[tuple[str, float | None, float | None, str]]:
        """(label, from, to, note): consecutive intervals from landing to the notification. Dagster 1.13
        records no dequeue event: the queue wait and the launch are one interval."""
        tick = f"tick began {self.tick['timestamp'] - self.t0:+.1f} s" if self.tick else "tick not found"
        enqueued = self._first("RunEnqueuedEvent") or self.run["creationTime"]
        starting = self._first("RunStartingEvent")
        started = self._first("RunStartEvent") or self.run["startTime"]
        incidents = self._first("ExecutionStepStartEvent", "incidents")
        return [
            ("landing -> run enqueued", self.t0, enqueued, f"sensor: 10 s interval, 5 s daemon loop; {tick}"),
            ("enqueued -> launching", enqueued, starting, "run queue daemon (dequeues every 5 s)"),
            ("launching -> run started", starting, started, "run worker process starts, imports the code"),
            ("run started -> incidents step", started, incidents, "ingest, checks, aggregates, status"),
            ("incidents step -> notification", incidents, self.delivery.arrived, "alerting and delivery"),
        ]


def measure(
    dagster: Dagster,
    receiver: Receiver,
    service: str,
    number: int,
    staging: Path,
    landing: Path,
    timeout: float,
) -> Measurement | None:
    now = datetime.now(UTC)
    rows = event_rows([service], now - timedelta(minutes=OUTAGE_MINUTES), now, 500, random.Random(number))
    t0 = land_atomically(rows, staging, landing, f"outage-{number}-{service}.csv")
    print(f"  [{number}] {len(rows)} failing {service} requests landed; waiting for the page ...", flush=True)
    delivery = receiver.wait_for_trigger(service, t0, timeout)
    if delivery is None:
        return None
    run = dagster.wait_for_run_after(t0, timeout)
    return Measurement(
        service, t0, delivery, run, dagster.tick_of(run["runId"]), dagster.events(run["runId"])
    )


def report(m: Measurement) -> None:
    print(
        f"  landing -> notification: {m.seconds:.1f} s (target < {TARGET_SECONDS:.0f} s)   "
        f"[{m.service}: {m.delivery.body.get('slo')} {m.delivery.body.get('severity')}, "
        f"signature {'valid' if m.delivery.signature_ok else 'INVALID'}]"
    )
    for label, start, end, note in m.breakdown():
        figure = f"{end - start:6.1f} s" if start is not None and end is not None else "     n/a"
        print(f"      {label:<34} {figure}   {note}")
    if m.run.get("endTime"):
        print(
            f"      (run finished {m.run['endTime'] - m.delivery.arrived:.1f} s after the notification, "
            f"status {m.run['status']})"
        )
    steps = m.steps()
    if steps:
        slowest = sorted(steps, key=lambda s: s[1] - s[2])[:4]
        total = sum(end - start for _, start, end in steps)
        gx = sum(end - start for key, start, end in steps if key.endswith("_expectations"))
        print(
            f"      steps: {len(steps)} taking {total:.1f} s ({gx:.1f} s in the Great Expectations checks); "
            f"slowest: {', '.join(f'{key} {end - start:.1f} s' for key, start, end in slowest)}"
        )


# ---------------------------------------------------------------------------------------------------------
# Setup and main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_workspace(work: Path, receiver_port: int) -> tuple[Path, Path]:
    """The settings and alerting files; returns (settings file, landing folder)."""
    landing, reports, warehouse = work / "landing", work / "reports", work / "warehouse"
    for folder in (landing, reports, warehouse, work / "staging"):
        folder.mkdir()
    alerting = work / "alerting.yaml"
    alerting.write_text(
        f"""channels:
  {CHANNEL}:
    type: webhook
    url: http://127.0.0.1:{receiver_port}/hook
    secret_env: {SECRET_ENV}
    timeout_seconds: 5
routes:
  default: {{page: [{CHANNEL}], ticket: [{CHANNEL}]}}
""",
        encoding="utf-8",
    )
    config = load_alerting(alerting)  # raises AlertConfigError with every problem listed
    if config.channels_for("checkout", "page", 1) != (CHANNEL,):
        raise RuntimeError(f"{alerting}: pages are not routed to {CHANNEL}: {config.routes}")
    settings = work / "sloscope.toml"
    paths = {
        "warehouse": warehouse / "sloscope.duckdb",
        "landing": landing,
        "reports": reports,
        "slos": REPO_ROOT / "data" / "slos",
        "policies": REPO_ROOT / "data" / "policies.yaml",
        "alerting": alerting,
    }
    # JSON strings are valid TOML basic strings.
    settings.write_text(
        "[paths]\n" + "".join(f"{key} = {json.dumps(str(path))}\n" for key, path in paths.items()),
        encoding="utf-8",
    )
    return settings, landing


def environment(settings: Path, dagster_home: Path, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOSCOPE_")}
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    env.update(
        SLOSCOPE_SETTINGS=str(settings),
        DAGSTER_HOME=str(dagster_home),
        GX_ANALYTICS_ENABLED="false",
        NO_PROXY=no_proxy,
        no_proxy=no_proxy,
        **{SECRET_ENV: secret},
    )
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        choices=range(1, len(SERVICES) + 1),
        help="measured steps, one service each (default 3)",
    )
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for each notification")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace and logs")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sloscope-alert-latency-"))
    dagster_home = work / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    secret = secrets.token_hex(16)
    receiver = Receiver(secret)
    receiver.start()
    dagster: Dagster | None = None
    measurements: list[Measurement] = []
    failed = False
    try:
        settings, landing = write_workspace(work, receiver.port)
        env = environment(settings, dagster_home, secret)
        # The seed lands before Dagster starts: the sensor's first tick picks it up.
        now = datetime.now(UTC)
        seed = event_rows(list(SERVICES), now - timedelta(minutes=SEED_MINUTES), now, 200, random.Random(0))
        write_events(landing / "seed.csv", seed)
        print(f"alert latency benchmark: workspace {work}")
        print(
            f"  receiver http://127.0.0.1:{receiver.port}/hook; seed: {len(seed):,} healthy requests over "
            f"{SEED_MINUTES} min for {', '.join(SERVICES)}"
        )

        dagster = Dagster(env, free_port(), work / "dagster-dev.log")
        loaded = dagster.wait_until_loaded(timeout=180)
        print(f"  dagster dev on port {dagster.port}: workspace loaded in {loaded:.1f} s", flush=True)
        sensor_on = time.time()
        dagster.start_sensor()
        seed_run = dagster.wait_for_run_after(sensor_on - 1, timeout=300)
        if seed_run["status"] != "SUCCESS":
            raise RuntimeError(f"the seed run {seed_run['runId']} ended {seed_run['status']}")
        print(
            f"  seed run {seed_run['runId'][:8]}: {seed_run['endTime'] - sensor_on:.1f} s from sensor start "
            f"to run end; {len(receiver.deliveries)} notification(s) for healthy data",
            flush=True,
        )
        time.sleep(2)  # let the run's process exit before the next file lands

        for number, service in enumerate(list(SERVICES)[: args.repeats], start=1):
            m = measure(dagster, receiver, service, number, work / "staging", landing, args.timeout)
            if m is None:
                raise TimeoutError(f"no trigger notification for {service} within {args.timeout:.0f} s")
            report(m)
            measurements.append(m)
            time.sleep(2)
    except (RuntimeError, TimeoutError, OSError, ValueError) as exc:  # AlertConfigError is a ValueError
        print(f"alert latency benchmark failed: {exc}", file=sys.stderr)
        failed = True
    finally:
        if dagster is not None:
            dagster.stop()
        receiver.stop()

    if measurements:
        figures = [m.seconds for m in measurements]
        print(
            f"landing -> notification over {len(figures)} step(s): min {min(figures):.1f} s, "
            f"median {statistics.median(figures):.1f} s, max {max(figures):.1f} s "
            f"(target < {TARGET_SECONDS:.0f} s: {'met' if max(figures) < TARGET_SECONDS else 'NOT met'})"
        )
    if failed:
        print(
            f"kept the workspace for inspection (dagster dev log: {work / 'dagster-dev.log'})",
            file=sys.stderr,
        )
        return 1
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

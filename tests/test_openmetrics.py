"""SLO status as metrics: the exact text of both formats, node_exporter's textfile, the HTTP endpoint, and
a real Prometheus (Debian's 2.42 binary) scraping it on 127.0.0.1.

The exposition tests pin every line, with values worked out by hand, because the text is the contract a
dashboard is built against. ``promtool check metrics`` (what node_exporter's parser accepts: the classic
format) vouches for the textfile variant; Prometheus itself vouches for the OpenMetrics one, including
label values with quotes, backslashes and newlines from hostile SLO files.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines import metrics_server, workflows
from pipelines.metrics_server import make_server, wants_openmetrics
from pipelines.slo.budget import ObjectiveStatus
from pipelines.slo.ingest import ingest_paths
from pipelines.slo.openmetrics import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    escape_label_value,
    exposition,
    text_exposition,
    textfile,
)
from pipelines.slo.policies import DEFAULT_POLICIES
from pipelines.slo.spec import load_slos
from pipelines.warehouse import connect
from tests.conftest import write

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
# What Prometheus 2.42 sends when scraping (scrape.go, acceptHeader).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)

AS_OF = datetime(2026, 3, 3, 12, 0)  # 1772539200 Unix seconds
HOSTILE = 'say "hi"\\now\nnext line'
HOSTILE_ESCAPED = 'say \\"hi\\"\\\\now\\nnext line'


def _status(**overrides: Any) -> ObjectiveStatus:
    """99.9% objective, 10 000 events with 40 bad: SLI 0.996, budget consumed 4, remaining -3."""
    base = ObjectiveStatus(
        slo="checkout-availability",
        display_name="Checkout availability",
        service="checkout",
        objective="99.9%",
        objective_index=0,
        target=0.999,
        budgeting_method="Occurrences",
        window_start=AS_OF - timedelta(days=30),
        window_end=AS_OF,
        good=9960,
        total=10000,
        sli=0.996,
        budget_consumed=4.0,
        budget_remaining=-3.0,
        burn_rates={"5m": None, "1h": 14.4, "6h": float("nan"), "3d": 0.25},
        status="breached",
        policy_state="exhausted",
        data_completeness=1.0,
    )
    return replace(base, **overrides)


LABELS = 'slo="checkout-availability",service="checkout",objective="99.9%"'
EXPECTED_BODY = f"""\
# HELP sloscope_slo_target Objective target as a ratio of good to total events (0.999 = 99.9%).
# TYPE sloscope_slo_target gauge
sloscope_slo_target{{{LABELS}}} 0.999
# HELP sloscope_slo_sli Service level indicator over the SLO window: good / total events (ratio); absent \
without traffic.
# TYPE sloscope_slo_sli gauge
sloscope_slo_sli{{{LABELS}}} 0.996
# HELP sloscope_slo_error_budget_remaining Share of the error budget left over the SLO window (ratio; 1 = \
untouched, below 0 = overspent).
# TYPE sloscope_slo_error_budget_remaining gauge
sloscope_slo_error_budget_remaining{{{LABELS}}} -3.0
# HELP sloscope_slo_burn_rate Error budget burn rate over the trailing window: bad share / (1 - target); \
1 = spending exactly the budget.
# TYPE sloscope_slo_burn_rate gauge
sloscope_slo_burn_rate{{{LABELS},window="1h"}} 14.4
sloscope_slo_burn_rate{{{LABELS},window="3d"}} 0.25
# HELP sloscope_slo_good_events Good events counted over the SLO window (a gauge: the window rolls, so it \
is not a counter).
# TYPE sloscope_slo_good_events gauge
sloscope_slo_good_events{{{LABELS}}} 9960
# HELP sloscope_slo_total_events Valid events counted over the SLO window (a gauge: the window rolls, so it \
is not a counter).
# TYPE sloscope_slo_total_events gauge
sloscope_slo_total_events{{{LABELS}}} 10000
# HELP sloscope_slo_data_completeness Share of the SLO window's minutes with data (ratio); absent when not \
measured.
# TYPE sloscope_slo_data_completeness gauge
sloscope_slo_data_completeness{{{LABELS}}} 1.0
# HELP sloscope_slo_status Budget status of the objective: 1 for the current status, 0 for the others.
# TYPE sloscope_slo_status gauge
sloscope_slo_status{{{LABELS},status="ok"}} 0
sloscope_slo_status{{{LABELS},status="at_risk"}} 0
sloscope_slo_status{{{LABELS},status="breached"}} 1
sloscope_slo_status{{{LABELS},status="no_data"}} 0
# HELP sloscope_slo_policy_state Error budget policy state of the objective (the label); always 1.
# TYPE sloscope_slo_policy_state gauge
sloscope_slo_policy_state{{{LABELS},state="exhausted"}} 1
"""
TIMESTAMP_HELP = (
    "# HELP sloscope_evaluation_timestamp_seconds When the exposed SLO status was evaluated "
    "(as-of time, Unix seconds).\n# TYPE sloscope_evaluation_timestamp_seconds gauge\n"
)


def test_openmetrics_exposition_line_by_line() -> None:
    text = exposition([_status()], as_of=AS_OF)
    expected = (
        TIMESTAMP_HELP
        + "# UNIT sloscope_evaluation_timestamp_seconds seconds\n"
        + "sloscope_evaluation_timestamp_seconds 1772539200.0\n"
        + EXPECTED_BODY
        + "# EOF\n"
    )
    assert text.splitlines() == expected.splitlines()
    assert text.endswith("# EOF\n")
    # "No data" is an absent sample, never NaN (the 5m rate was None, the 6h rate NaN).
    assert "NaN" not in text and 'window="5m"' not in text and 'window="6h"' not in text


def test_classic_text_differs_only_in_framing() -> None:
    text = text_exposition([_status()], as_of=AS_OF)
    expected = TIMESTAMP_HELP + "sloscope_evaluation_timestamp_seconds 1772539200.0\n" + EXPECTED_BODY
    assert text.splitlines() == expected.splitlines()
    assert "# EOF" not in text and "# UNIT" not in text


def test_hostile_names_are_escaped() -> None:
    status = _status(slo=HOSTILE, service="back\\slash", objective='"quoted"', policy_state="a\nb")
    text = exposition([status], as_of=AS_OF)
    labels = f'slo="{HOSTILE_ESCAPED}",service="back\\\\slash",objective="\\"quoted\\""'
    assert f"sloscope_slo_sli{{{labels}}} 0.996" in text.splitlines()
    assert f'sloscope_slo_policy_state{{{labels},state="a\\nb"}} 1' in text.splitlines()
    # Every line is a comment or a sample: no label value broke out onto a line of its own.
    assert all(line.startswith(("# ", "sloscope_")) for line in text.splitlines())
    assert escape_label_value('\\"\n') == '\\\\\\"\\n'


def test_no_traffic_omits_figures_but_keeps_counts_and_status() -> None:
    status = _status(
        good=0,
        total=0,
        sli=None,
        budget_consumed=None,
        budget_remaining=None,
        burn_rates={"1h": None},
        status="no_data",
        policy_state="no_data",
        data_completeness=None,
    )
    lines = exposition([status], as_of=AS_OF).splitlines()
    samples = [line for line in lines if not line.startswith("#")]
    assert samples == [
        "sloscope_evaluation_timestamp_seconds 1772539200.0",
        f"sloscope_slo_target{{{LABELS}}} 0.999",
        f"sloscope_slo_good_events{{{LABELS}}} 0",
        f"sloscope_slo_total_events{{{LABELS}}} 0",
        f'sloscope_slo_status{{{LABELS},status="ok"}} 0',
        f'sloscope_slo_status{{{LABELS},status="at_risk"}} 0',
        f'sloscope_slo_status{{{LABELS},status="breached"}} 0',
        f'sloscope_slo_status{{{LABELS},status="no_data"}} 1',
        f'sloscope_slo_policy_state{{{LABELS},state="no_data"}} 1',
    ]


def test_families_stay_contiguous_across_objectives_and_infinities_are_spelled() -> None:
    other = _status(objective="99%", target=0.99, burn_rates={"1h": math.inf})
    lines = exposition([_status(), other], as_of=AS_OF).splitlines()
    targets = [i for i, line in enumerate(lines) if line.startswith("sloscope_slo_target{")]
    assert targets == [targets[0], targets[0] + 1]
    assert (
        'sloscope_slo_burn_rate{slo="checkout-availability",service="checkout",objective="99%",'
        'window="1h"} +Inf' in lines
    )


def test_empty_status_list_is_still_valid() -> None:
    text = exposition([], as_of=AS_OF)
    assert text.splitlines()[-1] == "# EOF"
    assert "sloscope_evaluation_timestamp_seconds 1772539200.0" in text


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)")
def test_textfile_is_atomic_readable_and_passes_promtool(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    statuses = [_status(slo=HOSTILE), _status(objective="99%", target=0.99, status="ok")]
    path = textfile(statuses, tmp_path / "sloscope.prom")
    text = path.read_text(encoding="utf-8")
    # as_of defaults to the evaluation time the statuses carry.
    assert text == text_exposition(statuses, as_of=AS_OF)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sloscope.prom"]  # no temp file left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""  # not even a lint warning


def test_textfile_failure_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sloscope.prom"
    path.write_text("old\n", encoding="utf-8")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk gone"):
        textfile([_status()], path)
    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sloscope.prom"]


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text; version=0.0.1", True),
        ("text/plain;version=0.0.4;q=0.5,*/*;q=0.1", False),  # Prometheus told to use the classic format
        ("application/openmetrics-text;q=0.2,text/plain;q=0.9", False),
        ("application/openmetrics-text;q=0", False),
        ("*/*", False),  # curl
        (None, False),
        ("", False),
    ],
)
def test_content_negotiation(accept: str | None, openmetrics: bool) -> None:
    assert wants_openmetrics(accept) is openmetrics


# --- a real warehouse, the HTTP endpoint, and a real Prometheus -------------------------------------------

SLOS = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: shop-availability}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        good: {metricSource: {type: sloscope, spec: {success: true}}}
        total: {metricSource: {type: sloscope, spec: {service: shop}}}
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives:
    - {displayName: "99%", target: 0.99}
    - {displayName: "OBJECTIVE", target: 0.999}
"""
DAY0 = datetime(2026, 3, 1)
MINUTES = 120  # 100 requests a minute; in the last 30 minutes 2 of them fail
NEWEST = DAY0 + timedelta(minutes=MINUTES)
NEWEST_EPOCH = 1772330400.0  # 2026-03-01T02:00:00Z
# By hand, over the 30-day window (all 120 minutes): 12 000 events, 60 bad.
#   SLI = 11 940 / 12 000 = 0.995
#   99%:   consumed = (60 / 12 000) / 0.01 = 0.5, remaining 0.5;   1h burn = (60 / 6 000) / 0.01 = 1
#   99.9%: consumed = 0.005 / 0.001 = 5, remaining -4 (breached); 1h burn = 0.01 / 0.001 = 10
EXPECTED_REMAINING = {"99%": 0.5, HOSTILE: -4.0}
EXPECTED_BURN_1H = {"99%": 1.0, HOSTILE: 10.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stored_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed warehouse file holding one evaluation of the tiny data set above."""
    root = tmp_path_factory.mktemp("metrics")
    lines = ["timestamp,service,operation,total,good"]
    for minute in range(MINUTES):
        moment = DAY0 + timedelta(minutes=minute)
        lines.append(f"{moment:%Y-%m-%dT%H:%M}:00Z,shop,pay,100,{98 if minute >= MINUTES - 30 else 100}")
    write(root / "landing" / "shop.csv", "\n".join(lines) + "\n")
    # The second objective's display name is hostile: it must reach Prometheus intact.
    write(root / "slos" / "slos.yaml", SLOS.replace('"OBJECTIVE"', '"say \\"hi\\"\\\\now\\nnext line"'))
    slos = load_slos(root / "slos")
    db = root / "warehouse.duckdb"
    con = connect(db)
    try:
        ingest_paths(con, [root / "landing"], max_clock_skew_seconds=300)
        workflows.refresh(con, slos)
        as_of, statuses = workflows.evaluate_and_store(
            con, slos, as_of=None, at_risk_remaining=0.25, policies=DEFAULT_POLICIES
        )
    finally:
        con.close()  # the server opens it read-only; one process cannot hold both configurations
    assert as_of == NEWEST
    assert {s.objective: s.budget_remaining for s in statuses} == EXPECTED_REMAINING
    return db


@pytest.fixture
def server(stored_warehouse: Path) -> Iterator[str]:
    """The endpoint on a free loopback port, serving in a thread; yields its base URL."""
    httpd = make_server(stored_warehouse, "127.0.0.1", 0, lock_wait_seconds=0.5)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_endpoint_negotiates_the_format(server: str) -> None:
    om = httpx.get(f"{server}/metrics", headers={"Accept": PROMETHEUS_ACCEPT}, timeout=10)
    assert om.status_code == 200
    assert om.headers["content-type"] == OPENMETRICS_CONTENT_TYPE
    assert om.text.endswith("# EOF\n")
    assert f"sloscope_evaluation_timestamp_seconds {NEWEST_EPOCH}" in om.text.splitlines()
    assert (
        'sloscope_slo_error_budget_remaining{slo="shop-availability",service="shop",objective="99%"} 0.5'
        in (om.text.splitlines())
    )
    plain = httpx.get(f"{server}/metrics", headers={"Accept": "*/*"}, timeout=10)
    assert plain.status_code == 200
    assert plain.headers["content-type"] == TEXT_CONTENT_TYPE
    assert "# EOF" not in plain.text and "# UNIT" not in plain.text
    assert httpx.get(f"{server}/healthz", timeout=10).text == "ok\n"
    assert httpx.get(f"{server}/nothing", timeout=10).status_code == 404
    head = httpx.head(f"{server}/metrics", timeout=10)
    assert head.status_code == 200 and head.content == b""


def test_locked_warehouse_answers_503_quickly(server: str, stored_warehouse: Path) -> None:
    """A writer in another process holds the lock: the scrape fails fast with the reason, then recovers."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); "
            "sys.stdin.read()",
            str(stored_warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        reply = httpx.get(f"{server}/metrics", timeout=10)
        assert time.monotonic() - started < 5
        assert reply.status_code == 503
        assert "locked by a writing process" in reply.text
        assert reply.headers["retry-after"] == "5"
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert httpx.get(f"{server}/metrics", timeout=10).status_code == 200


def test_missing_warehouse_answers_503(tmp_path: Path) -> None:
    httpd = make_server(tmp_path / "absent.duckdb", "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        reply = httpx.get(f"http://127.0.0.1:{httpd.server_address[1]}/metrics", timeout=10)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert reply.status_code == 503 and "does not exist" in reply.text
    assert not (tmp_path / "absent.duckdb").exists()  # serving never creates a warehouse


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5)
    reply.raise_for_status()
    return reply.json()["data"]["result"]


def _by_objective(result: list[dict[str, Any]]) -> dict[str, float]:
    return {series["metric"]["objective"]: float(series["value"][1]) for series in result}


@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is not installed (Debian package prometheus)")
def test_real_prometheus_scrapes_the_endpoint(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert PROMETHEUS is not None
    negotiated: list[bool] = []  # the format chosen for each of Prometheus's scrapes

    choose = metrics_server.wants_openmetrics

    def recording(accept: str | None) -> bool:
        negotiated.append(choose(accept))
        return negotiated[-1]

    monkeypatch.setattr(metrics_server, "wants_openmetrics", recording)
    target = server.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: sloscope\n    static_configs: [{{targets: ['{target}']}}]\n",
        encoding="utf-8",
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "prometheus.log"
    with log.open("wb") as logfile:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=logfile,
            stderr=subprocess.STDOUT,
        )
    try:
        remaining: dict[str, float] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
            try:
                remaining = _by_objective(_query(base, "sloscope_slo_error_budget_remaining"))
            except httpx.HTTPError:
                remaining = {}
            if remaining == EXPECTED_REMAINING:
                break
            time.sleep(0.25)
        assert remaining == EXPECTED_REMAINING, log.read_text()

        # The scrape itself was clean, and was OpenMetrics (the format Prometheus asked for first).
        assert negotiated and all(negotiated)
        targets = httpx.get(f"{base}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")]
        burn = _by_objective(_query(base, 'sloscope_slo_burn_rate{window="1h"}'))
        assert burn == EXPECTED_BURN_1H
        assert _by_objective(_query(base, "sloscope_slo_sli")) == {"99%": 0.995, HOSTILE: 0.995}
        assert _by_objective(_query(base, "sloscope_slo_total_events")) == {"99%": 12000, HOSTILE: 12000}
        assert _by_objective(_query(base, "sloscope_slo_good_events")) == {"99%": 11940, HOSTILE: 11940}
        assert _by_objective(_query(base, "sloscope_slo_target")) == {"99%": 0.99, HOSTILE: 0.999}
        breached = _query(base, "sloscope_slo_status == 1")
        assert {(s["metric"]["objective"], s["metric"]["status"]) for s in breached} == {
            ("99%", "ok"),
            (HOSTILE, "breached"),
        }
        states = _query(base, "sloscope_slo_policy_state")
        assert {(s["metric"]["objective"], s["metric"]["state"]) for s in states} == {
            ("99%", "healthy"),
            (HOSTILE, "exhausted"),
        }
        stamp = _query(base, "sloscope_evaluation_timestamp_seconds")
        assert [float(s["value"][1]) for s in stamp] == [NEWEST_EPOCH]
        labels = breached[0]["metric"]
        assert labels["slo"] == "shop-availability" and labels["service"] == "shop"
        assert labels["job"] == "sloscope"
        # Metadata from # HELP / # TYPE reached Prometheus too.
        meta = httpx.get(f"{base}/api/v1/metadata", params={"metric": "sloscope_slo_sli"}, timeout=5).json()
        assert meta["data"]["sloscope_slo_sli"][0]["type"] == "gauge"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

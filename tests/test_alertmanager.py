"""The alertmanager channel against a real Prometheus Alertmanager (Debian's 0.25 binary) on 127.0.0.1.

A recorded request only shows we send what we think Alertmanager wants; this shows Alertmanager
accepts it, lists the alert with our labels and annotations while it fires, and treats the resolve
(same label set, ``endsAt`` = resolution time) as the end of that same alert. Alertmanager compares
times against its own clock, so the notifications here are built around the real current time.

What 0.25 does (checked by hand against this binary): ``GET /api/v2/alerts`` echoes ``startsAt`` and
``endsAt`` with millisecond precision, and once ``endsAt`` has passed the alert is resolved and no
longer listed at all (not even with ``active=false``), so "gone from the list" is the assertion.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.slo.notify import AlertmanagerChannel, InMemoryDeliveryLog, Notification, dispatch

BINARY = shutil.which("prometheus-alertmanager")
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="prometheus-alertmanager is not installed (Debian package prometheus-alertmanager; CI has it)",
)

CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""
DEDUP_KEY = "sloscope/checkout-availability/page"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running Alertmanager (clustering off, null receiver); yields its base URL."""
    assert BINARY is not None
    workdir: Path = tmp_path_factory.mktemp("alertmanager")
    config = workdir / "alertmanager.yml"
    config.write_text(CONFIG, encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logfile = (workdir / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=logfile,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"alertmanager exited with {process.returncode}:\n{_log(workdir)}")
            try:
                if httpx.get(f"{base}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"alertmanager not ready after 20 s:\n{_log(workdir)}")
            time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        logfile.close()


def _log(workdir: Path) -> str:
    return (workdir / "alertmanager.log").read_text(encoding="utf-8", errors="replace")[-2000:]


def _now() -> datetime:
    # Whole seconds, so the milliseconds Alertmanager echoes compare exactly.
    return datetime.now(UTC).replace(microsecond=0)


def trigger(now: datetime, **changes: Any) -> Notification:
    base = Notification(
        key=f"incident-7/trigger/{now.isoformat()}",
        action="trigger",
        dedup_key=DEDUP_KEY,
        incident_id=7,
        severity="page",
        service="checkout",
        slo="checkout-availability",
        slo_display_name="Checkout availability",
        objective="99.9% of checkout requests succeed",
        kind="burn_rate",
        title="Checkout availability is burning budget 14.4x too fast",
        description="Error budget is burning fast.\nSee the dashboard.",
        started_at=now - timedelta(minutes=10),
        at=now,
        expires_at=now + timedelta(minutes=15),
        runbook_url="https://runbooks.example.com/checkout",
        source_url="https://sloscope.example.com/incidents/7",
    )
    return dataclasses.replace(base, **changes)


def listed(base: str) -> list[dict[str, Any]]:
    """Alerts Alertmanager lists for our dedup key (label matcher filter)."""
    response = httpx.get(f"{base}/api/v2/alerts", params={"filter": f'dedup_key="{DEDUP_KEY}"'}, timeout=5)
    response.raise_for_status()
    return list(response.json())


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_trigger_is_listed_and_resolve_ends_it(alertmanager: str) -> None:
    channel = AlertmanagerChannel(type="alertmanager", url=alertmanager)
    log = InMemoryDeliveryLog()
    now = _now()
    assert dispatch(trigger(now), "am", channel, env={}, log=log) == "delivered"
    assert log.attempts[-1].http_status == 200

    (alert,) = listed(alertmanager)
    assert alert["labels"] == {
        "alertname": "SLOBurnRate",
        "service": "checkout",
        "slo": "checkout-availability",
        "objective": "99.9% of checkout requests succeed",
        "severity": "page",
        "dedup_key": DEDUP_KEY,
    }
    assert alert["annotations"] == {
        "summary": "Checkout availability is burning budget 14.4x too fast",
        "description": "Error budget is burning fast.\nSee the dashboard.",
        "incident_id": "7",
        "runbook_url": "https://runbooks.example.com/checkout",
    }
    assert parse(alert["startsAt"]) == now - timedelta(minutes=10)
    assert parse(alert["endsAt"]) == now + timedelta(minutes=15)  # our expires_at
    assert alert["generatorURL"] == "https://sloscope.example.com/incidents/7"
    assert alert["status"]["state"] == "active"
    assert alert["receivers"] == [{"name": "null"}]

    resolved_at = _now()
    resolve = trigger(
        now, key="incident-7/resolve", action="resolve", at=resolved_at, resolved_at=resolved_at
    )
    assert dispatch(resolve, "am", channel, env={}, log=log) == "delivered"
    # endsAt = resolved_at is not in the future any more: the alert is resolved and no longer listed.
    deadline = time.monotonic() + 5
    while listed(alertmanager) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listed(alertmanager) == []
    active = httpx.get(f"{alertmanager}/api/v2/alerts", params={"active": "true"}, timeout=5).json()
    assert [a for a in active if a["labels"].get("dedup_key") == DEDUP_KEY] == []


def test_resent_trigger_extends_the_same_alert(alertmanager: str) -> None:
    """Each evaluation re-sends the firing alert with a later endsAt; Alertmanager keeps one alert."""
    channel = AlertmanagerChannel(type="alertmanager", url=alertmanager + "/")  # trailing slash is fine
    log = InMemoryDeliveryLog()
    now = _now()
    first = trigger(now, key="incident-8/eval/1", incident_id=8)
    later = trigger(now, key="incident-8/eval/2", incident_id=8, expires_at=now + timedelta(minutes=30))
    assert dispatch(first, "am", channel, env={}, log=log) == "delivered"
    assert dispatch(later, "am", channel, env={}, log=log) == "delivered"
    (alert,) = listed(alertmanager)
    assert parse(alert["endsAt"]) == now + timedelta(minutes=30)
    assert alert["annotations"]["incident_id"] == "8"
    # Clean up for other tests in this module: resolve it.
    done = trigger(now, key="incident-8/resolve", incident_id=8, action="resolve", resolved_at=_now())
    assert dispatch(done, "am", channel, env={}, log=log) == "delivered"

"""The Prometheus pull source against a real Prometheus server loaded with known samples.

The server is Debian's ``prometheus`` on loopback, its TSDB built by ``promtool tsdb create-blocks-from
openmetrics`` from a file written here, so every expected count below is worked out from the samples
themselves (including a counter reset), not from what Prometheus computes.
"""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from pipelines.slo.ingest import ingest_paths
from pipelines.sources import PullSource
from pipelines.sources.prometheus import (
    STATE_FILE,
    HistogramSpec,
    PrometheusSource,
    PrometheusSourceError,
    SeriesSpec,
    from_datasource,
)

MINUTES = 30
RESET = 15  # the process restarts just before the sample at minute 15: every counter starts again
# Two hours back, aligned to a block boundary: old enough to sit in a persisted block, far from "now".
T0 = (int(time.time()) // 7200) * 7200 - 4 * 3600

TOTAL = 'http_requests_total{job="api"}'
GOOD = 'http_requests_total{job="api",code!~"5.."}'


def inc_200(i: int) -> int:
    return 10 + i % 7


def inc_500(i: int) -> int:
    return i % 3


def hist_incs(i: int) -> dict[str, int]:
    """Requests per bucket (cumulative over le, as in the exposition) in minute i."""
    le_01 = i % 5
    le_03 = le_01 + 8
    le_1 = le_03 + i % 4
    return {"0.1": le_01, "0.3": le_03, "1.0": le_1, "+Inf": le_1 + 2}


def cumulative(start: int, inc: list[int]) -> list[int]:
    """Raw counter values at minutes 0..MINUTES: ``start`` at 0, then increments, restarting at RESET."""
    values = [start]
    for i in range(1, MINUTES + 1):
        values.append(inc[i] if i == RESET else values[-1] + inc[i])
    return values


def openmetrics() -> str:
    lines = ["# TYPE http_requests counter"]
    series = {
        'job="api",code="200"': cumulative(5, [inc_200(i) for i in range(MINUTES + 1)]),
        'job="api",code="500"': cumulative(2, [inc_500(i) for i in range(MINUTES + 1)]),
        'job="other",code="200"': cumulative(0, [1000] * (MINUTES + 1)),  # must not be selected
    }
    for labels, values in series.items():
        lines += [f"http_requests_total{{{labels}}} {v} {T0 + 60 * i}" for i, v in enumerate(values)]
    lines.append("# TYPE http_request_duration_seconds histogram")
    starts = {"0.1": 3, "0.3": 10, "1.0": 12, "+Inf": 13}
    buckets = {le: cumulative(starts[le], [hist_incs(i)[le] for i in range(MINUTES + 1)]) for le in starts}
    for i in range(MINUTES + 1):
        ts = T0 + 60 * i
        for le, values in buckets.items():
            lines.append(f'http_request_duration_seconds_bucket{{job="api",le="{le}"}} {values[i]} {ts}')
        lines.append(f'http_request_duration_seconds_count{{job="api"}} {buckets["+Inf"][i]} {ts}')
        lines.append(f'http_request_duration_seconds_sum{{job="api"}} {buckets["+Inf"][i] * 0.2:.3f} {ts}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def at(i: int) -> datetime:
    return datetime.fromtimestamp(T0 + 60 * i, UTC)


def iso(i: int) -> str:
    return at(i).strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_requests() -> dict[str, tuple[int, int]]:
    """Minute start -> (total, good): the sample at minute i closes the interval starting at minute i-1.
    At the reset the increase is the new value, which is the minute's increment by construction."""
    return {iso(i - 1): (inc_200(i) + inc_500(i), inc_200(i)) for i in range(1, MINUTES + 1)}


def expected_latency(le: str) -> dict[str, tuple[int, int]]:
    return {iso(i - 1): (hist_incs(i)["+Inf"], hist_incs(i)[le]) for i in range(1, MINUTES + 1)}


def rows(paths: list[Path]) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                assert row["timestamp"] not in found, f"interval {row['timestamp']} landed twice"
                found[row["timestamp"]] = (int(row["total"]), int(row["good"]))
    return found


@dataclass
class Server:
    url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        pytest.skip("needs the prometheus and promtool binaries (Debian package 'prometheus')")
    root = tmp_path_factory.mktemp("prometheus")
    (root / "data.om").write_text(openmetrics(), encoding="utf-8")
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(root / "data.om"), str(root / "data")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n", encoding="utf-8")  # no targets
    port = _free_port()
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"prometheus did not start: {(root / 'prometheus.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield Server(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
def test_incremental_pulls_equal_hand_counts_and_ingest_cleanly(
    prometheus: Server, tmp_path: Path, warehouse: duckdb.DuckDBPyConnection
) -> None:
    landing = tmp_path / "landing"
    source = PrometheusSource(
        "main",
        prometheus.url,
        [
            SeriesSpec("api", "GET /users", total=TOTAL, good=GOOD),
            HistogramSpec("api", "latency", labels={"job": "api"}, threshold_ms=300),
        ],
    )
    assert isinstance(source, PullSource)

    first = source.pull(landing, at(17))  # crosses the reset at minute 15
    second = source.pull(landing, at(MINUTES) + timedelta(seconds=30))  # ends on the last whole minute
    assert len(first) == 2 and len(second) == 2
    folder = landing / "prometheus" / "main"
    assert first[0].parent == folder and first[0].name.startswith("api-get-users-")
    assert (folder / STATE_FILE).exists()

    requests = [p for p in first + second if "get-users" in p.name]
    latency = [p for p in first + second if "latency" in p.name]
    assert rows(requests[:1]) == {k: v for k, v in expected_requests().items() if k < iso(17)}
    assert rows(requests) == expected_requests()
    assert rows(latency) == expected_latency("0.3")

    # Same `until` again: nothing new is fetched or written.
    before = sorted(p.name for p in folder.iterdir())
    assert source.pull(landing, at(MINUTES) + timedelta(seconds=30)) == []
    assert sorted(p.name for p in folder.iterdir()) == before

    report = ingest_paths(warehouse, [landing])
    assert report.rows_quarantined == 0
    assert report.rows_loaded == report.rows_read == 2 * MINUTES
    totals = warehouse.execute(
        "SELECT operation, sum(total), sum(good) FROM raw_counts GROUP BY operation ORDER BY operation"
    ).fetchall()
    assert totals == [
        (
            "GET /users",
            sum(t for t, _ in expected_requests().values()),
            sum(g for _, g in expected_requests().values()),
        ),
        (
            "latency",
            sum(t for t, _ in expected_latency("0.3").values()),
            sum(g for _, g in expected_latency("0.3").values()),
        ),
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("threshold_ms", "le"), [(100, "0.1"), (1000, "1.0")])
def test_other_bucket_thresholds(prometheus: Server, tmp_path: Path, threshold_ms: float, le: str) -> None:
    source = PrometheusSource(
        "lat",
        prometheus.url,
        [HistogramSpec("api", "latency", labels={"job": "api"}, threshold_ms=threshold_ms)],
    )
    assert rows(source.pull(tmp_path, at(MINUTES))) == expected_latency(le)


@pytest.mark.slow
def test_threshold_without_a_bucket_is_a_clear_error(prometheus: Server, tmp_path: Path) -> None:
    source = PrometheusSource(
        "lat", prometheus.url, [HistogramSpec("api", "latency", labels={"job": "api"}, threshold_ms=250)]
    )
    with pytest.raises(PrometheusSourceError) as error:
        source.pull(tmp_path, at(MINUTES))
    message = str(error.value)
    assert "250 ms" in message and "available buckets: 100 ms, 300 ms, 1000 ms, +Inf" in message
    assert not (tmp_path / "prometheus" / "lat" / STATE_FILE).exists()


@pytest.mark.slow
def test_api_error_is_reported(prometheus: Server, tmp_path: Path) -> None:
    source = PrometheusSource("bad", prometheus.url, [SeriesSpec("api", "x", total="sum(up", good="up")])
    with pytest.raises(PrometheusSourceError, match=r"Prometheus query failed.*bad_data"):
        source.pull(tmp_path, at(MINUTES))


def test_from_datasource_takes_the_url_and_only_an_env_var_name() -> None:
    doc = {
        "apiVersion": "openslo/v1",
        "kind": "DataSource",
        "metadata": {"name": "prod-prom"},
        "spec": {
            "type": "prometheus",
            "connectionDetails": {"url": "http://127.0.0.1:9090", "bearerTokenEnv": "T"},
        },
    }
    source = from_datasource(doc, [SeriesSpec("api", "", TOTAL, GOOD)])
    assert (source.name, source.url, source.bearer_token_env) == ("prod-prom", "http://127.0.0.1:9090", "T")

    leaky = {
        **doc,
        "spec": {"type": "prometheus", "connectionDetails": {"url": "http://x", "bearerToken": "s3"}},
    }
    with pytest.raises(PrometheusSourceError, match="bearerTokenEnv") as error:
        from_datasource(leaky, [])
    assert "s3" not in str(error.value)
    with pytest.raises(PrometheusSourceError, match="expected 'prometheus'"):
        from_datasource({**doc, "spec": {"type": "sloscope"}}, [])


def test_bearer_token_is_sent_and_timeouts_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def slow(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        raise httpx.ReadTimeout("timed out", request=request)

    monkeypatch.setenv("PROM_TOKEN", "secret-value")
    source = PrometheusSource(
        "t",
        "http://127.0.0.1:9",
        [SeriesSpec("api", "", TOTAL, GOOD)],
        timeout_s=2,
        bearer_token_env="PROM_TOKEN",
        transport=httpx.MockTransport(slow),
    )
    with pytest.raises(PrometheusSourceError, match="did not answer within 2s") as error:
        source.pull(tmp_path, at(MINUTES))
    assert seen == ["Bearer secret-value"]
    assert "secret-value" not in str(error.value)

    monkeypatch.delenv("PROM_TOKEN")
    with pytest.raises(PrometheusSourceError, match="PROM_TOKEN"):
        source.pull(tmp_path, at(MINUTES))

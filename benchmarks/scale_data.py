"""Seeded, vectorised generator of raw request events at scale, and OpenSLO objectives over them.

Events are written as Hive-partitioned Parquet, one file per UTC hour
(``raw/date=YYYY-MM-DD/hour=HH/part-0.parquet``), with typed columns: ``timestamp`` (TIMESTAMP WITH TIME
ZONE, UTC, microseconds), ``service`` and ``operation`` (strings), ``status_code`` (int16), ``success``
(bool) and ``latency_ms`` (float64, 0.1% null). sloscope ingests the folder as it is.

Each service has 1-3 operations (a *series* is one service and operation). Traffic per series is
heavy-tailed (lognormal weights) with a daily cycle; each series has its own 5xx and 4xx rates and a
lognormal latency (median 20-300 ms). Incidents (a few per day) raise one series' 5xx rate to 5-30% and
triple its latencies for 5-60 minutes. Latencies are rounded to 0.1 ms, so some fall exactly on an SLO
threshold (``<=`` and ``<`` then differ). Every hour's file is drawn from its own seeded stream, so the
output depends only on the arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = datetime(2026, 10, 1, tzinfo=UTC)  # fixed, and before "now": no event is in the future
OPERATION_NAMES = ("get", "list", "create", "update", "delete")
THRESHOLDS_MS = (100.0, 250.0, 500.0, 1000.0)
TARGETS = ("0.99", "0.995", "0.999")
_HOUR_US = 3_600_000_000


@dataclass(frozen=True)
class Series:
    """Per service/operation parameters, as parallel arrays."""

    service: np.ndarray  # service index per series
    operation: np.ndarray  # operation name index per series
    weight: np.ndarray  # share of traffic
    error_rate: np.ndarray  # 5xx share
    client_rate: np.ndarray  # 4xx share
    log_median: np.ndarray  # ln(median latency in ms)
    sigma: np.ndarray  # lognormal shape

    @property
    def count(self) -> int:
        return len(self.service)


@dataclass(frozen=True)
class Incident:
    series: int
    start_us: int  # microseconds since START
    end_us: int
    error_rate: float


@dataclass(frozen=True)
class Manifest:
    events: int
    files: list[Path]
    services: int
    series: int
    start: datetime
    end: datetime  # exclusive: the first minute after the data


def service_name(index: int) -> str:
    return f"svc-{index:04d}"


def make_series(services: int, seed: int) -> Series:
    rng = np.random.default_rng([seed, 0])
    per_service = rng.integers(1, 4, services)
    service = np.repeat(np.arange(services), per_service)
    operation = np.concatenate([rng.permutation(len(OPERATION_NAMES))[:k] for k in per_service])
    n = len(service)
    weight = rng.lognormal(0.0, 1.0, n)
    return Series(
        service=service,
        operation=operation,
        weight=weight / weight.sum(),
        error_rate=np.clip(rng.lognormal(np.log(0.001), 1.0, n), 0.0, 0.05),
        client_rate=rng.uniform(0.005, 0.03, n),
        log_median=np.log(rng.uniform(20.0, 300.0, n)),
        sigma=rng.uniform(0.4, 0.9, n),
    )


def make_incidents(series: Series, days: int, seed: int) -> list[Incident]:
    rng = np.random.default_rng([seed, 1])
    count = 3 * days
    starts = rng.integers(0, days * 24 * _HOUR_US, count)
    lengths = rng.integers(5, 61, count) * 60_000_000
    return [
        Incident(int(s), int(a), int(a + b), float(r))
        for s, a, b, r in zip(
            rng.choice(series.count, count, p=series.weight),
            starts,
            lengths,
            rng.uniform(0.05, 0.30, count),
            strict=True,
        )
    ]


def hourly_counts(events: int, hours: int) -> np.ndarray:
    """Events per hour with a daily cycle (trough at 06:00 UTC, peak at 18:00), summing to ``events``."""
    hour_of_day = np.arange(hours) % 24
    shape = 1.0 + 0.5 * np.sin(2 * np.pi * (hour_of_day - 12) / 24)
    exact = events * shape / shape.sum()
    counts = np.floor(exact).astype(np.int64)
    short = events - int(counts.sum())
    counts[np.argsort(counts - exact)[:short]] += 1  # largest remainders first
    return counts


def event_table(
    series: Series,
    incidents: list[Incident],
    *,
    n: int,
    offset_us: int,
    span_us: int,
    seed: int,
    stream: int,
) -> pa.Table:
    """``n`` events in [START + offset, START + offset + span), from the seeded stream ``stream``."""
    rng = np.random.default_rng([seed, 2, stream])
    pick = rng.choice(series.count, n, p=series.weight)
    at = offset_us + np.sort(rng.integers(0, span_us, n))
    error_rate = series.error_rate[pick]
    slow = np.ones(n)
    for incident in incidents:
        if incident.end_us <= offset_us or incident.start_us >= offset_us + span_us:
            continue
        hit = (pick == incident.series) & (at >= incident.start_us) & (at < incident.end_us)
        error_rate = np.where(hit, incident.error_rate, error_rate)
        slow = np.where(hit, 3.0, slow)
    draw = rng.random(n)
    client = series.client_rate[pick]
    status = np.full(n, 200, dtype=np.int16)
    status[draw < error_rate + client] = 404
    status[draw < error_rate + client * 0.3] = 400
    status[draw < error_rate] = 503
    status[draw < error_rate * 0.4] = 500
    # The odd application-level failure behind a 200 (success = false).
    success = (status < 500) & (rng.random(n) >= 0.0005)
    latency = rng.lognormal(series.log_median[pick], series.sigma[pick]) * slow
    latency = np.round(latency, 1)
    missing = rng.random(n) < 0.001
    service_names = pa.array([service_name(i) for i in range(int(series.service.max()) + 1)])
    return pa.table(
        {
            "timestamp": pa.array(
                (START.timestamp() * 1_000_000 + at).astype("datetime64[us]"), pa.timestamp("us", tz="UTC")
            ),
            "service": service_names.take(pa.array(series.service[pick])),
            "operation": pa.array(OPERATION_NAMES).take(pa.array(series.operation[pick])),
            "status_code": pa.array(status, pa.int16()),
            "success": pa.array(success, pa.bool_()),
            "latency_ms": pa.array(latency, pa.float64(), mask=missing),
        }
    )


def hour_path(root: Path, moment: datetime) -> Path:
    return root / f"date={moment:%Y-%m-%d}" / f"hour={moment:%H}" / "part-0.parquet"


def generate(root: Path, *, events: int, days: int, services: int, seed: int = 20261001) -> Manifest:
    """Write ``events`` events over ``days`` days for ``services`` services under ``root``."""
    series = make_series(services, seed)
    incidents = make_incidents(series, days, seed)
    hours = days * 24
    files = []
    for hour, n in enumerate(hourly_counts(events, hours)):
        table = event_table(
            series, incidents, n=int(n), offset_us=hour * _HOUR_US, span_us=_HOUR_US, seed=seed, stream=hour
        )
        path = hour_path(root, START + timedelta(hours=hour))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        files.append(path)
    return Manifest(events, files, services, series.count, START, START + timedelta(hours=hours))


def one_more_minute(root: Path, manifest: Manifest, *, seed: int = 20261001) -> tuple[Path, int]:
    """Land the minute after the data as a new file (its own hour partition); (path, events)."""
    series = make_series(manifest.services, seed)
    n = max(1, manifest.events // ((manifest.end - manifest.start) // timedelta(minutes=1)))
    offset = (manifest.end - START) // timedelta(microseconds=1)
    table = event_table(series, [], n=n, offset_us=offset, span_us=60_000_000, seed=seed, stream=10**9)
    path = hour_path(root, manifest.end).with_name("part-incremental.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path, n


def slo_yaml(objectives: int, services: int, seed: int = 20261001) -> str:
    """OpenSLO documents with ``objectives`` objectives in all (3 per SLO, the last SLO may have fewer):
    availability (5xx), error-rate (success = false) and latency (a threshold from a small set) SLOs over
    whole services or single operations, on 28-day and 7-day rolling windows."""
    series = make_series(services, seed)
    rng = np.random.default_rng([seed, 3])
    docs = []
    left = objectives
    number = 0
    while left > 0:
        k = min(3, left)
        left -= k
        index = int(rng.integers(series.count))
        service = service_name(int(series.service[index]))
        operation = OPERATION_NAMES[int(series.operation[index])]
        kind = ("availability", "errors", "latency")[number % 3]
        window = ("28d", "7d")[(number // 3) % 2]
        if kind == "availability":
            ratio = "good: {metricSource: {type: sloscope, spec: {status_code: {lt: 500}}}}"
        elif kind == "errors":
            ratio = "bad: {metricSource: {type: sloscope, spec: {success: false}}}"
        else:
            # A service's latency SLOs use two thresholds of the set, so thresholds per service stay few.
            threshold = THRESHOLDS_MS[int(series.service[index]) % 2 * 2 + (number // 3) % 2]
            ratio = (
                f"good: {{metricSource: {{type: sloscope, spec: {{latency_ms: {{lte: {threshold:g}}}}}}}}}"
            )
        scope = f"service: {service}" + (f", operation: {operation}" if number % 2 else "")
        targets = "\n".join(
            f"    - {{displayName: t{i}, target: {target}}}" for i, target in enumerate(TARGETS[:k])
        )
        docs.append(f"""apiVersion: openslo/v1
kind: SLO
metadata: {{name: scale-{number:05d}}}
spec:
  service: {service}
  indicator:
    spec:
      ratioMetric:
        {ratio}
        total: {{metricSource: {{type: sloscope, spec: {{{scope}}}}}}}
  timeWindow: [{{duration: {window}, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives:
{targets}
""")
        number += 1
    return "---\n".join(docs)

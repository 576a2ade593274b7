"""Deterministic, seeded generator of realistic raw request data for demos, tests and benchmarks.

The data imitates what the landing zone receives in production: per-request events from three services
(Parquet, weekly files), a load balancer that already counts (CSV, one row per operation per minute) and a
small webhook log (NDJSON, epoch milliseconds, a few broken lines). Traffic follows a diurnal and weekly
cycle, latency is lognormal with a heavy tail, and four incidents are injected at known times so that
every downstream number (burn rates, budget consumption, anomaly flags) can be checked against the truth
returned in :class:`DemoManifest`.

Everything is vectorised numpy; the only Python loops are over operations and 7-day chunks.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["DEMO_END", "DemoManifest", "InjectedIncident", "generate_demo"]

# Fixed rather than "now" so that the same arguments always give the same bytes, and in the past so that
# ingestion's clock-skew quarantine never rejects demo rows.
DEMO_END: datetime = datetime(2026, 10, 1, tzinfo=UTC)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_MINUTE = 60_000_000
_MINUTES_PER_DAY = 1440
_CHUNK_DAYS = 7
# The webhook log is small on purpose: it exercises the NDJSON reader, not volume.
_WEBHOOK_DAYS = 7
_MIN_DAYS = 7

# Traffic shape. The diurnal curve peaks at 14:00 UTC (European afternoon, American morning) and bottoms
# out at 02:00 UTC; the mean of the diurnal curve is (1 + trough) / 2.
_DIURNAL_PEAK_HOUR = 14.0
_DIURNAL_TROUGH = 0.35
_WEEKEND_FACTOR = 0.65
# Day-to-day wobble so that no two days look identical (marketing, news, weather ...).
_DAILY_SIGMA = 0.04

# Heavy tail: a small share of requests hit a cold cache, a GC pause or a slow dependency.
_TAIL_SHARE = 0.015
_TAIL_FACTOR_MIN = 3.0
_TAIL_FACTOR_MAX = 8.0

# Latency of responses that never reached (or gave up on) the handler, independent of the operation.
_LATENCY_500_MEDIAN_MS = 25.0
_LATENCY_502_MEDIAN_MS = 60.0
_TIMEOUT_MIN_MS = 1000.0
_TIMEOUT_MAX_MS = 3000.0
_OUTAGE_TIMEOUT_MS = 3000.0
# Client errors are rejected early (validation, rate limiter), so they are much faster than successes.
_CLIENT_ERROR_LATENCY_FACTOR = 0.3
_CLIENT_ERROR_SIGMA = 0.4

# Incident parameters; the manifest only carries when/where, these say how hard.
_OUTAGE_FAILURE_SHARE = 0.9
_REGRESSION_FACTOR = 2.2
_CREEP_PEAK_FAILURE = 0.02


@dataclass(frozen=True)
class InjectedIncident:
    service: str
    operation: str | None  # None = all operations of the service
    kind: str  # "outage" | "latency_regression" | "error_creep" | "missing_data"
    start: datetime  # UTC, tz-aware
    end: datetime  # UTC, tz-aware, half-open [start, end)
    description: str


@dataclass(frozen=True)
class DemoManifest:
    files: list[Path]  # every file written, sorted by name
    start: datetime
    end: datetime
    events: int  # valid event rows written (parquet + valid ndjson lines)
    count_rows: int  # rows written to counts CSVs
    malformed_rows: int  # deliberately bad rows written (exactly what is in the ndjson)
    incidents: list[InjectedIncident]


@dataclass(frozen=True)
class _EventOp:
    service: str
    name: str
    base_rate: float  # requests per minute at the diurnal peak of a weekday, scale 1
    median_ms: float
    sigma: float
    p_5xx: float
    p_4xx: float
    share_201: float  # share of successes that create a resource


@dataclass(frozen=True)
class _CountOp:
    service: str
    name: str
    base_rate: float
    p_fail: float


# Rates are tuned so that scale=1 over 90 days gives about 2 million events: the peak rates sum to ~25/min
# and the mean traffic multiplier is 0.675 (diurnal) * 0.9 (weekly) ~= 0.61.
_EVENT_SERVICES: dict[str, tuple[_EventOp, ...]] = {
    "checkout": (
        _EventOp("checkout", "place-order", 2.0, 140.0, 0.45, 0.0003, 0.02, 0.5),
        _EventOp("checkout", "view-cart", 6.0, 60.0, 0.40, 0.0002, 0.015, 0.0),
        _EventOp("checkout", "apply-coupon", 1.0, 90.0, 0.50, 0.0004, 0.03, 0.0),
    ),
    "search": (
        _EventOp("search", "query", 8.0, 110.0, 0.50, 0.0003, 0.01, 0.0),
        _EventOp("search", "suggest", 5.0, 35.0, 0.35, 0.0002, 0.01, 0.0),
    ),
    "payments-api": (
        _EventOp("payments-api", "authorize", 1.6, 220.0, 0.35, 0.0005, 0.02, 0.3),
        _EventOp("payments-api", "capture", 1.3, 180.0, 0.30, 0.0003, 0.01, 0.0),
        _EventOp("payments-api", "refund", 0.2, 300.0, 0.40, 0.0004, 0.025, 0.0),
    ),
}
# Mean multiplier 0.61 * 36 ~= 22 requests/minute across both operations.
_COUNT_SERVICE = "auth"
_COUNT_OPS: tuple[_CountOp, ...] = (
    _CountOp("auth", "login", 12.0, 0.0003),
    _CountOp("auth", "token-refresh", 24.0, 0.0003),
)
# Webhooks carry success instead of a status code; p_5xx is the probability of success=false.
_WEBHOOK = _EventOp("payments-api", "webhook", 1.0, 80.0, 0.40, 0.002, 0.0, 0.0)


def generate_demo(
    out_dir: Path,
    *,
    seed: int = 20261001,
    days: int = 90,
    end: datetime = DEMO_END,
    scale: float = 1.0,
) -> DemoManifest:
    """Write the demo landing files into ``out_dir`` and return what was written and injected.

    ``end`` must be tz-aware and on a whole minute; the window is ``[end - days, end)``. Incidents are
    placed at fixed fractions of the window (their nominal positions are for ``days=90``), so ``days``
    must be at least 7 for all of them to fit. Same arguments give byte-identical files.
    """
    if end.tzinfo is None or end.utcoffset() is None:
        raise ValueError("end must be timezone-aware")
    end = end.astimezone(UTC)
    if end.second or end.microsecond:
        raise ValueError("end must fall on a whole minute")
    if isinstance(days, bool) or not isinstance(days, int) or days < _MIN_DAYS:
        raise ValueError(f"days must be an integer >= {_MIN_DAYS}, got {days!r}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    if seed < 0:
        # numpy's SeedSequence only accepts non-negative entropy.
        raise ValueError(f"seed must be non-negative, got {seed!r}")

    start = end - timedelta(days=days)
    incidents = _plan_incidents(start, end, days)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    m_start = _epoch_minutes(start)
    m_end = _epoch_minutes(end)
    chunks = [
        (index, m0, min(m0 + _CHUNK_DAYS * _MINUTES_PER_DAY, m_end))
        for index, m0 in enumerate(range(m_start, m_end, _CHUNK_DAYS * _MINUTES_PER_DAY))
    ]

    files: list[Path] = []
    events = 0
    for service, ops in _EVENT_SERVICES.items():
        for index, m0, m1 in chunks:
            path = out_dir / f"{service}-events-{_minute_to_date(m0)}.parquet"
            events += _write_event_chunk(path, service, ops, seed, index, m0, m1, scale, incidents)
            files.append(path)

    count_rows = 0
    for index, m0, m1 in chunks:
        path = out_dir / f"{_COUNT_SERVICE}-counts-{_minute_to_date(m0)}.csv"
        count_rows += _write_count_chunk(path, seed, index, m0, m1, scale, incidents)
        files.append(path)

    webhook_path = out_dir / f"{_WEBHOOK.service}-webhooks.ndjson"
    webhook_events, malformed = _write_webhooks(
        webhook_path, seed, m_end - _WEBHOOK_DAYS * _MINUTES_PER_DAY, m_end, scale
    )
    events += webhook_events
    files.append(webhook_path)

    return DemoManifest(
        files=sorted(files, key=lambda p: p.name),
        start=start,
        end=end,
        events=events,
        count_rows=count_rows,
        malformed_rows=malformed,
        incidents=incidents,
    )


def _plan_incidents(start: datetime, end: datetime, days: int) -> list[InjectedIncident]:
    # Nominal days are for a 90-day window; shorter windows keep the same fractions (floored to a whole
    # day so the time of day, and with it the traffic level, stays the same). Durations stay fixed except
    # the creep, which is the one incident measured in days.
    def at(day90: int, hours: int = 0, minutes: int = 0) -> datetime:
        return start + timedelta(days=day90 * days // 90, hours=hours, minutes=minutes)

    outage_start = at(75, 13, 20)
    regression_start = at(70, 10)
    creep_start = at(80)
    creep_hours = max(6, min(144, round(144 * days / 90)))
    missing_start = at(83, 2)
    incidents = [
        InjectedIncident(
            service="checkout",
            operation=None,
            kind="outage",
            start=outage_start,
            end=outage_start + timedelta(minutes=40),
            description=(
                f"Hard outage: {_OUTAGE_FAILURE_SHARE:.0%} of checkout requests return 503 after a "
                f"{_OUTAGE_TIMEOUT_MS:.0f} ms timeout for 40 minutes."
            ),
        ),
        InjectedIncident(
            service="search",
            operation="query",
            kind="latency_regression",
            start=regression_start,
            end=regression_start + timedelta(hours=36),
            description=(
                f"Latency regression after a deploy: search query latency x{_REGRESSION_FACTOR} for 36 hours "
                "until the rollback."
            ),
        ),
        InjectedIncident(
            service="payments-api",
            operation="authorize",
            kind="error_creep",
            start=creep_start,
            end=creep_start + timedelta(hours=creep_hours),
            description=(
                f"Slow error-rate creep: authorize 5xx probability ramps linearly from baseline to "
                f"{_CREEP_PEAK_FAILURE:.0%}, then drops back to baseline when fixed."
            ),
        ),
        InjectedIncident(
            service=_COUNT_SERVICE,
            operation=None,
            kind="missing_data",
            start=missing_start,
            end=missing_start + timedelta(hours=6),
            description="Missing data: the auth load balancer's counter export emitted no rows for 6 hours.",
        ),
    ]
    for incident in incidents:
        # Guaranteed by the placement arithmetic for days >= 7; checked so a future edit cannot silently
        # put an incident outside the data.
        if not start <= incident.start < incident.end <= end:
            raise AssertionError(f"incident {incident.kind} falls outside [{start}, {end})")
    return incidents


def _epoch_minutes(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(minutes=1)


def _epoch_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _minute_to_date(minute: int) -> str:
    return (_EPOCH + timedelta(minutes=minute)).strftime("%Y%m%d")


def _stream(seed: int, service: str, operation: str, chunk: int) -> np.random.Generator:
    # Keyed by name rather than list position, so adding, removing or reordering an operation leaves the
    # data of every other operation unchanged; keyed by chunk so each file depends only on its own draws.
    key = zlib.crc32(f"{service}/{operation}".encode())
    return np.random.default_rng([seed, key, chunk])


def _expected_rate(
    rng: np.random.Generator, base_rate: float, minutes: np.ndarray, scale: float
) -> np.ndarray:
    hour = (minutes % _MINUTES_PER_DAY) / 60.0
    diurnal = _DIURNAL_TROUGH + (1.0 - _DIURNAL_TROUGH) * 0.5 * (
        1.0 + np.cos(2.0 * np.pi * (hour - _DIURNAL_PEAK_HOUR) / 24.0)
    )
    epoch_day = minutes // _MINUTES_PER_DAY
    # 1970-01-01 was a Thursday, so +3 makes Monday 0 and Saturday/Sunday 5/6.
    weekly = np.where((epoch_day + 3) % 7 >= 5, _WEEKEND_FACTOR, 1.0)
    day_index = epoch_day - epoch_day[0]
    daily = rng.lognormal(0.0, _DAILY_SIGMA, int(day_index[-1]) + 1)
    return base_rate * scale * diurnal * weekly * daily[day_index]


def _applies(incident: InjectedIncident, service: str, operation: str) -> bool:
    return incident.service == service and incident.operation in (None, operation)


def _simulate_op(
    op: _EventOp,
    rng: np.random.Generator,
    m0: int,
    m1: int,
    scale: float,
    incidents: list[InjectedIncident],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Timestamps (epoch us, sorted), status codes and latencies of one operation over [m0, m1) minutes."""
    minutes = np.arange(m0, m1, dtype=np.int64)
    counts = rng.poisson(_expected_rate(rng, op.base_rate, minutes, scale))
    n = int(counts.sum())
    offsets_ms = rng.integers(0, 60_000, n, dtype=np.int64)
    ts = np.repeat(minutes, counts) * _US_PER_MINUTE + offsets_ms * 1000
    # Sorting before the remaining draws means no other array needs permuting.
    ts.sort()

    # Draw every per-event variate up front, independently of which incidents apply, so an incident
    # changes only the events inside its window and never shifts the random stream.
    u_fail = rng.random(n)
    u_status = rng.random(n)
    u_tail = rng.random(n)
    z = rng.standard_normal(n)

    p_fail = np.full(n, op.p_5xx)
    outage = np.zeros(n, dtype=bool)
    slower = np.ones(n)
    keep = np.ones(n, dtype=bool)
    for incident in incidents:
        if not _applies(incident, op.service, op.name):
            continue
        lo, hi = np.searchsorted(ts, [_epoch_us(incident.start), _epoch_us(incident.end)])
        if incident.kind == "outage":
            p_fail[lo:hi] = _OUTAGE_FAILURE_SHARE
            outage[lo:hi] = True
        elif incident.kind == "error_creep":
            span = _epoch_us(incident.end) - _epoch_us(incident.start)
            progress = (ts[lo:hi] - _epoch_us(incident.start)) / span
            p_fail[lo:hi] = op.p_5xx + (_CREEP_PEAK_FAILURE - op.p_5xx) * progress
        elif incident.kind == "latency_regression":
            slower[lo:hi] = _REGRESSION_FACTOR
        elif incident.kind == "missing_data":
            keep[lo:hi] = False

    # Conditional on landing in a category, u / p is again uniform, which picks the exact code without
    # spending another draw.
    failed = u_fail < p_fail
    v_fail = u_fail / p_fail
    code_5xx = np.where(v_fail < 0.5, 500, np.where(v_fail < 0.75, 502, 503))
    code_5xx = np.where(outage, 503, code_5xx)
    client_error = ~failed & (u_status < op.p_4xx)
    v_client = u_status / op.p_4xx if op.p_4xx > 0 else u_status
    code_4xx = np.where(v_client < 0.45, 400, np.where(v_client < 0.85, 404, 429))
    created = u_status >= 1.0 - (1.0 - op.p_4xx) * op.share_201
    status = np.where(failed, code_5xx, np.where(client_error, code_4xx, np.where(created, 201, 200)))

    latency = op.median_ms * np.exp(op.sigma * z)
    tail = u_tail < _TAIL_SHARE
    latency[tail] *= _TAIL_FACTOR_MIN + (_TAIL_FACTOR_MAX - _TAIL_FACTOR_MIN) * (u_tail[tail] / _TAIL_SHARE)
    latency = np.where(
        client_error, _CLIENT_ERROR_LATENCY_FACTOR * op.median_ms * np.exp(_CLIENT_ERROR_SIGMA * z), latency
    )
    # A slow deploy slows every response the handler produces, rejections included.
    latency *= slower
    failed_latency = np.select(
        [status == 500, status == 502, outage],
        [
            _LATENCY_500_MEDIAN_MS * np.exp(0.5 * z),
            _LATENCY_502_MEDIAN_MS * np.exp(0.5 * z),
            _OUTAGE_TIMEOUT_MS + 25.0 * np.abs(z),
        ],
        default=_TIMEOUT_MIN_MS + (_TIMEOUT_MAX_MS - _TIMEOUT_MIN_MS) * u_tail,
    )
    latency = np.round(np.where(failed, failed_latency, latency), 3)
    return ts[keep], status[keep].astype(np.int16), latency[keep]


def _write_event_chunk(
    path: Path,
    service: str,
    ops: tuple[_EventOp, ...],
    seed: int,
    chunk: int,
    m0: int,
    m1: int,
    scale: float,
    incidents: list[InjectedIncident],
) -> int:
    parts = [_simulate_op(op, _stream(seed, service, op.name, chunk), m0, m1, scale, incidents) for op in ops]
    ts = np.concatenate([p[0] for p in parts])
    op_index = np.concatenate([np.full(len(p[0]), i, dtype=np.int8) for i, p in enumerate(parts)])
    status = np.concatenate([p[1] for p in parts])
    latency = np.concatenate([p[2] for p in parts])
    # Stable sort so that equal timestamps keep catalogue order and the bytes stay reproducible.
    order = np.argsort(ts, kind="stable")
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(ts[order], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "service": pl.repeat(service, len(ts), dtype=pl.String, eager=True),
            "operation": pl.Series(op_index[order]).replace_strict(
                list(range(len(ops))), [op.name for op in ops], return_dtype=pl.String
            ),
            "status_code": pl.Series(status[order], dtype=pl.Int16),
            "latency_ms": pl.Series(latency[order], dtype=pl.Float64),
        }
    )
    frame.write_parquet(path, compression="zstd")
    return frame.height


def _write_count_chunk(
    path: Path,
    seed: int,
    chunk: int,
    m0: int,
    m1: int,
    scale: float,
    incidents: list[InjectedIncident],
) -> int:
    minutes = np.arange(m0, m1, dtype=np.int64)
    totals = []
    goods = []
    keeps = []
    for op in _COUNT_OPS:
        rng = _stream(seed, op.service, op.name, chunk)
        total = rng.poisson(_expected_rate(rng, op.base_rate, minutes, scale))
        totals.append(total)
        goods.append(total - rng.binomial(total, op.p_fail))
        keep = np.ones(len(minutes), dtype=bool)
        for incident in incidents:
            if incident.kind == "missing_data" and _applies(incident, op.service, op.name):
                start_min, end_min = _epoch_minutes(incident.start), _epoch_minutes(incident.end)
                keep &= (minutes < start_min) | (minutes >= end_min)
        keeps.append(keep)

    # Minute-major, then catalogue order: how a counter export lists one scrape after another.
    n_ops = len(_COUNT_OPS)
    keep_rows = np.column_stack(keeps).ravel()
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(np.repeat(minutes, n_ops) * _US_PER_MINUTE, dtype=pl.Int64)
            .cast(pl.Datetime("us", "UTC"))
            .dt.to_string("%Y-%m-%dT%H:%M:%S%:z"),
            "service": pl.repeat(_COUNT_SERVICE, len(minutes) * n_ops, dtype=pl.String, eager=True),
            "operation": pl.Series(np.tile(np.arange(n_ops, dtype=np.int8), len(minutes))).replace_strict(
                list(range(n_ops)), [op.name for op in _COUNT_OPS], return_dtype=pl.String
            ),
            "total": pl.Series(np.column_stack(totals).ravel(), dtype=pl.Int64),
            "good": pl.Series(np.column_stack(goods).ravel(), dtype=pl.Int64),
        }
    ).filter(pl.Series(keep_rows))
    frame.write_csv(path)
    return frame.height


def _write_webhooks(path: Path, seed: int, m0: int, m1: int, scale: float) -> tuple[int, int]:
    op = _WEBHOOK
    rng = _stream(seed, op.service, op.name, 0)
    minutes = np.arange(m0, m1, dtype=np.int64)
    counts = rng.poisson(_expected_rate(rng, op.base_rate, minutes, scale))
    n = int(counts.sum())
    ts_ms = np.repeat(minutes, counts) * 60_000 + rng.integers(0, 60_000, n, dtype=np.int64)
    ts_ms.sort()
    success = rng.random(n) >= op.p_5xx
    latency = op.median_ms * np.exp(op.sigma * rng.standard_normal(n))
    u_tail = rng.random(n)
    tail = u_tail < _TAIL_SHARE
    latency[tail] *= _TAIL_FACTOR_MIN + (_TAIL_FACTOR_MAX - _TAIL_FACTOR_MIN) * (u_tail[tail] / _TAIL_SHARE)

    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(ts_ms, dtype=pl.Int64),
            "service": pl.repeat(op.service, n, dtype=pl.String, eager=True),
            "operation": pl.repeat(op.name, n, dtype=pl.String, eager=True),
            "success": pl.Series(success, dtype=pl.Boolean),
            "latency_ms": pl.Series(np.round(latency, 3), dtype=pl.Float64),
        }
    )
    lines = frame.write_ndjson().splitlines()

    # Fixed fractions of the file, never the end: a reader that stops at the first bad line, or only
    # checks the tail, must be caught out.
    def neighbour_ts(position: int) -> int:
        return int(ts_ms[position - 1]) if position > 0 else m0 * 60_000

    positions = [n // 4, n // 2, (3 * n) // 4]
    head = f'"service":"{op.service}","operation":"{op.name}","success":true'
    malformed = [
        f'{{"timestamp":"yesterday",{head},"latency_ms":75.5}}',
        f'{{"timestamp":{neighbour_ts(positions[1])},{head},"latency_ms":-42.125}}',
        '{"timestamp": 17',
    ]
    # Insert back to front so earlier positions still refer to the original valid lines.
    for position, line in reversed(list(zip(positions, malformed, strict=True))):
        lines.insert(position, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return n, len(malformed)

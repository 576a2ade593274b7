"""Tests for the demo data generator: determinism, bookkeeping, incident visibility and scaling.

Expected figures come from the generator's documented model (rates, incident strengths), never from
its output, so a change that breaks the model fails here rather than being copied into the test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines.slo.demo import DEMO_END, DemoManifest, InjectedIncident, generate_demo

DAYS = 14
SCALE = 0.2
SEED = 7


@dataclass(frozen=True)
class Run:
    out_dir: Path
    manifest: DemoManifest


def _run(tmp_path_factory: pytest.TempPathFactory, name: str, **kwargs: object) -> Run:
    out_dir = tmp_path_factory.mktemp(name)
    return Run(out_dir, generate_demo(out_dir, **kwargs))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory, "base", seed=SEED, days=DAYS, scale=SCALE)


@pytest.fixture(scope="module")
def events(base: Run) -> pl.DataFrame:
    return pl.read_parquet(sorted(base.out_dir.glob("*-events-*.parquet")))


@pytest.fixture(scope="module")
def counts(base: Run) -> pl.DataFrame:
    frame = pl.read_csv(sorted(base.out_dir.glob("auth-counts-*.csv")), infer_schema=False)
    return frame.with_columns(
        pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%:z", time_unit="us", time_zone="UTC"),
        pl.col("total", "good").cast(pl.Int64),
    )


def _incident(manifest: DemoManifest, kind: str) -> InjectedIncident:
    (incident,) = [i for i in manifest.incidents if i.kind == kind]
    return incident


def _is_valid_webhook(line: str) -> bool:
    # The reader's contract, independent of the generator: a JSON object with an integer epoch-ms
    # timestamp, a boolean outcome and a non-negative latency.
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    return (
        isinstance(record, dict)
        and type(record.get("timestamp")) is int
        and isinstance(record.get("success"), bool)
        and isinstance(record.get("latency_ms"), int | float)
        and record["latency_ms"] >= 0
    )


def _webhook_lines(run: Run) -> list[str]:
    text = (run.out_dir / "payments-api-webhooks.ndjson").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def _parquet_rows(run: Run) -> int:
    return sum(pl.read_parquet(p).height for p in run.out_dir.glob("*-events-*.parquet"))


def _valid_webhooks(run: Run) -> int:
    return sum(_is_valid_webhook(line) for line in _webhook_lines(run))


def _in(start: datetime, end: datetime) -> pl.Expr:
    return pl.col("timestamp").is_between(start, end, closed="left")


def _median_latency(frame: pl.DataFrame, start: datetime, end: datetime) -> float:
    window = frame.filter(_in(start, end))
    assert window.height > 0
    return float(window["latency_ms"].median())  # type: ignore[arg-type]


def _share_5xx(frame: pl.DataFrame) -> float:
    assert frame.height > 0
    return frame.filter(pl.col("status_code") >= 500).height / frame.height


# --- determinism -------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(base: Run, tmp_path_factory: pytest.TempPathFactory) -> None:
    again = _run(tmp_path_factory, "again", seed=SEED, days=DAYS, scale=SCALE)
    assert [p.name for p in again.manifest.files] == [p.name for p in base.manifest.files]
    for mine, theirs in zip(base.manifest.files, again.manifest.files, strict=True):
        assert mine.read_bytes() == theirs.read_bytes(), mine.name
    assert again.manifest.events == base.manifest.events
    assert again.manifest.incidents == base.manifest.incidents


def test_different_seed_gives_different_data(base: Run, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = _run(tmp_path_factory, "other", seed=SEED + 1, days=DAYS, scale=SCALE)
    assert [p.name for p in other.manifest.files] == [p.name for p in base.manifest.files]
    for mine, theirs in zip(base.manifest.files, other.manifest.files, strict=True):
        assert mine.read_bytes() != theirs.read_bytes(), mine.name
    # The seed changes the draws, not where the incidents are.
    assert other.manifest.incidents == base.manifest.incidents


# --- bookkeeping -------------------------------------------------------------------------------------


def test_files_match_manifest(base: Run) -> None:
    manifest = base.manifest
    assert manifest.files == sorted(manifest.files, key=lambda p: p.name)
    assert {p.name for p in base.out_dir.iterdir()} == {p.name for p in manifest.files}
    # 14 days = two 7-day chunks: 3 event services x 2 + 2 counts files + 1 webhook log.
    assert len(manifest.files) == 3 * 2 + 2 + 1
    assert (base.out_dir / "checkout-events-20260917.parquet").exists()
    assert (base.out_dir / "auth-counts-20260924.csv").exists()
    assert manifest.end == DEMO_END
    assert manifest.start == DEMO_END - timedelta(days=DAYS)


def test_event_and_malformed_counts_match_files(base: Run) -> None:
    manifest = base.manifest
    lines = _webhook_lines(base)
    valid = _valid_webhooks(base)
    assert manifest.events == _parquet_rows(base) + valid
    assert manifest.malformed_rows == 3
    assert len(lines) == valid + 3
    # Broken lines sit inside the file so a reader cannot get away with checking only the tail.
    assert _is_valid_webhook(lines[0])
    assert _is_valid_webhook(lines[-1])
    broken = [line for line in lines if not _is_valid_webhook(line)]
    assert any('"yesterday"' in line for line in broken)
    assert any(json.loads(line)["latency_ms"] < 0 for line in broken if line.endswith("}"))
    assert sum(1 for line in broken if not line.endswith("}")) == 1


def test_count_rows_match_files(base: Run, counts: pl.DataFrame) -> None:
    assert base.manifest.count_rows == counts.height
    header = (base.out_dir / "auth-counts-20260917.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "timestamp,service,operation,total,good"


def test_event_schema_and_order(base: Run) -> None:
    for path in base.out_dir.glob("*-events-*.parquet"):
        frame = pl.read_parquet(path)
        assert frame.schema == pl.Schema(
            {
                "timestamp": pl.Datetime("us", "UTC"),
                "service": pl.String,
                "operation": pl.String,
                "status_code": pl.Int16,
                "latency_ms": pl.Float64,
            }
        )
        assert frame["timestamp"].is_sorted()
        assert frame["service"].unique().to_list() == [path.name.split("-events-")[0]]
        # Millisecond timestamps and latencies rounded to the microsecond of a millisecond.
        assert (frame["timestamp"].dt.microsecond() % 1000 == 0).all()
        assert ((frame["latency_ms"] * 1000).round(0) - frame["latency_ms"] * 1000).abs().max() < 1e-6
        assert (frame["latency_ms"] > 0).all()


def test_operations_per_source(events: pl.DataFrame, counts: pl.DataFrame, base: Run) -> None:
    pairs = set(events.select("service", "operation").unique().iter_rows())
    assert pairs == {
        ("checkout", "place-order"),
        ("checkout", "view-cart"),
        ("checkout", "apply-coupon"),
        ("search", "query"),
        ("search", "suggest"),
        ("payments-api", "authorize"),
        ("payments-api", "capture"),
        ("payments-api", "refund"),
    }
    assert set(counts.select("service", "operation").unique().iter_rows()) == {
        ("auth", "login"),
        ("auth", "token-refresh"),
    }
    first = json.loads(_webhook_lines(base)[0])
    assert list(first) == ["timestamp", "service", "operation", "success", "latency_ms"]
    assert (first["service"], first["operation"]) == ("payments-api", "webhook")


def test_no_timestamps_outside_window(base: Run, events: pl.DataFrame, counts: pl.DataFrame) -> None:
    start, end = base.manifest.start, base.manifest.end
    for frame in (events, counts):
        assert frame.height > 0
        assert frame.filter(~_in(start, end)).height == 0
    to_ms = 1000
    webhook_ts = [json.loads(line)["timestamp"] for line in _webhook_lines(base) if _is_valid_webhook(line)]
    # The webhook log covers the last 7 days only.
    assert min(webhook_ts) >= (end - timedelta(days=7)).timestamp() * to_ms
    assert max(webhook_ts) < end.timestamp() * to_ms


# --- traffic model -----------------------------------------------------------------------------------


def test_volume_and_shape_follow_the_model(base: Run, events: pl.DataFrame, counts: pl.DataFrame) -> None:
    # ~2 million events for 90 days at scale 1, so proportionally fewer here.
    expected = 2_000_000 * DAYS / 90 * SCALE
    assert 0.8 * expected < base.manifest.events < 1.2 * expected
    # 20-25 requests/minute across auth at scale 1.
    minutes = DAYS * 1440 - 6 * 60
    assert 20 * SCALE < counts["total"].sum() / minutes < 25 * SCALE
    # Diurnal peak at 14:00 UTC and trough at 02:00 UTC is 0.35x the peak.
    by_hour = events.group_by(pl.col("timestamp").dt.hour().alias("hour")).len()
    peak = by_hour.filter(pl.col("hour") == 14)["len"][0]
    trough = by_hour.filter(pl.col("hour") == 2)["len"][0]
    assert 0.25 < trough / peak < 0.45
    # 4xx are 1-3% and are not failures; baseline 5xx are rare.
    client = events.filter(pl.col("status_code").is_between(400, 499)).height / events.height
    assert 0.01 <= client <= 0.03
    assert set(events["status_code"].unique().to_list()) <= {200, 201, 400, 404, 429, 500, 502, 503}


def test_scale_multiplies_traffic(base: Run, tmp_path_factory: pytest.TempPathFactory) -> None:
    doubled = _run(tmp_path_factory, "doubled", seed=SEED, days=DAYS, scale=2 * SCALE)
    ratio = doubled.manifest.events / base.manifest.events
    assert 2 * 0.85 < ratio < 2 * 1.15
    assert _parquet_rows(doubled) + _valid_webhooks(doubled) == doubled.manifest.events
    # The counter emits one row per minute whatever the traffic.
    assert doubled.manifest.count_rows == base.manifest.count_rows


# --- incidents ---------------------------------------------------------------------------------------


def test_outage_is_visible(base: Run, events: pl.DataFrame) -> None:
    outage = _incident(base.manifest, "outage")
    assert (outage.service, outage.operation) == ("checkout", None)
    assert outage.end - outage.start == timedelta(minutes=40)
    checkout = events.filter(pl.col("service") == "checkout")
    during = checkout.filter(_in(outage.start, outage.end))
    outside = checkout.filter(~_in(outage.start, outage.end))
    # 90% of requests fail with 503 during the outage; baseline is a few in ten thousand.
    assert _share_5xx(during) > 0.5
    assert _share_5xx(outside) < 0.01
    assert set(during.filter(pl.col("status_code") >= 500)["status_code"].unique().to_list()) == {503}
    # Timeouts near 3 s.
    timeouts = during.filter(pl.col("status_code") == 503)
    assert _median_latency(timeouts, outage.start, outage.end) > 2500
    # Every operation of the service is hit.
    assert during["operation"].n_unique() == 3


def test_missing_data_is_visible(base: Run, counts: pl.DataFrame) -> None:
    gap = _incident(base.manifest, "missing_data")
    assert (gap.service, gap.operation) == ("auth", None)
    assert counts.filter(_in(gap.start, gap.end)).height == 0
    # Outside the gap the counter emits exactly one row per operation per minute, zeros included.
    minutes = DAYS * 1440 - (gap.end - gap.start) // timedelta(minutes=1)
    assert counts.height == 2 * minutes
    assert counts.filter(pl.col("timestamp") == gap.start - timedelta(minutes=1)).height == 2
    assert counts.filter(pl.col("timestamp") == gap.end).height == 2


def test_latency_regression_is_visible(base: Run, events: pl.DataFrame) -> None:
    regression = _incident(base.manifest, "latency_regression")
    assert (regression.service, regression.operation) == ("search", "query")
    query = events.filter(pl.col("operation") == "query", pl.col("status_code") < 400)
    day = timedelta(days=1)
    before = _median_latency(query, regression.start - day, regression.start)
    during = _median_latency(query, regression.start, regression.end)
    after = _median_latency(query, regression.end, regression.end + day / 2)
    # Latency x2.2 during the regression, back to normal after the rollback.
    assert during > 1.8 * before
    assert after < 1.2 * before
    # The other search operation is untouched.
    suggest = events.filter(pl.col("operation") == "suggest", pl.col("status_code") < 400)
    s_before = _median_latency(suggest, regression.start - day, regression.start)
    assert _median_latency(suggest, regression.start, regression.end) < 1.2 * s_before


def test_error_creep_is_visible(tmp_path_factory: pytest.TempPathFactory) -> None:
    # authorize is low-traffic, so the ramp needs more volume than the base run to be measurable.
    busy = _run(tmp_path_factory, "busy", seed=SEED, days=DAYS, scale=3.0)
    creep = _incident(busy.manifest, "error_creep")
    assert (creep.service, creep.operation) == ("payments-api", "authorize")
    authorize = pl.read_parquet(sorted(busy.out_dir.glob("payments-api-events-*.parquet"))).filter(
        pl.col("operation") == "authorize"
    )
    third = (creep.end - creep.start) / 3
    first = authorize.filter(_in(creep.start, creep.start + third))
    last = authorize.filter(_in(creep.end - third, creep.end))
    outside = authorize.filter(~_in(creep.start, creep.end))
    # Linear ramp from ~0.05% to 2%: the last third averages ~1.7%, the first ~0.4%, outside is baseline.
    assert _share_5xx(last) > 0.008
    assert _share_5xx(last) > 2 * _share_5xx(first)
    assert _share_5xx(outside) < 0.002


def test_incident_placement_for_default_window(tmp_path: Path) -> None:
    # Tiny scale: only the placement matters here, and 90 days of minutes is still generated.
    manifest = generate_demo(tmp_path, scale=0.01)
    day = {i.kind: (i.start - manifest.start, i.end - manifest.start) for i in manifest.incidents}
    d = timedelta(days=1)
    assert day["outage"] == (75 * d + timedelta(hours=13, minutes=20), 75 * d + timedelta(hours=14))
    assert day["latency_regression"] == (70 * d + timedelta(hours=10), 71 * d + timedelta(hours=22))
    assert day["error_creep"] == (80 * d, 86 * d)
    assert day["missing_data"] == (83 * d + timedelta(hours=2), 83 * d + timedelta(hours=8))
    for incident in manifest.incidents:
        assert incident.start.tzinfo is not None and incident.start.utcoffset() == timedelta(0)
        if incident.kind != "missing_data":
            assert incident.start >= manifest.end - 28 * d


def test_shortest_window_keeps_incidents_inside_and_apart(tmp_path: Path) -> None:
    manifest = generate_demo(tmp_path, days=7, scale=0.05)
    assert len(manifest.incidents) == 4
    for incident in manifest.incidents:
        assert manifest.start <= incident.start < incident.end <= manifest.end
    regression = _incident(manifest, "latency_regression")
    # There must be a normal day before the regression to compare against.
    assert regression.start - timedelta(days=1) >= manifest.start


@pytest.mark.parametrize(
    "kwargs",
    [
        {"end": datetime(2026, 10, 1)},  # naive
        {"end": datetime(2026, 10, 1, 0, 0, 30, tzinfo=UTC)},  # not on a minute
        {"days": 6},
        {"scale": 0.0},
        {"seed": -1},
    ],
)
def test_rejects_invalid_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate_demo(tmp_path, **kwargs)  # type: ignore[arg-type]

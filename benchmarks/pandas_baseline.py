"""Plain pandas producing sloscope's three 1-minute SLI tables from raw event Parquet files.

The baseline the scale benchmark compares against (``benchmarks/scale.py``): ``pandas.read_parquet`` and
``groupby``, one file at a time: :func:`minute_tables` concatenates the per-file results and sums them once
more (a minute may span files in general); :func:`write_minute_tables`, what the benchmark runs, writes
them to Parquet as it goes, so memory stays bounded by the largest file (the 1-minute histogram alone has
nearly as many rows as there are events). Same definitions as
``sql/aggregate_minutes.sql`` and ``sql/aggregate_threshold_minutes.sql``:

- ``sli_counts_minute``: requests and non-null latencies per minute, service, operation, status code and
  success, where success = (status_code < 500, or no status) and (success, or not given);
- ``sli_threshold_minute``: per declared (service, threshold), requests with latency <= and < it;
- ``latency_histogram_minute``: log-bucket counts (``pipelines.slo.histogram``), per minute, service,
  operation and success.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.slo import histogram

COUNT_KEYS = ["bucket_start", "service", "operation", "status_code", "success"]
HISTOGRAM_KEYS = ["bucket_start", "service", "operation", "success", "bucket"]
THRESHOLD_KEYS = ["bucket_start", "service", "operation", "status_code", "success", "threshold_ms"]
COLUMNS = ["timestamp", "service", "operation", "status_code", "success", "latency_ms"]


def _prepared(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path, columns=COLUMNS)
    # Naive UTC minutes, as the warehouse stores them.
    stamps = frame["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    status = frame["status_code"]
    ok_status = (status < 500) | status.isna()
    ok_flag = frame["success"].fillna(True).astype(bool)
    return pd.DataFrame(
        {
            "bucket_start": stamps.dt.floor("min"),
            "service": frame["service"].astype(str),
            "operation": frame["operation"].fillna("").astype(str),
            "status_code": status.astype("Int16"),
            "success": (ok_status & ok_flag).astype(bool),
            "latency_ms": frame["latency_ms"].astype(float),
        }
    )


def _counts(frame: pd.DataFrame) -> pd.DataFrame:
    grouped = frame.groupby(COUNT_KEYS, dropna=False, observed=True, sort=False)["latency_ms"]
    return grouped.agg(requests="size", latency_count="count").reset_index()


def _histogram(frame: pd.DataFrame) -> pd.DataFrame:
    timed = frame[frame["latency_ms"].notna()]
    latency = timed["latency_ms"].to_numpy()
    with np.errstate(divide="ignore"):
        bucket = np.ceil(np.log(latency) / histogram.LN_GAMMA)
    bucket = np.where(latency < histogram.MIN_LATENCY_MS, histogram.ZERO_BUCKET, bucket).astype(np.int32)
    timed = timed.assign(bucket=bucket)
    grouped = timed.groupby(HISTOGRAM_KEYS, dropna=False, observed=True, sort=False)
    return grouped.size().rename("count").reset_index()


def _thresholds(frame: pd.DataFrame, thresholds: pd.DataFrame) -> pd.DataFrame:
    timed = frame[frame["latency_ms"].notna()].merge(thresholds, on="service", how="inner")
    timed = timed.assign(
        le_count=(timed["latency_ms"] <= timed["threshold_ms"]).astype(np.int64),
        lt_count=(timed["latency_ms"] < timed["threshold_ms"]).astype(np.int64),
    )
    grouped = timed.groupby(THRESHOLD_KEYS, dropna=False, observed=True, sort=False)
    return grouped[["le_count", "lt_count"]].sum().reset_index()


def threshold_frame(thresholds: dict[str, set[float]]) -> pd.DataFrame:
    pairs = sorted((s, float(t)) for s, values in thresholds.items() for t in values)
    return pd.DataFrame(
        {"service": [s for s, _ in pairs], "threshold_ms": np.array([t for _, t in pairs], dtype=float)}
    )


def file_tables(path: Path, declared: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(counts, thresholds, histogram) per minute of one file; ``declared`` from :func:`threshold_frame`."""
    frame = _prepared(path)
    return _counts(frame), _thresholds(frame, declared), _histogram(frame)


def _combined(parts: list[pd.DataFrame], keys: list[str], values: list[str]) -> pd.DataFrame:
    whole = pd.concat(parts, ignore_index=True)
    return whole.groupby(keys, dropna=False, observed=True, sort=False)[values].sum().reset_index()


def minute_tables(
    files: Iterable[Path], thresholds: dict[str, set[float]]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(counts, thresholds, histogram) per minute from the event files, one file at a time, combined."""
    declared = threshold_frame(thresholds)
    parts = [file_tables(path, declared) for path in files]
    if not parts:
        raise ValueError("minute_tables: no event files given")
    return (
        _combined([p[0] for p in parts], COUNT_KEYS, ["requests", "latency_count"]),
        _combined([p[1] for p in parts], THRESHOLD_KEYS, ["le_count", "lt_count"]),
        _combined([p[2] for p in parts], HISTOGRAM_KEYS, ["count"]),
    )


def write_minute_tables(files: Iterable[Path], thresholds: dict[str, set[float]], out: Path) -> list[int]:
    """The same tables written one Parquet part per input file under ``out/<table>/``, so memory stays
    bounded by one file whatever the output size; rows per table. Each file's minutes must be its own
    (true of hour-partitioned landing folders): a minute found in two files would need a final merge."""
    declared = threshold_frame(thresholds)
    names = ("sli_counts_minute", "sli_threshold_minute", "latency_histogram_minute")
    for name in names:
        (out / name).mkdir(parents=True, exist_ok=True)
    rows = [0, 0, 0]
    seen: list[tuple[pd.Timestamp, pd.Timestamp, Path]] = []
    for number, path in enumerate(files):
        tables = file_tables(path, declared)
        minutes = tables[0]["bucket_start"]
        if len(minutes):
            first, last = minutes.min(), minutes.max()
            for lo, hi, other in seen:
                if first <= hi and lo <= last:
                    raise ValueError(f"{path}: its minutes overlap those of {other}; use minute_tables")
            seen.append((first, last, path))
        for i, (name, table) in enumerate(zip(names, tables, strict=True)):
            table.to_parquet(out / name / f"part-{number:05d}.parquet", index=False)
            rows[i] += len(table)
    return rows

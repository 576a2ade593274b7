"""Streaming anomaly scores for any ``timestamp,value`` series sampled every minute to every hour.

One score per point, in [0, 1], with a confidence and a flag. The score of a point uses only that point
and the points before it, so it can be computed as data arrives and never changes afterwards (appending
points leaves every earlier score bit-for-bit identical). Nothing needs configuring: the sampling step is
the median spacing of the first rows, and the daily period in points follows from it.

How a point is scored (all statistics trailing, vectorised with polars rolling windows, O(n log w)):

1. **Regular grid.** Rows are placed on a grid of the inferred step anchored at the first row; missing
   slots stay empty (NaN) and gaps longer than two weeks are shortened by whole weeks so the daily and
   weekly phase is kept. Output is exactly the input rows: each row takes its slot's score.
2. **Two predictions of each slot**, from earlier slots only:
   * *local*: the median of the last few slots -- follows level shifts within a few points;
   * *seasonal*: the same time on each of the last three days, each taken relative to the mean of the
     day ending there, added to the mean of the last day (median over the three days, so one odd day --
     a weekend day -- does not count) -- knows that the value should rise at 08:00 even when the last
     few points were flat. The weekly period (7 x daily) is only used to keep phase across long gaps.
3. **Robust residual scale** of each prediction over the last days: the IQR, floored by the mean absolute
   deviation (quantised series have an IQR of 0) and by a tiny epsilon, so a flat series gives a huge
   (not an undefined) deviation when it changes.
4. **Point deviation** = the distance to the *closer* prediction, in units of the *better* prediction's
   scale: a point one of the models explains (a square wave's edge, a level already adapted to) is
   normal; a prediction whose scale is over 3 times the better one's (a lagging local median on an
   hourly sine) is not allowed to explain anything.
5. **Sustained deviation** = the median of the last 12 seasonal residuals, in units of its standard
   error: catches what no single point shows -- a level shift in heavy-tailed noise, a slow drift, a day
   whose daily cycle is missing.
6. **Self-calibration against the series' own history.** Each statistic is divided by its own 99.9th
   percentile over the previous two weeks (1,000 to 8,000 slots; never below 3, the Gaussian-noise
   level): real operations series are heavy-tailed, so "6 sigma" means little, while "well beyond
   anything this series has done in two weeks" transfers across series. The larger ratio ``u`` becomes
   the score ``u^2 / (1 + u^2)``: 0.5 at the historical extreme, 0.65 (the default threshold) at 1.36
   times it.

scikit-learn was tried and left out on the evidence: adding an IsolationForest on the residual features
(refitted on trailing windows, combined like the statistics above) lowered the standard NAB score on the
development corpus (60.1 -> 58.1-58.5) and left the generated cases unchanged (69.8 -> 69.2-69.8) at
about 20 times the run time. ``benchmarks/anomaly_eval.py --iforest`` keeps a standalone IsolationForest
baseline for comparison.

Limits, by design: a score is high at the onset of an event and fades as the event becomes the series'
new normal (a level shift stops being flagged within a day; a second anomaly soon after a larger one is
judged against it), which is what window-based scoring rewards -- one early alarm per incident.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

DEFAULT_THRESHOLD = 0.65
"""Flag when a point's deviation is 1.36x the 99.9th percentile of the series' recent history (score
0.65). Chosen on the development corpus and the generated cases, where the NAB-optimal threshold lies at
0.60-0.68 for all three profiles; the conservative end of that range because false alarms cost more trust
than a late detection."""

_DAY_S = 86_400
_WEEK_S = 7 * _DAY_S


@dataclass(frozen=True)
class AnomalyScores:
    """One entry per input point, in input order."""

    score: np.ndarray  # float in [0, 1]; 0 for missing values and during warm-up
    confidence: np.ndarray  # float in [0, 1]: how much history backs the score (0 during warm-up)
    is_anomaly: np.ndarray  # bool: score >= threshold and confidence >= Params.min_confidence


@dataclass(frozen=True)
class Params:
    """The detector's knobs. Defaults are what the evaluation harness settled on; they are exposed for the
    harness and tests, not as configuration (the NAB score is flat within +-2 points around them)."""

    step_rows: int = 64  # rows the step is inferred from; they are also the warm-up (score 0)
    local_width: int = 5  # slots in the local median prediction
    seasonal_days: int = 3  # past days the seasonal prediction takes the median of
    scale_days: float = 3.0  # residual scale over this many days of slots ...
    scale_min: int = 300  # ... but at least this many slots ...
    scale_max: int = 3000  # ... and at most this many
    min_samples: int = 30  # residuals needed before a scale or a quantile is trusted
    eligible: float = 3.0  # a prediction whose scale exceeds 3x the best one's cannot explain a point
    sustain_width: int = 12  # slots in the sustained-deviation median
    history_quantile: float = 0.999  # self-calibration quantile of each statistic
    history_days: float = 14.0  # ... over this many days of slots ...
    history_min: int = 1000  # ... at least this many ...
    history_max: int = 8000  # ... at most this many
    z_floor: float = 3.0  # calibration never divides by less (Gaussian noise: 99.9% of |z| < 3.3)
    min_confidence: float = 0.1  # flags need at least this confidence


PARAMS = Params()


# --------------------------------------------------------------------------------------------------
# Building blocks


def infer_step_seconds(timestamps: np.ndarray, rows: int = PARAMS.step_rows) -> float:
    """Median positive spacing of the first ``rows`` timestamps, in seconds (60 s when unknowable).

    Only the first rows are used so the step, and with it every later score, never depends on the future.
    """
    head = np.asarray(timestamps[:rows]).astype("datetime64[us]").astype(np.int64)
    diffs = np.diff(head)
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        return 60.0
    return float(np.median(diffs)) / 1e6


def seasonal_period(step_s: float) -> int:
    """Points per day at this step (the weekly period is 7 times it); 1 when the step is a day or more."""
    return max(1, round(_DAY_S / step_s))


def grid_slots(timestamps: np.ndarray, step_s: float) -> np.ndarray:
    """Slot index of each row on the regular grid anchored at the first row.

    Gaps longer than two weeks are shortened by whole weeks, so an outage does not allocate a huge grid
    and the daily and weekly phase of every later row is kept. Causal: a row's slot depends on earlier
    rows only.
    """
    t = np.asarray(timestamps).astype("datetime64[us]").astype(np.int64)
    t = (t - t[0]) / 1e6
    gaps = np.diff(t, prepend=t[0])
    cut = np.where(gaps > 2 * _WEEK_S, np.floor((gaps - _WEEK_S) / _WEEK_S) * _WEEK_S, 0.0)
    return np.rint((t - np.cumsum(cut)) / step_s).astype(np.int64)


def _rolling(values: np.ndarray, window: int, how: str, *, min_samples: int, q: float = 0.5) -> np.ndarray:
    """Trailing statistic over the ``window`` slots ending at each slot, skipping missing (NaN) slots.

    Polars' rolling kernels give bit-identical results on any prefix of the input, which the
    no-look-ahead guarantee relies on (tested).
    """
    s = pl.Series(values, dtype=pl.Float64).fill_nan(None)
    window = max(1, int(window))
    min_samples = max(1, min(min_samples, window))
    if how == "quantile":
        out = s.rolling_quantile(q, "linear", window, min_samples=min_samples)
    elif how == "median":
        out = s.rolling_median(window, min_samples=min_samples)
    else:
        out = s.rolling_mean(window, min_samples=min_samples)
    return out.fill_null(np.nan).to_numpy().astype(np.float64)


def _lag(values: np.ndarray, k: int) -> np.ndarray:
    """``values`` delayed by ``k`` slots: out[t] = values[t - k], NaN before the start."""
    out = np.full(len(values), np.nan)
    if 0 <= k < len(values):
        out[k:] = values[: len(values) - k]
    return out


def _nanmedian_rows(stack: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are expected at the start
        return np.nanmedian(stack, axis=0)


def _robust_deviation(
    resid: np.ndarray, magnitude: np.ndarray, window: int, p: Params
) -> tuple[np.ndarray, np.ndarray]:
    """(residual - centre, scale), both from the residuals strictly before each slot.

    Scale = IQR / 1.349 (sigma for Gaussian noise, unmoved by outliers), floored by the mean absolute
    deviation (quantised series have an IQR of 0) and by 1e-9 of the series' magnitude: on a flat series
    any change is then a huge deviation rather than 0/0, while float rounding in the predictions (1e-14
    of the values) stays far below it.
    """
    ms = p.min_samples
    centre = _lag(_rolling(resid, window, "median", min_samples=ms), 1)
    q1 = _lag(_rolling(resid, window, "quantile", min_samples=ms, q=0.25), 1)
    q3 = _lag(_rolling(resid, window, "quantile", min_samples=ms, q=0.75), 1)
    dev = resid - centre
    mean_abs = _lag(_rolling(np.abs(dev), window, "mean", min_samples=ms), 1) * math.sqrt(math.pi / 2)
    scale = np.fmax(np.fmax((q3 - q1) / 1.349, mean_abs), 1e-9 * magnitude + 1e-300)
    return dev, scale


def _slot_statistic(y: np.ndarray, step_s: float, p: Params) -> np.ndarray:
    """Per grid slot, the self-calibrated deviation ``u`` (NaN where there is not enough history)."""
    n = len(y)
    day = seasonal_period(step_s)
    scale_window = int(min(p.scale_max, max(p.scale_min, p.scale_days * day)))
    history_window = int(min(p.history_max, max(p.history_min, p.history_days * day)))

    def calibrate(stat: np.ndarray) -> np.ndarray:
        ms = p.min_samples
        ref = _lag(_rolling(stat, history_window, "quantile", min_samples=ms, q=p.history_quantile), 1)
        return stat / np.fmax(ref, p.z_floor)

    local = _lag(_rolling(y, p.local_width, "median", min_samples=1), 1)
    magnitude = np.abs(local)
    d_loc, s_loc = _robust_deviation(y - local, magnitude, scale_window, p)
    point = np.abs(d_loc) / s_loc
    lags = [k * day for k in range(1, p.seasonal_days + 1) if k * day < n] if day >= 4 else []
    if not lags:
        return calibrate(point)

    # The mean over one day is free of the daily cycle (a median over a day measured 3 NAB points worse).
    level = _rolling(y, day, "mean", min_samples=max(1, day // 2))
    seasonal = _lag(level, 1) + _nanmedian_rows(np.vstack([_lag(y - level, k) for k in lags]))
    d_s, s_s = _robust_deviation(y - seasonal, magnitude, scale_window, p)
    have = ~np.isnan(d_s)
    best = np.fmin(s_loc, s_s)
    # Distance to the closer prediction among those not much worse than the best one, in units of the
    # best one's scale: a poor prediction (local median on an hourly sine) must not explain away a dip.
    dist = np.full(n, np.inf)
    for d, s in ((d_loc, s_loc), (d_s, s_s)):
        dist = np.where(s <= p.eligible * best, np.fmin(dist, np.abs(d)), dist)
    closest = dist / best
    point = np.where(have, closest, point)
    u = calibrate(point)

    w = p.sustain_width
    sustained = np.abs(_rolling(d_s, w, "median", min_samples=(w + 1) // 2)) / (s_s * 1.2533 / math.sqrt(w))
    return np.fmax(u, np.nan_to_num(calibrate(sustained), nan=0.0))


# --------------------------------------------------------------------------------------------------
# Public API


def score_series(
    timestamps: np.ndarray,
    values: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    params: Params = PARAMS,
) -> AnomalyScores:
    """Score every point of a series using only the points up to it.

    ``timestamps``: numpy datetime64, ascending (gaps allowed); ``values``: floats, NaN (or inf) = missing.
    Missing points score 0 with confidence 0; so do the first ``params.step_rows`` rows (warm-up: the
    step is being learnt). Rows sharing a grid slot (closer together than half a step) share the first
    one's score.
    """
    ts = np.asarray(timestamps)
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if ts.shape != v.shape or ts.ndim != 1:
        raise ValueError(
            f"timestamps and values must be 1-D arrays of one length, got {ts.shape} and {v.shape}"
        )
    if n == 0:
        return AnomalyScores(np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool))
    if not np.issubdtype(ts.dtype, np.datetime64):
        raise ValueError(f"timestamps must be numpy datetime64, got {ts.dtype}")
    if np.isnat(ts).any() or (np.diff(ts.astype("datetime64[us]").astype(np.int64)) < 0).any():
        raise ValueError("timestamps must be valid and sorted ascending")
    v = np.where(np.isfinite(v), v, np.nan)

    step_s = infer_step_seconds(ts, params.step_rows)
    slots = grid_slots(ts, step_s)
    y = np.full(int(slots[-1]) + 1, np.nan)
    # The first row of a slot fills it: a later duplicate must not change what its predecessor saw.
    first = np.ones(n, dtype=bool)
    first[1:] = slots[1:] != slots[:-1]
    y[slots[first]] = v[first]

    u = _slot_statistic(y, step_s, params)[slots]
    with np.errstate(over="ignore"):
        raw_score = 1.0 - 1.0 / (1.0 + np.square(np.nan_to_num(u, nan=0.0)))

    # Confidence: valid history before the point, from min_samples (0) to two days / 300 slots (1).
    seen = (np.cumsum(~np.isnan(y)) - ~np.isnan(y))[slots]
    full = max(2 * seasonal_period(step_s), 10 * params.min_samples)
    confidence = np.clip((seen - params.min_samples) / (full - params.min_samples), 0.0, 1.0)

    unusable = np.isnan(v) | np.isnan(u) | (np.arange(n) < params.step_rows)
    score = np.where(unusable, 0.0, raw_score)
    confidence = np.where(unusable, 0.0, confidence)
    flags = (score >= threshold) & (confidence >= params.min_confidence)
    return AnomalyScores(score, confidence, flags)


def read_timestamp_value_csv(input_path: Path) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """Read and validate a ``timestamp,value`` CSV: (timestamp text as given, datetime64[us] UTC, float64).

    Timestamps are ISO-8601 with or without a zone (``Z``, ``+01:00``; converted to UTC) or
    ``YYYY-MM-DD HH:MM:SS``; values are numbers, empty = missing. Errors name the file and line.
    """
    path = Path(input_path)
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from exc
    columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in ("timestamp", "value") if c not in columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; expected a header 'timestamp,value', "
            f"got {','.join(frame.columns) or '(nothing)'}"
        )
    frame = frame.rename(dict(zip(frame.columns, columns, strict=True))).select("timestamp", "value")
    if frame.height == 0:
        raise ValueError(f"{path}: no data rows after the header")
    text = frame["timestamp"].str.strip_chars()
    parsed = _parse_timestamps(text)
    bad = parsed.is_null() & text.is_not_null()
    if text.is_null().any() or bad.any():
        i = int((bad | text.is_null()).arg_max())  # first offending row; line = header + 1-based row
        raise ValueError(
            f"{path}: line {i + 2}: timestamp {text[i]!r} is not ISO-8601 "
            f"(expected e.g. 2024-05-01T12:00:00Z or 2024-05-01 12:00:00)"
        )
    value_text = frame["value"].str.strip_chars()
    values = value_text.cast(pl.Float64, strict=False)
    bad = values.is_null() & value_text.is_not_null() & (value_text != "")
    if bad.any():
        i = int(bad.arg_max())
        raise ValueError(f"{path}: line {i + 2}: value {value_text[i]!r} is not a number")
    return frame["timestamp"], parsed.to_numpy(), values.fill_null(np.nan).to_numpy().astype(np.float64)


def _parse_timestamps(text: pl.Series) -> pl.Series:
    """Parse each timestamp by the first format that fits; zoned ones are converted to UTC, naive ones
    taken as they are. Null where no format fits."""
    normalised = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T").str.replace(r"[zZ]$", "+00:00")
    naive = normalised.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
    naive_min = normalised.str.to_datetime("%Y-%m-%dT%H:%M", time_unit="us", strict=False)
    zoned = normalised.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", strict=False, time_zone="UTC"
    )
    zoned_min = normalised.str.to_datetime("%Y-%m-%dT%H:%M%:z", time_unit="us", strict=False, time_zone="UTC")
    date_only = normalised.str.to_datetime("%Y-%m-%d", time_unit="us", strict=False)
    out = pl.select(
        pl.coalesce(
            naive,
            naive_min,
            zoned.dt.replace_time_zone(None),
            zoned_min.dt.replace_time_zone(None),
            date_only,
        )
    ).to_series()
    return out


def detect_csv(input_path: Path, output_path: Path, *, threshold: float = DEFAULT_THRESHOLD) -> int:
    """Score a ``timestamp,value`` CSV and write ``timestamp,value,score,is_anomaly``; return rows written.

    Rows are sorted by time (stable, so equal timestamps keep their order) and written with their
    timestamps as given. Raises ValueError naming the file and line on bad input.
    """
    raw_ts, ts, values = read_timestamp_value_csv(Path(input_path))
    order = np.argsort(ts, kind="stable")
    result = score_series(ts[order], values[order], threshold=threshold)
    out = pl.DataFrame(
        {
            "timestamp": raw_ts.gather(pl.Series(order)),
            "value": pl.Series(values[order]).fill_nan(None),  # missing stays empty, as read
            "score": np.round(result.score, 6),
            "is_anomaly": result.is_anomaly,
        }
    )
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    out.write_csv(output_path)
    return out.height

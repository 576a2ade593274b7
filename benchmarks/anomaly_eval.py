"""Evaluate the streaming anomaly detector: NAB-style scores on the development corpus and on generated
labelled cases, a rolling z-score baseline for reference, and timings.

Usage: python benchmarks/anomaly_eval.py [--data DIR] [--skip-dev] [--skip-synthetic] [--skip-timing]
                                         [--iforest]

The development corpus is the NAB subset in shared/data/anomaly-dev (34 labelled files). The generated
cases are deterministic (fixed seeds) and shaped like operations metrics: request counts (Poisson around a
daily and weekly cycle), latency (log-normal, heavy right tail), CPU (seasonal plus AR(1) noise, clipped)
and flat gauges, at 1-minute, 5-minute and hourly steps. Each anomalous case carries NAB-style windows
(10% of the length shared by its anomalies, centred on each onset), placed after the learning period.

Nothing here asserts a figure: it prints what it measured. The best threshold per profile is chosen over
the whole set being reported (as NAB does), and per-category figures use that corpus threshold.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.slo.anomaly import DEFAULT_THRESHOLD, PARAMS, detect_csv, score_series
from pipelines.slo.nab import (
    PROFILES,
    LabelledSeries,
    best_threshold,
    corpus_at_threshold,
    load_corpus,
    nab_windows,
)

# shared/ sits beside the repository (as on developer machines and in CI).
DEFAULT_DATA = Path(
    os.environ.get(
        "SLOSCOPE_ANOMALY_DEV", Path(__file__).resolve().parents[2] / "shared" / "data" / "anomaly-dev"
    )
)

Detector = Callable[[np.ndarray, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------------------
# Detectors under comparison


def sloscope_detector(timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The detector as shipped; points with too little history to be flagged count as score 0."""
    result = score_series(timestamps, values)
    return np.where(result.confidence >= PARAMS.min_confidence, result.score, 0.0)


def rolling_zscore_detector(timestamps: np.ndarray, values: np.ndarray, window: int = 288) -> np.ndarray:
    """Baseline: |x - mean| / std over the previous ``window`` points (NAB's "windowed Gaussian" idea).

    Mapped to [0, 1) by z / (1 + z) so the sweep can pick any z threshold; causal like the detector.
    """
    s = pl.Series(values).fill_nan(None)
    mean = s.rolling_mean(window, min_samples=30).shift(1).fill_null(np.nan).to_numpy()
    std = s.rolling_std(window, min_samples=30).shift(1).fill_null(np.nan).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(values - mean) / np.where(std > 0, std, 1e-9)
    z = np.nan_to_num(z, nan=0.0, posinf=1e12)
    return z / (1.0 + z)


def isolation_forest_detector(timestamps: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Baseline: scikit-learn IsolationForest on residual features, refitted every 500 points on the
    previous 2,000 (causal: a block is scored by a forest that never saw it).

    Features: the value minus the median of the last 5, minus the previous value, and minus the value one
    day earlier, each over the trailing 3-day IQR. Slow (refits), so only run with --iforest.
    """
    from sklearn.ensemble import IsolationForest

    n = len(values)
    step = float(np.median(np.diff(timestamps[:64]).astype("timedelta64[s]").astype(np.float64)))
    day = max(1, round(86_400 / max(step, 1.0)))
    s = pl.Series(values).fill_nan(None)
    med5 = s.rolling_median(5, min_samples=1).shift(1)
    iqr = (
        s.rolling_quantile(0.75, "linear", 3 * day, min_samples=10)
        - s.rolling_quantile(0.25, "linear", 3 * day, min_samples=10)
    ).shift(1)
    scale = iqr.fill_null(np.nan).to_numpy()
    scale = np.where(scale > 0, scale, 1e-9)
    feats = np.column_stack(
        [
            (s - med5).fill_null(np.nan).to_numpy() / scale,
            (s - s.shift(1)).fill_null(np.nan).to_numpy() / scale,
            (s - s.shift(day)).fill_null(np.nan).to_numpy() / scale,
        ]
    )
    feats = np.clip(np.nan_to_num(feats, nan=0.0), -1e3, 1e3)
    out = np.zeros(n)
    for start in range(256, n, 500):
        model = IsolationForest(n_estimators=50, max_samples=256, random_state=0)
        model.fit(feats[max(0, start - 2000) : start])
        block = slice(start, min(n, start + 500))
        out[block] = -model.score_samples(feats[block])
    return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Generated labelled cases


@dataclass(frozen=True)
class Case:
    series: LabelledSeries
    family: str


_STEPS = {"1min": 60, "5min": 300, "1h": 3600}
_LENGTHS = {"1min": 7 * 1440, "5min": 14 * 288, "1h": 90 * 24}


def _base(family: str, step: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """A clean series of one family: (timestamps, values, noise sigma at the typical level)."""
    n = _LENGTHS[step]
    step_s = _STEPS[step]
    ts = np.datetime64("2024-01-01T00:00:00", "us") + np.arange(n) * np.timedelta64(step_s, "s")
    t_days = np.arange(n) * step_s / 86_400.0
    phase = rng.uniform(0, 2 * np.pi)
    daily = np.sin(2 * np.pi * t_days + phase)
    weekly = np.where(((t_days // 1) % 7) >= 5, 0.7, 1.0)  # quieter weekends
    if family == "requests":
        level = rng.uniform(50, 400) * (step_s / 300) ** 0.5
        lam = level * (1 + 0.5 * daily) * weekly
        values = rng.poisson(lam).astype(np.float64)
        sigma = float(np.sqrt(level))
    elif family == "latency":
        base = rng.uniform(80, 300)
        values = base * (1 + 0.15 * daily) * np.exp(rng.normal(0, 0.12, n))
        sigma = base * 0.12
    elif family == "cpu":
        base = rng.uniform(20, 50)
        noise = np.zeros(n)
        e = rng.normal(0, 2.0, n)
        for i in range(1, n):
            noise[i] = 0.6 * noise[i - 1] + e[i]
        values = np.clip(base + 12 * daily * weekly + noise, 0, 100)
        sigma = 2.5
    elif family == "flat":
        values = np.full(n, float(rng.choice([0.0, 1.0, 42.0, 99.9])))
        sigma = 0.0
    elif family == "noisy":
        base = rng.uniform(10, 100)
        sigma = base * 0.1
        values = base + sigma * rng.standard_t(3, n)  # heavy tails, no seasonality
    else:  # pragma: no cover
        raise ValueError(family)
    return ts, values, sigma


def _inject(kind: str, values: np.ndarray, sigma: float, step: str, rng: np.random.Generator) -> list[int]:
    """Insert one or more anomalies of ``kind`` in place; return their onset rows."""
    n = len(values)
    day = 86_400 // _STEPS[step]
    lo, hi = int(0.3 * n), int(0.85 * n)
    level = float(np.median(values))
    size = max(sigma, 0.05 * abs(level), 1.0)
    if kind in ("spike", "dip"):
        onsets = sorted(rng.choice(np.arange(lo, hi), size=int(rng.integers(1, 3)), replace=False).tolist())
        for a in onsets:
            mag = rng.uniform(6, 10) * size
            values[a] = values[a] + mag if kind == "spike" else values[a] - mag
        return onsets
    a = int(rng.integers(lo, hi))
    if kind == "level_shift":
        values[a:] += rng.choice([-1, 1]) * rng.uniform(4, 8) * size
    elif kind == "variance_change":
        span = int(min(n - a, rng.uniform(0.5, 1.5) * day + 20))
        values[a : a + span] += rng.normal(0, rng.uniform(3, 5) * max(sigma, 0.02 * abs(level), 0.5), span)
    elif kind == "drift":
        span = int(max(10, rng.uniform(0.3, 1.0) * day))
        ramp = np.minimum(np.arange(n - a) / span, 1.0) * rng.uniform(8, 12) * size
        values[a:] += ramp
    elif kind == "broken_seasonality":
        span = int(day)
        seg = values[a : a + span]
        values[a : a + span] = np.median(values[max(0, a - day) : a]) + (seg - seg.mean()) * 0.1
    else:  # pragma: no cover
        raise ValueError(kind)
    return [a]


_CATEGORIES: dict[str, tuple[str, Sequence[str]]] = {
    # category -> (injected kind or "" for none, families it is tried on)
    "spikes": ("spike", ("requests", "latency", "cpu")),
    "dips": ("dip", ("requests", "latency", "cpu")),
    "level_shifts": ("level_shift", ("requests", "latency", "cpu")),
    "variance_changes": ("variance_change", ("requests", "latency", "cpu")),
    "slow_drifts": ("drift", ("requests", "latency", "cpu")),
    "broken_seasonality": ("broken_seasonality", ("requests", "latency", "cpu")),
    "flat": ("level_shift", ("flat",)),
    "noisy": ("level_shift", ("noisy",)),
    "clean": ("", ("requests", "latency", "cpu", "flat", "noisy")),
}


def synthetic_cases(per_category: int = 6, seed: int = 20260) -> list[Case]:
    """Deterministic labelled cases: ``per_category`` series per category, cycling families and steps."""
    cases: list[Case] = []
    steps = list(_STEPS)
    for c_idx, (category, (kind, families)) in enumerate(_CATEGORIES.items()):
        for i in range(per_category):
            rng = np.random.default_rng([seed, c_idx, i])
            family = families[i % len(families)]
            step = steps[(i // len(families) + i) % len(steps)]
            ts, values, sigma = _base(family, step, rng)
            onsets = _inject(kind, values, sigma, step, rng) if kind else []
            if family in ("requests", "cpu", "latency"):
                values = np.maximum(values, 0.0)
            name = f"{category}/{family}_{step}_{i}"
            windows = nab_windows(len(values), onsets)
            series = LabelledSeries(name, category, ts, values, windows)
            cases.append(Case(series, family))
    return cases


# --------------------------------------------------------------------------------------------------
# Reporting


def run_detector(detector: Detector, corpus: Sequence[LabelledSeries]) -> list[tuple[np.ndarray, tuple]]:
    return [(detector(s.timestamps, s.values), s.windows) for s in corpus]


def report(title: str, corpus: Sequence[LabelledSeries], detectors: dict[str, Detector]) -> dict[str, float]:
    """Print NAB scores per profile (best and default threshold) and per category; return standard scores."""
    print(f"\n== {title}: {len(corpus)} series, {sum(len(s.windows) for s in corpus)} windows ==")
    categories = sorted({s.category for s in corpus})
    standard: dict[str, float] = {}
    for det_name, detector in detectors.items():
        started = time.perf_counter()
        results = run_detector(detector, corpus)
        seconds = time.perf_counter() - started
        print(f"-- {det_name} ({seconds:.1f} s)")
        for profile in PROFILES.values():
            best = best_threshold(results, profile)
            line = (
                f"   {profile.name:14s} best {best.normalised:6.1f} at threshold {best.threshold:.4f}"
                f"  (windows {best.detected_windows}/{best.windows}, FP {best.false_positives})"
            )
            if det_name == "sloscope":
                at_default = corpus_at_threshold(results, profile, DEFAULT_THRESHOLD)
                line += (
                    f" | default {DEFAULT_THRESHOLD}: {at_default.normalised:6.1f}  (windows "
                    f"{at_default.detected_windows}/{at_default.windows}, FP {at_default.false_positives})"
                )
            print(line)
            if profile.name == "standard":
                standard[det_name] = best.normalised
                per_cat = []
                for cat in categories:
                    sub = [r for r, s in zip(results, corpus, strict=True) if s.category == cat]
                    at = corpus_at_threshold(sub, profile, best.threshold)
                    at_def = corpus_at_threshold(sub, profile, DEFAULT_THRESHOLD)
                    figure = f"{at.normalised:6.1f}" if at.windows else f"raw {at.raw:+.2f}"
                    extra = ""
                    if det_name == "sloscope":
                        dfig = f"{at_def.normalised:6.1f}" if at_def.windows else f"raw {at_def.raw:+.2f}"
                        extra = (
                            f" | default {dfig} ({at_def.detected_windows}/{at_def.windows},"
                            f" FP {at_def.false_positives})"
                        )
                    counts = f"({at.detected_windows}/{at.windows}, FP {at.false_positives})"
                    per_cat.append(f"      {cat:24s} {figure} {counts}{extra}")
                print("\n".join(per_cat))
    return standard


def timing() -> None:
    """Time `detect` on a 20,000-point CSV and scoring 100 series x 90 days hourly."""
    rng = np.random.default_rng(7)
    n = 20_000
    ts = np.datetime64("2024-01-01T00:00:00", "us") + np.arange(n) * np.timedelta64(60, "s")
    values = 100 + 20 * np.sin(2 * np.pi * np.arange(n) / 1440) + rng.normal(0, 3, n)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        pl.DataFrame({"timestamp": ts, "value": values}).write_csv(src)
        started = time.perf_counter()
        rows = detect_csv(src, dst)
        seconds = time.perf_counter() - started
    print(f"\n== timing ==\n   detect_csv on {rows:,} 1-minute points: {seconds:.2f} s")
    series = []
    for i in range(100):
        r = np.random.default_rng([11, i])
        m = 90 * 24
        t = np.datetime64("2024-01-01T00:00:00", "us") + np.arange(m) * np.timedelta64(1, "h")
        v = 50 + 10 * np.sin(2 * np.pi * np.arange(m) / 24 + r.uniform(0, 6)) + r.normal(0, 2, m)
        series.append((t, v))
    started = time.perf_counter()
    for t, v in series:
        score_series(t, v)
    seconds = time.perf_counter() - started
    print(f"   score_series on 100 x 2,160 hourly points (one process): {seconds:.2f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the anomaly-dev folder")
    parser.add_argument("--skip-dev", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--iforest", action="store_true", help="also run the (slow) IsolationForest baseline")
    args = parser.parse_args(argv)
    detectors: dict[str, Detector] = {
        "sloscope": sloscope_detector,
        "rolling z-score": rolling_zscore_detector,
    }
    if args.iforest:
        detectors["isolation forest"] = isolation_forest_detector
    if not args.skip_dev:
        report(f"anomaly-dev ({args.data})", load_corpus(args.data), detectors)
    if not args.skip_synthetic:
        report("synthetic", [c.series for c in synthetic_cases()], detectors)
    if not args.skip_timing:
        timing()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Streaming anomaly detector and NAB-style scorer.

Detector cases are built on one hourly series: 30 days of a daily sine (amplitude 10) plus Gaussian noise
of sigma 1 (seed 42), so "8 sigma" below means 8 value units. NAB expectations are worked out by hand
from the scaled sigmoid S(p) = 2 / (1 + exp(5 p)) - 1 and the weights in shared/data/README.md.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pipelines.slo.anomaly import (
    DEFAULT_THRESHOLD,
    AnomalyScores,
    detect_csv,
    infer_step_seconds,
    score_series,
    seasonal_period,
)
from pipelines.slo.nab import (
    PROFILES,
    best_threshold,
    corpus_at_threshold,
    nab_windows,
    normalise,
    probation_length,
    scaled_sigmoid,
    score_at_threshold,
    sweep,
    window_indices,
)

HOUR = np.timedelta64(1, "h")
START = np.datetime64("2024-01-01T00:00:00", "us")


def hourly(days: int = 30, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    n = days * 24
    rng = np.random.default_rng(seed)
    ts = START + np.arange(n) * HOUR
    return ts, 100 + 10 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 1, n)


def flagged(result: AnomalyScores) -> list[int]:
    return np.flatnonzero(result.is_anomaly).tolist()


# ------------------------------------------------------------------------------------------------
# Detector


def test_clean_seasonal_noise_is_never_flagged() -> None:
    # 30 days hourly sine + N(0, 1): nothing is anomalous, so nothing may be flagged at the default
    # threshold. Five seeds, not one, so the margin is not luck (over 200 seeds the largest score seen was
    # 0.64 against the 0.65 threshold).
    for seed in (42, 0, 1, 2, 3):
        ts, values = hourly(seed=seed)
        result = score_series(ts, values)
        assert flagged(result) == [], seed
        assert result.score.min() >= 0.0 and result.score.max() < 1.0


@pytest.mark.parametrize("size", [8.0, -8.0])
def test_spike_and_dip_are_flagged_at_the_point(size: float) -> None:
    # Tolerance 0: a single-point excursion must be flagged on that very point, and nowhere else.
    ts, values = hourly()
    values[500] += size
    assert flagged(score_series(ts, values)) == [500]


@pytest.mark.parametrize("size", [8.0, -8.0])
def test_level_shift_is_flagged_at_onset_and_then_adapted_to(size: float) -> None:
    # Tolerance: first flag within 5 points of the shift, and the detector settles within a day (the new
    # level becomes normal instead of flagging forever).
    ts, values = hourly()
    values[500:] += size
    flags = flagged(score_series(ts, values))
    assert flags, "level shift not flagged"
    assert 500 <= flags[0] <= 505
    assert max(flags) < 500 + 24


def test_flat_series_change_is_anomalous_without_dividing_by_zero() -> None:
    n = 2000
    ts = START + np.arange(n) * np.timedelta64(1, "m")
    values = np.full(n, 42.0)
    values[1500:] = 43.0
    with np.errstate(all="raise"):  # no 0/0 or x/0 anywhere on a zero-variance series
        result = score_series(ts, values)
    assert flagged(result)[0] == 1500
    assert not result.is_anomaly[:1500].any()
    assert result.score[1500] > 0.99


def test_missing_values_and_gaps() -> None:
    ts, values = hourly()
    values[[100, 101, 300]] = np.nan
    values[450] = np.inf  # treated as missing, not as an anomaly
    keep = np.ones(len(ts), dtype=bool)
    keep[200:260] = False  # a 60-hour outage: no rows at all
    ts, values = ts[keep], values[keep]
    values[600 - 60] += 8.0  # a spike after the gap (row index shifted by the 60 dropped rows)
    result = score_series(ts, values)
    nan_rows = np.flatnonzero(~np.isfinite(values))
    assert result.score[nan_rows].tolist() == [0.0] * len(nan_rows)
    assert result.confidence[nan_rows].tolist() == [0.0] * len(nan_rows)
    assert not result.is_anomaly[nan_rows].any()
    assert np.isfinite(result.score).all() and len(result.score) == len(values)
    assert flagged(result) == [540]


def test_no_look_ahead_prefix_scores_are_identical() -> None:
    # Score the first k points, then all n: the first k scores must be bit-for-bit the same, whatever
    # comes later (gaps, NaN, an anomaly). k covers the warm-up edge (64 rows) and later points.
    ts, values = hourly(days=40)
    values[[70, 333, 334]] = np.nan
    values[700] += 9.0
    values[800:] += 5.0
    keep = np.ones(len(ts), dtype=bool)
    keep[400:430] = False
    ts, values = ts[keep], values[keep]
    full = score_series(ts, values)
    for k in (1, 10, 63, 64, 65, 200, 371, 690, 800, len(ts) - 1):
        head = score_series(ts[:k], values[:k])
        assert np.array_equal(head.score, full.score[:k]), k
        assert np.array_equal(head.confidence, full.confidence[:k]), k
        assert np.array_equal(head.is_anomaly, full.is_anomaly[:k]), k


def test_warm_up_has_zero_confidence_and_confidence_grows() -> None:
    ts, values = hourly()
    result = score_series(ts, values)
    assert result.confidence[:64].max() == 0.0 and result.score[:64].max() == 0.0
    assert result.confidence[-1] == 1.0
    assert np.all(np.diff(result.confidence[64:]) >= 0)


def test_step_and_period_inference() -> None:
    minute = START + np.arange(100) * np.timedelta64(1, "m")
    assert infer_step_seconds(minute) == 60.0
    assert seasonal_period(60.0) == 1440
    assert seasonal_period(3600.0) == 24
    assert seasonal_period(300.0) == 288


def test_rejects_bad_arrays() -> None:
    with pytest.raises(ValueError, match="datetime64"):
        score_series(np.arange(3), np.zeros(3))
    with pytest.raises(ValueError, match="sorted"):
        score_series(START + np.array([2, 1, 3]) * HOUR, np.zeros(3))
    empty = score_series(START + np.arange(0) * HOUR, np.zeros(0))
    assert empty.score.shape == (0,)


# ------------------------------------------------------------------------------------------------
# detect_csv


def test_detect_csv_writes_sorted_rows_in_the_output_format(tmp_path: Path) -> None:
    ts, values = hourly(days=10)
    values[180] += 8.0
    rows = [f"{str(t)[:19]}Z,{float(v)!r}" for t, v in zip(ts, values, strict=True)]
    rows[5], rows[6] = rows[6], rows[5]  # out of order: must be sorted
    rows[7] = rows[7].split(",")[0] + ","  # an empty value is missing, not an error
    src = tmp_path / "in.csv"
    src.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out.csv"
    assert detect_csv(src, out) == len(values)
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,value,score,is_anomaly"
    assert lines[6].startswith("2024-01-01T05:00:00Z,")  # sorted back; timestamps kept as given
    assert lines[8].split(",")[1:] == ["", "0.0", "false"]  # missing value: score 0, not anomalous
    flags = [i for i, line in enumerate(lines[1:]) if line.endswith(",true")]
    assert flags == [180]


def test_detect_csv_accepts_naive_and_offset_timestamps(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01T01:00:00+01:00,2\n2024-01-01T02:00,3\n"
    )
    out = tmp_path / "out.csv"
    assert detect_csv(src, out) == 3
    # 01:00+01:00 is 00:00 UTC: it ties with the first row and keeps its place after it (stable sort).
    assert [line.split(",")[0] for line in out.read_text().splitlines()[1:]] == [
        "2024-01-01 00:00:00",
        "2024-01-01T01:00:00+01:00",
        "2024-01-01T02:00",
    ]


def test_detect_csv_errors_name_the_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("time,val\n2024-01-01 00:00:00,1\n")
    with pytest.raises(ValueError, match=r"bad\.csv: missing column\(s\) timestamp, value"):
        detect_csv(src, tmp_path / "o.csv")
    src.write_text("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,2\nyesterday,3\n")
    with pytest.raises(ValueError, match=r"bad\.csv: line 4: timestamp 'yesterday' is not ISO-8601"):
        detect_csv(src, tmp_path / "o.csv")
    src.write_text("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,lots\n")
    with pytest.raises(ValueError, match=r"bad\.csv: line 3: value 'lots' is not a number"):
        detect_csv(src, tmp_path / "o.csv")
    src.write_text("timestamp,value\n")
    with pytest.raises(ValueError, match="no data rows"):
        detect_csv(src, tmp_path / "o.csv")


def test_default_threshold_is_a_probability_like_cut() -> None:
    assert 0.0 < DEFAULT_THRESHOLD < 1.0


# ------------------------------------------------------------------------------------------------
# NAB scoring, by hand
#
# 100 rows; learning period floor(0.15 * 100) = 15 rows; one window [50, 59], width 10.

WINDOW = ((50, 59),)
STANDARD = PROFILES["standard"]


def detections(*rows: int, n: int = 100) -> np.ndarray:
    scores = np.zeros(n)
    scores[list(rows)] = 1.0
    return scores


def test_scaled_sigmoid_values_from_nab() -> None:
    # NAB's docstring: S(-1) = 0.98661, S(-0.5) = 0.84828, S(0) = 0, S(1) = -0.98661, -1 from 3 on.
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0


def test_probation_length() -> None:
    assert probation_length(100) == 15
    assert probation_length(4032) == 604  # floor(604.8)
    assert probation_length(15_902) == 750  # capped


def test_detection_at_window_start_earns_the_full_tp_weight() -> None:
    raw, windows, found, fps = score_at_threshold(detections(50), WINDOW, STANDARD, 0.5)
    assert raw == pytest.approx(1.0)  # S(-10/10) / S(-1) * tp_weight
    assert (windows, found, fps) == (1, 1, 0)
    assert normalise(raw, 1, STANDARD) == pytest.approx(100.0)


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    # Last row of the window: p = -(59 - 59 + 1) / 10 = -0.1, S = 2 / (1 + e^-0.5) - 1 = 0.244919,
    # divided by S(-1) = 0.986614 -> 0.248242. Adding later rows in the window changes nothing.
    late = 2 / (1 + math.exp(-0.5)) - 1
    expected = late / (2 / (1 + math.exp(-5)) - 1)
    assert expected == pytest.approx(0.248242, abs=1e-6)
    raw, *_ = score_at_threshold(detections(59), WINDOW, STANDARD, 0.5)
    assert raw == pytest.approx(expected)
    raw_two, _, _, fps = score_at_threshold(detections(55, 59), WINDOW, STANDARD, 0.5)
    s55 = (2 / (1 + math.exp(-5 * 0.5)) - 1) / (2 / (1 + math.exp(-5)) - 1)  # p = -5/10
    assert raw_two == pytest.approx(s55) and fps == 0
    # Normalised: 100 * (0.248242 + 1) / (1 + 1) = 62.41
    assert normalise(expected, 1, STANDARD) == pytest.approx(62.4121, abs=1e-3)


def test_false_positives_before_during_learning_and_after_the_window() -> None:
    # Row 10 is in the learning period: ignored. Row 20 precedes every window: -fp_weight = -0.11.
    # Nothing in the window: -fn_weight = -1. Total -1.11, normalised 100 * (-1.11 + 1) / 2 = -5.5.
    raw, windows, found, fps = score_at_threshold(detections(10, 20), WINDOW, STANDARD, 0.5)
    assert raw == pytest.approx(-1.11)
    assert (windows, found, fps) == (1, 0, 1)
    assert normalise(raw, 1, STANDARD) == pytest.approx(-5.5)
    # Row 60, one past the window: q = (60 - 59) / (10 - 1) = 1/9, S(1/9) = 2 / (1 + e^(5/9)) - 1
    # = -0.270839, times 0.11 = -0.0297923; with a hit at the window start: 1 - 0.0297923.
    raw, *_ = score_at_threshold(detections(50, 60), WINDOW, STANDARD, 0.5)
    assert raw == pytest.approx(1 + 0.11 * (2 / (1 + math.exp(5 / 9)) - 1))
    assert raw == pytest.approx(0.9702077, abs=1e-6)
    # Row 90: q = 31 / 9 >= 3, the full -0.11.
    raw, *_ = score_at_threshold(detections(50, 90), WINDOW, STANDARD, 0.5)
    assert raw == pytest.approx(1 - 0.11)


def test_profiles_weigh_misses_and_false_alarms_differently() -> None:
    miss_and_fp = detections(20)
    assert score_at_threshold(miss_and_fp, WINDOW, PROFILES["reward_low_FP"], 0.5)[0] == pytest.approx(-1.22)
    assert score_at_threshold(miss_and_fp, WINDOW, PROFILES["reward_low_FN"], 0.5)[0] == pytest.approx(-2.11)
    # reward_low_FN normalises between -2 (null) and +1 (perfect): 100 * (-2.11 + 2) / 3 = -3.667
    assert normalise(-2.11, 1, PROFILES["reward_low_FN"]) == pytest.approx(-11 / 3)


def test_window_in_learning_period_is_not_scored() -> None:
    raw, windows, found, fps = score_at_threshold(detections(5), ((3, 8),), STANDARD, 0.5)
    assert (raw, windows, found, fps) == (0.0, 0, 0, 0)
    assert math.isnan(normalise(raw, windows, STANDARD))


def test_sweep_agrees_with_scoring_each_threshold() -> None:
    rng = np.random.default_rng(3)
    corpus = [
        (np.round(rng.random(300), 2), ((100, 129), (200, 229))),
        (np.round(rng.random(200), 2), ((150, 169),)),
        (np.round(rng.random(250), 2), ()),
    ]
    for profile in PROFILES.values():
        thresholds, raws, windows = sweep(corpus, profile)
        assert windows == 3
        for t, raw in zip(thresholds[1:], raws[1:], strict=True):
            assert raw == pytest.approx(corpus_at_threshold(corpus, profile, float(t)).raw, abs=1e-9)
        best = best_threshold(corpus, profile)
        assert best.raw == pytest.approx(raws.max())


def test_window_indices_and_generated_windows() -> None:
    ts = START + np.arange(10) * HOUR
    assert window_indices(ts, [("2024-01-01 02:00:00.000000", "2024-01-01 04:00:00.000000")]) == ((2, 4),)
    # 10% of 1000 rows shared by two anomalies: width 50, centred on each.
    assert nab_windows(1000, [300, 700]) == ((275, 324), (675, 724))

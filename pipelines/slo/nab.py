"""Window-based scoring of anomaly detectors in the style of the Numenta Anomaly Benchmark (NAB).

A point-wise precision/recall says little about a streaming detector: what matters to an operator is
whether an incident was flagged, how early, and how many alarms fired for nothing. NAB scores exactly
that, and these functions reproduce its rules (NAB ``sweeper.py``, v1.1):

* each labelled anomaly window ``[left, right]`` (row indices, inclusive) counts once: only its earliest
  detection scores, ``tp_weight * S(p) / S(-1)`` where ``p = -(right - i + 1) / width`` runs from -1 at the
  window's first row to about 0 at its last, and ``S(p) = 2 / (1 + exp(5 p)) - 1`` is NAB's scaled sigmoid
  (so a detection on the first row earns the full ``tp_weight``, one on the last row almost nothing);
* a window with no detection costs ``-fn_weight``;
* a detection outside every window is a false positive weighted by ``fp_weight * S(q)``, ``q`` being its
  distance past the end of the previous window in widths (``|right - i| / (width - 1)``), so an alarm just
  after an incident costs little and one far from it (``q >= 3``) or before the first window costs
  ``-fp_weight``;
* the first 15% of each file, at most 750 rows, is a learning period: nothing in it is scored (a window
  lying wholly inside it disappears);
* a detection is a row whose score is ``>= threshold``; one threshold per detector and profile is chosen
  to maximise the total over the corpus, and the total is normalised to 100 * (raw - null) / (perfect -
  null), with null = -fn_weight per window (a detector that never fires) and perfect = tp_weight per
  window (each window caught on its first row, no false positive).

Everything is a pure function of numpy arrays; :func:`load_corpus` reads the development corpus
(``<root>/<category>/<file>.csv`` plus ``windows.json``).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

PROBATION_FRACTION = 0.15
PROBATION_CAP = 750  # NAB: probationPercent * 5000 rows


@dataclass(frozen=True)
class Profile:
    """A NAB cost matrix."""

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float


PROFILES: dict[str, Profile] = {
    "standard": Profile("standard", 1.0, 0.11, 1.0),
    "reward_low_FP": Profile("reward_low_FP", 1.0, 0.22, 1.0),
    "reward_low_FN": Profile("reward_low_FN", 1.0, 0.11, 2.0),
}


@dataclass(frozen=True)
class LabelledSeries:
    """One labelled file: its rows and its anomaly windows as inclusive row-index pairs."""

    name: str  # "<category>/<file>.csv"
    category: str
    timestamps: np.ndarray  # datetime64[us], ascending
    values: np.ndarray  # float64
    windows: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ThresholdResult:
    """The corpus total at one threshold, raw and normalised, with the counts behind it."""

    profile: str
    threshold: float
    raw: float
    normalised: float  # NaN when the corpus has no scorable window
    windows: int
    detected_windows: int
    false_positives: int


def scaled_sigmoid(position: float | np.ndarray) -> np.ndarray:
    """NAB's ``scaledSigmoid``: 2 * sigmoid(-5 x) - 1, and exactly -1 from x >= 3 on."""
    x = np.asarray(position, dtype=np.float64)
    value = 2.0 / (1.0 + np.exp(5.0 * np.minimum(x, 3.0))) - 1.0
    return np.where(x >= 3.0, -1.0, value)


_MAX_TP = float(scaled_sigmoid(-1.0))


def probation_length(rows: int) -> int:
    """Rows of the learning period: floor(15% of the file), at most 750 (NAB ``_getProbationaryLength``)."""
    return int(min(math.floor(PROBATION_FRACTION * rows), PROBATION_FRACTION * 5000))


def window_indices(
    timestamps: np.ndarray, windows: Iterable[tuple[object, object]]
) -> tuple[tuple[int, int], ...]:
    """Map ``[start, end]`` timestamps to inclusive row-index pairs (first row >= start, last row <= end).

    NAB's labels are snapped to existing rows, so this equals its exact-match lookup; windows that
    contain no row are dropped.
    """
    ts = np.asarray(timestamps).astype("datetime64[us]")
    out: list[tuple[int, int]] = []
    for start, end in windows:
        left = int(np.searchsorted(ts, np.datetime64(start, "us"), side="left"))
        right = int(np.searchsorted(ts, np.datetime64(end, "us"), side="right")) - 1
        if left <= right:
            out.append((left, right))
    out.sort()
    for (_, r0), (l1, _) in itertools.pairwise(out):
        if l1 <= r0:
            raise ValueError(f"anomaly windows overlap: {out}")
    return tuple(out)


def point_weights(
    rows: int, windows: Sequence[tuple[int, int]], profile: Profile
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the window it belongs to (0..k-1; -1 outside every window; -2 learning period) and the
    weight a detection there would add (positive in windows, negative outside).

    This is NAB's ``calcSweepScore`` written with arrays.
    """
    label = np.full(rows, -1, dtype=np.int64)
    weight = np.empty(rows, dtype=np.float64)
    idx = np.arange(rows, dtype=np.float64)
    # Before the first window: full false-positive penalty (NAB uses position 3.0 -> S = -1).
    first_left = windows[0][0] if windows else rows
    weight[:first_left] = -profile.fp_weight
    for k, (left, right) in enumerate(windows):
        width = float(right - left + 1)
        inside = slice(left, right + 1)
        label[inside] = k
        weight[inside] = scaled_sigmoid(-(right - idx[inside] + 1.0) / width) * profile.tp_weight / _MAX_TP
        next_left = windows[k + 1][0] if k + 1 < len(windows) else rows
        after = slice(right + 1, next_left)
        # NAB divides by (width - 1): a one-row window makes every later alarm "far" (S = -1).
        denom = width - 1.0
        past = (idx[after] - right) / denom if denom > 0 else np.full(next_left - right - 1, 3.0)
        weight[after] = scaled_sigmoid(past) * profile.fp_weight
    label[: probation_length(rows)] = -2
    return label, weight


def score_at_threshold(
    scores: np.ndarray, windows: Sequence[tuple[int, int]], profile: Profile, threshold: float
) -> tuple[float, int, int, int]:
    """Raw NAB score of one file at one threshold.

    Returns (score, scorable windows, detected windows, false positives).
    """
    scores = np.asarray(scores, dtype=np.float64)
    label, weight = point_weights(len(scores), windows, profile)
    detected = scores >= threshold
    fp_mask = detected & (label == -1)
    total = float(weight[fp_mask].sum())
    scorable = 0
    found = 0
    for k in range(len(windows)):
        in_window = label == k
        if not in_window.any():
            continue  # wholly inside the learning period
        scorable += 1
        hits = np.flatnonzero(in_window & detected)
        if hits.size:
            found += 1
            total += float(weight[hits[0]])  # the earliest detection has the largest weight
        else:
            total -= profile.fn_weight
    return total, scorable, found, int(fp_mask.sum())


def normalise(raw: float, windows: int, profile: Profile) -> float:
    """100 * (raw - null) / (perfect - null); NaN without windows (null and perfect coincide)."""
    if windows == 0:
        return math.nan
    null = -profile.fn_weight * windows
    perfect = profile.tp_weight * windows
    return 100.0 * (raw - null) / (perfect - null)


def corpus_at_threshold(
    results: Sequence[tuple[np.ndarray, Sequence[tuple[int, int]]]], profile: Profile, threshold: float
) -> ThresholdResult:
    """Sum of :func:`score_at_threshold` over files, with the normalised total."""
    raw = 0.0
    windows = found = fps = 0
    for scores, wins in results:
        r, w, f, fp = score_at_threshold(scores, wins, profile, threshold)
        raw += r
        windows += w
        found += f
        fps += fp
    return ThresholdResult(
        profile.name, threshold, raw, normalise(raw, windows, profile), windows, found, fps
    )


def sweep(
    results: Sequence[tuple[np.ndarray, Sequence[tuple[int, int]]]], profile: Profile
) -> tuple[np.ndarray, np.ndarray, int]:
    """Corpus total for every distinct threshold at once (NAB ``calcScoreByThreshold`` over a corpus).

    Returns (thresholds descending, raw totals, scorable windows). Lowering the threshold past a point's
    score adds that point: a false positive adds its (negative) weight; a point in a window raises the
    window's value to the best weight detected so far (its earliest detection). Each such change is an
    event at the point's score; the total at threshold t is -fn * windows plus every event with score >= t.
    Exact, and O(N log N) over the corpus instead of O(N) per threshold.
    """
    event_scores: list[np.ndarray] = []
    event_deltas: list[np.ndarray] = []
    windows = 0
    for scores, wins in results:
        scores = np.asarray(scores, dtype=np.float64)
        label, weight = point_weights(len(scores), wins, profile)
        fp = label == -1
        event_scores.append(scores[fp])
        event_deltas.append(weight[fp])
        for k in range(len(wins)):
            members = np.flatnonzero(label == k)
            if members.size == 0:
                continue
            windows += 1
            order = np.lexsort((members, -scores[members]))
            s = scores[members][order]
            best = np.maximum.accumulate(weight[members][order])
            prev = np.concatenate(([-profile.fn_weight], best[:-1]))
            delta = best - prev
            keep = delta != 0
            event_scores.append(s[keep])
            event_deltas.append(delta[keep])
    s_all = np.concatenate(event_scores) if event_scores else np.empty(0)
    d_all = np.concatenate(event_deltas) if event_deltas else np.empty(0)
    order = np.argsort(-s_all, kind="stable")
    s_all, d_all = s_all[order], d_all[order]
    totals = -profile.fn_weight * windows + np.cumsum(d_all)
    # The total at threshold t counts every event with score >= t: keep the last of each run of ties.
    last_of_run = np.ones(len(s_all), dtype=bool)
    last_of_run[:-1] = s_all[1:] != s_all[:-1]
    thresholds = np.concatenate(([np.inf], s_all[last_of_run]))
    raw = np.concatenate(([-profile.fn_weight * windows], totals[last_of_run]))
    return thresholds, raw, windows


def best_threshold(
    results: Sequence[tuple[np.ndarray, Sequence[tuple[int, int]]]], profile: Profile
) -> ThresholdResult:
    """The threshold that maximises the corpus total (the highest such threshold on ties), fully scored."""
    thresholds, raw, _ = sweep(results, profile)
    best = int(np.argmax(raw))  # first maximum = highest threshold reaching it
    return corpus_at_threshold(results, profile, float(thresholds[best]))


def read_series_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A NAB-format ``timestamp,value`` file as (datetime64[us], float64) arrays, in file order."""
    frame = pl.read_csv(path, schema_overrides={"timestamp": pl.String, "value": pl.Float64})
    ts = frame["timestamp"].str.to_datetime(time_unit="us", strict=True)
    return ts.to_numpy(), frame["value"].to_numpy().astype(np.float64)


def load_corpus(root: Path) -> list[LabelledSeries]:
    """Every file named in ``<root>/windows.json`` with its windows as row indices, sorted by name."""
    labels_path = root / "windows.json"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path}: no windows.json (expected a NAB-style labels file)")
    labels = json.loads(labels_path.read_text())
    corpus: list[LabelledSeries] = []
    for name in sorted(labels):
        timestamps, values = read_series_csv(root / name)
        windows = window_indices(timestamps, [(s, e) for s, e in labels[name]])
        category = name.split("/", 1)[0]
        corpus.append(LabelledSeries(name, category, timestamps, values, windows))
    return corpus


def nab_windows(rows: int, anomalies: Sequence[int], fraction: float = 0.10) -> tuple[tuple[int, int], ...]:
    """NAB-style windows for generated data: ``fraction`` of the length shared among the anomalies,
    centred on each anomaly's row (clipped to the series, merged where they would overlap)."""
    if not anomalies:
        return ()
    width = max(1, int(fraction * rows / len(anomalies)))
    half = width // 2
    spans: list[list[int]] = []
    for a in sorted(anomalies):
        left, right = max(0, a - half), min(rows - 1, a - half + width - 1)
        if spans and left <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], right)
        else:
            spans.append([left, right])
    return tuple((a, b) for a, b in spans)

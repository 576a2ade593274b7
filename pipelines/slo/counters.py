"""Cumulative counters to per-interval counts.

Sources that export monotonically increasing counters (``total_cumulative`` with ``good_cumulative``
or ``bad_cumulative``) are differenced per series (service, operation), each sample against the last
sample that loaded:

* the delta is attributed to the previous sample's minute: the events happened between the two;
* the first sample ever seen of a series is its baseline, a zero delta;
* a total that falls is a counter reset (a restarted process): the delta is the new value;
* a good counter that falls while total does not, or good growing more than total, is a data error:
  the sample is quarantined with the reason, never clamped;
* a sample older than the series' last loaded sample (from an earlier file) is out of order, and a second
  sample at the same instant is a duplicate or a conflict: both quarantined.

A counter must come from one process per series: a sum over processes falls when one restarts, which
would read as a reset of the whole sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Sample:
    row: int
    ts: datetime
    total: int
    good: int


@dataclass(frozen=True)
class Delta:
    row: int
    ts: datetime | None
    total: int | None
    good: int | None
    reason: str | None


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def differences(samples: list[Sample], state: Sample | None) -> tuple[list[Delta], Sample | None]:
    """Deltas for one series' samples (in time order) after ``state``, and the new state."""
    deltas: list[Delta] = []
    last = state
    for sample in samples:
        if state is not None and sample.ts < state.ts:
            reason = (
                f"counter sample at {_iso(sample.ts)} is older than the last one loaded for this series "
                f"({_iso(state.ts)}): out of order"
            )
            deltas.append(Delta(sample.row, None, None, None, reason))
            continue
        if last is not None and sample.ts == last.ts:
            # Two samples of one series at one instant: a repeat tells nothing new, and differing values mean
            # two series were mixed (a label column lost) or the source is wrong. Never a reset.
            same = (sample.total, sample.good) == (last.total, last.good)
            reason = (
                f"duplicate counter sample at {_iso(sample.ts)}"
                if same
                else f"conflicting counter samples at {_iso(sample.ts)}: {last.total}/{last.good} and "
                f"{sample.total}/{sample.good}"
            )
            deltas.append(Delta(sample.row, None, None, None, reason))
            continue
        if last is None:
            deltas.append(Delta(sample.row, sample.ts, 0, 0, None))
        elif sample.total < last.total:
            deltas.append(Delta(sample.row, last.ts, sample.total, sample.good, None))
        elif sample.good < last.good:
            reason = f"good counter fell from {last.good} to {sample.good} while total did not reset"
            deltas.append(Delta(sample.row, None, None, None, reason))
            continue
        elif sample.good - last.good > sample.total - last.total:
            reason = f"good grew by {sample.good - last.good} but total only by {sample.total - last.total}"
            deltas.append(Delta(sample.row, None, None, None, reason))
            continue
        else:
            deltas.append(
                Delta(sample.row, last.ts, sample.total - last.total, sample.good - last.good, None)
            )
        last = sample
    return deltas, last

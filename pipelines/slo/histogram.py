"""Mergeable log-bucket latency histograms.

Bucket ``i`` holds latencies in ``(GAMMA**(i-1), GAMMA**i]`` milliseconds. Reporting a bucket by
``2 * GAMMA**i / (GAMMA + 1)`` is within ``(GAMMA - 1) / (GAMMA + 1)`` relative error of every value
in it (the DDSketch construction): with GAMMA = 1.02 that is 0.99%, so any percentile over any merge of
buckets (any services, operations, minutes) is within 1% of the exact nearest-rank percentile.
Histograms are summed, never percentiles of percentiles. Latencies below 0.001 ms count as zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

GAMMA = 1.02
LN_GAMMA = math.log(GAMMA)
MIN_LATENCY_MS = 0.001
ZERO_BUCKET = -(2**31)
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)


def sql_params() -> dict[str, float | int]:
    return {"min_latency": MIN_LATENCY_MS, "zero_bucket": ZERO_BUCKET, "ln_gamma": LN_GAMMA}


def bucket_of(latency_ms: float) -> int:
    """Same formula as ``sql/aggregate_minutes.sql``."""
    if latency_ms < MIN_LATENCY_MS:
        return ZERO_BUCKET
    return math.ceil(math.log(latency_ms) / LN_GAMMA)


def representative(bucket: int) -> float:
    if bucket == ZERO_BUCKET:
        return 0.0
    return 2 * GAMMA**bucket / (GAMMA + 1)


def percentile(buckets: Sequence[int], counts: Sequence[int], quantile: float) -> float | None:
    """Nearest-rank percentile (the value at rank ceil(q*n)) of a histogram; None when it is empty."""
    if not 0 < quantile <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    pairs = sorted((b, c) for b, c in zip(buckets, counts, strict=True) if c > 0)
    total = sum(c for _, c in pairs)
    if total == 0:
        return None
    # Exact rank: in floats 0.55 * 100 is 55.00000000000001, whose ceiling would skip a whole rank.
    rank = max(1, math.ceil(Fraction(str(quantile)) * total))
    seen = 0
    for bucket, count in pairs:
        seen += count
        if seen >= rank:
            return representative(bucket)
    return representative(pairs[-1][0])

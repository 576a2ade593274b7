-- The minute range raw events cover, [first minute, last minute + 1): where threshold counts can be
-- recomputed exactly (they come from raw events only; counts and ratios have no latency).
SELECT date_trunc('minute', min(ts)), date_trunc('minute', max(ts)) + INTERVAL 1 MINUTE FROM raw_events;

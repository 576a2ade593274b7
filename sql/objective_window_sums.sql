-- Window and burn-window sums for many filters over [$lo, $hi) of one grain (the batched form of
-- objective_counts.sql). pipelines/slo/budget.py cuts the windows ending at $as_of into ranges of whole
-- days, whole hours and ragged minutes, none holding a window start inside it, runs this once per range
-- with that grain's tables, and adds the ranges up. As every bucket of the range lies in the same windows,
-- the rows are first summed per series over the range and stand at $lo: `$lo >= window start` selects
-- exactly the ranges of that window, and the joins below see one row per series instead of one per bucket.
-- batch_filters holds one row per (entry, service): the same canonical filter fields as the bound
-- parameters of objective_counts.sql, plus the entry's window start. Values only: no SQL from config.
-- Data presence (completeness) is not summed here: see objective_presence.sql.
-- The filter arithmetic (the CTEs filters, contributions, matched over the `counts` and `thresholds` CTEs
-- below) is objective_batch_matched.sql, shared with objective_minute_series.sql.
WITH counts AS (
    SELECT $lo::TIMESTAMP AS bucket_start, service, operation, status_code, success,
           sum(requests) AS requests, sum(latency_count) AS latency_count
    FROM {counts}
    WHERE bucket_start >= $lo AND bucket_start < $hi
    GROUP BY ALL
),
thresholds AS (
    SELECT $lo::TIMESTAMP AS bucket_start, service, operation, status_code, success, threshold_ms,
           sum(le_count) AS le_count, sum(lt_count) AS lt_count
    FROM {thresholds}
    WHERE bucket_start >= $lo AND bucket_start < $hi
    GROUP BY ALL
),
-- include: objective_batch_matched
SELECT
    entry_id,
    coalesce(sum(n) FILTER (WHERE bucket_start >= window_start), 0)::BIGINT                       AS n_window,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 5 MINUTE), 0)::BIGINT          AS n_5m,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 30 MINUTE), 0)::BIGINT         AS n_30m,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 1 HOUR), 0)::BIGINT            AS n_1h,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 2 HOUR), 0)::BIGINT            AS n_2h,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 6 HOUR), 0)::BIGINT            AS n_6h,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 1 DAY), 0)::BIGINT             AS n_1d,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 3 DAY), 0)::BIGINT             AS n_3d
FROM matched
GROUP BY entry_id;

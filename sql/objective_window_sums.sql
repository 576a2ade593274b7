-- Window and burn-window sums for many filters in one pass (the batched form of objective_counts.sql).
-- batch_filters holds one row per (entry, service): the same canonical filter fields as the bound
-- parameters of objective_counts.sql, plus the entry's window start. Values only: no SQL from config.
WITH grain AS (
    SELECT bucket_start, service, operation, status_code, success,
           requests, latency_count, NULL::DOUBLE AS threshold_ms, 0::BIGINT AS le_count, 0::BIGINT AS lt_count
    FROM sli_counts_minute
    WHERE bucket_start >= $start AND bucket_start < $as_of
    UNION ALL
    SELECT bucket_start, service, operation, status_code, success, 0, 0, threshold_ms, le_count, lt_count
    FROM sli_threshold_minute
    WHERE bucket_start >= $start AND bucket_start < $as_of
),
matched AS (
    SELECT f.entry_id, f.window_start, g.bucket_start,
        CASE WHEN g.threshold_ms IS NULL THEN
                 CASE WHEN f.has_upper THEN 0 WHEN f.has_lower THEN g.latency_count ELSE g.requests END
             ELSE
                 (CASE WHEN f.has_upper AND g.threshold_ms = f.upper
                       THEN CASE WHEN f.upper_inclusive THEN g.le_count ELSE g.lt_count END ELSE 0 END)
               - (CASE WHEN f.has_lower AND g.threshold_ms = f.lower
                       THEN CASE WHEN f.lower_inclusive THEN g.lt_count ELSE g.le_count END ELSE 0 END)
        END AS n
    FROM grain g
    JOIN batch_filters f ON f.service = g.service
    WHERE NOT f.matches_nothing
      AND (g.threshold_ms IS NULL OR g.threshold_ms = f.upper OR g.threshold_ms = f.lower)
      AND (f.operations_in IS NULL OR list_contains(f.operations_in, g.operation))
      AND (f.operations_not_in IS NULL OR NOT list_contains(f.operations_not_in, g.operation))
      AND (f.status_in IS NULL OR (g.status_code IS NOT NULL AND list_contains(f.status_in, g.status_code)))
      AND (f.status_not_in IS NULL OR (g.status_code IS NOT NULL AND NOT list_contains(f.status_not_in, g.status_code)))
      AND (f.status_min IS NULL OR g.status_code >= f.status_min)
      AND (f.status_max IS NULL OR g.status_code <= f.status_max)
      AND (f.success IS NULL OR g.success = f.success)
)
SELECT
    entry_id,
    coalesce(sum(n) FILTER (WHERE bucket_start >= window_start), 0)::BIGINT                       AS n_window,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 5 MINUTE), 0)::BIGINT          AS n_5m,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 30 MINUTE), 0)::BIGINT         AS n_30m,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 1 HOUR), 0)::BIGINT            AS n_1h,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 2 HOUR), 0)::BIGINT            AS n_2h,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 6 HOUR), 0)::BIGINT            AS n_6h,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 1 DAY), 0)::BIGINT             AS n_1d,
    coalesce(sum(n) FILTER (WHERE bucket_start >= $as_of - INTERVAL 3 DAY), 0)::BIGINT             AS n_3d,
    count(DISTINCT bucket_start) FILTER (WHERE bucket_start >= window_start)                       AS present_minutes
FROM matched
GROUP BY entry_id;

-- Per-bucket count of events matching one canonical filter (pipelines/slo/filters.py) in [$start, $end).
-- Without latency bounds a grain row counts its requests. With bounds the exact threshold counts are
-- used: count(L <= x <= U) = le(U) - lt(L), count(x >= L) = latency_count - lt(L), and so on. The filter
-- and that arithmetic (the CTE matched) are objective_filter_matched.sql, shared with objective_causes.sql.
WITH grain AS (
    SELECT bucket_start, service, operation, status_code, success,
           requests, latency_count, NULL::DOUBLE AS threshold_ms, 0::BIGINT AS le_count, 0::BIGINT AS lt_count
    FROM {counts}
    WHERE bucket_start >= $start AND bucket_start < $end
    UNION ALL
    SELECT bucket_start, service, operation, status_code, success,
           0, 0, threshold_ms, le_count, lt_count
    FROM {thresholds}
    WHERE bucket_start >= $start AND bucket_start < $end
      AND (threshold_ms = $upper::DOUBLE OR threshold_ms = $lower::DOUBLE)
),
-- include: objective_filter_matched
SELECT bucket_start, sum(n)::BIGINT AS n
FROM matched
GROUP BY bucket_start
ORDER BY bucket_start;

-- Events matching one canonical filter in [$start, $end), by operation and status code: the same
-- arithmetic as objective_counts.sql grouped by cause instead of by bucket (budget attribution). The filter
-- and that arithmetic (the CTE matched) are objective_filter_matched.sql, shared with objective_counts.sql.
WITH grain AS (
    SELECT service, operation, status_code, success,
           requests, latency_count, NULL::DOUBLE AS threshold_ms, 0::BIGINT AS le_count, 0::BIGINT AS lt_count
    FROM sli_counts_minute
    WHERE bucket_start >= $start AND bucket_start < $end
    UNION ALL
    SELECT service, operation, status_code, success,
           0, 0, threshold_ms, le_count, lt_count
    FROM sli_threshold_minute
    WHERE bucket_start >= $start AND bucket_start < $end
      AND (threshold_ms = $upper::DOUBLE OR threshold_ms = $lower::DOUBLE)
),
-- include: objective_filter_matched
SELECT operation, status_code, sum(n)::BIGINT AS n
FROM matched
GROUP BY operation, status_code;

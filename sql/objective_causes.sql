-- Events matching one canonical filter in [$start, $end), by operation and status code: the same
-- arithmetic as objective_counts.sql grouped by cause instead of by bucket (budget attribution).
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
)
SELECT operation, status_code, sum(
    CASE WHEN threshold_ms IS NULL THEN
             CASE WHEN $has_upper THEN 0 WHEN $has_lower THEN latency_count ELSE requests END
         ELSE
             (CASE WHEN $has_upper AND threshold_ms = $upper::DOUBLE
                   THEN CASE WHEN $upper_inclusive THEN le_count ELSE lt_count END ELSE 0 END)
           - (CASE WHEN $has_lower AND threshold_ms = $lower::DOUBLE
                   THEN CASE WHEN $lower_inclusive THEN lt_count ELSE le_count END ELSE 0 END)
    END)::BIGINT AS n
FROM grain
WHERE NOT $matches_nothing
  AND list_contains($services::VARCHAR[], service)
  AND ($operations_in::VARCHAR[] IS NULL OR list_contains($operations_in::VARCHAR[], operation))
  AND ($operations_not_in::VARCHAR[] IS NULL OR NOT list_contains($operations_not_in::VARCHAR[], operation))
  AND ($status_in::INTEGER[] IS NULL OR (status_code IS NOT NULL AND list_contains($status_in::INTEGER[], status_code)))
  AND ($status_not_in::INTEGER[] IS NULL OR (status_code IS NOT NULL AND NOT list_contains($status_not_in::INTEGER[], status_code)))
  AND ($status_min::INTEGER IS NULL OR status_code >= $status_min::INTEGER)
  AND ($status_max::INTEGER IS NULL OR status_code <= $status_max::INTEGER)
  AND ($success::BOOLEAN IS NULL OR success = $success::BOOLEAN)
GROUP BY operation, status_code;

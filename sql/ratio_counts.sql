-- A raw ratio SLI as scaled counts per bucket: each data point is one "event" of weight $scale, of
-- which ratio * $scale are good (1 - ratio for failure ratios). Means of points then come out of the
-- same arithmetic as good/total events.
SELECT bucket_start,
       -- DECIMAL: the same sum whatever order the threads add it in (see sql/aggregate_ratio_minutes.sql).
       CAST(round(sum(CASE WHEN $failure THEN points - CAST(ratio_sum AS DECIMAL(38, 18))
                           ELSE CAST(ratio_sum AS DECIMAL(38, 18)) END) * $scale) AS BIGINT) AS good,
       CAST(sum(points) * $scale AS BIGINT) AS total
FROM {source}
WHERE bucket_start >= $start AND bucket_start < $end
  AND list_contains($services::VARCHAR[], service)
  AND ($operations_in::VARCHAR[] IS NULL OR list_contains($operations_in::VARCHAR[], operation))
  AND ($operations_not_in::VARCHAR[] IS NULL OR NOT list_contains($operations_not_in::VARCHAR[], operation))
GROUP BY bucket_start
ORDER BY bucket_start;

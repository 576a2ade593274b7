-- Latency histogram per time slice of $slice minutes, slices counted from $start, for a percentile
-- objective's filter (service, operation, success: the histogram grain).
SELECT CAST(date_diff('minute', $start::TIMESTAMP, bucket_start) // $slice AS BIGINT) AS slice,
       bucket,
       sum(count)::BIGINT AS n
FROM latency_histogram_minute
WHERE bucket_start >= $start AND bucket_start < $end
  AND list_contains($services::VARCHAR[], service)
  AND ($operations_in::VARCHAR[] IS NULL OR list_contains($operations_in::VARCHAR[], operation))
  AND ($operations_not_in::VARCHAR[] IS NULL OR NOT list_contains($operations_not_in::VARCHAR[], operation))
  AND ($success::BOOLEAN IS NULL OR success = $success::BOOLEAN)
  -- Corrected minutes are out of the budget: their latencies must not judge a slice either.
  AND bucket_start NOT IN (SELECT bucket_start FROM excluded_minutes)
GROUP BY ALL;

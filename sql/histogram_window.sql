-- Merged latency histogram over [$start, $end) for a set of services (and optionally operations).
SELECT bucket, sum(count) AS count
FROM {source}
WHERE bucket_start >= $start AND bucket_start < $end
  AND list_contains($services::VARCHAR[], service)
  AND ($operations::VARCHAR[] IS NULL OR list_contains($operations::VARCHAR[], operation))
  AND ($success::BOOLEAN IS NULL OR success = $success::BOOLEAN)
GROUP BY bucket
ORDER BY bucket;

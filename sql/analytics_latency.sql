-- Nearest-rank p95 and p99 latency buckets per bucket of {source} (hour or day) for a set of services.
-- Ranks in integers: ceil(0.95 * n) = (95 * n + 99) // 100 (a DOUBLE 0.95 * 100 would round up a rank).
WITH merged AS (
    SELECT bucket_start, bucket, sum(count) AS n
    FROM {source}
    WHERE list_contains($services::VARCHAR[], service) AND bucket_start >= $start
    GROUP BY bucket_start, bucket
), ranked AS (
    SELECT bucket_start, bucket,
           sum(n) OVER (PARTITION BY bucket_start ORDER BY bucket ROWS UNBOUNDED PRECEDING) AS seen,
           sum(n) OVER (PARTITION BY bucket_start) AS total
    FROM merged
)
SELECT bucket_start,
       min(bucket) FILTER (WHERE seen >= (95 * total + 99) // 100) AS p95_bucket,
       min(bucket) FILTER (WHERE seen >= (99 * total + 99) // 100) AS p99_bucket
FROM ranked
WHERE total > 0
GROUP BY bucket_start
ORDER BY bucket_start;

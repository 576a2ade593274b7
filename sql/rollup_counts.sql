DELETE FROM {target} WHERE bucket_start >= $start AND bucket_start < $end;
INSERT INTO {target}
SELECT date_trunc($grain, bucket_start) AS bucket_start, service, operation, status_code, success,
       sum(requests), sum(latency_count)
FROM {source}
WHERE bucket_start >= $start AND bucket_start < $end
GROUP BY ALL;

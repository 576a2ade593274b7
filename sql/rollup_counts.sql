DELETE FROM {target} WHERE bucket_start >= $start AND bucket_start < $end;
INSERT INTO {target}
SELECT date_trunc($grain, bucket_start) AS bucket_start, service, operation, status_code, success,
       sum(requests), sum(latency_count)
FROM {source}
WHERE bucket_start >= $start AND bucket_start < $end
GROUP BY ALL;
-- Data presence (sli_presence_hour, see sql/schema.sql) for the same hours, from the minute tier only.
DELETE FROM sli_presence_hour WHERE $grain = 'hour' AND bucket_start >= $start AND bucket_start < $end;
INSERT INTO sli_presence_hour
SELECT date_trunc('hour', bucket_start), service, bit_or(1::UBIGINT << minute(bucket_start))
FROM {source}
WHERE $grain = 'hour' AND bucket_start >= $start AND bucket_start < $end
GROUP BY ALL;

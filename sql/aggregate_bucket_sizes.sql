-- Raw events per UTC $grain ('hour' or 'day') in [$start, $end), buckets with none left out: how
-- refresh_aggregates cuts a dirty range into pieces of bounded size (pipelines/slo/aggregate.py, chunks).
SELECT date_trunc($grain, ts) AS bucket, count(*) AS events
FROM raw_events
WHERE ts >= $start AND ts < $end
GROUP BY ALL
ORDER BY bucket;

-- Raw events per UTC hour in [$start, $end), hours with none left out: how refresh_aggregates cuts a
-- dirty range into pieces of bounded size (pipelines/slo/aggregate.py, chunks).
SELECT date_trunc('hour', ts) AS hour, count(*) AS events
FROM raw_events
WHERE ts >= $start AND ts < $end
GROUP BY ALL
ORDER BY hour;

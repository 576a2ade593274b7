-- Per hour in [$start, $end) (hour-aligned), the minutes in which any aggregated row of one of $services
-- arrived, as a bitmask (bit m: minute m of the hour), from sli_presence_hour.
SELECT bucket_start, bit_or(minutes) AS minutes
FROM sli_presence_hour
WHERE bucket_start >= $start AND bucket_start < $end AND list_contains($services::VARCHAR[], service)
GROUP BY bucket_start
ORDER BY bucket_start;

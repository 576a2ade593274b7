-- Data completeness of many entries: the minutes of [window_start, $as_of) in which any aggregated row of
-- one of the entry's services arrived (a union over services, exact to the minute), from the per-hour
-- bitmasks of sli_presence_hour: bit_or over the entry's services, masked to the window's minutes of
-- the hour, counted with bit_count. presence_entries: entry_id, service, window_start (values only).
WITH hours AS (
    SELECT e.entry_id, e.window_start, p.bucket_start, bit_or(p.minutes) AS minutes
    FROM sli_presence_hour p JOIN presence_entries e ON e.service = p.service
    WHERE p.bucket_start >= $lo AND p.bucket_start < $as_of
      AND p.bucket_start >= date_trunc('hour', e.window_start)
    GROUP BY e.entry_id, e.window_start, p.bucket_start
),
bounds AS (
    -- The window holds minutes [a, b) of this hour.
    SELECT entry_id, minutes,
           greatest(0, date_diff('minute', bucket_start, window_start)) AS a,
           least(60, date_diff('minute', bucket_start, $as_of)) AS b
    FROM hours
)
SELECT entry_id,
       coalesce(sum(bit_count(minutes & ((1::UBIGINT << b) - (1::UBIGINT << a)))), 0)::BIGINT AS present_minutes
FROM bounds
WHERE b > a
GROUP BY entry_id;

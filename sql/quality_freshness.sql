-- Timeliness: the newest row of every series (service x source) and how many minutes it lies behind $now.
-- A series whose rows all fell out of raw retention is no longer listed (the no-data alert covers it).
SELECT service, source, newest,
       CAST(date_diff('millisecond', newest, CAST($now AS TIMESTAMP)) AS DOUBLE) / 60000.0 AS minutes_behind
FROM (
    SELECT service, 'events' AS source, max(ts) AS newest FROM raw_events GROUP BY ALL
    UNION ALL
    SELECT service, 'counts', max(ts) FROM raw_counts GROUP BY ALL
    UNION ALL
    SELECT service, 'ratios', max(ts) FROM raw_ratios GROUP BY ALL
)
ORDER BY minutes_behind DESC, service, source;

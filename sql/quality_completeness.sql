-- Completeness of every series (service x source) over the last $window_minutes of its own data, ending at
-- its newest minute (trailing silence is the freshness check's business, not this one's).
--
-- Which empty minutes are missing data:
--   counts  (raw_counts) - all of them: a counter export writes a row per operation every interval, even
--           at zero traffic. The interval is the series' cadence, its most common spacing between minutes
--           with data (1 for a per-minute export; 5 for a Prometheus pull with a 5-minute step, where
--           the 4 empty minutes between buckets are expected and a run of 9 is one missing bucket: 5 min).
--   events  (raw_events) and ratios (raw_ratios) - those where the series' own traffic makes silence
--           implausible: a run of k empty minutes is missing data when k * rate >= $min_expected_rows,
--           rate being the lower of the rows per minute in the $rate_minutes before and after the run
--           (Poisson: at 20 expected rows the chance of seeing none is e^-20, 2 in a billion, and still e^-10
--           if the rate was overestimated twofold). A quiet service's empty minutes at night are not
--           expected; a busy service's silent 7 minutes are.
-- expected_minutes = minutes with data x cadence + missing minutes (cadence 1 for events and ratios);
-- missing_share = missing_minutes / expected_minutes; quiet_minutes: empty minutes not expected to hold data.
-- gaps: the runs with missing minutes (clipped to the window), longest first.
WITH spans AS (
    SELECT service, 'events' AS source, min(ts) AS first_ts, max(ts) AS newest_ts FROM raw_events GROUP BY ALL
    UNION ALL
    SELECT service, 'counts', min(ts), max(ts) FROM raw_counts GROUP BY ALL
    UNION ALL
    SELECT service, 'ratios', min(ts), max(ts) FROM raw_ratios GROUP BY ALL
),
series AS (
    SELECT service, source,
           date_trunc('minute', newest_ts) AS newest,
           greatest(date_trunc('minute', first_ts),
                    date_trunc('minute', newest_ts) - to_minutes(CAST($window_minutes AS BIGINT) - 1)) AS window_start,
           -- Rows before the window only give the rate ahead of a gap at its start.
           greatest(date_trunc('minute', first_ts),
                    date_trunc('minute', newest_ts)
                        - to_minutes(CAST($window_minutes AS BIGINT) + CAST($rate_minutes AS BIGINT) - 1)) AS grid_start
    FROM spans
),
rows_per_minute AS (
    SELECT r.service, 'events' AS source, date_trunc('minute', r.ts) AS minute, count(*) AS n
    FROM raw_events r JOIN series s ON s.service = r.service AND s.source = 'events'
    WHERE r.ts >= s.grid_start GROUP BY ALL
    UNION ALL
    SELECT r.service, 'counts', date_trunc('minute', r.ts), count(*)
    FROM raw_counts r JOIN series s ON s.service = r.service AND s.source = 'counts'
    WHERE r.ts >= s.grid_start GROUP BY ALL
    UNION ALL
    SELECT r.service, 'ratios', date_trunc('minute', r.ts), count(*)
    FROM raw_ratios r JOIN series s ON s.service = r.service AND s.source = 'ratios'
    WHERE r.ts >= s.grid_start GROUP BY ALL
),
grid AS (
    SELECT s.service, s.source, g.minute, coalesce(m.n, 0) AS n
    FROM series s
    CROSS JOIN LATERAL (SELECT unnest(generate_series(s.grid_start, s.newest, INTERVAL 1 MINUTE)) AS minute) g
    LEFT JOIN rows_per_minute m ON m.service = s.service AND m.source = s.source AND m.minute = g.minute
),
cadence AS (
    SELECT s.service, s.source, coalesce(m.spacing, 1) AS cadence
    FROM series s
    LEFT JOIN (
        SELECT service, source, mode(spacing) AS spacing
        FROM (
            SELECT service, source,
                   date_diff('minute', lag(minute) OVER (PARTITION BY service, source ORDER BY minute), minute)
                       AS spacing
            FROM rows_per_minute
            WHERE source = 'counts'
        )
        GROUP BY service, source
    ) m USING (service, source)
),
rated AS (
    SELECT *,
           sum(n) OVER before_run / nullif(count(*) OVER before_run, 0) AS rate_before,
           sum(n) OVER after_run / nullif(count(*) OVER after_run, 0) AS rate_after,
           -- Gaps and islands: consecutive minutes of the same kind share (row number - row number in kind).
           row_number() OVER series_order - row_number() OVER (PARTITION BY service, source, n = 0 ORDER BY minute) AS island
    FROM grid
    WINDOW series_order AS (PARTITION BY service, source ORDER BY minute),
           before_run AS (PARTITION BY service, source ORDER BY minute
                          ROWS BETWEEN CAST($rate_minutes AS BIGINT) PRECEDING AND 1 PRECEDING),
           after_run AS (PARTITION BY service, source ORDER BY minute
                         ROWS BETWEEN 1 FOLLOWING AND CAST($rate_minutes AS BIGINT) FOLLOWING)
),
runs AS (
    SELECT service, source, min(minute) AS run_start, max(minute) AS run_end, count(*) AS run_minutes,
           arg_min(rate_before, minute) AS rate_before, arg_max(rate_after, minute) AS rate_after
    FROM rated WHERE n = 0 GROUP BY service, source, island
),
clipped AS (
    SELECT r.*, c.cadence,
           greatest(r.run_start, s.window_start) AS gap_start,
           date_diff('minute', greatest(r.run_start, s.window_start), r.run_end) + 1 AS empty_minutes
    FROM runs r JOIN series s USING (service, source) JOIN cadence c USING (service, source)
    WHERE r.run_end >= s.window_start
),
gaps AS (
    SELECT service, source, gap_start, run_end AS gap_end, empty_minutes,
           CAST(run_minutes * least(rate_before, rate_after) AS DOUBLE) AS expected_rows,
           CASE WHEN source = 'counts' THEN greatest(empty_minutes - (cadence - 1), 0)
                WHEN run_minutes * least(rate_before, rate_after) >= $min_expected_rows THEN empty_minutes
                ELSE 0 END AS minutes
    FROM clipped
),
present AS (
    SELECT g.service, g.source, count(*) FILTER (WHERE g.n > 0) AS present_minutes
    FROM grid g JOIN series s USING (service, source)
    WHERE g.minute >= s.window_start
    GROUP BY ALL
)
SELECT s.service, s.source, s.window_start, s.newest AS window_end,
       date_diff('minute', s.window_start, s.newest) + 1 AS window_minutes,
       c.cadence AS cadence_minutes,
       p.present_minutes,
       coalesce(sum(g.empty_minutes - g.minutes), 0) AS quiet_minutes,
       coalesce(sum(g.minutes), 0) AS missing_minutes,
       p.present_minutes * c.cadence + coalesce(sum(g.minutes), 0) AS expected_minutes,
       CAST(coalesce(sum(g.minutes), 0) AS DOUBLE)
           / (p.present_minutes * c.cadence + coalesce(sum(g.minutes), 0)) AS missing_share,
       coalesce(
           list({'gap_start': g.gap_start, 'gap_end': g.gap_end, 'minutes': g.minutes,
                 'expected_rows': g.expected_rows} ORDER BY g.minutes DESC, g.gap_start)
               FILTER (WHERE g.minutes > 0),
           []
       ) AS gaps
FROM series s
JOIN present p USING (service, source)
JOIN cadence c USING (service, source)
LEFT JOIN gaps g USING (service, source)
GROUP BY s.service, s.source, s.window_start, s.newest, c.cadence, p.present_minutes
ORDER BY missing_share DESC, s.service, s.source;

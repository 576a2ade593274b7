-- Rollups must equal the sums of their finer tier, per service, over the range both tiers still keep.
-- Retention deletes finer tiers first (minutes after 90 days, hours after 400), so hours are compared
-- with minutes only from the minute tier's watermark, and days with hours from the hour tier's: the
-- watermark is a whole UTC day and every row strictly before it was deleted, every row after it kept.
-- A tier never cut has no watermark and is compared over all its rows: nothing explains a gap there.
-- (Not the oldest bucket floored to the day: a tier with hours but no minutes left in some early range
-- must still be reported, and that is exactly the range the oldest minute would hide.)
-- One row per service and failed comparison: minute_total, hour_total (minutes vs hours), or
-- hour_total, day_total (hours vs days); the column not compared is NULL.
WITH kept AS (
    SELECT max(cutoff) FILTER (WHERE tier = 'minute') AS minute_from,
           max(cutoff) FILTER (WHERE tier = 'hour') AS hour_from
    FROM retention_watermarks
),
m AS (
    SELECT service, sum(requests) AS n FROM sli_counts_minute, kept
    WHERE minute_from IS NULL OR bucket_start >= minute_from GROUP BY service
),
hm AS (
    SELECT service, sum(requests) AS n FROM sli_counts_hour, kept
    WHERE minute_from IS NULL OR bucket_start >= minute_from GROUP BY service
),
hd AS (
    SELECT service, sum(requests) AS n FROM sli_counts_hour, kept
    WHERE hour_from IS NULL OR bucket_start >= hour_from GROUP BY service
),
d AS (
    SELECT service, sum(requests) AS n FROM sli_counts_day, kept
    WHERE hour_from IS NULL OR bucket_start >= hour_from GROUP BY service
)
SELECT service, minute_total, hour_total, day_total FROM (
    SELECT coalesce(m.service, hm.service) AS service, m.n AS minute_total, hm.n AS hour_total,
           NULL::BIGINT AS day_total
    FROM m FULL JOIN hm ON hm.service = m.service
    WHERE m.n IS DISTINCT FROM hm.n
    UNION ALL
    SELECT coalesce(hd.service, d.service), NULL::BIGINT, hd.n, d.n
    FROM hd FULL JOIN d ON d.service = hd.service
    WHERE hd.n IS DISTINCT FROM d.n
)
ORDER BY service, day_total NULLS FIRST;

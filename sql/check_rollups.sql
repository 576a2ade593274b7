-- Rollups must equal the sums of their minutes, per service.
WITH m AS (SELECT service, sum(requests) AS n FROM sli_counts_minute GROUP BY service),
     h AS (SELECT service, sum(requests) AS n FROM sli_counts_hour GROUP BY service),
     d AS (SELECT service, sum(requests) AS n FROM sli_counts_day GROUP BY service)
SELECT coalesce(m.service, h.service, d.service) AS service, m.n AS minute_total, h.n AS hour_total, d.n AS day_total
FROM m FULL JOIN h ON h.service = m.service FULL JOIN d ON d.service = coalesce(m.service, h.service)
WHERE m.n IS DISTINCT FROM h.n OR m.n IS DISTINCT FROM d.n
ORDER BY 1;

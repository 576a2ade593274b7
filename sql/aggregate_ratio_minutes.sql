-- Per-minute sums of precomputed ratios for [$start, $end), and the hours containing them.
-- Summed as DECIMAL(38, 18): a sum of doubles depends on the order DuckDB's threads add them in, so the
-- same data could give sums differing in the last bit from one run to the next.
DELETE FROM sli_ratio_minute WHERE bucket_start >= $start AND bucket_start < $end;
INSERT INTO sli_ratio_minute
SELECT date_trunc('minute', ts), service, operation, CAST(sum(CAST(ratio AS DECIMAL(38, 18))) AS DOUBLE), count(*)
FROM raw_ratios
WHERE ts >= $start AND ts < $end
GROUP BY ALL;
DELETE FROM sli_ratio_hour WHERE bucket_start >= $hour_start AND bucket_start < $hour_end;
INSERT INTO sli_ratio_hour
SELECT date_trunc('hour', bucket_start), service, operation, CAST(sum(CAST(ratio_sum AS DECIMAL(38, 18))) AS DOUBLE),
       sum(points)
FROM sli_ratio_minute
WHERE bucket_start >= $hour_start AND bucket_start < $hour_end
GROUP BY ALL;

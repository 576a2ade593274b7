-- Per-minute sums of precomputed ratios for [$start, $end), and the hours containing them.
DELETE FROM sli_ratio_minute WHERE bucket_start >= $start AND bucket_start < $end;
INSERT INTO sli_ratio_minute
SELECT date_trunc('minute', ts), service, operation, sum(ratio), count(*)
FROM raw_ratios
WHERE ts >= $start AND ts < $end
GROUP BY ALL;
DELETE FROM sli_ratio_hour WHERE bucket_start >= $hour_start AND bucket_start < $hour_end;
INSERT INTO sli_ratio_hour
SELECT date_trunc('hour', bucket_start), service, operation, sum(ratio_sum), sum(points)
FROM sli_ratio_minute
WHERE bucket_start >= $hour_start AND bucket_start < $hour_end
GROUP BY ALL;

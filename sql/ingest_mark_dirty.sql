INSERT INTO dirty_ranges (start_minute, end_minute, file_id)
SELECT date_trunc('minute', CAST($min_ts AS TIMESTAMP)),
       date_trunc('minute', CAST($max_ts AS TIMESTAMP)) + INTERVAL 1 MINUTE,
       $file_id
WHERE $min_ts IS NOT NULL;

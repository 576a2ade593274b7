SELECT start_minute, end_minute FROM dirty_ranges ORDER BY start_minute;

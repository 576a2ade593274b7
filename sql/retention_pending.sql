-- The earliest minute a pending dirty range will recompute (NULL when aggregation is up to date).
SELECT min(start_minute) FROM dirty_ranges;

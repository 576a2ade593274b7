-- The raw tier's retention watermark: raw rows before it were deleted (NULL when never cut). Aggregation
-- does not recompute dirty minutes before it, which would rebuild whole aggregates from partial rows.
SELECT max(cutoff) FROM retention_watermarks WHERE tier = 'raw';

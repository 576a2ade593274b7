-- The raw tier's retention cutoff (raw rows before it were deleted), or NULL when raw rows were never cut.
SELECT max(cutoff) FROM retention_watermarks WHERE tier = 'raw';

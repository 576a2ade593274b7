-- Tier -> the newest cutoff retention ever applied to it (rows strictly before it are gone).
SELECT tier, cutoff FROM retention_watermarks ORDER BY tier;

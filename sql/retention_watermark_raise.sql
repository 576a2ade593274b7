-- Record that $tier was cut at $cutoff: raise its watermark, never lower it (rows before the older,
-- higher watermark are gone whatever cutoff a later run used). applied_at says when it was last applied.
INSERT INTO retention_watermarks (tier, cutoff, applied_at) VALUES ($tier, $cutoff, $applied_at)
ON CONFLICT (tier) DO UPDATE SET
    cutoff = greatest(retention_watermarks.cutoff, excluded.cutoff),
    applied_at = excluded.applied_at;

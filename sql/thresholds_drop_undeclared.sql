-- Threshold counts of thresholds no SLO declares any more (not in sli_thresholds), at every grain.
DELETE FROM sli_threshold_minute t
WHERE NOT EXISTS (SELECT 1 FROM sli_thresholds s WHERE s.service = t.service AND s.threshold_ms = t.threshold_ms);
DELETE FROM sli_threshold_hour t
WHERE NOT EXISTS (SELECT 1 FROM sli_thresholds s WHERE s.service = t.service AND s.threshold_ms = t.threshold_ms);
DELETE FROM sli_threshold_day t
WHERE NOT EXISTS (SELECT 1 FROM sli_thresholds s WHERE s.service = t.service AND s.threshold_ms = t.threshold_ms);

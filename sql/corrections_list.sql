-- Corrections filed under one SLO name (exactly: '*' lists the every-SLO ones), or all when $slo is NULL.
SELECT correction_id, slo, service, start_ts, end_ts, rrule, duration_minutes, time_zone, reason, added_by,
       added_at, removed_by, removed_at
FROM slo_corrections
WHERE (CAST($slo AS VARCHAR) IS NULL OR slo = $slo)
  AND ($include_removed OR removed_at IS NULL)
ORDER BY correction_id;

SELECT correction_id, slo, service, start_ts, end_ts, rrule, duration_minutes, time_zone, reason, added_by,
       added_at, removed_by, removed_at
FROM slo_corrections
WHERE correction_id = $correction_id;

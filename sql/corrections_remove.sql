-- Marks a correction removed; the row stays for the audit trail. Only a live row matches, so a second
-- removal returns nothing instead of overwriting who removed it.
UPDATE slo_corrections
SET removed_by = $removed_by, removed_at = $removed_at
WHERE correction_id = $correction_id AND removed_at IS NULL
RETURNING correction_id, slo, service, start_ts, end_ts, rrule, duration_minutes, time_zone, reason, added_by,
          added_at, removed_by, removed_at;

-- One new correction; the id comes from the table's sequence. Columns are returned in the order of
-- pipelines.slo.corrections.Correction's fields.
INSERT INTO slo_corrections (slo, service, start_ts, end_ts, rrule, duration_minutes, time_zone, reason,
                             added_by, added_at)
VALUES ($slo, $service, $start_ts, $end_ts, $rrule, $duration_minutes, $time_zone, $reason,
        $added_by, $added_at)
RETURNING correction_id, slo, service, start_ts, end_ts, rrule, duration_minutes, time_zone, reason, added_by,
          added_at, removed_by, removed_at;

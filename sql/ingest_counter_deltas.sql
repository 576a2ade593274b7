-- Applies the per-interval deltas computed from cumulative samples (pipelines/slo/counters.py) to the
-- validated rows, and moves each series' state to its newest loaded sample.
-- A delta is attributed to the previous sample's minute: when that minute is before the raw retention
-- cutoff ($raw_cutoff, NULL when none), its raw rows are gone and the delta cannot be loaded there, so the
-- sample is quarantined. The series' state still moves to it: it is a true reading, and the next delta
-- starts from it.
UPDATE validated SET
    ts = d.ts,
    total = d.total,
    good = d.good,
    reason = coalesce(d.reason,
        CASE WHEN date_trunc('minute', d.ts) < CAST($raw_cutoff AS TIMESTAMP)
             THEN 'counter interval starting at ' || strftime(d.ts, '%Y-%m-%dT%H:%M:%SZ')
                  || ' (the previous sample) is older than the raw-data retention cutoff '
                  || sloscope_cutoff_text(CAST($raw_cutoff AS TIMESTAMP))
                  || ' (raw rows before it were deleted; its minute can no longer be recomputed)'
        END)
FROM counter_deltas d
WHERE validated._row = d._row;
DELETE FROM counter_state
WHERE (service, operation) IN (SELECT (service, operation) FROM new_counter_state);
INSERT INTO counter_state SELECT service, operation, ts, total, good FROM new_counter_state;

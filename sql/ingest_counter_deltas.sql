-- Applies the per-interval deltas computed from cumulative samples (pipelines/slo/counters.py) to the
-- validated rows, and moves each series' state to its newest loaded sample.
UPDATE validated SET
    ts = d.ts,
    total = d.total,
    good = d.good,
    reason = d.reason
FROM counter_deltas d
WHERE validated._row = d._row;
DELETE FROM counter_state
WHERE (service, operation) IN (SELECT (service, operation) FROM new_counter_state);
INSERT INTO counter_state SELECT service, operation, ts, total, good FROM new_counter_state;

-- Quarantined rows of the typed fast path whose original record is not yet in `rejected_records`
-- (event-id duplicates: valid by themselves, so the text rules never saw them).
SELECT v._row FROM validated v ANTI JOIN rejected_records r ON r._row = v._row
WHERE v.reason IS NOT NULL ORDER BY v._row;

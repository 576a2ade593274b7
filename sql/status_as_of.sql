SELECT * EXCLUDE (as_of, evaluated_at)
FROM slo_status
WHERE as_of = $as_of
ORDER BY service, slo, objective_index;

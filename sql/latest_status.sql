SELECT * EXCLUDE (as_of, evaluated_at)
FROM slo_status
WHERE as_of = (SELECT max(as_of) FROM slo_status)
ORDER BY service, slo, objective_index;

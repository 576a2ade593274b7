-- A composite's weighted whole (named like the composite) after its components ("<composite>/<objective>").
SELECT * EXCLUDE (as_of, evaluated_at)
FROM slo_status
WHERE as_of = $as_of
ORDER BY service, split_part(slo, '/', 1), objective = 'weighted whole' AND strpos(slo, '/') = 0, slo,
         objective_index;

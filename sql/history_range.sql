-- Daily history in [$start, $end) for the named SLOs (all when $slos is NULL).
SELECT * EXCLUDE (evaluated_at)
FROM slo_history
WHERE day >= $start AND day < $end AND ($slos::VARCHAR[] IS NULL OR list_contains($slos::VARCHAR[], slo))
ORDER BY split_part(slo, '/', 1), objective = 'weighted whole' AND strpos(slo, '/') = 0, slo,
         objective_index, day;

-- Daily history in [$start, $end) for the named SLOs (all when $slos is NULL).
SELECT * EXCLUDE (evaluated_at)
FROM slo_history
WHERE day >= $start AND day < $end AND ($slos::VARCHAR[] IS NULL OR list_contains($slos::VARCHAR[], slo))
ORDER BY slo, objective_index, day;

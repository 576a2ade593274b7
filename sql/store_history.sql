-- One day's history for the given SLOs (delete, then insert: re-running a day is idempotent).
DELETE FROM slo_history WHERE day = $day AND list_contains($slos::VARCHAR[], slo);
INSERT INTO slo_history
    (day, slo, display_name, service, objective, objective_index, target, budgeting_method, window_start,
     window_end, good, total, sli, budget_consumed, budget_remaining, burn_rates, status, policy_state,
     data_completeness, details, evaluated_at)
SELECT $day, slo, display_name, service, objective, objective_index, target, budgeting_method, window_start,
       window_end, good, total, sli, budget_consumed, budget_remaining, burn_rates, status, policy_state,
       data_completeness, details, $evaluated_at
FROM new_history;

DELETE FROM slo_status WHERE as_of = $as_of;
INSERT INTO slo_status
    (as_of, slo, display_name, service, objective, objective_index, target, budgeting_method, window_start,
     window_end, good, total, sli, budget_consumed, budget_remaining, burn_rates, status, evaluated_at,
     policy_state, data_completeness, details)
SELECT $as_of, slo, display_name, service, objective, objective_index, target, budgeting_method, window_start,
       window_end, good, total, sli, budget_consumed, budget_remaining, burn_rates, status, $evaluated_at,
       policy_state, data_completeness, details
FROM new_status;

DELETE FROM slo_objectives;
INSERT INTO slo_objectives
    (slo, display_name, service, objective, objective_index, target, budgeting_method, window_seconds,
     time_window, source_file, definition)
SELECT slo, display_name, service, objective, objective_index, target, budgeting_method, window_seconds,
       time_window, source_file, definition
FROM new_objectives;

-- Replace slo_change_points with this run's rows (registered as new_rows).
DELETE FROM slo_change_points;
INSERT INTO slo_change_points SELECT * FROM new_rows;

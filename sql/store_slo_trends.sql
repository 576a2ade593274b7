-- Replace slo_trends with this run's rows (registered as new_rows).
DELETE FROM slo_trends;
INSERT INTO slo_trends SELECT * FROM new_rows;

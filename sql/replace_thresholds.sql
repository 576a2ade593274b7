DELETE FROM sli_thresholds;
INSERT INTO sli_thresholds SELECT service, threshold_ms FROM wanted_thresholds;

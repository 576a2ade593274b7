SELECT service, threshold_ms FROM sli_thresholds;

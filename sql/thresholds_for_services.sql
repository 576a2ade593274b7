SELECT service, threshold_ms FROM sli_thresholds WHERE list_contains($services::VARCHAR[], service);

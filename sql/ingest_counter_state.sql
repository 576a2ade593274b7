SELECT service, operation, ts, total, good
FROM counter_state
WHERE list_contains($series::VARCHAR[], service || chr(0) || operation);

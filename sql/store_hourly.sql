DELETE FROM slo_hourly;
INSERT INTO slo_hourly SELECT slo, bucket_start, good, total FROM new_hourly;

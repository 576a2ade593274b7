-- Hourly good/total per objective of a service's SLOs, for report charts.
SELECT h.slo, o.objective, o.target, h.bucket_start, h.good, h.total
FROM slo_hourly h
JOIN slo_objectives o ON o.slo = h.slo
WHERE o.service = $service
ORDER BY h.slo, o.objective_index, h.bucket_start;

SELECT DISTINCT day FROM slo_history WHERE slo = $slo ORDER BY day;

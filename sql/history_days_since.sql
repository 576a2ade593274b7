-- Every stored history day from $since on, with the SLOs (and composite wholes) it holds rows for.
SELECT DISTINCT day, slo FROM slo_history WHERE day >= $since ORDER BY day, slo;

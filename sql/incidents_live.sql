-- Incidents not resolved, and those resolved at or after $since (they can still be reopened).
SELECT * FROM incidents
WHERE state <> 'resolved' OR resolved_at >= $since::TIMESTAMP
ORDER BY incident_id;

SELECT o.key, o.channel, o.action, o.level, o.purpose, o.dry_run, o.status, o.updated_at,
       (SELECT count(*) FROM notification_log l WHERE l.key = o.key AND l.channel = o.channel) AS attempts
FROM notification_outbox o
WHERE o.incident_id = $incident_id
ORDER BY o.created_at, o.key, o.channel;

-- Whether an alert was sent (trigger or refresh) to a channel since $since: refreshes go at most that often.
SELECT count(*) FROM notification_outbox
WHERE alert_id = $alert_id AND channel = $channel AND action = 'trigger' AND created_at >= $since;

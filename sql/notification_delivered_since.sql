-- Deliveries that count against a channel's rate limit: not Alertmanager keep-alive refreshes.
SELECT count(*) FROM notification_log
WHERE channel = $channel AND outcome = 'delivered' AND attempted_at >= $since AND key NOT LIKE '%#%/refresh/%';

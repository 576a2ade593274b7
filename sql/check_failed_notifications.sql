-- Notifications that could not be delivered after every retry, per channel.
SELECT channel, count(*) AS failed FROM notification_outbox WHERE status = 'failed' GROUP BY channel ORDER BY channel;

SELECT count(*) FROM notification_log WHERE channel = $channel AND outcome = 'delivered' AND attempted_at >= $since;

-- Distinct successful sends of one report key (a forced re-send is another message).
SELECT count(DISTINCT message_id) FROM report_deliveries WHERE key = $key AND outcome = 'sent';

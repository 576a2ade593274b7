-- Replace the stored backtests with this run's (registered as new_backtests).
DELETE FROM alert_backtests;
INSERT INTO alert_backtests SELECT * FROM new_backtests;

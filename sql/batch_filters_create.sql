-- The batch filters of one evaluation as a temporary table (allowed on read-only connections too): the
-- batched queries run once per range, and a table is scanned without converting the frame each time.
CREATE OR REPLACE TEMP TABLE batch_filters AS SELECT * FROM batch_filters_frame;

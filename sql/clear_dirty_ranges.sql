DELETE FROM dirty_ranges;

DROP TABLE IF EXISTS temp.main.batch_filters;

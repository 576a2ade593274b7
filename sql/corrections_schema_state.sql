-- Whether the corrections table exists, and whether this connection may create it (read-only opens
-- cannot run CREATE, even IF NOT EXISTS).
SELECT
    EXISTS (SELECT 1 FROM duckdb_tables()
            WHERE database_name = current_database() AND schema_name = 'main'
              AND table_name = 'slo_corrections') AS table_exists,
    (SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()) AS read_only;

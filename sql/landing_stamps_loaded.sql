-- Every landed path whose last read content is still its loaded version: its size and modification time
-- then, and that file's id. ingest_paths reads these once per run instead of two look-ups per file.
SELECT s.path, s.size_bytes, s.mtime_ns, min(f.file_id) AS file_id
FROM landing_stamps s
JOIN ingested_files f ON f.sha256 = s.sha256 AND f.path = s.path AND f.status = 'loaded'
GROUP BY ALL;

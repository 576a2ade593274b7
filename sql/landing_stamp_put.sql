-- Remember the size and modification time a loaded path had when its content was read.
INSERT OR REPLACE INTO landing_stamps (path, size_bytes, mtime_ns, sha256) VALUES ($path, $size, $mtime, $sha);

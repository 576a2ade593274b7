-- The content last read at a path, when the path still has the size and modification time it had then.
SELECT sha256 FROM landing_stamps WHERE path = $path AND size_bytes = $size AND mtime_ns = $mtime;

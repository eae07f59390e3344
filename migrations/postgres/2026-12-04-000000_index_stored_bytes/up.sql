-- A user's stored bytes (storage.max_bytes_per_user), summed from the index alone.
CREATE INDEX documents_bytes_by_user ON documents (user_id, size_bytes);

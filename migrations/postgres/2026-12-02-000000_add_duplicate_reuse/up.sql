-- Duplicate uploads are reused only when processed the same way: the fingerprint of
-- the settings that made a document's chunks (chunking, embedding, readers), set with
-- the chunks; and, on a copy, the document the chunks were copied from.
ALTER TABLE documents ADD COLUMN settings_fingerprint TEXT;
ALTER TABLE documents ADD COLUMN reused_from TEXT;
-- The twin lookup: same content, same settings, completed.
CREATE INDEX documents_sha256_settings ON documents (sha256, settings_fingerprint);

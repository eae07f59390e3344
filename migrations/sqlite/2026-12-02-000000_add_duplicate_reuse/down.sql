DROP INDEX documents_sha256_settings;
ALTER TABLE documents DROP COLUMN reused_from;
ALTER TABLE documents DROP COLUMN settings_fingerprint;

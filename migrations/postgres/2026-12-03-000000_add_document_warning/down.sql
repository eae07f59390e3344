ALTER TABLE documents DROP COLUMN warning;

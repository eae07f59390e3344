-- What a completed document's reading had to leave out (PDF pages without a text
-- layer while OCR is unavailable), shown to its owner with the document.
ALTER TABLE documents ADD COLUMN warning TEXT;

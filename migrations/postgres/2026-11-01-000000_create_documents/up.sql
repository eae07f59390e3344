-- The documents table as the synchronous pipeline knew it, before the queue.
CREATE TABLE documents (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    storage_path TEXT NOT NULL,
    chunk_count INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);
-- Listing a user's documents newest first (ids are ULIDs, so id order is time order).
CREATE INDEX documents_by_user ON documents (user_id, id);

CREATE TABLE document_chunks (
    document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    page_start INTEGER,
    page_end INTEGER,
    char_count INTEGER NOT NULL,
    embedding BYTEA NOT NULL,
    PRIMARY KEY (document_id, ordinal)
);

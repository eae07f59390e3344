DROP INDEX documents_bytes_by_user;

-- reused_from names only the uploader's own document; rows completed before that rule
-- may name another user's, which that user's API answers must not show.
UPDATE documents SET reused_from = NULL
WHERE reused_from IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM documents AS twin
    WHERE twin.id = documents.reused_from AND twin.user_id = documents.user_id
  );

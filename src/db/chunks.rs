//! Queries on `document_chunks`.

use diesel::prelude::*;

use super::models::{ChunkRow, QueueStatus};
use super::schema::{document_chunks, documents};
use super::{write_transaction, DbConnection, DbError};

/// Replaces the document's chunks in one transaction, so a retried or re-run job
/// never leaves duplicates, and marks nothing else. Returns false when the document
/// no longer carries `job_id` (deleted or re-enqueued): then nothing is written.
pub fn replace_for_job(
    conn: &mut DbConnection,
    document_id: &str,
    job_id: &str,
    chunks: &[ChunkRow],
) -> Result<bool, DbError> {
    write_transaction(conn, |conn| {
        let owned: i64 = documents::table
            .filter(documents::id.eq(document_id))
            .filter(documents::job_id.eq(job_id))
            .count()
            .get_result(conn)?;
        if owned == 0 {
            return Ok(false);
        }
        diesel::delete(document_chunks::table.filter(document_chunks::document_id.eq(document_id))).execute(conn)?;
        for chunk in chunks {
            diesel::insert_into(document_chunks::table).values(chunk).execute(conn)?;
        }
        Ok(true)
    })
}

/// A page of one document's chunks in order; `after` is the last ordinal seen.
pub fn list_for_document(
    conn: &mut DbConnection,
    document_id: &str,
    after: Option<i32>,
    limit: i64,
) -> Result<Vec<ChunkRow>, DbError> {
    let mut query = document_chunks::table
        .filter(document_chunks::document_id.eq(document_id))
        .select(ChunkRow::as_select())
        .order(document_chunks::ordinal.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(document_chunks::ordinal.gt(after));
    }
    Ok(query.load(conn)?)
}

/// The embeddings of every chunk of the user's completed documents (search scores
/// these first and reads the text of the best ones only).
pub fn embeddings_for_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<(String, i32, Vec<u8>)>, DbError> {
    Ok(document_chunks::table
        .inner_join(documents::table)
        .filter(documents::user_id.eq(user_id))
        .filter(documents::queue_status.eq(QueueStatus::Completed.as_str()))
        .select((document_chunks::document_id, document_chunks::ordinal, document_chunks::embedding))
        .load(conn)?)
}

/// One chunk with its document's filename, if the user owns it.
pub fn find_with_filename(
    conn: &mut DbConnection,
    user_id: &str,
    document_id: &str,
    ordinal: i32,
) -> Result<Option<(ChunkRow, String)>, DbError> {
    Ok(document_chunks::table
        .inner_join(documents::table)
        .filter(documents::user_id.eq(user_id))
        .filter(document_chunks::document_id.eq(document_id))
        .filter(document_chunks::ordinal.eq(ordinal))
        .select((ChunkRow::as_select(), documents::filename))
        .first(conn)
        .optional()?)
}

pub fn count_for_document(conn: &mut DbConnection, document_id: &str) -> Result<i64, DbError> {
    Ok(document_chunks::table.filter(document_chunks::document_id.eq(document_id)).count().get_result(conn)?)
}

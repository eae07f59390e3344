//! Queries on `document_chunks`.

use diesel::prelude::*;

use super::cached::cached;
use super::models::ChunkRow;
use super::schema::{document_chunks, documents};
use super::{write_transaction, DbConnection, DbError};
use crate::job_state::JobState;

const INSERT_BATCH: usize = 500;

/// Replaces the document's chunks in one transaction, so a retried or re-run job
/// never leaves duplicates, and records the settings they were made with. Returns
/// false when the document no longer carries `job_id` (deleted or re-enqueued): then
/// nothing is written.
pub fn replace_for_job(
    conn: &mut DbConnection,
    document_id: &str,
    job_id: &str,
    settings_fingerprint: &str,
    chunks: &[ChunkRow],
) -> Result<bool, DbError> {
    write_transaction(conn, |conn| {
        let replaced = replace(conn, document_id, job_id, chunks)?;
        if replaced {
            cached(diesel::update(documents::table.filter(documents::id.eq(document_id))).set((
                documents::settings_fingerprint.eq(settings_fingerprint),
                documents::reused_from.eq(None::<String>),
            )))
            .execute(conn)?;
        }
        Ok(replaced)
    })
}

/// How copying a twin's chunks went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwinCopy {
    /// This many chunks were copied; the twin's warning comes with them. `reused_from`
    /// names the twin when it is the same user's (another user's document is never
    /// named to the uploader, not even by id).
    Copied { chunk_count: i32, warning: Option<String>, reused_from: Option<String> },
    /// The twin was deleted, or is no longer completed with those settings.
    TwinGone,
    /// The document no longer carries the job (deleted or re-enqueued).
    NotOwned,
}

/// Copies the chunks of `twin`, a completed document processed with
/// `settings_fingerprint`, to the document under `job_id`, as if it had made them
/// itself. One transaction: a twin deleted meanwhile never leaves half a copy, and the
/// copy is the document's own (deleting either leaves the other whole).
pub fn copy_from_twin(
    conn: &mut DbConnection,
    twin: &str,
    settings_fingerprint: &str,
    document_id: &str,
    job_id: &str,
) -> Result<TwinCopy, DbError> {
    write_transaction(conn, |conn| {
        let still_a_twin: Option<(Option<String>, String)> = documents::table
            .filter(documents::id.eq(twin))
            .filter(documents::queue_status.eq(JobState::Completed.as_str()))
            .filter(documents::settings_fingerprint.eq(settings_fingerprint))
            .select((documents::warning, documents::user_id))
            .first(conn)
            .optional()?;
        let Some((warning, twin_owner)) = still_a_twin else { return Ok(TwinCopy::TwinGone) };
        let owner: Option<String> =
            documents::table.find(document_id).select(documents::user_id).first(conn).optional()?;
        let reused_from = (owner.as_deref() == Some(twin_owner.as_str())).then(|| twin.to_string());
        let mut rows: Vec<ChunkRow> = document_chunks::table
            .filter(document_chunks::document_id.eq(twin))
            .select(ChunkRow::as_select())
            .order(document_chunks::ordinal.asc())
            .load(conn)?;
        for row in &mut rows {
            row.document_id = document_id.to_string();
        }
        if !replace(conn, document_id, job_id, &rows)? {
            return Ok(TwinCopy::NotOwned);
        }
        cached(
            diesel::update(documents::table.filter(documents::id.eq(document_id))).set((
                documents::settings_fingerprint.eq(settings_fingerprint),
                documents::reused_from.eq(&reused_from),
            )),
        )
        .execute(conn)?;
        Ok(TwinCopy::Copied { chunk_count: rows.len() as i32, warning, reused_from })
    })
}

/// The chunk replacement of [`replace_for_job`], inside the caller's transaction.
fn replace(conn: &mut DbConnection, document_id: &str, job_id: &str, chunks: &[ChunkRow]) -> Result<bool, DbError> {
    {
        let owned: i64 = documents::table
            .filter(documents::id.eq(document_id))
            .filter(documents::job_id.eq(job_id))
            .count()
            .get_result(conn)?;
        if owned == 0 {
            return Ok(false);
        }
        diesel::delete(document_chunks::table.filter(document_chunks::document_id.eq(document_id))).execute(conn)?;
        // One multi-row INSERT per batch, well under SQLite's and PostgreSQL's limits on
        // bound values (7 per row).
        for batch in chunks.chunks(INSERT_BATCH) {
            let insert = diesel::insert_into(document_chunks::table).values(batch);
            match conn {
                DbConnection::Postgresql(pg) => insert.execute(pg)?,
                DbConnection::Sqlite(sqlite) => insert.execute(sqlite)?,
            };
        }
        Ok(true)
    }
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

/// The `k` chunks of the user's completed documents whose embeddings score highest
/// by `score`, best first, as (score, document id, ordinal). Embeddings are read a
/// page at a time and never the texts, so memory stays flat however many chunks the
/// user has.
pub fn top_k_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    k: usize,
    page_size: i64,
    score: impl Fn(&[u8]) -> f32,
) -> Result<Vec<(f32, String, i32)>, DbError> {
    let mut best = TopK::new(k);
    // Document by document, each read along its primary key (document_id, ordinal):
    // no sort and no scan of other users' chunks.
    let completed: Vec<String> = documents::table
        .filter(documents::user_id.eq(user_id))
        .filter(documents::queue_status.eq(JobState::Completed.as_str()))
        .select(documents::id)
        .load(conn)?;
    for document in completed {
        let mut after = -1;
        loop {
            let page: Vec<(i32, Vec<u8>)> = document_chunks::table
                .filter(document_chunks::document_id.eq(&document))
                .filter(document_chunks::ordinal.gt(after))
                .select((document_chunks::ordinal, document_chunks::embedding))
                .order(document_chunks::ordinal.asc())
                .limit(page_size)
                .load(conn)?;
            let full = page.len() as i64 == page_size;
            for (ordinal, embedding) in page {
                best.offer(score(&embedding), &document, ordinal);
                after = ordinal;
            }
            if !full {
                break;
            }
        }
    }
    Ok(best.into_sorted())
}

/// The k best scores seen, kept as a small min-heap.
struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Scored>>,
}

struct Scored(f32, String, i32);

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK { k, heap: std::collections::BinaryHeap::with_capacity(k + 1) }
    }

    fn offer(&mut self, score: f32, document: &str, ordinal: i32) {
        if self.heap.len() == self.k && self.heap.peek().is_some_and(|worst| score <= worst.0 .0) {
            return;
        }
        self.heap.push(std::cmp::Reverse(Scored(score, document.to_string(), ordinal)));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    fn into_sorted(self) -> Vec<(f32, String, i32)> {
        let mut best: Vec<(f32, String, i32)> = self.heap.into_iter().map(|s| (s.0 .0, s.0 .1, s.0 .2)).collect();
        best.sort_by(|a, b| b.0.total_cmp(&a.0));
        best
    }
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

//! Ranking stored chunks against a query vector by cosine similarity: the search
//! behind `GET /api/documents/search`.

use serde::Serialize;

use super::norm;
use crate::db::{chunks, DbConnection, DbError};

/// Embeddings read per database round trip while scoring (about 1.5 KiB each).
const SCORING_PAGE: i64 = 500;

/// One chunk found by a search, with its score (cosine similarity, -1 to 1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchHit {
    pub document_id: String,
    pub filename: String,
    pub ordinal: i32,
    pub page_start: Option<i32>,
    pub page_end: Option<i32>,
    pub text: String,
    pub score: f32,
}

/// The `k` chunks of the user's completed documents nearest to `query`, best first.
/// Only the user's own documents are read.
pub fn nearest_chunks(
    conn: &mut DbConnection,
    user_id: &str,
    query: &[f32],
    k: usize,
) -> Result<Vec<SearchHit>, DbError> {
    let query_norm = norm(query);
    let best =
        chunks::top_k_for_user(conn, user_id, k, SCORING_PAGE, |bytes| cosine_with_bytes(query, query_norm, bytes))?;
    let mut hits = Vec::with_capacity(best.len());
    for (score, document, ordinal) in best {
        if let Some((chunk, filename)) = chunks::find_with_filename(conn, user_id, &document, ordinal)? {
            hits.push(SearchHit {
                document_id: chunk.document_id,
                filename,
                ordinal: chunk.ordinal,
                page_start: chunk.page_start,
                page_end: chunk.page_end,
                text: chunk.text,
                score,
            });
        }
    }
    Ok(hits)
}

/// Cosine similarity of `query` (whose norm is given) with a vector stored as f32 LE
/// bytes, without decoding the stored one into a vector first.
pub fn cosine_with_bytes(query: &[f32], query_norm: f32, stored: &[u8]) -> f32 {
    if stored.len() != query.len() * 4 || query_norm == 0.0 {
        return 0.0;
    }
    let (mut dot, mut norm) = (0.0f32, 0.0f32);
    for (x, bytes) in query.iter().zip(stored.chunks_exact(4)) {
        let y = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        dot += x * y;
        norm += y * y;
    }
    if norm == 0.0 {
        0.0
    } else {
        dot / (query_norm * norm.sqrt())
    }
}

/// Cosine similarity; 0 for vectors of different lengths or of zero length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = norm(a) * norm(b);
    if norms == 0.0 {
        0.0
    } else {
        dot / norms
    }
}

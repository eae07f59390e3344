//! Using the result: a document's chunks, and semantic search over the caller's
//! completed documents (`GET /api/documents/search?q=…&k=5`).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use crate::auth::AuthUser;
use crate::db::{chunks, documents};
use crate::error::AppError;
use crate::processing::embed::{rank, EmbedError};

const MAX_K: usize = 50;
const CHUNK_PAGE: i64 = 100;
/// How long a search waits for a turn before it is answered 429.
const SEARCH_TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Deserialize)]
pub struct ChunksQuery {
    cursor: Option<i32>,
    limit: Option<i64>,
}

#[derive(Serialize)]
struct ChunkView {
    ordinal: i32,
    text: String,
    page_start: Option<i32>,
    page_end: Option<i32>,
    char_count: i32,
}

/// `GET /api/documents/{id}/chunks`: the document's chunks in order, a page at a time.
pub async fn list_chunks(
    user: AuthUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ChunksQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = query.limit.unwrap_or(CHUNK_PAGE);
    if !(1..=500).contains(&limit) {
        return Err(AppError::BadRequest("`limit` must be between 1 and 500".into()));
    }
    let (user_id, id, after) = (user.id.clone(), path.into_inner(), query.cursor);
    let mut page = state
        .db
        .run(move |conn| {
            if documents::find_for_user(conn, &user_id, &id)?.is_none() {
                return Ok(None);
            }
            chunks::list_for_document(conn, &id, after, limit + 1).map(Some)
        })
        .await?
        .ok_or_else(|| AppError::NotFound("no such document".into()))?;
    let next_cursor = if page.len() as i64 > limit {
        page.truncate(limit as usize);
        page.last().map(|c| c.ordinal)
    } else {
        None
    };
    let chunks: Vec<ChunkView> = page
        .into_iter()
        .map(|c| ChunkView {
            ordinal: c.ordinal,
            text: c.text,
            page_start: c.page_start,
            page_end: c.page_end,
            char_count: c.char_count,
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "chunks": chunks, "next_cursor": next_cursor })))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    k: Option<usize>,
}

pub async fn search(
    user: AuthUser,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.q.as_deref().map(str::trim).unwrap_or_default().to_string();
    if q.is_empty() {
        return Err(AppError::BadRequest("`q` must not be empty".into()));
    }
    let k = query.k.unwrap_or(5);
    if !(1..=MAX_K).contains(&k) {
        return Err(AppError::BadRequest(format!("`k` must be between 1 and {MAX_K}")));
    }
    // Past the cap a search waits its turn (holding nothing but its query), for a while.
    let _turn = tokio::time::timeout(SEARCH_TURN_WAIT, state.searches.acquire())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| AppError::Busy("too many searches are running; try again shortly".into()))?;
    let vector = state
        .embedder
        .embed(std::slice::from_ref(&q))
        .await
        .map_err(|err| match err {
            EmbedError::Transient(m) | EmbedError::Permanent(m) => {
                log::warn!("query embedding failed: {m}");
                AppError::Unavailable("the embedding service".into())
            }
        })?
        .pop()
        .ok_or_else(|| AppError::internal("the embedder returned no vector"))?;

    let user_id = user.id.clone();
    let results = state.db.run(move |conn| rank::nearest_chunks(conn, &user_id, &vector, k)).await?;
    Ok(HttpResponse::Ok().json(json!({ "results": results })))
}

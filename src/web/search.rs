//! Using the result: a document's chunks, and semantic search over the caller's
//! completed documents (`GET /api/documents/search?q=…&k=5`).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{comparable_with_stored, AppState};
use crate::auth::AuthUser;
use crate::db::{chunks, documents};
use crate::error::{AppError, ErrorBody};
use crate::processing::embed::rank::{self, SearchHit};
use crate::processing::embed::EmbedError;

const MAX_K: usize = 50;
/// A question, not a document: a longer one would be refused by embedding models (a 503
/// from the service) after costing its tokens.
const MAX_QUERY_CHARS: usize = 2_000;
const CHUNK_PAGE: i64 = 100;
/// How long a search waits for a turn before it is answered 429.
const SEARCH_TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How often a search that waits for one of its user's own to end looks again.
const OWN_TURN_POLL: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChunksQuery {
    /// The `next_cursor` of the previous page (an ordinal).
    cursor: Option<i32>,
    /// 1 to 500 (default 100).
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ChunkView {
    ordinal: i32,
    text: String,
    page_start: Option<i32>,
    page_end: Option<i32>,
    char_count: i32,
}

/// A page of a document's chunks, in order.
#[derive(Serialize, utoipa::ToSchema)]
struct ChunkPage {
    chunks: Vec<ChunkView>,
    next_cursor: Option<i32>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SearchResults {
    results: Vec<SearchHit>,
}

/// `GET /api/documents/{id}/chunks`: the document's chunks in order, a page at a time.
#[utoipa::path(get, path = "/api/documents/{id}/chunks", tag = "search", params(("id" = String, Path), ChunksQuery),
    security(("bearer" = [])), responses((status = 200, body = ChunkPage), (status = 404, body = ErrorBody)))]
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
    if !comparable_with_stored(&id) {
        return Err(AppError::NotFound("no such document".into()));
    }
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
    Ok(HttpResponse::Ok().json(ChunkPage { chunks, next_cursor }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What to look for: up to 2,000 characters.
    q: Option<String>,
    /// How many chunks to return: 1 to 50 (default 5).
    k: Option<usize>,
}

/// The caller's completed documents' chunks nearest to `q`, best first.
#[utoipa::path(get, path = "/api/documents/search", tag = "search", params(SearchQuery), security(("bearer" = [])),
    responses((status = 200, body = SearchResults), (status = 400, body = ErrorBody),
        (status = 429, description = "Too many searches at once; retry shortly", body = ErrorBody),
        (status = 503, description = "The embedding service is unavailable", body = ErrorBody)))]
pub async fn search(
    user: AuthUser,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.q.as_deref().map(str::trim).unwrap_or_default().to_string();
    if q.is_empty() {
        return Err(AppError::BadRequest("`q` must not be empty".into()));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::BadRequest(format!("`q` is longer than {MAX_QUERY_CHARS} characters")));
    }
    let k = query.k.unwrap_or(5);
    if !(1..=MAX_K).contains(&k) {
        return Err(AppError::BadRequest(format!("`k` must be between 1 and {MAX_K}")));
    }
    // Past the cap a search waits its turn (holding nothing but its query), for a while;
    // first for one of its user's own, as one user may hold half the turns at most, so
    // that the others still get theirs.
    let waiting_since = tokio::time::Instant::now();
    let too_busy = || AppError::Busy("too many searches are running; try again shortly".into());
    let per_user = (state.config.server.max_concurrent_searches / 2).max(1);
    let mine = loop {
        if let Some(slot) = state.searchers.take(&user.id, per_user, usize::MAX) {
            break slot;
        }
        if waiting_since.elapsed() >= SEARCH_TURN_WAIT {
            return Err(too_busy());
        }
        tokio::time::sleep(OWN_TURN_POLL).await;
    };
    let turn = tokio::time::timeout(
        SEARCH_TURN_WAIT.saturating_sub(waiting_since.elapsed()),
        state.searches.clone().acquire_owned(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or_else(too_busy)?;
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
    let results = state
        .db
        .run(move |conn| {
            // Given back when the scan ends, not when the request does: a client that
            // hangs up cannot free its turn while the scan it started runs on.
            let _held = (mine, turn);
            rank::nearest_chunks(conn, &user_id, &vector, k)
        })
        .await?;
    Ok(HttpResponse::Ok().json(SearchResults { results }))
}

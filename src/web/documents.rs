//! The caller's documents: list, read, delete, cancel, and the processing picture.
//! Every query is scoped to the caller; someone else's id answers 404 like a missing one.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{comparable_with_stored, AppState};
use crate::auth::pace::RequestPace;
use crate::auth::AuthUser;
use crate::db::documents;
use crate::db::models::{Document, DocumentView};
use crate::documents::cancel_document;
use crate::error::{AppError, ErrorBody};
use crate::job_state::JobState;
use crate::progress::snapshot::{self, Snapshot};

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// queued, processing, completed, failed or cancelled.
    status: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 200 (default 50).
    limit: Option<i64>,
}

/// A page of the caller's documents, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DocumentPage {
    documents: Vec<DocumentView>,
    /// Pass as `cursor` for the next page; null on the last one.
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/documents", tag = "documents", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = DocumentPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    user: AuthUser,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(JobState::parse(s).ok().filter(|s| JobState::OF_DOCUMENTS.contains(s)).ok_or_else(|| {
            AppError::BadRequest(format!(
                "unknown status `{s}`; use one of {}",
                JobState::names(&JobState::OF_DOCUMENTS).join(", ")
            ))
        })?),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::BadRequest(format!("`limit` must be between 1 and {MAX_PAGE}")));
    }
    let cursor = query.cursor.clone().filter(|c| !c.is_empty());
    if !cursor.as_deref().is_none_or(comparable_with_stored) {
        return Err(AppError::BadRequest("`cursor` is not one this API gave".into()));
    }
    let user_id = user.id.clone();
    // One extra row tells whether another page follows.
    let mut page = state
        .db
        .run(move |conn| documents::list_for_user(conn, &user_id, status, cursor.as_deref(), limit + 1))
        .await?;
    let next_cursor = if page.len() as i64 > limit {
        page.truncate(limit as usize);
        page.last().map(|d| d.id.clone())
    } else {
        None
    };
    let documents: Vec<DocumentView> = page.into_iter().map(DocumentView::from).collect();
    Ok(HttpResponse::Ok().json(DocumentPage { documents, next_cursor }))
}

#[utoipa::path(get, path = "/api/documents/{id}", tag = "documents", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = DocumentView), (status = 404, description = "Not the caller's, or no such document", body = ErrorBody)))]
pub async fn get_one(
    user: AuthUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let document = find_own(&state, &user, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(DocumentView::from(document)))
}

/// Deletes the document, its chunks and its file; stops its processing first.
#[utoipa::path(delete, path = "/api/documents/{id}", tag = "documents", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    user: AuthUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let document = find_own(&state, &user, path.into_inner()).await?;
    if !document.queue_status.is_terminal() {
        // Stop the work first so no worker writes chunks for a deleted document.
        if let Err(err) = state.queue.cancel(&document.job_id).await {
            log::warn!("cancel before delete failed ({err}); the worker's row updates will find no row");
        }
    }
    let (user_id, id) = (user.id.clone(), document.id.clone());
    let deleted =
        state.db.run(move |conn| documents::delete_for_user(conn, &user_id, &id)).await?.ok_or_else(not_found)?;
    if let Err(err) = state.storage.remove(&deleted.storage_path).await {
        log::error!("stored file of deleted document {} not removed: {err}", deleted.id);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Cancels queued or running processing. Queued: cancelled at once. Running: the
/// worker stops within a second; the answer waits briefly for it (202 if it has not
/// confirmed yet). Finished: 409.
#[utoipa::path(delete, path = "/api/documents/cancel/{id}", tag = "documents", operation_id = "cancel_document", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled", body = DocumentView),
        (status = 202, description = "Its worker was told and has not confirmed yet", body = DocumentView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody),
        (status = 503, description = "The queue cannot be reached: nothing was changed", body = ErrorBody)))]
pub async fn cancel(
    user: AuthUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let document = find_own(&state, &user, path.into_inner()).await?;
    let document = cancel_document(&state.db, &state.queue, &state.events, document).await?;
    let status = if document.queue_status == JobState::Cancelled {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::ACCEPTED
    };
    Ok(HttpResponse::build(status).json(DocumentView::from(document)))
}

/// The caller's queue: the same picture as the WebSocket snapshot.
#[utoipa::path(get, path = "/api/documents/processing-status", tag = "documents", security(("bearer" = [])),
    responses((status = 200, body = Snapshot), (status = 503, body = ErrorBody)))]
pub async fn processing_status(
    user: AuthUser,
    state: web::Data<AppState>,
    pace: web::Data<RequestPace>,
) -> Result<HttpResponse, AppError> {
    if !pace.admit_rest_of_snapshot(&user.id) {
        return Err(AppError::Busy(pace.snapshot_refusal()));
    }
    let snapshot = snapshot::build(&state.db, &state.queue, &state.events, &user.id).await?;
    Ok(HttpResponse::Ok().json(snapshot))
}

async fn find_own(state: &AppState, user: &AuthUser, id: String) -> Result<Document, AppError> {
    if !comparable_with_stored(&id) {
        return Err(not_found());
    }
    let user_id = user.id.clone();
    state.db.run(move |conn| documents::find_for_user(conn, &user_id, &id)).await?.ok_or_else(not_found)
}

fn not_found() -> AppError {
    AppError::NotFound("no such document".into())
}

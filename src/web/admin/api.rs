//! The admin JSON API under `/api/admin` (role = admin; anyone else signed in: 403).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::jobs::{JobPage, JobSearch, JobStory};
use super::overview::Overview;
use super::{jobs, overview};
use crate::auth::AdminUser;
use crate::db::models::DocumentView;
use crate::error::{AppError, ErrorBody};
use crate::web::{delete, get, post, serve, AppState};

/// A job sent round again under a new job id.
#[derive(Serialize, utoipa::ToSchema)]
struct Retried {
    document: DocumentView,
    queue_position: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct RetriedCount {
    retried: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Cleaned {
    removed: usize,
    job_ids: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Paused {
    paused: bool,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(serve("/queue/status", [get(status)]))
        .service(serve("/queue/jobs", [get(list_jobs)]))
        .service(serve("/queue/jobs/{job_id}", [get(job)]))
        .service(serve("/queue/retry-failed", [post(retry_failed)]))
        .service(serve("/queue/retry/{job_id}", [post(retry)]))
        .service(serve("/queue/cancel/{job_id}", [delete(cancel)]))
        .service(serve("/queue/clean", [delete(clean)]))
        .service(serve("/queue/pause", [post(pause)]))
        .service(serve("/queue/resume", [post(resume)]));
}

#[utoipa::path(get, path = "/api/admin/queue/status", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Overview), (status = 401, body = ErrorBody), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub(crate) async fn status(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(overview::gather(&state.queue).await?))
}

/// Jobs as Redis records them (finished ones until retention removes them).
#[utoipa::path(get, path = "/api/admin/queue/jobs", tag = "admin", params(JobSearch), security(("bearer" = [])),
    responses((status = 200, body = JobPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_jobs(
    _: AdminUser,
    state: web::Data<AppState>,
    query: web::Query<JobSearch>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(jobs::search(&state, &query).await?))
}

/// One job's whole story: its record in Redis, its document, every attempt.
#[utoipa::path(get, path = "/api/admin/queue/jobs/{job_id}", tag = "admin", params(("job_id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = JobStory), (status = 404, body = ErrorBody)))]
pub(crate) async fn job(
    _: AdminUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(jobs::story(&state, &path).await?))
}

#[utoipa::path(post, path = "/api/admin/queue/retry/{job_id}", tag = "admin", params(("job_id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Retried), (status = 404, body = ErrorBody),
        (status = 409, description = "Only a finished job can be retried", body = ErrorBody)))]
pub(crate) async fn retry(
    _: AdminUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (document, position) = jobs::retry(&state, &path).await?;
    Ok(HttpResponse::Ok().json(Retried { document, queue_position: position }))
}

#[utoipa::path(post, path = "/api/admin/queue/retry-failed", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = RetriedCount), (status = 403, body = ErrorBody)))]
pub(crate) async fn retry_failed(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(RetriedCount { retried: jobs::retry_all_failed(&state).await? }))
}

#[utoipa::path(delete, path = "/api/admin/queue/cancel/{job_id}", tag = "admin", operation_id = "cancel_job", params(("job_id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = DocumentView), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(crate) async fn cancel(
    _: AdminUser,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(jobs::cancel(&state, &path).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CleanQuery {
    /// completed (default), failed or cancelled.
    state: Option<String>,
    /// Seconds, or 30s, 15m, 24h, 7d; 0 for all; default: the configured retention age.
    older_than: Option<String>,
}

/// Removes finished jobs' records from Redis (the documents stay).
#[utoipa::path(delete, path = "/api/admin/queue/clean", tag = "admin", params(CleanQuery), security(("bearer" = [])),
    responses((status = 200, body = Cleaned), (status = 400, body = ErrorBody)))]
pub(crate) async fn clean(
    _: AdminUser,
    state: web::Data<AppState>,
    query: web::Query<CleanQuery>,
) -> Result<HttpResponse, AppError> {
    let removed = jobs::clean(&state, query.state.as_deref(), jobs::parse_age(query.older_than.as_deref())?).await?;
    Ok(HttpResponse::Ok().json(Cleaned { removed: removed.len(), job_ids: removed }))
}

/// Stops claiming: running jobs finish, waiting ones wait.
#[utoipa::path(post, path = "/api/admin/queue/pause", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Paused)))]
pub(crate) async fn pause(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state.queue.pause().await?;
    Ok(HttpResponse::Ok().json(Paused { paused: true }))
}

#[utoipa::path(post, path = "/api/admin/queue/resume", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Paused)))]
pub(crate) async fn resume(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state.queue.resume().await?;
    Ok(HttpResponse::Ok().json(Paused { paused: false }))
}

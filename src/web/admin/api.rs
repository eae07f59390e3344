//! The admin JSON API under `/api/admin` (role = admin; anyone else signed in: 403).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{jobs, overview};
use crate::auth::AdminUser;
use crate::error::AppError;
use crate::web::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/queue/status", web::get().to(status))
        .route("/queue/jobs", web::get().to(list_jobs))
        .route("/queue/jobs/{job_id}", web::get().to(job))
        .route("/queue/retry-failed", web::post().to(retry_failed))
        .route("/queue/retry/{job_id}", web::post().to(retry))
        .route("/queue/cancel/{job_id}", web::delete().to(cancel))
        .route("/queue/clean", web::delete().to(clean))
        .route("/queue/pause", web::post().to(pause))
        .route("/queue/resume", web::post().to(resume));
}

async fn status(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(overview::gather(&state.queue).await?))
}

async fn list_jobs(
    _: AdminUser,
    state: web::Data<AppState>,
    query: web::Query<jobs::JobSearch>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(jobs::search(&state, &query).await?))
}

async fn job(_: AdminUser, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(jobs::story(&state, &path).await?))
}

async fn retry(_: AdminUser, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (document, position) = jobs::retry(&state, &path).await?;
    Ok(HttpResponse::Ok().json(json!({ "document": document, "queue_position": position })))
}

async fn retry_failed(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(json!({ "retried": jobs::retry_all_failed(&state).await? })))
}

async fn cancel(_: AdminUser, state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(jobs::cancel(&state, &path).await?))
}

#[derive(Deserialize)]
struct CleanQuery {
    state: Option<String>,
    older_than: Option<String>,
}

async fn clean(
    _: AdminUser,
    state: web::Data<AppState>,
    query: web::Query<CleanQuery>,
) -> Result<HttpResponse, AppError> {
    let removed = jobs::clean(&state, query.state.as_deref(), jobs::parse_age(query.older_than.as_deref())?).await?;
    Ok(HttpResponse::Ok().json(json!({ "removed": removed.len(), "job_ids": removed })))
}

async fn pause(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state.queue.pause().await?;
    Ok(HttpResponse::Ok().json(json!({ "paused": true })))
}

async fn resume(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state.queue.resume().await?;
    Ok(HttpResponse::Ok().json(json!({ "paused": false })))
}

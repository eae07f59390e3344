//! The admin API (`role = admin`): watch and steer the queue.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::auth::AdminUser;
use crate::error::AppError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/queue/status", web::get().to(queue_status))
        .route("/queue/pause", web::post().to(pause))
        .route("/queue/resume", web::post().to(resume));
}

async fn queue_status(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let counts = state.queue.counts().await?;
    let paused = state.queue.is_paused().await?;
    let totals = state.queue.stats().await?;
    Ok(HttpResponse::Ok().json(json!({ "counts": counts, "paused": paused, "totals": totals })))
}

async fn pause(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state.queue.pause().await?;
    Ok(HttpResponse::Ok().json(json!({ "paused": true })))
}

async fn resume(_: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state.queue.resume().await?;
    Ok(HttpResponse::Ok().json(json!({ "paused": false })))
}

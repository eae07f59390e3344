//! Liveness and readiness.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::coalesced::Coalesced;
use super::AppState;
use crate::error::ErrorDetail;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`
    status: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok`, or `unavailable` when a dependency does not answer.
    status: &'static str,
    checks: Checks,
    /// Present when not ready: which dependency failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Checks {
    database: &'static str,
    redis: &'static str,
}

/// Whether the database and Redis answered. `/readyz` needs no token, and each check
/// takes a connection from pools the workers share, so checks are coalesced.
pub type LatestReadiness = Coalesced<Answered>;

#[derive(Clone, Copy)]
pub struct Answered {
    database: bool,
    redis: bool,
}

/// The process is alive and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The database and Redis both answer; otherwise 503 naming the one that failed.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, description = "Not ready", body = Readiness)))]
pub async fn readyz(state: web::Data<AppState>, latest: web::Data<LatestReadiness>) -> HttpResponse {
    let Answered { database, redis } = latest
        .fresh(|| async {
            let (db, redis) = tokio::join!(state.db.ping(), state.queue.ping());
            Answered { database: db.is_ok(), redis: redis.is_ok() }
        })
        .await;
    let status = |ok: bool| if ok { "ok" } else { "unavailable" };
    let checks = Checks { database: status(database), redis: status(redis) };
    if database && redis {
        return HttpResponse::Ok().json(Readiness { status: "ok", checks, error: None });
    }
    let failed: Vec<&str> = [("database", !database), ("redis", !redis)]
        .into_iter()
        .filter_map(|(name, failed)| failed.then_some(name))
        .collect();
    let error = ErrorDetail {
        code: "service_unavailable",
        message: format!("not ready: {} unavailable", failed.join(" and ")),
    };
    HttpResponse::ServiceUnavailable().json(Readiness { status: "unavailable", checks, error: Some(error) })
}

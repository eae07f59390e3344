//! Liveness and readiness.

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use super::AppState;

/// The process is alive and serving HTTP.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database and Redis both answer; otherwise 503 naming the one that failed.
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (db, redis) = tokio::join!(state.db.ping(), state.queue.ping());
    let status = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({
        "status": status(db.is_ok() && redis.is_ok()),
        "checks": { "database": status(db.is_ok()), "redis": status(redis.is_ok()) },
    });
    if db.is_ok() && redis.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        let failed: Vec<&str> = [("database", db.is_err()), ("redis", redis.is_err())]
            .into_iter()
            .filter_map(|(name, failed)| failed.then_some(name))
            .collect();
        let mut body = body;
        body["error"] = json!({
            "code": "service_unavailable",
            "message": format!("not ready: {} unavailable", failed.join(" and ")),
        });
        HttpResponse::ServiceUnavailable().json(body)
    }
}

//! HTTP: routes, shared state, and the JSON shape of errors.

mod access_log;
pub mod admin;
pub mod documents;
pub mod health;
pub mod metrics;
mod multipart_headers;
pub mod openapi;
pub mod search;
pub mod upload;
mod upload_slots;
pub mod ws;

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::http::{header, Method};
use actix_web::web;

use crate::config::Config;
use crate::db::Db;
use crate::error::{json_error_handler, AppError};
use crate::processing::embed::Embedder;
use crate::processing::Processor;
use crate::progress::Publisher;
use crate::queue::Queue;
use crate::storage::Storage;

pub use access_log::logger as access_logger;
pub use upload_slots::UploadSlots;

/// Shared by every request handler.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub queue: Queue,
    pub storage: Storage,
    pub events: Publisher,
    /// Embeds search queries the way documents were embedded.
    pub embedder: Arc<dyn Embedder>,
    /// Used only in `processing.mode = "inline"`.
    pub processor: Arc<dyn Processor>,
    /// Uploads being received, for the per-user and per-process caps.
    pub uploads: Arc<UploadSlots>,
    /// Searches running at once in this process (`server.max_concurrent_searches`).
    pub searches: Arc<tokio::sync::Semaphore>,
}

/// CORS for the API scopes: the configured origins may call them from a browser, with
/// their bearer token in `Authorization`; any other origin gets no CORS header (its
/// browser then refuses the answer), and no origin gets credentials (cookies), which
/// the API never uses. Preflights are answered here, before authentication. No header
/// is exposed: actix-cors would name them to every origin, and errors say all in their
/// JSON bodies.
fn cors(allowed_origins: &[String]) -> Cors {
    allowed_origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(600)
}

/// The routes; `cors_allowed_origins` is `server.cors_allowed_origins`.
pub fn routes(cfg: &mut web::ServiceConfig, cors_allowed_origins: &[String]) {
    cfg.app_data(web::JsonConfig::default().error_handler(|e, _| json_error_handler(e)))
        .app_data(web::QueryConfig::default().error_handler(|e, _| json_error_handler(e)))
        .app_data(web::PathConfig::default().error_handler(|e, _| json_error_handler(e)))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/api/openapi.json", web::get().to(openapi::serve))
        .route("/ws", web::get().to(ws::connect))
        .route("/metrics", web::get().to(metrics::metrics))
        .service(
            web::scope("/api/documents")
                .wrap(cors(cors_allowed_origins))
                .route("", web::get().to(documents::list))
                .route("/upload", web::post().to(upload::upload))
                .route("/processing-status", web::get().to(documents::processing_status))
                .route("/search", web::get().to(search::search))
                .route("/{id}/chunks", web::get().to(search::list_chunks))
                .route("/cancel/{id}", web::delete().to(documents::cancel))
                .route("/{id}", web::get().to(documents::get_one))
                .route("/{id}", web::delete().to(documents::delete)),
        )
        .service(web::scope("/api/ws-ticket").wrap(cors(cors_allowed_origins)).route("", web::post().to(ws::ticket)))
        .service(web::scope("/api/admin").wrap(cors(cors_allowed_origins)).configure(admin::api::routes))
        .service(web::scope("/admin").configure(admin::dashboard::routes))
        .default_service(web::to(|| async { Err::<String, _>(AppError::NotFound("no such route".into())) }));
}

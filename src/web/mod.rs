//! HTTP: routes, shared state, and the JSON shape of errors.

mod access_log;
pub mod admin;
mod body_pace;
mod coalesced;
mod cors;
pub mod documents;
pub mod health;
pub mod metrics;
mod multipart_headers;
pub mod openapi;
pub mod search;
mod send_timeout;
mod slots;
pub mod upload;
pub mod ws;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use actix_web::{web, FromRequest, Handler, HttpResponse, Resource, Responder, Route};
use futures_util::StreamExt;

use crate::config::Config;
use crate::db::Db;
use crate::error::{json_error_handler, AppError};
use crate::processing::embed::Embedder;
use crate::processing::Processor;
use crate::progress::Publisher;
use crate::queue::Queue;
use crate::storage::Storage;

pub use access_log::logger as access_logger;
pub use send_timeout::limit_unacknowledged_sends;
pub use slots::Slots;

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
    pub uploads: Arc<Slots>,
    /// Searches of each user at work, for the per-user share of
    /// `server.max_concurrent_searches` (see `search::search`).
    pub searchers: Arc<Slots>,
    /// Open WebSockets, for `server.ws_max_sockets_per_user`.
    pub sockets: Arc<Slots>,
    /// Searches running at once in this process (`server.max_concurrent_searches`).
    pub searches: Arc<tokio::sync::Semaphore>,
}

/// The routes; `cors_allowed_origins` is `server.cors_allowed_origins`.
pub fn routes(cfg: &mut web::ServiceConfig, cors_allowed_origins: &[String]) {
    cfg.app_data(web::JsonConfig::default().error_handler(|e, _| json_error_handler(e)))
        .app_data(web::QueryConfig::default().error_handler(|e, _| json_error_handler(e)))
        .app_data(web::PathConfig::default().error_handler(|e, _| json_error_handler(e)))
        .service(serve("/healthz", [get(health::healthz)]))
        .service(serve("/readyz", [get(health::readyz)]))
        .service(serve("/api/openapi.json", [get(openapi::serve)]))
        .service(serve("/ws", [get(ws::connect)]))
        .service(serve("/metrics", [get(metrics::metrics)]))
        .service(
            web::scope("/api/documents")
                .wrap(cors::layer(cors_allowed_origins))
                .wrap(actix_web::middleware::from_fn(cors::refusal_as_json))
                .service(serve("", [get(documents::list)]))
                .service(serve("/upload", [post(upload::upload)]))
                .service(serve("/processing-status", [get(documents::processing_status)]))
                .service(serve("/search", [get(search::search)]))
                .service(serve("/{id}/chunks", [get(search::list_chunks)]))
                .service(serve("/cancel/{id}", [delete(documents::cancel)]))
                .service(serve("/{id}", [get(documents::get_one), delete(documents::delete)])),
        )
        .service(
            web::scope("/api/ws-ticket")
                .wrap(cors::layer(cors_allowed_origins))
                .wrap(actix_web::middleware::from_fn(cors::refusal_as_json))
                .service(serve("", [post(ws::ticket)])),
        )
        .service(
            web::scope("/api/admin")
                .wrap(cors::layer(cors_allowed_origins))
                .wrap(actix_web::middleware::from_fn(cors::refusal_as_json))
                .configure(admin::api::routes),
        )
        .service(
            web::scope("/admin")
                .wrap(actix_web::middleware::from_fn(dashboard_body_in_time))
                .configure(admin::dashboard::routes),
        )
        .default_service(web::to(|| async { Err::<String, _>(AppError::NotFound("no such route".into())) }));
}

/// A route for `serve`: `handler` answers GET.
pub(crate) fn get<F, Args>(handler: F) -> (Method, Route)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    (Method::GET, web::to(handler))
}

/// A route for `serve`: `handler` answers POST.
pub(crate) fn post<F, Args>(handler: F) -> (Method, Route)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    (Method::POST, web::to(handler))
}

/// A route for `serve`: `handler` answers DELETE.
pub(crate) fn delete<F, Args>(handler: F) -> (Method, Route)
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    (Method::DELETE, web::to(handler))
}

/// The resource at `path`, serving each of `routes` for its method. Any other method
/// gets 405 with an `Allow` header and the JSON error body, where a route of its own
/// per method would let the request fall through to the catch-all 404.
pub(crate) fn serve<const N: usize>(path: &str, routes: [(Method, Route); N]) -> Resource {
    let allowed = routes.iter().map(|(method, _)| method.as_str()).collect::<Vec<_>>().join(", ");
    routes
        .into_iter()
        .fold(web::resource(path), |resource, (method, route)| resource.route(route.method(method)))
        .default_service(web::to(move || {
            let allowed = allowed.clone();
            async move { Err::<HttpResponse, _>(AppError::MethodNotAllowed(allowed)) }
        }))
}

/// Whether text from a request can be compared with stored text at all. PostgreSQL
/// refuses a NUL byte in any text parameter (the query fails: a 500), and no id,
/// cursor or name docqueue stores holds one; a caller answers "no such …" instead.
pub(crate) fn comparable_with_stored(text: &str) -> bool {
    !text.contains('\0')
}

/// A dashboard form, at most: its fields are a token, a CSRF token and a few choices.
const MAX_DASHBOARD_FORM_BYTES: usize = 16 * 1024;

/// Reads a dashboard request's body within `server.body_timeout_secs` (408 past it),
/// then hands the request on with the body in hand. The dashboard reads its forms
/// before it checks the session, and a form trickled a byte at a time would otherwise
/// hold its connection for as long as the client liked: the idle timeout of uploads
/// restarts with every byte. The handler's own work (a retry of thousands of jobs) has
/// no deadline, so it is never cut off half done.
async fn dashboard_body_in_time(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let seconds = request.app_data::<web::Data<AppState>>().map_or(30, |state| state.config.server.body_timeout_secs);
    let mut payload = request.take_payload();
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            body.extend_from_slice(&chunk?);
            if body.len() > MAX_DASHBOARD_FORM_BYTES {
                return Err(AppError::BadRequest("the form is larger than 16 KiB".into()).into());
            }
        }
        Ok::<_, actix_web::Error>(body.freeze())
    };
    let body = tokio::time::timeout(std::time::Duration::from_secs(seconds), read).await.map_err(|_| {
        AppError::RequestTimeout(format!(
            "the request body was not complete within {seconds} s (server.body_timeout_secs)"
        ))
    })??;
    request.set_payload(actix_web::dev::Payload::from(body));
    next.call(request).await
}

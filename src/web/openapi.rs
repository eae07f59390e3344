//! The OpenAPI 3.1 description of the HTTP API, generated from the handlers and the
//! types they answer with (utoipa). Served at `/api/openapi.json`; a copy is kept in
//! docs/openapi.json, and tests/openapi.rs keeps the two equal. The WebSocket's frames
//! cannot be operations, so they are schemas: Snapshot, Event, ControlFrame (server to
//! client) and ClientFrame (client to server).

use std::collections::btree_map::Entry;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::admin::api as admin;
use super::admin::dashboard;
use super::{documents, health, metrics, search, upload, ws};
use crate::progress::event::Event;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "docqueue",
        description = "Non-blocking document processing for chat apps: upload, queue, process, follow progress."
    ),
    paths(
        documents::list,
        upload::upload,
        documents::processing_status,
        documents::get_one,
        documents::delete,
        documents::cancel,
        search::search,
        search::list_chunks,
        ws::connect,
        ws::ticket,
        admin::status,
        admin::list_jobs,
        admin::job,
        admin::retry,
        admin::retry_failed,
        admin::cancel,
        admin::clean,
        admin::pause,
        admin::resume,
        health::healthz,
        health::readyz,
        metrics::metrics,
        serve,
        dashboard::show_overview,
    ),
    components(schemas(Event, ws::ClientFrame, ws::ControlFrame)),
    modifiers(&BearerAuth),
    tags(
        (name = "documents", description = "The caller's documents: upload, list, read, cancel, delete"),
        (name = "search", description = "Using the result: chunks and semantic search"),
        (name = "progress", description = "Progress over WebSocket"),
        (name = "admin", description = "Watching and steering the queue (admin role)"),
        (name = "health", description = "Liveness, readiness, metrics and this description"),
    )
)]
pub struct ApiDoc;

/// Bearer JWTs (HS256), as `docqueue token` issues them. Every operation that takes
/// one can also answer 401 (no valid token) and 429 (the caller is over its request
/// pace), whatever else it answers: both are added here, once.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten().filter(|o| o.security.is_some()) {
                let responses = &mut operation.responses.responses;
                responses.entry("401".into()).or_insert_with(|| error_response("No valid bearer token").into());
                match responses.entry("429".into()) {
                    Entry::Vacant(entry) => {
                        entry.insert(error_response(PACED).into());
                    }
                    Entry::Occupied(mut entry) => {
                        if let RefOr::T(response) = entry.get_mut() {
                            response.description = format!("{}. Or: {PACED}", response.description);
                        }
                    }
                }
            }
        }
    }
}

/// The 429 of every operation that takes a bearer token.
const PACED: &str = "The caller sent more than server.requests_per_sec_per_user requests a second (beyond its \
                     burst; a snapshot counts as 10); Retry-After says when to try again";

/// A response with the API's JSON error body.
fn error_response(description: &str) -> Response {
    let body = Content::new(Some(Ref::from_schema_name("ErrorBody")));
    ResponseBuilder::new().description(description).content("application/json", body).build()
}

/// The description as pretty JSON (what `/api/openapi.json` serves).
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// This description.
#[utoipa::path(get, path = "/api/openapi.json", tag = "health", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 description of every route", content_type = "application/json")))]
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}

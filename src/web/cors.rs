//! CORS for the API scopes (`server.cors_allowed_origins`): actix-cors's layer, and the
//! API's JSON error body on the preflights it refuses.

use actix_cors::{Cors, CorsError};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::AppError;

/// CORS for the API scopes: the configured origins may call them from a browser, with
/// their bearer token in `Authorization`; any other origin gets no CORS header (its
/// browser then refuses the answer), and no origin gets credentials (cookies), which
/// the API never uses. Preflights are answered here, before authentication. No header
/// is exposed: actix-cors would name them to every origin, and errors say all in their
/// JSON bodies.
pub(super) fn layer(allowed_origins: &[String]) -> Cors {
    allowed_origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods([Method::GET, Method::POST, Method::DELETE])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(600)
}

/// actix-cors answers a refused preflight (an unlisted origin, method or header) itself,
/// in plain text; this gives that answer the API's JSON error body, status unchanged.
pub(super) async fn refusal_as_json(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let response = next.call(request).await?;
    let Some(refusal) = response.response().error().and_then(|err| err.as_error::<CorsError>()) else {
        return Ok(response.map_into_left_body());
    };
    let mut json = AppError::from(refusal).error_response();
    if let Some(vary) = response.headers().get(header::VARY) {
        json.headers_mut().insert(header::VARY, vary.clone());
    }
    let (request, _) = response.into_parts();
    Ok(ServiceResponse::new(request, json).map_into_right_body())
}

//! The one error type of the HTTP API, mapped once to a status and a JSON body:
//! `{"error": {"code": "…", "message": "…"}}`. Internal details (paths, SQL, Redis
//! replies) are logged, never sent.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A known path asked with a method it does not serve; holds the ones it does.
    #[error("this path answers {0} only")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("file exceeds the upload limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    /// A body that declares more bytes than any upload that could succeed.
    #[error(
        "the request body declares {declared} bytes; an upload has at most {limit} \
         (storage.max_files_per_upload files of storage.max_upload_bytes, and its form fields)"
    )]
    BodyTooLarge { declared: u64, limit: u64 },
    #[error("unsupported file type {detected}; accepted: PDF, DOCX, XLSX, PPTX, ODT, ODS, EPUB, HTML, Markdown, plain text, CSV, and PNG, JPEG, TIFF and WebP images")]
    UnsupportedMediaType { detected: String },
    /// The user's stored files would exceed `storage.max_bytes_per_user`.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// Too many requests at this moment: worth retrying shortly (sent with Retry-After).
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0} is unavailable")]
    Unavailable(String),
    /// Anything unexpected: the detail is logged, the client sees a generic message.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn internal(detail: impl std::fmt::Display) -> AppError {
        AppError::Internal(detail.to_string())
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge { .. } | AppError::BodyTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType { .. } => "unsupported_media_type",
            AppError::InsufficientStorage(_) => "insufficient_storage",
            AppError::TooManyRequests(_) | AppError::Busy(_) => "too_many_requests",
            AppError::RequestTimeout(_) => "request_timeout",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }
}

/// The JSON body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({ "error": { "code": "not_found", "message": "no such document" } }))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// bad_request, unauthorized, forbidden, not_found, method_not_allowed, conflict, payload_too_large,
    /// unsupported_media_type, too_many_requests, request_timeout,
    /// service_unavailable, internal_error.
    pub code: &'static str,
    /// For people: what went wrong and, where it helps, what to do.
    pub message: String,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge { .. } | AppError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::TooManyRequests(_) | AppError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(detail) = self {
            log::error!("internal error: {detail}");
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, AppError::Unauthorized(_)) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, AppError::Busy(_)) {
            response.insert_header(("Retry-After", "1"));
        }
        if let AppError::MethodNotAllowed(allowed) = self {
            response.insert_header((actix_web::http::header::ALLOW, allowed.as_str()));
        }
        response.json(ErrorBody { error: ErrorDetail { code: self.code(), message: self.to_string() } })
    }
}

/// A preflight actix-cors refused (an unlisted origin, method or header).
impl From<&actix_cors::CorsError> for AppError {
    fn from(err: &actix_cors::CorsError) -> AppError {
        AppError::BadRequest(format!("CORS: {err}"))
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(err: crate::db::DbError) -> AppError {
        match err {
            crate::db::DbError::Unavailable(detail) => {
                log::error!("database unavailable: {detail}");
                AppError::Unavailable("the database".into())
            }
            other => AppError::internal(other),
        }
    }
}

impl From<crate::queue::QueueError> for AppError {
    fn from(err: crate::queue::QueueError) -> AppError {
        use crate::queue::QueueError;
        log::error!("queue error: {err}");
        match err {
            // Every pooled connection is in use: Redis is up, this process is busy.
            QueueError::Pool(_) => {
                AppError::Unavailable("the job queue (every Redis connection is busy; try again shortly)".into())
            }
            QueueError::Unreachable(_) => AppError::Unavailable("the job queue (Redis cannot be reached)".into()),
            QueueError::Redis(e) if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() => {
                AppError::Unavailable("the job queue (Redis cannot be reached)".into())
            }
            _ => AppError::Unavailable("the job queue".into()),
        }
    }
}

impl From<crate::documents::CancelError> for AppError {
    fn from(err: crate::documents::CancelError) -> AppError {
        use crate::documents::CancelError;
        match err {
            CancelError::AlreadyFinished(_) => AppError::Conflict(err.to_string()),
            CancelError::Gone => AppError::NotFound("no such document".into()),
            CancelError::Db(err) => err.into(),
            CancelError::Queue(err) => err.into(),
        }
    }
}

/// Turns the framework's own extractor errors (bad JSON, bad query string, bad path)
/// into the same JSON body as every other error.
pub fn json_error_handler(err: impl std::fmt::Display) -> actix_web::Error {
    AppError::BadRequest(err.to_string()).into()
}

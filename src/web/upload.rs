//! `POST /api/documents/upload`: stream each `file` part to disk (hashing and
//! size-checking on the way, never holding a file in memory), sniff its type, then
//! create the rows and enqueue the jobs. All or nothing: one bad file fails the
//! request and nothing is kept.

use std::path::PathBuf;

use actix_multipart::{Field, Multipart};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::body_pace::BodyPace;
use super::multipart_headers::{self, PartHeaderSanitizer};
use super::AppState;
use crate::auth::AuthUser;
use crate::config::{ProcessingMode, StorageConfig};
use crate::db::documents::{self, OverLimit};
use crate::db::models::{now, Document, FileFacts};
use crate::error::{AppError, ErrorBody};
use crate::job_state::JobState;
use crate::queue::NewJob;
use crate::storage::{filename, sniff, Storage};
use crate::workers::inline::process_inline;

const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;
/// Parts other than files an upload may carry (`priority`, and fields a client adds):
/// each costs a round of parsing even when empty, so their number is bounded too.
const MAX_NON_FILE_PARTS: usize = 16;

/// Room for one part's delimiter and headers, a long filename included.
const PART_HEADER_BYTES: u64 = 64 * 1024;

/// The most bytes an upload that could succeed may have: every file at its limit, the
/// form fields' budget, and each part's delimiter and headers.
fn largest_possible_upload(limits: &StorageConfig) -> u64 {
    let files = limits.max_files_per_upload as u64;
    files.saturating_mul(limits.max_upload_bytes).saturating_add(largest_possible_rest(limits))
}

/// The most bytes of an upload that are not its files' contents: the form fields'
/// budget and every part's delimiter and headers.
fn largest_possible_rest(limits: &StorageConfig) -> u64 {
    let parts = limits.max_files_per_upload as u64 + MAX_NON_FILE_PARTS as u64 + 1;
    limits.max_form_field_bytes.saturating_add(parts.saturating_mul(PART_HEADER_BYTES))
}

/// A received file waiting for the request to succeed; removed from disk if dropped.
struct StagedFile {
    path: PathBuf,
    filename: String,
    content_type: &'static str,
    size_bytes: u64,
    sha256: String,
    kept: bool,
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct UploadedDocument {
    id: String,
    job_id: String,
    filename: String,
    content_type: String,
    size_bytes: i64,
    sha256: String,
    #[schema(schema_with = crate::job_state::document_status_schema)]
    queue_status: JobState,
    queue_position: Option<u64>,
}

/// The upload answer: the new documents, queued (202 before any processing).
#[derive(Serialize, utoipa::ToSchema)]
struct Uploaded {
    documents: Vec<UploadedDocument>,
    /// Always null: one page holds every uploaded document.
    next_cursor: Option<String>,
}

/// The upload form (`multipart/form-data`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // describes the form for the OpenAPI document; the handler streams it
struct UploadForm {
    /// One part per file, with its filename (PDF, DOCX, XLSX, PPTX, ODT, ODS, EPUB, HTML,
    /// Markdown, text, CSV; PNG, JPEG, TIFF, WebP read by OCR).
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
    /// -1000 to 1000; lower runs first among the caller's own documents (default 0).
    priority: Option<i32>,
}

#[utoipa::path(post, path = "/api/documents/upload", tag = "documents", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Stored and queued", body = Uploaded),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 408, description = "The body stalled", body = ErrorBody),
        (status = 413, description = "A file over storage.max_upload_bytes, or a Content-Length no upload may have (refused before the body is read)", body = ErrorBody),
        (status = 415, description = "Not a supported type", body = ErrorBody),
        (status = 429, description = "Too many unfinished documents or uploads at once", body = ErrorBody),
        (status = 507, description = "The user's stored files would pass storage.max_bytes_per_user", body = ErrorBody)))]
pub async fn upload(
    user: AuthUser,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
        .and_then(multipart_headers::boundary)
        .ok_or_else(|| AppError::BadRequest("expected a multipart/form-data body with a boundary".into()))?;
    let limits = &state.config.storage;
    // A body that cannot succeed is refused before a byte of it is read, as nginx's
    // client_max_body_size does: the client learns at once, not after sending it all.
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let limit = largest_possible_upload(limits);
    if let Some(declared) = declared.filter(|declared| *declared > limit) {
        return Err(AppError::BodyTooLarge { declared, limit });
    }
    let _slot = state
        .uploads
        .take(&user.id, limits.max_concurrent_uploads_per_user, limits.max_concurrent_uploads)
        .ok_or_else(|| AppError::Busy("too many uploads are being received at once; try again shortly".into()))?;
    // Refused before a byte is stored: one user cannot flood the queue without bound.
    let user_id = user.id.clone();
    let (unfinished, stored) = state
        .db
        .run(move |conn| {
            let unfinished = documents::count_unfinished_for_user(conn, &user_id)?;
            Ok((unfinished, documents::stored_bytes_for_user(conn, &user_id)?))
        })
        .await?;
    if unfinished >= limits.max_unfinished_per_user {
        return Err(AppError::TooManyRequests(format!(
            "you already have {unfinished} documents waiting or processing (at most {}); try again when some finish",
            limits.max_unfinished_per_user
        )));
    }
    if stored >= limits.max_bytes_per_user {
        return Err(over_storage(stored, 0, limits.max_bytes_per_user));
    }
    // Likewise a body whose files alone, the rest at its most, would pass the user's store.
    let files_at_least = declared.map(|declared| declared.saturating_sub(largest_possible_rest(limits)));
    if let Some(files_at_least) = files_at_least.map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX)) {
        if stored.saturating_add(files_at_least) > limits.max_bytes_per_user {
            return Err(over_storage(stored, files_at_least, limits.max_bytes_per_user));
        }
    }
    // The body's clock starts when it is first read, not while the server checks limits.
    let server = &state.config.server;
    let most = (server.max_body_secs > 0).then(|| std::time::Duration::from_secs(server.max_body_secs));
    let mut pace =
        BodyPace::new(std::time::Duration::from_secs(server.body_timeout_secs), server.min_body_bytes_per_sec, most);
    let mut payload = Multipart::new(request.headers(), PartHeaderSanitizer::new(body, &boundary));
    let mut staged: Vec<StagedFile> = Vec::new();
    let mut priority = 0;
    let mut form_bytes_left = limits.max_form_field_bytes;
    let mut other_parts = 0;
    while let Some(field) = pace.next(&mut payload).await? {
        let field = field.map_err(|e| AppError::BadRequest(format!("malformed multipart body: {e}")))?;
        if field.name() != Some("file") {
            // Empty parts take no bytes from the form's budget: they are counted here.
            other_parts += 1;
            if other_parts > MAX_NON_FILE_PARTS {
                return Err(AppError::BadRequest(format!(
                    "an upload has at most {MAX_NON_FILE_PARTS} parts besides its files"
                )));
            }
        }
        match field.name() {
            Some("file") => {
                if staged.len() >= limits.max_files_per_upload {
                    return Err(AppError::BadRequest(format!(
                        "at most {} files per upload",
                        limits.max_files_per_upload
                    )));
                }
                staged.push(receive_file(field, &state.storage, limits.max_upload_bytes, &mut pace).await?);
            }
            Some("priority") => priority = read_priority(field, &mut pace).await?,
            _ => drain(field, &mut form_bytes_left, &mut pace).await?,
        }
    }
    if staged.is_empty() {
        return Err(AppError::BadRequest("the request has no `file` part".into()));
    }
    if unfinished + staged.len() as i64 > limits.max_unfinished_per_user {
        return Err(AppError::TooManyRequests(format!(
            "these {} files would take you past {} documents waiting or processing",
            staged.len(),
            limits.max_unfinished_per_user
        )));
    }
    let uploading = staged.iter().map(|file| file.size_bytes as i64).sum::<i64>();
    if stored + uploading > limits.max_bytes_per_user {
        return Err(over_storage(stored, uploading, limits.max_bytes_per_user));
    }

    let created = now();
    let rows: Vec<Document> = staged
        .iter()
        .map(|file| {
            let id = ulid::Ulid::generate().to_string();
            let facts = FileFacts {
                filename: file.filename.clone(),
                content_type: file.content_type.to_string(),
                size_bytes: file.size_bytes as i64,
                sha256: file.sha256.clone(),
                storage_path: Storage::relative_path_for(&id),
            };
            Document::queued(id, &user.id, facts, priority, created)
        })
        .collect();
    for (n, (file, row)) in staged.iter().zip(&rows).enumerate() {
        if let Err(err) = state.storage.commit(&file.path, &row.storage_path).await {
            // All or nothing: the files already moved into place go too.
            for committed in &rows[..n] {
                let _ = state.storage.remove(&committed.storage_path).await;
            }
            return Err(AppError::internal(err));
        }
    }
    let inserted = {
        let (rows, user_id) = (rows.clone(), user.id.clone());
        let (max_unfinished, max_bytes) = (limits.max_unfinished_per_user, limits.max_bytes_per_user);
        state.db.run(move |conn| documents::insert_within_limit(conn, &user_id, &rows, max_unfinished, max_bytes)).await
    };
    let refusal = match inserted {
        Ok(Ok(())) => None,
        Ok(Err(OverLimit::Unfinished)) => Some(AppError::TooManyRequests(format!(
            "these {} files would take you past {} documents waiting or processing",
            staged.len(),
            limits.max_unfinished_per_user
        ))),
        Ok(Err(OverLimit::StoredBytes(stored))) => Some(over_storage(stored, uploading, limits.max_bytes_per_user)),
        Err(err) => Some(err.into()),
    };
    if let Some(refusal) = refusal {
        for row in &rows {
            let _ = state.storage.remove(&row.storage_path).await;
        }
        return Err(refusal);
    }
    for file in &mut staged {
        file.kept = true;
    }

    let positions = match state.config.processing.mode {
        ProcessingMode::Queue => enqueue(&state, &rows).await,
        ProcessingMode::Inline => {
            process_all_inline(&state, &rows).await?;
            vec![None; rows.len()]
        }
    };
    let mut uploaded = Vec::with_capacity(rows.len());
    for (row, position) in rows.into_iter().zip(positions) {
        let status = match state.config.processing.mode {
            ProcessingMode::Queue => row.queue_status,
            ProcessingMode::Inline => {
                let id = row.id.clone();
                state
                    .db
                    .run(move |conn| documents::find(conn, &id))
                    .await?
                    .map(|d| d.queue_status)
                    .unwrap_or(row.queue_status)
            }
        };
        uploaded.push(UploadedDocument {
            id: row.id,
            job_id: row.job_id,
            filename: row.filename,
            content_type: row.content_type,
            size_bytes: row.size_bytes,
            sha256: row.sha256,
            queue_status: status,
            queue_position: position,
        });
    }
    Ok(HttpResponse::Accepted().json(Uploaded { documents: uploaded, next_cursor: None }))
}

/// The refusal of an upload of `uploading` bytes past `storage.max_bytes_per_user`,
/// the user's documents taking `stored` bytes.
fn over_storage(stored: i64, uploading: i64, max: i64) -> AppError {
    AppError::InsufficientStorage(format!(
        "your documents take {stored} bytes of the {max} you may store (storage.max_bytes_per_user), \
         and this upload brings at least {uploading} more; delete some to upload more"
    ))
}

/// Enqueues the new documents, announces them, then wakes idle workers, so that no
/// worker reports on a document before its `document.queued`. If Redis is unreachable
/// the upload still succeeds: the rows stay `queued` and the reconciler enqueues them
/// when Redis is back.
async fn enqueue(state: &AppState, rows: &[Document]) -> Vec<Option<u64>> {
    let jobs: Vec<NewJob> = rows.iter().map(NewJob::for_document).collect();
    match state.queue.enqueue_before_announcing(&jobs).await {
        Ok(positions) => {
            state.events.announce_enqueued(&jobs, &positions).await;
            positions
        }
        Err(err) => {
            log::warn!("enqueue failed, documents kept queued for the reconciler: {err}");
            vec![None; rows.len()]
        }
    }
}

async fn process_all_inline(state: &AppState, rows: &[Document]) -> Result<(), AppError> {
    for row in rows {
        process_inline(&state.db, &state.processor, row.clone()).await?;
    }
    Ok(())
}

/// Streams one file part to a staging file, hashing it and enforcing the size limit
/// as the bytes arrive. The staging file goes if anything fails, a stall included.
async fn receive_file(
    mut field: Field,
    storage: &Storage,
    limit: u64,
    pace: &mut BodyPace,
) -> Result<StagedFile, AppError> {
    let raw_name = field.content_disposition().and_then(|cd| cd.get_filename()).unwrap_or_default().to_string();
    let mut staged = StagedFile {
        path: storage.staging_path(),
        filename: filename::sanitize(&raw_name),
        content_type: sniff::TEXT,
        size_bytes: 0,
        sha256: String::new(),
        kept: false,
    };
    let file = tokio::fs::File::create(&staged.path).await.map_err(AppError::internal)?;
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut hasher = Sha256::new();
    let mut head: Vec<u8> = Vec::with_capacity(sniff::HEAD_BYTES);
    while let Some(chunk) = pace.next(&mut field).await? {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("upload interrupted: {e}")))?;
        pace.count(chunk.len());
        staged.size_bytes += chunk.len() as u64;
        if staged.size_bytes > limit {
            return Err(AppError::PayloadTooLarge { limit });
        }
        if head.len() < sniff::HEAD_BYTES {
            let take = (sniff::HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(AppError::internal)?;
    }
    out.flush().await.map_err(AppError::internal)?;
    staged.sha256 = hex::encode(hasher.finalize());
    staged.content_type =
        sniff::sniff(&head, &staged.filename).map_err(|detected| AppError::UnsupportedMediaType { detected })?;
    Ok(staged)
}

async fn read_priority(mut field: Field, pace: &mut BodyPace) -> Result<i32, AppError> {
    let mut text = Vec::new();
    while let Some(chunk) = pace.next(&mut field).await? {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("malformed multipart body: {e}")))?;
        pace.count(chunk.len());
        if text.len() + chunk.len() > 32 {
            return Err(AppError::BadRequest("`priority` must be an integer".into()));
        }
        text.extend_from_slice(&chunk);
    }
    let priority: i32 = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| AppError::BadRequest("`priority` must be an integer".into()))?;
    if !PRIORITY_RANGE.contains(&priority) {
        return Err(AppError::BadRequest(format!(
            "`priority` must be between {} and {}",
            PRIORITY_RANGE.start(),
            PRIORITY_RANGE.end()
        )));
    }
    Ok(priority)
}

/// Reads and discards a part the API does not know, counting it against the bytes
/// all non-file parts may take (`storage.max_form_field_bytes`).
async fn drain(mut field: Field, bytes_left: &mut u64, pace: &mut BodyPace) -> Result<(), AppError> {
    while let Some(chunk) = pace.next(&mut field).await? {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("malformed multipart body: {e}")))?;
        pace.count(chunk.len());
        *bytes_left = bytes_left.checked_sub(chunk.len() as u64).ok_or_else(|| {
            AppError::BadRequest("the non-file parts of the upload exceed storage.max_form_field_bytes".into())
        })?;
    }
    Ok(())
}

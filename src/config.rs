//! Configuration: `config/default.toml`, then `config/local.toml`, then the environment.
//!
//! Every key can be set as `DOCQUEUE_<SECTION>__<KEY>`; the names operators already
//! use (`DATABASE_URL`, `REDIS_URL`, `REDIS_HOST`, `REDIS_PORT`,
//! `DOC_WORKER_CONCURRENCY`, `QUEUE_MAX_RETRIES`) keep working.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The defaults, compiled in so the binary runs from any directory; `config/default.toml`
/// documents the same values for people.
const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub redis: RedisConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub document_queue: QueueConfig,
    pub processing: ProcessingConfig,
    pub embedding: EmbeddingConfig,
    pub progress: ProgressConfig,
    pub auth: AuthConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub ws_frames_per_sec: u32,
    pub ws_frame_burst: u32,
    pub ws_ping_interval_ms: u64,
    pub ws_silence_limit_ms: u64,
    /// Events that may wait for one WebSocket session beyond what its socket holds.
    pub ws_max_pending_events: usize,
    /// WebSockets one user may have open in this process.
    pub ws_max_sockets_per_user: usize,
    /// How long data the server sent may stay unacknowledged, a client's receive window
    /// shut included, before the connection is dropped (0: the kernel's default).
    pub send_timeout_ms: u64,
    /// Requests one signed-in user may send a second to this process (0: no limit),
    /// and how many may come at once before the pace holds.
    pub requests_per_sec_per_user: u32,
    pub request_burst_per_user: u32,
    pub body_timeout_secs: u64,
    /// An upload's body may take `body_timeout_secs` plus a second per this many bytes,
    /// and at most `max_body_secs` (0: no ceiling).
    pub min_body_bytes_per_sec: u64,
    pub max_body_secs: u64,
    pub max_concurrent_searches: usize,
    /// Origins (`scheme://host[:port]`) whose pages may call the API from a browser.
    pub cors_allowed_origins: Vec<String>,
}

/// The turns of `requests_per_sec_per_user` a snapshot takes (`GET
/// /api/documents/processing-status`, a WebSocket `subscribe`): one of a user with 1,000
/// documents waiting costs about as much CPU as fifty plain requests; ten keeps a client
/// polling twenty times a second going under the default pace.
pub const SNAPSHOT_TURNS: u32 = 10;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    pub host: String,
    pub port: u16,
    /// `url` names nodes of a Redis Cluster (comma-separated).
    pub cluster: bool,
    pub prefix: String,
    pub pool_size: u32,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    pub pool_size: u32,
    pub sqlite_busy_timeout_ms: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub root: PathBuf,
    pub max_upload_bytes: u64,
    pub max_files_per_upload: usize,
    pub max_unfinished_per_user: i64,
    /// The bytes one user's stored files may take, whatever their documents' status.
    pub max_bytes_per_user: i64,
    pub max_form_field_bytes: u64,
    pub max_concurrent_uploads_per_user: usize,
    pub max_concurrent_uploads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    pub concurrency: usize,
    pub max_jobs_per_worker: u32,
    pub retry_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub lease_ms: u64,
    pub heartbeat_ms: u64,
    pub max_stalls: u32,
    pub process_liveness_ms: u64,
    pub maintenance_interval_ms: u64,
    pub reconcile_interval_secs: u64,
    pub retention_interval_secs: u64,
    pub retention_completed_count: u64,
    pub retention_completed_age_secs: u64,
    pub retention_failed_count: u64,
    pub retention_failed_age_secs: u64,
    pub job_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessingMode {
    Queue,
    Inline,
}

/// Whose completed documents an upload of the same bytes may copy its chunks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupScope {
    /// Only the uploader's own (the default: one user's upload never reveals what
    /// another has uploaded, not even through its speed).
    User,
    /// Anyone's: an operator's choice for a deployment whose users share their
    /// documents anyway. The chunks are copied all the same, never shared.
    Global,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessingConfig {
    pub mode: ProcessingMode,
    pub dedup_scope: DedupScope,
    pub chunk_size: usize,
    pub chunk_overlap: usize,
    pub max_pages: u32,
    pub max_chars: usize,
    pub max_seconds: u64,
    pub max_docx_uncompressed_bytes: u64,
    pub max_docx_entries: usize,
    pub max_html_depth: usize,
    pub pdftotext: String,
    pub pdftext_helper: String,
    pub max_memory_mb: u64,
    pub max_cpu_seconds: u64,
    pub max_open_files: u64,
    pub extractor_program: String,
    pub extractor_spares: usize,
    pub max_documents_per_extractor: u32,
    pub ocr: OcrConfig,
}

/// `[processing.ocr]`: Tesseract for pages and images without a text layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcrConfig {
    /// None (the default): on when `tesseract` is found at start-up.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The tesseract executable: a name looked up on PATH, or a path.
    pub tesseract: String,
    /// Poppler's pdftoppm, which rasterises PDF pages for OCR.
    pub pdftoppm: String,
    /// Tesseract's language list, as its `-l` takes it: "eng", "eng+deu".
    pub languages: String,
    /// Tesseract's data directory; empty means the one it was built with.
    #[serde(default)]
    pub tessdata_dir: String,
    pub dpi: u32,
    pub max_pages_ocr: u32,
    pub page_timeout_secs: u64,
    pub max_image_pixels: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingProvider {
    Hash,
    Openai,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    pub provider: EmbeddingProvider,
    pub dimensions: usize,
    pub base_url: String,
    pub model: String,
    pub api_key: String,
    pub batch_size: usize,
    pub concurrent_requests: usize,
    pub timeout_secs: u64,
    pub max_retries: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressConfig {
    pub max_events_per_sec: u32,
    pub stream_max_len: usize,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub jwt_secret: String,
    pub dev_mode: bool,
}

/// Secrets stay out of logs: these sections print with their secrets masked.
macro_rules! debug_masking {
    ($ty:ident { $($field:ident),* } masks { $($secret:ident),* }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))*
                    $(.field(stringify!($secret), &mask(&self.$secret)))*
                    .finish()
            }
        }
    };
}

fn mask(secret: &str) -> &'static str {
    if secret.is_empty() {
        ""
    } else {
        "***"
    }
}

debug_masking!(AuthConfig { dev_mode } masks { jwt_secret });
debug_masking!(EmbeddingConfig { provider, dimensions, base_url, model, batch_size, concurrent_requests, timeout_secs, max_retries } masks { api_key });
debug_masking!(RedisConfig { host, port, cluster, prefix, pool_size } masks { url });
debug_masking!(DatabaseConfig { pool_size, sqlite_busy_timeout_ms } masks { url });

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
}

/// Environment names that predate the `DOCQUEUE_` scheme, and the keys they set.
const LEGACY_ENV: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("REDIS_URL", "redis.url"),
    ("REDIS_HOST", "redis.host"),
    ("REDIS_PORT", "redis.port"),
    ("DOC_WORKER_CONCURRENCY", "document_queue.concurrency"),
    ("QUEUE_MAX_RETRIES", "document_queue.retry_attempts"),
];

/// Environment variables read as plain strings, never parsed, and the keys they set.
const RAW_STRING_ENV: &[(&str, &str)] =
    &[("DOCQUEUE_AUTH__JWT_SECRET", "auth.jwt_secret"), ("DOCQUEUE_EMBEDDING__API_KEY", "embedding.api_key")];

impl Config {
    /// Loads the layered configuration. `file` replaces `config/local.toml` when given.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new().merge(Toml::string(DEFAULT_TOML)).merge(Toml::file("config/default.toml"));
        figment = match file {
            Some(path) => figment.merge(Toml::file_exact(path)),
            None => figment.merge(Toml::file("config/local.toml")),
        };
        let legacy = Env::raw().only(&LEGACY_ENV.iter().map(|(env, _)| *env).collect::<Vec<_>>()).map(|env| {
            let key = LEGACY_ENV
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(env.as_str()))
                .map(|(_, key)| *key)
                .unwrap_or_default();
            key.into()
        });
        figment = figment.merge(legacy).merge(Env::prefixed("DOCQUEUE_").split("__"));
        // Secrets are taken as written: parsed as values, "0123…" would become a number.
        for (env, key) in RAW_STRING_ENV {
            if let Ok(value) = std::env::var(env) {
                figment = figment.merge(Serialized::default(key, value));
            }
        }
        Self::from_figment(figment)
    }

    /// Builds a configuration from defaults plus explicit overrides (tests, tools).
    pub fn from_overrides<T: Serialize>(overrides: T) -> Result<Config, ConfigError> {
        let figment = Figment::new().merge(Toml::string(DEFAULT_TOML)).merge(Serialized::defaults(overrides));
        Self::from_figment(figment)
    }

    fn from_figment(figment: Figment) -> Result<Config, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, problem: &str) -> Result<(), ConfigError> {
            Err(ConfigError::Invalid { key, problem: problem.to_string() })
        }
        let q = &self.document_queue;
        if q.concurrency == 0 {
            return invalid("document_queue.concurrency", "must be at least 1");
        }
        if q.max_jobs_per_worker == 0 {
            return invalid("document_queue.max_jobs_per_worker", "must be at least 1");
        }
        if q.heartbeat_ms == 0 || q.heartbeat_ms >= q.lease_ms {
            return invalid("document_queue.heartbeat_ms", "must be above 0 and below lease_ms");
        }
        if q.process_liveness_ms < 300 {
            return invalid("document_queue.process_liveness_ms", "must be at least 300");
        }
        if q.maintenance_interval_ms == 0 {
            return invalid("document_queue.maintenance_interval_ms", "must be above 0");
        }
        if self.redis.prefix.is_empty() {
            return invalid("redis.prefix", "must not be empty");
        }
        if self.redis.cluster && !has_hash_tag(&self.redis.prefix) {
            return invalid(
                "redis.prefix",
                "needs a hash tag on a Redis Cluster, as in \"{docq}:\", so that every key is in one slot",
            );
        }
        if !self.redis.cluster && self.redis.node_urls().len() > 1 {
            return invalid("redis.url", "lists several nodes: set redis.cluster = true for a Redis Cluster");
        }
        if self.redis.pool_size == 0 {
            return invalid("redis.pool_size", "must be at least 1");
        }
        if self.database.url.trim().is_empty() {
            return invalid("database.url", "must not be empty");
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1");
        }
        if self.server.max_concurrent_searches == 0 {
            return invalid("server.max_concurrent_searches", "must be at least 1");
        }
        if self.server.requests_per_sec_per_user > 0 && self.server.request_burst_per_user < SNAPSHOT_TURNS {
            return invalid(
                "server.request_burst_per_user",
                &format!("must be at least {SNAPSHOT_TURNS} (what a snapshot takes) while the pace is on"),
            );
        }
        if self.server.ws_ping_interval_ms == 0 {
            return invalid("server.ws_ping_interval_ms", "must be above 0");
        }
        if self.server.ws_max_pending_events == 0 {
            return invalid("server.ws_max_pending_events", "must be at least 1");
        }
        if self.server.ws_max_sockets_per_user == 0 {
            return invalid("server.ws_max_sockets_per_user", "must be at least 1");
        }
        // Below a second, a lost packet's retransmissions would drop healthy connections.
        let send_timeout = self.server.send_timeout_ms;
        if send_timeout != 0 && !(1000..=i32::MAX as u64).contains(&send_timeout) {
            return invalid(
                "server.send_timeout_ms",
                &format!("must be 0 (the kernel's default) or 1000 to {}", i32::MAX),
            );
        }
        // Silence is judged at each ping: a limit within one interval drops clients that answer.
        if self.server.ws_silence_limit_ms <= self.server.ws_ping_interval_ms {
            return invalid("server.ws_silence_limit_ms", "must be above ws_ping_interval_ms");
        }
        for origin in &self.server.cors_allowed_origins {
            if !is_origin(origin) {
                return invalid(
                    "server.cors_allowed_origins",
                    &format!("{origin:?} is not an origin: write scheme://host[:port], no path and no trailing slash"),
                );
            }
        }
        if self.server.body_timeout_secs == 0 {
            return invalid("server.body_timeout_secs", "must be above 0");
        }
        if self.storage.max_bytes_per_user < 1 {
            return invalid("storage.max_bytes_per_user", "must be at least 1");
        }
        if self.storage.max_concurrent_uploads_per_user == 0 || self.storage.max_concurrent_uploads == 0 {
            return invalid("storage.max_concurrent_uploads", "must be at least 1 (per user and in all)");
        }
        if self.storage.max_upload_bytes == 0 {
            return invalid("storage.max_upload_bytes", "must be above 0");
        }
        if self.processing.chunk_size == 0 {
            return invalid("processing.chunk_size", "must be above 0");
        }
        if self.processing.chunk_overlap >= self.processing.chunk_size {
            return invalid("processing.chunk_overlap", "must be smaller than chunk_size");
        }
        // Below this the extractor cannot even map its own executable.
        if self.processing.max_memory_mb < 128 {
            return invalid("processing.max_memory_mb", "must be at least 128");
        }
        if self.processing.max_cpu_seconds == 0 {
            return invalid("processing.max_cpu_seconds", "must be above 0");
        }
        if self.processing.max_seconds == 0 {
            return invalid("processing.max_seconds", "must be above 0");
        }
        if self.processing.max_documents_per_extractor == 0 {
            return invalid("processing.max_documents_per_extractor", "must be at least 1");
        }
        if self.processing.max_open_files < 8 {
            return invalid("processing.max_open_files", "must be at least 8");
        }
        let ocr = &self.processing.ocr;
        // Below 70 DPI Tesseract recognises next to nothing; above 1200 a page's raster
        // outgrows the extractor's memory.
        if !(70..=1200).contains(&ocr.dpi) {
            return invalid("processing.ocr.dpi", "must be between 70 and 1200");
        }
        if ocr.page_timeout_secs == 0 {
            return invalid("processing.ocr.page_timeout_secs", "must be above 0");
        }
        if ocr.max_image_pixels == 0 {
            return invalid("processing.ocr.max_image_pixels", "must be above 0");
        }
        let language_list = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-');
        if ocr.languages.is_empty() || !ocr.languages.chars().all(language_list) {
            return invalid("processing.ocr.languages", "must be Tesseract language codes joined by +, like eng+deu");
        }
        if self.embedding.dimensions == 0 {
            return invalid("embedding.dimensions", "must be above 0");
        }
        if self.embedding.batch_size == 0 {
            return invalid("embedding.batch_size", "must be above 0");
        }
        if self.embedding.concurrent_requests == 0 {
            return invalid("embedding.concurrent_requests", "must be above 0");
        }
        if self.progress.max_events_per_sec == 0 {
            return invalid("progress.max_events_per_sec", "must be above 0");
        }
        Ok(())
    }
}

/// `scheme://host[:port]`, as a browser sends it in `Origin`: an origin with a path or a
/// wildcard would never match, so it is refused at start-up instead of silently.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else { return false };
    let host = rest.rsplit_once(':').map_or(rest, |(host, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() {
            host
        } else {
            rest
        }
    });
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
}

impl RedisConfig {
    /// The connection URL: `url` when set, otherwise built from host and port.
    pub fn connection_url(&self) -> String {
        if self.url.trim().is_empty() {
            format!("redis://{}:{}/", self.host, self.port)
        } else {
            self.url.clone()
        }
    }

    /// The nodes `url` names, comma-separated (several only for a Redis Cluster).
    pub fn node_urls(&self) -> Vec<String> {
        self.connection_url().split(',').map(str::trim).filter(|url| !url.is_empty()).map(String::from).collect()
    }
}

/// Whether Redis Cluster hashes keys starting with `prefix` by a tag of the prefix
/// alone: the part between the first `{` and the next `}`, when not empty.
fn has_hash_tag(prefix: &str) -> bool {
    prefix.find('{').and_then(|open| prefix[open + 1..].find('}')).is_some_and(|length| length > 0)
}

impl QueueConfig {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }
    pub fn process_liveness(&self) -> Duration {
        Duration::from_millis(self.process_liveness_ms)
    }

    pub fn maintenance_interval(&self) -> Duration {
        Duration::from_millis(self.maintenance_interval_ms)
    }
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval_secs.max(1))
    }
    pub fn retention_interval(&self) -> Duration {
        Duration::from_secs(self.retention_interval_secs.max(1))
    }
    pub fn job_timeout(&self) -> Duration {
        Duration::from_secs(self.job_timeout_secs.max(1))
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

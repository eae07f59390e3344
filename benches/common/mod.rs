//! Shared by the benchmarks: a configuration of their own, percentiles, process
//! memory, the one-JSON-line-per-figure output, and document rows to store.
#![allow(dead_code)] // each bench uses a part

use diesel::{Connection, PgConnection, RunQueryDsl};
use docqueue::config::Config;
use docqueue::db::models::{now, Document, FileFacts};
use serde_json::{json, Value};

pub const SECRET: &str = "bench-secret-for-docqueue-benchmarks-0123";

/// Prints one figure as a JSON line, with any extra fields.
pub fn figure(bench: &str, name: &str, value: f64, unit: &str, extra: Value) {
    let mut line = json!({ "bench": bench, "figure": name, "value": (value * 100.0).round() / 100.0, "unit": unit });
    if let (Some(line), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
        line.extend(extra.clone());
    }
    println!("{line}");
}

/// A configuration on a fresh Redis prefix, SQLite file and storage directory.
pub fn bench_config(redis_url: &str, overrides: Value) -> Config {
    let id = ulid::Ulid::generate().to_string().to_lowercase();
    let dir = std::env::temp_dir().join("docqueue-bench").join(&id);
    let mut base = json!({
        "server": { "host": "127.0.0.1", "port": 0 },
        "redis": { "url": redis_url, "prefix": format!("bench:{id}:"), "pool_size": 64 },
        "database": { "url": dir.join("bench.sqlite3"), "pool_size": 16 },
        "storage": { "root": dir.join("storage") },
        "auth": { "jwt_secret": SECRET, "dev_mode": false },
        "progress": { "max_events_per_sec": 10 },
    });
    merge(&mut base, overrides);
    Config::from_overrides(base).unwrap()
}

/// config/default.toml's settings except what keeps a run to itself (a free port, a fresh
/// Redis prefix, storage directory and SQLite file, or `database_url`), a known secret,
/// and the docqueue binary as the extractor (this executable is the bench), with
/// `overrides` on top. The run's directory is the storage root's parent.
pub fn default_config(redis_url: &str, database_url: Option<&str>, overrides: Value) -> Config {
    let id = ulid::Ulid::generate().to_string().to_lowercase();
    let dir = std::env::temp_dir().join("docqueue-bench").join(&id);
    let database = database_url.map_or_else(|| dir.join("bench.sqlite3").display().to_string(), str::to_string);
    let mut base = json!({
        "server": { "host": "127.0.0.1", "port": 0 },
        "redis": { "url": redis_url, "prefix": format!("bench:{id}:") },
        "database": { "url": database },
        "storage": { "root": dir.join("storage") },
        "auth": { "jwt_secret": SECRET, "dev_mode": false },
        "processing": { "extractor_program": env!("CARGO_BIN_EXE_docqueue-extract") },
    });
    merge(&mut base, overrides);
    Config::from_overrides(base).unwrap()
}

fn merge(base: &mut Value, overrides: Value) {
    match (base, overrides) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// The p-th percentile (0..=1) of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A field of /proc/<pid>/status in KiB (VmRSS:, VmHWM:).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// A small queued text document's row (its file is never read: the processors are no-ops).
pub fn queued_row(user: &str, filename: &str) -> Document {
    let file = FileFacts {
        filename: filename.into(),
        content_type: "text/plain".into(),
        size_bytes: 10,
        sha256: String::new(),
        storage_path: String::new(),
    };
    Document::queued(ulid::Ulid::generate().to_string(), user, file, 0, now())
}

/// A database of the bench's own on the PostgreSQL server of `base` (a URL to any of its
/// databases), so runs neither see nor leave rows; dropped with the value.
pub struct ScratchPostgres {
    base: String,
    name: String,
    pub url: String,
}

impl ScratchPostgres {
    pub fn create(base: &str) -> ScratchPostgres {
        let name = format!("dq_bench_{}", ulid::Ulid::generate().to_string().to_lowercase());
        let mut conn = PgConnection::establish(base).expect("PostgreSQL at BENCH_POSTGRES_URL");
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).unwrap();
        let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
        ScratchPostgres { base: base.into(), name, url }
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.base) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut conn);
        }
    }
}

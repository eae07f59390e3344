//! Memory of a 100 MB upload: the server streams the body to disk, so its resident
//! memory should barely move. Starts the real binary, streams a generated 100 MB text
//! file to it (never held whole on either side), and prints the server's RSS before,
//! at its peak (VmHWM) and after.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::status_kib;
use futures_util::stream;
use serde_json::json;

const SIZE: usize = 100 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("docqueue-upload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let secret = "bench-secret";
    let mut server = Command::new(env!("CARGO_BIN_EXE_docqueue"))
        .args(["serve", "--role", "api"])
        .env("DATABASE_URL", dir.join("db.sqlite3"))
        .env("DOCQUEUE_STORAGE__ROOT", dir.join("storage"))
        .env("DOCQUEUE_STORAGE__MAX_UPLOAD_BYTES", (2 * SIZE).to_string())
        .env("DOCQUEUE_SERVER__PORT", port.to_string())
        .env("DOCQUEUE_SERVER__WORKERS", "2")
        .env("DOCQUEUE_AUTH__JWT_SECRET", secret)
        .env("DOCQUEUE_REDIS__PREFIX", format!("bench-upload:{}:", std::process::id()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    let keys = docqueue::auth::TokenKeys::from_config(&docqueue::config::AuthConfig {
        jwt_secret: secret.into(),
        dev_mode: false,
    })
    .unwrap();
    let token = keys.issue("bench", docqueue::auth::Role::User, Duration::from_secs(600)).unwrap();

    let result = actix_web::rt::System::new().block_on(async move {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            if client.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Warm up the upload path once so allocator pools exist before the baseline.
        let small = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(b"warm up".to_vec()).file_name("w.txt"));
        client.post(format!("{base}/api/documents/upload")).bearer_auth(&token).multipart(small).send().await.unwrap();
        let before = status_kib(pid, "VmRSS:");
        let line = b"docqueue streams uploads to disk and never holds a whole file in memory.\n";
        let body = stream::iter((0..SIZE / CHUNK).map(move |_| {
            let chunk: Vec<u8> = line.iter().copied().cycle().take(CHUNK).collect();
            Ok::<_, std::io::Error>(chunk)
        }));
        let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), SIZE as u64)
            .file_name("big.txt");
        let form = reqwest::multipart::Form::new().part("file", part);
        let start = std::time::Instant::now();
        let response = client
            .post(format!("{base}/api/documents/upload"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let took = start.elapsed();
        let status = response.status().as_u16();
        let peak = status_kib(pid, "VmHWM:");
        let after = status_kib(pid, "VmRSS:");
        (status, before, peak, after, took)
    });
    let (status, before, peak, after, took) = result;
    println!(
        "{}",
        json!({
            "bench": "upload", "upload_mb": SIZE / 1024 / 1024, "http_status": status,
            "rss_before_mib": before as f64 / 1024.0, "rss_peak_mib": peak as f64 / 1024.0,
            "rss_after_mib": after as f64 / 1024.0,
            "peak_growth_mib": (peak.saturating_sub(before)) as f64 / 1024.0,
            "mb_per_s": (SIZE as f64 / 1e6) / took.as_secs_f64(),
        })
    );
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

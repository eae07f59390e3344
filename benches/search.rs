//! `cargo bench --bench search` (`scripts/bench.sh search`): search latency and the
//! server's memory for one user with 100,000 chunks, at 1, 10 and 40 concurrent
//! searches. The server runs as its own process, so its peak RSS (VmHWM) is its own.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bench_config, figure, percentile, queued_row, status_kib, SECRET};
use docqueue::auth::{Role as TokenRole, TokenKeys};
use docqueue::config::AuthConfig;
use docqueue::db::models::ChunkRow;
use docqueue::db::{chunks, documents, Db};
use serde_json::json;

const CHUNKS: usize = 100_000;
const DIMENSIONS: usize = 384;
const ROUNDS: usize = 3;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = bench_config(&redis_url, json!({ "server": { "port": port } }));
    let started = Instant::now();
    fill(&config);
    println!(
        "search benchmark: {CHUNKS} chunks of {DIMENSIONS} dimensions stored in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let server = Command::new(env!("CARGO_BIN_EXE_docqueue"))
        .args(["serve", "--role", "api"])
        .env_clear()
        .env("DATABASE_URL", &config.database.url)
        .env("REDIS_URL", &redis_url)
        .env("DOCQUEUE_REDIS__PREFIX", &config.redis.prefix)
        .env("DOCQUEUE_STORAGE__ROOT", &config.storage.root)
        .env("DOCQUEUE_AUTH__JWT_SECRET", SECRET)
        .env("DOCQUEUE_AUTH__DEV_MODE", "false")
        .env("DOCQUEUE_SERVER__PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let server = KilledOnDrop(server);
    let pid = server.0.id();
    let keys = TokenKeys::from_config(&AuthConfig { jwt_secret: SECRET.into(), dev_mode: false }).unwrap();
    let token = keys.issue("reader", TokenRole::User, Duration::from_secs(3600)).unwrap();

    actix_web::rt::System::new().block_on(async move {
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let url = format!("{base}/api/documents/search?q=quarterly%20planning%20decisions&k=10");
        let warm = client.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(warm.status(), 200, "{}", warm.text().await.unwrap());
        // Growth is measured from the idle server, for every level (memory a level
        // leaves with the allocator counts against the next ones).
        let idle_kib = status_kib(pid, "VmRSS:");
        for concurrency in [1usize, 10, 40] {
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
            let searches = (0..concurrency).map(|_| {
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                async move {
                    let mut took = Vec::new();
                    for _ in 0..ROUNDS {
                        let started = Instant::now();
                        let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
                        assert_eq!(response.status(), 200);
                        response.bytes().await.unwrap();
                        took.push(started.elapsed().as_secs_f64() * 1e3);
                    }
                    took
                }
            });
            let mut latencies: Vec<f64> =
                futures_util::future::join_all(searches).await.into_iter().flatten().collect();
            latencies.sort_by(f64::total_cmp);
            let grown_mb = status_kib(pid, "VmHWM:").saturating_sub(idle_kib) as f64 / 1024.0;
            let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
            println!(
                "search over {CHUNKS} chunks, {concurrency:>2} concurrent: p50 {p50:.0} ms, p99 {p99:.0} ms, \
                 server peak RSS +{grown_mb:.1} MB over idle {:.1} MB",
                idle_kib as f64 / 1024.0
            );
            let extra = json!({ "concurrency": concurrency, "chunks": CHUNKS });
            figure("search", "latency_p50", p50, "ms", extra.clone());
            figure("search", "latency_p99", p99, "ms", extra.clone());
            figure("search", "peak_rss_growth", grown_mb, "MB", extra);
        }
    });
    drop(server);
}

/// The server process, killed however the benchmark ends (a failed assertion too).
struct KilledOnDrop(std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One completed document of `CHUNKS` chunks with random unit embeddings.
fn fill(config: &docqueue::config::Config) {
    let db = Db::connect(&config.database).unwrap();
    db.migrate().unwrap();
    let row = queued_row("reader", "large.txt");
    let mut rng = fastrand::Rng::with_seed(7);
    let rows: Vec<ChunkRow> = (0..CHUNKS)
        .map(|ordinal| {
            let mut vector: Vec<f32> = (0..DIMENSIONS).map(|_| rng.f32() - 0.5).collect();
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            vector.iter_mut().for_each(|x| *x /= norm);
            let text = format!("Chunk {ordinal} of a large document about planning, budgets and decisions. ").repeat(3);
            ChunkRow {
                document_id: row.id.clone(),
                ordinal: ordinal as i32,
                char_count: text.len() as i32,
                text,
                page_start: None,
                page_end: None,
                embedding: docqueue::processing::embed::to_bytes(&vector),
            }
        })
        .collect();
    let (id, job_id) = (row.id.clone(), row.job_id.clone());
    actix_web::rt::System::new().block_on(async move {
        db.run(move |conn| {
            documents::insert_all(conn, &[row])?;
            // Made here, not by the pipeline: a fingerprint no pipeline computes.
            chunks::replace_for_job(conn, &id, &job_id, "search-bench", &rows)?;
            documents::mark_processing(conn, &id, &job_id, "bench", 1)?;
            documents::mark_completed(conn, &id, &job_id, CHUNKS as i32, None)?;
            Ok(())
        })
        .await
        .unwrap();
    });
}

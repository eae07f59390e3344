//! Queue figures, one JSON line each: the Redis round trip (PING), enqueue rate (single
//! and batched), enqueue and claim rates with 1, 1,000 and 10,000 users waiting, no-op
//! throughput at concurrency 5 and 50 (the queue alone, and the whole worker pool with
//! database rows on SQLite and, when `BENCH_POSTGRES_URL` is set, on PostgreSQL),
//! enqueue→start and enqueue→completed latency at a steady 200 jobs/s, seconds from
//! SIGKILL of a worker process to its job running again (a 5 s lease, and the default
//! settings), and that worker process's RSS. Run through `scripts/bench.sh queue`,
//! which starts a Redis of its own.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bench_config, figure, percentile, queued_row, status_kib, ScratchPostgres};
use docqueue::config::Config;
use docqueue::db::models::Document;
use docqueue::db::{documents, Db};
use docqueue::job_state::JobState;
use docqueue::processing::processor::{BoxFuture, JobContext, ProcessError, Processed, Processor};
use docqueue::queue::{NewJob, Queue};
use serde_json::json;

const CHILD: &str = "QUEUE_BENCH_CHILD_CONFIG";
/// The kill-recovery figure gives up (and says what the row shows) after this long,
/// rather than waiting for ever.
const KILL_WAIT_LIMIT: Duration = Duration::from_secs(90);

fn main() {
    if let Ok(config) = std::env::var(CHILD) {
        run_child_worker(&config);
        return;
    }
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    // QUEUE_BENCH_ONLY=enqueue,users,noop,pool,latency,kill runs those groups alone.
    let only = std::env::var("QUEUE_BENCH_ONLY").ok();
    let wanted = |group: &str| only.as_deref().is_none_or(|only| only.split(',').any(|g| g == group));
    actix_web::rt::System::new().block_on(async move {
        if wanted("enqueue") {
            enqueue_rates(&redis_url).await;
        }
        if wanted("users") {
            for users in [1, 1_000, 10_000] {
                rates_with_users_waiting(&redis_url, users).await;
            }
        }
        if wanted("noop") {
            for concurrency in [5, 50] {
                queue_throughput(&redis_url, concurrency).await;
            }
        }
        if wanted("pool") {
            for concurrency in [5, 50] {
                pool_throughput(&redis_url, concurrency, None).await;
            }
            if let Ok(postgres) = std::env::var("BENCH_POSTGRES_URL") {
                for concurrency in [5, 50] {
                    pool_throughput(&redis_url, concurrency, Some(&postgres)).await;
                }
            }
        }
        if wanted("latency") {
            steady_latency(&redis_url).await;
        }
        if !wanted("kill") {
            return;
        }
        let lease = json!({ "lease_ms": 5000, "heartbeat_ms": 1000, "maintenance_interval_ms": 500 });
        let (seconds, worker_rss) = kill_recovery(&redis_url, lease.clone()).await;
        figure("queue", "sigkill_to_running_again_s", seconds, "s", lease);
        figure(
            "queue",
            "worker_process_rss",
            worker_rss as f64 / 1024.0,
            "MiB",
            json!({ "workers": 3, "state": "one job in hand" }),
        );
        let (seconds, _) = kill_recovery(&redis_url, json!({})).await;
        figure(
            "queue",
            "sigkill_to_running_again_defaults_s",
            seconds,
            "s",
            json!({ "settings": "config/default.toml" }),
        );
    });
}

fn job(i: usize, users: usize) -> NewJob {
    NewJob {
        job_id: ulid::Ulid::generate().to_string(),
        document_id: format!("doc-{i}"),
        user_id: format!("user-{}", i % users),
        priority: 0,
        content_type: "text/plain".into(),
        size_bytes: 1000,
        filename: format!("file-{i}.txt"),
    }
}

async fn enqueue_rates(redis_url: &str) {
    let config = bench_config(redis_url, json!({}));
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    let n = 5_000;
    // The floor of anything done one request at a time: a PING through the same pool.
    let start = Instant::now();
    for _ in 0..n {
        queue.ping().await.unwrap();
    }
    let round_trip_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    figure("queue", "redis_round_trip", round_trip_us, "µs", json!({ "pings": n }));
    let start = Instant::now();
    for i in 0..n {
        queue.enqueue(&[job(i, 50)]).await.unwrap();
    }
    figure("queue", "enqueue_single", n as f64 / start.elapsed().as_secs_f64(), "jobs/s", json!({ "jobs": n }));

    let (n, batch) = (50_000, 100);
    let jobs: Vec<NewJob> = (0..n).map(|i| job(i, 50)).collect();
    let start = Instant::now();
    for chunk in jobs.chunks(batch) {
        queue.enqueue(chunk).await.unwrap();
    }
    figure(
        "queue",
        "enqueue_batched",
        n as f64 / start.elapsed().as_secs_f64(),
        "jobs/s",
        json!({ "jobs": n, "batch": batch }),
    );
}

/// Enqueue and claim rates while 10,000 jobs of `users` users wait: the fair order's
/// cost must not grow with the number of users.
async fn rates_with_users_waiting(redis_url: &str, users: usize) {
    let config = bench_config(redis_url, json!({}));
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    let backlog: Vec<NewJob> = (0..10_000).map(|i| job(i, users)).collect();
    for chunk in backlog.chunks(500) {
        queue.enqueue(chunk).await.unwrap();
    }
    let n = 2_000;
    let start = Instant::now();
    for i in 0..n {
        queue.enqueue(&[job(i, users)]).await.unwrap();
    }
    let enqueue = n as f64 / start.elapsed().as_secs_f64();
    let mut conn = queue.dedicated_connection().await.unwrap();
    let start = Instant::now();
    for _ in 0..n {
        queue.claim(&mut conn, "bench:claimer").await.unwrap().unwrap();
    }
    let claim = n as f64 / start.elapsed().as_secs_f64();
    let detail = json!({ "users_waiting": users, "jobs_waiting": 10_000, "operations": n });
    figure("queue", &format!("enqueue_single_{users}_users_waiting"), enqueue, "jobs/s", detail.clone());
    figure("queue", &format!("claim_{users}_users_waiting"), claim, "jobs/s", detail);
}

/// Claim → finish loops on the queue alone, each loop with its own connection.
async fn queue_throughput(redis_url: &str, concurrency: usize) {
    let config = bench_config(redis_url, json!({}));
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    let n = 30_000;
    let jobs: Vec<NewJob> = (0..n).map(|i| job(i, 100)).collect();
    for chunk in jobs.chunks(500) {
        queue.enqueue(chunk).await.unwrap();
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            // As a worker does: one claim, then each finish claims the next job.
            let mut conn = queue.dedicated_connection().await.unwrap();
            let worker = format!("bench:{c}");
            let mut done = 0;
            let mut next = queue.claim(&mut conn, &worker).await.unwrap();
            while let Some(job) = next {
                next = queue.end_job_and_claim(&job, JobState::Completed, "", Some((&worker, ""))).await.unwrap().1;
                done += 1;
            }
            done
        }));
    }
    let mut done = 0;
    for task in tasks {
        done += task.await.unwrap();
    }
    assert_eq!(done, n);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    figure(
        "queue",
        &format!("queue_noop_throughput_c{concurrency}"),
        rate,
        "jobs/s",
        json!({ "jobs": n, "layer": "Redis queue: finish + claim next, one script" }),
    );
}

struct NoopProcessor;

impl Processor for NoopProcessor {
    fn process(&self, _: JobContext) -> BoxFuture<Result<Processed, ProcessError>> {
        Box::pin(async { Ok(Processed { chunk_count: 0, reused_from: None, warning: None }) })
    }
}

/// Rows in SQLite (or a scratch database on the PostgreSQL server at `postgres`) whose
/// documents the actor pool processes with a no-op processor: claim, row to processing,
/// finish, row to completed.
async fn pool_throughput(redis_url: &str, concurrency: usize, postgres: Option<&str>) {
    let scratch = postgres.map(ScratchPostgres::create);
    let mut overrides = json!({ "document_queue": { "concurrency": concurrency, "max_jobs_per_worker": 1_000_000 } });
    if let Some(scratch) = &scratch {
        overrides["database"] = json!({ "url": scratch.url });
    }
    let config = bench_config(redis_url, overrides);
    let db = Db::connect(&config.database).unwrap();
    db.migrate().unwrap();
    let n = 3_000;
    let rows: Vec<Document> = (0..n).map(|i| queued_row(&format!("user-{}", i % 20), &format!("f{i}.txt"))).collect();
    {
        let rows = rows.clone();
        db.run(move |conn| documents::insert_all(conn, &rows)).await.unwrap();
    }
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    queue.pause().await.unwrap();
    let jobs: Vec<NewJob> = rows.iter().map(NewJob::for_document).collect();
    for chunk in jobs.chunks(500) {
        queue.enqueue(chunk).await.unwrap();
    }
    let app =
        docqueue::app::start_with_processor(Arc::new(config), docqueue::app::Role::Worker, Arc::new(NoopProcessor))
            .await
            .unwrap();
    let start = Instant::now();
    queue.resume().await.unwrap();
    loop {
        if queue.counts().await.unwrap().completed as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    app.shutdown().await;
    let (suffix, database) = if scratch.is_some() { ("_postgres", "PostgreSQL") } else { ("", "SQLite") };
    figure(
        "queue",
        &format!("pool_noop_throughput_c{concurrency}{suffix}"),
        rate,
        "jobs/s",
        json!({ "jobs": n, "layer": format!("actor pool + {database} rows, no-op processor") }),
    );
}

/// Jobs enqueued at a steady 200/s; five workers claim and finish them.
async fn steady_latency(redis_url: &str) {
    let config = bench_config(redis_url, json!({}));
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    let enqueued: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let (total, rate) = (2_000usize, 200.0);
    let finished = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for c in 0..5 {
        let (queue, enqueued, finished) = (queue.clone(), enqueued.clone(), finished.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = queue.dedicated_connection().await.unwrap();
            let mut samples = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && finished.load(std::sync::atomic::Ordering::SeqCst) < total {
                match queue.claim(&mut conn, &format!("lat:{c}")).await.unwrap() {
                    Some(job) => {
                        let started = Instant::now();
                        queue.end_job(&job, JobState::Completed, "").await.unwrap();
                        let done_at = Instant::now();
                        let at = enqueued.lock().unwrap().get(&job.job_id).copied();
                        if let Some(at) = at {
                            samples
                                .push(((started - at).as_secs_f64() * 1000.0, (done_at - at).as_secs_f64() * 1000.0));
                        }
                        if finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 >= total {
                            break;
                        }
                    }
                    None => queue.wait_for_work(&mut conn, Duration::from_millis(100)).await.unwrap(),
                }
            }
            samples
        }));
    }
    let start = Instant::now();
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let job = job(i, 20);
        enqueued.lock().unwrap().insert(job.job_id.clone(), Instant::now());
        queue.enqueue(&[job]).await.unwrap();
    }
    let mut started = Vec::new();
    let mut completed = Vec::new();
    for worker in workers {
        if let Ok(samples) = worker.await {
            for (s, c) in samples {
                started.push(s);
                completed.push(c);
            }
        }
    }
    started.sort_by(f64::total_cmp);
    completed.sort_by(f64::total_cmp);
    for (name, samples) in [("enqueue_to_start_ms", &started), ("enqueue_to_completed_ms", &completed)] {
        figure(
            "queue",
            name,
            percentile(samples, 0.99),
            "ms (p99)",
            json!({
                "p50": percentile(samples, 0.5), "p95": percentile(samples, 0.95),
                "p99": percentile(samples, 0.99), "max": samples.last().copied().unwrap_or(0.0),
                "jobs": samples.len(), "rate_per_sec": rate, "workers": 5,
            }),
        );
    }
}

/// A processor that works (in one-second steps, watching for a cancel) for a minute.
struct LongProcessor;

impl Processor for LongProcessor {
    fn process(&self, ctx: JobContext) -> BoxFuture<Result<Processed, ProcessError>> {
        Box::pin(async move {
            for _ in 0..600 {
                if ctx.is_cancelled() {
                    return Err(ProcessError::Cancelled);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(Processed { chunk_count: 1, reused_from: None, warning: None })
        })
    }
}

fn run_child_worker(config: &str) {
    let config: Config = Config::from_overrides(serde_json::from_str::<serde_json::Value>(config).unwrap()).unwrap();
    actix_web::rt::System::new().block_on(async move {
        let _app =
            docqueue::app::start_with_processor(Arc::new(config), docqueue::app::Role::Worker, Arc::new(LongProcessor))
                .await
                .unwrap();
        std::future::pending::<()>().await;
    });
}

/// A worker process running with `queue_settings` (over the defaults) is SIGKILLed
/// mid-job: seconds until the job runs again elsewhere, and that process's RSS in KiB.
async fn kill_recovery(redis_url: &str, mut queue_settings: serde_json::Value) -> (f64, u64) {
    // The rescuing worker is shut down holding the job: no grace to wait out.
    queue_settings["shutdown_grace_secs"] = json!(0);
    let config = bench_config(redis_url, json!({ "document_queue": queue_settings }));
    let db = Db::connect(&config.database).unwrap();
    db.migrate().unwrap();
    let row = queued_row("victim", "long.txt");
    {
        let row = row.clone();
        db.run(move |conn| documents::insert_all(conn, &[row])).await.unwrap();
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, serde_json::to_string(&config).unwrap())
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap();
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    queue.enqueue(&[NewJob::for_document(&row)]).await.unwrap();
    let child_marker = format!(":{}:", child.id());
    let id = row.id.clone();
    let spawned = Instant::now();
    loop {
        let id = id.clone();
        let doc = db.run(move |c| documents::find(c, &id)).await.unwrap().unwrap();
        if doc.worker_id.as_deref().is_some_and(|w| w.contains(&child_marker)) {
            break;
        }
        assert!(spawned.elapsed() < KILL_WAIT_LIMIT, "the worker process never took the job: {doc:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let worker_rss = status_kib(child.id(), "VmRSS:");
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = Instant::now();
    let app =
        docqueue::app::start_with_processor(Arc::new(config), docqueue::app::Role::Worker, Arc::new(LongProcessor))
            .await
            .unwrap();
    let me = format!(":{}:", std::process::id());
    loop {
        let id = id.clone();
        let doc = db.run(move |c| documents::find(c, &id)).await.unwrap().unwrap();
        if doc.worker_id.as_deref().is_some_and(|w| w.contains(&me)) && doc.queue_status == "processing" {
            break;
        }
        assert!(killed.elapsed() < KILL_WAIT_LIMIT, "the killed worker's job never ran again here: {doc:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = killed.elapsed().as_secs_f64();
    app.shutdown().await;
    (seconds, worker_rss)
}

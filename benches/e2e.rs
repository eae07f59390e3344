//! End to end with real documents, one JSON line per figure. 1,000 small files (1–3 KB:
//! Markdown, text, HTML, a one-page DOCX and a one-page PDF, 200 of each) are uploaded
//! through HTTP by 10 users, 5 files per request, to a server started in this process
//! with the real pipeline (extractor process, chunking, hash embedding, storing) and
//! the default configuration apart from `document_queue.concurrency` (1, 3 and 8).
//! Per setting: documents/s from the first upload request to the last
//! `document.completed`; upload-to-completed latency, from sending a file's upload
//! request to its WebSocket `document.completed` event; retries and failures
//! (`docqueue_jobs_total` on `/metrics`); the processing time per document the queue
//! records (`/api/admin/queue/status`, which averages the last 200 jobs, and the mean
//! over every job from `docqueue_processing_duration_seconds`) beside the wall time a
//! worker spends per document; and the CPU time spent per document, in this process
//! and in the extractor processes; how many of the machine's cores were busy meanwhile
//! (every process), and so the most any setting could reach here; and where a document's time goes, traced from the
//! client by when each stage's first event arrived (upload and wait until `extracting`,
//! reading in the extractor until `chunking`, then chunking, embedding, and storing
//! with the completion), and as the server times each step of a job
//! (`docqueue_job_step_seconds`). On SQLite, and on PostgreSQL when
//! `BENCH_POSTGRES_URL` is set (`scripts/bench.sh e2e` sets it when one answers);
//! every run on a fresh database and Redis prefix.

mod common;
#[allow(dead_code)] // the tests' PDF writer: the bench needs one plain page of it
#[path = "../tests/common/pdf_writer.rs"]
mod pdf_writer;

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::time::{Duration, Instant};

use common::{default_config, figure, percentile, ScratchPostgres};
use docqueue::app::Role;
use docqueue::auth::Role as TokenRole;
use docqueue::processing::step_times::Step;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const FILES: usize = 1_000;
const USERS: usize = 10;
/// Chat users drop a few files at a time.
const FILES_PER_REQUEST: usize = 5;
const CONCURRENCY: [usize; 3] = [1, 3, 8];
/// A run still unfinished after this long is reported as it stands.
const RUN_LIMIT: Duration = Duration::from_secs(600);

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let files = corpus();
    describe(&files);
    describe_data_filesystem();
    let postgres = std::env::var("BENCH_POSTGRES_URL").ok();
    // E2E_BENCH_CONCURRENCY=3 (or 1,8, …) runs those settings alone, for a profiler.
    let settings: Vec<usize> = match std::env::var("E2E_BENCH_CONCURRENCY") {
        Ok(list) => list.split(',').map(|n| n.trim().parse().expect("E2E_BENCH_CONCURRENCY: numbers")).collect(),
        Err(_) => CONCURRENCY.to_vec(),
    };
    // Each run's files are deleted at the very end, not between runs, so that no setting
    // pays for the previous one's deletions (see describe_data_filesystem).
    let mut data_dirs = Vec::new();
    for database in std::iter::once(None).chain(postgres.as_deref().map(Some)) {
        for &concurrency in &settings {
            data_dirs.extend(run(&redis_url, database, concurrency, &files));
        }
    }
    for dir in data_dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A file of the corpus: its name and bytes.
type File = (String, Vec<u8>);

/// 1,000 files, the five formats in turn, each with sentences of its own.
fn corpus() -> Vec<File> {
    (0..FILES)
        .map(|i| {
            let lines = sentences(i, 15);
            match i % 5 {
                0 => (format!("note-{i}.md"), markdown(i, &lines)),
                1 => (format!("snippet-{i}.txt"), lines.join("\n").into_bytes()),
                2 => (format!("export-{i}.html"), html(i, &lines)),
                3 => (format!("memo-{i}.docx"), docx(&lines)),
                _ => (
                    format!("summary-{i}.pdf"),
                    pdf_writer::text_pdf(&lines.iter().map(String::as_str).collect::<Vec<_>>()),
                ),
            }
        })
        .collect()
}

/// The corpus's file sizes by format, so the figures can be read against them.
fn describe(files: &[File]) {
    let mut sizes: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (name, bytes) in files {
        sizes.entry(name.rsplit('.').next().unwrap_or_default()).or_default().push(bytes.len());
    }
    let by_format: serde_json::Map<String, Value> = sizes
        .iter()
        .map(|(format, s)| {
            let (min, max) = (s.iter().min(), s.iter().max());
            (format.to_string(), json!({ "files": s.len(), "min_bytes": min, "max_bytes": max }))
        })
        .collect();
    let mean = files.iter().map(|(_, b)| b.len()).sum::<usize>() as f64 / files.len().max(1) as f64;
    figure("e2e", "corpus_file_bytes", mean, "bytes (mean)", json!({ "files": files.len(), "formats": by_format }));
}

/// Where the runs keep their files and SQLite database (`TMPDIR`, or /tmp), and on what
/// filesystem: on ext4 without a journal, each new file scans past every inode deleted
/// in the last minutes (17 % of this machine's CPU in one profile), so the figures
/// depend on it. `TMPDIR=/dev/shm` measures docqueue without it.
fn describe_data_filesystem() {
    let dir = std::env::temp_dir();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let (mount_point, kind) = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            Some((fields.next()?, fields.next()?))
        })
        .filter(|(mount_point, _)| dir.starts_with(mount_point))
        .max_by_key(|(mount_point, _)| mount_point.len())
        .unwrap_or(("?", "?"));
    println!("{}", json!({ "bench": "e2e", "data_dir": dir, "mount_point": mount_point, "filesystem": kind }));
}

/// `n` sentences of 12 words, drawn from a small vocabulary by a generator seeded with `i`.
fn sentences(i: usize, n: usize) -> Vec<String> {
    const WORDS: &[&str] = &[
        "the",
        "team",
        "agreed",
        "on",
        "a",
        "new",
        "plan",
        "for",
        "backup",
        "storage",
        "before",
        "next",
        "quarter",
        "owners",
        "review",
        "budget",
        "meeting",
        "notes",
        "customer",
        "release",
        "schedule",
        "risk",
        "server",
        "migration",
        "weekly",
        "report",
        "draft",
        "decision",
        "deadline",
        "support",
        "ticket",
        "summary",
    ];
    let mut rng = fastrand::Rng::with_seed(i as u64);
    (0..n)
        .map(|_| {
            let words: Vec<&str> = (0..12).map(|_| WORDS[rng.usize(..WORDS.len())]).collect();
            format!("{}.", words.join(" "))
        })
        .collect()
}

fn markdown(i: usize, lines: &[String]) -> Vec<u8> {
    let (first, rest) = lines.split_at(lines.len() / 2);
    format!("# Note {i}\n\n{}\n\n## Follow-up\n\n- {}\n", first.join(" "), rest.join("\n- ")).into_bytes()
}

fn html(i: usize, lines: &[String]) -> Vec<u8> {
    let paragraphs: String = lines.iter().map(|l| format!("<p>{l}</p>\n")).collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Export {i}</title></head>\n\
         <body><h1>Exported chat {i}</h1>\n{paragraphs}</body></html>\n"
    )
    .into_bytes()
}

/// The three parts Word needs to open a document, deflated as Word does.
fn docx(lines: &[String]) -> Vec<u8> {
    const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    let body: String = lines.iter().map(|l| format!("<w:p><w:r><w:t>{l}</w:t></w:r></w:p>")).collect();
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, part) in
        [("[Content_Types].xml", CONTENT_TYPES), ("_rels/.rels", RELS), ("word/document.xml", &document)]
    {
        zip.start_file(name, deflated).unwrap();
        zip.write_all(part.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// What the client saw in one run.
#[derive(Default)]
struct Seen {
    /// Document id → when its upload request was sent.
    sent: HashMap<String, Instant>,
    /// Document id → when its `document.completed` event arrived.
    completed: HashMap<String, Instant>,
    /// Document id → when the first `document.progress` event of each stage arrived.
    stages: HashMap<String, HashMap<String, Instant>>,
    /// Documents that failed for good, with the reason.
    failed: Vec<(String, String)>,
    first_sent: Option<Instant>,
    last_accepted: Option<Instant>,
    /// How many of the machine's cores were busy, on average, from the first upload to
    /// the last document's end (every process: the server, Redis, the database).
    busy_cores: f64,
    metrics: String,
    status: Value,
}

/// One setting's run; returns its data directory, for the caller to delete.
fn run(redis_url: &str, postgres: Option<&str>, concurrency: usize, files: &[File]) -> Option<std::path::PathBuf> {
    let scratch = postgres.map(ScratchPostgres::create);
    let config = default_config(
        redis_url,
        scratch.as_ref().map(|s| s.url.as_str()),
        json!({ "document_queue": { "concurrency": concurrency } }),
    );
    let dir = config.storage.root.parent().map(std::path::Path::to_path_buf);
    let files = files.to_vec();
    let cpu_before = cpu_seconds();
    let seen = actix_web::rt::System::new().block_on(async move {
        let app = docqueue::app::start(config, Role::All).await.expect("the server starts");
        let base = format!("http://{}", app.http_addr.expect("an HTTP address"));
        let hour = Duration::from_secs(3600);
        let tokens: Vec<String> =
            (0..USERS).map(|u| app.token_keys.issue(&format!("user-{u}"), TokenRole::User, hour).unwrap()).collect();
        let admin = app.token_keys.issue("bench-admin", TokenRole::Admin, hour).unwrap();
        // The client has a thread and runtime of its own, so it never waits behind the
        // server's event loop (it shares the machine's two cores all the same).
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Named, so a profile tells its CPU from the server's.
        let client = std::thread::Builder::new()
            .name("bench-client".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let _ = tx.send(runtime.block_on(client_run(base, tokens, admin, files)));
            })
            .unwrap();
        let seen = rx.await.expect("the client thread reports");
        client.join().unwrap();
        app.shutdown().await;
        seen
    });
    let cpu_after = cpu_seconds();
    let cpu = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    drop(scratch);
    report(&seen, concurrency, postgres.is_some(), cpu);
    dir
}

/// CPU seconds (user + system) of this process, and of its children that ended and
/// were reaped: the extractor processes, with the pdftotext each started.
fn cpu_seconds() -> (f64, f64) {
    let of = |who| {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut usage) };
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        seconds(usage.ru_utime) + seconds(usage.ru_stime)
    };
    (of(libc::RUSAGE_SELF), of(libc::RUSAGE_CHILDREN))
}

async fn connect(base: &str, token: &str) -> Socket {
    let url = format!("{}/ws?token={token}", base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connects");
    let first = socket.next().await.expect("a snapshot on connect").expect("a frame");
    assert!(first.to_text().unwrap_or_default().contains("\"snapshot\""), "{first}");
    socket
}

async fn client_run(base: String, tokens: Vec<String>, admin: String, files: Vec<File>) -> Seen {
    let client = reqwest::Client::new();
    let mut sockets = Vec::new();
    for token in &tokens {
        sockets.push(connect(&base, token).await);
    }
    let per_user = files.len() / USERS;
    let users = sockets.into_iter().zip(&tokens).zip(files.chunks(per_user)).map(|((socket, token), files)| {
        let (client, base) = (&client, base.as_str());
        async move { tokio::join!(follow(socket, files.len()), upload(client, base, token, files)) }
    });
    let mut seen = Seen::default();
    let before = MachineCpu::now();
    let ended = futures_util::future::join_all(users).await;
    seen.busy_cores = MachineCpu::now().busy_cores_since(&before);
    for ((followed, failed), (sent, first, last)) in ended {
        seen.completed.extend(followed.completed);
        seen.stages.extend(followed.stages);
        seen.failed.extend(failed);
        seen.sent.extend(sent);
        seen.first_sent = Some(seen.first_sent.map_or(first, |f| f.min(first)));
        seen.last_accepted = seen.last_accepted.max(Some(last));
    }
    let get = |path: &str| client.get(format!("{base}{path}")).bearer_auth(&admin).send();
    seen.metrics = get("/metrics").await.unwrap().text().await.unwrap();
    seen.status = get("/api/admin/queue/status").await.unwrap().json().await.unwrap();
    seen
}

/// When one user's documents completed, and when each of their stages began.
#[derive(Default)]
struct Followed {
    completed: HashMap<String, Instant>,
    stages: HashMap<String, HashMap<String, Instant>>,
}

/// Reads one user's events until `expected` documents completed or failed for good.
async fn follow(mut socket: Socket, expected: usize) -> (Followed, Vec<(String, String)>) {
    let mut followed = Followed::default();
    let mut failed = Vec::new();
    let deadline = tokio::time::Instant::now() + RUN_LIMIT;
    while followed.completed.len() + failed.len() < expected {
        let text = match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => continue,
            _ => break,
        };
        let at = Instant::now();
        let event: Value = serde_json::from_str(&text).unwrap_or_default();
        let id = event["document_id"].as_str().unwrap_or_default().to_string();
        match event["type"].as_str() {
            Some("document.completed") => {
                followed.completed.insert(id, at);
            }
            Some("document.progress") => {
                let stage = event["stage"].as_str().unwrap_or_default().to_string();
                followed.stages.entry(id).or_default().entry(stage).or_insert(at);
            }
            Some("document.failed") if event["will_retry"] == false => {
                failed.push((id, event["error"].as_str().unwrap_or_default().to_string()));
            }
            _ => {}
        }
    }
    (followed, failed)
}

/// Uploads one user's files, a few per request, one request after another. Returns
/// when each document's request was sent, the first send and the last 202.
async fn upload(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    files: &[File],
) -> (HashMap<String, Instant>, Instant, Instant) {
    let mut sent = HashMap::new();
    let first = Instant::now();
    for batch in files.chunks(FILES_PER_REQUEST) {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in batch {
            form = form.part("file", reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone()));
        }
        let at = Instant::now();
        let response = client
            .post(format!("{base}/api/documents/upload"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("the upload is answered");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        assert_eq!(status.as_u16(), 202, "upload: {body}");
        for document in body["documents"].as_array().into_iter().flatten() {
            sent.insert(document["id"].as_str().unwrap_or_default().to_string(), at);
        }
    }
    (sent, first, Instant::now())
}

/// The machine's CPU time so far, from /proc/stat: busy and all, over every core.
struct MachineCpu {
    busy: u64,
    total: u64,
}

impl MachineCpu {
    fn now() -> MachineCpu {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // cpu user nice system idle iowait irq softirq steal (guest time is in user).
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|n| n.parse().ok())
            .collect();
        let total = ticks.iter().sum();
        let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
        MachineCpu { busy: total - idle, total }
    }

    /// Busy cores on average since `earlier` (0 where /proc/stat cannot be read).
    fn busy_cores_since(&self, earlier: &MachineCpu) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if total == 0 {
            return 0.0;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / total as f64 * cores as f64
    }
}

/// A sample's value from Prometheus text, summed over the lines whose labels contain
/// `label` (`name="value"`), or over all of them.
fn metric(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .filter(|line| label.is_none_or(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A histogram's mean in ms from Prometheus text (None without observations).
fn histogram_mean_ms(text: &str, histogram: &str, label: Option<&str>) -> Option<f64> {
    let count = metric(text, &format!("{histogram}_count"), label);
    (count > 0.0).then(|| metric(text, &format!("{histogram}_sum"), label) / count * 1000.0)
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap_or(0.0)
}

/// `cpu`: CPU seconds of this process and of its reaped children during the run.
fn report(seen: &Seen, concurrency: usize, postgres: bool, cpu: (f64, f64)) {
    let suffix = if postgres { "_postgres" } else { "" };
    let database = if postgres { "PostgreSQL" } else { "SQLite" };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut latencies: Vec<f64> = seen
        .completed
        .iter()
        .filter_map(|(id, done)| Some(ms(done.saturating_duration_since(*seen.sent.get(id)?))))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let first = seen.first_sent.unwrap_or_else(Instant::now);
    let last_completed = seen.completed.values().max().copied().unwrap_or(first);
    let elapsed = last_completed.saturating_duration_since(first).as_secs_f64().max(1e-9);
    let completed = seen.completed.len();
    let setting = json!({
        "database": database, "concurrency": concurrency, "files": FILES, "users": USERS,
        "files_per_request": FILES_PER_REQUEST, "completed": completed, "failed": seen.failed.len(),
        // Other work on the machine shows in every figure: note how busy it was.
        "loadavg_1m": load_average(),
    });
    let with = |extra: Value| {
        let mut all = setting.clone();
        all.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        all
    };
    let uploads_s = seen.last_accepted.map_or(0.0, |last| last.saturating_duration_since(first).as_secs_f64());
    figure(
        "e2e",
        &format!("documents_per_s_c{concurrency}{suffix}"),
        completed as f64 / elapsed,
        "documents/s",
        with(json!({ "elapsed_s": elapsed, "uploads_s": uploads_s,
                     "span": "first upload request sent → last document.completed received" })),
    );
    figure(
        "e2e",
        &format!("upload_to_completed_ms_c{concurrency}{suffix}"),
        percentile(&latencies, 0.99),
        "ms (p99)",
        with(json!({
            "p50": percentile(&latencies, 0.5), "p95": percentile(&latencies, 0.95),
            "p99": percentile(&latencies, 0.99), "max": latencies.last().copied().unwrap_or(0.0),
            "measured": "upload request sent → WebSocket document.completed received, per document",
        })),
    );
    let text = &seen.metrics;
    let outcome = |o: &str| metric(text, "docqueue_jobs_total", Some(&format!("outcome=\"{o}\"")));
    for name in ["retried", "failed"] {
        figure(
            "e2e",
            &format!("{name}_c{concurrency}{suffix}"),
            outcome(name),
            "jobs",
            with(json!({ "completed_total": outcome("completed"), "stalled_total": outcome("stalled"),
                         "source": "/metrics docqueue_jobs_total" })),
        );
    }
    // How many row writes each group-commit transaction carried: fewer, larger commits
    // cost SQLite less per document.
    let commits = metric(text, "docqueue_db_group_commits_total", None);
    figure(
        "e2e",
        &format!("group_commit_writes_per_transaction_c{concurrency}{suffix}"),
        metric(text, "docqueue_db_group_commit_writes_total", None) / commits.max(1.0),
        "writes",
        with(json!({ "transactions": commits, "source": "/metrics docqueue_db_group_commit*" })),
    );
    // The queue times a job from its claim to its end in Redis.
    let mean_ms = |label: Option<&str>| histogram_mean_ms(text, "docqueue_processing_duration_seconds", label);
    let by_type: serde_json::Map<String, Value> = [
        ("markdown", "text/markdown"),
        ("text", "text/plain"),
        ("html", "text/html"),
        ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("pdf", "application/pdf"),
    ]
    .into_iter()
    .map(|(format, t)| (format.to_string(), json!(mean_ms(Some(&format!("\"{t}\""))))))
    .collect();
    let worker_ms = concurrency as f64 * elapsed * 1000.0 / completed.max(1) as f64;
    let status = &seen.status["processing_time"];
    figure(
        "e2e",
        &format!("processing_ms_c{concurrency}{suffix}"),
        status["average_ms"].as_f64().unwrap_or(0.0),
        "ms (average)",
        with(json!({
            "source": "/api/admin/queue/status processing_time (claim → end in Redis)",
            "status_sample": status["sample"], "status_p95_ms": status["p95_ms"],
            "all_jobs_mean_ms": mean_ms(None), "mean_ms_by_type": by_type,
            "worker_wall_ms_per_document": worker_ms,
            "note": "worker wall time per document = concurrency × elapsed / completed",
        })),
    );
    // The trace: the mean time from each point to the next, over documents whose every
    // stage event arrived (the pump never drops a stage's first event).
    let points = ["extracting", "chunking", "embedding", "storing"];
    let traced: Vec<Vec<f64>> = seen
        .completed
        .iter()
        .filter_map(|(id, done)| {
            let stages = seen.stages.get(id)?;
            let mut at = vec![*seen.sent.get(id)?];
            for point in points {
                at.push(*stages.get(point)?);
            }
            at.push(*done);
            Some(at.windows(2).map(|pair| ms(pair[1].saturating_duration_since(pair[0]))).collect())
        })
        .collect();
    let mean = |step: usize| traced.iter().map(|steps| steps[step]).sum::<f64>() / traced.len().max(1) as f64;
    figure(
        "e2e",
        &format!("stage_ms_c{concurrency}{suffix}"),
        (0..points.len() + 1).map(mean).sum::<f64>(),
        "ms (mean, upload sent → completed)",
        with(json!({
            "traced_documents": traced.len(),
            "upload_and_queue_wait": mean(0), "extracting": mean(1), "chunking": mean(2),
            "embedding": mean(3), "storing_and_completion": mean(4),
            "measured": "between the arrivals at the client of each stage's first document.progress event",
        })),
    );
    // The server's own timing of each step of a job (`docqueue_job_step_seconds`).
    let step_means: Vec<(Step, f64)> = Step::ALL
        .into_iter()
        .map(|step| {
            let label = format!("step=\"{}\"", step.name());
            (step, histogram_mean_ms(text, "docqueue_job_step_seconds", Some(&label)).unwrap_or(0.0))
        })
        .collect();
    let steps: serde_json::Map<String, Value> =
        step_means.iter().map(|(step, ms)| (step.name().to_string(), json!(ms))).collect();
    figure(
        "e2e",
        &format!("job_steps_ms_c{concurrency}{suffix}"),
        step_means.iter().map(|(_, ms)| ms).sum::<f64>(),
        "ms (mean per job, summed over the steps)",
        with(json!({
            "steps": steps,
            "source": "/metrics docqueue_job_step_seconds: start_row, duplicate_check, extract, chunk_embed, store, end",
        })),
    );
    let per_document = |seconds: f64| seconds * 1000.0 / completed.max(1) as f64;
    figure(
        "e2e",
        &format!("cpu_ms_per_document_c{concurrency}{suffix}"),
        per_document(cpu.0 + cpu.1),
        "ms",
        with(json!({
            "this_process_ms": per_document(cpu.0), "extractor_processes_ms": per_document(cpu.1),
            "note": "this process is the server and the bench's client; Redis and PostgreSQL are not counted",
        })),
    );
    // A setting that already keeps the machine this busy can be outdone by more workers
    // at most by the cores left: this is that ceiling, for the same work per document.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    figure(
        "e2e",
        &format!("machine_busy_cores_c{concurrency}{suffix}"),
        seen.busy_cores,
        "cores (mean)",
        with(json!({
            "cores": cores,
            "documents_per_s_ceiling_on_this_machine": (completed as f64 / elapsed) * cores / seen.busy_cores.max(1e-9),
            "span": "first upload request sent → last document.completed received",
            "note": "every process on the machine, from /proc/stat: the server, the bench's client, Redis, the database",
        })),
    );
    for (id, error) in seen.failed.iter().take(5) {
        eprintln!("e2e: document {id} failed: {error}");
    }
}

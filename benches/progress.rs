//! Progress figures, one JSON line each: the delay of `document.progress` events from a
//! worker's progress report to their receipt by a WebSocket client, with 5 jobs × 100
//! updates running at once (p50/p95/p99/max, and where the time goes), and the resident
//! memory of a server process holding 1,000 idle WebSocket connections. Run through
//! `scripts/bench.sh progress`, which starts a Redis of its own.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{bench_config, figure, percentile, status_kib, SECRET};
use docqueue::app::Role;
use docqueue::auth::{Role as TokenRole, TokenKeys};
use docqueue::config::AuthConfig;
use docqueue::processing::processor::{BoxFuture, JobContext, ProcessError, Processed, Processor, Stage};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const JOBS: usize = 5;
const UPDATES: u8 = 100;
/// Between two progress reports of one job. Back-to-back reports would mostly be
/// coalesced by the pump (it delivers one at a time: the publish, then at most once a
/// second the row),
/// so the figure would describe a handful of events; 3 ms apart, 5 jobs report ~1,700
/// updates/s together and nearly every one becomes an event of its own. The events
/// actually delivered are counted and printed with the figure.
const SPACING: Duration = Duration::from_millis(3);
const IDLE_CONNECTIONS: usize = 1_000;
/// File descriptors kept free for everything else when the limit is low.
const FD_MARGIN: usize = 100;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    delivery_latency(&redis_url);
    idle_connections_rss(&redis_url);
}

/// p50/p95/p99/max of delays in ms, rounded to µs.
fn spread(mut samples: Vec<f64>) -> Value {
    samples.sort_by(f64::total_cmp);
    let r = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({
        "p50": r(percentile(&samples, 0.5)), "p95": r(percentile(&samples, 0.95)),
        "p99": r(percentile(&samples, 0.99)), "max": r(samples.last().copied().unwrap_or(0.0)),
        "samples": samples.len(),
    })
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg").ok().and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap_or(0.0)
}

fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0
}

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// When each (document, percent) was reported by the processor.
type Reported = Arc<Mutex<HashMap<(String, i64), Instant>>>;

/// Reports `Embedding` 1..=100 %, `SPACING` apart, noting when each was reported.
struct SteppingProcessor {
    reported: Reported,
}

impl Processor for SteppingProcessor {
    fn process(&self, ctx: JobContext) -> BoxFuture<Result<Processed, ProcessError>> {
        let reported = self.reported.clone();
        Box::pin(async move {
            for percent in 1..=UPDATES {
                reported.lock().unwrap().insert((ctx.document.id.clone(), i64::from(percent)), Instant::now());
                ctx.on_progress(Stage::Embedding, percent);
                tokio::time::sleep(SPACING).await;
            }
            Ok(Processed { chunk_count: 1, reused_from: None, warning: None })
        })
    }
}

/// One `document.progress` frame as the WebSocket client saw it.
struct Received {
    key: (String, i64),
    at: Instant,
    wall_ms: f64,
    ts: i64,
}

struct ClientRun {
    received: Vec<Received>,
    /// When the bench's own subscriber to the events channel saw each progress event:
    /// the moment the server's Hub could have it too.
    on_channel: HashMap<(String, i64), Instant>,
}

fn progress_key(event: &Value) -> Option<(String, i64)> {
    (event["type"] == "document.progress")
        .then(|| Some((event["document_id"].as_str()?.to_string(), event["progress"].as_i64()?)))
        .flatten()
}

/// The server (HTTP, Hub and the worker pool) runs in this process on its actix system;
/// the client runs on a thread and runtime of its own so it never waits behind them.
fn delivery_latency(redis_url: &str) {
    let config = bench_config(
        redis_url,
        json!({
            "document_queue": { "concurrency": JOBS },
            // High enough that the pump lets every update through (see SPACING).
            "progress": { "max_events_per_sec": 100_000 },
        }),
    );
    let channel = format!("{}events", config.redis.prefix);
    let dir = config.storage.root.parent().map(|d| d.to_path_buf());
    let reported: Reported = Default::default();
    let processor = Arc::new(SteppingProcessor { reported: reported.clone() });
    let redis_url = redis_url.to_string();
    let run = actix_web::rt::System::new().block_on(async move {
        let app = docqueue::app::start_with_processor(Arc::new(config), Role::All, processor).await.unwrap();
        let base = format!("http://{}", app.http_addr.unwrap());
        let token = app.token_keys.issue("bench-user", TokenRole::User, Duration::from_secs(600)).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let client = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _ = tx.send(runtime.block_on(client_run(base, token, redis_url, channel)));
        });
        let run = rx.await.expect("the client thread reports");
        client.join().unwrap();
        app.shutdown().await;
        run
    });

    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let reported = reported.lock().unwrap();
    let mut report_to_ws = Vec::new();
    let mut report_to_channel = Vec::new();
    let mut channel_to_ws = Vec::new();
    let mut publish_to_ws = Vec::new();
    let mut per_job: HashMap<&str, usize> = HashMap::new();
    for r in &run.received {
        *per_job.entry(r.key.0.as_str()).or_default() += 1;
        publish_to_ws.push(r.wall_ms - r.ts as f64);
        if let Some(&at) = reported.get(&r.key) {
            report_to_ws.push(ms(at, r.at));
            if let Some(&seen) = run.on_channel.get(&r.key) {
                report_to_channel.push(ms(at, seen));
                channel_to_ws.push(ms(seen, r.at));
            }
        }
    }
    let events = run.received.len();
    let (fewest, most) = (per_job.values().min().copied().unwrap_or(0), per_job.values().max().copied().unwrap_or(0));
    let setting = json!({
        "jobs": JOBS, "updates_per_job": UPDATES, "update_spacing_ms": SPACING.as_millis() as u64,
        "events_received": events, "events_per_job_min": fewest, "events_per_job_max": most,
        "coalesced": (JOBS * usize::from(UPDATES)).saturating_sub(events),
        // Other work on the machine shows in the tail: note how busy it was.
        "loadavg_1m": load_average(),
    });
    let headline = spread(report_to_ws);
    let mut extra = headline.clone();
    extra.as_object_mut().unwrap().extend(setting.as_object().unwrap().clone());
    extra["path"] = json!("processor on_progress → pump → publish (Lua: job progress, seq, stream, PUBLISH) → Hub → SessionActor → WebSocket client; the row at most once a second, after");
    figure("progress", "progress_delay_ms", headline["p99"].as_f64().unwrap_or(0.0), "ms (p99)", extra);

    let parts = [
        (
            "progress_publish_to_ws_ms",
            publish_to_ws,
            "event ts (ms since epoch, stamped when the pump delivers, 1 ms resolution) → WebSocket receipt",
        ),
        (
            "progress_report_to_channel_ms",
            report_to_channel,
            "on_progress → the event on the Redis channel (pump, publish with the job's progress)",
        ),
        (
            "progress_channel_to_ws_ms",
            channel_to_ws,
            "the event on the Redis channel → WebSocket receipt (Hub, SessionActor, socket)",
        ),
    ];
    for (name, samples, path) in parts {
        let mut extra = spread(samples);
        extra["path"] = json!(path);
        figure("progress", name, extra["p99"].as_f64().unwrap_or(0.0), "ms (p99)", extra);
    }
}

async fn next_text(socket: &mut Socket, limit: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

async fn connect(base: &str, token: &str) -> Socket {
    let url = format!("{}/ws?token={token}", base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connects");
    let first = next_text(&mut socket, Duration::from_secs(10)).await.expect("a snapshot on connect");
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["type"], "snapshot", "{first}");
    socket
}

async fn client_run(base: String, token: String, redis_url: String, channel: String) -> ClientRun {
    let mut pubsub = redis::Client::open(redis_url).unwrap().get_async_pubsub().await.unwrap();
    pubsub.subscribe(&channel).await.unwrap();
    let mut socket = connect(&base, &token).await;
    // After the first snapshot a session holds live events back for a second (a resume
    // may come); start once that window is over.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let completed = |event: &Value| event["type"] == "document.completed";
    let read_socket = async {
        let mut received = Vec::new();
        let mut done = 0;
        while done < JOBS {
            let Some(Ok(message)) = socket.next().await else { panic!("the WebSocket closed mid-run") };
            let (at, wall_ms) = (Instant::now(), wall_ms());
            let Message::Text(text) = message else { continue };
            let event: Value = serde_json::from_str(&text).unwrap();
            if let Some(key) = progress_key(&event) {
                received.push(Received { key, at, wall_ms, ts: event["ts"].as_i64().unwrap_or(0) });
            } else if completed(&event) {
                done += 1;
            }
        }
        received
    };
    let read_channel = async {
        let mut on_channel = HashMap::new();
        let mut done = 0;
        let mut messages = pubsub.on_message();
        while done < JOBS {
            let Some(message) = messages.next().await else { break };
            let at = Instant::now();
            let Ok(payload) = message.get_payload::<String>() else { continue };
            let event: Value = serde_json::from_str(&payload).unwrap_or_default();
            if let Some(key) = progress_key(&event) {
                on_channel.insert(key, at);
            } else if completed(&event) {
                done += 1;
            }
        }
        on_channel
    };
    let upload = async {
        let client = reqwest::Client::new();
        let mut form = reqwest::multipart::Form::new();
        for i in 0..JOBS {
            let body = format!("progress bench document {i}\n").into_bytes();
            form = form.part("file", reqwest::multipart::Part::bytes(body).file_name(format!("bench-{i}.txt")));
        }
        let response = client
            .post(format!("{base}/api/documents/upload"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202, "upload: {}", response.text().await.unwrap_or_default());
    };
    let all = async { tokio::join!(read_socket, read_channel, upload) };
    let (received, on_channel, ()) =
        tokio::time::timeout(Duration::from_secs(120), all).await.expect("5 jobs complete within 2 minutes");
    ClientRun { received, on_channel }
}

/// The soft limit on open files of this process (the server child inherits it).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The real binary, `serve --role api`, so the RSS is the server's alone; then 1,000
/// users each open one WebSocket and stay idle.
fn idle_connections_rss(redis_url: &str) {
    let limit = open_files_limit();
    let connections = match limit {
        Some(limit) if limit < IDLE_CONNECTIONS + FD_MARGIN => {
            let n = limit.saturating_sub(FD_MARGIN);
            eprintln!(
                "open files soft limit is {limit}: opening {n} WebSocket connections instead of {IDLE_CONNECTIONS}"
            );
            n
        }
        _ => IDLE_CONNECTIONS,
    };
    let id = ulid::Ulid::generate().to_string().to_lowercase();
    let dir = std::env::temp_dir().join("docqueue-bench").join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_docqueue"))
        .args(["serve", "--role", "api"])
        .env("DATABASE_URL", dir.join("db.sqlite3"))
        .env("REDIS_URL", redis_url)
        .env("DOCQUEUE_REDIS__PREFIX", format!("bench:{id}:"))
        .env("DOCQUEUE_STORAGE__ROOT", dir.join("storage"))
        .env("DOCQUEUE_SERVER__HOST", "127.0.0.1")
        .env("DOCQUEUE_SERVER__PORT", port.to_string())
        .env("DOCQUEUE_AUTH__JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = server.id();
    let keys = TokenKeys::from_config(&AuthConfig { jwt_secret: SECRET.into(), dev_mode: false }).unwrap();
    let tokens: Vec<String> = (0..connections)
        .map(|i| keys.issue(&format!("idle-{i}"), TokenRole::User, Duration::from_secs(600)).unwrap())
        .collect();

    actix_web::rt::System::new().block_on(async move {
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let mut healthy = false;
        for _ in 0..300 {
            if client.get(format!("{base}/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                healthy = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(healthy, "the server answers /healthz");
        // Warm up the WebSocket path (snapshot queries, pools) before the baseline.
        for _ in 0..2 {
            let mut socket =
                connect(&base, &keys.issue("warm-up", TokenRole::User, Duration::from_secs(60)).unwrap()).await;
            let _ = socket.close(None).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = status_kib(pid, "VmRSS:");

        let started = Instant::now();
        let mut sockets = Vec::with_capacity(connections);
        for token in &tokens {
            sockets.push(connect(&base, token).await);
        }
        let connect_secs = started.elapsed().as_secs_f64();
        // Idle: nothing read or sent for a second (the server drops a client only after 15 s of silence).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = status_kib(pid, "VmRSS:");
        let peak = status_kib(pid, "VmHWM:");
        let threads = status_kib(pid, "Threads:");
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());

        // Were they all still open when measured? Each must answer a ping frame.
        let mut alive = 0;
        for socket in &mut sockets {
            if socket.send(Message::Text(json!({ "type": "ping" }).to_string().into())).await.is_err() {
                continue;
            }
            while let Some(text) = next_text(socket, Duration::from_secs(5)).await {
                if serde_json::from_str::<Value>(&text).is_ok_and(|f| f["type"] == "pong") {
                    alive += 1;
                    break;
                }
            }
        }
        for mut socket in sockets {
            let _ = socket.close(None).await;
        }

        let n = connections.max(1) as f64;
        figure(
            "progress",
            "idle_ws_server_rss",
            after as f64 / 1024.0,
            "MiB",
            json!({
                "connections": connections, "users": connections, "alive_at_measurement": alive,
                "target_mib": 50,
                "rss_before_mib": (before as f64 / 1024.0 * 100.0).round() / 100.0,
                "rss_after_mib": (after as f64 / 1024.0 * 100.0).round() / 100.0,
                "rss_peak_mib": (peak as f64 / 1024.0 * 100.0).round() / 100.0,
                "growth_mib": (after.saturating_sub(before) as f64 / 1024.0 * 100.0).round() / 100.0,
                "per_connection_kib": (after.saturating_sub(before) as f64 / n * 100.0).round() / 100.0,
                "server_threads": threads, "server_open_fds": fds,
                "connect_all_s": (connect_secs * 100.0).round() / 100.0,
                "server": "docqueue serve --role api (separate process, default HTTP workers)",
            }),
        );
    });
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

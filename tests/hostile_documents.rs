//! Hostile documents against a `docqueue serve` process started by the test: each is
//! read in a sandboxed extractor process, fails with a reason naming the limit or the
//! crash, and costs the server nothing. Cancel, shutdown and other users' work are
//! untouched by a reader that never finishes.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ws::{is_event, WsClient};
use common::{admin_token, token, ServerProcess, TestEnv, TestServer};
use common::{hostile, pdf_writer};
use docqueue::app::Role;
use serde_json::{json, Value};

/// Limits low enough that the tests finish quickly, with room for honest documents.
fn limits(max_cpu_seconds: u64) -> Vec<(&'static str, String)> {
    vec![
        ("DOCQUEUE_PROCESSING__MAX_MEMORY_MB", "512".into()),
        ("DOCQUEUE_PROCESSING__MAX_CPU_SECONDS", max_cpu_seconds.to_string()),
        ("DOCQUEUE_PROCESSING__MAX_SECONDS", "60".into()),
        ("DOCQUEUE_DOCUMENT_QUEUE__SHUTDOWN_GRACE_SECS", "2".into()),
        ("DOC_WORKER_CONCURRENCY", "3".into()),
    ]
}

fn is_finished(doc: &Value) -> bool {
    doc["queue_status"] != "queued" && doc["queue_status"] != "processing"
}

/// Polls `/healthz` every 100 ms until stopped; counts the answers that were not 200.
struct HealthWatch {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<usize>,
}

impl HealthWatch {
    fn start(server: &TestServer) -> HealthWatch {
        let (stop, failures) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let (client, url) = (server.client.clone(), server.url("/healthz"));
        let (stopped, failed) = (stop.clone(), failures.clone());
        let task = tokio::spawn(async move {
            let mut checks = 0;
            while !stopped.load(Ordering::Relaxed) {
                let answer = client.get(&url).timeout(Duration::from_secs(2)).send().await;
                if !answer.is_ok_and(|r| r.status() == 200) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                checks += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            checks
        });
        HealthWatch { stop, failures, task }
    }

    /// (checks made, checks failed)
    async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let checks = self.task.await.unwrap();
        (checks, self.failures.load(Ordering::Relaxed))
    }
}

#[actix_web::test]
async fn every_hostile_file_fails_with_its_reason_and_the_server_is_untouched() {
    let env = TestEnv::new();
    let server = ServerProcess::start(&env, &limits(3)).await;
    let (pid, idle_kb) = (server.pid(), server.memory_kb("VmRSS"));
    let health = HealthWatch::start(&server.http);
    let mallory = token("mallory");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("self-drawing.pdf", hostile::self_drawing_form_pdf(), "draws itself"),
        ("form-chain.pdf", hostile::form_chain_pdf(8), "processing.max_cpu_seconds"),
        ("header.csv", hostile::huge_header_csv(200_000, 30_000), "max_chars"),
        ("nested.html", hostile::deeply_nested_html(200_000), "processing.max_html_depth"),
        // Poppler streams the inflated bytes (the CPU limit stops it); a reader that
        // inflates in memory meets the memory limit first: either names its limit.
        ("inflating.pdf", hostile::inflating_pdf(2 << 30), "processing.max_"),
        ("bomb.docx", hostile::docx_zip_bomb(), "max_docx_uncompressed_bytes"),
        ("truncated.pdf", hostile::truncated_pdf(), "damaged or truncated"),
        // 1 MiB of attribute in a few KB, quoted by the reader's error.
        ("long-type.xlsx", hostile::xlsx_with_a_long_cell_type(1 << 20), "Unknown cell 't' attribute"),
    ];
    let mut uploaded = Vec::new();
    for (name, bytes, reason) in cases {
        let doc = server.http.upload_one(&mallory, name, bytes).await;
        uploaded.push((
            name,
            doc["id"].as_str().unwrap().to_string(),
            doc["job_id"].as_str().unwrap().to_string(),
            reason,
        ));
    }
    let mut jobs = std::collections::HashMap::new();
    for (name, id, job_id, reason) in &uploaded {
        let doc = server.http.wait_for(&mallory, id, Duration::from_secs(120), is_finished).await;
        assert_eq!(doc["queue_status"], "failed", "{name}: {doc}\n{}", server.log_text());
        let error = doc["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{name}: the reason {error:?} should name {reason:?}");
        assert!(error.chars().count() <= 1_000, "{name}: a reason of {} characters", error.chars().count());
        println!("{name}: {error}");
        jobs.insert(*name, job_id.clone());
    }

    let alice = token("alice");
    let honest = server.http.upload_one(&alice, "honest.pdf", pdf_writer::multi_page_pdf(3)).await;
    let honest = server.http.wait_for_status(&alice, honest["id"].as_str().unwrap(), "completed").await;
    assert!(honest["chunk_count"].as_i64().unwrap() >= 1);

    let (checks, failed) = health.finish().await;
    assert!(checks > 0 && failed == 0, "{failed} of {checks} health checks failed");
    assert!(server.child.id() == pid && std::path::Path::new(&format!("/proc/{pid}")).exists());
    let peak_kb = server.memory_kb("VmHWM");
    println!("server RSS: idle {} MiB, peak {} MiB during the hostile files", idle_kb / 1024, peak_kb / 1024);
    assert!(peak_kb < idle_kb + 100 * 1024, "the server grew from {idle_kb} KiB to {peak_kb} KiB");

    // The job's story says how each reader ended; /metrics counts the kinds.
    let admin = admin_token("root");
    let story = |name: &str| {
        let path = format!("/api/admin/queue/jobs/{}", jobs[name]);
        let http = &server.http;
        let admin = admin.clone();
        async move {
            let (status, story) = http.get_json(&admin, &path).await;
            assert_eq!(status, 200, "{story}");
            story["attempts"].as_array().unwrap().last().unwrap().clone()
        }
    };
    let attempt = story("form-chain.pdf").await;
    assert_eq!(attempt["extractor_outcome"], "cpu_limit", "{attempt}");
    assert!(attempt["extractor_exit"].as_str().unwrap().starts_with("signal"), "{attempt}");
    assert!(attempt["extractor_cpu_ms"].as_i64().unwrap() >= 1000, "{attempt}");
    let attempt = story("truncated.pdf").await;
    assert_eq!(attempt["extractor_outcome"], "unreadable", "{attempt}");
    assert_eq!(attempt["extractor_exit"], "exit 0", "{attempt}");

    let metrics = server.http.client.get(server.http.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for outcome in ["cpu_limit", "unreadable", "ok"] {
        let line = format!("docqueue_extractor_outcomes_total{{outcome=\"{outcome}\"}} ");
        let count: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .unwrap_or_else(|| panic!("no {line} in /metrics"))
            .parse()
            .unwrap();
        assert!(count >= 1.0, "{line}{count}");
    }
}

#[actix_web::test]
async fn a_reader_over_its_memory_limit_fails_naming_max_memory_mb() {
    let env = TestEnv::new();
    // The built-in reader inflates a page's content in memory.
    let mut env_vars = limits(30);
    env_vars.push(("DOCQUEUE_PROCESSING__PDFTOTEXT", String::new()));
    let server = ServerProcess::start(&env, &env_vars).await;
    let mallory = token("mallory");
    let doc = server.http.upload_one(&mallory, "inflating.pdf", hostile::inflating_pdf(2 << 30)).await;
    let done = server.http.wait_for(&mallory, doc["id"].as_str().unwrap(), Duration::from_secs(60), is_finished).await;
    assert_eq!(done["queue_status"], "failed", "{done}");
    assert_eq!(
        done["error"], "the PDF made the reader exceed its memory limit (processing.max_memory_mb = 512)",
        "{done}"
    );
    let path = format!("/api/admin/queue/jobs/{}", doc["job_id"].as_str().unwrap());
    let (_, story) = server.http.get_json(&admin_token("root"), &path).await;
    let attempt = &story["attempts"][0];
    assert_eq!(attempt["extractor_outcome"], "memory_limit", "{attempt}");
    assert!(attempt["extractor_exit"].as_str().unwrap().starts_with("signal"), "{attempt}");
    assert!(attempt["extractor_peak_memory_kb"].as_i64().unwrap() > 100 * 1024, "{attempt}");
    let metrics = server.http.client.get(server.http.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("docqueue_extractor_outcomes_total{outcome=\"memory_limit\"} 1"), "{metrics}");
    assert!(common::is_alive(server.pid()));
}

/// The soft and hard value of one line of /proc/PID/limits.
fn limit_of(pid: u32, name: &str) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {limits}"));
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (fields[0].to_string(), fields[1].to_string())
}

#[actix_web::test]
async fn extractor_processes_run_confined_with_no_environment_and_no_descriptors_of_the_server() {
    let env = TestEnv::new();
    let server = ServerProcess::start(&env, &limits(7)).await;
    // Spares are started with the worker pool; they are the extractors documents get.
    let extractors = common::eventually(Duration::from_secs(10), "spare extractors", || {
        let found = server.descendants();
        async move { (!found.is_empty()).then_some(found) }
    })
    .await;
    for pid in extractors {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(environ.is_empty(), "extractor {pid} has an environment: {}", String::from_utf8_lossy(&environ));
        // A spare caught while it starts can hold a descriptor of the dynamic loader's for
        // a moment; one inherited from the server would stay.
        let only_stdio = format!("extractor {pid} to hold descriptors 0, 1 and 2 only");
        common::eventually(Duration::from_secs(5), &only_stdio, || async move {
            let mut fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
            fds.all(|e| ["0", "1", "2"].contains(&e.unwrap().file_name().to_string_lossy().as_ref())).then_some(())
        })
        .await;
        assert_eq!(limit_of(pid, "Max address space"), ("536870912".into(), "536870912".into()));
        assert_eq!(limit_of(pid, "Max cpu time"), ("7".into(), "8".into()));
        assert_eq!(limit_of(pid, "Max core file size"), ("0".into(), "0".into()));
        assert_eq!(limit_of(pid, "Max file size"), ("0".into(), "0".into()));
        assert_eq!(limit_of(pid, "Max open files"), ("32".into(), "32".into()));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let process_group = stat.rsplit_once(')').unwrap().1.split_whitespace().nth(2).unwrap().to_string();
        assert_eq!(process_group, pid.to_string(), "extractor {pid} leads its own process group");
    }
}

/// Uploads a document whose reader never finishes; returns its ids and the process id
/// of the reader (the busy one among the server's descendants: the others are idle
/// spares, or an extractor waiting for its pdftotext).
async fn start_endless_reading(server: &ServerProcess, user: &str) -> (String, String, u32) {
    let doc = server.http.upload_one(user, "endless.pdf", hostile::form_chain_pdf(10)).await;
    let id = doc["id"].as_str().unwrap().to_string();
    server.http.wait_for_status(user, &id, "processing").await;
    let reader = common::eventually(Duration::from_secs(10), "the extractor to be reading", || {
        let busy = server.descendants().into_iter().find(|&pid| common::cpu_ticks(pid) >= 20);
        async move { busy }
    })
    .await;
    (id, doc["job_id"].as_str().unwrap().to_string(), reader)
}

#[actix_web::test]
async fn cancelling_a_document_whose_reader_never_finishes_kills_the_reader_within_a_second() {
    let env = TestEnv::new();
    let server = ServerProcess::start(&env, &limits(60)).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.http.base, &alice).await;
    socket.snapshot().await;
    let (id, _, reader) = start_endless_reading(&server, &alice).await;
    // A new socket holds live events for its first second, in case the client resumes:
    // once one has arrived, the next comes as soon as it happens.
    socket.collect_until(Duration::from_secs(10), |f| is_event(f, "document.queued", &id)).await;

    let asked = Instant::now();
    let response = server
        .http
        .client
        .delete(server.http.url(&format!("/api/documents/cancel/{id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert!(matches!(response.status().as_u16(), 200 | 202), "{}", response.status());
    socket.collect_until(Duration::from_secs(5), |f| is_event(f, "document.cancelled", &id)).await;
    let took = asked.elapsed();
    println!("cancelled arrived {} ms after the request", took.as_millis());
    assert!(took < Duration::from_secs(1), "cancel took {took:?}");
    assert!(!common::is_alive(reader), "the reader {reader} is still running");
    assert_eq!(server.http.document(&alice, &id).await["queue_status"], "cancelled");
}

#[actix_web::test]
async fn sigterm_while_a_reader_is_stuck_exits_zero_within_the_grace_and_hands_the_job_back() {
    let env = TestEnv::new();
    let mut server = ServerProcess::start(&env, &limits(60)).await;
    let alice = token("alice");
    let (id, job_id, _) = start_endless_reading(&server, &alice).await;
    let readers = server.descendants();

    let signalled = Instant::now();
    std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    let grace_and_two = Duration::from_secs(2 + 2);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(signalled.elapsed() < grace_and_two, "still running {:?} after SIGTERM", signalled.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("exited {} ms after SIGTERM", signalled.elapsed().as_millis());
    assert!(status.success(), "exit status {status:?}\n{}", server.log_text());
    for reader in readers {
        assert!(!common::is_alive(reader), "extractor {reader} outlived the server");
    }

    let api = TestServer::start(env.config(json!({})), Role::Api).await;
    let doc = api.document(&alice, &id).await;
    assert_eq!(doc["queue_status"], "queued", "{doc}");
    let (_, story) = api.get_json(&admin_token("root"), &format!("/api/admin/queue/jobs/{job_id}")).await;
    assert_eq!(story["queue"]["state"], "queued", "{story}");
    api.shutdown().await;
}

#[actix_web::test]
async fn other_users_documents_complete_in_parallel_while_a_reader_is_stuck() {
    let env = TestEnv::new();
    let server = ServerProcess::start(&env, &limits(60)).await;
    let mallory = token("mallory");
    let (stuck, _, _) = start_endless_reading(&server, &mallory).await;
    let stuck_worker = server.http.document(&mallory, &stuck).await["worker_id"].as_str().unwrap().to_string();

    let bob = token("bob");
    let first = server.http.upload_one(&bob, "report.pdf", pdf_writer::multi_page_pdf(10)).await;
    let second = server.http.upload_one(&bob, "notes.pdf", pdf_writer::multi_page_pdf(10)).await;
    let mut workers = Vec::new();
    for doc in [first, second] {
        let done = server.http.wait_for_status(&bob, doc["id"].as_str().unwrap(), "completed").await;
        assert!(done["chunk_count"].as_i64().unwrap() >= 1, "{done}");
        workers.push(done["worker_id"].as_str().unwrap().to_string());
    }
    assert!(!workers.contains(&stuck_worker), "{workers:?} vs the stuck {stuck_worker}");
    assert_eq!(server.http.document(&mallory, &stuck).await["queue_status"], "processing");
}

#[actix_web::test]
async fn inline_mode_reads_in_the_extractor_process_too() {
    let env = TestEnv::new();
    let config = env.config(json!({ "processing": { "mode": "inline", "max_cpu_seconds": 2 } }));
    let server = TestServer::start(config, Role::All).await;
    let alice = token("alice");
    for (name, bytes, reason) in [
        ("self-drawing.pdf", hostile::self_drawing_form_pdf(), "draws itself"),
        ("form-chain.pdf", hostile::form_chain_pdf(8), "processing.max_cpu_seconds"),
    ] {
        let doc = server.upload_one(&alice, name, bytes).await;
        let doc = server.wait_for(&alice, doc["id"].as_str().unwrap(), Duration::from_secs(30), is_finished).await;
        assert_eq!(doc["queue_status"], "failed", "{doc}");
        assert!(doc["error"].as_str().unwrap().contains(reason), "{doc}");
    }
    let doc =
        server.upload_one(&alice, "honest.pdf", pdf_writer::text_pdf(&["Inline still reads honest files."])).await;
    server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
    server.shutdown().await;
}

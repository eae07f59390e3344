//! Crash safety: a worker process killed mid-job, a Redis that lost everything, a
//! process stopped by SIGTERM, and Redis keys left by an earlier version.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::processors::ScriptedProcessor;
use common::{eventually, token, OwnRedis, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::db::attempts::{self, AttemptOutcome};
use docqueue::db::documents;
use docqueue::job_state::JobState;
use docqueue::queue::{ClaimedJob, Queue};
use redis::Commands;
use serde_json::json;

/// The default lease, heartbeat and maintenance pass (the tests' own are shorter).
const DEFAULT_TIMING: [(&str, &str); 3] = [
    ("DOCQUEUE_DOCUMENT_QUEUE__LEASE_MS", "15000"),
    ("DOCQUEUE_DOCUMENT_QUEUE__HEARTBEAT_MS", "5000"),
    ("DOCQUEUE_DOCUMENT_QUEUE__MAINTENANCE_INTERVAL_MS", "1000"),
];

/// A worker process as operators run it, with the default timing, whose embedding
/// requests go to `stalled`: a socket that accepts connections and never answers, so
/// its job stays mid-flight.
fn spawn_worker_process(env: &TestEnv, stalled: &TcpListener) -> Child {
    Command::new(env!("CARGO_BIN_EXE_docqueue"))
        .args(["serve", "--role", "worker"])
        .envs(env.env_vars())
        .envs(DEFAULT_TIMING)
        .env("DOCQUEUE_EMBEDDING__PROVIDER", "openai")
        .env("DOCQUEUE_EMBEDDING__BASE_URL", format!("http://{}/v1", stalled.local_addr().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[actix_web::test]
async fn a_job_whose_worker_process_is_killed_runs_again_elsewhere_within_seconds_with_default_settings() {
    let env = TestEnv::new();
    let config = env.config(json!({
        "document_queue": { "lease_ms": 15000, "heartbeat_ms": 5000, "maintenance_interval_ms": 1000 }
    }));
    let stalled = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut child = spawn_worker_process(&env, &stalled);
    let api = TestServer::start_with(config.clone(), Role::Api, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let doc = api.upload_one(&alice, "slow.txt", b"long job".to_vec()).await;
    let (id, job_id) = (doc["id"].as_str().unwrap().to_string(), doc["job_id"].as_str().unwrap().to_string());
    let child_marker = format!(":{}:", child.id());
    let running = api
        .wait_for(&alice, &id, Duration::from_secs(30), |d| {
            d["queue_status"] == "processing" && d["worker_id"].as_str().is_some_and(|w| w.contains(&child_marker))
        })
        .await;
    assert_eq!(running["attempts"], 1);
    let mut redis = env.redis();
    let stale_token: String = redis.hget(format!("{}job:{job_id}", env.redis_prefix), "token").unwrap();

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = Instant::now();
    let survivor = TestServer::start_with(
        config,
        Role::Worker,
        Arc::new(ScriptedProcessor { slow_steps: 5, ..ScriptedProcessor::new() }),
    )
    .await;
    // Not the 15 s lease: the dead process's liveness key expires within 3 s.
    let restarted = api
        .wait_for(&alice, &id, Duration::from_secs(8), |d| {
            d["worker_id"].as_str().is_some_and(|w| w.contains(&format!(":{}:", std::process::id())))
        })
        .await;
    println!("job running again {} ms after SIGKILL", killed_at.elapsed().as_millis());
    assert_eq!(restarted["attempts"], 2);
    let done = api.wait_for_status(&alice, &id, "completed").await;
    assert_eq!(done["attempts"], 2);
    // The rescue closed the killed run's attempt only: the survivor's run, which may have
    // marked the row before the rescuer wrote it, ended completed.
    let (status, story) = api.get_json(&common::admin_token("ops"), &format!("/api/admin/queue/jobs/{job_id}")).await;
    assert_eq!(status, 200, "{story}");
    let runs: Vec<_> = story["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].clone()).collect();
    assert_eq!(runs, vec![json!("stalled"), json!("completed")], "{story:#}");

    // The killed worker's late completion, with its old token, is refused.
    let stale = ClaimedJob {
        job_id: job_id.clone(),
        document_id: id.clone(),
        user_id: "alice".into(),
        token: stale_token,
        attempts: 1,
        content_type: "text/plain".into(),
        size_bytes: 8,
        enqueued_at_ms: 0,
        started_at_ms: 0,
    };
    let accepted = api.app().queue.end_job(&stale, JobState::Failed, "late and wrong").await.unwrap();
    assert!(!accepted, "a stale token cannot finish the job");
    let after = api.document(&alice, &id).await;
    assert_eq!(after["queue_status"], "completed");
    assert_eq!(after["error"], serde_json::Value::Null);
    survivor.shutdown().await;
    api.shutdown().await;
}

#[actix_web::test]
async fn a_redis_that_lost_everything_loses_no_document() {
    let own = OwnRedis::start();
    let env = TestEnv::with_redis(&own.url);
    let processor = ScriptedProcessor { quick_step_ms: 100, ..ScriptedProcessor::new() };
    let config = env.config(json!({ "document_queue": { "concurrency": 3, "reconcile_interval_secs": 1 },
                                    "storage": { "max_files_per_upload": 20 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(processor)).await;
    let alice = token("alice");
    let files: Vec<(String, Vec<u8>)> = (0..20).map(|i| (format!("doc{i}.txt"), vec![b'x'; 10])).collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let response = server.upload(&alice, &refs, None).await;
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.unwrap();
    let ids: Vec<String> =
        body["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    server.wait_for_status(&alice, &ids[0], "processing").await;

    let mut redis = redis::Client::open(own.url.as_str()).unwrap().get_connection().unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut redis).unwrap();

    for id in &ids {
        server.wait_for_status(&alice, id, "completed").await;
    }
    server.shutdown().await;
}

#[actix_web::test]
async fn sigterm_drains_the_process_and_exits_zero() {
    let env = TestEnv::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_docqueue"))
        .args(["serve", "--role", "all"])
        .envs(env.env_vars())
        .env("DOCQUEUE_SERVER__PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = common::http_client();
    common::eventually(Duration::from_secs(30), "the server to answer", || {
        let request = client.get(format!("{base}/healthz")).send();
        async move { request.await.ok().filter(|r| r.status() == 200).map(|_| ()) }
    })
    .await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(common::fixture("debian-reference-excerpt.pdf")).file_name("ref.pdf"),
    );
    let response = client
        .post(format!("{base}/api/documents/upload"))
        .bearer_auth(token("alice"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[actix_web::test]
async fn sigterm_closes_open_websockets_as_going_away_instead_of_waiting_for_them() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message;

    let env = TestEnv::new();
    let grace = 60;
    let mut server =
        common::ServerProcess::start(&env, &[("DOCQUEUE_DOCUMENT_QUEUE__SHUTDOWN_GRACE_SECS", grace.to_string())])
            .await;
    let url = format!("{}/ws?token={}", server.http.base.replacen("http", "ws", 1), token("alice"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("the upgrade is accepted");
    // The snapshot first: the session is registered with the hub.
    let first = socket.next().await.expect("a frame").expect("a frame");
    assert!(first.to_text().unwrap().contains("snapshot"), "{first:?}");

    let signalled = Instant::now();
    Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    let close = loop {
        match socket.next().await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    let close = close.expect("a close frame with a code");
    assert_eq!(close.code, CloseCode::Away, "{close:?}");
    drop(socket);
    let status = tokio::task::spawn_blocking(move || server.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit status {status:?}");
    // Waiting for the socket would have taken the whole grace period.
    assert!(signalled.elapsed() < Duration::from_secs(grace / 2), "exited {:?} after SIGTERM", signalled.elapsed());
    println!("socket closed as going away and process exited {} ms after SIGTERM", signalled.elapsed().as_millis());
}

/// The rescuer writes the row after the job is back in Redis, so another worker may have
/// claimed it and marked the row first. The stalled run's late end must leave the new
/// run alone: the row stays `processing` under its new worker, and only the stalled
/// run's attempt is closed. A requeue of the run the row shows still applies.
#[actix_web::test]
async fn a_stalled_runs_late_requeue_leaves_the_jobs_next_run_alone() {
    let env = TestEnv::new();
    let db = common::migrated_db(&env, json!({}));
    let row = common::queued_row("doc-rescued");
    let (id, job) = (row.id.clone(), row.job_id.clone());
    let (stalled, next) = ("host:100:0", "host:200:1");
    let late_requeue_changed = {
        let (id, job) = (id.clone(), job.clone());
        db.write(move |conn| {
            documents::insert_all(conn, std::slice::from_ref(&row))?;
            documents::mark_processing(conn, &id, &job, stalled, 1)?;
            attempts::record_start(conn, &id, &job, 1, stalled)?;
            documents::mark_processing(conn, &id, &job, next, 2)?;
            attempts::record_start(conn, &id, &job, 2, next)?;
            attempts::record_end(conn, &job, stalled, 1, AttemptOutcome::Stalled, Some("stopped responding"))?;
            documents::mark_requeued(conn, &id, &job, stalled, 1, Some("stopped responding"))
        })
        .await
        .unwrap()
    };
    assert!(!late_requeue_changed, "the stalled run's requeue must not apply to the next run's row");
    let find = |id: String| db.run(move |conn| documents::find(conn, &id));
    let doc = find(id.clone()).await.unwrap().unwrap();
    assert_eq!((doc.queue_status.as_str(), doc.worker_id.as_deref(), doc.attempts), ("processing", Some(next), 2));
    let runs = {
        let id = id.clone();
        db.run(move |conn| attempts::for_document(conn, &id)).await.unwrap()
    };
    let runs: Vec<_> = runs.iter().map(|r| (r.attempt, r.worker_id.as_str(), r.outcome.as_deref())).collect();
    assert_eq!(runs, vec![(1, stalled, Some("stalled")), (2, next, None)]);

    let (id2, job2) = (id.clone(), job.clone());
    let requeued = db.write(move |conn| documents::mark_requeued(conn, &id2, &job2, next, 2, None)).await.unwrap();
    assert!(requeued);
    assert_eq!(find(id).await.unwrap().unwrap().queue_status, "queued");
}

#[actix_web::test]
async fn waiting_counts_an_earlier_version_kept_are_rebuilt_from_the_waiting_jobs() {
    let env = TestEnv::new();
    let config = env.config(json!({ "document_queue": { "reconcile_interval_secs": 1 } }));
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    queue.pause().await.unwrap();
    let jobs: Vec<_> = ["a1", "a2", "a3"].iter().map(|id| common::text_job(id, "alice")).collect();
    queue.enqueue(&jobs).await.unwrap();
    queue.enqueue(&[common::text_job("b1", "bob"), common::text_job("b2", "bob")]).await.unwrap();
    // What the version before `users_waiting` kept instead: a sorted set of counts.
    let prefix = config.redis.prefix.clone();
    let mut redis = env.redis();
    let _: () = redis.del(format!("{prefix}users_waiting")).unwrap();
    let _: () = redis.zadd_multiple(format!("{prefix}users"), &[(3, "alice"), (2, "bob")]).unwrap();
    // A job enqueued by this version before the conversion, which counts it on its own.
    queue.enqueue(&[common::text_job("a4", "alice")]).await.unwrap();

    let server = TestServer::start_with(config, Role::Worker, Arc::new(ScriptedProcessor::new())).await;
    eventually(Duration::from_secs(30), "the earlier version's counts converted", || {
        let exists: bool = redis.exists(format!("{prefix}users")).unwrap();
        async move { (!exists).then_some(()) }
    })
    .await;
    assert_eq!(queue.queued_per_user(10).await.unwrap(), [("alice".to_string(), 4), ("bob".to_string(), 2)]);
    assert!(!queue.upgrade_earlier_keys().await.unwrap(), "a second conversion finds nothing to do");
    server.shutdown().await;
}

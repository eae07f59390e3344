//! Steering the queue: pause and resume, retention of finished jobs, the inline
//! rollback mode, and graceful shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::processors::ScriptedProcessor;
use common::{admin_token, token, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::job_state::JobState;
use redis::Commands;
use serde_json::json;

async fn admin_post(server: &TestServer, path: &str) {
    let response = server.client.post(server.url(path)).bearer_auth(admin_token("ops")).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
}

#[actix_web::test]
async fn pause_stops_claims_and_resume_restarts_them() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let config = env.config(json!({}));
    let workers = config.document_queue.concurrency;
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    admin_post(&server, "/api/admin/queue/pause").await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "waiting.txt", b"w".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    // The job is waiting: a claim begun from here on would take it, were claims not paused.
    server.wait_for_a_later_claim(workers).await;
    assert_eq!(server.document(&alice, id).await["queue_status"], "queued");
    assert!(processor.started_names().is_empty());
    let (_, status) = server.get_json(&admin_token("ops"), "/api/admin/queue/status").await;
    assert_eq!(status["paused"], true);
    assert_eq!(status["counts"]["queued"], 1);
    admin_post(&server, "/api/admin/queue/resume").await;
    server.wait_for_status(&alice, id, "completed").await;
    server.shutdown().await;
}

#[actix_web::test]
async fn retention_trims_finished_jobs_by_count() {
    let env = TestEnv::new();
    let config = env.config(json!({ "document_queue": {
        "retention_completed_count": 2, "retention_interval_secs": 1
    }}));
    let server = TestServer::start_with(config, Role::All, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let mut job_ids = Vec::new();
    for i in 0..5 {
        let doc = server.upload_one(&alice, &format!("r{i}.txt"), b"r".to_vec()).await;
        server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
        job_ids.push(doc["job_id"].as_str().unwrap().to_string());
    }
    let mut redis = env.redis();
    let completed_key = format!("{}completed", env.redis_prefix);
    common::eventually(Duration::from_secs(10), "retention to trim", || {
        let kept: usize = redis.zcard(&completed_key).unwrap();
        async move { (kept == 2).then_some(()) }
    })
    .await;
    let kept: Vec<String> = redis.zrange(&completed_key, 0, -1).unwrap();
    assert_eq!(kept, job_ids[3..].to_vec(), "the newest are kept");
    for old in &job_ids[..3] {
        let exists: bool = redis.exists(format!("{}job:{old}", env.redis_prefix)).unwrap();
        assert!(!exists, "job hash {old} removed");
    }
    // The documents themselves are untouched: retention is about the queue's memory.
    let (_, listed) = server.get_json(&alice, "/api/documents?status=completed").await;
    assert_eq!(listed["documents"].as_array().unwrap().len(), 5);
    server.shutdown().await;
}

#[actix_web::test]
async fn inline_mode_processes_inside_the_upload_request() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let config = env.config(json!({ "processing": { "mode": "inline" } }));
    let server = TestServer::start_with(config, Role::Api, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "now.txt", b"now".to_vec()).await;
    assert_eq!(doc["queue_status"], "completed");
    assert_eq!(processor.started_names(), vec!["now.txt"]);
    server.shutdown().await;
}

#[actix_web::test]
async fn shutdown_lets_a_running_job_finish() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor { slow_steps: 15, ..ScriptedProcessor::new() };
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "slow.txt", b"s".to_vec()).await;
    let id = doc["id"].as_str().unwrap().to_string();
    server.wait_for_status(&alice, &id, "processing").await;
    let db = server.app().db.clone();
    server.shutdown().await;
    let row = db.run(move |conn| docqueue::db::documents::find(conn, &id)).await.unwrap().unwrap();
    assert_eq!(row.queue_status, "completed");
}

#[actix_web::test]
async fn shutdown_hands_an_unfinished_job_back_after_the_grace_period() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let config = env.config(json!({ "document_queue": { "shutdown_grace_secs": 1 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "slow.txt", b"s".to_vec()).await;
    let id = doc["id"].as_str().unwrap().to_string();
    let job_id = doc["job_id"].as_str().unwrap().to_string();
    server.wait_for_status(&alice, &id, "processing").await;
    let db = server.app().db.clone();
    server.shutdown().await;
    let row = db.run(move |conn| docqueue::db::documents::find(conn, &id)).await.unwrap().unwrap();
    assert_eq!(row.queue_status, "queued");
    let state: String = env.redis().hget(format!("{}job:{job_id}", env.redis_prefix), "state").unwrap();
    assert_eq!(state, "waiting", "back in the queue for the next worker");
}

/// An upload's jobs wake no idle worker until they are announced: a woken worker's
/// first event must come after the `document.queued` the upload sends, never before.
/// `enqueue_before_announcing` leaves the wake list alone; `wake_workers` fills it.
#[actix_web::test]
async fn announced_jobs_wake_idle_workers_only_when_asked() {
    let env = TestEnv::new();
    let config = env.config(json!({}));
    let queue = docqueue::queue::Queue::new(&config.redis, &config.document_queue).unwrap();
    let job = |i: usize| common::text_job(&format!("job-{i}"), "alice");
    let mut redis = env.redis();
    let wake_list = queue.keys().wake();
    let positions = queue.enqueue_before_announcing(&[job(1), job(2), job(3)]).await.unwrap();
    assert_eq!(positions, vec![Some(1), Some(2), Some(3)]);
    assert_eq!(redis.llen::<_, usize>(&wake_list).unwrap(), 0, "nobody woken before the announcement");
    queue.wake_workers(3).await.unwrap();
    assert_eq!(redis.llen::<_, usize>(&wake_list).unwrap(), 3);
    queue.enqueue(&[job(4)]).await.unwrap();
    assert_eq!(redis.llen::<_, usize>(&wake_list).unwrap(), 4, "a plain enqueue wakes at once");
}

/// Enqueueing is idempotent per job id, within one call and across calls (the upload
/// and the reconciler may race): the job waits once, keeps its place and its fields,
/// and each reply gives its position.
#[actix_web::test]
async fn enqueueing_a_job_again_leaves_it_waiting_once() {
    let env = TestEnv::new();
    let config = env.config(json!({}));
    let queue = docqueue::queue::Queue::new(&config.redis, &config.document_queue).unwrap();
    let job = |id: &str| common::text_job(id, "alice");
    let positions = queue.enqueue(&[job("a"), job("b"), job("a")]).await.unwrap();
    assert_eq!(positions, vec![Some(1), Some(2), Some(1)]);
    assert_eq!(queue.enqueue(&[job("b")]).await.unwrap(), vec![Some(2)]);
    let counts = queue.counts().await.unwrap();
    assert_eq!(counts.queued, 2, "{counts:?}");
    let records = queue.job_records(&["a".to_string(), "b".to_string()]).await.unwrap();
    let described: Vec<_> = records.iter().map(|r| (r.job_id.as_str(), r.filename.as_str(), r.attempts)).collect();
    assert_eq!(described, vec![("a", "a.txt", 0), ("b", "b.txt", 0)]);

    let mut conn = queue.dedicated_connection().await.unwrap();
    let claimed = queue.claim(&mut conn, "worker-1").await.unwrap().expect("a waits first");
    assert_eq!((claimed.job_id.as_str(), claimed.document_id.as_str(), claimed.attempts), ("a", "doc-a", 1));
    assert_eq!((claimed.content_type.as_str(), claimed.size_bytes), ("text/plain", 1));
    assert_eq!(queue.enqueue(&[job("a")]).await.unwrap(), vec![None], "an active job is left running");
    let (ended, next) =
        queue.end_job_and_claim(&claimed, JobState::Completed, "", Some(("worker-1", ""))).await.unwrap();
    assert!(ended);
    assert_eq!(next.map(|job| job.job_id), Some("b".to_string()));
    assert!(queue.claim(&mut conn, "worker-1").await.unwrap().is_none(), "each job ran once");
}

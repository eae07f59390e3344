//! Failures: transient ones retry with back-off, permanent ones fail at once with the
//! reason, a panicking or hanging processor costs an attempt, never the pool.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::processors::ScriptedProcessor;
use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use redis::Commands;
use serde_json::json;

#[actix_web::test]
async fn transient_failures_retry_with_back_off_then_succeed() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let config = env.config(json!({ "document_queue": { "retry_attempts": 3, "backoff_base_ms": 300 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "fail2.txt", b"flaky".to_vec()).await;
    let done = server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
    assert_eq!(done["attempts"], 3);
    assert_eq!(done["error"], serde_json::Value::Null);
    let starts: Vec<_> = processor.started.lock().unwrap().iter().map(|(_, _, at)| *at).collect();
    assert_eq!(starts.len(), 3);
    // Back-off doubles: at least base*0.75 before the second try, 2*base*0.75 before the third.
    assert!(starts[1] - starts[0] >= Duration::from_millis(225), "{:?}", starts[1] - starts[0]);
    assert!(starts[2] - starts[1] >= Duration::from_millis(450), "{:?}", starts[2] - starts[1]);
    server.shutdown().await;
}

#[actix_web::test]
async fn transient_failures_beyond_the_retry_budget_fail_with_the_reason() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let config = env.config(json!({ "document_queue": { "retry_attempts": 1 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "fail2.txt", b"flaky".to_vec()).await;
    let failed = server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["attempts"], 2);
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("simulated outage") && error.contains("2 failed attempts"), "{error}");
    server.shutdown().await;
}

#[actix_web::test]
async fn permanent_failure_is_not_retried_and_its_reason_reaches_the_row() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    // A wrongly scheduled retry would be due at once and promoted by the next pass.
    let config = env.config(json!({ "document_queue": { "backoff_base_ms": 1, "maintenance_interval_ms": 100 } }));
    let workers = config.document_queue.concurrency;
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "permanent.txt", b"unreadable".to_vec()).await;
    let failed = server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "failed").await;
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["error"], "the document is not readable (simulated)");
    assert!(failed["finished_at"].is_string());
    server.wait_for_a_later_maintenance_pass("promote_delayed").await;
    server.wait_for_a_later_claim(workers).await;
    let job: HashMap<String, String> =
        env.redis().hgetall(format!("{}job:{}", env.redis_prefix, doc["job_id"].as_str().unwrap())).unwrap();
    assert_eq!((job["state"].as_str(), job["attempts"].as_str()), ("failed", "1"), "never claimed again");
    assert_eq!(processor.started_names(), vec!["permanent.txt"], "never retried");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_panicking_processor_costs_an_attempt_and_the_pool_stays_at_full_strength() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor { slow_steps: 30, ..ScriptedProcessor::new() };
    let config = env.config(json!({ "document_queue": { "concurrency": 3 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "panic.txt", b"boom".to_vec()).await;
    let done = server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
    assert_eq!(done["attempts"], 2);

    // Three slow jobs run at the same time: all three workers are alive.
    let files: Vec<(&str, Vec<u8>)> =
        vec![("slow1.txt", b"1".to_vec()), ("slow2.txt", b"2".to_vec()), ("slow3.txt", b"3".to_vec())];
    assert_eq!(server.upload(&alice, &files, None).await.status(), 202);
    common::eventually(Duration::from_secs(20), "three jobs processing at once", || async {
        let (_, body) = server.get_json(&alice, "/api/documents?status=processing").await;
        (body["documents"].as_array().map_or(0, |d| d.len()) == 3).then_some(())
    })
    .await;
    server.shutdown().await;
}

#[actix_web::test]
async fn a_hanging_processor_is_stopped_by_the_job_timeout() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let config = env.config(json!({ "document_queue": { "job_timeout_secs": 1, "retry_attempts": 0 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let hung = server.upload_one(&alice, "hang.txt", b"zzz".to_vec()).await;
    let failed = server.wait_for_status(&alice, hung["id"].as_str().unwrap(), "failed").await;
    assert!(failed["error"].as_str().unwrap().contains("longer than 1 s"), "{failed}");
    let next = server.upload_one(&alice, "after.txt", b"fine".to_vec()).await;
    server.wait_for_status(&alice, next["id"].as_str().unwrap(), "completed").await;
    server.shutdown().await;
}

#[actix_web::test]
async fn workers_are_recycled_after_max_jobs_per_worker() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let config = env.config(json!({ "document_queue": { "concurrency": 1, "max_jobs_per_worker": 2 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let mut workers = Vec::new();
    for i in 0..4 {
        let doc = server.upload_one(&alice, &format!("d{i}.txt"), b"x".to_vec()).await;
        let done = server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
        workers.push(done["worker_id"].as_str().unwrap().to_string());
    }
    assert_eq!(workers[0], workers[1]);
    assert_ne!(workers[1], workers[2], "a fresh worker after two jobs: {workers:?}");
    assert_eq!(workers[2], workers[3]);
    let host_pid = format!(":{}:", std::process::id());
    assert!(workers.iter().all(|w| w.contains(&host_pid)), "worker_id is host:pid:n: {workers:?}");
    server.shutdown().await;
}

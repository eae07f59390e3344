//! `/metrics` is valid Prometheus text and its counters move with the work.

mod common;

use std::sync::Arc;

use common::processors::ScriptedProcessor;
use common::{scrape, token, value, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::json;

#[actix_web::test]
async fn metrics_parse_and_move_when_jobs_complete_and_fail() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await;
    let before = scrape(&server).await;
    assert_eq!(value(&before, "docqueue_jobs_total", Some(("outcome", "completed"))), 0.0);
    assert!(value(&before, "docqueue_workers_active", None) >= 1.0);

    let alice = token("alice");
    let ok = server.upload_one(&alice, "fine.txt", b"x".to_vec()).await;
    let bad = server.upload_one(&alice, "permanent.txt", b"x".to_vec()).await;
    server.wait_for_status(&alice, ok["id"].as_str().unwrap(), "completed").await;
    server.wait_for_status(&alice, bad["id"].as_str().unwrap(), "failed").await;

    let after = scrape(&server).await;
    assert_eq!(value(&after, "docqueue_jobs_total", Some(("outcome", "completed"))), 1.0);
    assert_eq!(value(&after, "docqueue_jobs_total", Some(("outcome", "failed"))), 1.0);
    assert_eq!(value(&after, "docqueue_queue_jobs", Some(("state", "completed"))), 1.0);
    assert_eq!(value(&after, "docqueue_processing_duration_seconds", Some(("content_type", "text/plain"))), 1.0);
    assert_eq!(value(&after, "docqueue_enqueue_to_start_seconds", None), 2.0);
    assert!(value(&after, "docqueue_http_requests_total", Some(("route", "/api/documents/upload"))) >= 2.0);
    assert_eq!(value(&after, "docqueue_worker_claim_attempts_total", Some(("outcome", "claimed"))), 2.0);
    server.shutdown().await;
}

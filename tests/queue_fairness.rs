//! Fair claiming: one user's backlog never holds up another user, and within one
//! user lower `queue_priority` runs first.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::processors::ScriptedProcessor;
use common::{admin_token, token, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::{json, Value};

async fn admin_post(server: &TestServer, path: &str) {
    let response = server.client.post(server.url(path)).bearer_auth(admin_token("ops")).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
}

#[actix_web::test]
async fn one_users_backlog_does_not_hold_up_another_user() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let config = env.config(json!({
        "document_queue": { "concurrency": 3 },
        "storage": { "max_files_per_upload": 100 },
    }));
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    admin_post(&server, "/api/admin/queue/pause").await;

    let files: Vec<(String, Vec<u8>)> =
        (0..100).map(|i| (format!("a-{i:03}.txt"), format!("alice {i}").into_bytes())).collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let response = server.upload(&token("alice"), &refs, None).await;
    assert_eq!(response.status(), 202);
    let bob = server.upload_one(&token("bob"), "b-only.txt", b"bob's one file".to_vec()).await;
    assert_eq!(bob["queue_position"], 2, "bob waits behind one of alice's jobs, not 100: {bob}");

    admin_post(&server, "/api/admin/queue/resume").await;
    server.wait_for_status(&token("bob"), bob["id"].as_str().unwrap(), "completed").await;
    let order = processor.started_names();
    let bob_claim = order.iter().position(|n| n == "b-only.txt").unwrap();
    assert!(bob_claim < 3, "bob's job was claim #{} of {order:?}", bob_claim + 1);
    server.shutdown().await;
}

#[actix_web::test]
async fn lower_priority_value_runs_first_within_a_user() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let config = env.config(json!({ "document_queue": { "concurrency": 1 } }));
    let server = TestServer::start_with(config, Role::All, Arc::new(processor.clone())).await;
    admin_post(&server, "/api/admin/queue/pause").await;
    let alice = token("alice");
    let routine: Vec<(&str, Vec<u8>)> =
        vec![("r1.txt", b"r1".to_vec()), ("r2.txt", b"r2".to_vec()), ("r3.txt", b"r3".to_vec())];
    assert_eq!(server.upload(&alice, &routine, Some(10)).await.status(), 202);
    let response = server.upload(&alice, &[("urgent.txt", b"u".to_vec())], Some(-5)).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["documents"][0]["queue_position"], 1);
    admin_post(&server, "/api/admin/queue/resume").await;
    common::eventually(Duration::from_secs(30), "all four processed", || {
        let n = processor.started_names().len();
        async move { (n == 4).then_some(()) }
    })
    .await;
    assert_eq!(processor.started_names(), vec!["urgent.txt", "r1.txt", "r2.txt", "r3.txt"]);
    server.shutdown().await;
}

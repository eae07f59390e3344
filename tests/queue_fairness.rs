//! Fair claiming: one user's backlog never holds up another user, and within one
//! user lower `queue_priority` runs first.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::processors::ScriptedProcessor;
use common::{admin_token, token, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::db::documents;
use docqueue::db::models::{now, Document, FileFacts};
use docqueue::queue::NewJob;
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

/// A queued row as an upload would create it (its file is never read: no worker runs).
fn queued_document(user: &str, name: &str) -> Document {
    queued_with_priority(user, name, 0)
}

fn queued_with_priority(user: &str, name: &str, priority: i32) -> Document {
    let file = FileFacts {
        filename: name.into(),
        content_type: "text/plain".into(),
        size_bytes: 1,
        sha256: String::new(),
        storage_path: String::new(),
    };
    Document::queued(ulid::Ulid::generate().to_string(), user, file, priority, now())
}

#[actix_web::test]
async fn positions_equal_the_claim_order_with_ten_thousand_users_waiting() {
    let env = TestEnv::new();
    // HTTP only: no worker claims, so the test's own claims are the only ones.
    let server = TestServer::start_with(env.config(json!({})), Role::Api, Arc::new(ScriptedProcessor::new())).await;
    let (db, queue) = (server.app().db.clone(), server.app().queue.clone());
    let flood: Vec<Document> = (0..50).map(|i| queued_document("flooder", &format!("f-{i}.txt"))).collect();
    let singles: Vec<Document> = (0..10_000).map(|i| queued_document(&format!("user-{i:05}"), "one.txt")).collect();
    for rows in [&flood, &singles] {
        let rows = rows.clone();
        db.run(move |conn| documents::insert_all(conn, &rows)).await.unwrap();
    }
    // The flooder queued first, then ten thousand users one document each.
    for batch in flood.chunks(500).chain(singles.chunks(500)) {
        let jobs: Vec<NewJob> = batch.iter().map(NewJob::for_document).collect();
        queue.enqueue(&jobs).await.unwrap();
    }
    // The admin's view of who waits, most first (ties by user id).
    let top = queue.queued_per_user(2).await.unwrap();
    assert_eq!(top, [("flooder".to_string(), 50), ("user-00000".to_string(), 1)]);

    // 200 jobs: all of the flooder's, and 150 single users spread over the queue.
    let mut reported: HashMap<String, u64> = HashMap::new();
    let (_, flooder) = server.get_json(&token("flooder"), "/api/documents/processing-status").await;
    for doc in flooder["documents"].as_array().unwrap() {
        reported.insert(doc["job_id"].as_str().unwrap().into(), doc["queue_position"].as_u64().unwrap());
    }
    for i in (0..10_000).step_by(67) {
        let (_, mine) = server.get_json(&token(&format!("user-{i:05}")), "/api/documents/processing-status").await;
        let doc = &mine["documents"][0];
        reported.insert(doc["job_id"].as_str().unwrap().into(), doc["queue_position"].as_u64().unwrap());
    }
    assert_eq!(reported.len(), 200);

    let mut conn = queue.dedicated_connection().await.unwrap();
    let mut claimed: HashMap<String, u64> = HashMap::new();
    while let Some(job) = queue.claim(&mut conn, "test-claimer").await.unwrap() {
        claimed.insert(job.job_id, claimed.len() as u64 + 1);
    }
    assert_eq!(claimed.len(), 10_050);
    assert_eq!(queue.queued_per_user(2).await.unwrap(), [], "no one waits once every job is claimed");
    for (job_id, position) in &reported {
        assert_eq!(claimed[job_id], *position, "job {job_id}: reported position {position}");
    }
    // Fair: every single user waits behind at most one of the flooder's jobs.
    let mut flooder: Vec<u64> = flood.iter().map(|d| claimed[&d.job_id]).collect();
    flooder.sort_unstable();
    let last_single = singles.iter().map(|d| claimed[&d.job_id]).max().unwrap();
    assert!(
        last_single < flooder[1],
        "the last single user ran at {last_single}, the flooder's second job at {}",
        flooder[1]
    );
    server.shutdown().await;
}

#[actix_web::test]
async fn one_batch_mixing_users_and_priorities_is_claimed_in_the_positions_it_reported() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::Api, Arc::new(ScriptedProcessor::new())).await;
    let (db, queue) = (server.app().db.clone(), server.app().queue.clone());
    // Alice already waits with one job; then one batch holds more of hers, two that
    // rank before them (the second between the first and the rest), and bob's.
    let earlier = queued_with_priority("alice", "a0", 10);
    let batch = vec![
        queued_with_priority("alice", "a1", 10),
        queued_with_priority("bob", "b1", 0),
        queued_with_priority("alice", "a2", 10),
        queued_with_priority("alice", "urgent", -5),
        queued_with_priority("alice", "soon", 0),
        queued_with_priority("bob", "b2", 0),
        queued_with_priority("alice", "a3", 10),
    ];
    let rows: Vec<Document> = std::iter::once(earlier.clone()).chain(batch.iter().cloned()).collect();
    db.run(move |conn| documents::insert_all(conn, &rows)).await.unwrap();
    queue.enqueue(&[NewJob::for_document(&earlier)]).await.unwrap();
    let jobs: Vec<NewJob> = batch.iter().map(NewJob::for_document).collect();
    let positions = queue.enqueue(&jobs).await.unwrap();

    let mut conn = queue.dedicated_connection().await.unwrap();
    let mut order = Vec::new();
    while let Some(job) = queue.claim(&mut conn, "test-claimer").await.unwrap() {
        order.push(job.job_id);
    }
    let name_of = |job_id: &String| {
        std::iter::once(&earlier).chain(&batch).find(|d| &d.job_id == job_id).unwrap().filename.clone()
    };
    let names: Vec<String> = order.iter().map(name_of).collect();
    for (document, position) in batch.iter().zip(&positions) {
        let claimed = order.iter().position(|id| id == &document.job_id).unwrap() as u64 + 1;
        assert_eq!(Some(claimed), *position, "{}: claimed at {claimed} of {names:?}", document.filename);
    }
    let of = |user: &str| -> Vec<String> {
        order
            .iter()
            .filter(|id| std::iter::once(&earlier).chain(&batch).any(|d| &d.job_id == *id && d.user_id == user))
            .map(name_of)
            .collect()
    };
    assert_eq!(of("alice"), ["urgent", "soon", "a0", "a1", "a2", "a3"], "alice's own order: {names:?}");
    assert_eq!(of("bob"), ["b1", "b2"], "bob's own order: {names:?}");
    // Fair: bob's first job waits behind at most one of alice's, his second behind two.
    let at = |name: &str| names.iter().position(|n| n == name).unwrap();
    assert!(at("b1") <= 1 && at("b2") <= 3, "bob waited behind alice's flood: {names:?}");
    server.shutdown().await;
}

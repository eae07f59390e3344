//! Cancelling: a queued job at once, a running one within a second; a finished one is
//! a conflict; another user's is not found.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::ResponseError;
use common::processors::ScriptedProcessor;
use common::{admin_token, token, OwnRedis, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::db::documents;
use docqueue::documents::{cancel_document, CancelError};
use docqueue::error::AppError;
use docqueue::job_state::JobState;
use docqueue::progress::Publisher;
use docqueue::queue::{NewJob, Queue};
use redis::Commands;
use serde_json::{json, Value};

async fn cancel(server: &TestServer, user_token: &str, id: &str) -> (u16, Value) {
    let response = server
        .client
        .delete(server.url(&format!("/api/documents/cancel/{id}")))
        .bearer_auth(user_token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn a_queued_job_is_cancelled_at_once_and_never_runs() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(processor.clone())).await;
    let paused =
        server.client.post(server.url("/api/admin/queue/pause")).bearer_auth(admin_token("ops")).send().await.unwrap();
    assert_eq!(paused.status(), 200);
    let alice = token("alice");
    let doc = server.upload_one(&alice, "later.txt", b"later".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    let (status, body) = cancel(&server, &alice, id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["queue_status"], "cancelled");
    server.client.post(server.url("/api/admin/queue/resume")).bearer_auth(admin_token("ops")).send().await.unwrap();
    let other = server.upload_one(&alice, "other.txt", b"other".to_vec()).await;
    server.wait_for_status(&alice, other["id"].as_str().unwrap(), "completed").await;
    assert_eq!(processor.started_names(), vec!["other.txt"]);
    assert_eq!(server.document(&alice, id).await["queue_status"], "cancelled");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_running_job_stops_within_a_second_and_ends_cancelled() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(processor.clone())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "slow.txt", b"slow".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    server.wait_for_status(&alice, id, "processing").await;
    let asked = Instant::now();
    let (status, _) = cancel(&server, &alice, id).await;
    assert!(status == 200 || status == 202, "{status}");
    server.wait_for_status(&alice, id, "cancelled").await;
    let took = asked.elapsed();
    println!("running job cancelled {} ms after the request", took.as_millis());
    assert_eq!(processor.finished.load(std::sync::atomic::Ordering::SeqCst), 1, "the processor stopped");
    // The slow job would run 10 s; it stopped at its next check.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    server.shutdown().await;
}

#[actix_web::test]
async fn cancelling_a_finished_job_is_409_and_another_users_is_404() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "quick.txt", b"quick".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    server.wait_for_status(&alice, id, "completed").await;
    let (status, body) = cancel(&server, &alice, id).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "conflict");
    let (status, _) = cancel(&server, &token("mallory"), id).await;
    assert_eq!(status, 404);
    server.shutdown().await;
}

/// A cancel meets a running job that ends on its own before its worker looks for a
/// cancel (every 250 ms): the answer is the 409 of any finished job, not a 202 that
/// promises a `document.cancelled` that never comes. The test plays the worker, so the
/// job ends exactly inside that window.
#[actix_web::test]
async fn a_job_that_completes_before_its_worker_sees_the_cancel_is_a_conflict() {
    let env = TestEnv::new();
    let config = env.config(json!({}));
    let db = common::migrated_db(&env, json!({}));
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    let events = Publisher::new(queue.clone(), 100);
    let row = common::queued_row("report");
    let job = NewJob { job_id: row.job_id.clone(), document_id: row.id.clone(), ..common::text_job("report", "alice") };
    let inserted = row.clone();
    db.run(move |conn| documents::insert_all(conn, &[inserted])).await.unwrap();
    queue.enqueue(&[job]).await.unwrap();
    let mut conn = queue.dedicated_connection().await.unwrap();
    let claimed = queue.claim(&mut conn, "w0").await.unwrap().unwrap();
    let (id, job_id) = (row.id.clone(), row.job_id.clone());
    let started = db.run(move |conn| documents::mark_processing(conn, &id, &job_id, "w0", 1)).await.unwrap();

    let cancelling = tokio::spawn({
        let (db, queue) = (db.clone(), queue.clone());
        async move { cancel_document(&db, &queue, &events, started.unwrap()).await }
    });
    let mut redis = env.redis();
    let job_key = redis.keys::<_, Vec<String>>(format!("*job:{}", row.job_id)).unwrap().remove(0);
    common::eventually(Duration::from_secs(5), "the cancel to be asked", || {
        let asked: Option<String> = redis.hget(&job_key, "cancel_requested").unwrap();
        async move { asked.map(|_| ()) }
    })
    .await;
    let (accepted, _) = queue.end_job_and_claim(&claimed, JobState::Completed, "", None).await.unwrap();
    assert!(accepted, "the worker's completion");
    let (id, job_id) = (row.id.clone(), row.job_id.clone());
    assert!(db.run(move |conn| documents::mark_completed(conn, &id, &job_id, 2, None)).await.unwrap());

    let answer = cancelling.await.unwrap();
    assert!(matches!(answer, Err(CancelError::AlreadyFinished(JobState::Completed))), "{answer:?}");
    let error = AppError::from(answer.unwrap_err());
    assert_eq!(error.status_code(), 409, "{error}");
}

#[actix_web::test]
async fn a_cancel_that_cannot_reach_the_queue_is_503_and_changes_nothing() {
    let redis = OwnRedis::start();
    let env = TestEnv::with_redis(&redis.url);
    let server = TestServer::start_with(env.config(json!({})), Role::Api, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "notes.md", b"# Notes\n\nkept".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    drop(redis);
    let (status, body) = cancel(&server, &alice, id).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "service_unavailable", "{body}");
    assert_eq!(server.document(&alice, id).await["queue_status"], "queued");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_cancelled_row_stays_cancelled_when_its_job_reports_completion() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::Api, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "notes.md", b"# Notes\n\nkept".to_vec()).await;
    let (id, job_id) = (doc["id"].as_str().unwrap().to_string(), doc["job_id"].as_str().unwrap().to_string());
    assert_eq!(cancel(&server, &alice, &id).await.0, 200);
    let (row, job) = (id.clone(), job_id.clone());
    let changed = server.app().db.run(move |conn| documents::mark_completed(conn, &row, &job, 3, None)).await.unwrap();
    assert!(!changed, "a finished row accepted another ending");
    let doc = server.document(&alice, &id).await;
    assert_eq!((doc["queue_status"].as_str(), doc["chunk_count"].as_i64()), (Some("cancelled"), Some(0)), "{doc}");
    server.shutdown().await;
}

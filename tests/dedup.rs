//! Duplicate uploads through the running service: an upload whose bytes equal a
//! completed document's, processed with the same settings, completes with copies of
//! its chunks and a row, job and events of its own; identical uploads in flight run one
//! extraction, the others waiting in the queue, not in a worker; a failed original, other settings and other users' documents are never
//! reused, unless `processing.dedup_scope = "global"`, and then the chunks are copies.
//! How many extractions ran is read from `/metrics`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use common::ws::{is_event, WsClient};
use common::{eventually, token, TestEnv, TestServer};
use diesel::prelude::*;
use docqueue::app::Role;
use docqueue::db::schema::document_chunks;
use serde_json::{json, Value};
use tokio::sync::watch;

const PDF: &str = "debian-reference-excerpt.pdf";

/// Extractions run so far, however they ended.
async fn extractions(server: &TestServer) -> f64 {
    common::value(&common::scrape(server).await, "docqueue_extractor_outcomes_total", None)
}

async fn finished(server: &TestServer, user: &str, id: &str) -> Value {
    server
        .wait_for(user, id, Duration::from_secs(60), |d| {
            d["queue_status"] != "queued" && d["queue_status"] != "processing"
        })
        .await
}

/// The texts and pages of a document's chunks, in order.
async fn chunk_texts(server: &TestServer, user: &str, id: &str) -> Vec<(String, Value)> {
    let (status, page) = server.get_json(user, &format!("/api/documents/{id}/chunks?limit=500")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page["next_cursor"].is_null());
    page["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["text"].as_str().unwrap().to_string(), c["page_start"].clone()))
        .collect()
}

/// Chunk rows stored for the document.
async fn stored_rows(server: &TestServer, id: &str) -> i64 {
    let id = id.to_string();
    server
        .app()
        .db
        .run(move |conn| {
            Ok(document_chunks::table.filter(document_chunks::document_id.eq(id)).count().get_result::<i64>(conn)?)
        })
        .await
        .unwrap()
}

async fn delete(server: &TestServer, user: &str, id: &str) {
    let response =
        server.client.delete(server.url(&format!("/api/documents/{id}"))).bearer_auth(user).send().await.unwrap();
    assert_eq!(response.status(), 204);
}

#[actix_web::test]
async fn the_same_bytes_again_complete_with_copied_chunks_and_a_row_job_and_events_of_their_own() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let original = server.upload_one(&alice, "report.pdf", common::fixture(PDF)).await;
    let original_id = original["id"].as_str().unwrap();
    let done = finished(&server, &alice, original_id).await;
    assert_eq!(done["queue_status"], "completed", "{done}");
    assert!(done["reused_from"].is_null(), "the first upload is processed: {done}");
    let extracted = extractions(&server).await;
    assert_eq!(extracted, 1.0);

    let mut ws = WsClient::connect(&server.base, &alice).await;
    ws.snapshot().await;
    let again = server.upload_one(&alice, "report (1).pdf", common::fixture(PDF)).await;
    let again_id = again["id"].as_str().unwrap();
    let events = ws.collect_until(Duration::from_secs(60), |e| is_event(e, "document.completed", again_id)).await;
    let completed = events.iter().find(|e| is_event(e, "document.completed", again_id)).unwrap();
    assert_eq!(completed["reused_from"], original_id, "{completed}");
    assert_eq!(completed["job_id"], again["job_id"]);
    assert!(events.iter().any(|e| is_event(e, "document.queued", again_id)), "its own queued event: {events:?}");

    let reused = server.document(&alice, again_id).await;
    assert_eq!(reused["queue_status"], "completed");
    assert_eq!(reused["reused_from"], original_id);
    assert_eq!(reused["filename"], "report (1).pdf");
    assert_ne!(reused["job_id"], original["job_id"], "a job of its own");
    assert_eq!(reused["chunk_count"], done["chunk_count"]);
    assert_eq!(extractions(&server).await, extracted, "no second extraction");
    let texts = chunk_texts(&server, &alice, original_id).await;
    assert!(!texts.is_empty());
    assert_eq!(chunk_texts(&server, &alice, again_id).await, texts, "the same chunks, pages included");

    // Copies, not shared rows: deleting the original leaves the copy whole.
    delete(&server, &alice, original_id).await;
    assert_eq!(stored_rows(&server, again_id).await, texts.len() as i64);
    assert_eq!(chunk_texts(&server, &alice, again_id).await, texts);
    server.shutdown().await;
}

#[actix_web::test]
async fn a_failed_original_is_not_reused() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let pdf = common::fixture(PDF);
    let truncated = pdf[..pdf.len() / 3].to_vec();
    let first = server.upload_one(&alice, "truncated.pdf", truncated.clone()).await;
    assert_eq!(finished(&server, &alice, first["id"].as_str().unwrap()).await["queue_status"], "failed");
    assert_eq!(extractions(&server).await, 1.0);

    let second = server.upload_one(&alice, "truncated.pdf", truncated).await;
    let second = finished(&server, &alice, second["id"].as_str().unwrap()).await;
    assert_eq!(second["queue_status"], "failed", "{second}");
    assert!(second["reused_from"].is_null());
    assert_eq!(extractions(&server).await, 2.0, "read again, not copied from the failure");
    server.shutdown().await;
}

#[actix_web::test]
async fn documents_processed_with_other_settings_are_never_reused() {
    let env = TestEnv::new();
    let alice = token("alice");
    let server = TestServer::start(env.config(json!({ "processing": { "chunk_size": 1000 } })), Role::All).await;
    let first = server.upload_one(&alice, "report.pdf", common::fixture(PDF)).await;
    let first = finished(&server, &alice, first["id"].as_str().unwrap()).await;
    assert_eq!(first["queue_status"], "completed");
    server.shutdown().await;

    // The same database and Redis, smaller chunks.
    let server = TestServer::start(env.config(json!({ "processing": { "chunk_size": 400 } })), Role::All).await;
    let before = extractions(&server).await;
    let second = server.upload_one(&alice, "report.pdf", common::fixture(PDF)).await;
    let second = finished(&server, &alice, second["id"].as_str().unwrap()).await;
    assert_eq!(second["queue_status"], "completed");
    assert!(second["reused_from"].is_null(), "{second}");
    assert_eq!(extractions(&server).await, before + 1.0);
    assert!(second["chunk_count"].as_i64() > first["chunk_count"].as_i64(), "chunked with its own settings");

    // A third upload with the new settings reuses the second, never the first.
    let third = server.upload_one(&alice, "report.pdf", common::fixture(PDF)).await;
    let third = finished(&server, &alice, third["id"].as_str().unwrap()).await;
    assert_eq!(third["reused_from"], second["id"]);
    server.shutdown().await;
}

#[actix_web::test]
async fn another_users_identical_upload_is_processed_on_its_own() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let first = server.upload_one(&alice, "report.pdf", common::fixture(PDF)).await;
    assert_eq!(finished(&server, &alice, first["id"].as_str().unwrap()).await["queue_status"], "completed");

    let theirs = server.upload_one(&bob, "report.pdf", common::fixture(PDF)).await;
    let theirs = finished(&server, &bob, theirs["id"].as_str().unwrap()).await;
    assert_eq!(theirs["queue_status"], "completed");
    assert!(theirs["reused_from"].is_null(), "{theirs}");
    assert_eq!(extractions(&server).await, 2.0);
    server.shutdown().await;
}

#[actix_web::test]
async fn a_global_scope_reuses_across_users_with_chunks_of_their_own() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({ "processing": { "dedup_scope": "global" } })), Role::All).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let first = server.upload_one(&alice, "report.pdf", common::fixture(PDF)).await;
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(finished(&server, &alice, first_id).await["queue_status"], "completed");
    let texts = chunk_texts(&server, &alice, first_id).await;

    let theirs = server.upload_one(&bob, "mine.pdf", common::fixture(PDF)).await;
    let theirs_id = theirs["id"].as_str().unwrap();
    let done = finished(&server, &bob, theirs_id).await;
    assert!(done["reused_from"].is_null(), "alice's document is not named to bob, not even by id: {done}");
    assert_eq!(extractions(&server).await, 1.0, "bob's upload was not read again");
    assert_eq!(chunk_texts(&server, &bob, theirs_id).await, texts);

    delete(&server, &alice, first_id).await;
    assert_eq!(stored_rows(&server, theirs_id).await, texts.len() as i64, "bob's chunks are his own");
    let (status, _) = server.get_json(&bob, &format!("/api/documents/{first_id}")).await;
    assert_eq!(status, 404, "reuse reveals nothing of alice's document to bob");
    server.shutdown().await;
}

/// An OpenAI-compatible embeddings API whose first answer waits until the test
/// releases it, so one document can be held in the middle of its processing; later
/// requests are answered at once.
struct HeldEmbeddings {
    requests: AtomicUsize,
    released: watch::Receiver<bool>,
}

async fn held_embeddings(api: web::Data<HeldEmbeddings>, body: web::Json<Value>) -> HttpResponse {
    if api.requests.fetch_add(1, Ordering::SeqCst) == 0 {
        let mut released = api.released.clone();
        let _ = released.wait_for(|released| *released).await;
    }
    let data: Vec<Value> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"index": index, "embedding": [text.as_str().unwrap().len() as f32, 1.0, 1.0]}))
        .collect();
    HttpResponse::Ok().json(json!({ "data": data }))
}

#[actix_web::test]
async fn identical_uploads_in_flight_run_one_extraction_and_wait_in_the_queue_not_in_a_worker() {
    let (release, released) = watch::channel(false);
    let api = Arc::new(HeldEmbeddings { requests: AtomicUsize::new(0), released });
    let data = web::Data::from(api.clone());
    let embeddings_url = common::embeddings_api::serve(move |routes| {
        routes.app_data(data.clone()).route("/v1/embeddings", web::post().to(held_embeddings));
    });

    let env = TestEnv::new();
    // Two workers: one holds the first of the identical documents; had its twins waited
    // in the other, bob's document would wait for all of them.
    let config = env.config(json!({
        "document_queue": { "concurrency": 2 },
        "embedding": {
            "provider": "openai", "base_url": embeddings_url, "model": "held", "dimensions": 3,
            "batch_size": 1000, "concurrent_requests": 1
        },
    }));
    let server = TestServer::start(config, Role::All).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let files: Vec<(&str, Vec<u8>)> = (0..5).map(|_| ("report.pdf", common::fixture(PDF))).collect();
    let response = server.upload(&alice, &files, None).await;
    assert_eq!(response.status(), 202);
    let uploaded: Value = response.json().await.unwrap();
    let ids: Vec<String> =
        uploaded["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 5);

    // One of them reaches its embeddings and is held there; the four others are
    // claimed, find it in flight and go back to the queue to wait for it.
    let processing_and_queued = || {
        let (server, alice, ids) = (&server, &alice, &ids);
        async move {
            let (mut processing, mut queued) = (0, 0);
            for id in ids {
                match server.document(alice, id).await["queue_status"].as_str() {
                    Some("processing") => processing += 1,
                    Some("queued") => queued += 1,
                    _ => {}
                }
            }
            (processing, queued)
        }
    };
    eventually(Duration::from_secs(60), "one document processing, held at embedding, four queued", || {
        let (api, processing_and_queued) = (&api, &processing_and_queued);
        async move {
            (processing_and_queued().await == (1, 4) && api.requests.load(Ordering::SeqCst) >= 1).then_some(())
        }
    })
    .await;
    assert_eq!(extractions(&server).await, 1.0, "the other four wait instead of extracting");

    // Another user's document goes through the free worker meanwhile.
    let response = server
        .upload(&bob, &[("notes.md", b"# Notes\n\nBob's own notes, nothing like the report.".to_vec())], None)
        .await;
    assert_eq!(response.status(), 202);
    let bobs: Value = response.json().await.unwrap();
    let bobs = bobs["documents"][0]["id"].as_str().unwrap().to_string();
    let done = finished(&server, &bob, &bobs).await;
    assert_eq!(done["queue_status"], "completed", "{done}");
    assert_eq!(api.requests.load(Ordering::SeqCst), 2, "bob's embeddings beside the held ones");
    release.send(true).unwrap();

    let mut processed = Vec::new();
    let mut reused = Vec::new();
    for id in &ids {
        let done = finished(&server, &alice, id).await;
        assert_eq!(done["queue_status"], "completed", "{done}");
        assert_eq!(done["attempts"], 1, "waiting for the twin is not a try: {done}");
        match done["reused_from"].as_str() {
            Some(from) => reused.push(from.to_string()),
            None => processed.push(id.clone()),
        }
    }
    assert_eq!(processed.len(), 1, "exactly one processed: {processed:?}");
    assert_eq!(reused, vec![processed[0].clone(); 4], "the other four copied it");
    assert_eq!(extractions(&server).await, 2.0, "one extraction of alice's report, one of bob's notes");
    assert_eq!(api.requests.load(Ordering::SeqCst), 2, "and their two runs' embeddings");

    let texts = chunk_texts(&server, &alice, &processed[0]).await;
    for id in &ids {
        assert_eq!(chunk_texts(&server, &alice, id).await, texts, "{id}");
        assert_eq!(stored_rows(&server, id).await, texts.len() as i64, "{id}: rows of its own");
    }
    server.shutdown().await;
}

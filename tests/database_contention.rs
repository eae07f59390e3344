//! Many writers at once on the default SQLite database: uploads, three workers'
//! row updates and chunk replacements all wait their turn for the write lock
//! (`BEGIN IMMEDIATE` plus `busy_timeout`) instead of failing with "database is locked".

mod common;

use std::time::Duration;

use common::{scrape, token, value, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::json;

#[actix_web::test]
async fn twelve_concurrent_uploaders_of_twenty_files_never_see_a_locked_database() {
    let env = TestEnv::new();
    let config = env.config(json!({ "document_queue": { "concurrency": 3 } }));
    let server = TestServer::start(config, Role::All).await;
    let uploads = (0..12).map(|user| {
        let server = &server;
        async move {
            let user = token(&format!("user-{user}"));
            let mut ids = Vec::new();
            for file in 0..20 {
                let text = format!("# Note {file} of user {user}\n\nA short note with a few sentences.\n").repeat(20);
                let response = server.upload(&user, &[(&format!("note-{file}.md"), text.into_bytes())], None).await;
                assert_eq!(response.status(), 202);
                let body: serde_json::Value = response.json().await.unwrap();
                ids.push(body["documents"][0]["id"].as_str().unwrap().to_string());
            }
            (user, ids)
        }
    });
    let uploaded = futures_util::future::join_all(uploads).await;
    for (user, ids) in uploaded {
        for id in ids {
            let doc = server
                .wait_for(&user, &id, Duration::from_secs(120), |d| {
                    d["queue_status"] != "queued" && d["queue_status"] != "processing"
                })
                .await;
            assert_eq!(doc["queue_status"], "completed", "{doc}");
            assert_eq!(doc["attempts"], 1, "a document was retried: {doc}");
        }
    }
    let metrics = scrape(&server).await;
    assert_eq!(value(&metrics, "docqueue_jobs_total", Some(("outcome", "completed"))), 240.0);
    assert_eq!(value(&metrics, "docqueue_jobs_total", Some(("outcome", "retried"))), 0.0, "no job was retried");
    server.shutdown().await;
}

//! The product's queue-time target: a team's burst of small files (500, from 10 users,
//! queued at once) is read with no document waiting 30 s or more to be started, with the
//! default configuration and the real pipeline.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::{json, Value};

const USERS: usize = 10;
const FILES_PER_USER: usize = 50;
const FILES_PER_REQUEST: usize = 10;
/// The product's target for documents under 10 MB.
const QUEUE_WAIT_TARGET: Duration = Duration::from_secs(30);

/// A small file of one of the everyday formats, with text of its own.
fn small_file(user: usize, i: usize) -> (String, Vec<u8>) {
    let text = format!(
        "Notes from team member {user}, file {i}.\n\nThe release moves to week {i}; the review of item {user}-{i} \
         is on Thursday, and the open questions go to the planning channel.\n"
    );
    match i % 3 {
        0 => (format!("note-{user}-{i}.md"), format!("# Note {i}\n\n{text}").into_bytes()),
        1 => (format!("snippet-{user}-{i}.txt"), text.into_bytes()),
        _ => (
            format!("export-{user}-{i}.html"),
            format!("<html><body><h1>Export {i}</h1><p>{text}</p></body></html>").into_bytes(),
        ),
    }
}

fn time_of(doc: &Value, field: &str) -> DateTime<Utc> {
    doc[field].as_str().and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("no {field} in {doc}"))
}

#[actix_web::test]
async fn five_hundred_small_files_from_ten_users_all_start_within_thirty_seconds() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let uploads = (0..USERS).map(|user| {
        let server = &server;
        async move {
            let caller = token(&format!("member-{user}"));
            let mut ids = Vec::new();
            let files: Vec<(String, Vec<u8>)> = (0..FILES_PER_USER).map(|i| small_file(user, i)).collect();
            for request in files.chunks(FILES_PER_REQUEST) {
                let parts: Vec<(&str, Vec<u8>)> = request.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
                let response = server.upload(&caller, &parts, None).await;
                assert_eq!(response.status(), 202);
                let body: Value = response.json().await.unwrap();
                ids.extend(body["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()));
            }
            (caller, ids)
        }
    });
    let uploaded = futures_util::future::join_all(uploads).await;

    let mut waits = Vec::new();
    for (caller, ids) in &uploaded {
        for id in ids {
            let doc = server.wait_for(caller, id, Duration::from_secs(300), |d| d["queue_status"] == "completed").await;
            let wait = time_of(&doc, "started_at") - time_of(&doc, "queued_at");
            waits.push(wait.to_std().unwrap_or_default());
        }
    }
    waits.sort();
    let longest = *waits.last().unwrap();
    println!(
        "{} documents: queue wait median {:.2} s, longest {:.2} s (target: under {} s)",
        waits.len(),
        waits[waits.len() / 2].as_secs_f64(),
        longest.as_secs_f64(),
        QUEUE_WAIT_TARGET.as_secs()
    );
    assert_eq!(waits.len(), USERS * FILES_PER_USER);
    assert!(longest < QUEUE_WAIT_TARGET, "a document waited {longest:?} to be started");
    server.shutdown().await;
}

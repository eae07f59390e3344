//! An extractor process that read a document cleanly reads its owner's next document
//! too, and never another user's; it is not kept after a document it could not read,
//! past `processing.max_documents_per_extractor`, or after its idle limit. The job's
//! story names the process that read each attempt (`extractor_pid`). The extractor is
//! docqueue-extract, found beside docqueue, or docqueue itself when configured so.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{admin_token, hostile, token, ServerProcess, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::{json, Value};

fn note(i: usize) -> Vec<u8> {
    format!("# Note {i}\n\nThe planning meeting moved to Thursday; item {i} is on the agenda.\n").into_bytes()
}

/// The first attempt of `doc`'s job, from the job's story.
async fn attempt_of(server: &TestServer, doc: &Value) -> Value {
    let path = format!("/api/admin/queue/jobs/{}", doc["job_id"].as_str().unwrap());
    let (status, story) = server.get_json(&admin_token("root"), &path).await;
    assert_eq!(status, 200, "{story}");
    story["attempts"][0].clone()
}

fn pid_of(attempt: &Value) -> u64 {
    attempt["extractor_pid"].as_u64().unwrap_or_else(|| panic!("no extractor_pid in {attempt}"))
}

/// Uploads one file, waits for it to end, and returns the attempt that read it.
async fn read_one(server: &TestServer, user: &str, name: &str, bytes: Vec<u8>, status: &str) -> Value {
    let doc = server.upload_one(user, name, bytes).await;
    server.wait_for_status(user, doc["id"].as_str().unwrap(), status).await;
    attempt_of(server, &doc).await
}

#[actix_web::test]
async fn an_owners_documents_share_a_kept_reader_and_other_owners_never_do() {
    let env = TestEnv::new();
    // One worker: the owners' documents alternate, each owner's reader waits between them.
    let server = TestServer::start(env.config(json!({ "document_queue": { "concurrency": 1 } })), Role::All).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let files = |owner: &str| (0..3).map(|i| (format!("{owner}-{i}.md"), note(i))).collect::<Vec<_>>();
    let mut uploaded = Vec::new();
    for (user, owner) in [(&alice, "alice"), (&bob, "bob")] {
        let files = files(owner);
        let parts: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let response = server.upload(user, &parts, None).await;
        assert_eq!(response.status(), 202);
        let body: Value = response.json().await.unwrap();
        for doc in body["documents"].as_array().unwrap() {
            uploaded.push((owner, user.clone(), doc.clone()));
        }
    }
    let mut pids: std::collections::HashMap<&str, HashSet<u64>> = Default::default();
    for (owner, user, doc) in &uploaded {
        server.wait_for_status(user, doc["id"].as_str().unwrap(), "completed").await;
        let attempt = attempt_of(&server, doc).await;
        assert_eq!(attempt["extractor_outcome"], "ok", "{attempt}");
        pids.entry(owner).or_default().insert(pid_of(&attempt));
    }
    println!("readers: {pids:?}");
    assert_eq!(pids["alice"].len(), 1, "alice's three documents were read by one kept process: {pids:?}");
    assert_eq!(pids["bob"].len(), 1, "bob's three documents were read by one kept process: {pids:?}");
    assert!(pids["alice"].is_disjoint(&pids["bob"]), "a process read documents of two owners: {pids:?}");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_reader_is_not_kept_past_its_document_limit_or_after_a_document_it_could_not_read() {
    let env = TestEnv::new();
    let config = env.config(json!({ "processing": { "max_documents_per_extractor": 2, "max_html_depth": 64 } }));
    let server = TestServer::start(config, Role::All).await;
    let alice = token("alice");

    let first = read_one(&server, &alice, "first.md", note(1), "completed").await;
    assert_eq!(first["extractor_exit"], "kept running for its owner's next document", "{first}");
    let second = read_one(&server, &alice, "second.md", note(2), "completed").await;
    assert_eq!(pid_of(&second), pid_of(&first), "the kept process reads the owner's next document");
    assert_eq!(second["extractor_exit"], "exit 0", "its second document was its last: {second}");

    let third = read_one(&server, &alice, "third.md", note(3), "completed").await;
    assert_ne!(pid_of(&third), pid_of(&first), "a process reads at most max_documents_per_extractor documents");
    let unreadable = read_one(&server, &alice, "nested.html", hostile::deeply_nested_html(1_000), "failed").await;
    assert_eq!(pid_of(&unreadable), pid_of(&third), "{unreadable}");
    assert_eq!(unreadable["extractor_outcome"], "unreadable", "{unreadable}");
    assert_eq!(unreadable["extractor_exit"], "exit 0", "closed after a document it could not read: {unreadable}");
    let after = read_one(&server, &alice, "after.md", note(4), "completed").await;
    assert_ne!(pid_of(&after), pid_of(&unreadable), "a new process reads after an unreadable document");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_kept_reader_is_closed_once_its_idle_limit_passes() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let attempt = read_one(&server, &alice, "note.md", note(1), "completed").await;
    assert_eq!(attempt["extractor_exit"], "kept running for its owner's next document", "{attempt}");
    let pid = pid_of(&attempt) as u32;
    // The idle limit is 2 s; the process goes soon after, and nothing reads in between.
    common::eventually(Duration::from_secs(15), "the idle reader to be closed", || async move {
        (!common::is_alive(pid)).then_some(())
    })
    .await;
    server.shutdown().await;
}

#[actix_web::test]
async fn one_document_per_extractor_reads_every_document_in_a_new_process() {
    let env = TestEnv::new();
    let server =
        TestServer::start(env.config(json!({ "processing": { "max_documents_per_extractor": 1 } })), Role::All).await;
    let alice = token("alice");
    let mut pids = HashSet::new();
    for i in 0..3 {
        let attempt = read_one(&server, &alice, &format!("note-{i}.md"), note(i), "completed").await;
        assert_eq!(attempt["extractor_exit"], "exit 0", "{attempt}");
        pids.insert(pid_of(&attempt));
    }
    assert_eq!(pids.len(), 3, "{pids:?}");
    server.shutdown().await;
}

/// The executable a process runs, from /proc.
fn executable_of(pid: u64) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe")).map(|path| path.display().to_string()).unwrap_or_default()
}

#[actix_web::test]
async fn a_server_with_the_default_settings_reads_documents_with_docqueue_extract_found_beside_it() {
    let env = TestEnv::new();
    let server = ServerProcess::start(&env, &[]).await;
    let alice = token("alice");
    let doc = server.http.upload_one(&alice, "note.md", note(1)).await;
    server.http.wait_for_status(&alice, doc["id"].as_str().unwrap(), "completed").await;
    let extractors: Vec<String> =
        server.descendants().into_iter().map(|pid| executable_of(pid.into())).filter(|exe| !exe.is_empty()).collect();
    let beside = std::path::Path::new(env!("CARGO_BIN_EXE_docqueue")).with_file_name("docqueue-extract");
    assert!(
        extractors.iter().any(|exe| std::path::Path::new(exe) == beside),
        "no extractor runs {}: {extractors:?}",
        beside.display()
    );
    assert!(
        extractors.iter().all(|exe| !exe.ends_with("/docqueue")),
        "the server started itself as an extractor: {extractors:?}"
    );
}

#[actix_web::test]
async fn docqueue_itself_reads_documents_when_it_is_the_extractor_program() {
    let env = TestEnv::new();
    let config = env.config(json!({ "processing": { "extractor_program": env!("CARGO_BIN_EXE_docqueue") } }));
    let server = TestServer::start(config, Role::All).await;
    let attempt = read_one(&server, &token("alice"), "note.md", note(2), "completed").await;
    assert_eq!(attempt["extractor_outcome"], "ok", "{attempt}");
    let exe = executable_of(pid_of(&attempt));
    assert!(exe.ends_with("/docqueue"), "the document was read by {exe:?}");
}

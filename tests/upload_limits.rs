//! Slow and oversized request bodies cost one request, never the server: a stalled
//! upload gets 408 and leaves no file, and so does one trickled slower than
//! `server.min_body_bytes_per_sec`; concurrent uploads are capped per user (429 with
//! Retry-After), non-file parts are bounded in bytes and in number, a body declared
//! larger than any upload may be gets 413 before it is read (507 when larger than the
//! user's store has left), and a dashboard form trickled a byte at a time still ends
//! in time.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::json;

/// Sends an upload's headers, declaring `declared` bytes, and `body_start`; nothing more.
fn start_an_upload(base: &str, user_token: &str, declared: u64, body_start: &str) -> TcpStream {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "POST /api/documents/upload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {user_token}\r\n\
         Content-Type: multipart/form-data; boundary=XBOUNDARY\r\nContent-Length: {declared}\r\n\r\n{body_start}"
    )
    .unwrap();
    stream.flush().unwrap();
    stream
}

/// Sends the headers and the start of a file part, then nothing more.
fn stall_an_upload(base: &str, user_token: &str) -> TcpStream {
    let part = "--XBOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.txt\"\r\n\
                Content-Type: text/plain\r\n\r\nthe first words of a file that never ends";
    start_an_upload(base, user_token, 1_000_000, part)
}

fn read_status_line(mut stream: TcpStream, limit: Duration) -> String {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut answer = vec![0u8; 4096];
    let read = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..read]).lines().next().unwrap_or_default().to_string()
}

/// Waits for the upload's partial file, then for the 408 on `stream` (within `limit`),
/// then for the partial file to go.
async fn expect_408_and_the_partial_file_removed(env: &TestEnv, stream: TcpStream, limit: Duration) {
    common::eventually(Duration::from_secs(5), "the partial file on disk", || {
        let staged = !env.stored_files().is_empty();
        async move { staged.then_some(()) }
    })
    .await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || read_status_line(stream, limit)).await.unwrap();
    assert!(status.contains(" 408 "), "{status:?} after {:?}", started.elapsed());
    common::eventually(Duration::from_secs(5), "the partial file removed", || {
        let files = env.stored_files();
        async move { files.is_empty().then_some(()) }
    })
    .await;
}

/// Sends an upload's headers, declaring `declared` bytes, and no body; returns all the
/// server answers within 10 s.
async fn answer_to_an_upload_declaring(base: &str, user_token: &str, declared: u64) -> String {
    let mut stream = start_an_upload(base, user_token, declared, "");
    tokio::task::spawn_blocking(move || {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap()
}

fn json_body(answer: &str) -> serde_json::Value {
    serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap_or_default()
}

#[actix_web::test]
async fn a_stalled_upload_gets_408_and_its_staging_file_is_removed() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({ "server": { "body_timeout_secs": 1 } })), Role::Api).await;
    let stream = stall_an_upload(&server.base, &token("alice"));
    expect_408_and_the_partial_file_removed(&env, stream, Duration::from_secs(10)).await;
    server.shutdown().await;
}

#[actix_web::test]
async fn an_upload_trickled_below_the_minimum_rate_gets_408_though_it_never_stalls() {
    let env = TestEnv::new();
    let config = env.config(json!({ "server": { "body_timeout_secs": 2, "min_body_bytes_per_sec": 100 } }));
    let server = TestServer::start(config, Role::Api).await;
    let stream = stall_an_upload(&server.base, &token("alice"));
    // A byte every 200 ms: never a gap near the 2 s idle limit, and at 100 bytes a
    // second each byte earns the body 0.01 s, so it runs out of time after about 2 s.
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(200));
            if writer.write_all(b"x").is_err() {
                return;
            }
        }
    });
    expect_408_and_the_partial_file_removed(&env, stream, Duration::from_secs(15)).await;
    server.shutdown().await;
}

#[actix_web::test]
async fn a_user_past_the_concurrent_upload_cap_gets_429_with_retry_after_and_others_do_not() {
    let env = TestEnv::new();
    let config = env.config(json!({
        "server": { "body_timeout_secs": 3 },
        "storage": { "max_concurrent_uploads_per_user": 2 },
    }));
    let server = TestServer::start(config, Role::Api).await;
    let alice = token("alice");
    let stalled = [stall_an_upload(&server.base, &alice), stall_an_upload(&server.base, &alice)];
    // Each upload takes its slot before it stages its file.
    common::eventually(Duration::from_secs(5), "both partial files on disk", || {
        let staged = env.stored_files().len();
        async move { (staged == 2).then_some(()) }
    })
    .await;

    let response = server.upload(&alice, &[("c.txt", b"third".to_vec())], None).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert_eq!(server.upload(&token("bob"), &[("d.txt", b"bob's".to_vec())], None).await.status(), 202);

    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.upload(&alice, &[("e.txt", b"later".to_vec())], None).await.status() != 202 {
        assert!(Instant::now() < deadline, "alice's upload slots were never given back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.shutdown().await;
}

#[actix_web::test]
async fn non_file_parts_past_their_byte_limit_are_refused() {
    let env = TestEnv::new();
    let config = env.config(json!({ "storage": { "max_form_field_bytes": 1024 } }));
    let server = TestServer::start(config, Role::Api).await;
    let form = reqwest::multipart::Form::new()
        .text("comment", "x".repeat(4096))
        .part("file", reqwest::multipart::Part::bytes(b"text".to_vec()).file_name("a.txt"));
    let response = server.upload_form(&token("alice"), form).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("max_form_field_bytes"), "{body}");
    assert!(env.stored_files().is_empty());
    server.shutdown().await;
}

#[actix_web::test]
async fn an_upload_declaring_more_bytes_than_any_upload_may_have_gets_413_before_its_body() {
    let env = TestEnv::new();
    let limits = json!({ "storage": { "max_upload_bytes": 1000, "max_files_per_upload": 2 } });
    let server = TestServer::start(env.config(limits), Role::Api).await;
    // Two files of 1,000 bytes, 64 KiB of form fields and 19 parts' headers: under 1.4 MB.
    let declared = 50_000_000;
    let answer = answer_to_an_upload_declaring(&server.base, &token("alice"), declared).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "no body sent, yet: {answer:?}");
    let body = json_body(&answer);
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&declared.to_string()) && message.contains("storage.max_upload_bytes"), "{message}");
    assert!(env.stored_files().is_empty());

    let small = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"text".to_vec()).file_name("a.txt"));
    assert_eq!(server.upload_form(&token("alice"), small).await.status(), 202, "an upload within the limits goes on");
    server.shutdown().await;
}

#[actix_web::test]
async fn an_upload_declaring_more_than_the_users_store_has_left_gets_507_before_its_body() {
    let env = TestEnv::new();
    let server =
        TestServer::start(env.config(json!({ "storage": { "max_bytes_per_user": 3_000_000 } })), Role::Api).await;
    let first = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(vec![b'a'; 2_000_000]).file_name("a.txt"));
    assert_eq!(server.upload_form(&token("alice"), first).await.status(), 202);
    // 1,000,000 bytes left: a body of 5,000,000 holds files of more than that, whatever
    // its form fields and part headers take (under 2.5 MB at most).
    let answer = answer_to_an_upload_declaring(&server.base, &token("alice"), 5_000_000).await;
    assert!(answer.starts_with("HTTP/1.1 507 "), "no body sent, yet: {answer:?}");
    let body = json_body(&answer);
    assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("storage.max_bytes_per_user"), "{body}");
    assert_eq!(env.stored_files().len(), 1);
    let small = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(vec![b'b'; 500_000]).file_name("b.txt"));
    assert_eq!(server.upload_form(&token("alice"), small).await.status(), 202, "what fits the store goes on");
    server.shutdown().await;
}

/// Empty parts take nothing from the form's byte budget; their number is bounded.
#[actix_web::test]
async fn an_upload_of_endless_empty_parts_is_refused() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let form = (0..100).fold(reqwest::multipart::Form::new(), |form, i| form.text(format!("empty{i}"), ""));
    let form = form.part("file", reqwest::multipart::Part::bytes(b"text".to_vec()).file_name("a.txt"));
    let response = server.upload_form(&token("alice"), form).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("parts besides its files"), "{body}");
    assert!(env.stored_files().is_empty());
    server.shutdown().await;
}

/// The dashboard reads a form before it checks the session. One sent a byte every
/// 200 ms never trips the idle timeout, yet is answered 408 within
/// `server.body_timeout_secs`.
#[actix_web::test]
async fn a_dashboard_form_trickled_a_byte_at_a_time_gets_408_in_time() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({ "server": { "body_timeout_secs": 1 } })), Role::Api).await;
    let mut stream = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "POST /admin/login HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntoken="
    )
    .unwrap();
    let mut trickle = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(200));
            if trickle.write_all(b"x").is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || read_status_line(stream, Duration::from_secs(10))).await.unwrap();
    // Without the deadline the bytes keep the request alive past the 10 s read limit.
    assert!(status.contains(" 408 "), "{status:?} after {:?}", started.elapsed());
    server.shutdown().await;
}
